/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-pop3.h"
#include "outbox-text.h"

/* RFC 2449 section 4: a command line is at most 255 octets, CR LF
 * included. */
#define COMMAND_MAX_LINE (255 - 2)

void
outbox_pop3_timeouts_init_default (OutboxPop3Timeouts *timeouts)
{
  g_return_if_fail (timeouts != NULL);

  timeouts->connect = 60;
  timeouts->greeting = 60;
  timeouts->command = 60;
}

/* Replies ---------------------------------------------------------------
 *
 * A reply is one status line, "+OK text" or "-ERR text" (RFC 1939 section
 * 3), followed for some commands by lines up to a lone "." with the
 * leading dot of the others removed.  During AUTH the server may also
 * answer "+ base64-challenge" (RFC 5034). */

struct _OutboxPop3ReplyParser
{
  OutboxPop3Expect expect;
  OutboxPop3Reply *reply; /* (owned) (nullable) while its body is being read */
  GPtrArray *lines;       /* (owned) (nullable) the body read so far */
};

void
outbox_pop3_reply_free (OutboxPop3Reply *reply)
{
  if (reply == NULL)
    return;
  g_free (reply->text);
  g_strfreev (reply->lines);
  g_free (reply);
}

OutboxPop3ReplyParser *
outbox_pop3_reply_parser_new (OutboxPop3Expect expect)
{
  OutboxPop3ReplyParser *parser = g_new0 (OutboxPop3ReplyParser, 1);

  parser->expect = expect;
  return parser;
}

static void
reply_parser_reset (OutboxPop3ReplyParser *parser)
{
  g_clear_pointer (&parser->reply, outbox_pop3_reply_free);
  g_clear_pointer (&parser->lines, g_ptr_array_unref);
}

void
outbox_pop3_reply_parser_free (OutboxPop3ReplyParser *parser)
{
  if (parser == NULL)
    return;
  reply_parser_reset (parser);
  g_free (parser);
}

/* The length of the status indicator @status at the start of @line, or 0
 * when the line does not start with it followed by a space or the end. */
static gsize
status_prefix (const char *line, gsize len, const char *status)
{
  gsize status_len = strlen (status);

  if (len < status_len || memcmp (line, status, status_len) != 0)
    return 0;
  if (len > status_len && line[status_len] != ' ')
    return 0;
  return status_len;
}

static OutboxPop3Reply *
parse_status_line (const char *line, gsize len, gboolean allow_continuation, GError **error)
{
  g_autoptr (OutboxPop3Reply) reply = g_new0 (OutboxPop3Reply, 1);
  gsize prefix;

  if ((prefix = status_prefix (line, len, "+OK")) > 0)
    reply->status = OUTBOX_POP3_STATUS_OK;
  else if ((prefix = status_prefix (line, len, "-ERR")) > 0)
    reply->status = OUTBOX_POP3_STATUS_ERR;
  else if (allow_continuation && (prefix = status_prefix (line, len, "+")) > 0)
    reply->status = OUTBOX_POP3_STATUS_CONTINUATION;
  else
    {
      g_autofree char *shown = outbox_text_sanitize (line, len);
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                   "The server sent a malformed reply: “%s”", shown);
      return NULL;
    }
  if (prefix < len)
    prefix++;
  reply->text = outbox_text_sanitize (line + prefix, len - prefix);
  return g_steal_pointer (&reply);
}

static gboolean
take_status_line (OutboxPop3ReplyParser *parser,
                  const char *line,
                  gsize len,
                  OutboxPop3Reply **out_reply,
                  GError **error)
{
  gboolean allow_continuation = (parser->expect & OUTBOX_POP3_EXPECT_CONTINUATION) != 0;
  g_autoptr (OutboxPop3Reply) reply = parse_status_line (line, len, allow_continuation, error);

  if (reply == NULL)
    return FALSE;
  if ((parser->expect & OUTBOX_POP3_EXPECT_MULTILINE) != 0 &&
      reply->status == OUTBOX_POP3_STATUS_OK)
    {
      parser->reply = g_steal_pointer (&reply);
      parser->lines = g_ptr_array_new_with_free_func (g_free);
      return TRUE;
    }
  *out_reply = g_steal_pointer (&reply);
  return TRUE;
}

