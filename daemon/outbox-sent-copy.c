/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-imap.h"
#include "outbox-secret.h"
#include "outbox-sent-copy.h"

/* Copies of sent messages into the account's IMAP Sent folder.
 *
 * Delivery marks a message "sent" and, in the same write, its copy
 * "pending"; only then does a copy start, so a copy that fails can never
 * cause a second send.  For each account one copy runs at a time:
 *
 *   PASSWORD: the IMAP password from the Secret Service (when the URL names
 *     a user);
 *   OPEN: connect, TLS, sign-in (outbox-session.c, with IMAP's commands
 *     from outbox-imap.c);
 *   FIND: the mailbox marked \Sent, else the account's sent-folder, else
 *     "Sent";
 *   APPEND: the message, streamed from the spool, flagged \Seen;
 *   LOGOUT.
 *
 * Success marks the copy "saved".  Any failure (server down, no Sent
 * folder, login refused) leaves it "pending" with the reason and a next try
 * after the account's backoff; after the account's give-up time it becomes
 * "failed".  `outbox retry ID` makes a failed copy pending again. */

typedef struct
{
  OutboxSentCopy *self;         /* (owned) */
  char *id;                     /* (owned) */
  OutboxAccountConfig *account;       /* (owned) */
  OutboxImapSession *session;   /* (owned) (nullable) */
  OutboxImapMailbox *mailbox;   /* (owned) (nullable) */
} CopyJob;

struct _OutboxSentCopy
{
  GObject parent_instance;

  OutboxQueue *queue;           /* (owned) */
  OutboxAccountStore *accounts; /* (unowned) outlives this */
  OutboxCredentials *credentials; /* (owned) */
  GHashTable *busy_accounts;    /* (owned) set of account names (owned) */
  GCancellable *cancellable;    /* (owned) */
  gulong changed_handler;
  guint idle_id;
  guint timer_id;
};

G_DEFINE_FINAL_TYPE (OutboxSentCopy, outbox_sent_copy, G_TYPE_OBJECT)

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static void
copy_job_free (CopyJob *job)
{
  g_hash_table_remove (job->self->busy_accounts, job->account->name);
  g_clear_object (&job->session);
  g_clear_pointer (&job->mailbox, outbox_imap_mailbox_free);
  outbox_account_config_free (job->account);
  g_free (job->id);
  g_object_unref (job->self);
  g_free (job);
}

static void
save_record (OutboxSentCopy *self, OutboxSpoolRecord *record)
{
  g_autoptr (GError) error = NULL;

  if (!outbox_queue_save (self->queue, record, &error))
    g_critical ("Could not record the Sent copy of %s: %s", record->id, error->message);
}

/* Ends a job: records its outcome and looks for more work. */
static void
copy_job_finish (CopyJob *job, const GError *error)
{
  g_autoptr (OutboxSentCopy) self = g_object_ref (job->self);
  OutboxSpoolRecord *record = outbox_queue_lookup (self->queue, job->id);

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      copy_job_free (job);
      return;
    }
  if (record != NULL)
    {
      OutboxRetryPolicy policy = outbox_retry_policy_for (job->account);

      outbox_queue_settle_copy (self->queue, record, error, &policy);
      if (error != NULL)
        g_message ("Copy of %s to the Sent folder of %s: %s", job->id, job->account->name,
                   error->message);
      save_record (self, record);
    }
  copy_job_free (job);
  outbox_sent_copy_schedule (self);
}

static void
logout_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CopyJob *job = user_data;
  g_autoptr (GError) error = NULL;

  /* The copy is stored once APPEND said OK; LOGOUT cannot undo it. */
  if (!outbox_session_quit_finish (OUTBOX_SESSION (source), result, &error))
    g_debug ("IMAP LOGOUT: %s", error->message);
  copy_job_finish (job, NULL);
}

static void
append_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CopyJob *job = user_data;
  g_autoptr (GError) error = NULL;

  if (!outbox_imap_session_append_finish (job->session, result, &error))
    {
      copy_job_finish (job, error);
      return;
    }
  outbox_session_quit_async (OUTBOX_SESSION (job->session), job->self->cancellable, logout_done,
                             job);
}

static void
find_sent_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CopyJob *job = user_data;
  OutboxSpoolRecord *record;
  g_autoptr (GInputStream) message = NULL;
  g_autoptr (GError) error = NULL;
  const char *flags[] = { "\\Seen", NULL };

  job->mailbox = outbox_imap_session_find_sent_finish (job->session, result, &error);
  record = outbox_queue_lookup (job->self->queue, job->id);
  if (job->mailbox != NULL && record == NULL)
    g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "the message left the spool");
  if (error == NULL)
    message = outbox_spool_open_message (outbox_queue_get_spool (job->self->queue), record, &error);
  if (message == NULL)
    {
      copy_job_finish (job, error);
      return;
    }
  outbox_imap_session_append_async (job->session, job->mailbox->name, message, record->size, flags,
                                    NULL, job->self->cancellable, append_done, job);
}

static void
open_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CopyJob *job = user_data;
  g_autoptr (GError) error = NULL;

  if (!outbox_session_open_finish (OUTBOX_SESSION (job->session), result, &error))
    {
      /* The next try, after the backoff, asks for a new access token
       * instead of the one the server refused. */
      if (g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH))
        outbox_credentials_forget_token (job->self->credentials, job->account);
      copy_job_finish (job, error);
      return;
    }
  outbox_imap_session_find_sent_async (job->session, job->account->sent_folder,
                                       job->self->cancellable, find_sent_done, job);
}

