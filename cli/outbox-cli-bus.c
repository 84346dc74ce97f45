/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <gio/gunixfdlist.h>

#include "outbox-cli-bus.h"
#include "outbox-cli-util.h"
#include "outbox-dbus.h"

GDBusConnection *
outbox_cli_session_bus (GError **error)
{
  g_autoptr(GError) local_error = NULL;
  GDBusConnection *bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &local_error);

  if (bus == NULL)
    g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_UNAVAILABLE,
                 "cannot connect to the session bus: %s", local_error->message);
  return bus;
}

/* No properties, no signals, and no activation until the first call, so
 * that a missing daemon shows up as the call's error. */
#define OUTBOX_CLI_PROXY_FLAGS (G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES | \
                                G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS | \
                                G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START_AT_CONSTRUCTION)

static OutboxDbusQueue *
queue_proxy_new_for_bus (GDBusConnection  *bus,
                         GError          **error)
{
  return outbox_dbus_queue_proxy_new_sync (bus, OUTBOX_CLI_PROXY_FLAGS,
                                           OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                           NULL, error);
}

static OutboxDbusQueue *
queue_proxy_new (GError **error)
{
  g_autoptr(GDBusConnection) bus = outbox_cli_session_bus (error);

  if (bus == NULL)
    return NULL;

  return queue_proxy_new_for_bus (bus, error);
}

#define LIST_PAGE 2000

gboolean
outbox_cli_bus_foreach_message (gboolean             all,
                                OutboxCliMessageFunc func,
                                gpointer             user_data,
                                GError             **error)
{
  g_autoptr(OutboxDbusQueue) queue = queue_proxy_new (error);
  g_autoptr(GVariant) after = NULL;

  if (queue == NULL)
    return FALSE;

  for (;;)
    {
      g_autoptr(GVariantDict) options = g_variant_dict_new (NULL);
      g_autoptr(GVariant) packed = NULL;
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GVariant) page = NULL;
      g_autoptr(GVariant) last = NULL;
      gint64 created = 0;
      const char *id = NULL;
      gsize n;

      if (all)
        g_variant_dict_insert (options, "all", "b", TRUE);
      g_variant_dict_insert (options, "limit", "u", LIST_PAGE);
      if (after != NULL)
        g_variant_dict_insert_value (options, "after", after);
      /* One block of bytes on the bus, not a value per field (see the
       * Queue XML). */
      if (!outbox_dbus_queue_call_list_serialized_sync (queue, g_variant_dict_end (options), &packed,
                                                        NULL, error))
        return FALSE;
      bytes = g_variant_get_data_as_bytes (packed);
      page = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("aa{sv}"), bytes, FALSE));
      /* Checked once, whole: a page in normal form (as the daemon writes
       * it) is then read as trusted, without checks at every value. */
      if (!g_variant_is_normal_form (page))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "The daemon's listing is not well formed; is outboxd of the same release?");
          return FALSE;
        }
      n = g_variant_n_children (page);
      for (gsize i = 0; i < n; i++)
        {
          g_autoptr(GVariant) message = g_variant_get_child_value (page, i);
          func (message, user_data);
        }
      if (n < LIST_PAGE)
        return TRUE;
      last = g_variant_get_child_value (page, n - 1);
      if (!g_variant_lookup (last, "created", "x", &created) || !g_variant_lookup (last, "id", "&s", &id))
        return TRUE;
      g_clear_pointer (&after, g_variant_unref);
      after = g_variant_ref_sink (g_variant_new ("(xs)", created, id));
    }
}

static void
add_message (GVariant *message,
             gpointer  user_data)
{
  g_variant_builder_add_value (user_data, message);
}

GVariant *
outbox_cli_bus_list_messages (gboolean   all,
                              GError   **error)
{
  GVariantBuilder messages;

  g_variant_builder_init (&messages, G_VARIANT_TYPE ("aa{sv}"));
  if (!outbox_cli_bus_foreach_message (all, add_message, &messages, error))
    {
      g_variant_builder_clear (&messages);
      return NULL;
    }
  return g_variant_ref_sink (g_variant_builder_end (&messages));
}

static OutboxDbusAccounts *
accounts_proxy_new (GError **error)
{
  g_autoptr(GDBusConnection) bus = outbox_cli_session_bus (error);

  if (bus == NULL)
    return NULL;

  return outbox_dbus_accounts_proxy_new_sync (bus, OUTBOX_CLI_PROXY_FLAGS,
                                              OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                              NULL, error);
}

