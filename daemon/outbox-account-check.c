/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-account-check.h"
#include "outbox-credentials.h"
#include "outbox-imap.h"
#include "outbox-pop3.h"
#include "outbox-secret.h"
#include "outbox-smtp-session.h"
#include "outbox-tls.h"

/* Checks every server of an account at once and reports each on its own:
 * whether it was reached, how TLS went, what it offers and whether the login
 * worked, with the server's own words when it did not.  Nothing about one
 * server hides another's.  No message is sent: SMTP stops after AUTH. */

typedef struct
{
  OutboxAccountConfig *account; /* (owned) */
  OutboxCredentials *credentials; /* (owned) */
  GVariantDict results;   /* service name -> a{sv} */
  guint pending;
} CheckData;

typedef struct
{
  GTask *task;                  /* (owned) */
  const OutboxServerUrl *url;   /* (unowned) owned by the account in the task data */
  GObject *session;             /* (owned) (nullable) */
} ServerCheck;

static void
check_data_free (CheckData *data)
{
  outbox_account_config_free (data->account);
  g_object_unref (data->credentials);
  g_variant_dict_clear (&data->results);
  g_free (data);
}

static void
server_check_free (ServerCheck *check)
{
  g_clear_object (&check->session);
  g_object_unref (check->task);
  g_free (check);
}

static void
add_certificate (GVariantDict *dict, GTlsCertificate *certificate)
{
  g_autofree char *subject = NULL;
  g_autofree char *issuer = NULL;
  g_autoptr (GDateTime) not_after = NULL;
  g_autofree char *fingerprint = NULL;

  if (certificate == NULL)
    return;
  g_object_get (certificate, "subject-name", &subject, "issuer-name", &issuer, "not-valid-after",
                &not_after, NULL);
  if (subject != NULL)
    g_variant_dict_insert (dict, "tls-subject", "s", subject);
  if (issuer != NULL)
    g_variant_dict_insert (dict, "tls-issuer", "s", issuer);
  if (not_after != NULL)
    g_variant_dict_insert (dict, "tls-not-after", "x", g_date_time_to_unix (not_after));
  fingerprint = outbox_tls_certificate_fingerprint (certificate);
  g_variant_dict_insert (dict, "tls-fingerprint", "s", fingerprint);
}

static const char *
tls_description (const OutboxServerUrl *url)
{
  switch (url->security)
    {
    case OUTBOX_SECURITY_TLS:
      return "implicit TLS";
    case OUTBOX_SECURITY_STARTTLS:
      return "STARTTLS";
    case OUTBOX_SECURITY_INSECURE:
    default:
      return "none (plaintext)";
    }
}

static gboolean
error_is_login (const GError *error)
{
  return g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH)
         || g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE)
         || g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_DISABLED)
         || error->domain == OUTBOX_CREDENTIALS_ERROR;
}

/* What every service reports, whatever its protocol. */
static void
describe (GVariantDict *dict,
          const OutboxServerUrl *url,
          const GError *error,
          const char *server_text,
          GTlsCertificate *certificate,
          const char *const *capabilities,
          const char *const *ignored)
{
  g_autofree char *url_string = outbox_server_url_to_string (url);
  gboolean reached = error == NULL || server_text != NULL || certificate != NULL;
  const char *login;

  if (url->user == NULL)
    login = "not tried: the URL names no user";
  else if (error == NULL)
    login = "ok";
  else if (error_is_login (error))
    login = "failed";
  else
    login = "not reached";

  g_variant_dict_insert (dict, "url", "s", url_string);
  g_variant_dict_insert (dict, "ok", "b", error == NULL);
  g_variant_dict_insert (dict, "reached", "b", reached);
  g_variant_dict_insert (dict, "tls", "s", tls_description (url));
  g_variant_dict_insert (dict, "login", "s", login);
  add_certificate (dict, certificate);
  if (capabilities != NULL)
    g_variant_dict_insert (dict, "capabilities", "^as", (char **) capabilities);
  if (ignored != NULL && ignored[0] != NULL)
    g_variant_dict_insert (dict, "ignored", "^as", (char **) ignored);
  if (server_text != NULL)
    g_variant_dict_insert (dict, "server-reply", "s", server_text);
  if (error != NULL)
    g_variant_dict_insert (dict, "error", "s", error->message);
}

static void
check_finish_one (ServerCheck *check, GVariantDict *dict)
{
  CheckData *data = g_task_get_task_data (check->task);
  const char *service = outbox_protocol_to_string (check->url->protocol);

  g_variant_dict_insert_value (&data->results, service, g_variant_dict_end (dict));
  if (--data->pending == 0)
    g_task_return_pointer (check->task, g_variant_ref_sink (g_variant_dict_end (&data->results)),
                           (GDestroyNotify) g_variant_unref);
  server_check_free (check);
}

