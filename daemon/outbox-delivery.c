/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-delivery.h"
#include "outbox-error.h"
#include "outbox-notify.h"
#include "outbox-pop3.h"
#include "outbox-retry.h"
#include "outbox-smtp-session.h"

/* How a lane delivers one message:
 *
 *   IDLE --(a due message for this account)--> SECRET
 *   SECRET: when the SMTP URL names a user, the credentials source gives
 *     the password or access token (outbox-credentials.h: the Secret
 *     Service, a command, OAuth2 or GNOME Online Accounts).  No password, an
 *     OAuth2 grant that needs renewing or a linked account gone: the account
 *     is blocked with a state that says what to do (needs-password,
 *     needs-authorization, needs-attention) and the message is deferred
 *     without a planned attempt until the user acts (SetPassword,
 *     authorize, Flush).
 *   OPEN: a session still open from the previous message of this account is
 *     reused; otherwise a new one connects, greets, secures and logs in.  A
 *     failure here is applied to every pending recipient of the message:
 *     a 5xx reply fails them, 535 blocks the account (an access token the
 *     server refuses is first replaced once and the session tried again),
 *     anything else (4xx, timeouts, TLS, lost connections) defers.
 *   SEND: one transaction for the recipients still pending; each
 *     recipient's outcome is taken from its own RCPT reply, then from the
 *     reply that ended the transaction.  The record is written to disk
 *     (fsync) before anything else happens on the connection, so an
 *     accepted recipient is never sent to again after a restart.
 *   NEXT: another due message of the same account goes out on the same
 *     connection; with none, the lane sends QUIT and is IDLE again.
 *
 * A message whose recipients are all sent is "sent"; one with a recipient
 * still deferred is "deferred" with its next attempt after a backoff that
 * doubles from the account's retry-first (one minute) to its retry-max (one
 * hour); one whose recipients are all done with at least one failed is
 * "failed".  After give-up-after (five days) of deferral the remaining
 * recipients fail.
 *
 * Each account has up to max-connections lanes at once.  While
 * GNetworkMonitor says the network is unavailable no lane starts; when it
 * comes back, messages deferred because the server could not be reached
 * are due at once.  Permanent failures, give-ups and rejected passwords are
 * told to the user through a desktop notification (see outbox-notify.c). */


typedef struct
{
  OutboxDelivery *delivery; /* (unowned) owns the lane */
  char *account_name;       /* (owned) */
  OutboxAccountConfig *account;   /* (owned) (nullable) settings of the open session */
  OutboxSmtpSession *session; /* (owned) (nullable) */
  OutboxSecret *secret;     /* (owned) (nullable) for the session being opened */
  OutboxSaslSecretKind secret_kind; /* of the session being opened */
  gboolean token_retried;   /* a refused token was replaced once for this message */
  gboolean had_secret;      /* the session being opened was given a secret */
  char *message_id;         /* (owned) (nullable) the queue id being sent */
  guint failed_at_start;    /* failed recipients when the attempt began */
  GArray *batch;            /* (owned) guint: the recipients (indexes) of
                             * the transaction under way */
  GByteArray *tried;        /* (owned) per recipient: given to a transaction
                             * of this attempt already */
  struct _Outcome *unsaved; /* (unowned) (nullable) the previous message's
                             * outcome, still being written */
} Lane;

/* The outcome of one message, being written to the spool. */
typedef struct _Outcome
{
  Lane *lane;
  char *id;                 /* (owned) */
  guint failed_at_start;
  gpointer next_end;        /* (owned) (nullable) HeldEndStream: the end of
                             * the message sent meanwhile */
  gboolean lane_waits;      /* nothing was sent meanwhile: the lane goes on
                             * once this is on disk */
} Outcome;

struct _OutboxDelivery
{
  GObject parent_instance;

  OutboxQueue *queue;            /* (owned) */
  OutboxAccountStore *accounts;  /* (unowned) outlives the delivery */
  GHashTable *lanes;             /* (owned) account name -> GPtrArray of Lane (owned) */
  GHashTable *blocked;           /* (owned) account name (owned) -> AccountBlock (owned) */
  GHashTable *failing;           /* (owned) account name (owned) -> AccountFailure (owned) */
  OutboxCredentials *credentials; /* (owned) */
  GCancellable *cancellable;     /* (owned) */
  GNetworkMonitor *monitor;      /* (unowned) the default monitor */
  gboolean online;
  guint timer_id;
  gint64 timer_at;
  gulong due_handler;
  gulong monitor_handler;
};

G_DEFINE_FINAL_TYPE (OutboxDelivery, outbox_delivery, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_ONLINE,
};

enum
{
  SIGNAL_ACCOUNT_STATE_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void lane_next (Lane *lane);
static void lane_start (Lane *lane, OutboxSpoolRecord *record);
static gboolean smtp_settings_equal (const OutboxAccountConfig *a, const OutboxAccountConfig *b);
static OutboxSpoolRecord *find_due_for_account (OutboxDelivery *self, const char *account, gint64 now);
static gint64 account_rests_until (OutboxDelivery *self, const char *account_name, gint64 now);

/* The end of a message, held back
 *
 * A lane sends its next message while the outcome of the previous one is
 * still being written, but the next final dot must wait for that write: a
 * kill then costs at most one message the server accepted and the spool
 * does not know of.  The body stream passes everything through except its
 * end, which it reports only once the gate is opened; the session sends
 * the terminating dot when it sees the end. */

#define HELD_TYPE_END_STREAM (held_end_stream_get_type ())
G_DECLARE_FINAL_TYPE (HeldEndStream, held_end_stream, HELD, END_STREAM, GFilterInputStream)

struct _HeldEndStream
{
  GFilterInputStream parent_instance;

  gboolean open;
  GTask *waiting; /* (owned) (nullable) a read that reached the end; it
                   * holds the stream until the gate opens */
};

G_DEFINE_FINAL_TYPE (HeldEndStream, held_end_stream, G_TYPE_FILTER_INPUT_STREAM)

static gssize
held_end_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable,
                      GError **error)
{
  HeldEndStream *self = HELD_END_STREAM (stream);
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  gssize n = g_input_stream_read (base, buffer, count, cancellable, error);

  if (n == 0 && !self->open)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           "The end of the message is held back");
      return -1;
    }
  return n;
}

static void
held_base_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  HeldEndStream *self = g_task_get_source_object (task);
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (n < 0)
    g_task_return_error (task, error);
  else if (n > 0 || self->open)
    g_task_return_int (task, n);
  else
    self->waiting = g_steal_pointer (&task);
}

static void
held_end_stream_read_async (GInputStream *stream, void *buffer, gsize count, int io_priority,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));
  GTask *task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, held_end_stream_read_async);
  g_input_stream_read_async (base, buffer, count, io_priority, cancellable, held_base_read, task);
}

static gssize
held_end_stream_read_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);
  return g_task_propagate_int (G_TASK (result), error);
}

static void
held_end_stream_class_init (HeldEndStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  stream_class->read_fn = held_end_stream_read;
  stream_class->read_async = held_end_stream_read_async;
  stream_class->read_finish = held_end_stream_read_finish;
}

static void
held_end_stream_init (HeldEndStream *self)
{
}

static HeldEndStream *
held_end_stream_new (GInputStream *base)
{
  return g_object_new (HELD_TYPE_END_STREAM, "base-stream", base, NULL);
}

/* Lets the end through, now or when the stream gets there. */
static void
held_end_stream_release (HeldEndStream *self)
{
  self->open = TRUE;
  if (self->waiting != NULL)
    {
      GTask *task = g_steal_pointer (&self->waiting);

      g_task_return_int (task, 0);
      g_object_unref (task);
    }
}


