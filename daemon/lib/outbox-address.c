/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-address.h"

#include <gio/gio.h>
#include <string.h>

#include "outbox-error.h"

/* How many characters of an address an error message shows. */
#define SHOWN_ADDRESS_MAX 100

#define MAX_DOMAIN_LABEL 63

/* Characters that are never part of an address outside quotes. */
#define SPECIALS_OUTSIDE_QUOTES " ,();\\\""
/* Characters that may appear in an address literal but not in a local part. */
#define SPECIALS_IN_LOCAL_PART "[]:"

/* The address as it can go into an error message: valid UTF-8, control
 * characters written as escapes, and not unreasonably long. */
static char *
show_address (const char *address)
{
  g_autofree char *valid = g_utf8_make_valid (address, -1);
  GString *shown = g_string_new (NULL);
  glong n_chars = 0;

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p), n_chars++)
    {
      gunichar c = g_utf8_get_char (p);

      if (n_chars == SHOWN_ADDRESS_MAX)
        {
          g_string_append (shown, "…");
          break;
        }
      if (c == '\r')
        g_string_append (shown, "\\r");
      else if (c == '\n')
        g_string_append (shown, "\\n");
      else if (g_unichar_iscntrl (c))
        g_string_append_printf (shown, "\\u%04X", c);
      else
        g_string_append_unichar (shown, c);
    }

  return g_string_free (shown, FALSE);
}

static gboolean invalid_address (GError **error, const char *address, const char *format, ...)
  G_GNUC_PRINTF (3, 4);

static gboolean
invalid_address (GError **error, const char *address, const char *format, ...)
{
  g_autofree char *shown = show_address (address);
  g_autofree char *problem = NULL;
  va_list args;

  va_start (args, format);
  problem = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS, "Address “%s” %s", shown, problem);
  return FALSE;
}

static gboolean
check_characters (const char *address, GError **error)
{
  if (!g_utf8_validate (address, -1, NULL))
    return invalid_address (error, address, "is not valid UTF-8 text; check its encoding");

  for (const char *p = address; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '\r' || c == '\n')
        return invalid_address (error, address,
                                "contains a line break; an address must be on one line");
      if (g_unichar_iscntrl (c))
        return invalid_address (error, address,
                                "contains the control character U+%04X; remove it", c);
    }

  return TRUE;
}

/* Angle brackets delimit the path in a command: refused even in quotes,
 * and first, because "Name <address>" is the likeliest mistake. */
static gboolean
check_angle_brackets (const char *address, GError **error)
{
  if (strpbrk (address, "<>") != NULL)
    return invalid_address (error, address,
                            "contains an angle bracket; give the bare address, such as "
                            "someone@example.org, without a name or angle brackets");

  return TRUE;
}

/* Returns the length of the quoted string at the start of @address,
 * quotes included, or 0 after setting @error. */
static gsize
scan_quoted_local_part (const char *address, GError **error)
{
  gsize i = 1;

  while (address[i] != '"')
    {
      if (address[i] == '\0')
        {
          invalid_address (error, address, "opens a quote that is never closed");
          return 0;
        }
      if (address[i] == '\\')
        {
          i++;
          if ((guchar) address[i] < 0x20 || (guchar) address[i] > 0x7e)
            {
              invalid_address (error, address,
                               "has a backslash in its quoted local part that is not "
                               "followed by a printable ASCII character");
              return 0;
            }
        }
      i++;
    }

  return i + 1;
}

static gboolean
check_unquoted (const char *address,
                const char *start,
                gsize len,
                const char *forbidden,
                GError **error)
{
  gsize bad = strcspn (start, forbidden);

  if (bad >= len)
    return TRUE;

  switch (start[bad])
    {
    case ' ':
      return invalid_address (error, address,
                              "contains a space; remove it (a space is only allowed inside a "
                              "quoted local part such as \"john doe\"@example.org)");
    case ',':
      return invalid_address (error, address,
                              "contains a comma; give one address at a time");
    case '"':
      return invalid_address (error, address,
                              "contains a quote; quotes must enclose the whole part before "
                              "“@”, as in \"john doe\"@example.org");
    default:
      return invalid_address (error, address,
                              "contains “%c”, which is only allowed inside a quoted local part",
                              start[bad]);
    }
}

static gboolean
check_address_literal (const char *address, const char *domain, GError **error)
{
  gsize len = strlen (domain);
  g_autofree char *inner = NULL;
  g_autoptr (GInetAddress) inet = NULL;
  GSocketFamily family = G_SOCKET_FAMILY_IPV4;
  const char *ip;

  if (len < 3 || domain[len - 1] != ']')
    return invalid_address (error, address, "has an address literal without its closing “]”");

  inner = g_strndup (domain + 1, len - 2);
  ip = inner;
  if (g_ascii_strncasecmp (inner, "IPv6:", 5) == 0)
    {
      family = G_SOCKET_FAMILY_IPV6;
      ip = inner + 5;
    }

  inet = g_inet_address_new_from_string (ip);
  if (inet == NULL || g_inet_address_get_family (inet) != family)
    return invalid_address (error, address,
                            "has an address literal that is neither an IPv4 address, as in "
                            "[192.0.2.1], nor an IPv6 one, as in [IPv6:2001:db8::1]");

  return TRUE;
}

