/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The OAuth2 providers Outbox knows by name (--oauth2 google|microsoft): their
 * endpoints and the scopes that cover SMTP, IMAP and POP3.  Apart from the
 * OAuth2 client (outbox-oauth2.h, which needs libsoup) so that the daemon
 * and the account checks can read them. */
typedef struct
{
  const char *name;
  const char *auth_url;
  const char *token_url;
  const char *device_url; /* (nullable) RFC 8628 device authorization endpoint */
  const char *scope;
  /* Google's device grant refuses the mail scope: the user must use the
   * browser there. */
  gboolean device_grant_allowed_for_mail;
} OutboxOAuth2Provider;

/* (nullable) The provider called @name ("google", "microsoft"; as written). */
const OutboxOAuth2Provider *outbox_oauth2_provider_lookup (const char *name);

/* What one account's OAuth2 sign-in uses: its provider's endpoints with the
 * account's own overrides.  No secret is part of it: the client secret and
 * the refresh token live in the Secret Service. */
typedef struct
{
  char *auth_url;   /* (nullable) */
  char *token_url;  /* (nullable) needed by every token request */
  char *device_url; /* (nullable) */
  char *scope;      /* (nullable) space-separated */
  char *client_id;  /* (nullable) needed by every request */
} OutboxOAuth2Settings;

OutboxOAuth2Settings *outbox_oauth2_settings_new_for_provider (const OutboxOAuth2Provider *provider,
                                                               const char *client_id);
void outbox_oauth2_settings_free (OutboxOAuth2Settings *settings);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxOAuth2Settings, outbox_oauth2_settings_free)

G_END_DECLS
