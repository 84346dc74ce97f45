/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "outbox-error.h"
#include "outbox-queue.h"

/* The queue tells a change of a record ("message-changed") only once the
 * change is on disk, and says whose record is ahead of the disk: the
 * D-Bus side waits for those before it tells their state (see
 * outbox-queue-service.c). */

typedef struct
{
  char *dir;
  OutboxSpool *spool;
  OutboxQueue *queue;
  GPtrArray *told; /* (element-type utf8) "ID STATE" of each message-changed */
} Fixture;

static void
on_message_changed (OutboxQueue *queue,
                    const char *id,
                    const char *state,
                    GVariant *details,
                    gpointer user_data)
{
  Fixture *fixture = user_data;

  g_ptr_array_add (fixture->told, g_strdup_printf ("%s %s", id, state));
}

static void
fixture_set_up (Fixture *fixture,
                gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;

  fixture->dir = g_dir_make_tmp ("outbox-queue-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (fixture->dir, "spool", NULL);
  fixture->spool = outbox_spool_open (path, &error);
  g_assert_no_error (error);
  fixture->queue = outbox_queue_new (fixture->spool, &error);
  g_assert_no_error (error);
  fixture->told = g_ptr_array_new_with_free_func (g_free);
  g_signal_connect (fixture->queue, "message-changed", G_CALLBACK (on_message_changed), fixture);
}

static void
remove_tree (const char *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      remove_tree (child);
    }
  g_clear_pointer (&dir, g_dir_close);
  g_remove (path);
}

static void
fixture_tear_down (Fixture *fixture,
                   gconstpointer data)
{
  g_clear_object (&fixture->queue);
  g_clear_object (&fixture->spool);
  g_clear_pointer (&fixture->told, g_ptr_array_unref);
  remove_tree (fixture->dir);
  g_free (fixture->dir);
}

