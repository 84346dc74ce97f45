/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-smtp-data.h"

#include <string.h>

/* The encoder is a small state machine over three special bytes; every
 * other byte is copied in runs:
 *
 * - pending_cr: a CR was read and its line break not yet written, because
 *   the next byte (possibly in the next chunk) may be the LF of a CRLF.
 *   NUL bytes are dropped before anything else looks at the data, so
 *   "CR NUL LF" is one line break, as a server that drops NUL would see it.
 * - at_line_start: the next byte written opens a line, so a '.' there needs
 *   a second '.' (for DATA; BDAT chunks are not dot-stuffed).
 *
 * line_length and max_line_length count the message's own octets: the
 * transparency dot is not part of the line (RFC 5321 section 4.5.3.1.6). */

static const guint8 special_bytes[] = { '\r', '\n', '\0' };

/* Finds the next special byte with one memchr() per byte kind, remembering
 * each answer until the scan passes it, so that every input byte is looked
 * at at most once per kind. */
typedef struct
{
  const guint8 *data;
  gsize len;
  gsize next[G_N_ELEMENTS (special_bytes)];
  gboolean known[G_N_ELEMENTS (special_bytes)];
} SpecialScanner;

static void
special_scanner_init (SpecialScanner *scanner, const guint8 *data, gsize len)
{
  memset (scanner, 0, sizeof *scanner);
  scanner->data = data;
  scanner->len = len;
}

static gsize
special_scanner_next (SpecialScanner *scanner, gsize pos)
{
  gsize nearest = scanner->len;

  for (gsize i = 0; i < G_N_ELEMENTS (special_bytes); i++)
    {
      if (!scanner->known[i] || scanner->next[i] < pos)
        {
          const guint8 *found = memchr (scanner->data + pos, special_bytes[i], scanner->len - pos);

          scanner->next[i] = found != NULL ? (gsize) (found - scanner->data) : scanner->len;
          scanner->known[i] = TRUE;
        }
      nearest = MIN (nearest, scanner->next[i]);
    }

  return nearest;
}

void
outbox_smtp_data_encoder_init (OutboxSmtpDataEncoder *encoder)
{
  memset (encoder, 0, sizeof *encoder);
  encoder->at_line_start = TRUE;
  encoder->empty = TRUE;
  encoder->dot_stuffing = TRUE;
}

void
outbox_smtp_data_encoder_init_unstuffed (OutboxSmtpDataEncoder *encoder)
{
  outbox_smtp_data_encoder_init (encoder);
  encoder->dot_stuffing = FALSE;
}

static void
end_line (OutboxSmtpDataEncoder *encoder, GByteArray *out)
{
  g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  encoder->max_line_length = MAX (encoder->max_line_length, encoder->line_length);
  encoder->line_length = 0;
  encoder->at_line_start = TRUE;
  encoder->pending_cr = FALSE;
  encoder->empty = FALSE;
}

static void
append_run (OutboxSmtpDataEncoder *encoder, const guint8 *run, gsize run_len, GByteArray *out)
{
  if (encoder->dot_stuffing && encoder->at_line_start && run[0] == '.')
    g_byte_array_append (out, (const guint8 *) ".", 1);

  g_byte_array_append (out, run, run_len);
  encoder->line_length += run_len;
  encoder->max_line_length = MAX (encoder->max_line_length, encoder->line_length);
  encoder->at_line_start = FALSE;
  encoder->empty = FALSE;
}

void
outbox_smtp_data_encoder_process (OutboxSmtpDataEncoder *encoder,
                                  const guint8 *in,
                                  gsize in_len,
                                  GByteArray *out)
{
  SpecialScanner scanner;
  gsize pos = 0;

  g_return_if_fail (encoder != NULL);
  g_return_if_fail (in != NULL || in_len == 0);
  g_return_if_fail (out != NULL);

  special_scanner_init (&scanner, in, in_len);

  while (pos < in_len)
    {
      gsize special = special_scanner_next (&scanner, pos);

      if (special > pos)
        {
          if (encoder->pending_cr)
            end_line (encoder, out);
          append_run (encoder, in + pos, special - pos, out);
          pos = special;
          continue;
        }

      switch (in[pos])
        {
        case '\r':
          /* A lone CR ends a line of its own; the CR just read may still
           * be followed by an LF. */
          if (encoder->pending_cr)
            end_line (encoder, out);
          encoder->pending_cr = TRUE;
          break;
        case '\n':
          end_line (encoder, out);
          break;
        default:
          /* NUL: dropped. */
          break;
        }
      pos++;
    }
}

void
outbox_smtp_data_encoder_finish (OutboxSmtpDataEncoder *encoder, GByteArray *out)
{
  g_return_if_fail (encoder != NULL);
  g_return_if_fail (out != NULL);

  if (encoder->pending_cr || !encoder->at_line_start)
    end_line (encoder, out);

  if (encoder->dot_stuffing)
    g_byte_array_append (out, (const guint8 *) ".\r\n", 3);
}
