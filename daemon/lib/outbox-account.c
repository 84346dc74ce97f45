/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "outbox-account.h"
#include "outbox-options.h"
#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-oauth2-provider.h"
#include "outbox-sasl.h"
#include "outbox-tls.h"

#define GROUP_PREFIX "account "

/* The numeric settings: name, where, default, and the accepted range. */
typedef struct
{
  const char *key;
  gsize offset;
  guint default_value;
  guint min;
  guint max;
} NumericSetting;

static const NumericSetting numeric_settings[] = {
  { "timeout", G_STRUCT_OFFSET (OutboxAccountConfig, timeout), 0, 1, 3600 },
  { "retry-first", G_STRUCT_OFFSET (OutboxAccountConfig, retry_first), 60, 1, 86400 },
  { "retry-max", G_STRUCT_OFFSET (OutboxAccountConfig, retry_max), 3600, 1, 7 * 86400 },
  { "give-up-after", G_STRUCT_OFFSET (OutboxAccountConfig, give_up_after), 5 * 86400, 10, 365 * 86400 },
  { "max-connections", G_STRUCT_OFFSET (OutboxAccountConfig, max_connections), 2, 1, 16 },
  /* 0: as many as the server takes (it says 452 when it has had enough) */
  { "max-recipients", G_STRUCT_OFFSET (OutboxAccountConfig, max_recipients), 0, 1, 100000 },
  /* 0: a message goes at once; else it waits this long, and Cancel undoes it */
  { "send-delay", G_STRUCT_OFFSET (OutboxAccountConfig, send_delay), 0, 1, OUTBOX_SEND_DELAY_MAX },
};

/* The settings that are an optional string and need no check of their own. */
typedef struct
{
  const char *key;
  gsize offset;
} StringSetting;

static const StringSetting string_settings[] = {
  { "sent-folder", G_STRUCT_OFFSET (OutboxAccountConfig, sent_folder) },
  { "oauth2-auth-url", G_STRUCT_OFFSET (OutboxAccountConfig, oauth2_auth_url) },
  { "oauth2-token-url", G_STRUCT_OFFSET (OutboxAccountConfig, oauth2_token_url) },
  { "oauth2-device-url", G_STRUCT_OFFSET (OutboxAccountConfig, oauth2_device_url) },
  { "oauth2-scope", G_STRUCT_OFFSET (OutboxAccountConfig, oauth2_scope) },
  { "client-id", G_STRUCT_OFFSET (OutboxAccountConfig, client_id) },
  { "goa-id", G_STRUCT_OFFSET (OutboxAccountConfig, goa_id) },
};

/* The settings that are a command: an argv, run without a shell. */
typedef struct
{
  const char *key;
  gsize offset;
} CommandSetting;

static const CommandSetting command_settings[] = {
  { "password-command", G_STRUCT_OFFSET (OutboxAccountConfig, password_command) },
  { "token-command", G_STRUCT_OFFSET (OutboxAccountConfig, token_command) },
};

static char **
string_slot (OutboxAccountConfig *account, const StringSetting *setting)
{
  return G_STRUCT_MEMBER_P (account, setting->offset);
}

static char ***
command_slot (OutboxAccountConfig *account, const CommandSetting *setting)
{
  return G_STRUCT_MEMBER_P (account, setting->offset);
}

static const StringSetting *
find_string_setting (const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (string_settings); i++)
    if (g_str_equal (string_settings[i].key, key))
      return &string_settings[i];
  return NULL;
}

static const CommandSetting *
find_command_setting (const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (command_settings); i++)
    if (g_str_equal (command_settings[i].key, key))
      return &command_settings[i];
  return NULL;
}

static guint *
numeric_slot (OutboxAccountConfig *account, const NumericSetting *setting)
{
  return G_STRUCT_MEMBER_P (account, setting->offset);
}

static const NumericSetting *
find_numeric_setting (const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (numeric_settings); i++)
    if (g_str_equal (numeric_settings[i].key, key))
      return &numeric_settings[i];
  return NULL;
}

struct _OutboxAccountStore
{
  char *path;          /* (owned) */
  GPtrArray *accounts; /* (element-type OutboxAccountConfig) (owned) sorted by name */
};

OutboxAccountConfig *
outbox_account_config_copy (const OutboxAccountConfig *account)
{
  OutboxAccountConfig *copy = g_new0 (OutboxAccountConfig, 1);

  *copy = *account;
  copy->name = g_strdup (account->name);
  copy->from = g_strdup (account->from);
  copy->aliases = g_strdupv (account->aliases);
  copy->smtp = account->smtp ? outbox_server_url_copy (account->smtp) : NULL;
  copy->imap = account->imap ? outbox_server_url_copy (account->imap) : NULL;
  copy->pop3 = account->pop3 ? outbox_server_url_copy (account->pop3) : NULL;
  copy->tls_ca_file = g_strdup (account->tls_ca_file);
  copy->tls_fingerprint = g_strdup (account->tls_fingerprint);
  copy->auth = g_strdup (account->auth);
  copy->oauth2 = g_strdup (account->oauth2);
  for (gsize i = 0; i < G_N_ELEMENTS (string_settings); i++)
    *string_slot (copy, &string_settings[i]) =
        g_strdup (*string_slot ((OutboxAccountConfig *) account, &string_settings[i]));
  for (gsize i = 0; i < G_N_ELEMENTS (command_settings); i++)
    *command_slot (copy, &command_settings[i]) =
        g_strdupv (*command_slot ((OutboxAccountConfig *) account, &command_settings[i]));
  return copy;
}

