/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "outbox-session.h"
#include "outbox-transport.h"

/* A SASL exchange that is still going after this many round trips is a
 * server leading the client on. */
#define MAX_AUTH_ROUNDS 10

G_DEFINE_QUARK (outbox-session-error-quark, outbox_session_error)

typedef struct
{
  /* Configuration, copied from the OutboxSessionConfig. */
  OutboxServerUrl *url;  /* (owned) */
  char *secret;          /* (owned) (nullable) wiped before it is freed */
  OutboxSaslSecretKind secret_kind;
  char *tls_ca_file;     /* (owned) (nullable) */
  char *tls_fingerprint; /* (owned) (nullable) */
  char *auth_mech;       /* (owned) (nullable) */
  guint connect_timeout;
  guint greeting_timeout;
  guint command_timeout;
  char *trace_name; /* (owned) "smtp host:port" */

  /* Transport: subclasses only use stream and reader. */
  GSocketConnection *connection;     /* (owned) (nullable) the raw TCP stream */
  GIOStream *stream;                 /* (owned) (nullable) connection, or TLS over it */
  OutboxLineReader *reader;          /* (owned) (nullable) reads stream */
  GTlsCertificate *peer_certificate; /* (owned) (nullable) */

  const char *mechanism; /* (nullable) static, the SASL mechanism signed in with */
  gboolean ready;        /* open succeeded and nothing broke since */
  gboolean signed_in;
  gboolean busy; /* an operation is running */
  gboolean leaving_after_refusal; /* QUIT after a refused sign-in is running */
} OutboxSessionPrivate;

G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (OutboxSession, outbox_session, G_TYPE_OBJECT)

#define PRIV(self) ((OutboxSessionPrivate *) outbox_session_get_instance_private (self))

void
outbox_session_wipe_string (char **secret)
{
  if (*secret == NULL)
    return;
  explicit_bzero (*secret, strlen (*secret));
  g_clear_pointer (secret, g_free);
}

void
outbox_session_auth_reply_free (OutboxSessionAuthReply *reply)
{
  if (reply == NULL)
    return;
  g_free (reply->text);
  g_free (reply);
}

void
outbox_session_abort (OutboxSession *self)
{
  OutboxSessionPrivate *priv = PRIV (self);

  priv->ready = FALSE;
  priv->signed_in = FALSE;
  if (priv->connection != NULL)
    g_io_stream_close (G_IO_STREAM (priv->connection), NULL, NULL);
  g_clear_object (&priv->reader);
  g_clear_object (&priv->stream);
  g_clear_object (&priv->connection);
}

static void
outbox_session_finalize (GObject *object)
{
  OutboxSession *self = OUTBOX_SESSION (object);
  OutboxSessionPrivate *priv = PRIV (self);

  outbox_session_abort (self);
  outbox_server_url_free (priv->url);
  outbox_session_wipe_string (&priv->secret);
  g_free (priv->tls_ca_file);
  g_free (priv->tls_fingerprint);
  g_free (priv->auth_mech);
  g_free (priv->trace_name);
  g_clear_object (&priv->peer_certificate);

  G_OBJECT_CLASS (outbox_session_parent_class)->finalize (object);
}

static gboolean
default_needs_sign_in (OutboxSession *self)
{
  return PRIV (self)->url->user != NULL;
}

static void
outbox_session_class_init (OutboxSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_session_finalize;
  klass->needs_sign_in = default_needs_sign_in;
  klass->reply_noun = "reply";
  klass->starttls_verb = "STARTTLS";
}

static void
outbox_session_init (OutboxSession *self)
{
}

void
outbox_session_configure (OutboxSession *self, const OutboxSessionConfig *config)
{
  OutboxSessionPrivate *priv = PRIV (self);
  const char *protocol = OUTBOX_SESSION_GET_CLASS (self)->protocol;

  g_return_if_fail (priv->url == NULL);
  g_return_if_fail (config->url != NULL);

  priv->url = outbox_server_url_copy (config->url);
  priv->secret = g_strdup (config->secret);
  priv->secret_kind = config->secret_kind;
  priv->tls_ca_file = g_strdup (config->tls_ca_file);
  priv->tls_fingerprint = g_strdup (config->tls_fingerprint);
  priv->auth_mech = g_strdup (config->auth_mech);
  priv->connect_timeout = config->connect_timeout;
  priv->greeting_timeout = config->greeting_timeout;
  priv->command_timeout = config->command_timeout;
  if (strchr (priv->url->host, ':') != NULL)
    priv->trace_name = g_strdup_printf ("%s [%s]:%u", protocol, priv->url->host, priv->url->port);
  else
    priv->trace_name = g_strdup_printf ("%s %s:%u", protocol, priv->url->host, priv->url->port);
}

