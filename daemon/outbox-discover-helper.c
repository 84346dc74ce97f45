/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <locale.h>
#include <stdlib.h>

#include "outbox-discover.h"

/* outbox-discover-helper [--verbose] [--] ADDRESS
 *
 * Runs one account discovery for outboxd, in a process of its own so that
 * the daemon never loads libsoup.  What it prints on standard output is for
 * outboxd (see handle_discover in outbox-accounts-service.c):
 *   exit 0:  the settings, an a{sv} in GVariant text form;
 *   exit 1:  the error, as three parts on their own lines: the domain's
 *            quark name, the code, then the message (to the end);
 *   exit 64: a usage error; nothing on standard output.
 * Log messages go to standard error, which the daemon shares with it. */

#define EXIT_USAGE 64

typedef struct
{
  GMainLoop *loop;
  GVariant *settings; /* (owned) (nullable) */
  GError *error;      /* (owned) (nullable) */
} Discovery;

static void
on_discovered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Discovery *discovery = user_data;

  discovery->settings = outbox_discover_finish (result, &discovery->error);
  g_main_loop_quit (discovery->loop);
}

static int
print_outcome (const Discovery *discovery)
{
  g_autofree char *text = NULL;

  if (discovery->settings == NULL)
    {
      g_print ("%s\n%d\n%s", g_quark_to_string (discovery->error->domain),
               discovery->error->code, discovery->error->message);
      return EXIT_FAILURE;
    }
  text = g_variant_print (discovery->settings, TRUE);
  g_print ("%s\n", text);
  return EXIT_SUCCESS;
}

static int
discover (const char *address)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  Discovery discovery = { loop, NULL, NULL };
  int status;

  outbox_discover_async (address, NULL, NULL, on_discovered, &discovery);
  g_main_loop_run (loop);
  status = print_outcome (&discovery);
  g_clear_pointer (&discovery.settings, g_variant_unref);
  g_clear_error (&discovery.error);
  return status;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) option_context = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) addresses = NULL;
  gboolean verbose = FALSE;
  const GOptionEntry entries[] = {
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &addresses, NULL, "ADDRESS" },
    { NULL },
  };

  setlocale (LC_ALL, "");
  option_context = g_option_context_new ("- propose the servers of a mail account");
  g_option_context_add_main_entries (option_context, entries, NULL);
  if (!g_option_context_parse (option_context, &argc, &argv, &error))
    {
      g_printerr ("outbox-discover-helper: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (addresses == NULL || g_strv_length (addresses) != 1)
    {
      g_printerr ("outbox-discover-helper: expected one ADDRESS\n");
      return EXIT_USAGE;
    }
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  return discover (addresses[0]);
}
