/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/* Reading the daemon's dictionaries into the objects' fields. */

int
_outbox_enum_from_nick (GType type, const char *nick, int unknown)
{
  g_autoptr (GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *value;

  if (nick == NULL)
    return unknown;
  value = g_enum_get_value_by_nick (klass, nick);
  return value != NULL ? value->value : unknown;
}

gboolean
_outbox_take_string (char **field, GVariant *dict, const char *key)
{
  const char *value = NULL;

  g_variant_lookup (dict, key, "&s", &value);
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

gboolean
_outbox_take_time (GDateTime **field, GVariant *dict, const char *key)
{
  gint64 value = 0;
  gboolean present = g_variant_lookup (dict, key, "x", &value);

  if (!present && *field == NULL)
    return FALSE;
  if (present && *field != NULL && g_date_time_to_unix (*field) == value)
    return FALSE;
  g_clear_pointer (field, g_date_time_unref);
  if (present)
    *field = g_date_time_new_from_unix_local (value);
  return TRUE;
}

/* Calls of one method: the task returns TRUE, or the reply's one value
 * (a GVariant) when the method has one. */

static void
call_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GVariant) reply = NULL;
  GError *error = NULL;

  reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);
  if (reply == NULL)
    _outbox_task_return_dbus_error (task, error);
  else if (g_variant_n_children (reply) > 0)
    g_task_return_pointer (task, g_variant_get_child_value (reply, 0), (GDestroyNotify) g_variant_unref);
  else
    g_task_return_boolean (task, TRUE);
}

void
_outbox_call (gpointer proxy, const char *method, GVariant *parameters, int timeout_ms, GTask *task)
{
  g_dbus_proxy_call (G_DBUS_PROXY (proxy), method, parameters, G_DBUS_CALL_FLAGS_NONE, timeout_ms,
                     g_task_get_cancellable (task), call_done, task);
}

/* (transfer full) the reply's one value, or a new empty tuple when the
 * method has none; NULL with @error in OUTBOX_CLIENT_ERROR. */
GVariant *
_outbox_call_sync (gpointer proxy, const char *method, GVariant *parameters, int timeout_ms,
                   GCancellable *cancellable, GError **error)
{
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_proxy_call_sync (G_DBUS_PROXY (proxy), method, parameters, G_DBUS_CALL_FLAGS_NONE,
                                  timeout_ms, cancellable, error);
  if (reply == NULL)
    {
      _outbox_client_error_translate (error);
      return NULL;
    }
  if (g_variant_n_children (reply) > 0)
    return g_variant_get_child_value (reply, 0);
  return g_steal_pointer (&reply);
}

gboolean
_outbox_call_sync_boolean (gpointer proxy, const char *method, GVariant *parameters, int timeout_ms,
                           GCancellable *cancellable, GError **error)
{
  g_autoptr (GVariant) reply = _outbox_call_sync (proxy, method, parameters, timeout_ms, cancellable, error);

  return reply != NULL;
}

GTask *
_outbox_task_new (gpointer source, gpointer tag, GCancellable *cancellable, GAsyncReadyCallback callback,
                  gpointer user_data)
{
  GTask *task = g_task_new (source, cancellable, callback, user_data);

  g_task_set_source_tag (task, tag);
  return task;
}

gboolean
_outbox_task_finish_boolean (gpointer source, GAsyncResult *result, gpointer tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, source), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gpointer
_outbox_task_finish_pointer (gpointer source, GAsyncResult *result, gpointer tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, source), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == tag, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
