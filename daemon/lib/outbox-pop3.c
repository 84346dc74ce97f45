/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "outbox-line-reader.h"
#include "outbox-pop3.h"
#include "outbox-tls.h"
#include "outbox-transport.h"
#include "outbox-text.h"

/* RFC 2449 section 4: a command line is at most 255 octets, CR LF
 * included. */
#define COMMAND_MAX_LINE (255 - 2)
/* How long QUIT and the close after it may take. */
#define QUIT_TIMEOUT 5

G_DEFINE_QUARK (outbox-pop3-error-quark, outbox_pop3_error)

void
outbox_pop3_timeouts_init_default (OutboxPop3Timeouts *timeouts)
{
  g_return_if_fail (timeouts != NULL);

  timeouts->connect = 60;
  timeouts->greeting = 60;
  timeouts->command = 60;
}

struct _OutboxPop3Session
{
  GObject parent_instance;

  /* Configuration, copied from the OutboxPop3Config. */
  OutboxServerUrl *url;  /* (owned) */
  char *password;        /* (owned) (nullable) wiped before it is freed */
  char *tls_ca_file;     /* (owned) (nullable) */
  char *tls_fingerprint; /* (owned) (nullable) */
  OutboxPop3Timeouts timeouts;
  char *trace_name; /* (owned) "pop3 host:port", prefix of trace lines */

  /* Transport: the protocol code below only uses stream and reader. */
  GSocketConnection *connection;     /* (owned) (nullable) the raw TCP stream */
  GIOStream *stream;                 /* (owned) (nullable) connection, or TLS over it */
  OutboxLineReader *reader;          /* (owned) (nullable) reads stream */
  GTlsCertificate *peer_certificate; /* (owned) (nullable) */

  /* Protocol state. */
  char **capabilities; /* (owned) (nullable) */
  char *last_reply;    /* (owned) (nullable) sanitised status line */
  gboolean ready;      /* open succeeded and nothing broke since */
  gboolean logged_in;
  gboolean busy; /* an operation is running */
};

G_DEFINE_TYPE (OutboxPop3Session, outbox_pop3_session, G_TYPE_OBJECT)

static void
wipe_string (char **secret)
{
  if (*secret == NULL)
    return;
  memset (*secret, 0, strlen (*secret));
  g_clear_pointer (secret, g_free);
}

/* Drops the connection at once, without QUIT or TLS close_notify: used when
 * it is broken or can no longer be trusted. */
static void
session_abort (OutboxPop3Session *self)
{
  self->ready = FALSE;
  self->logged_in = FALSE;
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->reader);
  g_clear_object (&self->stream);
  g_clear_object (&self->connection);
}

static void
outbox_pop3_session_finalize (GObject *object)
{
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (object);

  session_abort (self);
  outbox_server_url_free (self->url);
  wipe_string (&self->password);
  g_free (self->tls_ca_file);
  g_free (self->tls_fingerprint);
  g_free (self->trace_name);
  g_clear_object (&self->peer_certificate);
  g_strfreev (self->capabilities);
  g_free (self->last_reply);

  G_OBJECT_CLASS (outbox_pop3_session_parent_class)->finalize (object);
}

static void
outbox_pop3_session_class_init (OutboxPop3SessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_pop3_session_finalize;
}

static void
outbox_pop3_session_init (OutboxPop3Session *self)
{
}

OutboxPop3Session *
outbox_pop3_session_new (const OutboxPop3Config *config)
{
  OutboxPop3Session *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->url != NULL, NULL);
  g_return_val_if_fail (config->url->protocol == OUTBOX_PROTOCOL_POP3, NULL);

  self = g_object_new (OUTBOX_TYPE_POP3_SESSION, NULL);
  self->url = outbox_server_url_copy (config->url);
  self->password = g_strdup (config->password);
  self->tls_ca_file = g_strdup (config->tls_ca_file);
  self->tls_fingerprint = g_strdup (config->tls_fingerprint);
  self->timeouts = config->timeouts;

  if (strchr (self->url->host, ':') != NULL)
    self->trace_name = g_strdup_printf ("pop3 [%s]:%u", self->url->host, self->url->port);
  else
    self->trace_name = g_strdup_printf ("pop3 %s:%u", self->url->host, self->url->port);

  return self;
}

