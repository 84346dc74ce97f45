/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <gsasl.h>
#include <string.h>

#include "outbox-sasl-private.h"
#include "outbox-text.h"

/* SCRAM (RFC 5802, RFC 7677) through GNU SASL's client.  The rounds:
 * 0 client-first, 1 client-final in answer to server-first, 2 the
 * server-final verified (an empty response).
 *
 * GNU SASL's client asks for GSASL_CB_TLS_EXPORTER and then for
 * GSASL_CB_TLS_UNIQUE, and sends the gs2 flag "y" (the client could bind
 * but thinks the server cannot) whenever it finds either, even for the
 * non-PLUS forms.  So the binding is given to the -PLUS forms only, and no
 * callback is installed that could supply it: without it the non-PLUS forms
 * send "n,,", which is the truth, since Outbox then does not bind. */

/* The iteration count is the server's to choose, and the client pays for
 * it: PBKDF2 at 10^9 would hang the session for minutes.  Real servers use
 * 4096 to some 600,000 (OWASP's figure for SHA-256). */
#define MAX_ITERATIONS 1000000

typedef struct
{
  Gsasl *context;
  Gsasl_session *session;
  gboolean verified; /* the server-final message proved the server */
} Scram;

/* gsasl keeps the password, and the salted password it derives (a password
 * equivalent), as properties that it frees without wiping. */
static void
wipe_property (Gsasl_session *session, Gsasl_property property)
{
  char *value = (char *) gsasl_property_fast (session, property);

  if (value == NULL)
    return;
  explicit_bzero (value, strlen (value));
  gsasl_property_set (session, property, NULL);
}

static void
scram_finish (OutboxSasl *sasl)
{
  Scram *scram = sasl->state;

  if (scram == NULL)
    return;
  if (scram->session != NULL)
    {
      wipe_property (scram->session, GSASL_PASSWORD);
      wipe_property (scram->session, GSASL_SCRAM_SALTED_PASSWORD);
      gsasl_finish (scram->session);
    }
  if (scram->context != NULL)
    gsasl_done (scram->context);
  g_free (scram);
  sasl->state = NULL;
}

static gboolean
gsasl_failed (GError **error, OutboxSaslError code, const char *what, int rc)
{
  g_set_error (error, OUTBOX_SASL_ERROR, code, "%s (GNU SASL: %s)", what, gsasl_strerror (rc));
  return FALSE;
}

static gboolean
set_channel_binding (OutboxSasl *sasl, Gsasl_session *session, GError **error)
{
  g_autoptr (GByteArray) data = g_byte_array_new ();
  g_autoptr (GError) local_error = NULL;
  g_autofree char *encoded = NULL;
  GTlsChannelBindingType type;
  int rc;

  if (!outbox_sasl_channel_binding (sasl->tls, &type, data, &local_error) || data->len == 0)
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "%s needs TLS channel binding, and this connection cannot give it%s%s",
                   sasl->mechanism->name, local_error != NULL ? ": " : "",
                   local_error != NULL ? local_error->message : "");
      return FALSE;
    }
  encoded = g_base64_encode (data->data, data->len);
  rc = gsasl_property_set (session,
                           type == G_TLS_CHANNEL_BINDING_TLS_EXPORTER ? GSASL_CB_TLS_EXPORTER
                                                                      : GSASL_CB_TLS_UNIQUE,
                           encoded);
  if (rc != GSASL_OK)
    return gsasl_failed (error, OUTBOX_SASL_ERROR_UNAVAILABLE, "Could not set up SCRAM", rc);
  return TRUE;
}

