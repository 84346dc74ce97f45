/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <libsoup/soup.h>
#include <string.h>

#include "outbox-oauth2.h"

#define CLIENT_ID "client-1.apps.example"
#define CLIENT_SECRET "s3cret&=+ value"
#define REDIRECT_URI "http://127.0.0.1:4711/callback?x=1"
#define ACCESS_TOKEN "ya29.access-token-value"
#define REFRESH_TOKEN "1//refresh-token+/="

#define TOKEN_ANSWER(extra)                                                                        \
  "{\"access_token\": \"" ACCESS_TOKEN "\", \"token_type\": \"Bearer\", "                          \
  "\"expires_in\": 3599" extra "}"

/* PKCE and state ------------------------------------------------------------ */

static gboolean
is_base64url (const char *text)
{
  for (const char *p = text; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '_')
        return FALSE;
    }
  return TRUE;
}

/* RFC 7636 appendix B (the value there; hashlib agrees). */
static void
test_pkce_rfc_example (void)
{
  g_autofree char *challenge =
      outbox_oauth2_pkce_challenge ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");

  g_assert_cmpstr (challenge, ==, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

static void
test_pkce_new (void)
{
  g_autofree char *verifier = NULL;
  g_autofree char *challenge = NULL;
  g_autofree char *other_verifier = NULL;
  g_autofree char *other_challenge = NULL;
  g_autofree char *expected = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_oauth2_pkce_new (&verifier, &challenge, &error));
  g_assert_no_error (error);
  /* RFC 7636 section 4.1: 43 to 128 unreserved characters. */
  g_assert_cmpuint (strlen (verifier), ==, 43);
  g_assert_true (is_base64url (verifier));
  g_assert_cmpuint (strlen (challenge), ==, 43);
  g_assert_true (is_base64url (challenge));
  expected = outbox_oauth2_pkce_challenge (verifier);
  g_assert_cmpstr (challenge, ==, expected);

  g_assert_true (outbox_oauth2_pkce_new (&other_verifier, &other_challenge, NULL));
  g_assert_cmpstr (verifier, !=, other_verifier);
}

static void
test_state (void)
{
  g_autofree char *state = outbox_oauth2_random_state (NULL);
  g_autofree char *other = outbox_oauth2_random_state (NULL);

  /* 16 octets: 22 characters without padding. */
  g_assert_cmpuint (strlen (state), ==, 22);
  g_assert_true (is_base64url (state));
  g_assert_cmpstr (state, !=, other);
}

/* Providers and settings ---------------------------------------------------- */

static void
test_providers (void)
{
  const OutboxOAuth2Provider *google = outbox_oauth2_provider_lookup ("google");
  const OutboxOAuth2Provider *microsoft = outbox_oauth2_provider_lookup ("microsoft");
  g_autoptr (OutboxOAuth2Settings) settings = NULL;

  g_assert_nonnull (google);
  g_assert_cmpstr (google->token_url, ==, "https://oauth2.googleapis.com/token");
  g_assert_cmpstr (google->scope, ==, "https://mail.google.com/");
  g_assert_false (google->device_grant_allowed_for_mail);

  g_assert_nonnull (microsoft);
  g_assert_cmpstr (microsoft->token_url, ==,
                   "https://login.microsoftonline.com/common/oauth2/v2.0/token");
  g_assert_true (g_str_has_suffix (microsoft->scope, " offline_access"));
  g_assert_true (microsoft->device_grant_allowed_for_mail);

  g_assert_null (outbox_oauth2_provider_lookup ("yahoo"));
  g_assert_null (outbox_oauth2_provider_lookup ("Google"));

  settings = outbox_oauth2_settings_new_for_provider (microsoft, CLIENT_ID);
  g_assert_cmpstr (settings->device_url, ==, microsoft->device_url);
  g_assert_cmpstr (settings->client_id, ==, CLIENT_ID);
  for (const OutboxOAuth2Provider *p = google; p != NULL; p = p == google ? microsoft : NULL)
    {
      g_assert_true (outbox_oauth2_check_endpoint (p->auth_url, NULL));
      g_assert_true (outbox_oauth2_check_endpoint (p->token_url, NULL));
      g_assert_true (outbox_oauth2_check_endpoint (p->device_url, NULL));
    }
}

/* Endpoints ----------------------------------------------------------------- */

static const struct
{
  const char *url;
  gboolean allowed;
} endpoints[] = {
  { "https://example.org/token", TRUE },
  { "HTTPS://example.org/token", TRUE },
  { "http://127.0.0.1:8080/token", TRUE },
  { "http://127.200.3.4/token", TRUE },
  { "http://[::1]:9/token", TRUE },
  { "http://localhost/token", TRUE },
  { "http://LocalHost:80/token", TRUE },
  { "http://example.org/token", FALSE },
  { "http://10.0.0.1/token", FALSE },
  { "http://127.0.0.1.example.org/token", FALSE },
  { "http://localhost.example.org/token", FALSE },
  { "http://[::2]/token", FALSE },
  { "ftp://127.0.0.1/token", FALSE },
  { "https://user:password@example.org/token", FALSE },
  { "https:///token", FALSE },
  { "/token", FALSE },
  { "not a url", FALSE },
  { "", FALSE },
};

static void
test_endpoints (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (endpoints); i++)
    {
      g_autoptr (GError) error = NULL;
      gboolean allowed = outbox_oauth2_check_endpoint (endpoints[i].url, &error);

      g_test_message ("%s", endpoints[i].url);
      g_assert_cmpint (allowed, ==, endpoints[i].allowed);
      if (!allowed)
        g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL);
    }
}

