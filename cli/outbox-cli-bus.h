/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Every call of outbox and outbox-sendmail to the daemon, on the session
 * bus (D-Bus activation allowed): the one file that knows the D-Bus
 * proxies.  Each function returns NULL or FALSE with @error set when the
 * bus, the daemon or the call fails; OUTBOX_CLI_ERROR_UNAVAILABLE when
 * there is no session bus. */

GDBusConnection *outbox_cli_session_bus            (GError **error);
/* The session bus once the daemon answers a Ping on it (started by D-Bus
 * activation if need be); errors as g_bus_get_sync() gives them. */
GDBusConnection *outbox_cli_bus_connect_to_daemon  (GError **error);

/* Queue */

/* Queue.Submit of @fd (the daemon reads it itself); @bus NULL: the
 * session bus.  Returns the new id.  @options: (transfer floating). */
char     *outbox_cli_bus_submit_fd       (GDBusConnection  *bus,
                                          int               fd,
                                          GVariant         *options,
                                          GError          **error);
GVariant *outbox_cli_bus_get_message     (const char       *id,
                                          GError          **error);

typedef enum
{
  OUTBOX_CLI_QUEUE_CANCEL,
  OUTBOX_CLI_QUEUE_HOLD,
  OUTBOX_CLI_QUEUE_RELEASE,
  OUTBOX_CLI_QUEUE_RETRY,
} OutboxCliQueueAction;

gboolean  outbox_cli_bus_queue_action    (OutboxCliQueueAction action,
                                          const char          *id,
                                          GError             **error);
gboolean  outbox_cli_bus_flush           (GError          **error);
/* The Queue interface's properties (Version, DaemonVersion, Online), a{sv}. */
GVariant *outbox_cli_bus_queue_properties (GError         **error);

/* Queue.List in pages (a big queue does not fit in one bus message):
 * every pending message, or every message with @all, as one aa{sv}. */
GVariant *outbox_cli_bus_list_messages   (gboolean          all,
                                          GError          **error);
/* The same, one message (a{sv}) at a time, oldest first, each page given
 * before the next is asked for; FALSE with @error when a call fails. */
typedef void (*OutboxCliMessageFunc) (GVariant *message, gpointer user_data);
gboolean  outbox_cli_bus_foreach_message (gboolean             all,
                                          OutboxCliMessageFunc func,
                                          gpointer             user_data,
                                          GError             **error);

/* Accounts */

/* Accounts.List: aa{sv}. */
GVariant *outbox_cli_bus_list_accounts   (GError          **error);
/* Accounts.Add when @create, else Accounts.Update. */
gboolean  outbox_cli_bus_save_account    (const char       *name,
                                          GVariant         *settings,
                                          gboolean          create,
                                          GError          **error);
gboolean  outbox_cli_bus_remove_account  (const char       *name,
                                          GError          **error);
gboolean  outbox_cli_bus_set_password    (const char       *name,
                                          const char       *service,
                                          const char       *secret,
                                          GError          **error);
/* Accounts.Test and Accounts.Discover: a{sv}.  Both wait minutes for the
 * servers they ask. */
GVariant *outbox_cli_bus_test_account    (const char       *name,
                                          GError          **error);
GVariant *outbox_cli_bus_discover        (const char       *address,
                                          GError          **error);

G_END_DECLS
