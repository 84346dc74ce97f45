/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-line-reader.h"
#include "outbox-smtp-data.h"
#include "outbox-smtp-session.h"
#include "outbox-tls.h"
#include "outbox-transport.h"

/* RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets,
 * CR LF included. */
#define COMMAND_MAX_LINE 512
/* The message body is read and written in blocks of this size, so memory
 * stays bounded whatever the size of the message. */
#define BODY_CHUNK (64 * 1024)
/* Pipelined commands are written in groups no larger than this, so that a
 * server that stops reading while its replies pile up cannot deadlock us. */
#define PIPELINE_BATCH 100
/* How long QUIT and the close after it may take. */
#define QUIT_TIMEOUT 5

void
outbox_smtp_timeouts_init_default (OutboxSmtpTimeouts *timeouts)
{
  g_return_if_fail (timeouts != NULL);

  timeouts->connect = 60;
  timeouts->greeting = 300;
  timeouts->command = 300;
  timeouts->data_init = 120;
  timeouts->data_block = 180;
  timeouts->data_final = 600;
}

void
outbox_smtp_send_result_free (OutboxSmtpSendResult *result)
{
  if (result == NULL)
    return;

  g_clear_pointer (&result->rcpt_replies, g_ptr_array_unref);
  outbox_smtp_reply_free (result->stop_reply);
  outbox_smtp_reply_free (result->final_reply);
  g_clear_error (&result->error);
  g_free (result);
}

struct _OutboxSmtpSession
{
  GObject parent_instance;

  /* Configuration, copied from the OutboxSmtpConfig. */
  OutboxServerUrl *url;  /* (owned) */
  char *password;        /* (owned) (nullable) wiped before it is freed */
  char *tls_ca_file;     /* (owned) (nullable) */
  char *tls_fingerprint; /* (owned) (nullable) */
  char *auth_mech;       /* (owned) (nullable) */
  char *helo_name;       /* (owned) (nullable) until connected */
  OutboxSmtpTimeouts timeouts;
  char *trace_name; /* (owned) "smtp host:port", prefix of trace lines */

  /* Transport: the protocol code below only uses stream and reader. */
  GSocketConnection *connection;     /* (owned) (nullable) the raw TCP stream */
  GIOStream *stream;                 /* (owned) (nullable) connection, or TLS over it */
  OutboxLineReader *reader;          /* (owned) (nullable) reads stream */
  OutboxSmtpReplyParser *parser;     /* (owned) */
  GTlsCertificate *peer_certificate; /* (owned) (nullable) */

  /* Protocol state. */
  OutboxSmtpCaps caps;
  OutboxSmtpReply *last_reply; /* (owned) (nullable) */
  gboolean ready;              /* open succeeded and nothing broke since */
  gboolean needs_reset;        /* the last transaction stopped half-way: RSET */
  gboolean busy;               /* an operation is running */
};

G_DEFINE_TYPE (OutboxSmtpSession, outbox_smtp_session, G_TYPE_OBJECT)

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
session_abort (OutboxSmtpSession *self)
{
  self->ready = FALSE;
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->reader);
  g_clear_object (&self->stream);
  g_clear_object (&self->connection);
}

static void
outbox_smtp_session_finalize (GObject *object)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (object);

  session_abort (self);
  outbox_server_url_free (self->url);
  wipe_string (&self->password);
  g_free (self->tls_ca_file);
  g_free (self->tls_fingerprint);
  g_free (self->auth_mech);
  g_free (self->helo_name);
  g_free (self->trace_name);
  outbox_smtp_reply_parser_free (self->parser);
  g_clear_object (&self->peer_certificate);
  outbox_smtp_reply_free (self->last_reply);

  G_OBJECT_CLASS (outbox_smtp_session_parent_class)->finalize (object);
}

static void
outbox_smtp_session_class_init (OutboxSmtpSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_smtp_session_finalize;
}

static void
outbox_smtp_session_init (OutboxSmtpSession *self)
{
  self->parser = outbox_smtp_reply_parser_new ();
}

OutboxSmtpSession *
outbox_smtp_session_new (const OutboxSmtpConfig *config)
{
  OutboxSmtpSession *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->url != NULL, NULL);

  self = g_object_new (OUTBOX_TYPE_SMTP_SESSION, NULL);
  self->url = outbox_server_url_copy (config->url);
  self->password = g_strdup (config->password);
  self->tls_ca_file = g_strdup (config->tls_ca_file);
  self->tls_fingerprint = g_strdup (config->tls_fingerprint);
  self->auth_mech = g_strdup (config->auth_mech);
  self->helo_name = g_strdup (config->helo_name);
  self->timeouts = config->timeouts;

  if (strchr (self->url->host, ':') != NULL)
    self->trace_name = g_strdup_printf ("smtp [%s]:%u", self->url->host, self->url->port);
  else
    self->trace_name = g_strdup_printf ("smtp %s:%u", self->url->host, self->url->port);

  return self;
}

/* Protocol trace ------------------------------------------------------ */

static void
trace_client (OutboxSmtpSession *self, const char *text)
{
  g_debug ("%s C: %s", self->trace_name, text);
}

static void
trace_server (OutboxSmtpSession *self, const char *line)
{
  g_autofree char *escaped = g_strescape (line, NULL);

  g_debug ("%s S: %s", self->trace_name, escaped);
}

/* Commands on the wire ------------------------------------------------ */

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

static OutboxSmtpReply *
reply_copy (const OutboxSmtpReply *reply)
{
  OutboxSmtpReply *copy = g_new0 (OutboxSmtpReply, 1);

  copy->code = reply->code;
  copy->lines = g_strdupv (reply->lines);
  return copy;
}

static void
set_last_reply (OutboxSmtpSession *self, const OutboxSmtpReply *reply)
{
  outbox_smtp_reply_free (self->last_reply);
  self->last_reply = reply_copy (reply);
}

static GError *
reply_error (gint code, const char *what, const OutboxSmtpReply *reply)
{
  g_autofree char *text = outbox_smtp_reply_to_string (reply);

  return g_error_new (OUTBOX_SMTP_ERROR, code, "%s: %s", what, text);
}

/* Step guards ---------------------------------------------------------
 *
 * Every network step runs with its own GCancellable, cancelled either by
 * the caller's cancellable or by a timer; when the timer fired, the
 * resulting G_IO_ERROR_CANCELLED is reported as OUTBOX_SMTP_ERROR_TIMEOUT
 * naming the step. */

