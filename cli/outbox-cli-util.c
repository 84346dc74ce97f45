/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-cli-util.h"

#include <string.h>
#include <unistd.h>

static gboolean
set_bad_time_error (const char  *when,
                    GError     **error)
{
  g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
               "cannot understand the time “%s”: use ISO 8601 (2025-03-01T09:30) "
               "or a delay such as +45s, +30m, +2h or +1d", when);
  return FALSE;
}

static gint64
seconds_per_unit (char unit)
{
  switch (unit)
    {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 60 * 60;
    case 'd':
      return 24 * 60 * 60;
    default:
      return 0;
    }
}

static gboolean
parse_delay (const char  *when,
             GDateTime   *now,
             gint64      *out_unix_time,
             GError     **error)
{
  const char *digits = when + 1;
  char *end = NULL;
  guint64 amount;
  gint64 unit;
  gint64 now_unix = g_date_time_to_unix (now);

  if (!g_ascii_isdigit (digits[0]))
    return set_bad_time_error (when, error);

  errno = 0;
  amount = g_ascii_strtoull (digits, &end, 10);
  if (errno != 0 || end[0] == '\0' || end[1] != '\0')
    return set_bad_time_error (when, error);

  unit = seconds_per_unit (end[0]);
  if (unit == 0 || amount > (guint64) (G_MAXINT64 - now_unix) / (guint64) unit)
    return set_bad_time_error (when, error);

  *out_unix_time = now_unix + (gint64) amount * unit;
  return TRUE;
}

gboolean
outbox_cli_parse_send_at (const char  *when,
                          GDateTime   *now,
                          gint64      *out_unix_time,
                          GError     **error)
{
  g_autoptr(GTimeZone) local_zone = NULL;
  g_autoptr(GDateTime) time = NULL;

  if (when[0] == '+')
    return parse_delay (when, now, out_unix_time, error);

  local_zone = g_time_zone_new_local ();
  time = g_date_time_new_from_iso8601 (when, local_zone);
  if (time == NULL)
    return set_bad_time_error (when, error);

  *out_unix_time = g_date_time_to_unix (time);
  return TRUE;
}

/* Delivery status notifications */

void
outbox_cli_dsn_clear (OutboxCliDsn *dsn)
{
  g_clear_pointer (&dsn->envid, g_free);
}

static gboolean
dsn_usage_error (const char *flag, GError *local_error, GError **error)
{
  g_autofree char *message = outbox_cli_sanitize (local_error->message);

  g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE, "%s: %s", flag, message);
  g_error_free (local_error);
  return FALSE;
}

gboolean
outbox_cli_dsn_parse (const char *const flags[3],
                      const char   *notify,
                      const char   *ret,
                      const char   *envid,
                      OutboxCliDsn *out,
                      GError      **error)
{
  GError *local_error = NULL;

  if (notify != NULL && !outbox_dsn_notify_parse (notify, &out->notify, &local_error))
    return dsn_usage_error (flags[0], local_error, error);
  if (ret != NULL && !outbox_dsn_ret_parse (ret, &out->ret, &local_error))
    return dsn_usage_error (flags[1], local_error, error);
  if (envid != NULL && !outbox_dsn_envid_validate (envid, &local_error))
    return dsn_usage_error (flags[2], local_error, error);
  if (envid != NULL)
    {
      g_free (out->envid);
      out->envid = g_strdup (envid);
    }
  return TRUE;
}

void
outbox_cli_dsn_insert (const OutboxCliDsn *dsn,
                       GVariantDict       *options)
{
  if (dsn->notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_auto(GStrv) words = outbox_dsn_notify_to_words (dsn->notify);

      g_variant_dict_insert_value (options, "notify",
                                   g_variant_new_strv ((const char *const *) words, -1));
    }
  if (dsn->ret != OUTBOX_DSN_RET_DEFAULT)
    g_variant_dict_insert (options, "ret", "s", outbox_dsn_ret_to_string (dsn->ret));
  if (dsn->envid != NULL)
    g_variant_dict_insert (options, "envid", "s", dsn->envid);
}

const char *
outbox_cli_lookup_text (GVariant   *dict,
                        const char *key)
{
  const char *value = NULL;

  return g_variant_lookup (dict, key, "&s", &value) ? value : NULL;
}

const char *
outbox_cli_lookup_text_or (GVariant   *dict,
                           const char *key,
                           const char *fallback)
{
  const char *value = outbox_cli_lookup_text (dict, key);

  return value != NULL ? value : fallback;
}

