/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <locale.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include <gio/gunixfdlist.h>

#include "outbox-authorize.h"
#include "outbox-cli-util.h"
#include "outbox-goa.h"

typedef int (*OutboxCommandFunc) (int    argc,
                                  char **argv);

typedef struct
{
  const char *name;
  OutboxCommandFunc run;
  const char *summary;
} OutboxCommand;

static int dispatch (const char          *group,
                     const OutboxCommand *table,
                     gsize                n_commands,
                     int                  argc,
                     char               **argv);

static gint64
now_unix (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

/* "key: value" blocks */

typedef enum
{
  FIELD_TEXT,
  FIELD_SIZE,
  FIELD_TIME,
  FIELD_COUNT,
  FIELD_SECONDS,
  FIELD_YES_NO,
  FIELD_WORDS,
  FIELD_LIST,         /* words, separated by commas */
  FIELD_DSN_OUTCOME,  /* whether the servers did what the message asked of DSN */
} OutboxFieldKind;

typedef struct
{
  const char *key;
  const char *label;
  OutboxFieldKind kind;
  const char *shown_with;  /* only shown when this key is present, or NULL */
} OutboxField;

/* A list of words, such as a server's capabilities; NULL when empty. */
static char *
format_words_field (GVariant   *dict,
                    const char *key,
                    const char *separator)
{
  g_autofree const char **words = NULL;
  g_autofree char *joined = NULL;

  if (!g_variant_lookup (dict, key, "^a&s", &words) || words[0] == NULL)
    return NULL;
  joined = g_strjoinv (separator, (char **) words);
  return outbox_cli_sanitize (joined);
}

static gboolean
any_recipient_sent (GVariant *message)
{
  g_autoptr(GVariant) recipients = outbox_cli_lookup_vardicts (message, "recipients");
  gsize n = recipients != NULL ? g_variant_n_children (recipients) : 0;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) recipient = g_variant_get_child_value (recipients, i);

      if (g_strcmp0 (outbox_cli_lookup_text (recipient, "state"), "sent") == 0)
        return TRUE;
    }
  return FALSE;
}

/* Whether the servers were asked what the message asks of DSN; NULL
 * while nothing was sent, or nothing asked. */
static char *
format_dsn_outcome (GVariant *message)
{
  gboolean flag;

  if (g_variant_lookup (message, "dsn-not-offered", "b", &flag) && flag)
    return g_strdup ("the server does not offer it: sent without NOTIFY, RET and ENVID");
  if (!g_variant_lookup (message, "notify", "as", NULL) && outbox_cli_lookup_text (message, "ret") == NULL
      && outbox_cli_lookup_text (message, "envid") == NULL)
    return NULL;
  if (!any_recipient_sent (message))
    return NULL;
  return g_strdup ("asked of the server, which offers it");
}

static char *
format_size_field (GVariant   *dict,
                   const char *key)
{
  guint64 size;
  g_autofree char *short_size = NULL;

  if (!g_variant_lookup (dict, key, "t", &size))
    return NULL;
  if (size < 1024)
    return g_strdup_printf ("%" G_GUINT64_FORMAT " bytes", size);

  short_size = outbox_cli_format_size (size);
  return g_strdup_printf ("%s (%" G_GUINT64_FORMAT " bytes)", short_size, size);
}

static char *
format_flag_field (GVariant   *dict,
                   const char *key,
                   const char *yes,
                   const char *no)
{
  gboolean flag;

  if (!g_variant_lookup (dict, key, "b", &flag))
    return NULL;
  return g_strdup (flag ? yes : no);
}

static char *
format_field (GVariant          *dict,
              const OutboxField *field,
              gint64             now)
{
  gint64 time;
  guint32 count;
  const char *text;

  switch (field->kind)
    {
    case FIELD_TEXT:
      text = outbox_cli_lookup_text (dict, field->key);
      return text != NULL ? outbox_cli_sanitize (text) : NULL;
    case FIELD_SIZE:
      return format_size_field (dict, field->key);
    case FIELD_TIME:
      if (!g_variant_lookup (dict, field->key, "x", &time))
        return NULL;
      return outbox_cli_format_time (time, now);
    case FIELD_COUNT:
      if (!g_variant_lookup (dict, field->key, "u", &count))
        return NULL;
      return g_strdup_printf ("%" G_GUINT32_FORMAT, count);
    case FIELD_SECONDS:
      if (!g_variant_lookup (dict, field->key, "u", &count))
        return NULL;
      return outbox_cli_format_seconds (count, TRUE);
    case FIELD_YES_NO:
      return format_flag_field (dict, field->key, "yes", "no");
    case FIELD_WORDS:
      return format_words_field (dict, field->key, " ");
    case FIELD_LIST:
      return format_words_field (dict, field->key, ", ");
    case FIELD_DSN_OUTCOME:
      return format_dsn_outcome (dict);
    default:
      g_assert_not_reached ();
    }
}

static void
print_fields (GVariant          *dict,
              const OutboxField *fields,
              gsize              n_fields)
{
  gint64 now = now_unix ();
  int label_width = 0;

  for (gsize i = 0; i < n_fields; i++)
    label_width = MAX (label_width, (int) strlen (fields[i].label) + 1);

  for (gsize i = 0; i < n_fields; i++)
    {
      g_autofree char *value = NULL;
      g_autofree char *label = NULL;

      if (fields[i].shown_with != NULL &&
          outbox_cli_lookup_text (dict, fields[i].shown_with) == NULL)
        continue;
      value = format_field (dict, &fields[i], now);
      if (value == NULL)
        continue;
      label = g_strconcat (fields[i].label, ":", NULL);
      g_print ("%-*s %s\n", label_width, label, value);
    }
}

/* outbox send */

/* A message a delay scheduled (the account's send-delay or --delay) says
 * on stderr how long is left and how to undo it; stdout stays the id. */
static void
tell_undo_window (OutboxDbusQueue *queue,
                  const char      *id)
{
  g_autoptr(GVariant) message = NULL;
  gint64 send_at;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *left = NULL;

  if (!outbox_dbus_queue_call_get_sync (queue, id, &message, NULL, NULL))
    return;
  if (g_strcmp0 (outbox_cli_lookup_text (message, "state"), "scheduled") != 0
      || !g_variant_lookup (message, "send-at", "x", &send_at))
    return;
  left = outbox_cli_format_seconds (send_at > now ? (guint64) (send_at - now) : 0, FALSE);
  g_printerr ("Sending in %s; outbox cancel %s undoes it\n", left, id);
}