static void
test_endpoint_message (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_oauth2_check_endpoint ("http://example.org/token?secret=1", &error));
  g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL);
  g_assert_nonnull (strstr (error->message, "http://example.org/token"));
  g_assert_nonnull (strstr (error->message, "https"));
  g_assert_nonnull (strstr (error->message, "loopback"));
  g_assert_null (strstr (error->message, "secret"));
}

/* The authorization URL ---------------------------------------------------- */

static GHashTable *
query_of (const char *url)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED_QUERY, &error);
  GHashTable *params;

  g_assert_no_error (error);
  params = g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE, &error);
  g_assert_no_error (error);
  return params;
}

static char *
authorization_url (const char *provider, const char *login_hint)
{
  g_autoptr (OutboxOAuth2Settings) settings =
      outbox_oauth2_settings_new_for_provider (outbox_oauth2_provider_lookup (provider), CLIENT_ID);
  g_autoptr (GError) error = NULL;
  char *url = outbox_oauth2_authorization_url (settings, REDIRECT_URI, "st+ate/1", "chal-lenge_1",
                                               login_hint, &error);

  g_assert_no_error (error);
  return url;
}

static void
test_authorization_url_google (void)
{
  g_autofree char *url = authorization_url ("google", "ann+mail@example.org");
  g_autoptr (GHashTable) params = query_of (url);

  g_assert_true (g_str_has_prefix (url, "https://accounts.google.com/o/oauth2/v2/auth?"));
  g_assert_cmpuint (g_hash_table_size (params), ==, 9);
  g_assert_cmpstr (g_hash_table_lookup (params, "response_type"), ==, "code");
  g_assert_cmpstr (g_hash_table_lookup (params, "client_id"), ==, CLIENT_ID);
  g_assert_cmpstr (g_hash_table_lookup (params, "redirect_uri"), ==, REDIRECT_URI);
  g_assert_cmpstr (g_hash_table_lookup (params, "scope"), ==, "https://mail.google.com/");
  g_assert_cmpstr (g_hash_table_lookup (params, "state"), ==, "st+ate/1");
  g_assert_cmpstr (g_hash_table_lookup (params, "code_challenge"), ==, "chal-lenge_1");
  g_assert_cmpstr (g_hash_table_lookup (params, "code_challenge_method"), ==, "S256");
  g_assert_cmpstr (g_hash_table_lookup (params, "access_type"), ==, "offline");
  g_assert_cmpstr (g_hash_table_lookup (params, "login_hint"), ==, "ann+mail@example.org");
  /* Escaped, not merely passed through: '+' would read as a space. */
  g_assert_nonnull (strstr (url, "login_hint=ann%2Bmail%40example.org"));
  g_assert_nonnull (strstr (url, "redirect_uri=http%3A%2F%2F127.0.0.1%3A4711%2Fcallback%3Fx%3D1"));
}

static void
test_authorization_url_microsoft (void)
{
  g_autofree char *url = authorization_url ("microsoft", NULL);
  g_autoptr (GHashTable) params = query_of (url);

  g_assert_true (g_str_has_prefix (
      url, "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?response_type=code&"));
  g_assert_cmpuint (g_hash_table_size (params), ==, 7);
  g_assert_false (g_hash_table_contains (params, "access_type"));
  g_assert_false (g_hash_table_contains (params, "login_hint"));
  g_assert_cmpstr (g_hash_table_lookup (params, "scope"), ==,
                   outbox_oauth2_provider_lookup ("microsoft")->scope);
  g_assert_nonnull (strstr (url, "SMTP.Send%20https%3A%2F%2F"));
}

static void
test_authorization_url_existing_query (void)
{
  OutboxOAuth2Settings settings = {
    .auth_url = "https://id.example.org/auth?tenant=a%20b#fragment",
    .client_id = CLIENT_ID,
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *url =
      outbox_oauth2_authorization_url (&settings, REDIRECT_URI, "s", "c", NULL, &error);
  g_autoptr (GHashTable) params = NULL;

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (url, "https://id.example.org/auth?tenant=a%20b&response_type="));
  g_assert_null (strchr (url, '#'));
  params = query_of (url);
  g_assert_cmpstr (g_hash_table_lookup (params, "tenant"), ==, "a b");
  g_assert_false (g_hash_table_contains (params, "scope"));
}

static void
test_authorization_url_insecure (void)
{
  OutboxOAuth2Settings settings = {
    .auth_url = "http://id.example.org/auth",
    .client_id = CLIENT_ID,
  };
  g_autoptr (GError) error = NULL;
  g_autofree char *url =
      outbox_oauth2_authorization_url (&settings, REDIRECT_URI, "s", "c", NULL, &error);

  g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL);
  g_assert_null (url);
}

/* Token answers -------------------------------------------------------------- */

static OutboxOAuth2Tokens *
parse_ok (guint status, const char *body)
{
  OutboxOAuth2Tokens *tokens = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_oauth2_parse_token_response (status, body, strlen (body), &tokens, &error));
  g_assert_no_error (error);
  g_assert_nonnull (tokens);
  return tokens;
}

/* The error of an answer that must be refused; its message never holds a
 * token of the answer. */
static GError *
parse_fails (guint status, const char *body, gsize len)
{
  OutboxOAuth2Tokens *tokens = NULL;
  GError *error = NULL;

  g_assert_false (outbox_oauth2_parse_token_response (status, body, len, &tokens, &error));
  g_assert_null (tokens);
  g_assert_nonnull (error);
  g_assert_true (error->domain == OUTBOX_OAUTH2_ERROR);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_null (strstr (error->message, ACCESS_TOKEN));
  g_assert_null (strstr (error->message, REFRESH_TOKEN));
  return error;
}

