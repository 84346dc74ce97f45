/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Delivery status notifications (RFC 3461): what a message asks the
 * servers on its way to tell its sender.  One parser for every face that
 * takes them: the Submit options, the account settings, outbox send and
 * outbox-sendmail (-N, -R, -V and the parameters of -bs).  Errors are
 * OUTBOX_ERROR_INVALID_ARGS and say what would do; callers prefix the
 * option's name. */

/* When to notify (NOTIFY=).  NEVER stands alone; 0 asks nothing, and the
 * servers' default applies (failure and delay). */
typedef enum
{
  OUTBOX_DSN_NOTIFY_DEFAULT = 0,
  OUTBOX_DSN_NOTIFY_NEVER = 1 << 0,
  OUTBOX_DSN_NOTIFY_SUCCESS = 1 << 1,
  OUTBOX_DSN_NOTIFY_FAILURE = 1 << 2,
  OUTBOX_DSN_NOTIFY_DELAY = 1 << 3,
} OutboxDsnNotify;

/* What a notification carries of the message (RET=). */
typedef enum
{
  OUTBOX_DSN_RET_DEFAULT = 0, /* not asked: the server's choice */
  OUTBOX_DSN_RET_FULL,
  OUTBOX_DSN_RET_HDRS,
} OutboxDsnRet;

/* RFC 3461 section 4.4: an ENVID is at most 100 characters, xtext-encoded. */
#define OUTBOX_DSN_ENVID_MAX 100

/* What one transaction asks for. */
typedef struct
{
  OutboxDsnNotify notify;
  OutboxDsnRet ret;
  const char *envid; /* (nullable) as given, not encoded */
  gboolean required; /* rather wait than send without, where DSN is not offered */
} OutboxDsnRequest;

/* Whether @request (nullable) asks a server for anything. */
gboolean outbox_dsn_request_asks (const OutboxDsnRequest *request);

/* "never", or one or more of "success", "failure" and "delay", in any
 * case; each of @words may itself be a list separated by commas or
 * spaces ("failure,delay").  Nothing at all is refused. */
gboolean outbox_dsn_notify_from_words (const char *const *words,
                                       OutboxDsnNotify *out_notify,
                                       GError **error);
/* The same for one list, as sendmail -N and outbox send --notify take it. */
gboolean outbox_dsn_notify_parse (const char *list, OutboxDsnNotify *out_notify, GError **error);
/* (transfer full) The lower-case words of @notify, NULL-terminated, in the
 * order never, success, failure, delay; empty for DEFAULT. */
char **outbox_dsn_notify_to_words (OutboxDsnNotify notify);
/* (transfer full) The words joined by commas: "success,failure" (or
 * "SUCCESS,FAILURE", as NOTIFY= carries them, when @upper). */
char *outbox_dsn_notify_to_string (OutboxDsnNotify notify, gboolean upper);

/* "full" or "hdrs", in any case. */
gboolean outbox_dsn_ret_parse (const char *word, OutboxDsnRet *out_ret, GError **error);
/* (nullable) "full", "hdrs", or NULL for DEFAULT. */
const char *outbox_dsn_ret_to_string (OutboxDsnRet ret);

/* 1 to OUTBOX_DSN_ENVID_MAX characters of printable ASCII (space
 * included), also once xtext-encoded. */
gboolean outbox_dsn_envid_validate (const char *envid, GError **error);

/* RFC 3461 section 4: every octet outside "!".."~", and "+" and "=",
 * becomes "+XX" (upper-case hex). */
char *outbox_xtext_encode (const char *text);
/* (nullable) The inverse; NULL when @text is not xtext or holds a NUL. */
char *outbox_xtext_decode (const char *text);
/* RFC 6533 section 3: the utf-8-addr-xtext form of an address for
 * "ORCPT=utf-8;": printable ASCII but "+", "=" and "\" as it is, every
 * other character as \x{HEX} (its code point).  @address is UTF-8. */
char *outbox_utf8_addr_xtext_encode (const char *address);

G_END_DECLS
