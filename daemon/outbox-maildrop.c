/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "outbox-error.h"
#include "outbox-maildrop.h"
#include "outbox-maildrop-format.h"
#include "outbox-message.h"
#include "outbox-submit.h"

/* Files are queued one at a time, in the order they were claimed: a file
 * is claimed (renamed into claimed/) when a scan finds it, its envelope is
 * read, the rest goes through outbox_submit_with_origin_async(), and the
 * claimed file is deleted once the spool holds the message.  A file that
 * does not validate goes to rejected/; one that fails for another reason
 * (a full disk) stays in claimed/ until the next start. */

#define NAME_MAX_LENGTH 128

struct _OutboxMaildrop
{
  GObject parent_instance;

  OutboxQueue *queue;           /* (owned) */
  OutboxAccountStore *accounts; /* (unowned) outlives the maildrop */
  char *dir;
  char *claimed_dir;
  char *rejected_dir;
  GFileMonitor *monitor;        /* (owned) (nullable) */
  GCancellable *cancellable;    /* (owned) */
  GQueue pending;               /* (element-type utf8) names in claimed/ */
  gboolean submitting;
  guint scan_source;
};

G_DEFINE_TYPE (OutboxMaildrop, outbox_maildrop, G_TYPE_OBJECT)

/* One claimed file on its way into the queue.  Disposing the maildrop
 * cancels it: each callback checks for that before it looks at the
 * maildrop. */
typedef struct
{
  OutboxMaildrop *maildrop;     /* (unowned) */
  char *name;
  char *path;
  GDataInputStream *in;         /* (owned) (nullable) */
  OutboxMaildropReader reader;  /* the envelope, as far as it is read */
} MaildropJob;

static void
maildrop_job_free (MaildropJob *job)
{
  g_free (job->name);
  g_free (job->path);
  g_clear_object (&job->in);
  outbox_maildrop_reader_clear (&job->reader);
  g_free (job);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MaildropJob, maildrop_job_free)

static void process_next (OutboxMaildrop *self);