/* Protocol trace ------------------------------------------------------ */

static void
trace_client (OutboxPop3Session *self, const char *text)
{
  g_debug ("%s C: %s", self->trace_name, text);
}

static void
trace_server (OutboxPop3Session *self, const char *line)
{
  g_autofree char *escaped = g_strescape (line, NULL);

  g_debug ("%s S: %s", self->trace_name, escaped);
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
      g_set_error (error, OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_PROTOCOL,
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
      g_set_error (error, OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_PROTOCOL,
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

/* Step guards ---------------------------------------------------------
 *
 * Every network step runs with its own GCancellable, cancelled either by
 * the caller's cancellable or by a timer; when the timer fired, the
 * resulting G_IO_ERROR_CANCELLED is reported as OUTBOX_POP3_ERROR_TIMEOUT
 * naming the step. */

/* Exchanges -----------------------------------------------------------
 *
 * One exchange writes a command line (unless it awaits the greeting) and
 * reads its reply, with the multi-line body when asked for, under one
 * guard. */

typedef struct
{
  OutboxStepGuard *guard; /* (owned) */
  GBytes *payload;  /* (owned) (nullable) */
  char *verb;       /* (owned) (nullable) what is sent: "CAPA"; NULL for the greeting */
  gboolean writing;              /* still in the write part */
  OutboxPop3ReplyParser *parser; /* (owned) */
} Exchange;

static void
exchange_free (Exchange *exchange)
{
  outbox_step_guard_free (exchange->guard);
  g_clear_pointer (&exchange->payload, g_bytes_unref);
  g_free (exchange->verb);
  outbox_pop3_reply_parser_free (exchange->parser);
  g_free (exchange);
}

/* "greeting" or "reply to CAPA". */
static char *
exchange_awaited (const Exchange *exchange)
{
  if (exchange->verb == NULL)
    return g_strdup ("greeting");
  return g_strdup_printf ("reply to %s", exchange->verb);
}

/* Makes transport errors say what the session was doing. */
static GError *
exchange_error (const Exchange *exchange, GError *error)
{
  g_autofree char *awaited = exchange_awaited (exchange);
  GError *converted;

  if (outbox_step_guard_timed_out (exchange->guard, error) && exchange->writing)
    converted =
        g_error_new (OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_TIMEOUT, "Could not send %s within %u s",
                     exchange->verb, exchange->guard->seconds);
  else if (outbox_step_guard_timed_out (exchange->guard, error))
    converted = g_error_new (OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_TIMEOUT, "No %s within %u s",
                             awaited, exchange->guard->seconds);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    converted = g_error_new (OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_CLOSED,
                             "The server closed the connection before sending the %s", awaited);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE))
    converted = g_error_new (OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_PROTOCOL,
                             "The server sent an overlong line in the %s", awaited);
  else
    return error;

  g_error_free (error);
  return converted;
}

static void
exchange_return_error (GTask *task, GError *error)
{
  g_task_return_error (task, exchange_error (g_task_get_task_data (task), error));
}

static void read_reply_line (GTask *task);

static void
set_last_reply (OutboxPop3Session *self, const char *line, gsize len)
{
  g_free (self->last_reply);
  self->last_reply = outbox_text_sanitize (line, len);
}

static void
reply_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = g_task_get_source_object (task);
  Exchange *exchange = g_task_get_task_data (task);
  g_autofree char *line = NULL;
  OutboxPop3Reply *reply = NULL;
  GError *error = NULL;
  gsize len = 0;

  line = outbox_line_reader_read_line_finish (OUTBOX_LINE_READER (source), result, &len, &error);
  if (line == NULL)
    {
      exchange_return_error (task, error);
      return;
    }
  trace_server (self, line);
  if (!outbox_pop3_reply_parser_in_body (exchange->parser))
    set_last_reply (self, line, len);
  if (!outbox_pop3_reply_parser_feed_line (exchange->parser, line, len, &reply, &error))
    exchange_return_error (task, error);
  else if (reply != NULL)
    g_task_return_pointer (task, reply, (GDestroyNotify) outbox_pop3_reply_free);
  else
    read_reply_line (task);
}

static void
read_reply_line (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);
  Exchange *exchange = g_task_get_task_data (task);

  outbox_line_reader_read_line_async (self->reader, exchange->guard->cancellable, reply_line_read,
                                      g_object_ref (task));
}

