/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-smtp-reply.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
assert_displayable (const char *text)
{
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (g_unichar_iscntrl (g_utf8_get_char (p)));
}

static void
check_reply (const OutboxSmtpReply *reply)
{
  g_autofree char *text = outbox_smtp_reply_to_string (reply);
  OutboxSmtpCaps caps;

  g_assert_cmpuint (reply->code / 100, >=, 2);
  g_assert_cmpuint (reply->code / 100, <=, 5);
  g_assert_cmpuint (reply->code / 10 % 10, <=, 5);
  g_assert_cmpuint (g_strv_length (reply->lines), >=, 1);
  g_assert_cmpuint (g_strv_length (reply->lines), <=, OUTBOX_SMTP_REPLY_MAX_LINES);
  for (char **line = reply->lines; *line != NULL; line++)
    assert_displayable (*line);
  assert_displayable (text);

  outbox_smtp_caps_parse (reply, &caps);
  if (caps.auth_mechs != 0)
    g_assert_true (caps.flags & OUTBOX_SMTP_CAP_AUTH);
}

/* Feeds the input line by line (split at LF) as a line reader would. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (OutboxSmtpReplyParser) parser = outbox_smtp_reply_parser_new ();
  const char *line = (const char *) data;
  const char *end = line + size;

  while (line < end)
    {
      const char *lf = memchr (line, '\n', end - line);
      gsize len = lf != NULL ? (gsize) (lf - line) : (gsize) (end - line);
      g_autoptr (OutboxSmtpReply) reply = NULL;
      g_autoptr (GError) error = NULL;

      if (outbox_smtp_reply_parser_feed (parser, line, len, &reply, &error))
        {
          g_assert_no_error (error);
          if (reply != NULL)
            check_reply (reply);
        }
      else
        {
          g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
          g_assert_null (reply);
          assert_displayable (error->message);
        }
      line += len + 1;
    }

  return 0;
}