static void
finish_body (OutboxPop3ReplyParser *parser, OutboxPop3Reply **out_reply)
{
  g_ptr_array_add (parser->lines, NULL);
  parser->reply->lines = (char **) g_ptr_array_free (g_steal_pointer (&parser->lines), FALSE);
  *out_reply = g_steal_pointer (&parser->reply);
}

static gboolean
take_body_line (OutboxPop3ReplyParser *parser,
                const char *line,
                gsize len,
                OutboxPop3Reply **out_reply,
                GError **error)
{
  if (len == 1 && line[0] == '.')
    {
      finish_body (parser, out_reply);
      return TRUE;
    }
  if (parser->lines->len >= OUTBOX_POP3_MAX_REPLY_LINES)
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                   "The server sent more than %u lines in a multi-line reply",
                   OUTBOX_POP3_MAX_REPLY_LINES);
      return FALSE;
    }
  if (len > 0 && line[0] == '.')
    g_ptr_array_add (parser->lines, outbox_text_sanitize (line + 1, len - 1));
  else
    g_ptr_array_add (parser->lines, outbox_text_sanitize (line, len));
  return TRUE;
}

gboolean
outbox_pop3_reply_parser_feed_line (OutboxPop3ReplyParser *parser,
                                    const char *line,
                                    gsize len,
                                    OutboxPop3Reply **out_reply,
                                    GError **error)
{
  gboolean ok;

  g_return_val_if_fail (parser != NULL, FALSE);
  g_return_val_if_fail (line != NULL || len == 0, FALSE);
  g_return_val_if_fail (out_reply != NULL && *out_reply == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (parser->reply == NULL)
    ok = take_status_line (parser, line, len, out_reply, error);
  else
    ok = take_body_line (parser, line, len, out_reply, error);
  if (!ok)
    reply_parser_reset (parser);
  return ok;
}

gboolean
outbox_pop3_reply_parser_in_body (OutboxPop3ReplyParser *parser)
{
  g_return_val_if_fail (parser != NULL, FALSE);

  return parser->reply != NULL;
}

/* Reply texts ----------------------------------------------------------- */

static gboolean
parse_decimal (const char **text, guint64 *out)
{
  const char *p = *text;
  guint64 value = 0;

  if (!g_ascii_isdigit (*p))
    return FALSE;
  for (; g_ascii_isdigit (*p); p++)
    {
      guint digit = (guint) (*p - '0');
      if (value > (G_MAXUINT64 - digit) / 10)
        return FALSE;
      value = value * 10 + digit;
    }
  *text = p;
  *out = value;
  return TRUE;
}

gboolean
outbox_pop3_parse_stat (const char *text, guint64 *out_messages, guint64 *out_octets)
{
  const char *p = text;
  guint64 messages, octets;

  g_return_val_if_fail (text != NULL, FALSE);

  if (!parse_decimal (&p, &messages) || *p++ != ' ' || !parse_decimal (&p, &octets) ||
      (*p != '\0' && *p != ' '))
    return FALSE;
  if (out_messages != NULL)
    *out_messages = messages;
  if (out_octets != NULL)
    *out_octets = octets;
  return TRUE;
}

static gboolean
is_response_code_char (char c)
{
  return g_ascii_isalnum (c) || c == '-';
}

/* resp-code = "[" resp-level *("/" resp-level) "]", resp-level = 1*rchar,
 * rchar = ALPHA / DIGIT / "-" (RFC 2449 section 8). */
char *
outbox_pop3_parse_response_code (const char *text)
{
  const char *p;

  g_return_val_if_fail (text != NULL, NULL);

  if (text[0] != '[')
    return NULL;
  p = text + 1;
  for (;;)
    {
      const char *level = p;

      while (is_response_code_char (*p))
        p++;
      if (p == level)
        return NULL;
      if (*p == ']')
        return g_strndup (text + 1, (gsize) (p - (text + 1)));
      if (*p != '/')
        return NULL;
      p++;
    }
}

gboolean
outbox_pop3_capabilities_have (const char *const *capabilities, const char *name)
{
  gsize name_len;

  g_return_val_if_fail (name != NULL, FALSE);

  name_len = strlen (name);
  for (gsize i = 0; capabilities != NULL && capabilities[i] != NULL; i++)
    {
      const char *line = capabilities[i];

      if (g_ascii_strncasecmp (line, name, name_len) == 0 &&
          (line[name_len] == '\0' || line[name_len] == ' '))
        return TRUE;
    }
  return FALSE;
}

gboolean
outbox_pop3_capabilities_have_sasl (const char *const *capabilities, const char *mechanism)
{
  g_return_val_if_fail (mechanism != NULL, FALSE);

  for (gsize i = 0; capabilities != NULL && capabilities[i] != NULL; i++)
    {
      g_auto (GStrv) words = NULL;

      if (g_ascii_strncasecmp (capabilities[i], "SASL ", 5) != 0)
        continue;
      words = g_strsplit (capabilities[i] + 5, " ", -1);
      for (gsize j = 0; words[j] != NULL; j++)
        {
          if (g_ascii_strcasecmp (words[j], mechanism) == 0)
            return TRUE;
        }
    }
  return FALSE;
}

/* RFC 2449 section 8 and RFC 3206: "-ERR [IN-USE]" and "-ERR [SYS/...]"
 * say the login failed for a reason other than the credentials. */
static gboolean
reply_blames_server (const OutboxPop3Reply *reply)
{
  g_autofree char *code = outbox_pop3_parse_response_code (reply->text);

  return code != NULL &&
         (g_ascii_strcasecmp (code, "IN-USE") == 0 || g_ascii_strncasecmp (code, "SYS/", 4) == 0);
}

/* The session -------------------------------------------------------------
 *
 * What POP3 adds to OutboxSession: CAPA for the capabilities, STLS, and
 * AUTH (RFC 5034) or USER and PASS for the sign-in.  There is exactly one
 * sign-in attempt: a "-ERR" to AUTH, USER or PASS fails with
 * OUTBOX_SESSION_ERROR_AUTH and the server's text, or
 * OUTBOX_SESSION_ERROR_REPLY when an RFC 2449 response code blames the
 * server instead. */

struct _OutboxPop3Session
{
  OutboxSession parent_instance;

  OutboxPop3Timeouts timeouts;
  OutboxPop3ReplyParser *parser; /* (owned) (nullable) the reply being read */
  char **capabilities;           /* (owned) (nullable) */
  char *last_reply;              /* (owned) (nullable) sanitised status line */
};

G_DEFINE_TYPE (OutboxPop3Session, outbox_pop3_session, OUTBOX_TYPE_SESSION)

#define SESSION(self) (OUTBOX_SESSION (self))

static void
pop3_begin_reply (OutboxSession *session, guint expect)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);

  outbox_pop3_reply_parser_free (self->parser);
  self->parser = outbox_pop3_reply_parser_new (expect);
}