static int
submit_stdin (GVariant *options,
              gboolean  tell_delay)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();
  g_autoptr(OutboxDbusQueue) queue = NULL;
  g_autofree char *id = NULL;
  int handle;

  /* The daemon reads the message from our standard input itself, so it
   * never passes through this process's memory. */
  handle = g_unix_fd_list_append (fd_list, STDIN_FILENO, &error);
  if (handle < 0)
    return outbox_cli_report_error (error, NULL);

  queue = outbox_cli_queue_proxy_new (&error);
  if (queue == NULL)
    return outbox_cli_report_error (error, NULL);

  /* Storing a large message durably takes as long as the disk needs. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (queue), G_MAXINT);
  if (!outbox_dbus_queue_call_submit_sync (queue, g_variant_new_handle (handle), options,
                                           fd_list, &id, NULL, NULL, &error))
    return outbox_cli_report_error (error, NULL);

  g_print ("%s\n", id);
  if (tell_delay)
    tell_undo_window (queue, id);
  return EXIT_SUCCESS;
}

static const char *const dsn_flags[3] = { "--notify", "--ret", "--envid" };

static int
command_send (int    argc,
              char **argv)
{
  g_autofree char *account = NULL;
  g_autofree char *from = NULL;
  g_autofree char *at = NULL;
  gboolean hold = FALSE;
  gint64 delay = G_MININT64; /* not given */
  gboolean save_to_sent = FALSE;
  gboolean no_save_to_sent = FALSE;
  g_autofree char *notify = NULL;
  g_autofree char *ret = NULL;
  g_autofree char *envid = NULL;
  gboolean dsn_required = FALSE;
  gboolean no_dsn_required = FALSE;
  g_auto(OutboxCliDsn) dsn = { 0, };
  g_auto(GStrv) recipients = NULL;
  GOptionEntry entries[] = {
    { "account", 'a', 0, G_OPTION_ARG_STRING, &account, "Send through ACCOUNT", "ACCOUNT" },
    { "from", 'f', 0, G_OPTION_ARG_STRING, &from, "Envelope sender (default: the account's address)", "ADDRESS" },
    { "at", 0, 0, G_OPTION_ARG_STRING, &at, "Send at WHEN: ISO 8601 (2025-03-01T09:30) or +45s, +30m, +2h, +1d", "WHEN" },
    { "hold", 0, 0, G_OPTION_ARG_NONE, &hold, "Queue the message held until outbox release", NULL },
    { "delay", 0, 0, G_OPTION_ARG_INT64, &delay, "Wait SECONDS (at most 86400) before sending, so that outbox cancel undoes it (default: the account's send-delay)", "SECONDS" },
    { "save-to-sent", 0, 0, G_OPTION_ARG_NONE, &save_to_sent, "File a copy in the IMAP Sent folder", NULL },
    { "no-save-to-sent", 0, 0, G_OPTION_ARG_NONE, &no_save_to_sent, "Do not file a copy in the IMAP Sent folder", NULL },
    { "notify", 0, 0, G_OPTION_ARG_STRING, &notify, "Ask for delivery status notifications: never, or any of success, failure, delay (default: the account's dsn-notify)", "LIST" },
    { "ret", 0, 0, G_OPTION_ARG_STRING, &ret, "What a notification returns: full (the message) or hdrs (its header)", "full|hdrs" },
    { "envid", 0, 0, G_OPTION_ARG_STRING, &envid, "The envelope ID notifications carry (1 to 100 printable ASCII characters)", "ID" },
    { "dsn-required", 0, 0, G_OPTION_ARG_NONE, &dsn_required, "Wait for a server that offers DSN rather than send without it", NULL },
    { "no-dsn-required", 0, 0, G_OPTION_ARG_NONE, &no_dsn_required, "Send without DSN where the server does not offer it, whatever the account says", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &recipients, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariantDict) options = g_variant_dict_new (NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  gint64 send_at;

  if (!outbox_cli_parse_options ("send", "[RCPT…] < MESSAGE",
                      "Queue the message read from standard input. Recipients default to\n"
                      "the message's To, Cc and Bcc. Prints the new message's id.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("send", error);

  if (save_to_sent && no_save_to_sent)
    return outbox_cli_usage_error ("send", "--save-to-sent and --no-save-to-sent exclude each other");
  if (dsn_required && no_dsn_required)
    return outbox_cli_usage_error ("send", "--dsn-required and --no-dsn-required exclude each other");
  if (!outbox_cli_dsn_parse (dsn_flags, notify, ret, envid, &dsn, &error))
    return outbox_cli_report_usage ("send", error);
  if (at != NULL && !outbox_cli_parse_send_at (at, now, &send_at, &error))
    return outbox_cli_report_usage ("send", error);
  if (delay != G_MININT64 && (delay < 0 || delay > 86400))
    return outbox_cli_usage_error ("send", "--delay takes 0 to 86400 seconds; for later, use --at");
  if (delay != G_MININT64 && at != NULL)
    return outbox_cli_usage_error ("send", "--delay and --at exclude each other");
  if (isatty (STDIN_FILENO))
    {
      error = g_error_new_literal (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                                   "refusing to read the message from a terminal");
      return outbox_cli_report_error (error, "redirect it: outbox send [RCPT…] < message.eml");
    }

  if (account != NULL)
    g_variant_dict_insert (options, "account", "s", account);
  if (from != NULL)
    g_variant_dict_insert (options, "from", "s", from);
  if (recipients != NULL && recipients[0] != NULL)
    g_variant_dict_insert_value (options, "recipients",
                                 g_variant_new_strv ((const char *const *) recipients, -1));
  if (at != NULL)
    g_variant_dict_insert (options, "send-at", "x", send_at);
  if (hold)
    g_variant_dict_insert (options, "hold", "b", TRUE);
  if (delay != G_MININT64)
    g_variant_dict_insert (options, "delay", "u", (guint32) delay);
  if (save_to_sent || no_save_to_sent)
    g_variant_dict_insert (options, "save-to-sent", "b", save_to_sent);
  outbox_cli_dsn_insert (&dsn, options);
  if (dsn_required || no_dsn_required)
    g_variant_dict_insert (options, "dsn-required", "b", dsn_required);

  return submit_stdin (g_variant_dict_end (options), at == NULL && !hold);
}

/* outbox queue */

static void
print_json_list (const char *member,
                 GVariant   *vardicts)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *object = json_object_new ();

  json_object_set_member (object, member, outbox_cli_vardicts_to_json (vardicts));
  json_node_take_object (root, object);
  outbox_cli_print_json (root);
}

static void
print_json_message (GVariant *message,
                    gpointer  user_data)
{
  outbox_cli_json_list_add (user_data, message);
}

/* Printed one page at a time as the daemon gives it; nothing is printed
 * when the first call fails (no daemon, say). */
static int
print_queue_json (OutboxDbusQueue *queue,
                  gboolean         all)
{
  g_autoptr(GError) error = NULL;
  OutboxCliJsonList list;

  outbox_cli_json_list_begin (&list, "messages");
  if (!outbox_cli_foreach_message (queue, all, print_json_message, &list, &error))
    {
      /* What was printed is not a whole document; the exit status says so. */
      outbox_cli_json_list_end (&list, FALSE);
      return outbox_cli_report_error (error, NULL);
    }
  outbox_cli_json_list_end (&list, TRUE);
  return EXIT_SUCCESS;
}

static int
command_queue (int    argc,
               char **argv)
{
  gboolean all = FALSE;
  gboolean json = FALSE;
  gboolean wide = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "all", 0, 0, G_OPTION_ARG_NONE, &all, "Include sent messages still in the spool", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "wide", 'w', 0, G_OPTION_ARG_NONE, &wide, "Print whole values even where they do not fit the terminal", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusQueue) queue = NULL;
  g_autoptr(GVariant) messages = NULL;
  int status;

  if (!outbox_cli_parse_options ("queue", NULL, "List the messages waiting to be sent, oldest first.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("queue", error);
  if ((status = outbox_cli_expect_arguments ("queue", args, 0, 0, NULL)) != EXIT_SUCCESS)
    return status;

  queue = outbox_cli_queue_proxy_new (&error);
  if (queue == NULL)
    return outbox_cli_report_error (error, NULL);
  if (json)
    return print_queue_json (queue, all);
  if ((messages = outbox_cli_list_messages (queue, all, &error)) == NULL)
    return outbox_cli_report_error (error, NULL);
  outbox_cli_print_queue_table (messages, wide);
  return EXIT_SUCCESS;
}

/* outbox show */

static const OutboxField message_fields[] = {
  { "id", "ID", FIELD_TEXT, NULL },
  { "state", "State", FIELD_TEXT, NULL },
  { "account", "Account", FIELD_TEXT, NULL },
  { "from", "From", FIELD_TEXT, NULL },
  { "subject", "Subject", FIELD_TEXT, NULL },
  { "message-id", "Message-ID", FIELD_TEXT, NULL },
  { "size", "Size", FIELD_SIZE, NULL },
  { "created", "Created", FIELD_TIME, NULL },
  { "send-at", "Send at", FIELD_TIME, NULL },
  { "next-attempt", "Next attempt", FIELD_TIME, NULL },
  { "attempts", "Attempts", FIELD_COUNT, NULL },
  { "last-reply", "Last reply", FIELD_TEXT, NULL },
  { "sent-copy", "Sent copy", FIELD_TEXT, NULL },
  { "sent-copy-reply", "Sent copy reply", FIELD_TEXT, NULL },
  { "sent-copy-next", "Next copy attempt", FIELD_TIME, NULL },
  { "notify", "Notify", FIELD_LIST, NULL },
  { "ret", "Return", FIELD_TEXT, NULL },
  { "envid", "Envelope ID", FIELD_TEXT, NULL },
  { "dsn-required", "DSN required", FIELD_YES_NO, NULL },
  { "dsn-not-offered", "DSN", FIELD_DSN_OUTCOME, NULL },
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
command_show (int    argc,
              char **argv)
{
  gboolean json = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusQueue) queue = NULL;
  g_autoptr(GVariant) message = NULL;
  int status;

  if (!outbox_cli_parse_options ("show", "ID", "Show one message and the state of each recipient.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("show", error);
  if ((status = outbox_cli_expect_arguments ("show", args, 1, 1, "ID")) != EXIT_SUCCESS)
    return status;

  queue = outbox_cli_queue_proxy_new (&error);
  if (queue == NULL)
    return outbox_cli_report_error (error, NULL);
  if (!outbox_dbus_queue_call_get_sync (queue, args[0], &message, NULL, &error))
    return report_message_error (args[0], error);

  if (json)
    {
      g_autoptr(JsonNode) root = outbox_cli_vardict_to_json (message);

      outbox_cli_print_json (root);
      return EXIT_SUCCESS;
    }

  print_fields (message, message_fields, G_N_ELEMENTS (message_fields));
  print_recipients (message);
  return EXIT_SUCCESS;
}

/* outbox cancel|hold|release|retry */

typedef gboolean (*OutboxQueueIdCall) (OutboxDbusQueue *queue,
                                       const char      *id,
                                       GCancellable    *cancellable,
                                       GError         **error);

/* Errors that every further id would meet too. */
static gboolean
is_fatal_exit_code (int exit_code)
{
  return exit_code == EX_UNAVAILABLE || exit_code == EX_TEMPFAIL;
}

static int
run_for_each_id (const char         *command,
                 const char         *summary,
                 OutboxQueueIdCall   call,
                 int                 argc,
                 char              **argv)
{
  g_auto(GStrv) ids = NULL;
  GOptionEntry entries[] = {
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &ids, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusQueue) queue = NULL;
  int status;

  if (!outbox_cli_parse_options (command, "ID…", summary, entries, &argc, &argv, &error))
    return outbox_cli_report_usage (command, error);
  if ((status = outbox_cli_expect_arguments (command, ids, 1, G_MAXUINT, "ID")) != EXIT_SUCCESS)
    return status;

  queue = outbox_cli_queue_proxy_new (&error);
  if (queue == NULL)
    return outbox_cli_report_error (error, NULL);

  for (char **id = ids; *id != NULL; id++)
    {
      int exit_code;

      if (call (queue, *id, NULL, &error))
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
command_cancel (int    argc,
                char **argv)
{
  return run_for_each_id ("cancel", "Remove messages from the queue without sending them.",
                          outbox_dbus_queue_call_cancel_sync, argc, argv);
}

static int
command_hold (int    argc,
              char **argv)
{
  return run_for_each_id ("hold", "Keep messages from being sent until outbox release.",
                          outbox_dbus_queue_call_hold_sync, argc, argv);
}

static int
command_release (int    argc,
                 char **argv)
{
  return run_for_each_id ("release", "Let held messages go out.",
                          outbox_dbus_queue_call_release_sync, argc, argv);
}

static int
command_retry (int    argc,
               char **argv)
{
  return run_for_each_id ("retry", "Try deferred or failed messages now.",
                          outbox_dbus_queue_call_retry_sync, argc, argv);
}

/* outbox flush */

static int
command_flush (int    argc,
               char **argv)
{
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusQueue) queue = NULL;
  int status;

  if (!outbox_cli_parse_options ("flush", NULL, "Try every queued and deferred message now.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("flush", error);
  if ((status = outbox_cli_expect_arguments ("flush", args, 0, 0, NULL)) != EXIT_SUCCESS)
    return status;

  queue = outbox_cli_queue_proxy_new (&error);
  if (queue == NULL || !outbox_dbus_queue_call_flush_sync (queue, NULL, &error))
    return outbox_cli_report_error (error, NULL);

  return EXIT_SUCCESS;
}

/* outbox status */

static const char *const known_states[] = {
  "queued", "scheduled", "held", "sending", "deferred", "sent", "failed",
};

typedef struct
{
  guint32 version;
  char *daemon_version;  /* (owned) (nullable) absent from older daemons */
  gboolean online;
  GVariant *messages;  /* (owned) aa{sv} */
  GPtrArray *blocked_accounts; /* (owned) (element-type GVariant) a{sv} from Accounts.List */
} OutboxStatus;

static void
outbox_status_clear (OutboxStatus *status)
{
  g_clear_pointer (&status->daemon_version, g_free);
  g_clear_pointer (&status->messages, g_variant_unref);
  g_clear_pointer (&status->blocked_accounts, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OutboxStatus, outbox_status_clear)

static gboolean
fetch_queue_properties (OutboxStatus  *status,
                        GError       **error)
{
  g_autoptr(GDBusConnection) bus = outbox_cli_session_bus (error);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) properties = NULL;

  if (bus == NULL)
    return FALSE;

  reply = g_dbus_connection_call_sync (bus, OUTBOX_BUS_NAME, OUTBOX_OBJECT_PATH,
                                       "org.freedesktop.DBus.Properties", "GetAll",
                                       g_variant_new ("(s)", "org.outbox.Outbox1.Queue"),
                                       G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                       -1, NULL, error);
  if (reply == NULL)
    return FALSE;

  properties = g_variant_get_child_value (reply, 0);
  g_variant_lookup (properties, "Version", "u", &status->version);
  g_variant_lookup (properties, "DaemonVersion", "s", &status->daemon_version);
  g_variant_lookup (properties, "Online", "b", &status->online);
  return TRUE;
}

static GVariant *list_accounts (GError **error);

/* Accounts whose messages wait for the user (a refused password, an
 * OAuth2 grant to renew, a linked account gone): each a{sv} with name,
 * state and what to do. */
static gboolean
fetch_blocked_accounts (OutboxStatus  *status,
                        GError       **error)
{
  g_autoptr(GVariant) accounts = list_accounts (error);
  GVariantIter iter;
  GVariant *account;

  if (accounts == NULL)
    return FALSE;

  status->blocked_accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_variant_iter_init (&iter, accounts);
  while ((account = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *state = outbox_cli_lookup_text_or (account, "state", "ok");

      if (outbox_cli_lookup_text (account, "name") != NULL && !g_str_equal (state, "ok"))
        g_ptr_array_add (status->blocked_accounts, g_variant_ref (account));
      g_variant_unref (account);
    }
  return TRUE;
}

static gboolean
fetch_status (OutboxStatus  *status,
              GError       **error)
{
  g_autoptr(OutboxDbusQueue) queue = NULL;

  if (!fetch_queue_properties (status, error))
    return FALSE;

  queue = outbox_cli_queue_proxy_new (error);
  if (queue == NULL)
    return FALSE;

  status->messages = outbox_cli_list_messages (queue, TRUE, error);
  if (status->messages == NULL)
    return FALSE;

  return fetch_blocked_accounts (status, error);
}

/* Every known state (in lifecycle order, zero or not), then any state a
 * newer daemon reports that this client does not know. */
static JsonObject *
count_states (GVariant *messages)
{
  JsonObject *counts = json_object_new ();
  GVariantIter iter;
  GVariant *message;

  for (gsize i = 0; i < G_N_ELEMENTS (known_states); i++)
    json_object_set_int_member (counts, known_states[i], 0);

  g_variant_iter_init (&iter, messages);
  while ((message = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *state = outbox_cli_lookup_text_or (message, "state", "unknown");
      gint64 count = json_object_has_member (counts, state)
                     ? json_object_get_int_member (counts, state) : 0;

      json_object_set_int_member (counts, state, count + 1);
      g_variant_unref (message);
    }

  return counts;
}

/* An x (Unix time) of @dict as an ISO 8601 member, when it is there. */
static void
set_time_member (JsonObject *object,
                 GVariant   *dict,
                 const char *key,
                 const char *member)
{
  gint64 when;

  if (g_variant_lookup (dict, key, "x", &when))
    json_object_set_member (object, member, outbox_cli_time_to_json (when));
}

static void
print_status_json (const OutboxStatus *status)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *object = json_object_new ();
  JsonArray *names = json_array_new ();
  JsonArray *blocked = json_array_new ();

  for (guint i = 0; i < status->blocked_accounts->len; i++)
    {
      GVariant *account = g_ptr_array_index (status->blocked_accounts, i);
      JsonObject *entry = json_object_new ();
      const char *state = outbox_cli_lookup_text (account, "state");

      json_object_set_string_member (entry, "name", outbox_cli_lookup_text (account, "name"));
      json_object_set_string_member (entry, "state", state);
      json_object_set_string_member (entry, "message",
                                     outbox_cli_lookup_text_or (account, "state-message", ""));
      set_time_member (entry, account, "failing-since", "failing_since");
      set_time_member (entry, account, "next-attempt", "next_attempt");
      json_array_add_object_element (blocked, entry);
      if (g_str_equal (state, "needs-password"))
        json_array_add_string_element (names, outbox_cli_lookup_text (account, "name"));
    }
  json_object_set_int_member (object, "version", status->version);
  if (status->daemon_version != NULL)
    json_object_set_string_member (object, "daemon_version", status->daemon_version);
  json_object_set_string_member (object, "client_version", PACKAGE_VERSION);
  json_object_set_boolean_member (object, "online", status->online);
  json_object_set_int_member (object, "total", (gint64) g_variant_n_children (status->messages));
  json_object_set_object_member (object, "counts", count_states (status->messages));
  json_object_set_array_member (object, "accounts_needing_password", names);
  json_object_set_array_member (object, "accounts_needing_attention", blocked);
  json_node_take_object (root, object);
  outbox_cli_print_json (root);
}

static void
print_blocked_accounts (GPtrArray *accounts)
{
  if (accounts->len == 0)
    return;

  g_print ("Accounts needing attention:\n");
  for (guint i = 0; i < accounts->len; i++)
    {
      GVariant *account = g_ptr_array_index (accounts, i);
      g_autofree char *name = outbox_cli_sanitize (outbox_cli_lookup_text (account, "name"));
      g_autofree char *state = outbox_cli_sanitize (outbox_cli_lookup_text (account, "state"));
      g_autofree char *message =
          outbox_cli_sanitize (outbox_cli_lookup_text_or (account, "state-message", ""));

      gint64 since = 0;
      gint64 next_attempt = 0;

      g_print ("  %s (%s): %s\n", name, state, message);
      if (g_variant_lookup (account, "failing-since", "x", &since))
        {
          g_autofree char *since_text = outbox_cli_format_time (since, now_unix ());

          g_print ("    failing since %s", since_text);
          if (g_variant_lookup (account, "next-attempt", "x", &next_attempt))
            {
              g_autofree char *next_text = outbox_cli_format_time (next_attempt, now_unix ());
              g_print ("; next attempt %s", next_text);
            }
          g_print ("\n");
        }
    }
}

static void
print_status_text (const OutboxStatus *status)
{
  g_autoptr(JsonObject) counts = count_states (status->messages);
  g_autoptr(GList) states = json_object_get_members (counts);
  g_autofree char *daemon_version =
      outbox_cli_sanitize (status->daemon_version != NULL ? status->daemon_version : "unknown");

  g_print ("%-15s %s (interface %" G_GUINT32_FORMAT ")\n", "Daemon version:", daemon_version,
           status->version);
  g_print ("%-15s %s\n", "Client version:", PACKAGE_VERSION);
  g_print ("%-15s %s\n", "Online:", status->online ? "yes" : "no");
  g_print ("%-15s %" G_GSIZE_FORMAT "\n", "Messages:", g_variant_n_children (status->messages));
  for (GList *l = states; l != NULL; l = l->next)
    {
      g_autofree char *state = outbox_cli_sanitize (l->data);

      g_print ("  %-13s %" G_GINT64_FORMAT "\n", state,
               json_object_get_int_member (counts, l->data));
    }
  print_blocked_accounts (status->blocked_accounts);
}

static int
command_status (int    argc,
                char **argv)
{
  gboolean json = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_auto(OutboxStatus) status = { 0, };
  int exit_code;

  if (!outbox_cli_parse_options ("status", NULL, "Show the daemon's version, whether it is online, "
                      "how many messages are in each state,\nand the accounts whose mail "
                      "waits for you, with what to do.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("status", error);
  if ((exit_code = outbox_cli_expect_arguments ("status", args, 0, 0, NULL)) != EXIT_SUCCESS)
    return exit_code;

  if (!fetch_status (&status, &error))
    return outbox_cli_report_error (error, NULL);

  if (json)
    print_status_json (&status);
  else
    print_status_text (&status);
  return EXIT_SUCCESS;
}

/* outbox account add */

enum { PASSWORD_MAX_LENGTH = 4096 };

static gboolean
read_byte (int      fd,
           char    *byte,
           gsize   *n_read,
           GError **error)
{
  ssize_t result;

  do
    result = read (fd, byte, 1);
  while (result < 0 && errno == EINTR);

  if (result < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "cannot read the password: %s", g_strerror (saved_errno));
      return FALSE;
    }

  *n_read = (gsize) result;
  return TRUE;
}

/* One line into @buffer, byte by byte so that nothing past the line is
 * consumed and no copy is left in a stdio buffer. */
static gboolean
read_line (int      fd,
           char    *buffer,
           gsize    size,
           GError **error)
{
  gsize length = 0;
  gsize n_read;

  for (;;)
    {
      if (!read_byte (fd, &buffer[length], &n_read, error))
        return FALSE;
      if (n_read == 0 || buffer[length] == '\n')
        break;
      if (buffer[length] == '\0')
        {
          g_set_error_literal (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                               "the password must be UTF-8 text without NUL bytes");
          return FALSE;
        }
      if (++length == size - 1)
        {
          g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                       "the password is longer than %" G_GSIZE_FORMAT " bytes", size - 2);
          return FALSE;
        }
    }

  if (length > 0 && buffer[length - 1] == '\r')
    length--;
  buffer[length] = '\0';
  return TRUE;
}

static gboolean
check_password (const char  *password,
                GError     **error)
{
  if (password[0] == '\0')
    g_set_error_literal (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                         "refusing an empty password on standard input");
  else if (!g_utf8_validate (password, -1, NULL))
    g_set_error_literal (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                         "the password must be UTF-8 text without NUL bytes");
  else
    return TRUE;

  return FALSE;
}

/* Reads the password from standard input, without echo when that is a
 * terminal. */
static gboolean
read_password (char       *buffer,
               gsize       size,
               const char *prompt,
               GError    **error)
{
  struct termios saved;
  struct termios quiet;
  gboolean on_terminal = isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved) == 0;
  gboolean ok;

  if (on_terminal)
    {
      quiet = saved;
      quiet.c_lflag &= ~(tcflag_t) ECHO;
      g_printerr ("%s: ", prompt);
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
    }

  ok = read_line (STDIN_FILENO, buffer, size, error);

  if (on_terminal)
    {
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved);
      g_printerr ("\n");
    }

  return ok && check_password (buffer, error);
}

/* Numeric settings: -1 while not given on the command line. */
enum
{
  NUMERIC_TIMEOUT,
  NUMERIC_RETRY_FIRST,
  NUMERIC_RETRY_MAX,
  NUMERIC_GIVE_UP_AFTER,
  NUMERIC_MAX_CONNECTIONS,
  NUMERIC_MAX_RECIPIENTS,
  NUMERIC_SEND_DELAY,
  N_NUMERIC_SETTINGS
};

static const char *const numeric_keys[N_NUMERIC_SETTINGS] = {
  "timeout", "retry-first", "retry-max", "give-up-after", "max-connections",
  "max-recipients", "send-delay",
};

/* Sign-in settings that are plain text, each set by the option of its name. */
enum
{
  SIGN_IN_OAUTH2,
  SIGN_IN_OAUTH2_AUTH_URL,
  SIGN_IN_OAUTH2_TOKEN_URL,
  SIGN_IN_OAUTH2_DEVICE_URL,
  SIGN_IN_OAUTH2_SCOPE,
  SIGN_IN_CLIENT_ID,
  SIGN_IN_GOA,
  N_SIGN_IN_SETTINGS
};

static const char *const sign_in_keys[N_SIGN_IN_SETTINGS] = {
  "oauth2", "oauth2-auth-url", "oauth2-token-url", "oauth2-device-url", "oauth2-scope", "client-id",
  "goa-id",
};

/* Settings that hold a command line, split into its words here (no shell
 * runs it: the daemon starts the command itself). */
enum
{
  COMMAND_PASSWORD,
  COMMAND_TOKEN,
  N_COMMAND_SETTINGS
};

static const char *const command_keys[N_COMMAND_SETTINGS] = {
  "password-command", "token-command",
};

typedef struct
{
  char *from;
  char **aliases;
  char *smtp;
  char *imap;
  char *pop3;
  char *tls_ca_file;
  char *tls_fingerprint;
  char *auth;
  char *sent_folder;
  char *sign_in[N_SIGN_IN_SETTINGS];
  char *command[N_COMMAND_SETTINGS];
  gint64 numeric[N_NUMERIC_SETTINGS];
  gboolean save_to_sent;
  gboolean no_save_to_sent;
  gboolean pop_before_smtp;
  gboolean no_pop_before_smtp;
  char *dsn_notify;
  gboolean dsn_required;
  gboolean no_dsn_required;
  gboolean no_aliases;
  gboolean make_default;
  gboolean password_stdin;
  gboolean client_secret_stdin;
  char **args;
} OutboxAccountOptions;

static void
outbox_account_options_clear (OutboxAccountOptions *options)
{
  g_clear_pointer (&options->from, g_free);
  g_clear_pointer (&options->aliases, g_strfreev);
  g_clear_pointer (&options->smtp, g_free);
  g_clear_pointer (&options->imap, g_free);
  g_clear_pointer (&options->pop3, g_free);
  g_clear_pointer (&options->tls_ca_file, g_free);
  g_clear_pointer (&options->tls_fingerprint, g_free);
  g_clear_pointer (&options->auth, g_free);
  g_clear_pointer (&options->sent_folder, g_free);
  g_clear_pointer (&options->dsn_notify, g_free);
  for (gsize i = 0; i < N_SIGN_IN_SETTINGS; i++)
    g_clear_pointer (&options->sign_in[i], g_free);
  for (gsize i = 0; i < N_COMMAND_SETTINGS; i++)
    g_clear_pointer (&options->command[i], g_free);
  g_clear_pointer (&options->args, g_strfreev);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OutboxAccountOptions, outbox_account_options_clear)

#define ACCOUNT_OPTION_COUNT 38

/* The options of account add and account update, writing into @options. */
static void
init_account_entries (OutboxAccountOptions *options,
                      GOptionEntry          entries[ACCOUNT_OPTION_COUNT])
{
  const GOptionEntry all[ACCOUNT_OPTION_COUNT] = {
    { "from", 0, 0, G_OPTION_ARG_STRING, &options->from, "The account's address", "ADDRESS" },
    { "alias", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options->aliases, "Another From address this account sends for, or *@DOMAIN for all of a domain; repeat for more (replaces the list)", "ADDRESS" },
    { "no-aliases", 0, 0, G_OPTION_ARG_NONE, &options->no_aliases, "Remove every alias (as does --alias '')", NULL },
    { "smtp", 0, 0, G_OPTION_ARG_STRING, &options->smtp, "Submission server, e.g. smtps://user@host:465", "URL" },
    { "imap", 0, 0, G_OPTION_ARG_STRING, &options->imap, "IMAP server, e.g. imaps://user@host", "URL" },
    { "pop3", 0, 0, G_OPTION_ARG_STRING, &options->pop3, "POP3 server, e.g. pop3s://user@host", "URL" },
    { "tls-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &options->tls_ca_file, "Trust the CAs in this PEM file instead of the system's", "FILE" },
    { "tls-fingerprint", 0, 0, G_OPTION_ARG_STRING, &options->tls_fingerprint, "Pin the server certificate", "sha256:HEX" },
    { "auth", 0, 0, G_OPTION_ARG_STRING, &options->auth, "SASL mechanism: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1, PLAIN, LOGIN, OAUTHBEARER or XOAUTH2 (default: the strongest offered)", "MECH" },
    { "password-command", 0, 0, G_OPTION_ARG_STRING, &options->command[COMMAND_PASSWORD], "Run CMD (no shell) for each session: its first line of output is the password", "CMD" },
    { "token-command", 0, 0, G_OPTION_ARG_STRING, &options->command[COMMAND_TOKEN], "Run CMD (no shell) for each session: its first line of output is an OAuth2 access token", "CMD" },
    { "goa", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_GOA], "Link the GNOME Online Accounts mail account with this address or id: its servers and sign-in (see account list --goa)", "ADDRESS|ID" },
    { "oauth2", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_OAUTH2], "Sign in with OAuth2: google, microsoft, or custom (with the URLs below)", "PROVIDER" },
    { "client-id", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_CLIENT_ID], "The OAuth2 client ID of an application registered with the provider", "ID" },
    { "oauth2-auth-url", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_OAUTH2_AUTH_URL], "The provider's authorization endpoint", "URL" },
    { "oauth2-token-url", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_OAUTH2_TOKEN_URL], "The provider's token endpoint", "URL" },
    { "oauth2-device-url", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_OAUTH2_DEVICE_URL], "The provider's device authorization endpoint (RFC 8628)", "URL" },
    { "oauth2-scope", 0, 0, G_OPTION_ARG_STRING, &options->sign_in[SIGN_IN_OAUTH2_SCOPE], "The scopes to ask for, separated by spaces", "SCOPE" },
    { "timeout", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_TIMEOUT], "Cap every SMTP command timeout (0: the RFC 5321 timeouts)", "SECONDS" },
    { "retry-first", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_RETRY_FIRST], "Wait before the first retry (default 60)", "SECONDS" },
    { "retry-max", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_RETRY_MAX], "The wait doubles up to this (default 3600)", "SECONDS" },
    { "give-up-after", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_GIVE_UP_AFTER], "Fail what is still deferred after this (default 5 days)", "SECONDS" },
    { "max-connections", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_MAX_CONNECTIONS], "SMTP connections at once (default 2)", "N" },
    { "max-recipients", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_MAX_RECIPIENTS], "Recipients per SMTP transaction (default: as many as the server takes)", "N" },
    { "send-delay", 0, 0, G_OPTION_ARG_INT64, &options->numeric[NUMERIC_SEND_DELAY], "Hold each message this long before it goes, so that outbox cancel undoes it (default 0; at most 86400)", "SECONDS" },
    { "save-to-sent", 0, 0, G_OPTION_ARG_NONE, &options->save_to_sent, "Copy sent mail to the IMAP Sent folder (the default with --imap)", NULL },
    { "no-save-to-sent", 0, 0, G_OPTION_ARG_NONE, &options->no_save_to_sent, "Do not copy sent mail (for providers that file it themselves)", NULL },
    { "sent-folder", 0, 0, G_OPTION_ARG_STRING, &options->sent_folder, "The Sent folder when the server marks none", "NAME" },
    { "pop-before-smtp", 0, 0, G_OPTION_ARG_NONE, &options->pop_before_smtp, "Log in to POP3 before each SMTP session", NULL },
    { "no-pop-before-smtp", 0, 0, G_OPTION_ARG_NONE, &options->no_pop_before_smtp, "Stop logging in to POP3 first", NULL },
    { "dsn-notify", 0, 0, G_OPTION_ARG_STRING, &options->dsn_notify, "Delivery status notifications a message asks for when outbox send --notify gives none: never, or any of success, failure, delay ('' for none)", "LIST" },
    { "dsn-required", 0, 0, G_OPTION_ARG_NONE, &options->dsn_required, "Defer a message that asks for DSN where the server does not offer it", NULL },
    { "no-dsn-required", 0, 0, G_OPTION_ARG_NONE, &options->no_dsn_required, "Send such a message without DSN (the default)", NULL },
    { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &options->password_stdin, "Read the password from the first line of standard input", NULL },
    { "client-secret-stdin", 0, 0, G_OPTION_ARG_NONE, &options->client_secret_stdin, "Read the OAuth2 client secret from the first line of standard input", NULL },
    { "default", 0, 0, G_OPTION_ARG_NONE, &options->make_default, "Make this the default account", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &options->args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };

  for (gsize i = 0; i < G_N_ELEMENTS (options->numeric); i++)
    options->numeric[i] = -1;
  memcpy (entries, all, sizeof all);
}