/* Why an account's messages wait for the user. */
typedef struct
{
  OutboxAccountState state;
  char *message; /* (owned) what to do */
} AccountBlock;

static void
account_block_free (AccountBlock *block)
{
  g_free (block->message);
  g_free (block);
}

/* An account whose server could not be reached or refused the session
 * (a network, TLS, 4xx or 5xx failure before any message was handed
 * over): the failure is the account's, not the messages'.  Every message
 * due for it is deferred with it, and the account's own backoff decides
 * the next attempt for all of them; until then a message that becomes due
 * is deferred at once, without a connection.  The account says so until
 * its server answers. */
typedef struct
{
  gint64 since;        /* the first failure of this run, Unix time */
  gint64 next_attempt; /* the account's next attempt */
  guint attempts;      /* failed attempts (rounds) in this run */
  gboolean network;    /* the last one for want of a network */
  char *error;         /* (owned) the last failure */
} AccountFailure;

static void
account_failure_free (AccountFailure *failure)
{
  g_free (failure->error);
  g_free (failure);
}

static gint64
now_seconds (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

static void
lane_clear_secret (Lane *lane)
{
  g_clear_pointer (&lane->secret, outbox_secret_free);
}

static void
lane_free (Lane *lane)
{
  g_free (lane->account_name);
  g_clear_pointer (&lane->account, outbox_account_config_free);
  g_clear_object (&lane->session);
  lane_clear_secret (lane);
  g_free (lane->message_id);
  g_clear_pointer (&lane->tried, g_byte_array_unref);
  g_clear_pointer (&lane->batch, g_array_unref);
  g_free (lane);
}

static GPtrArray *
account_lanes (OutboxDelivery *self, const char *account_name)
{
  GPtrArray *lanes = g_hash_table_lookup (self->lanes, account_name);

  if (lanes == NULL)
    {
      lanes = g_ptr_array_new_with_free_func ((GDestroyNotify) lane_free);
      g_hash_table_insert (self->lanes, g_strdup (account_name), lanes);
    }
  return lanes;
}

/* An idle lane of the account, or a new one while it has fewer than
 * @max_lanes; NULL when all are busy. */
static Lane *
get_idle_lane (OutboxDelivery *self, const char *account_name, guint max_lanes)
{
  GPtrArray *lanes = account_lanes (self, account_name);
  Lane *lane;

  for (guint i = 0; i < lanes->len; i++)
    {
      lane = g_ptr_array_index (lanes, i);
      if (lane->message_id == NULL)
        return lane;
    }
  if (lanes->len >= max_lanes)
    return NULL;
  lane = g_new0 (Lane, 1);
  lane->delivery = self;
  lane->account_name = g_strdup (account_name);
  g_ptr_array_add (lanes, lane);
  return lane;
}

static const OutboxAccountConfig *
lane_get_account (Lane *lane)
{
  return outbox_account_store_lookup (lane->delivery->accounts, lane->account_name);
}

static gboolean
account_is_blocked (OutboxDelivery *self, const char *account_name)
{
  return g_hash_table_contains (self->blocked, account_name);
}

/* Every change of what outbox_delivery_get_account_state() says goes
 * through the functions below, which tell it. */
static void
account_state_changed (OutboxDelivery *self, const char *account_name)
{
  g_signal_emit (self, signals[SIGNAL_ACCOUNT_STATE_CHANGED], 0, account_name);
}

static void
unblock_account (OutboxDelivery *self, const char *account_name)
{
  if (g_hash_table_remove (self->blocked, account_name))
    account_state_changed (self, account_name);
}

/* The account's server answered. */
static void
clear_failure (OutboxDelivery *self, const char *account_name)
{
  if (g_hash_table_remove (self->failing, account_name))
    account_state_changed (self, account_name);
}

static char *
state_summary (OutboxAccountState state, const char *account_name)
{
  switch (state)
    {
    case OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION:
      return g_strdup_printf ("Outbox: account %s needs to be authorized again", account_name);
    case OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION:
      return g_strdup_printf ("Outbox: account %s needs attention", account_name);
    case OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD:
    case OUTBOX_ACCOUNT_STATE_OK:
    case OUTBOX_ACCOUNT_STATE_FAILING:
    default:
      return g_strdup_printf ("Outbox: the password of account %s was refused", account_name);
    }
}

/* Stops the account's deliveries until the user acts, and tells them once. */
static void
block_account (OutboxDelivery *self,
               const char *account_name,
               OutboxAccountState state,
               const char *message)
{
  AccountBlock *block = g_hash_table_lookup (self->blocked, account_name);
  g_autofree char *summary = NULL;
  gboolean known = block != NULL;

  if (known && block->state == state && g_strcmp0 (block->message, message) == 0)
    return;
  block = g_new0 (AccountBlock, 1);
  block->state = state;
  block->message = g_strdup (message);
  g_hash_table_replace (self->blocked, g_strdup (account_name), block);
  account_state_changed (self, account_name);
  if (known)
    return;
  summary = state_summary (state, account_name);
  outbox_notify (summary, message);
}

/* An asynchronous step of a lane keeps the delivery (which owns the lane)
 * alive until its callback has run; the callback takes the reference back. */
static Lane *
lane_hold (Lane *lane)
{
  g_object_ref (lane->delivery);
  return lane;
}

static OutboxSpoolRecord *
lane_record (Lane *lane)
{
  return outbox_queue_lookup (lane->delivery->queue, lane->message_id);
}

/* Outcomes */

static void
set_recipient (OutboxRecipient *rcpt, OutboxRecipientState state, guint code, const char *reply)
{
  rcpt->state = state;
  rcpt->reply_code = code;
  g_free (rcpt->reply);
  rcpt->reply = g_strdup (reply);
}

static void
set_recipient_from_reply (OutboxRecipient *rcpt, const OutboxSmtpReply *reply)
{
  g_autofree char *text = outbox_smtp_reply_to_string (reply);
  OutboxRecipientState state;

  if (reply->code >= 500)
    state = OUTBOX_RECIPIENT_STATE_FAILED;
  else if (reply->code >= 400)
    state = OUTBOX_RECIPIENT_STATE_DEFERRED;
  else
    state = OUTBOX_RECIPIENT_STATE_SENT;
  set_recipient (rcpt, state, reply->code, text);
}

static void
record_set_last_reply (OutboxSpoolRecord *record, const char *text)
{
  g_free (record->last_reply);
  record->last_reply = g_strdup (text);
}

/* Applies a failure that happened before any recipient was answered. */
static void
record_fail_pending (OutboxSpoolRecord *record, OutboxRecipientState state, guint code, const char *why)
{
  for (guint i = 0; i < record->n_recipients; i++)
    {
      OutboxRecipient *rcpt = outbox_spool_record_get_recipient (record, i);
      if (outbox_recipient_is_pending (rcpt))
        set_recipient (rcpt, state, code, why);
    }
  record_set_last_reply (record, why);
}

static void
lane_save (Lane *lane, OutboxSpoolRecord *record)
{
  g_autoptr (GError) error = NULL;

  if (!outbox_queue_save (lane->delivery->queue, record, &error))
    g_critical ("Could not record the outcome of %s: %s", record->id, error->message);
}

static void
lane_drop_session (Lane *lane)
{
  g_clear_object (&lane->session);
  g_clear_pointer (&lane->account, outbox_account_config_free);
}

static gboolean
recipient_has_failed (const OutboxRecipient *rcpt)
{
  return rcpt->state == OUTBOX_RECIPIENT_STATE_FAILED;
}

/* How many of the message's recipients @test holds for. */
static guint
count_recipients (const OutboxSpoolRecord *record, gboolean (*test) (const OutboxRecipient *rcpt))
{
  guint n = 0;

  for (guint i = 0; i < record->n_recipients; i++)
    n += test (outbox_spool_record_get_recipient ((OutboxSpoolRecord *) record, i)) ? 1 : 0;
  return n;
}

/* The message's attempt is over: write its outcome, then go on. */

/* Tells the user which recipients failed, and why, in one notification. */
static void
notify_failure (const OutboxSpoolRecord *record)
{
  g_autoptr (GString) body = g_string_new (NULL);
  g_autofree char *summary = NULL;

  summary = g_strdup_printf ("Mail not delivered: %s", record->subject ? record->subject : record->id);
  for (guint i = 0; i < record->n_recipients; i++)
    {
      const OutboxRecipient *rcpt = outbox_spool_record_get_recipient ((OutboxSpoolRecord *) record, i);
      if (rcpt->state == OUTBOX_RECIPIENT_STATE_FAILED)
        g_string_append_printf (body, "%s: %s\n", rcpt->address, rcpt->reply ? rcpt->reply : "failed");
    }
  g_string_append_printf (body, "See outbox show %s", record->id);
  outbox_notify_bounced (summary, body->str, record->id);
}

static void
outcome_free (Outcome *outcome)
{
  g_free (outcome->id);
  g_clear_object (&outcome->next_end);
  g_free (outcome);
}

static void
outcome_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Outcome *outcome = user_data;
  Lane *lane = outcome->lane;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (GError) error = NULL;
  OutboxSpoolRecord *record;

  if (!outbox_queue_save_finish (delivery->queue, result, &error))
    g_critical ("Could not record the outcome of %s: %s", outcome->id, error->message);
  if (lane->unsaved == outcome)
    lane->unsaved = NULL;
  if (outcome->next_end != NULL)
    held_end_stream_release (outcome->next_end);
  if (!g_cancellable_is_cancelled (delivery->cancellable))
    {
      record = outbox_queue_lookup (delivery->queue, outcome->id);
      if (record != NULL)
        {
          if (count_recipients (record, recipient_has_failed) > outcome->failed_at_start)
            notify_failure (record);
          g_info ("%s: %s%s%s", record->id, outbox_spool_state_to_string (record->state),
                  record->last_reply ? ": " : "", record->last_reply ? record->last_reply : "");
        }
      if (outcome->lane_waits)
        {
          g_clear_pointer (&lane->message_id, g_free);
          lane_next (lane);
        }
    }
  outcome_free (outcome);
}

