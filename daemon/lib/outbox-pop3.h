/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-session.h"

G_BEGIN_DECLS

/* Parsing ----------------------------------------------------------------
 *
 * The parsers the session reads every server answer with; public so that
 * they can be tested and fuzzed on their own. */

/* RFC 2449 section 4: a reply line is at most 512 octets, CR LF included;
 * longer lines are refused before they reach the parser. */
#define OUTBOX_POP3_MAX_REPLY_LINE (512 - 2)
/* A CAPA answer lists a dozen capabilities; a server sending more lines
 * than this in one multi-line reply is not answering CAPA. */
#define OUTBOX_POP3_MAX_REPLY_LINES 256

typedef enum
{
  OUTBOX_POP3_STATUS_OK,           /* "+OK" */
  OUTBOX_POP3_STATUS_ERR,          /* "-ERR" */
  OUTBOX_POP3_STATUS_CONTINUATION, /* "+ challenge" during AUTH (RFC 5034) */
} OutboxPop3Status;

/* What may answer a command. */
typedef enum
{
  OUTBOX_POP3_EXPECT_STATUS = 0,
  OUTBOX_POP3_EXPECT_MULTILINE = 1 << 0,    /* lines up to "." follow "+OK" (CAPA) */
  OUTBOX_POP3_EXPECT_CONTINUATION = 1 << 1, /* "+ " may answer (AUTH) */
} OutboxPop3Expect;

/* One reply (RFC 1939 section 3).  Every string is sanitised: valid UTF-8
 * without control characters (see outbox_text_sanitize()). */
typedef struct
{
  OutboxPop3Status status;
  char *text;   /* (owned) what follows the status indicator and one space */
  char **lines; /* (owned) (nullable) the body after "+OK" when one was
                 * expected, dot-unstuffed, without the final "." */
} OutboxPop3Reply;

void outbox_pop3_reply_free (OutboxPop3Reply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxPop3Reply, outbox_pop3_reply_free)

/* Reads one reply a line at a time: a status line ("+OK", "-ERR", or "+"
 * when @expect allows a continuation, each alone or followed by a space)
 * and, for "+OK" when @expect says so, the body up to a lone ".". */
typedef struct _OutboxPop3ReplyParser OutboxPop3ReplyParser;

OutboxPop3ReplyParser *outbox_pop3_reply_parser_new (OutboxPop3Expect expect);
void outbox_pop3_reply_parser_free (OutboxPop3ReplyParser *parser);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxPop3ReplyParser, outbox_pop3_reply_parser_free)

/* Feeds one line without its CR LF (@line need not be NUL-terminated).
 * Sets *@out_reply to the reply once it is complete, NULL while more lines
 * are needed.  Fails with OUTBOX_SESSION_ERROR_PROTOCOL on a malformed status
 * line or a body longer than OUTBOX_POP3_MAX_REPLY_LINES lines.  After a
 * reply or an error the parser waits for a new status line. */
gboolean outbox_pop3_reply_parser_feed_line (OutboxPop3ReplyParser *parser,
                                             const char *line,
                                             gsize len,
                                             OutboxPop3Reply **out_reply,
                                             GError **error);

/* TRUE between the "+OK" of a multi-line reply and its final ".": the
 * next line is a body line, not a status line. */
gboolean outbox_pop3_reply_parser_in_body (OutboxPop3ReplyParser *parser);

/* The text of a "+OK" to STAT (RFC 1939 section 5): "nn mm", decimal
 * numbers without sign, each fitting in 64 bits, then the end or a space
 * and anything.  FALSE, leaving the outputs alone, for anything else. */
gboolean outbox_pop3_parse_stat (const char *text, guint64 *out_messages, guint64 *out_octets);

/* (nullable) The RFC 2449 section 8 response code at the start of a
 * reply's text: "[IN-USE] Do not disturb" -> "IN-USE", "[SYS/TEMP] x" ->
 * "SYS/TEMP".  A code is one or more levels of letters, digits and "-"
 * separated by "/"; NULL when the text does not start with one. */
char *outbox_pop3_parse_response_code (const char *text);

/* TRUE when a line of a CAPA answer has @name as its first word
 * (case-insensitive, RFC 2449 section 5). */
gboolean outbox_pop3_capabilities_have (const char *const *capabilities, const char *name);
/* TRUE when the "SASL" line of a CAPA answer lists @mechanism
 * (case-insensitive, RFC 2449 section 6.3). */
gboolean outbox_pop3_capabilities_have_sasl (const char *const *capabilities,
                                             const char *mechanism);

/* Per-step timeouts in seconds.  RFC 1939 gives servers an inactivity timer
 * of at least ten minutes; a client that is waiting for one short reply
 * needs far less. */
typedef struct
{
  guint connect;  /* TCP connect and each TLS handshake: 60 */
  guint greeting; /* the "+OK" greeting: 60 */
  guint command;  /* each command and its reply: 60 */
} OutboxPop3Timeouts;

void outbox_pop3_timeouts_init_default (OutboxPop3Timeouts *timeouts);

/* Everything a session needs to reach and log in to one server.  The
 * session copies it. */
typedef struct
{
  const OutboxServerUrl *url;  /* pop3s, pop3 (STLS required) or pop3+insecure;
                                * the user decides whether open logs in */
  const char *password;        /* (nullable) the password or access token */
  OutboxSaslSecretKind secret_kind;
  const char *tls_ca_file;     /* (nullable) PEM: trust these CAs only */
  const char *tls_fingerprint; /* (nullable) "sha256:HEX" (colons allowed) */
  const char *auth_mech;       /* (nullable) pinned SASL mechanism */
  OutboxPop3Timeouts timeouts;
} OutboxPop3Config;

/* One POP3 client connection (RFC 1939, CAPA and STLS from RFC 2449 and
 * RFC 2595, AUTH from RFC 5034): an OutboxSession, opened, signed in and
 * closed with outbox_session_open_async() and outbox_session_quit_async().
 * Enough to check an account and for POP-before-SMTP: it signs in, counts
 * the maildrop and leaves; it never reads or deletes a message.
 *
 * The sign-in uses SASL (AUTH) when CAPA lists a "SASL" mechanism that
 * suits the secret, USER and PASS otherwise (passwords only). */
#define OUTBOX_TYPE_POP3_SESSION (outbox_pop3_session_get_type ())
G_DECLARE_FINAL_TYPE (OutboxPop3Session, outbox_pop3_session, OUTBOX, POP3_SESSION, OutboxSession)

OutboxPop3Session *outbox_pop3_session_new (const OutboxPop3Config *config);

/* STAT: the number of messages in the maildrop and their total size. */
void outbox_pop3_session_stat_async (OutboxPop3Session *session,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean outbox_pop3_session_stat_finish (OutboxPop3Session *session,
                                          GAsyncResult *result,
                                          guint64 *out_messages,
                                          guint64 *out_octets,
                                          GError **error);

/* (nullable) (transfer none) the lines of the last successful CAPA answer
 * (over TLS when TLS is used), sanitised: NULL when CAPA was never
 * answered. */
const char *const *outbox_pop3_session_get_capabilities (OutboxPop3Session *session);
/* TRUE when a capability line's first word is @name (case-insensitive). */
gboolean outbox_pop3_session_has_capability (OutboxPop3Session *session, const char *name);
/* (nullable) (transfer none) the last status line the server sent, such as
 * "-ERR [AUTH] Authentication failed.", with control characters removed. */
const char *outbox_pop3_session_get_last_reply (OutboxPop3Session *session);

G_END_DECLS
