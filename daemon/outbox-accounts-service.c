/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-account-check.h"
#include "outbox-accounts-service.h"
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
};

static void outbox_accounts_service_iface_init (OutboxDbusAccountsIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OutboxAccountsService,
                               outbox_accounts_service,
                               OUTBOX_DBUS_TYPE_ACCOUNTS_SKELETON,
                               G_IMPLEMENT_INTERFACE (OUTBOX_DBUS_TYPE_ACCOUNTS,
                                                      outbox_accounts_service_iface_init))

static gboolean
handle_list (OutboxDbusAccounts *object, GDBusMethodInvocation *invocation)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  GPtrArray *accounts = outbox_account_store_list (self->accounts);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < accounts->len; i++)
    {
      const OutboxAccount *account = g_ptr_array_index (accounts, i);
      g_autoptr (GVariant) settings = g_variant_ref_sink (outbox_account_to_variant (account));
      GVariantDict dict;

      g_variant_dict_init (&dict, settings);
      g_variant_dict_insert (&dict, "needs-password", "b",
                             outbox_delivery_account_needs_password (self->delivery, account->name));
      g_variant_builder_add_value (&builder, g_variant_dict_end (&dict));
    }
  outbox_dbus_accounts_complete_list (object, invocation, g_variant_builder_end (&builder));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_add (OutboxDbusAccounts *object,
            GDBusMethodInvocation *invocation,
            const char *arg_name,
            GVariant *arg_settings)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  GError *error = NULL;

  if (!outbox_account_store_add (self->accounts, arg_name, arg_settings, &error))
    {
      outbox_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_info ("Account %s added", arg_name);
  outbox_dbus_accounts_complete_add (object, invocation);
  outbox_delivery_account_changed (self->delivery, arg_name);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_update (OutboxDbusAccounts *object,
               GDBusMethodInvocation *invocation,
               const char *arg_name,
               GVariant *arg_settings)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);
  GError *error = NULL;

  if (!outbox_account_store_update (self->accounts, arg_name, arg_settings, &error))
    {
      outbox_dbus_return_error (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_info ("Account %s updated", arg_name);
  outbox_dbus_accounts_complete_update (object, invocation);
  outbox_delivery_account_changed (self->delivery, arg_name);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
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
          && outbox_message_state_is_pending (record->state))
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
      g_info ("Password stored for account %s", data->account);
      outbox_dbus_accounts_complete_set_password (OUTBOX_DBUS_ACCOUNTS (data->self),
                                                  data->invocation);
      outbox_delivery_account_changed (data->self->delivery, data->account);
    }
  set_password_data_free (data);
}

static const OutboxServerUrl *
account_url_for_service (const OutboxAccount *account, const char *service)
{
  if (g_str_equal (service, "smtp"))
    return account->smtp;
  if (g_str_equal (service, "imap"))
    return account->imap;
  if (g_str_equal (service, "pop3"))
    return account->pop3;
  return NULL;
}

static gboolean
check_password_args (const OutboxAccount *account,
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
      && !g_str_equal (service, "pop3"))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Unknown service “%s”; use smtp, imap or pop3", service);
      return FALSE;
    }
  if (account_url_for_service (account, service) == NULL)
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
  const OutboxAccount *account = outbox_account_store_lookup (self->accounts, arg_name);
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
  outbox_secret_store_async (arg_name, account_url_for_service (account, arg_service), arg_secret,
                             NULL, store_done, data);
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
  const OutboxAccount *account = outbox_account_store_lookup (self->accounts, arg_name);

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
  outbox_account_check_async (account, NULL, check_done, g_object_ref (invocation));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
discover_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GDBusMethodInvocation) invocation = user_data;
  OutboxDbusAccounts *object = g_object_get_data (G_OBJECT (invocation), "outbox-object");
  g_autoptr (GVariant) settings = NULL;
  GError *error = NULL;

  settings = outbox_discover_finish (result, &error);
  if (settings == NULL)
    outbox_dbus_return_error (invocation, error);
  else
    outbox_dbus_accounts_complete_discover (object, invocation, settings);
}

static gboolean
handle_discover (OutboxDbusAccounts *object,
                 GDBusMethodInvocation *invocation,
                 const char *arg_address)
{
  g_object_set_data_full (G_OBJECT (invocation), "outbox-object", g_object_ref (object),
                          g_object_unref);
  outbox_discover_async (arg_address, NULL, NULL, discover_done, g_object_ref (invocation));
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
outbox_accounts_service_finalize (GObject *object)
{
  OutboxAccountsService *self = OUTBOX_ACCOUNTS_SERVICE (object);

  g_clear_object (&self->queue);
  g_clear_object (&self->delivery);
  G_OBJECT_CLASS (outbox_accounts_service_parent_class)->finalize (object);
}

static void
outbox_accounts_service_class_init (OutboxAccountsServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_accounts_service_finalize;
}

static void
outbox_accounts_service_init (OutboxAccountsService *self)
{
}

OutboxAccountsService *
outbox_accounts_service_new (OutboxAccountStore *accounts,
                             OutboxQueue *queue,
                             OutboxDelivery *delivery)
{
  OutboxAccountsService *self = g_object_new (OUTBOX_TYPE_ACCOUNTS_SERVICE, NULL);

  self->accounts = accounts;
  self->queue = g_object_ref (queue);
  self->delivery = g_object_ref (delivery);
  outbox_dbus_accounts_set_version (OUTBOX_DBUS_ACCOUNTS (self), 1);
  return self;
}