static void
payload_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Exchange *exchange = g_task_get_task_data (task);
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      exchange_return_error (task, error);
      return;
    }
  exchange->writing = FALSE;
  g_clear_pointer (&exchange->payload, g_bytes_unref);
  read_reply_line (task);
}

static void
write_payload (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);
  Exchange *exchange = g_task_get_task_data (task);
  gsize len = 0;
  const void *data = g_bytes_get_data (exchange->payload, &len);

  g_output_stream_write_all_async (g_io_stream_get_output_stream (self->stream), data, len,
                                   G_PRIORITY_DEFAULT, exchange->guard->cancellable,
                                   payload_written, g_object_ref (task));
}

/* Writes @payload (nullable: the greeting is only read) and reads one
 * reply; @seconds bounds the whole exchange.  @verb names what is sent in
 * error messages. */
static void
exchange_async (OutboxPop3Session *self,
                GBytes *payload,
                const char *verb,
                OutboxPop3Expect expect,
                guint seconds,
                GCancellable *cancellable,
                GAsyncReadyCallback callback,
                gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  Exchange *exchange = g_new0 (Exchange, 1);

  g_task_set_source_tag (task, exchange_async);
  exchange->guard = outbox_step_guard_new (cancellable, seconds);
  exchange->payload = payload != NULL ? g_bytes_ref (payload) : NULL;
  exchange->verb = g_strdup (verb);
  exchange->parser = outbox_pop3_reply_parser_new (expect);
  exchange->writing = payload != NULL;
  g_task_set_task_data (task, exchange, (GDestroyNotify) exchange_free);

  if (self->stream == NULL)
    {
      g_task_return_new_error (task, OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_CLOSED,
                               "The connection to the server is closed");
      return;
    }
  if (payload != NULL)
    write_payload (task);
  else
    read_reply_line (task);
}