void
outbox_account_config_free (OutboxAccountConfig *account)
{
  if (account == NULL)
    return;
  g_free (account->name);
  g_free (account->from);
  g_strfreev (account->aliases);
  g_clear_pointer (&account->smtp, outbox_server_url_free);
  g_clear_pointer (&account->imap, outbox_server_url_free);
  g_clear_pointer (&account->pop3, outbox_server_url_free);
  g_free (account->tls_ca_file);
  g_free (account->tls_fingerprint);
  g_free (account->auth);
  g_free (account->oauth2);
  for (gsize i = 0; i < G_N_ELEMENTS (string_settings); i++)
    g_free (*string_slot (account, &string_settings[i]));
  for (gsize i = 0; i < G_N_ELEMENTS (command_settings); i++)
    g_strfreev (*command_slot (account, &command_settings[i]));
  g_free (account);
}

gboolean
outbox_account_name_is_valid (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > 64)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

static void
add_url (GVariantBuilder *builder, const char *key, const OutboxServerUrl *url)
{
  g_autofree char *str = NULL;

  if (url == NULL)
    return;
  str = outbox_server_url_to_string (url);
  g_variant_builder_add (builder, "{sv}", key, g_variant_new_string (str));
}

static void
add_string (GVariantBuilder *builder, const char *key, const char *value)
{
  if (value != NULL)
    g_variant_builder_add (builder, "{sv}", key, g_variant_new_string (value));
}

GVariant *
outbox_account_config_to_variant (const OutboxAccountConfig *account)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  add_string (&builder, "name", account->name);
  add_string (&builder, "from", account->from);
  if (account->aliases != NULL)
    g_variant_builder_add (&builder, "{sv}", "aliases",
                           g_variant_new_strv ((const char *const *) account->aliases, -1));
  add_url (&builder, "smtp", account->smtp);
  add_url (&builder, "imap", account->imap);
  add_url (&builder, "pop3", account->pop3);
  add_string (&builder, "tls-ca-file", account->tls_ca_file);
  add_string (&builder, "tls-fingerprint", account->tls_fingerprint);
  add_string (&builder, "auth", account->auth);
  add_string (&builder, "oauth2", account->oauth2);
  for (gsize i = 0; i < G_N_ELEMENTS (string_settings); i++)
    add_string (&builder, string_settings[i].key,
                *string_slot ((OutboxAccountConfig *) account, &string_settings[i]));
  for (gsize i = 0; i < G_N_ELEMENTS (command_settings); i++)
    {
      char **argv = *command_slot ((OutboxAccountConfig *) account, &command_settings[i]);
      if (argv != NULL)
        g_variant_builder_add (&builder, "{sv}", command_settings[i].key,
                               g_variant_new_strv ((const char *const *) argv, -1));
    }
  g_variant_builder_add (&builder, "{sv}", "default", g_variant_new_boolean (account->is_default));
  g_variant_builder_add (&builder, "{sv}", "save-to-sent", g_variant_new_boolean (account->save_to_sent));
  g_variant_builder_add (&builder, "{sv}", "pop-before-smtp",
                         g_variant_new_boolean (account->pop_before_smtp));
  if (account->dsn_notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_auto (GStrv) words = outbox_dsn_notify_to_words (account->dsn_notify);

      g_variant_builder_add (&builder, "{sv}", "dsn-notify",
                             g_variant_new_strv ((const char *const *) words, -1));
    }
  g_variant_builder_add (&builder, "{sv}", "dsn-required",
                         g_variant_new_boolean (account->dsn_required));
  for (gsize i = 0; i < G_N_ELEMENTS (numeric_settings); i++)
    {
      guint value = *numeric_slot ((OutboxAccountConfig *) account, &numeric_settings[i]);
      if (value != 0)
        g_variant_builder_add (&builder, "{sv}", numeric_settings[i].key,
                               g_variant_new_uint32 (value));
    }
  return g_variant_builder_end (&builder);
}

/* Applies the per-account "timeout" cap to the RFC 5321 defaults. */
static void
account_update_timeouts (OutboxAccountConfig *account)
{
  guint *fields[] = {
    &account->timeouts.connect,   &account->timeouts.greeting,   &account->timeouts.command,
    &account->timeouts.data_init, &account->timeouts.data_block, &account->timeouts.data_final,
  };

  outbox_smtp_timeouts_init_default (&account->timeouts);
  if (account->timeout == 0)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS (fields); i++)
    *fields[i] = MIN (*fields[i], account->timeout);
}

/* Setting values arrive from D-Bus callers and from the file alike; both go
 * through these checks so that a hand-edited file cannot hold what the API
 * would refuse. */