/* Exchanges -----------------------------------------------------------
 *
 * One exchange writes a payload (a command, several pipelined commands or
 * a block of message data), reads one reply, or both, under one guard. */

typedef struct
{
  OutboxStepGuard *guard; /* (owned) */
  GBytes *payload;  /* (owned) (nullable) */
  gboolean read_reply;
  gboolean writing; /* still in the write part */
  char *verb;       /* (owned) (nullable) what is sent: "RCPT"; NULL for the greeting */
} Exchange;

static void
exchange_free (Exchange *exchange)
{
  outbox_step_guard_free (exchange->guard);
  g_clear_pointer (&exchange->payload, g_bytes_unref);
  g_free (exchange->verb);
  g_free (exchange);
}

/* "greeting" or "reply to RCPT". */
static char *
exchange_awaited (const Exchange *exchange)
{
  if (exchange->verb == NULL)
    return g_strdup ("greeting");
  return g_strdup_printf ("reply to %s", exchange->verb);
}

static GError *
exchange_timeout_error (const Exchange *exchange)
{
  g_autofree char *awaited = exchange_awaited (exchange);

  if (exchange->writing)
    return g_error_new (OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_TIMEOUT,
                        "Could not send %s within %u s", exchange->verb, exchange->guard->seconds);
  return g_error_new (OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_TIMEOUT, "No %s within %u s", awaited,
                      exchange->guard->seconds);
}

/* Makes transport errors say what the session was doing. */
static GError *
exchange_error (const Exchange *exchange, GError *error)
{
  g_autofree char *awaited = exchange_awaited (exchange);
  GError *converted;

  if (outbox_step_guard_timed_out (exchange->guard, error))
    converted = exchange_timeout_error (exchange);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    converted = g_error_new (OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_CLOSED,
                             "The server closed the connection before sending the %s", awaited);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE))
    converted = g_error_new (OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_PROTOCOL,
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
reply_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSmtpSession *self = g_task_get_source_object (task);
  g_autoptr (OutboxSmtpReply) reply = NULL;
  g_autofree char *line = NULL;
  GError *error = NULL;
  gsize len = 0;

  line = outbox_line_reader_read_line_finish (OUTBOX_LINE_READER (source), result, &len, &error);
  if (line == NULL)
    {
      exchange_return_error (task, error);
      return;
    }
  trace_server (self, line);
  if (!outbox_smtp_reply_parser_feed (self->parser, line, len, &reply, &error))
    {
      exchange_return_error (task, error);
      return;
    }
  if (reply == NULL)
    {
      read_reply_line (task);
      return;
    }
  set_last_reply (self, reply);
  g_task_return_pointer (task, g_steal_pointer (&reply), (GDestroyNotify) outbox_smtp_reply_free);
}

static void
read_reply_line (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
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
  if (exchange->read_reply)
    read_reply_line (task);
  else
    g_task_return_pointer (task, NULL, NULL);
}

static void
write_payload (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  Exchange *exchange = g_task_get_task_data (task);
  gsize len = 0;
  const void *data = g_bytes_get_data (exchange->payload, &len);

  g_output_stream_write_all_async (g_io_stream_get_output_stream (self->stream), data, len,
                                   G_PRIORITY_DEFAULT, exchange->guard->cancellable,
                                   payload_written, g_object_ref (task));
}

/* Writes @payload (nullable) and then, when @read_reply, reads one reply;
 * @seconds bounds the whole exchange.  @verb names what is sent in error
 * messages; NULL stands for the greeting. */
static void
exchange_async (OutboxSmtpSession *self,
                GBytes *payload,
                gboolean read_reply,
                guint seconds,
                const char *verb,
                GCancellable *cancellable,
                GAsyncReadyCallback callback,
                gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  Exchange *exchange = g_new0 (Exchange, 1);

  g_task_set_source_tag (task, exchange_async);
  exchange->guard = outbox_step_guard_new (cancellable, seconds);
  exchange->payload = payload != NULL ? g_bytes_ref (payload) : NULL;
  exchange->read_reply = read_reply;
  exchange->writing = payload != NULL;
  exchange->verb = g_strdup (verb);
  g_task_set_task_data (task, exchange, (GDestroyNotify) exchange_free);

  if (self->stream == NULL)
    {
      g_task_return_new_error (task, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_CLOSED,
                               "The connection to the server is closed");
      return;
    }
  if (payload != NULL)
    write_payload (task);
  else
    read_reply_line (task);
}

/* Returns FALSE on error; otherwise *out_reply is the reply, or NULL for
 * an exchange that only writes. */
static gboolean
exchange_finish (OutboxSmtpSession *self,
                 GAsyncResult *result,
                 OutboxSmtpReply **out_reply,
                 GError **error)
{
  GError *local_error = NULL;
  OutboxSmtpReply *reply;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == exchange_async, FALSE);

  reply = g_task_propagate_pointer (G_TASK (result), &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (out_reply != NULL)
    *out_reply = reply;
  else
    outbox_smtp_reply_free (reply);
  return TRUE;
}

/* Sends one command line (traced as @trace, which hides credentials) and
 * reads its reply. */
static void
command_async (OutboxSmtpSession *self,
               GBytes *line,
               const char *trace,
               const char *verb,
               guint seconds,
               GCancellable *cancellable,
               GAsyncReadyCallback callback,
               gpointer user_data)
{
  trace_client (self, trace);
  exchange_async (self, line, TRUE, seconds, verb, cancellable, callback, user_data);
}

static void
command_text_async (OutboxSmtpSession *self,
                    const char *line,
                    const char *verb,
                    guint seconds,
                    GCancellable *cancellable,
                    GAsyncReadyCallback callback,
                    gpointer user_data)
{
  g_autoptr (GBytes) bytes = command_bytes (line);

  command_async (self, bytes, line, verb, seconds, cancellable, callback, user_data);
}

/* Transport set-up ---------------------------------------------------- */

static char *
address_literal (GSocketAddress *address)
{
  GInetAddress *inet;
  g_autofree char *text = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return g_strdup ("[127.0.0.1]");
  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  text = g_inet_address_to_string (inet);
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[IPv6:%s]", text);
  return g_strdup_printf ("[%s]", text);
}

