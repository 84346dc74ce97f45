/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "outbox-maildrop-format.h"
#include "outbox-message.h"

void
outbox_maildrop_envelope_init (OutboxMaildropEnvelope *envelope)
{
  memset (envelope, 0, sizeof *envelope);
  envelope->recipients = g_ptr_array_new_with_free_func (g_free);
}

void
outbox_maildrop_envelope_clear (OutboxMaildropEnvelope *envelope)
{
  g_clear_pointer (&envelope->from, g_free);
  g_clear_pointer (&envelope->recipients, g_ptr_array_unref);
  g_clear_pointer (&envelope->notify, g_free);
  g_clear_pointer (&envelope->ret, g_free);
  g_clear_pointer (&envelope->envid, g_free);
}

gboolean
outbox_maildrop_envelope_equal (const OutboxMaildropEnvelope *a,
                                const OutboxMaildropEnvelope *b)
{
  if (g_strcmp0 (a->from, b->from) != 0 || a->recipients->len != b->recipients->len ||
      g_strcmp0 (a->notify, b->notify) != 0 || g_strcmp0 (a->ret, b->ret) != 0 ||
      g_strcmp0 (a->envid, b->envid) != 0)
    return FALSE;
  for (guint i = 0; i < a->recipients->len; i++)
    {
      if (!g_str_equal (g_ptr_array_index (a->recipients, i), g_ptr_array_index (b->recipients, i)))
        return FALSE;
    }
  return TRUE;
}

/* Writing */

static void
append_escaped (GString    *line,
                const char *value)
{
  for (const guchar *c = (const guchar *) value; *c != '\0'; c++)
    {
      if (*c <= 0x20 || *c == '%' || *c == 0x7f)
        g_string_append_printf (line, "%%%02X", *c);
      else
        g_string_append_c (line, (char) *c);
    }
}

/* "KEY VALUE\n", unless @value is NULL. */
static void
append_envelope_line (GString    *text,
                      const char *key,
                      const char *value)
{
  if (value == NULL)
    return;
  g_string_append_printf (text, "%s ", key);
  append_escaped (text, value);
  g_string_append_c (text, '\n');
}

GString *
outbox_maildrop_envelope_format (const OutboxMaildropEnvelope *envelope)
{
  GString *text = g_string_new (OUTBOX_MAILDROP_MAGIC "\n");

  append_envelope_line (text, "from", envelope->from);
  for (guint i = 0; envelope->recipients != NULL && i < envelope->recipients->len; i++)
    append_envelope_line (text, "recipient", g_ptr_array_index (envelope->recipients, i));
  append_envelope_line (text, "notify", envelope->notify);
  append_envelope_line (text, "ret", envelope->ret);
  append_envelope_line (text, "envid", envelope->envid);
  g_string_append_c (text, '\n');
  return text;
}

/* Reading */

void
outbox_maildrop_reader_init (OutboxMaildropReader *reader)
{
  outbox_maildrop_envelope_init (&reader->envelope);
  reader->seen_magic = FALSE;
  reader->complete = FALSE;
}

void
outbox_maildrop_reader_clear (OutboxMaildropReader *reader)
{
  outbox_maildrop_envelope_clear (&reader->envelope);
}

/* A value of the envelope, unescaped; NULL when it is not valid UTF-8 or
 * has a bad or NUL escape. */
static char *
unescape_value (const char *value)
{
  g_autofree char *text = g_uri_unescape_string (value, NULL);

  if (text == NULL || !g_utf8_validate (text, -1, NULL))
    return NULL;
  return g_steal_pointer (&text);
}

/* "notify LIST", "ret WORD" or "envid ID", each at most once. */
static const char *
take_dsn_line (OutboxMaildropEnvelope *envelope,
               const char             *line)
{
  const struct
  {
    const char *key;
    char **value;
  } dsn_lines[] = {
    { "notify", &envelope->notify },
    { "ret", &envelope->ret },
    { "envid", &envelope->envid },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (dsn_lines); i++)
    {
      gsize length = strlen (dsn_lines[i].key);

      if (strncmp (line, dsn_lines[i].key, length) != 0 || line[length] != ' ')
        continue;
      if (*dsn_lines[i].value != NULL)
        return "The envelope has a DSN line twice";
      *dsn_lines[i].value = unescape_value (line + length + 1);
      return *dsn_lines[i].value != NULL ? NULL : "The envelope has a badly escaped DSN line";
    }
  return "The envelope has an unknown line";
}

/* One line after the magic and before the blank line. */
static const char *
take_envelope_line (OutboxMaildropEnvelope *envelope,
                    const char             *line)
{
  g_autofree char *value = NULL;

  if (g_str_has_prefix (line, "from "))
    {
      if (envelope->from != NULL)
        return "The envelope has two “from” lines";
      envelope->from = unescape_value (line + strlen ("from "));
      return envelope->from != NULL ? NULL : "The envelope's sender is badly escaped";
    }
  if (!g_str_has_prefix (line, "recipient "))
    return take_dsn_line (envelope, line);
  if (envelope->recipients->len >= OUTBOX_MESSAGE_MAX_RECIPIENTS)
    return "The envelope has too many recipients";
  value = unescape_value (line + strlen ("recipient "));
  if (value == NULL)
    return "The envelope has a badly escaped recipient";
  g_ptr_array_add (envelope->recipients, g_steal_pointer (&value));
  return NULL;
}

const char *
outbox_maildrop_reader_take_line (OutboxMaildropReader *reader,
                                  const char           *line,
                                  gsize                 length)
{
  g_return_val_if_fail (!reader->complete, "The envelope is complete");

  if (line == NULL)
    return "The file ends inside its envelope";
  if (length > OUTBOX_MAILDROP_MAX_LINE || strlen (line) != length)
    return "The envelope has an overlong line or a NUL byte";
  if (!reader->seen_magic)
    {
      reader->seen_magic = TRUE;
      return g_str_equal (line, OUTBOX_MAILDROP_MAGIC)
                 ? NULL
                 : "Not an Outbox maildrop file: the first line is not “" OUTBOX_MAILDROP_MAGIC "”";
    }
  if (line[0] == '\0')
    {
      reader->complete = TRUE;
      return NULL;
    }
  return take_envelope_line (&reader->envelope, line);
}

gboolean
outbox_maildrop_envelope_parse (const char              *data,
                                gsize                    length,
                                OutboxMaildropEnvelope  *envelope,
                                gsize                   *body_offset,
                                GError                 **error)
{
  g_auto(OutboxMaildropReader) reader = { { NULL, }, };
  gsize position = 0;

  outbox_maildrop_reader_init (&reader);
  while (!reader.complete)
    {
      const char *newline = memchr (data + position, '\n', length - position);
      g_autofree char *line = NULL;
      gsize line_length;
      const char *problem;

      /* Like the daemon's line reader, which gives what ends the file as a
       * last line without a newline. */
      if (newline == NULL && position == length)
        problem = outbox_maildrop_reader_take_line (&reader, NULL, 0);
      else
        {
          line_length = (newline != NULL ? (gsize) (newline - data) : length) - position;
          line = g_strndup (data + position, line_length);
          position += line_length + (newline != NULL ? 1 : 0);
          problem = outbox_maildrop_reader_take_line (&reader, line, line_length);
        }
      if (problem != NULL)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, problem);
          return FALSE;
        }
    }

  *envelope = reader.envelope;
  outbox_maildrop_envelope_init (&reader.envelope);
  *body_offset = position;
  return TRUE;
}
