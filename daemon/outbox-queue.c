/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <malloc.h>

#include "outbox-error.h"
#include "outbox-queue.h"
#include "outbox-smtp-dsn.h"

/* A burst of submissions leaves the heaps (the main one and the bus and
 * spool threads' arenas) full of freed message buffers between the records
 * that stay; every so many additions their free pages go back. */
#define ADDITIONS_PER_TRIM 1024

struct _OutboxQueue
{
  GObject parent_instance;

  OutboxSpool *spool;   /* (owned) */
  GSequence *order;     /* (owned) OutboxSpoolRecord (owned), by (created, id) */
  GHashTable *records;  /* (owned) id -> GSequenceIter in order */
  /* per OutboxQueueWork: account -> GSequence of IndexEntry (owned) */
  GHashTable *index[OUTBOX_QUEUE_N_WORK];
  /* per OutboxQueueWork: id -> GSequenceIter of its IndexEntry */
  GHashTable *filed[OUTBOX_QUEUE_N_WORK];
  /* id (owned) -> number of its saves not yet on disk */
  GHashTable *saving;
  /* ids (owned) whose last save failed: their record says more than the disk */
  GHashTable *unsaved;
  guint added_since_trim;
  OutboxSpoolLoader *loader; /* (owned) (nullable) while records are still being read */
  guint load_id;             /* the source reading them */
  guint loaded_from_files;   /* how many of them came from their files */
};