static OutboxPop3Reply *
exchange_finish (OutboxPop3Session *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == exchange_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static GBytes *
command_bytes (const char *line)
{
  char *text = g_strconcat (line, "\r\n", NULL);

  return g_bytes_new_take (text, strlen (text));
}

static void
wipe_and_free (gpointer secret)
{
  char *text = secret;

  wipe_string (&text);
}

/* A command line that carries a credential: the copy is wiped once written. */
static GBytes *
secret_command_bytes (const char *prefix, const char *secret)
{
  char *text = g_strconcat (prefix, secret, "\r\n", NULL);

  return g_bytes_new_with_free_func (text, strlen (text), wipe_and_free, text);
}

/* Sends @line, traced as @trace (which hides credentials), and reads the
 * reply. */
static void
command_async (OutboxPop3Session *self,
               GBytes *line,
               const char *trace,
               const char *verb,
               OutboxPop3Expect expect,
               GCancellable *cancellable,
               GAsyncReadyCallback callback,
               gpointer user_data)
{
  trace_client (self, trace);
  exchange_async (self, line, verb, expect, self->timeouts.command, cancellable, callback,
                  user_data);
}

static void
command_text_async (OutboxPop3Session *self,
                    const char *line,
                    OutboxPop3Expect expect,
                    guint seconds,
                    GCancellable *cancellable,
                    GAsyncReadyCallback callback,
                    gpointer user_data)
{
  g_autoptr (GBytes) bytes = command_bytes (line);

  trace_client (self, line);
  exchange_async (self, bytes, line, expect, seconds, cancellable, callback, user_data);
}

/* Transport set-up ---------------------------------------------------- */

static void
use_connection (OutboxPop3Session *self, GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr (GError) error = NULL;

  /* Commands are small and each waits for its reply: Nagle only adds
   * delay. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("%s: could not set TCP_NODELAY: %s", self->trace_name, error->message);

  self->connection = g_object_ref (connection);
  self->stream = G_IO_STREAM (g_object_ref (connection));
  self->reader =
      outbox_line_reader_new (g_io_stream_get_input_stream (self->stream), OUTBOX_POP3_MAX_REPLY_LINE);
}

/* Replaces the plain stream with @tls.  The old reader goes away with
 * whatever it held (the caller made sure it held nothing), and every
 * capability learned in plaintext is forgotten (RFC 2595 section 4). */
static void
use_tls (OutboxPop3Session *self, GIOStream *tls)
{
  g_clear_object (&self->reader);
  g_set_object (&self->stream, tls);
  self->reader = outbox_line_reader_new (g_io_stream_get_input_stream (tls), OUTBOX_POP3_MAX_REPLY_LINE);
  g_set_object (&self->peer_certificate,
                g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (tls)));
  g_clear_pointer (&self->capabilities, g_strfreev);
}

static gboolean
stream_is_tls (OutboxPop3Session *self)
{
  return G_IS_TLS_CONNECTION (self->stream);
}

/* Security item 5: credentials only over TLS, or in plaintext to this
 * machine when the user asked for +insecure. */
static gboolean
login_allowed_here (OutboxPop3Session *self)
{
  if (stream_is_tls (self))
    return TRUE;
  return self->url->security == OUTBOX_SECURITY_INSECURE &&
         outbox_server_url_is_loopback (self->url);
}

/* The open state machine ----------------------------------------------
 *
 * outbox_pop3_session_open_async() walks these states; each state starts
 * one asynchronous step and the step's callback picks the next state:
 *
 *   OPEN_CONNECT        GSocketClient connects to host:port (connect
 *                       timeout).  Next: OPEN_IMPLICIT_TLS for pop3s,
 *                       OPEN_GREETING otherwise.
 *   OPEN_IMPLICIT_TLS   TLS handshake on the fresh TCP stream (connect
 *                       timeout), then the pin check.  Next: OPEN_GREETING.
 *   OPEN_GREETING       reads the greeting (greeting timeout); only "+OK"
 *                       goes on, to OPEN_CAPA.  "-ERR" fails with
 *                       OUTBOX_POP3_ERROR_REPLY.
 *   OPEN_CAPA           CAPA (RFC 2449); "+OK" and its lines become the
 *                       capabilities, "-ERR" leaves none.  Next, in order of
 *                       need: OPEN_STLS when STLS is required and the stream
 *                       is not TLS yet, OPEN_AUTH when the URL has a user,
 *                       OPEN_DONE.
 *   OPEN_STLS           STLS, which CAPA must have listed (else
 *                       TLS_REQUIRED: without CAPA nothing says the server
 *                       can do it).  "+OK" is the only acceptable answer.
 *                       Any byte already buffered after it was sent before
 *                       the TLS handshake and is an injection attempt
 *                       (CVE-2011-0411 and its POP3 siblings): fail.
 *                       Next: OPEN_STLS_HANDSHAKE.
 *   OPEN_STLS_HANDSHAKE TLS over the raw TCP stream (never over the line
 *                       reader), pin check, a fresh line reader, the
 *                       capabilities forgotten.  Next: OPEN_CAPA again.
 *   OPEN_AUTH           refuses to go on in plaintext (except +insecure to
 *                       loopback) or without a password.  With "SASL PLAIN"
 *                       offered: AUTH PLAIN with the initial response when
 *                       the command fits in 255 octets (RFC 5034 section
 *                       4), next OPEN_AUTH_PLAIN; otherwise USER, next
 *                       OPEN_USER.
 *   OPEN_AUTH_PLAIN     "+OK" logs in (OPEN_DONE); "+ " (only when no
 *                       initial response went out) asks for it:
 *                       OPEN_AUTH_PLAIN_RESPONSE sends it and expects "+OK".
 *   OPEN_USER, OPEN_PASS  USER then PASS, each expecting "+OK".
 *   OPEN_DONE           the session is ready for STAT and QUIT.
 *
 * A "-ERR" to AUTH, USER or PASS fails with OUTBOX_POP3_ERROR_AUTH and the
 * server's text (OUTBOX_POP3_ERROR_REPLY when an RFC 2449 response code
 * blames the server instead); there is exactly one login attempt.  Any
 * failure closes the connection: a half-opened session is never reused. */
typedef enum
{
  OPEN_CONNECT,
  OPEN_IMPLICIT_TLS,
  OPEN_GREETING,
  OPEN_CAPA,
  OPEN_STLS,
  OPEN_STLS_HANDSHAKE,
  OPEN_AUTH,
  OPEN_AUTH_PLAIN,
  OPEN_AUTH_PLAIN_RESPONSE,
  OPEN_USER,
  OPEN_PASS,
  OPEN_DONE,
} OpenState;

typedef struct
{
  OpenState state;
} OpenData;

static void
open_data_free (OpenData *data)
{
  g_free (data);
}

static void open_advance (GTask *task);
static void open_reply_received (GObject *source, GAsyncResult *result, gpointer user_data);

static void
open_fail (GTask *task, GError *error)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  g_debug ("%s: open failed: %s", self->trace_name, error->message);
  session_abort (self);
  self->busy = FALSE;
  g_task_return_error (task, error);
}

