/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <sysexits.h>

#include "outbox-cli-bus.h"
#include "outbox-cli-commands.h"
#include "outbox-cli-fields.h"
#include "outbox-cli-util.h"
#include "outbox-goa.h"

/* outbox account list */

static gboolean list_json;
static gboolean list_goa;

static const GOptionEntry list_entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &list_json, "Print JSON", NULL },
  { "goa", 0, 0, G_OPTION_ARG_NONE, &list_goa, "List the GNOME Online Accounts mail accounts that can be linked", NULL },
  G_OPTION_ENTRY_NULL
};

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
run_account_list (char **args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) list = NULL;

  if (list_goa)
    return list_goa_accounts (list_json);

  list = outbox_cli_bus_list_accounts (&error);
  if (list == NULL)
    return outbox_cli_report_error (error, NULL);

  if (list_json)
    outbox_cli_print_json_list ("accounts", list);
  else
    print_account_table (list);
  return EXIT_SUCCESS;
}

static const OutboxCliCommand account_list_command = {
  .name = "list",
  .summary = "List the accounts",
  .run = run_account_list,
  .entries = list_entries,
  .description = "List the mail accounts.",
};

/* outbox account show */

/* Shared by the commands that print one dictionary, as text or JSON. */
static gboolean opt_json;

static const GOptionEntry json_entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  G_OPTION_ENTRY_NULL
};

static const OutboxField account_fields[] = {
  { "name", "Name", OUTBOX_FIELD_TEXT, NULL },
  { "from", "From", OUTBOX_FIELD_TEXT, NULL },
  { "aliases", "Aliases", OUTBOX_FIELD_WORDS, NULL },
  { "default", "Default", OUTBOX_FIELD_YES_NO, NULL },
  { "smtp", "SMTP", OUTBOX_FIELD_TEXT, NULL },
  { "imap", "IMAP", OUTBOX_FIELD_TEXT, NULL },
  { "pop3", "POP3", OUTBOX_FIELD_TEXT, NULL },
  { "tls-ca-file", "TLS CA file", OUTBOX_FIELD_TEXT, NULL },
  { "tls-fingerprint", "TLS fingerprint", OUTBOX_FIELD_TEXT, NULL },
  { "auth", "Auth", OUTBOX_FIELD_TEXT, NULL },
  { "password-command", "Password command", OUTBOX_FIELD_WORDS, NULL },
  { "token-command", "Token command", OUTBOX_FIELD_WORDS, NULL },
  { "oauth2", "OAuth2", OUTBOX_FIELD_TEXT, NULL },
  { "client-id", "OAuth2 client", OUTBOX_FIELD_TEXT, NULL },
  { "oauth2-auth-url", "OAuth2 authorization", OUTBOX_FIELD_TEXT, NULL },
  { "oauth2-token-url", "OAuth2 token endpoint", OUTBOX_FIELD_TEXT, NULL },
  { "oauth2-device-url", "OAuth2 device endpoint", OUTBOX_FIELD_TEXT, NULL },
  { "oauth2-scope", "OAuth2 scope", OUTBOX_FIELD_TEXT, NULL },
  { "goa-id", "Online Accounts", OUTBOX_FIELD_TEXT, NULL },
  { "save-to-sent", "Copy to Sent", OUTBOX_FIELD_YES_NO, "imap" },
  { "sent-folder", "Sent folder", OUTBOX_FIELD_TEXT, NULL },
  { "pop-before-smtp", "POP before SMTP", OUTBOX_FIELD_YES_NO, "pop3" },
  { "dsn-notify", "DSN notify", OUTBOX_FIELD_LIST, NULL },
  { "dsn-required", "DSN required", OUTBOX_FIELD_YES_NO, NULL },
  { "timeout", "Command timeout", OUTBOX_FIELD_SECONDS, NULL },
  { "retry-first", "First retry after", OUTBOX_FIELD_SECONDS, NULL },
  { "retry-max", "Longest retry delay", OUTBOX_FIELD_SECONDS, NULL },
  { "give-up-after", "Give up after", OUTBOX_FIELD_SECONDS, NULL },
  { "max-connections", "Max connections", OUTBOX_FIELD_COUNT, NULL },
  { "max-recipients", "Recipients per transaction", OUTBOX_FIELD_COUNT, NULL },
  { "send-delay", "Send delay (undo)", OUTBOX_FIELD_SECONDS, NULL },
  { "state", "State", OUTBOX_FIELD_TEXT, NULL },
  { "state-message", "What to do", OUTBOX_FIELD_TEXT, NULL },
  { "failing-since", "Failing since", OUTBOX_FIELD_TIME, NULL },
  { "next-attempt", "Next attempt", OUTBOX_FIELD_TIME, NULL },
};

static int
run_account_show (char **args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) list = outbox_cli_bus_list_accounts (&error);
  g_autoptr(GVariant) account = NULL;

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

  if (opt_json)
    outbox_cli_print_vardict_json (account);
  else
    outbox_cli_print_fields (account, account_fields, G_N_ELEMENTS (account_fields));
  return EXIT_SUCCESS;
}

