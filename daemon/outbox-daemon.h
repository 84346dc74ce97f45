/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Everything outboxd runs: the spool, the accounts, the queue, delivery and
 * the two D-Bus interfaces. */
typedef struct _OutboxDaemon OutboxDaemon;

/* Opens the spool under $XDG_DATA_HOME/outbox (locked against a second
 * daemon using it, waiting up to @lock_wait_ms for one that is going away)
 * and the accounts file under $XDG_CONFIG_HOME/outbox. */
OutboxDaemon *outbox_daemon_new (guint lock_wait_ms, GError **error);
void outbox_daemon_free (OutboxDaemon *daemon);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxDaemon, outbox_daemon_free)

gboolean outbox_daemon_export (OutboxDaemon *daemon, GDBusConnection *connection, GError **error);
/* Starts delivering; only once the bus name is ours. */
void outbox_daemon_start (OutboxDaemon *daemon);

G_END_DECLS
