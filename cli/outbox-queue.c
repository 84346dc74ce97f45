/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <sysexits.h>

#include "outbox-cli-bus.h"
#include "outbox-cli-commands.h"
#include "outbox-cli-fields.h"
#include "outbox-cli-util.h"

/* outbox queue */

static gboolean queue_all;
static gboolean queue_json;
static gboolean queue_wide;

static const GOptionEntry queue_entries[] = {
  { "all", 0, 0, G_OPTION_ARG_NONE, &queue_all, "Include sent messages still in the spool", NULL },
  { "json", 0, 0, G_OPTION_ARG_NONE, &queue_json, "Print JSON", NULL },
  { "wide", 'w', 0, G_OPTION_ARG_NONE, &queue_wide, "Print whole values even where they do not fit the terminal", NULL },
  G_OPTION_ENTRY_NULL
};

static void
print_json_message (GVariant *message,
                    gpointer  user_data)
{
  outbox_cli_json_list_add (user_data, message);
}

/* Printed one page at a time as the daemon gives it; nothing is printed
 * when the first call fails (no daemon, say). */
static int
print_queue_json (gboolean all)
{
  g_autoptr(GError) error = NULL;
  OutboxCliJsonList list;

  outbox_cli_json_list_begin (&list, "messages");
  if (!outbox_cli_bus_foreach_message (all, print_json_message, &list, &error))
    {
      /* What was printed is not a whole document; the exit status says so. */
      outbox_cli_json_list_end (&list, FALSE);
      return outbox_cli_report_error (error, NULL);
    }
  outbox_cli_json_list_end (&list, TRUE);
  return EXIT_SUCCESS;
}

static int
run_queue (char **args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) messages = NULL;

  if (queue_json)
    return print_queue_json (queue_all);
  if ((messages = outbox_cli_bus_list_messages (queue_all, &error)) == NULL)
    return outbox_cli_report_error (error, NULL);
  outbox_cli_print_queue_table (messages, queue_wide);
  return EXIT_SUCCESS;
}

const OutboxCliCommand outbox_cli_queue_command = {
  .name = "queue",
  .summary = "List the messages waiting to be sent",
  .run = run_queue,
  .entries = queue_entries,
  .description = "List the messages waiting to be sent, oldest first.",
};

/* outbox show */

static gboolean show_json;

static const GOptionEntry show_entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &show_json, "Print JSON", NULL },
  G_OPTION_ENTRY_NULL
};

static const OutboxField message_fields[] = {
  { "id", "ID", OUTBOX_FIELD_TEXT, NULL },
  { "state", "State", OUTBOX_FIELD_TEXT, NULL },
  { "account", "Account", OUTBOX_FIELD_TEXT, NULL },
  { "from", "From", OUTBOX_FIELD_TEXT, NULL },
  { "subject", "Subject", OUTBOX_FIELD_TEXT, NULL },
  { "message-id", "Message-ID", OUTBOX_FIELD_TEXT, NULL },
  { "size", "Size", OUTBOX_FIELD_SIZE, NULL },
  { "created", "Created", OUTBOX_FIELD_TIME, NULL },
  { "send-at", "Send at", OUTBOX_FIELD_TIME, NULL },
  { "next-attempt", "Next attempt", OUTBOX_FIELD_TIME, NULL },
  { "attempts", "Attempts", OUTBOX_FIELD_COUNT, NULL },
  { "last-reply", "Last reply", OUTBOX_FIELD_TEXT, NULL },
  { "sent-copy", "Sent copy", OUTBOX_FIELD_TEXT, NULL },
  { "sent-copy-reply", "Sent copy reply", OUTBOX_FIELD_TEXT, NULL },
  { "sent-copy-next", "Next copy attempt", OUTBOX_FIELD_TIME, NULL },
  { "notify", "Notify", OUTBOX_FIELD_LIST, NULL },
  { "ret", "Return", OUTBOX_FIELD_TEXT, NULL },
  { "envid", "Envelope ID", OUTBOX_FIELD_TEXT, NULL },
  { "dsn-required", "DSN required", OUTBOX_FIELD_YES_NO, NULL },
  { "dsn-not-offered", "DSN", OUTBOX_FIELD_DSN_OUTCOME, NULL },
};

enum
{
  RECIPIENT_ADDRESS,
  RECIPIENT_STATE,
  RECIPIENT_REPLY,
  RECIPIENT_N_COLUMNS
};

static const char *const recipient_headers[RECIPIENT_N_COLUMNS] = {
  "RECIPIENT", "STATE", "REPLY",
};

static const gboolean recipient_flexible[RECIPIENT_N_COLUMNS] = {
  TRUE, FALSE, TRUE,
};

/* The reply with its code in front, unless the server's text has it. */
static char *
format_recipient_reply (GVariant *recipient)
{
  const char *reply = outbox_cli_lookup_text (recipient, "reply");
  guint32 code;
  g_autofree char *code_text = NULL;

  if (!g_variant_lookup (recipient, "reply-code", "u", &code))
    return g_strdup (reply != NULL ? reply : "");

  code_text = g_strdup_printf ("%" G_GUINT32_FORMAT, code);
  if (reply == NULL || g_str_has_prefix (reply, code_text))
    return g_strdup (reply != NULL ? reply : code_text);
  return g_strdup_printf ("%s %s", code_text, reply);
}

