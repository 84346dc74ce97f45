/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gio/gfiledescriptorbased.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixoutputstream.h>

#include "outbox-client-private.h"

/**
 * OutboxClient:
 *
 * A connection to outboxd, the user's mail submission daemon, on the
 * session bus.  It submits messages (as bytes, a stream or a file: streams
 * and files are passed as a file descriptor, never copied into the bus),
 * and keeps live lists of the queue's messages and of the accounts, ready
 * for a #GtkListView.
 *
 * ```python
 * import gi
 * gi.require_version("Outbox", "1")
 * from gi.repository import GLib, Outbox
 * client = Outbox.Client.new_sync(None)
 * print(client.submit_bytes_sync(GLib.Bytes(message), None, None))
 * ```
 *
 * Use a client from the thread and main context it was made in: its lists
 * and objects change there, as outboxd reports changes.  When outboxd
 * stops and starts again under a client, the client reads the queue again
 * and keeps its objects.
 */
struct _OutboxClient
{
  GObject parent_instance;

  GDBusConnection *connection;
  GMainContext *context;
  OutboxDbusQueue *queue;
  OutboxDbusAccounts *accounts_proxy;
  char *name_owner;

  /* Every message object this client handed out, by id: there is one
   * object per message. */
  GHashTable *messages;
  OutboxMessageList *message_list;
  gboolean messages_wanted;
  gboolean messages_loaded;
  gboolean messages_loading;
  GCancellable *messages_cancellable;
  GPtrArray *messages_waiters;   /* GTask */
  /* While the queue is read: what MessageChanged told meanwhile, which is
   * newer than any page, and which ids a page had. */
  GHashTable *load_fresh;
  GHashTable *load_seen;
  gboolean load_is_reload;

  GListStore *account_list;
  GHashTable *accounts;          /* name -> OutboxAccount */
  gboolean accounts_wanted;
  gboolean accounts_loaded;
  gboolean accounts_loading;
  GCancellable *accounts_cancellable;
  GPtrArray *accounts_waiters;   /* GTask */
  GHashTable *accounts_fresh;
};

static void outbox_client_initable_init (GInitableIface *iface);
static void outbox_client_async_initable_init (GAsyncInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OutboxClient, outbox_client, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE, outbox_client_initable_init)
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_INITABLE, outbox_client_async_initable_init))

enum
{
  PROP_0,
  PROP_CONNECTION,
  PROP_ONLINE,
  PROP_DAEMON_RUNNING,
  PROP_DAEMON_VERSION,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Messages per page of the queue listing. */
#define LIST_PAGE 1000
/* A submission ends when outboxd has the message on disk, however big. */
#define SUBMIT_TIMEOUT_MS G_MAXINT
/* Messages up to this size go as bytes (SubmitData), bigger ones through a
 * memory file descriptor. */
#define SUBMIT_DATA_MAX (1024 * 1024)

static void messages_load_begin (OutboxClient *self, gboolean reload);
static void accounts_load_begin (OutboxClient *self);

/* Construction */

static void
outbox_client_dispose (GObject *object)
{
  OutboxClient *self = OUTBOX_CLIENT (object);

  g_cancellable_cancel (self->messages_cancellable);
  g_cancellable_cancel (self->accounts_cancellable);
  /* Message and account objects keep the proxies for their calls: the
   * proxies may outlive the client, its handlers may not. */
  if (self->queue != NULL)
    g_signal_handlers_disconnect_by_data (self->queue, self);
  if (self->accounts_proxy != NULL)
    g_signal_handlers_disconnect_by_data (self->accounts_proxy, self);
  g_clear_object (&self->queue);
  g_clear_object (&self->accounts_proxy);
  G_OBJECT_CLASS (outbox_client_parent_class)->dispose (object);
}

static void
outbox_client_finalize (GObject *object)
{
  OutboxClient *self = OUTBOX_CLIENT (object);

  g_clear_object (&self->connection);
  g_main_context_unref (self->context);
  g_free (self->name_owner);
  g_hash_table_unref (self->messages);
  g_object_unref (self->message_list);
  g_clear_object (&self->messages_cancellable);
  g_ptr_array_unref (self->messages_waiters);
  g_clear_pointer (&self->load_fresh, g_hash_table_unref);
  g_clear_pointer (&self->load_seen, g_hash_table_unref);
  g_object_unref (self->account_list);
  g_hash_table_unref (self->accounts);
  g_clear_object (&self->accounts_cancellable);
  g_ptr_array_unref (self->accounts_waiters);
  g_clear_pointer (&self->accounts_fresh, g_hash_table_unref);
  G_OBJECT_CLASS (outbox_client_parent_class)->finalize (object);
}

static void
outbox_client_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  OutboxClient *self = OUTBOX_CLIENT (object);

