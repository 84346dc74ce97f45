/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <stdlib.h>

#include "outbox-account-check.h"
#include "outbox-accounts-service.h"
#include "outbox-load-gate.h"
#include "outbox-goa.h"
#include "outbox-helper.h"
#include "outbox-dbus-error.h"
#include "outbox-discover.h"
#include "outbox-error.h"
#include "outbox-secret.h"

#define MAX_SECRET_LENGTH 4096

struct _OutboxAccountsService
{
  OutboxDbusAccountsSkeleton parent_instance;

  OutboxAccountStore *accounts; /* (unowned) */
  OutboxQueue *queue;           /* (owned) */
  OutboxDelivery *delivery;     /* (owned) */
  OutboxCredentials *credentials; /* (owned) */
  gulong state_handler;
  /* AccountChanged signals not yet emitted: account name (owned) ->
   * GINT_TO_POINTER (whether Remove() was asked for it). */
  GHashTable *changes; /* (owned) */
  guint flush_id;
};

static void outbox_accounts_service_iface_init (OutboxDbusAccountsIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OutboxAccountsService,
                               outbox_accounts_service,
                               OUTBOX_DBUS_TYPE_ACCOUNTS_SKELETON,
                               G_IMPLEMENT_INTERFACE (OUTBOX_DBUS_TYPE_ACCOUNTS,
                                                      outbox_accounts_service_iface_init))

/* (transfer floating) The account's dictionary as List() and
 * AccountChanged give it: its settings, which hold no secret, and its
 * state. */
static GVariant *
account_to_variant (OutboxAccountsService *self, const OutboxAccountConfig *account)
{
  g_autoptr (GVariant) settings = g_variant_ref_sink (outbox_account_config_to_variant (account));
  const char *message = NULL;
  OutboxAccountState state =
      outbox_delivery_get_account_state (self->delivery, account->name, &message);
  gint64 since = 0;
  gint64 next_attempt = 0;
  GVariantDict dict;

  g_variant_dict_init (&dict, settings);
  g_variant_dict_insert (&dict, "needs-password", "b",
                         state == OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD);
  g_variant_dict_insert (&dict, "state", "s", outbox_account_state_to_string (state));
  if (message != NULL)
    g_variant_dict_insert (&dict, "state-message", "s", message);
  if (outbox_delivery_get_account_failure (self->delivery, account->name, &since, &next_attempt))
    {
      g_variant_dict_insert (&dict, "failing-since", "x", since);
      if (next_attempt != 0)
        g_variant_dict_insert (&dict, "next-attempt", "x", next_attempt);
    }
  return g_variant_dict_end (&dict);
}