enum
{
  SIGNAL_MESSAGE_CHANGED,
  SIGNAL_DUE,
  SIGNAL_LOADED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (OutboxQueue, outbox_queue, G_TYPE_OBJECT)

static void
outbox_queue_finalize (GObject *object)
{
  OutboxQueue *self = OUTBOX_QUEUE (object);

  g_clear_handle_id (&self->load_id, g_source_remove);
  g_clear_pointer (&self->loader, outbox_spool_loader_free);
  g_clear_object (&self->spool);
  for (OutboxQueueWork work = 0; work < OUTBOX_QUEUE_N_WORK; work++)
    {
      g_clear_pointer (&self->filed[work], g_hash_table_unref);
      g_clear_pointer (&self->index[work], g_hash_table_unref);
    }
  g_clear_pointer (&self->records, g_hash_table_unref);
  g_clear_pointer (&self->order, g_sequence_free);
  g_clear_pointer (&self->saving, g_hash_table_unref);
  g_clear_pointer (&self->unsaved, g_hash_table_unref);
  G_OBJECT_CLASS (outbox_queue_parent_class)->finalize (object);
}

static void
outbox_queue_class_init (OutboxQueueClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = outbox_queue_finalize;

  signals[SIGNAL_MESSAGE_CHANGED] =
      g_signal_new ("message-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                    NULL, G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_VARIANT);
  signals[SIGNAL_DUE] = g_signal_new ("due", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                      NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_LOADED] = g_signal_new ("loaded", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                         NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
outbox_queue_init (OutboxQueue *self)
{
  self->order = g_sequence_new ((GDestroyNotify) outbox_spool_record_free);
  self->records = g_hash_table_new (g_str_hash, g_str_equal);
  self->saving = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->unsaved = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (OutboxQueueWork work = 0; work < OUTBOX_QUEUE_N_WORK; work++)
    {
      self->index[work] = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) g_sequence_free);
      self->filed[work] = g_hash_table_new (g_str_hash, g_str_equal);
    }
}
/* Work indexes
 *
 * Delivery and Sent copies each want the earliest due piece of work of an
 * account without walking the whole queue, which may hold 100,000
 * messages.  Each keeps, per account, the records that wait for it ordered
 * by the time they are due; a record is filed again whenever the queue
 * hears of a change (add, save, notify, reindex) and leaves when removed. */

typedef struct
{
  gint64 due;
  OutboxSpoolRecord *record; /* (unowned) */
} IndexEntry;

static gboolean
work_due_time (OutboxQueueWork work, const OutboxSpoolRecord *record, gint64 *out_due)
{
  if (work == OUTBOX_QUEUE_WORK_SENT_COPY)
    {
      *out_due = record->sent_copy_next;
      return record->state == OUTBOX_SPOOL_STATE_SENT && record->sent_copy == OUTBOX_SENT_COPY_PENDING;
    }
  switch (record->state)
    {
    case OUTBOX_SPOOL_STATE_QUEUED:
      *out_due = record->created;
      return TRUE;
    case OUTBOX_SPOOL_STATE_SCHEDULED:
      *out_due = record->send_at;
      return TRUE;
    case OUTBOX_SPOOL_STATE_DEFERRED:
      /* Without a planned attempt it waits for a password or a flush. */
      *out_due = record->next_attempt;
      return record->next_attempt != 0;
    case OUTBOX_SPOOL_STATE_HELD:
    case OUTBOX_SPOOL_STATE_SENDING:
    case OUTBOX_SPOOL_STATE_SENT:
    case OUTBOX_SPOOL_STATE_FAILED:
    default:
      return FALSE;
    }
}

static int
compare_entries (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const IndexEntry *ea = a;
  const IndexEntry *eb = b;

  if (ea->due != eb->due)
    return ea->due < eb->due ? -1 : 1;
  return strcmp (ea->record->id, eb->record->id);
}

static void
unfile (OutboxQueue *queue, OutboxQueueWork work, const char *id)
{
  GSequenceIter *iter = g_hash_table_lookup (queue->filed[work], id);
  const char *account;
  GSequence *entries;

  if (iter == NULL)
    return;
  account = ((IndexEntry *) g_sequence_get (iter))->record->account;
  entries = g_hash_table_lookup (queue->index[work], account);
  g_hash_table_remove (queue->filed[work], id);
  g_sequence_remove (iter);
  if (g_sequence_is_empty (entries))
    g_hash_table_remove (queue->index[work], account);
}

static void
file_record (OutboxQueue *queue, OutboxSpoolRecord *record)
{
  for (OutboxQueueWork work = 0; work < OUTBOX_QUEUE_N_WORK; work++)
    {
      GSequence *entries;
      IndexEntry *entry;
      gint64 due;

      unfile (queue, work, record->id);
      if (!work_due_time (work, record, &due))
        continue;
      entries = g_hash_table_lookup (queue->index[work], record->account);
      if (entries == NULL)
        {
          entries = g_sequence_new (g_free);
          g_hash_table_insert (queue->index[work], g_strdup (record->account), entries);
        }
      entry = g_new (IndexEntry, 1);
      entry->due = due;
      entry->record = record;
      g_hash_table_insert (queue->filed[work], record->id,
                           g_sequence_insert_sorted (entries, entry, compare_entries, NULL));
    }
}

static void
unfile_record (OutboxQueue *queue, const char *id)
{
  for (OutboxQueueWork work = 0; work < OUTBOX_QUEUE_N_WORK; work++)
    unfile (queue, work, id);
}

void
outbox_queue_reindex (OutboxQueue *queue, OutboxSpoolRecord *record)
{
  file_record (queue, record);
}

GPtrArray *
outbox_queue_work_accounts (OutboxQueue *queue, OutboxQueueWork work)
{
  GPtrArray *accounts = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init (&iter, queue->index[work]);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (accounts, g_strdup (key));
  return accounts;
}

OutboxSpoolRecord *
outbox_queue_next_work (OutboxQueue *queue, OutboxQueueWork work, const char *account, gint64 *out_due)
{
  GSequence *entries = g_hash_table_lookup (queue->index[work], account);
  IndexEntry *entry;

  if (entries == NULL)
    return NULL;
  entry = g_sequence_get (g_sequence_get_begin_iter (entries));
  if (out_due != NULL)
    *out_due = entry->due;
  return entry->record;
}

/* Loading
 *
 * The records are read in the main loop a slice at a time (from the
 * spool's index where it still holds, else from the files): between two slices the
 * daemon answers calls and delivers what is already known.  A slice stops
 * after LOAD_SLICE_USEC, so that no caller waits longer than that for the
 * loader; nothing in the queue waits for the load except what needs the
 * whole queue (see outbox_queue_is_loaded()).  Only the loader brings a
 * message listed at the start into memory, and no one else can change it
 * before: a message that is not in memory is not known to anyone but the
 * loader; a message submitted meanwhile is the queue's from its commit on,
 * and the loader leaves it alone (see outbox_spool_loader_new()). */

#define LOAD_SLICE_USEC 4000
#define LOAD_STEP 64

static int compare_records (gconstpointer a, gconstpointer b, gpointer user_data);

static void
insert_loaded (OutboxQueue *self, OutboxSpoolRecord *record)
{
  GSequenceIter *end = g_sequence_get_end_iter (self->order);
  GSequenceIter *iter;

  /* Read oldest first: most go at the end, without a search. */
  if (g_sequence_iter_is_begin (end)
      || compare_records (g_sequence_get (g_sequence_iter_prev (end)), record, NULL) < 0)
    iter = g_sequence_append (self->order, record);
  else
    iter = g_sequence_insert_sorted (self->order, record, compare_records, NULL);
  g_hash_table_insert (self->records, record->id, iter);
  file_record (self, record);
}

static void
load_finished (OutboxQueue *self)
{
  GPtrArray *quarantined = outbox_spool_loader_get_quarantined (self->loader);

  for (guint i = 0; i < quarantined->len; i++)
    g_warning ("Spool entry %s was set aside in %s/quarantine (the reason is logged above); "
               "nothing of it was sent",
               (const char *) g_ptr_array_index (quarantined, i), outbox_spool_get_path (self->spool));
  self->loaded_from_files = outbox_spool_loader_get_from_files (self->loader);
  g_info ("Queue loaded: %u messages, %u of them from the index", g_hash_table_size (self->records),
          outbox_spool_loader_get_from_index (self->loader));
  g_clear_pointer (&self->loader, outbox_spool_loader_free);
#ifdef __GLIBC__
  /* Reading a big queue leaves the heap full of freed buffers between the
   * records that stay: give those pages back. */
  malloc_trim (0);
#endif
  g_signal_emit (self, signals[SIGNAL_LOADED], 0);
}

static gboolean
is_known (const char *id, gpointer user_data)
{
  return outbox_queue_lookup (user_data, id) != NULL;
}

static gboolean
load_slice (gpointer user_data)
{
  OutboxQueue *self = user_data;
  gint64 deadline = g_get_monotonic_time () + LOAD_SLICE_USEC;
  guint added = 0;

  while (!outbox_spool_loader_is_done (self->loader) && g_get_monotonic_time () < deadline)
    {
      g_autoptr (GPtrArray) records = outbox_spool_loader_next (self->loader, LOAD_STEP);

      g_ptr_array_set_free_func (records, NULL);
      for (guint i = 0; i < records->len; i++)
        insert_loaded (self, g_ptr_array_index (records, i));
      added += records->len;
    }
  if (added > 0)
    outbox_queue_emit_due (self);
  if (!outbox_spool_loader_is_done (self->loader))
    return G_SOURCE_CONTINUE;
  self->load_id = 0;
  load_finished (self);
  return G_SOURCE_REMOVE;
}

OutboxQueue *
outbox_queue_new (OutboxSpool *spool, GError **error)
{
  g_autoptr (OutboxQueue) self = g_object_new (OUTBOX_TYPE_QUEUE, NULL);

  self->spool = g_object_ref (spool);
  self->loader = outbox_spool_loader_new (spool, is_known, self, error);
  if (self->loader == NULL)
    return NULL;
  self->load_id = g_idle_add_full (G_PRIORITY_DEFAULT, load_slice, self, NULL);
  return g_steal_pointer (&self);
}

gboolean
outbox_queue_is_loaded (OutboxQueue *queue)
{
  return queue->loader == NULL;
}

guint
outbox_queue_get_loaded_from_files (OutboxQueue *queue)
{
  return queue->loaded_from_files;
}

OutboxSpoolRecord *
outbox_queue_peek (OutboxQueue *queue, const char *id, GError **error)
{
  OutboxSpoolRecord *record = outbox_queue_lookup (queue, id);

  if (record != NULL)
    return outbox_spool_record_copy (record);
  if (outbox_queue_is_loaded (queue))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE,
                   "There is no message %s in the queue", id);
      return NULL;
    }
  return outbox_spool_read (queue->spool, id, error);
}