  switch (prop_id)
    {
    case PROP_CONNECTION:
      g_value_set_object (value, self->connection);
      break;
    case PROP_ONLINE:
      g_value_set_boolean (value, outbox_client_get_online (self));
      break;
    case PROP_DAEMON_RUNNING:
      g_value_set_boolean (value, outbox_client_get_daemon_running (self));
      break;
    case PROP_DAEMON_VERSION:
      g_value_set_string (value, outbox_client_get_daemon_version (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_client_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  OutboxClient *self = OUTBOX_CLIENT (object);

  switch (prop_id)
    {
    case PROP_CONNECTION:
      self->connection = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_client_class_init (OutboxClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = outbox_client_dispose;
  object_class->finalize = outbox_client_finalize;
  object_class->get_property = outbox_client_get_property;
  object_class->set_property = outbox_client_set_property;

  /* Registers the daemon's error names before any reply can carry one. */
  (void) outbox_client_error_quark ();

  /**
   * OutboxClient:connection:
   *
   * The session bus connection the client talks over; %NULL at
   * construction means the session bus.
   */
  properties[PROP_CONNECTION] =
    g_param_spec_object ("connection", NULL, NULL, G_TYPE_DBUS_CONNECTION,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * OutboxClient:online:
   *
   * Whether outboxd believes the network can reach servers; false also
   * while outboxd is not running.
   */
  properties[PROP_ONLINE] =
    g_param_spec_boolean ("online", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * OutboxClient:daemon-running:
   *
   * Whether outboxd runs now.  The session bus starts it when a call needs
   * it, so a false value is no error: the next call starts it again.
   */
  properties[PROP_DAEMON_RUNNING] =
    g_param_spec_boolean ("daemon-running", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * OutboxClient:daemon-version:
   *
   * The release of the running outboxd, such as "0.1.0".
   */
  properties[PROP_DAEMON_VERSION] =
    g_param_spec_string ("daemon-version", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
outbox_client_init (OutboxClient *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->messages = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  self->message_list = _outbox_message_list_new ();
  self->messages_waiters = g_ptr_array_new ();
  self->account_list = g_list_store_new (OUTBOX_TYPE_ACCOUNT);
  self->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_object_unref);
  self->accounts_waiters = g_ptr_array_new ();
}

/* Following the daemon */

static void on_message_changed (OutboxDbusQueue *queue, const char *id, const char *state,
                                GVariant *details, OutboxClient *self);
static void on_account_signal (GDBusProxy *proxy, const char *sender, const char *signal,
                               GVariant *parameters, OutboxClient *self);

static void
on_queue_properties_changed (GDBusProxy *proxy, GVariant *changed, GStrv invalidated, OutboxClient *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ONLINE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON_VERSION]);
}

/* outboxd stopped or started under the client.  Whatever it did while no
 * signal could tell it is read again once it is back: the queue from the
 * start (updating the objects in place), and the accounts. */
static void
on_name_owner (GObject *object, GParamSpec *pspec, OutboxClient *self)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (self->queue));

  if (g_strcmp0 (owner, self->name_owner) == 0)
    return;
  g_free (self->name_owner);
  self->name_owner = g_steal_pointer (&owner);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON_RUNNING]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ONLINE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DAEMON_VERSION]);
  if (self->name_owner == NULL)
    return;
  if (self->messages_wanted)
    messages_load_begin (self, TRUE);
  if (self->accounts_wanted)
    accounts_load_begin (self);
}

static void
connect_proxies (OutboxClient *self)
{
  self->name_owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (self->queue));
  g_signal_connect (self->queue, "message-changed", G_CALLBACK (on_message_changed), self);
  g_signal_connect (self->queue, "g-properties-changed", G_CALLBACK (on_queue_properties_changed), self);
  g_signal_connect (self->queue, "notify::g-name-owner", G_CALLBACK (on_name_owner), self);
  /* AccountChanged by name: it is newer than some daemons. */
  g_signal_connect (self->accounts_proxy, "g-signal", G_CALLBACK (on_account_signal), self);
}

static gboolean
outbox_client_initable_init_sync (GInitable *initable, GCancellable *cancellable, GError **error)
{
  OutboxClient *self = OUTBOX_CLIENT (initable);

  if (self->connection == NULL)
    {
      self->connection = g_bus_get_sync (G_BUS_TYPE_SESSION, cancellable, error);
      if (self->connection == NULL)
        {
          _outbox_client_error_translate (error);
          return FALSE;
        }
    }
  self->queue = outbox_dbus_queue_proxy_new_sync (self->connection, G_DBUS_PROXY_FLAGS_NONE,
                                                  OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                                  cancellable, error);
  if (self->queue == NULL)
    {
      _outbox_client_error_translate (error);
      return FALSE;
    }
  self->accounts_proxy = outbox_dbus_accounts_proxy_new_sync (self->connection, G_DBUS_PROXY_FLAGS_NONE,
                                                              OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                                              cancellable, error);
  if (self->accounts_proxy == NULL)
    {
      _outbox_client_error_translate (error);
      return FALSE;
    }
  connect_proxies (self);
  return TRUE;
}

static void
outbox_client_initable_init (GInitableIface *iface)
{
  iface->init = outbox_client_initable_init_sync;
}

static void
accounts_proxy_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxClient *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->accounts_proxy = outbox_dbus_accounts_proxy_new_finish (result, &error);
  if (self->accounts_proxy == NULL)
    {
      _outbox_task_return_dbus_error (task, error);
      return;
    }
  connect_proxies (self);
  g_task_return_boolean (task, TRUE);
}

static void
queue_proxy_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxClient *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->queue = outbox_dbus_queue_proxy_new_finish (result, &error);
  if (self->queue == NULL)
    {
      _outbox_task_return_dbus_error (task, error);
      return;
    }
  outbox_dbus_accounts_proxy_new (self->connection, G_DBUS_PROXY_FLAGS_NONE,
                                  OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH, g_task_get_cancellable (task),
                                  accounts_proxy_ready, g_object_ref (task));
}

static void
bus_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxClient *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->connection = g_bus_get_finish (result, &error);
  if (self->connection == NULL)
    {
      _outbox_task_return_dbus_error (task, error);
      return;
    }
  outbox_dbus_queue_proxy_new (self->connection, G_DBUS_PROXY_FLAGS_NONE, OUTBOX_BUS_NAME,
                               OUTBOX_OBJECT_PATH, g_task_get_cancellable (task), queue_proxy_ready,
                               g_object_ref (task));
}

static void
outbox_client_init_async (GAsyncInitable *initable, int io_priority, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  OutboxClient *self = OUTBOX_CLIENT (initable);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, outbox_client_init_async);
  if (self->connection == NULL)
    g_bus_get (G_BUS_TYPE_SESSION, cancellable, bus_ready, task);
  else
    outbox_dbus_queue_proxy_new (self->connection, G_DBUS_PROXY_FLAGS_NONE, OUTBOX_BUS_NAME,
                                 OUTBOX_OBJECT_PATH, cancellable, queue_proxy_ready, task);
}

