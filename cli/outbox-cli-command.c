/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <sysexits.h>

#include "outbox-cli-command.h"
#include "outbox-cli-util.h"

static void
print_command_list (const char                    *group,
                    const OutboxCliCommand *const *table,
                    gsize                          n_commands)
{
  const char *space = group != NULL ? " " : "";

  group = group != NULL ? group : "";
  g_print ("Usage:\n  outbox %s%sCOMMAND [OPTION…]\n\nCommands:\n", group, space);
  for (gsize i = 0; i < n_commands; i++)
    g_print ("  %-10s %s\n", table[i]->name, table[i]->summary);
  g_print ("\nRun “outbox %s%sCOMMAND --help” for a command's options.\n", group, space);
}

static gboolean
is_help_option (const char *arg)
{
  return g_str_equal (arg, "--help") || g_str_equal (arg, "-h") || g_str_equal (arg, "-?");
}

/* The one option parser: @command's entries and its positional arguments,
 * counted.  @full_name is "account add" and the like: the help text's
 * usage line and every usage error name it. */
static int
parse_and_run (const char             *full_name,
               const OutboxCliCommand *command,
               int                     argc,
               char                  **argv)
{
  g_auto(GStrv) args = NULL;
  const GOptionEntry remaining[] = {
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GOptionContext) context = g_option_context_new (command->parameters);
  g_autofree char *prgname = g_strdup_printf ("%s %s", g_get_application_name (), full_name);
  g_autoptr(GError) error = NULL;
  int status;

  g_option_context_set_summary (context, command->description);
  if (command->entries != NULL)
    g_option_context_add_main_entries (context, command->entries, NULL);
  g_option_context_add_main_entries (context, remaining, NULL);
  /* The help text's usage line shows the program name. */
  g_set_prgname (prgname);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return outbox_cli_report_usage (full_name, error);
  status = outbox_cli_expect_arguments (full_name, args, command->min_args, command->max_args,
                                        command->what);
  if (status != EXIT_SUCCESS)
    return status;
  if (args == NULL)
    args = g_new0 (char *, 1);
  return command->run (args);
}

static int
run_command (const char             *group,
             const OutboxCliCommand *command,
             int                     argc,
             char                  **argv)
{
  g_autofree char *full_name = NULL;

  if (command->subcommands != NULL)
    return outbox_cli_command_dispatch (command->name, command->subcommands,
                                        command->n_subcommands, argc - 1, argv + 1);
  if (command->run_raw != NULL)
    return command->run_raw (argc, argv);

  full_name = group != NULL ? g_strdup_printf ("%s %s", group, command->name)
                            : g_strdup (command->name);
  return parse_and_run (full_name, command, argc, argv);
}

int
outbox_cli_command_dispatch (const char                    *group,
                             const OutboxCliCommand *const *table,
                             gsize                          n_commands,
                             int                            argc,
                             char                         **argv)
{
  g_autofree char *word = NULL;
  g_autofree char *hint = NULL;

  if (argc == 0 || is_help_option (argv[0]))
    {
      print_command_list (group, table, n_commands);
      return EXIT_SUCCESS;
    }

  for (gsize i = 0; i < n_commands; i++)
    {
      if (g_str_equal (argv[0], table[i]->name))
        return run_command (group, table[i], argc, argv);
    }

  word = outbox_cli_sanitize (argv[0]);
  hint = group != NULL ? g_strdup_printf ("see outbox help %s", group)
                       : g_strdup ("see outbox help");
  g_printerr ("%s: unknown %s “%s”; %s\n", g_get_application_name (),
              argv[0][0] == '-' ? "option" : "command", word, hint);
  return EX_USAGE;
}