static void
insert_optional_text (GVariantDict *settings,
                      const char   *key,
                      const char   *value)
{
  if (value != NULL)
    g_variant_dict_insert (settings, key, "s", value);
}

/* An absolute path to an existing file, or "" (which removes the setting). */
static gboolean
resolve_ca_file (const char  *tls_ca_file,
                 char       **out_path,
                 GError     **error)
{
  g_autofree char *path = NULL;

  if (tls_ca_file == NULL || tls_ca_file[0] == '\0')
    {
      *out_path = g_strdup (tls_ca_file);
      return TRUE;
    }

  path = g_canonicalize_filename (tls_ca_file, NULL);
  if (!g_utf8_validate (path, -1, NULL) || !g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                   "--tls-ca-file: no such file: %s", tls_ca_file);
      return FALSE;
    }
  *out_path = g_steal_pointer (&path);
  return TRUE;
}

static gboolean
insert_numeric_settings (GVariantDict               *settings,
                         const OutboxAccountOptions *options,
                         GError                    **error)
{
  for (gsize i = 0; i < N_NUMERIC_SETTINGS; i++)
    {
      if (options->numeric[i] == -1)
        continue;
      if (options->numeric[i] < 0 || options->numeric[i] > G_MAXUINT32)
        {
          g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                       "--%s: expected a number from 0 to %u", numeric_keys[i], G_MAXUINT32);
          return FALSE;
        }
      g_variant_dict_insert (settings, numeric_keys[i], "u", (guint32) options->numeric[i]);
    }
  return TRUE;
}