static gboolean
handle_list (OutboxDbusAccounts *object, GDBusMethodInvocation *invocation)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  GPtrArray *accounts = outbox_account_store_list (self->accounts);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < accounts->len; i++)
    g_variant_builder_add_value (&builder,
                                 account_to_variant (self, g_ptr_array_index (accounts, i)));
  outbox_dbus_accounts_complete_list (object, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* AccountChanged
 *
 * One call can change two accounts (the default moves from one to the
 * other), and one failing delivery changes its account's state once per
 * connection, then again on the next attempt.  So the changes of one
 * account within CHANGE_WINDOW_MS are told once, by a signal that carries
 * its state and dictionary at the end of the window, as List() would give
 * them then.  An account that is gone by then is told "removed" when
 * Remove() took it, and not at all otherwise (a queued message may name
 * an account that never was). */

#define CHANGE_WINDOW_MS 50

static void
emit_account_change (OutboxAccountsService *self, const char *name, gboolean removed)
{
  OutboxDbusAccounts *object = OUTBOX_DBUS_ACCOUNTS (self);
  const OutboxAccountConfig *account = outbox_account_store_lookup (self->accounts, name);
  OutboxAccountState state;

  if (account == NULL)
    {
      if (removed)
        outbox_dbus_accounts_emit_account_changed (
            object, name, "removed", g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
      return;
    }
  state = outbox_delivery_get_account_state (self->delivery, name, NULL);
  outbox_dbus_accounts_emit_account_changed (object, name, outbox_account_state_to_string (state),
                                             account_to_variant (self, account));
}

void
outbox_accounts_service_flush_changes (OutboxAccountsService *self)
{
  g_autoptr (GList) names = g_hash_table_get_keys (self->changes);

  g_clear_handle_id (&self->flush_id, g_source_remove);
  names = g_list_sort (names, (GCompareFunc) g_strcmp0);
  for (GList *l = names; l != NULL; l = l->next)
    emit_account_change (self, l->data,
                         GPOINTER_TO_INT (g_hash_table_lookup (self->changes, l->data)));
  g_hash_table_remove_all (self->changes);
}

static gboolean
flush_changes_timeout (gpointer user_data)
{
  OutboxAccountsService *self = user_data;

  self->flush_id = 0;
  outbox_accounts_service_flush_changes (self);
  return G_SOURCE_REMOVE;
}

static void
note_account_changed (OutboxAccountsService *self, const char *name, gboolean removed)
{
  removed |= GPOINTER_TO_INT (g_hash_table_lookup (self->changes, name));
  g_hash_table_replace (self->changes, g_strdup (name), GINT_TO_POINTER (removed));
  if (self->flush_id == 0)
    self->flush_id = g_timeout_add (CHANGE_WINDOW_MS, flush_changes_timeout, self);
}

static void
on_account_state_changed (OutboxDelivery *delivery, const char *name, gpointer user_data)
{
  note_account_changed (user_data, name, FALSE);
}

/* (nullable) */
static char *
default_account_name (OutboxAccountsService *self)
{
  const OutboxAccountConfig *account = outbox_account_store_get_default (self->accounts);

  return account != NULL ? g_strdup (account->name) : NULL;
}

/* After a change of the store: the account that stopped being the
 * default (@before) and the one that became it changed too. */
static void
note_default_moved (OutboxAccountsService *self, const char *before)
{
  g_autofree char *after = default_account_name (self);

  if (g_strcmp0 (before, after) == 0)
    return;
  if (before != NULL)
    note_account_changed (self, before, FALSE);
  if (after != NULL)
    note_account_changed (self, after, FALSE);
}

/* Add and Update ------------------------------------------------------------
 *
 * An account linked to GNOME Online Accounts ("goa-id": its id or its
 * address) takes its address and servers from GOA when it is linked, and
 * what the caller gave explicitly (smtp, imap, from) overrides them: so one
 * can point a linked account at another host.  "goa-id" is stored as GOA's
 * id. */

typedef gboolean (*AccountChange) (OutboxAccountStore *store,
                                   const char *name,
                                   GVariant *settings,
                                   GError **error);

typedef struct
{
  OutboxAccountsService *self;       /* (owned) */
  GDBusMethodInvocation *invocation; /* (owned) */
  char *name;                        /* (owned) */
  GVariant *settings;                /* (owned) */
  AccountChange change;
  gboolean adding;
} AccountCall;

static void
account_call_free (AccountCall *call)
{
  g_object_unref (call->self);
  g_object_unref (call->invocation);
  g_free (call->name);
  g_variant_unref (call->settings);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AccountCall, account_call_free)

static void
account_call_apply (AccountCall *call, GVariant *settings)
{
  g_autofree char *default_before = default_account_name (call->self);
  GError *error = NULL;

  if (!call->change (call->self->accounts, call->name, settings, &error))
    {
      outbox_dbus_return_error (call->invocation, error);
      return;
    }
  g_info ("Account %s %s", call->name, call->adding ? "added" : "updated");
  g_dbus_method_invocation_return_value (call->invocation, NULL);
  note_account_changed (call->self, call->name, FALSE);
  note_default_moved (call->self, default_before);
  outbox_delivery_account_changed (call->self->delivery, call->name);
}

static void
insert_unless_given (GVariantDict *dict, GVariant *given, const char *key, const char *value)
{
  if (value != NULL && !g_variant_lookup (given, key, "&s", NULL))
    g_variant_dict_insert (dict, key, "s", value);
}

static GVariant *
merge_goa_settings (GVariant *given, const OutboxGoaMailAccount *found)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, given);
  g_variant_dict_insert (&dict, "goa-id", "s", found->id);
  insert_unless_given (&dict, given, "from", found->address);
  insert_unless_given (&dict, given, "smtp", found->smtp);
  insert_unless_given (&dict, given, "imap", found->imap);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

static void
goa_client_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (AccountCall) call = user_data;
  g_autoptr (GObject) client = NULL;
  g_autoptr (OutboxGoaMailAccount) found = NULL;
  g_autoptr (GVariant) merged = NULL;
  const char *goa_id = NULL;
  GError *error = NULL;

  client = outbox_goa_client_get_finish (result, &error);
  g_variant_lookup (call->settings, "goa-id", "&s", &goa_id);
  if (client != NULL)
    found = outbox_goa_find_mail_account (client, goa_id, &error);
  if (found == NULL)
    {
      outbox_dbus_return_error (call->invocation,
                                g_error_new (OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT, "%s",
                                             error->message));
      g_error_free (error);
      return;
    }
  merged = merge_goa_settings (call->settings, found);
  account_call_apply (call, merged);
}

