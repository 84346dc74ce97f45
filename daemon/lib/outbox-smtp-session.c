/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-line-reader.h"
#include "outbox-smtp-data.h"
#include "outbox-smtp-session.h"

/* RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets,
 * CR LF included. */
#define COMMAND_MAX_LINE 512
/* RFC 3461 section 4: its parameters make a MAIL line up to 100 octets
 * longer and a RCPT line up to 500; an ORCPT value is at most 500
 * characters (OpenSMTPD keeps no more). */
#define DSN_MAIL_EXTRA 100
#define DSN_RCPT_EXTRA 500
#define DSN_ORCPT_MAX 500
/* The message body is read and written in blocks of this size, so memory
 * stays bounded whatever the size of the message. */
#define BODY_CHUNK (64 * 1024)
/* With CHUNKING the normalised body goes in BDAT chunks of at least this
 * many octets (the last excepted; one may be up to two read blocks
 * longer), one chunk at a time: each waits for the reply to the one
 * before (RFC 3030 allows pipelining them, but then a refusal arrives
 * while more chunks are on their way, which the server must swallow
 * without a reply; lock-step keeps every reply tied to its chunk).  256 KiB
 * makes the wait one round trip per 256 KiB (8 MB/s even at 30 ms), and
 * keeps what a transaction holds in memory under 1 MiB whatever the size
 * of the message. */
#define BDAT_CHUNK (256 * 1024)
/* Pipelined commands are written in groups no larger than this, so that a
 * server that stops reading while its replies pile up cannot deadlock us. */
#define PIPELINE_BATCH 100

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

/* The session -------------------------------------------------------------
 *
 * What SMTP adds to OutboxSession (RFC 5321, STARTTLS from RFC 3207, AUTH
 * from RFC 4954): a 220 greeting, EHLO for the capabilities (HELO for
 * servers that do not know EHLO, only where neither TLS nor a sign-in is
 * needed), STARTTLS answered by 220, and AUTH with 334 challenges and 235
 * for success. */

struct _OutboxSmtpSession
{
  OutboxSession parent_instance;

  char *helo_name; /* (owned) (nullable) until connected */
  OutboxSmtpTimeouts timeouts;
  OutboxSmtpReplyParser *parser; /* (owned) */

  OutboxSmtpCaps caps;
  char **ignored_keywords;     /* (owned) EHLO keywords not in caps */
  OutboxSmtpReply *last_reply; /* (owned) (nullable) */
  gboolean needs_reset;        /* the last transaction stopped half-way: RSET */
  gboolean bdat_refused;       /* CHUNKING offered, BDAT refused: DATA from now on */
};

G_DEFINE_TYPE (OutboxSmtpSession, outbox_smtp_session, OUTBOX_TYPE_SESSION)

#define SESSION(self) (OUTBOX_SESSION (self))

static const char *
trace_name (OutboxSmtpSession *self)
{
  return outbox_session_get_trace_name (SESSION (self));
}

static void
trace_client (OutboxSmtpSession *self, const char *text)
{
  outbox_session_trace_client (SESSION (self), text);
}

static const OutboxServerUrl *
session_url (OutboxSmtpSession *self)
{
  return outbox_session_get_url (SESSION (self));
}

static void
session_abort (OutboxSmtpSession *self)
{
  outbox_session_abort (SESSION (self));
}

static OutboxSmtpReply *
reply_copy (const OutboxSmtpReply *reply)
{
  OutboxSmtpReply *copy = g_new0 (OutboxSmtpReply, 1);

  copy->code = reply->code;
  copy->lines = g_strdupv (reply->lines);
  return copy;
}

static GError *
reply_error (gint code, const char *what, const OutboxSmtpReply *reply)
{
  g_autofree char *text = outbox_smtp_reply_to_string (reply);

  return g_error_new (OUTBOX_SESSION_ERROR, code, "%s: %s", what, text);
}

static gboolean
smtp_feed_line (OutboxSession *session,
                const char *line,
                gsize len,
                gpointer *out_reply,
                GError **error)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (session);
  OutboxSmtpReply *reply = NULL;

  if (!outbox_smtp_reply_parser_feed (self->parser, line, len, &reply, error))
    return FALSE;
  if (reply != NULL && outbox_session_reply_matters (session))
    {
      outbox_smtp_reply_free (self->last_reply);
      self->last_reply = reply_copy (reply);
    }
  *out_reply = reply;
  return TRUE;
}

/* Exchanges: SMTP replies need no hint, so every exchange is the base's
 * with @expect 0. */
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
  outbox_session_exchange_async (SESSION (self), payload, NULL, verb, 0, read_reply, seconds,
                                 cancellable, callback, user_data);
}