/* Accessors ----------------------------------------------------------- */

gboolean
outbox_session_is_open (OutboxSession *self)
{
  g_return_val_if_fail (OUTBOX_IS_SESSION (self), FALSE);

  return PRIV (self)->ready && PRIV (self)->stream != NULL;
}

gboolean
outbox_session_is_signed_in (OutboxSession *self)
{
  g_return_val_if_fail (OUTBOX_IS_SESSION (self), FALSE);

  return PRIV (self)->signed_in;
}

const char *
outbox_session_get_mechanism (OutboxSession *self)
{
  g_return_val_if_fail (OUTBOX_IS_SESSION (self), NULL);

  return PRIV (self)->mechanism;
}

GTlsCertificate *
outbox_session_get_peer_certificate (OutboxSession *self)
{
  g_return_val_if_fail (OUTBOX_IS_SESSION (self), NULL);

  return PRIV (self)->peer_certificate;
}

const OutboxServerUrl *
outbox_session_get_url (OutboxSession *self)
{
  return PRIV (self)->url;
}

const char *
outbox_session_get_trace_name (OutboxSession *self)
{
  return PRIV (self)->trace_name;
}

GIOStream *
outbox_session_get_stream (OutboxSession *self)
{
  return PRIV (self)->stream;
}

OutboxLineReader *
outbox_session_get_reader (OutboxSession *self)
{
  return PRIV (self)->reader;
}

gboolean
outbox_session_is_tls (OutboxSession *self)
{
  return G_IS_TLS_CONNECTION (PRIV (self)->stream);
}

const char *
outbox_session_get_secret (OutboxSession *self)
{
  return PRIV (self)->secret;
}

guint
outbox_session_get_command_timeout (OutboxSession *self)
{
  return PRIV (self)->command_timeout;
}

gboolean
outbox_session_reply_matters (OutboxSession *self)
{
  return !PRIV (self)->leaving_after_refusal;
}

gboolean
outbox_session_begin_operation (OutboxSession *self, GError **error)
{
  OutboxSessionPrivate *priv = PRIV (self);

  if (priv->busy)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                   "The %s session is busy with another operation",
                   OUTBOX_SESSION_GET_CLASS (self)->protocol);
      return FALSE;
    }
  if (!outbox_session_is_open (self))
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED,
                   "The %s session is not open", OUTBOX_SESSION_GET_CLASS (self)->protocol);
      return FALSE;
    }
  priv->busy = TRUE;
  return TRUE;
}

void
outbox_session_end_operation (OutboxSession *self)
{
  PRIV (self)->busy = FALSE;
}

/* Protocol trace ------------------------------------------------------ */

void
outbox_session_trace_client (OutboxSession *self, const char *text)
{
  g_debug ("%s C: %s", PRIV (self)->trace_name, text);
}

void
outbox_session_trace_server (OutboxSession *self, const char *line)
{
  g_autofree char *escaped = g_strescape (line, NULL);

  g_debug ("%s S: %s", PRIV (self)->trace_name, escaped);
}

/* Command lines ------------------------------------------------------- */

GBytes *
outbox_session_line_bytes (const char *line)
{
  char *text = g_strconcat (line, "\r\n", NULL);

  return g_bytes_new_take (text, strlen (text));
}

static void
wipe_and_free (gpointer secret)
{
  char *text = secret;

  outbox_session_wipe_string (&text);
}

GBytes *
outbox_session_secret_line_bytes (const char *prefix, const char *secret, const char *suffix)
{
  char *text = g_strconcat (prefix, secret, suffix != NULL ? suffix : "", "\r\n", NULL);

  return g_bytes_new_with_free_func (text, strlen (text), wipe_and_free, text);
}

/* Exchanges -----------------------------------------------------------
 *
 * One exchange writes a payload (a command, pipelined commands, a block of
 * message data), reads one reply, or both, under one step guard. */

typedef struct
{
  OutboxStepGuard *guard; /* (owned) */
  GBytes *payload;        /* (owned) (nullable) */
  char *verb;             /* (owned) (nullable) NULL for the greeting */
  gboolean read_reply;
  gboolean writing; /* still in the write part */
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
exchange_awaited (OutboxSession *self, const Exchange *exchange)
{
  if (exchange->verb == NULL)
    return g_strdup ("greeting");
  return g_strdup_printf ("%s to %s", OUTBOX_SESSION_GET_CLASS (self)->reply_noun, exchange->verb);
}

/* Makes transport errors say what the session was doing. */
static GError *
exchange_error (OutboxSession *self, const Exchange *exchange, GError *error)
{
  g_autofree char *awaited = exchange_awaited (self, exchange);
  guint seconds = exchange->guard->seconds;
  GError *converted;

  if (outbox_step_guard_timed_out (exchange->guard, error) && exchange->writing)
    converted = g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT,
                             "Could not send %s within %u s", exchange->verb, seconds);
  else if (outbox_step_guard_timed_out (exchange->guard, error))
    converted = g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT,
                             "No %s within %u s", awaited, seconds);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    converted = g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED,
                             "The server closed the connection before sending the %s", awaited);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE))
    converted = g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                             "The server sent an overlong line in the %s", awaited);
  else
    return error;

  g_error_free (error);
  return converted;
}

