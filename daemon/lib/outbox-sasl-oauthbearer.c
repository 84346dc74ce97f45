/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-sasl-private.h"

/* RFC 5801 saslname: ',' and '=' would end the gs2 header's a= field. */
static void
append_saslname (GString *buffer, const char *name)
{
  for (const char *p = name; *p != '\0'; p++)
    {
      if (*p == ',')
        g_string_append (buffer, "=2C");
      else if (*p == '=')
        g_string_append (buffer, "=3D");
      else
        g_string_append_c (buffer, *p);
    }
}

/* RFC 7628 section 3.1: the gs2 header "n,a=USER," then the key-value
 * pairs, each ended by ^A, and a final ^A. */
static GBytes *
oauthbearer_initial_response (OutboxSasl *sasl)
{
  gsize user_len = strlen (sasl->user);
  gsize secret_len = strlen (sasl->secret);
  gsize host_len = sasl->host != NULL ? strlen (sasl->host) : 0;
  /* Escaping at most triples the user; the fixed parts and a port fit in 64. */
  GString *buffer = outbox_sasl_buffer_new (3 * user_len + host_len + secret_len + 64);

  g_string_append (buffer, "n,a=");
  append_saslname (buffer, sasl->user);
  g_string_append (buffer, ",\001");
  if (sasl->host != NULL)
    g_string_append_printf (buffer, "host=%s\001", sasl->host);
  if (sasl->port != 0)
    g_string_append_printf (buffer, "port=%u\001", (guint) sasl->port);
  g_string_append (buffer, "auth=Bearer ");
  g_string_append_len (buffer, sasl->secret, secret_len);
  g_string_append (buffer, "\001\001");
  return outbox_sasl_response_take_buffer (buffer);
}

/* After an error challenge, RFC 7628 section 3.2.3: the client answers
 * with a single ^A and the server then fails the exchange. */
static GBytes *
oauthbearer_step (OutboxSasl *sasl, guint round, GBytes *challenge, GError **error)
{
  if (round > 0)
    return outbox_sasl_oauth_answer_error (sasl, round, challenge, "\001", 1, error);
  return oauthbearer_initial_response (sasl);
}

const OutboxSaslMechanism outbox_sasl_oauthbearer = {
  .name = "OAUTHBEARER",
  .kind = OUTBOX_SASL_SECRET_TOKEN,
  .client_first = TRUE,
  .step = oauthbearer_step,
};
