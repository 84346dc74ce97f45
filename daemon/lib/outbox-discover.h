/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* No autoconfig document or ISP file is larger than this; anything larger
 * is refused unread. */
#define OUTBOX_DISCOVER_MAX_DOCUMENT (256 * 1024)
/* How long one autoconfig URL may take, redirects and body included. */
#define OUTBOX_DISCOVER_HTTP_TIMEOUT 15

/* Where discovery looks.  Every field may be left zero for the default;
 * tests point them at their own resolver, web server and directory. */
typedef struct
{
  GResolver *resolver;                /* (nullable): g_resolver_get_default () */
  const char *const *autoconfig_urls; /* (nullable): the two Mozilla autoconfig
                                       * locations; each a template with
                                       * %DOMAIN% and %EMAIL% (percent-encoded);
                                       * an empty list turns autoconfig off */
  const char *isp_dir;                /* (nullable): the first existing
                                       * "outbox/isp" under the user data dir,
                                       * then the system data dirs; holds
                                       * DOMAIN.xml files */
  gboolean allow_http;                /* for tests only: plain http allowed to
                                       * loopback URLs */
  guint http_timeout;                 /* seconds per autoconfig URL; 0:
                                       * OUTBOX_DISCOVER_HTTP_TIMEOUT */
} OutboxDiscoverSources;

/* outbox_discover_async:
 * @address: the mail address whose account settings are wanted
 * @sources: (nullable): where to look; NULL for the defaults
 *
 * Proposes the servers of @address's account, from the first source that
 * gives an SMTP server: RFC 6186 SRV records (implicit TLS preferred, as
 * RFC 8314 asks), then Mozilla autoconfig over HTTPS, then the local ISP
 * file.  It only looks: it never connects to a mail server, never logs in
 * and never sends a credential (no Authorization header, no cookie).
 *
 * The result (outbox_discover_finish) is an a{sv}:
 *   "address"  s  @address
 *   "source"   s  "dns-srv", "autoconfig" or "isp-file"
 *   "smtp"     s  a server URL in Outbox's form, e.g.
 *                 "smtps://me%40example.org@mail.example.org:465"
 *   "imap"     s  (only when found) likewise
 *   "pop3"     s  (only when found) likewise
 *   "username" s  (only when known) the login name the provider wants
 *
 * Errors: OUTBOX_ERROR_INVALID_ADDRESS for an address that is not valid or
 * has no domain name; OUTBOX_ERROR_FAILED when no source gives an SMTP
 * server; G_IO_ERROR_CANCELLED. */
void outbox_discover_async (const char *address,
                            const OutboxDiscoverSources *sources,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer user_data);
GVariant *outbox_discover_finish (GAsyncResult *result, GError **error);

/* outbox_discover_parse_autoconfig:
 * @xml: a Mozilla autoconfig document (config-v1.1.xml or an ISP file), not
 *   necessarily NUL-terminated
 * @len: its length in octets
 * @address: the valid address it is read for (fills %EMAILADDRESS%,
 *   %EMAILLOCALPART% and %EMAILDOMAIN%)
 *
 * Reads clientConfig/emailProvider/{incomingServer,outgoingServer} strictly
 * and proposes at most one server per protocol: SSL before STARTTLS before
 * plain, then the order of the document.  A server with a bad host name,
 * port, socket type or user name is skipped, and so is a plain one with a
 * user name (no credential in plaintext).  Unknown elements are ignored.
 *
 * Returns: (transfer full) (nullable): an a{sv} as outbox_discover_finish
 * describes, with "source" "autoconfig" and "smtp" only when one was found;
 * NULL with a G_MARKUP_ERROR for a document that is not well-formed, too
 * large, too deep, has a DOCTYPE, or is not an autoconfig document. */
GVariant *
outbox_discover_parse_autoconfig (const char *xml, gsize len, const char *address, GError **error);

G_END_DECLS
