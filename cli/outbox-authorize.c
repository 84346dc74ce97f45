/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-cli-bus.h"
#include "outbox-cli-commands.h"

#include <stdio.h>
#include <string.h>

#include <libsecret/secret.h>

#include "outbox-cli-util.h"
#include "outbox-error.h"
#include "outbox-oauth2.h"
#include "outbox-secret.h"

/* outbox account authorize: the user grants Outbox access at the provider,
 * and the refresh token that comes back goes to the daemon (which keeps it
 * in the Secret Service and fetches access tokens with it from then on).
 *
 * The browser way is the authorization code grant with PKCE (RFC 6749,
 * RFC 7636) and a loopback redirect (RFC 8252 section 7.3); --device is
 * the device grant (RFC 8628).  No token, code, verifier or client secret
 * is ever printed: what the user sees are URLs and the user code. */

#define COMMAND "account authorize"

/* RFC 8252 leaves the wait to the application: five minutes is enough to
 * sign in, a second factor included, and short enough that a forgotten
 * command does not keep a port open for long. */
#define REDIRECT_TIMEOUT_SECONDS (5 * 60)
/* After the outcome is known, how long the browser's page may take to be
 * sent before the command ends anyway. */
#define PAGE_GRACE_SECONDS 2
/* The longest error code from the redirect that is quoted, in columns. */
#define MAX_ERROR_CODE 64

/* What the browser shows.  Static text only: nothing from the request is
 * echoed back, so nothing in the redirect can script the page. */
#define PAGE(title, text)                                                     \
  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"         \
  "<title>Outbox: " title "</title></head>\n<body><h1>" title "</h1>\n<p>" \
  text "</p></body></html>\n"

static const char page_done[] =
  PAGE ("authorization received",
        "Outbox received the authorization. You can close this window; the terminal "
        "shows the result.");
static const char page_wrong_state[] =
  PAGE ("authorization refused",
        "This answer does not belong to the authorization Outbox asked for, so Outbox did "
        "not take it. Run outbox account authorize again.");
static const char page_refused[] =
  PAGE ("authorization not given",
        "The authorization was not given; the terminal says why. You can close this window.");
static const char page_no_code[] =
  PAGE ("authorization incomplete",
        "The answer carried no authorization code. Run outbox account authorize again.");
static const char page_already[] =
  PAGE ("already answered",
        "Outbox has already taken an answer for this authorization. You can close this "
        "window.");

/* Command line -------------------------------------------------------------- */

/* Errors, with the exit code the kind of failure calls for ------------------- */

static int
report_error (const GError *error,
              const char   *hint)
{
  g_autoptr(GError) mapped = NULL;
  int code = -1;

  if (error->domain == OUTBOX_OAUTH2_ERROR)
    {
      switch ((OutboxOAuth2Error) error->code)
        {
        case OUTBOX_OAUTH2_ERROR_NETWORK:
          code = OUTBOX_CLI_ERROR_TEMPORARY;
          break;
        case OUTBOX_OAUTH2_ERROR_INVALID_CLIENT:
        case OUTBOX_OAUTH2_ERROR_INVALID_SCOPE:
        case OUTBOX_OAUTH2_ERROR_BAD_URL:
          code = OUTBOX_CLI_ERROR_CONFIG;
          break;
        default:
          break;
        }
    }
  else if (g_error_matches (error, OUTBOX_ERROR, OUTBOX_ERROR_SECRET_FAILED))
    code = OUTBOX_CLI_ERROR_TEMPORARY;

  if (code >= 0)
    mapped = g_error_new_literal (OUTBOX_CLI_ERROR, code, error->message);
  return outbox_cli_report_error (mapped != NULL ? mapped : error, hint);
}

/* The account --------------------------------------------------------------- */

/* An empty value is an unset one, as Accounts.Update takes it. */
static const char *
lookup_setting (GVariant   *account,
                const char *key,
                const char *preset)
{
  const char *value = outbox_cli_lookup_text (account, key);

  return value != NULL && value[0] != '\0' ? value : preset;
}

/* The account's endpoints: its own settings, else its provider's preset
 * (as outbox_account_get_oauth2_settings does in the daemon). */