GVariant *
outbox_cli_lookup_vardicts (GVariant   *dict,
                            const char *key)
{
  return g_variant_lookup_value (dict, key, G_VARIANT_TYPE ("aa{sv}"));
}

enum
{
  QUEUE_ID,
  QUEUE_SIZE,
  QUEUE_AGE,
  QUEUE_STATE,
  QUEUE_FROM,
  QUEUE_RECIPIENTS,
  QUEUE_LAST_REPLY,
  QUEUE_N_COLUMNS
};

static const char *const queue_headers[QUEUE_N_COLUMNS] = {
  "ID", "SIZE", "AGE", "STATE", "FROM", "RECIPIENTS", "LAST REPLY",
};

static const gboolean queue_flexible[QUEUE_N_COLUMNS] = {
  FALSE, FALSE, FALSE, FALSE, TRUE, TRUE, TRUE,
};

static char *
join_recipient_addresses (GVariant *message)
{
  g_autoptr(GVariant) recipients = outbox_cli_lookup_vardicts (message, "recipients");
  g_autoptr(GPtrArray) addresses = g_ptr_array_new ();
  GVariantIter iter;
  GVariant *recipient;

  if (recipients == NULL)
    return g_strdup ("");

  g_variant_iter_init (&iter, recipients);
  while ((recipient = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *address = outbox_cli_lookup_text (recipient, "address");

      /* The string belongs to @recipients, which outlives the array. */
      if (address != NULL)
        g_ptr_array_add (addresses, (gpointer) address);
      g_variant_unref (recipient);
    }
  g_ptr_array_add (addresses, NULL);

  return g_strjoinv (", ", (char **) addresses->pdata);
}

/* A scheduled message says how long is left ("scheduled, in 8 s"): what an
 * undo window or a send-later time leaves to cancel it. */
static char *
format_queue_state (GVariant *message,
                    gint64    now)
{
  const char *state = outbox_cli_lookup_text_or (message, "state", "-");
  gint64 send_at;
  g_autofree char *left = NULL;

  if (!g_str_equal (state, "scheduled") || !g_variant_lookup (message, "send-at", "x", &send_at)
      || send_at <= now)
    return g_strdup (state);
  left = outbox_cli_format_seconds ((guint64) (send_at - now), FALSE);
  return g_strdup_printf ("scheduled, in %s", left);
}

static char **
queue_row_new (GVariant *message,
               gint64    now)
{
  char **row = g_new0 (char *, QUEUE_N_COLUMNS + 1);
  guint64 size;
  gint64 created;

  row[QUEUE_ID] = g_strdup (outbox_cli_lookup_text_or (message, "id", "-"));
  row[QUEUE_SIZE] = g_variant_lookup (message, "size", "t", &size)
                    ? outbox_cli_format_size (size) : g_strdup ("-");
  row[QUEUE_AGE] = g_variant_lookup (message, "created", "x", &created)
                   ? outbox_cli_format_duration (now - created) : g_strdup ("-");
  row[QUEUE_STATE] = format_queue_state (message, now);
  row[QUEUE_FROM] = g_strdup (outbox_cli_lookup_text_or (message, "from", ""));
  row[QUEUE_RECIPIENTS] = join_recipient_addresses (message);
  row[QUEUE_LAST_REPLY] = g_strdup (outbox_cli_lookup_text_or (message, "last-reply", ""));

  return row;
}

/* In a pipe, or with --wide, a cut value would be lost to whoever reads
 * it: the table grows instead. */
void
outbox_cli_print_queue_table (GVariant *messages,
                              gboolean  wide)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  GVariantIter iter;
  GVariant *message;

  if (g_variant_n_children (messages) == 0)
    {
      g_print ("Queue is empty.\n");
      return;
    }

  g_variant_iter_init (&iter, messages);
  while ((message = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_ptr_array_add (rows, queue_row_new (message, now));
      g_variant_unref (message);
    }

  outbox_cli_print_table (QUEUE_N_COLUMNS, queue_headers, queue_flexible, rows,
                          wide || !isatty (STDOUT_FILENO) ? G_MAXUINT
                                                          : outbox_cli_terminal_width ());
}

GVariant *
outbox_cli_find_account (GVariant   *list,
              const char *name)
{
  GVariantIter iter;
  GVariant *account;

  g_variant_iter_init (&iter, list);
  while ((account = g_variant_iter_next_value (&iter)) != NULL)
    {
      if (g_strcmp0 (outbox_cli_lookup_text (account, "name"), name) == 0)
        return account;
      g_variant_unref (account);
    }

  return NULL;
}