static gboolean
name_is_valid (const char *name)
{
  gsize length = strlen (name);

  return length > 0 && length <= NAME_MAX_LENGTH && name[0] != '.'
         && strspn (name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
                == length;
}

static char *
origin_of (const char *name)
{
  return g_strconcat (OUTBOX_MAILDROP_ORIGIN_PREFIX, name, NULL);
}

static gboolean
origin_is_queued (OutboxMaildrop *self, const char *origin)
{
  g_autoptr (GPtrArray) records = outbox_queue_list (self->queue);

  for (guint i = 0; i < records->len; i++)
    {
      const OutboxSpoolRecord *record = g_ptr_array_index (records, i);

      if (g_strcmp0 (record->origin, origin) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Rejection */

static void
reject (OutboxMaildrop *self, const char *name, const char *reason)
{
  g_autofree char *claimed = g_build_filename (self->claimed_dir, name, NULL);
  g_autofree char *rejected = g_build_filename (self->rejected_dir, name, NULL);
  g_autofree char *error_path = g_strconcat (rejected, ".error", NULL);
  g_autofree char *text = g_strconcat (reason, "\n", NULL);
  g_autoptr (GError) error = NULL;

  /* The reason first: whoever sees the file in rejected/ finds why. */
  if (!g_file_set_contents_full (error_path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                 &error))
    g_warning ("Cannot write %s: %s", error_path, error->message);
  if (rename (claimed, rejected) != 0)
    {
      int errsv = errno;
      g_warning ("Maildrop file %s is invalid (%s) and cannot be set aside: %s", claimed, reason,
                 g_strerror (errsv));
      return;
    }
  g_warning ("Rejected maildrop file %s: %s (set aside as %s)", name, reason, rejected);
}

/* Whether a submission error means the file itself is bad (as opposed to
 * the disk, which may be better next time). */
static gboolean
error_is_about_the_file (const GError *error)
{
  if (error->domain != OUTBOX_ERROR)
    return FALSE;
  switch (error->code)
    {
    case OUTBOX_ERROR_INVALID_ARGS:
    case OUTBOX_ERROR_INVALID_ADDRESS:
    case OUTBOX_ERROR_INVALID_MESSAGE:
    case OUTBOX_ERROR_NO_SUCH_ACCOUNT:
      return TRUE;
    default:
      return FALSE;
    }
}

/* Ends a job and goes on with the next file. */
static void
job_done (MaildropJob *job)
{
  OutboxMaildrop *self = job->maildrop;

  self->submitting = FALSE;
  if (!g_cancellable_is_cancelled (self->cancellable))
    process_next (self);
}

static void
job_reject (MaildropJob *job, const char *reason)
{
  reject (job->maildrop, job->name, reason);
  job_done (job);
}

/* Submission */

static void
submit_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (MaildropJob) job = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *id = outbox_submit_finish (result, &error);

  if (id != NULL)
    {
      g_info ("Queued maildrop file %s as %s", job->name, id);
      if (unlink (job->path) != 0)
        {
          int errsv = errno;
          g_warning ("Cannot remove %s after queueing it: %s", job->path, g_strerror (errsv));
        }
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  else if (error_is_about_the_file (error))
    reject (job->maildrop, job->name, error->message);
  else
    g_warning ("Cannot queue maildrop file %s (trying again at the next start): %s", job->path,
               error->message);
  job_done (job);
}

static GVariant *
job_options (MaildropJob *job)
{
  g_autoptr (GVariantDict) options = g_variant_dict_new (NULL);
  OutboxMaildropEnvelope *envelope = &job->reader.envelope;

  if (envelope->from != NULL)
    g_variant_dict_insert (options, "from", "s", envelope->from);
  if (envelope->recipients->len > 0)
    {
      g_ptr_array_add (envelope->recipients, NULL);
      g_variant_dict_insert_value (
          options, "recipients",
          g_variant_new_strv ((const char *const *) envelope->recipients->pdata, -1));
      g_ptr_array_remove_index (envelope->recipients, envelope->recipients->len - 1);
    }
  /* The DSN lines are Submit options, checked by the submission as any
   * caller's. */
  if (envelope->notify != NULL)
    {
      const char *const list[] = { envelope->notify, NULL };

      g_variant_dict_insert_value (options, "notify", g_variant_new_strv (list, -1));
    }
  if (envelope->ret != NULL)
    g_variant_dict_insert (options, "ret", "s", envelope->ret);
  if (envelope->envid != NULL)
    g_variant_dict_insert (options, "envid", "s", envelope->envid);
  return g_variant_dict_end (options);
}

static void
submit (MaildropJob *job)
{
  OutboxMaildrop *self = job->maildrop;
  g_autofree char *origin = origin_of (job->name);
  GInputStream *in = G_INPUT_STREAM (job->in);

  /* The data stream's buffer holds what was read past the envelope. */
  outbox_submit_with_origin_async (self->queue, self->accounts, in, job_options (job), origin,
                                   self->cancellable, submit_done, job);
}

/* The envelope (outbox-maildrop-format.h) */

static void read_envelope_line (MaildropJob *job);

static void
envelope_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (MaildropJob) job = user_data;
  g_autoptr (GError) error = NULL;
  gsize length;
  g_autofree char *line = g_data_input_stream_read_line_finish (job->in, result, &length, &error);
  const char *problem;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (error != NULL)
    {
      g_warning ("Cannot read maildrop file %s (trying again at the next start): %s", job->path,
                 error->message);
      job_done (job);
      return;
    }
  problem = outbox_maildrop_reader_take_line (&job->reader, line, length);
  if (problem != NULL)
    job_reject (job, problem);
  else if (job->reader.complete)
    submit (g_steal_pointer (&job));
  else
    read_envelope_line (g_steal_pointer (&job));
}

static void
read_envelope_line (MaildropJob *job)
{
  g_data_input_stream_read_line_async (job->in, G_PRIORITY_DEFAULT, job->maildrop->cancellable,
                                       envelope_line_read, job);
}

static void
file_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (MaildropJob) job = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileInputStream) in = g_file_read_finish (G_FILE (source), result, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (in == NULL)
    {
      g_warning ("Cannot open maildrop file %s (trying again at the next start): %s", job->path,
                 error->message);
      job_done (job);
      return;
    }
  job->in = g_data_input_stream_new (G_INPUT_STREAM (in));
  g_data_input_stream_set_newline_type (job->in, G_DATA_STREAM_NEWLINE_TYPE_LF);
  read_envelope_line (g_steal_pointer (&job));
}

static void
process_next (OutboxMaildrop *self)
{
  g_autofree char *name = NULL;
  g_autoptr (GFile) file = NULL;
  MaildropJob *job;

  if (self->submitting || g_queue_is_empty (&self->pending))
    return;

  name = g_queue_pop_head (&self->pending);
  job = g_new0 (MaildropJob, 1);
  job->maildrop = self;
  job->name = g_steal_pointer (&name);
  job->path = g_build_filename (self->claimed_dir, job->name, NULL);
  outbox_maildrop_reader_init (&job->reader);
  self->submitting = TRUE;

  file = g_file_new_for_path (job->path);
  g_file_read_async (file, G_PRIORITY_DEFAULT, self->cancellable, file_opened, job);
}

/* Scanning */

/* Moves a complete file into claimed/: from then on no other scan sees it,
 * and a crash leaves it where the next start looks. */
static gboolean
claim (OutboxMaildrop *self, const char *name)
{
  g_autofree char *path = g_build_filename (self->dir, name, NULL);
  g_autofree char *claimed = g_build_filename (self->claimed_dir, name, NULL);

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR) || g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    return FALSE;
  if (g_file_test (claimed, G_FILE_TEST_EXISTS))
    {
      g_warning ("Maildrop file %s waits: a claimed file of that name is still being queued", name);
      return FALSE;
    }
  if (rename (path, claimed) != 0)
    {
      int errsv = errno;
      g_warning ("Cannot claim maildrop file %s: %s", path, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static void
scan (OutboxMaildrop *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (self->dir, 0, &error);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (dir == NULL)
    {
      g_warning ("Cannot read the maildrop: %s", error->message);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name_is_valid (name))
      g_ptr_array_add (names, g_strdup (name));
  /* Oldest first: the names outbox-sendmail gives start with the time. */
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      const char *candidate = g_ptr_array_index (names, i);

      if (claim (self, candidate))
        g_queue_push_tail (&self->pending, g_strdup (candidate));
    }
  process_next (self);
}

static gboolean
scan_idle (gpointer user_data)
{
  OutboxMaildrop *self = user_data;

  self->scan_source = 0;
  scan (self);
  return G_SOURCE_REMOVE;
}

static void
on_changed (GFileMonitor *monitor,
            GFile *file,
            GFile *other_file,
            GFileMonitorEvent event,
            gpointer user_data)
{
  OutboxMaildrop *self = user_data;

  /* Not CREATED: a file created in place may not be complete yet. */
  if (event != G_FILE_MONITOR_EVENT_MOVED_IN && event != G_FILE_MONITOR_EVENT_RENAMED
      && event != G_FILE_MONITOR_EVENT_CHANGES_DONE_HINT)
    return;
  if (self->scan_source == 0)
    self->scan_source = g_idle_add (scan_idle, self);
}

/* What a crash left in claimed/: a file whose origin the queue already
 * holds was committed and is only deleted; the others are queued again. */
static void
recover_claimed (OutboxMaildrop *self)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (self->claimed_dir, 0, &error);
  const char *name;

  if (dir == NULL)
    {
      g_warning ("Cannot read %s: %s", self->claimed_dir, error->message);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *origin = origin_of (name);
      g_autofree char *path = g_build_filename (self->claimed_dir, name, NULL);

      if (!name_is_valid (name))
        continue;
      if (!origin_is_queued (self, origin))
        {
          g_queue_push_tail (&self->pending, g_strdup (name));
          continue;
        }
      g_info ("Maildrop file %s was queued before a restart; removing it", name);
      if (unlink (path) != 0)
        {
          int errsv = errno;
          g_warning ("Cannot remove %s: %s", path, g_strerror (errsv));
        }
    }
}

static gboolean
make_directories (OutboxMaildrop *self)
{
  const char *const dirs[] = { self->dir, self->claimed_dir, self->rejected_dir };

  for (gsize i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      if (g_mkdir_with_parents (dirs[i], 0700) != 0)
        {
          int errsv = errno;
          g_warning ("Cannot create %s; the maildrop is not served: %s", dirs[i],
                     g_strerror (errsv));
          return FALSE;
        }
    }
  return TRUE;
}

static void
watch (OutboxMaildrop *self)
{
  g_autoptr (GFile) dir = g_file_new_for_path (self->dir);
  g_autoptr (GError) error = NULL;

  self->monitor = g_file_monitor_directory (dir, G_FILE_MONITOR_WATCH_MOVES, self->cancellable,
                                            &error);
  if (self->monitor == NULL)
    {
      g_warning ("Cannot watch the maildrop (files will be taken at the next start): %s",
                 error->message);
      return;
    }
  g_signal_connect (self->monitor, "changed", G_CALLBACK (on_changed), self);
}

void
outbox_maildrop_start (OutboxMaildrop *self)
{
  g_return_if_fail (OUTBOX_IS_MAILDROP (self));

  if (!make_directories (self))
    return;
  recover_claimed (self);
  watch (self);
  scan (self);
}

OutboxMaildrop *
outbox_maildrop_new (OutboxQueue *queue, OutboxAccountStore *accounts, const char *dir)
{
  OutboxMaildrop *self = g_object_new (OUTBOX_TYPE_MAILDROP, NULL);

  self->queue = g_object_ref (queue);
  self->accounts = accounts;
  self->dir = g_strdup (dir);
  self->claimed_dir = g_build_filename (dir, "claimed", NULL);
  self->rejected_dir = g_build_filename (dir, "rejected", NULL);
  return self;
}

static void
outbox_maildrop_dispose (GObject *object)
{
  OutboxMaildrop *self = OUTBOX_MAILDROP (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->scan_source, g_source_remove);
  if (self->monitor != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->monitor, self);
      g_file_monitor_cancel (self->monitor);
      g_clear_object (&self->monitor);
    }
  G_OBJECT_CLASS (outbox_maildrop_parent_class)->dispose (object);
}

static void
outbox_maildrop_finalize (GObject *object)
{
  OutboxMaildrop *self = OUTBOX_MAILDROP (object);

  g_clear_object (&self->queue);
  g_clear_object (&self->cancellable);
  g_queue_clear_full (&self->pending, g_free);
  g_free (self->dir);
  g_free (self->claimed_dir);
  g_free (self->rejected_dir);
  G_OBJECT_CLASS (outbox_maildrop_parent_class)->finalize (object);
}

static void
outbox_maildrop_class_init (OutboxMaildropClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = outbox_maildrop_dispose;
  object_class->finalize = outbox_maildrop_finalize;
}

static void
outbox_maildrop_init (OutboxMaildrop *self)
{
  self->cancellable = g_cancellable_new ();
  g_queue_init (&self->pending);
}
