/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-spool.h"

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

/* The a{sv} of org.outbox.Outbox1.Queue.Get. */
GVariant *outbox_queue_record_to_variant (const OutboxSpoolRecord *record);
gboolean outbox_message_state_is_pending (OutboxMessageState state);

G_END_DECLS