static void
exchange_return_error (GTask *task, GError *error)
{
  g_task_return_error (task, exchange_error (g_task_get_source_object (task),
                                             g_task_get_task_data (task), error));
}

static void read_reply_line (GTask *task);

static void
reply_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = g_task_get_source_object (task);
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);
  g_autofree char *line = NULL;
  gpointer reply = NULL;
  GError *error = NULL;
  gsize len = 0;

  line = outbox_line_reader_read_line_finish (OUTBOX_LINE_READER (source), result, &len, &error);
  if (line == NULL)
    {
      exchange_return_error (task, error);
      return;
    }
  outbox_session_trace_server (self, line);
  if (!klass->feed_line (self, line, len, &reply, &error))
    exchange_return_error (task, error);
  else if (reply != NULL)
    g_task_return_pointer (task, reply, klass->reply_free);
  else
    read_reply_line (task);
}

static void
read_reply_line (GTask *task)
{
  OutboxSession *self = g_task_get_source_object (task);
  Exchange *exchange = g_task_get_task_data (task);

  if (PRIV (self)->reader == NULL)
    {
      g_task_return_new_error (task, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED,
                               "The connection to the server is closed");
      return;
    }
  outbox_line_reader_read_line_async (PRIV (self)->reader, exchange->guard->cancellable,
                                      reply_line_read, g_object_ref (task));
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
  OutboxSession *self = g_task_get_source_object (task);
  Exchange *exchange = g_task_get_task_data (task);
  gsize len = 0;
  const void *data = g_bytes_get_data (exchange->payload, &len);

  g_output_stream_write_all_async (g_io_stream_get_output_stream (PRIV (self)->stream), data, len,
                                   G_PRIORITY_DEFAULT, exchange->guard->cancellable,
                                   payload_written, g_object_ref (task));
}

void
outbox_session_exchange_async (OutboxSession *self,
                               GBytes *payload,
                               const char *trace,
                               const char *verb,
                               guint expect,
                               gboolean read_reply,
                               guint seconds,
                               GCancellable *cancellable,
                               GAsyncReadyCallback callback,
                               gpointer user_data)
{
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  Exchange *exchange = g_new0 (Exchange, 1);

  g_task_set_source_tag (task, outbox_session_exchange_async);
  exchange->guard = outbox_step_guard_new (cancellable, seconds);
  exchange->payload = payload != NULL ? g_bytes_ref (payload) : NULL;
  exchange->verb = g_strdup (verb);
  exchange->read_reply = read_reply;
  exchange->writing = payload != NULL;
  g_task_set_task_data (task, exchange, (GDestroyNotify) exchange_free);

  if (PRIV (self)->stream == NULL)
    {
      g_task_return_new_error (task, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED,
                               "The connection to the server is closed");
      return;
    }
  if (trace != NULL)
    outbox_session_trace_client (self, trace);
  if (read_reply && klass->begin_reply != NULL)
    klass->begin_reply (self, expect);
  if (payload != NULL)
    write_payload (task);
  else
    read_reply_line (task);
}

gboolean
outbox_session_exchange_finish (OutboxSession *self,
                                GAsyncResult *result,
                                gpointer *out_reply,
                                GError **error)
{
  GError *local_error = NULL;
  gpointer reply;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_session_exchange_async,
                        FALSE);

  reply = g_task_propagate_pointer (G_TASK (result), &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (out_reply != NULL)
    *out_reply = reply;
  else if (reply != NULL)
    OUTBOX_SESSION_GET_CLASS (self)->reply_free (reply);
  return TRUE;
}

/* Transport set-up ---------------------------------------------------- */

static void
use_connection (OutboxSession *self, GSocketConnection *connection)
{
  OutboxSessionPrivate *priv = PRIV (self);
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr (GError) error = NULL;

  /* Commands are small and each waits for its reply: Nagle only adds
   * delay. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("%s: could not set TCP_NODELAY: %s", priv->trace_name, error->message);

  priv->connection = g_object_ref (connection);
  priv->stream = G_IO_STREAM (g_object_ref (connection));
  priv->reader = outbox_line_reader_new (g_io_stream_get_input_stream (priv->stream),
                                         OUTBOX_SESSION_GET_CLASS (self)->max_line);
}

/* Replaces the plain stream with @tls.  The old reader goes away with
 * whatever it held (the injection check made sure it held nothing), and
 * every capability learned in plaintext is forgotten (security item 3). */
static void
use_tls (OutboxSession *self, GIOStream *tls)
{
  OutboxSessionPrivate *priv = PRIV (self);
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);

  g_clear_object (&priv->reader);
  g_set_object (&priv->stream, tls);
  priv->reader = outbox_line_reader_new (g_io_stream_get_input_stream (tls), klass->max_line);
  g_set_object (&priv->peer_certificate,
                g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (tls)));
  if (klass->forget_capabilities != NULL)
    klass->forget_capabilities (self);
}