static OutboxOAuth2Settings *
settings_from_account (GVariant   *account,
                       const char *clean_name,
                       GError    **error)
{
  const OutboxOAuth2Provider *provider =
    outbox_oauth2_provider_lookup (lookup_setting (account, "oauth2", NULL));
  g_autoptr(OutboxOAuth2Settings) settings = g_new0 (OutboxOAuth2Settings, 1);

  settings->auth_url = g_strdup (lookup_setting (account, "oauth2-auth-url",
                                                 provider ? provider->auth_url : NULL));
  settings->token_url = g_strdup (lookup_setting (account, "oauth2-token-url",
                                                  provider ? provider->token_url : NULL));
  settings->device_url = g_strdup (lookup_setting (account, "oauth2-device-url",
                                                   provider ? provider->device_url : NULL));
  settings->scope = g_strdup (lookup_setting (account, "oauth2-scope",
                                              provider ? provider->scope : NULL));
  settings->client_id = g_strdup (lookup_setting (account, "client-id", NULL));

  if (settings->client_id == NULL)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                   "Account %s has no OAuth2 client ID; give it with outbox account update "
                   "%s --client-id ID", clean_name, clean_name);
      return NULL;
    }
  if (settings->auth_url == NULL || settings->token_url == NULL || settings->scope == NULL)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                   "Account %s lacks OAuth2 endpoints; give them with outbox account update %s "
                   "--oauth2-auth-url URL --oauth2-token-url URL --oauth2-scope SCOPE",
                   clean_name, clean_name);
      return NULL;
    }
  return g_steal_pointer (&settings);
}

static GVariant *
lookup_account (const char  *name,
                const char  *clean_name,
                GError     **error)
{
  g_autoptr(GVariant) list = outbox_cli_bus_list_accounts (error);
  GVariant *account;

  if (list == NULL)
    return NULL;
  account = outbox_cli_find_account (list, name);
  if (account == NULL)
    g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                 "no account named %s; see outbox account list", clean_name);
  else if (lookup_setting (account, "oauth2", NULL) == NULL)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                   "Account %s does not sign in with OAuth2; set it up with outbox account "
                   "update %s --oauth2 google|microsoft --client-id ID", clean_name, clean_name);
      g_clear_pointer (&account, g_variant_unref);
    }
  return account;
}

/* The client secret, when one is stored (public clients have none). */

typedef struct
{
  gboolean done;
  char *secret;
  GError *error;
} SecretLookup;

static void
on_client_secret (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  SecretLookup *lookup = user_data;

  lookup->secret = outbox_secret_lookup_finish (result, &lookup->error);
  lookup->done = TRUE;
  g_main_context_wakeup (NULL);
}

static gboolean
lookup_client_secret (const char  *name,
                      char       **out_secret,
                      GError     **error)
{
  SecretLookup lookup = { FALSE, NULL, NULL };

  outbox_secret_lookup_service_async (name, "oauth2-client", NULL, on_client_secret, &lookup);
  while (!lookup.done)
    g_main_context_iteration (NULL, TRUE);
  if (lookup.error != NULL)
    {
      g_propagate_error (error, lookup.error);
      return FALSE;
    }
  *out_secret = lookup.secret;
  return TRUE;
}

/* One authorization, browser or device ---------------------------------------- */

typedef struct
{
  GMainLoop *loop;
  const char *clean_name;
  const char *provider;                 /* "google", "microsoft" or "custom" */
  const OutboxOAuth2Settings *settings;
  const char *client_secret;            /* (nullable) */
  SoupSession *session;

  /* The code grant's request. */
  char *state;
  char *verifier;                       /* wiped */
  char *redirect_uri;
  gboolean redirect_taken;              /* only the first answer counts */
  gboolean page_pending;                /* the browser's page is being sent */
  guint timeout_id;                     /* the wait for the browser */
  guint grace_id;                       /* the wait for the page to be sent */

  /* The outcome. */
  gboolean done;
  OutboxOAuth2Tokens *tokens;
  GError *error;
} Authorization;