OutboxSpool *
outbox_queue_get_spool (OutboxQueue *queue)
{
  return queue->spool;
}

OutboxSpoolRecord *
outbox_queue_lookup (OutboxQueue *queue, const char *id)
{
  GSequenceIter *iter = g_hash_table_lookup (queue->records, id);

  return iter ? g_sequence_get (iter) : NULL;
}

static int
compare_records (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const OutboxSpoolRecord *ra = a;
  const OutboxSpoolRecord *rb = b;

  if (ra->created != rb->created)
    return ra->created < rb->created ? -1 : 1;
  return strcmp (ra->id, rb->id);
}

GPtrArray *
outbox_queue_list (OutboxQueue *queue)
{
  GPtrArray *list = g_ptr_array_sized_new (g_hash_table_size (queue->records));

  /* Kept in order as records come and go: listing never sorts. */
  for (GSequenceIter *iter = g_sequence_get_begin_iter (queue->order); !g_sequence_iter_is_end (iter);
       iter = g_sequence_iter_next (iter))
    g_ptr_array_add (list, g_sequence_get (iter));
  return list;
}

GSequenceIter *
outbox_queue_iter_after (OutboxQueue *queue, gint64 created, const char *id)
{
  OutboxSpoolRecord key = { .created = created, .id = (char *) id };
  GSequenceIter *iter;

  if (id == NULL)
    return g_sequence_get_begin_iter (queue->order);
  /* The place the key would take, whether or not that message still
   * exists, then past it. */
  iter = g_sequence_search (queue->order, &key, compare_records, NULL);
  while (!g_sequence_iter_is_end (iter) && compare_records (g_sequence_get (iter), &key, NULL) <= 0)
    iter = g_sequence_iter_next (iter);
  return iter;
}

