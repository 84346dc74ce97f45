/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-smtp-data.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* What BDAT must carry, written as plainly as possible: NUL dropped, then
 * CRLF, lone CR and lone LF each one CRLF, and a CRLF after a last line
 * without one. */
static GByteArray *
normalise (const guint8 *data, gsize size)
{
  g_autoptr (GByteArray) kept = g_byte_array_new ();
  GByteArray *out = g_byte_array_new ();

  for (gsize i = 0; i < size; i++)
    {
      if (data[i] != '\0')
        g_byte_array_append (kept, data + i, 1);
    }
  for (guint i = 0; i < kept->len; i++)
    {
      if (kept->data[i] == '\r' && i + 1 < kept->len && kept->data[i + 1] == '\n')
        continue;
      if (kept->data[i] == '\r' || kept->data[i] == '\n')
        g_byte_array_append (out, (const guint8 *) "\r\n", 2);
      else
        g_byte_array_append (out, kept->data + i, 1);
    }
  if (out->len > 0 && !(out->len >= 2 && memcmp (out->data + out->len - 2, "\r\n", 2) == 0))
    g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  return out;
}

static GByteArray *
encode_in_pieces_of (const guint8 *data, gsize size, gsize piece)
{
  GByteArray *out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;

  outbox_smtp_data_encoder_init_unstuffed (&encoder);
  for (gsize pos = 0; pos < size; pos += piece)
    outbox_smtp_data_encoder_process (&encoder, data + pos, MIN (piece, size - pos), out);
  outbox_smtp_data_encoder_finish (&encoder, out);
  return out;
}

/* The BDAT octets are the input after CRLF normalisation, for every size
 * of the pieces the input is read in (up to 64; whole beyond). */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GByteArray) expected = normalise (data, size);

  for (gsize piece = 1; piece <= MAX (size, 1); piece = piece < 64 ? piece + 1 : MAX (size, 1) + 1)
    {
      g_autoptr (GByteArray) out = encode_in_pieces_of (data, size, piece);

      g_assert_cmpmem (out->data, out->len, expected->data, expected->len);
    }
  return 0;
}
