/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-tls.h"

#define PIN_PREFIX "sha256:"
#define SHA256_LEN 32

static gboolean
certificate_sha256 (GTlsCertificate *certificate, guint8 out[SHA256_LEN])
{
  g_autoptr (GByteArray) der = NULL;
  g_autoptr (GChecksum) checksum = NULL;
  gsize len = SHA256_LEN;

  g_object_get (certificate, "certificate", &der, NULL);
  if (der == NULL)
    return FALSE;

  checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (checksum, der->data, der->len);
  g_checksum_get_digest (checksum, out, &len);
  return len == SHA256_LEN;
}

/* Compares without an early exit, so the time taken says nothing about how
 * much of the pin a certificate matched. */
static gboolean
digests_equal (const guint8 a[SHA256_LEN], const guint8 b[SHA256_LEN])
{
  guint8 diff = 0;

  for (gsize i = 0; i < SHA256_LEN; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

static gboolean
certificate_matches_pin (GTlsCertificate *certificate, const guint8 pin[SHA256_LEN])
{
  guint8 digest[SHA256_LEN];

  return certificate != NULL && certificate_sha256 (certificate, digest) &&
         digests_equal (digest, pin);
}

static gboolean
invalid_fingerprint (GError **error, const char *why)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               "Invalid certificate fingerprint: %s; expected “sha256:” and 64 hexadecimal "
               "digits, optionally in pairs separated by colons",
               why);
  return FALSE;
}

/* Hex digits either all in a row or in pairs separated by single colons. */
gboolean
outbox_tls_parse_fingerprint (const char *fingerprint, guint8 out[32], GError **error)
{
  const char *p;
  gsize n_digits = 0;

  g_return_val_if_fail (fingerprint != NULL, FALSE);

  if (g_ascii_strncasecmp (fingerprint, PIN_PREFIX, strlen (PIN_PREFIX)) != 0)
    return invalid_fingerprint (error, "it does not start with “sha256:”");

  for (p = fingerprint + strlen (PIN_PREFIX); *p != '\0'; p++)
    {
      if (*p == ':' && n_digits % 2 == 0 && n_digits > 0 && p[1] != '\0' && p[1] != ':')
        continue;
      if (!g_ascii_isxdigit (*p))
        return invalid_fingerprint (error, "it contains a character that is not a hex digit");
      if (n_digits == 2 * SHA256_LEN)
        return invalid_fingerprint (error, "it is too long");
      if (n_digits % 2 == 0)
        out[n_digits / 2] = (guint8) (g_ascii_xdigit_value (*p) << 4);
      else
        out[n_digits / 2] |= (guint8) g_ascii_xdigit_value (*p);
      n_digits++;
    }
  if (n_digits != 2 * SHA256_LEN)
    return invalid_fingerprint (error, "it is too short");
  return TRUE;
}

char *
outbox_tls_certificate_fingerprint (GTlsCertificate *certificate)
{
  guint8 digest[SHA256_LEN];
  GString *text;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), NULL);

  if (!certificate_sha256 (certificate, digest))
    return NULL;

  text = g_string_new (PIN_PREFIX);
  for (gsize i = 0; i < SHA256_LEN; i++)
    g_string_append_printf (text, i == 0 ? "%02X" : ":%02X", digest[i]);
  return g_string_free (text, FALSE);
}

/* Called only when CA validation failed: the pin alone decides. */
static gboolean
accept_pinned_certificate (GTlsConnection *connection,
                           GTlsCertificate *peer_cert,
                           GTlsCertificateFlags errors,
                           gpointer user_data)
{
  const guint8 *pin = user_data;

  return certificate_matches_pin (peer_cert, pin);
}

static void
free_pin (gpointer pin, GClosure *closure)
{
  g_free (pin);
}

static gboolean
use_ca_file (GTlsConnection *tls, const char *ca_file, GError **error)
{
  g_autoptr (GTlsDatabase) database = g_tls_file_database_new (ca_file, error);

  if (database == NULL)
    return FALSE;
  g_tls_connection_set_database (tls, database);
  return TRUE;
}

/* Keeps the certificate a server offered, and what was wrong with it, so
 * that a refused handshake can still tell the user what they saw.  It never
 * accepts anything itself. */
static gboolean
remember_offered_certificate (GTlsConnection *tls,
                              GTlsCertificate *certificate,
                              GTlsCertificateFlags errors,
                              gpointer user_data)
{
  g_object_set_data_full (G_OBJECT (tls), "outbox-offered-certificate",
                          g_object_ref (certificate), g_object_unref);
  g_object_set_data (G_OBJECT (tls), "outbox-offered-errors", GUINT_TO_POINTER (errors));
  return FALSE;
}

