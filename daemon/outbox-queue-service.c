/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <sys/stat.h>

#include "outbox-dbus-error.h"
#include "outbox-error.h"
#include "outbox-load-gate.h"
#include "outbox-options.h"
#include "outbox-queue-service.h"
#include "outbox-submit.h"

struct _OutboxQueueService
{
  OutboxDbusQueueSkeleton parent_instance;

  OutboxQueue *queue;           /* (owned) */
  OutboxDelivery *delivery;     /* (owned) */
  OutboxAccountStore *accounts; /* (unowned) */
  gulong changed_handler;
  guint trim_id;
  /* MessageChanged signals not yet emitted: id -> Change (owned), and the
   * changes in the order their messages first changed. */
  GHashTable *pending;          /* (owned) */
  GQueue pending_order;         /* (element-type Change) (unowned) */
  guint flush_id;
};

static void outbox_queue_service_iface_init (OutboxDbusQueueIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OutboxQueueService,
                               outbox_queue_service,
                               OUTBOX_DBUS_TYPE_QUEUE_SKELETON,
                               G_IMPLEMENT_INTERFACE (OUTBOX_DBUS_TYPE_QUEUE,
                                                      outbox_queue_service_iface_init))

static void
return_error (GDBusMethodInvocation *invocation, OutboxError code, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
return_error (GDBusMethodInvocation *invocation, OutboxError code, const char *format, ...)
{
  va_list args;
  GError *error;

  va_start (args, format);
  error = g_error_new_valist (OUTBOX_ERROR, code, format, args);
  va_end (args);
  outbox_dbus_return_error (invocation, error);
}

/* Submit */

static void
submit_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  OutboxDbusQueue *object = g_object_get_data (G_OBJECT (invocation), "outbox-object");
  GError *error = NULL;
  g_autofree char *id = outbox_submit_finish (result, &error);

  if (id == NULL)
    {
      outbox_dbus_return_error (invocation, error);
      return;
    }
  if (g_str_equal (g_dbus_method_invocation_get_method_name (invocation), "Submit"))
    outbox_dbus_queue_complete_submit (object, invocation, NULL, id);
  else
    outbox_dbus_queue_complete_submit_data (object, invocation, id);
}

static void
start_submit (OutboxQueueService *self,
              GDBusMethodInvocation *invocation,
              GInputStream *in,
              GVariant *options)
{
  g_object_set_data_full (G_OBJECT (invocation), "outbox-object", g_object_ref (self),
                          g_object_unref);
  outbox_submit_async (self->queue, self->accounts, in, options, NULL, submit_done,
                       g_object_ref (invocation));
}

/* The descriptor must be one we can read a message from: never a directory,
 * never write-only. */
static gboolean
check_message_fd (int fd, GError **error)
{
  struct stat st;
  int flags;

  if (fstat (fd, &st) != 0 || S_ISDIR (st.st_mode))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "The message descriptor is not a readable file, pipe or socket");
      return FALSE;
    }
  flags = fcntl (fd, F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) == O_WRONLY)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "The message descriptor is not open for reading");
      return FALSE;
    }
  return TRUE;
}

static gboolean
handle_submit (OutboxDbusQueue *object,
               GDBusMethodInvocation *invocation,
               GUnixFDList *fd_list,
               GVariant *arg_message,
               GVariant *arg_options)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);
  g_autoptr (GInputStream) in = NULL;
  GError *error = NULL;
  gint32 handle;
  int fd = -1;

  /* g_unix_fd_list_get() trusts its index: a caller's handle must be
   * checked against the list first. */
  handle = g_variant_get_handle (arg_message);
  if (fd_list != NULL && handle >= 0 && handle < g_unix_fd_list_get_length (fd_list))
    fd = g_unix_fd_list_get (fd_list, handle, NULL);
  if (fd < 0)
    {
      return_error (invocation, OUTBOX_ERROR_INVALID_ARGS,
                    "Submit needs the message as a file descriptor; use SubmitData to pass bytes");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!check_message_fd (fd, &error))
    {
      close (fd);
      outbox_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  in = g_unix_input_stream_new (fd, TRUE);
  start_submit (self, invocation, in, arg_options);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_submit_data (OutboxDbusQueue *object,
                    GDBusMethodInvocation *invocation,
                    GVariant *arg_message,
                    GVariant *arg_options)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);
  g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (arg_message);
  g_autoptr (GInputStream) in = g_memory_input_stream_new_from_bytes (bytes);

  start_submit (self, invocation, in, arg_options);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Inspecting */