static void
open_command (GTask *task, const char *line, OutboxPop3Expect expect)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  command_text_async (self, line, expect, self->timeouts.command, g_task_get_cancellable (task),
                      open_reply_received, g_object_ref (task));
}

/* Connect */

static void
connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GSocketConnection) connection = NULL;
  GError *error = NULL;

  connection = outbox_transport_connect_finish (result, &error);
  if (connection == NULL)
    {
      open_fail (task, error);
      return;
    }
  use_connection (self, connection);
  data->state = self->url->security == OUTBOX_SECURITY_TLS ? OPEN_IMPLICIT_TLS : OPEN_GREETING;
  open_advance (task);
}

static void
open_connect (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  outbox_transport_connect_async (self->url->host, self->url->port, self->timeouts.connect,
                                  OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_TIMEOUT,
                                  g_task_get_cancellable (task), connected, g_object_ref (task));
}

/* TLS handshake, implicit or after STLS */

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GTlsCertificate) offered = NULL;
  GError *error = NULL;

  tls = outbox_transport_handshake_finish (result, &offered, &error);
  if (tls == NULL)
    {
      g_set_object (&self->peer_certificate, offered);
      open_fail (task, error);
      return;
    }
  use_tls (self, tls);
  g_debug ("%s: TLS is up", self->trace_name);
  data->state = data->state == OPEN_IMPLICIT_TLS ? OPEN_GREETING : OPEN_CAPA;
  open_advance (task);
}

static void
open_handshake (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  outbox_transport_handshake_async (G_IO_STREAM (self->connection), self->url->host,
                                    self->url->port, self->tls_ca_file, self->tls_fingerprint,
                                    self->timeouts.connect, OUTBOX_POP3_ERROR,
                                    OUTBOX_POP3_ERROR_TIMEOUT, g_task_get_cancellable (task),
                                    handshake_done, g_object_ref (task));
}

/* Greeting, CAPA, STLS */

static void
open_read_greeting (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  exchange_async (self, NULL, NULL, OUTBOX_POP3_EXPECT_STATUS, self->timeouts.greeting,
                  g_task_get_cancellable (task), open_reply_received, g_object_ref (task));
}

static void
open_send_stls (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  if (!outbox_pop3_session_has_capability (self, "STLS"))
    {
      open_fail (task, g_error_new (OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_TLS_REQUIRED,
                                    "%s:%u does not offer STLS%s, which this account requires; "
                                    "Outbox never falls back to plaintext",
                                    self->url->host, self->url->port,
                                    self->capabilities == NULL ? " (it did not answer CAPA)" : ""));
      return;
    }
  open_command (task, "STLS", OUTBOX_POP3_EXPECT_STATUS);
}

static GError *
reply_error (gint code, const char *what, const OutboxPop3Reply *reply)
{
  return g_error_new (OUTBOX_POP3_ERROR, code, "%s: -ERR%s%s", what, *reply->text ? " " : "",
                      reply->text);
}

static OpenState
state_after_capa (OutboxPop3Session *self)
{
  if (self->url->security == OUTBOX_SECURITY_STARTTLS && !stream_is_tls (self))
    return OPEN_STLS;
  if (self->url->user != NULL)
    return OPEN_AUTH;
  return OPEN_DONE;
}

static gboolean
handle_greeting (OutboxPop3Session *self, OpenData *data, const OutboxPop3Reply *reply, GError **error)
{
  if (reply->status != OUTBOX_POP3_STATUS_OK)
    {
      g_propagate_error (error, reply_error (OUTBOX_POP3_ERROR_REPLY,
                                             "The server did not accept the connection", reply));
      return FALSE;
    }
  data->state = OPEN_CAPA;
  return TRUE;
}