static gboolean
outbox_client_init_finish (GAsyncInitable *initable, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
outbox_client_async_initable_init (GAsyncInitableIface *iface)
{
  iface->init_async = outbox_client_init_async;
  iface->init_finish = outbox_client_init_finish;
}

/**
 * outbox_client_new:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the client
 * @user_data: data for @callback
 *
 * Connects to outboxd on the session bus, which starts it when it does not
 * run yet.  Finish with outbox_client_new_finish().
 */
void
outbox_client_new (GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_async_initable_new_async (OUTBOX_TYPE_CLIENT, G_PRIORITY_DEFAULT, cancellable, callback, user_data,
                              NULL);
}

/**
 * outbox_client_new_for_connection:
 * @connection: a session bus connection
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the client
 * @user_data: data for @callback
 *
 * Connects to outboxd over @connection.  Finish with
 * outbox_client_new_finish().
 */
void
outbox_client_new_for_connection (GDBusConnection *connection, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (G_IS_DBUS_CONNECTION (connection));
  g_async_initable_new_async (OUTBOX_TYPE_CLIENT, G_PRIORITY_DEFAULT, cancellable, callback, user_data,
                              "connection", connection, NULL);
}

/**
 * outbox_client_new_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: (transfer full) (nullable): the client, or %NULL when there is
 *   no session bus
 */
OutboxClient *
outbox_client_new_finish (GAsyncResult *result, GError **error)
{
  g_autoptr (GObject) source = g_async_result_get_source_object (result);
  GObject *object = g_async_initable_new_finish (G_ASYNC_INITABLE (source), result, error);

  return object != NULL ? OUTBOX_CLIENT (object) : NULL;
}

/**
 * outbox_client_new_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Connects to outboxd on the session bus, blocking.
 *
 * Returns: (transfer full) (nullable): the client, or %NULL when there is
 *   no session bus
 */
OutboxClient *
outbox_client_new_sync (GCancellable *cancellable, GError **error)
{
  return g_initable_new (OUTBOX_TYPE_CLIENT, cancellable, error, NULL);
}

/**
 * outbox_client_new_for_connection_sync:
 * @connection: a session bus connection
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Connects to outboxd over @connection, blocking.
 *
 * Returns: (transfer full) (nullable): the client
 */
OutboxClient *
outbox_client_new_for_connection_sync (GDBusConnection *connection, GCancellable *cancellable,
                                       GError **error)
{
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);
  return g_initable_new (OUTBOX_TYPE_CLIENT, cancellable, error, "connection", connection, NULL);
}

/**
 * outbox_client_get_connection:
 *
 * Returns: (transfer none): the bus connection
 */
GDBusConnection *
outbox_client_get_connection (OutboxClient *self)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  return self->connection;
}

/**
 * outbox_client_get_online:
 *
 * Returns: the #OutboxClient:online
 */
gboolean
outbox_client_get_online (OutboxClient *self)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), FALSE);
  return self->name_owner != NULL && outbox_dbus_queue_get_online (self->queue);
}

/**
 * outbox_client_get_daemon_running:
 *
 * Returns: the #OutboxClient:daemon-running
 */
gboolean
outbox_client_get_daemon_running (OutboxClient *self)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), FALSE);
  return self->name_owner != NULL;
}

/**
 * outbox_client_get_daemon_version:
 *
 * Returns: (nullable): the #OutboxClient:daemon-version
 */
const char *
outbox_client_get_daemon_version (OutboxClient *self)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  return self->name_owner != NULL ? outbox_dbus_queue_get_daemon_version (self->queue) : NULL;
}

/* Waiting in the client's own context for an operation of its own, for the
 * _sync calls whose work is that context's (the lists): the caller pushes
 * the context as the thread's default, starts the operation, and
 * wait_in_context() pops it once the operation is done. */

static void
sync_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static GAsyncResult *
wait_in_context (OutboxClient *self, GAsyncResult **result)
{
  while (*result == NULL)
    g_main_context_iteration (self->context, TRUE);
  g_main_context_pop_thread_default (self->context);
  return *result;
}

/* Messages */

static void
complete_waiters (GPtrArray *waiters, GListModel *model, const GError *error)
{
  g_autoptr (GPtrArray) tasks = g_ptr_array_copy (waiters, NULL, NULL);

  g_ptr_array_set_size (waiters, 0);
  for (guint i = 0; i < tasks->len; i++)
    {
      g_autoptr (GTask) task = tasks->pdata[i];

      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_pointer (task, g_object_ref (model), g_object_unref);
    }
}

static void
forget_message (OutboxClient *self, const char *id, const char *state)
{
  g_autoptr (OutboxMessage) message = NULL;
  g_autoptr (GVariant) empty = g_variant_ref_sink (g_variant_new ("a{sv}", NULL));

  message = g_hash_table_lookup (self->messages, id);
  if (message == NULL)
    return;
  g_object_ref (message);
  _outbox_message_list_remove (self->message_list, outbox_message_get_id (message));
  g_hash_table_remove (self->messages, outbox_message_get_id (message));
  _outbox_message_update (message, state, empty);
}

static OutboxMessage *
track_message (OutboxClient *self, const char *id, const char *state, GVariant *details)
{
  OutboxMessage *message = _outbox_message_new (self->queue, id, state, details);

  g_hash_table_insert (self->messages, (gpointer) outbox_message_get_id (message), message);
  if (self->messages_wanted)
    _outbox_message_list_add (self->message_list, message);
  return message;
}

static void
on_message_changed (OutboxDbusQueue *queue, const char *id, const char *state, GVariant *details,
                    OutboxClient *self)
{
  OutboxMessage *message;

  if (self->messages_loading)
    g_hash_table_add (self->load_fresh, g_strdup (id));

  if (g_strcmp0 (state, "removed") == 0)
    {
      forget_message (self, id, state);
      return;
    }
  message = g_hash_table_lookup (self->messages, id);
  if (message != NULL)
    _outbox_message_update (message, state, details);
  else if (self->messages_wanted)
    track_message (self, id, state, details);
}

static void messages_page_done (GObject *source, GAsyncResult *result, gpointer user_data);

static void
messages_page_request (OutboxClient *self, gint64 after_created, const char *after_id)
{
  g_auto (GVariantBuilder) options = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&options, "{sv}", "all", g_variant_new_boolean (TRUE));
  g_variant_builder_add (&options, "{sv}", "limit", g_variant_new_uint32 (LIST_PAGE));
  if (after_id != NULL)
    g_variant_builder_add (&options, "{sv}", "after", g_variant_new ("(xs)", after_created, after_id));
  /* The pages come back in the client's context, whoever asked. */
  g_main_context_push_thread_default (self->context);
  g_dbus_proxy_call (G_DBUS_PROXY (self->queue), "ListSerialized",
                     g_variant_new ("(@a{sv})", g_variant_builder_end (&options)),
                     G_DBUS_CALL_FLAGS_NONE, OUTBOX_CALL_TIMEOUT_MS, self->messages_cancellable,
                     messages_page_done, g_object_ref (self));
  g_main_context_pop_thread_default (self->context);
}

static void
messages_load_end (OutboxClient *self, const GError *error)
{
  self->messages_loading = FALSE;
  if (error == NULL && self->load_is_reload)
    {
      /* What left the queue while outboxd was away from this client. */
      g_autoptr (GPtrArray) ids = _outbox_message_list_dup_ids (self->message_list);

      for (guint i = 0; i < ids->len; i++)
        if (!g_hash_table_contains (self->load_seen, ids->pdata[i]) &&
            !g_hash_table_contains (self->load_fresh, ids->pdata[i]))
          forget_message (self, ids->pdata[i], "removed");
    }
  g_clear_pointer (&self->load_fresh, g_hash_table_unref);
  g_clear_pointer (&self->load_seen, g_hash_table_unref);
  if (error == NULL)
    self->messages_loaded = TRUE;
  complete_waiters (self->messages_waiters, G_LIST_MODEL (self->message_list), error);
}