static void
test_parse_success (void)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr (OutboxOAuth2Tokens) tokens = parse_ok (
      200, TOKEN_ANSWER (", \"refresh_token\": \"" REFRESH_TOKEN "\", \"scope\": \"a b\""));

  g_assert_cmpstr (tokens->access_token, ==, ACCESS_TOKEN);
  g_assert_cmpstr (tokens->refresh_token, ==, REFRESH_TOKEN);
  g_assert_cmpstr (tokens->scope, ==, "a b");
  g_assert_cmpint (tokens->expires_at, >=, now + 3599);
  g_assert_cmpint (tokens->expires_at, <=, now + 3599 + 5);
}

static void
test_parse_not_rotated (void)
{
  g_autoptr (OutboxOAuth2Tokens) tokens = parse_ok (200, TOKEN_ANSWER (""));
  g_autoptr (OutboxOAuth2Tokens) empty = parse_ok (200, TOKEN_ANSWER (", \"refresh_token\": \"\""));

  g_assert_null (tokens->refresh_token);
  g_assert_null (tokens->scope);
  g_assert_null (empty->refresh_token);
}

static void
test_parse_expires_in (void)
{
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  g_autoptr (OutboxOAuth2Tokens) absent =
      parse_ok (200, "{\"access_token\": \"a\", \"token_type\": \"bearer\"}");
  g_autoptr (OutboxOAuth2Tokens) text =
      parse_ok (200, "{\"access_token\": \"a\", \"token_type\": \"BEARER\", \"expires_in\": \"60\"}");
  const char *bad[] = {
    "{\"access_token\": \"a\", \"token_type\": \"bearer\", \"expires_in\": -1}",
    "{\"access_token\": \"a\", \"token_type\": \"bearer\", \"expires_in\": 1.5}",
    "{\"access_token\": \"a\", \"token_type\": \"bearer\", \"expires_in\": \"soon\"}",
    "{\"access_token\": \"a\", \"token_type\": \"bearer\", \"expires_in\": [60]}",
    "{\"access_token\": \"a\", \"token_type\": \"bearer\", \"expires_in\": 99999999999}",
  };

  g_assert_cmpint (absent->expires_at, ==, 0);
  g_assert_cmpint (text->expires_at, >=, now + 60);
  g_assert_cmpint (text->expires_at, <=, now + 65);
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = parse_fails (200, bad[i], strlen (bad[i]));

      g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL);
    }
}

static void
test_parse_not_bearer (void)
{
  const char *bodies[] = {
    "{\"access_token\": \"" ACCESS_TOKEN "\", \"token_type\": \"mac\"}",
    "{\"access_token\": \"" ACCESS_TOKEN "\"}",
    "{\"access_token\": \"" ACCESS_TOKEN "\", \"token_type\": 1}",
    "{\"token_type\": \"bearer\", \"refresh_token\": \"" REFRESH_TOKEN "\"}",
    "{\"access_token\": \"\", \"token_type\": \"bearer\"}",
    "{\"access_token\": 12, \"token_type\": \"bearer\"}",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr (GError) error = parse_fails (200, bodies[i], strlen (bodies[i]));

      g_test_message ("%s: %s", bodies[i], error->message);
      g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL);
    }
}

static const struct
{
  const char *code;
  guint status;
  OutboxOAuth2Error expected;
} error_answers[] = {
  { "invalid_grant", 400, OUTBOX_OAUTH2_ERROR_INVALID_GRANT },
  { "invalid_client", 401, OUTBOX_OAUTH2_ERROR_INVALID_CLIENT },
  { "unauthorized_client", 400, OUTBOX_OAUTH2_ERROR_INVALID_CLIENT },
  { "invalid_scope", 400, OUTBOX_OAUTH2_ERROR_INVALID_SCOPE },
  { "authorization_pending", 400, OUTBOX_OAUTH2_ERROR_AUTHORIZATION_PENDING },
  { "slow_down", 400, OUTBOX_OAUTH2_ERROR_SLOW_DOWN },
  { "access_denied", 400, OUTBOX_OAUTH2_ERROR_ACCESS_DENIED },
  { "expired_token", 400, OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN },
  { "invalid_request", 400, OUTBOX_OAUTH2_ERROR_FAILED },
  { "unsupported_grant_type", 400, OUTBOX_OAUTH2_ERROR_FAILED },
  /* Some providers answer an error with 200. */
  { "invalid_grant", 200, OUTBOX_OAUTH2_ERROR_INVALID_GRANT },
};

static void
test_parse_errors (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (error_answers); i++)
    {
      g_autofree char *body = g_strdup_printf (
          "{\"error\": \"%s\", \"error_description\": \"Token has been expired or revoked.\", "
          "\"error_uri\": \"https://example.org/e\"}",
          error_answers[i].code);
      g_autofree char *bare = g_strdup_printf ("{\"error\": \"%s\"}", error_answers[i].code);
      g_autoptr (GError) error = parse_fails (error_answers[i].status, body, strlen (body));
      g_autoptr (GError) bare_error = parse_fails (error_answers[i].status, bare, strlen (bare));

      g_test_message ("%s", error->message);
      g_assert_error (error, OUTBOX_OAUTH2_ERROR, (gint) error_answers[i].expected);
      g_assert_nonnull (strstr (error->message, error_answers[i].code));
      g_assert_nonnull (strstr (error->message, "“Token has been expired or revoked.”"));
      g_assert_error (bare_error, OUTBOX_OAUTH2_ERROR, (gint) error_answers[i].expected);
      g_assert_null (strstr (bare_error->message, "says"));
    }
}