/* Security item 5: credentials only over TLS, or in plaintext to this
 * machine when the user asked for +insecure. */
static gboolean
credentials_allowed (OutboxSession *self)
{
  OutboxSessionPrivate *priv = PRIV (self);

  if (outbox_session_is_tls (self))
    return TRUE;
  return priv->url->security == OUTBOX_SECURITY_INSECURE && outbox_server_url_is_loopback (priv->url);
}

/* The open state machine ----------------------------------------------
 *
 * outbox_session_open_async() walks these states; each starts one
 * asynchronous step whose callback picks the next state:
 *
 *   OPEN_CONNECT        connects to host:port (connect timeout).  Next:
 *                       OPEN_IMPLICIT_TLS for smtps, imaps and pop3s,
 *                       OPEN_GREETING otherwise.
 *   OPEN_IMPLICIT_TLS   TLS handshake on the fresh TCP stream, then the pin
 *                       check.  Next: OPEN_GREETING.
 *   OPEN_GREETING       the protocol reads and judges the greeting.  Next:
 *                       OPEN_CAPABILITIES.
 *   OPEN_CAPABILITIES   the protocol asks what the server offers (EHLO,
 *                       CAPABILITY, CAPA).  Next, in order of need:
 *                       OPEN_STARTTLS when the URL requires STARTTLS and
 *                       the stream is not TLS yet, OPEN_SIGN_IN when the
 *                       protocol says a sign-in is needed, OPEN_DONE.
 *   OPEN_STARTTLS       fails unless the server offers STARTTLS (never a
 *                       plaintext fallback); the protocol sends it and
 *                       checks the answer.  Any byte already buffered after
 *                       that answer was sent before the TLS handshake and
 *                       is an injection attempt (CVE-2011-0411): fail.
 *                       Next: OPEN_STARTTLS_HANDSHAKE.
 *   OPEN_STARTTLS_HANDSHAKE  TLS over the raw TCP stream (never over the
 *                       line reader), pin check, a fresh line reader, the
 *                       capabilities forgotten.  Next: OPEN_CAPABILITIES.
 *   OPEN_SIGN_IN        refuses to go on in plaintext (except +insecure to
 *                       loopback) or without a secret, picks the SASL
 *                       mechanism (outbox_sasl_choose()) and runs it through
 *                       the protocol's auth_exchange, one round trip at a
 *                       time: each challenge is decoded and answered, and
 *                       success is checked (SCRAM's server proof).  With no
 *                       mechanism, a password and nothing pinned, the
 *                       protocol's own login runs instead.  A refusal
 *                       (the credentials, the mechanism, or a passing
 *                       failure the server owns up to) ends the exchange
 *                       with the server still in step: the session then
 *                       says QUIT (LOGOUT) and closes TLS properly before
 *                       it fails, because servers log a dropped connection
 *                       as a fault of their own (Postfix "lost connection
 *                       after AUTH").  Next: OPEN_DONE.
 *   OPEN_DONE           the session is ready.
 *
 * Any failure closes the connection: a half-opened session is never
 * reused. */
typedef enum
{
  OPEN_CONNECT,
  OPEN_IMPLICIT_TLS,
  OPEN_GREETING,
  OPEN_CAPABILITIES,
  OPEN_STARTTLS,
  OPEN_STARTTLS_HANDSHAKE,
  OPEN_SIGN_IN,
  OPEN_DONE,
} OpenState;

typedef struct
{
  OpenState state;
  OutboxSasl *sasl;         /* (owned) (nullable) during OPEN_SIGN_IN */
  char *waiting_response;   /* (owned) (nullable) an initial response, in base64, that did
                             * not fit in the first command: it answers the first challenge */
  guint rounds;
  GError *refusal;          /* (owned) (nullable) returned once QUIT is done */
} OpenData;

static void
open_data_free (OpenData *data)
{
  g_clear_pointer (&data->sasl, outbox_sasl_free);
  outbox_session_wipe_string (&data->waiting_response);
  g_clear_error (&data->refusal);
  g_free (data);
}

static void open_advance (GTask *task);

