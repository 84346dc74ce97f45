/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#define GOA_API_IS_SUBJECT_TO_CHANGE
#include <goa/goa.h>
#include <string.h>

#include "outbox-goa.h"

G_DEFINE_QUARK (outbox-goa-error-quark, outbox_goa_error)

void
outbox_goa_mail_account_free (OutboxGoaMailAccount *account)
{
  if (account == NULL)
    return;
  g_free (account->id);
  g_free (account->provider);
  g_free (account->address);
  g_free (account->smtp);
  g_free (account->imap);
  g_free (account);
}

/* The client ------------------------------------------------------------- */

static GoaClient *shared_client;

static void
set_unavailable (GError **error, GError *goa_error)
{
  g_set_error (error, OUTBOX_GOA_ERROR, OUTBOX_GOA_ERROR_UNAVAILABLE,
               "GNOME Online Accounts is not running on this session bus: %s", goa_error->message);
  g_error_free (goa_error);
}

GObject *
outbox_goa_client_get_sync (GError **error)
{
  GError *goa_error = NULL;
  GoaClient *client = goa_client_new_sync (NULL, &goa_error);

  if (client == NULL)
    set_unavailable (error, goa_error);
  return G_OBJECT (client);
}

static void
client_made (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  GoaClient *client = goa_client_new_finish (result, &error);

  if (client == NULL)
    {
      GError *unavailable = NULL;

      set_unavailable (&unavailable, error);
      g_task_return_error (task, unavailable);
      return;
    }
  if (shared_client == NULL)
    shared_client = g_object_ref (client);
  g_task_return_pointer (task, client, g_object_unref);
}

void
outbox_goa_client_get_async (GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);

  g_task_set_source_tag (task, outbox_goa_client_get_async);
  if (shared_client != NULL)
    {
      g_task_return_pointer (task, g_object_ref (shared_client), g_object_unref);
      return;
    }
  goa_client_new (cancellable, client_made, g_steal_pointer (&task));
}

GObject *
outbox_goa_client_get_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_goa_client_get_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Mail settings as URLs ---------------------------------------------------
 *
 * GOA gives a host ("mail.example.org" or "mail.example.org:587"), whether
 * to use implicit TLS or STARTTLS, and a user name; Outbox's URLs say the
 * same.  A server GOA reaches without TLS stays without it, which Outbox
 * only accepts for loopback addresses when a password goes along. */

static char *
server_url (const char *scheme, const char *host, gboolean use_ssl, gboolean use_tls, const char *user)
{
  g_autofree char *escaped = NULL;

  if (host == NULL || *host == '\0')
    return NULL;
  escaped = user != NULL && *user != '\0' ? g_uri_escape_string (user, NULL, FALSE) : NULL;
  return g_strdup_printf ("%s%s://%s%s%s", scheme,
                          use_ssl   ? "s"
                          : use_tls ? ""
                                    : "+insecure",
                          escaped != NULL ? escaped : "", escaped != NULL ? "@" : "", host);
}

static OutboxGoaMailAccount *
mail_account_new (GoaObject *object)
{
  g_autoptr (GoaAccount) account = goa_object_get_account (object);
  g_autoptr (GoaMail) mail = goa_object_get_mail (object);
  OutboxGoaMailAccount *found;

  if (account == NULL || mail == NULL)
    return NULL;
  found = g_new0 (OutboxGoaMailAccount, 1);
  found->id = g_strdup (goa_account_get_id (account));
  found->provider = g_strdup (goa_account_get_provider_name (account));
  found->address = g_strdup (goa_mail_get_email_address (mail));
  if (goa_mail_get_smtp_supported (mail))
    found->smtp = server_url ("smtp", goa_mail_get_smtp_host (mail), goa_mail_get_smtp_use_ssl (mail),
                              goa_mail_get_smtp_use_tls (mail), goa_mail_get_smtp_user_name (mail));
  if (goa_mail_get_imap_supported (mail))
    found->imap = server_url ("imap", goa_mail_get_imap_host (mail), goa_mail_get_imap_use_ssl (mail),
                              goa_mail_get_imap_use_tls (mail), goa_mail_get_imap_user_name (mail));
  found->usable = !goa_account_get_mail_disabled (account) &&
                  !goa_account_get_attention_needed (account);
  return found;
}