static gboolean
exchange_finish (OutboxSmtpSession *self,
                 GAsyncResult *result,
                 OutboxSmtpReply **out_reply,
                 GError **error)
{
  return outbox_session_exchange_finish (SESSION (self), result, (gpointer *) out_reply, error);
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
  g_autoptr (GBytes) bytes = outbox_session_line_bytes (line);

  trace_client (self, line);
  exchange_async (self, bytes, TRUE, seconds, verb, cancellable, callback, user_data);
}

/* Open steps: each sends one command and judges its reply. */

typedef gboolean (*ReplyJudge) (OutboxSmtpSession *self, const OutboxSmtpReply *reply, GError **error);

typedef struct
{
  GTask *step; /* (owned) */
  ReplyJudge judge;
} StepCall;

static void
step_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  StepCall *call = user_data;
  g_autoptr (GTask) step = call->step;
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (source);
  g_autoptr (OutboxSmtpReply) reply = NULL;
  GError *error = NULL;
  ReplyJudge judge = call->judge;

  g_free (call);
  if (!exchange_finish (self, result, &reply, &error) || !judge (self, reply, &error))
    g_task_return_error (step, error);
  else
    g_task_return_boolean (step, TRUE);
}

static StepCall *
step_call_new (GTask *step, ReplyJudge judge)
{
  StepCall *call = g_new0 (StepCall, 1);

  call->step = g_object_ref (step);
  call->judge = judge;
  return call;
}

static void
step_command (GTask *step, const char *line, const char *verb, ReplyJudge judge)
{
  OutboxSmtpSession *self = g_task_get_source_object (step);

  command_text_async (self, line, verb, self->timeouts.command, g_task_get_cancellable (step),
                      step_replied, step_call_new (step, judge));
}

/* Greeting */

static gboolean
judge_greeting (OutboxSmtpSession *self, const OutboxSmtpReply *reply, GError **error)
{
  if (reply->code == 220)
    return TRUE;
  g_propagate_error (error, reply_error (OUTBOX_SESSION_ERROR_REPLY,
                                         "The server did not accept the connection", reply));
  return FALSE;
}

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

/* The default HELO name is the local address the connection left from. */
static void
choose_helo_name (OutboxSmtpSession *self)
{
  GIOStream *stream = outbox_session_get_stream (SESSION (self));
  GIOStream *base = stream;
  g_autoptr (GSocketAddress) local = NULL;

  if (self->helo_name != NULL)
    return;
  if (G_IS_TLS_CONNECTION (stream))
    g_object_get (stream, "base-io-stream", &base, NULL);
  else
    g_object_ref (base);
  if (G_IS_SOCKET_CONNECTION (base))
    local = g_socket_connection_get_local_address (G_SOCKET_CONNECTION (base), NULL);
  self->helo_name = address_literal (local);
  g_object_unref (base);
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

static void
smtp_greeting (OutboxSession *session, GTask *step)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (session);

  if (self->helo_name != NULL && !helo_name_is_valid (self->helo_name))
    {
      g_task_return_new_error (step, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               "Invalid HELO name: it must be printable ASCII without spaces");
      return;
    }
  choose_helo_name (self);
  exchange_async (self, NULL, TRUE, self->timeouts.greeting, NULL, g_task_get_cancellable (step),
                  step_replied, step_call_new (step, judge_greeting));
}

/* EHLO, HELO */

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
      return session_url (self)->security == OUTBOX_SECURITY_INSECURE &&
             session_url (self)->user == NULL;
    default:
      return FALSE;
    }
}

/* What a session knows of the server's extensions, forgotten after
 * STARTTLS and replaced by each EHLO (RFC 3207 section 4.2). */
static void
forget_capabilities (OutboxSmtpSession *self)
{
  memset (&self->caps, 0, sizeof self->caps);
  g_strfreev (self->ignored_keywords);
  self->ignored_keywords = g_new0 (char *, 1);
}

static gboolean
judge_helo (OutboxSmtpSession *self, const OutboxSmtpReply *reply, GError **error)
{
  if (reply->code == 250)
    {
      forget_capabilities (self);
      return TRUE;
    }
  g_propagate_error (error, reply_error (OUTBOX_SESSION_ERROR_REPLY, "HELO failed", reply));
  return FALSE;
}