static void
open_fail (GTask *task, GError *error)
{
  OutboxSession *self = g_task_get_source_object (task);

  g_debug ("%s: open failed: %s", PRIV (self)->trace_name, error->message);
  outbox_session_abort (self);
  PRIV (self)->busy = FALSE;
  g_task_return_error (task, error);
}

/* Only a reply the server sent to end the sign-in: after a timeout, a
 * broken reply or a SASL step that failed on this side, QUIT could be
 * taken for part of the exchange. */
static gboolean
error_is_sign_in_refusal (const GError *error)
{
  return error->domain == OUTBOX_SESSION_ERROR &&
         (error->code == OUTBOX_SESSION_ERROR_AUTH ||
          error->code == OUTBOX_SESSION_ERROR_AUTH_DISABLED ||
          error->code == OUTBOX_SESSION_ERROR_REPLY);
}

static void
refusal_quit_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = OUTBOX_SESSION (source);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;

  if (!outbox_session_quit_finish (self, result, &error))
    g_debug ("%s: QUIT after the refused sign-in: %s", PRIV (self)->trace_name, error->message);
  PRIV (self)->leaving_after_refusal = FALSE;
  g_task_return_error (task, g_steal_pointer (&data->refusal));
}

/* Fails the open; a refused sign-in says QUIT first. */
static void
open_fail_step (GTask *task, GError *error)
{
  OutboxSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);

  if (data->state != OPEN_SIGN_IN || !error_is_sign_in_refusal (error) || PRIV (self)->stream == NULL)
    {
      open_fail (task, error);
      return;
    }
  g_debug ("%s: open failed: %s", PRIV (self)->trace_name, error->message);
  data->refusal = error;
  PRIV (self)->signed_in = FALSE;
  PRIV (self)->busy = FALSE;
  PRIV (self)->leaving_after_refusal = TRUE;
  outbox_session_quit_async (self, g_task_get_cancellable (task), refusal_quit_done,
                             g_object_ref (task));
}

static OpenState
state_after_capabilities (OutboxSession *self)
{
  OutboxSessionPrivate *priv = PRIV (self);

  if (priv->url->security == OUTBOX_SECURITY_STARTTLS && !outbox_session_is_tls (self))
    return OPEN_STARTTLS;
  if (OUTBOX_SESSION_GET_CLASS (self)->needs_sign_in (self))
    return OPEN_SIGN_IN;
  return OPEN_DONE;
}

/* A protocol step: @step completes into step_done, which moves on. */
static void
step_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = OUTBOX_SESSION (source);
  OpenData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      open_fail_step (task, error);
      return;
    }
  switch (data->state)
    {
    case OPEN_GREETING:
      data->state = OPEN_CAPABILITIES;
      break;
    case OPEN_CAPABILITIES:
      data->state = state_after_capabilities (self);
      break;
    case OPEN_STARTTLS:
      if (outbox_line_reader_has_buffered (PRIV (self)->reader))
        {
          open_fail (task, g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_INJECTION,
                                        "%s:%u sent data after its answer to %s and before the "
                                        "TLS handshake; someone may be tampering with the "
                                        "connection",
                                        PRIV (self)->url->host, PRIV (self)->url->port,
                                        OUTBOX_SESSION_GET_CLASS (self)->starttls_verb));
          return;
        }
      data->state = OPEN_STARTTLS_HANDSHAKE;
      break;
    case OPEN_SIGN_IN:
      PRIV (self)->signed_in = TRUE;
      g_debug ("%s: signed in as %s", PRIV (self)->trace_name, PRIV (self)->url->user);
      data->state = OPEN_DONE;
      break;
    case OPEN_CONNECT:
    case OPEN_IMPLICIT_TLS:
    case OPEN_STARTTLS_HANDSHAKE:
    case OPEN_DONE:
    default:
      g_assert_not_reached ();
    }
  open_advance (task);
}

typedef void (*StepFunc) (OutboxSession *self, GTask *step);

static void
run_step (GTask *task, StepFunc func)
{
  OutboxSession *self = g_task_get_source_object (task);
  GTask *step = g_task_new (self, g_task_get_cancellable (task), step_done, g_object_ref (task));

  g_task_set_source_tag (step, run_step);
  func (self, step);
  g_object_unref (step);
}

/* Connect */

static void
connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = g_task_get_source_object (task);
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
  data->state = PRIV (self)->url->security == OUTBOX_SECURITY_TLS ? OPEN_IMPLICIT_TLS : OPEN_GREETING;
  open_advance (task);
}

static void
open_connect (GTask *task)
{
  OutboxSessionPrivate *priv = PRIV (g_task_get_source_object (task));

  outbox_transport_connect_async (priv->url->host, priv->url->port, priv->connect_timeout,
                                  OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT,
                                  g_task_get_cancellable (task), connected, g_object_ref (task));
}

