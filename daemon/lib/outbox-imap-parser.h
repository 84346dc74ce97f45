/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-session.h"

G_BEGIN_DECLS

/* The IMAP response parser (RFC 3501) and the helpers for what it reads:
 * mailboxes, response texts and modified UTF-7 names.  It knows nothing
 * about connections, so that it can be tested and fuzzed on its own; its
 * errors are in the domain all sessions share (outbox-session.h). */

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
/* What a mailbox name looks like to people: modified UTF-7 decoded when it
 * is that, as sent otherwise (a server with UTF8=ACCEPT sends UTF-8), with
 * control characters replaced. */
char *outbox_imap_mailbox_display_name (const char *name);

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
 * Errors are OUTBOX_SESSION_ERROR_PROTOCOL: a bad or missing tag or status,
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

/* RFC 3501 ATOM-CHAR: printable ASCII except the atom-specials. */
gboolean outbox_imap_is_atom_char (char ch);

/* Modified UTF-7 mailbox names (RFC 3501 section 5.1.3) -------------------- */

/* NULL with OUTBOX_SESSION_ERROR_PROTOCOL when @name is not valid modified
 * UTF-7 (8-bit octets, a bad shift sequence, printable ASCII encoded in
 * base64, an unpaired surrogate). */
char *outbox_imap_utf7_decode (const char *name, GError **error);
/* Encodes a UTF-8 name; NULL when @utf8 is not valid UTF-8. */
char *outbox_imap_utf7_encode (const char *utf8);

G_END_DECLS