static void
ehlo_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (source);
  g_autoptr (OutboxSmtpReply) reply = NULL;
  g_autofree char *helo = NULL;
  GError *error = NULL;

  if (!exchange_finish (self, result, &reply, &error))
    {
      g_task_return_error (step, error);
      return;
    }
  if (reply->code == 250)
    {
      forget_capabilities (self);
      outbox_smtp_caps_parse (reply, &self->caps);
      g_strfreev (self->ignored_keywords);
      self->ignored_keywords = outbox_smtp_caps_ignored_keywords (reply);
      g_task_return_boolean (step, TRUE);
      return;
    }
  if (!ehlo_refusal_allows_helo (self, reply))
    {
      g_task_return_error (step, reply_error (OUTBOX_SESSION_ERROR_REPLY, "EHLO failed", reply));
      return;
    }
  helo = g_strdup_printf ("HELO %s", self->helo_name);
  step_command (step, helo, "HELO", judge_helo);
}

static void
smtp_capabilities (OutboxSession *session, GTask *step)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (session);
  g_autofree char *line = g_strdup_printf ("EHLO %s", self->helo_name);

  command_text_async (self, line, "EHLO", self->timeouts.command, g_task_get_cancellable (step),
                      ehlo_replied, g_object_ref (step));
}

/* STARTTLS */

static gboolean
smtp_offers_starttls (OutboxSession *session, const char **out_why)
{
  return (OUTBOX_SMTP_SESSION (session)->caps.flags & OUTBOX_SMTP_CAP_STARTTLS) != 0;
}

static gboolean
judge_starttls (OutboxSmtpSession *self, const OutboxSmtpReply *reply, GError **error)
{
  if (reply->code == 220)
    return TRUE;
  g_propagate_error (error, reply_error (OUTBOX_SESSION_ERROR_TLS_REQUIRED,
                                         "The server refused STARTTLS, which this account "
                                         "requires",
                                         reply));
  return FALSE;
}

static void
smtp_starttls (OutboxSession *session, GTask *step)
{
  step_command (step, "STARTTLS", "STARTTLS", judge_starttls);
}

static void
smtp_forget_capabilities (OutboxSession *session)
{
  forget_capabilities (OUTBOX_SMTP_SESSION (session));
}

/* AUTH */

static char **
smtp_sasl_mechanisms (OutboxSession *session)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (session);

  if (!(self->caps.flags & OUTBOX_SMTP_CAP_AUTH))
    return NULL;
  return outbox_smtp_auth_mechs_to_strv (self->caps.auth_mechs);
}

/* RFC 4954 section 4: a command with its initial response must fit in the
 * 512 octets of a command line; otherwise the response waits for an empty
 * challenge. */
static gboolean
smtp_initial_response_fits (OutboxSession *session, const char *mechanism, gsize len)
{
  return strlen ("AUTH ") + strlen (mechanism) + 1 + len + 2 <= COMMAND_MAX_LINE;
}

/* Microsoft 365 answers 535 5.7.139 when the tenant switched SMTP AUTH off
 * (or password sign-in, for basic authentication): no password will do. */
static gboolean
reply_says_auth_disabled (const OutboxSmtpReply *reply)
{
  return reply->code == 535 && reply->lines != NULL && reply->lines[0] != NULL &&
         g_str_has_prefix (reply->lines[0], "5.7.139");
}

static GError *
auth_refused (OutboxSmtpSession *self, const OutboxSmtpReply *reply)
{
  if (reply_says_auth_disabled (reply))
    return reply_error (OUTBOX_SESSION_ERROR_AUTH_DISABLED,
                        "The server has turned this way of signing in off for the account "
                        "(Microsoft 365 does this to passwords; sign in with OAuth2 instead: "
                        "outbox account add NAME --oauth2 microsoft ...)",
                        reply);
  if (reply->code == 535 || reply->code == 534)
    return reply_error (OUTBOX_SESSION_ERROR_AUTH, "The server refused the credentials", reply);
  return reply_error (OUTBOX_SESSION_ERROR_REPLY, "Authentication failed", reply);
}

static void
auth_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (source);
  g_autoptr (OutboxSmtpReply) reply = NULL;
  OutboxSessionAuthReply *answer;
  GError *error = NULL;

  if (!exchange_finish (self, result, &reply, &error))
    {
      g_task_return_error (step, error);
      return;
    }
  if (reply->code != 334 && reply->code != 235)
    {
      g_task_return_error (step, auth_refused (self, reply));
      return;
    }
  answer = g_new0 (OutboxSessionAuthReply, 1);
  answer->status = reply->code == 334 ? OUTBOX_SESSION_AUTH_CHALLENGE : OUTBOX_SESSION_AUTH_SUCCESS;
  if (answer->status == OUTBOX_SESSION_AUTH_CHALLENGE && reply->lines != NULL)
    answer->text = g_strdup (reply->lines[0]);
  g_task_return_pointer (step, answer, (GDestroyNotify) outbox_session_auth_reply_free);
}

