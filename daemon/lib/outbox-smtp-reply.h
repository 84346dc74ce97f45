/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-session.h"

G_BEGIN_DECLS

#define OUTBOX_SMTP_ERROR (outbox_smtp_error_quark ())
GQuark outbox_smtp_error_quark (void);

/* What only SMTP fails with; everything sessions share is
 * OUTBOX_SESSION_ERROR. */
typedef enum
{
  OUTBOX_SMTP_ERROR_UNSUPPORTED, /* message needs 8BITMIME/SMTPUTF8/SIZE */
  /* The message requires DSN (dsn-required), which the server does not
   * offer: nothing was sent, and another server, or the same one later,
   * may do. */
  OUTBOX_SMTP_ERROR_DSN_NOT_OFFERED,
} OutboxSmtpError;

/* Limits a reply must respect (RFC 5321 section 4.5.3.1.5 allows 512 octets
 * a line; real servers go over, so we allow more but not without bound). */
#define OUTBOX_SMTP_REPLY_MAX_LINE 2048
#define OUTBOX_SMTP_REPLY_MAX_LINES 128

typedef struct
{
  guint code;   /* 200..559, first digit 2..5, second 0..5 */
  char **lines; /* (owned) texts after "NNN-" / "NNN " / "NNN", sanitised:
                 * control characters replaced by '?' */
} OutboxSmtpReply;

OutboxSmtpReply *outbox_smtp_reply_new (guint code, const char *text);
void outbox_smtp_reply_free (OutboxSmtpReply *reply);
/* All lines joined by a space, prefixed by the code: "550 5.1.1 no such user" */
char *outbox_smtp_reply_to_string (const OutboxSmtpReply *reply);
static inline gboolean
outbox_smtp_reply_is_positive (const OutboxSmtpReply *reply)
{
  return reply->code >= 200 && reply->code < 400;
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSmtpReply, outbox_smtp_reply_free)

/* Strict incremental parser for one reply (RFC 5321 section 4.2).
 *
 * Feed it lines without their CRLF (a bare trailing CR is tolerated and
 * removed).  Every line must be "NNN", "NNN " or "NNN-" followed by text,
 * with NNN matching [2-5][0-5][0-9] and the same on every line of the reply;
 * a line longer than OUTBOX_SMTP_REPLY_MAX_LINE or more than
 * OUTBOX_SMTP_REPLY_MAX_LINES lines is an error.  Errors are
 * OUTBOX_SMTP_ERROR_PROTOCOL. */
typedef struct _OutboxSmtpReplyParser OutboxSmtpReplyParser;

OutboxSmtpReplyParser *outbox_smtp_reply_parser_new (void);
void outbox_smtp_reply_parser_free (OutboxSmtpReplyParser *parser);
/* Returns FALSE on error.  On success *out_reply is NULL while more lines are
 * needed, and the complete reply (owned by the caller) after the last line;
 * the parser is then ready for the next reply. */
gboolean outbox_smtp_reply_parser_feed (OutboxSmtpReplyParser *parser,
                                        const char *line,
                                        gsize len,
                                        OutboxSmtpReply **out_reply,
                                        GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSmtpReplyParser, outbox_smtp_reply_parser_free)

/* What an EHLO reply offers (RFC 5321 section 4.1.1.1; keywords are
 * case-insensitive; unknown ones are ignored). */
typedef enum
{
  OUTBOX_SMTP_CAP_PIPELINING = 1 << 0,
  OUTBOX_SMTP_CAP_8BITMIME = 1 << 1,
  OUTBOX_SMTP_CAP_SMTPUTF8 = 1 << 2,
  OUTBOX_SMTP_CAP_STARTTLS = 1 << 3,
  OUTBOX_SMTP_CAP_SIZE = 1 << 4,
  OUTBOX_SMTP_CAP_AUTH = 1 << 5,
  OUTBOX_SMTP_CAP_ENHANCEDSTATUSCODES = 1 << 6,
  OUTBOX_SMTP_CAP_CHUNKING = 1 << 7,
  OUTBOX_SMTP_CAP_DSN = 1 << 8, /* RFC 3461 */
} OutboxSmtpCapFlags;

/* The SASL mechanisms of the AUTH keyword that Outbox knows (see
 * outbox_sasl_mechanisms()); others are left out. */
typedef enum
{
  OUTBOX_SMTP_AUTH_PLAIN = 1 << 0,
  OUTBOX_SMTP_AUTH_LOGIN = 1 << 1,
  OUTBOX_SMTP_AUTH_SCRAM_SHA_1 = 1 << 2,
  OUTBOX_SMTP_AUTH_SCRAM_SHA_1_PLUS = 1 << 3,
  OUTBOX_SMTP_AUTH_SCRAM_SHA_256 = 1 << 4,
  OUTBOX_SMTP_AUTH_SCRAM_SHA_256_PLUS = 1 << 5,
  OUTBOX_SMTP_AUTH_OAUTHBEARER = 1 << 6,
  OUTBOX_SMTP_AUTH_XOAUTH2 = 1 << 7,
} OutboxSmtpAuthMechs;

typedef struct
{
  OutboxSmtpCapFlags flags;
  guint64 size_limit;             /* SIZE argument; 0 when none is given */
  OutboxSmtpAuthMechs auth_mechs; /* from "AUTH PLAIN LOGIN ..." */
} OutboxSmtpCaps;

/* Parses the lines of a 250 reply to EHLO (the first line is the greeting
 * and is skipped).  Never fails: a malformed keyword line is ignored. */
void outbox_smtp_caps_parse (const OutboxSmtpReply *ehlo_reply, OutboxSmtpCaps *caps);

/* (transfer full) The keywords of a 250 reply to EHLO that
 * outbox_smtp_caps_parse() does not know, upper-cased, each once, in the
 * order offered, such as {"PIPECONNECT", "BINARYMIME", NULL}; a word that
 * is not an ehlo-keyword (RFC 5321 section 4.1.1.1: letters, digits and
 * "-") is left out, so every name is safe to show. */
char **outbox_smtp_caps_ignored_keywords (const OutboxSmtpReply *ehlo_reply);

/* (transfer full) The names of the mechanisms in @mechs, such as
 * {"PLAIN", "SCRAM-SHA-256", NULL}. */
char **outbox_smtp_auth_mechs_to_strv (OutboxSmtpAuthMechs mechs);

G_END_DECLS