static gboolean
handle_account_change (OutboxAccountsService *self,
                       GDBusMethodInvocation *invocation,
                       const char *name,
                       GVariant *settings,
                       AccountChange change)
{
  AccountCall *call = g_new0 (AccountCall, 1);
  const char *goa_id = NULL;

  call->self = g_object_ref (self);
  call->invocation = g_object_ref (invocation);
  call->name = g_strdup (name);
  call->settings = g_variant_ref (settings);
  call->change = change;
  call->adding = change == outbox_account_store_add;
  if (g_variant_is_of_type (settings, G_VARIANT_TYPE_VARDICT)
      && g_variant_lookup (settings, "goa-id", "&s", &goa_id) && *goa_id != '\0')
    {
      outbox_goa_client_get_async (NULL, goa_client_ready, call);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  account_call_apply (call, settings);
  account_call_free (call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_add (OutboxDbusAccounts *object,
            GDBusMethodInvocation *invocation,
            const char *arg_name,
            GVariant *arg_settings)
{
  return handle_account_change (OUTBOX_ACCOUNTS_SERVICE (object), invocation, arg_name,
                                arg_settings, outbox_account_store_add);
}

static gboolean
handle_update (OutboxDbusAccounts *object,
               GDBusMethodInvocation *invocation,
               const char *arg_name,
               GVariant *arg_settings)
{
  return handle_account_change (OUTBOX_ACCOUNTS_SERVICE (object), invocation, arg_name,
                                arg_settings, outbox_account_store_update);
}

static guint
count_pending (OutboxQueue *queue, const char *account)
{
  g_autoptr (GPtrArray) records = outbox_queue_list (queue);
  guint n = 0;

  for (guint i = 0; i < records->len; i++)
    {
      const OutboxSpoolRecord *record = g_ptr_array_index (records, i);
      if (g_str_equal (record->account, account)
          && outbox_spool_state_is_pending (record->state))
        n++;
    }
  return n;
}

static void
clear_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  g_autoptr (GError) error = NULL;

  /* The account is gone from the file already; a password left behind in
   * the keyring is only worth a warning. */
  if (!outbox_secret_clear_account_finish (result, &error))
    g_warning ("Account removed, but its passwords could not be: %s", error->message);
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static gboolean
handle_remove (OutboxDbusAccounts *object, GDBusMethodInvocation *invocation, const char *arg_name)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  g_autofree char *default_before = default_account_name (self);
  GError *error = NULL;
  guint pending = count_pending (self->queue, arg_name);

  if (pending > 0 && outbox_account_store_lookup (self->accounts, arg_name) != NULL)
    {
      outbox_dbus_return_error (
          invocation, g_error_new (OUTBOX_ERROR, OUTBOX_ERROR_INVALID_STATE,
                                   "%u message(s) are queued for account “%s”; cancel them "
                                   "(see outbox queue) or let them go out first",
                                   pending, arg_name));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (!outbox_account_store_remove (self->accounts, arg_name, &error))
    {
      outbox_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_info ("Account %s removed", arg_name);
  note_account_changed (self, arg_name, TRUE);
  note_default_moved (self, default_before);
  outbox_secret_clear_account_async (arg_name, NULL, clear_done, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  OutboxAccountsService *self;       /* (owned) */
  GDBusMethodInvocation *invocation; /* (owned) */
  char *account;                     /* (owned) */
} SetPasswordData;

static void
set_password_data_free (SetPasswordData *data)
{
  g_object_unref (data->self);
  g_object_unref (data->invocation);
  g_free (data->account);
  g_free (data);
}

static void
store_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SetPasswordData *data = user_data;
  GError *error = NULL;

  if (!outbox_secret_store_finish (result, &error))
    outbox_dbus_return_error (data->invocation, error);
  else
    {
      g_info ("Secret stored for account %s", data->account);
      outbox_dbus_accounts_complete_set_password (OUTBOX_DBUS_ACCOUNTS (data->self),
                                                  data->invocation);
      note_account_changed (data->self, data->account, FALSE);
      outbox_delivery_account_changed (data->self->delivery, data->account);
    }
  set_password_data_free (data);
}

static const OutboxServerUrl *
account_url_for_service (const OutboxAccountConfig *account, const char *service)
{
  if (g_str_equal (service, "smtp"))
    return account->smtp;
  if (g_str_equal (service, "imap"))
    return account->imap;
  if (g_str_equal (service, "pop3"))
    return account->pop3;
  return NULL;
}

/* Secrets of the account that belong to no server. */
static gboolean
service_is_oauth2 (const char *service)
{
  return g_str_equal (service, "oauth2") || g_str_equal (service, "oauth2-client");
}

static gboolean
check_password_args (const OutboxAccountConfig *account,
                     const char *name,
                     const char *service,
                     const char *secret,
                     GError **error)
{
  if (account == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT,
                   "No account named “%s”; see outbox account list", name);
      return FALSE;
    }
  if (!g_str_equal (service, "smtp") && !g_str_equal (service, "imap")
      && !g_str_equal (service, "pop3") && !service_is_oauth2 (service))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Unknown service “%s”; use smtp, imap, pop3, oauth2 (a refresh token) or "
                   "oauth2-client (a client secret)",
                   service);
      return FALSE;
    }
  if (service_is_oauth2 (service) && account->oauth2 == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Account “%s” does not sign in with OAuth2; set it up with outbox account "
                   "update %s --oauth2 PROVIDER --client-id ID first",
                   name, name);
      return FALSE;
    }
  if (!service_is_oauth2 (service) && account_url_for_service (account, service) == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Account “%s” has no %s server; add its URL first", name, service);
      return FALSE;
    }
  if (*secret == '\0' || strlen (secret) > MAX_SECRET_LENGTH)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "The password must be 1 to %d octets long", MAX_SECRET_LENGTH);
      return FALSE;
    }
  return TRUE;
}