/* "" clears the command; anything else is split as a shell would, without
 * running one. */
static gboolean
insert_command_settings (GVariantDict               *settings,
                         const OutboxAccountOptions *options,
                         GError                    **error)
{
  for (gsize i = 0; i < N_COMMAND_SETTINGS; i++)
    {
      g_auto(GStrv) argv = NULL;
      g_autoptr(GError) parse_error = NULL;

      if (options->command[i] == NULL)
        continue;
      if (options->command[i][0] != '\0' &&
          !g_shell_parse_argv (options->command[i], NULL, &argv, &parse_error))
        {
          g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE, "--%s: %s",
                       command_keys[i], parse_error->message);
          return FALSE;
        }
      g_variant_dict_insert_value (settings, command_keys[i],
                                   g_variant_new_strv ((const char *const *) argv, -1));
    }
  return TRUE;
}

/* The list given replaces the account's; "" among it (or --no-aliases)
 * stands for none, so that --alias '' clears like --imap '' does. */
static gboolean
insert_aliases (GVariantDict               *settings,
                const OutboxAccountOptions *options,
                GError                    **error)
{
  g_autoptr(GPtrArray) aliases = g_ptr_array_new ();

  if (options->aliases == NULL && !options->no_aliases)
    return TRUE;
  for (char **alias = options->aliases; alias != NULL && *alias != NULL; alias++)
    if (**alias != '\0')
      g_ptr_array_add (aliases, *alias);
  if (options->no_aliases && aliases->len > 0)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                   "--no-aliases and --alias ADDRESS exclude each other");
      return FALSE;
    }
  g_ptr_array_add (aliases, NULL);
  g_variant_dict_insert_value (settings, "aliases",
                               g_variant_new_strv ((const char *const *) aliases->pdata, -1));
  return TRUE;
}