static gboolean
handle_capa (OutboxPop3Session *self, OpenData *data, OutboxPop3Reply *reply, GError **error)
{
  g_clear_pointer (&self->capabilities, g_strfreev);
  if (reply->status == OUTBOX_POP3_STATUS_OK)
    self->capabilities = g_steal_pointer (&reply->lines);
  data->state = state_after_capa (self);
  return TRUE;
}

static gboolean
handle_stls (OutboxPop3Session *self, OpenData *data, const OutboxPop3Reply *reply, GError **error)
{
  if (reply->status != OUTBOX_POP3_STATUS_OK)
    {
      g_propagate_error (error, reply_error (OUTBOX_POP3_ERROR_TLS_REQUIRED,
                                             "The server refused STLS, which this account "
                                             "requires",
                                             reply));
      return FALSE;
    }
  if (outbox_line_reader_has_buffered (self->reader))
    {
      g_set_error (error, OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_INJECTION,
                   "%s:%u sent data after its answer to STLS and before the TLS handshake; "
                   "someone may be tampering with the connection",
                   self->url->host, self->url->port);
      return FALSE;
    }
  data->state = OPEN_STLS_HANDSHAKE;
  return TRUE;
}

/* Login */

static gboolean auth_unavailable (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
auth_unavailable (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (OUTBOX_POP3_ERROR,
                                                OUTBOX_POP3_ERROR_AUTH_UNAVAILABLE, format, args));
  va_end (args);
  return FALSE;
}

static gboolean
check_login_possible (OutboxPop3Session *self, GError **error)
{
  if (!login_allowed_here (self))
    return auth_unavailable (error,
                             "Refusing to send the password for %s over an unencrypted "
                             "connection to %s",
                             self->url->user, self->url->host);
  if (self->password == NULL)
    return auth_unavailable (error, "No password stored for %s on %s", self->url->user,
                             self->url->host);
  return TRUE;
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
  if (has_line_break (self->url->user) || has_line_break (self->password))
    return auth_unavailable (error,
                             "The user name or password for %s contains a line break, which "
                             "USER and PASS cannot carry",
                             self->url->host);
  if (strlen ("USER ") + strlen (self->url->user) > COMMAND_MAX_LINE ||
      strlen ("PASS ") + strlen (self->password) > COMMAND_MAX_LINE)
    return auth_unavailable (error,
                             "The user name or password for %s is too long for USER and PASS "
                             "(at most %u octets per command)",
                             self->url->host, COMMAND_MAX_LINE);
  return TRUE;
}

/* "\0user\0password" in base64 (RFC 4616). */
static char *
plain_initial_response (OutboxPop3Session *self)
{
  gsize user_len = strlen (self->url->user);
  gsize password_len = strlen (self->password);
  gsize len = user_len + password_len + 2;
  char *message = g_malloc0 (len);
  char *encoded;

  memcpy (message + 1, self->url->user, user_len);
  memcpy (message + user_len + 2, self->password, password_len);
  encoded = g_base64_encode ((const guchar *) message, len);
  memset (message, 0, len);
  g_free (message);
  return encoded;
}

static void
open_send_secret (GTask *task,
                  const char *prefix,
                  char *secret,
                  const char *trace,
                  const char *verb,
                  OutboxPop3Expect expect)
{
  OutboxPop3Session *self = g_task_get_source_object (task);
  g_autoptr (GBytes) line = secret_command_bytes (prefix, secret);

  wipe_string (&secret);
  command_async (self, line, trace, verb, expect, g_task_get_cancellable (task),
                 open_reply_received, g_object_ref (task));
}

static void
open_send_auth_plain (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  char *response = plain_initial_response (self);

  data->state = OPEN_AUTH_PLAIN;
  if (strlen ("AUTH PLAIN ") + strlen (response) <= COMMAND_MAX_LINE)
    {
      open_send_secret (task, "AUTH PLAIN ", response, "AUTH PLAIN ****", "AUTH", OUTBOX_POP3_EXPECT_STATUS);
      return;
    }
  wipe_string (&response);
  open_command (task, "AUTH PLAIN", OUTBOX_POP3_EXPECT_CONTINUATION);
}