static void
use_connection (OutboxSmtpSession *self, GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr (GError) error = NULL;

  /* Commands are small and each waits for its reply: Nagle only adds
   * delay. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("%s: could not set TCP_NODELAY: %s", self->trace_name, error->message);

  if (self->helo_name == NULL)
    {
      g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (connection, NULL);
      self->helo_name = address_literal (local);
    }
  self->connection = g_object_ref (connection);
  self->stream = G_IO_STREAM (g_object_ref (connection));
  self->reader = outbox_line_reader_new (g_io_stream_get_input_stream (self->stream),
                                         OUTBOX_SMTP_REPLY_MAX_LINE);
}

/* Replaces the plain stream with @tls.  The old reader goes away with
 * whatever it held (the caller made sure it held nothing), and every
 * capability learned in plaintext is forgotten. */
static void
use_tls (OutboxSmtpSession *self, GIOStream *tls)
{
  g_clear_object (&self->reader);
  g_set_object (&self->stream, tls);
  self->reader =
      outbox_line_reader_new (g_io_stream_get_input_stream (tls), OUTBOX_SMTP_REPLY_MAX_LINE);
  g_set_object (&self->peer_certificate,
                g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (tls)));
  memset (&self->caps, 0, sizeof self->caps);
}

static gboolean
stream_is_tls (OutboxSmtpSession *self)
{
  return G_IS_TLS_CONNECTION (self->stream);
}

/* Security item 5: credentials only over TLS, or in plaintext to this
 * machine when the user asked for +insecure. */
static gboolean
auth_allowed (OutboxSmtpSession *self)
{
  if (stream_is_tls (self))
    return TRUE;
  return self->url->security == OUTBOX_SECURITY_INSECURE &&
         outbox_server_url_is_loopback (self->url);
}

static gboolean
helo_name_is_valid (const char *name)
{
  if (*name == '\0' || strlen (name) > 255)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    {
      if (!g_ascii_isgraph (*p))
        return FALSE;
    }
  return TRUE;
}

/* The open state machine ----------------------------------------------
 *
 * outbox_smtp_session_open_async() walks these states; each state starts
 * one asynchronous step and the step's callback picks the next state:
 *
 *   OPEN_CONNECT        GSocketClient connects to host:port (connect
 *                       timeout).  Next: OPEN_IMPLICIT_TLS for smtps,
 *                       OPEN_GREETING otherwise.
 *   OPEN_IMPLICIT_TLS   TLS handshake on the fresh TCP stream (connect
 *                       timeout), then the pin check.  Next: OPEN_GREETING.
 *   OPEN_GREETING       reads the greeting (greeting timeout); only 220
 *                       goes on, to OPEN_EHLO.  Anything else (554, 421)
 *                       fails with OUTBOX_SMTP_ERROR_REPLY.
 *   OPEN_EHLO           EHLO; 250 fills the capabilities.  Next, in order
 *                       of need: OPEN_STARTTLS when STARTTLS is required and
 *                       the stream is not TLS yet, OPEN_AUTH when the URL
 *                       has a user, OPEN_DONE.  A 500-502, 504 or 550
 *                       answer leads to OPEN_HELO when neither TLS nor AUTH
 *                       is needed; otherwise the open fails.
 *   OPEN_HELO           HELO for servers that do not know EHLO; no
 *                       capabilities.  Next: OPEN_DONE.
 *   OPEN_STARTTLS       STARTTLS, which must have been offered; 220 is the
 *                       only acceptable answer (else TLS_REQUIRED).  Any
 *                       byte already buffered after that 220 was sent before
 *                       the TLS handshake and is an injection attempt
 *                       (CVE-2011-0411): fail.  Next: OPEN_STARTTLS_HANDSHAKE.
 *   OPEN_STARTTLS_HANDSHAKE  TLS over the raw TCP stream (never over the
 *                       line reader), pin check, a fresh line reader, all
 *                       capabilities forgotten.  Next: OPEN_EHLO again.
 *   OPEN_AUTH           refuses to go on in plaintext (except +insecure to
 *                       loopback) or without a password; picks PLAIN or
 *                       LOGIN.  PLAIN sends the initial response and expects
 *                       235; LOGIN expects 334 and goes to
 *                       OPEN_AUTH_LOGIN_USER then OPEN_AUTH_LOGIN_PASSWORD,
 *                       each sending one base64 line.  Next: OPEN_DONE.
 *   OPEN_DONE           the session is ready for transactions.
 *
 * Any failure closes the connection: a half-opened session is never
 * reused. */
typedef enum
{
  OPEN_CONNECT,
  OPEN_IMPLICIT_TLS,
  OPEN_GREETING,
  OPEN_EHLO,
  OPEN_HELO,
  OPEN_STARTTLS,
  OPEN_STARTTLS_HANDSHAKE,
  OPEN_AUTH,
  OPEN_AUTH_LOGIN_USER,
  OPEN_AUTH_LOGIN_PASSWORD,
  OPEN_DONE,
} OpenState;

typedef struct
{
  OpenState state;
  OutboxSmtpAuthMechs mech; /* the one in use during OPEN_AUTH* */
} OpenData;

static void
open_data_free (OpenData *data)
{
  g_free (data);
}

static void open_advance (GTask *task);

static void
open_fail (GTask *task, GError *error)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  g_debug ("%s: open failed: %s", self->trace_name, error->message);
  session_abort (self);
  self->busy = FALSE;
  g_task_return_error (task, error);
}

static void open_reply_received (GObject *source, GAsyncResult *result, gpointer user_data);

static void
open_command (GTask *task, const char *line, const char *verb)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  command_text_async (self, line, verb, self->timeouts.command, g_task_get_cancellable (task),
                      open_reply_received, g_object_ref (task));
}

/* Connect */

static void
connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSmtpSession *self = g_task_get_source_object (task);
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
  OutboxSmtpSession *self = g_task_get_source_object (task);

  outbox_transport_connect_async (self->url->host, self->url->port, self->timeouts.connect,
                                  OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_TIMEOUT,
                                  g_task_get_cancellable (task), connected, g_object_ref (task));
}

/* TLS handshake, implicit or after STARTTLS */

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSmtpSession *self = g_task_get_source_object (task);
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
  data->state = data->state == OPEN_IMPLICIT_TLS ? OPEN_GREETING : OPEN_EHLO;
  open_advance (task);
}

