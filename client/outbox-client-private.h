/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <outbox/outbox.h>

#include "outbox-dbus.h"

G_BEGIN_DECLS

/* What the public objects share inside the library. */

void           _outbox_client_error_translate (GError **error);
void           _outbox_task_return_dbus_error (GTask *task,
                                               GError *error);

GVariant      *_outbox_submit_options_to_variant (OutboxSubmitOptions *options);

/* @state: (nullable) as for _outbox_message_update() */
OutboxMessage *_outbox_message_new (OutboxDbusQueue *queue,
                                    const char *id,
                                    const char *state,
                                    GVariant *details);
void           _outbox_message_update (OutboxMessage *self,
                                       const char *state,
                                       GVariant *details);
gint64         _outbox_message_get_created_unix (OutboxMessage *self);

OutboxAccount *_outbox_account_new (OutboxDbusAccounts *accounts,
                                    const char *name,
                                    const char *state,
                                    GVariant *settings);
void           _outbox_account_update (OutboxAccount *self,
                                       const char *state,
                                       GVariant *settings);

/* A GListModel of OutboxMessage, oldest first (by created time, then id),
 * that finds a message by id in O(1) and its position in O(log n). */
#define OUTBOX_TYPE_MESSAGE_LIST (_outbox_message_list_get_type ())
G_DECLARE_FINAL_TYPE (OutboxMessageList, _outbox_message_list, OUTBOX, MESSAGE_LIST, GObject)

OutboxMessageList *_outbox_message_list_new (void);
OutboxMessage     *_outbox_message_list_lookup (OutboxMessageList *self,
                                                const char *id);
void               _outbox_message_list_add (OutboxMessageList *self,
                                             OutboxMessage *message);
void               _outbox_message_list_remove (OutboxMessageList *self,
                                                const char *id);
GPtrArray         *_outbox_message_list_dup_ids (OutboxMessageList *self);

/* Take a field's value from a daemon dictionary (absent: NULL); TRUE
 * when it changed, for the caller to notify. */
gboolean       _outbox_take_string (char **field,
                                    GVariant *dict,
                                    const char *key);
gboolean       _outbox_take_time (GDateTime **field,
                                  GVariant *dict,
                                  const char *key);

/* One call to a method of outboxd for a task made by _outbox_task_new(),
 * which returns TRUE, or the reply's one value as a GVariant; and the
 * same blocking.  Errors come out in OUTBOX_CLIENT_ERROR. */
GTask         *_outbox_task_new (gpointer source,
                                 gpointer tag,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
void           _outbox_call (gpointer proxy,
                             const char *method,
                             GVariant *parameters,
                             int timeout_ms,
                             GTask *task);
gboolean       _outbox_task_finish_boolean (gpointer source,
                                            GAsyncResult *result,
                                            gpointer tag,
                                            GError **error);
gpointer       _outbox_task_finish_pointer (gpointer source,
                                            GAsyncResult *result,
                                            gpointer tag,
                                            GError **error);
GVariant      *_outbox_call_sync (gpointer proxy,
                                  const char *method,
                                  GVariant *parameters,
                                  int timeout_ms,
                                  GCancellable *cancellable,
                                  GError **error);
gboolean       _outbox_call_sync_boolean (gpointer proxy,
                                          const char *method,
                                          GVariant *parameters,
                                          int timeout_ms,
                                          GCancellable *cancellable,
                                          GError **error);

/* Calls that may wait while outboxd reads a big queue at start-up. */
#define OUTBOX_CALL_TIMEOUT_MS (5 * 60 * 1000)

/* Enum values from the daemon's strings, and UNKNOWN for a string this
 * version does not know. */
int            _outbox_enum_from_nick (GType type,
                                       const char *nick,
                                       int unknown);

G_END_DECLS
