/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

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

/* Limits a server's responses must respect.  The client asks for nothing
 * big (no FETCH), so these are generous for what it reads and small enough
 * to bound memory. */
#define OUTBOX_IMAP_MAX_LINE 16384            /* octets a line, CR LF excluded */
#define OUTBOX_IMAP_MAX_LITERAL (1024 * 1024) /* octets a literal */
#define OUTBOX_IMAP_MAX_RESPONSE (2 * 1024 * 1024) /* lines and literals together */
#define OUTBOX_IMAP_MAX_ITEMS 4096 /* atoms, strings and lists in one response */
#define OUTBOX_IMAP_MAX_DEPTH 16   /* nesting of parenthesised lists */

/* Responses ---------------------------------------------------------------- */

typedef enum
{
  OUTBOX_IMAP_RESPONSE_TAGGED,       /* "A1 OK ..." */
  OUTBOX_IMAP_RESPONSE_UNTAGGED,     /* "* ..." */
  OUTBOX_IMAP_RESPONSE_CONTINUATION, /* "+ ..." */
} OutboxImapResponseKind;

typedef enum
{
  OUTBOX_IMAP_STATUS_NONE, /* untagged data and continuations */
  OUTBOX_IMAP_STATUS_OK,
  OUTBOX_IMAP_STATUS_NO,
  OUTBOX_IMAP_STATUS_BAD,
  OUTBOX_IMAP_STATUS_PREAUTH, /* untagged only */
  OUTBOX_IMAP_STATUS_BYE,     /* untagged only */
} OutboxImapStatus;

typedef enum
{
  OUTBOX_IMAP_DATA_NONE,       /* status responses and continuations */
  OUTBOX_IMAP_DATA_CAPABILITY, /* "* CAPABILITY ..." */
  OUTBOX_IMAP_DATA_LIST,       /* "* LIST (...) "/" name" */
  OUTBOX_IMAP_DATA_EXISTS,     /* "* 23 EXISTS" */
  OUTBOX_IMAP_DATA_OTHER,      /* well-formed, not interpreted: see raw */
} OutboxImapDataKind;

/* One mailbox from a LIST response (RFC 3501 section 7.2.2, RFC 6154). */
typedef struct
{
  char *name;         /* (owned) as the server spells it, unquoted: what commands use */
  char *display_name; /* (owned) modified UTF-7 decoded, control characters
                       * replaced by '?': for people only */
  char **flags;       /* (owned) as sent: "\\Sent", "\\HasNoChildren" */
  char delimiter;     /* hierarchy delimiter; '\0' for NIL */
} OutboxImapMailbox;

OutboxImapMailbox *outbox_imap_mailbox_copy (const OutboxImapMailbox *mailbox);
void outbox_imap_mailbox_free (OutboxImapMailbox *mailbox);
/* Flags compare case-insensitively: "\\Sent", "\\Noselect". */
gboolean outbox_imap_mailbox_has_flag (const OutboxImapMailbox *mailbox, const char *flag);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxImapMailbox, outbox_imap_mailbox_free)

/* Every text in a response is valid UTF-8 with control characters replaced
 * by '?', except mailbox->name (the server's octets, never shown). */
typedef struct
{
  OutboxImapResponseKind kind;
  char *tag;               /* (owned) (nullable) tagged responses only */
  OutboxImapStatus status;
  char *code;              /* (owned) (nullable) response code, upper case: "TRYCREATE" */
  char *code_args;         /* (owned) (nullable) what follows the code inside the brackets */
  char *text;              /* (owned) human-readable text, "" when there is none */
  OutboxImapDataKind data;
  char **capabilities;     /* (owned) (nullable) upper case, from CAPABILITY data or a
                            * [CAPABILITY ...] code */
  OutboxImapMailbox *mailbox; /* (owned) (nullable) LIST only */
  guint32 number;          /* EXISTS only */
  char *raw;               /* (owned) (nullable) OTHER only: the first line */
} OutboxImapResponse;

void outbox_imap_response_free (OutboxImapResponse *response);
/* "NO [TRYCREATE] No such mailbox" or "BYE shutting down": status, code and
 * text, for messages to people. */
char *outbox_imap_response_to_string (const OutboxImapResponse *response);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxImapResponse, outbox_imap_response_free)

/* The parser ---------------------------------------------------------------
 *
 * Strict and incremental (RFC 3501 section 9, IMAP4rev2 leniencies: text
 * after a status may be empty).  Feed it lines without their CR LF.  When a
 * line of untagged data ends in a literal marker {n} (or {n+}), the parser
 * needs n octets before the response goes on; the following lines supply
 * them: each line with the CR LF the line reader removed, and the rest of
 * the line after the last literal octet continues the response.  (A bare
 * LF inside a literal is therefore counted as CR LF: the client only reads
 * small literals, such as mailbox names, which hold no line break.)
 *
 * Errors are OUTBOX_IMAP_ERROR_PROTOCOL: a bad or missing tag or status,
 * unbalanced parentheses or quotes, NUL or CR in a line, a bad escape, a
 * line over OUTBOX_IMAP_MAX_LINE, a literal over OUTBOX_IMAP_MAX_LITERAL, a
 * response over OUTBOX_IMAP_MAX_RESPONSE, OUTBOX_IMAP_MAX_ITEMS or
 * OUTBOX_IMAP_MAX_DEPTH.  After an error the parser starts afresh with the
 * next line, but the connection is best dropped. */
typedef struct _OutboxImapParser OutboxImapParser;

OutboxImapParser *outbox_imap_parser_new (void);
void outbox_imap_parser_free (OutboxImapParser *parser);
/* Returns FALSE on error.  On success *out_response is NULL while the
 * response needs more lines, else the complete response (owned by the
 * caller). */
gboolean outbox_imap_parser_feed_line (OutboxImapParser *parser,
                                       const char *line,
                                       gsize len,
                                       OutboxImapResponse **out_response,
                                       GError **error);
/* Octets of literal still awaited; 0 when none is. */
gsize outbox_imap_parser_get_literal_needed (OutboxImapParser *parser);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxImapParser, outbox_imap_parser_free)

/* Modified UTF-7 mailbox names (RFC 3501 section 5.1.3) -------------------- */

/* NULL with OUTBOX_IMAP_ERROR_PROTOCOL when @name is not valid modified
 * UTF-7 (8-bit octets, a bad shift sequence, printable ASCII encoded in
 * base64, an unpaired surrogate). */
char *outbox_imap_utf7_decode (const char *name, GError **error);
/* Encodes a UTF-8 name; NULL when @utf8 is not valid UTF-8. */
char *outbox_imap_utf7_encode (const char *utf8);

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
