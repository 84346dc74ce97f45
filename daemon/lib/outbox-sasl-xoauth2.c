/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-sasl-private.h"

/* XOAUTH2, as Google and Microsoft define it:
 * "user=" USER ^A "auth=Bearer " TOKEN ^A ^A.  After an error challenge the
 * client ends the exchange with an empty response. */
static GBytes *
xoauth2_step (OutboxSasl *sasl, guint round, GBytes *challenge, GError **error)
{
  gsize user_len = strlen (sasl->user);
  gsize secret_len = strlen (sasl->secret);
  GString *buffer;

  if (round > 0)
    return outbox_sasl_oauth_answer_error (sasl, round, challenge, "", 0, error);

  buffer = outbox_sasl_buffer_new (user_len + secret_len + 32);
  g_string_append (buffer, "user=");
  g_string_append_len (buffer, sasl->user, user_len);
  g_string_append (buffer, "\001auth=Bearer ");
  g_string_append_len (buffer, sasl->secret, secret_len);
  g_string_append (buffer, "\001\001");
  return outbox_sasl_response_take_buffer (buffer);
}

const OutboxSaslMechanism outbox_sasl_xoauth2 = {
  .name = "XOAUTH2",
  .kind = OUTBOX_SASL_SECRET_TOKEN,
  .client_first = TRUE,
  .step = xoauth2_step,
};