static gboolean
pop3_feed_line (OutboxSession *session,
                const char *line,
                gsize len,
                gpointer *out_reply,
                GError **error)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);

  if (!outbox_pop3_reply_parser_in_body (self->parser) && outbox_session_reply_matters (session))
    {
      g_free (self->last_reply);
      self->last_reply = outbox_text_sanitize (line, len);
    }
  return outbox_pop3_reply_parser_feed_line (self->parser, line, len,
                                             (OutboxPop3Reply **) out_reply, error);
}

/* Sends @line and reads its reply into @step's callback. */
static void
command (OutboxPop3Session *self,
         const char *line,
         OutboxPop3Expect expect,
         guint seconds,
         GCancellable *cancellable,
         GAsyncReadyCallback callback,
         gpointer user_data)
{
  g_autoptr (GBytes) bytes = outbox_session_line_bytes (line);

  outbox_session_exchange_async (SESSION (self), bytes, line, line, expect, TRUE, seconds,
                                 cancellable, callback, user_data);
}

static void
step_command (GTask *step, const char *line, OutboxPop3Expect expect, GAsyncReadyCallback callback)
{
  OutboxPop3Session *self = g_task_get_source_object (step);

  command (self, line, expect, self->timeouts.command, g_task_get_cancellable (step), callback,
           g_object_ref (step));
}