static void
open_send_auth (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!check_login_possible (self, &error))
    {
      open_fail (task, error);
      return;
    }
  if (outbox_pop3_capabilities_have_sasl ((const char *const *) self->capabilities, "PLAIN"))
    {
      open_send_auth_plain (task);
      return;
    }
  if (!check_user_pass_possible (self, &error))
    {
      open_fail (task, error);
      return;
    }
  data->state = OPEN_USER;
  open_send_secret (task, "USER ", g_strdup (self->url->user), "USER ****", "USER", OUTBOX_POP3_EXPECT_STATUS);
}

static gboolean
handle_login_refused (OutboxPop3Session *self, const OutboxPop3Reply *reply, GError **error)
{
  g_autofree char *what = NULL;

  if (reply_blames_server (reply))
    {
      what = g_strdup_printf ("%s could not log %s in", self->url->host, self->url->user);
      g_propagate_error (error, reply_error (OUTBOX_POP3_ERROR_REPLY, what, reply));
    }
  else
    {
      what = g_strdup_printf ("%s refused the user name or password of %s", self->url->host,
                              self->url->user);
      g_propagate_error (error, reply_error (OUTBOX_POP3_ERROR_AUTH, what, reply));
    }
  return FALSE;
}

static gboolean
handle_login (OutboxPop3Session *self, OpenData *data, const OutboxPop3Reply *reply, GError **error)
{
  if (reply->status == OUTBOX_POP3_STATUS_ERR)
    return handle_login_refused (self, reply, error);
  if (reply->status == OUTBOX_POP3_STATUS_CONTINUATION)
    {
      data->state = OPEN_AUTH_PLAIN_RESPONSE;
      return TRUE;
    }
  if (data->state == OPEN_USER)
    {
      data->state = OPEN_PASS;
      return TRUE;
    }
  g_debug ("%s: logged in as %s", self->trace_name, self->url->user);
  self->logged_in = TRUE;
  data->state = OPEN_DONE;
  return TRUE;
}

static gboolean
open_handle_reply (OutboxPop3Session *self, OpenData *data, OutboxPop3Reply *reply, GError **error)
{
  switch (data->state)
    {
    case OPEN_GREETING:
      return handle_greeting (self, data, reply, error);
    case OPEN_CAPA:
      return handle_capa (self, data, reply, error);
    case OPEN_STLS:
      return handle_stls (self, data, reply, error);
    case OPEN_AUTH_PLAIN:
    case OPEN_AUTH_PLAIN_RESPONSE:
    case OPEN_USER:
    case OPEN_PASS:
      return handle_login (self, data, reply, error);
    case OPEN_CONNECT:
    case OPEN_IMPLICIT_TLS:
    case OPEN_STLS_HANDSHAKE:
    case OPEN_AUTH:
    case OPEN_DONE:
    default:
      g_assert_not_reached ();
    }
}

static void
open_reply_received (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = g_task_get_source_object (task);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  GError *error = NULL;

  reply = exchange_finish (self, result, &error);
  if (reply == NULL || !open_handle_reply (self, g_task_get_task_data (task), reply, &error))
    {
      open_fail (task, error);
      return;
    }
  open_advance (task);
}

static void
open_succeed (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);

  self->ready = TRUE;
  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

static void
open_advance (GTask *task)
{
  OutboxPop3Session *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case OPEN_CONNECT:
      open_connect (task);
      break;
    case OPEN_IMPLICIT_TLS:
    case OPEN_STLS_HANDSHAKE:
      open_handshake (task);
      break;
    case OPEN_GREETING:
      open_read_greeting (task);
      break;
    case OPEN_CAPA:
      open_command (task, "CAPA", OUTBOX_POP3_EXPECT_MULTILINE);
      break;
    case OPEN_STLS:
      open_send_stls (task);
      break;
    case OPEN_AUTH:
      open_send_auth (task);
      break;
    case OPEN_AUTH_PLAIN_RESPONSE:
      open_send_secret (task, "", plain_initial_response (self), "****", "AUTH", OUTBOX_POP3_EXPECT_STATUS);
      break;
    case OPEN_PASS:
      open_send_secret (task, "PASS ", g_strdup (self->password), "PASS ****", "PASS",
                        OUTBOX_POP3_EXPECT_STATUS);
      break;
    case OPEN_DONE:
      open_succeed (task);
      break;
    case OPEN_AUTH_PLAIN:
    case OPEN_USER:
    default:
      g_assert_not_reached ();
    }
}