/* One reply stays well under the smallest message size limit of a bus
 * (dbus-daemon's default is 32 MiB; the protocol's, 128 MiB). */
#define LIST_REPLY_BUDGET (16 * 1024 * 1024)

typedef struct
{
  gboolean all;
  guint limit;        /* 0: no limit */
  gint64 after_created;
  const char *after_id; /* (nullable) (unowned) from the options */
} ListOptions;

enum
{
  LIST_ALL,
  LIST_LIMIT,
  LIST_AFTER,
  N_LIST_OPTIONS
};

static const OutboxOption list_options[N_LIST_OPTIONS] = {
  [LIST_ALL] = { "all", "b", NULL },
  [LIST_LIMIT] = { "limit", "u", NULL },
  [LIST_AFTER] = { "after", "(xs)", NULL },
};

static gboolean
parse_list_options (GVariant *options, ListOptions *out, GError **error)
{
  GVariant *values[N_LIST_OPTIONS];

  if (!outbox_options_check (options, list_options, N_LIST_OPTIONS, "List", values, error))
    return FALSE;
  if (values[LIST_ALL] != NULL)
    out->all = g_variant_get_boolean (values[LIST_ALL]);
  if (values[LIST_LIMIT] != NULL)
    out->limit = g_variant_get_uint32 (values[LIST_LIMIT]);
  /* Borrowed from @options, which holds the value and outlives the listing. */
  if (values[LIST_AFTER] != NULL)
    g_variant_get (values[LIST_AFTER], "(x&s)", &out->after_created, &out->after_id);
  outbox_options_clear (values, N_LIST_OPTIONS);
  return TRUE;
}

#ifdef __GLIBC__
static gboolean
give_memory_back (gpointer user_data)
{
  OutboxQueueService *self = user_data;

  self->trim_id = 0;
  malloc_trim (0);
  return G_SOURCE_REMOVE;
}
#endif

/* A List of a big queue is many megabytes for a moment; once the reply has
 * gone out, the heap it leaves free is handed back to the system. */
static void
schedule_memory_trim (OutboxQueueService *self)
{
#ifdef __GLIBC__
  if (self->trim_id == 0)
    self->trim_id = g_timeout_add_seconds (1, give_memory_back, self);
#endif
}

/* The listing List and ListSerialized answer with (aa{sv}, serialised), or
 * NULL with the call answered with an error.  Written straight into one
 * buffer (see outbox-variant-writer.h): a page of 5,000 messages is one
 * allocation, not a tree of a hundred thousand values. */
static GBytes *
build_listing (OutboxQueueService *self, GDBusMethodInvocation *invocation, GVariant *arg_options)
{
  g_autoptr (OutboxVariantWriter) writer = NULL;
  ListOptions options = { 0 };
  GError *error = NULL;
  guint listed = 0;

  if (!parse_list_options (arg_options, &options, &error))
    {
      outbox_dbus_return_error (invocation, error);
      return NULL;
    }
  writer = outbox_variant_writer_new ();
  outbox_variant_writer_begin_array (writer);
  for (GSequenceIter *iter = outbox_queue_iter_after (self->queue, options.after_created, options.after_id);
       !g_sequence_iter_is_end (iter) && (options.limit == 0 || listed < options.limit);
       iter = g_sequence_iter_next (iter))
    {
      const OutboxSpoolRecord *record = g_sequence_get (iter);

      if (!options.all && !outbox_spool_state_is_pending (record->state))
        continue;
      outbox_queue_write_record (writer, record);
      if (outbox_variant_writer_get_size (writer) > LIST_REPLY_BUDGET)
        {
          return_error (invocation, OUTBOX_ERROR_INVALID_ARGS,
                        "More messages than one reply can carry; list them in pages with the "
                        "options “limit” (u) and “after” ((xs): the created time and id of the "
                        "last message of the page before), as outbox queue does");
          schedule_memory_trim (self);
          return NULL;
        }
      listed++;
    }
  outbox_variant_writer_end_array (writer);
  if (listed >= 1000)
    schedule_memory_trim (self);
  return outbox_variant_writer_steal_bytes (writer);
}