/* Takes the reply of an exchange for @step; NULL when @step failed. */
static OutboxPop3Reply *
step_reply (GTask *step, GAsyncResult *result)
{
  gpointer reply = NULL;
  GError *error = NULL;

  if (!outbox_session_exchange_finish (g_task_get_source_object (step), result, &reply, &error))
    {
      g_task_return_error (step, error);
      return NULL;
    }
  return reply;
}

static GError *
reply_error (gint code, const char *what, const OutboxPop3Reply *reply)
{
  return g_error_new (OUTBOX_SESSION_ERROR, code, "%s: -ERR%s%s", what, *reply->text ? " " : "",
                      reply->text);
}

/* Greeting, CAPA, STLS */

/* What a "-ERR" (or a "+ ") where "+OK" was needed means for the step. */
typedef GError *(*RefusalFunc) (OutboxPop3Session *self, const OutboxPop3Reply *reply);

/* Completes @step (transfer full) with the reply in @result: TRUE for
 * "+OK", @refused's error for anything else. */
static void
step_expect_ok (GTask *step, GAsyncResult *result, RefusalFunc refused)
{
  g_autoptr (GTask) owned = step;
  g_autoptr (OutboxPop3Reply) reply = step_reply (step, result);

  if (reply == NULL)
    return;
  if (reply->status != OUTBOX_POP3_STATUS_OK)
    g_task_return_error (step, refused (g_task_get_source_object (step), reply));
  else
    g_task_return_boolean (step, TRUE);
}

static GError *
greeting_refused (OutboxPop3Session *self, const OutboxPop3Reply *reply)
{
  return reply_error (OUTBOX_SESSION_ERROR_REPLY, "The server did not accept the connection",
                      reply);
}

static void
greeting_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  step_expect_ok (user_data, result, greeting_refused);
}

static void
pop3_greeting (OutboxSession *session, GTask *step)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);

  outbox_session_exchange_async (session, NULL, NULL, NULL, OUTBOX_POP3_EXPECT_STATUS, TRUE,
                                 self->timeouts.greeting, g_task_get_cancellable (step),
                                 greeting_read, g_object_ref (step));
}

static void
capa_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxPop3Session *self = g_task_get_source_object (step);
  g_autoptr (OutboxPop3Reply) reply = step_reply (step, result);

  if (reply == NULL)
    return;
  g_clear_pointer (&self->capabilities, g_strfreev);
  if (reply->status == OUTBOX_POP3_STATUS_OK)
    self->capabilities = g_steal_pointer (&reply->lines);
  g_task_return_boolean (step, TRUE);
}

static void
pop3_capabilities (OutboxSession *session, GTask *step)
{
  step_command (step, "CAPA", OUTBOX_POP3_EXPECT_MULTILINE, capa_read);
}

/* Without CAPA nothing says the server can do STLS. */
static gboolean
pop3_offers_starttls (OutboxSession *session, const char **out_why)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);

  if (self->capabilities == NULL)
    *out_why = " (it did not answer CAPA)";
  return outbox_pop3_session_has_capability (self, "STLS");
}

static GError *
stls_refused (OutboxPop3Session *self, const OutboxPop3Reply *reply)
{
  return reply_error (OUTBOX_SESSION_ERROR_TLS_REQUIRED,
                      "The server refused STLS, which this account requires", reply);
}

