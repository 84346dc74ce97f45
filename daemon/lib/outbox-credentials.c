/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-credentials.h"
#include "outbox-goa.h"
#include "outbox-secret.h"
#include "outbox-text.h"

G_DEFINE_QUARK (outbox-credentials-error-quark, outbox_credentials_error)

struct _OutboxCredentials
{
  GObject parent_instance;
};

G_DEFINE_TYPE (OutboxCredentials, outbox_credentials, G_TYPE_OBJECT)

static void
outbox_credentials_class_init (OutboxCredentialsClass *klass)
{
}

static void
outbox_credentials_init (OutboxCredentials *self)
{
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
outbox_credentials_kind_for (const OutboxAccount *account)
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
lookup_goa (GTask *task, const OutboxAccount *account, const OutboxServerUrl *url)
{
  GoaLookup *lookup = g_new0 (GoaLookup, 1);

  lookup->goa_id = g_strdup (account->goa_id);
  lookup->service = url->protocol;
  g_task_set_task_data (task, lookup, (GDestroyNotify) goa_lookup_free);
  outbox_goa_client_get_async (g_task_get_cancellable (task), goa_client_got, g_object_ref (task));
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
                                 const OutboxAccount *account,
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
outbox_credentials_forget_token (OutboxCredentials *self, const OutboxAccount *account)
{
  g_return_if_fail (OUTBOX_IS_CREDENTIALS (self));

  /* A token command is run again for every session: nothing is kept. */
  (void) account;
}