static void
messages_page_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxClient) self = user_data;
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) blob = NULL;
  g_autoptr (GVariant) page = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *last_id = NULL;
  gint64 last_created = 0;
  GError *error = NULL;
  GVariantIter iter;
  GVariant *details;
  gsize count;

  reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          _outbox_client_error_translate (&error);
          messages_load_end (self, error);
        }
      g_error_free (error);
      return;
    }

  blob = g_variant_get_child_value (reply, 0);
  bytes = g_variant_get_data_as_bytes (blob);
  page = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("aa{sv}"), bytes, FALSE));
  count = g_variant_n_children (page);

  g_variant_iter_init (&iter, page);
  while ((details = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *id = NULL;
      OutboxMessage *message;

      g_variant_lookup (details, "id", "&s", &id);
      if (id == NULL)
        {
          g_variant_unref (details);
          continue;
        }
      g_free (last_id);
      last_id = g_strdup (id);
      last_created = 0;
      g_variant_lookup (details, "created", "x", &last_created);
      g_hash_table_add (self->load_seen, g_strdup (id));

      /* A signal since the listing began is newer than this page. */
      if (!g_hash_table_contains (self->load_fresh, id))
        {
          message = g_hash_table_lookup (self->messages, id);
          if (message != NULL)
            _outbox_message_update (message, NULL, details);
          else
            track_message (self, id, NULL, details);
        }
      g_variant_unref (details);
    }

  if (count < LIST_PAGE || last_id == NULL)
    messages_load_end (self, NULL);
  else
    messages_page_request (self, last_created, last_id);
}

static void
messages_load_begin (OutboxClient *self, gboolean reload)
{
  if (self->messages_loading)
    g_cancellable_cancel (self->messages_cancellable);
  g_clear_object (&self->messages_cancellable);
  self->messages_cancellable = g_cancellable_new ();
  g_clear_pointer (&self->load_fresh, g_hash_table_unref);
  g_clear_pointer (&self->load_seen, g_hash_table_unref);
  self->load_fresh = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->load_seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->load_is_reload = reload;
  self->messages_loading = TRUE;
  messages_page_request (self, 0, NULL);
}

static void
messages_want (OutboxClient *self)
{
  GHashTableIter iter;
  gpointer message;

  if (self->messages_wanted)
    return;
  self->messages_wanted = TRUE;
  /* The messages handed out before are rows too. */
  g_hash_table_iter_init (&iter, self->messages);
  while (g_hash_table_iter_next (&iter, NULL, &message))
    _outbox_message_list_add (self->message_list, message);
  messages_load_begin (self, FALSE);
}

/**
 * outbox_client_get_messages:
 *
 * The queue as a live list: every message outboxd keeps (pending ones, and
 * sent ones while the spool still has them), oldest first.  The first call
 * starts reading the queue, page by page; from then on the list follows
 * what outboxd reports: a new message is inserted, a message that changes
 * stays the same object with new property values, and a message that
 * leaves the queue is removed.  outbox_client_load_messages_async() tells
 * when the first reading is complete.
 *
 * Returns: (transfer none): a #GListModel of #OutboxMessage
 */
GListModel *
outbox_client_get_messages (OutboxClient *self)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  messages_want (self);
  return G_LIST_MODEL (self->message_list);
}

/**
 * outbox_client_load_messages_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the whole queue is in the list
 * @user_data: data for @callback
 *
 * Starts the live list of messages, if outbox_client_get_messages() did
 * not, and calls back once outboxd's queue is read into it.
 */
void
outbox_client_load_messages_async (OutboxClient *self, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;

  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_client_load_messages_async);
  messages_want (self);
  if (self->messages_loaded && !self->messages_loading)
    {
      g_task_return_pointer (task, g_object_ref (self->message_list), g_object_unref);
      g_object_unref (task);
      return;
    }
  if (!self->messages_loading)
    messages_load_begin (self, FALSE);
  g_ptr_array_add (self->messages_waiters, task);
}

/**
 * outbox_client_load_messages_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: (transfer full): the list outbox_client_get_messages() gives
 */
GListModel *
outbox_client_load_messages_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * outbox_client_load_messages_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Reads the queue into the live list, running the client's main context
 * until it is in.
 *
 * Returns: (transfer full): the list outbox_client_get_messages() gives
 */
GListModel *
outbox_client_load_messages_sync (OutboxClient *self, GCancellable *cancellable, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_main_context_push_thread_default (self->context);
  outbox_client_load_messages_async (self, cancellable, sync_result, &result);
  return outbox_client_load_messages_finish (self, wait_in_context (self, &result), error);
}

/**
 * outbox_client_get_message:
 * @id: a queue id
 *
 * Returns: (transfer none) (nullable): the message with this id, if the
 *   client has it (in the live list, or looked up before)
 */
OutboxMessage *
outbox_client_get_message (OutboxClient *self, const char *id)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  return g_hash_table_lookup (self->messages, id);
}

static OutboxMessage *
message_from_get (OutboxClient *self, const char *id, GVariant *details)
{
  OutboxMessage *message = g_hash_table_lookup (self->messages, id);

  if (message != NULL)
    _outbox_message_update (message, NULL, details);
  else
    message = track_message (self, id, NULL, details);
  return g_object_ref (message);
}

static void
lookup_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxClient *self = g_task_get_source_object (task);
  g_autoptr (GVariant) details = NULL;
  GError *error = NULL;

  if (!outbox_dbus_queue_call_get_finish (OUTBOX_DBUS_QUEUE (source), &details, result, &error))
    {
      _outbox_task_return_dbus_error (task, error);
      return;
    }
  g_task_return_pointer (task, message_from_get (self, g_task_get_task_data (task), details),
                         g_object_unref);
}

/**
 * outbox_client_lookup_message_async:
 * @id: a queue id
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the message
 * @user_data: data for @callback
 *
 * Asks outboxd for a message.  The object is the client's one object for
 * that message, which then follows its changes.
 */
void
outbox_client_lookup_message_async (OutboxClient *self, const char *id, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;

  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  g_return_if_fail (id != NULL);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_client_lookup_message_async);
  g_task_set_task_data (task, g_strdup (id), g_free);
  outbox_dbus_queue_call_get (self->queue, id, cancellable, lookup_done, task);
}

