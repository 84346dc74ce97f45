/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-discover.h"
#include "outbox-url.h"

#define ADDRESS "me@example.org"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gboolean
is_displayable (const char *text)
{
  if (!g_utf8_validate (text, -1, NULL))
    return FALSE;
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      if (g_unichar_iscntrl (g_utf8_get_char (p)))
        return FALSE;
    }
  return TRUE;
}

/* A proposed server is a URL Outbox accepts, already in its canonical
 * form, of the protocol of its key, and never plaintext with a user. */
static void
check_server (GVariant *proposal, const char *key, OutboxProtocol protocol)
{
  g_autofree char *text = NULL;
  g_autofree char *canonical = NULL;
  g_autoptr (OutboxServerUrl) url = NULL;
  g_autoptr (GError) error = NULL;

  if (!g_variant_lookup (proposal, key, "s", &text))
    return;

  url = outbox_server_url_parse (text, &error);
  g_assert_no_error (error);
  g_assert_cmpint (url->protocol, ==, protocol);
  g_assert_false (url->security == OUTBOX_SECURITY_INSECURE && url->user != NULL);
  g_assert_true (url->user == NULL || is_displayable (url->user));
  g_assert_true (is_displayable (url->host));
  canonical = outbox_server_url_to_string (url);
  g_assert_cmpstr (canonical, ==, text);
}

static void
check_proposal (GVariant *proposal)
{
  g_autofree char *address = NULL;
  g_autofree char *source = NULL;
  g_autofree char *username = NULL;

  g_assert_true (g_variant_is_of_type (proposal, G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_lookup (proposal, "address", "s", &address));
  g_assert_cmpstr (address, ==, ADDRESS);
  g_assert_true (g_variant_lookup (proposal, "source", "s", &source));
  g_assert_cmpstr (source, ==, "autoconfig");
  if (g_variant_lookup (proposal, "username", "s", &username))
    g_assert_true (is_displayable (username));

  check_server (proposal, "smtp", OUTBOX_PROTOCOL_SMTP);
  check_server (proposal, "imap", OUTBOX_PROTOCOL_IMAP);
  check_server (proposal, "pop3", OUTBOX_PROTOCOL_POP3);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GVariant) proposal = NULL;
  g_autoptr (GError) error = NULL;

  proposal = outbox_discover_parse_autoconfig ((const char *) data, size, ADDRESS, &error);
  if (proposal != NULL)
    {
      g_assert_no_error (error);
      check_proposal (proposal);
    }
  else
    {
      g_assert_nonnull (error);
      g_assert_true (error->domain == G_MARKUP_ERROR);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }

  return 0;
}