/* TLS handshake, implicit or after STARTTLS */

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GTlsCertificate) offered = NULL;
  GError *error = NULL;

  tls = outbox_transport_handshake_finish (result, &offered, &error);
  if (tls == NULL)
    {
      g_set_object (&PRIV (self)->peer_certificate, offered);
      open_fail (task, error);
      return;
    }
  use_tls (self, tls);
  g_debug ("%s: TLS is up", PRIV (self)->trace_name);
  data->state = data->state == OPEN_IMPLICIT_TLS ? OPEN_GREETING : OPEN_CAPABILITIES;
  open_advance (task);
}

static void
open_handshake (GTask *task)
{
  OutboxSessionPrivate *priv = PRIV (g_task_get_source_object (task));

  outbox_transport_handshake_async (G_IO_STREAM (priv->connection), priv->url->host,
                                    priv->url->port, priv->tls_ca_file, priv->tls_fingerprint,
                                    priv->connect_timeout, OUTBOX_SESSION_ERROR,
                                    OUTBOX_SESSION_ERROR_TIMEOUT, g_task_get_cancellable (task),
                                    handshake_done, g_object_ref (task));
}

static void
open_starttls (GTask *task)
{
  OutboxSession *self = g_task_get_source_object (task);
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);

  const char *why = "";

  if (!klass->offers_starttls (self, &why))
    {
      open_fail (task, g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TLS_REQUIRED,
                                    "%s:%u does not offer %s%s, which this account requires; "
                                    "Outbox never falls back to plaintext",
                                    PRIV (self)->url->host, PRIV (self)->url->port,
                                    klass->starttls_verb, why));
      return;
    }
  run_step (task, klass->starttls);
}

/* Sign-in ---------------------------------------------------------------- */

static gboolean sign_in_unavailable (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
sign_in_unavailable (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (OUTBOX_SESSION_ERROR,
                                                OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE, format,
                                                args));
  va_end (args);
  return FALSE;
}

static const char *
secret_noun (OutboxSession *self)
{
  return PRIV (self)->secret_kind == OUTBOX_SASL_SECRET_TOKEN ? "access token" : "password";
}

static gboolean
check_sign_in_possible (OutboxSession *self, GError **error)
{
  OutboxSessionPrivate *priv = PRIV (self);

  if (!credentials_allowed (self))
    return sign_in_unavailable (error,
                                "Refusing to send the %s for %s over an unencrypted connection "
                                "to %s",
                                secret_noun (self), priv->url->user, priv->url->host);
  if (priv->secret == NULL)
    return sign_in_unavailable (error, "No %s stored for %s on %s", secret_noun (self),
                                priv->url->user, priv->url->host);
  return TRUE;
}

/* SASL errors as the session reports them: a server whose proof is wrong
 * is a protocol failure, not a wrong password. */
static GError *
sasl_error (GError *error)
{
  int code = OUTBOX_SESSION_ERROR_PROTOCOL;
  GError *converted;

  if (error->domain != OUTBOX_SASL_ERROR)
    return error;
  if (error->code == OUTBOX_SASL_ERROR_UNAVAILABLE)
    code = OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE;
  converted = g_error_new_literal (OUTBOX_SESSION_ERROR, code, error->message);
  g_error_free (error);
  return converted;
}

static void auth_replied (GObject *source, GAsyncResult *result, gpointer user_data);

static void
auth_send (GTask *task, const char *mechanism, const char *response)
{
  OutboxSession *self = g_task_get_source_object (task);
  GTask *step = g_task_new (self, g_task_get_cancellable (task), auth_replied, g_object_ref (task));

  g_task_set_source_tag (step, auth_send);
  OUTBOX_SESSION_GET_CLASS (self)->auth_exchange (self, mechanism, response, step);
  g_object_unref (step);
}

/* The base64 form of a response; an empty one is "=" only as an initial
 * response (RFC 4954, RFC 4959, RFC 5034), an empty line otherwise. */
static char *
encode_response (GBytes *response, gboolean initial)
{
  gsize len = 0;
  const guchar *octets = g_bytes_get_data (response, &len);

  if (len == 0)
    return g_strdup (initial ? "=" : "");
  return g_base64_encode (octets, len);
}

static gboolean
initial_response_fits (OutboxSession *self, const char *mechanism, gsize len)
{
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);

  return klass->initial_response_fits == NULL || klass->initial_response_fits (self, mechanism, len);
}

