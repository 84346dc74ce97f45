/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-address.h"
#include "outbox-error.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* What every accepted address must satisfy, whatever else it holds: it
 * can go between angle brackets in a command line unchanged. */
static void
check_valid (const char *address)
{
  g_assert_true (g_utf8_validate (address, -1, NULL));
  g_assert_cmpuint (strlen (address) + 2, <=, OUTBOX_ADDRESS_MAX_PATH);
  g_assert_nonnull (strchr (address, '@'));
  g_assert_null (strpbrk (address, "\r\n<>"));
  for (const char *p = address; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (g_unichar_iscntrl (g_utf8_get_char (p)));
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *address = g_strndup ((const char *) data, size);
  g_autoptr (GError) error = NULL;

  if (outbox_address_validate (address, FALSE, &error))
    check_valid (address);
  else
    {
      g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      g_assert_null (strpbrk (error->message, "\r\n"));
    }

  return 0;
}