static void
open_handshake (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  outbox_transport_handshake_async (G_IO_STREAM (self->connection), self->url->host,
                                    self->url->port, self->tls_ca_file, self->tls_fingerprint,
                                    self->timeouts.connect, OUTBOX_SMTP_ERROR,
                                    OUTBOX_SMTP_ERROR_TIMEOUT, g_task_get_cancellable (task),
                                    handshake_done, g_object_ref (task));
}

/* Greeting, EHLO, HELO, STARTTLS */

static void
open_read_greeting (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  exchange_async (self, NULL, TRUE, self->timeouts.greeting, NULL, g_task_get_cancellable (task),
                  open_reply_received, g_object_ref (task));
}

static void
open_send_hello (GTask *task, const char *verb)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  g_autofree char *line = g_strdup_printf ("%s %s", verb, self->helo_name);

  open_command (task, line, verb);
}

static void
open_send_starttls (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  if (!(self->caps.flags & OUTBOX_SMTP_CAP_STARTTLS))
    {
      open_fail (task, g_error_new (OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_TLS_REQUIRED,
                                    "%s:%u does not offer STARTTLS, which this account requires; "
                                    "Outbox never falls back to plaintext",
                                    self->url->host, self->url->port));
      return;
    }
  open_command (task, "STARTTLS", "STARTTLS");
}

static gboolean
ehlo_refusal_allows_helo (OutboxSmtpSession *self, const OutboxSmtpReply *reply)
{
  switch (reply->code)
    {
    case 500:
    case 501:
    case 502:
    case 504:
    case 550:
      return self->url->security == OUTBOX_SECURITY_INSECURE && self->url->user == NULL;
    default:
      return FALSE;
    }
}

static OpenState
state_after_hello (OutboxSmtpSession *self)
{
  if (self->url->security == OUTBOX_SECURITY_STARTTLS && !stream_is_tls (self))
    return OPEN_STARTTLS;
  if (self->url->user != NULL)
    return OPEN_AUTH;
  return OPEN_DONE;
}

static gboolean
handle_greeting (OutboxSmtpSession *self,
                 OpenData *data,
                 const OutboxSmtpReply *reply,
                 GError **error)
{
  if (reply->code != 220)
    {
      g_propagate_error (error, reply_error (OUTBOX_SMTP_ERROR_REPLY,
                                             "The server did not accept the connection", reply));
      return FALSE;
    }
  data->state = OPEN_EHLO;
  return TRUE;
}

static gboolean
handle_ehlo (OutboxSmtpSession *self, OpenData *data, const OutboxSmtpReply *reply, GError **error)
{
  if (reply->code == 250)
    {
      memset (&self->caps, 0, sizeof self->caps);
      outbox_smtp_caps_parse (reply, &self->caps);
      data->state = state_after_hello (self);
      return TRUE;
    }
  if (ehlo_refusal_allows_helo (self, reply))
    {
      data->state = OPEN_HELO;
      return TRUE;
    }
  g_propagate_error (error, reply_error (OUTBOX_SMTP_ERROR_REPLY, "EHLO failed", reply));
  return FALSE;
}

static gboolean
handle_helo (OutboxSmtpSession *self, OpenData *data, const OutboxSmtpReply *reply, GError **error)
{
  if (reply->code != 250)
    {
      g_propagate_error (error, reply_error (OUTBOX_SMTP_ERROR_REPLY, "HELO failed", reply));
      return FALSE;
    }
  memset (&self->caps, 0, sizeof self->caps);
  data->state = state_after_hello (self);
  return TRUE;
}

static gboolean
handle_starttls (OutboxSmtpSession *self,
                 OpenData *data,
                 const OutboxSmtpReply *reply,
                 GError **error)
{
  if (reply->code != 220)
    {
      g_propagate_error (error, reply_error (OUTBOX_SMTP_ERROR_TLS_REQUIRED,
                                             "The server refused STARTTLS, which this account "
                                             "requires",
                                             reply));
      return FALSE;
    }
  if (outbox_line_reader_has_buffered (self->reader))
    {
      g_set_error (error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_INJECTION,
                   "%s:%u sent data after its answer to STARTTLS and before the TLS handshake; "
                   "someone may be tampering with the connection",
                   self->url->host, self->url->port);
      return FALSE;
    }
  data->state = OPEN_STARTTLS_HANDSHAKE;
  return TRUE;
}

/* AUTH */

static gboolean auth_unavailable (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
auth_unavailable (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (OUTBOX_SMTP_ERROR,
                                                OUTBOX_SMTP_ERROR_AUTH_UNAVAILABLE, format, args));
  va_end (args);
  return FALSE;
}

static gboolean
choose_mechanism (OutboxSmtpSession *self, OutboxSmtpAuthMechs *out_mech, GError **error)
{
  OutboxSmtpAuthMechs offered = 0;

  if (self->caps.flags & OUTBOX_SMTP_CAP_AUTH)
    offered = self->caps.auth_mechs;

  if (self->auth_mech != NULL)
    {
      if (g_ascii_strcasecmp (self->auth_mech, "PLAIN") == 0)
        *out_mech = OUTBOX_SMTP_AUTH_PLAIN;
      else if (g_ascii_strcasecmp (self->auth_mech, "LOGIN") == 0)
        *out_mech = OUTBOX_SMTP_AUTH_LOGIN;
      else
        return auth_unavailable (error,
                                 "Unsupported authentication mechanism “%s”; use PLAIN "
                                 "or LOGIN",
                                 self->auth_mech);
      if (!(offered & *out_mech))
        return auth_unavailable (error, "The server does not offer AUTH %s", self->auth_mech);
      return TRUE;
    }
  if (offered & OUTBOX_SMTP_AUTH_PLAIN)
    *out_mech = OUTBOX_SMTP_AUTH_PLAIN;
  else if (offered & OUTBOX_SMTP_AUTH_LOGIN)
    *out_mech = OUTBOX_SMTP_AUTH_LOGIN;
  else
    return auth_unavailable (error, "The server offers no authentication mechanism that Outbox "
                                    "supports (PLAIN, LOGIN)");
  return TRUE;
}

static gboolean
check_auth_possible (OutboxSmtpSession *self, GError **error)
{
  if (!auth_allowed (self))
    return auth_unavailable (error,
                             "Refusing to send the password for %s over an unencrypted "
                             "connection to %s",
                             self->url->user, self->url->host);
  if (self->password == NULL)
    return auth_unavailable (error, "No password stored for %s on %s", self->url->user,
                             self->url->host);
  return TRUE;
}

