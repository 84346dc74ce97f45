/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-line-reader.h"
#include "outbox-sasl.h"
#include "outbox-url.h"

G_BEGIN_DECLS

/* How long QUIT (LOGOUT) and the close after it may take, in seconds. */
#define OUTBOX_SESSION_QUIT_TIMEOUT 5

/* What the SMTP, IMAP and POP3 clients share: one connection to one server,
 * the way it is opened and the rules that keep credentials safe on it.
 *
 * OutboxSession owns the configuration (URL, TLS trust, credentials), the
 * stream and its line reader, the peer certificate, the guarded exchange
 * (write a command, read one reply, under one deadline that names the step)
 * and the open sequence:
 *
 *   connect -> implicit TLS (smtps, imaps, pop3s) -> greeting ->
 *   capabilities -> STARTTLS (smtp, imap, pop3: required, never skipped) ->
 *   the injection check -> handshake -> capabilities again -> sign-in
 *
 * Each protocol subclasses it and supplies its commands through the class
 * methods below; sign-in runs the SASL layer (outbox-sasl.h) through the
 * protocol's auth_exchange, so that a mechanism is written once for all
 * three protocols.  Credentials only ever go over TLS, or in plaintext to
 * a loopback address when the URL says +insecure (security item 5). */

#define OUTBOX_SESSION_ERROR (outbox_session_error_quark ())
GQuark outbox_session_error_quark (void);

typedef enum
{
  OUTBOX_SESSION_ERROR_PROTOCOL,         /* the server broke its protocol */
  OUTBOX_SESSION_ERROR_REPLY,            /* an unexpected reply; the message quotes it */
  OUTBOX_SESSION_ERROR_TLS_REQUIRED,     /* STARTTLS missing or refused */
  OUTBOX_SESSION_ERROR_INJECTION,        /* bytes after the answer to STARTTLS */
  OUTBOX_SESSION_ERROR_AUTH,             /* the server refused the credentials */
  OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE, /* cannot sign in: no TLS, no secret, no mechanism */
  OUTBOX_SESSION_ERROR_TIMEOUT,          /* a step took longer than its deadline */
  OUTBOX_SESSION_ERROR_CLOSED,           /* the connection was closed */
  OUTBOX_SESSION_ERROR_AUTH_DISABLED,    /* the server turned this way of signing in off */
} OutboxSessionError;

/* Everything the base needs to reach and sign in to one server; the session
 * copies it. */
typedef struct
{
  const OutboxServerUrl *url;  /* the scheme decides TLS, the user decides sign-in */
  const char *secret;          /* (nullable) the password or access token */
  OutboxSaslSecretKind secret_kind;
  const char *tls_ca_file;     /* (nullable) PEM: trust these CAs only */
  const char *tls_fingerprint; /* (nullable) "sha256:HEX" (colons allowed) */
  const char *auth_mech;       /* (nullable) pinned SASL mechanism; NULL: the strongest */
  guint connect_timeout;       /* TCP connect and each TLS handshake */
  guint greeting_timeout;
  guint command_timeout;       /* each open and sign-in command */
} OutboxSessionConfig;

/* The answer to one sign-in command. */
typedef enum
{
  OUTBOX_SESSION_AUTH_CHALLENGE, /* the server wants more: text is its base64 challenge */
  OUTBOX_SESSION_AUTH_SUCCESS,   /* signed in; text is additional base64 data or NULL */
} OutboxSessionAuthStatus;

typedef struct
{
  OutboxSessionAuthStatus status;
  char *text; /* (owned) (nullable) */
} OutboxSessionAuthReply;

void outbox_session_auth_reply_free (OutboxSessionAuthReply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSessionAuthReply, outbox_session_auth_reply_free)

#define OUTBOX_TYPE_SESSION (outbox_session_get_type ())
G_DECLARE_DERIVABLE_TYPE (OutboxSession, outbox_session, OUTBOX, SESSION, GObject)

/* The open steps a protocol supplies are asynchronous: each gets a @step
 * task whose source object is the session and whose cancellable is the
 * open's, and completes it with g_task_return_boolean() or an error
 * (OUTBOX_SESSION_ERROR_*), except auth_exchange, which returns an
 * OutboxSessionAuthReply with g_task_return_pointer(). */
struct _OutboxSessionClass
{
  GObjectClass parent_class;

  const char *protocol;      /* "smtp": trace prefix */
  const char *starttls_verb; /* "STARTTLS" or "STLS" */
  const char *reply_noun;    /* "reply" or "response", in error messages */
  gsize max_line;            /* longest line the server may send, CR LF excluded */