static void
test_parse_invalid_grant_message (void)
{
  const char *body = "{\"error\": \"invalid_grant\"}";
  g_autoptr (GError) error = parse_fails (400, body, strlen (body));

  g_assert_nonnull (strstr (error->message, "authorized again"));
  g_assert_cmpstr (outbox_oauth2_error_code_to_string (error->code), ==, "invalid_grant");
}

static void
test_parse_error_names (void)
{
  g_assert_cmpstr (outbox_oauth2_error_code_to_string (OUTBOX_OAUTH2_ERROR_SLOW_DOWN), ==,
                   "slow_down");
  g_assert_cmpstr (outbox_oauth2_error_code_to_string (OUTBOX_OAUTH2_ERROR_BAD_URL), ==,
                   "bad_url");
  g_assert_cmpstr (outbox_oauth2_error_code_to_string (OUTBOX_OAUTH2_ERROR_NETWORK), ==,
                   "network");
  g_assert_cmpstr (outbox_oauth2_error_code_to_string (999), ==, "failed");
}

static void
test_parse_unknown_error_sanitized (void)
{
  const char *body = "{\"error\": \"weird\\u001b[31m_code_that_goes_on_and_on_and_on_and_on_x\"}";
  g_autoptr (GError) error = parse_fails (400, body, strlen (body));

  g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_FAILED);
  g_assert_null (strchr (error->message, '\033'));
  g_assert_nonnull (strstr (error->message, "…"));
}

static void
test_parse_huge_description (void)
{
  GString *body = g_string_new ("{\"error\": \"invalid_grant\", \"error_description\": \"");
  g_autoptr (GError) error = NULL;
  const char *quoted;

  g_string_append (body, "line\\none\\ttab\\u0007bell\\u202Eright-to-left ");
  for (guint i = 0; i < 5000; i++)
    g_string_append (body, "é");
  g_string_append (body, "\"}");
  error = parse_fails (400, body->str, body->len);
  g_string_free (body, TRUE);

  g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_INVALID_GRANT);
  quoted = strstr (error->message, "“");
  g_assert_nonnull (quoted);
  /* The quote, the ellipsis and the closing mark. */
  g_assert_cmpint (g_utf8_strlen (quoted, -1), ==, 1 + OUTBOX_OAUTH2_MAX_DESCRIPTION + 1 + 1);
  g_assert_true (g_str_has_suffix (error->message, "…”"));
  g_assert_true (g_str_has_prefix (quoted, "“line one tab\xef\xbf\xbd" "bell\xef\xbf\xbdright"));
  for (const char *p = error->message; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_true (g_unichar_isprint (g_utf8_get_char (p)));
}

static void
test_parse_garbage (void)
{
  static const char nul[] = "{\"access_token\": \"a\0b\", \"token_type\": \"bearer\"}";
  const struct
  {
    const char *body;
    gsize len;
  } bodies[] = {
    { "", 0 },
    { "not json", 8 },
    { "[]", 2 },
    { "\"text\"", 6 },
    { "{", 1 },
    { "{\"access_token\": \"a\", \"token_type\": \"bearer\"", 44 },
    { nul, sizeof nul - 1 },
    { "{\"access_token\": \"\xff\", \"token_type\": \"bearer\"}", 46 },
    { "{\"error\": 5}", 12 },
    { "{\"error\": \"\"}", 13 },
    { "{\"error\": null, \"access_token\": 1}", 34 },
  };
  g_autofree char *deep = g_strnfill (100000, '[');

  for (gsize i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr (GError) error = parse_fails (200, bodies[i].body, bodies[i].len);

      g_test_message ("%zu: %s", i, error->message);
      g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL);
    }
  for (guint depth = 10; depth < 60000; depth *= 3)
    {
      g_autoptr (GError) error = parse_fails (200, deep, depth);

      g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL);
    }
}

static void
test_parse_http_errors (void)
{
  const char *html = "<html><body>Service Unavailable</body></html>";
  const char *json = "{\"message\": \"rate limited\"}";
  g_autoptr (GError) error = parse_fails (503, html, strlen (html));
  g_autoptr (GError) json_error = parse_fails (429, json, strlen (json));

  g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_HTTP);
  g_assert_nonnull (strstr (error->message, "503"));
  g_assert_error (json_error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_HTTP);
}

static void
test_parse_too_large (void)
{
  GString *body = g_string_new ("{\"access_token\": \"a\", \"token_type\": \"bearer\", \"x\": \"");
  g_autoptr (GError) error = NULL;

  while (body->len <= OUTBOX_OAUTH2_MAX_RESPONSE)
    g_string_append (body, "abcdefghijklmnop");
  g_string_append (body, "\"}");
  error = parse_fails (200, body->str, body->len);
  g_string_free (body, TRUE);
  g_assert_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL);
}

