/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-imap-parser.h"
#include "outbox-session.h"

G_BEGIN_DECLS

/* What only IMAP fails with; everything the protocols share is
 * OUTBOX_SESSION_ERROR_* (the parser's PROTOCOL, NO and BAD as REPLY, a BYE
 * greeting as CLOSED, PREAUTH in plaintext as TLS_REQUIRED). */
#define OUTBOX_IMAP_ERROR (outbox_imap_error_quark ())
GQuark outbox_imap_error_quark (void);

typedef enum
{
  OUTBOX_IMAP_ERROR_NO_SENT_FOLDER, /* no \Sent, configured or "Sent" mailbox */
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

/* Everything a session needs to reach and sign in to one server.  The
 * session copies it. */
typedef struct
{
  const OutboxServerUrl *url;  /* imaps, imap (STARTTLS required) or imap+insecure;
                                * a user is required unless the server greets
                                * with PREAUTH */
  const char *password;        /* (nullable) the password or access token */
  OutboxSaslSecretKind secret_kind;
  const char *tls_ca_file;     /* (nullable) PEM: trust these CAs only */
  const char *tls_fingerprint; /* (nullable) "sha256:HEX" (colons allowed) */
  const char *auth_mech;       /* (nullable) pinned SASL mechanism */
  OutboxImapTimeouts timeouts;
} OutboxImapConfig;

/* One IMAP client connection (RFC 3501): an OutboxSession, opened, signed
 * in and closed with outbox_session_open_async() and
 * outbox_session_quit_async() (LOGOUT, then BYE and the tagged OK), which
 * fail with OUTBOX_SESSION_ERROR_*.
 *
 * What IMAP adds to the base's open sequence: the greeting may be
 * "* PREAUTH", which needs no sign-in (and fails with TLS_REQUIRED in
 * plaintext when STARTTLS is required, as STARTTLS is then impossible), or
 * "* BYE", which fails with CLOSED; a [CAPABILITY ...] code in the greeting
 * saves the CAPABILITY command.  The sign-in is AUTHENTICATE with the
 * strongest AUTH=... mechanism that suits the secret (the initial response
 * on the command line only with SASL-IR, RFC 4959), else LOGIN for a
 * password unless LOGINDISABLED.  The capabilities are asked for again
 * after it unless its OK lists them. */
#define OUTBOX_TYPE_IMAP_SESSION (outbox_imap_session_get_type ())
G_DECLARE_FINAL_TYPE (OutboxImapSession, outbox_imap_session, OUTBOX, IMAP_SESSION, OutboxSession)

OutboxImapSession *outbox_imap_session_new (const OutboxImapConfig *config);

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
 * in blocks.  A NO or BAD reply fails with OUTBOX_SESSION_ERROR_REPLY quoting
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

/* (nullable) (transfer none) the capabilities in force, upper case: NULL
 * while unknown. */
const char *const *outbox_imap_session_get_capabilities (OutboxImapSession *session);
gboolean outbox_imap_session_has_capability (OutboxImapSession *session, const char *name);
/* (nullable) (transfer none) the last status the server sent (greeting,
 * BYE or tagged reply) as outbox_imap_response_to_string() shows it. */
const char *outbox_imap_session_get_last_server_text (OutboxImapSession *session);

G_END_DECLS
