/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-retry.h"
#include "outbox-spool.h"
#include "outbox-variant-writer.h"

G_BEGIN_DECLS

/* The messages the daemon owns: the spool's records, kept in memory, and
 * every change to them written to the spool before anyone is told of it.
 *
 * Signals:
 *   message-changed (const char *id, const char *state, GVariant *details):
 *     after a record was added, changed or removed ("removed" as state).
 *     @details is NULL while the record exists (outbox_queue_lookup() and
 *     outbox_queue_record_to_variant() give it); for "removed", it is what
 *     is left to say, such as why the message was set aside.
 *   due: something may have become deliverable (submitted, released, retried).
 */
#define OUTBOX_TYPE_QUEUE (outbox_queue_get_type ())
G_DECLARE_FINAL_TYPE (OutboxQueue, outbox_queue, OUTBOX, QUEUE, GObject)

/* Lists the spool, then reads its records in the main loop a slice at a
 * time, oldest first: what does not validate is quarantined and logged.
 * Until the signal "loaded" (emitted once, when the last record is in,
 * and not at all for an empty spool) the queue knows only part of the
 * spool: lookups, listings and work indexes cover what is read so far and
 * what was added since.  "due" is emitted as records come in. */
OutboxQueue *outbox_queue_new (OutboxSpool *spool, GError **error);
gboolean outbox_queue_is_loaded (OutboxQueue *queue);
/* Once loaded: how many messages were read from their own files, not the
 * spool's index. */
guint outbox_queue_get_loaded_from_files (OutboxQueue *queue);
/* (transfer full) a copy of the record of @id, read from the spool when
 * the loader has not reached it yet; NO_SUCH_MESSAGE when there is none. */
OutboxSpoolRecord *outbox_queue_peek (OutboxQueue *queue, const char *id, GError **error);
OutboxSpool *outbox_queue_get_spool (OutboxQueue *queue);

/* (transfer none) (nullable) */
OutboxSpoolRecord *outbox_queue_lookup (OutboxQueue *queue, const char *id);
/* (transfer container) records sorted by (created, id) */
GPtrArray *outbox_queue_list (OutboxQueue *queue);

/* Where a listing resumes: the first record after (@created, @id) in the
 * order of outbox_queue_list(), whether or not that one still exists; the
 * first of all when @id is NULL.  Walk with g_sequence_iter_next() and
 * g_sequence_get() until g_sequence_iter_is_end(); valid until the queue
 * changes. */
GSequenceIter *outbox_queue_iter_after (OutboxQueue *queue, gint64 created, const char *id);

/* Whether the record of @id may say more than the disk does: a change made
 * in memory is still being written by outbox_queue_save_async(), or its
 * last save failed and none has succeeded since. */
gboolean outbox_queue_is_ahead_of_disk (OutboxQueue *queue, const char *id);

/* Takes @record, which the spool has already committed. */
void outbox_queue_add (OutboxQueue *queue, OutboxSpoolRecord *record);
/* Saves @record (one of the queue's own) to the spool, then signals. */
gboolean outbox_queue_save (OutboxQueue *queue, OutboxSpoolRecord *record, GError **error);
/* The same without blocking: the save shares a flush with others (see
 * outbox_spool_save_async) and the signal follows once it is on disk. */
void outbox_queue_save_async (OutboxQueue *queue,
                              OutboxSpoolRecord *record,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data);
gboolean outbox_queue_save_finish (OutboxQueue *queue, GAsyncResult *result, GError **error);
/* Signals a change that is not written (the in-memory "sending" state). */
void outbox_queue_notify (OutboxQueue *queue, OutboxSpoolRecord *record);
gboolean outbox_queue_remove (OutboxQueue *queue, const char *id, GError **error);
/* Sets a message aside in the spool's quarantine/ (its data failed
 * verification) and signals it as "removed" with the reason. */
gboolean outbox_queue_quarantine (OutboxQueue *queue, const char *id, const char *reason, GError **error);
void outbox_queue_emit_due (OutboxQueue *queue);
/* Removes sent messages that finished more than @keep_seconds ago; they
 * stay visible (outbox queue --all, outbox show) until then. */
void outbox_queue_prune_sent (OutboxQueue *queue, gint64 keep_seconds);

/* Work that waits in the queue, indexed per account by the time it is
 * due: delivery (queued, scheduled, and deferred with a planned attempt)
 * and Sent copies (sent, copy pending). */
typedef enum
{
  OUTBOX_QUEUE_WORK_DELIVERY,
  OUTBOX_QUEUE_WORK_SENT_COPY,
  OUTBOX_QUEUE_N_WORK,
} OutboxQueueWork;

/* (transfer full) (element-type utf8) the accounts with such work */
GPtrArray *outbox_queue_work_accounts (OutboxQueue *queue, OutboxQueueWork work);
/* (transfer none) (nullable) the account's earliest such work, and when it
 * is due (Unix time; it may be in the future). */
OutboxSpoolRecord *outbox_queue_next_work (OutboxQueue *queue,
                                           OutboxQueueWork work,
                                           const char *account,
                                           gint64 *out_due);
