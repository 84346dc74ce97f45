/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-url.h"

#include <gio/gio.h>
#include <string.h>

#include "outbox-error.h"

/* Generous for any real server URL, small enough to keep callers honest,
 * and more than the canonical form of any URL accepted: a user name of
 * MAX_USER_LENGTH octets, each percent-encoded, and a host name of
 * MAX_HOST_NAME characters with every one decoded to four octets. */
#define MAX_URL_LENGTH 2048
/* The longest authentication identity SASL PLAIN allows (RFC 4616). */
#define MAX_USER_LENGTH 255
#define MAX_HOST_NAME 253
#define MAX_HOST_LABEL 63

#define SCHEME_HINT \
  "use smtps://, smtp:// or smtp+insecure:// (imaps://, imap://, pop3s:// or pop3:// for " \
  "incoming mail)"

typedef struct
{
  const char *name;
  OutboxProtocol protocol;
  OutboxSecurity security;
  guint16 default_port;
} Scheme;

static const Scheme schemes[] = {
  { "smtps", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_TLS, 465 },
  { "smtp", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_STARTTLS, 587 },
  { "smtp+insecure", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_INSECURE, 25 },
  { "imaps", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_TLS, 993 },
  { "imap", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_STARTTLS, 143 },
  { "imap+insecure", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_INSECURE, 143 },
  { "pop3s", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_TLS, 995 },
  { "pop3", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_STARTTLS, 110 },
  { "pop3+insecure", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_INSECURE, 110 },
};

static gboolean invalid_url (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid_url (GError **error, const char *format, ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error_literal (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, message);
  return FALSE;
}

static const Scheme *
find_scheme (const char *name, gsize len)
{
  for (gsize i = 0; i < G_N_ELEMENTS (schemes); i++)
    {
      if (strlen (schemes[i].name) == len && g_ascii_strncasecmp (schemes[i].name, name, len) == 0)
        return &schemes[i];
    }

  return NULL;
}

static gboolean
has_control_character (const char *text)
{
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      if (g_unichar_iscntrl (g_utf8_get_char (p)))
        return TRUE;
    }

  return FALSE;
}

/* URLs are typed by people and may hold anything; everything quoted from
 * one in an error message must be valid text on one line. */
static gboolean
check_url_text (const char *url, GError **error)
{
  if (strlen (url) > MAX_URL_LENGTH)
    return invalid_url (error, "The server URL is longer than %d octets; check what was pasted",
                        MAX_URL_LENGTH);
  if (!g_utf8_validate (url, -1, NULL))
    return invalid_url (error, "The server URL is not valid UTF-8 text; check its encoding");
  if (has_control_character (url))
    return invalid_url (error, "The server URL contains a control character such as a line "
                               "break; type it on one line");
  if (strchr (url, ' ') != NULL)
    return invalid_url (error, "The server URL contains a space; remove it (a user name with "
                               "a space in it is written with %%20 in its place)");

  return TRUE;
}

/* The URL after its scheme's "://" up to the end of the authority. */
typedef struct
{
  const Scheme *scheme;
  const char *authority;
  gsize authority_len;
} UrlParts;

static gboolean
split_scheme (const char *url, UrlParts *parts, GError **error)
{
  const char *separator = strstr (url, "://");
  const char *after;

  if (separator == NULL)
    {
      const char *at = strrchr (url, '@');
      const char *host = at != NULL ? at + 1 : url;

      return invalid_url (error,
                          "The server URL “%s” has no scheme; write it as smtps://user@%s "
                          "(implicit TLS) or smtp://user@%s (STARTTLS)",
                          host, host, host);
    }

  parts->scheme = find_scheme (url, separator - url);
  if (parts->scheme == NULL)
    {
      g_autofree char *name = g_strndup (url, separator - url);

      return invalid_url (error, "Unknown URL scheme “%s”; " SCHEME_HINT, name);
    }

  parts->authority = separator + 3;
  parts->authority_len = strcspn (parts->authority, "/?#");
  after = parts->authority + parts->authority_len;
  if (after[0] != '\0' && strcmp (after, "/") != 0)
    return invalid_url (error,
                        "A server URL has no path, query or fragment; remove “%s” and keep "
                        "only the scheme, user, host and port",
                        after);

  return TRUE;
}

