/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "outbox-credentials.h"
#include "outbox-goa.h"
#include "outbox-helper.h"
#include "outbox-secret.h"
#include "outbox-text.h"

G_DEFINE_QUARK (outbox-credentials-error-quark, outbox_credentials_error)

#define OAUTH2_HELPER_NAME "outbox-oauth2-helper"
/* The helper's one HTTP request has 30 s; this is for the whole run. */
#define OAUTH2_HELPER_TIMEOUT 90
/* A token this close to its end is refreshed first: the session that starts
 * with it must not outlive it. */
#define TOKEN_MARGIN 120

/* An access token in memory only, with when it ends (0: not said). */
typedef struct
{
  char *token;
  gint64 expires_at;
} CachedToken;

static void
cached_token_free (CachedToken *cached)
{
  explicit_bzero (cached->token, strlen (cached->token));
  g_free (cached->token);
  g_free (cached);
}

struct _OutboxCredentials
{
  GObject parent_instance;

  GHashTable *tokens; /* (owned) account name (owned) -> CachedToken (owned) */
};

G_DEFINE_TYPE (OutboxCredentials, outbox_credentials, G_TYPE_OBJECT)

static void
outbox_credentials_finalize (GObject *object)
{
  g_hash_table_unref (OUTBOX_CREDENTIALS (object)->tokens);
  G_OBJECT_CLASS (outbox_credentials_parent_class)->finalize (object);
}

static void
outbox_credentials_class_init (OutboxCredentialsClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_credentials_finalize;
}

static void
outbox_credentials_init (OutboxCredentials *self)
{
  self->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) cached_token_free);
}

OutboxCredentials *
outbox_credentials_new (void)
{
  return g_object_new (OUTBOX_TYPE_CREDENTIALS, NULL);
}

void
outbox_secret_free (OutboxSecret *secret)
{
  if (secret == NULL)
    return;
  if (secret->secret != NULL)
    explicit_bzero (secret->secret, strlen (secret->secret));
  g_free (secret->secret);
  g_free (secret);
}

static OutboxSecret *
secret_new (const char *text, gsize len, OutboxSaslSecretKind kind)
{
  OutboxSecret *secret = g_new0 (OutboxSecret, 1);

  secret->secret = g_strndup (text, len);
  secret->kind = kind;
  return secret;
}

OutboxSaslSecretKind
outbox_credentials_kind_for (const OutboxAccountConfig *account)
{
  if (account->token_command != NULL || account->oauth2 != NULL)
    return OUTBOX_SASL_SECRET_TOKEN;
  return OUTBOX_SASL_SECRET_PASSWORD;
}

/* Commands ---------------------------------------------------------------
 *
 * The command runs without a shell, with the daemon's environment, standard
 * input closed and a deadline; its first line of standard output is the
 * secret.  What it says on standard error is shown (its first line) when it
 * fails, never when it succeeds. */

typedef struct
{
  GSubprocess *process; /* (owned) */
  GSource *timer;       /* (owned) */
  char *what;           /* (owned) "password command “pass”" */
  OutboxSaslSecretKind kind;
  gboolean timed_out;
} CommandRun;

static void
command_run_free (CommandRun *run)
{
  g_source_destroy (run->timer);
  g_source_unref (run->timer);
  g_object_unref (run->process);
  g_free (run->what);
  g_free (run);
}

static gboolean
command_timed_out (gpointer user_data)
{
  CommandRun *run = user_data;

  run->timed_out = TRUE;
  g_subprocess_force_exit (run->process);
  return G_SOURCE_REMOVE;
}

static void
wipe_text (char *text)
{
  explicit_bzero (text, strlen (text));
  g_free (text);
}

static void
wipe_bytes (GBytes *bytes)
{
  gsize len = 0;
  gconstpointer data;

  if (bytes == NULL)
    return;
  /* The only reference is ours: the buffer dies with it. */
  data = g_bytes_get_data (bytes, &len);
  if (data != NULL)
    explicit_bzero ((gpointer) data, len);
  g_bytes_unref (bytes);
}

static GError *
command_error (CommandRun *run, GBytes *err, const char *format, ...) G_GNUC_PRINTF (3, 4);