static void
stls_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  step_expect_ok (user_data, result, stls_refused);
}

static void
pop3_starttls (OutboxSession *session, GTask *step)
{
  step_command (step, "STLS", OUTBOX_POP3_EXPECT_STATUS, stls_read);
}

/* RFC 2595 section 4: what CAPA said before TLS is void after it. */
static void
pop3_forget_capabilities (OutboxSession *session)
{
  g_clear_pointer (&OUTBOX_POP3_SESSION (session)->capabilities, g_strfreev);
}

/* Sign-in */

/* "SASL PLAIN SCRAM-SHA-256" lists the mechanisms (RFC 2449 section 6.3). */
static char **
pop3_sasl_mechanisms (OutboxSession *session)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();

  for (gsize i = 0; self->capabilities != NULL && self->capabilities[i] != NULL; i++)
    {
      g_auto (GStrv) words = g_strsplit (self->capabilities[i], " ", -1);

      if (g_ascii_strcasecmp (words[0], "SASL") != 0)
        continue;
      for (gsize j = 1; words[j] != NULL; j++)
        {
          if (*words[j] != '\0')
            g_strv_builder_add (names, words[j]);
        }
    }
  return g_strv_builder_end (names);
}

/* RFC 5034 section 4: the initial response goes with AUTH only when the
 * command fits in 255 octets. */
static gboolean
pop3_initial_response_fits (OutboxSession *session, const char *mechanism, gsize len)
{
  return strlen ("AUTH ") + strlen (mechanism) + 1 + len <= COMMAND_MAX_LINE;
}

static GError *
sign_in_refused (OutboxPop3Session *self, const OutboxPop3Reply *reply)
{
  const OutboxServerUrl *url = outbox_session_get_url (SESSION (self));
  g_autofree char *what = NULL;

  if (reply_blames_server (reply))
    {
      what = g_strdup_printf ("%s could not log %s in", url->host, url->user);
      return reply_error (OUTBOX_SESSION_ERROR_REPLY, what, reply);
    }
  what = g_strdup_printf ("%s refused the user name or password of %s", url->host, url->user);
  return reply_error (OUTBOX_SESSION_ERROR_AUTH, what, reply);
}

static void
auth_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  g_autoptr (OutboxPop3Reply) reply = step_reply (step, result);
  OutboxSessionAuthReply *answer;

  if (reply == NULL)
    return;
  if (reply->status == OUTBOX_POP3_STATUS_ERR)
    {
      g_task_return_error (step, sign_in_refused (g_task_get_source_object (step), reply));
      return;
    }
  answer = g_new0 (OutboxSessionAuthReply, 1);
  answer->status = reply->status == OUTBOX_POP3_STATUS_CONTINUATION
                       ? OUTBOX_SESSION_AUTH_CHALLENGE
                       : OUTBOX_SESSION_AUTH_SUCCESS;
  if (answer->status == OUTBOX_SESSION_AUTH_CHALLENGE)
    answer->text = g_strdup (reply->text);
  g_task_return_pointer (step, answer, (GDestroyNotify) outbox_session_auth_reply_free);
}

static void
pop3_auth_exchange (OutboxSession *session,
                    const char *mechanism,
                    const char *response,
                    GTask *step)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);
  g_autoptr (GBytes) line = NULL;
  g_autofree char *trace = NULL;
  g_autofree char *prefix = NULL;

  if (mechanism == NULL)
    line = outbox_session_secret_line_bytes ("", response, NULL);
  else if (response == NULL)
    line = outbox_session_line_bytes ((prefix = g_strdup_printf ("AUTH %s", mechanism)));
  else
    line = outbox_session_secret_line_bytes ((prefix = g_strdup_printf ("AUTH %s ", mechanism)),
                                             response, NULL);
  if (mechanism == NULL)
    trace = g_strdup ("****");
  else
    trace = g_strdup_printf ("AUTH %s%s", mechanism, response != NULL ? " ****" : "");
  outbox_session_exchange_async (session, line, trace, "AUTH",
                                 OUTBOX_POP3_EXPECT_CONTINUATION, TRUE, self->timeouts.command,
                                 g_task_get_cancellable (step), auth_read, g_object_ref (step));
}