/* --dsn-notify '' asks for nothing again. */
static gboolean
insert_dsn_settings (GVariantDict               *settings,
                     const OutboxAccountOptions *options,
                     GError                    **error)
{
  static const char *const flags[3] = { "--dsn-notify", NULL, NULL };
  g_auto(OutboxCliDsn) dsn = { 0, };
  g_auto(GStrv) words = NULL;

  if (options->dsn_required && options->no_dsn_required)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                   "--dsn-required and --no-dsn-required exclude each other");
      return FALSE;
    }
  if (options->dsn_required || options->no_dsn_required)
    g_variant_dict_insert (settings, "dsn-required", "b", options->dsn_required);
  if (options->dsn_notify == NULL)
    return TRUE;
  if (options->dsn_notify[0] != '\0' &&
      !outbox_cli_dsn_parse (flags, options->dsn_notify, NULL, NULL, &dsn, error))
    return FALSE;
  words = outbox_dsn_notify_to_words (dsn.notify);
  g_variant_dict_insert_value (settings, "dsn-notify",
                               g_variant_new_strv ((const char *const *) words, -1));
  return TRUE;
}

static gboolean
build_account_settings (const OutboxAccountOptions  *options,
                        GVariant                   **out_settings,
                        GError                     **error)
{
  g_autoptr(GVariantDict) settings = g_variant_dict_new (NULL);
  g_autofree char *ca_file = NULL;

  if (!resolve_ca_file (options->tls_ca_file, &ca_file, error) ||
      !insert_numeric_settings (settings, options, error) ||
      !insert_command_settings (settings, options, error) ||
      !insert_aliases (settings, options, error) ||
      !insert_dsn_settings (settings, options, error))
    return FALSE;

  for (gsize i = 0; i < N_SIGN_IN_SETTINGS; i++)
    insert_optional_text (settings, sign_in_keys[i], options->sign_in[i]);
  insert_optional_text (settings, "from", options->from);
  insert_optional_text (settings, "smtp", options->smtp);
  insert_optional_text (settings, "imap", options->imap);
  insert_optional_text (settings, "pop3", options->pop3);
  insert_optional_text (settings, "tls-ca-file", ca_file);
  insert_optional_text (settings, "tls-fingerprint", options->tls_fingerprint);
  insert_optional_text (settings, "auth", options->auth);
  insert_optional_text (settings, "sent-folder", options->sent_folder);
  if (options->save_to_sent || options->no_save_to_sent)
    g_variant_dict_insert (settings, "save-to-sent", "b", options->save_to_sent);
  if (options->pop_before_smtp || options->no_pop_before_smtp)
    g_variant_dict_insert (settings, "pop-before-smtp", "b", options->pop_before_smtp);
  if (options->make_default)
    g_variant_dict_insert (settings, "default", "b", TRUE);

  *out_settings = g_variant_ref_sink (g_variant_dict_end (settings));
  return TRUE;
}

/* The services of the account named @name that have a server. */
static gboolean
find_account_services (OutboxDbusAccounts  *accounts,
                       const char          *name,
                       gboolean             wanted[3],
                       GError             **error)
{
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) account = NULL;

  if (!outbox_dbus_accounts_call_list_sync (accounts, &list, NULL, error))
    return FALSE;
  account = outbox_cli_find_account (list, name);
  wanted[0] = TRUE;
  wanted[1] = account != NULL && outbox_cli_lookup_text (account, "imap") != NULL;
  wanted[2] = account != NULL && outbox_cli_lookup_text (account, "pop3") != NULL;
  return TRUE;
}

/* Stores @password for each of the account's servers. */
static int
set_passwords (OutboxDbusAccounts *accounts,
               const char         *name,
               const char         *password)
{
  const char *const services[] = { "smtp", "imap", "pop3" };
  gboolean wanted[G_N_ELEMENTS (services)];
  g_autoptr(GError) error = NULL;
  g_autofree char *clean_name = outbox_cli_sanitize (name);

  if (!find_account_services (accounts, name, wanted, &error))
    return outbox_cli_report_error (error, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (services); i++)
    {
      int exit_code;

      if (!wanted[i] ||
          outbox_dbus_accounts_call_set_password_sync (accounts, name, services[i], password,
                                                       NULL, &error))
        continue;

      exit_code = outbox_cli_report_error (error, NULL);
      g_printerr ("%s: the %s password of account %s was not stored; "
                  "store it with outbox account update %s --password-stdin\n",
                  g_get_application_name (), services[i], clean_name, clean_name);
      return exit_code;
    }

  return EXIT_SUCCESS;
}

