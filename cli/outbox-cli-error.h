/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Errors the command-line clients raise themselves, before or instead of
 * asking the daemon. */
#define OUTBOX_CLI_ERROR (outbox_cli_error_quark ())
GQuark outbox_cli_error_quark (void);

typedef enum
{
  OUTBOX_CLI_ERROR_USAGE,        /* bad command line: exit 64 */
  OUTBOX_CLI_ERROR_UNAVAILABLE,  /* no session bus: exit 69 */
  OUTBOX_CLI_ERROR_CONFIG,       /* unknown account and the like: exit 78 */
  OUTBOX_CLI_ERROR_DATA,         /* the message is not acceptable: exit 65 */
  OUTBOX_CLI_ERROR_ADDRESS,      /* an address is not acceptable: exit 67 */
  OUTBOX_CLI_ERROR_TEMPORARY,    /* nothing was queued, try again: exit 75 */
} OutboxCliError;

/* Errors: the sysexits.h code for an error from the bus, the daemon or the
 * client itself, and the one-line report on stderr. */
int       outbox_cli_exit_code          (const GError *error);
gboolean  outbox_cli_error_is           (const GError *error,
                                         const char   *outbox_error_name);
char     *outbox_cli_error_message      (const GError *error);
/* TRUE when the bus could not find or start the daemon: the call was
 * certainly not carried out. */
gboolean  outbox_cli_error_is_daemon_missing (const GError *error);
int       outbox_cli_report_error       (const GError *error,
                                         const char   *hint);

/* Usage errors: @command is "account add" and the like, for the hint
 * "see outbox COMMAND --help". */
int       outbox_cli_report_usage       (const char   *command,
                                         const GError *error);
int       outbox_cli_usage_error        (const char   *command,
                                         const char   *format,
                                         ...) G_GNUC_PRINTF (2, 3);
/* EXIT_SUCCESS, or the usage error's exit code when the number of
 * positional arguments is not from @min to @max. */
int       outbox_cli_expect_arguments   (const char   *command,
                                         char        **args,
                                         guint         min,
                                         guint         max,
                                         const char   *what);

G_END_DECLS