/* The next message of the account can go out on the open session while
 * this outcome is written, its end held back until it is on disk. */
static OutboxSpoolRecord *
lane_next_overlapping (Lane *lane)
{
  OutboxDelivery *self = lane->delivery;
  const OutboxAccountConfig *account = lane_get_account (lane);

  gint64 now = now_seconds ();

  /* A resting account's due messages are deferred by the scheduler. */
  if (!self->online || account_is_blocked (self, lane->account_name) || account == NULL
      || account_rests_until (self, lane->account_name, now) != 0
      || lane->session == NULL || !outbox_session_is_open (OUTBOX_SESSION (lane->session))
      || !smtp_settings_equal (lane->account, account))
    return NULL;
  return find_due_for_account (self, lane->account_name, now);
}

/* The outcome is on disk before the connection is used for anything but
 * the next message, whose final dot waits for it: a recipient that
 * accepted a message is never sent it twice, and a kill costs at most one
 * accepted message the spool does not know of per lane. */
static void
lane_finish_message (Lane *lane, OutboxSpoolRecord *record, gint64 retry_at)
{
  const OutboxAccountConfig *account = lane_get_account (lane);
  OutboxRetryPolicy policy = outbox_retry_policy_for (account);
  Outcome *outcome = g_new0 (Outcome, 1);
  OutboxSpoolRecord *next;

  outbox_queue_settle (lane->delivery->queue, record, &policy, retry_at,
                       account != NULL && outbox_account_config_wants_sent_copy (account, record->save_to_sent));
  outcome->lane = lane;
  outcome->id = g_strdup (record->id);
  outcome->failed_at_start = lane->failed_at_start;
  lane->unsaved = outcome;
  /* The callback takes back the reference lane_hold() gives. */
  lane_hold (lane);
  outbox_queue_save_async (lane->delivery->queue, record, NULL, outcome_saved, outcome);
  next = lane_next_overlapping (lane);
  if (next == NULL)
    {
      outcome->lane_waits = TRUE;
      return;
    }
  g_clear_pointer (&lane->message_id, g_free);
  lane_start (lane, next);
}

/* The message file no longer matches its record: the transaction was
 * aborted before the final dot, and the message is set aside, not sent. */
static void
lane_quarantine (Lane *lane, OutboxSpoolRecord *record, const char *reason)
{
  g_autoptr (GError) error = NULL;

  lane_drop_session (lane);
  if (!outbox_queue_quarantine (lane->delivery->queue, record->id, reason, &error))
    {
      g_critical ("Could not quarantine %s: %s", record->id, error->message);
      outbox_queue_hold_broken (lane->delivery->queue, record, reason);
      lane_save (lane, record);
    }
  g_clear_pointer (&lane->message_id, g_free);
  lane_next (lane);
}

/* Failures that say the server could not be reached, rather than that it
 * answered something: worth trying again as soon as the network changes. */
static gboolean
error_is_network (const GError *error)
{
  if (error == NULL)
    return FALSE;
  if (error->domain == G_RESOLVER_ERROR)
    return TRUE;
  if (error->domain == G_IO_ERROR)
    return !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  return g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT)
         || g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
}

/* What the user must do when the server refuses to let the account in. */
static char *
sign_in_advice (Lane *lane, const GError *error, OutboxAccountState *out_state)
{
  const OutboxAccountConfig *account = lane->account != NULL ? lane->account : lane_get_account (lane);
  const char *name = lane->account_name;

  *out_state = OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD;
  /* With a secret in hand, signing in was impossible (no mechanism both
   * sides know, no TLS to send it over): nothing was refused. */
  if (g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE)
      && lane->had_secret)
    {
      *out_state = OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION;
      return g_strdup_printf ("%s; nothing was sent to sign in.  Check the account (outbox "
                              "account test %s; --auth picks a mechanism), then outbox flush",
                              error->message, name);
    }
  if (g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_DISABLED))
    {
      *out_state = OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION;
      return g_strdup_printf ("%s; then outbox flush", error->message);
    }
  if (account != NULL && account->oauth2 != NULL)
    {
      *out_state = OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION;
      return g_strdup_printf ("%s; sign in again with: outbox account authorize %s", error->message,
                              name);
    }
  if (account != NULL && account->goa_id != NULL)
    {
      *out_state = OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION;
      return g_strdup_printf ("%s; check the account in Settings → Online Accounts, then outbox "
                              "flush",
                              error->message);
    }
  if (account != NULL && account->token_command != NULL)
    {
      *out_state = OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION;
      return g_strdup_printf ("%s; check that the account's token command prints a valid access "
                              "token (its tool may need to sign in again), then outbox flush",
                              error->message);
    }
  if (account != NULL && account->password_command != NULL)
    return g_strdup_printf ("%s; check what the account's password command prints, then outbox "
                            "flush",
                            error->message);
  return g_strdup_printf ("%s; set the password with: outbox account add … --password-stdin, or "
                          "SetPassword over D-Bus, then outbox flush",
                          error->message);
}

static void lane_connect (Lane *lane, const OutboxAccountConfig *account);

static void
deferral_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!outbox_queue_save_finish (OUTBOX_QUEUE (source), result, &error))
    g_critical ("Could not record a deferral: %s", error->message);
}