static gboolean
has_line_break (const char *text)
{
  return strpbrk (text, "\r\n") != NULL;
}

/* USER and PASS carry the name and password as they are: a line break in
 * either would start a command of the server's choosing. */
static gboolean
check_user_pass_possible (OutboxPop3Session *self, GError **error)
{
  const OutboxServerUrl *url = outbox_session_get_url (SESSION (self));
  const char *password = outbox_session_get_secret (SESSION (self));

  if (has_line_break (url->user) || has_line_break (password))
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE,
                   "The user name or password for %s contains a line break, which USER and "
                   "PASS cannot carry",
                   url->host);
      return FALSE;
    }
  if (strlen ("USER ") + strlen (url->user) > COMMAND_MAX_LINE ||
      strlen ("PASS ") + strlen (password) > COMMAND_MAX_LINE)
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE,
                   "The user name or password for %s is too long for USER and PASS (at most "
                   "%u octets per command)",
                   url->host, COMMAND_MAX_LINE);
      return FALSE;
    }
  return TRUE;
}

static void
pass_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  step_expect_ok (user_data, result, sign_in_refused);
}

static void
send_secret_command (GTask *step,
                     const char *verb,
                     const char *secret,
                     GAsyncReadyCallback callback)
{
  OutboxPop3Session *self = g_task_get_source_object (step);
  g_autofree char *prefix = g_strdup_printf ("%s ", verb);
  g_autofree char *trace = g_strdup_printf ("%s ****", verb);
  g_autoptr (GBytes) line = outbox_session_secret_line_bytes (prefix, secret, NULL);

  outbox_session_exchange_async (SESSION (self), line, trace, verb, OUTBOX_POP3_EXPECT_STATUS,
                                 TRUE, self->timeouts.command, g_task_get_cancellable (step),
                                 callback, g_object_ref (step));
}

static void
user_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  g_autoptr (OutboxPop3Reply) reply = step_reply (step, result);

  if (reply == NULL)
    return;
  if (reply->status != OUTBOX_POP3_STATUS_OK)
    {
      g_task_return_error (step, sign_in_refused (g_task_get_source_object (step), reply));
      return;
    }
  send_secret_command (step, "PASS", outbox_session_get_secret (OUTBOX_SESSION (source)),
                       pass_read);
}

/* USER and PASS (RFC 1939 section 7), for servers without SASL. */
static void
pop3_login (OutboxSession *session, GTask *step)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);
  GError *error = NULL;

  if (!check_user_pass_possible (self, &error))
    {
      g_task_return_error (step, error);
      return;
    }
  send_secret_command (step, "USER", outbox_session_get_url (session)->user, user_read);
}

/* QUIT */

static void
quit_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  g_autoptr (OutboxPop3Reply) reply = step_reply (step, result);

  if (reply != NULL)
    g_task_return_boolean (step, TRUE);
}

static void
pop3_quit (OutboxSession *session, GTask *step)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (session);

  command (self, "QUIT", OUTBOX_POP3_EXPECT_STATUS,
           MIN (self->timeouts.command, OUTBOX_SESSION_QUIT_TIMEOUT), g_task_get_cancellable (step),
           quit_read, g_object_ref (step));
}

/* The type */

static void
outbox_pop3_session_finalize (GObject *object)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (object);

  outbox_pop3_reply_parser_free (self->parser);
  g_strfreev (self->capabilities);
  g_free (self->last_reply);

  G_OBJECT_CLASS (outbox_pop3_session_parent_class)->finalize (object);
}

static void
outbox_pop3_session_init (OutboxPop3Session *self)
{
}