/**
 * outbox_client_lookup_message_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *   (%OUTBOX_CLIENT_ERROR_NO_SUCH_MESSAGE for an unknown id)
 *
 * Returns: (transfer full): the message
 */
OutboxMessage *
outbox_client_lookup_message_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * outbox_client_lookup_message_sync:
 * @id: a queue id
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Asks outboxd for a message, blocking.
 *
 * Returns: (transfer full): the message
 */
OutboxMessage *
outbox_client_lookup_message_sync (OutboxClient *self, const char *id, GCancellable *cancellable,
                                   GError **error)
{
  g_autoptr (GVariant) details = NULL;

  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (id != NULL, NULL);
  if (!outbox_dbus_queue_call_get_sync (self->queue, id, &details, cancellable, error))
    {
      _outbox_client_error_translate (error);
      return NULL;
    }
  return message_from_get (self, id, details);
}

/* Submitting */

static void
submit_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GVariant) reply = NULL;
  GError *error = NULL;
  char *id;

  reply = g_dbus_proxy_call_with_unix_fd_list_finish (G_DBUS_PROXY (source), NULL, result, &error);
  if (reply == NULL)
    {
      _outbox_task_return_dbus_error (task, error);
      return;
    }
  g_variant_get (reply, "(s)", &id);
  g_task_return_pointer (task, id, g_free);
}

/* The method and parameters of a submission: Submit with a descriptor
 * (which @fds gets a duplicate of), or SubmitData with @bytes when @fd is
 * -1.  NULL with @error when the descriptor cannot be duplicated. */
static GVariant *
submit_parameters (int fd, GBytes *bytes, OutboxSubmitOptions *options, const char **method,
                   GUnixFDList **fds, GError **error)
{
  if (fd < 0)
    {
      *method = "SubmitData";
      return g_variant_new ("(@ay@a{sv})", g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE),
                            _outbox_submit_options_to_variant (options));
    }
  *method = "Submit";
  *fds = g_unix_fd_list_new ();
  if (g_unix_fd_list_append (*fds, fd, error) < 0)
    return NULL;
  return g_variant_new ("(h@a{sv})", 0, _outbox_submit_options_to_variant (options));
}

static void
submit_call (OutboxClient *self, GTask *task, int fd, GBytes *bytes, OutboxSubmitOptions *options)
{
  g_autoptr (GUnixFDList) fds = NULL;
  GError *error = NULL;
  const char *method;
  GVariant *parameters = submit_parameters (fd, bytes, options, &method, &fds, &error);

  if (parameters == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_dbus_proxy_call_with_unix_fd_list (G_DBUS_PROXY (self->queue), method, parameters, G_DBUS_CALL_FLAGS_NONE,
                                       SUBMIT_TIMEOUT_MS, fds, g_task_get_cancellable (task), submit_done, task);
}

static char *
submit_call_sync (OutboxClient *self, int fd, GBytes *bytes, OutboxSubmitOptions *options,
                  GCancellable *cancellable, GError **error)
{
  g_autoptr (GUnixFDList) fds = NULL;
  g_autoptr (GVariant) reply = NULL;
  const char *method;
  GVariant *parameters = submit_parameters (fd, bytes, options, &method, &fds, error);
  char *id;

  if (parameters == NULL)
    return NULL;
  reply = g_dbus_proxy_call_with_unix_fd_list_sync (G_DBUS_PROXY (self->queue), method, parameters,
                                                    G_DBUS_CALL_FLAGS_NONE, SUBMIT_TIMEOUT_MS, fds,
                                                    NULL, cancellable, error);
  if (reply == NULL)
    {
      _outbox_client_error_translate (error);
      return NULL;
    }
  g_variant_get (reply, "(s)", &id);
  return id;
}

/* An unnamed file in memory for what has no descriptor of its own. */
static int
memory_file_new (GError **error)
{
  int fd = memfd_create ("outbox-message", MFD_CLOEXEC);

  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Could not make a memory file for the message: %s", g_strerror (saved));
    }
  return fd;
}

static int
memory_file_from_bytes (GBytes *bytes, GError **error)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  int fd = memory_file_new (error);

  if (fd < 0)
    return -1;
  while (size > 0)
    {
      ssize_t written = write (fd, data, size);

      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        {
          int saved = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                       "Could not write the message to a memory file: %s", g_strerror (saved));
          close (fd);
          return -1;
        }
      data += written;
      size -= written;
    }
  if (lseek (fd, 0, SEEK_SET) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Could not rewind the memory file: %s", g_strerror (saved));
      close (fd);
      return -1;
    }
  return fd;
}

/**
 * outbox_client_submit_bytes_async:
 * @message: the RFC 5322 message
 * @options: (nullable): how to send it; %NULL: as the account says
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the message is on disk in the queue
 * @user_data: data for @callback
 *
 * Queues a message.  outboxd adds Date and Message-ID headers when they
 * are missing, and refuses a message it could not send
 * (%OUTBOX_CLIENT_ERROR_INVALID_MESSAGE) or an address that is not one
 * (%OUTBOX_CLIENT_ERROR_INVALID_ADDRESS).
 */
void
outbox_client_submit_bytes_async (OutboxClient *self, GBytes *message, OutboxSubmitOptions *options,
                                  GCancellable *cancellable, GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  GTask *task;
  GError *error = NULL;
  int fd;

  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  g_return_if_fail (message != NULL);
  g_return_if_fail (options == NULL || OUTBOX_IS_SUBMIT_OPTIONS (options));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_client_submit_bytes_async);
  if (g_bytes_get_size (message) <= SUBMIT_DATA_MAX)
    {
      submit_call (self, task, -1, message, options);
      return;
    }
  fd = memory_file_from_bytes (message, &error);
  if (fd < 0)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  submit_call (self, task, fd, NULL, options);
  close (fd);
}

/**
 * outbox_client_submit_bytes_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: (transfer full): the new message's queue id
 */
char *
outbox_client_submit_bytes_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * outbox_client_submit_bytes_sync:
 * @message: the RFC 5322 message
 * @options: (nullable): how to send it; %NULL: as the account says
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Queues a message, blocking until it is on disk in the queue.
 *
 * Returns: (transfer full): the new message's queue id
 */
char *
outbox_client_submit_bytes_sync (OutboxClient *self, GBytes *message, OutboxSubmitOptions *options,
                                 GCancellable *cancellable, GError **error)
{
  char *id;
  int fd;

  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (message != NULL, NULL);
  g_return_val_if_fail (options == NULL || OUTBOX_IS_SUBMIT_OPTIONS (options), NULL);

  if (g_bytes_get_size (message) <= SUBMIT_DATA_MAX)
    return submit_call_sync (self, -1, message, options, cancellable, error);
  fd = memory_file_from_bytes (message, error);
  if (fd < 0)
    return NULL;
  id = submit_call_sync (self, fd, NULL, options, cancellable, error);
  close (fd);
  return id;
}

