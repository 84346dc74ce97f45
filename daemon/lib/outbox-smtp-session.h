/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-smtp-dsn.h"
#include "outbox-smtp-reply.h"
#include "outbox-url.h"

G_BEGIN_DECLS

/* Per-command timeouts in seconds (RFC 5321 section 4.5.3.2 by default). */
typedef struct
{
  guint connect;    /* TCP connect and TLS handshake: 60 */
  guint greeting;   /* 220 greeting: 300 */
  guint command;    /* EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET, QUIT: 300 */
  guint data_init;  /* reply to DATA: 120 */
  guint data_block; /* each write of message data: 180 */
  guint data_final; /* reply to the final dot: 600 */
} OutboxSmtpTimeouts;

void outbox_smtp_timeouts_init_default (OutboxSmtpTimeouts *timeouts);

/* Everything a session needs to reach and log in to one server.  The
 * session copies it. */
typedef struct
{
  const OutboxServerUrl *url;  /* scheme decides TLS; user decides AUTH */
  const char *password;        /* (nullable) the password or access token */
  OutboxSaslSecretKind secret_kind;
  const char *tls_ca_file;     /* (nullable) PEM: trust these CAs only */
  const char *tls_fingerprint; /* (nullable) "sha256:HEX" (colons allowed) */
  const char *auth_mech;       /* (nullable) pinned SASL mechanism; NULL: the strongest */
  const char *helo_name;       /* (nullable) default: the local address
                                * literal such as "[127.0.0.1]" */
  OutboxSmtpTimeouts timeouts;
} OutboxSmtpConfig;

typedef enum
{
  OUTBOX_SMTP_SEND_FLAGS_NONE = 0,
  OUTBOX_SMTP_SEND_8BITMIME = 1 << 0, /* body has 8-bit octets */
  OUTBOX_SMTP_SEND_SMTPUTF8 = 1 << 1, /* an address is not ASCII */
} OutboxSmtpSendFlags;

/* The outcome of one mail transaction.
 *
 * rcpt_replies[i] answers rcpts[i]; it is NULL for a recipient whose reply
 * never came (the connection failed first) and for every recipient when MAIL
 * was refused (replies to pipelined RCPTs after a refused MAIL say nothing
 * about the recipient; stop_reply applies).  final_reply is the reply to
 * the terminating dot (or to BDAT LAST), or NULL when none came.  When the
 * transaction stopped on a negative reply to MAIL, DATA or a BDAT chunk
 * before the last, that reply is in stop_reply and
 * applies to every recipient that RCPT accepted.  error is set when the
 * transaction did not run to its end for a reason other than a reply (lost
 * connection, timeout, protocol violation, TLS, unreadable body...): then
 * the session is closed.  unknown_outcome is TRUE when the final dot (or
 * BDAT LAST) was sent but no reply was read: the server may have taken the message.
 * dsn_not_offered is TRUE when the transaction was asked for delivery
 * status notifications that the server does not offer, and went without
 * them. */
typedef struct
{
  GPtrArray *rcpt_replies;     /* (element-type OutboxSmtpReply) (nullable elements) */
  OutboxSmtpReply *stop_reply; /* (nullable) */
  OutboxSmtpReply *final_reply; /* (nullable) */
  GError *error;               /* (nullable) */
  gboolean unknown_outcome;
  gboolean dsn_not_offered;
} OutboxSmtpSendResult;

void outbox_smtp_send_result_free (OutboxSmtpSendResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSmtpSendResult, outbox_smtp_send_result_free)

/* One SMTP client connection: an OutboxSession (opened, signed in and
 * closed with outbox_session_open_async() and outbox_session_quit_async()).
 * The protocol state machine is in outbox-smtp-session.c; it talks to
 * whatever GIOStream the session gives it (plain TCP, or TLS over it) and
 * never knows which.
 *
 * Opening reads the greeting, sends EHLO (HELO when EHLO is refused and
 * neither TLS nor AUTH is needed), STARTTLS when the URL asks for it, EHLO
 * again, and AUTH when the URL has a user.  When the failure was a server
 * reply, outbox_smtp_session_get_last_reply() returns it. */
#define OUTBOX_TYPE_SMTP_SESSION (outbox_smtp_session_get_type ())
G_DECLARE_FINAL_TYPE (OutboxSmtpSession, outbox_smtp_session, OUTBOX, SMTP_SESSION, OutboxSession)

OutboxSmtpSession *outbox_smtp_session_new (const OutboxSmtpConfig *config);

/* Runs one mail transaction: MAIL FROM (with SIZE=, BODY=8BITMIME,
 * SMTPUTF8 as needed and offered), RCPT TO for each recipient (pipelined
 * when PIPELINING is offered), DATA only when a recipient was accepted, the
 * body read from @body to its end, normalised and dot-stuffed, and the final
 * dot.  Where the server offers CHUNKING, BDAT chunks instead of DATA: the
 * same normalised octets without dot-stuffing, the last chunk sent only
 * once @body has reported its end (a server that refuses BDAT outright gets
 * the transaction again with DATA).  A body read error aborts the
 * connection without sending the final dot or BDAT LAST.  Resets the
 * previous transaction first when it was left unfinished.
 *
 * @dsn (nullable) asks for delivery status notifications (RFC 3461): where
 * the server offers DSN, RET= and ENVID= go on MAIL, NOTIFY= and ORCPT= on
 * every RCPT.  Where it does not, the transaction goes without them and
 * the result says so, unless @dsn is required: then nothing is sent and
 * the result's error is OUTBOX_SMTP_ERROR_DSN_NOT_OFFERED.  @dsn is not
 * kept after the call.  Never fails: everything is in the result. */
void outbox_smtp_session_send_async (OutboxSmtpSession *session,
                                     const char *from,
                                     const char *const *rcpts,
                                     GInputStream *body,
                                     guint64 body_size,
                                     OutboxSmtpSendFlags flags,
                                     const OutboxDsnRequest *dsn,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
OutboxSmtpSendResult *outbox_smtp_session_send_finish (OutboxSmtpSession *session,
                                                       GAsyncResult *result);

const OutboxSmtpCaps *outbox_smtp_session_get_caps (OutboxSmtpSession *session);
/* (transfer none) The EHLO keywords the server offers that Outbox does not
 * use (see outbox_smtp_caps_ignored_keywords()); empty before EHLO. */
const char *const *outbox_smtp_session_get_ignored_keywords (OutboxSmtpSession *session);
/* (nullable) (transfer none) the last reply read from the server. */
const OutboxSmtpReply *outbox_smtp_session_get_last_reply (OutboxSmtpSession *session);

G_END_DECLS