static gboolean
handle_list (OutboxDbusQueue *object, GDBusMethodInvocation *invocation, GVariant *arg_options)
{
  g_autoptr (GBytes) listing = build_listing (OUTBOX_QUEUE_SERVICE (object), invocation, arg_options);

  if (listing != NULL)
    outbox_dbus_queue_complete_list (object, invocation,
                                     g_variant_new_from_bytes (G_VARIANT_TYPE ("aa{sv}"), listing, TRUE));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_serialized (OutboxDbusQueue *object,
                        GDBusMethodInvocation *invocation,
                        GVariant *arg_options)
{
  g_autoptr (GBytes) listing = build_listing (OUTBOX_QUEUE_SERVICE (object), invocation, arg_options);

  if (listing != NULL)
    outbox_dbus_queue_complete_list_serialized (
        object, invocation, g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, listing, TRUE));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* While the queue loads, a message the loader has not reached yet is read
 * from the spool: Get never waits for the load. */
static gboolean
handle_get (OutboxDbusQueue *object, GDBusMethodInvocation *invocation, const char *arg_id)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);
  g_autoptr (OutboxSpoolRecord) record = outbox_queue_peek (self->queue, arg_id, NULL);

  if (record == NULL)
    return_error (invocation, OUTBOX_ERROR_NO_SUCH_MESSAGE,
                  "No message with id “%s”; see outbox queue --all", arg_id);
  else
    outbox_dbus_queue_complete_get (object, invocation, outbox_queue_record_to_variant (record));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Waiting for the load
 *
 * List, ListSerialized and Flush want the whole queue; Cancel, Hold, Release and Retry of
 * a message not read yet want its record in memory, where its changes are
 * made, and so does any of these while a call before it waits (a Cancel
 * after a List must not change what the List shows).  They wait until the
 * queue is loaded (see outbox-load-gate.h), in the order they came;
 * everything else is answered at once. */
static gboolean
must_wait_for_load (OutboxQueue *queue, GDBusMethodInvocation *invocation, gboolean others_wait)
{
  static const char *const whole_queue[] = { "List", "ListSerialized", "Flush", NULL };
  static const char *const steering[] = { "Cancel", "Hold", "Release", "Retry", NULL };
  const char *method = g_dbus_method_invocation_get_method_name (invocation);
  GVariant *parameters = g_dbus_method_invocation_get_parameters (invocation);
  const char *id = NULL;

  if (g_strv_contains (whole_queue, method))
    return TRUE;
  if (!g_strv_contains (steering, method) || !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(s)")))
    return FALSE;
  g_variant_get (parameters, "(&s)", &id);
  return others_wait || outbox_queue_lookup (queue, id) == NULL;
}

/* Steering: the queue checks and makes the change (outbox-queue.h says
 * which apply when); the handler answers once it is on disk. */

typedef void (*CompleteFunc) (OutboxDbusQueue *object, GDBusMethodInvocation *invocation);

typedef struct
{
  OutboxQueueService *self;           /* (owned) */
  GDBusMethodInvocation *invocation;  /* (owned) until answered */
  CompleteFunc complete;
} ChangeCall;

static void
change_call_free (ChangeCall *call)
{
  g_object_unref (call->self);
  g_clear_object (&call->invocation);
  g_free (call);
}

static void
change_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ChangeCall *call = user_data;
  OutboxQueueService *self = call->self;
  GError *error = NULL;

  if (!outbox_queue_change_finish (self->queue, result, &error))
    outbox_dbus_return_error (g_steal_pointer (&call->invocation), error);
  else
    call->complete (OUTBOX_DBUS_QUEUE (self), g_steal_pointer (&call->invocation));
  change_call_free (call);
}

/* The change a steering method asks for, wherever the user asked. */
static void
request_change (OutboxQueueService *self,
                const char *id,
                OutboxQueueChange change,
                GAsyncReadyCallback callback,
                gpointer user_data)
{
  OutboxSpoolRecord *record = outbox_queue_lookup (self->queue, id);

  /* A retry is the user asking to try the account again now: it must not
   * rest after a failure when the retried message becomes due. */
  if (change == OUTBOX_QUEUE_CHANGE_RETRY && record != NULL
      && outbox_queue_check_change (self->queue, id, change, NULL))
    outbox_delivery_retry_account (self->delivery, record->account);
  outbox_queue_change_async (self->queue, id, change, NULL, callback, user_data);
}