static void
authorization_clear (Authorization *auth)
{
  g_clear_handle_id (&auth->timeout_id, g_source_remove);
  g_clear_handle_id (&auth->grace_id, g_source_remove);
  g_clear_pointer (&auth->loop, g_main_loop_unref);
  g_clear_object (&auth->session);
  g_free (auth->state);
  if (auth->verifier != NULL)
    explicit_bzero (auth->verifier, strlen (auth->verifier));
  g_free (auth->verifier);
  g_free (auth->redirect_uri);
  g_clear_pointer (&auth->tokens, outbox_oauth2_tokens_free);
  g_clear_error (&auth->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Authorization, authorization_clear)

static gboolean
quit_loop (gpointer user_data)
{
  Authorization *auth = user_data;

  auth->grace_id = 0;
  g_main_loop_quit (auth->loop);
  return G_SOURCE_REMOVE;
}

/* Ends the loop once the outcome is known and the browser has its page;
 * a page that cannot be sent holds nothing up for more than a moment. */
static void
maybe_quit (Authorization *auth)
{
  if (!auth->done)
    return;
  if (!auth->page_pending)
    g_main_loop_quit (auth->loop);
  else if (auth->grace_id == 0)
    auth->grace_id = g_timeout_add_seconds (PAGE_GRACE_SECONDS, quit_loop, auth);
}

/* Takes @error. */
static void
authorization_fail (Authorization *auth,
                    GError        *error)
{
  if (auth->done)
    {
      g_error_free (error);
      return;
    }
  auth->error = error;
  auth->done = TRUE;
  maybe_quit (auth);
}

/* Takes @tokens.  Without a refresh token Outbox could sign in for an hour
 * and then never again: that is a failure, and what to fix depends on the
 * provider. */
static void
authorization_succeed (Authorization      *auth,
                       OutboxOAuth2Tokens *tokens)
{
  const char *fix;

  if (tokens->refresh_token != NULL && tokens->refresh_token[0] != '\0')
    {
      auth->tokens = tokens;
      auth->done = TRUE;
      maybe_quit (auth);
      return;
    }

  outbox_oauth2_tokens_free (tokens);
  if (g_str_equal (auth->provider, "google"))
    fix = "for Google the consent must include offline access: remove Outbox from your "
          "Google account's third-party access, then authorize again";
  else if (g_str_equal (auth->provider, "microsoft"))
    fix = "for Microsoft the scope needs offline_access (see --oauth2-scope)";
  else
    fix = "the provider may need a scope such as offline_access (see --oauth2-scope)";
  authorization_fail (auth, g_error_new (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                                         "The provider gave no refresh token, so Outbox could "
                                         "not stay signed in to account %s; %s",
                                         auth->clean_name, fix));
}

static void
on_tokens (Authorization      *auth,
           OutboxOAuth2Tokens *tokens,
           GError             *error)
{
  if (tokens != NULL)
    authorization_succeed (auth, tokens);
  else
    authorization_fail (auth, error);
}

/* The authorization code grant ----------------------------------------------- */

static void
on_code_exchanged (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GError *error = NULL;
  OutboxOAuth2Tokens *tokens = outbox_oauth2_exchange_code_finish (result, &error);

  on_tokens (user_data, tokens, error);
}

static void
on_page_sent (SoupServerMessage *msg,
              gpointer           user_data)
{
  Authorization *auth = user_data;

  auth->page_pending = FALSE;
  maybe_quit (auth);
}

static void
answer_browser (Authorization     *auth,
                SoupServerMessage *msg,
                guint              status,
                const char        *page)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  /* The address bar holds the code: keep the page out of caches, and no
   * Referer from it. */
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  soup_message_headers_replace (headers, "Referrer-Policy", "no-referrer");
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_STATIC,
                                    page, strlen (page));
  if (auth != NULL)
    {
      auth->page_pending = TRUE;
      g_signal_connect (msg, "finished", G_CALLBACK (on_page_sent), auth);
    }
}

