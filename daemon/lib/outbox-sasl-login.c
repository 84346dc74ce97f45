/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-sasl-private.h"

/* LOGIN (draft-murchison-sasl-login): the server prompts twice, and the
 * client answers the first prompt with the user and the second with the
 * password.  The prompts' words vary between servers ("Username:",
 * "User Name"), so their order is what counts, not their text. */
static GBytes *
login_step (OutboxSasl *sasl, guint round, GBytes *challenge, GError **error)
{
  switch (round)
    {
    case 0:
      return outbox_sasl_response_new (sasl->user, strlen (sasl->user));
    case 1:
      return outbox_sasl_response_new (sasl->secret, strlen (sasl->secret));
    default:
      g_set_error_literal (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL,
                           "The server sent a third LOGIN prompt; LOGIN has only two");
      return NULL;
    }
}

const OutboxSaslMechanism outbox_sasl_login = {
  .name = "LOGIN",
  .kind = OUTBOX_SASL_SECRET_PASSWORD,
  .client_first = FALSE,
  .step = login_step,
};