static gboolean
set_url (OutboxServerUrl **slot,
         OutboxProtocol protocol,
         const char *key,
         const char *value,
         GError **error)
{
  g_autoptr (OutboxServerUrl) url = NULL;
  g_autoptr (GError) local_error = NULL;

  if (*value == '\0' && protocol != OUTBOX_PROTOCOL_SMTP)
    {
      g_clear_pointer (slot, outbox_server_url_free);
      return TRUE;
    }
  url = outbox_server_url_parse (value, &local_error);
  if (url == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "Setting “%s”: %s", key,
                   local_error->message);
      return FALSE;
    }
  if (url->protocol != protocol)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “%s” needs a %s URL, not “%s”", key, outbox_protocol_to_string (protocol),
                   value);
      return FALSE;
    }
  if (url->security == OUTBOX_SECURITY_INSECURE && url->user != NULL
      && !outbox_server_url_is_loopback (url))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “%s”: a +insecure URL with a user name would send the password in "
                   "clear text to %s; use %ss:// or %s:// (STARTTLS) instead",
                   key, url->host, outbox_protocol_to_string (protocol),
                   outbox_protocol_to_string (protocol));
      return FALSE;
    }
  g_clear_pointer (slot, outbox_server_url_free);
  *slot = g_steal_pointer (&url);
  return TRUE;
}

static gboolean
set_optional_string (char **slot, const char *value)
{
  g_free (*slot);
  *slot = *value == '\0' ? NULL : g_strdup (value);
  return TRUE;
}

static gboolean
set_from (OutboxAccountConfig *account, const char *value, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  if (!outbox_address_validate (value, FALSE, &local_error))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "Setting “from”: %s",
                   local_error->message);
      return FALSE;
    }
  g_free (account->from);
  account->from = g_strdup (value);
  return TRUE;
}

/* "*@DOMAIN" is checked as an address with a stand-in local part, so that a
 * wildcard's domain obeys the same rules as any From address's. */
static gboolean
validate_alias (const char *alias, GError **error)
{
  g_autofree char *stand_in = NULL;

  if (!g_str_has_prefix (alias, "*@"))
    {
      if (strchr (alias, '*') == NULL)
        return outbox_address_validate (alias, FALSE, error);
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
                   "“%s”: a wildcard stands for the whole local part, as in *@example.org", alias);
      return FALSE;
    }
  if (strchr (alias + 2, '*') != NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
                   "“%s”: the domain of a wildcard cannot hold '*'; give each domain as "
                   "*@example.org",
                   alias);
      return FALSE;
    }
  stand_in = g_strconcat ("x", alias + 1, NULL);
  if (outbox_address_validate (stand_in, FALSE, NULL))
    return TRUE;
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
               "“%s” is not a valid wildcard: give a domain after the @, as in *@example.org",
               alias);
  return FALSE;
}

/* An empty list removes every alias. */
static gboolean
set_aliases (OutboxAccountConfig *account, GVariant *value, GError **error)
{
  g_autofree const char **aliases = NULL;
  g_autoptr (GError) local_error = NULL;

  aliases = g_variant_get_strv (value, NULL);
  for (gsize i = 0; aliases[i] != NULL; i++)
    if (!validate_alias (aliases[i], &local_error))
      {
        g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "Setting “aliases”: %s",
                     local_error->message);
        return FALSE;
      }
  g_strfreev (account->aliases);
  account->aliases = aliases[0] != NULL ? g_strdupv ((char **) aliases) : NULL;
  return TRUE;
}

/* An empty list (or one of empty words) goes back to asking nothing. */
static gboolean
set_dsn_notify (OutboxAccountConfig *account, GVariant *value, GError **error)
{
  g_autofree const char **words = g_variant_get_strv (value, NULL);
  g_autoptr (GError) local_error = NULL;
  OutboxDsnNotify notify = OUTBOX_DSN_NOTIFY_DEFAULT;
  gboolean empty = TRUE;

  for (gsize i = 0; words[i] != NULL; i++)
    empty = empty && *words[i] == '\0';
  if (!empty && !outbox_dsn_notify_from_words (words, &notify, &local_error))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "Setting “dsn-notify”: %s",
                   local_error->message);
      return FALSE;
    }
  account->dsn_notify = notify;
  return TRUE;
}

static gboolean
set_ca_file (OutboxAccountConfig *account, const char *value, GError **error)
{
  if (*value != '\0' && !g_path_is_absolute (value))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “tls-ca-file” must be an absolute path, not “%s”", value);
      return FALSE;
    }
  if (*value != '\0' && !g_file_test (value, G_FILE_TEST_IS_REGULAR))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “tls-ca-file”: “%s” is not a readable file", value);
      return FALSE;
    }
  return set_optional_string (&account->tls_ca_file, value);
}

static gboolean
set_fingerprint (OutboxAccountConfig *account, const char *value, GError **error)
{
  guint8 digest[32];
  g_autoptr (GError) local_error = NULL;

  if (*value != '\0' && !outbox_tls_parse_fingerprint (value, digest, &local_error))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “tls-fingerprint”: %s (expected sha256: followed by 64 hex digits)",
                   local_error->message);
      return FALSE;
    }
  return set_optional_string (&account->tls_fingerprint, value);
}

static gboolean
set_auth (OutboxAccountConfig *account, const char *value, GError **error)
{
  if (*value != '\0' && !outbox_sasl_mechanism_is_known (value))
    {
      g_autofree char *known = g_strjoinv (", ", (char **) outbox_sasl_mechanisms ());
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “auth”: unsupported mechanism “%s”; use one of %s", value, known);
      return FALSE;
    }
  if (!set_optional_string (&account->auth, value))
    return FALSE;
  if (account->auth != NULL)
    for (char *p = account->auth; *p; p++)
      *p = g_ascii_toupper (*p);
  return TRUE;
}