/* SMTP */

static GPtrArray *
smtp_capabilities (const OutboxSmtpCaps *caps)
{
  GPtrArray *list = g_ptr_array_new_with_free_func (g_free);
  static const struct
  {
    OutboxSmtpCapFlags flag;
    const char *name;
  } names[] = {
    { OUTBOX_SMTP_CAP_PIPELINING, "PIPELINING" },
    { OUTBOX_SMTP_CAP_8BITMIME, "8BITMIME" },
    { OUTBOX_SMTP_CAP_SMTPUTF8, "SMTPUTF8" },
    { OUTBOX_SMTP_CAP_STARTTLS, "STARTTLS" },
    { OUTBOX_SMTP_CAP_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES" },
    { OUTBOX_SMTP_CAP_CHUNKING, "CHUNKING" },
    { OUTBOX_SMTP_CAP_DSN, "DSN" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (caps->flags & names[i].flag)
      g_ptr_array_add (list, g_strdup (names[i].name));
  if (caps->flags & OUTBOX_SMTP_CAP_SIZE)
    g_ptr_array_add (list, g_strdup_printf ("SIZE %" G_GUINT64_FORMAT, caps->size_limit));
  if (caps->flags & OUTBOX_SMTP_CAP_AUTH)
    g_ptr_array_add (list, g_strdup_printf ("AUTH%s%s",
                                            caps->auth_mechs & OUTBOX_SMTP_AUTH_PLAIN ? " PLAIN" : "",
                                            caps->auth_mechs & OUTBOX_SMTP_AUTH_LOGIN ? " LOGIN" : ""));
  g_ptr_array_add (list, NULL);
  return list;
}

static void
smtp_open_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ServerCheck *check = user_data;
  OutboxSmtpSession *session = OUTBOX_SMTP_SESSION (source);
  const OutboxSmtpReply *reply = outbox_smtp_session_get_last_reply (session);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) caps = NULL;
  g_autofree char *reply_text = NULL;
  GVariantDict dict;

  outbox_session_open_finish (OUTBOX_SESSION (session), result, &error);
  caps = smtp_capabilities (outbox_smtp_session_get_caps (session));
  reply_text = reply ? outbox_smtp_reply_to_string (reply) : NULL;
  g_variant_dict_init (&dict, NULL);
  describe (&dict, check->url, error, reply_text,
            outbox_session_get_peer_certificate (OUTBOX_SESSION (session)),
            (const char *const *) caps->pdata, outbox_smtp_session_get_ignored_keywords (session));
  if (outbox_session_is_open (OUTBOX_SESSION (session)))
    outbox_session_quit_async (OUTBOX_SESSION (session), NULL, NULL, NULL);
  check_finish_one (check, &dict);
}

static void
smtp_start (ServerCheck *check, const OutboxAccountConfig *account, const OutboxSecret *secret)
{
  OutboxSmtpConfig config = {
    .url = account->smtp,
    .password = secret != NULL ? secret->secret : NULL,
    .secret_kind = secret != NULL ? secret->kind : outbox_credentials_kind_for (account),
    .auth_mech = account->auth,
    .tls_ca_file = account->tls_ca_file,
    .tls_fingerprint = account->tls_fingerprint,
    .timeouts = account->timeouts,
  };
  OutboxSmtpSession *session = outbox_smtp_session_new (&config);

  check->session = G_OBJECT (session);
  outbox_session_open_async (OUTBOX_SESSION (session), g_task_get_cancellable (check->task), smtp_open_done,
                                  check);
}

/* IMAP */

static void
imap_open_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ServerCheck *check = user_data;
  OutboxImapSession *session = OUTBOX_IMAP_SESSION (source);
  g_autoptr (GError) error = NULL;
  GVariantDict dict;

  outbox_session_open_finish (OUTBOX_SESSION (session), result, &error);
  g_variant_dict_init (&dict, NULL);
  describe (&dict, check->url, error, outbox_imap_session_get_last_server_text (session),
            outbox_session_get_peer_certificate (OUTBOX_SESSION (session)),
            outbox_imap_session_get_capabilities (session), NULL);
  if (outbox_session_is_open (OUTBOX_SESSION (session)))
    outbox_session_quit_async (OUTBOX_SESSION (session), NULL, NULL, NULL);
  check_finish_one (check, &dict);
}