static void
smtp_auth_exchange (OutboxSession *session,
                    const char *mechanism,
                    const char *response,
                    GTask *step)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (session);
  g_autofree char *prefix = NULL;
  g_autofree char *trace = NULL;
  g_autoptr (GBytes) line = NULL;

  if (mechanism == NULL)
    {
      line = outbox_session_secret_line_bytes ("", response, NULL);
      trace = g_strdup ("****");
    }
  else
    {
      prefix = g_strdup_printf ("AUTH %s%s", mechanism, response != NULL ? " " : "");
      line = outbox_session_secret_line_bytes (prefix, response != NULL ? response : "", NULL);
      trace = g_strdup_printf ("AUTH %s%s", mechanism, response != NULL ? " ****" : "");
    }
  trace_client (self, trace);
  exchange_async (self, line, TRUE, self->timeouts.command, "AUTH", g_task_get_cancellable (step),
                  auth_replied, g_object_ref (step));
}

/* QUIT */

static void
quit_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  GError *error = NULL;

  if (!exchange_finish (OUTBOX_SMTP_SESSION (source), result, NULL, &error))
    g_task_return_error (step, error);
  else
    g_task_return_boolean (step, TRUE);
}

static void
smtp_quit (OutboxSession *session, GTask *step)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (session);

  command_text_async (self, "QUIT", "QUIT",
                      MIN (self->timeouts.command, OUTBOX_SESSION_QUIT_TIMEOUT),
                      g_task_get_cancellable (step), quit_replied, g_object_ref (step));
}

/* The type */

static void
outbox_smtp_session_finalize (GObject *object)
{
  OutboxSmtpSession *self = OUTBOX_SMTP_SESSION (object);

  g_free (self->helo_name);
  g_strfreev (self->ignored_keywords);
  outbox_smtp_reply_parser_free (self->parser);
  outbox_smtp_reply_free (self->last_reply);

  G_OBJECT_CLASS (outbox_smtp_session_parent_class)->finalize (object);
}

static void
outbox_smtp_session_init (OutboxSmtpSession *self)
{
  self->parser = outbox_smtp_reply_parser_new ();
  self->ignored_keywords = g_new0 (char *, 1);
}

static void
outbox_smtp_session_class_init (OutboxSmtpSessionClass *klass)
{
  OutboxSessionClass *session_class = OUTBOX_SESSION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = outbox_smtp_session_finalize;
  OUTBOX_SESSION_CLASS_IMPLEMENT (session_class, smtp, "smtp", "STARTTLS", "reply",
                                  OUTBOX_SMTP_REPLY_MAX_LINE, outbox_smtp_reply_free);
}

OutboxSmtpSession *
outbox_smtp_session_new (const OutboxSmtpConfig *config)
{
  OutboxSmtpSession *self;

  g_return_val_if_fail (config != NULL, NULL);

  self = g_object_new (OUTBOX_TYPE_SMTP_SESSION, NULL);
  self->helo_name = g_strdup (config->helo_name);
  self->timeouts = config->timeouts;
  outbox_session_configure (SESSION (self),
                            &OUTBOX_SESSION_CONFIG_OF (config, config->timeouts.connect,
                                                       config->timeouts.greeting,
                                                       config->timeouts.command));
  return self;
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
 *                  SEND_DATA when a recipient was accepted (SEND_BODY
 *                  with CHUNKING), else SEND_DONE with the transaction
 *                  marked for RSET.
 *   SEND_DATA      DATA, expecting 354 (data_init timeout); anything else
 *                  is the stop reply.  Next: SEND_BODY.
 *   SEND_BODY      reads the body in BODY_CHUNK blocks, normalises and
 *                  dot-stuffs each and writes it (data_block timeout per
 *                  block); at the end of the body, the terminating dot.  A
 *                  body read error drops the connection without the dot,
 *                  so the server discards the message.  Next:
 *                  SEND_FINAL_REPLY.
 *                  With CHUNKING (RFC 3030) there is no DATA: the body is
 *                  normalised the same way but not dot-stuffed, and goes
 *                  in BDAT chunks of about BDAT_CHUNK octets, each written
 *                  with its "BDAT n" line (Next: SEND_CHUNK_REPLY); at the
 *                  end of the body, "BDAT n LAST" with what is left (n may
 *                  be 0).  So the last chunk, like the dot, waits for the
 *                  end of the body stream: a stream that fails there (bad
 *                  checksum) or holds its end back holds "BDAT n LAST"
 *                  back too.
 *   SEND_CHUNK_REPLY  the reply to one BDAT chunk (data_block timeout):
 *                  250 reads on (SEND_BODY); anything else is the stop
 *                  reply: no more chunks, SEND_RSET, then SEND_DONE.
 *   SEND_FINAL_REPLY  the reply to the dot or to BDAT LAST (data_final
 *                  timeout).  If the connection fails here the outcome is
 *                  unknown: the server may have taken the message.  A
 *                  negative reply to BDAT LAST is followed by RSET.
 *   SEND_DONE      the result goes to the caller.
 *
 * A server that offers CHUNKING and answers the first BDAT with 500, 501,
 * 502 or 504 does not know the command after all: the transaction is reset
 * and run once more with DATA on the same connection (and the session uses
 * DATA from then on).  Until the first chunk is accepted, the body octets
 * read are kept, so that DATA can send them again.
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
  SEND_CHUNK_REPLY,
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
  gboolean chunking;  /* the body goes in BDAT chunks */
  GInputStream *body; /* (owned) */
  guint8 *chunk;      /* (owned) BODY_CHUNK bytes */
  OutboxSmtpDataEncoder encoder;
  GByteArray *pending;          /* (owned) encoded, not yet written */
  GByteArray *replay;           /* (owned) (nullable) body octets read before the
                                 * first BDAT chunk was accepted */
  gboolean body_eof;            /* the body stream has reported its end */
  gboolean body_finished;       /* the block being written ends the message */
  gboolean end_sent;            /* the dot or BDAT LAST is written */
  gboolean falling_back;        /* BDAT refused: RSET, then DATA */
  gboolean holds_session;       /* this transaction set the session busy */
  OutboxSmtpSendResult *result; /* (owned) */
} SendData;