/* Local parts are case-sensitive, domains are not (RFC 5321 section 2.4). */
static gboolean
same_address (const char *a,
              const char *b)
{
  const char *at_a = strrchr (a, '@');
  const char *at_b = strrchr (b, '@');

  if (at_a == NULL || at_b == NULL || at_a - a != at_b - b)
    return FALSE;
  return strncmp (a, b, at_a - a) == 0 && g_ascii_strcasecmp (at_a, at_b) == 0;
}

static gboolean
account_has_address (GVariant   *account,
                     const char *address)
{
  const char *from = outbox_cli_lookup_text (account, "from");
  g_autofree const char **aliases = NULL;

  if (from != NULL && same_address (from, address))
    return TRUE;
  if (!g_variant_lookup (account, "aliases", "^a&s", &aliases))
    return FALSE;
  for (gsize i = 0; aliases[i] != NULL; i++)
    if (same_address (aliases[i], address))
      return TRUE;
  return FALSE;
}

/* Which of the accounts holding @address sends its mail, by the daemon's
 * rule: the default among them, else the first by name (List's order). */
static void
warn_if_address_shared (GVariant   *list,
                        const char *name,
                        const char *address)
{
  g_autoptr(GPtrArray) others = g_ptr_array_new ();
  const char *winner = NULL;
  GVariantIter iter;
  GVariant *account;
  g_autofree char *joined = NULL;
  g_autofree char *clean_others = NULL;
  g_autofree char *clean_winner = NULL;
  g_autofree char *clean = NULL;

  g_variant_iter_init (&iter, list);
  while ((account = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *holder = outbox_cli_lookup_text (account, "name");
      gboolean is_default = FALSE;

      if (holder != NULL && account_has_address (account, address))
        {
          g_variant_lookup (account, "default", "b", &is_default);
          if (winner == NULL || is_default)
            winner = holder;
          if (!g_str_equal (holder, name))
            g_ptr_array_add (others, (gpointer) holder);
        }
      g_variant_unref (account);
    }
  if (others->len == 0)
    return;
  /* The names belong to @list, which outlives the array. */
  g_ptr_array_add (others, NULL);
  joined = g_strjoinv (", ", (char **) others->pdata);
  clean_others = outbox_cli_sanitize (joined);
  clean_winner = outbox_cli_sanitize (winner);
  clean = outbox_cli_sanitize (address);
  g_printerr ("%s: warning: %s is also an address of account %s; mail from it goes through "
              "account %s (the default wins, else the first by name); choose with outbox send "
              "-a ACCOUNT, or make one the default with --default\n",
              g_get_application_name (), clean, clean_others, clean_winner);
}

/* Two accounts for one From work, but only one of them sends: say which. */
static void
warn_about_shared_addresses (OutboxDbusAccounts *accounts,
                             const char         *name)
{
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) account = NULL;
  g_autofree const char **aliases = NULL;
  const char *from;

  if (!outbox_dbus_accounts_call_list_sync (accounts, &list, NULL, NULL) ||
      (account = outbox_cli_find_account (list, name)) == NULL)
    return;
  if ((from = outbox_cli_lookup_text (account, "from")) != NULL)
    warn_if_address_shared (list, name, from);
  if (g_variant_lookup (account, "aliases", "^a&s", &aliases))
    for (gsize i = 0; aliases[i] != NULL; i++)
      warn_if_address_shared (list, name, aliases[i]);
}

typedef gboolean (*OutboxAccountsCall) (OutboxDbusAccounts *accounts,
                                        const char         *name,
                                        GVariant           *settings,
                                        GCancellable       *cancellable,
                                        GError            **error);

/* account add and account update: the call, then the password. */
static int
apply_account (const char                 *command,
               OutboxAccountsCall          call,
               const OutboxAccountOptions *options,
               const char                 *password)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) settings = NULL;
  g_autoptr(OutboxDbusAccounts) accounts = NULL;
  g_autofree char *usage_command = g_strconcat ("account ", command, NULL);
  const char *name = options->args[0];

  if (!build_account_settings (options, &settings, &error))
    return outbox_cli_report_usage (usage_command, error);

  accounts = outbox_cli_accounts_proxy_new (&error);
  if (accounts == NULL || !call (accounts, name, settings, NULL, &error))
    return outbox_cli_report_error (error, NULL);
  if (options->from != NULL || options->aliases != NULL)
    warn_about_shared_addresses (accounts, name);

  if (password == NULL)
    return EXIT_SUCCESS;
  return set_passwords (accounts, name, password);
}

static int
apply_account_with_password (const char                 *command,
                             OutboxAccountsCall          call,
                             const OutboxAccountOptions *options)
{
  char password[PASSWORD_MAX_LENGTH + 2];
  g_autoptr(GError) error = NULL;
  g_autofree char *usage_command = g_strconcat ("account ", command, NULL);
  int status;

  if (read_password (password, sizeof password, "Password", &error))
    status = apply_account (command, call, options, password);
  else
    status = outbox_cli_report_usage (usage_command, error);

  explicit_bzero (password, sizeof password);
  return status;
}

/* The OAuth2 client secret belongs to no server: service "oauth2-client". */
static int
set_client_secret (const char *name,
                   const char *secret)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusAccounts) accounts = outbox_cli_accounts_proxy_new (&error);
  g_autofree char *clean_name = NULL;
  int exit_code;

  if (accounts != NULL &&
      outbox_dbus_accounts_call_set_password_sync (accounts, name, "oauth2-client", secret,
                                                   NULL, &error))
    return EXIT_SUCCESS;

  exit_code = outbox_cli_report_error (error, NULL);
  clean_name = outbox_cli_sanitize (name);
  g_printerr ("%s: the OAuth2 client secret of account %s was not stored; "
              "store it with outbox account update %s --client-secret-stdin\n",
              g_get_application_name (), clean_name, clean_name);
  return exit_code;
}

/* Read first, as the password is, so that a bad line changes nothing. */
static int
apply_account_with_client_secret (const char                 *command,
                                  OutboxAccountsCall          call,
                                  const OutboxAccountOptions *options)
{
  char secret[PASSWORD_MAX_LENGTH + 2];
  g_autoptr(GError) error = NULL;
  g_autofree char *usage_command = g_strconcat ("account ", command, NULL);
  int status;

  if (!read_password (secret, sizeof secret, "Client secret", &error))
    status = outbox_cli_report_usage (usage_command, error);
  else if ((status = apply_account (command, call, options, NULL)) == EXIT_SUCCESS)
    status = set_client_secret (options->args[0], secret);

  explicit_bzero (secret, sizeof secret);
  return status;
}