static char *
base64_secret (const char *secret, gsize len)
{
  return g_base64_encode ((const guchar *) secret, len);
}

/* "\0user\0password" in base64 (RFC 4616). */
static char *
plain_initial_response (OutboxSmtpSession *self)
{
  gsize user_len = strlen (self->url->user);
  gsize password_len = strlen (self->password);
  gsize len = user_len + password_len + 2;
  char *message = g_malloc0 (len);
  char *encoded;

  memcpy (message + 1, self->url->user, user_len);
  memcpy (message + user_len + 2, self->password, password_len);
  encoded = base64_secret (message, len);
  memset (message, 0, len);
  g_free (message);
  return encoded;
}

static void
open_send_secret (GTask *task, const char *prefix, char *secret, const char *trace)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  g_autoptr (GBytes) line = secret_command_bytes (prefix, secret);

  wipe_string (&secret);
  command_async (self, line, trace, "AUTH", self->timeouts.command, g_task_get_cancellable (task),
                 open_reply_received, g_object_ref (task));
}

static void
open_send_auth (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!check_auth_possible (self, &error) || !choose_mechanism (self, &data->mech, &error))
    {
      open_fail (task, error);
      return;
    }
  if (data->mech == OUTBOX_SMTP_AUTH_PLAIN)
    open_send_secret (task, "AUTH PLAIN ", plain_initial_response (self), "AUTH PLAIN ****");
  else
    open_command (task, "AUTH LOGIN", "AUTH");
}

static void
open_send_login_step (GTask *task, const char *secret)
{
  open_send_secret (task, "", base64_secret (secret, strlen (secret)), "****");
}

static gboolean
handle_auth_failure (OutboxSmtpSession *self, const OutboxSmtpReply *reply, GError **error)
{
  if (reply->code == 535 || reply->code == 534)
    g_propagate_error (error, reply_error (OUTBOX_SMTP_ERROR_AUTH,
                                           "The server refused the user name or password", reply));
  else
    g_propagate_error (error,
                       reply_error (OUTBOX_SMTP_ERROR_REPLY, "Authentication failed", reply));
  return FALSE;
}

static gboolean
handle_auth (OutboxSmtpSession *self, OpenData *data, const OutboxSmtpReply *reply, GError **error)
{
  gboolean login_prompt =
      data->mech == OUTBOX_SMTP_AUTH_LOGIN && data->state != OPEN_AUTH_LOGIN_PASSWORD;

  if (login_prompt && reply->code == 334)
    {
      data->state = data->state == OPEN_AUTH ? OPEN_AUTH_LOGIN_USER : OPEN_AUTH_LOGIN_PASSWORD;
      return TRUE;
    }
  if (!login_prompt && reply->code == 235)
    {
      g_debug ("%s: authenticated as %s", self->trace_name, self->url->user);
      data->state = OPEN_DONE;
      return TRUE;
    }
  return handle_auth_failure (self, reply, error);
}

static gboolean
open_handle_reply (OutboxSmtpSession *self,
                   OpenData *data,
                   const OutboxSmtpReply *reply,
                   GError **error)
{
  switch (data->state)
    {
    case OPEN_GREETING:
      return handle_greeting (self, data, reply, error);
    case OPEN_EHLO:
      return handle_ehlo (self, data, reply, error);
    case OPEN_HELO:
      return handle_helo (self, data, reply, error);
    case OPEN_STARTTLS:
      return handle_starttls (self, data, reply, error);
    case OPEN_AUTH:
    case OPEN_AUTH_LOGIN_USER:
    case OPEN_AUTH_LOGIN_PASSWORD:
      return handle_auth (self, data, reply, error);
    case OPEN_CONNECT:
    case OPEN_IMPLICIT_TLS:
    case OPEN_STARTTLS_HANDSHAKE:
    case OPEN_DONE:
    default:
      g_assert_not_reached ();
    }
}

static void
open_reply_received (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSmtpSession *self = g_task_get_source_object (task);
  g_autoptr (OutboxSmtpReply) reply = NULL;
  GError *error = NULL;

  if (!exchange_finish (self, result, &reply, &error) ||
      !open_handle_reply (self, g_task_get_task_data (task), reply, &error))
    {
      open_fail (task, error);
      return;
    }
  open_advance (task);
}

static void
open_succeed (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  self->ready = TRUE;
  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

static void
open_advance (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case OPEN_CONNECT:
      open_connect (task);
      break;
    case OPEN_IMPLICIT_TLS:
    case OPEN_STARTTLS_HANDSHAKE:
      open_handshake (task);
      break;
    case OPEN_GREETING:
      open_read_greeting (task);
      break;
    case OPEN_EHLO:
      open_send_hello (task, "EHLO");
      break;
    case OPEN_HELO:
      open_send_hello (task, "HELO");
      break;
    case OPEN_STARTTLS:
      open_send_starttls (task);
      break;
    case OPEN_AUTH:
      open_send_auth (task);
      break;
    case OPEN_AUTH_LOGIN_USER:
      open_send_login_step (task, self->url->user);
      break;
    case OPEN_AUTH_LOGIN_PASSWORD:
      open_send_login_step (task, self->password);
      break;
    case OPEN_DONE:
    default:
      open_succeed (task);
      break;
    }
}

void
outbox_smtp_session_open_async (OutboxSmtpSession *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  OpenData *data;

  g_return_if_fail (OUTBOX_IS_SMTP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_smtp_session_open_async);
  data = g_new0 (OpenData, 1);
  data->state = OPEN_CONNECT;
  g_task_set_task_data (task, data, (GDestroyNotify) open_data_free);

  if (session->busy || session->stream != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The SMTP session is already open or busy");
      return;
    }
  if (session->helo_name != NULL && !helo_name_is_valid (session->helo_name))
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "Invalid HELO name: it must be printable ASCII without spaces");
      return;
    }
  session->busy = TRUE;
  open_advance (task);
}

