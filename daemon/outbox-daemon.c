/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "outbox-accounts-service.h"
#include "outbox-daemon.h"
#include "outbox-dbus-error.h"
#include "outbox-error.h"
#include "outbox-load-gate.h"
#include "outbox-maildrop.h"
#include "outbox-notify.h"
#include "outbox-queue-service.h"
#include "outbox-sent-copy.h"

/* Sent messages stay visible for a week, then leave the spool. */
#define KEEP_SENT_SECONDS (7 * 24 * 3600)
#define PRUNE_INTERVAL_SECONDS 3600
/* A new index is written when this many changes have been made since the
 * last one (or messages read from their files at start), checked every
 * CHECKPOINT_INTERVAL_SECONDS: after a crash, a start reads the files of
 * about that many messages, not of the whole queue. */
#define CHECKPOINT_CHANGES 1000
#define CHECKPOINT_INTERVAL_SECONDS 300

struct _OutboxDaemon
{
  int lock_fd;
  guint prune_id;
  OutboxSpool *spool;               /* (owned) */
  OutboxAccountStore *accounts;     /* (owned) */
  OutboxQueue *queue;               /* (owned) */
  OutboxDelivery *delivery;         /* (owned) */
  OutboxQueueService *queue_service; /* (owned) */
  OutboxAccountsService *accounts_service; /* (owned) */
  OutboxMaildrop *maildrop;         /* (owned) */
  OutboxSentCopy *sent_copy;        /* (owned) */
  OutboxCredentials *credentials;   /* (owned) */
  gulong loaded_handler;
  guint checkpoint_id;
  gboolean checkpointing;  /* an index is being written in a worker thread */
};

/* The bus name keeps two daemons of one session apart; the lock keeps apart
 * two sessions (say, a desktop and an ssh login with its own bus) that share
 * one spool. */
static int
lock_spool (const char *spool_path, guint wait_ms, GError **error)
{
  g_autofree char *path = g_build_filename (spool_path, "lock", NULL);
  int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  gint64 deadline = g_get_monotonic_time () + (gint64) wait_ms * 1000;

  if (fd < 0)
    {
      int errsv = errno;
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED, "Cannot open %s: %s", path,
                   g_strerror (errsv));
      return -1;
    }
  /* An instance being replaced lets go of the spool as it exits. */
  while (flock (fd, LOCK_EX | LOCK_NB) != 0 && g_get_monotonic_time () < deadline)
    g_usleep (50 * 1000);
  if (flock (fd, LOCK_EX | LOCK_NB) != 0)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                   "Another outboxd is using the spool %s; stop it first", spool_path);
      close (fd);
      return -1;
    }
  return fd;
}

static gboolean
must_wait_for_load (OutboxQueue *queue, GDBusMethodInvocation *invocation, gboolean others_wait)
{
  return g_str_equal (g_dbus_method_invocation_get_method_name (invocation), "Remove");
}

OutboxDaemon *
outbox_daemon_new (guint lock_wait_ms, GError **error)
{
  g_autoptr (OutboxDaemon) self = g_new0 (OutboxDaemon, 1);
  g_autofree char *spool_path = g_build_filename (g_get_user_data_dir (), "outbox", NULL);
  g_autofree char *accounts_path =
      g_build_filename (g_get_user_config_dir (), "outbox", "accounts.conf", NULL);
  g_autofree char *maildrop_path = g_build_filename (spool_path, "maildrop", NULL);

  self->lock_fd = -1;
  self->spool = outbox_spool_open (spool_path, error);
  if (self->spool == NULL)
    return NULL;
  self->lock_fd = lock_spool (spool_path, lock_wait_ms, error);
  if (self->lock_fd < 0)
    return NULL;
  self->accounts = outbox_account_store_load (accounts_path, error);
  if (self->accounts == NULL)
    return NULL;
  self->queue = outbox_queue_new (self->spool, error);
  if (self->queue == NULL)
    return NULL;
  self->credentials = outbox_credentials_new ();
  self->delivery = outbox_delivery_new (self->queue, self->accounts, self->credentials);
  self->sent_copy = outbox_sent_copy_new (self->queue, self->accounts, self->credentials);
  self->queue_service = outbox_queue_service_new (self->queue, self->delivery, self->accounts);
  /* Version says what the interface can do; this says which release runs,
   * for a bug report or to see that a restart after an upgrade took. */
  outbox_dbus_queue_set_daemon_version (OUTBOX_DBUS_QUEUE (self->queue_service), PACKAGE_VERSION);
  self->accounts_service =
      outbox_accounts_service_new (self->accounts, self->queue, self->delivery, self->credentials);
  self->maildrop = outbox_maildrop_new (self->queue, self->accounts, maildrop_path);
  /* Removing an account counts the messages still queued for it. */
  outbox_load_gate_attach (G_DBUS_INTERFACE_SKELETON (self->accounts_service), self->queue,
                           must_wait_for_load);
  outbox_dbus_error_register ();
  return g_steal_pointer (&self);
}

static GPtrArray *
queued_ids (GPtrArray *records)
{
  GPtrArray *ids = g_ptr_array_sized_new (records->len);

  for (guint i = 0; i < records->len; i++)
    g_ptr_array_add (ids, ((OutboxSpoolRecord *) g_ptr_array_index (records, i))->id);
  return ids;
}