/* Forgets a record the spool no longer has. */
static void
forget_record (OutboxQueue *queue, const char *id)
{
  GSequenceIter *iter = g_hash_table_lookup (queue->records, id);

  if (iter == NULL)
    return;
  unfile_record (queue, id);
  g_hash_table_remove (queue->unsaved, id);
  g_hash_table_remove (queue->records, id);
  g_sequence_remove (iter);
}

static void
emit_changed (OutboxQueue *queue, const char *id, const char *state, GVariant *details)
{
  g_autoptr (GVariant) sunk = details != NULL ? g_variant_ref_sink (details) : NULL;

  g_signal_emit (queue, signals[SIGNAL_MESSAGE_CHANGED], 0, id, state, sunk);
}

void
outbox_queue_notify (OutboxQueue *queue, OutboxSpoolRecord *record)
{
  file_record (queue, record);
  /* Whoever wants the dictionary builds it from the record, when needed. */
  emit_changed (queue, record->id, outbox_spool_state_to_string (record->state), NULL);
}

void
outbox_queue_add (OutboxQueue *queue, OutboxSpoolRecord *record)
{
  record = outbox_spool_record_compact (record);
  /* The loader may have read the file of a commit that had reached queue/
   * but not told its caller yet; what the commit says is the same. */
  forget_record (queue, record->id);
#ifdef __GLIBC__
  if (++queue->added_since_trim == ADDITIONS_PER_TRIM)
    {
      queue->added_since_trim = 0;
      malloc_trim (0);
    }
#endif
  g_hash_table_insert (queue->records, record->id,
                       g_sequence_insert_sorted (queue->order, record, compare_records, NULL));
  outbox_queue_notify (queue, record);
  outbox_queue_emit_due (queue);
}

gboolean
outbox_queue_save (OutboxQueue *queue, OutboxSpoolRecord *record, GError **error)
{
  file_record (queue, record);
  if (!outbox_spool_save (queue->spool, record, error))
    {
      g_hash_table_add (queue->unsaved, g_strdup (record->id));
      return FALSE;
    }
  g_hash_table_remove (queue->unsaved, record->id);
  outbox_queue_notify (queue, record);
  return TRUE;
}

/* A save writes the whole record: one that succeeds brings the disk level
 * with what the record said when it was asked for. */
static void
save_ended (OutboxQueue *queue, const char *id, gboolean saved)
{
  guint count = GPOINTER_TO_UINT (g_hash_table_lookup (queue->saving, id));

  if (count > 1)
    g_hash_table_replace (queue->saving, g_strdup (id), GUINT_TO_POINTER (count - 1));
  else
    g_hash_table_remove (queue->saving, id);
  if (saved)
    g_hash_table_remove (queue->unsaved, id);
  else if (outbox_queue_lookup (queue, id) != NULL)
    g_hash_table_add (queue->unsaved, g_strdup (id));
}

gboolean
outbox_queue_is_ahead_of_disk (OutboxQueue *queue, const char *id)
{
  return g_hash_table_contains (queue->saving, id) || g_hash_table_contains (queue->unsaved, id);
}

static void
save_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxQueue *queue = g_task_get_source_object (task);
  const char *id = g_task_get_task_data (task);
  OutboxSpoolRecord *record;
  GError *error = NULL;

  if (!outbox_spool_save_finish (OUTBOX_SPOOL (source), result, &error))
    {
      save_ended (queue, id, FALSE);
      g_task_return_error (task, error);
      return;
    }
  save_ended (queue, id, TRUE);
  record = outbox_queue_lookup (queue, id);
  if (record != NULL)
    outbox_queue_notify (queue, record);
  g_task_return_boolean (task, TRUE);
}