static void
sign_in_start (GTask *task, const char *mechanism)
{
  OutboxSession *self = g_task_get_source_object (task);
  OutboxSessionPrivate *priv = PRIV (self);
  OpenData *data = g_task_get_task_data (task);
  OutboxSaslCredentials credentials = {
    .user = priv->url->user,
    .secret = priv->secret,
    .kind = priv->secret_kind,
    .host = priv->url->host,
    .port = priv->url->port,
  };
  GTlsConnection *tls = outbox_session_is_tls (self) ? G_TLS_CONNECTION (priv->stream) : NULL;
  g_autoptr (GBytes) initial = NULL;
  char *encoded = NULL;
  GError *error = NULL;

  data->sasl = outbox_sasl_new (mechanism, &credentials, tls, &error);
  if (data->sasl != NULL && outbox_sasl_client_first (data->sasl))
    initial = outbox_sasl_step (data->sasl, NULL, &error);
  if (error != NULL)
    {
      open_fail (task, sasl_error (error));
      return;
    }
  priv->mechanism = outbox_sasl_get_mechanism (data->sasl);
  if (initial != NULL)
    encoded = encode_response (initial, TRUE);
  if (encoded != NULL && !initial_response_fits (self, priv->mechanism, strlen (encoded)))
    {
      /* The empty challenge that asks for it takes an empty line, not "=". */
      data->waiting_response = g_strcmp0 (encoded, "=") == 0 ? g_strdup ("") : g_strdup (encoded);
      outbox_session_wipe_string (&encoded);
    }
  g_debug ("%s: signing in with %s", priv->trace_name, priv->mechanism);
  auth_send (task, priv->mechanism, encoded);
  outbox_session_wipe_string (&encoded);
}

static void
open_sign_in (GTask *task)
{
  OutboxSession *self = g_task_get_source_object (task);
  OutboxSessionPrivate *priv = PRIV (self);
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);
  g_auto (GStrv) offered = NULL;
  const char *mechanism;
  GError *error = NULL;

  if (!check_sign_in_possible (self, &error))
    {
      open_fail (task, error);
      return;
    }
  offered = klass->sasl_mechanisms (self);
  mechanism = outbox_sasl_choose ((const char *const *) offered, priv->secret_kind,
                                  outbox_session_is_tls (self) ? G_TLS_CONNECTION (priv->stream) : NULL,
                                  priv->auth_mech, &error);
  if (mechanism == NULL && klass->login != NULL && priv->auth_mech == NULL &&
      priv->secret_kind == OUTBOX_SASL_SECRET_PASSWORD)
    {
      g_clear_error (&error);
      run_step (task, klass->login);
      return;
    }
  if (mechanism == NULL)
    {
      open_fail (task, sasl_error (error));
      return;
    }
  sign_in_start (task, mechanism);
}

/* Says what an OAuth2 error challenge said, when one came before the
 * refusal. */
static GError *
explain_refusal (OpenData *data, GError *error)
{
  const char *detail = data->sasl != NULL ? outbox_sasl_get_server_error (data->sasl) : NULL;
  GError *explained;

  if (detail == NULL || error->domain != OUTBOX_SESSION_ERROR)
    return error;
  explained = g_error_new (error->domain, error->code, "%s (%s)", error->message, detail);
  g_error_free (error);
  return explained;
}

/* A challenge is always there, if empty ("334 ", "+ "): an empty text is
 * empty octets.  Success comes with additional data only when it has text:
 * there, none is NULL. */
static gboolean
decode_text (const char *text, gboolean is_challenge, GBytes **out_bytes, GError **error)
{
  gsize len = 0;
  guchar *octets;

  *out_bytes = NULL;
  if (text == NULL || *text == '\0')
    {
      if (is_challenge)
        *out_bytes = g_bytes_new (NULL, 0);
      return TRUE;
    }
  for (const char *p = text; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '+' && *p != '/' && *p != '=')
        {
          g_set_error_literal (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                               "The server sent a sign-in challenge that is not base64");
          return FALSE;
        }
    }
  octets = g_base64_decode (text, &len);
  *out_bytes = g_bytes_new_take (octets, len);
  return TRUE;
}

static void
auth_answer_challenge (GTask *task, const char *text)
{
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GBytes) challenge = NULL;
  g_autoptr (GBytes) response = NULL;
  char *encoded;
  GError *error = NULL;

  if (++data->rounds > MAX_AUTH_ROUNDS)
    {
      open_fail (task, g_error_new (OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                                    "The server sent more than %u sign-in challenges",
                                    MAX_AUTH_ROUNDS));
      return;
    }
  if (!decode_text (text, TRUE, &challenge, &error))
    {
      open_fail (task, error);
      return;
    }
  /* A client-first mechanism whose initial response did not fit in the
   * command answers the server's empty challenge with it. */
  if (data->waiting_response != NULL)
    {
      encoded = g_steal_pointer (&data->waiting_response);
      auth_send (task, NULL, encoded);
      outbox_session_wipe_string (&encoded);
      return;
    }
  response = outbox_sasl_step (data->sasl, challenge, &error);
  if (response == NULL)
    {
      open_fail (task, sasl_error (error));
      return;
    }
  encoded = encode_response (response, FALSE);
  auth_send (task, NULL, encoded);
  outbox_session_wipe_string (&encoded);
}

