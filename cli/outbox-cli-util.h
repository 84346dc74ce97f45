/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

/* What the commands of outbox and outbox-sendmail share: errors and exit
 * codes (outbox-cli-error.h), terminal text (outbox-cli-text.h), JSON
 * (outbox-cli-json.h), and below, the arguments both take (times, DSN) and
 * the daemon's dictionaries. */

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "outbox-cli-error.h"
#include "outbox-cli-json.h"
#include "outbox-cli-text.h"
#include "outbox-smtp-dsn.h"

G_BEGIN_DECLS

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

/* (transfer full) (nullable) the account called @name in an Accounts.List
 * reply's array. */
GVariant *outbox_cli_find_account       (GVariant     *list,
                                         const char   *name);

G_END_DECLS