static void
send_data_free (SendData *data)
{
  g_clear_pointer (&data->commands, g_ptr_array_unref);
  g_clear_object (&data->body);
  g_free (data->chunk);
  g_clear_pointer (&data->pending, g_byte_array_unref);
  g_clear_pointer (&data->replay, g_byte_array_unref);
  outbox_smtp_send_result_free (data->result);
  g_free (data);
}

static void send_advance (GTask *task);

static void
send_finish_with_error (GTask *task, GError *error)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  SendData *data = g_task_get_task_data (task);

  g_debug ("%s: transaction failed: %s", trace_name (self), error->message);
  g_clear_error (&data->result->error);
  data->result->error = error;
  data->result->unknown_outcome = data->end_sent && data->result->final_reply == NULL;
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
  return data->chunking ? SEND_BODY : SEND_DATA;
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

/* Room for what is encoded before it is written: one read block for DATA,
 * a chunk and the read block that ends it for BDAT (a lone LF grows to
 * CRLF, so a block's encoding may be twice its size). */
static GByteArray *
pending_new (gboolean chunking)
{
  return g_byte_array_sized_new (chunking ? BDAT_CHUNK + 2 * BODY_CHUNK : BODY_CHUNK + 64);
}

static void
prepend_bdat_line (OutboxSmtpSession *self, GByteArray *block, gboolean last)
{
  g_autofree char *line = g_strdup_printf ("BDAT %u%s", block->len, last ? " LAST" : "");
  g_autofree char *wire = g_strconcat (line, "\r\n", NULL);

  trace_client (self, line);
  g_byte_array_prepend (block, (const guint8 *) wire, (guint) strlen (wire));
}

/* Writes what is pending: a block of DATA payload, or one BDAT chunk with
 * its command line. */
static void
send_body_block (GTask *task, const char *verb)
{
  OutboxSmtpSession *self = g_task_get_source_object (task);
  SendData *data = g_task_get_task_data (task);
  GByteArray *block = g_steal_pointer (&data->pending);
  g_autoptr (GBytes) bytes = NULL;

  data->pending = pending_new (data->chunking);
  if (data->chunking)
    prepend_bdat_line (self, block, data->body_finished);
  bytes = g_byte_array_free_to_bytes (block);
  exchange_async (self, bytes, FALSE, self->timeouts.data_block, verb,
                  g_task_get_cancellable (task), body_block_written, g_object_ref (task));
}

static void send_read_body (GTask *task);

/* @len octets of the body, or its end when @len is 0. */
static void
body_block_ready (GTask *task, const guint8 *in, gsize len)
{
  SendData *data = g_task_get_task_data (task);

  if (len == 0)
    {
      outbox_smtp_data_encoder_finish (&data->encoder, data->pending);
      data->body_finished = TRUE;
      send_body_block (task, data->chunking ? "the last BDAT chunk" : "the end of the message");
      return;
    }
  if (data->chunking && data->replay != NULL)
    g_byte_array_append (data->replay, in, (guint) len);
  outbox_smtp_data_encoder_process (&data->encoder, in, len, data->pending);
  if (data->chunking && data->pending->len < BDAT_CHUNK)
    send_read_body (task);
  else
    send_body_block (task, data->chunking ? "a BDAT chunk" : "message data");
}

