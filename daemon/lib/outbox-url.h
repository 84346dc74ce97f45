/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  OUTBOX_PROTOCOL_SMTP,
  OUTBOX_PROTOCOL_IMAP,
  OUTBOX_PROTOCOL_POP3,
} OutboxProtocol;

typedef enum
{
  OUTBOX_SECURITY_TLS,      /* implicit TLS: smtps, imaps, pop3s */
  OUTBOX_SECURITY_STARTTLS, /* STARTTLS/STLS required: smtp, imap, pop3 */
  OUTBOX_SECURITY_INSECURE, /* plaintext: smtp+insecure, ... by name only */
} OutboxSecurity;

/* A parsed server URL such as smtps://me@mail.example.org:465.
 *
 * Accepted schemes: smtps smtp smtp+insecure imaps imap imap+insecure pop3s
 * pop3 pop3+insecure.  The user part is percent-decoded and optional; a
 * password in the URL ("user:pw@") is refused (passwords live in libsecret).
 * Host names are IDNA-checked; IPv6 literals go in brackets. Default ports:
 * smtps 465, smtp 587, smtp+insecure 25, imaps 993, imap 143, pop3s 995,
 * pop3 110.  No path, query or fragment is accepted (a lone trailing "/" is).
 */
typedef struct
{
  OutboxProtocol protocol;
  OutboxSecurity security;
  char *user;   /* (nullable) (owned) */
  char *host;   /* (owned) without brackets for IPv6 */
  guint16 port; /* never 0 */
} OutboxServerUrl;

/* Returns NULL and OUTBOX_ERROR_INVALID_ACCOUNT with a message naming what is
 * wrong and what a valid URL looks like. */
OutboxServerUrl *outbox_server_url_parse (const char *url, GError **error);
OutboxServerUrl *outbox_server_url_copy (const OutboxServerUrl *url);
void outbox_server_url_free (OutboxServerUrl *url);
/* The canonical form, with the port always written: smtps://me@host:465 */
char *outbox_server_url_to_string (const OutboxServerUrl *url);
const char *outbox_protocol_to_string (OutboxProtocol protocol); /* "smtp" */
/* TRUE when the host is a loopback address or "localhost". */
gboolean outbox_server_url_is_loopback (const OutboxServerUrl *url);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxServerUrl, outbox_server_url_free)

G_END_DECLS