/* A held message, committed to the spool and added to the queue. */
static OutboxSpoolRecord *
add_message (Fixture *fixture)
{
  static const char data[] = "Subject: queued\r\n\r\nHello.\r\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpoolDraft) draft = outbox_spool_draft_new (fixture->spool, &error);
  g_autofree char *sha256 = g_compute_checksum_for_string (G_CHECKSUM_SHA256, data, -1);
  OutboxSpoolRecord *record = outbox_spool_record_new ();
  char *id;

  g_assert_no_error (error);
  g_output_stream_write_all (outbox_spool_draft_get_stream (draft), data, strlen (data), NULL, NULL, &error);
  g_assert_no_error (error);
  record->id = g_strdup (outbox_spool_draft_get_id (draft));
  record->account = g_strdup ("work");
  record->from = g_strdup ("a@example.org");
  record->state = OUTBOX_SPOOL_STATE_HELD;
  record->created = g_get_real_time () / G_USEC_PER_SEC;
  record->size = strlen (data);
  g_assert_true (outbox_spool_sha256_from_hex (sha256, record->sha256));
  outbox_spool_record_add_recipient (record, "b@example.org");
  outbox_spool_draft_commit (draft, record, &error);
  g_assert_no_error (error);
  id = g_strdup (record->id);
  outbox_queue_add (fixture->queue, record);
  record = outbox_queue_lookup (fixture->queue, id);
  g_free (id);
  g_ptr_array_set_size (fixture->told, 0);
  return record;
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* Saves @record as it now is and waits for the save to end. */
static gboolean
save (Fixture *fixture, OutboxSpoolRecord *record, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  outbox_queue_save_async (fixture->queue, record, NULL, store_result, &result);
  g_assert_true (outbox_queue_is_ahead_of_disk (fixture->queue, record->id));
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return outbox_queue_save_finish (fixture->queue, result, error);
}

/* Saves @record with the spool failing to write it. */
static void
fail_to_save (Fixture *fixture, OutboxSpoolRecord *record)
{
  g_autoptr(GError) error = NULL;

  outbox_spool_set_fault (fixture->spool, OUTBOX_SPOOL_FAULT_WRITE_RECORD);
  g_assert_false (save (fixture, record, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  outbox_spool_set_fault (fixture->spool, OUTBOX_SPOOL_FAULT_NONE);
}

static void
assert_told (Fixture *fixture, const char *expected)
{
  g_assert_cmpuint (fixture->told->len, ==, expected != NULL ? 1 : 0);
  if (expected != NULL)
    g_assert_cmpstr (g_ptr_array_index (fixture->told, 0), ==, expected);
  g_ptr_array_set_size (fixture->told, 0);
}

static void
test_ahead_while_saving (Fixture *fixture,
                         gconstpointer data)
{
  OutboxSpoolRecord *record = add_message (fixture);
  g_autofree char *queued = g_strdup_printf ("%s queued", record->id);
  g_autoptr(GError) error = NULL;

  g_assert_false (outbox_queue_is_ahead_of_disk (fixture->queue, record->id));
  record->state = OUTBOX_SPOOL_STATE_QUEUED;
  g_assert_true (save (fixture, record, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_queue_is_ahead_of_disk (fixture->queue, record->id));
  assert_told (fixture, queued);
}

static void
test_ahead_after_failed_save (Fixture *fixture,
                              gconstpointer data)
{
  OutboxSpoolRecord *record = add_message (fixture);
  g_autofree char *queued = g_strdup_printf ("%s queued", record->id);
  g_autoptr(GError) error = NULL;

  record->state = OUTBOX_SPOOL_STATE_QUEUED;
  fail_to_save (fixture, record);
  /* Nothing was told, and the record still says more than the disk. */
  assert_told (fixture, NULL);
  g_assert_true (outbox_queue_is_ahead_of_disk (fixture->queue, record->id));

  /* A save that succeeds brings the disk level with it. */
  g_assert_true (save (fixture, record, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_queue_is_ahead_of_disk (fixture->queue, record->id));
  assert_told (fixture, queued);
}

static void
test_removed_is_not_ahead (Fixture *fixture,
                           gconstpointer data)
{
  OutboxSpoolRecord *record = add_message (fixture);
  g_autofree char *id = g_strdup (record->id);
  g_autofree char *removed = g_strdup_printf ("%s removed", id);
  g_autoptr(GError) error = NULL;

  record->state = OUTBOX_SPOOL_STATE_QUEUED;
  fail_to_save (fixture, record);
  g_assert_true (outbox_queue_remove (fixture->queue, id, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_queue_is_ahead_of_disk (fixture->queue, id));
  assert_told (fixture, removed);
}

/* State changes: one case per rule of outbox-queue.h, each refused one
 * named after what it refuses. */
typedef struct
{
  const char *path;
  OutboxSpoolState from;
  OutboxSentCopyState copy;
  OutboxQueueChange change;
  const char *refusal;      /* NULL: allowed */
  OutboxSpoolState to;    /* when allowed (cancel: removed) */
  OutboxSentCopyState copy_to;
} ChangeCase;

static const ChangeCase change_cases[] = {
  { "/queue/change/hold/queued", OUTBOX_SPOOL_STATE_QUEUED, 0, OUTBOX_QUEUE_CHANGE_HOLD, NULL,
    OUTBOX_SPOOL_STATE_HELD },
  { "/queue/change/hold/deferred", OUTBOX_SPOOL_STATE_DEFERRED, 0, OUTBOX_QUEUE_CHANGE_HOLD, NULL,
    OUTBOX_SPOOL_STATE_HELD },
  { "/queue/change/hold/refused-sent", OUTBOX_SPOOL_STATE_SENT, 0, OUTBOX_QUEUE_CHANGE_HOLD,
    "is sent; nothing to hold" },
  { "/queue/change/hold/refused-failed", OUTBOX_SPOOL_STATE_FAILED, 0, OUTBOX_QUEUE_CHANGE_HOLD,
    "is failed; nothing to hold" },
  { "/queue/change/hold/refused-sending", OUTBOX_SPOOL_STATE_SENDING, 0, OUTBOX_QUEUE_CHANGE_HOLD,
    "is being sent right now; try again in a moment" },
  { "/queue/change/release/held", OUTBOX_SPOOL_STATE_HELD, 0, OUTBOX_QUEUE_CHANGE_RELEASE, NULL,
    OUTBOX_SPOOL_STATE_QUEUED },
  { "/queue/change/release/refused-queued", OUTBOX_SPOOL_STATE_QUEUED, 0,
    OUTBOX_QUEUE_CHANGE_RELEASE, "is queued, not held" },
  { "/queue/change/release/refused-deferred", OUTBOX_SPOOL_STATE_DEFERRED, 0,
    OUTBOX_QUEUE_CHANGE_RELEASE, "is deferred, not held" },
  { "/queue/change/retry/failed", OUTBOX_SPOOL_STATE_FAILED, 0, OUTBOX_QUEUE_CHANGE_RETRY, NULL,
    OUTBOX_SPOOL_STATE_QUEUED },
  { "/queue/change/retry/deferred", OUTBOX_SPOOL_STATE_DEFERRED, 0, OUTBOX_QUEUE_CHANGE_RETRY,
    NULL, OUTBOX_SPOOL_STATE_QUEUED },
  { "/queue/change/retry/sent-copy-failed", OUTBOX_SPOOL_STATE_SENT, OUTBOX_SENT_COPY_FAILED,
    OUTBOX_QUEUE_CHANGE_RETRY, NULL, OUTBOX_SPOOL_STATE_SENT, OUTBOX_SENT_COPY_PENDING },
  { "/queue/change/retry/refused-sent", OUTBOX_SPOOL_STATE_SENT, OUTBOX_SENT_COPY_SAVED,
    OUTBOX_QUEUE_CHANGE_RETRY, "is sent; nothing to retry" },
  { "/queue/change/retry/refused-held", OUTBOX_SPOOL_STATE_HELD, 0, OUTBOX_QUEUE_CHANGE_RETRY,
    "is held; release it instead" },
  { "/queue/change/retry/refused-sending", OUTBOX_SPOOL_STATE_SENDING, 0,
    OUTBOX_QUEUE_CHANGE_RETRY, "is being sent right now" },
  { "/queue/change/cancel/failed", OUTBOX_SPOOL_STATE_FAILED, 0, OUTBOX_QUEUE_CHANGE_CANCEL, NULL },
  { "/queue/change/cancel/refused-sending", OUTBOX_SPOOL_STATE_SENDING, 0,
    OUTBOX_QUEUE_CHANGE_CANCEL, "is being sent right now" },
};

static gboolean
change (Fixture *fixture, const char *id, OutboxQueueChange what, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  outbox_queue_change_async (fixture->queue, id, what, NULL, store_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return outbox_queue_change_finish (fixture->queue, result, error);
}

/* The record as a new queue reads it from the spool. */
static OutboxSpoolRecord *
reload (Fixture *fixture, const char *id)
{
  g_autoptr(GError) error = NULL;

  g_clear_object (&fixture->queue);
  fixture->queue = outbox_queue_new (fixture->spool, &error);
  g_assert_no_error (error);
  /* The records are read in the main loop. */
  while (!outbox_queue_is_loaded (fixture->queue))
    g_main_context_iteration (NULL, TRUE);
  return outbox_queue_lookup (fixture->queue, id);
}

static void
test_change (Fixture *fixture,
             gconstpointer data)
{
  const ChangeCase *c = data;
  OutboxSpoolRecord *record = add_message (fixture);
  g_autofree char *id = g_strdup (record->id);
  g_autoptr(GError) error = NULL;
  gboolean done;

  record->state = c->from;
  record->sent_copy = c->copy;
  if (c->from != OUTBOX_SPOOL_STATE_SENDING)
    g_assert_true (save (fixture, record, &error));
  g_assert_no_error (error);
  done = change (fixture, id, c->change, &error);
  record = outbox_queue_lookup (fixture->queue, id);
  if (c->refusal != NULL)
    {
      g_assert_false (done);
      g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_STATE);
      g_assert_nonnull (strstr (error->message, c->refusal));
      g_assert_nonnull (record);
      g_assert_cmpstr (outbox_spool_state_to_string (record->state), ==,
                       outbox_spool_state_to_string (c->from));
      return;
    }
  g_assert_no_error (error);
  g_assert_true (done);
  record = reload (fixture, id);
  if (c->change == OUTBOX_QUEUE_CHANGE_CANCEL)
    {
      g_assert_null (record);
      return;
    }
  g_assert_nonnull (record);
  g_assert_cmpstr (outbox_spool_state_to_string (record->state), ==,
                   outbox_spool_state_to_string (c->to));
  g_assert_cmpint (record->sent_copy, ==, c->copy_to ? c->copy_to : c->copy);
}

static void
test_change_unknown_id (Fixture *fixture,
                        gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (change (fixture, "no-such-id", OUTBOX_QUEUE_CHANGE_HOLD, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (change_cases); i++)
    g_test_add (change_cases[i].path, Fixture, &change_cases[i], fixture_set_up, test_change,
                fixture_tear_down);
  g_test_add ("/queue/change/refused-unknown-id", Fixture, NULL, fixture_set_up,
              test_change_unknown_id, fixture_tear_down);
  g_test_add ("/queue/ahead-of-disk/while-saving", Fixture, NULL, fixture_set_up,
              test_ahead_while_saving, fixture_tear_down);
  g_test_add ("/queue/ahead-of-disk/after-failed-save", Fixture, NULL, fixture_set_up,
              test_ahead_after_failed_save, fixture_tear_down);
  g_test_add ("/queue/ahead-of-disk/removed", Fixture, NULL, fixture_set_up,
              test_removed_is_not_ahead, fixture_tear_down);
  return g_test_run ();
}