void
outbox_queue_save_async (OutboxQueue *queue,
                         OutboxSpoolRecord *record,
                         GCancellable *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer user_data)
{
  GTask *task = g_task_new (queue, cancellable, callback, user_data);
  guint count;

  g_task_set_source_tag (task, outbox_queue_save_async);
  g_task_set_task_data (task, g_strdup (record->id), g_free);
  file_record (queue, record);
  count = GPOINTER_TO_UINT (g_hash_table_lookup (queue->saving, record->id));
  g_hash_table_replace (queue->saving, g_strdup (record->id), GUINT_TO_POINTER (count + 1));
  outbox_spool_save_async (queue->spool, record, cancellable, save_done, task);
}

gboolean
outbox_queue_save_finish (OutboxQueue *queue, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, queue), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, outbox_queue_save_async), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
outbox_queue_remove (OutboxQueue *queue, const char *id, GError **error)
{
  g_autofree char *owned_id = g_strdup (id);

  if (!outbox_spool_remove (queue->spool, id, error))
    return FALSE;
  forget_record (queue, owned_id);
  emit_changed (queue, owned_id, "removed", g_variant_new ("a{sv}", NULL));
  return TRUE;
}

gboolean
outbox_queue_quarantine (OutboxQueue *queue, const char *id, const char *reason, GError **error)
{
  g_autofree char *owned_id = g_strdup (id);
  GVariantBuilder details;

  if (!outbox_spool_quarantine (queue->spool, id, error))
    return FALSE;
  forget_record (queue, owned_id);
  g_warning ("Message %s was set aside in %s/quarantine: %s", owned_id,
             outbox_spool_get_path (queue->spool), reason);
  g_variant_builder_init (&details, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&details, "{sv}", "quarantined", g_variant_new_string (reason));
  emit_changed (queue, owned_id, "removed", g_variant_builder_end (&details));
  return TRUE;
}

static void
pruned (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OutboxQueue *queue = user_data; /* (transfer full) */
  g_autoptr (GError) error = NULL;

  if (!outbox_spool_remove_finish (OUTBOX_SPOOL (source), result, &error))
    g_warning ("Could not remove a sent message: %s", error->message);
  g_object_unref (queue);
}

void
outbox_queue_prune_sent (OutboxQueue *queue, gint64 keep_seconds)
{
  g_autoptr (GPtrArray) records = outbox_queue_list (queue);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  /* Removed together, in as few flushes as the disk allows. */
  for (guint i = 0; i < records->len; i++)
    {
      const OutboxSpoolRecord *record = g_ptr_array_index (records, i);
      g_autofree char *id = NULL;

      if (record->state != OUTBOX_SPOOL_STATE_SENT || now - record->finished < keep_seconds
          || record->sent_copy == OUTBOX_SENT_COPY_PENDING)
        continue;
      id = g_strdup (record->id);
      outbox_spool_remove_async (queue->spool, id, NULL, pruned, g_object_ref (queue));
      forget_record (queue, id);
      emit_changed (queue, id, "removed", g_variant_new ("a{sv}", NULL));
    }
}

void
outbox_queue_emit_due (OutboxQueue *queue)
{
  g_signal_emit (queue, signals[SIGNAL_DUE], 0);
}

gboolean
outbox_spool_state_is_pending (OutboxSpoolState state)
{
  return state != OUTBOX_SPOOL_STATE_SENT;
}

gboolean
outbox_recipient_is_pending (const OutboxRecipient *rcpt)
{
  return rcpt->state == OUTBOX_RECIPIENT_STATE_QUEUED
         || rcpt->state == OUTBOX_RECIPIENT_STATE_DEFERRED;
}

/* A message's dictionary is built at every change of it, for the
 * MessageChanged signal, and for every message of a listing: written
 * straight in its serialised form (see outbox-variant-writer.h). */
static void
add_string (OutboxVariantWriter *writer, const char *key, const char *value)
{
  if (value != NULL)
    outbox_variant_writer_add_string (writer, key, value);
}

static void
add_time (OutboxVariantWriter *writer, const char *key, gint64 value)
{
  if (value != 0)
    outbox_variant_writer_add_int64 (writer, key, value);
}

static void
write_recipients (OutboxVariantWriter *writer, const OutboxSpoolRecord *record)
{
  outbox_variant_writer_begin_dict_array (writer, "recipients");
  for (guint i = 0; i < record->n_recipients; i++)
    {
      const OutboxRecipient *rcpt = &record->recipients[i];

      outbox_variant_writer_begin_dict (writer);
      add_string (writer, "address", rcpt->address);
      add_string (writer, "state", outbox_recipient_state_to_string (rcpt->state));
      if (rcpt->reply_code != 0)
        outbox_variant_writer_add_uint32 (writer, "reply-code", rcpt->reply_code);
      add_string (writer, "reply", rcpt->reply);
      outbox_variant_writer_end_dict (writer);
    }
  outbox_variant_writer_end_array (writer);
}