static void
body_chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SendData *data = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (n_read < 0)
    {
      g_prefix_error (&error, "Could not read the message: ");
      send_finish_with_error (task, error);
      return;
    }
  if (n_read == 0)
    data->body_eof = TRUE;
  body_block_ready (task, data->chunk, (gsize) n_read);
}

/* After a refused BDAT, DATA sends again what BDAT had read, and an end
 * the stream has already reported is not asked for twice. */
static void
send_read_body (GTask *task)
{
  SendData *data = g_task_get_task_data (task);

  if (!data->chunking && data->replay != NULL)
    {
      g_autoptr (GByteArray) raw = g_steal_pointer (&data->replay);

      if (raw->len > 0)
        {
          body_block_ready (task, raw->data, raw->len);
          return;
        }
    }
  if (data->body_eof)
    {
      body_block_ready (task, NULL, 0);
      return;
    }
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
      if (!data->chunking)
        {
          send_read_body (task);
          return;
        }
      data->state = SEND_CHUNK_REPLY;
      send_advance (task);
      return;
    }
  if (!data->chunking)
    trace_client (g_task_get_source_object (task), ".");
  data->end_sent = TRUE;
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
  else if (data->result->stop_reply == NULL && data->result->final_reply == NULL)
    data->result->stop_reply = reply_copy (reply);
  g_debug ("%s: the server is closing the connection", trace_name (self));
  session_abort (self);
  data->state = SEND_DONE;
}

/* A server that refuses RSET is in a state nobody can reason about: its
 * answer stops the transaction and the connection is dropped. */
static void
handle_reset_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  gboolean stopped = data->result->stop_reply != NULL || data->result->final_reply != NULL;

  if (reply->code == 250)
    {
      self->needs_reset = FALSE;
      data->falling_back = FALSE;
      data->state = stopped ? SEND_DONE : SEND_ENVELOPE;
      return;
    }
  if (data->falling_back)
    data->result->error = reply_error (OUTBOX_SESSION_ERROR_REPLY,
                                       "The server offers CHUNKING, refused BDAT, and then "
                                       "refused RSET: it is out of step; the message will be "
                                       "tried again",
                                       reply);
  else if (!stopped)
    data->result->stop_reply = reply_copy (reply);
  session_abort (self);
  data->state = SEND_DONE;
}

/* Whether a reply to the first BDAT says that the server does not know
 * the command, whatever its EHLO said. */
static gboolean
bdat_refused_outright (SendData *data, const OutboxSmtpReply *reply)
{
  if (!data->chunking || data->replay == NULL)
    return FALSE;
  return reply->code == 500 || reply->code == 501 || reply->code == 502 || reply->code == 504;
}

/* The transaction starts again with DATA, once: RSET, the same envelope,
 * and the body octets kept in data->replay before the rest of the stream.
 * A server that did not take the chunk's octets for data reads them as
 * commands; its first line is a header field, which no server takes for a
 * command, so the reply after the refusal is then not RSET's 250 and the
 * connection is dropped instead. */
static void
fall_back_to_data (OutboxSmtpSession *self, SendData *data, const OutboxSmtpReply *reply)
{
  g_autofree char *text = outbox_smtp_reply_to_string (reply);
  guint n_rcpts = data->result->rcpt_replies->len;

  g_message ("%s: the server offers CHUNKING but refused BDAT (%s); sending with DATA instead",
             trace_name (self), text);
  self->bdat_refused = TRUE;
  data->chunking = FALSE;
  outbox_smtp_data_encoder_init (&data->encoder);
  g_byte_array_set_size (data->pending, 0);
  data->body_finished = FALSE;
  data->end_sent = FALSE;
  data->n_written = data->n_answered = data->n_accepted = 0;
  data->mail_refused = FALSE;
  g_ptr_array_set_size (data->result->rcpt_replies, 0);
  g_ptr_array_set_size (data->result->rcpt_replies, (gint) n_rcpts);
  data->falling_back = TRUE;
  data->state = SEND_RSET;
}

/* RFC 3030 section 2: after a negative reply to a chunk the transaction
 * has failed; no chunk follows, and RSET leaves no doubt about it. */
static void
handle_chunk_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  if (bdat_refused_outright (data, reply))
    {
      fall_back_to_data (self, data, reply);
      return;
    }
  if (outbox_smtp_reply_is_positive (reply))
    {
      g_clear_pointer (&data->replay, g_byte_array_unref);
      data->state = SEND_BODY;
      return;
    }
  data->result->stop_reply = reply_copy (reply);
  data->state = SEND_RSET;
}

