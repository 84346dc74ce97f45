/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "outbox-error.h"
#include "outbox-smtp-dsn.h"
#include "outbox-spool.h"

static const char message_data[] = "From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n";

typedef struct
{
  char *dir;           /* the test's own temporary directory */
  char *path;          /* the spool inside it */
  OutboxSpool *spool;
} Fixture;

static void
remove_tree (const char *path)
{
  GDir *dir;
  const char *name;

  g_chmod (path, 0700);
  dir = g_dir_open (path, 0, NULL);
  if (dir != NULL)
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          remove_tree (child);
        }
      g_dir_close (dir);
    }
  g_remove (path);
}

static void
fixture_set_up (Fixture *fixture,
                gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("outbox-spool-XXXXXX", &error);
  g_assert_no_error (error);
  fixture->path = g_build_filename (fixture->dir, "spool", NULL);
  fixture->spool = outbox_spool_open (fixture->path, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *fixture,
                   gconstpointer data)
{
  g_clear_object (&fixture->spool);
  remove_tree (fixture->dir);
  g_free (fixture->path);
  g_free (fixture->dir);
}

static char *
spool_file (Fixture *fixture,
            const char *subdir,
            const char *id,
            const char *suffix)
{
  g_autofree char *name = g_strconcat (id, suffix, NULL);

  return g_build_filename (fixture->path, subdir, name, NULL);
}

static guint
count_files (Fixture *fixture,
             const char *subdir)
{
  g_autofree char *path = g_build_filename (fixture->path, subdir, NULL);
  g_autoptr(GError) error = NULL;
  GDir *dir = g_dir_open (path, 0, &error);
  guint n = 0;

  g_assert_no_error (error);
  while (g_dir_read_name (dir) != NULL)
    n++;
  g_dir_close (dir);
  return n;
}

static guint
file_mode (const char *path)
{
  struct stat st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  return st.st_mode & 07777;
}

static OutboxSpoolRecord *
new_record (const char *id,
            const char *data,
            gsize len)
{
  OutboxSpoolRecord *record = outbox_spool_record_new ();
  g_autofree char *sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);

  g_assert_true (outbox_spool_sha256_from_hex (sha256, record->sha256));
  record->id = g_strdup (id);
  record->account = g_strdup ("work");
  record->from = g_strdup ("a@example.org");
  record->created = g_get_real_time () / G_USEC_PER_SEC;
  record->size = len;
  outbox_spool_record_add_recipient (record, "b@example.org");
  return record;
}

/* A record with every field set to something other than its default. */
static OutboxSpoolRecord *
new_full_record (const char *id)
{
  OutboxSpoolRecord *record = new_record (id, message_data, strlen (message_data));
  OutboxRecipient *recipient;

  record->state = OUTBOX_SPOOL_STATE_DEFERRED;
  record->send_at = 1700000000;
  record->next_attempt = 1700000600;
  record->first_failure = 1699999000;
  record->attempts = 3;
  record->message_id = g_strdup ("1234@example.org");
  record->subject = g_strdup ("Grüße \"quoted\" \\ back\tslash");
  record->last_reply = g_strdup ("451 4.3.0 try\nsha256 0000\nlater");
  record->eightbit = TRUE;
  record->smtputf8 = TRUE;
  record->unknown_outcome = TRUE;
  record->network_deferred = TRUE;
  record->finished = 1700000100;
  record->sent_copy = OUTBOX_SENT_COPY_FAILED;
  record->sent_copy_reply = g_strdup ("NO [TRYCREATE] no such mailbox\nlater");
  record->sent_copy_attempts = 3;
  record->sent_copy_next = 1700000200;
  record->origin = g_strdup ("maildrop:1700000000.M1P2.host\nlater");
  record->save_to_sent = 0;
  recipient = outbox_spool_record_get_recipient (record, 0);
  recipient->state = OUTBOX_RECIPIENT_STATE_DEFERRED;
  recipient->reply_code = 450;
  recipient->reply = g_strdup ("450 \"mailbox\" busy\r\nrecipient evil@example.org");
  outbox_spool_record_add_recipient (record, "jörg@exämple.org");
  recipient = outbox_spool_record_get_recipient (record, 1);
  recipient->state = OUTBOX_RECIPIENT_STATE_SENT;
  recipient->reply_code = 250;
  recipient->reply = g_strdup ("250 2.1.5 ok ✓");
  outbox_spool_record_add_recipient (record, "c@example.org");
  return record;
}

/* The same, asking for delivery status notifications. */
static OutboxSpoolRecord *
new_dsn_record (const char *id)
{
  OutboxSpoolRecord *record = new_full_record (id);

  record->dsn_notify = OUTBOX_DSN_NOTIFY_SUCCESS | OUTBOX_DSN_NOTIFY_FAILURE;
  record->dsn_ret = OUTBOX_DSN_RET_HDRS;
  record->dsn_envid = g_strdup ("env \"42\" = x+y");
  record->dsn_required = 1;
  record->dsn_not_offered = TRUE;
  return record;
}

static void
assert_records_equal (const OutboxSpoolRecord *a,
                      const OutboxSpoolRecord *b)
{
  g_assert_cmpstr (a->id, ==, b->id);
  g_assert_cmpstr (a->account, ==, b->account);
  g_assert_cmpstr (a->from, ==, b->from);
  g_assert_cmpint (a->state, ==, b->state);
  g_assert_cmpint (a->created, ==, b->created);
  g_assert_cmpint (a->send_at, ==, b->send_at);
  g_assert_cmpint (a->next_attempt, ==, b->next_attempt);
  g_assert_cmpint (a->first_failure, ==, b->first_failure);
  g_assert_cmpuint (a->attempts, ==, b->attempts);
  g_assert_cmpuint (a->size, ==, b->size);
  g_assert_cmpmem (a->sha256, sizeof a->sha256, b->sha256, sizeof b->sha256);
  g_assert_cmpstr (a->message_id, ==, b->message_id);
  g_assert_cmpstr (a->subject, ==, b->subject);
  g_assert_cmpstr (a->last_reply, ==, b->last_reply);
  g_assert_cmpint (a->eightbit, ==, b->eightbit);
  g_assert_cmpint (a->smtputf8, ==, b->smtputf8);
  g_assert_cmpint (a->unknown_outcome, ==, b->unknown_outcome);
  g_assert_cmpint (a->network_deferred, ==, b->network_deferred);
  g_assert_cmpint (a->finished, ==, b->finished);
  g_assert_cmpint (a->sent_copy, ==, b->sent_copy);
  g_assert_cmpstr (a->sent_copy_reply, ==, b->sent_copy_reply);
  g_assert_cmpuint (a->sent_copy_attempts, ==, b->sent_copy_attempts);
  g_assert_cmpint (a->sent_copy_next, ==, b->sent_copy_next);
  g_assert_cmpstr (a->origin, ==, b->origin);
  g_assert_cmpint (a->save_to_sent, ==, b->save_to_sent);
  g_assert_cmpuint (a->dsn_notify, ==, b->dsn_notify);
  g_assert_cmpuint (a->dsn_ret, ==, b->dsn_ret);
  g_assert_cmpstr (a->dsn_envid, ==, b->dsn_envid);
  g_assert_cmpint (a->dsn_required, ==, b->dsn_required);
  g_assert_cmpuint (a->dsn_not_offered, ==, b->dsn_not_offered);
  g_assert_cmpuint (a->n_recipients, ==, b->n_recipients);
  for (guint i = 0; i < a->n_recipients; i++)
    {
      const OutboxRecipient *ra = &a->recipients[i];
      const OutboxRecipient *rb = &b->recipients[i];

      g_assert_cmpstr (ra->address, ==, rb->address);
      g_assert_cmpint (ra->state, ==, rb->state);
      g_assert_cmpuint (ra->reply_code, ==, rb->reply_code);
      g_assert_cmpstr (ra->reply, ==, rb->reply);
    }
}

/* @subject: (nullable) */
static OutboxSpoolRecord *
commit_with_subject (Fixture *fixture,
                     const char *data,
                     gint64 created,
                     const char *subject)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpoolDraft) draft = outbox_spool_draft_new (fixture->spool, &error);
  OutboxSpoolRecord *record;

  g_assert_no_error (error);
  g_output_stream_write_all (outbox_spool_draft_get_stream (draft), data, strlen (data), NULL, NULL, &error);
  g_assert_no_error (error);
  record = new_record (outbox_spool_draft_get_id (draft), data, strlen (data));
  if (created != 0)
    record->created = created;
  record->subject = g_strdup (subject);
  outbox_spool_draft_commit (draft, record, &error);
  g_assert_no_error (error);
  return record;
}

static OutboxSpoolRecord *
commit_message (Fixture *fixture,
                const char *data,
                gint64 created)
{
  return commit_with_subject (fixture, data, created, NULL);
}