GDBusConnection *
outbox_cli_bus_connect_to_daemon (GError **error)
{
  g_autoptr(GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, error);
  g_autoptr(GVariant) reply = NULL;

  if (bus == NULL)
    return NULL;
  reply = g_dbus_connection_call_sync (bus, OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                       "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  return reply != NULL ? g_steal_pointer (&bus) : NULL;
}

/* Queue */

char *
outbox_cli_bus_submit_fd (GDBusConnection  *bus,
                          int               fd,
                          GVariant         *options,
                          GError          **error)
{
  g_autoptr(GVariant) owned_options = g_variant_ref_sink (options);
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();
  g_autoptr(OutboxDbusQueue) queue = NULL;
  char *id = NULL;
  int handle = g_unix_fd_list_append (fd_list, fd, error);

  if (handle < 0)
    return NULL;
  queue = bus != NULL ? queue_proxy_new_for_bus (bus, error) : queue_proxy_new (error);
  if (queue == NULL)
    return NULL;

  /* Storing a large message durably takes as long as the disk needs. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (queue), G_MAXINT);
  if (!outbox_dbus_queue_call_submit_sync (queue, g_variant_new_handle (handle), owned_options,
                                           fd_list, &id, NULL, NULL, error))
    return NULL;
  return id;
}

GVariant *
outbox_cli_bus_get_message (const char  *id,
                            GError     **error)
{
  g_autoptr(OutboxDbusQueue) queue = queue_proxy_new (error);
  GVariant *message = NULL;

  if (queue == NULL || !outbox_dbus_queue_call_get_sync (queue, id, &message, NULL, error))
    return NULL;
  return message;
}

typedef gboolean (*OutboxQueueIdCall) (OutboxDbusQueue *queue,
                                       const char      *id,
                                       GCancellable    *cancellable,
                                       GError         **error);

gboolean
outbox_cli_bus_queue_action (OutboxCliQueueAction   action,
                             const char            *id,
                             GError               **error)
{
  static const OutboxQueueIdCall calls[] = {
    [OUTBOX_CLI_QUEUE_CANCEL] = outbox_dbus_queue_call_cancel_sync,
    [OUTBOX_CLI_QUEUE_HOLD] = outbox_dbus_queue_call_hold_sync,
    [OUTBOX_CLI_QUEUE_RELEASE] = outbox_dbus_queue_call_release_sync,
    [OUTBOX_CLI_QUEUE_RETRY] = outbox_dbus_queue_call_retry_sync,
  };
  g_autoptr(OutboxDbusQueue) queue = queue_proxy_new (error);

  g_return_val_if_fail (action < G_N_ELEMENTS (calls), FALSE);
  return queue != NULL && calls[action] (queue, id, NULL, error);
}

gboolean
outbox_cli_bus_flush (GError **error)
{
  g_autoptr(OutboxDbusQueue) queue = queue_proxy_new (error);

  return queue != NULL && outbox_dbus_queue_call_flush_sync (queue, NULL, error);
}

GVariant *
outbox_cli_bus_queue_properties (GError **error)
{
  g_autoptr(GDBusConnection) bus = outbox_cli_session_bus (error);
  g_autoptr(GVariant) reply = NULL;

  if (bus == NULL)
    return NULL;

  reply = g_dbus_connection_call_sync (bus, OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                       "org.freedesktop.DBus.Properties", "GetAll",
                                       g_variant_new ("(s)", "org.outbox.Outbox1.Queue"),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, error);
  if (reply == NULL)
    return NULL;
  return g_variant_get_child_value (reply, 0);
}

/* Accounts */

GVariant *
outbox_cli_bus_list_accounts (GError **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = accounts_proxy_new (error);
  GVariant *list = NULL;

  if (accounts == NULL || !outbox_dbus_accounts_call_list_sync (accounts, &list, NULL, error))
    return NULL;
  return list;
}

gboolean
outbox_cli_bus_save_account (const char  *name,
                             GVariant    *settings,
                             gboolean     create,
                             GError     **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = accounts_proxy_new (error);

  if (accounts == NULL)
    return FALSE;
  if (create)
    return outbox_dbus_accounts_call_add_sync (accounts, name, settings, NULL, error);
  return outbox_dbus_accounts_call_update_sync (accounts, name, settings, NULL, error);
}

gboolean
outbox_cli_bus_remove_account (const char  *name,
                               GError     **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = accounts_proxy_new (error);

  return accounts != NULL && outbox_dbus_accounts_call_remove_sync (accounts, name, NULL, error);
}

gboolean
outbox_cli_bus_set_password (const char  *name,
                             const char  *service,
                             const char  *secret,
                             GError     **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = accounts_proxy_new (error);

  return accounts != NULL &&
         outbox_dbus_accounts_call_set_password_sync (accounts, name, service, secret, NULL, error);
}

/* Accounts.Test and Accounts.Discover ask servers, each with its own
 * timeouts: the call waits @timeout_ms for them. */
static OutboxDbusAccounts *
slow_accounts_proxy_new (int      timeout_ms,
                         GError **error)
{
  OutboxDbusAccounts *accounts = accounts_proxy_new (error);

  if (accounts != NULL)
    g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (accounts), timeout_ms);
  return accounts;
}

GVariant *
outbox_cli_bus_test_account (const char  *name,
                             GError     **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = slow_accounts_proxy_new (10 * 60 * 1000, error);
  GVariant *results = NULL;

  if (accounts == NULL || !outbox_dbus_accounts_call_test_sync (accounts, name, &results, NULL, error))
    return NULL;
  return results;
}

GVariant *
outbox_cli_bus_discover (const char  *address,
                         GError     **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = slow_accounts_proxy_new (2 * 60 * 1000, error);
  GVariant *settings = NULL;

  if (accounts == NULL ||
      !outbox_dbus_accounts_call_discover_sync (accounts, address, &settings, NULL, error))
    return NULL;
  return settings;
}