static void
test_parse_device (void)
{
  const char *google = "{\"device_code\": \"dev-code\", \"user_code\": \"GQVQ-JKEC\", "
                       "\"verification_url\": \"https://www.google.com/device\", "
                       "\"expires_in\": 1800, \"interval\": 5}";
  const char *microsoft = "{\"device_code\": \"dev-code\", \"user_code\": \"FGH7QWERT\", "
                          "\"verification_uri\": \"https://microsoft.com/devicelogin\", "
                          "\"verification_uri_complete\": \"https://microsoft.com/d?c=FGH\", "
                          "\"expires_in\": \"900\", \"message\": \"To sign in...\"}";
  const char *bad[] = {
    "{\"user_code\": \"U\", \"verification_uri\": \"https://e.org/d\", \"expires_in\": 9}",
    "{\"device_code\": \"d\", \"user_code\": \"U\\n\", \"verification_uri\": \"https://e.org/d\", "
    "\"expires_in\": 9}",
    "{\"device_code\": \"d\", \"user_code\": \"U\", \"verification_uri\": \"javascript:x\", "
    "\"expires_in\": 9}",
    "{\"device_code\": \"d\", \"user_code\": \"U\", \"verification_uri\": \"https://e.org/d\"}",
    "{\"device_code\": \"d\", \"user_code\": \"U\", \"verification_uri\": \"https://e.org/d\", "
    "\"expires_in\": 9, \"interval\": 100000}",
  };
  g_autoptr (OutboxOAuth2DeviceCode) device = NULL;
  g_autoptr (OutboxOAuth2DeviceCode) other = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (
      outbox_oauth2_parse_device_response (200, google, strlen (google), &device, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (device->device_code, ==, "dev-code");
  g_assert_cmpstr (device->user_code, ==, "GQVQ-JKEC");
  g_assert_cmpstr (device->verification_uri, ==, "https://www.google.com/device");
  g_assert_null (device->verification_uri_complete);
  g_assert_cmpuint (device->interval, ==, 5);
  g_assert_cmpuint (device->expires_in, ==, 1800);

  g_assert_true (
      outbox_oauth2_parse_device_response (200, microsoft, strlen (microsoft), &other, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (other->verification_uri_complete, ==, "https://microsoft.com/d?c=FGH");
  g_assert_cmpuint (other->interval, ==, OUTBOX_OAUTH2_DEFAULT_INTERVAL);
  g_assert_cmpuint (other->expires_in, ==, 900);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      OutboxOAuth2DeviceCode *none = NULL;
      g_autoptr (GError) bad_error = NULL;

      g_assert_false (
          outbox_oauth2_parse_device_response (200, bad[i], strlen (bad[i]), &none, &bad_error));
      g_assert_error (bad_error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL);
      g_assert_null (none);
    }
}

/* A token endpoint on loopback -----------------------------------------------
 *
 * SoupServer in this process answers each POST with the next scripted
 * answer (500 when there is none) and records what it was sent. */

typedef struct
{
  guint status;
  char *body;
  char *location; /* (nullable) */
} Answer;

typedef struct
{
  char *path;
  char *method;
  char *content_type;
  char *accept;
  GHashTable *form; /* name -> value */
  gint64 time;      /* monotonic, microseconds */
} Request;

typedef struct
{
  SoupServer *server;
  char *base_url;
  GQueue answers;     /* Answer */
  GPtrArray *requests; /* Request */
  OutboxOAuth2Settings settings;
  SoupSession *session;
  gboolean done;
  OutboxOAuth2Tokens *tokens;
  OutboxOAuth2DeviceCode *device;
  GError *error;
} Fixture;

static void
answer_free (Answer *answer)
{
  g_free (answer->body);
  g_free (answer->location);
  g_free (answer);
}

static void
request_free (Request *request)
{
  g_free (request->path);
  g_free (request->method);
  g_free (request->content_type);
  g_free (request->accept);
  g_hash_table_unref (request->form);
  g_free (request);
}

static void
on_request (SoupServer *server,
            SoupServerMessage *message,
            const char *path,
            GHashTable *query,
            gpointer user_data)
{
  Fixture *f = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (message);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (message);
  g_autofree char *text = g_strndup (body->data, body->length);
  Request *request = g_new0 (Request, 1);
  Answer *answer = g_queue_pop_head (&f->answers);

  request->path = g_strdup (path);
  request->method = g_strdup (soup_server_message_get_method (message));
  request->content_type = g_strdup (soup_message_headers_get_one (headers, "Content-Type"));
  request->accept = g_strdup (soup_message_headers_get_one (headers, "Accept"));
  request->form = soup_form_decode (text);
  request->time = g_get_monotonic_time ();
  g_ptr_array_add (f->requests, request);

  if (answer == NULL)
    {
      soup_server_message_set_status (message, 500, NULL);
      return;
    }
  soup_server_message_set_status (message, answer->status, NULL);
  if (answer->location != NULL)
    soup_message_headers_replace (soup_server_message_get_response_headers (message), "Location",
                                  answer->location);
  soup_server_message_set_response (message, "application/json", SOUP_MEMORY_COPY, answer->body,
                                    strlen (answer->body));
  answer_free (answer);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  GSList *uris;

  f->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (f->server, NULL, on_request, f, NULL);
  soup_server_listen_local (f->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  uris = soup_server_get_uris (f->server);
  f->base_url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  g_queue_init (&f->answers);
  f->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) request_free);
  f->settings.token_url = g_strconcat (f->base_url, "/token", NULL);
  f->settings.device_url = g_strconcat (f->base_url, "/device", NULL);
  f->settings.scope = g_strdup ("mail offline_access");
  f->settings.client_id = g_strdup (CLIENT_ID);
  f->session = outbox_oauth2_session_new ();
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  /* The server frees a connection once it has seen the client close it. */
  g_clear_object (&f->session);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_free (f->base_url);
  g_queue_clear_full (&f->answers, (GDestroyNotify) answer_free);
  g_ptr_array_unref (f->requests);
  g_free (f->settings.token_url);
  g_free (f->settings.device_url);
  g_free (f->settings.scope);
  g_free (f->settings.client_id);
  g_clear_pointer (&f->tokens, outbox_oauth2_tokens_free);
  g_clear_pointer (&f->device, outbox_oauth2_device_code_free);
  g_clear_error (&f->error);
}

static void
serve (Fixture *f, guint status, const char *body)
{
  Answer *answer = g_new0 (Answer, 1);

  answer->status = status;
  answer->body = g_strdup (body);
  g_queue_push_tail (&f->answers, answer);
}

static Request *
request_at (Fixture *f, guint index)
{
  g_assert_cmpuint (index, <, f->requests->len);
  return g_ptr_array_index (f->requests, index);
}

static const char *
field (Request *request, const char *name)
{
  return g_hash_table_lookup (request->form, name);
}

/* A POST of a form that accepts JSON, with exactly @n_fields fields. */
static void
assert_form_post (Request *request, const char *path, guint n_fields)
{
  g_assert_cmpstr (request->method, ==, "POST");
  g_assert_cmpstr (request->path, ==, path);
  g_assert_cmpstr (request->content_type, ==, "application/x-www-form-urlencoded");
  g_assert_cmpstr (request->accept, ==, "application/json");
  g_assert_cmpuint (g_hash_table_size (request->form), ==, n_fields);
}

static void
wait_done (Fixture *f)
{
  while (!f->done)
    g_main_context_iteration (NULL, TRUE);
  f->done = FALSE;
}

static void
on_exchanged (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->tokens = outbox_oauth2_exchange_code_finish (result, &f->error);
  f->done = TRUE;
}

static void
on_refreshed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->tokens = outbox_oauth2_refresh_finish (result, &f->error);
  f->done = TRUE;
}

static void
on_device_started (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->device = outbox_oauth2_device_start_finish (result, &f->error);
  f->done = TRUE;
}

static void
on_polled (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->tokens = outbox_oauth2_device_poll_finish (result, &f->error);
  f->done = TRUE;
}

static void
refresh (Fixture *f, const char *client_secret)
{
  outbox_oauth2_refresh_async (f->session, &f->settings, client_secret, REFRESH_TOKEN, NULL,
                               on_refreshed, f);
  wait_done (f);
}

static void
test_exchange_code (Fixture *f, gconstpointer data)
{
  Request *request;

  serve (f, 200, TOKEN_ANSWER (", \"refresh_token\": \"" REFRESH_TOKEN "\""));
  outbox_oauth2_exchange_code_async (f->session, &f->settings, CLIENT_SECRET, "code/4+x",
                                     "verifier-1", REDIRECT_URI, NULL, on_exchanged, f);
  wait_done (f);

  g_assert_no_error (f->error);
  g_assert_cmpstr (f->tokens->access_token, ==, ACCESS_TOKEN);
  g_assert_cmpstr (f->tokens->refresh_token, ==, REFRESH_TOKEN);
  g_assert_cmpuint (f->requests->len, ==, 1);
  request = request_at (f, 0);
  assert_form_post (request, "/token", 6);
  g_assert_cmpstr (field (request, "grant_type"), ==, "authorization_code");
  g_assert_cmpstr (field (request, "code"), ==, "code/4+x");
  g_assert_cmpstr (field (request, "code_verifier"), ==, "verifier-1");
  g_assert_cmpstr (field (request, "redirect_uri"), ==, REDIRECT_URI);
  g_assert_cmpstr (field (request, "client_id"), ==, CLIENT_ID);
  g_assert_cmpstr (field (request, "client_secret"), ==, CLIENT_SECRET);
}

static void
test_exchange_code_without_secret (Fixture *f, gconstpointer data)
{
  serve (f, 200, TOKEN_ANSWER (""));
  outbox_oauth2_exchange_code_async (NULL, &f->settings, NULL, "code", "verifier", REDIRECT_URI,
                                     NULL, on_exchanged, f);
  wait_done (f);

  g_assert_no_error (f->error);
  assert_form_post (request_at (f, 0), "/token", 5);
  g_assert_false (g_hash_table_contains (request_at (f, 0)->form, "client_secret"));
}

static void
test_refresh (Fixture *f, gconstpointer data)
{
  Request *request;

  serve (f, 200, TOKEN_ANSWER (", \"refresh_token\": \"rotated\""));
  refresh (f, NULL);

  g_assert_no_error (f->error);
  g_assert_cmpstr (f->tokens->access_token, ==, ACCESS_TOKEN);
  g_assert_cmpstr (f->tokens->refresh_token, ==, "rotated");
  request = request_at (f, 0);
  assert_form_post (request, "/token", 4);
  g_assert_cmpstr (field (request, "grant_type"), ==, "refresh_token");
  g_assert_cmpstr (field (request, "refresh_token"), ==, REFRESH_TOKEN);
  g_assert_cmpstr (field (request, "client_id"), ==, CLIENT_ID);
  g_assert_cmpstr (field (request, "scope"), ==, "mail offline_access");
}

static void
test_refresh_with_secret (Fixture *f, gconstpointer data)
{
  serve (f, 200, TOKEN_ANSWER (""));
  g_clear_pointer (&f->settings.scope, g_free);
  refresh (f, CLIENT_SECRET);

  g_assert_no_error (f->error);
  g_assert_null (f->tokens->refresh_token);
  assert_form_post (request_at (f, 0), "/token", 4);
  g_assert_cmpstr (field (request_at (f, 0), "client_secret"), ==, CLIENT_SECRET);
  g_assert_false (g_hash_table_contains (request_at (f, 0)->form, "scope"));
}

static void
test_refresh_invalid_grant (Fixture *f, gconstpointer data)
{
  serve (f, 400, "{\"error\": \"invalid_grant\", \"error_description\": \"Bad Request\"}");
  refresh (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_INVALID_GRANT);
  g_assert_null (f->tokens);
}

static void
test_refresh_http_error (Fixture *f, gconstpointer data)
{
  serve (f, 503, "<html>down</html>");
  refresh (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_HTTP);
}

static void
test_refresh_redirect_not_followed (Fixture *f, gconstpointer data)
{
  Answer *answer = g_new0 (Answer, 1);

  answer->status = 307;
  answer->body = g_strdup ("");
  answer->location = g_strdup ("/elsewhere");
  g_queue_push_tail (&f->answers, answer);
  serve (f, 200, TOKEN_ANSWER (""));
  refresh (f, CLIENT_SECRET);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_HTTP);
  g_assert_cmpuint (f->requests->len, ==, 1);
}

