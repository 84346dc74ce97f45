/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-smtp-reply.h"
#include "outbox-text.h"

#include <string.h>

G_DEFINE_QUARK (outbox-smtp-error-quark, outbox_smtp_error)

/* How much of an offending line an error message quotes. */
#define QUOTED_LINE_MAX 80

struct _OutboxSmtpReplyParser
{
  guint code;       /* of the reply in progress; 0 between replies */
  GPtrArray *lines; /* (owned) (element-type utf8) */
};

static char *
quote_line (const char *line, gsize len)
{
  g_autofree char *text = outbox_text_sanitize (line, MIN (len, QUOTED_LINE_MAX));

  if (len > QUOTED_LINE_MAX)
    return g_strdup_printf ("“%s…”", text);
  return g_strdup_printf ("“%s”", text);
}

OutboxSmtpReply *
outbox_smtp_reply_new (guint code, const char *text)
{
  OutboxSmtpReply *reply = g_new0 (OutboxSmtpReply, 1);

  if (text == NULL)
    text = "";

  reply->code = code;
  reply->lines = g_new0 (char *, 2);
  reply->lines[0] = outbox_text_sanitize (text, strlen (text));

  return reply;
}

void
outbox_smtp_reply_free (OutboxSmtpReply *reply)
{
  if (reply == NULL)
    return;

  g_strfreev (reply->lines);
  g_free (reply);
}

char *
outbox_smtp_reply_to_string (const OutboxSmtpReply *reply)
{
  GString *out;

  g_return_val_if_fail (reply != NULL, NULL);

  out = g_string_new (NULL);
  g_string_append_printf (out, "%03u", reply->code);
  for (char **line = reply->lines; line != NULL && *line != NULL; line++)
    {
      if (**line != '\0')
        g_string_append_printf (out, " %s", *line);
    }

  return g_string_free (out, FALSE);
}

OutboxSmtpReplyParser *
outbox_smtp_reply_parser_new (void)
{
  OutboxSmtpReplyParser *parser = g_new0 (OutboxSmtpReplyParser, 1);

  parser->lines = g_ptr_array_new_with_free_func (g_free);

  return parser;
}

void
outbox_smtp_reply_parser_free (OutboxSmtpReplyParser *parser)
{
  if (parser == NULL)
    return;

  g_ptr_array_unref (parser->lines);
  g_free (parser);
}

static void
parser_reset (OutboxSmtpReplyParser *parser)
{
  parser->code = 0;
  g_ptr_array_set_size (parser->lines, 0);
}

static gboolean
is_reply_code (const char *line, gsize len)
{
  return len >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '5' &&
         g_ascii_isdigit (line[2]);
}

static gboolean
protocol_error (OutboxSmtpReplyParser *parser,
                const char *line,
                gsize len,
                const char *problem,
                GError **error)
{
  g_autofree char *quoted = quote_line (line, len);

  parser_reset (parser);
  g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
               "The server sent a malformed reply line %s: %s", quoted, problem);
  return FALSE;
}

