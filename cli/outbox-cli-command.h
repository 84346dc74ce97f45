/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* One command of `outbox`, declared: its options, the positional arguments
 * it takes and the handler that runs once they are parsed and counted.
 * Every command's --help, usage errors and exit codes come from the one
 * parser below, so that they read alike for all. */
typedef struct _OutboxCliCommand OutboxCliCommand;

/* @args: the positional arguments (never NULL), already counted. */
typedef int (*OutboxCliCommandFunc) (char **args);
/* For commands that take their words unparsed (outbox help): @argv[0] is
 * the command's own name. */
typedef int (*OutboxCliRawCommandFunc) (int    argc,
                                        char **argv);

struct _OutboxCliCommand
{
  const char *name;                    /* the word: "add" in "account add" */
  const char *summary;                 /* one line, for the list of commands */
  OutboxCliCommandFunc run;            /* (nullable) */
  const GOptionEntry *entries;         /* (nullable) without G_OPTION_REMAINING */
  const char *parameters;              /* (nullable) the usage line's arguments */
  const char *description;             /* the summary --help prints */
  guint min_args;
  guint max_args;                      /* G_MAXUINT: no limit */
  const char *what;                    /* what "missing %s" names: "ID" */
  OutboxCliRawCommandFunc run_raw;     /* (nullable) instead of @run */
  const OutboxCliCommand *const *subcommands;  /* (nullable) a group */
  gsize n_subcommands;
};

/* The fields of a command that takes exactly one argument, named @what in
 * its usage line and in "missing @what". */
#define OUTBOX_CLI_ONE_ARGUMENT(what_) \
  .parameters = what_, .min_args = 1, .max_args = 1, .what = what_

/* Runs the command named by @argv[0] in @table: a group's subcommand, a
 * raw command, or one parsed by outbox_cli_command_parse().  @group is
 * NULL at the top ("outbox"), else the group's name ("account").  No
 * word or --help prints the table; an unknown word is a usage error. */
int  outbox_cli_command_dispatch (const char                    *group,
                                  const OutboxCliCommand *const *table,
                                  gsize                          n_commands,
                                  int                            argc,
                                  char                         **argv);

G_END_DECLS