/* A stream with a descriptor of its own (a file, a pipe) is passed as it
 * is, read from where it stands; any other is first copied into a memory
 * file, so that a read error fails the call instead of queueing part of a
 * message. */
static int
stream_fd (GInputStream *stream)
{
  if (G_IS_FILE_DESCRIPTOR_BASED (stream))
    return g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (stream));
  return -1;
}

typedef struct
{
  OutboxSubmitOptions *options;
  int fd;
} SubmitCopy;

static void
submit_copy_free (SubmitCopy *copy)
{
  g_clear_object (&copy->options);
  if (copy->fd >= 0)
    close (copy->fd);
  g_free (copy);
}

static void
submit_copy_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  OutboxClient *self = g_task_get_source_object (task);
  SubmitCopy *copy = g_task_get_task_data (task);
  GError *error = NULL;

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error) < 0)
    {
      g_prefix_error (&error, "Could not read the message: ");
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (lseek (copy->fd, 0, SEEK_SET) != 0)
    {
      int saved = errno;

      g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (saved),
                               "Could not rewind the memory file: %s", g_strerror (saved));
      g_object_unref (task);
      return;
    }
  submit_call (self, task, copy->fd, NULL, copy->options);
}

static void
submit_stream_start (OutboxClient *self, GTask *task, GInputStream *stream, OutboxSubmitOptions *options)
{
  g_autoptr (GOutputStream) out = NULL;
  SubmitCopy *copy;
  GError *error = NULL;
  int fd = stream_fd (stream);

  if (fd >= 0)
    {
      submit_call (self, task, fd, NULL, options);
      return;
    }
  fd = memory_file_new (&error);
  if (fd < 0)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  copy = g_new0 (SubmitCopy, 1);
  copy->options = options != NULL ? g_object_ref (options) : NULL;
  copy->fd = fd;
  g_task_set_task_data (task, copy, (GDestroyNotify) submit_copy_free);
  out = g_unix_output_stream_new (fd, FALSE);
  g_output_stream_splice_async (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, G_PRIORITY_DEFAULT,
                                g_task_get_cancellable (task), submit_copy_done, task);
}

static char *
submit_stream_sync (OutboxClient *self, GInputStream *stream, OutboxSubmitOptions *options,
                    GCancellable *cancellable, GError **error)
{
  g_autoptr (GOutputStream) out = NULL;
  char *id;
  int fd = stream_fd (stream);

  if (fd >= 0)
    return submit_call_sync (self, fd, NULL, options, cancellable, error);
  fd = memory_file_new (error);
  if (fd < 0)
    return NULL;
  out = g_unix_output_stream_new (fd, FALSE);
  if (g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, cancellable, error) < 0)
    {
      g_prefix_error (error, "Could not read the message: ");
      close (fd);
      return NULL;
    }
  if (lseek (fd, 0, SEEK_SET) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Could not rewind the memory file: %s", g_strerror (saved));
      close (fd);
      return NULL;
    }
  id = submit_call_sync (self, fd, NULL, options, cancellable, error);
  close (fd);
  return id;
}

/**
 * outbox_client_submit_stream_async:
 * @message: a stream of the RFC 5322 message, read to its end
 * @options: (nullable): how to send it; %NULL: as the account says
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the message is on disk in the queue
 * @user_data: data for @callback
 *
 * Queues a message read from a stream.  A stream of a file or pipe (a
 * #GFileDescriptorBased one) goes to outboxd as its file descriptor,
 * read from where the stream stands; any other stream is copied into a
 * memory file first, so that a read error fails the call instead of
 * queueing part of a message.  Nothing is copied into the bus.
 */
void
outbox_client_submit_stream_async (OutboxClient *self, GInputStream *message, OutboxSubmitOptions *options,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  GTask *task;

  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  g_return_if_fail (G_IS_INPUT_STREAM (message));
  g_return_if_fail (options == NULL || OUTBOX_IS_SUBMIT_OPTIONS (options));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_client_submit_stream_async);
  submit_stream_start (self, task, message, options);
}

/**
 * outbox_client_submit_stream_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR, or the stream's error
 *
 * Returns: (transfer full): the new message's queue id
 */
char *
outbox_client_submit_stream_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * outbox_client_submit_stream_sync:
 * @message: a stream of the RFC 5322 message, read to its end
 * @options: (nullable): how to send it; %NULL: as the account says
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR, or the stream's error
 *
 * Queues a message read from a stream, blocking until it is on disk in
 * the queue.  See outbox_client_submit_stream_async().
 *
 * Returns: (transfer full): the new message's queue id
 */
char *
outbox_client_submit_stream_sync (OutboxClient *self, GInputStream *message, OutboxSubmitOptions *options,
                                  GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (G_IS_INPUT_STREAM (message), NULL);
  g_return_val_if_fail (options == NULL || OUTBOX_IS_SUBMIT_OPTIONS (options), NULL);
  return submit_stream_sync (self, message, options, cancellable, error);
}

static void
submit_file_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  OutboxClient *self = g_task_get_source_object (task);
  g_autoptr (GFileInputStream) stream = NULL;
  g_autoptr (OutboxSubmitOptions) options = g_task_get_task_data (task);
  GError *error = NULL;

  /* The stream's own copy, if any, takes the task data over. */
  g_task_set_task_data (task, NULL, NULL);
  stream = g_file_read_finish (G_FILE (source), result, &error);
  if (stream == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  submit_stream_start (self, task, G_INPUT_STREAM (stream), options);
}

/**
 * outbox_client_submit_file_async:
 * @message: a file holding the RFC 5322 message
 * @options: (nullable): how to send it; %NULL: as the account says
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the message is on disk in the queue
 * @user_data: data for @callback
 *
 * Queues the message in a file, which goes to outboxd as an open file
 * descriptor (a file that is not local is copied into a memory file
 * first).
 */
void
outbox_client_submit_file_async (OutboxClient *self, GFile *message, OutboxSubmitOptions *options,
                                 GCancellable *cancellable, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  GTask *task;

  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  g_return_if_fail (G_IS_FILE (message));
  g_return_if_fail (options == NULL || OUTBOX_IS_SUBMIT_OPTIONS (options));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_client_submit_file_async);
  if (options != NULL)
    g_task_set_task_data (task, g_object_ref (options), NULL);
  g_file_read_async (message, G_PRIORITY_DEFAULT, cancellable, submit_file_opened, task);
}