static gboolean
set_oauth2 (OutboxAccountConfig *account, const char *value, GError **error)
{
  g_autofree char *name = g_ascii_strdown (value, -1);

  if (*name != '\0' && !g_str_equal (name, "custom") && outbox_oauth2_provider_lookup (name) == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “oauth2”: unknown provider “%s”; use google, microsoft, or custom "
                   "with --oauth2-auth-url, --oauth2-token-url and --oauth2-scope",
                   value);
      return FALSE;
    }
  return set_optional_string (&account->oauth2, name);
}

/* An empty list clears the command. */
static gboolean
set_command (OutboxAccountConfig *account, const CommandSetting *setting, GVariant *value, GError **error)
{
  char ***slot = command_slot (account, setting);
  g_autofree const char **argv = NULL;

  argv = g_variant_get_strv (value, NULL);
  if (argv[0] != NULL && *argv[0] == '\0')
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “%s”: the command's name is empty", setting->key);
      return FALSE;
    }
  g_strfreev (*slot);
  *slot = argv[0] != NULL ? g_strdupv ((char **) argv) : NULL;
  return TRUE;
}

static gboolean
set_numeric (OutboxAccountConfig *account, const NumericSetting *setting, GVariant *value, GError **error)
{
  guint n;

  n = g_variant_get_uint32 (value);
  /* 0 brings back the default. */
  if (n == 0)
    n = setting->default_value;
  else if (n < setting->min || n > setting->max)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Setting “%s” must be between %u and %u, or 0 for its default (%u), not %u",
                   setting->key, setting->min, setting->max, setting->default_value, n);
      return FALSE;
    }
  *numeric_slot (account, setting) = n;
  account_update_timeouts (account);
  return TRUE;
}

static gboolean *
boolean_slot (OutboxAccountConfig *account, const char *key)
{
  if (g_str_equal (key, "default"))
    return &account->is_default;
  if (g_str_equal (key, "save-to-sent"))
    return &account->save_to_sent;
  if (g_str_equal (key, "pop-before-smtp"))
    return &account->pop_before_smtp;
  if (g_str_equal (key, "dsn-required"))
    return &account->dsn_required;
  return NULL;
}

static const GArray *setting_options (void);

static gboolean
account_apply_setting (OutboxAccountConfig *account, const char *key, GVariant *value, GError **error)
{
  gboolean *flag = boolean_slot (account, key);

  if (flag != NULL)
    {
      *flag = g_variant_get_boolean (value);
      return TRUE;
    }
  if (find_numeric_setting (key) != NULL)
    return set_numeric (account, find_numeric_setting (key), value, error);
  if (find_command_setting (key) != NULL)
    return set_command (account, find_command_setting (key), value, error);
  if (g_str_equal (key, "aliases"))
    return set_aliases (account, value, error);
  if (g_str_equal (key, "dsn-notify"))
    return set_dsn_notify (account, value, error);
  const char *str = g_variant_get_string (value, NULL);
  if (g_str_equal (key, "from"))
    return set_from (account, str, error);
  if (g_str_equal (key, "smtp"))
    return set_url (&account->smtp, OUTBOX_PROTOCOL_SMTP, key, str, error);
  if (g_str_equal (key, "imap"))
    return set_url (&account->imap, OUTBOX_PROTOCOL_IMAP, key, str, error);
  if (g_str_equal (key, "pop3"))
    return set_url (&account->pop3, OUTBOX_PROTOCOL_POP3, key, str, error);
  if (g_str_equal (key, "tls-ca-file"))
    return set_ca_file (account, str, error);
  if (g_str_equal (key, "tls-fingerprint"))
    return set_fingerprint (account, str, error);
  if (g_str_equal (key, "auth"))
    return set_auth (account, str, error);
  if (g_str_equal (key, "oauth2"))
    return set_oauth2 (account, str, error);
  if (find_string_setting (key) != NULL)
    return set_optional_string (string_slot (account, find_string_setting (key)), str);

  return outbox_options_unknown ((const OutboxOption *) setting_options ()->data,
                                 setting_options ()->len, "an account", key, error);
}

/* The account settings as declared options: the keys of the tables above
 * and those with a setter of their own, each with its type. */
static const char *const boolean_keys[] = { "default", "save-to-sent", "pop-before-smtp",
                                            "dsn-required" };
static const char *const own_string_keys[] = {
  "from", "smtp", "imap", "pop3", "tls-ca-file", "tls-fingerprint", "auth", "oauth2",
};

static void
add_options (GArray *options, const char *type, const char *key)
{
  OutboxOption option = { key, type, NULL };

  g_array_append_val (options, option);
}