static void
notify_gave_up (const char *account_name, guint count, const char *why)
{
  g_autofree char *summary = g_strdup_printf ("Mail not delivered: %u message%s of account %s",
                                              count, count == 1 ? "" : "s", account_name);
  g_autofree char *body = g_strdup_printf ("Outbox gave up trying; the server's last words: %s\n"
                                           "See outbox queue --all",
                                           why);

  outbox_notify_bounced (summary, body, NULL);
}

/* Counts a failed attempt of the account: one per round, however many
 * lanes fail in it (a lane that started before the round's failure was
 * written down is part of that round).  TRUE when this starts a round. */
static gboolean
note_failure (OutboxDelivery *self, const char *account_name, const char *error, gboolean network)
{
  AccountFailure *failure = g_hash_table_lookup (self->failing, account_name);
  OutboxRetryPolicy policy =
      outbox_retry_policy_for (outbox_account_store_lookup (self->accounts, account_name));
  gint64 now = now_seconds ();
  gboolean new_round = failure == NULL || now >= failure->next_attempt;
  gboolean changed = failure == NULL || g_strcmp0 (failure->error, error) != 0;

  if (failure == NULL)
    {
      failure = g_new0 (AccountFailure, 1);
      failure->since = now;
      g_hash_table_insert (self->failing, g_strdup (account_name), failure);
    }
  g_free (failure->error);
  failure->error = g_strdup (error);
  failure->network = network;
  if (new_round)
    {
      failure->attempts++;
      failure->next_attempt = now + outbox_retry_backoff (&policy, failure->attempts);
    }
  if (changed)
    account_state_changed (self, account_name);
  return new_round;
}

static gboolean
error_is_sign_in (const GError *error)
{
  return g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH)
         || g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE)
         || g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_DISABLED);
}

/* An access token can expire or be revoked between two sessions: one the
 * server refuses is replaced once, and the session tried again. */
static gboolean
lane_retry_with_new_token (Lane *lane, const GError *error)
{
  const OutboxAccountConfig *account = lane_get_account (lane);

  if (!g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH) || account == NULL
      || lane->token_retried || lane->secret_kind != OUTBOX_SASL_SECRET_TOKEN)
    return FALSE;
  lane->token_retried = TRUE;
  g_message ("Account %s: the server refused the access token; trying once more with a new one",
             lane->account_name);
  outbox_credentials_forget_token (lane->delivery->credentials, account);
  lane_drop_session (lane);
  lane_connect (lane, account);
  return TRUE;
}

/* Defers every message of the account that is due now as the account's
 * failure says (@why, @code), to be tried again at @retry_at (0: when the
 * user acts).  @attempted: the failed attempt was made for them, which
 * counts.  Those that reach their give-up time fail, told in one
 * notification. */
static void
defer_due_messages (OutboxDelivery *self,
                    const char *account_name,
                    const char *why,
                    guint code,
                    gint64 retry_at,
                    gboolean network,
                    gboolean attempted)
{
  OutboxRetryPolicy policy =
      outbox_retry_policy_for (outbox_account_store_lookup (self->accounts, account_name));
  OutboxSpoolRecord *record;
  guint gave_up = 0, deferred = 0;
  gint64 now = now_seconds ();

  while ((record = find_due_for_account (self, account_name, now)) != NULL)
    {
      record_fail_pending (record, OUTBOX_RECIPIENT_STATE_DEFERRED, code, why);
      record->network_deferred = network;
      if (attempted)
        record->attempts++;
      outbox_queue_settle (self->queue, record, &policy, retry_at, FALSE);
      gave_up += record->state == OUTBOX_SPOOL_STATE_FAILED;
      deferred++;
      outbox_queue_save_async (self->queue, record, NULL, deferral_saved, NULL);
    }
  if (deferred > 0)
    g_debug ("Account %s: %u more messages deferred with it", account_name, deferred);
  if (gave_up > 0)
    notify_gave_up (account_name, gave_up, why);
}

/* What a failure to open a session means for the account: blocked until
 * the user acts (sign-in refused, a grant or linked account to renew), or
 * failing, tried again after its backoff.  Returns when to try again. */
static gint64
account_fail_open (Lane *lane, const GError *error, const char *why, gboolean *out_new_round)
{
  OutboxDelivery *self = lane->delivery;
  OutboxAccountState state;

  *out_new_round = TRUE;
  if (error_is_sign_in (error))
    {
      g_autofree char *advice = sign_in_advice (lane, error, &state);

      block_account (self, lane->account_name, state, advice);
      return 0;
    }
  if (g_error_matches (error, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_NEEDS_AUTHORIZATION)
      || g_error_matches (error, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_NEEDS_ATTENTION))
    {
      block_account (self, lane->account_name,
                     error->code == OUTBOX_CREDENTIALS_ERROR_NEEDS_AUTHORIZATION
                         ? OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION
                         : OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION,
                     error->message);
      return 0;
    }
  *out_new_round = note_failure (self, lane->account_name, why, error_is_network (error));
  return ((AccountFailure *) g_hash_table_lookup (self->failing, lane->account_name))->next_attempt;
}

/* Why the session could not be opened, in the words the user acts on. */
static char *
open_failure_reason (Lane *lane, const GError *error, guint *out_code)
{
  const OutboxSmtpReply *reply = lane->session ? outbox_smtp_session_get_last_reply (lane->session) : NULL;
  OutboxAccountState state;

  /* A reply code only where a reply was the reason: after a failed TLS
   * handshake the last reply is the 220 to STARTTLS. */
  *out_code = reply != NULL && (error_is_sign_in (error)
                                || g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY))
                  ? reply->code
                  : 0;
  if (error_is_sign_in (error))
    return sign_in_advice (lane, error, &state);
  if (g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY) && reply != NULL)
    return outbox_smtp_reply_to_string (reply);
  return g_strdup (error->message);
}

/* A failure before any message was handed over is the account's: the
 * message in hand and every other one due for the account are deferred
 * together, with one line in the log. */
static void
lane_fail_open (Lane *lane, OutboxSpoolRecord *record, const GError *error)
{
  OutboxDelivery *self = lane->delivery;
  g_autofree char *why = NULL;
  gboolean new_round, network = error_is_network (error);
  gint64 retry_at;
  guint code;

  if (lane_retry_with_new_token (lane, error))
    return;
  why = open_failure_reason (lane, error, &code);
  retry_at = account_fail_open (lane, error, why, &new_round);
  if (new_round)
    g_message ("Account %s: could not open an SMTP session: %s", lane->account_name, error->message);
  else
    g_debug ("Account %s: another connection failed too: %s", lane->account_name, error->message);
  record_fail_pending (record, OUTBOX_RECIPIENT_STATE_DEFERRED, code, why);
  record->network_deferred = network;
  lane_drop_session (lane);
  defer_due_messages (self, lane->account_name, why, code, retry_at, network, TRUE);
  lane_finish_message (lane, record, retry_at);
}

static const OutboxSmtpReply *
result_reply_for (const OutboxSmtpSendResult *result, guint j)
{
  if (j < result->rcpt_replies->len && g_ptr_array_index (result->rcpt_replies, j) != NULL)
    return g_ptr_array_index (result->rcpt_replies, j);
  return NULL;
}

/* One recipient's outcome: its own RCPT reply when negative, else whatever
 * ended the transaction. */
