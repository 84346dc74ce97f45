/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-sasl.h"

G_BEGIN_DECLS

/* Where the delivery engine, the Sent copies and the account checks get
 * the secret to sign in to one of an account's servers, without knowing
 * where it comes from.  By the account's settings, the first that applies:
 *
 *   goa-id            GNOME Online Accounts: its password or access token,
 *                     asked for each session (outbox-goa.h);
 *   oauth2            an OAuth2 access token, kept in memory until shortly
 *                     before it ends, then refreshed with the refresh token
 *                     from the Secret Service (outbox account authorize put
 *                     it there) through outbox-oauth2-helper;
 *   token-command     a command (argv, no shell) whose first line of output
 *                     is an OAuth2 access token, run for each session;
 *   password-command  the same for a password (pass(1), company vaults);
 *   (the default)     the password in the Secret Service (outbox-secret.h).
 *
 * Secrets are wiped when freed; none is ever logged. */

#define OUTBOX_CREDENTIALS_ERROR (outbox_credentials_error_quark ())
GQuark outbox_credentials_error_quark (void);

typedef enum
{
  OUTBOX_CREDENTIALS_ERROR_MISSING,             /* no password stored: the account needs one */
  OUTBOX_CREDENTIALS_ERROR_NEEDS_AUTHORIZATION, /* OAuth2: run outbox account authorize */
  OUTBOX_CREDENTIALS_ERROR_NEEDS_ATTENTION,     /* a linked account is gone or switched off */
  OUTBOX_CREDENTIALS_ERROR_COMMAND,             /* the command failed or printed nothing */
  OUTBOX_CREDENTIALS_ERROR_STORE,               /* the Secret Service (or GOA) failed */
} OutboxCredentialsError;

typedef struct
{
  char *secret; /* (owned) wiped when freed */
  OutboxSaslSecretKind kind;
} OutboxSecret;

void outbox_secret_free (OutboxSecret *secret);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSecret, outbox_secret_free)

/* How long a command may run before it is killed, in seconds: long enough
 * for a person to answer a pinentry prompt. */
#define OUTBOX_CREDENTIALS_COMMAND_TIMEOUT 120

#define OUTBOX_TYPE_CREDENTIALS (outbox_credentials_get_type ())
G_DECLARE_FINAL_TYPE (OutboxCredentials, outbox_credentials, OUTBOX, CREDENTIALS, GObject)

OutboxCredentials *outbox_credentials_new (void);

/* What kind of secret @account signs in with before asking (tokens for
 * token-command and OAuth2; a GOA account says with its secret). */
OutboxSaslSecretKind outbox_credentials_kind_for (const OutboxAccountConfig *account);

/* The secret for @url, one of @account's servers.  Fails with
 * OUTBOX_CREDENTIALS_ERROR_*, each with a sentence that says what to do. */
void outbox_credentials_lookup_async (OutboxCredentials *self,
                                      const OutboxAccountConfig *account,
                                      const OutboxServerUrl *url,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
OutboxSecret *outbox_credentials_lookup_finish (OutboxCredentials *self,
                                                GAsyncResult *result,
                                                GError **error);

/* The server refused the access token @account was given: the next lookup
 * gets a new one instead of the one kept in memory. */
void outbox_credentials_forget_token (OutboxCredentials *self, const OutboxAccountConfig *account);

G_END_DECLS
