/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

#include <gio/gio.h>

#include <outbox/outbox-types.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_MESSAGE (outbox_message_get_type ())
OUTBOX_EXPORT
G_DECLARE_FINAL_TYPE (OutboxMessage, outbox_message, OUTBOX, MESSAGE, GObject)

OUTBOX_EXPORT
const char *outbox_message_get_id (OutboxMessage *self);
OUTBOX_EXPORT
OutboxMessageState outbox_message_get_state (OutboxMessage *self);
OUTBOX_EXPORT
const char *outbox_message_get_account (OutboxMessage *self);
OUTBOX_EXPORT
const char *outbox_message_get_sender (OutboxMessage *self);
OUTBOX_EXPORT
const char *const *outbox_message_get_recipients (OutboxMessage *self);
OUTBOX_EXPORT
const char *outbox_message_get_subject (OutboxMessage *self);
OUTBOX_EXPORT
const char *outbox_message_get_message_id (OutboxMessage *self);
OUTBOX_EXPORT
const char *outbox_message_get_last_reply (OutboxMessage *self);
OUTBOX_EXPORT
GDateTime *outbox_message_get_created (OutboxMessage *self);
OUTBOX_EXPORT
GDateTime *outbox_message_get_send_at (OutboxMessage *self);
OUTBOX_EXPORT
GDateTime *outbox_message_get_next_attempt (OutboxMessage *self);
OUTBOX_EXPORT
guint64 outbox_message_get_size (OutboxMessage *self);
OUTBOX_EXPORT
guint outbox_message_get_attempts (OutboxMessage *self);
OUTBOX_EXPORT
GVariant *outbox_message_get_details (OutboxMessage *self);

OUTBOX_EXPORT
void outbox_message_retry_async (OutboxMessage *self,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_message_retry_finish (OutboxMessage *self,
                                      GAsyncResult *result,
                                      GError **error);
OUTBOX_EXPORT
gboolean outbox_message_retry_sync (OutboxMessage *self,
                                    GCancellable *cancellable,
                                    GError **error);

OUTBOX_EXPORT
void outbox_message_hold_async (OutboxMessage *self,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_message_hold_finish (OutboxMessage *self,
                                     GAsyncResult *result,
                                     GError **error);
OUTBOX_EXPORT
gboolean outbox_message_hold_sync (OutboxMessage *self,
                                   GCancellable *cancellable,
                                   GError **error);

OUTBOX_EXPORT
void outbox_message_release_async (OutboxMessage *self,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_message_release_finish (OutboxMessage *self,
                                        GAsyncResult *result,
                                        GError **error);
OUTBOX_EXPORT
gboolean outbox_message_release_sync (OutboxMessage *self,
                                      GCancellable *cancellable,
                                      GError **error);

OUTBOX_EXPORT
void outbox_message_cancel_async (OutboxMessage *self,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
OUTBOX_EXPORT
gboolean outbox_message_cancel_finish (OutboxMessage *self,
                                       GAsyncResult *result,
                                       GError **error);
OUTBOX_EXPORT
gboolean outbox_message_cancel_sync (OutboxMessage *self,
                                     GCancellable *cancellable,
                                     GError **error);

G_END_DECLS