static void
apply_recipient_result (OutboxRecipient *rcpt,
                        const OutboxSmtpReply *rcpt_reply,
                        const OutboxSmtpSendResult *result)
{
  if (rcpt_reply != NULL && !outbox_smtp_reply_is_positive (rcpt_reply))
    set_recipient_from_reply (rcpt, rcpt_reply);
  else if (result->final_reply != NULL)
    set_recipient_from_reply (rcpt, result->final_reply);
  else if (result->stop_reply != NULL)
    set_recipient_from_reply (rcpt, result->stop_reply);
  else if (g_error_matches (result->error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_UNSUPPORTED))
    set_recipient (rcpt, OUTBOX_RECIPIENT_STATE_FAILED, 0, result->error->message);
  else
    set_recipient (rcpt, OUTBOX_RECIPIENT_STATE_DEFERRED, 0,
                   result->error ? result->error->message : "no reply from the server");
}

/* The reply that mattered most: the end of the transaction, else why it
 * stopped, else the last recipient the server refused. */
static char *
result_summary (const OutboxSmtpSendResult *result)
{
  if (result->final_reply != NULL)
    return outbox_smtp_reply_to_string (result->final_reply);
  if (result->stop_reply != NULL)
    return outbox_smtp_reply_to_string (result->stop_reply);
  if (result->error != NULL)
    return g_strdup (result->error->message);
  for (guint j = result->rcpt_replies->len; j > 0; j--)
    {
      const OutboxSmtpReply *reply = g_ptr_array_index (result->rcpt_replies, j - 1);
      if (reply != NULL && !outbox_smtp_reply_is_positive (reply))
        return outbox_smtp_reply_to_string (reply);
    }
  return NULL;
}

/* RFC 5321 section 4.5.3.1.10: a server that has taken as many
 * recipients as it will per transaction says 452 (some say 552 5.5.3) to
 * the next ones, which are for the next transaction, not a failure. */
static gboolean
is_too_many_recipients (const OutboxSmtpReply *reply)
{
  g_autofree char *text = NULL;

  if (reply == NULL)
    return FALSE;
  if (reply->code == 452)
    return TRUE;
  text = outbox_smtp_reply_to_string (reply);
  return reply->code == 552 && strstr (text, "5.5.3") != NULL;
}

/* Waits for the next transaction of this attempt, without a backoff. */
static void
set_recipient_later (OutboxRecipient *rcpt, const OutboxSmtpReply *reply)
{
  g_autofree char *text = outbox_smtp_reply_to_string (reply);

  set_recipient (rcpt, OUTBOX_RECIPIENT_STATE_QUEUED, reply->code, text);
}

static void lane_send (Lane *lane);

/* Whether recipient @i waits for a transaction of this attempt. */
static gboolean
lane_wants_recipient (Lane *lane, OutboxSpoolRecord *record, guint i)
{
  return outbox_recipient_is_pending (outbox_spool_record_get_recipient (record, i))
         && !lane->tried->data[i];
}


static void
batch_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (GError) error = NULL;

  if (!outbox_queue_save_finish (OUTBOX_QUEUE (source), result, &error))
    g_critical ("Could not record the outcome of %s: %s", lane->message_id, error->message);
  if (g_cancellable_is_cancelled (delivery->cancellable))
    return;
  if (error != NULL || !outbox_session_is_open (OUTBOX_SESSION (lane->session)))
    {
      lane_finish_message (lane, lane_record (lane), OUTBOX_QUEUE_RETRY_BACKOFF);
      return;
    }
  lane_send (lane);
}

/* A transaction that took some recipients and left others (the server's
 * limit per transaction, or the account's max-recipients) is followed at
 * once by another on the same connection, once what it did is on disk:
 * a message to 1,000 recipients goes out in one attempt. */
static gboolean
lane_goes_on_with_message (Lane *lane, OutboxSpoolRecord *record, guint pending_before)
{
  guint pending = count_recipients (record, outbox_recipient_is_pending);
  gboolean wanted = FALSE;

  for (guint i = 0; i < record->n_recipients && !wanted; i++)
    wanted = lane_wants_recipient (lane, record, i);
  if (!wanted || pending >= pending_before || !outbox_session_is_open (OUTBOX_SESSION (lane->session)))
    return FALSE;
  g_debug ("%s: %u recipients done, %u for the next transaction", record->id,
           pending_before - pending, pending);
  outbox_queue_save_async (lane->delivery->queue, record, NULL, batch_saved, lane_hold (lane));
  return TRUE;
}

/* The message requires DSN and the server does not offer it: nothing was
 * sent, and every pending recipient waits, with what the user can do. */
static void
lane_wait_for_dsn (Lane *lane, OutboxSpoolRecord *record, const GError *error)
{
  g_autofree char *why = NULL;

  if (record->dsn_required > 0)
    why = g_strdup_printf ("%s; the message asks for dsn-required, so it was not sent and is "
                           "tried again later, in case the server comes to offer DSN; to send "
                           "it without DSN, cancel it (outbox cancel %s) and send it again "
                           "without --dsn-required",
                           error->message, record->id);
  else
    why = g_strdup_printf ("%s; account %s asks for dsn-required, so the message was not sent; "
                           "to send it without DSN: outbox account update %s --no-dsn-required, "
                           "then outbox retry %s",
                           error->message, lane->account_name, lane->account_name, record->id);
  record_fail_pending (record, OUTBOX_RECIPIENT_STATE_DEFERRED, 0, why);
  record->network_deferred = FALSE;
  lane_finish_message (lane, record, OUTBOX_QUEUE_RETRY_BACKOFF);
}

static void
send_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (OutboxSmtpSendResult) result = outbox_smtp_session_send_finish (lane->session, res);
  OutboxSpoolRecord *record;
  g_autofree char *summary = NULL;
  guint pending_before;

  if (g_cancellable_is_cancelled (delivery->cancellable))
    return;
  record = lane_record (lane);
  if (g_error_matches (result->error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))
    {
      lane_quarantine (lane, record, result->error->message);
      return;
    }
  if (g_error_matches (result->error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_DSN_NOT_OFFERED))
    {
      /* The server answered: it can be reached, and the session goes on. */
      clear_failure (delivery, lane->account_name);
      lane_wait_for_dsn (lane, record, result->error);
      return;
    }
  if (result->dsn_not_offered)
    record->dsn_not_offered = TRUE;
  summary = result_summary (result);
  pending_before = count_recipients (record, outbox_recipient_is_pending);

  for (guint j = 0; j < lane->batch->len; j++)
    {
      guint i = g_array_index (lane->batch, guint, j);
      OutboxRecipient *rcpt = outbox_spool_record_get_recipient (record, i);
      const OutboxSmtpReply *rcpt_reply = result_reply_for (result, j);

      if (is_too_many_recipients (rcpt_reply) && result->final_reply != NULL
          && outbox_smtp_reply_is_positive (result->final_reply))
        {
          set_recipient_later (rcpt, rcpt_reply);
          lane->tried->data[i] = FALSE;
        }
      else
        apply_recipient_result (rcpt, rcpt_reply, result);
    }
  if (result->unknown_outcome)
    {
      record->unknown_outcome = TRUE;
      g_free (summary);
      summary = g_strdup_printf ("%s; the server may have accepted the message, which will be "
                                 "sent again with the same Message-ID",
                                 result->error ? result->error->message : "connection lost");
    }
  record_set_last_reply (record, summary);
  record->network_deferred = error_is_network (result->error);
  if (result->error != NULL || !outbox_session_is_open (OUTBOX_SESSION (lane->session)))
    lane_drop_session (lane);
  /* The server answered: it can be reached. */
  if (result->error == NULL || !error_is_network (result->error))
    clear_failure (delivery, lane->account_name);
  if (result->error == NULL && lane->session != NULL
      && lane_goes_on_with_message (lane, record, pending_before))
    return;
  lane_finish_message (lane, record, OUTBOX_QUEUE_RETRY_BACKOFF);
}