static OutboxSpoolRecord *load_one (Fixture *fixture);
static void assert_message_reads_back (Fixture *fixture, const OutboxSpoolRecord *record);

/* Where a message file's data starts: after its two record slots. */
#define MESSAGE_HEAD 8192

/* A message whose record does not fit in a slot of its message file, so
 * that it has a record file of its own. */
static OutboxSpoolRecord *
commit_big_record (Fixture *fixture)
{
  g_autofree char *subject = g_strnfill (5000, 's');

  return commit_with_subject (fixture, message_data, 0, subject);
}

static GPtrArray *
load (Fixture *fixture,
      GPtrArray **quarantined)
{
  g_autoptr(GError) error = NULL;
  GPtrArray *records = outbox_spool_load (fixture->spool, quarantined, &error);

  g_assert_no_error (error);
  return records;
}

static void
set_file_contents (const char *path,
                   const char *data,
                   gssize len)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, data, len, &error);
  g_assert_no_error (error);
}

/* Rewrites a committed message in the older form: ID.eml with the data
 * alone and ID.rec with one serialised record, no slots. */
static void
to_older_form (Fixture *fixture,
               const OutboxSpoolRecord *record)
{
  g_autofree char *message_path = spool_file (fixture, "queue", record->id, ".msg");
  g_autofree char *data_path = spool_file (fixture, "queue", record->id, ".eml");
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".rec");
  g_autoptr(GBytes) bytes = outbox_spool_record_serialize (record);

  set_file_contents (data_path, message_data, -1);
  set_file_contents (record_path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_assert_cmpint (g_unlink (message_path), ==, 0);
}

/* Loads the spool and checks that @id alone was set aside, whole: its
 * record file, message file and older-form data file as given. */
static void
assert_quarantined (Fixture *fixture,
                    const char *id,
                    gboolean with_record,
                    gboolean with_message,
                    gboolean with_data)
{
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = load (fixture, &quarantined);
  g_autofree char *record_path = spool_file (fixture, "quarantine", id, ".rec");
  g_autofree char *message_path = spool_file (fixture, "quarantine", id, ".msg");
  g_autofree char *data_path = spool_file (fixture, "quarantine", id, ".eml");

  g_assert_cmpuint (records->len, ==, 0);
  g_assert_cmpuint (quarantined->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (quarantined, 0), ==, id);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
  g_assert_cmpint (g_file_test (record_path, G_FILE_TEST_EXISTS), ==, with_record);
  g_assert_cmpint (g_file_test (message_path, G_FILE_TEST_EXISTS), ==, with_message);
  g_assert_cmpint (g_file_test (data_path, G_FILE_TEST_EXISTS), ==, with_data);
}

/* Opening */

static void
test_open_creates_private_dirs (void)
{
  const char *subdirs[] = { "", "tmp", "queue", "quarantine", "maildrop" };
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("outbox-spool-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "data", "outbox", NULL);
  g_autoptr(OutboxSpool) spool = NULL;
  mode_t old_umask = umask (0);

  spool = outbox_spool_open (path, &error);
  umask (old_umask);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (subdirs); i++)
    {
      g_autofree char *subdir = g_build_filename (path, subdirs[i], NULL);

      g_assert_cmpuint (file_mode (subdir), ==, 0700);
    }
  remove_tree (dir);
}

