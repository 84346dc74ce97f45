/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

#include <gio/gio.h>

#include <outbox/outbox-types.h>
#include <outbox/outbox-account.h>
#include <outbox/outbox-message.h>
#include <outbox/outbox-submit-options.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_CLIENT (outbox_client_get_type ())
OUTBOX_EXPORT
G_DECLARE_FINAL_TYPE (OutboxClient, outbox_client, OUTBOX, CLIENT, GObject)

OUTBOX_EXPORT
void outbox_client_new (GCancellable *cancellable,
                        GAsyncReadyCallback callback,
                        gpointer user_data);
OUTBOX_EXPORT
void outbox_client_new_for_connection (GDBusConnection *connection,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
OUTBOX_EXPORT
OutboxClient *outbox_client_new_finish (GAsyncResult *result,
                                        GError **error);
OUTBOX_EXPORT
OutboxClient *outbox_client_new_sync (GCancellable *cancellable,
                                      GError **error);
OUTBOX_EXPORT
OutboxClient *outbox_client_new_for_connection_sync (GDBusConnection *connection,
                                                     GCancellable *cancellable,
                                                     GError **error);

OUTBOX_EXPORT
GDBusConnection *outbox_client_get_connection (OutboxClient *self);
OUTBOX_EXPORT
gboolean outbox_client_get_online (OutboxClient *self);
OUTBOX_EXPORT
gboolean outbox_client_get_daemon_running (OutboxClient *self);
OUTBOX_EXPORT
const char *outbox_client_get_daemon_version (OutboxClient *self);

OUTBOX_EXPORT
void outbox_client_submit_bytes_async (OutboxClient *self,
                                       GBytes *message,
                                       OutboxSubmitOptions *options,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
OUTBOX_EXPORT
char *outbox_client_submit_bytes_finish (OutboxClient *self,
                                         GAsyncResult *result,
                                         GError **error);
OUTBOX_EXPORT
char *outbox_client_submit_bytes_sync (OutboxClient *self,
                                       GBytes *message,
                                       OutboxSubmitOptions *options,
                                       GCancellable *cancellable,
                                       GError **error);

OUTBOX_EXPORT
void outbox_client_submit_stream_async (OutboxClient *self,
                                        GInputStream *message,
                                        OutboxSubmitOptions *options,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
OUTBOX_EXPORT
char *outbox_client_submit_stream_finish (OutboxClient *self,
                                          GAsyncResult *result,
                                          GError **error);
OUTBOX_EXPORT
char *outbox_client_submit_stream_sync (OutboxClient *self,
                                        GInputStream *message,
                                        OutboxSubmitOptions *options,
                                        GCancellable *cancellable,
                                        GError **error);

OUTBOX_EXPORT
void outbox_client_submit_file_async (OutboxClient *self,
                                      GFile *message,
                                      OutboxSubmitOptions *options,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
OUTBOX_EXPORT
char *outbox_client_submit_file_finish (OutboxClient *self,
                                        GAsyncResult *result,
                                        GError **error);
OUTBOX_EXPORT
char *outbox_client_submit_file_sync (OutboxClient *self,
                                      GFile *message,
                                      OutboxSubmitOptions *options,
                                      GCancellable *cancellable,
                                      GError **error);

OUTBOX_EXPORT
GListModel *outbox_client_get_messages (OutboxClient *self);
OUTBOX_EXPORT
void outbox_client_load_messages_async (OutboxClient *self,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
OUTBOX_EXPORT
GListModel *outbox_client_load_messages_finish (OutboxClient *self,
                                                GAsyncResult *result,
                                                GError **error);
OUTBOX_EXPORT
GListModel *outbox_client_load_messages_sync (OutboxClient *self,
                                              GCancellable *cancellable,
                                              GError **error);

OUTBOX_EXPORT
OutboxMessage *outbox_client_get_message (OutboxClient *self,
                                          const char *id);
OUTBOX_EXPORT
void outbox_client_lookup_message_async (OutboxClient *self,
                                         const char *id,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data);
OUTBOX_EXPORT
OutboxMessage *outbox_client_lookup_message_finish (OutboxClient *self,
                                                    GAsyncResult *result,
                                                    GError **error);
OUTBOX_EXPORT
OutboxMessage *outbox_client_lookup_message_sync (OutboxClient *self,
                                                  const char *id,
                                                  GCancellable *cancellable,
                                                  GError **error);

OUTBOX_EXPORT
void outbox_client_flush_async (OutboxClient *self,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_client_flush_finish (OutboxClient *self,
                                     GAsyncResult *result,
                                     GError **error);
OUTBOX_EXPORT
gboolean outbox_client_flush_sync (OutboxClient *self,
                                   GCancellable *cancellable,
                                   GError **error);

OUTBOX_EXPORT
GListModel *outbox_client_get_accounts (OutboxClient *self);
OUTBOX_EXPORT
void outbox_client_load_accounts_async (OutboxClient *self,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
OUTBOX_EXPORT
GListModel *outbox_client_load_accounts_finish (OutboxClient *self,
                                                GAsyncResult *result,
                                                GError **error);
OUTBOX_EXPORT
GListModel *outbox_client_load_accounts_sync (OutboxClient *self,
                                              GCancellable *cancellable,
                                              GError **error);
OUTBOX_EXPORT
OutboxAccount *outbox_client_get_account (OutboxClient *self,
                                          const char *name);

OUTBOX_EXPORT
void outbox_client_add_account_async (OutboxClient *self,
                                      const char *name,
                                      GVariant *settings,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_client_add_account_finish (OutboxClient *self,
                                           GAsyncResult *result,
                                           GError **error);
OUTBOX_EXPORT
gboolean outbox_client_add_account_sync (OutboxClient *self,
                                         const char *name,
                                         GVariant *settings,
                                         GCancellable *cancellable,
                                         GError **error);

OUTBOX_EXPORT
void outbox_client_discover_async (OutboxClient *self,
                                   const char *address,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
OUTBOX_EXPORT
GVariant *outbox_client_discover_finish (OutboxClient *self,
                                         GAsyncResult *result,
                                         GError **error);
OUTBOX_EXPORT
GVariant *outbox_client_discover_sync (OutboxClient *self,
                                       const char *address,
                                       GCancellable *cancellable,
                                       GError **error);

G_END_DECLS