/* What the message asked of DSN, and whether a server could not do it. */
static void
write_dsn (OutboxVariantWriter *writer, const OutboxSpoolRecord *record)
{
  if (record->dsn_notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_auto (GStrv) words = outbox_dsn_notify_to_words (record->dsn_notify);

      outbox_variant_writer_add_strv (writer, "notify", (const char *const *) words);
    }
  add_string (writer, "ret", outbox_dsn_ret_to_string (record->dsn_ret));
  add_string (writer, "envid", record->dsn_envid);
  if (record->dsn_required >= 0)
    outbox_variant_writer_add_boolean (writer, "dsn-required", record->dsn_required != 0);
  if (record->dsn_not_offered)
    outbox_variant_writer_add_boolean (writer, "dsn-not-offered", TRUE);
}

void
outbox_queue_write_record (OutboxVariantWriter *writer, const OutboxSpoolRecord *record)
{
  outbox_variant_writer_begin_dict (writer);
  add_string (writer, "id", record->id);
  add_string (writer, "state", outbox_spool_state_to_string (record->state));
  add_string (writer, "account", record->account);
  add_string (writer, "from", record->from);
  outbox_variant_writer_add_uint64 (writer, "size", record->size);
  add_time (writer, "created", record->created);
  add_time (writer, "send-at", record->send_at);
  add_time (writer, "next-attempt", record->next_attempt);
  outbox_variant_writer_add_uint32 (writer, "attempts", record->attempts);
  add_string (writer, "message-id", record->message_id);
  add_string (writer, "subject", record->subject);
  add_string (writer, "last-reply", record->last_reply);
  if (record->unknown_outcome)
    outbox_variant_writer_add_boolean (writer, "unknown-outcome", TRUE);
  add_string (writer, "sent-copy", outbox_sent_copy_state_to_string (record->sent_copy));
  add_string (writer, "sent-copy-reply", record->sent_copy_reply);
  if (record->sent_copy != OUTBOX_SENT_COPY_NONE)
    outbox_variant_writer_add_uint32 (writer, "sent-copy-attempts", record->sent_copy_attempts);
  if (record->sent_copy == OUTBOX_SENT_COPY_PENDING)
    add_time (writer, "sent-copy-next", record->sent_copy_next);
  write_dsn (writer, record);
  write_recipients (writer, record);
  outbox_variant_writer_end_dict (writer);
}

GVariant *
outbox_queue_record_to_variant (const OutboxSpoolRecord *record)
{
  g_autoptr (OutboxVariantWriter) writer = outbox_variant_writer_new ();
  g_autoptr (GBytes) bytes = NULL;

  outbox_queue_write_record (writer, record);
  bytes = outbox_variant_writer_steal_bytes (writer);
  return g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, TRUE);
}

/* State changes */

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static gboolean
refuse (GError **error, const OutboxSpoolRecord *record, const char *what)
{
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_STATE, "Message %s is %s%s", record->id,
               outbox_spool_state_to_string (record->state), what);
  return FALSE;
}

static gboolean
check_record_change (const OutboxSpoolRecord *record, OutboxQueueChange change, GError **error)
{
  if (record->state == OUTBOX_SPOOL_STATE_SENDING)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_STATE,
                   "Message %s is being sent right now; try again in a moment", record->id);
      return FALSE;
    }
  switch (change)
    {
    case OUTBOX_QUEUE_CHANGE_HOLD:
      if (record->state == OUTBOX_SPOOL_STATE_SENT || record->state == OUTBOX_SPOOL_STATE_FAILED)
        return refuse (error, record, "; nothing to hold");
      return TRUE;
    case OUTBOX_QUEUE_CHANGE_RELEASE:
      if (record->state != OUTBOX_SPOOL_STATE_HELD)
        return refuse (error, record, ", not held");
      return TRUE;
    case OUTBOX_QUEUE_CHANGE_RETRY:
      if (record->state == OUTBOX_SPOOL_STATE_HELD)
        return refuse (error, record, "; release it instead");
      if (record->state == OUTBOX_SPOOL_STATE_SENT && record->sent_copy != OUTBOX_SENT_COPY_FAILED)
        return refuse (error, record, "; nothing to retry");
      return TRUE;
    case OUTBOX_QUEUE_CHANGE_CANCEL:
      return TRUE;
    default:
      g_assert_not_reached ();
    }
}