static int
compare_by_address (gconstpointer a, gconstpointer b)
{
  const OutboxGoaMailAccount *aa = *(OutboxGoaMailAccount *const *) a;
  const OutboxGoaMailAccount *bb = *(OutboxGoaMailAccount *const *) b;

  return g_strcmp0 (aa->address, bb->address);
}

GPtrArray *
outbox_goa_list_mail_accounts (GObject *client)
{
  GPtrArray *found = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_goa_mail_account_free);
  GList *objects = goa_client_get_accounts (GOA_CLIENT (client));

  for (GList *l = objects; l != NULL; l = l->next)
    {
      OutboxGoaMailAccount *account = mail_account_new (l->data);

      if (account != NULL)
        g_ptr_array_add (found, account);
    }
  g_list_free_full (objects, g_object_unref);
  g_ptr_array_sort (found, compare_by_address);
  return found;
}

static gboolean
matches (GoaObject *object, const char *id_or_address)
{
  g_autoptr (GoaAccount) account = goa_object_get_account (object);
  g_autoptr (GoaMail) mail = goa_object_get_mail (object);

  if (account == NULL || mail == NULL)
    return FALSE;
  return g_strcmp0 (goa_account_get_id (account), id_or_address) == 0 ||
         g_ascii_strcasecmp (goa_mail_get_email_address (mail), id_or_address) == 0;
}

static GoaObject *
find_object (GObject *client, const char *id_or_address)
{
  GList *objects = goa_client_get_accounts (GOA_CLIENT (client));
  GoaObject *found = NULL;

  for (GList *l = objects; l != NULL && found == NULL; l = l->next)
    {
      if (matches (l->data, id_or_address))
        found = g_object_ref (l->data);
    }
  g_list_free_full (objects, g_object_unref);
  return found;
}

static void
set_not_found (GError **error, const char *id_or_address)
{
  g_set_error (error, OUTBOX_GOA_ERROR, OUTBOX_GOA_ERROR_NOT_FOUND,
               "There is no mail account “%s” in GNOME Online Accounts (it may have been "
               "removed); see outbox account list --goa, or add it in Settings → Online "
               "Accounts",
               id_or_address);
}

OutboxGoaMailAccount *
outbox_goa_find_mail_account (GObject *client, const char *id_or_address, GError **error)
{
  g_autoptr (GoaObject) object = find_object (client, id_or_address);

  if (object == NULL)
    {
      set_not_found (error, id_or_address);
      return NULL;
    }
  return mail_account_new (object);
}

/* Secrets ----------------------------------------------------------------- */

typedef struct
{
  GoaObject *object; /* (owned) */
  OutboxProtocol service;
  OutboxSaslSecretKind kind; /* of the secret GOA gave */
} SecretRequest;

static void
secret_request_free (SecretRequest *request)
{
  g_object_unref (request->object);
  g_free (request);
}


static gboolean
check_mail_on (GoaObject *object, const char *goa_id, GError **error)
{
  g_autoptr (GoaAccount) account = goa_object_get_account (object);

  if (goa_account_get_mail_disabled (account))
    {
      g_set_error (error, OUTBOX_GOA_ERROR, OUTBOX_GOA_ERROR_NO_MAIL,
                   "Mail is switched off for the GNOME Online Accounts account %s (%s); switch "
                   "it on in Settings → Online Accounts",
                   goa_account_get_presentation_identity (account), goa_id);
      return FALSE;
    }
  return TRUE;
}

static void
secret_failed (GTask *task, GError *error)
{
  g_task_return_new_error (task, OUTBOX_GOA_ERROR, OUTBOX_GOA_ERROR_FAILED,
                           "GNOME Online Accounts could not give the account's credentials: %s",
                           error->message);
  g_error_free (error);
}