/* Compares in a time that does not depend on where the texts differ. */
static gboolean
same_state (const char *given,
            const char *expected)
{
  gsize length = strlen (expected);
  guchar difference = 0;

  if (given == NULL || strlen (given) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    difference |= (guchar) given[i] ^ (guchar) expected[i];
  return difference == 0;
}

/* RFC 6749 section 4.1.2.1: what the provider (or the user) said. */
static GError *
redirect_error (const char *clean_name,
                const char *code,
                const char *description)
{
  g_autofree char *shown_code = outbox_cli_fit (code, MAX_ERROR_CODE);
  g_autofree char *said = NULL;

  if (g_str_equal (code, "access_denied"))
    return g_error_new (OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_ACCESS_DENIED,
                        "The authorization was refused (access_denied): nothing was granted; "
                        "to grant it, run outbox account authorize %s again", clean_name);

  if (description != NULL && description[0] != '\0')
    {
      g_autofree char *shown = outbox_cli_fit (description, OUTBOX_OAUTH2_MAX_DESCRIPTION);

      said = g_strdup_printf (": %s", shown);
    }
  if (g_str_equal (code, "server_error") || g_str_equal (code, "temporarily_unavailable"))
    return g_error_new (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_TEMPORARY,
                        "The provider could not authorize account %s now (%s%s); try again "
                        "later", clean_name, shown_code, said ? said : "");
  return g_error_new (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                      "The provider refused to authorize account %s (%s%s); check its OAuth2 "
                      "settings with outbox account show %s", clean_name, shown_code,
                      said ? said : "", clean_name);
}

static const char *
query_value (GHashTable *query,
             const char *key)
{
  return query != NULL ? g_hash_table_lookup (query, key) : NULL;
}

/* The state is checked before anything else in the answer is believed,
 * an error included (RFC 6749 section 10.12). */
static void
take_redirect (Authorization     *auth,
               SoupServerMessage *msg,
               GHashTable        *query)
{
  const char *code = query_value (query, "code");
  const char *error = query_value (query, "error");

  if (!same_state (query_value (query, "state"), auth->state))
    {
      answer_browser (auth, msg, SOUP_STATUS_BAD_REQUEST, page_wrong_state);
      authorization_fail (auth, g_error_new (OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_FAILED,
                                             "The authorization answer did not carry this "
                                             "request's state; someone may have tried to slip "
                                             "in their own; run outbox account authorize %s "
                                             "again", auth->clean_name));
      return;
    }
  if (error != NULL)
    {
      answer_browser (auth, msg, SOUP_STATUS_OK, page_refused);
      authorization_fail (auth, redirect_error (auth->clean_name, error,
                                                query_value (query, "error_description")));
      return;
    }
  if (code == NULL || code[0] == '\0')
    {
      answer_browser (auth, msg, SOUP_STATUS_BAD_REQUEST, page_no_code);
      authorization_fail (auth, g_error_new (OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL,
                                             "The authorization answer carried neither a code "
                                             "nor an error; run outbox account authorize %s "
                                             "again", auth->clean_name));
      return;
    }

  answer_browser (auth, msg, SOUP_STATUS_OK, page_done);
  outbox_oauth2_exchange_code_async (auth->session, auth->settings, auth->client_secret, code,
                                     auth->verifier, auth->redirect_uri, NULL,
                                     on_code_exchanged, auth);
}

static void
on_redirect (SoupServer        *server,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query,
             gpointer           user_data)
{
  Authorization *auth = user_data;

  /* Browsers ask for /favicon.ico and the like: not the answer. */
  if (!g_str_equal (path, "/"))
    soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
  else if (g_strcmp0 (soup_server_message_get_method (msg), SOUP_METHOD_GET) != 0)
    soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
  else if (auth->redirect_taken)
    answer_browser (NULL, msg, SOUP_STATUS_OK, page_already);
  else
    {
      /* The answer came: from now on the token endpoint's own timeout
       * applies. */
      auth->redirect_taken = TRUE;
      g_clear_handle_id (&auth->timeout_id, g_source_remove);
      take_redirect (auth, msg, query);
    }
}

static gboolean
on_redirect_timeout (gpointer user_data)
{
  Authorization *auth = user_data;

  auth->timeout_id = 0;
  authorization_fail (auth, g_error_new (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_TEMPORARY,
                                         "No authorization came back from the browser within "
                                         "%d minutes; run outbox account authorize %s again",
                                         REDIRECT_TIMEOUT_SECONDS / 60, auth->clean_name));
  /* Whatever is still being sent is not waited for. */
  g_main_loop_quit (auth->loop);
  return G_SOURCE_REMOVE;
}

/* RFC 8252 section 7.3: the IPv4 loopback address rather than "localhost",
 * which could resolve elsewhere, and a port the system picks. */
static gboolean
listen_on_loopback (SoupServer *server,
                    guint      *out_port,
                    GError    **error)
{
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  GSList *uris;

  if (!soup_server_listen (server, address, 0, error))
    return FALSE;
  uris = soup_server_get_uris (server);
  *out_port = uris != NULL ? (guint) g_uri_get_port (uris->data) : 0;
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  if (*out_port == 0)
    {
      g_set_error_literal (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_TEMPORARY,
                           "cannot find the port of the loopback server");
      return FALSE;
    }
  return TRUE;
}

static void
open_browser (const char *url)
{
  g_autoptr(GError) error = NULL;

  /* The address is printed already: a missing browser is no failure. */
  if (!g_app_info_launch_default_for_uri (url, NULL, &error))
    g_printerr ("%s: no browser could be opened; open the address above yourself\n",
                g_get_application_name ());
}

/* The address to open for a new request (its PKCE verifier and state
 * kept in @auth); NULL with @error when no request can be made. */
static char *
prepare_code_grant (Authorization *auth,
                    guint          port,
                    const char    *login_hint,
                    GError       **error)
{
  g_autofree char *challenge = NULL;

  auth->redirect_uri = g_strdup_printf ("http://127.0.0.1:%u/", port);
  if (!outbox_oauth2_pkce_new (&auth->verifier, &challenge, error))
    return NULL;
  auth->state = outbox_oauth2_random_state (error);
  if (auth->state == NULL)
    return NULL;
  return outbox_oauth2_authorization_url (auth->settings, auth->redirect_uri, auth->state,
                                          challenge, login_hint, error);
}

static gboolean
run_code_grant (Authorization *auth,
                const char    *login_hint,
                gboolean       launch_browser,
                GError       **error)
{
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  g_autofree char *url = NULL;
  guint port = 0;

  if (!listen_on_loopback (server, &port, error))
    return FALSE;
  url = prepare_code_grant (auth, port, login_hint, error);
  if (url == NULL)
    return FALSE;

  soup_server_add_handler (server, NULL, on_redirect, auth, NULL);
  g_print ("Open this address in a browser to authorize account %s:\n  %s\n",
           auth->clean_name, url);
  /* Whoever reads our output (a script, a test) needs the address now. */
  fflush (stdout);
  if (launch_browser)
    open_browser (url);

  auth->timeout_id = g_timeout_add_seconds (REDIRECT_TIMEOUT_SECONDS, on_redirect_timeout, auth);
  g_main_loop_run (auth->loop);
  g_clear_handle_id (&auth->timeout_id, g_source_remove);
  soup_server_disconnect (server);
  return TRUE;
}

/* The device grant ------------------------------------------------------------ */

static void
on_device_polled (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GError *error = NULL;
  OutboxOAuth2Tokens *tokens = outbox_oauth2_device_poll_finish (result, &error);

  on_tokens (user_data, tokens, error);
}

static void
print_device_instructions (Authorization                *auth,
                           const OutboxOAuth2DeviceCode *device)
{
  g_autofree char *uri = outbox_cli_sanitize (device->verification_uri);
  g_autofree char *code = outbox_cli_sanitize (device->user_code);

  g_print ("To authorize account %s, visit %s and enter the code %s\n",
           auth->clean_name, uri, code);
  if (device->verification_uri_complete != NULL)
    {
      g_autofree char *complete = outbox_cli_sanitize (device->verification_uri_complete);

      g_print ("or open this address, which holds the code:\n  %s\n", complete);
    }
  g_print ("Waiting for the authorization (the code is good for %u minutes)…\n",
           MAX (1u, device->expires_in / 60));
  fflush (stdout);
}

static void
on_device_started (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Authorization *auth = user_data;
  GError *error = NULL;
  g_autoptr(OutboxOAuth2DeviceCode) device = outbox_oauth2_device_start_finish (result, &error);

  if (device == NULL)
    {
      authorization_fail (auth, error);
      return;
    }
  print_device_instructions (auth, device);
  outbox_oauth2_device_poll_async (auth->session, auth->settings, auth->client_secret, device,
                                   OUTBOX_OAUTH2_SLOW_DOWN_STEP_MS, NULL, on_device_polled,
                                   auth);
}

/* The poll ends by itself when the device code expires. */
static void
run_device_grant (Authorization *auth)
{
  outbox_oauth2_device_start_async (auth->session, auth->settings, auth->client_secret, NULL,
                                    on_device_started, auth);
  g_main_loop_run (auth->loop);
}

/* Google's device flow serves a fixed list of scopes, and mail is not on it. */
static gboolean
check_device_grant (const char                 *provider,
                    const OutboxOAuth2Settings *settings,
                    const char                 *clean_name,
                    GError                    **error)
{
  const OutboxOAuth2Provider *preset = outbox_oauth2_provider_lookup (provider);

  if (preset != NULL && !preset->device_grant_allowed_for_mail)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                   "%s does not allow the device flow (--device) for mail scopes; run outbox "
                   "account authorize %s without --device, in a browser",
                   g_str_equal (provider, "google") ? "Google" : provider, clean_name);
      return FALSE;
    }
  if (settings->device_url == NULL)
    {
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_CONFIG,
                   "Account %s has no OAuth2 device endpoint; give it with outbox account "
                   "update %s --oauth2-device-url URL, or run without --device",
                   clean_name, clean_name);
      return FALSE;
    }
  return TRUE;
}

