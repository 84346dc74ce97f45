/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-error.h"
#include "outbox-secret.h"

const SecretSchema *
outbox_secret_get_schema (void)
{
  static const SecretSchema schema = {
    "org.outbox.Password",
    SECRET_SCHEMA_NONE,
    {
        { "account", SECRET_SCHEMA_ATTRIBUTE_STRING },
        { "service", SECRET_SCHEMA_ATTRIBUTE_STRING },
        { "user", SECRET_SCHEMA_ATTRIBUTE_STRING },
        { "host", SECRET_SCHEMA_ATTRIBUTE_STRING },
        { NULL, 0 },
    },
  };
  return &schema;
}

/* libsecret keeps the table (and reads its values) after the call that
 * was given it returns, so the table owns copies of its values. */
static GHashTable *
secret_attributes_new (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
}

static GHashTable *
service_attributes (const char *account, const char *service)
{
  GHashTable *attributes = secret_attributes_new ();

  g_hash_table_insert (attributes, "account", g_strdup (account));
  g_hash_table_insert (attributes, "service", g_strdup (service));
  return attributes;
}

static GHashTable *
secret_attributes (const char *account, const OutboxServerUrl *url)
{
  GHashTable *attributes = service_attributes (account, outbox_protocol_to_string (url->protocol));

  g_hash_table_insert (attributes, "user", g_strdup (url->user ? url->user : ""));
  g_hash_table_insert (attributes, "host", g_strdup (url->host));
  return attributes;
}

/* The Secret Service's own errors say little to a person; say which
 * password was involved and where to look. */
static void
propagate_secret_error (GError **error, GError *secret_error, const char *what)
{
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_SECRET_FAILED,
               "Cannot %s in the Secret Service (is a keyring such as gnome-keyring running and "
               "unlocked?): %s",
               what, secret_error->message);
  g_error_free (secret_error);
}

static void
store_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  if (!secret_password_store_finish (result, &error))
    {
      GError *wrapped = NULL;
      propagate_secret_error (&wrapped, error, "store the password");
      g_task_return_error (task, wrapped);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
store_attributes (GHashTable *attributes,
                  const char *label,
                  const char *secret,
                  GCancellable *cancellable,
                  GAsyncReadyCallback callback,
                  gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, outbox_secret_store_async);
  secret_password_storev (outbox_secret_get_schema (), attributes, SECRET_COLLECTION_DEFAULT, label,
                          secret, cancellable, store_done, g_steal_pointer (&task));
}

void
outbox_secret_store_async (const char *account,
                           const OutboxServerUrl *url,
                           const char *password,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr (GHashTable) attributes = secret_attributes (account, url);
  g_autofree char *label = NULL;

  label = g_strdup_printf ("Outbox %s password for %s%s%s (account %s)",
                           outbox_protocol_to_string (url->protocol), url->user ? url->user : "",
                           url->user ? "@" : "", url->host, account);
  store_attributes (attributes, label, password, cancellable, callback, user_data);
}

void
outbox_secret_store_service_async (const char *account,
                                   const char *service,
                                   const char *secret,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr (GHashTable) attributes = service_attributes (account, service);
  g_autofree char *label = g_strdup_printf ("Outbox %s for account %s",
                                            g_str_equal (service, "oauth2")
                                                ? "OAuth2 refresh token"
                                                : "OAuth2 client secret",
                                            account);

  store_attributes (attributes, label, secret, cancellable, callback, user_data);
}

gboolean
outbox_secret_store_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* The password of the first item found, as nonpageable memory; NULL when
 * there is none or it is not text, as secret_password_lookup() would. */
static char *
take_password (GList *items)
{
  SecretValue *value;
  gsize length = 0;

  if (items == NULL)
    return NULL;
  value = secret_item_get_secret (items->data);
  if (value == NULL)
    return NULL;
  if (secret_value_get_text (value) == NULL)
    {
      secret_value_unref (value);
      return NULL;
    }
  return secret_value_unref_to_password (value, &length);
}

static void
lookup_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  GList *items = secret_service_search_finish (NULL, result, &error);

  if (error != NULL)
    {
      GError *wrapped = NULL;
      propagate_secret_error (&wrapped, error, "look up the password");
      g_task_return_error (task, wrapped);
      return;
    }
  g_task_return_pointer (task, take_password (items), (GDestroyNotify) secret_password_free);
  g_list_free_full (items, g_object_unref);
}

/* A search that loads the secret, rather than secret_password_lookupv(),
 * which in libsecret 0.20.5 (Debian 12) leaks the D-Bus reply carrying the
 * secret, about 1 KiB per lookup.  SECRET_SEARCH_UNLOCK unlocks the item
 * as the lookup would. */
static void
lookup_attributes (GHashTable *attributes,
                   GCancellable *cancellable,
                   GAsyncReadyCallback callback,
                   gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, outbox_secret_lookup_async);
  secret_service_search (NULL, outbox_secret_get_schema (), attributes,
                         SECRET_SEARCH_LOAD_SECRETS | SECRET_SEARCH_UNLOCK, cancellable,
                         lookup_done, g_steal_pointer (&task));
}

void
outbox_secret_lookup_async (const char *account,
                            const OutboxServerUrl *url,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer user_data)
{
  g_autoptr (GHashTable) attributes = secret_attributes (account, url);

  lookup_attributes (attributes, cancellable, callback, user_data);
}

void
outbox_secret_lookup_service_async (const char *account,
                                    const char *service,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_autoptr (GHashTable) attributes = service_attributes (account, service);

  lookup_attributes (attributes, cancellable, callback, user_data);
}

char *
outbox_secret_lookup_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
clear_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;

  /* FALSE without an error only means there was nothing to remove. */
  if (!secret_password_clear_finish (result, &error) && error != NULL)
    {
      GError *wrapped = NULL;
      propagate_secret_error (&wrapped, error, "remove the passwords");
      g_task_return_error (task, wrapped);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

void
outbox_secret_clear_account_async (const char *account,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GHashTable) attributes = secret_attributes_new ();

  g_task_set_source_tag (task, outbox_secret_clear_account_async);
  g_hash_table_insert (attributes, "account", g_strdup (account));
  secret_password_clearv (outbox_secret_get_schema (), attributes, cancellable, clear_done,
                          g_steal_pointer (&task));
}

gboolean
outbox_secret_clear_account_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