static GArray *
build_setting_options (void)
{
  GArray *options = g_array_new (FALSE, FALSE, sizeof (OutboxOption));

  for (gsize i = 0; i < G_N_ELEMENTS (own_string_keys); i++)
    add_options (options, "s", own_string_keys[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (boolean_keys); i++)
    add_options (options, "b", boolean_keys[i]);
  for (gsize i = 0; i < G_N_ELEMENTS (numeric_settings); i++)
    add_options (options, "u", numeric_settings[i].key);
  for (gsize i = 0; i < G_N_ELEMENTS (string_settings); i++)
    add_options (options, "s", string_settings[i].key);
  for (gsize i = 0; i < G_N_ELEMENTS (command_settings); i++)
    add_options (options, "as", command_settings[i].key);
  add_options (options, "as", "aliases");
  add_options (options, "as", "dsn-notify");
  return options;
}

static const GArray *
setting_options (void)
{
  static gsize options;

  if (g_once_init_enter (&options))
    g_once_init_leave (&options, (gsize) build_setting_options ());
  return (const GArray *) options;
}

static gboolean
account_apply_settings (OutboxAccountConfig *account, GVariant *settings, GError **error)
{
  const GArray *options = setting_options ();

  if (!g_variant_is_of_type (settings, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Account settings must be a dictionary of type a{sv}");
      return FALSE;
    }
  if (!outbox_options_check (settings, (const OutboxOption *) options->data, options->len,
                             "an account", NULL, error))
    return FALSE;
  for (gsize i = 0; i < g_variant_n_children (settings); i++)
    {
      const char *key;
      g_autoptr (GVariant) value = NULL;

      g_variant_get_child (settings, i, "{&sv}", &key, &value);
      if (!account_apply_setting (account, key, value, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
outbox_account_config_wants_sent_copy (const OutboxAccountConfig *account, int per_message)
{
  if (account->imap == NULL)
    return FALSE;
  return per_message >= 0 ? per_message != 0 : account->save_to_sent;
}

/* One way to get the secret: a linked GOA account, OAuth2, a command or the
 * Secret Service (the default). */
static gboolean
check_one_sign_in (const OutboxAccountConfig *account, GError **error)
{
  const char *chosen[4];
  guint n = 0;

  if (account->goa_id != NULL)
    chosen[n++] = "--goa";
  if (account->oauth2 != NULL)
    chosen[n++] = "--oauth2";
  if (account->token_command != NULL)
    chosen[n++] = "--token-command";
  if (account->password_command != NULL)
    chosen[n++] = "--password-command";
  if (n <= 1)
    return TRUE;
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
               "Account “%s” has both %s and %s; choose one way to sign in", account->name,
               chosen[0], chosen[1]);
  return FALSE;
}

static gboolean
check_oauth2 (const OutboxAccountConfig *account, GError **error)
{
  g_autoptr (OutboxOAuth2Settings) settings = NULL;
  g_autoptr (GError) local_error = NULL;

  if (account->oauth2 == NULL)
    return TRUE;
  settings = outbox_account_get_oauth2_settings (account, &local_error);
  if (settings == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "Account “%s”: %s",
                   account->name, local_error->message);
      return FALSE;
    }
  return TRUE;
}

OutboxOAuth2Settings *
outbox_account_get_oauth2_settings (const OutboxAccountConfig *account, GError **error)
{
  const OutboxOAuth2Provider *provider = outbox_oauth2_provider_lookup (account->oauth2);
  g_autoptr (OutboxOAuth2Settings) settings = g_new0 (OutboxOAuth2Settings, 1);

  g_return_val_if_fail (account->oauth2 != NULL, NULL);

  settings->auth_url = g_strdup (account->oauth2_auth_url ? account->oauth2_auth_url
                                 : provider ? provider->auth_url : NULL);
  settings->token_url = g_strdup (account->oauth2_token_url ? account->oauth2_token_url
                                  : provider ? provider->token_url : NULL);
  settings->device_url = g_strdup (account->oauth2_device_url ? account->oauth2_device_url
                                   : provider ? provider->device_url : NULL);
  settings->scope = g_strdup (account->oauth2_scope ? account->oauth2_scope
                              : provider ? provider->scope : NULL);
  settings->client_id = g_strdup (account->client_id);
  if (settings->client_id == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "OAuth2 needs the client ID of an application registered with the provider; "
                   "give it with --client-id ID");
      return NULL;
    }
  if (settings->auth_url == NULL || settings->token_url == NULL || settings->scope == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "A custom OAuth2 provider needs --oauth2-auth-url, --oauth2-token-url and "
                   "--oauth2-scope");
      return NULL;
    }
  return g_steal_pointer (&settings);
}

static gboolean
account_check_complete (const OutboxAccountConfig *account, GError **error)
{
  if (!check_one_sign_in (account, error) || !check_oauth2 (account, error))
    return FALSE;
  if (account->from == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Account “%s” has no “from” address; give one with --from ADDRESS",
                   account->name);
      return FALSE;
    }
  if (account->pop_before_smtp && account->pop3 == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Account “%s” asks for POP-before-SMTP but has no POP3 server; give one "
                   "with --pop3 pop3s://USER@HOST",
                   account->name);
      return FALSE;
    }
  if (account->smtp == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Account “%s” has no SMTP server; give one with --smtp smtps://USER@HOST",
                   account->name);
      return FALSE;
    }
  return TRUE;
}

static OutboxAccountConfig *
account_new (const char *name)
{
  OutboxAccountConfig *account = g_new0 (OutboxAccountConfig, 1);

  account->name = g_strdup (name);
  account->save_to_sent = TRUE;
  for (gsize i = 0; i < G_N_ELEMENTS (numeric_settings); i++)
    *numeric_slot (account, &numeric_settings[i]) = numeric_settings[i].default_value;
  account_update_timeouts (account);
  return account;
}

