/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-queue.h"

G_BEGIN_DECLS

/* Whether a call, made while @queue is still loading, must wait for the
 * whole queue (a listing, a count, a change to a message not read yet).
 * @others_wait says whether calls that came before it wait: a call that
 * changes a message waits behind them then, so that no change is answered
 * (or made) before a listing that was asked for first. */
typedef gboolean (*OutboxLoadGateFunc) (OutboxQueue *queue,
                                        GDBusMethodInvocation *invocation,
                                        gboolean others_wait);

/* Holds the calls to @skeleton for which @must_wait says so, unanswered,
 * until @queue is loaded, then dispatches them as if they had just
 * arrived, in the order they came.  The other calls go on at once.  Lives
 * as long as @skeleton. */
void outbox_load_gate_attach (GDBusInterfaceSkeleton *skeleton,
                              OutboxQueue *queue,
                              OutboxLoadGateFunc must_wait);

G_END_DECLS
