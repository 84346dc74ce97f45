/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-sasl-private.h"

/* RFC 4616: one message, authzid NUL authcid NUL passwd.  The authzid is
 * left empty: the server derives it from the authcid. */
static GBytes *
plain_step (OutboxSasl *sasl, guint round, GBytes *challenge, GError **error)
{
  gsize user_len = strlen (sasl->user);
  gsize secret_len = strlen (sasl->secret);
  GString *buffer;

  if (round > 0)
    {
      g_set_error_literal (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL,
                           "The server sent a challenge after PLAIN's only message");
      return NULL;
    }

  buffer = outbox_sasl_buffer_new (user_len + secret_len + 2);
  g_string_append_c (buffer, '\0');
  g_string_append_len (buffer, sasl->user, user_len);
  g_string_append_c (buffer, '\0');
  g_string_append_len (buffer, sasl->secret, secret_len);
  return outbox_sasl_response_take_buffer (buffer);
}

const OutboxSaslMechanism outbox_sasl_plain = {
  .name = "PLAIN",
  .kind = OUTBOX_SASL_SECRET_PASSWORD,
  .client_first = TRUE,
  .step = plain_step,
};