static GError *
command_error (CommandRun *run, GBytes *err, const char *format, ...)
{
  g_autofree char *why = NULL;
  g_autofree char *said = NULL;
  gsize len = 0;
  const char *text = err != NULL ? g_bytes_get_data (err, &len) : NULL;
  va_list args;

  va_start (args, format);
  why = g_strdup_vprintf (format, args);
  va_end (args);
  if (text != NULL && len > 0)
    {
      const char *end = memchr (text, '\n', len);
      said = outbox_text_sanitize (text, MIN (end != NULL ? (gsize) (end - text) : len, 200));
    }
  return g_error_new (OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_COMMAND, "The %s %s%s%s",
                      run->what, why, said != NULL && *said != '\0' ? ": " : "",
                      said != NULL ? said : "");
}

static OutboxSecret *
first_line (CommandRun *run, GBytes *out, GBytes *err, GError **error)
{
  gsize len = 0;
  const char *text = out != NULL ? g_bytes_get_data (out, &len) : NULL;
  const char *end = text != NULL ? memchr (text, '\n', len) : NULL;
  gsize line_len = end != NULL ? (gsize) (end - text) : len;

  if (line_len > 0 && text[line_len - 1] == '\r')
    line_len--;
  if (line_len == 0)
    {
      g_propagate_error (error, command_error (run, err, "printed nothing on its first line"));
      return NULL;
    }
  if (memchr (text, '\0', line_len) != NULL)
    {
      g_propagate_error (error, command_error (run, err, "printed a NUL byte"));
      return NULL;
    }
  return secret_new (text, line_len, run->kind);
}

static void
command_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  CommandRun *run = g_task_get_task_data (task);
  GBytes *out = NULL;
  g_autoptr (GBytes) err = NULL;
  GError *error = NULL;
  OutboxSecret *secret = NULL;

  if (!g_subprocess_communicate_finish (run->process, result, &out, &err, &error))
    {
      g_prefix_error (&error, "The %s could not be run: ", run->what);
      g_task_return_error (task, error);
      wipe_bytes (out);
      return;
    }
  if (run->timed_out)
    error = command_error (run, err, "did not finish within %u s", OUTBOX_CREDENTIALS_COMMAND_TIMEOUT);
  else if (!g_subprocess_get_if_exited (run->process))
    error = command_error (run, err, "was killed by signal %d",
                           g_subprocess_get_term_sig (run->process));
  else if (g_subprocess_get_exit_status (run->process) != 0)
    error = command_error (run, err, "failed with exit status %d",
                           g_subprocess_get_exit_status (run->process));
  else
    secret = first_line (run, out, err, &error);
  wipe_bytes (out);
  if (secret == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, secret, (GDestroyNotify) outbox_secret_free);
}

static void
run_command (GTask *task, const char *const *argv, const char *noun, OutboxSaslSecretKind kind)
{
  CommandRun *run = g_new0 (CommandRun, 1);
  GError *error = NULL;

  run->what = g_strdup_printf ("%s command “%s”", noun, argv[0]);
  run->kind = kind;
  run->process = g_subprocess_newv (argv,
                                    G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                    &error);
  if (run->process == NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_COMMAND,
                               "The %s could not be started: %s", run->what, error->message);
      g_error_free (error);
      g_free (run->what);
      g_free (run);
      return;
    }
  run->timer = g_timeout_source_new_seconds (OUTBOX_CREDENTIALS_COMMAND_TIMEOUT);
  g_source_set_callback (run->timer, command_timed_out, run, NULL);
  g_source_attach (run->timer, g_main_context_get_thread_default ());
  g_task_set_task_data (task, run, (GDestroyNotify) command_run_free);
  g_subprocess_communicate_async (run->process, NULL, g_task_get_cancellable (task), command_done,
                                  g_object_ref (task));
}

/* GNOME Online Accounts ---------------------------------------------------
 *
 * The account is looked up again for each session: GOA may have refreshed
 * the token, or the user changed the password, removed the account or
 * switched its mail off since. */

static void
goa_secret_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxSaslSecretKind kind = OUTBOX_SASL_SECRET_PASSWORD;
  GError *error = NULL;
  char *secret = outbox_goa_get_secret_finish (result, &kind, &error);

  if (secret == NULL)
    {
      gboolean gone = error->code == OUTBOX_GOA_ERROR_NOT_FOUND || error->code == OUTBOX_GOA_ERROR_NO_MAIL
                      || error->code == OUTBOX_GOA_ERROR_ATTENTION;
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR,
                               gone ? OUTBOX_CREDENTIALS_ERROR_NEEDS_ATTENTION
                                    : OUTBOX_CREDENTIALS_ERROR_STORE,
                               "%s", error->message);
      g_error_free (error);
      return;
    }
  g_task_return_pointer (task, secret_new (secret, strlen (secret), kind),
                         (GDestroyNotify) outbox_secret_free);
  explicit_bzero (secret, strlen (secret));
  g_free (secret);
}