static void
test_open_refuses_open_dir (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("outbox-spool-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "spool", NULL);
  g_autoptr(OutboxSpool) spool = NULL;

  g_assert_cmpint (g_mkdir (path, 0700), ==, 0);
  g_assert_cmpint (g_chmod (path, 0755), ==, 0);
  spool = outbox_spool_open (path, &error);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_nonnull (strstr (error->message, "chmod 700"));
  g_assert_null (spool);
  remove_tree (dir);
}

static void
test_open_refuses_open_subdir (Fixture *fixture,
                               gconstpointer data)
{
  g_autofree char *queue = g_build_filename (fixture->path, "queue", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpool) spool = NULL;

  g_assert_cmpint (g_chmod (queue, 0750), ==, 0);
  spool = outbox_spool_open (fixture->path, &error);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_null (spool);
}

static void
test_open_cleans_tmp (Fixture *fixture,
                      gconstpointer data)
{
  g_autofree char *stale = g_build_filename (fixture->path, "tmp", "0123.eml", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpool) spool = NULL;

  set_file_contents (stale, "unfinished", -1);
  spool = outbox_spool_open (fixture->path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
}

/* Drafts */

static void
test_draft_commit (Fixture *fixture,
                   gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *message_path = spool_file (fixture, "queue", record->id, ".msg");
  g_autofree char *contents = NULL;
  gsize len;

  /* One file: the record in the first slot, the data after both slots. */
  g_assert_true (g_file_get_contents (message_path, &contents, &len, NULL));
  g_assert_cmpuint (len, ==, MESSAGE_HEAD + strlen (message_data));
  g_assert_true (g_str_has_prefix (contents, "outbox-slot 1 "));
  g_assert_cmpmem (contents + MESSAGE_HEAD, len - MESSAGE_HEAD, message_data, strlen (message_data));
  g_assert_cmpuint (file_mode (message_path), ==, 0600);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 1);
}

/* A record too big for a slot gets a record file beside the message
 * file; it loads, saves and goes away with its message. */
static void
test_draft_commit_big_record (Fixture *fixture,
                              gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_big_record (fixture);
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".rec");
  g_autoptr(OutboxSpoolRecord) loaded = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_cmpuint (count_files (fixture, "queue"), ==, 2);
  g_assert_cmpuint (file_mode (record_path), ==, 0600);
  loaded = load_one (fixture);
  assert_records_equal (loaded, record);

  record->attempts = 4;
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  g_clear_pointer (&loaded, outbox_spool_record_free);
  loaded = load_one (fixture);
  g_assert_cmpuint (loaded->attempts, ==, 4);

  assert_message_reads_back (fixture, record);

  g_assert_true (outbox_spool_remove (fixture->spool, record->id, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

static void
test_draft_free_without_commit (Fixture *fixture,
                                gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  OutboxSpoolDraft *draft = outbox_spool_draft_new (fixture->spool, &error);

  g_assert_no_error (error);
  g_output_stream_write_all (outbox_spool_draft_get_stream (draft), "x", 1, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 1);
  outbox_spool_draft_free (draft);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

static void
test_draft_fault (Fixture *fixture,
                  gconstpointer data)
{
  OutboxSpoolFault fault = GPOINTER_TO_INT (data);
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpoolDraft) draft = outbox_spool_draft_new (fixture->spool, &error);
  g_autoptr(OutboxSpoolRecord) record = NULL;

  g_assert_no_error (error);
  g_output_stream_write_all (outbox_spool_draft_get_stream (draft), message_data,
                             strlen (message_data), NULL, NULL, &error);
  g_assert_no_error (error);
  record = new_record (outbox_spool_draft_get_id (draft), message_data, strlen (message_data));

  outbox_spool_set_fault (fixture->spool, fault);
  g_assert_false (outbox_spool_draft_commit (draft, record, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_clear_pointer (&draft, outbox_spool_draft_free);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

static void
test_draft_wrong_size (Fixture *fixture,
                       gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpoolDraft) draft = outbox_spool_draft_new (fixture->spool, &error);
  g_autoptr(OutboxSpoolRecord) record = NULL;

  g_assert_no_error (error);
  record = new_record (outbox_spool_draft_get_id (draft), message_data, strlen (message_data));
  g_assert_false (outbox_spool_draft_commit (draft, record, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

/* Group commit */

#define GROUP_SIZE 12

typedef struct
{
  guint pending;
  guint committed;
  GPtrArray *errors;  /* (element-type GError) */
  OutboxSpoolDraft *drafts[GROUP_SIZE];
} GroupResult;

static void
on_group_commit (GObject *source,
                 GAsyncResult *result,
                 gpointer user_data)
{
  GroupResult *group = user_data;
  guint i = group->committed + group->errors->len;
  GError *error = NULL;

  /* Completions come in the order of the commits. */
  if (outbox_spool_draft_commit_finish (group->drafts[i], result, &error))
    group->committed++;
  else
    g_ptr_array_add (group->errors, error);
  group->pending--;
}

static OutboxSpoolDraft *
write_draft (Fixture *fixture,
             OutboxSpoolRecord **out_record)
{
  g_autoptr(GError) error = NULL;
  OutboxSpoolDraft *draft = outbox_spool_draft_new (fixture->spool, &error);

  g_assert_no_error (error);
  g_output_stream_write_all (outbox_spool_draft_get_stream (draft), message_data,
                             strlen (message_data), NULL, NULL, &error);
  g_assert_no_error (error);
  *out_record = new_record (outbox_spool_draft_get_id (draft), message_data, strlen (message_data));
  return draft;
}

static void
commit_group (Fixture *fixture,
              GroupResult *group)
{
  g_autoptr(GPtrArray) drafts = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_spool_draft_free);
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_spool_record_free);

  group->errors = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  for (guint i = 0; i < GROUP_SIZE; i++)
    {
      OutboxSpoolRecord *record;
      OutboxSpoolDraft *draft = write_draft (fixture, &record);

      group->drafts[i] = draft;
      g_ptr_array_add (drafts, draft);
      g_ptr_array_add (records, record);
      outbox_spool_draft_commit_async (draft, record, NULL, on_group_commit, group);
      group->pending++;
      /* Nothing is acknowledged before its flush. */
      g_assert_cmpuint (group->committed, ==, 0);
    }
  while (group->pending > 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_true (outbox_spool_is_idle (fixture->spool));
}

static void
test_group_commit (Fixture *fixture,
                   gconstpointer data)
{
  GroupResult group = { 0 };
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  commit_group (fixture, &group);
  g_assert_cmpuint (group.committed, ==, GROUP_SIZE);
  g_assert_cmpuint (group.errors->len, ==, 0);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  records = outbox_spool_load (fixture->spool, &quarantined, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, GROUP_SIZE);
  g_assert_cmpuint (quarantined->len, ==, 0);
  g_ptr_array_unref (group.errors);
}

/* Many files at once take the one-flush path; a failure there fails every
 * commit of the batch and leaves none of their files. */
static void
test_group_commit_fault (Fixture *fixture,
                         gconstpointer data)
{
  GroupResult group = { 0 };

  outbox_spool_set_fault (fixture->spool, GPOINTER_TO_INT (data));
  commit_group (fixture, &group);
  g_assert_cmpuint (group.committed, ==, 0);
  g_assert_cmpuint (group.errors->len, ==, GROUP_SIZE);
  for (guint i = 0; i < group.errors->len; i++)
    g_assert_error ((GError *) g_ptr_array_index (group.errors, i), OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
  g_ptr_array_unref (group.errors);
}

static void
on_saved (GObject *source,
          GAsyncResult *result,
          gpointer user_data)
{
  guint *pending = user_data;
  g_autoptr(GError) error = NULL;

  outbox_spool_save_finish (OUTBOX_SPOOL (source), result, &error);
  g_assert_no_error (error);
  (*pending)--;
}

/* Saves asked for one after the other reach the disk in that order, even
 * when a synchronous save comes in between. */
static void
test_group_save_order (Fixture *fixture,
                       gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;
  guint pending = 0;

  for (guint i = 1; i <= 20; i++)
    {
      record->attempts = i;
      outbox_spool_save_async (fixture->spool, record, NULL, on_saved, &pending);
      pending++;
    }
  record->attempts = 21;
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);

  records = outbox_spool_load (fixture->spool, &quarantined, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 1);
  g_assert_cmpuint (((OutboxSpoolRecord *) g_ptr_array_index (records, 0))->attempts, ==, 21);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
}

static void
on_removed (GObject *source,
            GAsyncResult *result,
            gpointer user_data)
{
  GError **out_error = user_data;

  outbox_spool_remove_finish (OUTBOX_SPOOL (source), result, out_error);
}

static void
on_saved_expect_gone (GObject *source,
                      GAsyncResult *result,
                      gpointer user_data)
{
  GError **out_error = user_data;

  g_assert_false (outbox_spool_save_finish (OUTBOX_SPOOL (source), result, out_error));
}

/* A save asked for after a removal never brings the message back. */
static void
test_group_remove_then_save (Fixture *fixture,
                             gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) remove_error = NULL;
  g_autoptr(GError) save_error = NULL;

  outbox_spool_remove_async (fixture->spool, record->id, NULL, on_removed, &remove_error);
  outbox_spool_save_async (fixture->spool, record, NULL, on_saved_expect_gone, &save_error);
  while (save_error == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (remove_error);
  g_assert_error (save_error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
}

/* Whatever is waiting when the daemon stops reaches the disk. */
static void
test_group_flush (Fixture *fixture,
                  gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;
  guint pending = 0;

  for (guint i = 1; i <= 5; i++)
    {
      record->attempts = i;
      outbox_spool_save_async (fixture->spool, record, NULL, on_saved, &pending);
      pending++;
    }
  outbox_spool_flush (fixture->spool);
  g_assert_true (outbox_spool_is_idle (fixture->spool));
  records = outbox_spool_load (fixture->spool, &quarantined, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (((OutboxSpoolRecord *) g_ptr_array_index (records, 0))->attempts, ==, 5);
  while (pending > 0)
    g_main_context_iteration (NULL, TRUE);
}

/* Records */

static void
test_record_round_trip (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(OutboxSpoolRecord) parsed = NULL;
  g_autoptr(GBytes) bytes = outbox_spool_record_serialize (record);
  g_autoptr(GError) error = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  parsed = outbox_spool_record_parse ("0123abc", data, len, &error);
  g_assert_no_error (error);
  assert_records_equal (record, parsed);
}

/* A compacted record holds the same values, serialises to the same bytes,
 * copies to an ordinary record, and its changeable fields still change. */
static void
test_record_compact (void)
{
  g_autoptr(OutboxSpoolRecord) compact = outbox_spool_record_compact (new_full_record ("0123abc"));
  g_autoptr(OutboxSpoolRecord) expected = new_full_record ("0123abc");
  g_autoptr(OutboxSpoolRecord) copy = NULL;
  g_autoptr(GBytes) compact_bytes = NULL;
  g_autoptr(GBytes) expected_bytes = NULL;
  OutboxRecipient *recipient;

  g_assert_true (compact->compact);
  g_assert_true (outbox_spool_record_compact (compact) == compact);
  assert_records_equal (compact, expected);
  compact_bytes = outbox_spool_record_serialize (compact);
  expected_bytes = outbox_spool_record_serialize (expected);
  g_assert_true (g_bytes_equal (compact_bytes, expected_bytes));

  /* What delivery and Sent copies change in a queued record. */
  g_free (compact->last_reply);
  compact->last_reply = g_strdup ("250 ok");
  compact->sent_copy = OUTBOX_SENT_COPY_SAVED;
  recipient = outbox_spool_record_get_recipient (compact, 2);
  g_free (recipient->reply);
  recipient->reply = g_strdup ("250 2.1.5 later");
  recipient->state = OUTBOX_RECIPIENT_STATE_SENT;

  copy = outbox_spool_record_copy (compact);
  g_assert_false (copy->compact);
  assert_records_equal (copy, compact);
  g_assert_cmpstr (outbox_spool_record_get_recipient (copy, 2)->reply, ==, "250 2.1.5 later");
  /* The copy is an ordinary record: recipients may be added to it. */
  outbox_spool_record_add_recipient (copy, "d@example.org");
  g_assert_cmpuint (copy->n_recipients, ==, 4);
  g_assert_cmpuint (compact->n_recipients, ==, 3);
}

/* Newlines in values stay inside their line: the record has one line per
 * field, one per recipient and one per reply. */
static void
test_record_no_line_injection (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(GBytes) bytes = outbox_spool_record_serialize (record);
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  /* magic + 25 fields + 3 recipients + 2 replies + checksum + final "" */
  g_assert_cmpuint (g_strv_length (lines), ==, 1 + 25 + 3 + 2 + 1 + 1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_assert_false (g_str_has_prefix (lines[i], "later"));
      g_assert_null (strchr (lines[i], '\r'));
    }
}

static void
test_record_sending_saved_as_queued (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(OutboxSpoolRecord) parsed = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  record->state = OUTBOX_SPOOL_STATE_SENDING;
  bytes = outbox_spool_record_serialize (record);
  parsed = outbox_spool_record_parse ("0123abc", g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  g_assert_cmpint (parsed->state, ==, OUTBOX_SPOOL_STATE_QUEUED);
}

/* Serialises @record, replaces @old by @new in it and checksums it again,
 * so that only the field check can refuse it. */
static OutboxSpoolRecord *
parse_altered (const OutboxSpoolRecord *record,
               const char *old,
               const char *new,
               GError **error)
{
  g_autoptr(GBytes) bytes = outbox_spool_record_serialize (record);
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_autofree char *checksum = NULL;
  g_autoptr(GString) altered = NULL;
  char *last_line;

  g_assert_nonnull (strstr (text, old));
  last_line = g_strrstr (text, "sha256 ");
  *last_line = '\0';
  altered = g_string_new (text);
  g_string_replace (altered, old, new, 1);
  checksum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, altered->str, altered->len);
  g_string_append_printf (altered, "sha256 %s\n", checksum);
  return outbox_spool_record_parse (record->id, (const guint8 *) altered->str, altered->len, error);
}

/* Every field, those about DSN too, is checked. */
static void
test_record_refuses (gconstpointer data)
{
  const char * const *change = data;
  g_autoptr(OutboxSpoolRecord) record = new_dsn_record ("0123abc");
  g_autoptr(OutboxSpoolRecord) parsed = NULL;
  g_autoptr(GError) error = NULL;

  parsed = parse_altered (record, change[0], change[1], &error);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_null (parsed);
}

static void
test_record_refuses_other_id (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(GBytes) bytes = outbox_spool_record_serialize (record);
  g_autoptr(OutboxSpoolRecord) parsed = NULL;
  g_autoptr(GError) error = NULL;

  parsed = outbox_spool_record_parse ("0123abd", g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), &error);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_null (parsed);
}

/* Save, remove, load */

static void
test_save_load_round_trip (Fixture *fixture,
                           gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) committed = commit_message (fixture, message_data, 0);
  g_autoptr(OutboxSpoolRecord) record = new_full_record (committed->id);
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  outbox_spool_save (fixture->spool, record, &error);
  g_assert_no_error (error);
  records = load (fixture, &quarantined);
  g_assert_cmpuint (quarantined->len, ==, 0);
  g_assert_cmpuint (records->len, ==, 1);
  assert_records_equal (record, g_ptr_array_index (records, 0));
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
}

static void
test_save_fault (Fixture *fixture,
                 gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;

  outbox_spool_set_fault (fixture->spool, OUTBOX_SPOOL_FAULT_FSYNC_RECORD);
  record->attempts = 7;
  g_assert_false (outbox_spool_save (fixture->spool, record, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
}

static void
test_save_missing (Fixture *fixture,
                   gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = new_record ("0123abc", message_data, strlen (message_data));
  g_autoptr(GError) error = NULL;

  g_assert_false (outbox_spool_save (fixture->spool, record, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

static void
test_remove (Fixture *fixture,
             gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;

  outbox_spool_remove (fixture->spool, record->id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
  g_assert_false (outbox_spool_remove (fixture->spool, record->id, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE);
}

static void
test_remove_refuses_path (Fixture *fixture,
                          gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (outbox_spool_remove (fixture->spool, "../queue/x", &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE);
}

static void
test_load_sorted (Fixture *fixture,
                  gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) late = commit_message (fixture, message_data, 2000);
  g_autoptr(OutboxSpoolRecord) early = commit_message (fixture, message_data, 1000);
  g_autoptr(OutboxSpoolRecord) early_too = commit_message (fixture, message_data, 1000);
  g_autoptr(GPtrArray) records = load (fixture, NULL);

  g_assert_cmpuint (records->len, ==, 3);
  for (guint i = 0; i < records->len; i++)
    g_assert_true (((OutboxSpoolRecord *) g_ptr_array_index (records, i))->compact);
  g_assert_cmpstr (((OutboxSpoolRecord *) g_ptr_array_index (records, 0))->id, ==, early->id);
  g_assert_cmpstr (((OutboxSpoolRecord *) g_ptr_array_index (records, 1))->id, ==, early_too->id);
  g_assert_cmpstr (((OutboxSpoolRecord *) g_ptr_array_index (records, 2))->id, ==, late->id);
}

static void
test_load_truncated_record (Fixture *fixture,
                            gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *message_path = spool_file (fixture, "queue", record->id, ".msg");

  g_assert_cmpint (truncate (message_path, 40), ==, 0);
  assert_quarantined (fixture, record->id, FALSE, TRUE, FALSE);
}

static void
test_load_flipped_byte (Fixture *fixture,
                        gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *message_path = spool_file (fixture, "queue", record->id, ".msg");
  g_autofree char *contents = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (message_path, &contents, &len, NULL));
  /* Inside the record, not in the unused rest of its slot. */
  contents[strlen (contents) / 2] ^= 0x01;
  set_file_contents (message_path, contents, len);
  assert_quarantined (fixture, record->id, FALSE, TRUE, FALSE);
}

static OutboxSpoolRecord *
load_one (Fixture *fixture)
{
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  records = outbox_spool_load (fixture->spool, &quarantined, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (quarantined->len, ==, 0);
  g_assert_cmpuint (records->len, ==, 1);
  return outbox_spool_record_copy (g_ptr_array_index (records, 0));
}

static gsize
file_size (const char *path)
{
  struct stat st;

  g_assert_cmpint (stat (path, &st), ==, 0);
  return st.st_size;
}

/* Saves alternate between the two slots of the same file. */
static void
test_save_in_place (Fixture *fixture,
                    gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".msg");
  gsize size = file_size (record_path);
  struct stat before, after;
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (stat (record_path, &before), ==, 0);
  for (guint i = 1; i <= 3; i++)
    {
      g_autoptr(OutboxSpoolRecord) loaded = NULL;

      record->attempts = i;
      g_assert_true (outbox_spool_save (fixture->spool, record, &error));
      g_assert_no_error (error);
      loaded = load_one (fixture);
      g_assert_cmpuint (loaded->attempts, ==, i);
    }
  g_assert_cmpint (stat (record_path, &after), ==, 0);
  g_assert_cmpuint (after.st_ino, ==, before.st_ino);
  g_assert_cmpuint (file_size (record_path), ==, size);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 1);
}

/* A save torn by a crash spoils only the slot it was writing: the record
 * before it is read back. */
static void
test_load_torn_slot (Fixture *fixture,
                     gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".msg");
  g_autoptr(OutboxSpoolRecord) loaded = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len;

  record->attempts = 5;
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (record_path, &contents, &len, NULL));
  /* The save went to the second slot; cut it short. */
  memset (contents + MESSAGE_HEAD / 2 + 100, 0, MESSAGE_HEAD / 2 - 100);
  set_file_contents (record_path, contents, len);

  loaded = load_one (fixture);
  g_assert_cmpuint (loaded->attempts, ==, 0);

  /* The next save goes into the torn slot, never over the whole one: torn
   * again, the first record is still there. */
  record->attempts = 6;
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  g_clear_pointer (&loaded, outbox_spool_record_free);
  loaded = load_one (fixture);
  g_assert_cmpuint (loaded->attempts, ==, 6);
  g_clear_pointer (&contents, g_free);
  g_assert_true (g_file_get_contents (record_path, &contents, &len, NULL));
  memset (contents + MESSAGE_HEAD / 2 + 100, 0, MESSAGE_HEAD / 2 - 100);
  set_file_contents (record_path, contents, len);
  g_clear_pointer (&loaded, outbox_spool_record_free);
  loaded = load_one (fixture);
  g_assert_cmpuint (loaded->attempts, ==, 0);
}

/* A record too big for its slots gets a new record file with bigger ones:
 * first beside the message file, then in place of the smaller one. */
static void
test_save_grows (Fixture *fixture,
                 gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".rec");
  g_autoptr(OutboxSpoolRecord) loaded = NULL;
  g_autoptr(GError) error = NULL;
  gsize size;

  g_free (record->last_reply);
  record->last_reply = g_strnfill (3 * 4096, 'x');
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  size = file_size (record_path);
  g_assert_cmpuint (size, >=, 2 * 3 * 4096);
  loaded = load_one (fixture);
  g_assert_cmpstr (loaded->last_reply, ==, record->last_reply);

  g_free (record->last_reply);
  record->last_reply = g_strnfill (6 * 4096, 'y');
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (file_size (record_path), >, size);
  g_clear_pointer (&loaded, outbox_spool_record_free);
  loaded = load_one (fixture);
  g_assert_cmpstr (loaded->last_reply, ==, record->last_reply);
  g_assert_cmpuint (count_files (fixture, "tmp"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 2);

  /* Removal takes the message file first, then the record file. */
  g_assert_true (outbox_spool_remove (fixture->spool, record->id, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

/* Messages written before message files had slots (ID.eml and ID.rec, one
 * record and no slots) are read, delivered, and their record is replaced
 * whole by the next save, then removed with its data. */
static void
test_load_one_record_form (Fixture *fixture,
                           gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".rec");
  g_autoptr(OutboxSpoolRecord) loaded = NULL;
  g_autoptr(GError) error = NULL;

  record->attempts = 2;
  to_older_form (fixture, record);
  loaded = load_one (fixture);
  g_assert_cmpuint (loaded->attempts, ==, 2);
  assert_message_reads_back (fixture, record);

  record->attempts = 3;
  g_assert_true (outbox_spool_save (fixture->spool, record, &error));
  g_assert_no_error (error);
  g_clear_pointer (&loaded, outbox_spool_record_free);
  loaded = load_one (fixture);
  g_assert_cmpuint (loaded->attempts, ==, 3);
  g_assert_cmpuint (file_size (record_path) % 8192, ==, 0);
  g_assert_true (outbox_spool_remove (fixture->spool, record->id, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
}

static void
test_load_missing_data (Fixture *fixture,
                        gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_big_record (fixture);
  g_autofree char *message_path = spool_file (fixture, "queue", record->id, ".msg");

  g_assert_cmpint (g_unlink (message_path), ==, 0);
  assert_quarantined (fixture, record->id, TRUE, FALSE, FALSE);
}

static void
test_load_missing_older_data (Fixture *fixture,
                              gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *data_path = spool_file (fixture, "queue", record->id, ".eml");

  to_older_form (fixture, record);
  g_assert_cmpint (g_unlink (data_path), ==, 0);
  assert_quarantined (fixture, record->id, TRUE, FALSE, FALSE);
}

static void
test_load_wrong_data_size (Fixture *fixture,
                           gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autofree char *message_path = spool_file (fixture, "queue", record->id, ".msg");

  g_assert_cmpint (truncate (message_path, MESSAGE_HEAD + 5), ==, 0);
  assert_quarantined (fixture, record->id, FALSE, TRUE, FALSE);
}

static void
test_load_orphan_data (Fixture *fixture,
                       gconstpointer data)
{
  g_autofree char *data_path = spool_file (fixture, "queue", "0123abc", ".eml");

  set_file_contents (data_path, message_data, -1);
  assert_quarantined (fixture, "0123abc", FALSE, FALSE, TRUE);
}

/* A message file whose record was still to be written (a record file of
 * its own, for a big record) when the daemon stopped. */
static void
test_load_message_without_record (Fixture *fixture,
                                  gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_big_record (fixture);
  g_autofree char *record_path = spool_file (fixture, "queue", record->id, ".rec");

  g_assert_cmpint (g_unlink (record_path), ==, 0);
  assert_quarantined (fixture, record->id, FALSE, TRUE, FALSE);
}

static void
test_load_keeps_earlier_quarantine (Fixture *fixture,
                                    gconstpointer data)
{
  g_autofree char *data_path = spool_file (fixture, "queue", "0123abc", ".eml");
  g_autofree char *earlier = spool_file (fixture, "quarantine", "0123abc", ".eml");
  g_autofree char *contents = NULL;
  g_autoptr(GPtrArray) records = NULL;

  set_file_contents (earlier, "earlier", -1);
  set_file_contents (data_path, message_data, -1);
  records = load (fixture, NULL);
  g_assert_true (g_file_get_contents (earlier, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "earlier");
  g_assert_cmpuint (count_files (fixture, "quarantine"), ==, 2);
}

static void
test_load_ignores_unrelated (Fixture *fixture,
                             gconstpointer data)
{
  g_autofree char *unrelated = g_build_filename (fixture->path, "queue", "README", NULL);
  g_autoptr(GPtrArray) quarantined = NULL;
  g_autoptr(GPtrArray) records = NULL;

  set_file_contents (unrelated, "notes", -1);
  records = load (fixture, &quarantined);
  g_assert_cmpuint (records->len, ==, 0);
  g_assert_cmpuint (quarantined->len, ==, 0);
  g_assert_true (g_file_test (unrelated, G_FILE_TEST_EXISTS));
}

static void
test_load_sending_as_queued (Fixture *fixture,
                             gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  record->state = OUTBOX_SPOOL_STATE_SENDING;
  outbox_spool_save (fixture->spool, record, &error);
  g_assert_no_error (error);
  records = load (fixture, NULL);
  g_assert_cmpuint (records->len, ==, 1);
  g_assert_cmpint (((OutboxSpoolRecord *) g_ptr_array_index (records, 0))->state, ==,
                   OUTBOX_SPOOL_STATE_QUEUED);
}

static void
test_quarantine (Fixture *fixture,
                 gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;

  g_autoptr(OutboxSpoolRecord) big = commit_big_record (fixture);
  g_autofree char *message_path = spool_file (fixture, "quarantine", record->id, ".msg");

  outbox_spool_quarantine (fixture->spool, record->id, &error);
  g_assert_no_error (error);
  g_assert_true (g_file_test (message_path, G_FILE_TEST_EXISTS));
  /* A message with a record file of its own goes with both. */
  outbox_spool_quarantine (fixture->spool, big->id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (fixture, "queue"), ==, 0);
  g_assert_cmpuint (count_files (fixture, "quarantine"), ==, 3);
}

/* Reading messages back */

static GBytes *
read_all (GInputStream *stream,
          GError **error)
{
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  if (g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, error) < 0)
    return NULL;
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* The message of @record reads back, verified, as message_data. */
static void
assert_message_reads_back (Fixture *fixture,
                           const OutboxSpoolRecord *record)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = outbox_spool_open_message (fixture->spool, record, &error);
  g_autoptr(GBytes) bytes = NULL;

  g_assert_no_error (error);
  bytes = read_all (stream, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), message_data, strlen (message_data));
}

static void
test_message_reads_back (Fixture *fixture,
                         gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);

  assert_message_reads_back (fixture, record);
}

/* In place, as an editor writing through the same inode would. */
static void
flip_data_byte (Fixture *fixture,
                const char *id)
{
  g_autofree char *data_path = spool_file (fixture, "queue", id, ".msg");
  gsize offset = strlen (message_data) - 3;
  char changed = message_data[offset] ^ 0x20;
  int fd = g_open (data_path, O_WRONLY, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, &changed, 1, MESSAGE_HEAD + offset), ==, 1);
  g_assert_cmpint (close (fd), ==, 0);
}

static void
test_message_detects_change (Fixture *fixture,
                             gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = outbox_spool_open_message (fixture->spool, record, &error);
  char buffer[256];
  gsize n_read;

  g_assert_no_error (error);
  flip_data_byte (fixture, record->id);
  g_assert_true (g_input_stream_read_all (stream, buffer, strlen (message_data), &n_read, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_read, ==, strlen (message_data));
  g_assert_cmpint (g_input_stream_read (stream, buffer, sizeof buffer, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_message_skip_verifies (Fixture *fixture,
                            gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;
  gssize skipped;

  flip_data_byte (fixture, record->id);
  stream = outbox_spool_open_message (fixture->spool, record, &error);
  g_assert_no_error (error);
  while ((skipped = g_input_stream_skip (stream, 5, NULL, &error)) > 0)
    ;
  g_assert_cmpint (skipped, ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

typedef struct
{
  GMainLoop *loop;
  GByteArray *received;
  GError *error;
  char buffer[7];  /* small, to take several reads */
} AsyncRead;

static void
on_async_read (GObject *source,
               GAsyncResult *result,
               gpointer user_data)
{
  AsyncRead *read = user_data;
  gssize n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &read->error);

  if (n_read <= 0)
    {
      g_main_loop_quit (read->loop);
      return;
    }
  g_byte_array_append (read->received, (const guint8 *) read->buffer, n_read);
  g_input_stream_read_async (G_INPUT_STREAM (source), read->buffer, sizeof read->buffer,
                             G_PRIORITY_DEFAULT, NULL, on_async_read, read);
}

static void
read_async_until_end (GInputStream *stream,
                      AsyncRead *read)
{
  read->loop = g_main_loop_new (NULL, FALSE);
  read->received = g_byte_array_new ();
  g_input_stream_read_async (stream, read->buffer, sizeof read->buffer,
                             G_PRIORITY_DEFAULT, NULL, on_async_read, read);
  g_main_loop_run (read->loop);
  g_main_loop_unref (read->loop);
}

static void
test_message_reads_back_async (Fixture *fixture,
                               gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = outbox_spool_open_message (fixture->spool, record, &error);
  AsyncRead read = { NULL, };

  g_assert_no_error (error);
  read_async_until_end (stream, &read);
  g_assert_no_error (read.error);
  g_assert_cmpmem (read.received->data, read.received->len, message_data, strlen (message_data));
  g_byte_array_unref (read.received);
}

static void
test_message_detects_change_async (Fixture *fixture,
                                   gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = NULL;
  AsyncRead read = { NULL, };

  flip_data_byte (fixture, record->id);
  stream = outbox_spool_open_message (fixture->spool, record, &error);
  g_assert_no_error (error);
  read_async_until_end (stream, &read);
  g_assert_error (read.error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_cmpuint (read.received->len, ==, strlen (message_data));
  g_clear_error (&read.error);
  g_byte_array_unref (read.received);
}

/* Ids */

static void
test_id_unique_sorted (void)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *previous = NULL;

  for (guint i = 0; i < 10000; i++)
    {
      char *id = outbox_spool_new_id ();

      g_assert_true (outbox_spool_id_is_valid (id));
      if (previous != NULL)
        g_assert_cmpstr (previous, <, id);
      g_assert_true (g_hash_table_add (seen, id));
      g_free (previous);
      previous = g_strdup (id);
    }
}

static void
test_id_validity (void)
{
  g_assert_true (outbox_spool_id_is_valid ("018f2c3a4b5c6d7e8f"));
  g_assert_false (outbox_spool_id_is_valid (""));
  g_assert_false (outbox_spool_id_is_valid ("../x"));
  g_assert_false (outbox_spool_id_is_valid ("ABC"));
  g_assert_false (outbox_spool_id_is_valid ("a.rec"));
  g_assert_false (outbox_spool_id_is_valid (NULL));
}

static void
add_fixture_test (const char *path,
                  gconstpointer data,
                  void (*test) (Fixture *, gconstpointer))
{
  g_test_add (path, Fixture, data, fixture_set_up, test, fixture_tear_down);
}

static const char * const bad_state[] = { "state deferred", "state lost" };
static const char * const bad_recipient_state[] = { "recipient deferred 450", "recipient gone 450" };
static const char * const bad_address[] = { "\nrecipient queued 0 c@example.org", "\nrecipient queued 0 c\\r\\n@example.org" };
static const char * const missing_field[] = { "attempts 3\n", "" };
static const char * const unknown_field[] = { "attempts 3\n", "attempts 3\ncolour blue\n" };
static const char * const bad_escape[] = { "subject Gr", "subject \\q" };
static const char * const duplicate_field[] = { "attempts 3\n", "attempts 3\nattempts 4\n" };
static const char * const bad_number[] = { "attempts 3", "attempts -3" };
static const char * const bad_version[] = { "outbox-record 1", "outbox-record 2" };
static const char * const long_data_checksum[] = { "data-sha256 ", "data-sha256 0" };
static const char * const bad_dsn_notify[] = { "dsn-notify success,failure", "dsn-notify never,failure" };
static const char * const bad_dsn_ret[] = { "dsn-ret hdrs", "dsn-ret headers" };
static const char * const bad_dsn_envid[] = { "dsn-envid env", "dsn-envid \\303\\251nv" };
static const char * const bad_dsn_required[] = { "dsn-required 1", "dsn-required -1" };
static const char * const bad_dsn_not_offered[] = { "dsn-not-offered 1", "dsn-not-offered 0" };

#define WRITTEN_FORM \
  "outbox-record 1\n" \
  "id 0123abc\n" \
  "account work\n" \
  "from a@example.org\n" \
  "state deferred\n" \
  "created 1699998000\n" \
  "send-at 1700000000\n" \
  "next-attempt 1700000600\n" \
  "first-failure 1699999000\n" \
  "finished 1700000100\n" \
  "attempts 3\n" \
  "size 43\n" \
  "data-sha256 3097e9de4940972607b607b57bc3791798ddd2b783b765300afcd7c0bac169bf\n" \
  "message-id 1234@example.org\n" \
  "subject Gr\\303\\274\\303\\237e \\\"quoted\\\" \\\\ back\\tslash\n" \
  "last-reply 451 4.3.0 try\\nsha256 0000\\nlater\n" \
  "eightbit 1\n" \
  "smtputf8 1\n" \
  "unknown-outcome 1\n" \
  "save-to-sent 0\n" \
  "network-deferred 1\n" \
  "origin maildrop:1700000000.M1P2.host\\nlater\n" \
  "sent-copy failed\n" \
  "sent-copy-reply NO [TRYCREATE] no such mailbox\\nlater\n" \
  "sent-copy-attempts 3\n" \
  "sent-copy-next 1700000200\n" \
  "recipient deferred 450 b@example.org\n" \
  "recipient-reply 450 \\\"mailbox\\\" busy\\r\\nrecipient evil@example.org\n" \
  "recipient sent 250 j\\303\\266rg@ex\\303\\244mple.org\n" \
  "recipient-reply 250 2.1.5 ok \\342\\234\\223\n" \
  "recipient queued 0 c@example.org\n" \
  "sha256 3053bacc0bbfa0a4d37669c7c930fdca8c5d00fc5dab16e5049e60b3d8fe72ce\n"

/* The written form of a record, byte for byte: files written by an
 * earlier Outbox must read back, and a record written now must read in
 * one that knows this form. */
static void
test_record_written_form (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *text = NULL;

  record->created = 1699998000;
  bytes = outbox_spool_record_serialize (record);
  text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  if (g_getenv ("OUTBOX_PRINT_RECORD") != NULL)
    g_printerr ("%s", text);
  g_assert_cmpstr (text, ==, WRITTEN_FORM);
}

/* A record written before DSN reads as asking nothing of it, and is
 * written back byte for byte. */
static void
test_record_older_form_reads (void)
{
  g_autoptr(OutboxSpoolRecord) record = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  record = outbox_spool_record_parse ("0123abc", (const guint8 *) WRITTEN_FORM,
                                      strlen (WRITTEN_FORM), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (record->dsn_notify, ==, OUTBOX_DSN_NOTIFY_DEFAULT);
  g_assert_cmpuint (record->dsn_ret, ==, OUTBOX_DSN_RET_DEFAULT);
  g_assert_null (record->dsn_envid);
  g_assert_cmpint (record->dsn_required, ==, -1);
  g_assert_false (record->dsn_not_offered);
  g_assert_cmpuint (record->n_recipients, ==, 3);
  bytes = outbox_spool_record_serialize (record);
  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), WRITTEN_FORM,
                   strlen (WRITTEN_FORM));
}

/* What a message asks of DSN is written after the older fields, and read
 * back, kept by compacting and copying. */
static void
test_record_dsn_round_trip (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_dsn_record ("0123abc");
  g_autoptr(OutboxSpoolRecord) parsed = NULL;
  g_autoptr(OutboxSpoolRecord) compact = NULL;
  g_autoptr(OutboxSpoolRecord) copy = NULL;
  g_autoptr(GBytes) bytes = outbox_spool_record_serialize (record);
  g_autoptr(GBytes) compact_bytes = NULL;
  g_autofree char *text = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_autoptr(GError) error = NULL;

  g_assert_nonnull (strstr (text, "sent-copy-next 1700000200\n"
                                  "dsn-notify success,failure\n"
                                  "dsn-ret hdrs\n"
                                  "dsn-envid env \\\"42\\\" = x+y\n"
                                  "dsn-required 1\n"
                                  "dsn-not-offered 1\n"
                                  "recipient "));
  parsed = outbox_spool_record_parse ("0123abc", g_bytes_get_data (bytes, NULL),
                                      g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  assert_records_equal (record, parsed);

  compact = outbox_spool_record_compact (g_steal_pointer (&parsed));
  assert_records_equal (record, compact);
  compact_bytes = outbox_spool_record_serialize (compact);
  g_assert_true (g_bytes_equal (compact_bytes, bytes));
  copy = outbox_spool_record_copy (compact);
  assert_records_equal (record, copy);
}

/* "Not required" is written too: it overrides the account's setting. */
static void
test_record_dsn_not_required (void)
{
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(OutboxSpoolRecord) parsed = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  record->dsn_required = 0;
  bytes = outbox_spool_record_serialize (record);
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                                  "\ndsn-required 0\n"));
  parsed = outbox_spool_record_parse ("0123abc", g_bytes_get_data (bytes, NULL),
                                      g_bytes_get_size (bytes), &error);
  g_assert_no_error (error);
  g_assert_cmpint (parsed->dsn_required, ==, 0);
  g_assert_cmpuint (parsed->dsn_notify, ==, OUTBOX_DSN_NOTIFY_DEFAULT);
}

/* The data's checksum is kept as 32 octets and written as 64 hex digits. */
static void
test_record_sha256_hex (void)
{
  static const char *bad[] = {
    "",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddee",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00",
    "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
    "0x112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
  };
  const char *good = "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  const guint8 expected[OUTBOX_SPOOL_SHA256_LENGTH] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x0f, 0x1e, 0x2d, 0x3c, 0x4b, 0x5a, 0x69, 0x78, 0x87, 0x96, 0xa5, 0xb4, 0xc3, 0xd2, 0xe1, 0xf0,
  };
  g_autoptr(OutboxSpoolRecord) record = new_full_record ("0123abc");
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *line = NULL;
  guint8 digest[OUTBOX_SPOOL_SHA256_LENGTH];

  g_assert_true (outbox_spool_sha256_from_hex (good, digest));
  g_assert_cmpmem (digest, sizeof digest, expected, sizeof expected);
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (outbox_spool_sha256_from_hex (bad[i], digest));

  memcpy (record->sha256, expected, sizeof expected);
  bytes = outbox_spool_record_serialize (record);
  line = g_strdup_printf ("\ndata-sha256 %s\n", good);
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), line));
}

/* The index */

static void
write_index (Fixture *fixture,
             const OutboxSpoolRecord *const *records,
             guint n)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (ids, records[i]->id);
  outbox_spool_write_index (fixture->spool, ids, &error);
  g_assert_no_error (error);
}

static guint
loaded_from_index (Fixture *fixture,
                   GPtrArray **out_records)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxSpoolLoader) loader = outbox_spool_loader_new (fixture->spool, NULL, NULL, &error);
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_spool_record_free);

  g_assert_no_error (error);
  while (!outbox_spool_loader_is_done (loader))
    g_ptr_array_extend_and_steal (records, outbox_spool_loader_next (loader, 1));
  *out_records = g_steal_pointer (&records);
  return outbox_spool_loader_get_from_index (loader);
}

static const OutboxSpoolRecord *
find_record (GPtrArray *records,
             const char *id)
{
  for (guint i = 0; i < records->len; i++)
    {
      const OutboxSpoolRecord *record = g_ptr_array_index (records, i);

      if (g_str_equal (record->id, id))
        return record;
    }
  return NULL;
}

/* Waits until the file system's clock has moved past the stamps of every
 * file changed so far: an index begun after that has entries for them. */
static void
wait_for_next_tick (Fixture *fixture)
{
  g_autofree char *probe = g_build_filename (fixture->path, "tick-probe", NULL);
  struct stat first, now;

  set_file_contents (probe, "", 0);
  g_assert_cmpint (stat (probe, &first), ==, 0);
  do
    {
      g_usleep (1000);
      g_assert_cmpint (utimensat (AT_FDCWD, probe, NULL, 0), ==, 0);
      g_assert_cmpint (stat (probe, &now), ==, 0);
    }
  while (now.st_ctim.tv_sec == first.st_ctim.tv_sec && now.st_ctim.tv_nsec == first.st_ctim.tv_nsec);
  g_assert_cmpint (g_unlink (probe), ==, 0);
}

static void
save_state (Fixture *fixture,
            OutboxSpoolRecord *record,
            OutboxSpoolState state)
{
  g_autoptr(GError) error = NULL;

  record->state = state;
  record->attempts++;
  outbox_spool_save (fixture->spool, record, &error);
  g_assert_no_error (error);
}

/* What a message asks of DSN comes back from the index as from its files. */
static void
test_index_keeps_dsn (Fixture *fixture,
                      gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) committed = commit_message (fixture, message_data, 0);
  g_autoptr(OutboxSpoolRecord) record = new_dsn_record (committed->id);
  const OutboxSpoolRecord *all[] = { record };
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  outbox_spool_save (fixture->spool, record, &error);
  g_assert_no_error (error);
  wait_for_next_tick (fixture);
  write_index (fixture, all, 1);
  g_assert_cmpuint (loaded_from_index (fixture, &records), ==, 1);
  g_assert_cmpuint (records->len, ==, 1);
  assert_records_equal (record, g_ptr_array_index (records, 0));
}

/* The index stays through changes and a crash: each load takes what it
 * says of the messages whose files are as it says, and reads the others
 * from their files. */
static void
test_index_is_read_then_kept (Fixture *fixture,
                              gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) a = commit_message (fixture, message_data, 0);
  g_autoptr(OutboxSpoolRecord) b = commit_big_record (fixture);
  g_autoptr(OutboxSpoolRecord) c = commit_message (fixture, message_data, 0);
  const OutboxSpoolRecord *all[] = { a, b, c };
  g_autoptr(GPtrArray) first = NULL;
  g_autoptr(GPtrArray) second = NULL;
  g_autoptr(GPtrArray) third = NULL;
  g_autofree char *index = g_build_filename (fixture->path, "index", NULL);

  wait_for_next_tick (fixture);
  write_index (fixture, all, 3);
  g_assert_true (g_file_test (index, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (loaded_from_index (fixture, &first), ==, 3);
  g_assert_cmpuint (first->len, ==, 3);
  assert_records_equal (find_record (first, a->id), a);
  assert_records_equal (find_record (first, b->id), b);
  assert_records_equal (find_record (first, c->id), c);

  /* In place, in its slot (the size of its file is the same), and in its
   * own record file. */
  save_state (fixture, a, OUTBOX_SPOOL_STATE_DEFERRED);
  save_state (fixture, b, OUTBOX_SPOOL_STATE_FAILED);
  g_assert_true (g_file_test (index, G_FILE_TEST_EXISTS));
  g_assert_cmpuint (loaded_from_index (fixture, &second), ==, 1);
  g_assert_cmpuint (second->len, ==, 3);
  assert_records_equal (find_record (second, a->id), a);
  assert_records_equal (find_record (second, b->id), b);
  assert_records_equal (find_record (second, c->id), c);
  /* Still there for the next start. */
  g_assert_cmpuint (loaded_from_index (fixture, &third), ==, 1);
  g_assert_cmpuint (third->len, ==, 3);
}

static void
on_index_written (GObject *source,
                  GAsyncResult *result,
                  gpointer user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (outbox_spool_write_index_finish (OUTBOX_SPOOL (source), result, &error));
  g_assert_no_error (error);
  *(gboolean *) user_data = TRUE;
}

/* An index written while changes go on (a checkpoint): a message saved
 * again and again, in place, while the index is being written; the load
 * after it gives the last state saved every round. */
static void
test_index_written_during_changes (Fixture *fixture,
                                   gconstpointer data)
{
  for (guint round = 0; round < 30; round++)
    {
      g_autoptr(OutboxSpoolRecord) record = commit_message (fixture, message_data, 0);
      g_autoptr(GPtrArray) ids = g_ptr_array_new ();
      g_autoptr(GPtrArray) records = NULL;
      g_autoptr(GError) error = NULL;
      gboolean written = FALSE;

      g_ptr_array_add (ids, record->id);
      outbox_spool_write_index_async (fixture->spool, ids, NULL, on_index_written, &written);
      do
        {
          save_state (fixture, record, record->attempts % 2 ? OUTBOX_SPOOL_STATE_DEFERRED
                                                            : OUTBOX_SPOOL_STATE_QUEUED);
          g_main_context_iteration (NULL, FALSE);
        }
      while (!written);
      loaded_from_index (fixture, &records);
      g_assert_cmpuint (records->len, ==, 1);
      assert_records_equal (find_record (records, record->id), record);
      outbox_spool_remove (fixture->spool, record->id, &error);
      g_assert_no_error (error);
    }
}

/* Files changed in the clock tick the index was begun in could change
 * again within that tick with their stamps unmoved: they get no entry. */
static void
test_index_skips_files_of_its_tick (Fixture *fixture,
                                    gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) a = commit_message (fixture, message_data, 0);
  g_autoptr(OutboxSpoolRecord) b = commit_big_record (fixture);
  const OutboxSpoolRecord *both[] = { a, b };
  g_autofree char *index = g_build_filename (fixture->path, "index", NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  outbox_spool_set_fault (fixture->spool, OUTBOX_SPOOL_FAULT_INDEX_TICK);
  write_index (fixture, both, 2);
  outbox_spool_set_fault (fixture->spool, OUTBOX_SPOOL_FAULT_NONE);
  g_file_get_contents (index, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (contents, "\nend 0\n"));
  g_assert_cmpuint (loaded_from_index (fixture, &records), ==, 0);
  g_assert_cmpuint (records->len, ==, 2);
}

/* What the files say wins wherever they differ from the index: here a
 * message that got a record file of its own and one that left. */
static void
test_index_loses_to_changed_files (Fixture *fixture,
                                   gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) kept = commit_message (fixture, message_data, 0);
  g_autoptr(OutboxSpoolRecord) changed = commit_message (fixture, message_data, 0);
  g_autoptr(OutboxSpoolRecord) removed = commit_message (fixture, message_data, 0);
  const OutboxSpoolRecord *all[] = { kept, changed, removed };
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;

  wait_for_next_tick (fixture);
  write_index (fixture, all, 3);
  changed->state = OUTBOX_SPOOL_STATE_FAILED;
  g_free (changed->subject);
  changed->subject = g_strnfill (5000, 's');
  outbox_spool_save (fixture->spool, changed, &error);
  g_assert_no_error (error);
  outbox_spool_remove (fixture->spool, removed->id, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (loaded_from_index (fixture, &records), ==, 1);
  g_assert_cmpuint (records->len, ==, 2);
  assert_records_equal (find_record (records, kept->id), kept);
  assert_records_equal (find_record (records, changed->id), changed);
  g_assert_null (find_record (records, removed->id));
}

/* An index begun later than the clock now says (the clock was set back
 * since) is not read: a change since could have the stamps it recorded. */
/* An index file that fills its last page exactly has no NUL after it in
 * memory: reading its header must not run past the file (it once ran to
 * the next page and crashed). */
static void
test_index_ending_at_a_page_end (Fixture *fixture,
                                 gconstpointer data)
{
  g_autofree char *path = g_build_filename (fixture->path, "index", NULL);
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;
  gsize size = 4 * (gsize) sysconf (_SC_PAGESIZE);
  g_autofree char *contents = g_malloc (size);
  const char *header = "outbox-index 2 1 2\n";

  char *guard;

  memset (contents, 'x', size);
  memcpy (contents, header, strlen (header));
  g_file_set_contents (path, contents, size, &error);
  g_assert_no_error (error);

  /* A hole the size of the file with an unreadable page above it, where
   * the kernel (which maps top-down, into the highest gap that fits)
   * puts the loader's mapping of the index: a read past its end faults. */
  guard = mmap (NULL, size + (gsize) sysconf (_SC_PAGESIZE), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  g_assert_true (guard != MAP_FAILED);
  g_assert_cmpint (munmap (guard, size), ==, 0);

  g_assert_cmpuint (loaded_from_index (fixture, &records), ==, 0);
  munmap (guard + size, (gsize) sysconf (_SC_PAGESIZE));
  g_assert_cmpuint (records->len, ==, 0);
}

static void
test_index_from_the_future_is_not_read (Fixture *fixture,
                                        gconstpointer data)
{
  g_autoptr(OutboxSpoolRecord) a = commit_message (fixture, message_data, 0);
  const OutboxSpoolRecord *one[] = { a };
  g_autofree char *index = g_build_filename (fixture->path, "index", NULL);
  g_autofree char *contents = NULL;
  g_autofree char *moved = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GError) error = NULL;
  char *line_end;

  wait_for_next_tick (fixture);
  write_index (fixture, one, 1);
  g_file_get_contents (index, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (contents, "outbox-index 2 "));
  line_end = strchr (contents, '\n');
  g_assert_nonnull (line_end);
  moved = g_strdup_printf ("outbox-index 2 %" G_GINT64_FORMAT " 0%s", g_get_real_time () / G_USEC_PER_SEC + 3600,
                           line_end);
  set_file_contents (index, moved, -1);

  g_assert_cmpuint (loaded_from_index (fixture, &records), ==, 0);
  g_assert_cmpuint (records->len, ==, 1);
  assert_records_equal (find_record (records, a->id), a);
}

int
main (int argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/spool/open/creates-private-dirs", test_open_creates_private_dirs);
  g_test_add_func ("/spool/open/refuses-open-dir", test_open_refuses_open_dir);
  add_fixture_test ("/spool/open/refuses-open-subdir", NULL, test_open_refuses_open_subdir);
  add_fixture_test ("/spool/open/cleans-tmp", NULL, test_open_cleans_tmp);

  add_fixture_test ("/spool/index/read-then-kept", NULL, test_index_is_read_then_kept);
  add_fixture_test ("/spool/index/keeps-dsn", NULL, test_index_keeps_dsn);
  add_fixture_test ("/spool/index/skips-files-of-its-tick", NULL, test_index_skips_files_of_its_tick);
  add_fixture_test ("/spool/index/written-during-changes", NULL, test_index_written_during_changes);
  add_fixture_test ("/spool/index/loses-to-changed-files", NULL, test_index_loses_to_changed_files);
  add_fixture_test ("/spool/index/from-the-future-not-read", NULL, test_index_from_the_future_is_not_read);
  add_fixture_test ("/spool/index/ending-at-a-page-end", NULL, test_index_ending_at_a_page_end);

  add_fixture_test ("/spool/draft/commit", NULL, test_draft_commit);
  add_fixture_test ("/spool/draft/commit-big-record", NULL, test_draft_commit_big_record);
  add_fixture_test ("/spool/draft/free-without-commit", NULL, test_draft_free_without_commit);
  add_fixture_test ("/spool/draft/fault/fsync-data", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_FSYNC_DATA), test_draft_fault);
  add_fixture_test ("/spool/draft/fault/fsync-record", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_FSYNC_RECORD), test_draft_fault);
  add_fixture_test ("/spool/draft/fault/write-record", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_WRITE_RECORD), test_draft_fault);
  add_fixture_test ("/spool/draft/fault/fsync-dir", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_FSYNC_DIR), test_draft_fault);
  add_fixture_test ("/spool/draft/wrong-size", NULL, test_draft_wrong_size);
  add_fixture_test ("/spool/group/commit", NULL, test_group_commit);
  add_fixture_test ("/spool/group/fault/fsync-data", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_FSYNC_DATA), test_group_commit_fault);
  add_fixture_test ("/spool/group/fault/write-record", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_WRITE_RECORD), test_group_commit_fault);
  add_fixture_test ("/spool/group/fault/fsync-dir", GINT_TO_POINTER (OUTBOX_SPOOL_FAULT_FSYNC_DIR), test_group_commit_fault);
  add_fixture_test ("/spool/group/save-order", NULL, test_group_save_order);
  add_fixture_test ("/spool/group/remove-then-save", NULL, test_group_remove_then_save);
  add_fixture_test ("/spool/group/flush", NULL, test_group_flush);

  g_test_add_func ("/spool/record/round-trip", test_record_round_trip);
  g_test_add_func ("/spool/record/compact", test_record_compact);
  g_test_add_func ("/spool/record/no-line-injection", test_record_no_line_injection);
  g_test_add_func ("/spool/record/sending-saved-as-queued", test_record_sending_saved_as_queued);
  g_test_add_func ("/spool/record/refuses-other-id", test_record_refuses_other_id);
  g_test_add_data_func ("/spool/record/refuses/bad-state", bad_state, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/bad-recipient-state", bad_recipient_state, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/bad-address", bad_address, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/missing-field", missing_field, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/unknown-field", unknown_field, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/bad-escape", bad_escape, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/duplicate-field", duplicate_field, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/bad-number", bad_number, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/bad-version", bad_version, test_record_refuses);
  g_test_add_data_func ("/spool/record/refuses/long-data-checksum", long_data_checksum, test_record_refuses);
  g_test_add_func ("/spool/record/sha256-hex", test_record_sha256_hex);
  g_test_add_func ("/spool/record/written-form", test_record_written_form);
  g_test_add_func ("/spool/record/older-form-reads", test_record_older_form_reads);
  g_test_add_func ("/spool/record/dsn/round-trip", test_record_dsn_round_trip);
  g_test_add_func ("/spool/record/dsn/not-required", test_record_dsn_not_required);
  g_test_add_data_func ("/spool/record/dsn/refuses/notify", bad_dsn_notify, test_record_refuses);
  g_test_add_data_func ("/spool/record/dsn/refuses/ret", bad_dsn_ret, test_record_refuses);
  g_test_add_data_func ("/spool/record/dsn/refuses/envid", bad_dsn_envid, test_record_refuses);
  g_test_add_data_func ("/spool/record/dsn/refuses/required", bad_dsn_required, test_record_refuses);
  g_test_add_data_func ("/spool/record/dsn/refuses/not-offered", bad_dsn_not_offered, test_record_refuses);

  add_fixture_test ("/spool/save/round-trip", NULL, test_save_load_round_trip);
  add_fixture_test ("/spool/save/fault", NULL, test_save_fault);
  add_fixture_test ("/spool/save/missing", NULL, test_save_missing);
  add_fixture_test ("/spool/remove/removes", NULL, test_remove);
  add_fixture_test ("/spool/remove/refuses-path", NULL, test_remove_refuses_path);
  add_fixture_test ("/spool/quarantine/moves-both", NULL, test_quarantine);

  add_fixture_test ("/spool/load/sorted", NULL, test_load_sorted);
  add_fixture_test ("/spool/load/truncated-record", NULL, test_load_truncated_record);
  add_fixture_test ("/spool/load/flipped-byte", NULL, test_load_flipped_byte);
  add_fixture_test ("/spool/load/torn-slot", NULL, test_load_torn_slot);
  add_fixture_test ("/spool/load/one-record-form", NULL, test_load_one_record_form);
  add_fixture_test ("/spool/save/in-place", NULL, test_save_in_place);
  add_fixture_test ("/spool/save/grows", NULL, test_save_grows);
  add_fixture_test ("/spool/load/missing-data", NULL, test_load_missing_data);
  add_fixture_test ("/spool/load/missing-older-data", NULL, test_load_missing_older_data);
  add_fixture_test ("/spool/load/message-without-record", NULL, test_load_message_without_record);
  add_fixture_test ("/spool/load/wrong-data-size", NULL, test_load_wrong_data_size);
  add_fixture_test ("/spool/load/orphan-data", NULL, test_load_orphan_data);
  add_fixture_test ("/spool/load/keeps-earlier-quarantine", NULL, test_load_keeps_earlier_quarantine);
  add_fixture_test ("/spool/load/ignores-unrelated", NULL, test_load_ignores_unrelated);
  add_fixture_test ("/spool/load/sending-as-queued", NULL, test_load_sending_as_queued);

  add_fixture_test ("/spool/message/reads-back", NULL, test_message_reads_back);
  add_fixture_test ("/spool/message/reads-back-async", NULL, test_message_reads_back_async);
  add_fixture_test ("/spool/message/detects-change", NULL, test_message_detects_change);
  add_fixture_test ("/spool/message/detects-change-async", NULL, test_message_detects_change_async);
  add_fixture_test ("/spool/message/skip-verifies", NULL, test_message_skip_verifies);

  g_test_add_func ("/spool/id/unique-sorted", test_id_unique_sorted);
  g_test_add_func ("/spool/id/validity", test_id_validity);

  return g_test_run ();
}