/* The recipients of the next transaction: those still pending that no
 * transaction of this attempt had, at most @limit of them (0: all). */
static GPtrArray *
pending_addresses (Lane *lane, OutboxSpoolRecord *record, guint limit)
{
  GPtrArray *rcpts = g_ptr_array_new ();

  g_array_set_size (lane->batch, 0);
  for (guint i = 0; i < record->n_recipients && (limit == 0 || rcpts->len < limit); i++)
    if (lane_wants_recipient (lane, record, i))
      {
        lane->tried->data[i] = TRUE;
        g_array_append_val (lane->batch, i);
        g_ptr_array_add (rcpts, outbox_spool_record_get_recipient (record, i)->address);
      }
  g_ptr_array_add (rcpts, NULL);
  return rcpts;
}

/* What the message asks of the server.  Whether it waits rather than go
 * without DSN where none is offered is its own choice, else its
 * account's as it is now: an update of the account reaches what is
 * queued. */
static OutboxDsnRequest
dsn_request_for (const OutboxSpoolRecord *record, const OutboxAccountConfig *account)
{
  OutboxDsnRequest dsn = { record->dsn_notify, record->dsn_ret, record->dsn_envid, FALSE };

  dsn.required = record->dsn_required >= 0 ? record->dsn_required != 0
                                           : account != NULL && account->dsn_required;
  return dsn;
}

static void
lane_send (Lane *lane)
{
  OutboxSpoolRecord *record = lane_record (lane);
  OutboxDsnRequest dsn;
  g_autoptr (GInputStream) body = NULL;
  g_autoptr (GPtrArray) rcpts = NULL;
  g_autoptr (GError) error = NULL;
  OutboxSmtpSendFlags flags = OUTBOX_SMTP_SEND_FLAGS_NONE;
  const OutboxAccountConfig *account;

  body = outbox_spool_open_message (outbox_queue_get_spool (lane->delivery->queue), record, &error);
  if (body == NULL)
    {
      lane_quarantine (lane, record, error->message);
      return;
    }
  if (lane->unsaved != NULL)
    {
      HeldEndStream *held = held_end_stream_new (body);

      /* A message given up before its end (its data failed verification)
       * holds nothing back any more. */
      if (lane->unsaved->next_end != NULL)
        {
          held_end_stream_release (lane->unsaved->next_end);
          g_clear_object (&lane->unsaved->next_end);
        }
      lane->unsaved->next_end = held;
      g_object_unref (body);
      body = g_object_ref (G_INPUT_STREAM (held));
    }
  if (record->eightbit)
    flags |= OUTBOX_SMTP_SEND_8BITMIME;
  if (record->smtputf8)
    flags |= OUTBOX_SMTP_SEND_SMTPUTF8;
  account = lane_get_account (lane);
  dsn = dsn_request_for (record, account);
  rcpts = pending_addresses (lane, record, account != NULL ? account->max_recipients : 0);
  outbox_smtp_session_send_async (lane->session, record->from, (const char *const *) rcpts->pdata,
                                  body, record->size, flags, &dsn, lane->delivery->cancellable,
                                  send_done, lane_hold (lane));
}

static void
open_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (GError) error = NULL;

  if (!outbox_session_open_finish (OUTBOX_SESSION (OUTBOX_SMTP_SESSION (source)), res, &error))
    {
      if (g_cancellable_is_cancelled (delivery->cancellable))
        return;
      lane_fail_open (lane, lane_record (lane), error);
      return;
    }
  clear_failure (delivery, lane->account_name);
  lane_send (lane);
}

static void
lane_open (Lane *lane, const OutboxAccountConfig *account)
{
  OutboxSmtpConfig config = {
    .url = account->smtp,
    .password = lane->secret != NULL ? lane->secret->secret : NULL,
    .secret_kind = lane->secret != NULL ? lane->secret->kind : outbox_credentials_kind_for (account),
    .tls_ca_file = account->tls_ca_file,
    .tls_fingerprint = account->tls_fingerprint,
    .auth_mech = account->auth,
    .timeouts = account->timeouts,
  };

  lane_drop_session (lane);
  lane->secret_kind = config.secret_kind;
  lane->account = outbox_account_config_copy (account);
  lane->session = outbox_smtp_session_new (&config);
  lane_clear_secret (lane);
  outbox_session_open_async (OUTBOX_SESSION (lane->session), lane->delivery->cancellable, open_done,
                             lane_hold (lane));
}

/* A missing password is left for the session to report: it says which
 * server and user it would have been for. */
static void
secret_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (GError) error = NULL;
  const OutboxAccountConfig *account;
  OutboxSecret *secret = outbox_credentials_lookup_finish (OUTBOX_CREDENTIALS (source), res, &error);

  if (g_cancellable_is_cancelled (delivery->cancellable))
    {
      outbox_secret_free (secret);
      return;
    }
  account = outbox_account_store_lookup (lane->delivery->accounts, lane->account_name);
  if (account == NULL)
    {
      g_clear_error (&error);
      g_set_error (&error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT, "the account was removed");
    }
  if (error != NULL && !g_error_matches (error, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_MISSING))
    {
      g_message ("Account %s: no secret to sign in with: %s", lane->account_name, error->message);
      lane_fail_open (lane, lane_record (lane), error);
      return;
    }
  lane->secret = secret;
  lane->had_secret = secret != NULL;
  lane_open (lane, account);
}

/* Whether an open session still matches how the account says to reach its
 * server (the user may have changed it meanwhile). */
static gboolean
smtp_settings_equal (const OutboxAccountConfig *a, const OutboxAccountConfig *b)
{
  g_autofree char *url_a = outbox_server_url_to_string (a->smtp);
  g_autofree char *url_b = outbox_server_url_to_string (b->smtp);

  return g_str_equal (url_a, url_b) && g_strcmp0 (a->tls_ca_file, b->tls_ca_file) == 0
         && g_strcmp0 (a->tls_fingerprint, b->tls_fingerprint) == 0
         && g_strcmp0 (a->auth, b->auth) == 0 && a->timeout == b->timeout;
}

/* A new SMTP session: the password first when the URL names a user. */
static void
lane_connect (Lane *lane, const OutboxAccountConfig *account)
{
  if (account->smtp->user == NULL)
    {
      lane_open (lane, account);
      return;
    }
  outbox_credentials_lookup_async (lane->delivery->credentials, account, account->smtp,
                                   lane->delivery->cancellable, secret_done, lane_hold (lane));
}

/* POP-before-SMTP: some old servers accept mail only from an address that
 * has just logged in to POP3.  A failed POP3 login is a failure to open. */
static void
pop_quit_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (OutboxPop3Session) pop = OUTBOX_POP3_SESSION (source);
  g_autoptr (GError) error = NULL;
  const OutboxAccountConfig *account;

  if (!outbox_session_quit_finish (OUTBOX_SESSION (pop), res, &error))
    g_debug ("POP3 QUIT: %s", error->message);
  if (g_cancellable_is_cancelled (delivery->cancellable))
    return;
  account = lane_get_account (lane);
  if (account == NULL)
    {
      g_set_error (&error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT, "the account was removed");
      lane_fail_open (lane, lane_record (lane), error);
      return;
    }
  lane_connect (lane, account);
}

static void
pop_open_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  OutboxPop3Session *pop = OUTBOX_POP3_SESSION (source);
  g_autoptr (GError) error = NULL;

  if (!outbox_session_open_finish (OUTBOX_SESSION (pop), res, &error))
    {
      g_object_unref (pop);
      if (g_cancellable_is_cancelled (delivery->cancellable))
        return;
      g_prefix_error (&error, "POP-before-SMTP login failed: ");
      lane_fail_open (lane, lane_record (lane), error);
      return;
    }
  outbox_session_quit_async (OUTBOX_SESSION (pop), delivery->cancellable, pop_quit_done, lane_hold (lane));
}