static int
compare_accounts (gconstpointer a, gconstpointer b)
{
  const OutboxAccountConfig *aa = *(const OutboxAccountConfig *const *) a;
  const OutboxAccountConfig *bb = *(const OutboxAccountConfig *const *) b;

  return strcmp (aa->name, bb->name);
}

/* Keys of a group in the file, read back as the variants the API takes. */
static GVariant *
keyfile_value (GKeyFile *keyfile, const char *group, const char *key, GError **error)
{
  if (g_str_equal (key, "default") || g_str_equal (key, "save-to-sent")
      || g_str_equal (key, "pop-before-smtp") || g_str_equal (key, "dsn-required"))
    {
      gboolean b = g_key_file_get_boolean (keyfile, group, key, error);
      return (error && *error) ? NULL : g_variant_new_boolean (b);
    }
  if (find_command_setting (key) != NULL || g_str_equal (key, "aliases")
      || g_str_equal (key, "dsn-notify"))
    {
      g_auto (GStrv) argv = g_key_file_get_string_list (keyfile, group, key, NULL, error);
      return argv != NULL ? g_variant_new_strv ((const char *const *) argv, -1) : NULL;
    }
  if (find_numeric_setting (key) != NULL)
    {
      guint64 n = g_key_file_get_uint64 (keyfile, group, key, error);
      if (error && *error)
        return NULL;
      return g_variant_new_uint32 ((guint32) MIN (n, G_MAXUINT32));
    }
  g_autofree char *str = g_key_file_get_string (keyfile, group, key, error);
  return str ? g_variant_new_string (str) : NULL;
}

static OutboxAccountConfig *
account_from_keyfile (GKeyFile *keyfile, const char *group, GError **error)
{
  const char *name = group + strlen (GROUP_PREFIX);
  g_autoptr (OutboxAccountConfig) account = NULL;
  g_auto (GStrv) keys = NULL;

  if (!outbox_account_name_is_valid (name))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Invalid account name “%s”: use letters, digits, '.', '_' and '-'", name);
      return NULL;
    }
  account = account_new (name);
  keys = g_key_file_get_keys (keyfile, group, NULL, error);
  if (keys == NULL)
    return NULL;
  for (gsize i = 0; keys[i] != NULL; i++)
    {
      g_autoptr (GVariant) value = keyfile_value (keyfile, group, keys[i], error);
      if (value == NULL)
        return NULL;
      g_variant_ref_sink (value);
      if (!account_apply_setting (account, keys[i], value, error))
        return NULL;
    }
  if (!account_check_complete (account, error))
    return NULL;
  return g_steal_pointer (&account);
}

/* Exactly one default whenever there are accounts: @preferred, else the one
 * already marked, else the first by name. */
static void
accounts_fix_default (GPtrArray *accounts, const OutboxAccountConfig *preferred)
{
  const OutboxAccountConfig *chosen = preferred;

  for (guint i = 0; chosen == NULL && i < accounts->len; i++)
    {
      const OutboxAccountConfig *account = g_ptr_array_index (accounts, i);
      if (account->is_default)
        chosen = account;
    }
  if (chosen == NULL && accounts->len > 0)
    chosen = g_ptr_array_index (accounts, 0);
  for (guint i = 0; i < accounts->len; i++)
    {
      OutboxAccountConfig *account = g_ptr_array_index (accounts, i);
      account->is_default = account == chosen;
    }
}

OutboxAccountStore *
outbox_account_store_load (const char *path, GError **error)
{
  g_autoptr (OutboxAccountStore) store = g_new0 (OutboxAccountStore, 1);
  g_autoptr (GKeyFile) keyfile = g_key_file_new ();
  g_autoptr (GError) local_error = NULL;
  g_auto (GStrv) groups = NULL;

  store->path = g_strdup (path);
  store->accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_account_config_free);

  if (!g_key_file_load_from_file (keyfile, path, G_KEY_FILE_NONE, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return g_steal_pointer (&store);
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "Cannot read %s: %s", path,
                   local_error->message);
      return NULL;
    }
  groups = g_key_file_get_groups (keyfile, NULL);
  for (gsize i = 0; groups[i] != NULL; i++)
    {
      OutboxAccountConfig *account;

      if (!g_str_has_prefix (groups[i], GROUP_PREFIX))
        continue;
      account = account_from_keyfile (keyfile, groups[i], &local_error);
      if (account == NULL)
        {
          g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "%s, [%s]: %s", path,
                       groups[i], local_error->message);
          return NULL;
        }
      g_ptr_array_add (store->accounts, account);
    }
  g_ptr_array_sort (store->accounts, compare_accounts);
  accounts_fix_default (store->accounts, NULL);
  return g_steal_pointer (&store);
}

void
outbox_account_store_free (OutboxAccountStore *store)
{
  if (store == NULL)
    return;
  g_free (store->path);
  g_clear_pointer (&store->accounts, g_ptr_array_unref);
  g_free (store);
}

static void
keyfile_set_url (GKeyFile *keyfile, const char *group, const char *key, const OutboxServerUrl *url)
{
  g_autofree char *str = NULL;

  if (url == NULL)
    return;
  str = outbox_server_url_to_string (url);
  g_key_file_set_string (keyfile, group, key, str);
}