/* The next start reads one file instead of one per message. */
static void
write_index (OutboxDaemon *self)
{
  g_autoptr (GPtrArray) records = outbox_queue_list (self->queue);
  g_autoptr (GPtrArray) ids = queued_ids (records);
  g_autoptr (GError) error = NULL;

  if (!outbox_spool_write_index (self->spool, ids, &error))
    g_warning ("%s; the next start reads every record file instead", error->message);
}

static void
on_checkpoint_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  OutboxDaemon *self = user_data;
  g_autoptr (GError) error = NULL;

  self->checkpointing = FALSE;
  if (!outbox_spool_write_index_finish (OUTBOX_SPOOL (source), result, &error))
    g_warning ("%s; a start after a crash reads the record files changed since the last one", error->message);
}

static void
write_checkpoint (OutboxDaemon *self)
{
  g_autoptr (GPtrArray) records = NULL;
  g_autoptr (GPtrArray) ids = NULL;

  if (self->checkpointing)
    return;
  records = outbox_queue_list (self->queue);
  ids = queued_ids (records);
  self->checkpointing = TRUE;
  outbox_spool_write_index_async (self->spool, ids, NULL, on_checkpoint_written, self);
}

static gboolean
checkpoint_if_changed (gpointer user_data)
{
  OutboxDaemon *self = user_data;

  if (outbox_spool_get_changes_since_index (self->spool) >= CHECKPOINT_CHANGES)
    write_checkpoint (self);
  return G_SOURCE_CONTINUE;
}

void
outbox_daemon_free (OutboxDaemon *self)
{
  outbox_notify_stop ();
  g_clear_handle_id (&self->prune_id, g_source_remove);
  g_clear_handle_id (&self->checkpoint_id, g_source_remove);
  if (self->queue != NULL)
    g_clear_signal_handler (&self->loaded_handler, self->queue);
  if (self->queue_service != NULL)
    {
      outbox_queue_service_flush_changes (self->queue_service);
      g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->queue_service));
    }
  if (self->accounts_service != NULL)
    {
      outbox_accounts_service_flush_changes (self->accounts_service);
      g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (self->accounts_service));
    }
  g_clear_object (&self->queue_service);
  g_clear_object (&self->accounts_service);
  if (self->delivery != NULL)
    g_object_run_dispose (G_OBJECT (self->delivery));
  g_clear_object (&self->delivery);
  g_clear_object (&self->maildrop);
  if (self->sent_copy != NULL)
    g_object_run_dispose (G_OBJECT (self->sent_copy));
  g_clear_object (&self->sent_copy);
  g_clear_object (&self->credentials);
  /* Changes asked for but not yet written (outcomes, submissions being
   * acknowledged) reach the disk before exit; their callers, all stopped
   * by now, are told and let go. */
  if (self->spool != NULL)
    {
      outbox_spool_flush (self->spool);
      while (g_main_context_iteration (NULL, FALSE))
        ;
    }
  while (self->checkpointing)
    g_main_context_iteration (NULL, TRUE);
  if (self->queue != NULL && outbox_queue_is_loaded (self->queue))
    write_index (self);
  g_clear_object (&self->queue);
  g_clear_pointer (&self->accounts, outbox_account_store_free);
  g_clear_object (&self->spool);
  if (self->lock_fd >= 0)
    close (self->lock_fd);
  g_free (self);
}

/* The "retry" action of a notification about a message. */
static void
retry_from_notification (const char *message_id, gpointer user_data)
{
  OutboxDaemon *self = user_data;

  outbox_queue_service_retry (self->queue_service, message_id);
}

gboolean
outbox_daemon_export (OutboxDaemon *self, GDBusConnection *connection, GError **error)
{
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->queue_service),
                                         connection, OUTBOX_OBJECT_PATH, error))
    return FALSE;
  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (self->accounts_service),
                                         connection, OUTBOX_OBJECT_PATH, error))
    return FALSE;
  outbox_notify_start (connection, retry_from_notification, self);
  return TRUE;
}

static gboolean
prune_sent (gpointer user_data)
{
  OutboxDaemon *self = user_data;

  outbox_queue_prune_sent (self->queue, KEEP_SENT_SECONDS);
  return G_SOURCE_CONTINUE;
}

/* What looks at the whole queue waits for it: the maildrop asks whether a
 * file was queued already, pruning walks every sent message, and Sent
 * copies are scheduled once at start. */
static void
start_whole_queue_work (OutboxDaemon *self)
{
  g_clear_signal_handler (&self->loaded_handler, self->queue);
  outbox_maildrop_start (self->maildrop);
  prune_sent (self);
  self->prune_id = g_timeout_add_seconds (PRUNE_INTERVAL_SECONDS, prune_sent, self);
  outbox_sent_copy_schedule (self->sent_copy);
  if (outbox_queue_get_loaded_from_files (self->queue) >= CHECKPOINT_CHANGES)
    write_checkpoint (self);
  self->checkpoint_id = g_timeout_add_seconds (CHECKPOINT_INTERVAL_SECONDS, checkpoint_if_changed, self);
}

static void
on_queue_loaded (OutboxQueue *queue, gpointer user_data)
{
  start_whole_queue_work (user_data);
}

/* Delivery starts at once, with what is read so far: the queue says "due"
 * as more comes in. */
void
outbox_daemon_start (OutboxDaemon *self)
{
  outbox_delivery_schedule (self->delivery);
  if (outbox_queue_is_loaded (self->queue))
    start_whole_queue_work (self);
  else
    self->loaded_handler = g_signal_connect (self->queue, "loaded", G_CALLBACK (on_queue_loaded), self);
}