typedef struct
{
  char *goa_id;
  OutboxProtocol service;
} GoaLookup;

static void
goa_lookup_free (GoaLookup *lookup)
{
  g_free (lookup->goa_id);
  g_free (lookup);
}

static void
goa_client_got (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GoaLookup *lookup = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr (GObject) client = outbox_goa_client_get_finish (result, &error);

  if (client == NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_STORE, "%s",
                               error->message);
      g_error_free (error);
      return;
    }
  outbox_goa_get_secret_async (client, lookup->goa_id, lookup->service,
                               g_task_get_cancellable (task), goa_secret_got, g_object_ref (task));
}

static void
lookup_goa (GTask *task, const OutboxAccountConfig *account, const OutboxServerUrl *url)
{
  GoaLookup *lookup = g_new0 (GoaLookup, 1);

  lookup->goa_id = g_strdup (account->goa_id);
  lookup->service = url->protocol;
  g_task_set_task_data (task, lookup, (GDestroyNotify) goa_lookup_free);
  outbox_goa_client_get_async (g_task_get_cancellable (task), goa_client_got, g_object_ref (task));
}

/* OAuth2 --------------------------------------------------------------------
 *
 * The access token lives in memory only, until shortly before it ends or
 * until a server refuses it; then outbox-oauth2-helper trades the refresh
 * token (and the client secret, when there is one) from the Secret Service
 * for a new one, without the daemon loading libsoup.  A refresh token the
 * provider rotated replaces the old one in the Secret Service.  A refused
 * refresh (invalid_grant: revoked, expired, password changed) needs the user
 * to authorize the account again. */

typedef struct
{
  char *account;                  /* (owned) */
  OutboxOAuth2Settings *settings; /* (owned) */
  char *refresh_token;            /* (owned) (nullable) wiped */
  GSubprocess *helper;            /* (owned) (nullable) */
  GSource *timer;                 /* (owned) (nullable) */
  gboolean timed_out;
} Refresh;

static void
refresh_free (Refresh *refresh)
{
  g_free (refresh->account);
  outbox_oauth2_settings_free (refresh->settings);
  if (refresh->refresh_token != NULL)
    explicit_bzero (refresh->refresh_token, strlen (refresh->refresh_token));
  g_free (refresh->refresh_token);
  g_clear_object (&refresh->helper);
  if (refresh->timer != NULL)
    {
      g_source_destroy (refresh->timer);
      g_source_unref (refresh->timer);
    }
  g_free (refresh);
}

static const CachedToken *
usable_token (OutboxCredentials *self, const char *account)
{
  const CachedToken *cached = g_hash_table_lookup (self->tokens, account);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (cached == NULL || (cached->expires_at != 0 && cached->expires_at - TOKEN_MARGIN <= now))
    return NULL;
  return cached;
}

static void
return_token (GTask *task, const char *token)
{
  g_task_return_pointer (task, secret_new (token, strlen (token), OUTBOX_SASL_SECRET_TOKEN),
                         (GDestroyNotify) outbox_secret_free);
}

static void
rotated_token_stored (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autofree char *account = user_data;
  g_autoptr (GError) error = NULL;

  if (!outbox_secret_store_finish (result, &error))
    g_warning ("Account %s: the provider replaced the refresh token, but the new one could not "
               "be stored: %s",
               account, error->message);
}

