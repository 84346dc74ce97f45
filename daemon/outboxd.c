/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <malloc.h>
#include <sys/stat.h>

#include "outbox-daemon.h"

typedef struct
{
  GMainLoop *loop;
  OutboxDaemon *daemon;
  gboolean name_owned;
  int exit_status;
} Context;

/* How long a replacing instance waits for the one it replaces to exit. */
#define REPLACE_WAIT_MS 10000

static gboolean opt_verbose;
static gboolean opt_replace;
static gboolean opt_version;

static const GOptionEntry entries[] = {
  { "verbose", 'v', 0, G_OPTION_ARG_NONE, &opt_verbose,
    "Log debug messages, including a protocol trace with passwords redacted", NULL },
  { "replace", 'r', 0, G_OPTION_ARG_NONE, &opt_replace, "Replace a running instance", NULL },
  { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version and exit", NULL },
  { NULL },
};

/* Creates the daemon's objects and puts them on the bus. */
static gboolean
daemon_setup (Context *ctx, GDBusConnection *connection, guint lock_wait_ms)
{
  g_autoptr (GError) error = NULL;

  ctx->daemon = outbox_daemon_new (lock_wait_ms, &error);
  if (ctx->daemon == NULL || !outbox_daemon_export (ctx->daemon, connection, &error))
    {
      g_printerr ("outboxd: %s\n", error->message);
      ctx->exit_status = 1;
      g_main_loop_quit (ctx->loop);
      return FALSE;
    }
  return TRUE;
}

static void
on_name_acquired (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Context *ctx = user_data;

  ctx->name_owned = TRUE;
  /* With --replace, the instance replaced lets go of the spool as it exits:
   * only now can this one take it. */
  if (ctx->daemon == NULL && !daemon_setup (ctx, connection, REPLACE_WAIT_MS))
    return;
  g_info ("outboxd %s owns %s", PACKAGE_VERSION, name);
  outbox_daemon_start (ctx->daemon);
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  Context *ctx = user_data;

  if (ctx->name_owned)
    g_info ("Lost %s (replaced, or the bus went away); stopping", name);
  else if (connection == NULL)
    {
      g_printerr ("outboxd: cannot connect to the session bus\n");
      ctx->exit_status = 1;
    }
  else
    {
      g_printerr ("outboxd: %s is owned by another instance; use --replace to take over\n", name);
      ctx->exit_status = 1;
    }
  g_main_loop_quit (ctx->loop);
}

static gboolean
name_has_owner (GDBusConnection *bus)
{
  g_autoptr (GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  reply = g_dbus_connection_call_sync (bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", OUTBOX_BUS_NAME),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

static gboolean
on_signal (gpointer user_data)
{
  Context *ctx = user_data;

  g_info ("Stopping");
  g_main_loop_quit (ctx->loop);
  return G_SOURCE_CONTINUE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) option_context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  g_autoptr (GDBusConnection) bus = NULL;
  Context ctx = { 0 };
  guint owner_id;

  setlocale (LC_ALL, "");
#ifdef __GLIBC__
  /* A submission's 64 KiB read and write buffers get pages of their own,
   * given back when freed, instead of heap between the queue's records
   * that stay: with many submissions in flight those holes were most of
   * what a burst left behind. */
  mallopt (M_MMAP_THRESHOLD, 32 * 1024);
#endif
  /* Spool files and the accounts file are for this user only. */
  umask (0077);

  option_context = g_option_context_new ("- the Outbox mail submission daemon");
  g_option_context_add_main_entries (option_context, entries, NULL);
  if (!g_option_context_parse (option_context, &argc, &argv, &error))
    {
      g_printerr ("outboxd: %s\n", error->message);
      return 64;
    }
  if (opt_version)
    {
      g_print ("outboxd %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (opt_verbose)
    g_log_set_debug_enabled (TRUE);

  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (bus == NULL)
    {
      g_printerr ("outboxd: cannot connect to the session bus: %s\n", error->message);
      return 1;
    }
  if (!opt_replace && name_has_owner (bus))
    {
      g_printerr ("outboxd: %s is owned by another instance; use --replace to take over\n",
                  OUTBOX_BUS_NAME);
      return 1;
    }

  loop = g_main_loop_new (NULL, FALSE);
  ctx.loop = loop;
  g_unix_signal_add (SIGTERM, on_signal, &ctx);
  g_unix_signal_add (SIGINT, on_signal, &ctx);
  /* Exported before the name is asked for, so that the call that activated
   * the daemon finds the interfaces; with --replace only once the name is
   * ours (see on_name_acquired). */
  if (!opt_replace && !daemon_setup (&ctx, bus, 0))
    return ctx.exit_status;
  owner_id = g_bus_own_name_on_connection (bus, OUTBOX_BUS_NAME,
                                           G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE
                                               | G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT
                                               | (opt_replace ? G_BUS_NAME_OWNER_FLAGS_REPLACE : 0),
                                           on_name_acquired, on_name_lost, &ctx, NULL);
  g_main_loop_run (loop);
  g_bus_unown_name (owner_id);
  g_clear_pointer (&ctx.daemon, outbox_daemon_free);
  return ctx.exit_status;
}