static void
token_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  char *token = NULL;
  GError *error = NULL;

  if (!goa_oauth2_based_call_get_access_token_finish (GOA_OAUTH2_BASED (source), &token, NULL,
                                                      result, &error))
    {
      secret_failed (task, error);
      return;
    }
  ((SecretRequest *) g_task_get_task_data (task))->kind = OUTBOX_SASL_SECRET_TOKEN;
  g_task_return_pointer (task, token, g_free);
}

static void
password_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  char *password = NULL;
  GError *error = NULL;

  if (!goa_password_based_call_get_password_finish (GOA_PASSWORD_BASED (source), &password,
                                                    result, &error))
    {
      secret_failed (task, error);
      return;
    }
  ((SecretRequest *) g_task_get_task_data (task))->kind = OUTBOX_SASL_SECRET_PASSWORD;
  g_task_return_pointer (task, password, g_free);
}

static void
ask_for_secret (GTask *task)
{
  SecretRequest *request = g_task_get_task_data (task);
  g_autoptr (GoaOAuth2Based) oauth2 = goa_object_get_oauth2_based (request->object);
  g_autoptr (GoaPasswordBased) password = goa_object_get_password_based (request->object);
  /* GOA's imap_smtp provider keeps one password per protocol. */
  const char *password_id =
      request->service == OUTBOX_PROTOCOL_SMTP ? "smtp-password" : "imap-password";

  if (oauth2 != NULL)
    goa_oauth2_based_call_get_access_token (oauth2, g_task_get_cancellable (task), token_got,
                                            g_object_ref (task));
  else if (password != NULL)
    goa_password_based_call_get_password (password, password_id, g_task_get_cancellable (task),
                                          password_got, g_object_ref (task));
  else
    g_task_return_new_error (task, OUTBOX_GOA_ERROR, OUTBOX_GOA_ERROR_FAILED,
                             "This GNOME Online Accounts account signs in in a way Outbox cannot "
                             "use (neither a password nor OAuth2)");
}

static void
credentials_ensured (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (GError) error = NULL;
  GoaAccount *account = GOA_ACCOUNT (source);

  if (!goa_account_call_ensure_credentials_finish (account, NULL, result, &error))
    {
      g_task_return_new_error (task, OUTBOX_GOA_ERROR, OUTBOX_GOA_ERROR_ATTENTION,
                               "GNOME Online Accounts needs you to sign in to %s again; do it in "
                               "Settings → Online Accounts",
                               goa_account_get_presentation_identity (account));
      return;
    }
  ask_for_secret (task);
}

/* GOA marks an account as needing attention when its own check of the
 * credentials failed; asking it to check again (as Settings does) clears
 * the mark once the user has put things right. */
void
outbox_goa_get_secret_async (GObject *client,
                             const char *goa_id,
                             OutboxProtocol service,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GoaObject) object = find_object (client, goa_id);
  g_autoptr (GoaAccount) account = NULL;
  SecretRequest *request;
  GError *error = NULL;

  g_task_set_source_tag (task, outbox_goa_get_secret_async);
  if (object == NULL || goa_object_peek_mail (object) == NULL)
    {
      set_not_found (&error, goa_id);
      g_task_return_error (task, error);
      return;
    }
  if (!check_mail_on (object, goa_id, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  request = g_new0 (SecretRequest, 1);
  request->object = g_object_ref (object);
  request->service = service;
  g_task_set_task_data (task, request, (GDestroyNotify) secret_request_free);
  account = goa_object_get_account (object);
  if (goa_account_get_attention_needed (account))
    goa_account_call_ensure_credentials (account, cancellable, credentials_ensured,
                                         g_object_ref (task));
  else
    ask_for_secret (task);
}

char *
outbox_goa_get_secret_finish (GAsyncResult *result, OutboxSaslSecretKind *out_kind, GError **error)
{
  char *secret;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_goa_get_secret_async,
                        NULL);

  secret = g_task_propagate_pointer (G_TASK (result), error);
  if (secret != NULL && out_kind != NULL)
    *out_kind = ((SecretRequest *) g_task_get_task_data (G_TASK (result)))->kind;
  return secret;
}
