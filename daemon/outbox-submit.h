/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* Takes one message into the queue: checks @options (the a{sv} of
 * org.outbox.Outbox1.Queue.Submit), reads @in to its end through the
 * message import, chooses the account, and commits the message to the
 * spool.  Returns the new id once the message is durable.  Errors are
 * OUTBOX_ERROR_*; nothing is left in the spool after a failure. */
void outbox_submit_async (OutboxQueue *queue,
                          OutboxAccountStore *accounts,
                          GInputStream *in,
                          GVariant *options,
                          GCancellable *cancellable,
                          GAsyncReadyCallback callback,
                          gpointer user_data);
/* The same, and the new spool record's origin is @origin (nullable), such
 * as "maildrop:NAME", so that a source can tell it was queued.  Finish with
 * outbox_submit_finish(). */
void outbox_submit_with_origin_async (OutboxQueue *queue,
                                      OutboxAccountStore *accounts,
                                      GInputStream *in,
                                      GVariant *options,
                                      const char *origin,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
char *outbox_submit_finish (GAsyncResult *result, GError **error);

G_END_DECLS