void
outbox_pop3_session_open_async (OutboxPop3Session *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  OpenData *data;

  g_return_if_fail (OUTBOX_IS_POP3_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_pop3_session_open_async);
  data = g_new0 (OpenData, 1);
  data->state = OPEN_CONNECT;
  g_task_set_task_data (task, data, (GDestroyNotify) open_data_free);

  if (session->busy || session->stream != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The POP3 session is already open or opening");
      return;
    }
  session->busy = TRUE;
  g_clear_pointer (&session->capabilities, g_strfreev);
  g_clear_pointer (&session->last_reply, g_free);
  g_clear_object (&session->peer_certificate);
  open_advance (task);
}

gboolean
outbox_pop3_session_open_finish (OutboxPop3Session *session, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_pop3_session_open_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
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
    return reply_error (OUTBOX_POP3_ERROR_REPLY, "STAT failed", reply);
  session_abort (self);
  return g_error_new (OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_PROTOCOL,
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

  self->busy = FALSE;
  g_task_set_task_data (task, stat, g_free);
  reply = exchange_finish (self, result, &error);
  if (reply == NULL)
    {
      session_abort (self);
      g_task_return_error (task, error);
    }
  else if (reply->status != OUTBOX_POP3_STATUS_OK || !outbox_pop3_parse_stat (reply->text, &stat->messages, &stat->octets))
    g_task_return_error (task, stat_error (self, reply));
  else
    g_task_return_boolean (task, TRUE);
}

static gboolean
operation_can_start (OutboxPop3Session *self, GError **error)
{
  if (self->busy)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                           "The POP3 session is busy with another operation");
      return FALSE;
    }
  if (!outbox_pop3_session_is_open (self))
    {
      g_set_error_literal (error, OUTBOX_POP3_ERROR, OUTBOX_POP3_ERROR_CLOSED,
                           "The POP3 session is not open");
      return FALSE;
    }
  return TRUE;
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
  if (!operation_can_start (session, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  session->busy = TRUE;
  command_text_async (session, "STAT", OUTBOX_POP3_EXPECT_STATUS, session->timeouts.command, cancellable,
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

/* QUIT ---------------------------------------------------------------- */

static void
quit_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = g_task_get_source_object (task);
  GError *error = NULL;

  g_io_stream_close_finish (G_IO_STREAM (source), result, &error);
  session_abort (self);
  self->busy = FALSE;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
quit_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxPop3Session *self = OUTBOX_POP3_SESSION (source);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  OutboxStepGuard *guard;
  GError *error = NULL;

  reply = exchange_finish (self, result, &error);
  if (reply == NULL)
    {
      session_abort (self);
      self->busy = FALSE;
      g_task_return_error (task, error);
      return;
    }
  guard = outbox_step_guard_new (g_task_get_cancellable (task), QUIT_TIMEOUT);
  g_task_set_task_data (task, guard, (GDestroyNotify) outbox_step_guard_free);
  g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, guard->cancellable, quit_closed,
                           g_object_ref (task));
}

void
outbox_pop3_session_quit_async (OutboxPop3Session *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (OUTBOX_IS_POP3_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_pop3_session_quit_async);

  if (session->busy)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The POP3 session is busy with another operation");
      return;
    }
  if (session->stream == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  session->ready = FALSE;
  session->busy = TRUE;
  command_text_async (session, "QUIT", OUTBOX_POP3_EXPECT_STATUS, MIN (session->timeouts.command, QUIT_TIMEOUT),
                      cancellable, quit_replied, g_object_ref (task));
}

gboolean
outbox_pop3_session_quit_finish (OutboxPop3Session *session, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_pop3_session_quit_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Accessors ----------------------------------------------------------- */

gboolean
outbox_pop3_session_is_open (OutboxPop3Session *session)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), FALSE);

  return session->ready && session->stream != NULL;
}

gboolean
outbox_pop3_session_is_logged_in (OutboxPop3Session *session)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), FALSE);

  return session->logged_in && outbox_pop3_session_is_open (session);
}

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

GTlsCertificate *
outbox_pop3_session_get_peer_certificate (OutboxPop3Session *session)
{
  g_return_val_if_fail (OUTBOX_IS_POP3_SESSION (session), NULL);

  return session->peer_certificate;
}