/* The command ------------------------------------------------------------------ */

static int
store_refresh_token (const char *name,
                     const char *clean_name,
                     const char *refresh_token)
{
  g_autoptr(GError) error = NULL;

  if (!outbox_cli_bus_set_password (name, "oauth2", refresh_token, &error))
    {
      int status = outbox_cli_report_error (error, NULL);

      g_printerr ("%s: the authorization of account %s was not stored; run outbox account "
                  "authorize %s again\n", g_get_application_name (), clean_name, clean_name);
      return status;
    }
  g_print ("Account %s is authorized; Outbox keeps its refresh token in the Secret Service.\n",
           clean_name);
  return EXIT_SUCCESS;
}

/* What to do after a refusal that only a new authorization mends. */
static char *
failure_hint (const GError *error,
              const char   *clean_name,
              gboolean      device)
{
  if (g_error_matches (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_INVALID_GRANT) ||
      g_error_matches (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_ACCESS_DENIED) ||
      g_error_matches (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN))
    return g_strdup_printf ("run outbox account authorize %s%s again", clean_name,
                            device ? " --device" : "");
  return NULL;
}

static int
report_failure (const GError *error,
                const char   *clean_name,
                gboolean      device)
{
  g_autofree char *hint = failure_hint (error, clean_name, device);

  return report_error (error, hint);
}