gboolean
outbox_smtp_session_open_finish (OutboxSmtpSession *session, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_smtp_session_open_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The transaction state machine ---------------------------------------
 *
 * outbox_smtp_session_send_async() walks these states:
 *
 *   SEND_RSET      only when the previous transaction stopped half-way:
 *                  RSET, expecting 250.  Next: SEND_ENVELOPE.
 *   SEND_ENVELOPE  MAIL FROM then one RCPT TO per recipient.  Without
 *                  PIPELINING each command waits for its reply; with it,
 *                  MAIL and the RCPTs go out in one write (in groups of
 *                  PIPELINE_BATCH) and the replies are read in order.  A
 *                  refused MAIL becomes the stop reply; the RCPT replies
 *                  already on their way are read and dropped.  Next:
 *                  SEND_DATA when a recipient was accepted, else SEND_DONE
 *                  with the transaction marked for RSET.
 *   SEND_DATA      DATA, expecting 354 (data_init timeout); anything else
 *                  is the stop reply.  Next: SEND_BODY.
 *   SEND_BODY      reads the body in BODY_CHUNK blocks, normalises and
 *                  dot-stuffs each and writes it (data_block timeout per
 *                  block); at the end of the body, the terminating dot.  A
 *                  body read error drops the connection without the dot,
 *                  so the server discards the message.  Next:
 *                  SEND_FINAL_REPLY.
 *   SEND_FINAL_REPLY  the reply to the dot (data_final timeout).  If the
 *                  connection fails here the outcome is unknown: the server
 *                  may have taken the message.
 *   SEND_DONE      the result goes to the caller.
 *
 * A 421 at any point is recorded as the stop (or final) reply and closes
 * the session; so do transport errors and timeouts, recorded as the
 * result's error. */
typedef enum
{
  SEND_RSET,
  SEND_ENVELOPE,
  SEND_DATA,
  SEND_BODY,
  SEND_FINAL_REPLY,
  SEND_DONE,
} SendState;

typedef struct
{
  SendState state;
  GPtrArray *commands; /* (owned) MAIL, then one RCPT per recipient */
  gboolean pipelining;
  guint n_written;  /* commands written so far */
  guint n_answered; /* replies read so far */
  guint n_accepted; /* recipients accepted */
  gboolean mail_refused;
  GInputStream *body; /* (owned) */
  guint8 *chunk;      /* (owned) BODY_CHUNK bytes */
  OutboxSmtpDataEncoder encoder;
  gboolean body_finished; /* the block being written ends with the dot */
  gboolean dot_written;
  gboolean holds_session;       /* this transaction set the session busy */
  OutboxSmtpSendResult *result; /* (owned) */
} SendData;

static void
send_data_free (SendData *data)
{
  g_clear_pointer (&data->commands, g_ptr_array_unref);
  g_clear_object (&data->body);
  g_free (data->chunk);
  outbox_smtp_send_result_free (data->result);
  g_free (data);
}

static void send_advance (GTask *task);

static void
send_finish_with_error (GTask *task, GError *error)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  SendData *data = g_task_get_task_data (task);

  g_debug ("%s: transaction failed: %s", self->trace_name, error->message);
  g_clear_error (&data->result->error);
  data->result->error = error;
  data->result->unknown_outcome = data->dot_written;
  session_abort (self);
  data->state = SEND_DONE;
  send_advance (task);
}

static void send_reply_received (GObject *source, GAsyncResult *result, gpointer user_data);

static void
send_command (GTask *task, const char *line, const char *verb, guint seconds)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  command_text_async (self, line, verb, seconds, g_task_get_cancellable (task), send_reply_received,
                      g_object_ref (task));
}

static void
send_read_reply (GTask *task, const char *verb, guint seconds)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);

  exchange_async (self, NULL, TRUE, seconds, verb, g_task_get_cancellable (task),
                  send_reply_received, g_object_ref (task));
}

/* Envelope */

static void
pipeline_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  if (!exchange_finish (OUTBOX_SMTP_SESSION (source), result, NULL, &error))
    {
      send_finish_with_error (task, error);
      return;
    }
  send_advance (task);
}

static void
send_pipeline_batch (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  SendData *data = g_task_get_task_data (task);
  guint end = MIN (data->n_written + PIPELINE_BATCH, data->commands->len);
  GString *batch = g_string_new (NULL);
  g_autoptr (GBytes) bytes = NULL;

  for (; data->n_written < end; data->n_written++)
    {
      const char *line = g_ptr_array_index (data->commands, data->n_written);
      trace_client (self, line);
      g_string_append_printf (batch, "%s\r\n", line);
    }
  bytes = g_string_free_to_bytes (batch);
  exchange_async (self, bytes, FALSE, self->timeouts.command, "the envelope",
                  g_task_get_cancellable (task), pipeline_written, g_object_ref (task));
}

static void
send_envelope_step (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  SendData *data = g_task_get_task_data (task);
  const char *verb = data->n_answered == 0 ? "MAIL" : "RCPT";

  if (data->n_answered < data->n_written)
    send_read_reply (task, verb, self->timeouts.command);
  else if (data->pipelining)
    send_pipeline_batch (task);
  else
    send_command (task, g_ptr_array_index (data->commands, data->n_written++), verb,
                  self->timeouts.command);
}

static SendState
state_after_envelope (OutboxSmtpSession *self, SendData *data)
{
  if (data->mail_refused && data->n_answered == data->n_written)
    {
      self->needs_reset = TRUE;
      return SEND_DONE;
    }
  if (data->n_answered < data->commands->len)
    return SEND_ENVELOPE;
  if (data->n_accepted == 0)
    {
      self->needs_reset = TRUE;
      return SEND_DONE;
    }
  return SEND_DATA;
}

/* RCPT replies after a refused MAIL say nothing about the recipients: they
 * are left out, so that the stop reply applies to everyone. */
static void
handle_envelope_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  guint index = data->n_answered++;

  if (index == 0 && !outbox_smtp_reply_is_positive (reply))
    {
      data->mail_refused = TRUE;
      data->result->stop_reply = reply_copy (reply);
    }
  else if (index > 0 && !data->mail_refused)
    {
      if (outbox_smtp_reply_is_positive (reply))
        data->n_accepted++;
      g_ptr_array_index (data->result->rcpt_replies, index - 1) = reply_copy (reply);
    }
  data->state = state_after_envelope (self, data);
}

/* Body */

static void body_block_written (GObject *source, GAsyncResult *result, gpointer user_data);