static int
command_account_add (int    argc,
                     char **argv)
{
  g_auto(OutboxAccountOptions) options = { NULL, };
  GOptionEntry entries[ACCOUNT_OPTION_COUNT];
  g_autoptr(GError) error = NULL;
  int status;

  init_account_entries (&options, entries);
  if (!outbox_cli_parse_options ("account add", "NAME", "Add a mail account. The password is never taken "
                      "as an argument:\nuse --password-stdin.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account add", error);
  if ((status = outbox_cli_expect_arguments ("account add", options.args, 1, 1, "NAME")) != EXIT_SUCCESS)
    return status;
  /* A linked GNOME Online Accounts account brings its address and servers. */
  if (options.from == NULL && options.sign_in[SIGN_IN_GOA] == NULL)
    return outbox_cli_usage_error ("account add", "missing --from ADDRESS (or --goa ADDRESS)");
  if (options.smtp == NULL && options.sign_in[SIGN_IN_GOA] == NULL)
    return outbox_cli_usage_error ("account add", "missing --smtp URL (or --goa ADDRESS)");

  /* Both would read the same standard input. */
  if (options.password_stdin && options.client_secret_stdin)
    return outbox_cli_usage_error ("account add", "--password-stdin and --client-secret-stdin exclude each other");
  if (options.client_secret_stdin)
    return apply_account_with_client_secret ("add", outbox_dbus_accounts_call_add_sync, &options);
  if (options.password_stdin)
    return apply_account_with_password ("add", outbox_dbus_accounts_call_add_sync, &options);
  return apply_account ("add", outbox_dbus_accounts_call_add_sync, &options, NULL);
}

static int
command_account_update (int    argc,
                        char **argv)
{
  g_auto(OutboxAccountOptions) options = { NULL, };
  GOptionEntry entries[ACCOUNT_OPTION_COUNT];
  g_autoptr(GError) error = NULL;
  int status;

  init_account_entries (&options, entries);
  if (!outbox_cli_parse_options ("account update", "NAME",
                      "Change some settings of a mail account; the others stay as they are.\n"
                      "An empty value (--imap '') removes an optional setting, and 0 brings a\n"
                      "number back to its default. --password-stdin stores a new password.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account update", error);
  if ((status = outbox_cli_expect_arguments ("account update", options.args, 1, 1, "NAME")) != EXIT_SUCCESS)
    return status;

  if (options.password_stdin && options.client_secret_stdin)
    return outbox_cli_usage_error ("account update", "--password-stdin and --client-secret-stdin exclude each other");
  if (options.client_secret_stdin)
    return apply_account_with_client_secret ("update", outbox_dbus_accounts_call_update_sync,
                                             &options);
  if (options.password_stdin)
    return apply_account_with_password ("update", outbox_dbus_accounts_call_update_sync,
                                        &options);
  return apply_account ("update", outbox_dbus_accounts_call_update_sync, &options, NULL);
}

/* outbox account list|show|remove */

static GVariant *
list_accounts (GError **error)
{
  g_autoptr(OutboxDbusAccounts) accounts = outbox_cli_accounts_proxy_new (error);
  GVariant *list = NULL;

  if (accounts == NULL ||
      !outbox_dbus_accounts_call_list_sync (accounts, &list, NULL, error))
    return NULL;

  return list;
}

enum
{
  ACCOUNT_NAME,
  ACCOUNT_FROM,
  ACCOUNT_SMTP,
  ACCOUNT_DEFAULT,
  ACCOUNT_N_COLUMNS
};

static const char *const account_headers[ACCOUNT_N_COLUMNS] = {
  "NAME", "FROM", "SMTP", "DEFAULT",
};

static const gboolean account_flexible[ACCOUNT_N_COLUMNS] = {
  FALSE, TRUE, TRUE, FALSE,
};

static void
print_account_table (GVariant *list)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  GVariantIter iter;
  GVariant *account;

  if (g_variant_n_children (list) == 0)
    {
      g_print ("No accounts. Add one with outbox account add NAME --from ADDRESS --smtp URL.\n");
      return;
    }

  g_variant_iter_init (&iter, list);
  while ((account = g_variant_iter_next_value (&iter)) != NULL)
    {
      char **row = g_new0 (char *, ACCOUNT_N_COLUMNS + 1);
      gboolean is_default = FALSE;

      g_variant_lookup (account, "default", "b", &is_default);
      row[ACCOUNT_NAME] = g_strdup (outbox_cli_lookup_text_or (account, "name", "-"));
      row[ACCOUNT_FROM] = g_strdup (outbox_cli_lookup_text_or (account, "from", ""));
      row[ACCOUNT_SMTP] = g_strdup (outbox_cli_lookup_text_or (account, "smtp", ""));
      row[ACCOUNT_DEFAULT] = g_strdup (is_default ? "yes" : "");
      g_ptr_array_add (rows, row);
      g_variant_unref (account);
    }

  outbox_cli_print_table (ACCOUNT_N_COLUMNS, account_headers, account_flexible, rows,
                          outbox_cli_terminal_width ());
}

static JsonNode *
goa_accounts_to_json (GPtrArray *found)
{
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *object = json_object_new ();
  JsonArray *array = json_array_new ();

  for (guint i = 0; i < found->len; i++)
    {
      const OutboxGoaMailAccount *account = g_ptr_array_index (found, i);
      JsonObject *entry = json_object_new ();

      json_object_set_string_member (entry, "id", account->id);
      json_object_set_string_member (entry, "provider", account->provider);
      json_object_set_string_member (entry, "address", account->address);
      json_object_set_string_member (entry, "smtp", account->smtp);
      json_object_set_string_member (entry, "imap", account->imap);
      json_object_set_boolean_member (entry, "usable", account->usable);
      json_array_add_object_element (array, entry);
    }
  json_object_set_array_member (object, "goa_accounts", array);
  json_node_take_object (root, object);
  return root;
}

static void
print_goa_accounts (GPtrArray *found)
{
  if (found->len == 0)
    {
      g_print ("No mail account in GNOME Online Accounts; add one in Settings → Online "
               "Accounts.\n");
      return;
    }
  for (guint i = 0; i < found->len; i++)
    {
      const OutboxGoaMailAccount *account = g_ptr_array_index (found, i);
      g_autofree char *address = outbox_cli_sanitize (account->address);
      g_autofree char *id = outbox_cli_sanitize (account->id);
      g_autofree char *provider = outbox_cli_sanitize (account->provider);

      g_print ("%s  (%s, %s)%s\n", address, provider, id,
               account->usable ? "" : "  mail is off or it needs you to sign in again");
      if (account->smtp != NULL)
        g_print ("  SMTP: %s\n", account->smtp);
      if (account->imap != NULL)
        g_print ("  IMAP: %s\n", account->imap);
    }
  g_print ("\nTo link one: outbox account add NAME --goa ADDRESS\n");
}

/* GNOME Online Accounts' own list, asked of goa-daemon directly. */
static int
list_goa_accounts (gboolean json)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GObject) client = outbox_goa_client_get_sync (&error);
  g_autoptr(GPtrArray) found = NULL;

  if (client == NULL)
    {
      g_printerr ("outbox: %s\n", error->message);
      return EX_UNAVAILABLE;
    }
  found = outbox_goa_list_mail_accounts (client);
  if (json)
    {
      g_autoptr(JsonNode) root = goa_accounts_to_json (found);
      outbox_cli_print_json (root);
    }
  else
    print_goa_accounts (found);
  return EXIT_SUCCESS;
}