  /* Replies.  begin_reply (optional) is called before each reply is read
   * with the exchange's @expect; feed_line gets its lines one by one and
   * sets *@out_reply once the reply is complete.  Replies are freed with
   * reply_free. */
  void (*begin_reply) (OutboxSession *self, guint expect);
  gboolean (*feed_line) (OutboxSession *self,
                         const char *line,
                         gsize len,
                         gpointer *out_reply,
                         GError **error);
  GDestroyNotify reply_free;

  /* The open sequence. */
  void (*greeting) (OutboxSession *self, GTask *step);
  void (*capabilities) (OutboxSession *self, GTask *step);
  /* offers_starttls may say why not in *@out_why (static, " (...)") */
  gboolean (*offers_starttls) (OutboxSession *self, const char **out_why);
  void (*starttls) (OutboxSession *self, GTask *step); /* the command and its positive answer */
  void (*forget_capabilities) (OutboxSession *self);    /* TLS is up: what was learned is void */
  gboolean (*needs_sign_in) (OutboxSession *self);      /* default: the URL has a user */

  /* Sign-in.  sasl_mechanisms: (transfer full) what the server offers
   * (NULL: nothing).  initial_response_fits (optional, default TRUE): can
   * the first command carry an initial response of @len base64 octets?
   * auth_exchange sends the first command (@mechanism set, @response the
   * base64 initial response, "=" for an empty one, or NULL for none) or one
   * response line (@mechanism NULL, @response base64, "*" to cancel), and
   * reads the answer.  A refusal fails @step with
   * OUTBOX_SESSION_ERROR_AUTH (or _REPLY when the server blames itself)
   * quoting the server.  login (optional) signs in with the protocol's own
   * password command (IMAP LOGIN, POP3 USER/PASS) when no SASL mechanism is
   * offered. */
  char **(*sasl_mechanisms) (OutboxSession *self);
  gboolean (*initial_response_fits) (OutboxSession *self, const char *mechanism, gsize len);
  void (*auth_exchange) (OutboxSession *self,
                         const char *mechanism,
                         const char *response,
                         GTask *step);
  void (*login) (OutboxSession *self, GTask *step);

  /* QUIT or LOGOUT and its answer; the base then closes the stream. */
  void (*quit) (OutboxSession *self, GTask *step);

  gpointer padding[8];
};

/* In a subclass's class_init: sets @klass's protocol facts and the
 * methods every protocol has, named PREFIX_feed_line, PREFIX_greeting,
 * PREFIX_capabilities, PREFIX_offers_starttls, PREFIX_starttls,
 * PREFIX_forget_capabilities, PREFIX_sasl_mechanisms,
 * PREFIX_initial_response_fits, PREFIX_auth_exchange and PREFIX_quit.  The
 * optional ones (begin_reply, needs_sign_in, login) are set by hand. */
#define OUTBOX_SESSION_CLASS_IMPLEMENT(klass, prefix, name_text, verb_text, noun_text, line_max, free_reply) \
  G_STMT_START                                                                              \
  {                                                                                         \
    (klass)->protocol = (name_text);                                                        \
    (klass)->starttls_verb = (verb_text);                                                   \
    (klass)->reply_noun = (noun_text);                                                      \
    (klass)->max_line = (line_max);                                                         \
    (klass)->reply_free = (GDestroyNotify) (free_reply);                                    \
    (klass)->feed_line = prefix##_feed_line;                                                \
    (klass)->greeting = prefix##_greeting;                                                  \
    (klass)->capabilities = prefix##_capabilities;                                          \
    (klass)->offers_starttls = prefix##_offers_starttls;                                    \
    (klass)->starttls = prefix##_starttls;                                                  \
    (klass)->forget_capabilities = prefix##_forget_capabilities;                            \
    (klass)->sasl_mechanisms = prefix##_sasl_mechanisms;                                    \
    (klass)->initial_response_fits = prefix##_initial_response_fits;                        \
    (klass)->auth_exchange = prefix##_auth_exchange;                                        \
    (klass)->quit = prefix##_quit;                                                          \
  }                                                                                         \
  G_STMT_END

/* The base part of a protocol's config (OutboxSmtpConfig, OutboxImapConfig,
 * OutboxPop3Config: each starts with url, password, secret_kind,
 * tls_ca_file, tls_fingerprint and auth_mech) with the three deadlines. */