static void
test_refresh_refused_url (Fixture *f, gconstpointer data)
{
  g_free (f->settings.token_url);
  f->settings.token_url = g_strdup ("http://example.org/token");
  refresh (f, CLIENT_SECRET);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL);
  g_assert_nonnull (strstr (f->error->message, "loopback"));
}

static void
test_refresh_without_client_id (Fixture *f, gconstpointer data)
{
  g_clear_pointer (&f->settings.client_id, g_free);
  refresh (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_INVALID_CLIENT);
  g_assert_cmpuint (f->requests->len, ==, 0);
}

static guint16
closed_loopback_port (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_assert_true (g_socket_bind (socket, any_port, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  /* Bound but not listening: connections are refused. */
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_refresh_unreachable (Fixture *f, gconstpointer data)
{
  g_free (f->settings.token_url);
  f->settings.token_url = g_strdup_printf ("http://127.0.0.1:%u/token", closed_loopback_port ());
  refresh (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_NETWORK);
}

static void
test_refresh_cancelled (Fixture *f, gconstpointer data)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();

  serve (f, 200, TOKEN_ANSWER (""));
  outbox_oauth2_refresh_async (f->session, &f->settings, NULL, REFRESH_TOKEN, cancellable,
                               on_refreshed, f);
  g_cancellable_cancel (cancellable);
  wait_done (f);

  g_assert_error (f->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

#define DEVICE_ANSWER(interval)                                                                    \
  "{\"device_code\": \"device-secret\", \"user_code\": \"WDJB-MJHT\", "                            \
  "\"verification_uri\": \"https://example.org/device\", \"expires_in\": 600, "                    \
  "\"interval\": " interval "}"
#define PENDING "{\"error\": \"authorization_pending\"}"
#define SLOW_DOWN "{\"error\": \"slow_down\"}"
#define SLOW_DOWN_STEP_MS 300

static void
start_device (Fixture *f, const char *answer)
{
  serve (f, 200, answer);
  outbox_oauth2_device_start_async (f->session, &f->settings, NULL, NULL, on_device_started, f);
  wait_done (f);
  g_assert_no_error (f->error);
  g_assert_nonnull (f->device);
}

static void
poll_device (Fixture *f, GCancellable *cancellable)
{
  outbox_oauth2_device_poll_async (f->session, &f->settings, NULL, f->device, SLOW_DOWN_STEP_MS,
                                   cancellable, on_polled, f);
  wait_done (f);
}

static void
test_device_start (Fixture *f, gconstpointer data)
{
  Request *request;

  start_device (f, DEVICE_ANSWER ("0"));
  g_assert_cmpstr (f->device->user_code, ==, "WDJB-MJHT");
  g_assert_cmpstr (f->device->verification_uri, ==, "https://example.org/device");
  g_assert_cmpuint (f->device->interval, ==, 0);
  g_assert_cmpuint (f->device->expires_in, ==, 600);

  request = request_at (f, 0);
  assert_form_post (request, "/device", 2);
  g_assert_cmpstr (field (request, "client_id"), ==, CLIENT_ID);
  g_assert_cmpstr (field (request, "scope"), ==, "mail offline_access");
}

static void
test_device_start_error (Fixture *f, gconstpointer data)
{
  serve (f, 400, "{\"error\": \"invalid_scope\", \"error_description\": \"no mail\"}");
  outbox_oauth2_device_start_async (f->session, &f->settings, NULL, NULL, on_device_started, f);
  wait_done (f);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_INVALID_SCOPE);
  g_assert_null (f->device);
}

/* authorization_pending, then slow_down, then the tokens: the third poll
 * comes one slow_down step after the second. */
static void
test_device_poll (Fixture *f, gconstpointer data)
{
  start_device (f, DEVICE_ANSWER ("0"));
  serve (f, 400, PENDING);
  serve (f, 400, SLOW_DOWN);
  serve (f, 200, TOKEN_ANSWER (", \"refresh_token\": \"" REFRESH_TOKEN "\""));
  poll_device (f, NULL);

  g_assert_no_error (f->error);
  g_assert_cmpstr (f->tokens->access_token, ==, ACCESS_TOKEN);
  g_assert_cmpstr (f->tokens->refresh_token, ==, REFRESH_TOKEN);
  g_assert_cmpuint (f->requests->len, ==, 4);
  for (guint i = 1; i < 4; i++)
    {
      Request *request = request_at (f, i);

      assert_form_post (request, "/token", 3);
      g_assert_cmpstr (field (request, "grant_type"), ==,
                       "urn:ietf:params:oauth:grant-type:device_code");
      g_assert_cmpstr (field (request, "device_code"), ==, "device-secret");
      g_assert_cmpstr (field (request, "client_id"), ==, CLIENT_ID);
    }
  g_assert_cmpint (request_at (f, 2)->time - request_at (f, 1)->time, <, SLOW_DOWN_STEP_MS * 1000);
  g_assert_cmpint (request_at (f, 3)->time - request_at (f, 2)->time, >=, SLOW_DOWN_STEP_MS * 1000);
}

static void
test_device_access_denied (Fixture *f, gconstpointer data)
{
  start_device (f, DEVICE_ANSWER ("0"));
  serve (f, 400, PENDING);
  serve (f, 400, "{\"error\": \"access_denied\"}");
  poll_device (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_ACCESS_DENIED);
  g_assert_null (f->tokens);
  g_assert_cmpuint (f->requests->len, ==, 3);
}

static void
test_device_expired_token (Fixture *f, gconstpointer data)
{
  start_device (f, DEVICE_ANSWER ("0"));
  serve (f, 400, "{\"error\": \"expired_token\"}");
  poll_device (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN);
}

/* Past its expiry, the device code is not even tried. */
static void
test_device_expired_here (Fixture *f, gconstpointer data)
{
  start_device (f, DEVICE_ANSWER ("0"));
  f->device->expires_at = g_get_real_time () / G_USEC_PER_SEC - 1;
  poll_device (f, NULL);

  g_assert_error (f->error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN);
  g_assert_cmpuint (f->requests->len, ==, 1);
}

static gboolean
cancel_soon (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* Cancelling ends the wait between polls at once. */
static void
test_device_cancelled (Fixture *f, gconstpointer data)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  gint64 start;

  start_device (f, DEVICE_ANSWER ("60"));
  g_timeout_add (50, cancel_soon, cancellable);
  start = g_get_monotonic_time ();
  poll_device (f, cancellable);

  g_assert_error (f->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  g_assert_cmpuint (f->requests->len, ==, 1);
}

#define ADD(name, func) g_test_add (name, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/oauth2/pkce/rfc7636-example", test_pkce_rfc_example);
  g_test_add_func ("/oauth2/pkce/new", test_pkce_new);
  g_test_add_func ("/oauth2/state", test_state);
  g_test_add_func ("/oauth2/providers", test_providers);
  g_test_add_func ("/oauth2/endpoint/rule", test_endpoints);
  g_test_add_func ("/oauth2/endpoint/message", test_endpoint_message);
  g_test_add_func ("/oauth2/authorization-url/google", test_authorization_url_google);
  g_test_add_func ("/oauth2/authorization-url/microsoft", test_authorization_url_microsoft);
  g_test_add_func ("/oauth2/authorization-url/existing-query",
                   test_authorization_url_existing_query);
  g_test_add_func ("/oauth2/authorization-url/insecure", test_authorization_url_insecure);

  g_test_add_func ("/oauth2/parse/success", test_parse_success);
  g_test_add_func ("/oauth2/parse/not-rotated", test_parse_not_rotated);
  g_test_add_func ("/oauth2/parse/expires-in", test_parse_expires_in);
  g_test_add_func ("/oauth2/parse/not-bearer", test_parse_not_bearer);
  g_test_add_func ("/oauth2/parse/errors", test_parse_errors);
  g_test_add_func ("/oauth2/parse/invalid-grant-message", test_parse_invalid_grant_message);
  g_test_add_func ("/oauth2/parse/error-names", test_parse_error_names);
  g_test_add_func ("/oauth2/parse/unknown-error-sanitized", test_parse_unknown_error_sanitized);
  g_test_add_func ("/oauth2/parse/huge-description", test_parse_huge_description);
  g_test_add_func ("/oauth2/parse/garbage", test_parse_garbage);
  g_test_add_func ("/oauth2/parse/http-errors", test_parse_http_errors);
  g_test_add_func ("/oauth2/parse/too-large", test_parse_too_large);
  g_test_add_func ("/oauth2/parse/device", test_parse_device);

  ADD ("/oauth2/exchange-code/form", test_exchange_code);
  ADD ("/oauth2/exchange-code/without-secret", test_exchange_code_without_secret);
  ADD ("/oauth2/refresh/form", test_refresh);
  ADD ("/oauth2/refresh/with-secret", test_refresh_with_secret);
  ADD ("/oauth2/refresh/invalid-grant", test_refresh_invalid_grant);
  ADD ("/oauth2/refresh/http-error", test_refresh_http_error);
  ADD ("/oauth2/refresh/redirect-not-followed", test_refresh_redirect_not_followed);
  ADD ("/oauth2/refresh/refused-url", test_refresh_refused_url);
  ADD ("/oauth2/refresh/without-client-id", test_refresh_without_client_id);
  ADD ("/oauth2/refresh/unreachable", test_refresh_unreachable);
  ADD ("/oauth2/refresh/cancelled", test_refresh_cancelled);
  ADD ("/oauth2/device/start", test_device_start);
  ADD ("/oauth2/device/start-error", test_device_start_error);
  ADD ("/oauth2/device/poll", test_device_poll);
  ADD ("/oauth2/device/access-denied", test_device_access_denied);
  ADD ("/oauth2/device/expired-token", test_device_expired_token);
  ADD ("/oauth2/device/expired-here", test_device_expired_here);
  ADD ("/oauth2/device/cancelled", test_device_cancelled);

  return g_test_run ();
}
