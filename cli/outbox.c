/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <locale.h>

#include "outbox-cli-commands.h"

/* outbox COMMAND [OPTION…]: the table of commands, in the order `outbox
 * help` lists them.  Each command lives in a file of its group
 * (outbox-send.c, outbox-queue.c, outbox-status.c, outbox-account*.c);
 * outbox-cli-command.c parses every command's options the same way. */

static int run_help (int    argc,
                     char **argv);

static const OutboxCliCommand help_command = {
  .name = "help",
  .summary = "Show this list, or a command's help",
  .run_raw = run_help,
};

static const OutboxCliCommand *const commands[] = {
  &outbox_cli_send_command,
  &outbox_cli_queue_command,
  &outbox_cli_show_command,
  &outbox_cli_cancel_command,
  &outbox_cli_hold_command,
  &outbox_cli_release_command,
  &outbox_cli_retry_command,
  &outbox_cli_flush_command,
  &outbox_cli_status_command,
  &outbox_cli_account_command,
  &help_command,
};

/* "outbox help CMD…" is "outbox CMD… --help". */
static int
run_help (int    argc,
          char **argv)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();

  for (int i = 1; i < argc; i++)
    g_ptr_array_add (args, argv[i]);
  if (args->len > 0)
    g_ptr_array_add (args, (gpointer) "--help");
  g_ptr_array_add (args, NULL);

  return outbox_cli_command_dispatch (NULL, commands, G_N_ELEMENTS (commands),
                                      (int) args->len - 1, (char **) args->pdata);
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  g_set_application_name ("outbox");
  g_set_prgname ("outbox");

  if (argc == 2 && g_str_equal (argv[1], "--version"))
    {
      g_print ("outbox %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    }

  return outbox_cli_command_dispatch (NULL, commands, G_N_ELEMENTS (commands), argc - 1, argv + 1);
}