static void
handle_final_reply (OutboxSmtpSession *self, SendData *data, OutboxSmtpReply *reply)
{
  if (bdat_refused_outright (data, reply))
    {
      fall_back_to_data (self, data, reply);
      return;
    }
  data->result->final_reply = reply_copy (reply);
  self->needs_reset = FALSE;
  data->state = data->chunking && !outbox_smtp_reply_is_positive (reply) ? SEND_RSET : SEND_DONE;
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
    case SEND_CHUNK_REPLY:
      handle_chunk_reply (self, data, reply);
      break;
    case SEND_FINAL_REPLY:
      handle_final_reply (self, data, reply);
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
    case SEND_CHUNK_REPLY:
      send_read_reply (task, "a BDAT chunk", self->timeouts.data_block);
      break;
    case SEND_FINAL_REPLY:
      send_read_reply (task, "the end of the message", self->timeouts.data_final);
      break;
    case SEND_DONE:
    default:
      if (data->holds_session)
        outbox_session_end_operation (SESSION (self));
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
                        session_url (self)->host);
  if ((flags & OUTBOX_SMTP_SEND_SMTPUTF8) && !(self->caps.flags & OUTBOX_SMTP_CAP_SMTPUTF8))
    return unsupported (error,
                        "The message has non-ASCII addresses but %s does not offer "
                        "SMTPUTF8",
                        session_url (self)->host);
  if ((self->caps.flags & OUTBOX_SMTP_CAP_SIZE) && self->caps.size_limit != 0 &&
      body_size > self->caps.size_limit)
    return unsupported (error,
                        "The message is %" G_GUINT64_FORMAT " bytes but %s accepts at "
                        "most %" G_GUINT64_FORMAT,
                        body_size, session_url (self)->host, self->caps.size_limit);
  return TRUE;
}

/* What the message asks of a server that may not offer DSN: the request
 * to put in the commands (NULL for none), a refusal when it is required
 * and not offered, or none and *out_not_offered. */
static gboolean
choose_dsn (OutboxSmtpSession *self,
            const OutboxDsnRequest *dsn,
            const OutboxDsnRequest **out_used,
            gboolean *out_not_offered,
            GError **error)
{
  *out_used = NULL;
  if (!outbox_dsn_request_asks (dsn))
    return TRUE;
  if (self->caps.flags & OUTBOX_SMTP_CAP_DSN)
    {
      *out_used = dsn;
      return TRUE;
    }
  if (dsn->required)
    {
      g_set_error (error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_DSN_NOT_OFFERED,
                   "%s does not offer DSN (delivery status notifications)",
                   session_url (self)->host);
      return FALSE;
    }
  *out_not_offered = TRUE;
  return TRUE;
}

static char *
format_mail_command (OutboxSmtpSession *self,
                     const char *from,
                     guint64 body_size,
                     OutboxSmtpSendFlags flags,
                     const OutboxDsnRequest *dsn)
{
  GString *line = g_string_new (NULL);

  g_string_append_printf (line, "MAIL FROM:<%s>", from);
  if (self->caps.flags & OUTBOX_SMTP_CAP_SIZE)
    g_string_append_printf (line, " SIZE=%" G_GUINT64_FORMAT, body_size);
  if (flags & OUTBOX_SMTP_SEND_8BITMIME)
    g_string_append (line, " BODY=8BITMIME");
  if (flags & OUTBOX_SMTP_SEND_SMTPUTF8)
    g_string_append (line, " SMTPUTF8");
  if (dsn != NULL && dsn->ret != OUTBOX_DSN_RET_DEFAULT)
    {
      g_autofree char *ret = g_ascii_strup (outbox_dsn_ret_to_string (dsn->ret), -1);

      g_string_append_printf (line, " RET=%s", ret);
    }
  if (dsn != NULL && dsn->envid != NULL)
    {
      g_autofree char *envid = outbox_xtext_encode (dsn->envid);

      g_string_append_printf (line, " ENVID=%s", envid);
    }
  return g_string_free (line, FALSE);
}

/* ORCPT names the recipient a notification is about (RFC 3461 section
 * 4.2): "rfc822;" and the xtext of an ASCII address; for one that is not
 * (the transaction then uses SMTPUTF8), "utf-8;" and the utf-8-addr-xtext
 * form of RFC 6533, which is ASCII and fits any server that offers DSN. */
