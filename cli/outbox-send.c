/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <unistd.h>

#include "outbox-cli-bus.h"
#include "outbox-cli-commands.h"
#include "outbox-cli-util.h"

/* outbox send [RCPT…] < MESSAGE */

static char *account;
static char *from;
static char *at;
static gboolean hold;
static gint64 delay = G_MININT64; /* not given */
static gboolean save_to_sent;
static gboolean no_save_to_sent;
static char *notify;
static char *ret;
static char *envid;
static gboolean dsn_required;
static gboolean no_dsn_required;

static const GOptionEntry entries[] = {
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
  G_OPTION_ENTRY_NULL
};

static const char *const dsn_flags[3] = { "--notify", "--ret", "--envid" };

/* A message a delay scheduled (the account's send-delay or --delay) says
 * on stderr how long is left and how to undo it; stdout stays the id. */
static void
tell_undo_window (const char *id)
{
  g_autoptr(GVariant) message = outbox_cli_bus_get_message (id, NULL);
  gint64 send_at;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autofree char *left = NULL;

  if (message == NULL)
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
  g_autofree char *id = NULL;

  /* The daemon reads the message from our standard input itself, so it
   * never passes through this process's memory. */
  id = outbox_cli_bus_submit_fd (NULL, STDIN_FILENO, options, &error);
  if (id == NULL)
    return outbox_cli_report_error (error, NULL);

  g_print ("%s\n", id);
  if (tell_delay)
    tell_undo_window (id);
  return EXIT_SUCCESS;
}

/* The options that exclude each other or need a check of their value. */
static int
check_options (OutboxCliDsn *dsn,
               gint64       *send_at)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

  if (save_to_sent && no_save_to_sent)
    return outbox_cli_usage_error ("send", "--save-to-sent and --no-save-to-sent exclude each other");
  if (dsn_required && no_dsn_required)
    return outbox_cli_usage_error ("send", "--dsn-required and --no-dsn-required exclude each other");
  if (!outbox_cli_dsn_parse (dsn_flags, notify, ret, envid, dsn, &error))
    return outbox_cli_report_usage ("send", error);
  if (at != NULL && !outbox_cli_parse_send_at (at, now, send_at, &error))
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
  return EXIT_SUCCESS;
}

static GVariant *
build_submit_options (char               **recipients,
                      gint64               send_at,
                      const OutboxCliDsn  *dsn)
{
  g_autoptr(GVariantDict) options = g_variant_dict_new (NULL);

  if (account != NULL)
    g_variant_dict_insert (options, "account", "s", account);
  if (from != NULL)
    g_variant_dict_insert (options, "from", "s", from);
  if (recipients[0] != NULL)
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
  outbox_cli_dsn_insert (dsn, options);
  if (dsn_required || no_dsn_required)
    g_variant_dict_insert (options, "dsn-required", "b", dsn_required);
  return g_variant_dict_end (options);
}

static int
run_send (char **recipients)
{
  g_auto(OutboxCliDsn) dsn = { 0, };
  gint64 send_at = 0;
  int status;

  if ((status = check_options (&dsn, &send_at)) != EXIT_SUCCESS)
    return status;

  return submit_stdin (build_submit_options (recipients, send_at, &dsn), at == NULL && !hold);
}

const OutboxCliCommand outbox_cli_send_command = {
  .name = "send",
  .summary = "Queue a message read from standard input",
  .run = run_send,
  .entries = entries,
  .parameters = "[RCPT…] < MESSAGE",
  .description = "Queue the message read from standard input. Recipients default to\n"
                 "the message's To, Cc and Bcc. Prints the new message's id.",
  .min_args = 0,
  .max_args = G_MAXUINT,
};