static void
send_body_block (GTask *task, GByteArray *encoded, const char *verb)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  g_autoptr (GBytes) bytes = g_byte_array_free_to_bytes (encoded);

  exchange_async (self, bytes, FALSE, self->timeouts.data_block, verb,
                  g_task_get_cancellable (task), body_block_written, g_object_ref (task));
}

static void
body_chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SendData *data = g_task_get_task_data (task);
  GByteArray *encoded;
  GError *error = NULL;
  gssize n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (n_read < 0)
    {
      g_prefix_error (&error, "Could not read the message: ");
      send_finish_with_error (task, error);
      return;
    }
  encoded = g_byte_array_sized_new ((guint) n_read + 64);
  if (n_read == 0)
    {
      outbox_smtp_data_encoder_finish (&data->encoder, encoded);
      data->body_finished = TRUE;
      send_body_block (task, encoded, "the end of the message");
      return;
    }
  outbox_smtp_data_encoder_process (&data->encoder, data->chunk, (gsize) n_read, encoded);
  send_body_block (task, encoded, "message data");
}

static void
send_read_body (GTask *task)
{
  SendData *data = g_task_get_task_data (task);

  g_input_stream_read_async (data->body, data->chunk, BODY_CHUNK, G_PRIORITY_DEFAULT,
                             g_task_get_cancellable (task), body_chunk_read, g_object_ref (task));
}

static void
body_block_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SendData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!exchange_finish (OUTBOX_SMTP_SESSION (source), result, NULL, &error))
    {
      send_finish_with_error (task, error);
      return;
    }
  if (!data->body_finished)
    {
      send_read_body (task);
      return;
    }
  trace_client (g_task_get_source_object (task), ".");
  data->dot_written = TRUE;
  data->state = SEND_FINAL_REPLY;
  send_advance (task);
}

/* Replies */

static void
handle_closing_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  if (data->state == SEND_ENVELOPE && data->n_answered > 0 && !data->mail_refused)
    g_ptr_array_index (data->result->rcpt_replies, data->n_answered - 1) = reply_copy (reply);
  if (data->state == SEND_FINAL_REPLY)
    data->result->final_reply = reply_copy (reply);
  else
    data->result->stop_reply = reply_copy (reply);
  g_debug ("%s: the server is closing the connection", self->trace_name);
  session_abort (self);
  data->state = SEND_DONE;
}

/* A server that refuses RSET is in a state nobody can reason about: its
 * answer stops the transaction and the connection is dropped. */
static void
handle_reset_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  if (reply->code == 250)
    {
      self->needs_reset = FALSE;
      data->state = SEND_ENVELOPE;
      return;
    }
  data->result->stop_reply = reply_copy (reply);
  session_abort (self);
  data->state = SEND_DONE;
}

static void
handle_send_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  switch (data->state)
    {
    case SEND_RSET:
      handle_reset_reply (self, data, reply);
      break;
    case SEND_ENVELOPE:
      handle_envelope_reply (self, data, reply);
      break;
    case SEND_DATA:
      data->state = reply->code == 354 ? SEND_BODY : SEND_DONE;
      if (reply->code != 354)
        {
          data->result->stop_reply = reply_copy (reply);
          self->needs_reset = TRUE;
        }
      break;
    case SEND_FINAL_REPLY:
      data->result->final_reply = reply_copy (reply);
      self->needs_reset = FALSE;
      data->state = SEND_DONE;
      break;
    case SEND_BODY:
    case SEND_DONE:
    default:
      g_assert_not_reached ();
    }
}

static void
send_reply_received (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (source);
  SendData *data = g_task_get_task_data (task);
  g_autoptr (OutboxSmtpReply) reply = NULL;
  GError *error = NULL;

  if (!exchange_finish (self, result, &reply, &error))
    {
      send_finish_with_error (task, error);
      return;
    }
  if (reply->code == 421)
    handle_closing_reply (self, data, reply);
  else
    handle_send_reply (self, data, reply);
  send_advance (task);
}

static void
send_advance (GTask *task)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  SendData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case SEND_RSET:
      send_command (task, "RSET", "RSET", self->timeouts.command);
      break;
    case SEND_ENVELOPE:
      send_envelope_step (task);
      break;
    case SEND_DATA:
      send_command (task, "DATA", "DATA", self->timeouts.data_init);
      break;
    case SEND_BODY:
      send_read_body (task);
      break;
    case SEND_FINAL_REPLY:
      send_read_reply (task, "the end of the message", self->timeouts.data_final);
      break;
    case SEND_DONE:
    default:
      if (data->holds_session)
        self->busy = FALSE;
      g_task_return_pointer (task, g_steal_pointer (&data->result),
                             (GDestroyNotify) outbox_smtp_send_result_free);
      break;
    }
}

/* Preparing the envelope */

static gboolean unsupported (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
unsupported (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (
      error, g_error_new_valist (OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_UNSUPPORTED, format, args));
  va_end (args);
  return FALSE;
}

static gboolean
validate_envelope (const char *from, const char *const *rcpts, gboolean *out_ascii, GError **error)
{
  gboolean ascii = outbox_address_is_ascii (from);

  if (rcpts[0] == NULL)
    {
      g_set_error_literal (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                           "The message has no recipient");
      return FALSE;
    }
  if (!outbox_address_validate (from, TRUE, error))
    return FALSE;
  for (gsize i = 0; rcpts[i] != NULL; i++)
    {
      if (!outbox_address_validate (rcpts[i], FALSE, error))
        return FALSE;
      ascii = ascii && outbox_address_is_ascii (rcpts[i]);
    }
  *out_ascii = ascii;
  return TRUE;
}

static gboolean
check_extensions (OutboxSmtpSession *self,
                  guint64 body_size,
                  OutboxSmtpSendFlags flags,
                  GError **error)
{
  if ((flags & OUTBOX_SMTP_SEND_8BITMIME) && !(self->caps.flags & OUTBOX_SMTP_CAP_8BITMIME))
    return unsupported (error, "The message contains 8-bit data but %s does not offer 8BITMIME",
                        self->url->host);
  if ((flags & OUTBOX_SMTP_SEND_SMTPUTF8) && !(self->caps.flags & OUTBOX_SMTP_CAP_SMTPUTF8))
    return unsupported (error,
                        "The message has non-ASCII addresses but %s does not offer "
                        "SMTPUTF8",
                        self->url->host);
  if ((self->caps.flags & OUTBOX_SMTP_CAP_SIZE) && self->caps.size_limit != 0 &&
      body_size > self->caps.size_limit)
    return unsupported (error,
                        "The message is %" G_GUINT64_FORMAT " bytes but %s accepts at "
                        "most %" G_GUINT64_FORMAT,
                        body_size, self->url->host, self->caps.size_limit);
  return TRUE;
}

static char *
format_mail_command (OutboxSmtpSession *self,
                     const char *from,
                     guint64 body_size,
                     OutboxSmtpSendFlags flags)
{
  GString *line = g_string_new (NULL);

  g_string_append_printf (line, "MAIL FROM:<%s>", from);
  if (self->caps.flags & OUTBOX_SMTP_CAP_SIZE)
    g_string_append_printf (line, " SIZE=%" G_GUINT64_FORMAT, body_size);
  if (flags & OUTBOX_SMTP_SEND_8BITMIME)
    g_string_append (line, " BODY=8BITMIME");
  if (flags & OUTBOX_SMTP_SEND_SMTPUTF8)
    g_string_append (line, " SMTPUTF8");
  return g_string_free (line, FALSE);
}

static gboolean
check_command_lengths (GPtrArray *commands, GError **error)
{
  for (guint i = 0; i < commands->len; i++)
    {
      const char *line = g_ptr_array_index (commands, i);
      if (strlen (line) + 2 > COMMAND_MAX_LINE)
        {
          g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
                       "An SMTP command would be longer than %u octets", COMMAND_MAX_LINE);
          return FALSE;
        }
    }
  return TRUE;
}