static void
pop_secret_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Lane *lane = user_data;
  g_autoptr (OutboxDelivery) delivery = lane->delivery;
  g_autoptr (GError) error = NULL;
  const OutboxAccountConfig *account;
  g_autoptr (OutboxSecret) secret =
      outbox_credentials_lookup_finish (OUTBOX_CREDENTIALS (source), res, &error);
  OutboxPop3Config config = { 0 };

  if (g_cancellable_is_cancelled (delivery->cancellable))
    return;
  account = lane_get_account (lane);
  if (account == NULL)
    {
      g_clear_error (&error);
      g_set_error (&error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT, "the account was removed");
    }
  if (error != NULL && !g_error_matches (error, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_MISSING))
    {
      lane_fail_open (lane, lane_record (lane), error);
      return;
    }
  config.url = account->pop3;
  config.password = secret != NULL ? secret->secret : NULL;
  config.secret_kind = secret != NULL ? secret->kind : outbox_credentials_kind_for (account);
  config.tls_ca_file = account->tls_ca_file;
  config.tls_fingerprint = account->tls_fingerprint;
  config.auth_mech = account->auth;
  outbox_pop3_timeouts_init_default (&config.timeouts);
  outbox_session_open_async (OUTBOX_SESSION (outbox_pop3_session_new (&config)),
                             delivery->cancellable, pop_open_done, lane_hold (lane));
}

static void
lane_pop_before_smtp (Lane *lane, const OutboxAccountConfig *account)
{
  outbox_credentials_lookup_async (lane->delivery->credentials, account, account->pop3,
                                   lane->delivery->cancellable, pop_secret_done, lane_hold (lane));
}

static void
lane_start (Lane *lane, OutboxSpoolRecord *record)
{
  const OutboxAccountConfig *account =
      outbox_account_store_lookup (lane->delivery->accounts, lane->account_name);

  lane->message_id = g_strdup (record->id);
  lane->token_retried = FALSE;
  lane->had_secret = FALSE;
  lane->failed_at_start = count_recipients (record, recipient_has_failed);
  g_clear_pointer (&lane->tried, g_byte_array_unref);
  if (lane->batch == NULL)
    lane->batch = g_array_new (FALSE, FALSE, sizeof (guint));
  lane->tried = g_byte_array_sized_new (record->n_recipients);
  g_byte_array_set_size (lane->tried, record->n_recipients);
  memset (lane->tried->data, 0, record->n_recipients);
  outbox_queue_begin_attempt (lane->delivery->queue, record);

  if (account == NULL)
    {
      g_autofree char *why = g_strdup_printf ("account “%s” does not exist any more; "
                                              "cancel the message or add the account again",
                                              lane->account_name);
      record_fail_pending (record, OUTBOX_RECIPIENT_STATE_FAILED, 0, why);
      lane_finish_message (lane, record, 0);
      return;
    }
  if (lane->session != NULL && outbox_session_is_open (OUTBOX_SESSION (lane->session))
      && smtp_settings_equal (lane->account, account))
    {
      lane_send (lane);
      return;
    }
  if (lane->session != NULL)
    outbox_session_quit_async (OUTBOX_SESSION (lane->session), NULL, NULL, NULL);
  lane_drop_session (lane);
  if (account->pop_before_smtp)
    lane_pop_before_smtp (lane, account);
  else
    lane_connect (lane, account);
}

static void
quit_done (GObject *source, GAsyncResult *res, gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  if (!outbox_session_quit_finish (OUTBOX_SESSION (OUTBOX_SMTP_SESSION (source)), res, &error))
    g_debug ("QUIT: %s", error->message);
}

static OutboxSpoolRecord *
find_due_for_account (OutboxDelivery *self, const char *account, gint64 now)
{
  gint64 due;
  OutboxSpoolRecord *record = outbox_queue_next_work (self->queue, OUTBOX_QUEUE_WORK_DELIVERY, account, &due);

  return record != NULL && due <= now ? record : NULL;
}

static void
lane_next (Lane *lane)
{
  OutboxSpoolRecord *next = NULL;
  gint64 now = now_seconds ();

  /* A resting account's due messages are deferred by the scheduler. */
  if (lane->delivery->online && !account_is_blocked (lane->delivery, lane->account_name)
      && account_rests_until (lane->delivery, lane->account_name, now) == 0)
    next = find_due_for_account (lane->delivery, lane->account_name, now);
  if (next != NULL)
    {
      lane_start (lane, next);
      return;
    }
  if (lane->session != NULL && outbox_session_is_open (OUTBOX_SESSION (lane->session)))
    outbox_session_quit_async (OUTBOX_SESSION (lane->session), NULL, quit_done, NULL);
  lane_drop_session (lane);
  outbox_delivery_schedule (lane->delivery);
}

static gboolean
timer_fired (gpointer user_data)
{
  OutboxDelivery *self = user_data;

  self->timer_id = 0;
  self->timer_at = 0;
  outbox_delivery_schedule (self);
  return G_SOURCE_REMOVE;
}

static void
arm_timer (OutboxDelivery *self, gint64 wake_at, gint64 now)
{
  if (self->timer_id != 0 && self->timer_at == wake_at)
    return;
  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (wake_at == 0)
    return;
  self->timer_at = wake_at;
  self->timer_id = g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, (guint) MAX (wake_at - now, 0),
                                               timer_fired, self, NULL);
}

/* When the account whose server failed is tried again, or 0 when it may
 * be tried now. */
static gint64
account_rests_until (OutboxDelivery *self, const char *account_name, gint64 now)
{
  AccountFailure *failure = g_hash_table_lookup (self->failing, account_name);

  return failure != NULL && now < failure->next_attempt ? failure->next_attempt : 0;
}

/* An account whose server failed is not tried again before its next
 * attempt: what becomes due meanwhile is deferred to it at once.  Returns
 * whether the account rests, and until when in @out_until. */
static gboolean
defer_while_resting (OutboxDelivery *self, const char *account_name, gint64 now, gint64 *out_until)
{
  gint64 until = account_rests_until (self, account_name, now);
  AccountFailure *failure;

  if (until == 0)
    return FALSE;
  *out_until = until;
  failure = g_hash_table_lookup (self->failing, account_name);
  if (find_due_for_account (self, account_name, now) != NULL)
    defer_due_messages (self, account_name, failure->error, 0, until, failure->network, FALSE);
  return TRUE;
}

/* Gives each account's due messages to its idle lanes, oldest due first;
 * a message going out leaves the index (it is "sending"), so the next one
 * comes up. */
static gint64
schedule_account (OutboxDelivery *self, const char *account_name, gint64 now)
{
  const OutboxAccountConfig *account = outbox_account_store_lookup (self->accounts, account_name);
  guint max_lanes = account ? account->max_connections : 1;
  OutboxSpoolRecord *record;
  gint64 due;

  if (defer_while_resting (self, account_name, now, &due))
    return due;
  while ((record = outbox_queue_next_work (self->queue, OUTBOX_QUEUE_WORK_DELIVERY, account_name, &due))
         != NULL)
    {
      Lane *lane;

      if (due > now)
        return due;
      if (account_is_blocked (self, account_name))
        return 0;
      lane = get_idle_lane (self, account_name, max_lanes);
      if (lane == NULL)
        return 0;
      lane_start (lane, record);
    }
  return 0;
}