static const char *
member_string (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* The helper's refusal: invalid_grant needs a new authorization,
 * invalid_client a look at the client's settings, anything else (no
 * network, a provider's bad moment) another try later. */
static GError *
refresh_error (const char *account, const char *name, const char *message)
{
  if (g_strcmp0 (name, "invalid_grant") == 0)
    return g_error_new (OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_NEEDS_AUTHORIZATION,
                        "%s; sign in again with: outbox account authorize %s", message, account);
  if (g_strcmp0 (name, "invalid_client") == 0)
    return g_error_new (OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_NEEDS_ATTENTION,
                        "%s; check the account's --client-id and client secret", message);
  return g_error_new (OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_STORE,
                      "Could not refresh the OAuth2 access token: %s", message);
}

static void
take_refresh_answer (GTask *task, Refresh *refresh, GBytes *out)
{
  OutboxCredentials *self = g_task_get_source_object (task);
  g_autoptr (JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *text = out != NULL ? g_bytes_get_data (out, &len) : NULL;
  JsonNode *root;
  JsonObject *object;
  const char *token;
  const char *rotated;
  CachedToken *cached;

  if (text == NULL || !json_parser_load_from_data (parser, text, (gssize) len, NULL)
      || !JSON_NODE_HOLDS_OBJECT ((root = json_parser_get_root (parser))))
    {
      g_task_return_error (task, refresh_error (refresh->account, NULL,
                                                "the OAuth2 helper answered something else"));
      return;
    }
  object = json_node_get_object (root);
  token = member_string (object, "access_token");
  if (token == NULL)
    {
      g_task_return_error (task, refresh_error (refresh->account, member_string (object, "error"),
                                                member_string (object, "message") != NULL
                                                    ? member_string (object, "message")
                                                    : "the OAuth2 helper failed"));
      return;
    }
  cached = g_new0 (CachedToken, 1);
  cached->token = g_strdup (token);
  cached->expires_at = json_object_get_int_member_with_default (object, "expires_at", 0);
  g_hash_table_replace (self->tokens, g_strdup (refresh->account), cached);
  rotated = member_string (object, "refresh_token");
  if (rotated != NULL)
    outbox_secret_store_service_async (refresh->account, "oauth2", rotated, NULL,
                                       rotated_token_stored, g_strdup (refresh->account));
  g_debug ("Account %s: new OAuth2 access token", refresh->account);
  return_token (task, cached->token);
}

static void
refresh_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Refresh *refresh = g_task_get_task_data (task);
  GBytes *out = NULL;
  GError *error = NULL;

  if (!g_subprocess_communicate_finish (refresh->helper, result, &out, NULL, &error))
    {
      g_task_return_error (task, refresh_error (refresh->account, NULL, error->message));
      g_error_free (error);
    }
  else if (refresh->timed_out)
    g_task_return_error (task, refresh_error (refresh->account, NULL,
                                              "the OAuth2 helper did not finish in time"));
  else
    take_refresh_answer (task, refresh, out);
  wipe_bytes (out);
}

static gboolean
refresh_timed_out (gpointer user_data)
{
  Refresh *refresh = user_data;

  refresh->timed_out = TRUE;
  g_subprocess_force_exit (refresh->helper);
  return G_SOURCE_REMOVE;
}

/* What the helper reads on standard input; wiped once written. */
static GBytes *
refresh_request (Refresh *refresh, const char *client_secret)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  g_autoptr (JsonNode) root = NULL;
  char *text;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "token_url");
  json_builder_add_string_value (builder, refresh->settings->token_url);
  json_builder_set_member_name (builder, "client_id");
  json_builder_add_string_value (builder, refresh->settings->client_id);
  json_builder_set_member_name (builder, "refresh_token");
  json_builder_add_string_value (builder, refresh->refresh_token);
  json_builder_set_member_name (builder, "scope");
  json_builder_add_string_value (builder, refresh->settings->scope);
  if (client_secret != NULL)
    {
      json_builder_set_member_name (builder, "client_secret");
      json_builder_add_string_value (builder, client_secret);
    }
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, NULL);
  /* The builder's copies are freed unwiped: json-glib has no way to clear
   * them; the text that crosses the pipe is wiped. */
  return g_bytes_new_with_free_func (text, strlen (text), (GDestroyNotify) wipe_text, text);
}

static void
run_refresh (GTask *task, const char *client_secret)
{
  Refresh *refresh = g_task_get_task_data (task);
  g_autofree char *path = NULL;
  g_autoptr (GBytes) request = NULL;
  const char *argv[4] = { NULL, "refresh", NULL, NULL };
  GError *error = NULL;

  path = outbox_helper_path (OAUTH2_HELPER_NAME, &error);
  argv[0] = path;
  if (path != NULL && g_log_get_debug_enabled ())
    {
      argv[1] = "--verbose";
      argv[2] = "refresh";
    }
  if (path != NULL)
    refresh->helper = g_subprocess_newv (argv,
                                         G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                         &error);
  if (refresh->helper == NULL)
    {
      g_task_return_error (task, refresh_error (refresh->account, NULL, error->message));
      g_error_free (error);
      return;
    }
  refresh->timer = g_timeout_source_new_seconds (OAUTH2_HELPER_TIMEOUT);
  g_source_set_callback (refresh->timer, refresh_timed_out, refresh, NULL);
  g_source_attach (refresh->timer, g_main_context_get_thread_default ());
  request = refresh_request (refresh, client_secret);
  g_subprocess_communicate_async (refresh->helper, request, g_task_get_cancellable (task),
                                  refresh_done, g_object_ref (task));
}