static void
copy_job_open (CopyJob *job, const OutboxSecret *secret)
{
  OutboxImapConfig config = {
    .url = job->account->imap,
    .password = secret != NULL ? secret->secret : NULL,
    .secret_kind = secret != NULL ? secret->kind : outbox_credentials_kind_for (job->account),
    .auth_mech = job->account->auth,
    .tls_ca_file = job->account->tls_ca_file,
    .tls_fingerprint = job->account->tls_fingerprint,
  };

  outbox_imap_timeouts_init_default (&config.timeouts);
  job->session = outbox_imap_session_new (&config);
  outbox_session_open_async (OUTBOX_SESSION (job->session), job->self->cancellable, open_done, job);
}

/* A missing password is left for the session to report. */
static void
secret_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CopyJob *job = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxSecret) secret =
      outbox_credentials_lookup_finish (OUTBOX_CREDENTIALS (source), result, &error);

  if (error != NULL && !g_error_matches (error, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_MISSING))
    {
      copy_job_finish (job, error);
      return;
    }
  copy_job_open (job, secret);
}

static void
copy_job_start (OutboxSentCopy *self, OutboxSpoolRecord *record, const OutboxAccountConfig *account)
{
  CopyJob *job = g_new0 (CopyJob, 1);

  job->self = g_object_ref (self);
  job->id = g_strdup (record->id);
  job->account = outbox_account_config_copy (account);
  g_hash_table_add (self->busy_accounts, g_strdup (account->name));
  if (account->imap->user == NULL)
    {
      copy_job_open (job, NULL);
      return;
    }
  outbox_credentials_lookup_async (self->credentials, account, account->imap, self->cancellable,
                                   secret_done, job);
}

/* A pending copy whose account lost its IMAP server cannot be made. */
static void
give_up_copy (OutboxSentCopy *self, OutboxSpoolRecord *record)
{
  outbox_queue_fail_copy (self->queue, record, "the account has no IMAP server any more");
  save_record (self, record);
}

static gboolean
timer_fired (gpointer user_data)
{
  OutboxSentCopy *self = user_data;

  self->timer_id = 0;
  outbox_sent_copy_schedule (self);
  return G_SOURCE_REMOVE;
}

void
outbox_sent_copy_schedule (OutboxSentCopy *self)
{
  g_autoptr (GPtrArray) accounts = outbox_queue_work_accounts (self->queue, OUTBOX_QUEUE_WORK_SENT_COPY);
  gint64 now = now_seconds ();
  gint64 wake_at = 0;

  /* One copy at a time per account, its earliest due first. */
  for (guint i = 0; i < accounts->len; i++)
    {
      const char *account_name = g_ptr_array_index (accounts, i);
      const OutboxAccountConfig *account;
      OutboxSpoolRecord *record;
      gint64 due;

      while (!g_hash_table_contains (self->busy_accounts, account_name)
             && (record = outbox_queue_next_work (self->queue, OUTBOX_QUEUE_WORK_SENT_COPY, account_name,
                                                  &due)) != NULL)
        {
          if (due > now)
            {
              if (wake_at == 0 || due < wake_at)
                wake_at = due;
              break;
            }
          account = outbox_account_store_lookup (self->accounts, account_name);
          if (account == NULL || account->imap == NULL)
            give_up_copy (self, record);
          else
            copy_job_start (self, record, account);
        }
    }
  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (wake_at != 0)
    self->timer_id = g_timeout_add_seconds ((guint) MAX (wake_at - now, 0), timer_fired, self);
}

static gboolean
schedule_idle (gpointer user_data)
{
  OutboxSentCopy *self = user_data;

  self->idle_id = 0;
  outbox_sent_copy_schedule (self);
  return G_SOURCE_REMOVE;
}

/* Many messages change at once during a drain: one look at the queue is
 * enough for all of them. */
static void
on_message_changed (OutboxQueue *queue,
                    const char *id,
                    const char *state,
                    GVariant *details,
                    gpointer user_data)
{
  OutboxSentCopy *self = user_data;

  if (g_str_equal (state, "sent") && self->idle_id == 0)
    self->idle_id = g_idle_add (schedule_idle, self);
}

static void
outbox_sent_copy_dispose (GObject *object)
{
  OutboxSentCopy *self = OUTBOX_SENT_COPY (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_signal_handler (&self->changed_handler, self->queue);
  g_clear_handle_id (&self->idle_id, g_source_remove);
  g_clear_handle_id (&self->timer_id, g_source_remove);
  G_OBJECT_CLASS (outbox_sent_copy_parent_class)->dispose (object);
}

static void
outbox_sent_copy_finalize (GObject *object)
{
  OutboxSentCopy *self = OUTBOX_SENT_COPY (object);

  g_clear_pointer (&self->busy_accounts, g_hash_table_unref);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->queue);
  g_clear_object (&self->credentials);
  G_OBJECT_CLASS (outbox_sent_copy_parent_class)->finalize (object);
}

static void
outbox_sent_copy_class_init (OutboxSentCopyClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = outbox_sent_copy_dispose;
  object_class->finalize = outbox_sent_copy_finalize;
}

static void
outbox_sent_copy_init (OutboxSentCopy *self)
{
  self->busy_accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->cancellable = g_cancellable_new ();
}

OutboxSentCopy *
outbox_sent_copy_new (OutboxQueue *queue,
                      OutboxAccountStore *accounts,
                      OutboxCredentials *credentials)
{
  OutboxSentCopy *self = g_object_new (OUTBOX_TYPE_SENT_COPY, NULL);

  self->queue = g_object_ref (queue);
  self->credentials = g_object_ref (credentials);
  self->accounts = accounts;
  self->changed_handler = g_signal_connect (queue, "message-changed",
                                            G_CALLBACK (on_message_changed), self);
  return self;
}
