/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-imap-parser.h"
#include "outbox-url.h"

G_BEGIN_DECLS

#define OUTBOX_IMAP_ERROR (outbox_imap_error_quark ())
GQuark outbox_imap_error_quark (void);

typedef enum
{
  OUTBOX_IMAP_ERROR_PROTOCOL,         /* the server broke RFC 3501 */
  OUTBOX_IMAP_ERROR_REPLY,            /* NO or BAD; the message quotes the server */
  OUTBOX_IMAP_ERROR_TLS_REQUIRED,     /* STARTTLS missing or refused, PREAUTH in plaintext */
  OUTBOX_IMAP_ERROR_INJECTION,        /* bytes after the OK to STARTTLS */
  OUTBOX_IMAP_ERROR_AUTH,             /* NO to AUTHENTICATE or LOGIN: bad credentials */
  OUTBOX_IMAP_ERROR_AUTH_UNAVAILABLE, /* no usable mechanism, no TLS, no user or password */
  OUTBOX_IMAP_ERROR_TIMEOUT,          /* a step timed out */
  OUTBOX_IMAP_ERROR_CLOSED,           /* the connection was closed (BYE) */
  OUTBOX_IMAP_ERROR_NO_SENT_FOLDER,   /* no \Sent, configured or "Sent" mailbox */
} OutboxImapError;

/* The session -------------------------------------------------------------- */

/* Timeouts in seconds; 0 means none. */
typedef struct
{
  guint connect;     /* TCP connect and TLS handshake: 60 */
  guint command;     /* the greeting, each response, each command write: 120 */
  guint append_data; /* each block of message data in APPEND: 300 */
} OutboxImapTimeouts;

void outbox_imap_timeouts_init_default (OutboxImapTimeouts *timeouts);

/* Everything a session needs to reach and log in to one server.  The
 * session copies it. */
typedef struct
{
  const OutboxServerUrl *url;  /* imaps, imap (STARTTLS required) or imap+insecure */
  const char *password;        /* (nullable) from libsecret */
  const char *tls_ca_file;     /* (nullable) PEM: trust these CAs only */
  const char *tls_fingerprint; /* (nullable) "sha256:HEX" (colons allowed) */
  OutboxImapTimeouts timeouts;
} OutboxImapConfig;

/* One IMAP client connection.  The protocol code talks to whatever
 * GIOStream the transport gives it (TCP, or TLS over it). */
#define OUTBOX_TYPE_IMAP_SESSION (outbox_imap_session_get_type ())
G_DECLARE_FINAL_TYPE (OutboxImapSession, outbox_imap_session, OUTBOX, IMAP_SESSION, GObject)

OutboxImapSession *outbox_imap_session_new (const OutboxImapConfig *config);

/* Connects (TLS at once for imaps), reads the greeting, asks for
 * CAPABILITY when the greeting did not carry it, STARTTLS for imap:// (then
 * CAPABILITY again, nothing learnt before trusted), and logs in: AUTHENTICATE
 * PLAIN (with SASL-IR when offered) where AUTH=PLAIN is offered, else LOGIN
 * unless LOGINDISABLED; never in plaintext except imap+insecure to
 * loopback.  Then CAPABILITY once more.  Fails with OUTBOX_IMAP_ERROR_*,
 * G_IO_ERROR_* or G_TLS_ERROR_*; any failure closes the connection. */
void outbox_imap_session_open_async (OutboxImapSession *session,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean outbox_imap_session_open_finish (OutboxImapSession *session,
                                          GAsyncResult *result,
                                          GError **error);

/* Finds the mailbox for sent mail: the one marked \Sent (RFC 6154, asked
 * for with LIST ... RETURN (SPECIAL-USE) when SPECIAL-USE is offered), else
 * @configured_name (nullable; UTF-8, encoded to modified UTF-7 when it is
 * not ASCII) when it exists, else "Sent" when it exists.  Mailboxes marked
 * \Noselect or \NonExistent do not count.  Fails with
 * OUTBOX_IMAP_ERROR_NO_SENT_FOLDER when none is found. */
void outbox_imap_session_find_sent_async (OutboxImapSession *session,
                                          const char *configured_name,
                                          GCancellable *cancellable,
                                          GAsyncReadyCallback callback,
                                          gpointer user_data);
OutboxImapMailbox *outbox_imap_session_find_sent_finish (OutboxImapSession *session,
                                                         GAsyncResult *result,
                                                         GError **error);

/* APPENDs exactly @size octets read from @message (already with CR LF line
 * ends) to @mailbox (a name as the server spells it, such as
 * OutboxImapMailbox.name) with @flags (nullable, such as "\\Seen") and the
 * internal date @date (nullable: the server's clock).  A literal+ {size+}
 * goes out when LITERAL+ (or LITERAL- for small messages) is offered,
 * otherwise the client waits for the server's "+".  The message is streamed
 * in blocks.  A NO or BAD reply fails with OUTBOX_IMAP_ERROR_REPLY quoting
 * the server ("NO [TRYCREATE] ..."); the session stays open.  A message
 * shorter or longer than @size, or a read error, drops the connection so
 * that the server discards the partial message. */
void outbox_imap_session_append_async (OutboxImapSession *session,
                                       const char *mailbox,
                                       GInputStream *message,
                                       guint64 size,
                                       const char *const *flags,
                                       GDateTime *date,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean outbox_imap_session_append_finish (OutboxImapSession *session,
                                            GAsyncResult *result,
                                            GError **error);

/* Sends LOGOUT, waits briefly for BYE and the OK, and closes.  Errors are
 * only worth logging. */
void outbox_imap_session_logout_async (OutboxImapSession *session,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
gboolean outbox_imap_session_logout_finish (OutboxImapSession *session,
                                            GAsyncResult *result,
                                            GError **error);

/* TRUE while the session is logged in and can take another command. */
gboolean outbox_imap_session_is_open (OutboxImapSession *session);
/* (nullable) (transfer none) the capabilities in force, upper case. */
const char *const *outbox_imap_session_get_capabilities (OutboxImapSession *session);
gboolean outbox_imap_session_has_capability (OutboxImapSession *session, const char *name);
/* (nullable) (transfer none) the peer certificate once TLS is up. */
GTlsCertificate *outbox_imap_session_get_peer_certificate (OutboxImapSession *session);
/* (nullable) (transfer none) the last status the server sent (greeting,
 * BYE or tagged reply) as outbox_imap_response_to_string() shows it. */
const char *outbox_imap_session_get_last_server_text (OutboxImapSession *session);

G_END_DECLS