static void
auth_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (OutboxSessionAuthReply) reply = NULL;
  g_autoptr (GBytes) additional = NULL;
  GError *error = NULL;

  reply = g_task_propagate_pointer (G_TASK (result), &error);
  if (reply == NULL)
    {
      open_fail_step (task, explain_refusal (data, error));
      return;
    }
  if (reply->status == OUTBOX_SESSION_AUTH_CHALLENGE)
    {
      auth_answer_challenge (task, reply->text);
      return;
    }
  if (!decode_text (reply->text, FALSE, &additional, &error) ||
      !outbox_sasl_check_success (data->sasl, additional, &error))
    {
      open_fail (task, sasl_error (error));
      return;
    }
  PRIV (OUTBOX_SESSION (source))->signed_in = TRUE;
  g_debug ("%s: signed in as %s", PRIV (OUTBOX_SESSION (source))->trace_name,
           PRIV (OUTBOX_SESSION (source))->url->user);
  data->state = OPEN_DONE;
  open_advance (task);
}

static void
open_succeed (GTask *task)
{
  OutboxSession *self = g_task_get_source_object (task);

  PRIV (self)->ready = TRUE;
  PRIV (self)->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

static void
open_advance (GTask *task)
{
  OutboxSession *self = g_task_get_source_object (task);
  OutboxSessionClass *klass = OUTBOX_SESSION_GET_CLASS (self);
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
      run_step (task, klass->greeting);
      break;
    case OPEN_CAPABILITIES:
      run_step (task, klass->capabilities);
      break;
    case OPEN_STARTTLS:
      open_starttls (task);
      break;
    case OPEN_SIGN_IN:
      open_sign_in (task);
      break;
    case OPEN_DONE:
    default:
      open_succeed (task);
      break;
    }
}

void
outbox_session_open_async (OutboxSession *self,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  OutboxSessionPrivate *priv;
  g_autoptr (GTask) task = NULL;
  OpenData *data;

  g_return_if_fail (OUTBOX_IS_SESSION (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  priv = PRIV (self);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_session_open_async);
  data = g_new0 (OpenData, 1);
  data->state = OPEN_CONNECT;
  g_task_set_task_data (task, data, (GDestroyNotify) open_data_free);

  if (priv->busy || priv->stream != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The %s session is already open or busy",
                               OUTBOX_SESSION_GET_CLASS (self)->protocol);
      return;
    }
  priv->busy = TRUE;
  priv->mechanism = NULL;
  g_clear_object (&priv->peer_certificate);
  open_advance (task);
}

gboolean
outbox_session_open_finish (OutboxSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_SESSION (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_session_open_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* QUIT ---------------------------------------------------------------- */

static void
quit_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = g_task_get_source_object (task);
  GError *error = NULL;

  g_io_stream_close_finish (G_IO_STREAM (source), result, &error);
  outbox_session_abort (self);
  PRIV (self)->busy = FALSE;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
quit_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSession *self = OUTBOX_SESSION (source);
  OutboxStepGuard *guard;
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error) || PRIV (self)->stream == NULL)
    {
      outbox_session_abort (self);
      PRIV (self)->busy = FALSE;
      if (error != NULL)
        g_task_return_error (task, error);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }
  guard = outbox_step_guard_new (g_task_get_cancellable (task), OUTBOX_SESSION_QUIT_TIMEOUT);
  g_task_set_task_data (task, guard, (GDestroyNotify) outbox_step_guard_free);
  g_io_stream_close_async (PRIV (self)->stream, G_PRIORITY_DEFAULT, guard->cancellable,
                           quit_closed, g_object_ref (task));
}

void
outbox_session_quit_async (OutboxSession *self,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  OutboxSessionPrivate *priv;
  g_autoptr (GTask) task = NULL;
  GTask *step;

  g_return_if_fail (OUTBOX_IS_SESSION (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  priv = PRIV (self);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_session_quit_async);

  if (priv->busy)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The %s session is busy with another operation",
                               OUTBOX_SESSION_GET_CLASS (self)->protocol);
      return;
    }
  if (priv->stream == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  priv->ready = FALSE;
  priv->busy = TRUE;
  step = g_task_new (self, cancellable, quit_replied, g_object_ref (task));
  g_task_set_source_tag (step, outbox_session_quit_async);
  OUTBOX_SESSION_GET_CLASS (self)->quit (self, step);
  g_object_unref (step);
}

gboolean
outbox_session_quit_finish (OutboxSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_SESSION (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_session_quit_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