static gboolean
scram_start (OutboxSasl *sasl, GError **error)
{
  Scram *scram = g_new0 (Scram, 1);
  int rc;

  sasl->state = scram;
  rc = gsasl_init (&scram->context);
  if (rc != GSASL_OK)
    {
      scram->context = NULL;
      return gsasl_failed (error, OUTBOX_SASL_ERROR_UNAVAILABLE, "Could not set up SCRAM", rc);
    }
  rc = gsasl_client_start (scram->context, sasl->mechanism->name, &scram->session);
  if (rc != GSASL_OK)
    {
      scram->session = NULL;
      return gsasl_failed (error, OUTBOX_SASL_ERROR_UNAVAILABLE, "Could not set up SCRAM", rc);
    }
  if ((rc = gsasl_property_set (scram->session, GSASL_AUTHID, sasl->user)) != GSASL_OK ||
      (rc = gsasl_property_set (scram->session, GSASL_PASSWORD, sasl->secret)) != GSASL_OK)
    return gsasl_failed (error, OUTBOX_SASL_ERROR_UNAVAILABLE, "Could not set up SCRAM", rc);
  if (sasl->mechanism->channel_binding && !set_channel_binding (sasl, scram->session, error))
    return FALSE;
  return TRUE;
}

/* One gsasl step, its output as a wiped response; the output holds the
 * client proof, which is worth as much as the password for this one
 * exchange. */
static int
run_step (Scram *scram, GBytes *challenge, GBytes **out_response)
{
  gsize input_len = 0;
  const char *input = challenge != NULL ? g_bytes_get_data (challenge, &input_len) : NULL;
  char *output = NULL;
  size_t output_len = 0;
  int rc;

  rc = gsasl_step (scram->session, input, input_len, &output, &output_len);
  if ((rc == GSASL_OK || rc == GSASL_NEEDS_MORE) && out_response != NULL)
    *out_response = outbox_sasl_response_new (output != NULL ? output : "", output_len);
  if (output != NULL)
    {
      explicit_bzero (output, output_len);
      gsasl_free (output);
    }
  return rc;
}

/* "e=" (RFC 5802 server-error) is the server saying no, not a failed
 * proof; the server's own failure reply follows. */
static gboolean
is_server_error (GBytes *server_final)
{
  gsize len;
  const char *data = g_bytes_get_data (server_final, &len);

  return len >= 2 && data[0] == 'e' && data[1] == '=';
}

/* Keeps "e=VALUE" as a sentence for outbox_sasl_get_server_error(). */
static void
remember_server_error (OutboxSasl *sasl, GBytes *server_final)
{
  gsize len;
  const char *data = g_bytes_get_data (server_final, &len);
  g_autofree char *value = outbox_text_sanitize (data + 2, MIN (len - 2, 100));

  g_free (sasl->server_error);
  sasl->server_error = g_strdup_printf ("SCRAM: the server says %s", value);
}

/* @error_code is for an "e=": a challenge that ends the exchange is a
 * protocol matter, while a success that comes with one is a success without
 * proof. */
static gboolean
verify_server_final (Scram *scram, GBytes *server_final, OutboxSaslError error_code, GError **error)
{
  int rc;

  if (is_server_error (server_final))
    {
      g_set_error_literal (error, OUTBOX_SASL_ERROR, error_code,
                           "The server ended the SCRAM exchange with an error");
      return FALSE;
    }
  rc = run_step (scram, server_final, NULL);
  if (rc != GSASL_OK)
    return gsasl_failed (error, OUTBOX_SASL_ERROR_SERVER_PROOF,
                         "The server's SCRAM signature does not prove that it knows the "
                         "password",
                         rc);
  scram->verified = TRUE;
  return TRUE;
}

/* The i= attribute of server-first when it is there and a number; gsasl
 * rejects the message otherwise. */
static gboolean
find_iterations (GBytes *server_first, guint64 *out_iterations)
{
  gsize len;
  const char *data = g_bytes_get_data (server_first, &len);

  for (gsize i = 0; i + 2 < len; i++)
    {
      if ((i == 0 || data[i - 1] == ',') && data[i] == 'i' && data[i + 1] == '=')
        {
          const char *start = data + i + 2;
          gsize rest = len - i - 2;
          const char *comma = memchr (start, ',', rest);
          g_autofree char *digits =
              g_strndup (start, comma != NULL ? (gsize) (comma - start) : rest);

          return g_ascii_string_to_unsigned (digits, 10, 0, G_MAXUINT64, out_iterations, NULL);
        }
    }
  return FALSE;
}