/**
 * outbox_client_submit_file_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR, or the file's error
 *
 * Returns: (transfer full): the new message's queue id
 */
char *
outbox_client_submit_file_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * outbox_client_submit_file_sync:
 * @message: a file holding the RFC 5322 message
 * @options: (nullable): how to send it; %NULL: as the account says
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR, or the file's error
 *
 * Queues the message in a file, blocking until it is on disk in the queue.
 *
 * Returns: (transfer full): the new message's queue id
 */
char *
outbox_client_submit_file_sync (OutboxClient *self, GFile *message, OutboxSubmitOptions *options,
                                GCancellable *cancellable, GError **error)
{
  g_autoptr (GFileInputStream) stream = NULL;

  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (G_IS_FILE (message), NULL);
  g_return_val_if_fail (options == NULL || OUTBOX_IS_SUBMIT_OPTIONS (options), NULL);

  stream = g_file_read (message, cancellable, error);
  if (stream == NULL)
    return NULL;
  return submit_stream_sync (self, G_INPUT_STREAM (stream), options, cancellable, error);
}

/* Flush */

/**
 * outbox_client_flush_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when outboxd has taken the request
 * @user_data: data for @callback
 *
 * Tries every queued and deferred message now, and every account that
 * waited for the user.
 */
void
outbox_client_flush_async (OutboxClient *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  _outbox_call (self->queue, "Flush", NULL, OUTBOX_CALL_TIMEOUT_MS,
                _outbox_task_new (self, outbox_client_flush_async, cancellable, callback, user_data));
}

/**
 * outbox_client_flush_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_client_flush_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_boolean (self, result, outbox_client_flush_async, error);
}

/**
 * outbox_client_flush_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Tries every queued and deferred message now, blocking until outboxd has
 * taken the request.
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_client_flush_sync (OutboxClient *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), FALSE);
  return _outbox_call_sync_boolean (self->queue, "Flush", NULL, OUTBOX_CALL_TIMEOUT_MS, cancellable, error);
}

/* Accounts */

static int
compare_accounts (gconstpointer a, gconstpointer b, gpointer user_data)
{
  return g_strcmp0 (outbox_account_get_name ((OutboxAccount *) a),
                    outbox_account_get_name ((OutboxAccount *) b));
}

static void
forget_account (OutboxClient *self, const char *name)
{
  g_autoptr (OutboxAccount) account = NULL;
  g_autoptr (GVariant) empty = g_variant_ref_sink (g_variant_new ("a{sv}", NULL));
  guint position;

  account = g_hash_table_lookup (self->accounts, name);
  if (account == NULL)
    return;
  g_object_ref (account);
  if (g_list_store_find (self->account_list, account, &position))
    g_list_store_remove (self->account_list, position);
  g_hash_table_remove (self->accounts, outbox_account_get_name (account));
  _outbox_account_update (account, "removed", empty);
}

static void
account_changed (OutboxClient *self, const char *name, const char *state, GVariant *settings)
{
  OutboxAccount *account;

  if (g_strcmp0 (state, "removed") == 0)
    {
      forget_account (self, name);
      return;
    }
  account = g_hash_table_lookup (self->accounts, name);
  if (account != NULL)
    {
      _outbox_account_update (account, state, settings);
      return;
    }
  account = _outbox_account_new (self->accounts_proxy, name, state, settings);
  g_hash_table_insert (self->accounts, (gpointer) outbox_account_get_name (account), account);
  g_list_store_insert_sorted (self->account_list, account, compare_accounts, NULL);
}

static void
on_account_signal (GDBusProxy *proxy, const char *sender, const char *signal, GVariant *parameters,
                   OutboxClient *self)
{
  g_autoptr (GVariant) settings = NULL;
  const char *name, *state;

  if (g_strcmp0 (signal, "AccountChanged") != 0 ||
      !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(ssa{sv})")))
    return;
  if (!self->accounts_wanted)
    return;
  g_variant_get (parameters, "(&s&s@a{sv})", &name, &state, &settings);
  if (self->accounts_loading)
    g_hash_table_add (self->accounts_fresh, g_strdup (name));
  account_changed (self, name, state, settings);
}

static void
accounts_load_end (OutboxClient *self, GVariant *list, const GError *error)
{
  self->accounts_loading = FALSE;
  if (list != NULL)
    {
      g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
      g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
      GHashTableIter iter;
      GVariantIter accounts;
      GVariant *settings;
      gpointer name;

      g_variant_iter_init (&accounts, list);
      while ((settings = g_variant_iter_next_value (&accounts)) != NULL)
        {
          const char *account_name = NULL;

          if (g_variant_lookup (settings, "name", "&s", &account_name))
            {
              g_hash_table_add (seen, (gpointer) account_name);
              if (!g_hash_table_contains (self->accounts_fresh, account_name))
                account_changed (self, account_name, NULL, settings);
            }
          g_variant_unref (settings);
        }
      g_hash_table_iter_init (&iter, self->accounts);
      while (g_hash_table_iter_next (&iter, &name, NULL))
        if (!g_hash_table_contains (seen, name) && !g_hash_table_contains (self->accounts_fresh, name))
          g_ptr_array_add (gone, g_strdup (name));
      for (guint i = 0; i < gone->len; i++)
        forget_account (self, gone->pdata[i]);
      self->accounts_loaded = TRUE;
    }
  g_clear_pointer (&self->accounts_fresh, g_hash_table_unref);
  complete_waiters (self->accounts_waiters, G_LIST_MODEL (self->account_list), error);
}

static void
accounts_list_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxClient) self = user_data;
  g_autoptr (GVariant) list = NULL;
  GError *error = NULL;

  if (!outbox_dbus_accounts_call_list_finish (OUTBOX_DBUS_ACCOUNTS (source), &list, result, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          _outbox_client_error_translate (&error);
          accounts_load_end (self, NULL, error);
        }
      g_error_free (error);
      return;
    }
  accounts_load_end (self, list, NULL);
}