gboolean
outbox_queue_check_change (OutboxQueue *queue, const char *id, OutboxQueueChange change, GError **error)
{
  OutboxSpoolRecord *record = outbox_queue_lookup (queue, id);

  if (record == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE,
                   "No message with id “%s”; see outbox queue --all", id);
      return FALSE;
    }
  return check_record_change (record, change, error);
}

/* Failed recipients get another chance; recipients already sent never do. */
static void
reset_for_retry (OutboxSpoolRecord *record)
{
  if (record->state == OUTBOX_SPOOL_STATE_SENT)
    {
      record->sent_copy = OUTBOX_SENT_COPY_PENDING;
      record->sent_copy_next = 0;
      record->sent_copy_attempts = 0;
      /* The copy's give-up time counts from here. */
      record->finished = now_seconds ();
      return;
    }
  for (guint i = 0; i < record->n_recipients; i++)
    {
      OutboxRecipient *rcpt = outbox_spool_record_get_recipient (record, i);
      if (rcpt->state == OUTBOX_RECIPIENT_STATE_FAILED)
        rcpt->state = OUTBOX_RECIPIENT_STATE_QUEUED;
    }
  record->state = OUTBOX_SPOOL_STATE_QUEUED;
  record->next_attempt = 0;
  record->first_failure = 0;
  record->finished = 0;
}

static void
apply_change (OutboxSpoolRecord *record, OutboxQueueChange change)
{
  switch (change)
    {
    case OUTBOX_QUEUE_CHANGE_HOLD:
      record->state = OUTBOX_SPOOL_STATE_HELD;
      break;
    case OUTBOX_QUEUE_CHANGE_RELEASE:
      record->state = record->send_at > now_seconds () ? OUTBOX_SPOOL_STATE_SCHEDULED
                                                        : OUTBOX_SPOOL_STATE_QUEUED;
      break;
    case OUTBOX_QUEUE_CHANGE_RETRY:
      reset_for_retry (record);
      break;
    case OUTBOX_QUEUE_CHANGE_CANCEL:
    default:
      g_assert_not_reached ();
    }
}

