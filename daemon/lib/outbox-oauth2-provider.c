/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-oauth2-provider.h"

/* Microsoft's scopes name each protocol; offline_access is what makes it
 * hand out a refresh token.  Google's one scope covers all three; its
 * device flow serves a fixed list of scopes, and full mail access is not on
 * it. */
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
      if (g_str_equal (providers[i].name, name))
        return &providers[i];
    }
  return NULL;
}

OutboxOAuth2Settings *
outbox_oauth2_settings_new_for_provider (const OutboxOAuth2Provider *provider, const char *client_id)
{
  OutboxOAuth2Settings *settings = g_new0 (OutboxOAuth2Settings, 1);

  g_return_val_if_fail (provider != NULL, settings);

  settings->auth_url = g_strdup (provider->auth_url);
  settings->token_url = g_strdup (provider->token_url);
  settings->device_url = g_strdup (provider->device_url);
  settings->scope = g_strdup (provider->scope);
  settings->client_id = g_strdup (client_id);
  return settings;
}

void
outbox_oauth2_settings_free (OutboxOAuth2Settings *settings)
{
  if (settings == NULL)
    return;
  g_free (settings->auth_url);
  g_free (settings->token_url);
  g_free (settings->device_url);
  g_free (settings->scope);
  g_free (settings->client_id);
  g_free (settings);
}