static void
append_certificate_problems (GString *text, GTlsCertificateFlags errors)
{
  static const struct
  {
    GTlsCertificateFlags flag;
    const char *words;
  } problems[] = {
    { G_TLS_CERTIFICATE_UNKNOWN_CA, "its issuer is not a trusted CA" },
    { G_TLS_CERTIFICATE_BAD_IDENTITY, "it is not for this host name" },
    { G_TLS_CERTIFICATE_NOT_ACTIVATED, "it is not valid yet" },
    { G_TLS_CERTIFICATE_EXPIRED, "it has expired" },
    { G_TLS_CERTIFICATE_REVOKED, "it was revoked" },
    { G_TLS_CERTIFICATE_INSECURE, "it uses an insecure algorithm" },
  };
  const char *separator = ": ";

  for (gsize i = 0; i < G_N_ELEMENTS (problems); i++)
    if (errors & problems[i].flag)
      {
        g_string_append_printf (text, "%s%s", separator, problems[i].words);
        separator = ", ";
      }
}

GTlsCertificate *
outbox_tls_explain_failure (GTlsConnection *tls, GError **error)
{
  GTlsCertificate *offered = g_object_get_data (G_OBJECT (tls), "outbox-offered-certificate");
  GTlsCertificateFlags errors =
      GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (tls), "outbox-offered-errors"));
  const char *pin = g_object_get_data (G_OBJECT (tls), "outbox-pin");
  g_autoptr (GString) text = NULL;
  g_autofree char *fingerprint = NULL;

  if (offered == NULL || error == NULL || *error == NULL
      || !g_error_matches (*error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE))
    return offered ? g_object_ref (offered) : NULL;
  text = g_string_new ((*error)->message);
  append_certificate_problems (text, errors);
  fingerprint = outbox_tls_certificate_fingerprint (offered);
  /* With a pin, the pin alone decided: advising to pin would mislead. */
  if (pin != NULL)
    g_string_append_printf (text, " (certificate %s, which does not match the pinned "
                            "fingerprint %s)", fingerprint, pin);
  else
    g_string_append_printf (text, " (certificate %s; trust its CA with --tls-ca-file, or pin it "
                            "with --tls-fingerprint once you have checked it)", fingerprint);
  g_free ((*error)->message);
  (*error)->message = g_string_free (g_steal_pointer (&text), FALSE);
  return g_object_ref (offered);
}

GIOStream *
outbox_tls_client_new (GIOStream *base,
                       const char *host,
                       guint16 port,
                       const char *ca_file,
                       const char *fingerprint,
                       GError **error)
{
  g_autoptr (GSocketConnectable) identity = NULL;
  g_autoptr (GIOStream) tls = NULL;
  guint8 pin[SHA256_LEN];

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);
  g_return_val_if_fail (host != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (fingerprint != NULL && !outbox_tls_parse_fingerprint (fingerprint, pin, error))
    return NULL;

  identity = g_network_address_new (host, port);
  tls = g_tls_client_connection_new (base, identity, error);
  if (tls == NULL)
    return NULL;
  if (ca_file != NULL && !use_ca_file (G_TLS_CONNECTION (tls), ca_file, error))
    return NULL;
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (remember_offered_certificate), NULL);
  if (fingerprint != NULL)
    {
      g_signal_connect_data (tls, "accept-certificate", G_CALLBACK (accept_pinned_certificate),
                             g_memdup2 (pin, sizeof pin), free_pin, G_CONNECT_DEFAULT);
      g_object_set_data_full (G_OBJECT (tls), "outbox-pin", g_strdup (fingerprint), g_free);
    }

  return g_steal_pointer (&tls);
}

gboolean
outbox_tls_check_pin (GTlsConnection *tls, const char *fingerprint, GError **error)
{
  GTlsCertificate *peer;
  g_autofree char *seen = NULL;
  guint8 pin[SHA256_LEN];

  g_return_val_if_fail (G_IS_TLS_CONNECTION (tls), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (fingerprint == NULL)
    return TRUE;
  if (!outbox_tls_parse_fingerprint (fingerprint, pin, error))
    return FALSE;

  peer = g_tls_connection_get_peer_certificate (tls);
  if (certificate_matches_pin (peer, pin))
    return TRUE;

  seen = peer != NULL ? outbox_tls_certificate_fingerprint (peer) : NULL;
  g_set_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE,
               "The server certificate (%s) does not match the pinned fingerprint %s",
               seen != NULL ? seen : "none", fingerprint);
  return FALSE;
}