static gboolean
handle_set_password (OutboxDbusAccounts *object,
                     GDBusMethodInvocation *invocation,
                     const char *arg_name,
                     const char *arg_service,
                     const char *arg_secret)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  const OutboxAccountConfig *account = outbox_account_store_lookup (self->accounts, arg_name);
  SetPasswordData *data;
  GError *error = NULL;

  if (!check_password_args (account, arg_name, arg_service, arg_secret, &error))
    {
      outbox_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  data = g_new0 (SetPasswordData, 1);
  data->self = g_object_ref (self);
  data->invocation = g_object_ref (invocation);
  data->account = g_strdup (arg_name);
  if (service_is_oauth2 (arg_service))
    {
      /* A new grant: the access token kept in memory belongs to the old one. */
      outbox_credentials_forget_token (self->credentials, account);
      outbox_secret_store_service_async (arg_name, arg_service, arg_secret, NULL, store_done, data);
    }
  else
    outbox_secret_store_async (arg_name, account_url_for_service (account, arg_service),
                               arg_secret, NULL, store_done, data);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
check_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  OutboxDbusAccounts *object = g_object_get_data (G_OBJECT (invocation), "outbox-object");
  g_autoptr (GVariant) results = NULL;
  GError *error = NULL;

  results = outbox_account_check_finish (result, &error);
  if (results == NULL)
    outbox_dbus_return_error (invocation, error);
  else
    outbox_dbus_accounts_complete_test (object, invocation, results);
}

