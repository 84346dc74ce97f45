/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <libsecret/secret.h>

#include "outbox-url.h"

G_BEGIN_DECLS

/* Passwords in the Secret Service under the schema org.outbox.Password with
 * attributes account, service (smtp, imap, pop3), user and host.  Any program
 * may store one there and the daemon finds it.  Errors are
 * OUTBOX_ERROR_SECRET_FAILED. */
const SecretSchema *outbox_secret_get_schema (void);

void outbox_secret_store_async (const char *account,
                                const OutboxServerUrl *url,
                                const char *password,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean outbox_secret_store_finish (GAsyncResult *result, GError **error);

/* Returns NULL without error when no password is stored.  Free the result
 * with secret_password_free(). */
void outbox_secret_lookup_async (const char *account,
                                 const OutboxServerUrl *url,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
char *outbox_secret_lookup_finish (GAsyncResult *result, GError **error);

/* The account's secrets that belong to no server: service "oauth2" (the
 * refresh token) and "oauth2-client" (the client secret).  Stored with the
 * attributes account and service only; looked up like passwords (finish
 * with the functions above). */
void outbox_secret_store_service_async (const char *account,
                                        const char *service,
                                        const char *secret,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
void outbox_secret_lookup_service_async (const char *account,
                                         const char *service,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data);

/* Removes every password of an account. */
void outbox_secret_clear_account_async (const char *account,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
gboolean outbox_secret_clear_account_finish (GAsyncResult *result, GError **error);

G_END_DECLS
