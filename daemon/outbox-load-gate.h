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
 * as long as @skeleton.  Attach before @skeleton is exported, and have
 * its class's get_vtable return outbox_load_gate_get_vtable(). */
void outbox_load_gate_attach (GDBusInterfaceSkeleton *skeleton,
                              OutboxQueue *queue,
                              OutboxLoadGateFunc must_wait);

/* For the get_vtable of a skeleton class: @parent (the parent class's
 * vtable), with every method call going through @skeleton's gate first,
 * in the main context; @parent itself when @skeleton has no gate. */
GDBusInterfaceVTable *outbox_load_gate_get_vtable (GDBusInterfaceSkeleton *skeleton,
                                                   GDBusInterfaceVTable *parent);

G_END_DECLS