static void
imap_start (ServerCheck *check, const OutboxAccountConfig *account, const OutboxSecret *secret)
{
  OutboxImapConfig config = {
    .url = account->imap,
    .password = secret != NULL ? secret->secret : NULL,
    .secret_kind = secret != NULL ? secret->kind : outbox_credentials_kind_for (account),
    .auth_mech = account->auth,
    .tls_ca_file = account->tls_ca_file,
    .tls_fingerprint = account->tls_fingerprint,
  };
  OutboxImapSession *session;

  outbox_imap_timeouts_init_default (&config.timeouts);
  session = outbox_imap_session_new (&config);
  check->session = G_OBJECT (session);
  outbox_session_open_async (OUTBOX_SESSION (session), g_task_get_cancellable (check->task),
                             imap_open_done, check);
}

/* POP3 */

static void
pop3_open_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ServerCheck *check = user_data;
  OutboxPop3Session *session = OUTBOX_POP3_SESSION (source);
  g_autoptr (GError) error = NULL;
  GVariantDict dict;

  outbox_session_open_finish (OUTBOX_SESSION (session), result, &error);
  g_variant_dict_init (&dict, NULL);
  describe (&dict, check->url, error, outbox_pop3_session_get_last_reply (session),
            outbox_session_get_peer_certificate (OUTBOX_SESSION (session)),
            outbox_pop3_session_get_capabilities (session), NULL);
  if (outbox_session_is_open (OUTBOX_SESSION (session)))
    outbox_session_quit_async (OUTBOX_SESSION (session), NULL, NULL, NULL);
  check_finish_one (check, &dict);
}

static void
pop3_start (ServerCheck *check, const OutboxAccountConfig *account, const OutboxSecret *secret)
{
  OutboxPop3Config config = {
    .url = account->pop3,
    .password = secret != NULL ? secret->secret : NULL,
    .secret_kind = secret != NULL ? secret->kind : outbox_credentials_kind_for (account),
    .auth_mech = account->auth,
    .tls_ca_file = account->tls_ca_file,
    .tls_fingerprint = account->tls_fingerprint,
  };
  OutboxPop3Session *session;

  outbox_pop3_timeouts_init_default (&config.timeouts);
  session = outbox_pop3_session_new (&config);
  check->session = G_OBJECT (session);
  outbox_session_open_async (OUTBOX_SESSION (session), g_task_get_cancellable (check->task), pop3_open_done,
                                  check);
}

/* Each server: its password, then its session. */

static void
server_start (ServerCheck *check, const OutboxSecret *secret)
{
  CheckData *data = g_task_get_task_data (check->task);

  switch (check->url->protocol)
    {
    case OUTBOX_PROTOCOL_SMTP:
      smtp_start (check, data->account, secret);
      break;
    case OUTBOX_PROTOCOL_IMAP:
      imap_start (check, data->account, secret);
      break;
    case OUTBOX_PROTOCOL_POP3:
    default:
      pop3_start (check, data->account, secret);
      break;
    }
}

/* A missing password is left for the session to report, as a failed
 * login that names the server and the user. */
static void
secret_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ServerCheck *check = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxSecret) secret =
      outbox_credentials_lookup_finish (OUTBOX_CREDENTIALS (source), result, &error);

  if (error != NULL && !g_error_matches (error, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_MISSING))
    {
      GVariantDict dict;

      g_variant_dict_init (&dict, NULL);
      describe (&dict, check->url, error, NULL, NULL, NULL, NULL);
      check_finish_one (check, &dict);
      return;
    }
  server_start (check, secret);
}

static void
check_server (GTask *task, const OutboxServerUrl *url)
{
  CheckData *data = g_task_get_task_data (task);
  ServerCheck *check = g_new0 (ServerCheck, 1);

  check->task = g_object_ref (task);
  check->url = url;
  if (url->user == NULL)
    {
      server_start (check, NULL);
      return;
    }
  outbox_credentials_lookup_async (data->credentials, data->account, url,
                                   g_task_get_cancellable (task), secret_done, check);
}

void
outbox_account_check_async (const OutboxAccountConfig *account,
                            OutboxCredentials *credentials,
                            GCancellable *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  CheckData *data = g_new0 (CheckData, 1);
  const OutboxServerUrl *urls[3];
  guint n = 0;

  g_task_set_source_tag (task, outbox_account_check_async);
  data->account = outbox_account_config_copy (account);
  data->credentials = g_object_ref (credentials);
  g_variant_dict_init (&data->results, NULL);
  g_task_set_task_data (task, data, (GDestroyNotify) check_data_free);

  urls[n++] = data->account->smtp;
  if (data->account->imap != NULL)
    urls[n++] = data->account->imap;
  if (data->account->pop3 != NULL)
    urls[n++] = data->account->pop3;
  /* All counted before any starts: a check may finish at once. */
  data->pending = n;
  for (guint i = 0; i < n; i++)
    check_server (task, urls[i]);
}

GVariant *
outbox_account_check_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