static gboolean
is_label_char (char c)
{
  return g_ascii_isalnum (c) || c == '-' || (guchar) c >= 0x80;
}

static gboolean
check_domain_label (const char *address, const char *label, gsize len, GError **error)
{
  g_autofree char *shown_label = g_strndup (label, len);

  if (len == 0)
    return invalid_address (error, address,
                            "has an empty part in its domain: a dot at the start or end, or "
                            "two dots in a row");
  if (len > MAX_DOMAIN_LABEL)
    return invalid_address (error, address,
                            "has a domain label “%s” longer than %d octets", shown_label,
                            MAX_DOMAIN_LABEL);
  if (label[0] == '-' || label[len - 1] == '-')
    return invalid_address (error, address,
                            "has a domain label “%s” that starts or ends with a hyphen",
                            shown_label);

  for (gsize i = 0; i < len; i++)
    {
      if (!is_label_char (label[i]))
        return invalid_address (error, address,
                                "contains “%c” in its domain; a domain has only letters, "
                                "digits, hyphens and dots, or is an address literal in brackets",
                                label[i]);
    }

  return TRUE;
}

static gboolean
check_domain (const char *address, const char *domain, GError **error)
{
  const char *label = domain;

  if (domain[0] == '[')
    return check_address_literal (address, domain, error);

  for (;;)
    {
      const char *dot = strchr (label, '.');
      gsize len = dot != NULL ? (gsize) (dot - label) : strlen (label);

      if (!check_domain_label (address, label, len, error))
        return FALSE;
      if (dot == NULL)
        return TRUE;
      label = dot + 1;
    }
}

static gboolean
check_lengths (const char *address, gsize local_len, gsize domain_len, GError **error)
{
  /* A path is the address in angle brackets (RFC 5321 section 4.1.2). */
  gsize path_len = local_len + 1 + domain_len + 2;

  if (local_len > OUTBOX_ADDRESS_MAX_LOCAL_PART)
    return invalid_address (error, address,
                            "has %" G_GSIZE_FORMAT " octets before “@”; at most %d are allowed",
                            local_len, OUTBOX_ADDRESS_MAX_LOCAL_PART);
  if (domain_len > OUTBOX_ADDRESS_MAX_DOMAIN)
    return invalid_address (error, address,
                            "has a domain of %" G_GSIZE_FORMAT " octets; at most %d are allowed",
                            domain_len, OUTBOX_ADDRESS_MAX_DOMAIN);
  if (path_len > OUTBOX_ADDRESS_MAX_PATH)
    return invalid_address (error, address,
                            "is %" G_GSIZE_FORMAT " octets long; at most %d are allowed",
                            path_len - 2, OUTBOX_ADDRESS_MAX_PATH - 2);

  return TRUE;
}

/* Splits @address into its local part and domain; *out_domain points after
 * the '@'. */
static gboolean
split_address (const char *address, gsize *out_local_len, const char **out_domain, GError **error)
{
  gboolean quoted = address[0] == '"';
  gsize local_len;
  const char *rest;

  if (quoted)
    {
      local_len = scan_quoted_local_part (address, error);
      if (local_len == 0)
        return FALSE;
    }
  else
    local_len = strcspn (address, "@");

  if (!quoted && !check_unquoted (address, address, local_len,
                                  SPECIALS_OUTSIDE_QUOTES SPECIALS_IN_LOCAL_PART, error))
    return FALSE;

  rest = address + local_len;
  if (!check_unquoted (address, rest, strlen (rest), SPECIALS_OUTSIDE_QUOTES, error))
    return FALSE;
  if (rest[0] != '@' && quoted)
    return invalid_address (error, address,
                            "has text between the closing quote and “@”; the quotes must "
                            "enclose the whole part before “@”");
  if (rest[0] != '@')
    return invalid_address (error, address, "has no “@”; write it as name@example.org");

  *out_local_len = local_len;
  *out_domain = rest + 1;
  return TRUE;
}

gboolean
outbox_address_validate (const char *address, gboolean allow_empty, GError **error)
{
  gsize local_len = 0;
  const char *domain = NULL;

  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (address[0] == '\0' && allow_empty)
    return TRUE;
  if (address[0] == '\0')
    {
      g_set_error_literal (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
                           "The address is empty; give one such as someone@example.org");
      return FALSE;
    }

  if (!check_characters (address, error) || !check_angle_brackets (address, error) ||
      !split_address (address, &local_len, &domain, error))
    return FALSE;

  if (local_len == 0 || (local_len == 2 && address[0] == '"'))
    return invalid_address (error, address, "has nothing before “@”");
  if (domain[0] == '\0')
    return invalid_address (error, address, "has no domain after “@”");
  if (strchr (domain, '@') != NULL)
    return invalid_address (error, address,
                            "contains more than one “@”; if the part before the last “@” "
                            "really contains one, quote it, as in \"a@b\"@example.org");

  return check_lengths (address, local_len, strlen (domain), error) &&
         check_domain (address, domain, error);
}

gboolean
outbox_address_is_ascii (const char *address)
{
  g_return_val_if_fail (address != NULL, FALSE);

  for (const guchar *p = (const guchar *) address; *p != '\0'; p++)
    {
      if (*p >= 0x80)
        return FALSE;
    }

  return TRUE;
}
