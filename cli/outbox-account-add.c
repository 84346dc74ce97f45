/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "outbox-cli-bus.h"
#include "outbox-cli-commands.h"
#include "outbox-cli-util.h"

/* outbox account add|update NAME [OPTION…]: the options become the
 * settings of Accounts.Add or Accounts.Update; a password or client secret
 * comes from standard input, never from an argument. */

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
} OutboxAccountOptions;

static OutboxAccountOptions account_options = {
  .numeric = { -1, -1, -1, -1, -1, -1, -1 },  /* not given */
};
G_STATIC_ASSERT (N_NUMERIC_SETTINGS == 7);

/* The options of account add and account update. */
static const GOptionEntry account_entries[] = {
  { "from", 0, 0, G_OPTION_ARG_STRING, &account_options.from, "The account's address", "ADDRESS" },
  { "alias", 0, 0, G_OPTION_ARG_STRING_ARRAY, &account_options.aliases, "Another From address this account sends for, or *@DOMAIN for all of a domain; repeat for more (replaces the list)", "ADDRESS" },
  { "no-aliases", 0, 0, G_OPTION_ARG_NONE, &account_options.no_aliases, "Remove every alias (as does --alias '')", NULL },
  { "smtp", 0, 0, G_OPTION_ARG_STRING, &account_options.smtp, "Submission server, e.g. smtps://user@host:465", "URL" },
  { "imap", 0, 0, G_OPTION_ARG_STRING, &account_options.imap, "IMAP server, e.g. imaps://user@host", "URL" },
  { "pop3", 0, 0, G_OPTION_ARG_STRING, &account_options.pop3, "POP3 server, e.g. pop3s://user@host", "URL" },
  { "tls-ca-file", 0, 0, G_OPTION_ARG_FILENAME, &account_options.tls_ca_file, "Trust the CAs in this PEM file instead of the system's", "FILE" },
  { "tls-fingerprint", 0, 0, G_OPTION_ARG_STRING, &account_options.tls_fingerprint, "Pin the server certificate", "sha256:HEX" },
  { "auth", 0, 0, G_OPTION_ARG_STRING, &account_options.auth, "SASL mechanism: SCRAM-SHA-256-PLUS, SCRAM-SHA-256, SCRAM-SHA-1-PLUS, SCRAM-SHA-1, PLAIN, LOGIN, OAUTHBEARER or XOAUTH2 (default: the strongest offered)", "MECH" },
  { "password-command", 0, 0, G_OPTION_ARG_STRING, &account_options.command[COMMAND_PASSWORD], "Run CMD (no shell) for each session: its first line of output is the password", "CMD" },
  { "token-command", 0, 0, G_OPTION_ARG_STRING, &account_options.command[COMMAND_TOKEN], "Run CMD (no shell) for each session: its first line of output is an OAuth2 access token", "CMD" },
  { "goa", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_GOA], "Link the GNOME Online Accounts mail account with this address or id: its servers and sign-in (see account list --goa)", "ADDRESS|ID" },
  { "oauth2", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_OAUTH2], "Sign in with OAuth2: google, microsoft, or custom (with the URLs below)", "PROVIDER" },
  { "client-id", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_CLIENT_ID], "The OAuth2 client ID of an application registered with the provider", "ID" },
  { "oauth2-auth-url", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_OAUTH2_AUTH_URL], "The provider's authorization endpoint", "URL" },
  { "oauth2-token-url", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_OAUTH2_TOKEN_URL], "The provider's token endpoint", "URL" },
  { "oauth2-device-url", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_OAUTH2_DEVICE_URL], "The provider's device authorization endpoint (RFC 8628)", "URL" },
  { "oauth2-scope", 0, 0, G_OPTION_ARG_STRING, &account_options.sign_in[SIGN_IN_OAUTH2_SCOPE], "The scopes to ask for, separated by spaces", "SCOPE" },
  { "timeout", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_TIMEOUT], "Cap every SMTP command timeout (0: the RFC 5321 timeouts)", "SECONDS" },
  { "retry-first", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_RETRY_FIRST], "Wait before the first retry (default 60)", "SECONDS" },
  { "retry-max", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_RETRY_MAX], "The wait doubles up to this (default 3600)", "SECONDS" },
  { "give-up-after", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_GIVE_UP_AFTER], "Fail what is still deferred after this (default 5 days)", "SECONDS" },
  { "max-connections", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_MAX_CONNECTIONS], "SMTP connections at once (default 2)", "N" },
  { "max-recipients", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_MAX_RECIPIENTS], "Recipients per SMTP transaction (default: as many as the server takes)", "N" },
  { "send-delay", 0, 0, G_OPTION_ARG_INT64, &account_options.numeric[NUMERIC_SEND_DELAY], "Hold each message this long before it goes, so that outbox cancel undoes it (default 0; at most 86400)", "SECONDS" },
  { "save-to-sent", 0, 0, G_OPTION_ARG_NONE, &account_options.save_to_sent, "Copy sent mail to the IMAP Sent folder (the default with --imap)", NULL },
  { "no-save-to-sent", 0, 0, G_OPTION_ARG_NONE, &account_options.no_save_to_sent, "Do not copy sent mail (for providers that file it themselves)", NULL },
  { "sent-folder", 0, 0, G_OPTION_ARG_STRING, &account_options.sent_folder, "The Sent folder when the server marks none", "NAME" },
  { "pop-before-smtp", 0, 0, G_OPTION_ARG_NONE, &account_options.pop_before_smtp, "Log in to POP3 before each SMTP session", NULL },
  { "no-pop-before-smtp", 0, 0, G_OPTION_ARG_NONE, &account_options.no_pop_before_smtp, "Stop logging in to POP3 first", NULL },
  { "dsn-notify", 0, 0, G_OPTION_ARG_STRING, &account_options.dsn_notify, "Delivery status notifications a message asks for when outbox send --notify gives none: never, or any of success, failure, delay ('' for none)", "LIST" },
  { "dsn-required", 0, 0, G_OPTION_ARG_NONE, &account_options.dsn_required, "Defer a message that asks for DSN where the server does not offer it", NULL },
  { "no-dsn-required", 0, 0, G_OPTION_ARG_NONE, &account_options.no_dsn_required, "Send such a message without DSN (the default)", NULL },
  { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &account_options.password_stdin, "Read the password from the first line of standard input", NULL },
  { "client-secret-stdin", 0, 0, G_OPTION_ARG_NONE, &account_options.client_secret_stdin, "Read the OAuth2 client secret from the first line of standard input", NULL },
  { "default", 0, 0, G_OPTION_ARG_NONE, &account_options.make_default, "Make this the default account", NULL },
  G_OPTION_ENTRY_NULL
};

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
find_account_services (const char  *name,
                       gboolean     wanted[3],
                       GError     **error)
{
  g_autoptr(GVariant) list = outbox_cli_bus_list_accounts (error);
  g_autoptr(GVariant) account = NULL;

  if (list == NULL)
    return FALSE;
  account = outbox_cli_find_account (list, name);
  wanted[0] = TRUE;
  wanted[1] = account != NULL && outbox_cli_lookup_text (account, "imap") != NULL;
  wanted[2] = account != NULL && outbox_cli_lookup_text (account, "pop3") != NULL;
  return TRUE;
}