static gboolean
ask_for_change (OutboxDbusQueue *object,
                GDBusMethodInvocation *invocation,
                const char *id,
                OutboxQueueChange change,
                CompleteFunc complete)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);
  ChangeCall *call = g_new0 (ChangeCall, 1);

  call->self = g_object_ref (self);
  /* The reference the handler was given, which the answer consumes. */
  call->invocation = invocation;
  call->complete = complete;
  request_change (self, id, change, change_done, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_cancel (OutboxDbusQueue *object, GDBusMethodInvocation *invocation, const char *arg_id)
{
  return ask_for_change (object, invocation, arg_id, OUTBOX_QUEUE_CHANGE_CANCEL,
                         outbox_dbus_queue_complete_cancel);
}

static gboolean
handle_hold (OutboxDbusQueue *object, GDBusMethodInvocation *invocation, const char *arg_id)
{
  return ask_for_change (object, invocation, arg_id, OUTBOX_QUEUE_CHANGE_HOLD,
                         outbox_dbus_queue_complete_hold);
}

static gboolean
handle_release (OutboxDbusQueue *object, GDBusMethodInvocation *invocation, const char *arg_id)
{
  return ask_for_change (object, invocation, arg_id, OUTBOX_QUEUE_CHANGE_RELEASE,
                         outbox_dbus_queue_complete_release);
}

static gboolean
handle_retry (OutboxDbusQueue *object, GDBusMethodInvocation *invocation, const char *arg_id)
{
  return ask_for_change (object, invocation, arg_id, OUTBOX_QUEUE_CHANGE_RETRY,
                         outbox_dbus_queue_complete_retry);
}

static void
retry_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *id = user_data;
  g_autoptr (GError) error = NULL;

  if (!outbox_queue_change_finish (OUTBOX_QUEUE (source), result, &error))
    g_message ("Message %s not retried: %s", id, error->message);
}

/* Unlike Retry on the bus, this does not wait for the load: a notification
 * is about a message that failed in this run, which is in memory. */
void
outbox_queue_service_retry (OutboxQueueService *self, const char *id)
{
  request_change (self, id, OUTBOX_QUEUE_CHANGE_RETRY, retry_done, g_strdup (id));
}

static gboolean
handle_flush (OutboxDbusQueue *object, GDBusMethodInvocation *invocation)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);

  outbox_delivery_flush (self->delivery);
  outbox_dbus_queue_complete_flush (object, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
outbox_queue_service_iface_init (OutboxDbusQueueIface *iface)
{
  iface->handle_submit = handle_submit;
  iface->handle_submit_data = handle_submit_data;
  iface->handle_list = handle_list;
  iface->handle_list_serialized = handle_list_serialized;
  iface->handle_get = handle_get;
  iface->handle_cancel = handle_cancel;
  iface->handle_hold = handle_hold;
  iface->handle_release = handle_release;
  iface->handle_retry = handle_retry;
  iface->handle_flush = handle_flush;
}

/* MessageChanged
 *
 * A message that goes out changes three times in a few milliseconds
 * (queued, sending, sent), and each signal carries the whole message
 * dictionary: building and sending one costs more than the SMTP exchange.
 * So the changes of one message within CHANGE_WINDOW_MS are told once, by
 * a signal that carries its state and dictionary at that moment; every
 * message's last state is told, at most that long after the queue told it.
 *
 * The queue tells a change once it is on disk, but the record in memory
 * runs ahead of the disk while a save of it is written (a delivery's
 * outcome, say), or after that save failed: such a message waits until a
 * save of it succeeds, whose change sets the window going again.  So no
 * signal says more than the disk does. */

#define CHANGE_WINDOW_MS 50

typedef struct
{
  char *id;
  char *state;        /* (nullable) NULL: the record's state when emitted */
  GVariant *details;  /* (nullable) NULL: the record's dictionary when emitted */
} Change;

static void
change_free (gpointer data)
{
  Change *change = data;

  g_free (change->id);
  g_free (change->state);
  g_clear_pointer (&change->details, g_variant_unref);
  g_free (change);
}

static void
emit_change (OutboxQueueService *self, const Change *change)
{
  OutboxDbusQueue *object = OUTBOX_DBUS_QUEUE (self);
  OutboxSpoolRecord *record;

  if (change->details != NULL)
    {
      outbox_dbus_queue_emit_message_changed (object, change->id, change->state, change->details);
      return;
    }
  record = outbox_queue_lookup (self->queue, change->id);
  /* A record that left the queue has a change of its own, "removed". */
  g_return_if_fail (record != NULL);
  outbox_dbus_queue_emit_message_changed (object, change->id,
                                          outbox_spool_state_to_string (record->state),
                                          outbox_queue_record_to_variant (record));
}

void
outbox_queue_service_flush_changes (OutboxQueueService *self)
{
  GQueue waiting = G_QUEUE_INIT;
  Change *change;

  g_clear_handle_id (&self->flush_id, g_source_remove);
  while ((change = g_queue_pop_head (&self->pending_order)) != NULL)
    {
      if (change->details == NULL && outbox_queue_is_ahead_of_disk (self->queue, change->id))
        {
          g_queue_push_tail (&waiting, change);
          continue;
        }
      g_hash_table_steal (self->pending, change->id);
      emit_change (self, change);
      change_free (change);
    }
  self->pending_order = waiting;
}

static gboolean
flush_changes_timeout (gpointer user_data)
{
  OutboxQueueService *self = user_data;

  self->flush_id = 0;
  outbox_queue_service_flush_changes (self);
  return G_SOURCE_REMOVE;
}

static void
on_message_changed (OutboxQueue *queue,
                    const char *id,
                    const char *state,
                    GVariant *details,
                    gpointer user_data)
{
  OutboxQueueService *self = user_data;
  Change *change = g_hash_table_lookup (self->pending, id);

  if (change == NULL)
    {
      change = g_new0 (Change, 1);
      change->id = g_strdup (id);
      g_hash_table_insert (self->pending, change->id, change);
      g_queue_push_tail (&self->pending_order, change);
    }
  g_clear_pointer (&change->state, g_free);
  g_clear_pointer (&change->details, g_variant_unref);
  if (details != NULL)
    {
      change->state = g_strdup (state);
      change->details = g_variant_ref (details);
    }
  if (self->flush_id == 0)
    self->flush_id = g_timeout_add (CHANGE_WINDOW_MS, flush_changes_timeout, self);
}

static void
outbox_queue_service_dispose (GObject *object)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);

  g_clear_signal_handler (&self->changed_handler, self->queue);
  /* Exported no more: nobody is left to tell (see
   * outbox_queue_service_flush_changes()). */
  g_clear_handle_id (&self->flush_id, g_source_remove);
  g_queue_clear (&self->pending_order);
  g_clear_pointer (&self->pending, g_hash_table_unref);
  g_clear_handle_id (&self->trim_id, g_source_remove);
  G_OBJECT_CLASS (outbox_queue_service_parent_class)->dispose (object);
}