static gboolean
parse_user (const char *userinfo, gsize len, char **out_user, GError **error)
{
  g_autofree char *user = NULL;

  if (memchr (userinfo, ':', len) != NULL)
    return invalid_url (error,
                        "The server URL contains a password; remove “:” and the password "
                        "from the URL and give the password with --password-stdin");
  if (len == 0)
    return invalid_url (error,
                        "The server URL has an empty user name before “@”; put the user name "
                        "there or remove the “@”");

  user = g_uri_unescape_segment (userinfo, userinfo + len, NULL);
  if (user == NULL || !g_utf8_validate (user, -1, NULL) || has_control_character (user))
    return invalid_url (error,
                        "The user name in the server URL has a bad percent escape; write “%%” "
                        "as %%25, “@” as %%40 and “:” as %%3A, and no control characters");

  if (strlen (user) > MAX_USER_LENGTH)
    return invalid_url (error, "The user name in the server URL is longer than %d octets",
                        MAX_USER_LENGTH);

  *out_user = g_steal_pointer (&user);
  return TRUE;
}

static gboolean
parse_port (const char *text, const Scheme *scheme, guint16 *out_port, GError **error)
{
  guint64 port = scheme->default_port;

  if (text != NULL && text[0] == '\0')
    return invalid_url (error,
                        "The server URL has “:” after the host but no port number; add the "
                        "port or remove the “:”");
  if (text != NULL && !g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT16, &port, NULL))
    return invalid_url (error, "The port “%s” in the server URL is not a number from 1 to 65535",
                        text);

  *out_port = (guint16) port;
  return TRUE;
}

static gboolean
check_host_label (const char *host, const char *label, gsize len, GError **error)
{
  if (len == 0)
    return invalid_url (error,
                        "The host name “%s” has an empty part: a dot at the start or end, or "
                        "two dots in a row",
                        host);
  if (len > MAX_HOST_LABEL)
    return invalid_url (error, "The host name “%s” has a part longer than %d characters", host,
                        MAX_HOST_LABEL);
  if (label[0] == '-' || label[len - 1] == '-')
    return invalid_url (error, "The host name “%s” has a part that starts or ends with “-”",
                        host);

  for (gsize i = 0; i < len; i++)
    {
      if (!g_ascii_isalnum (label[i]) && label[i] != '-')
        return invalid_url (error,
                            "The host name “%s” contains “%c”; a host name has only letters, "
                            "digits, hyphens and dots",
                            host, label[i]);
    }

  return TRUE;
}

static void
invalid_idn (const char *host, GError **error)
{
  invalid_url (error, "The host name “%s” is not a valid internationalised domain name", host);
}

/* Checks @host (a name or an IPv4 address) and returns its canonical form:
 * lower case, Unicode labels in normalised Unicode. */
static char *
canonical_host (const char *host, GError **error)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autofree char *ascii = NULL;
  g_autofree char *unicode = NULL;
  g_autofree char *again = NULL;
  const char *label;

  if (inet != NULL)
    return g_inet_address_to_string (inet);

  ascii = g_hostname_to_ascii (host);
  if (ascii == NULL)
    {
      invalid_idn (host, error);
      return NULL;
    }
  if (strlen (ascii) > MAX_HOST_NAME)
    {
      invalid_url (error, "The host name “%s” is longer than %d characters", host, MAX_HOST_NAME);
      return NULL;
    }

  for (label = ascii;; label++)
    {
      gsize len = strcspn (label, ".");

      if (!check_host_label (host, label, len, error))
        return NULL;
      label += len;
      if (*label == '\0')
        break;
    }

  /* An "xn--" label that is not valid Punycode, or that decodes to text
   * which does not encode back to it, fails only here. */
  unicode = g_hostname_to_unicode (ascii);
  if (unicode != NULL)
    again = g_hostname_to_ascii (unicode);
  if (again == NULL || strcmp (again, ascii) != 0)
    {
      invalid_idn (host, error);
      return NULL;
    }

  return g_steal_pointer (&unicode);
}

static char *
parse_bracketed_host (const char *hostport, const char **out_after, GError **error)
{
  const char *close = strchr (hostport, ']');
  g_autofree char *inner = NULL;
  g_autoptr (GInetAddress) inet = NULL;

  if (close == NULL)
    {
      invalid_url (error, "The host “%s” in the server URL has “[” but no closing “]”", hostport);
      return NULL;
    }

  inner = g_strndup (hostport + 1, close - hostport - 1);
  inet = g_inet_address_new_from_string (inner);
  if (inet == NULL || g_inet_address_get_family (inet) != G_SOCKET_FAMILY_IPV6)
    {
      invalid_url (error, "“[%s]” in the server URL is not an IPv6 address", inner);
      return NULL;
    }

  *out_after = close + 1;
  return g_inet_address_to_string (inet);
}