static void
client_secret_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GError *error = NULL;
  char *client_secret = outbox_secret_lookup_finish (result, &error);

  if (error != NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_STORE,
                               "%s", error->message);
      g_error_free (error);
      return;
    }
  run_refresh (task, client_secret);
  secret_password_free (client_secret);
}

static void
refresh_token_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Refresh *refresh = g_task_get_task_data (task);
  GError *error = NULL;
  char *refresh_token = outbox_secret_lookup_finish (result, &error);

  if (error != NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_STORE,
                               "%s", error->message);
      g_error_free (error);
      return;
    }
  if (refresh_token == NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR,
                               OUTBOX_CREDENTIALS_ERROR_NEEDS_AUTHORIZATION,
                               "Account %s is not authorized yet; run outbox account authorize %s",
                               refresh->account, refresh->account);
      return;
    }
  refresh->refresh_token = g_strdup (refresh_token);
  secret_password_free (refresh_token);
  outbox_secret_lookup_service_async (refresh->account, "oauth2-client",
                                      g_task_get_cancellable (task), client_secret_found,
                                      g_object_ref (task));
}

static void
lookup_oauth2 (OutboxCredentials *self, GTask *task, const OutboxAccountConfig *account)
{
  const CachedToken *cached = usable_token (self, account->name);
  Refresh *refresh;
  GError *error = NULL;

  if (cached != NULL)
    {
      return_token (task, cached->token);
      return;
    }
  refresh = g_new0 (Refresh, 1);
  refresh->account = g_strdup (account->name);
  refresh->settings = outbox_account_get_oauth2_settings (account, &error);
  g_task_set_task_data (task, refresh, (GDestroyNotify) refresh_free);
  if (refresh->settings == NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_NEEDS_ATTENTION,
                               "%s", error->message);
      g_error_free (error);
      return;
    }
  outbox_secret_lookup_service_async (account->name, "oauth2", g_task_get_cancellable (task),
                                      refresh_token_found, g_object_ref (task));
}

/* The Secret Service ------------------------------------------------------ */

static void
password_found (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  const OutboxServerUrl *url = g_task_get_task_data (task);
  GError *error = NULL;
  char *password = outbox_secret_lookup_finish (result, &error);

  if (error != NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_STORE,
                               "%s", error->message);
      g_error_free (error);
      return;
    }
  if (password == NULL)
    {
      g_task_return_new_error (task, OUTBOX_CREDENTIALS_ERROR, OUTBOX_CREDENTIALS_ERROR_MISSING,
                               "No %s password is stored for %s on %s",
                               outbox_protocol_to_string (url->protocol), url->user, url->host);
      return;
    }
  g_task_return_pointer (task, secret_new (password, strlen (password), OUTBOX_SASL_SECRET_PASSWORD),
                         (GDestroyNotify) outbox_secret_free);
  secret_password_free (password);
}

void
outbox_credentials_lookup_async (OutboxCredentials *self,
                                 const OutboxAccountConfig *account,
                                 const OutboxServerUrl *url,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (OUTBOX_IS_CREDENTIALS (self));
  g_return_if_fail (account != NULL && url != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_credentials_lookup_async);
  if (account->goa_id != NULL)
    lookup_goa (task, account, url);
  else if (account->oauth2 != NULL)
    lookup_oauth2 (self, task, account);
  else if (account->token_command != NULL)
    run_command (task, (const char *const *) account->token_command, "token",
                 OUTBOX_SASL_SECRET_TOKEN);
  else if (account->password_command != NULL)
    run_command (task, (const char *const *) account->password_command, "password",
                 OUTBOX_SASL_SECRET_PASSWORD);
  else
    {
      g_task_set_task_data (task, outbox_server_url_copy (url),
                            (GDestroyNotify) outbox_server_url_free);
      outbox_secret_lookup_async (account->name, url, cancellable, password_found,
                                  g_object_ref (task));
    }
}

OutboxSecret *
outbox_credentials_lookup_finish (OutboxCredentials *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_credentials_lookup_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
outbox_credentials_forget_token (OutboxCredentials *self, const OutboxAccountConfig *account)
{
  g_return_if_fail (OUTBOX_IS_CREDENTIALS (self));

  /* A token command or GOA is asked again for every session: only OAuth2's
   * tokens are kept. */
  g_hash_table_remove (self->tokens, account->name);
}
