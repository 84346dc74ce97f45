/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

#include <gio/gio.h>

#include <outbox/outbox-types.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_ACCOUNT (outbox_account_get_type ())
OUTBOX_EXPORT
G_DECLARE_FINAL_TYPE (OutboxAccount, outbox_account, OUTBOX, ACCOUNT, GObject)

OUTBOX_EXPORT
const char *outbox_account_get_name (OutboxAccount *self);
OUTBOX_EXPORT
const char *outbox_account_get_address (OutboxAccount *self);
OUTBOX_EXPORT
const char *outbox_account_get_smtp_url (OutboxAccount *self);
OUTBOX_EXPORT
gboolean outbox_account_get_is_default (OutboxAccount *self);
OUTBOX_EXPORT
OutboxAccountState outbox_account_get_state (OutboxAccount *self);
OUTBOX_EXPORT
const char *outbox_account_get_state_message (OutboxAccount *self);
OUTBOX_EXPORT
gboolean outbox_account_get_needs_attention (OutboxAccount *self);
OUTBOX_EXPORT
GDateTime *outbox_account_get_next_attempt (OutboxAccount *self);
OUTBOX_EXPORT
GVariant *outbox_account_get_settings (OutboxAccount *self);

OUTBOX_EXPORT
void outbox_account_set_password_async (OutboxAccount *self,
                                        const char *service,
                                        const char *secret,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_account_set_password_finish (OutboxAccount *self,
                                             GAsyncResult *result,
                                             GError **error);
OUTBOX_EXPORT
gboolean outbox_account_set_password_sync (OutboxAccount *self,
                                           const char *service,
                                           const char *secret,
                                           GCancellable *cancellable,
                                           GError **error);

OUTBOX_EXPORT
void outbox_account_test_async (OutboxAccount *self,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
OUTBOX_EXPORT
GVariant *outbox_account_test_finish (OutboxAccount *self,
                                      GAsyncResult *result,
                                      GError **error);
OUTBOX_EXPORT
GVariant *outbox_account_test_sync (OutboxAccount *self,
                                    GCancellable *cancellable,
                                    GError **error);

OUTBOX_EXPORT
void outbox_account_update_async (OutboxAccount *self,
                                  GVariant *settings,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_account_update_finish (OutboxAccount *self,
                                       GAsyncResult *result,
                                       GError **error);
OUTBOX_EXPORT
gboolean outbox_account_update_sync (OutboxAccount *self,
                                     GVariant *settings,
                                     GCancellable *cancellable,
                                     GError **error);

OUTBOX_EXPORT
void outbox_account_remove_async (OutboxAccount *self,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_account_remove_finish (OutboxAccount *self,
                                       GAsyncResult *result,
                                       GError **error);
OUTBOX_EXPORT
gboolean outbox_account_remove_sync (OutboxAccount *self,
                                     GCancellable *cancellable,
                                     GError **error);

G_END_DECLS