static const OutboxCliCommand account_show_command = {
  .name = "show",
  .summary = "Show one account's settings",
  .run = run_account_show,
  .entries = json_entries,
  OUTBOX_CLI_ONE_ARGUMENT ("NAME"),
  .description = "Show one mail account's settings.",
};

/* outbox account remove */

static int
run_account_remove (char **args)
{
  g_autoptr(GError) error = NULL;

  if (!outbox_cli_bus_remove_account (args[0], &error))
    return outbox_cli_report_error (error, outbox_cli_error_is (error, "InvalidState")
                                    ? "send or cancel its messages first (see outbox queue)"
                                    : NULL);
  return EXIT_SUCCESS;
}

static const OutboxCliCommand account_remove_command = {
  .name = "remove",
  .summary = "Remove an account and its passwords",
  .run = run_account_remove,
  OUTBOX_CLI_ONE_ARGUMENT ("NAME"),
  .description = "Remove a mail account and its stored passwords.",
};

/* outbox account test */

static const OutboxField server_check_fields[] = {
  { "url", "URL", OUTBOX_FIELD_TEXT, NULL },
  { "reached", "Reached", OUTBOX_FIELD_YES_NO, NULL },
  { "tls", "TLS", OUTBOX_FIELD_TEXT, NULL },
  { "tls-subject", "Certificate", OUTBOX_FIELD_TEXT, NULL },
  { "tls-issuer", "Issued by", OUTBOX_FIELD_TEXT, NULL },
  { "tls-not-after", "Valid until", OUTBOX_FIELD_TIME, NULL },
  { "tls-fingerprint", "Fingerprint", OUTBOX_FIELD_TEXT, NULL },
  { "login", "Login", OUTBOX_FIELD_TEXT, NULL },
  { "capabilities", "Offers", OUTBOX_FIELD_WORDS, NULL },
  { "ignored", "Ignored", OUTBOX_FIELD_WORDS, NULL },
  { "server-reply", "Server said", OUTBOX_FIELD_TEXT, NULL },
  { "error", "Error", OUTBOX_FIELD_TEXT, NULL },
};

static void
print_server_check (const char *service, GVariant *check)
{
  gboolean ok = FALSE;

  g_variant_lookup (check, "ok", "b", &ok);
  g_print ("%s: %s\n", service, ok ? "OK" : "FAILED");
  outbox_cli_print_fields (check, server_check_fields, G_N_ELEMENTS (server_check_fields));
}

static int
run_account_test (char **args)
{
  const char *services[] = { "smtp", "imap", "pop3" };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = outbox_cli_bus_test_account (args[0], &error);
  gboolean all_ok = TRUE;

  if (results == NULL)
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
      if (!opt_json)
        {
          print_server_check (services[i], check);
          g_print ("\n");
        }
    }
  if (opt_json)
    outbox_cli_print_vardict_json (results);
  return all_ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

static const OutboxCliCommand account_test_command = {
  .name = "test",
  .summary = "Log in to each server of an account and report",
  .run = run_account_test,
  .entries = json_entries,
  OUTBOX_CLI_ONE_ARGUMENT ("NAME"),
  .description = "Log in to each server of a mail account and report on each.\n"
                 "Exits 0 when every server was reached and accepted the login, 1 otherwise.",
};

/* outbox account discover */

static const OutboxField discovered_fields[] = {
  { "address", "Address", OUTBOX_FIELD_TEXT, NULL },
  { "source", "Found in", OUTBOX_FIELD_TEXT, NULL },
  { "smtp", "SMTP", OUTBOX_FIELD_TEXT, NULL },
  { "imap", "IMAP", OUTBOX_FIELD_TEXT, NULL },
  { "pop3", "POP3", OUTBOX_FIELD_TEXT, NULL },
  { "username", "User name", OUTBOX_FIELD_TEXT, NULL },
};

static int
run_account_discover (char **args)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) settings = outbox_cli_bus_discover (args[0], &error);
  const char *smtp, *imap, *pop3;

  if (settings == NULL)
    return outbox_cli_report_error (error, NULL);

  if (opt_json)
    {
      outbox_cli_print_vardict_json (settings);
      return EXIT_SUCCESS;
    }
  outbox_cli_print_fields (settings, discovered_fields, G_N_ELEMENTS (discovered_fields));
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

static const OutboxCliCommand account_discover_command = {
  .name = "discover",
  .summary = "Propose server settings for an address",
  .run = run_account_discover,
  .entries = json_entries,
  OUTBOX_CLI_ONE_ARGUMENT ("ADDRESS"),
  .description = "Propose server settings for an address (DNS SRV records, the provider's\n"
                 "autoconfig file, local ISP files). Nothing is logged in to.",
};

/* outbox account COMMAND */

static const OutboxCliCommand *const account_commands[] = {
  &outbox_cli_account_add_command,
  &outbox_cli_account_update_command,
  &outbox_cli_account_authorize_command,
  &account_list_command,
  &account_show_command,
  &account_remove_command,
  &account_test_command,
  &account_discover_command,
};

const OutboxCliCommand outbox_cli_account_command = {
  .name = "account",
  .summary = "Manage mail accounts (add, update, list, show, remove)",
  .subcommands = account_commands,
  .n_subcommands = G_N_ELEMENTS (account_commands),
};
