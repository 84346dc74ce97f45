/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-sasl.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static const OutboxSaslCredentials credentials = {
  .user = "user@example.org",
  .secret = "token",
  .kind = OUTBOX_SASL_SECRET_TOKEN,
};

/* The parser, then the same challenge through both OAuth2 mechanisms: they
 * end the exchange exactly when the parser accepts it. */
static void
check_mechanism (const char *mechanism, GBytes *challenge, gboolean accepted, gsize final_len)
{
  g_autoptr (OutboxSasl) sasl = outbox_sasl_new (mechanism, &credentials, NULL, NULL);
  g_autoptr (GBytes) initial = outbox_sasl_step (sasl, NULL, NULL);
  g_autoptr (GBytes) response = NULL;
  g_autoptr (GError) error = NULL;
  const char *sentence;

  g_assert_nonnull (initial);
  response = outbox_sasl_step (sasl, challenge, &error);
  sentence = outbox_sasl_get_server_error (sasl);
  if (!accepted)
    {
      g_assert_null (response);
      g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL);
      g_assert_null (sentence);
      return;
    }
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (response), ==, final_len);
  g_assert_nonnull (sentence);
  g_assert_true (g_utf8_validate (sentence, -1, NULL));
  for (const char *p = sentence; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (g_unichar_iscntrl (g_utf8_get_char (p)));
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *status = NULL;
  g_autofree char *scope = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) challenge = g_bytes_new (data, size);
  gboolean accepted;

  accepted =
      outbox_sasl_parse_oauth_error ((const char *) data, size, &status, &scope, &error);
  if (accepted)
    {
      g_assert_no_error (error);
      g_assert_nonnull (status);
      g_assert_true (g_utf8_validate (status, -1, NULL));
      g_assert_true (scope == NULL || g_utf8_validate (scope, -1, NULL));
    }
  else
    {
      g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL);
      g_assert_null (status);
      g_assert_null (scope);
    }

  /* An empty challenge in round 1 is not the error JSON either. */
  if (size > 0)
    {
      check_mechanism ("OAUTHBEARER", challenge, accepted, 1);
      check_mechanism ("XOAUTH2", challenge, accepted, 0);
    }
  return 0;
}