static guint
parse_code (const char *line)
{
  return (guint) ((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
}

/* Checks the shape of one line and returns whether it is the last line of
 * its reply. */
static gboolean
check_line (OutboxSmtpReplyParser *parser,
            const char *line,
            gsize len,
            gboolean *out_is_last,
            GError **error)
{
  if (len > OUTBOX_SMTP_REPLY_MAX_LINE)
    return protocol_error (parser, line, len,
                           "the line is longer than " G_STRINGIFY (OUTBOX_SMTP_REPLY_MAX_LINE)
                           " octets", error);
  if (!is_reply_code (line, len))
    return protocol_error (parser, line, len,
                           "it does not start with a reply code from 200 to 559", error);
  if (len > 3 && line[3] != ' ' && line[3] != '-')
    return protocol_error (parser, line, len,
                           "the reply code is not followed by a space or a hyphen", error);
  if (parser->code != 0 && parse_code (line) != parser->code)
    return protocol_error (parser, line, len,
                           "its reply code differs from the first line of the reply", error);
  if (parser->lines->len >= OUTBOX_SMTP_REPLY_MAX_LINES)
    return protocol_error (parser, line, len,
                           "the reply has more than " G_STRINGIFY (OUTBOX_SMTP_REPLY_MAX_LINES)
                           " lines", error);

  *out_is_last = len == 3 || line[3] == ' ';
  return TRUE;
}

static OutboxSmtpReply *
parser_take_reply (OutboxSmtpReplyParser *parser)
{
  OutboxSmtpReply *reply = g_new0 (OutboxSmtpReply, 1);

  g_ptr_array_add (parser->lines, NULL);
  reply->code = parser->code;
  reply->lines = (char **) g_ptr_array_steal (parser->lines, NULL);
  parser->code = 0;

  return reply;
}

gboolean
outbox_smtp_reply_parser_feed (OutboxSmtpReplyParser *parser,
                               const char *line,
                               gsize len,
                               OutboxSmtpReply **out_reply,
                               GError **error)
{
  gboolean is_last = FALSE;

  g_return_val_if_fail (parser != NULL, FALSE);
  g_return_val_if_fail (line != NULL || len == 0, FALSE);
  g_return_val_if_fail (out_reply != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  *out_reply = NULL;

  if (len > 0 && line[len - 1] == '\r')
    len--;

  if (!check_line (parser, line, len, &is_last, error))
    return FALSE;

  parser->code = parse_code (line);
  g_ptr_array_add (parser->lines, len > 4 ? outbox_text_sanitize (line + 4, len - 4) : g_strdup (""));

  if (is_last)
    *out_reply = parser_take_reply (parser);

  return TRUE;
}

static const struct
{
  const char *name;
  OutboxSmtpAuthMechs mech;
} auth_mechanisms[] = {
  { "PLAIN", OUTBOX_SMTP_AUTH_PLAIN },
  { "LOGIN", OUTBOX_SMTP_AUTH_LOGIN },
  { "SCRAM-SHA-1", OUTBOX_SMTP_AUTH_SCRAM_SHA_1 },
  { "SCRAM-SHA-1-PLUS", OUTBOX_SMTP_AUTH_SCRAM_SHA_1_PLUS },
  { "SCRAM-SHA-256", OUTBOX_SMTP_AUTH_SCRAM_SHA_256 },
  { "SCRAM-SHA-256-PLUS", OUTBOX_SMTP_AUTH_SCRAM_SHA_256_PLUS },
  { "OAUTHBEARER", OUTBOX_SMTP_AUTH_OAUTHBEARER },
  { "XOAUTH2", OUTBOX_SMTP_AUTH_XOAUTH2 },
};

static void
add_auth_mechanism (const char *name, OutboxSmtpCaps *caps)
{
  for (gsize i = 0; i < G_N_ELEMENTS (auth_mechanisms); i++)
    {
      if (g_ascii_strcasecmp (name, auth_mechanisms[i].name) == 0)
        caps->auth_mechs |= auth_mechanisms[i].mech;
    }
}

char **
outbox_smtp_auth_mechs_to_strv (OutboxSmtpAuthMechs mechs)
{
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (auth_mechanisms); i++)
    {
      if (mechs & auth_mechanisms[i].mech)
        g_strv_builder_add (names, auth_mechanisms[i].name);
    }
  return g_strv_builder_end (names);
}

static void
parse_auth (char **args, OutboxSmtpCaps *caps)
{
  caps->flags |= OUTBOX_SMTP_CAP_AUTH;
  for (char **arg = args; *arg != NULL; arg++)
    add_auth_mechanism (*arg, caps);
}

/* "SIZE" alone or "SIZE 0" means the server announces no fixed limit. */
static void
parse_size (char **args, OutboxSmtpCaps *caps)
{
  guint64 limit = 0;

  if (args[0] != NULL &&
      (args[1] != NULL || !g_ascii_string_to_unsigned (args[0], 10, 0, G_MAXUINT64, &limit, NULL)))
    return;

  caps->flags |= OUTBOX_SMTP_CAP_SIZE;
  caps->size_limit = limit;
}

static const struct
{
  const char *keyword;
  OutboxSmtpCapFlags flag;
} simple_caps[] = {
  { "PIPELINING", OUTBOX_SMTP_CAP_PIPELINING },
  { "8BITMIME", OUTBOX_SMTP_CAP_8BITMIME },
  { "SMTPUTF8", OUTBOX_SMTP_CAP_SMTPUTF8 },
  { "STARTTLS", OUTBOX_SMTP_CAP_STARTTLS },
  { "ENHANCEDSTATUSCODES", OUTBOX_SMTP_CAP_ENHANCEDSTATUSCODES },
  { "CHUNKING", OUTBOX_SMTP_CAP_CHUNKING },
  { "DSN", OUTBOX_SMTP_CAP_DSN },
};

/* Splits at runs of spaces; a line that starts with a space keeps an empty
 * keyword, which matches nothing. */
static char **
split_words (const char *line)
{
  g_auto (GStrv) pieces = g_strsplit (line, " ", -1);
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (char **piece = pieces; *piece != NULL; piece++)
    {
      if (**piece != '\0' || piece == pieces)
        g_strv_builder_add (builder, *piece);
    }

  return g_strv_builder_end (builder);
}

static void
parse_capability_line (const char *line, OutboxSmtpCaps *caps)
{
  g_auto (GStrv) words = split_words (line);
  const char *keyword = words[0];

  if (keyword == NULL)
    return;

  if (g_ascii_strcasecmp (keyword, "AUTH") == 0)
    parse_auth (words + 1, caps);
  else if (g_ascii_strncasecmp (keyword, "AUTH=", 5) == 0)
    {
      /* The pre-RFC 4954 form, "AUTH=PLAIN LOGIN", that some servers
       * still send next to the standard one. */
      parse_auth (words + 1, caps);
      add_auth_mechanism (keyword + 5, caps);
    }
  else if (g_ascii_strcasecmp (keyword, "SIZE") == 0)
    parse_size (words + 1, caps);
  else
    {
      for (gsize i = 0; i < G_N_ELEMENTS (simple_caps); i++)
        {
          if (g_ascii_strcasecmp (keyword, simple_caps[i].keyword) == 0)
            caps->flags |= simple_caps[i].flag;
        }
    }
}

static gboolean
keyword_is_known (const char *keyword)
{
  if (g_ascii_strcasecmp (keyword, "AUTH") == 0 || g_ascii_strncasecmp (keyword, "AUTH=", 5) == 0 ||
      g_ascii_strcasecmp (keyword, "SIZE") == 0)
    return TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (simple_caps); i++)
    {
      if (g_ascii_strcasecmp (keyword, simple_caps[i].keyword) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
is_ehlo_keyword (const char *word)
{
  if (!g_ascii_isalnum (word[0]))
    return FALSE;
  for (const char *p = word; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '-')
        return FALSE;
    }
  return TRUE;
}

char **
outbox_smtp_caps_ignored_keywords (const OutboxSmtpReply *ehlo_reply)
{
  g_autoptr (GPtrArray) found = g_ptr_array_new_with_free_func (g_free);

  g_return_val_if_fail (ehlo_reply != NULL, NULL);

  for (char **line =
           ehlo_reply->lines != NULL && ehlo_reply->lines[0] != NULL ? ehlo_reply->lines + 1 : NULL;
       line != NULL && *line != NULL; line++)
    {
      g_auto (GStrv) words = split_words (*line);
      g_autofree char *keyword = NULL;

      if (words[0] == NULL || !is_ehlo_keyword (words[0]) || keyword_is_known (words[0]))
        continue;
      keyword = g_ascii_strup (words[0], -1);
      if (!g_ptr_array_find_with_equal_func (found, keyword, g_str_equal, NULL))
        g_ptr_array_add (found, g_steal_pointer (&keyword));
    }
  g_ptr_array_add (found, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&found), FALSE);
}

void
outbox_smtp_caps_parse (const OutboxSmtpReply *ehlo_reply, OutboxSmtpCaps *caps)
{
  g_return_if_fail (ehlo_reply != NULL);
  g_return_if_fail (caps != NULL);

  memset (caps, 0, sizeof *caps);
  if (ehlo_reply->lines == NULL || ehlo_reply->lines[0] == NULL)
    return;

  for (char **line = ehlo_reply->lines + 1; *line != NULL; line++)
    parse_capability_line (*line, caps);
}
