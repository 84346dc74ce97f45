/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-oauth2-provider.h"

/* Microsoft's scopes name each protocol; offline_access is what makes it
 * hand out a refresh token.  Google's one scope covers all three. */
static const OutboxOAuth2Provider providers[] = {
  {
      .name = "google",
      .auth_url = "https://accounts.google.com/o/oauth2/v2/auth",
      .token_url = "https://oauth2.googleapis.com/token",
      .device_url = "https://oauth2.googleapis.com/device/code",
      .scope = "https://mail.google.com/",
      .device_grant_allowed_for_mail = FALSE,
  },
  {
      .name = "microsoft",
      .auth_url = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
      .token_url = "https://login.microsoftonline.com/common/oauth2/v2.0/token",
      .device_url = "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
      .scope = "https://outlook.office.com/SMTP.Send https://outlook.office.com/IMAP.AccessAsUser.All "
               "https://outlook.office.com/POP.AccessAsUser.All offline_access",
      .device_grant_allowed_for_mail = TRUE,
  },
};

const OutboxOAuth2Provider *
outbox_oauth2_provider_lookup (const char *name)
{
  if (name == NULL)
    return NULL;
  for (gsize i = 0; i < G_N_ELEMENTS (providers); i++)
    {
      if (g_ascii_strcasecmp (providers[i].name, name) == 0)
        return &providers[i];
    }
  return NULL;
}

void
outbox_oauth2_settings_free (OutboxOAuth2Settings *settings)
{
  if (settings == NULL)
    return;
  g_free (settings->provider);
  g_free (settings->auth_url);
  g_free (settings->token_url);
  g_free (settings->device_url);
  g_free (settings->scope);
  g_free (settings->client_id);
  g_free (settings);
}