/* Stores @password for each of the account's servers. */
static int
set_passwords (const char *name,
               const char *password)
{
  const char *const services[] = { "smtp", "imap", "pop3" };
  gboolean wanted[G_N_ELEMENTS (services)];
  g_autoptr(GError) error = NULL;
  g_autofree char *clean_name = outbox_cli_sanitize (name);

  if (!find_account_services (name, wanted, &error))
    return outbox_cli_report_error (error, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (services); i++)
    {
      int exit_code;

      if (!wanted[i] || outbox_cli_bus_set_password (name, services[i], password, &error))
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
warn_about_shared_addresses (const char *name)
{
  g_autoptr(GVariant) list = outbox_cli_bus_list_accounts (NULL);
  g_autoptr(GVariant) account = NULL;
  g_autofree const char **aliases = NULL;
  const char *from;

  if (list == NULL || (account = outbox_cli_find_account (list, name)) == NULL)
    return;
  if ((from = outbox_cli_lookup_text (account, "from")) != NULL)
    warn_if_address_shared (list, name, from);
  if (g_variant_lookup (account, "aliases", "^a&s", &aliases))
    for (gsize i = 0; aliases[i] != NULL; i++)
      warn_if_address_shared (list, name, aliases[i]);
}

/* account add and account update: the call, then the password. */
static int
apply_account (const char                 *command,
               gboolean                    create,
               const char                 *name,
               const OutboxAccountOptions *options,
               const char                 *password)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) settings = NULL;
  g_autofree char *usage_command = g_strconcat ("account ", command, NULL);

  if (!build_account_settings (options, &settings, &error))
    return outbox_cli_report_usage (usage_command, error);

  if (!outbox_cli_bus_save_account (name, settings, create, &error))
    return outbox_cli_report_error (error, NULL);
  if (options->from != NULL || options->aliases != NULL)
    warn_about_shared_addresses (name);

  if (password == NULL)
    return EXIT_SUCCESS;
  return set_passwords (name, password);
}

