/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-notify.h"

#define NOTIFICATIONS_NAME "org.freedesktop.Notifications"
#define NOTIFICATIONS_PATH "/org/freedesktop/Notifications"
#define NOTIFICATIONS_IFACE "org.freedesktop.Notifications"
/* The Outbox window: a D-Bus activatable GApplication. */
#define WINDOW_NAME "org.outbox.Outbox"
#define WINDOW_PATH "/org/outbox/Outbox"
/* How many notifications with actions are remembered; past that, the
 * oldest one's actions are no longer answered. */
#define MAX_REMEMBERED 256

/* The notification server as last seen, and what its notifications with
 * actions are about.
 *
 * Each owner of the server's name is asked once for its capabilities; until
 * it answers, and when it offers no "actions", notifications carry none.
 * The ids are the server's own: when its owner changes, those of the last
 * one are forgotten, and so is each one the server says it closed. */
typedef struct
{
  GDBusConnection *bus; /* (owned) */
  OutboxNotifyRetryFunc retry;
  gpointer retry_data;
  guint watch_id;
  guint action_signal_id;
  guint closed_signal_id;
  GCancellable *cancellable; /* (owned) (nullable) the capabilities query */
  gboolean has_actions;
  GHashTable *messages;      /* notification id -> message id (owned) */
  GQueue shown;              /* the keys of @messages, oldest first */
} Notifier;

static Notifier *notifier; /* (owned) (nullable) */

static void
remember (Notifier *self, guint32 id, const char *message_id)
{
  gpointer key = GUINT_TO_POINTER (id);

  if (g_hash_table_contains (self->messages, key))
    g_queue_remove (&self->shown, key);
  g_hash_table_replace (self->messages, key, g_strdup (message_id));
  g_queue_push_tail (&self->shown, key);
  while (g_queue_get_length (&self->shown) > MAX_REMEMBERED)
    g_hash_table_remove (self->messages, g_queue_pop_head (&self->shown));
}

static void
forget (Notifier *self, guint32 id)
{
  gpointer key = GUINT_TO_POINTER (id);

  if (g_hash_table_remove (self->messages, key))
    g_queue_remove (&self->shown, key);
}

static void
forget_server (Notifier *self)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->has_actions = FALSE;
  g_hash_table_remove_all (self->messages);
  g_queue_clear (&self->shown);
}

/* Showing a message in the window */

static void
show_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *message_id = user_data;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    g_message ("Cannot show message %s: the Outbox window (%s) did not answer: %s; "
               "see outbox show %s",
               message_id, WINDOW_NAME, error->message, message_id);
}

/* The window's action "show-message" with the message id as its target;
 * D-Bus starts the window when it does not run. */
static void
show_message (Notifier *self, const char *message_id)
{
  GVariantBuilder target;

  g_variant_builder_init (&target, G_VARIANT_TYPE ("av"));
  g_variant_builder_add (&target, "v", g_variant_new_string (message_id));
  g_dbus_connection_call (self->bus, WINDOW_NAME, WINDOW_PATH, "org.freedesktop.Application",
                          "ActivateAction",
                          g_variant_new ("(sava{sv})", "show-message", &target, NULL), NULL,
                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, show_done, g_strdup (message_id));
}

/* The server's signals */

static void
on_action_invoked (GDBusConnection *bus,
                   const char *sender,
                   const char *path,
                   const char *interface,
                   const char *signal,
                   GVariant *parameters,
                   gpointer user_data)
{
  Notifier *self = user_data;
  g_autofree char *message_id = NULL;
  const char *action;
  guint32 id;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(us)")))
    return;
  g_variant_get (parameters, "(u&s)", &id, &action);
  /* A copy: what the action does may send or forget notifications. */
  message_id = g_strdup (g_hash_table_lookup (self->messages, GUINT_TO_POINTER (id)));
  if (message_id == NULL)
    return;
  if (g_str_equal (action, "retry"))
    self->retry (message_id, self->retry_data);
  else if (g_str_equal (action, "show") || g_str_equal (action, "default"))
    show_message (self, message_id);
}

static void
on_notification_closed (GDBusConnection *bus,
                        const char *sender,
                        const char *path,
                        const char *interface,
                        const char *signal,
                        GVariant *parameters,
                        gpointer user_data)
{
  guint32 id, reason;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(uu)")))
    return;
  g_variant_get (parameters, "(uu)", &id, &reason);
  forget (user_data, id);
}

/* The server's capabilities */