void
outbox_delivery_schedule (OutboxDelivery *self)
{
  g_autoptr (GPtrArray) accounts = NULL;
  gint64 now = now_seconds ();
  gint64 wake_at = 0;

  /* Offline, nothing starts and no timer is needed: coming back online
   * schedules again. */
  if (!self->online)
    {
      arm_timer (self, 0, now);
      return;
    }
  accounts = outbox_queue_work_accounts (self->queue, OUTBOX_QUEUE_WORK_DELIVERY);
  for (guint i = 0; i < accounts->len; i++)
    {
      gint64 t = schedule_account (self, g_ptr_array_index (accounts, i), now);

      if (t > now && (wake_at == 0 || t < wake_at))
        wake_at = t;
    }
  arm_timer (self, wake_at, now);
}

/* The account's next attempt is now: the user asked for it. */
static void
failure_due_now (OutboxDelivery *self, const char *account)
{
  AccountFailure *failure = g_hash_table_lookup (self->failing, account);

  if (failure != NULL)
    failure->next_attempt = now_seconds ();
}

void
outbox_delivery_flush (OutboxDelivery *self)
{
  g_autoptr (GList) blocked = g_hash_table_get_keys (self->blocked);
  GHashTableIter iter;
  gpointer key;

  /* Each name is freed as its account is unblocked: one copy each. */
  for (GList *l = blocked; l != NULL; l = l->next)
    {
      g_autofree char *account = g_strdup (l->data);

      unblock_account (self, account);
    }
  g_hash_table_iter_init (&iter, self->failing);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    failure_due_now (self, key);
  outbox_queue_make_due (self->queue, NULL, OUTBOX_QUEUE_DUE_DEFERRED);
  outbox_delivery_schedule (self);
}

void
outbox_delivery_retry_account (OutboxDelivery *self, const char *account)
{
  unblock_account (self, account);
  failure_due_now (self, account);
  outbox_queue_make_due (self->queue, account, OUTBOX_QUEUE_DUE_WAITING_FOR_USER);
}

void
outbox_delivery_account_changed (OutboxDelivery *self, const char *account)
{
  unblock_account (self, account);
  clear_failure (self, account);
  /* Messages that waited for the account's password are due again. */
  outbox_queue_make_due (self->queue, account, OUTBOX_QUEUE_DUE_WAITING_FOR_USER);
  outbox_delivery_schedule (self);
}

gboolean
outbox_delivery_is_sending (OutboxDelivery *self, const char *id)
{
  OutboxSpoolRecord *record = outbox_queue_lookup (self->queue, id);

  return record != NULL && record->state == OUTBOX_SPOOL_STATE_SENDING;
}

OutboxAccountState
outbox_delivery_get_account_state (OutboxDelivery *self, const char *account, const char **out_message)
{
  AccountBlock *block = g_hash_table_lookup (self->blocked, account);
  AccountFailure *failure = g_hash_table_lookup (self->failing, account);

  if (out_message != NULL)
    *out_message = block != NULL ? block->message : failure != NULL ? failure->error : NULL;
  if (block != NULL)
    return block->state;
  return failure != NULL ? OUTBOX_ACCOUNT_STATE_FAILING : OUTBOX_ACCOUNT_STATE_OK;
}

gboolean
outbox_delivery_get_account_failure (OutboxDelivery *self,
                                     const char *account,
                                     gint64 *out_since,
                                     gint64 *out_next_attempt)
{
  AccountFailure *failure = g_hash_table_lookup (self->failing, account);

  if (failure == NULL)
    return FALSE;
  *out_since = failure->since;
  *out_next_attempt = failure->next_attempt;
  return TRUE;
}

const char *
outbox_account_state_to_string (OutboxAccountState state)
{
  static const char *const names[] = {
    [OUTBOX_ACCOUNT_STATE_OK] = "ok",
    [OUTBOX_ACCOUNT_STATE_FAILING] = "failing",
    [OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD] = "needs-password",
    [OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION] = "needs-authorization",
    [OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION] = "needs-attention",
  };

  return names[state];
}

gboolean
outbox_delivery_get_online (OutboxDelivery *self)
{
  return self->online;
}

/* Back online: what failed for want of a network is due now, and so are
 * the accounts whose servers could not be reached. */
static void
make_network_deferred_due (OutboxDelivery *self)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, self->failing);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (((AccountFailure *) value)->network)
      failure_due_now (self, key);
  outbox_queue_make_due (self->queue, NULL, OUTBOX_QUEUE_DUE_NETWORK);
}

static void
on_network_changed (GObject *monitor, GParamSpec *pspec, gpointer user_data)
{
  OutboxDelivery *self = OUTBOX_DELIVERY (user_data);
  gboolean online = g_network_monitor_get_network_available (self->monitor);

  if (online == self->online)
    return;
  self->online = online;
  g_info ("Network %s", online ? "available: delivering" : "unavailable: holding delivery");
  g_object_notify (G_OBJECT (self), "online");
  if (online)
    {
      make_network_deferred_due (self);
      outbox_delivery_schedule (self);
    }
}

static void
on_due (OutboxQueue *queue, gpointer user_data)
{
  outbox_delivery_schedule (OUTBOX_DELIVERY (user_data));
}

static void
outbox_delivery_dispose (GObject *object)
{
  OutboxDelivery *self = OUTBOX_DELIVERY (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->timer_id, g_source_remove);
  g_clear_signal_handler (&self->due_handler, self->queue);
  g_clear_signal_handler (&self->monitor_handler, self->monitor);
  G_OBJECT_CLASS (outbox_delivery_parent_class)->dispose (object);
}

static void
outbox_delivery_finalize (GObject *object)
{
  OutboxDelivery *self = OUTBOX_DELIVERY (object);

  g_clear_pointer (&self->lanes, g_hash_table_unref);
  g_clear_pointer (&self->blocked, g_hash_table_unref);
  g_clear_pointer (&self->failing, g_hash_table_unref);
  g_clear_object (&self->credentials);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->queue);
  G_OBJECT_CLASS (outbox_delivery_parent_class)->finalize (object);
}

static void
outbox_delivery_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  switch (prop_id)
    {
    case PROP_ONLINE:
      g_value_set_boolean (value, OUTBOX_DELIVERY (object)->online);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_delivery_class_init (OutboxDeliveryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = outbox_delivery_dispose;
  object_class->finalize = outbox_delivery_finalize;
  object_class->get_property = outbox_delivery_get_property;

  /* What outbox_delivery_get_account_state() says of the account (its
   * name, the signal's argument) changed, its state or its message. */
  signals[SIGNAL_ACCOUNT_STATE_CHANGED] =
      g_signal_new ("account-state-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL,
                    NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);

  /* Whether GNetworkMonitor says servers can be reached. */
  g_object_class_install_property (object_class, PROP_ONLINE,
                                   g_param_spec_boolean ("online", NULL, NULL, TRUE,
                                                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
}

static void
outbox_delivery_init (OutboxDelivery *self)
{
  self->lanes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) g_ptr_array_unref);
  self->blocked = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) account_block_free);
  self->failing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) account_failure_free);
  self->cancellable = g_cancellable_new ();
}

OutboxDelivery *
outbox_delivery_new (OutboxQueue *queue,
                     OutboxAccountStore *accounts,
                     OutboxCredentials *credentials)
{
  OutboxDelivery *self = g_object_new (OUTBOX_TYPE_DELIVERY, NULL);

  self->queue = g_object_ref (queue);
  self->credentials = g_object_ref (credentials);
  self->accounts = accounts;
  self->due_handler = g_signal_connect (queue, "due", G_CALLBACK (on_due), self);
  self->monitor = g_network_monitor_get_default ();
  self->online = g_network_monitor_get_network_available (self->monitor);
  self->monitor_handler = g_signal_connect (self->monitor, "notify::network-available",
                                            G_CALLBACK (on_network_changed), self);
  return self;
}