static int
authorize (const char *name,
           gboolean    device,
           gboolean    launch_browser)
{
  g_autofree char *clean_name = outbox_cli_sanitize (name);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) account = NULL;
  g_autoptr(OutboxOAuth2Settings) settings = NULL;
  char *client_secret = NULL;
  /* Declared last so that it goes first: it borrows from the above. */
  g_auto(Authorization) auth = { NULL, };

  account = lookup_account (name, clean_name, &error);
  if (account == NULL)
    return outbox_cli_report_error (error, NULL);
  settings = settings_from_account (account, clean_name, &error);
  if (settings == NULL)
    return outbox_cli_report_error (error, NULL);
  auth.provider = lookup_setting (account, "oauth2", NULL);
  if (device && !check_device_grant (auth.provider, settings, clean_name, &error))
    return error->code == OUTBOX_CLI_ERROR_USAGE ? outbox_cli_report_usage (COMMAND, error)
                                                 : outbox_cli_report_error (error, NULL);
  if (!lookup_client_secret (name, &client_secret, &error))
    return report_error (error, NULL);

  auth.loop = g_main_loop_new (NULL, FALSE);
  auth.clean_name = clean_name;
  auth.settings = settings;
  auth.client_secret = client_secret;
  auth.session = outbox_oauth2_session_new ();
  if (device)
    run_device_grant (&auth);
  else if (!run_code_grant (&auth, lookup_setting (account, "from", NULL), launch_browser,
                            &error))
    auth.error = g_steal_pointer (&error);

  /* Nothing needs the secret any more: nothing is in flight. */
  g_clear_object (&auth.session);
  auth.client_secret = NULL;
  secret_password_free (client_secret);
  if (auth.error != NULL)
    return report_failure (auth.error, clean_name, device);
  return store_refresh_token (name, clean_name, auth.tokens->refresh_token);
}

static gboolean opt_device;
static gboolean opt_no_browser;

static const GOptionEntry entries[] = {
  { "device", 0, 0, G_OPTION_ARG_NONE, &opt_device, "Authorize on another device with a code (RFC 8628), without a browser here", NULL },
  { "no-browser", 0, 0, G_OPTION_ARG_NONE, &opt_no_browser, "Print the address to open; do not open a browser", NULL },
  G_OPTION_ENTRY_NULL
};

static int
run_account_authorize (char **args)
{
  return authorize (args[0], opt_device, !opt_no_browser);
}

const OutboxCliCommand outbox_cli_account_authorize_command = {
  .name = "authorize",
  .summary = "Authorize an OAuth2 account at its provider",
  .run = run_account_authorize,
  .entries = entries,
  OUTBOX_CLI_ONE_ARGUMENT ("NAME"),
  .description = "Authorize Outbox to sign in to an OAuth2 account: sign in with the provider\n"
                 "in a browser (or, with --device, on another device). The refresh token goes to\n"
                 "the Secret Service; the daemon gets access tokens with it from then on.",
};
