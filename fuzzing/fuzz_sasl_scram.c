/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-sasl.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* Inputs that would only make PBKDF2 slow: the client refuses more than
 * 1,000,000 iterations, and even those take long enough to stall the run. */
#define MAX_FUZZ_ITERATIONS 10000

static const OutboxSaslCredentials credentials = {
  .user = "user",
  .secret = "pencil",
  .kind = OUTBOX_SASL_SECRET_PASSWORD,
};

static gboolean
too_slow (const char *server_first, gsize len)
{
  for (gsize i = 0; i + 2 < len; i++)
    {
      if ((i == 0 || server_first[i - 1] == ',') && server_first[i] == 'i' &&
          server_first[i + 1] == '=')
        {
          guint64 value = 0;

          for (gsize j = i + 2; j < len && g_ascii_isdigit (server_first[j]); j++)
            {
              value = value * 10 + (guint64) (server_first[j] - '0');
              if (value > MAX_FUZZ_ITERATIONS)
                return TRUE;
            }
        }
    }
  return FALSE;
}

/* The client's nonce goes after a leading "r=" of the server-first part,
 * as a real server would echo it: without it, no input would get past the
 * nonce check to the server-final message. */
static GBytes *
server_first_for (GBytes *client_first, const char *part, gsize len)
{
  gsize client_len;
  const char *client = g_bytes_get_data (client_first, &client_len);
  g_autofree char *text = g_strndup (client, client_len);
  const char *nonce = strstr (text, ",r=");
  GByteArray *first = g_byte_array_new ();

  if (nonce != NULL && len >= 2 && memcmp (part, "r=", 2) == 0)
    {
      g_byte_array_append (first, (const guint8 *) "r=", 2);
      g_byte_array_append (first, (const guint8 *) nonce + 3, (guint) strlen (nonce + 3));
      part += 2;
      len -= 2;
    }
  g_byte_array_append (first, (const guint8 *) part, (guint) len);
  return g_byte_array_free_to_bytes (first);
}

static void
assert_step_error (const GError *error)
{
  g_assert_nonnull (error);
  g_assert_true (error->domain == OUTBOX_SASL_ERROR);
  g_assert_true (error->code == OUTBOX_SASL_ERROR_PROTOCOL ||
                 error->code == OUTBOX_SASL_ERROR_SERVER_PROOF);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

/* One exchange; @as_success gives the server-final message as the
 * additional data of a success instead of as a challenge. */
static void
run (const char *server_first, gsize first_len, GBytes *server_final, gboolean as_success)
{
  g_autoptr (OutboxSasl) sasl = NULL;
  g_autoptr (GBytes) client_first = NULL;
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GBytes) client_final = NULL;
  g_autoptr (GBytes) last = NULL;
  g_autoptr (GError) error = NULL;

  sasl = outbox_sasl_new ("SCRAM-SHA-256", &credentials, NULL, &error);
  g_assert_no_error (error);
  client_first = outbox_sasl_step (sasl, NULL, &error);
  g_assert_no_error (error);

  first = server_first_for (client_first, server_first, first_len);
  client_final = outbox_sasl_step (sasl, first, &error);
  if (client_final == NULL)
    {
      assert_step_error (error);
      g_clear_error (&error);
      g_assert_false (outbox_sasl_check_success (sasl, server_final, &error));
      g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
      return;
    }

  if (as_success)
    {
      if (!outbox_sasl_check_success (sasl, server_final, &error))
        g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
      return;
    }
  last = outbox_sasl_step (sasl, server_final, &error);
  if (last == NULL)
    {
      assert_step_error (error);
      g_clear_error (&error);
      g_assert_false (outbox_sasl_check_success (sasl, NULL, &error));
      g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
      return;
    }
  g_assert_cmpuint (g_bytes_get_size (last), ==, 0);
  /* An "e=" server-final ends the exchange with an empty response too, and
   * says why; then no success can be believed. */
  if (outbox_sasl_get_server_error (sasl) != NULL)
    {
      g_assert_true (g_utf8_validate (outbox_sasl_get_server_error (sasl), -1, NULL));
      g_assert_false (outbox_sasl_check_success (sasl, NULL, &error));
      g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
      return;
    }
  g_assert_true (outbox_sasl_check_success (sasl, NULL, NULL));
}

/* The input is the server-first message, a LF, and the server-final one. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  const char *text = (const char *) data;
  const char *lf = memchr (text, '\n', size);
  gsize first_len = lf != NULL ? (gsize) (lf - text) : size;
  g_autoptr (GBytes) server_final = NULL;

  if (too_slow (text, first_len))
    return 0;
  server_final = lf != NULL ? g_bytes_new (lf + 1, size - first_len - 1) : g_bytes_new (NULL, 0);
  run (text, first_len, server_final, FALSE);
  run (text, first_len, server_final, TRUE);
  return 0;
}