static void
capabilities_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Notifier *self = user_data;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree const char **capabilities = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  /* Cancelled: @self may be gone already. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object (&self->cancellable);
  if (reply == NULL)
    {
      g_debug ("The notification server did not tell its capabilities: %s", error->message);
      return;
    }
  g_variant_get (reply, "(^a&s)", &capabilities);
  self->has_actions = g_strv_contains (capabilities, "actions");
  g_debug ("The notification server %s actions", self->has_actions ? "offers" : "offers no");
}

static void
on_server_appeared (GDBusConnection *bus, const char *name, const char *owner, gpointer user_data)
{
  Notifier *self = user_data;

  forget_server (self);
  self->cancellable = g_cancellable_new ();
  g_dbus_connection_call (bus, NOTIFICATIONS_NAME, NOTIFICATIONS_PATH, NOTIFICATIONS_IFACE,
                          "GetCapabilities", NULL, G_VARIANT_TYPE ("(as)"),
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, self->cancellable,
                          capabilities_done, self);
}

static void
on_server_vanished (GDBusConnection *bus, const char *name, gpointer user_data)
{
  forget_server (user_data);
}

void
outbox_notify_start (GDBusConnection *bus, OutboxNotifyRetryFunc retry, gpointer user_data)
{
  Notifier *self;

  g_return_if_fail (notifier == NULL);
  self = notifier = g_new0 (Notifier, 1);
  self->bus = g_object_ref (bus);
  self->retry = retry;
  self->retry_data = user_data;
  self->messages = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  g_queue_init (&self->shown);
  self->action_signal_id =
      g_dbus_connection_signal_subscribe (bus, NOTIFICATIONS_NAME, NOTIFICATIONS_IFACE,
                                          "ActionInvoked", NOTIFICATIONS_PATH, NULL,
                                          G_DBUS_SIGNAL_FLAGS_NONE, on_action_invoked, self, NULL);
  self->closed_signal_id =
      g_dbus_connection_signal_subscribe (bus, NOTIFICATIONS_NAME, NOTIFICATIONS_IFACE,
                                          "NotificationClosed", NOTIFICATIONS_PATH, NULL,
                                          G_DBUS_SIGNAL_FLAGS_NONE, on_notification_closed, self,
                                          NULL);
  /* Never starts a server: it only follows the one that runs. */
  self->watch_id = g_bus_watch_name_on_connection (bus, NOTIFICATIONS_NAME,
                                                   G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                   on_server_appeared, on_server_vanished, self,
                                                   NULL);
}

void
outbox_notify_stop (void)
{
  g_autofree Notifier *self = g_steal_pointer (&notifier);

  if (self == NULL)
    return;
  g_bus_unwatch_name (self->watch_id);
  g_dbus_connection_signal_unsubscribe (self->bus, self->action_signal_id);
  g_dbus_connection_signal_unsubscribe (self->bus, self->closed_signal_id);
  forget_server (self);
  g_hash_table_unref (self->messages);
  g_object_unref (self->bus);
}

/* Sending */

static void
notify_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *message_id = user_data;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GError) error = NULL;
  guint32 id;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      g_debug ("No desktop notification shown: %s", error->message);
      return;
    }
  /* Stopped meanwhile: nobody is left to answer its actions. */
  if (message_id == NULL || notifier == NULL)
    return;
  g_variant_get (reply, "(u)", &id);
  remember (notifier, id, message_id);
}

static void
send_notification (const char *category,
                   const char *summary,
                   const char *body,
                   const char *message_id)
{
  gboolean with_actions;
  GVariantBuilder actions;
  GVariantBuilder hints;

  g_message ("%s: %s", summary, body);
  if (notifier == NULL)
    return;
  with_actions = message_id != NULL && notifier->has_actions;
  g_variant_builder_init (&actions, G_VARIANT_TYPE_STRING_ARRAY);
  if (with_actions)
    {
      g_variant_builder_add (&actions, "s", "retry");
      g_variant_builder_add (&actions, "s", "Retry");
      g_variant_builder_add (&actions, "s", "show");
      g_variant_builder_add (&actions, "s", "Show");
      /* A click on the notification itself; servers show no button for it. */
      g_variant_builder_add (&actions, "s", "default");
      g_variant_builder_add (&actions, "s", "Show");
    }
  g_variant_builder_init (&hints, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&hints, "{sv}", "urgency", g_variant_new_byte (2));
  g_variant_builder_add (&hints, "{sv}", "desktop-entry", g_variant_new_string (WINDOW_NAME));
  if (category != NULL)
    g_variant_builder_add (&hints, "{sv}", "category", g_variant_new_string (category));
  g_dbus_connection_call (notifier->bus, NOTIFICATIONS_NAME, NOTIFICATIONS_PATH,
                          NOTIFICATIONS_IFACE, "Notify",
                          g_variant_new ("(susssasa{sv}i)", "Outbox", 0, "mail-send", summary,
                                         body, &actions, &hints, -1),
                          G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, NULL,
                          notify_done, with_actions ? g_strdup (message_id) : NULL);
}

void
outbox_notify (const char *summary, const char *body)
{
  send_notification (NULL, summary, body, NULL);
}

void
outbox_notify_bounced (const char *summary, const char *body, const char *message_id)
{
  send_notification ("email.bounced", summary, body, message_id);
}