/* The OAuth2 client secret belongs to no server: service "oauth2-client". */
static int
set_client_secret (const char *name,
                   const char *secret)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *clean_name = NULL;
  int exit_code;

  if (outbox_cli_bus_set_password (name, "oauth2-client", secret, &error))
    return EXIT_SUCCESS;

  exit_code = outbox_cli_report_error (error, NULL);
  clean_name = outbox_cli_sanitize (name);
  g_printerr ("%s: the OAuth2 client secret of account %s was not stored; "
              "store it with outbox account update %s --client-secret-stdin\n",
              g_get_application_name (), clean_name, clean_name);
  return exit_code;
}

/* The password (for the account's servers) or the OAuth2 client secret,
 * read from standard input before anything is stored, so that a bad line
 * changes nothing. */
static int
apply_account_with_secret (const char                 *command,
                           gboolean                    create,
                           const char                 *name,
                           const OutboxAccountOptions *options,
                           gboolean                    client_secret)
{
  char secret[PASSWORD_MAX_LENGTH + 2];
  g_autoptr(GError) error = NULL;
  g_autofree char *usage_command = g_strconcat ("account ", command, NULL);
  int status;

  if (!read_password (secret, sizeof secret, client_secret ? "Client secret" : "Password", &error))
    status = outbox_cli_report_usage (usage_command, error);
  else if (!client_secret)
    status = apply_account (command, create, name, options, secret);
  else if ((status = apply_account (command, create, name, options, NULL)) == EXIT_SUCCESS)
    status = set_client_secret (name, secret);

  explicit_bzero (secret, sizeof secret);
  return status;
}

/* Both would read the same standard input; @command is "add" or "update". */
static int
apply_account_options (const char *command,
                       gboolean    create,
                       const char *name)
{
  g_autofree char *usage_command = g_strconcat ("account ", command, NULL);

  if (account_options.password_stdin && account_options.client_secret_stdin)
    return outbox_cli_usage_error (usage_command, "--password-stdin and --client-secret-stdin exclude each other");
  if (account_options.client_secret_stdin)
    return apply_account_with_secret (command, create, name, &account_options, TRUE);
  if (account_options.password_stdin)
    return apply_account_with_secret (command, create, name, &account_options, FALSE);
  return apply_account (command, create, name, &account_options, NULL);
}

static int
run_account_add (char **args)
{
  /* A linked GNOME Online Accounts account brings its address and servers. */
  if (account_options.from == NULL && account_options.sign_in[SIGN_IN_GOA] == NULL)
    return outbox_cli_usage_error ("account add", "missing --from ADDRESS (or --goa ADDRESS)");
  if (account_options.smtp == NULL && account_options.sign_in[SIGN_IN_GOA] == NULL)
    return outbox_cli_usage_error ("account add", "missing --smtp URL (or --goa ADDRESS)");
  return apply_account_options ("add", TRUE, args[0]);
}

static int
run_account_update (char **args)
{
  return apply_account_options ("update", FALSE, args[0]);
}

const OutboxCliCommand outbox_cli_account_add_command = {
  .name = "add",
  .summary = "Add an account",
  .run = run_account_add,
  .entries = account_entries,
  OUTBOX_CLI_ONE_ARGUMENT ("NAME"),
  .description = "Add a mail account. The password is never taken as an argument:\n"
                 "use --password-stdin.",
};

const OutboxCliCommand outbox_cli_account_update_command = {
  .name = "update",
  .summary = "Change an account's settings or password",
  .run = run_account_update,
  .entries = account_entries,
  OUTBOX_CLI_ONE_ARGUMENT ("NAME"),
  .description = "Change some settings of a mail account; the others stay as they are.\n"
                 "An empty value (--imap '') removes an optional setting, and 0 brings a\n"
                 "number back to its default. --password-stdin stores a new password.",
};