static void
change_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxQueue *queue = OUTBOX_QUEUE (source);
  OutboxQueueChange change = GPOINTER_TO_INT (g_task_get_task_data (task));
  GError *error = NULL;

  if (!outbox_queue_save_finish (queue, result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (change != OUTBOX_QUEUE_CHANGE_HOLD)
    outbox_queue_emit_due (queue);
  g_task_return_boolean (task, TRUE);
}

void
outbox_queue_change_async (OutboxQueue *queue,
                           const char *id,
                           OutboxQueueChange change,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (queue, cancellable, callback, user_data);
  OutboxSpoolRecord *record;
  GError *error = NULL;

  g_task_set_source_tag (task, outbox_queue_change_async);
  g_task_set_task_data (task, GINT_TO_POINTER (change), NULL);
  if (!outbox_queue_check_change (queue, id, change, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (change == OUTBOX_QUEUE_CHANGE_CANCEL)
    {
      if (!outbox_queue_remove (queue, id, &error))
        g_task_return_error (task, error);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }
  record = outbox_queue_lookup (queue, id);
  apply_change (record, change);
  outbox_queue_save_async (queue, record, cancellable, change_saved, g_steal_pointer (&task));
}

gboolean
outbox_queue_change_finish (OutboxQueue *queue, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, queue), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, outbox_queue_change_async), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
outbox_queue_begin_attempt (OutboxQueue *queue, OutboxSpoolRecord *record)
{
  g_return_if_fail (record->state == OUTBOX_SPOOL_STATE_QUEUED
                    || record->state == OUTBOX_SPOOL_STATE_SCHEDULED
                    || record->state == OUTBOX_SPOOL_STATE_DEFERRED);
  record->state = OUTBOX_SPOOL_STATE_SENDING;
  record->attempts++;
  outbox_queue_notify (queue, record);
}

static void
give_up_pending (OutboxSpoolRecord *record, const OutboxRetryPolicy *policy)
{
  g_autofree char *give_up = outbox_retry_format_duration (policy->give_up_after);

  for (guint i = 0; i < record->n_recipients; i++)
    {
      OutboxRecipient *rcpt = outbox_spool_record_get_recipient (record, i);
      char *reply;

      if (!outbox_recipient_is_pending (rcpt))
        continue;
      reply = g_strdup_printf ("gave up after %s of trying; last reply: %s", give_up,
                               rcpt->reply ? rcpt->reply : "none");
      g_free (rcpt->reply);
      rcpt->reply = reply;
      rcpt->state = OUTBOX_RECIPIENT_STATE_FAILED;
    }
}

void
outbox_queue_settle (OutboxQueue *queue,
                     OutboxSpoolRecord *record,
                     const OutboxRetryPolicy *policy,
                     gint64 retry_at,
                     gboolean wants_sent_copy)
{
  gboolean any_pending = FALSE, any_failed = FALSE;
  gint64 now = now_seconds ();

  for (guint i = 0; i < record->n_recipients; i++)
    {
      OutboxRecipient *rcpt = outbox_spool_record_get_recipient (record, i);
      any_pending |= outbox_recipient_is_pending (rcpt);
      any_failed |= rcpt->state == OUTBOX_RECIPIENT_STATE_FAILED;
    }
  if (any_pending && record->first_failure == 0)
    record->first_failure = now;
  if (any_pending && outbox_retry_gives_up (policy, record->first_failure, now))
    {
      give_up_pending (record, policy);
      any_pending = FALSE;
      any_failed = TRUE;
    }
  record->next_attempt = 0;
  if (any_pending)
    {
      record->state = OUTBOX_SPOOL_STATE_DEFERRED;
      if (retry_at == OUTBOX_QUEUE_RETRY_BACKOFF)
        record->next_attempt = now + outbox_retry_backoff (policy, record->attempts);
      else
        record->next_attempt = retry_at;
      return;
    }
  record->state = any_failed ? OUTBOX_SPOOL_STATE_FAILED : OUTBOX_SPOOL_STATE_SENT;
  record->first_failure = 0;
  record->network_deferred = FALSE;
  record->finished = now;
  /* "sent" and the pending copy are written together: a copy can only ever
   * start from a message already recorded as sent. */
  if (record->state == OUTBOX_SPOOL_STATE_SENT && record->sent_copy == OUTBOX_SENT_COPY_NONE
      && wants_sent_copy)
    {
      record->sent_copy = OUTBOX_SENT_COPY_PENDING;
      record->sent_copy_next = 0;
    }
}

void
outbox_queue_hold_broken (OutboxQueue *queue, OutboxSpoolRecord *record, const char *reason)
{
  record->state = OUTBOX_SPOOL_STATE_HELD;
  g_free (record->last_reply);
  record->last_reply = g_strdup (reason);
}

static gboolean
is_due_again (const OutboxSpoolRecord *record, OutboxQueueDue which)
{
  if (record->state != OUTBOX_SPOOL_STATE_DEFERRED)
    return FALSE;
  switch (which)
    {
    case OUTBOX_QUEUE_DUE_NETWORK:
      return record->network_deferred;
    case OUTBOX_QUEUE_DUE_WAITING_FOR_USER:
      return record->next_attempt == 0;
    case OUTBOX_QUEUE_DUE_DEFERRED:
    default:
      return TRUE;
    }
}

void
outbox_queue_make_due (OutboxQueue *queue, const char *account, OutboxQueueDue which)
{
  gint64 now = now_seconds ();

  for (GSequenceIter *iter = g_sequence_get_begin_iter (queue->order); !g_sequence_iter_is_end (iter);
       iter = g_sequence_iter_next (iter))
    {
      OutboxSpoolRecord *record = g_sequence_get (iter);

      if ((account != NULL && strcmp (record->account, account) != 0) || !is_due_again (record, which))
        continue;
      record->next_attempt = now;
      file_record (queue, record);
    }
}

void
outbox_queue_settle_copy (OutboxQueue *queue,
                          OutboxSpoolRecord *record,
                          const GError *error,
                          const OutboxRetryPolicy *policy)
{
  gint64 now = now_seconds ();

  record->sent_copy_attempts++;
  g_free (record->sent_copy_reply);
  record->sent_copy_reply = error ? g_strdup (error->message) : NULL;
  if (error == NULL)
    record->sent_copy = OUTBOX_SENT_COPY_SAVED;
  else if (outbox_retry_gives_up (policy, record->finished, now))
    record->sent_copy = OUTBOX_SENT_COPY_FAILED;
  else
    {
      record->sent_copy = OUTBOX_SENT_COPY_PENDING;
      record->sent_copy_next = now + outbox_retry_backoff (policy, record->sent_copy_attempts);
    }
}

void
outbox_queue_fail_copy (OutboxQueue *queue, OutboxSpoolRecord *record, const char *reason)
{
  record->sent_copy = OUTBOX_SENT_COPY_FAILED;
  g_free (record->sent_copy_reply);
  record->sent_copy_reply = g_strdup (reason);
}