static void
keyfile_set_optional (GKeyFile *keyfile, const char *group, const char *key, const char *value)
{
  if (value != NULL)
    g_key_file_set_string (keyfile, group, key, value);
}

static void
keyfile_set_dsn (GKeyFile *keyfile, const char *group, const OutboxAccountConfig *account)
{
  if (account->dsn_notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_auto (GStrv) words = outbox_dsn_notify_to_words (account->dsn_notify);

      g_key_file_set_string_list (keyfile, group, "dsn-notify", (const char *const *) words,
                                  g_strv_length (words));
    }
  if (account->dsn_required)
    g_key_file_set_boolean (keyfile, group, "dsn-required", TRUE);
}

static GKeyFile *
accounts_to_keyfile (GPtrArray *accounts)
{
  GKeyFile *keyfile = g_key_file_new ();

  for (guint i = 0; i < accounts->len; i++)
    {
      const OutboxAccountConfig *account = g_ptr_array_index (accounts, i);
      g_autofree char *group = g_strconcat (GROUP_PREFIX, account->name, NULL);

      g_key_file_set_string (keyfile, group, "from", account->from);
      if (account->aliases != NULL)
        g_key_file_set_string_list (keyfile, group, "aliases",
                                    (const char *const *) account->aliases,
                                    g_strv_length (account->aliases));
      keyfile_set_url (keyfile, group, "smtp", account->smtp);
      keyfile_set_url (keyfile, group, "imap", account->imap);
      keyfile_set_url (keyfile, group, "pop3", account->pop3);
      keyfile_set_optional (keyfile, group, "tls-ca-file", account->tls_ca_file);
      keyfile_set_optional (keyfile, group, "tls-fingerprint", account->tls_fingerprint);
      keyfile_set_optional (keyfile, group, "auth", account->auth);
      keyfile_set_optional (keyfile, group, "oauth2", account->oauth2);
      for (gsize n = 0; n < G_N_ELEMENTS (string_settings); n++)
        keyfile_set_optional (keyfile, group, string_settings[n].key,
                              *string_slot ((OutboxAccountConfig *) account, &string_settings[n]));
      for (gsize n = 0; n < G_N_ELEMENTS (command_settings); n++)
        {
          char **argv = *command_slot ((OutboxAccountConfig *) account, &command_settings[n]);
          if (argv != NULL)
            g_key_file_set_string_list (keyfile, group, command_settings[n].key,
                                        (const char *const *) argv, g_strv_length (argv));
        }
      for (gsize n = 0; n < G_N_ELEMENTS (numeric_settings); n++)
        {
          guint value = *numeric_slot ((OutboxAccountConfig *) account, &numeric_settings[n]);
          if (value != numeric_settings[n].default_value)
            g_key_file_set_uint64 (keyfile, group, numeric_settings[n].key, value);
        }
      if (account->is_default)
        g_key_file_set_boolean (keyfile, group, "default", TRUE);
      if (!account->save_to_sent)
        g_key_file_set_boolean (keyfile, group, "save-to-sent", FALSE);
      if (account->pop_before_smtp)
        g_key_file_set_boolean (keyfile, group, "pop-before-smtp", TRUE);
      keyfile_set_dsn (keyfile, group, account);
    }
  return keyfile;
}

static gboolean
store_write (OutboxAccountStore *store, GPtrArray *accounts, GError **error)
{
  g_autoptr (GKeyFile) keyfile = accounts_to_keyfile (accounts);
  g_autofree char *data = NULL;
  g_autofree char *dir = g_path_get_dirname (store->path);
  g_autoptr (GError) local_error = NULL;
  gsize len;

  g_key_file_set_comment (keyfile, NULL, NULL,
                          " Outbox accounts. Passwords are not here: they live in the Secret "
                          "Service.\n Edit with `outbox account` while outboxd runs.",
                          NULL);
  data = g_key_file_to_data (keyfile, &len, NULL);
  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int errsv = errno;
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED, "Cannot create %s: %s", dir,
                   g_strerror (errsv));
      return FALSE;
    }
  if (!g_file_set_contents_full (store->path, data, len,
                                 G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                 0600, &local_error))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED, "Cannot write %s: %s",
                   store->path, local_error->message);
      return FALSE;
    }
  return TRUE;
}

/* Every change is made on a copy of the list, written out, and only then
 * swapped in, so that a failed write changes nothing. */
static gpointer
copy_account (gconstpointer account, gpointer user_data)
{
  return outbox_account_config_copy (account);
}

static GPtrArray *
accounts_copy (GPtrArray *accounts)
{
  return g_ptr_array_copy (accounts, copy_account, NULL);
}

static OutboxAccountConfig *
accounts_lookup (GPtrArray *accounts, const char *name)
{
  for (guint i = 0; i < accounts->len; i++)
    {
      OutboxAccountConfig *account = g_ptr_array_index (accounts, i);
      if (g_str_equal (account->name, name))
        return account;
    }
  return NULL;
}

static gboolean
store_commit (OutboxAccountStore *store, GPtrArray *accounts, GError **error)
{
  g_autoptr (GPtrArray) owned = accounts;

  if (!store_write (store, accounts, error))
    return FALSE;
  g_clear_pointer (&store->accounts, g_ptr_array_unref);
  store->accounts = g_steal_pointer (&owned);
  return TRUE;
}

