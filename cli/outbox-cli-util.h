/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "outbox-smtp-dsn.h"

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

/* "+30m", "+2h", "+1d", "+45s" from @now, or ISO 8601 (local time when no
 * zone is given).  OUTBOX_CLI_ERROR_USAGE when @when is neither. */
gboolean  outbox_cli_parse_send_at      (const char   *when,
                                         GDateTime    *now,
                                         gint64       *out_unix_time,
                                         GError      **error);

/* What a message asks of delivery status notifications, as outbox send
 * (--notify, --ret, --envid) and outbox-sendmail (-N, -R, -V) take it,
 * checked by the parser the daemon uses (outbox-smtp-dsn.h). */
typedef struct
{
  OutboxDsnNotify notify;
  OutboxDsnRet ret;
  char *envid;              /* (owned) (nullable) */
} OutboxCliDsn;

void      outbox_cli_dsn_clear          (OutboxCliDsn *dsn);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OutboxCliDsn, outbox_cli_dsn_clear)
/* Each of @notify, @ret and @envid is nullable (not given); @flags names
 * them (such as {"-N", "-R", "-V"}) in the OUTBOX_CLI_ERROR_USAGE about a
 * bad one. */
gboolean  outbox_cli_dsn_parse          (const char *const flags[3],
                                         const char   *notify,
                                         const char   *ret,
                                         const char   *envid,
                                         OutboxCliDsn *out,
                                         GError      **error);
/* Adds the Submit options "notify", "ret" and "envid" that @dsn gives. */
void      outbox_cli_dsn_insert         (const OutboxCliDsn *dsn,
                                         GVariantDict       *options);

/* Text for a terminal. */
guint     outbox_cli_terminal_width     (void);
guint     outbox_cli_display_width      (const char   *text);
char     *outbox_cli_sanitize           (const char   *text);
char     *outbox_cli_fit                (const char   *text,
                                         guint         width);
char     *outbox_cli_format_size        (guint64       size);
char     *outbox_cli_format_duration    (gint64        seconds);
/* A setting in seconds, in the largest unit that holds it exactly:
 * "90 s", "1 min", "1 h", "5 days".  Approximate (rounded down) when
 * @exact is FALSE: "in 2 h", "3 days ago". */
char     *outbox_cli_format_seconds     (guint64       seconds,
                                         gboolean      exact);
char     *outbox_cli_format_time        (gint64        unix_time,
                                         gint64        now);

/* A table whose @flexible columns shrink (with "…") to fit @width.  @rows
 * holds one string vector of @n_columns cells per row. */
void      outbox_cli_print_table        (guint              n_columns,
                                         const char *const *headers,
                                         const gboolean    *flexible,
                                         GPtrArray         *rows,
                                         guint              width);

/* Reading the daemon's dictionaries: a missing key or a value of another
 * type reads as absent. */
const char *outbox_cli_lookup_text      (GVariant     *dict,
                                         const char   *key);
const char *outbox_cli_lookup_text_or   (GVariant     *dict,
                                         const char   *key,
                                         const char   *fallback);
GVariant   *outbox_cli_lookup_vardicts  (GVariant     *dict,
                                         const char   *key);

/* The mailq-like table of `outbox queue` and `outbox-sendmail -bp`. */
void      outbox_cli_print_queue_table  (GVariant     *messages,
                                         gboolean      wide);

/* JSON: a{sv} dictionaries from the daemon become objects with snake_case
 * members; Unix times become ISO 8601 strings in UTC. */
JsonNode *outbox_cli_vardict_to_json    (GVariant     *vardict);
JsonNode *outbox_cli_vardicts_to_json   (GVariant     *vardicts);
void      outbox_cli_print_json         (JsonNode     *root);
/* (transfer full) an ISO 8601 string in UTC (a number if out of range). */
JsonNode *outbox_cli_time_to_json       (gint64        unix_time);
/* {"MEMBER": [dictionaries…]} as outbox_cli_print_json() prints it, written
 * as the dictionaries come; nothing at all if it ends incomplete before the
 * first one. */
typedef struct
{
  const char *member;       /* (unowned) */
  gboolean empty;           /* no element yet, nor the head */
  GString *text;            /* (owned) */
} OutboxCliJsonList;
void      outbox_cli_json_list_begin    (OutboxCliJsonList *list,
                                         const char        *member);
void      outbox_cli_json_list_add      (OutboxCliJsonList *list,
                                         GVariant          *vardict);
/* @complete: FALSE ends the output where it is, as no whole document. */
void      outbox_cli_json_list_end      (OutboxCliJsonList *list,
                                         gboolean           complete);

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
/* (transfer full) (nullable) the account called @name in an Accounts.List
 * reply's array. */
GVariant *outbox_cli_find_account       (GVariant     *list,
                                         const char   *name);

G_END_DECLS