static gboolean
handle_test (OutboxDbusAccounts *object, GDBusMethodInvocation *invocation, const char *arg_name)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  const OutboxAccountConfig *account = outbox_account_store_lookup (self->accounts, arg_name);

  if (account == NULL)
    {
      outbox_dbus_return_error (invocation,
                                g_error_new (OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT,
                                             "No account named “%s”; see outbox account list",
                                             arg_name));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_object_set_data_full (G_OBJECT (invocation), "outbox-object", g_object_ref (self),
                          g_object_unref);
  outbox_account_check_async (account, self->credentials, NULL, check_done,
                              g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Discovery ------------------------------------------------------------
 *
 * Each Discover call runs outbox-discover-helper, which lies next to the
 * daemon's own executable (both in libexecdir once installed, both in the
 * build tree's daemon/ before): discovery needs libsoup, which the daemon
 * does not load.  The helper shares the daemon's environment and standard
 * error, so its log messages end where the daemon's do; on standard output
 * it answers with the settings (exit 0) or the error (exit 1), see
 * outbox-discover-helper.c. */

#define DISCOVER_HELPER_NAME "outbox-discover-helper"
/* Discovery has no deadline of its own: the SRV lookups take what the
 * resolver takes, then each of the two autoconfig URLs up to its timeout. */
#define DISCOVER_HELPER_TIMEOUT_S (2 * OUTBOX_DISCOVER_HTTP_TIMEOUT + 60)

typedef struct
{
  OutboxDbusAccounts *object;        /* (owned) */
  GDBusMethodInvocation *invocation; /* (owned) */
  GSubprocess *helper;               /* (owned) */
  GCancellable *cancellable;         /* (owned) cancelled by the timeout */
  GSource *timeout;                  /* (owned) */
  gboolean timed_out;
} DiscoverCall;

static void
discover_call_free (DiscoverCall *call)
{
  g_source_destroy (call->timeout);
  g_source_unref (call->timeout);
  g_object_unref (call->cancellable);
  g_object_unref (call->helper);
  g_object_unref (call->invocation);
  g_object_unref (call->object);
  g_free (call);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DiscoverCall, discover_call_free)

static gboolean
on_discover_timeout (gpointer user_data)
{
  DiscoverCall *call = user_data;

  call->timed_out = TRUE;
  g_subprocess_force_exit (call->helper);
  g_cancellable_cancel (call->cancellable);
  return G_SOURCE_REMOVE;
}

/* Rebuilds the error the helper printed as "DOMAIN\nCODE\nMESSAGE".  Only
 * Outbox's own errors keep their code: any other becomes
 * OUTBOX_ERROR_FAILED, as at the D-Bus edge anyway. */
static GError *
discover_helper_error (const char *output)
{
  g_auto (GStrv) parts = g_strsplit (output, "\n", 3);
  gint64 code = OUTBOX_ERROR_FAILED;

  if (g_strv_length (parts) != 3)
    return g_error_new_literal (OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                                "Discovery failed without saying why");
  if (g_quark_try_string (parts[0]) != OUTBOX_ERROR
      || !g_ascii_string_to_signed (parts[1], 10, 0, OUTBOX_ERROR_N_ERRORS - 1, &code, NULL))
    code = OUTBOX_ERROR_FAILED;
  return g_error_new_literal (OUTBOX_ERROR, (int) code, parts[2]);
}

static GVariant *
discover_helper_settings (const char *output, GError **error)
{
  g_autoptr (GError) parse_error = NULL;
  GVariant *settings = g_variant_parse (G_VARIANT_TYPE_VARDICT, output, NULL, NULL, &parse_error);

  if (settings == NULL)
    g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                 "The discovery helper answered something that is not settings: %s",
                 parse_error->message);
  return settings;
}

static GVariant *
discover_helper_outcome (DiscoverCall *call, const char *output, GError **error)
{
  if (g_subprocess_get_if_signaled (call->helper))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                   "The discovery helper was killed by signal %d",
                   g_subprocess_get_term_sig (call->helper));
      return NULL;
    }
  switch (g_subprocess_get_exit_status (call->helper))
    {
    case EXIT_SUCCESS:
      return discover_helper_settings (output, error);
    case EXIT_FAILURE:
      g_propagate_error (error, discover_helper_error (output));
      return NULL;
    default:
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                   "The discovery helper exited with status %d",
                   g_subprocess_get_exit_status (call->helper));
      return NULL;
    }
}

static void
discover_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (DiscoverCall) call = user_data;
  g_autoptr (GVariant) settings = NULL;
  g_autoptr (GError) read_error = NULL;
  g_autofree char *output = NULL;
  GError *error = NULL;

  if (call->timed_out)
    error = g_error_new (OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                         "Discovery took longer than %d s and was stopped",
                         DISCOVER_HELPER_TIMEOUT_S);
  else if (!g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &output, NULL,
                                                  &read_error))
    error = g_error_new (OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                         "Cannot read the discovery helper's answer: %s", read_error->message);
  else
    settings = discover_helper_outcome (call, output, &error);

  if (settings == NULL)
    outbox_dbus_return_error (call->invocation, error);
  else
    outbox_dbus_accounts_complete_discover (call->object, call->invocation, settings);
}