#define OUTBOX_SESSION_CONFIG_OF(config, connect_s, greeting_s, command_s)                     \
  ((OutboxSessionConfig){ .url = (config)->url,                                              \
                          .secret = (config)->password,                                      \
                          .secret_kind = (config)->secret_kind,                              \
                          .tls_ca_file = (config)->tls_ca_file,                              \
                          .tls_fingerprint = (config)->tls_fingerprint,                      \
                          .auth_mech = (config)->auth_mech,                                  \
                          .connect_timeout = (connect_s),                                    \
                          .greeting_timeout = (greeting_s),                                  \
                          .command_timeout = (command_s) })

/* Subclasses call this from their constructor, once. */
void outbox_session_configure (OutboxSession *self, const OutboxSessionConfig *config);

/* Connects, upgrades and signs in as described above.  Fails with
 * OUTBOX_SESSION_ERROR_*, G_IO_ERROR_* or G_TLS_ERROR_*; any failure closes
 * the connection, after QUIT (LOGOUT) when the server refused the sign-in
 * and so is still in step.  What was learned before a failure
 * (capabilities, the peer certificate, the last reply) stays readable. */
void outbox_session_open_async (OutboxSession *self,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean outbox_session_open_finish (OutboxSession *self, GAsyncResult *result, GError **error);

/* Sends QUIT (LOGOUT), waits briefly for the answer and closes.  Errors are
 * only worth logging. */
void outbox_session_quit_async (OutboxSession *self,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean outbox_session_quit_finish (OutboxSession *self, GAsyncResult *result, GError **error);

/* TRUE while the session is open and nothing broke since. */
gboolean outbox_session_is_open (OutboxSession *self);
/* TRUE once the server accepted the credentials. */
gboolean outbox_session_is_signed_in (OutboxSession *self);
/* (nullable) (transfer none) the SASL mechanism the sign-in used. */
const char *outbox_session_get_mechanism (OutboxSession *self);
/* (nullable) (transfer none) the peer certificate once TLS is up (or the
 * one a failed handshake was offered). */
GTlsCertificate *outbox_session_get_peer_certificate (OutboxSession *self);
const OutboxServerUrl *outbox_session_get_url (OutboxSession *self);

/* For subclasses ------------------------------------------------------ */

/* "smtp host:port", the prefix of every trace line. */
const char *outbox_session_get_trace_name (OutboxSession *self);
void outbox_session_trace_client (OutboxSession *self, const char *text);
void outbox_session_trace_server (OutboxSession *self, const char *line);

GIOStream *outbox_session_get_stream (OutboxSession *self); /* (nullable) */
OutboxLineReader *outbox_session_get_reader (OutboxSession *self); /* (nullable) */
gboolean outbox_session_is_tls (OutboxSession *self);
/* FALSE while the session says QUIT (LOGOUT) after a refused sign-in: the
 * answer to it is not the reply to keep as the last one, the refusal is. */
gboolean outbox_session_reply_matters (OutboxSession *self);
const char *outbox_session_get_secret (OutboxSession *self); /* (nullable) */
guint outbox_session_get_command_timeout (OutboxSession *self);

/* Drops the connection at once, without QUIT or TLS close_notify: for a
 * connection that is broken or can no longer be trusted. */
void outbox_session_abort (OutboxSession *self);

/* Operations on an open session hold it for their duration: begin fails
 * with G_IO_ERROR_PENDING while another runs and with
 * OUTBOX_SESSION_ERROR_CLOSED when the session is not open. */
gboolean outbox_session_begin_operation (OutboxSession *self, GError **error);
void outbox_session_end_operation (OutboxSession *self);

/* One exchange: writes @payload (nullable: only read, as for a greeting),
 * traced as @trace (nullable: not traced), then, when @read_reply, reads one
 * reply, all within @seconds (0: no deadline).  @verb names what was sent
 * in error messages ("No reply to RCPT within 300 s"); NULL stands for the
 * greeting.  The reply goes to *@out_reply (transfer full; NULL for a
 * write-only exchange).  Timeouts, closed connections and overlong lines
 * become OUTBOX_SESSION_ERROR_* that say what the session was waiting for;
 * other errors are GIO's. */
void outbox_session_exchange_async (OutboxSession *self,
                                    GBytes *payload,
                                    const char *trace,
                                    const char *verb,
                                    guint expect,
                                    gboolean read_reply,
                                    guint seconds,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data);
gboolean outbox_session_exchange_finish (OutboxSession *self,
                                         GAsyncResult *result,
                                         gpointer *out_reply,
                                         GError **error);

/* A command line with CR LF, as GBytes.  The secret form wipes its copy when
 * freed. */
GBytes *outbox_session_line_bytes (const char *line);
GBytes *outbox_session_secret_line_bytes (const char *prefix, const char *secret, const char *suffix);

/* Wipes and frees a string that held a secret. */
void outbox_session_wipe_string (char **secret);

G_END_DECLS
