/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-sasl.h"
#include "outbox-url.h"

G_BEGIN_DECLS

/* GNOME Online Accounts: the mail accounts a GNOME user already has in
 * Settings → Online Accounts, with the servers and the secrets Evolution
 * and Geary use.  An Outbox account linked to one (goa-id) takes its
 * servers from it when linked, and a fresh password or access token from
 * it for each session, so that a token GOA refreshed or a password changed
 * there just works.
 *
 * Errors are OUTBOX_GOA_ERROR_*, each a sentence that says what to do. */

#define OUTBOX_GOA_ERROR (outbox_goa_error_quark ())
GQuark outbox_goa_error_quark (void);

typedef enum
{
  OUTBOX_GOA_ERROR_UNAVAILABLE, /* no goa-daemon on the session bus */
  OUTBOX_GOA_ERROR_NOT_FOUND,   /* no such account (removed, or never there) */
  OUTBOX_GOA_ERROR_NO_MAIL,     /* the account's mail is switched off or it has none */
  OUTBOX_GOA_ERROR_ATTENTION,   /* GOA needs the user to sign in again */
  OUTBOX_GOA_ERROR_FAILED,      /* GOA could not give the secret */
} OutboxGoaError;

/* One linkable mail account, for outbox account list --goa. */
typedef struct
{
  char *id;       /* GOA's account id ("account_1712345678_0") */
  char *provider; /* "Google", "IMAP and SMTP", ... */
  char *address;  /* the mail address */
  char *smtp;     /* (nullable) the SMTP server as a URL */
  char *imap;     /* (nullable) the IMAP server as a URL */
  gboolean usable; /* mail on and no attention needed */
} OutboxGoaMailAccount;

void outbox_goa_mail_account_free (OutboxGoaMailAccount *account);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxGoaMailAccount, outbox_goa_mail_account_free)

/* GOA's client, made once per process (goa_client_new()) and kept. */
void outbox_goa_client_get_async (GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
GObject *outbox_goa_client_get_finish (GAsyncResult *result, GError **error);
/* The same for a command-line program. */
GObject *outbox_goa_client_get_sync (GError **error);

/* (transfer full) (element-type OutboxGoaMailAccount) every account with a
 * Mail interface, by address. */
GPtrArray *outbox_goa_list_mail_accounts (GObject *client);

/* (transfer full) the mail account whose id or address is @id_or_address,
 * usable or not; NULL with OUTBOX_GOA_ERROR_NOT_FOUND. */
OutboxGoaMailAccount *outbox_goa_find_mail_account (GObject *client,
                                                    const char *id_or_address,
                                                    GError **error);

/* The secret for @service (smtp, imap) of the account with @goa_id: a
 * password (PasswordBased) or an access token (OAuth2Based).  Fails when
 * the account is gone, its mail is off or GOA needs attention.  Free with
 * g_free() after wiping; *@out_kind says which kind it is. */
void outbox_goa_get_secret_async (GObject *client,
                                  const char *goa_id,
                                  OutboxProtocol service,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
char *outbox_goa_get_secret_finish (GAsyncResult *result,
                                    OutboxSaslSecretKind *out_kind,
                                    GError **error);

G_END_DECLS