OutboxPop3Session *
outbox_pop3_session_new (const OutboxPop3Config *config)
{
  OutboxPop3Session *self;

  g_return_val_if_fail (config != NULL && config->url != NULL, NULL);
  g_return_val_if_fail (config->url->protocol == OUTBOX_PROTOCOL_POP3, NULL);

  self = g_object_new (OUTBOX_TYPE_POP3_SESSION, NULL);
  self->timeouts = config->timeouts;
  outbox_session_configure (SESSION (self),
                            &OUTBOX_SESSION_CONFIG_OF (config, config->timeouts.connect,
                                                       config->timeouts.greeting,
                                                       config->timeouts.command));
  return self;
}

static void
outbox_pop3_session_class_init (OutboxPop3SessionClass *klass)
{
  OutboxSessionClass *session_class = OUTBOX_SESSION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = outbox_pop3_session_finalize;
  OUTBOX_SESSION_CLASS_IMPLEMENT (session_class, pop3, "pop3", "STLS", "reply",
                                  OUTBOX_POP3_MAX_REPLY_LINE, outbox_pop3_reply_free);
  session_class->begin_reply = pop3_begin_reply;
  session_class->login = pop3_login;
}

/* STAT ---------------------------------------------------------------- */

typedef struct
{
  guint64 messages;
  guint64 octets;
} StatResult;

static GError *
stat_error (OutboxPop3Session *self, const OutboxPop3Reply *reply)
{
  if (reply->status == OUTBOX_POP3_STATUS_ERR)
    return reply_error (OUTBOX_SESSION_ERROR_REPLY, "STAT failed", reply);
  outbox_session_abort (SESSION (self));
  return g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                      "The server sent a malformed answer to STAT: “+OK %s”", reply->text);
}

static void
stat_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (source);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  StatResult *stat = g_new0 (StatResult, 1);
  GError *error = NULL;

  outbox_session_end_operation (SESSION (self));
  g_task_set_task_data (task, stat, g_free);
  if (!outbox_session_exchange_finish (SESSION (self), result, (gpointer *) &reply, &error))
    {
      outbox_session_abort (SESSION (self));
      g_task_return_error (task, error);
    }
  else if (reply->status != OUTBOX_POP3_STATUS_OK ||
           !outbox_pop3_parse_stat (reply->text, &stat->messages, &stat->octets))
    g_task_return_error (task, stat_error (self, reply));
  else
    g_task_return_boolean (task, TRUE);
}

void
outbox_pop3_session_stat_async (OutboxPop3Session *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  GError *error = NULL;

  g_return_if_fail (OUTBOX_IS_POP3_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_pop3_session_stat_async);
  if (!outbox_session_begin_operation (SESSION (session), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  command (session, "STAT", OUTBOX_POP3_EXPECT_STATUS, session->timeouts.command, cancellable,
           stat_replied, g_object_ref (task));
}

gboolean
outbox_pop3_session_stat_finish (OutboxPop3Session *session,
                                 GAsyncResult *result,
                                 guint64 *out_messages,
                                 guint64 *out_octets,
                                 GError **error)
{
  StatResult *stat;

  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_pop3_session_stat_async,
                        FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  stat = g_task_get_task_data (G_TASK (result));
  if (out_messages != NULL)
    *out_messages = stat->messages;
  if (out_octets != NULL)
    *out_octets = stat->octets;
  return TRUE;
}

/* Accessors ----------------------------------------------------------- */

const char *const *
outbox_pop3_session_get_capabilities (OutboxPop3Session *session)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), NULL);

  return (const char *const *) session->capabilities;
}

gboolean
outbox_pop3_session_has_capability (OutboxPop3Session *session, const char *name)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  return outbox_pop3_capabilities_have ((const char *const *) session->capabilities, name);
}

const char *
outbox_pop3_session_get_last_reply (OutboxPop3Session *session)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), NULL);

  return session->last_reply;
}