static gboolean
check_iterations (GBytes *server_first, GError **error)
{
  guint64 iterations;

  if (find_iterations (server_first, &iterations) && iterations > MAX_ITERATIONS)
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL,
                   "The server asks for %" G_GUINT64_FORMAT " SCRAM iterations; Outbox does at "
                   "most %u",
                   iterations, MAX_ITERATIONS);
      return FALSE;
    }
  return TRUE;
}

static GBytes *
scram_step (OutboxSasl *sasl, guint round, GBytes *challenge, GError **error)
{
  Scram *scram = sasl->state;
  GBytes *response = NULL;
  const char *what;
  int rc;

  switch (round)
    {
    case 0:
    case 1:
      if (round == 1 && !check_iterations (challenge, error))
        return NULL;
      rc = run_step (scram, challenge, &response);
      if (round == 1)
        {
          /* The client proof is made: gsasl needs the password no more. */
          wipe_property (scram->session, GSASL_PASSWORD);
          wipe_property (scram->session, GSASL_SCRAM_SALTED_PASSWORD);
        }
      if (rc == GSASL_NEEDS_MORE)
        return response;
      g_clear_pointer (&response, outbox_sasl_response_free);
      what = round == 0 ? "Could not start SCRAM" : "The server's SCRAM challenge is invalid";
      gsasl_failed (error, OUTBOX_SASL_ERROR_PROTOCOL, what, rc);
      return NULL;
    case 2:
      /* "e=invalid-proof" and the like: the server says no, and its own
       * failure reply (535, NO, -ERR) follows the empty response that ends
       * the exchange; that reply, not this, says what failed. */
      if (is_server_error (challenge))
        {
          remember_server_error (sasl, challenge);
          return g_bytes_new (NULL, 0);
        }
      if (!verify_server_final (scram, challenge, OUTBOX_SASL_ERROR_PROTOCOL, error))
        return NULL;
      return g_bytes_new (NULL, 0);
    default:
      g_set_error_literal (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL,
                           "The server sent a challenge after SCRAM's last message");
      return NULL;
    }
}

/* Some servers send the server-final message as additional data with the
 * success reply instead of as a challenge. */
static gboolean
scram_check_success (OutboxSasl *sasl, GBytes *additional_data, GError **error)
{
  Scram *scram = sasl->state;

  if (scram->verified)
    return TRUE;
  if (additional_data != NULL && sasl->round == 2 && !sasl->failed)
    {
      if (!verify_server_final (scram, additional_data, OUTBOX_SASL_ERROR_SERVER_PROOF, error))
        {
          sasl->failed = TRUE;
          return FALSE;
        }
      return TRUE;
    }
  g_set_error_literal (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF,
                       "The server said the sign-in succeeded without proving that it knows the "
                       "password");
  return FALSE;
}

#define SCRAM_MECHANISM(variable, mechanism_name, binds) \
  const OutboxSaslMechanism variable = {                 \
    .name = mechanism_name,                              \
    .kind = OUTBOX_SASL_SECRET_PASSWORD,                 \
    .client_first = TRUE,                                \
    .channel_binding = binds,                            \
    .start = scram_start,                                \
    .step = scram_step,                                  \
    .check_success = scram_check_success,                \
    .finish = scram_finish,                              \
  }

SCRAM_MECHANISM (outbox_sasl_scram_sha256_plus, "SCRAM-SHA-256-PLUS", TRUE);
SCRAM_MECHANISM (outbox_sasl_scram_sha1_plus, "SCRAM-SHA-1-PLUS", TRUE);
SCRAM_MECHANISM (outbox_sasl_scram_sha256, "SCRAM-SHA-256", FALSE);
SCRAM_MECHANISM (outbox_sasl_scram_sha1, "SCRAM-SHA-1", FALSE);