static char *
parse_plain_host (const char *hostport, const char **out_after, GError **error)
{
  gsize host_len = strcspn (hostport, ":");
  g_autofree char *host = g_strndup (hostport, host_len);

  if (hostport[host_len] == ':' && strchr (hostport + host_len + 1, ':') != NULL)
    {
      invalid_url (error,
                   "The host “%s” in the server URL looks like an IPv6 address; put it in "
                   "brackets, as in smtps://[2001:db8::1]:465",
                   hostport);
      return NULL;
    }
  if (host_len == 0)
    {
      invalid_url (error,
                   "The server URL has no host name; write it as smtps://user@mail.example.org");
      return NULL;
    }

  *out_after = hostport + host_len;
  return canonical_host (host, error);
}

static gboolean
parse_host_port (const char *hostport, OutboxServerUrl *result, const Scheme *scheme,
                 GError **error)
{
  g_autofree char *host = NULL;
  const char *after = NULL;

  if (hostport[0] == '[')
    host = parse_bracketed_host (hostport, &after, error);
  else
    host = parse_plain_host (hostport, &after, error);
  if (host == NULL)
    return FALSE;

  if (after[0] != '\0' && after[0] != ':')
    return invalid_url (error, "Unexpected “%s” after the host in the server URL", after);
  if (!parse_port (after[0] == ':' ? after + 1 : NULL, scheme, &result->port, error))
    return FALSE;

  result->host = g_steal_pointer (&host);
  return TRUE;
}

OutboxServerUrl *
outbox_server_url_parse (const char *url, GError **error)
{
  g_autoptr (OutboxServerUrl) result = g_new0 (OutboxServerUrl, 1);
  g_autofree char *authority = NULL;
  UrlParts parts = { NULL, NULL, 0 };
  char *at;

  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_url_text (url, error) || !split_scheme (url, &parts, error))
    return NULL;

  result->protocol = parts.scheme->protocol;
  result->security = parts.scheme->security;

  /* User names are often mail addresses: split at the last '@', since a
   * host never contains one. */
  authority = g_strndup (parts.authority, parts.authority_len);
  at = strrchr (authority, '@');
  if (at != NULL && !parse_user (authority, at - authority, &result->user, error))
    return NULL;

  if (!parse_host_port (at != NULL ? at + 1 : authority, result, parts.scheme, error))
    return NULL;

  return g_steal_pointer (&result);
}

OutboxServerUrl *
outbox_server_url_copy (const OutboxServerUrl *url)
{
  OutboxServerUrl *copy;

  g_return_val_if_fail (url != NULL, NULL);

  copy = g_new0 (OutboxServerUrl, 1);
  copy->protocol = url->protocol;
  copy->security = url->security;
  copy->user = g_strdup (url->user);
  copy->host = g_strdup (url->host);
  copy->port = url->port;

  return copy;
}

void
outbox_server_url_free (OutboxServerUrl *url)
{
  if (url == NULL)
    return;

  g_free (url->user);
  g_free (url->host);
  g_free (url);
}

static const char *
scheme_name (OutboxProtocol protocol, OutboxSecurity security)
{
  for (gsize i = 0; i < G_N_ELEMENTS (schemes); i++)
    {
      if (schemes[i].protocol == protocol && schemes[i].security == security)
        return schemes[i].name;
    }

  g_return_val_if_reached (NULL);
}

char *
outbox_server_url_to_string (const OutboxServerUrl *url)
{
  GString *out;

  g_return_val_if_fail (url != NULL, NULL);
  g_return_val_if_fail (url->host != NULL, NULL);

  out = g_string_new (scheme_name (url->protocol, url->security));
  g_string_append (out, "://");
  if (url->user != NULL)
    {
      g_string_append_uri_escaped (out, url->user, G_URI_RESERVED_CHARS_SUBCOMPONENT_DELIMITERS,
                                   TRUE);
      g_string_append_c (out, '@');
    }

  if (strchr (url->host, ':') != NULL)
    g_string_append_printf (out, "[%s]", url->host);
  else
    g_string_append (out, url->host);
  g_string_append_printf (out, ":%u", url->port);

  return g_string_free (out, FALSE);
}

const char *
outbox_protocol_to_string (OutboxProtocol protocol)
{
  switch (protocol)
    {
    case OUTBOX_PROTOCOL_SMTP:
      return "smtp";
    case OUTBOX_PROTOCOL_IMAP:
      return "imap";
    case OUTBOX_PROTOCOL_POP3:
      return "pop3";
    default:
      g_return_val_if_reached (NULL);
    }
}

gboolean
outbox_server_url_is_loopback (const OutboxServerUrl *url)
{
  g_autoptr (GInetAddress) inet = NULL;

  g_return_val_if_fail (url != NULL, FALSE);
  g_return_val_if_fail (url->host != NULL, FALSE);

  if (g_ascii_strcasecmp (url->host, "localhost") == 0)
    return TRUE;

  inet = g_inet_address_new_from_string (url->host);
  return inet != NULL && g_inet_address_get_is_loopback (inet);
}