static void
outbox_queue_service_finalize (GObject *object)
{
  OutboxQueueService *self = OUTBOX_QUEUE_SERVICE (object);

  g_clear_object (&self->queue);
  g_clear_object (&self->delivery);
  G_OBJECT_CLASS (outbox_queue_service_parent_class)->finalize (object);
}

/* Calls go through the load gate (outbox-load-gate.h). */
static GDBusInterfaceVTable *
outbox_queue_service_get_vtable (GDBusInterfaceSkeleton *skeleton)
{
  GDBusInterfaceSkeletonClass *parent = G_DBUS_INTERFACE_SKELETON_CLASS (outbox_queue_service_parent_class);

  return outbox_load_gate_get_vtable (skeleton, parent->get_vtable (skeleton));
}

static void
outbox_queue_service_class_init (OutboxQueueServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = outbox_queue_service_dispose;
  object_class->finalize = outbox_queue_service_finalize;
  G_DBUS_INTERFACE_SKELETON_CLASS (klass)->get_vtable = outbox_queue_service_get_vtable;
}

static void
outbox_queue_service_init (OutboxQueueService *self)
{
}

OutboxQueueService *
outbox_queue_service_new (OutboxQueue *queue,
                          OutboxDelivery *delivery,
                          OutboxAccountStore *accounts)
{
  OutboxQueueService *self = g_object_new (OUTBOX_TYPE_QUEUE_SERVICE, NULL);

  self->queue = g_object_ref (queue);
  self->delivery = g_object_ref (delivery);
  self->accounts = accounts;
  outbox_dbus_queue_set_version (OUTBOX_DBUS_QUEUE (self), 1);
  g_object_bind_property (delivery, "online", self, "online", G_BINDING_SYNC_CREATE);
  /* The key is the change's own id. */
  self->pending = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, change_free);
  g_queue_init (&self->pending_order);
  self->changed_handler = g_signal_connect (queue, "message-changed",
                                            G_CALLBACK (on_message_changed), self);
  outbox_load_gate_attach (G_DBUS_INTERFACE_SKELETON (self), queue, must_wait_for_load);
  return self;
}