static void
accounts_load_begin (OutboxClient *self)
{
  if (self->accounts_loading)
    g_cancellable_cancel (self->accounts_cancellable);
  g_clear_object (&self->accounts_cancellable);
  self->accounts_cancellable = g_cancellable_new ();
  g_clear_pointer (&self->accounts_fresh, g_hash_table_unref);
  self->accounts_fresh = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->accounts_loading = TRUE;
  g_main_context_push_thread_default (self->context);
  g_dbus_proxy_call (G_DBUS_PROXY (self->accounts_proxy), "List", NULL, G_DBUS_CALL_FLAGS_NONE,
                     OUTBOX_CALL_TIMEOUT_MS, self->accounts_cancellable, accounts_list_done, g_object_ref (self));
  g_main_context_pop_thread_default (self->context);
}

static void
accounts_want (OutboxClient *self)
{
  if (self->accounts_wanted)
    return;
  self->accounts_wanted = TRUE;
  accounts_load_begin (self);
}

/**
 * outbox_client_get_accounts:
 *
 * The accounts as a live list, by name.  The first call starts reading
 * them; from then on the list and its #OutboxAccount objects follow what
 * outboxd reports (an account added, changed, removed, or needing
 * attention).
 *
 * Returns: (transfer none): a #GListModel of #OutboxAccount
 */
GListModel *
outbox_client_get_accounts (OutboxClient *self)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  accounts_want (self);
  return G_LIST_MODEL (self->account_list);
}

/**
 * outbox_client_load_accounts_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the accounts are in the list
 * @user_data: data for @callback
 *
 * Starts the live list of accounts, if outbox_client_get_accounts() did
 * not, and calls back once it is read.
 */
void
outbox_client_load_accounts_async (OutboxClient *self, GCancellable *cancellable,
                                   GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task;

  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_client_load_accounts_async);
  accounts_want (self);
  if (self->accounts_loaded && !self->accounts_loading)
    {
      g_task_return_pointer (task, g_object_ref (self->account_list), g_object_unref);
      g_object_unref (task);
      return;
    }
  if (!self->accounts_loading)
    accounts_load_begin (self);
  g_ptr_array_add (self->accounts_waiters, task);
}

/**
 * outbox_client_load_accounts_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: (transfer full): the list outbox_client_get_accounts() gives
 */
GListModel *
outbox_client_load_accounts_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * outbox_client_load_accounts_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Reads the accounts into the live list, running the client's main
 * context until they are in.
 *
 * Returns: (transfer full): the list outbox_client_get_accounts() gives
 */
GListModel *
outbox_client_load_accounts_sync (OutboxClient *self, GCancellable *cancellable, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_main_context_push_thread_default (self->context);
  outbox_client_load_accounts_async (self, cancellable, sync_result, &result);
  return outbox_client_load_accounts_finish (self, wait_in_context (self, &result), error);
}

/**
 * outbox_client_get_account:
 * @name: an account name
 *
 * Returns: (transfer none) (nullable): the account of that name in the
 *   live list
 */
OutboxAccount *
outbox_client_get_account (OutboxClient *self, const char *name)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (name != NULL, NULL);
  return g_hash_table_lookup (self->accounts, name);
}

/**
 * outbox_client_add_account_async:
 * @name: the new account's name: letters, digits, '.', '_' and '-'
 * @settings: an a{sv} dictionary with at least "from" and "smtp" (see the
 *   Accounts interface)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the account is stored
 * @user_data: data for @callback
 *
 * Adds an account; the first one becomes the default.  It appears in
 * outbox_client_get_accounts() once outboxd tells it.
 */
void
outbox_client_add_account_async (OutboxClient *self, const char *name, GVariant *settings,
                                 GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (g_variant_is_of_type (settings, G_VARIANT_TYPE_VARDICT));
  _outbox_call (self->accounts_proxy, "Add", g_variant_new ("(s@a{sv})", name, settings),
                OUTBOX_CALL_TIMEOUT_MS,
                _outbox_task_new (self, outbox_client_add_account_async, cancellable, callback, user_data));
}

/**
 * outbox_client_add_account_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *   (%OUTBOX_CLIENT_ERROR_ACCOUNT_EXISTS, %OUTBOX_CLIENT_ERROR_INVALID_ACCOUNT...)
 *
 * Returns: whether the account was added
 */
gboolean
outbox_client_add_account_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_boolean (self, result, outbox_client_add_account_async, error);
}

/**
 * outbox_client_add_account_sync:
 * @name: the new account's name
 * @settings: an a{sv} dictionary with at least "from" and "smtp"
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Adds an account, blocking.
 *
 * Returns: whether the account was added
 */
gboolean
outbox_client_add_account_sync (OutboxClient *self, const char *name, GVariant *settings,
                                GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);
  g_return_val_if_fail (g_variant_is_of_type (settings, G_VARIANT_TYPE_VARDICT), FALSE);
  return _outbox_call_sync_boolean (self->accounts_proxy, "Add", g_variant_new ("(s@a{sv})", name, settings),
                                    OUTBOX_CALL_TIMEOUT_MS, cancellable, error);
}

/* Discovery asks DNS and the provider's web server, each with a timeout. */
#define DISCOVER_TIMEOUT_MS (2 * 60 * 1000)

/**
 * outbox_client_discover_async:
 * @address: an e-mail address
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the proposed settings
 * @user_data: data for @callback
 *
 * Asks outboxd to propose settings for an address (RFC 6186 SRV records,
 * the provider's autoconfig file, a local ISP file).  It only proposes:
 * it never logs in and never sends a credential.
 */
void
outbox_client_discover_async (OutboxClient *self, const char *address, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_CLIENT (self));
  g_return_if_fail (address != NULL);
  _outbox_call (self->accounts_proxy, "Discover", g_variant_new ("(s)", address), DISCOVER_TIMEOUT_MS,
                _outbox_task_new (self, outbox_client_discover_async, cancellable, callback, user_data));
}

/**
 * outbox_client_discover_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *   (%OUTBOX_CLIENT_ERROR_FAILED when nothing is found)
 *
 * Returns: (transfer full): an a{sv} dictionary: "source", "smtp", "imap",
 *   "pop3", "username" (see the Accounts interface)
 */
GVariant *
outbox_client_discover_finish (OutboxClient *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_pointer (self, result, outbox_client_discover_async, error);
}

/**
 * outbox_client_discover_sync:
 * @address: an e-mail address
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Asks outboxd to propose settings for an address, blocking.
 *
 * Returns: (transfer full): the proposed settings
 */
GVariant *
outbox_client_discover_sync (OutboxClient *self, const char *address, GCancellable *cancellable,
                             GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_CLIENT (self), NULL);
  g_return_val_if_fail (address != NULL, NULL);
  return _outbox_call_sync (self->accounts_proxy, "Discover", g_variant_new ("(s)", address),
                            DISCOVER_TIMEOUT_MS, cancellable, error);
}
