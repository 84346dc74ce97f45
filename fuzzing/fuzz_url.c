/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-error.h"
#include "outbox-url.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* An accepted URL must survive a round trip through its canonical form. */
static void
check_round_trip (const OutboxServerUrl *url)
{
  g_autofree char *written = outbox_server_url_to_string (url);
  g_autoptr (OutboxServerUrl) again = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpuint (url->port, !=, 0);
  g_assert_true (url->user == NULL || g_utf8_validate (url->user, -1, NULL));
  g_assert_true (url->user == NULL || strpbrk (url->user, "\r\n") == NULL);

  again = outbox_server_url_parse (written, &error);
  g_assert_no_error (error);
  g_assert_cmpint (again->protocol, ==, url->protocol);
  g_assert_cmpint (again->security, ==, url->security);
  g_assert_cmpstr (again->user, ==, url->user);
  g_assert_cmpstr (again->host, ==, url->host);
  g_assert_cmpuint (again->port, ==, url->port);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr (OutboxServerUrl) url = NULL;
  g_autoptr (GError) error = NULL;

  url = outbox_server_url_parse (text, &error);
  if (url != NULL)
    check_round_trip (url);
  else
    {
      g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
    }

  return 0;
}