static GSubprocess *
discover_helper_spawn (const char *address, GError **error)
{
  g_autoptr (GError) spawn_error = NULL;
  g_autofree char *path = outbox_helper_path (DISCOVER_HELPER_NAME, error);
  const char *argv[5];
  guint argc = 0;
  GSubprocess *helper;

  if (path == NULL)
    return NULL;
  argv[argc++] = path;
  if (g_log_get_debug_enabled ())
    argv[argc++] = "--verbose";
  /* The address goes as one argument, after "--": never through a shell,
   * never taken for an option. */
  argv[argc++] = "--";
  argv[argc++] = address;
  argv[argc] = NULL;
  helper = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &spawn_error);
  if (helper == NULL)
    g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED, "Cannot run the discovery helper %s: %s",
                 path, spawn_error->message);
  return helper;
}

static gboolean
handle_discover (OutboxDbusAccounts *object,
                 GDBusMethodInvocation *invocation,
                 const char *arg_address)
{
  DiscoverCall *call;
  GSubprocess *helper;
  GError *error = NULL;

  helper = discover_helper_spawn (arg_address, &error);
  if (helper == NULL)
    {
      outbox_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  call = g_new0 (DiscoverCall, 1);
  call->object = g_object_ref (object);
  call->invocation = g_object_ref (invocation);
  call->helper = helper;
  call->cancellable = g_cancellable_new ();
  call->timeout = g_timeout_source_new_seconds (DISCOVER_HELPER_TIMEOUT_S);
  g_source_set_callback (call->timeout, on_discover_timeout, call, NULL);
  g_source_attach (call->timeout, g_main_context_get_thread_default ());
  g_subprocess_communicate_utf8_async (helper, NULL, call->cancellable, discover_done, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
outbox_accounts_service_iface_init (OutboxDbusAccountsIface *iface)
{
  iface->handle_discover = handle_discover;
  iface->handle_test = handle_test;
  iface->handle_list = handle_list;
  iface->handle_add = handle_add;
  iface->handle_update = handle_update;
  iface->handle_remove = handle_remove;
  iface->handle_set_password = handle_set_password;
}

static void
outbox_accounts_service_dispose (GObject *object)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);

  if (self->delivery != NULL)
    g_clear_signal_handler (&self->state_handler, self->delivery);
  /* Exported no more: nobody is left to tell (see
   * outbox_accounts_service_flush_changes()). */
  g_clear_handle_id (&self->flush_id, g_source_remove);
  g_clear_pointer (&self->changes, g_hash_table_unref);
  G_OBJECT_CLASS (outbox_accounts_service_parent_class)->dispose (object);
}

static void
outbox_accounts_service_finalize (GObject *object)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);

  g_clear_object (&self->queue);
  g_clear_object (&self->delivery);
  g_clear_object (&self->credentials);
  G_OBJECT_CLASS (outbox_accounts_service_parent_class)->finalize (object);
}

/* Calls go through the load gate (outbox-load-gate.h). */
static GDBusInterfaceVTable *
outbox_accounts_service_get_vtable (GDBusInterfaceSkeleton *skeleton)
{
  GDBusInterfaceSkeletonClass *parent = G_DBUS_INTERFACE_SKELETON_CLASS (outbox_accounts_service_parent_class);

  return outbox_load_gate_get_vtable (skeleton, parent->get_vtable (skeleton));
}

static void
outbox_accounts_service_class_init (OutboxAccountsServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = outbox_accounts_service_dispose;
  G_OBJECT_CLASS (klass)->finalize = outbox_accounts_service_finalize;
  G_DBUS_INTERFACE_SKELETON_CLASS (klass)->get_vtable = outbox_accounts_service_get_vtable;
}

static void
outbox_accounts_service_init (OutboxAccountsService *self)
{
}

OutboxAccountsService *
outbox_accounts_service_new (OutboxAccountStore *accounts,
                             OutboxQueue *queue,
                             OutboxDelivery *delivery,
                             OutboxCredentials *credentials)
{
  OutboxAccountsService *self = g_object_new (OUTBOX_TYPE_ACCOUNTS_SERVICE, NULL);

  self->credentials = g_object_ref (credentials);
  self->accounts = accounts;
  self->queue = g_object_ref (queue);
  self->delivery = g_object_ref (delivery);
  outbox_dbus_accounts_set_version (OUTBOX_DBUS_ACCOUNTS (self), 1);
  self->changes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->state_handler = g_signal_connect (delivery, "account-state-changed",
                                          G_CALLBACK (on_account_state_changed), self);
  return self;
}