/* Files @record again after a change made in memory only. */
void outbox_queue_reindex (OutboxQueue *queue, OutboxSpoolRecord *record);

/* State changes
 *
 * The queue owns the rules of a message's state; the D-Bus handlers and
 * the delivery ask for changes and never set a state themselves.
 *
 *   hold:    any message not being sent and not finished (sent, failed)
 *   release: a held message: scheduled when its send-at is still ahead,
 *            else queued
 *   retry:   a failed or waiting (queued, scheduled, deferred) message:
 *            its failed recipients are queued again, never a sent one;
 *            a sent message whose Sent copy failed: the copy is pending
 *            again, the delivery never repeated
 *   cancel:  any message not being sent: removed from the spool
 *
 * None applies to a message being sent ("sending"): it is refused, and
 * the caller may ask again once the attempt is over. */
typedef enum
{
  OUTBOX_QUEUE_CHANGE_HOLD,
  OUTBOX_QUEUE_CHANGE_RELEASE,
  OUTBOX_QUEUE_CHANGE_RETRY,
  OUTBOX_QUEUE_CHANGE_CANCEL,
} OutboxQueueChange;

/* Whether @change applies to @id now: NO_SUCH_MESSAGE, or INVALID_STATE
 * with a sentence that names the state and what to do instead. */
gboolean outbox_queue_check_change (OutboxQueue *queue,
                                    const char *id,
                                    OutboxQueueChange change,
                                    GError **error);
/* Checks, applies and writes @change; the result comes once it is on disk
 * (or the message is gone, for cancel), and a message that may be
 * deliverable now is announced with "due".  Refused: nothing changed. */
void outbox_queue_change_async (OutboxQueue *queue,
                                const char *id,
                                OutboxQueueChange change,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean outbox_queue_change_finish (OutboxQueue *queue, GAsyncResult *result, GError **error);

/* The changes delivery makes, in memory: the caller writes the record. */

/* A delivery attempt of @record (queued, scheduled or deferred) starts. */
void outbox_queue_begin_attempt (OutboxQueue *queue, OutboxSpoolRecord *record);

/* For outbox_queue_settle(): plan the next try from the message's own
 * attempts and the policy. */
#define OUTBOX_QUEUE_RETRY_BACKOFF ((gint64) -1)

/* Ends an attempt: the state follows from the recipients (all sent: sent;
 * one pending: deferred; else failed), a message failing for longer than
 * the policy's give-up time fails its pending recipients, and a deferred
 * one is next tried at @retry_at (OUTBOX_QUEUE_RETRY_BACKOFF, 0 for no
 * planned attempt, or a Unix time).  A sent message that @wants_sent_copy
 * gets its copy pending in the same write. */
void outbox_queue_settle (OutboxQueue *queue,
                          OutboxSpoolRecord *record,
                          const OutboxRetryPolicy *policy,
                          gint64 retry_at,
                          gboolean wants_sent_copy);

/* A message whose data no longer matches and that could not be set aside
 * in quarantine/ is held, with @reason, so that it is never sent. */
void outbox_queue_hold_broken (OutboxQueue *queue, OutboxSpoolRecord *record, const char *reason);

/* Which deferred messages outbox_queue_make_due() makes due. */
typedef enum
{
  OUTBOX_QUEUE_DUE_DEFERRED,          /* every deferred one (Flush) */
  OUTBOX_QUEUE_DUE_NETWORK,           /* deferred for want of a network */
  OUTBOX_QUEUE_DUE_WAITING_FOR_USER,  /* deferred without a planned attempt */
} OutboxQueueDue;

/* Makes such deferred messages of @account (NULL: of every account) due
 * now, in memory: the next attempt writes them.  It walks the whole queue
 * (those waiting for the user are in no work index), which it does only
 * when a person or the network asks: a flush, a password given, the
 * network back; a pass over 100,000 records in memory is well under the
 * time of one connection. */
void outbox_queue_make_due (OutboxQueue *queue, const char *account, OutboxQueueDue which);

/* Ends a Sent copy attempt: saved when @error is NULL, else pending after
 * the policy's backoff, or failed once the policy gives up (counted from
 * when the message was sent). */
void outbox_queue_settle_copy (OutboxQueue *queue,
                               OutboxSpoolRecord *record,
                               const GError *error,
                               const OutboxRetryPolicy *policy);
/* A pending copy that can never be made (@reason) fails. */
void outbox_queue_fail_copy (OutboxQueue *queue, OutboxSpoolRecord *record, const char *reason);

/* The a{sv} of org.outbox.Outbox1.Queue.Get. */
GVariant *outbox_queue_record_to_variant (const OutboxSpoolRecord *record);
/* The same dictionary, written as the next value of @writer. */
void outbox_queue_write_record (OutboxVariantWriter *writer, const OutboxSpoolRecord *record);
gboolean outbox_spool_state_is_pending (OutboxSpoolState state);
/* Whether the recipient still waits for delivery (queued or deferred). */
gboolean outbox_recipient_is_pending (const OutboxRecipient *rcpt);

G_END_DECLS