static char *
format_orcpt (const char *rcpt)
{
  g_autofree char *encoded = NULL;

  if (outbox_address_is_ascii (rcpt))
    {
      encoded = outbox_xtext_encode (rcpt);
      return g_strconcat ("rfc822;", encoded, NULL);
    }
  encoded = outbox_utf8_addr_xtext_encode (rcpt);
  return g_strconcat ("utf-8;", encoded, NULL);
}

static char *
format_rcpt_command (const char *rcpt, const OutboxDsnRequest *dsn)
{
  GString *line = g_string_new (NULL);
  g_autofree char *orcpt = NULL;

  g_string_append_printf (line, "RCPT TO:<%s>", rcpt);
  if (dsn == NULL)
    return g_string_free (line, FALSE);
  if (dsn->notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_autofree char *notify = outbox_dsn_notify_to_string (dsn->notify, TRUE);

      g_string_append_printf (line, " NOTIFY=%s", notify);
    }
  /* ORCPT is optional: one longer than servers keep is left out. */
  orcpt = format_orcpt (rcpt);
  if (strlen (orcpt) <= DSN_ORCPT_MAX)
    g_string_append_printf (line, " ORCPT=%s", orcpt);
  return g_string_free (line, FALSE);
}

static gboolean
check_command_lengths (GPtrArray *commands, gboolean with_dsn, GError **error)
{
  for (guint i = 0; i < commands->len; i++)
    {
      const char *line = g_ptr_array_index (commands, i);
      gsize limit = COMMAND_MAX_LINE;

      if (with_dsn)
        limit += i == 0 ? DSN_MAIL_EXTRA : DSN_RCPT_EXTRA;
      if (strlen (line) + 2 > limit)
        {
          g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
                       "An SMTP command would be longer than %" G_GSIZE_FORMAT " octets", limit);
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
                  const OutboxDsnRequest *dsn,
                  gboolean *out_dsn_not_offered,
                  GError **error)
{
  g_autoptr (GPtrArray) commands = g_ptr_array_new_with_free_func (g_free);
  const OutboxDsnRequest *used = NULL;
  gboolean ascii = TRUE;
  gboolean not_offered = FALSE;

  if (!validate_envelope (from, rcpts, &ascii, error))
    return NULL;
  if (!ascii)
    flags |= OUTBOX_SMTP_SEND_SMTPUTF8;
  if (!check_extensions (self, body_size, flags, error)
      || !choose_dsn (self, dsn, &used, &not_offered, error))
    return NULL;

  g_ptr_array_add (commands, format_mail_command (self, from, body_size, flags, used));
  for (gsize i = 0; rcpts[i] != NULL; i++)
    g_ptr_array_add (commands, format_rcpt_command (rcpts[i], used));
  if (!check_command_lengths (commands, used != NULL, error))
    return NULL;
  *out_dsn_not_offered = not_offered;
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

void
outbox_smtp_session_send_async (OutboxSmtpSession *session,
                                const char *from,
                                const char *const *rcpts,
                                GInputStream *body,
                                guint64 body_size,
                                OutboxSmtpSendFlags flags,
                                const OutboxDsnRequest *dsn,
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
  data->chunking = (session->caps.flags & OUTBOX_SMTP_CAP_CHUNKING) && !session->bdat_refused;
  if (data->chunking)
    {
      outbox_smtp_data_encoder_init_unstuffed (&data->encoder);
      data->replay = g_byte_array_new ();
    }
  else
    outbox_smtp_data_encoder_init (&data->encoder);
  data->pending = pending_new (data->chunking);
  g_task_set_task_data (task, data, (GDestroyNotify) send_data_free);

  if (!outbox_session_begin_operation (SESSION (session), &data->result->error))
    {
      data->state = SEND_DONE;
      send_advance (task);
      return;
    }
  data->commands = prepare_envelope (session, from, rcpts, body_size, flags, dsn,
                                     &data->result->dsn_not_offered, &data->result->error);
  data->state = data->commands == NULL ? SEND_DONE
                : session->needs_reset ? SEND_RSET
                                       : SEND_ENVELOPE;
  data->pipelining = (session->caps.flags & OUTBOX_SMTP_CAP_PIPELINING) != 0;
  data->chunk = g_malloc (BODY_CHUNK);
  data->holds_session = TRUE;
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

/* Accessors ----------------------------------------------------------- */

const OutboxSmtpCaps *
outbox_smtp_session_get_caps (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);

  return &session->caps;
}

const char *const *
outbox_smtp_session_get_ignored_keywords (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);

  return (const char *const *) session->ignored_keywords;
}

const OutboxSmtpReply *
outbox_smtp_session_get_last_reply (OutboxSmtpSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_SMTP_SESSION (session), NULL);

  return session->last_reply;
}
