/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-pop3.h"
#include "outbox-text.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
assert_displayable (const char *text)
{
  g_assert_nonnull (text);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (outbox_text_is_unsafe_char (g_utf8_get_char (p)));
}

/* A STAT answer that parses gives the same numbers once written again. */
static void
check_stat (const char *text)
{
  guint64 messages = 0, octets = 0, messages_again = 0, octets_again = 0;
  g_autofree char *formatted = NULL;

  if (!outbox_pop3_parse_stat (text, &messages, &octets))
    return;
  g_assert_true (g_ascii_isdigit (text[0]));
  formatted = g_strdup_printf ("%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, messages, octets);
  g_assert_true (outbox_pop3_parse_stat (formatted, &messages_again, &octets_again));
  g_assert_cmpuint (messages_again, ==, messages);
  g_assert_cmpuint (octets_again, ==, octets);
}

/* A response code is what stands between the brackets at the start of the
 * text, made of levels of letters, digits and "-". */
static void
check_response_code (const char *text)
{
  g_autofree char *code = outbox_pop3_parse_response_code (text);
  g_autofree char *bracketed = NULL;

  if (code == NULL)
    return;
  g_assert_cmpuint (strlen (code), >, 0);
  g_assert_true (code[0] != '/' && code[strlen (code) - 1] != '/');
  g_assert_null (strstr (code, "//"));
  for (const char *p = code; *p != '\0'; p++)
    g_assert_true (g_ascii_isalnum (*p) || *p == '-' || *p == '/');
  bracketed = g_strdup_printf ("[%s]", code);
  g_assert_true (g_str_has_prefix (text, bracketed));
}

static void
check_text (const char *text)
{
  assert_displayable (text);
  check_stat (text);
  check_response_code (text);
}

/* Every capability line is found by its first word, in any case; every
 * mechanism of a SASL line is found too. */
static void
check_capabilities (const char *const *lines)
{
  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_autofree char *name = g_strndup (lines[i], strcspn (lines[i], " "));
      g_autofree char *upper = g_ascii_strup (name, -1);
      g_autofree char *lower = g_ascii_strdown (name, -1);
      g_auto (GStrv) words = NULL;

      g_assert_true (outbox_pop3_capabilities_have (lines, name));
      g_assert_true (outbox_pop3_capabilities_have (lines, upper));
      g_assert_true (outbox_pop3_capabilities_have (lines, lower));
      if (g_ascii_strcasecmp (name, "SASL") != 0 || lines[i][4] != ' ')
        continue;
      words = g_strsplit (lines[i] + 5, " ", -1);
      for (gsize j = 0; words[j] != NULL; j++)
        g_assert_true (outbox_pop3_capabilities_have_sasl (lines, words[j]));
    }
}

static void
check_reply (const OutboxPop3Reply *reply, OutboxPop3Expect expect, const char *line, gsize len)
{
  gboolean multiline = (expect & OUTBOX_POP3_EXPECT_MULTILINE) != 0;

  check_text (reply->text);
  switch (reply->status)
    {
    case OUTBOX_POP3_STATUS_OK:
      g_assert_true (multiline ? len == 1 && line[0] == '.' : g_str_has_prefix (line, "+OK"));
      break;
    case OUTBOX_POP3_STATUS_ERR:
      g_assert_true (g_str_has_prefix (line, "-ERR"));
      break;
    case OUTBOX_POP3_STATUS_CONTINUATION:
      g_assert_true ((expect & OUTBOX_POP3_EXPECT_CONTINUATION) != 0);
      g_assert_true (line[0] == '+');
      break;
    default:
      g_assert_not_reached ();
    }
  g_assert_true ((reply->lines != NULL) == (multiline && reply->status == OUTBOX_POP3_STATUS_OK));
  if (reply->lines == NULL)
    return;
  g_assert_cmpuint (g_strv_length (reply->lines), <=, OUTBOX_POP3_MAX_REPLY_LINES);
  for (gsize i = 0; reply->lines[i] != NULL; i++)
    check_text (reply->lines[i]);
  check_capabilities ((const char *const *) reply->lines);
}

static void
feed_line (OutboxPop3ReplyParser *parser, OutboxPop3Expect expect, const char *line, gsize len)
{
  g_autoptr (OutboxPop3Reply) reply = NULL;
  g_autoptr (GError) error = NULL;
  gboolean in_body = outbox_pop3_reply_parser_in_body (parser);

  if (outbox_pop3_reply_parser_feed_line (parser, line, len, &reply, &error))
    {
      g_assert_no_error (error);
      if (reply != NULL)
        check_reply (reply, expect, line, len);
      else
        g_assert_true (outbox_pop3_reply_parser_in_body (parser));
      /* Only "+OK" to a command with a body opens one. */
      if (!in_body && outbox_pop3_reply_parser_in_body (parser))
        g_assert_true ((expect & OUTBOX_POP3_EXPECT_MULTILINE) != 0 &&
                       g_str_has_prefix (line, "+OK"));
    }
  else
    {
      g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
      g_assert_null (reply);
      assert_displayable (error->message);
      g_assert_false (outbox_pop3_reply_parser_in_body (parser));
    }
}

/* The first byte picks what the parser expects, a body or a continuation
 * (the seeds start with '0' to '3'); the rest is split into lines at LF,
 * without a CR before it, as the line reader hands them over.  Each line
 * is NUL-terminated for the prefix checks, and may hold NULs of its own. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (OutboxPop3ReplyParser) parser = NULL;
  OutboxPop3Expect expect;
  const char *line;
  const char *end;

  if (size == 0)
    return 0;
  expect = data[0] & (OUTBOX_POP3_EXPECT_MULTILINE | OUTBOX_POP3_EXPECT_CONTINUATION);
  parser = outbox_pop3_reply_parser_new (expect);
  line = (const char *) data + 1;
  end = (const char *) data + size;
  while (line < end)
    {
      const char *lf = memchr (line, '\n', (size_t) (end - line));
      gsize len = lf != NULL ? (gsize) (lf - line) : (gsize) (end - line);
      gsize content = len > 0 && line[len - 1] == '\r' ? len - 1 : len;
      g_autofree char *copy = g_malloc (content + 1);

      memcpy (copy, line, content);
      copy[content] = '\0';
      check_stat (copy);
      check_response_code (copy);
      feed_line (parser, expect, copy, content);
      line += len + 1;
    }
  return 0;
}