/* Security items 11 and 12: the addresses are checked once more right
 * before they go into command lines, and the message must fit what the
 * server offers. */
static GPtrArray *
prepare_envelope (OutboxSmtpSession *self,
                  const char *from,
                  const char *const *rcpts,
                  guint64 body_size,
                  OutboxSmtpSendFlags flags,
                  GError **error)
{
  g_autoptr (GPtrArray) commands = g_ptr_array_new_with_free_func (g_free);
  gboolean ascii = TRUE;

  if (!validate_envelope (from, rcpts, &ascii, error))
    return NULL;
  if (!ascii)
    flags |= OUTBOX_SMTP_SEND_SMTPUTF8;
  if (!check_extensions (self, body_size, flags, error))
    return NULL;

  g_ptr_array_add (commands, format_mail_command (self, from, body_size, flags));
  for (gsize i = 0; rcpts[i] != NULL; i++)
    g_ptr_array_add (commands, g_strdup_printf ("RCPT TO:<%s>", rcpts[i]));
  if (!check_command_lengths (commands, error))
    return NULL;
  return g_steal_pointer (&commands);
}

static OutboxSmtpSendResult *
send_result_new (const char *const *rcpts)
{
  OutboxSmtpSendResult *result = g_new0 (OutboxSmtpSendResult, 1);

  result->rcpt_replies = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_smtp_reply_free);
  g_ptr_array_set_size (result->rcpt_replies, (gint) g_strv_length ((char **) rcpts));
  return result;
}

static gboolean
send_can_start (OutboxSmtpSession *self, GError **error)
{
  if (self->busy)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                           "The SMTP session is busy with another operation");
      return FALSE;
    }
  if (!outbox_smtp_session_is_open (self))
    {
      g_set_error_literal (error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_CLOSED,
                           "The SMTP session is not open");
      return FALSE;
    }
  return TRUE;
}

void
outbox_smtp_session_send_async (OutboxSmtpSession *session,
                                const char *from,
                                const char *const *rcpts,
                                GInputStream *body,
                                guint64 body_size,
                                OutboxSmtpSendFlags flags,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  SendData *data;

  g_return_if_fail (OUTBOX_IS_SMTP_SESSION (session));
  g_return_if_fail (from != NULL);
  g_return_if_fail (rcpts != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (body));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_smtp_session_send_async);
  data = g_new0 (SendData, 1);
  data->result = send_result_new (rcpts);
  data->body = g_object_ref (body);
  outbox_smtp_data_encoder_init (&data->encoder);
  g_task_set_task_data (task, data, (GDestroyNotify) send_data_free);

  if (!send_can_start (session, &data->result->error))
    {
      data->state = SEND_DONE;
      send_advance (task);
      return;
    }
  data->commands = prepare_envelope (session, from, rcpts, body_size, flags, &data->result->error);
  data->state = data->commands == NULL ? SEND_DONE
                : session->needs_reset ? SEND_RSET
                                       : SEND_ENVELOPE;
  data->pipelining = (session->caps.flags & OUTBOX_SMTP_CAP_PIPELINING) != 0;
  data->chunk = g_malloc (BODY_CHUNK);
  data->holds_session = data->state != SEND_DONE;
  session->busy = data->holds_session;
  send_advance (task);
}

OutboxSmtpSendResult *
outbox_smtp_session_send_finish (OutboxSmtpSession *session, GAsyncResult *result)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);
  g_return_val_if_fail (g_task_is_valid (result, session), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_smtp_session_send_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), NULL);
}

/* QUIT ---------------------------------------------------------------- */

static void
quit_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSmtpSession *self = g_task_get_source_object (task);
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
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (source);
  OutboxStepGuard *guard;
  GError *error = NULL;

  if (!exchange_finish (self, result, NULL, &error))
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
outbox_smtp_session_quit_async (OutboxSmtpSession *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (OUTBOX_IS_SMTP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_smtp_session_quit_async);

  if (session->busy)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The SMTP session is busy with another operation");
      return;
    }
  if (session->stream == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  session->ready = FALSE;
  session->busy = TRUE;
  command_text_async (session, "QUIT", "QUIT", MIN (session->timeouts.command, QUIT_TIMEOUT),
                      cancellable, quit_replied, g_object_ref (task));
}

gboolean
outbox_smtp_session_quit_finish (OutboxSmtpSession *session, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_smtp_session_quit_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Accessors ----------------------------------------------------------- */

gboolean
outbox_smtp_session_is_open (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), FALSE);

  return session->ready && session->stream != NULL;
}

const OutboxSmtpCaps *
outbox_smtp_session_get_caps (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);

  return &session->caps;
}

const OutboxSmtpReply *
outbox_smtp_session_get_last_reply (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);

  return session->last_reply;
}

GTlsCertificate *
outbox_smtp_session_get_peer_certificate (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);

  return session->peer_certificate;
}