static void
print_recipients (GVariant *message)
{
  g_autoptr(GVariant) recipients = outbox_cli_lookup_vardicts (message, "recipients");
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  GVariantIter iter;
  GVariant *recipient;

  if (recipients == NULL || g_variant_n_children (recipients) == 0)
    return;

  g_variant_iter_init (&iter, recipients);
  while ((recipient = g_variant_iter_next_value (&iter)) != NULL)
    {
      char **row = g_new0 (char *, RECIPIENT_N_COLUMNS + 1);

      row[RECIPIENT_ADDRESS] = g_strdup (outbox_cli_lookup_text_or (recipient, "address", "-"));
      row[RECIPIENT_STATE] = g_strdup (outbox_cli_lookup_text_or (recipient, "state", "-"));
      row[RECIPIENT_REPLY] = format_recipient_reply (recipient);
      g_ptr_array_add (rows, row);
      g_variant_unref (recipient);
    }

  g_print ("\n");
  outbox_cli_print_table (RECIPIENT_N_COLUMNS, recipient_headers, recipient_flexible, rows,
                          outbox_cli_terminal_width ());
}

/* NoSuchMessage names the id the user typed; other errors keep the
 * daemon's words. */
static int
report_message_error (const char   *id,
                      const GError *error)
{
  g_autofree char *clean_id = NULL;

  if (!outbox_cli_error_is (error, "NoSuchMessage"))
    return outbox_cli_report_error (error, NULL);

  clean_id = outbox_cli_sanitize (id);
  g_printerr ("%s: no message with id %s; see outbox queue\n", g_get_application_name (), clean_id);
  return outbox_cli_exit_code (error);
}

static int
run_show (char **args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) message = outbox_cli_bus_get_message (args[0], &error);

  if (message == NULL)
    return report_message_error (args[0], error);
  if (show_json)
    {
      outbox_cli_print_vardict_json (message);
      return EXIT_SUCCESS;
    }

  outbox_cli_print_fields (message, message_fields, G_N_ELEMENTS (message_fields));
  print_recipients (message);
  return EXIT_SUCCESS;
}

const OutboxCliCommand outbox_cli_show_command = {
  .name = "show",
  .summary = "Show one message and its recipients",
  .run = run_show,
  .entries = show_entries,
  OUTBOX_CLI_ONE_ARGUMENT ("ID"),
  .description = "Show one message and the state of each recipient.",
};

/* outbox cancel|hold|release|retry */

/* Errors that every further id would meet too. */
static gboolean
is_fatal_exit_code (int exit_code)
{
  return exit_code == EX_UNAVAILABLE || exit_code == EX_TEMPFAIL;
}

static int
run_for_each_id (OutboxCliQueueAction   action,
                 char                 **ids)
{
  g_autoptr(GError) error = NULL;
  int status = EXIT_SUCCESS;

  for (char **id = ids; *id != NULL; id++)
    {
      int exit_code;

      if (outbox_cli_bus_queue_action (action, *id, &error))
        continue;

      exit_code = report_message_error (*id, error);
      g_clear_error (&error);
      if (status == EXIT_SUCCESS)
        status = exit_code;
      if (is_fatal_exit_code (exit_code))
        break;
    }

  return status;
}

static int
run_cancel (char **ids)
{
  return run_for_each_id (OUTBOX_CLI_QUEUE_CANCEL, ids);
}

static int
run_hold (char **ids)
{
  return run_for_each_id (OUTBOX_CLI_QUEUE_HOLD, ids);
}

static int
run_release (char **ids)
{
  return run_for_each_id (OUTBOX_CLI_QUEUE_RELEASE, ids);
}

static int
run_retry (char **ids)
{
  return run_for_each_id (OUTBOX_CLI_QUEUE_RETRY, ids);
}

#define ID_COMMAND(word, handler, short_summary, long_summary) \
  { .name = word, .summary = short_summary, .run = handler, .parameters = "ID…", \
    .description = long_summary, .min_args = 1, .max_args = G_MAXUINT, .what = "ID" }

const OutboxCliCommand outbox_cli_cancel_command =
  ID_COMMAND ("cancel", run_cancel, "Remove messages from the queue",
              "Remove messages from the queue without sending them.");
const OutboxCliCommand outbox_cli_hold_command =
  ID_COMMAND ("hold", run_hold, "Keep messages from being sent",
              "Keep messages from being sent until outbox release.");
const OutboxCliCommand outbox_cli_release_command =
  ID_COMMAND ("release", run_release, "Let held messages go out", "Let held messages go out.");
const OutboxCliCommand outbox_cli_retry_command =
  ID_COMMAND ("retry", run_retry, "Try deferred or failed messages now",
              "Try deferred or failed messages now.");

/* outbox flush */

static int
run_flush (char **args)
{
  g_autoptr(GError) error = NULL;

  if (!outbox_cli_bus_flush (&error))
    return outbox_cli_report_error (error, NULL);
  return EXIT_SUCCESS;
}

const OutboxCliCommand outbox_cli_flush_command = {
  .name = "flush",
  .summary = "Try every queued and deferred message now",
  .run = run_flush,
  .description = "Try every queued and deferred message now.",
};