GPtrArray *
outbox_account_store_list (OutboxAccountStore *store)
{
  return store->accounts;
}

const OutboxAccountConfig *
outbox_account_store_lookup (OutboxAccountStore *store, const char *name)
{
  return accounts_lookup (store->accounts, name);
}

const OutboxAccountConfig *
outbox_account_store_get_default (OutboxAccountStore *store)
{
  for (guint i = 0; i < store->accounts->len; i++)
    {
      const OutboxAccountConfig *account = g_ptr_array_index (store->accounts, i);
      if (account->is_default)
        return account;
    }
  return NULL;
}

static gboolean
addresses_equal (const char *a, const char *b)
{
  const char *at_a = strrchr (a, '@');
  const char *at_b = strrchr (b, '@');

  if (at_a == NULL || at_b == NULL || at_a - a != at_b - b)
    return FALSE;
  return strncmp (a, b, at_a - a) == 0 && g_ascii_strcasecmp (at_a, at_b) == 0;
}

/* How well @account covers @address: 2 for its From or an alias equal to
 * it, 1 for a "*@DOMAIN" alias of its domain, 0 for no match. */
static guint
account_match_rank (const OutboxAccountConfig *account, const char *address)
{
  const char *at = strrchr (address, '@');
  guint rank = addresses_equal (account->from, address) ? 2 : 0;

  for (char **alias = account->aliases; rank < 2 && alias != NULL && *alias != NULL; alias++)
    {
      if (addresses_equal (*alias, address))
        rank = 2;
      else if (at != NULL && g_str_has_prefix (*alias, "*@")
               && g_ascii_strcasecmp (*alias + 1, at) == 0)
        rank = 1;
    }
  return rank;
}

const OutboxAccountConfig *
outbox_account_store_find_by_address (OutboxAccountStore *store, const char *address)
{
  const OutboxAccountConfig *best = NULL;
  guint best_rank = 0;

  if (address == NULL)
    return NULL;
  /* The list is sorted by name, so the first of equals is kept unless the
   * default is among them. */
  for (guint i = 0; i < store->accounts->len; i++)
    {
      const OutboxAccountConfig *account = g_ptr_array_index (store->accounts, i);
      guint rank = account_match_rank (account, address);

      if (rank > best_rank || (rank > 0 && rank == best_rank && account->is_default))
        {
          best = account;
          best_rank = rank;
        }
    }
  return best;
}

gboolean
outbox_account_store_add (OutboxAccountStore *store,
                          const char *name,
                          GVariant *settings,
                          GError **error)
{
  g_autoptr (GPtrArray) accounts = NULL;
  g_autoptr (OutboxAccountConfig) account = NULL;
  OutboxAccountConfig *added;

  if (!outbox_account_name_is_valid (name))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Invalid account name “%s”: use 1 to 64 letters, digits, '.', '_' and '-'",
                   name);
      return FALSE;
    }
  if (accounts_lookup (store->accounts, name) != NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_ACCOUNT_EXISTS,
                   "An account named “%s” already exists; change it with outbox account "
                   "remove %s first, or choose another name",
                   name, name);
      return FALSE;
    }
  account = account_new (name);
  if (!account_apply_settings (account, settings, error) || !account_check_complete (account, error))
    return FALSE;

  accounts = accounts_copy (store->accounts);
  added = g_steal_pointer (&account);
  g_ptr_array_add (accounts, added);
  g_ptr_array_sort (accounts, compare_accounts);
  accounts_fix_default (accounts, added->is_default ? added : NULL);
  return store_commit (store, g_steal_pointer (&accounts), error);
}

static gboolean
no_such_account (const char *name, GError **error)
{
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT,
               "No account named “%s”; see outbox account list", name);
  return FALSE;
}

gboolean
outbox_account_store_update (OutboxAccountStore *store,
                             const char *name,
                             GVariant *settings,
                             GError **error)
{
  g_autoptr (GPtrArray) accounts = NULL;
  OutboxAccountConfig *account;
  gboolean was_default;

  accounts = accounts_copy (store->accounts);
  account = accounts_lookup (accounts, name);
  if (account == NULL)
    return no_such_account (name, error);
  was_default = account->is_default;
  if (!account_apply_settings (account, settings, error) || !account_check_complete (account, error))
    return FALSE;
  /* Turning the default off hands it to the first other account by name. */
  if (was_default && !account->is_default)
    {
      for (guint i = 0; i < accounts->len; i++)
        if (g_ptr_array_index (accounts, i) != account)
          {
            ((OutboxAccountConfig *) g_ptr_array_index (accounts, i))->is_default = TRUE;
            break;
          }
    }
  accounts_fix_default (accounts, account->is_default ? account : NULL);
  return store_commit (store, g_steal_pointer (&accounts), error);
}

gboolean
outbox_account_store_remove (OutboxAccountStore *store, const char *name, GError **error)
{
  g_autoptr (GPtrArray) accounts = NULL;
  OutboxAccountConfig *account;

  accounts = accounts_copy (store->accounts);
  account = accounts_lookup (accounts, name);
  if (account == NULL)
    return no_such_account (name, error);
  g_ptr_array_remove (accounts, account);
  accounts_fix_default (accounts, NULL);
  return store_commit (store, g_steal_pointer (&accounts), error);
}