static int
command_account_list (int    argc,
                      char **argv)
{
  gboolean json = FALSE;
  gboolean goa = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { "goa", 0, 0, G_OPTION_ARG_NONE, &goa, "List the GNOME Online Accounts mail accounts that can be linked", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) list = NULL;
  int status;

  if (!outbox_cli_parse_options ("account list", NULL, "List the mail accounts.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account list", error);
  if ((status = outbox_cli_expect_arguments ("account list", args, 0, 0, NULL)) != EXIT_SUCCESS)
    return status;
  if (goa)
    return list_goa_accounts (json);

  list = list_accounts (&error);
  if (list == NULL)
    return outbox_cli_report_error (error, NULL);

  if (json)
    print_json_list ("accounts", list);
  else
    print_account_table (list);
  return EXIT_SUCCESS;
}

static const OutboxField account_fields[] = {
  { "name", "Name", FIELD_TEXT, NULL },
  { "from", "From", FIELD_TEXT, NULL },
  { "aliases", "Aliases", FIELD_WORDS, NULL },
  { "default", "Default", FIELD_YES_NO, NULL },
  { "smtp", "SMTP", FIELD_TEXT, NULL },
  { "imap", "IMAP", FIELD_TEXT, NULL },
  { "pop3", "POP3", FIELD_TEXT, NULL },
  { "tls-ca-file", "TLS CA file", FIELD_TEXT, NULL },
  { "tls-fingerprint", "TLS fingerprint", FIELD_TEXT, NULL },
  { "auth", "Auth", FIELD_TEXT, NULL },
  { "password-command", "Password command", FIELD_WORDS, NULL },
  { "token-command", "Token command", FIELD_WORDS, NULL },
  { "oauth2", "OAuth2", FIELD_TEXT, NULL },
  { "client-id", "OAuth2 client", FIELD_TEXT, NULL },
  { "oauth2-auth-url", "OAuth2 authorization", FIELD_TEXT, NULL },
  { "oauth2-token-url", "OAuth2 token endpoint", FIELD_TEXT, NULL },
  { "oauth2-device-url", "OAuth2 device endpoint", FIELD_TEXT, NULL },
  { "oauth2-scope", "OAuth2 scope", FIELD_TEXT, NULL },
  { "goa-id", "Online Accounts", FIELD_TEXT, NULL },
  { "save-to-sent", "Copy to Sent", FIELD_YES_NO, "imap" },
  { "sent-folder", "Sent folder", FIELD_TEXT, NULL },
  { "pop-before-smtp", "POP before SMTP", FIELD_YES_NO, "pop3" },
  { "dsn-notify", "DSN notify", FIELD_LIST, NULL },
  { "dsn-required", "DSN required", FIELD_YES_NO, NULL },
  { "timeout", "Command timeout", FIELD_SECONDS, NULL },
  { "retry-first", "First retry after", FIELD_SECONDS, NULL },
  { "retry-max", "Longest retry delay", FIELD_SECONDS, NULL },
  { "give-up-after", "Give up after", FIELD_SECONDS, NULL },
  { "max-connections", "Max connections", FIELD_COUNT, NULL },
  { "max-recipients", "Recipients per transaction", FIELD_COUNT, NULL },
  { "send-delay", "Send delay (undo)", FIELD_SECONDS, NULL },
  { "state", "State", FIELD_TEXT, NULL },
  { "state-message", "What to do", FIELD_TEXT, NULL },
  { "failing-since", "Failing since", FIELD_TIME, NULL },
  { "next-attempt", "Next attempt", FIELD_TIME, NULL },
};

static int
command_account_show (int    argc,
                      char **argv)
{
  gboolean json = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) account = NULL;
  int status;

  if (!outbox_cli_parse_options ("account show", "NAME", "Show one mail account's settings.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account show", error);
  if ((status = outbox_cli_expect_arguments ("account show", args, 1, 1, "NAME")) != EXIT_SUCCESS)
    return status;

  list = list_accounts (&error);
  if (list == NULL)
    return outbox_cli_report_error (error, NULL);

  account = outbox_cli_find_account (list, args[0]);
  if (account == NULL)
    {
      g_autofree char *clean_name = outbox_cli_sanitize (args[0]);

      error = g_error_new (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                           "no account named %s", clean_name);
      return outbox_cli_report_error (error, "see outbox account list");
    }

  if (json)
    {
      g_autoptr(JsonNode) root = outbox_cli_vardict_to_json (account);

      outbox_cli_print_json (root);
      return EXIT_SUCCESS;
    }

  print_fields (account, account_fields, G_N_ELEMENTS (account_fields));
  return EXIT_SUCCESS;
}

static int
command_account_remove (int    argc,
                        char **argv)
{
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusAccounts) accounts = NULL;
  int status;

  if (!outbox_cli_parse_options ("account remove", "NAME",
                      "Remove a mail account and its stored passwords.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account remove", error);
  if ((status = outbox_cli_expect_arguments ("account remove", args, 1, 1, "NAME")) != EXIT_SUCCESS)
    return status;

  accounts = outbox_cli_accounts_proxy_new (&error);
  if (accounts == NULL)
    return outbox_cli_report_error (error, NULL);
  if (!outbox_dbus_accounts_call_remove_sync (accounts, args[0], NULL, &error))
    return outbox_cli_report_error (error, outbox_cli_error_is (error, "InvalidState")
                                    ? "send or cancel its messages first (see outbox queue)"
                                    : NULL);

  return EXIT_SUCCESS;
}

/* outbox account test */

static const OutboxField server_check_fields[] = {
  { "url", "URL", FIELD_TEXT, NULL },
  { "reached", "Reached", FIELD_YES_NO, NULL },
  { "tls", "TLS", FIELD_TEXT, NULL },
  { "tls-subject", "Certificate", FIELD_TEXT, NULL },
  { "tls-issuer", "Issued by", FIELD_TEXT, NULL },
  { "tls-not-after", "Valid until", FIELD_TIME, NULL },
  { "tls-fingerprint", "Fingerprint", FIELD_TEXT, NULL },
  { "login", "Login", FIELD_TEXT, NULL },
  { "capabilities", "Offers", FIELD_WORDS, NULL },
  { "ignored", "Ignored", FIELD_WORDS, NULL },
  { "server-reply", "Server said", FIELD_TEXT, NULL },
  { "error", "Error", FIELD_TEXT, NULL },
};

static void
print_server_check (const char *service, GVariant *check)
{
  gboolean ok = FALSE;

  g_variant_lookup (check, "ok", "b", &ok);
  g_print ("%s: %s\n", service, ok ? "OK" : "FAILED");
  print_fields (check, server_check_fields, G_N_ELEMENTS (server_check_fields));
}

static int
command_account_test (int    argc,
                      char **argv)
{
  gboolean json = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  const char *services[] = { "smtp", "imap", "pop3" };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusAccounts) accounts = NULL;
  g_autoptr(GVariant) results = NULL;
  gboolean all_ok = TRUE;
  int status;

  if (!outbox_cli_parse_options ("account test", "NAME",
                      "Log in to each server of a mail account and report on each.\n"
                      "Exits 0 when every server was reached and accepted the login, 1 otherwise.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account test", error);
  if ((status = outbox_cli_expect_arguments ("account test", args, 1, 1, "NAME")) != EXIT_SUCCESS)
    return status;

  accounts = outbox_cli_accounts_proxy_new (&error);
  if (accounts == NULL)
    return outbox_cli_report_error (error, NULL);
  /* Three servers, each with its own timeouts: give them time. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (accounts), 10 * 60 * 1000);
  if (!outbox_dbus_accounts_call_test_sync (accounts, args[0], &results, NULL, &error))
    return outbox_cli_report_error (error, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (services); i++)
    {
      g_autoptr(GVariant) check = g_variant_lookup_value (results, services[i],
                                                          G_VARIANT_TYPE_VARDICT);
      gboolean ok = FALSE;

      if (check == NULL)
        continue;
      g_variant_lookup (check, "ok", "b", &ok);
      all_ok &= ok;
      if (!json)
        {
          print_server_check (services[i], check);
          g_print ("\n");
        }
    }
  if (json)
    {
      g_autoptr(JsonNode) root = outbox_cli_vardict_to_json (results);

      outbox_cli_print_json (root);
    }
  return all_ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* outbox account discover */

static const OutboxField discovered_fields[] = {
  { "address", "Address", FIELD_TEXT, NULL },
  { "source", "Found in", FIELD_TEXT, NULL },
  { "smtp", "SMTP", FIELD_TEXT, NULL },
  { "imap", "IMAP", FIELD_TEXT, NULL },
  { "pop3", "POP3", FIELD_TEXT, NULL },
  { "username", "User name", FIELD_TEXT, NULL },
};

static int
command_account_discover (int    argc,
                          char **argv)
{
  gboolean json = FALSE;
  g_auto(GStrv) args = NULL;
  GOptionEntry entries[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxDbusAccounts) accounts = NULL;
  g_autoptr(GVariant) settings = NULL;
  const char *smtp, *imap, *pop3;
  int status;

  if (!outbox_cli_parse_options ("account discover", "ADDRESS",
                      "Propose server settings for an address (DNS SRV records, the provider's\n"
                      "autoconfig file, local ISP files). Nothing is logged in to.",
                      entries, &argc, &argv, &error))
    return outbox_cli_report_usage ("account discover", error);
  if ((status = outbox_cli_expect_arguments ("account discover", args, 1, 1, "ADDRESS")) != EXIT_SUCCESS)
    return status;

  accounts = outbox_cli_accounts_proxy_new (&error);
  if (accounts == NULL)
    return outbox_cli_report_error (error, NULL);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (accounts), 2 * 60 * 1000);
  if (!outbox_dbus_accounts_call_discover_sync (accounts, args[0], &settings, NULL, &error))
    return outbox_cli_report_error (error, NULL);

  if (json)
    {
      g_autoptr(JsonNode) root = outbox_cli_vardict_to_json (settings);

      outbox_cli_print_json (root);
      return EXIT_SUCCESS;
    }
  print_fields (settings, discovered_fields, G_N_ELEMENTS (discovered_fields));
  smtp = outbox_cli_lookup_text (settings, "smtp");
  imap = outbox_cli_lookup_text (settings, "imap");
  pop3 = outbox_cli_lookup_text (settings, "pop3");
  if (smtp != NULL)
    {
      g_autofree char *clean_address = outbox_cli_sanitize (args[0]);
      g_autofree char *clean_smtp = outbox_cli_sanitize (smtp);
      g_autofree char *clean_in = outbox_cli_sanitize (imap ? imap : pop3 ? pop3 : "");
      const char *in_option = imap ? " --imap " : pop3 ? " --pop3 " : "";

      g_print ("\nTo add it:\n  outbox account add NAME --from %s --smtp %s%s%s --password-stdin\n",
               clean_address, clean_smtp, in_option, clean_in);
    }
  return EXIT_SUCCESS;
}

static const OutboxCommand account_commands[] = {
  { "add", command_account_add, "Add an account" },
  { "update", command_account_update, "Change an account's settings or password" },
  { "authorize", outbox_cli_account_authorize, "Authorize an OAuth2 account at its provider" },
  { "list", command_account_list, "List the accounts" },
  { "show", command_account_show, "Show one account's settings" },
  { "remove", command_account_remove, "Remove an account and its passwords" },
  { "test", command_account_test, "Log in to each server of an account and report" },
  { "discover", command_account_discover, "Propose server settings for an address" },
};

static int
command_account (int    argc,
                 char **argv)
{
  return dispatch ("account", account_commands, G_N_ELEMENTS (account_commands),
                   argc - 1, argv + 1);
}

/* outbox help, and the dispatcher */

static int command_help (int    argc,
                         char **argv);

static const OutboxCommand commands[] = {
  { "send", command_send, "Queue a message read from standard input" },
  { "queue", command_queue, "List the messages waiting to be sent" },
  { "show", command_show, "Show one message and its recipients" },
  { "cancel", command_cancel, "Remove messages from the queue" },
  { "hold", command_hold, "Keep messages from being sent" },
  { "release", command_release, "Let held messages go out" },
  { "retry", command_retry, "Try deferred or failed messages now" },
  { "flush", command_flush, "Try every queued and deferred message now" },
  { "status", command_status, "Show the daemon's state and the queue's counts" },
  { "account", command_account, "Manage mail accounts (add, update, list, show, remove)" },
  { "help", command_help, "Show this list, or a command's help" },
};

static void
print_command_list (const char          *group,
                    const OutboxCommand *table,
                    gsize                n_commands)
{
  const char *space = group != NULL ? " " : "";

  group = group != NULL ? group : "";
  g_print ("Usage:\n  outbox %s%sCOMMAND [OPTION…]\n\nCommands:\n", group, space);
  for (gsize i = 0; i < n_commands; i++)
    g_print ("  %-10s %s\n", table[i].name, table[i].summary);
  g_print ("\nRun “outbox %s%sCOMMAND --help” for a command's options.\n", group, space);
}

static gboolean
is_help_option (const char *arg)
{
  return g_str_equal (arg, "--help") || g_str_equal (arg, "-h") || g_str_equal (arg, "-?");
}

/* Runs the command named by argv[0]; the command sees argv[0] as its own
 * name. */
static int
dispatch (const char          *group,
          const OutboxCommand *table,
          gsize                n_commands,
          int                  argc,
          char               **argv)
{
  g_autofree char *word = NULL;
  const char *hint = group != NULL ? "see outbox help account" : "see outbox help";

  if (argc == 0 || is_help_option (argv[0]))
    {
      print_command_list (group, table, n_commands);
      return EXIT_SUCCESS;
    }

  for (gsize i = 0; i < n_commands; i++)
    {
      if (g_str_equal (argv[0], table[i].name))
        return table[i].run (argc, argv);
    }

  word = outbox_cli_sanitize (argv[0]);
  g_printerr ("%s: unknown %s “%s”; %s\n", g_get_application_name (),
              argv[0][0] == '-' ? "option" : "command", word, hint);
  return EX_USAGE;
}

/* "outbox help CMD…" is "outbox CMD… --help". */
static int
command_help (int    argc,
              char **argv)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();

  for (int i = 1; i < argc; i++)
    g_ptr_array_add (args, argv[i]);
  if (args->len > 0)
    g_ptr_array_add (args, (gpointer) "--help");
  g_ptr_array_add (args, NULL);

  return dispatch (NULL, commands, G_N_ELEMENTS (commands),
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

  return dispatch (NULL, commands, G_N_ELEMENTS (commands), argc - 1, argv + 1);
}
