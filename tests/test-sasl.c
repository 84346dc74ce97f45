/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <gsasl.h>
#include <string.h>
#include <sys/socket.h>

#include "outbox-sasl.h"
#include "session-test-support.h"

#define USER "alice@example.org"
#define PASSWORD "pencil-Ünïcode"
#define TOKEN "ya29.token-value"

/* Helpers ---------------------------------------------------------------- */

static OutboxSasl *
client_new (const char *mechanism, OutboxSaslSecretKind kind, GTlsConnection *tls)
{
  OutboxSaslCredentials credentials = {
    .user = USER,
    .secret = kind == OUTBOX_SASL_SECRET_PASSWORD ? PASSWORD : TOKEN,
    .kind = kind,
  };
  g_autoptr (GError) error = NULL;
  OutboxSasl *sasl = outbox_sasl_new (mechanism, &credentials, tls, &error);

  g_assert_no_error (error);
  g_assert_nonnull (sasl);
  return sasl;
}

static GBytes *
bytes_of (const char *text)
{
  return g_bytes_new (text, strlen (text));
}

/* The response to @challenge (NULL: the initial response), which must come. */
static GBytes *
step (OutboxSasl *sasl, GBytes *challenge)
{
  g_autoptr (GError) error = NULL;
  GBytes *response = outbox_sasl_step (sasl, challenge, &error);

  g_assert_no_error (error);
  g_assert_nonnull (response);
  return response;
}

static GBytes *
step_text (OutboxSasl *sasl, const char *challenge)
{
  g_autoptr (GBytes) bytes = challenge != NULL ? bytes_of (challenge) : NULL;

  return step (sasl, bytes);
}

static void
assert_step_fails (OutboxSasl *sasl, const char *challenge, int code)
{
  g_autoptr (GBytes) bytes = challenge != NULL ? bytes_of (challenge) : NULL;
  g_autoptr (GError) error = NULL;

  g_assert_null (outbox_sasl_step (sasl, bytes, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, code);
}

static void
assert_bytes (GBytes *bytes, const char *expected, gsize expected_len)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  g_assert_cmpmem (data, len, expected, expected_len);
}

#define assert_response(sasl, challenge, literal)                                                  \
  G_STMT_START                                                                                     \
  {                                                                                                \
    GBytes *response_ = step_text (sasl, challenge);                                               \
    assert_bytes (response_, literal, sizeof literal - 1);                                         \
    outbox_sasl_response_free (response_);                                                         \
  }                                                                                                \
  G_STMT_END

/* The mechanism table ---------------------------------------------------- */

static void
test_mechanisms (void)
{
  const char *const expected[] = { "SCRAM-SHA-256-PLUS",
                                   "SCRAM-SHA-1-PLUS",
                                   "SCRAM-SHA-256",
                                   "SCRAM-SHA-1",
                                   "PLAIN",
                                   "LOGIN",
                                   "OAUTHBEARER",
                                   "XOAUTH2",
                                   NULL };

  g_assert_cmpstrv (outbox_sasl_mechanisms (), expected);
  g_assert_true (outbox_sasl_mechanism_is_known ("scram-sha-256-plus"));
  g_assert_true (outbox_sasl_mechanism_is_known ("XOAuth2"));
  g_assert_false (outbox_sasl_mechanism_is_known ("CRAM-MD5"));
  g_assert_false (outbox_sasl_mechanism_is_known ("SCRAM-SHA-256-"));
  g_assert_false (outbox_sasl_mechanism_is_known (""));
}

static void
test_new_refuses (void)
{
  OutboxSaslCredentials token = { .user = USER, .secret = TOKEN, .kind = OUTBOX_SASL_SECRET_TOKEN };
  OutboxSaslCredentials password = { .user = USER, .secret = PASSWORD };
  g_autoptr (GError) error = NULL;

  g_assert_null (outbox_sasl_new ("PLAIN", &token, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_null (outbox_sasl_new ("XOAUTH2", &password, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_null (outbox_sasl_new ("DIGEST-MD5", &password, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE);
  g_clear_error (&error);
  g_assert_null (outbox_sasl_new ("SCRAM-SHA-256-PLUS", &password, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE);
}

/* PLAIN and LOGIN -------------------------------------------------------- */

static void
test_plain_initial_response (void)
{
  g_autoptr (OutboxSasl) sasl = client_new ("plain", OUTBOX_SASL_SECRET_PASSWORD, NULL);

  g_assert_cmpstr (outbox_sasl_get_mechanism (sasl), ==, "PLAIN");
  g_assert_true (outbox_sasl_client_first (sasl));
  assert_response (sasl, NULL, "\0" USER "\0" PASSWORD);
  assert_step_fails (sasl, "more?", OUTBOX_SASL_ERROR_PROTOCOL);
  g_assert_true (outbox_sasl_check_success (sasl, NULL, NULL));
  g_assert_null (outbox_sasl_get_server_error (sasl));
}

/* Without SASL-IR the server asks for the initial response with an empty
 * challenge. */
static void
test_plain_empty_challenge (void)
{
  g_autoptr (OutboxSasl) sasl = client_new ("PLAIN", OUTBOX_SASL_SECRET_PASSWORD, NULL);

  assert_response (sasl, "", "\0" USER "\0" PASSWORD);
}

static void
test_plain_challenge_first (void)
{
  g_autoptr (OutboxSasl) sasl = client_new ("PLAIN", OUTBOX_SASL_SECRET_PASSWORD, NULL);

  assert_step_fails (sasl, "unexpected", OUTBOX_SASL_ERROR_PROTOCOL);
  /* A failed exchange stays failed. */
  assert_step_fails (sasl, NULL, OUTBOX_SASL_ERROR_PROTOCOL);
}

static void
test_login_prompts (void)
{
  g_autoptr (OutboxSasl) sasl = client_new ("LOGIN", OUTBOX_SASL_SECRET_PASSWORD, NULL);

  g_assert_false (outbox_sasl_client_first (sasl));
  assert_response (sasl, "Username:", USER);
  assert_response (sasl, "Password:", PASSWORD);
  assert_step_fails (sasl, "Password:", OUTBOX_SASL_ERROR_PROTOCOL);
  g_assert_true (outbox_sasl_check_success (sasl, NULL, NULL));
}

static void
test_login_no_initial_response (void)
{
  g_autoptr (OutboxSasl) sasl = client_new ("LOGIN", OUTBOX_SASL_SECRET_PASSWORD, NULL);

  assert_step_fails (sasl, NULL, OUTBOX_SASL_ERROR_PROTOCOL);
}

/* OAUTHBEARER and XOAUTH2 ------------------------------------------------ */

static OutboxSasl *
token_client_new (const char *mechanism, const char *user, const char *host, guint16 port)
{
  OutboxSaslCredentials credentials = {
    .user = user,
    .secret = TOKEN,
    .kind = OUTBOX_SASL_SECRET_TOKEN,
    .host = host,
    .port = port,
  };
  g_autoptr (GError) error = NULL;
  OutboxSasl *sasl = outbox_sasl_new (mechanism, &credentials, NULL, &error);

  g_assert_no_error (error);
  return sasl;
}

static void
test_oauthbearer_initial_response (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("OAUTHBEARER", USER, "smtp.example.org", 587);

  g_assert_true (outbox_sasl_client_first (sasl));
  assert_response (sasl, NULL,
                   "n,a=" USER ",\001host=smtp.example.org\001port=587\001auth=Bearer " TOKEN
                   "\001\001");
  g_assert_true (outbox_sasl_check_success (sasl, NULL, NULL));
}

static void
test_oauthbearer_no_host_port (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("OAUTHBEARER", USER, NULL, 0);

  assert_response (sasl, NULL, "n,a=" USER ",\001auth=Bearer " TOKEN "\001\001");
}

static void
test_oauthbearer_saslname (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("OAUTHBEARER", "a,b=c,", NULL, 465);

  assert_response (sasl, NULL, "n,a=a=2Cb=3Dc=2C,\001port=465\001auth=Bearer " TOKEN "\001\001");
}

#define ERROR_JSON                                                                                 \
  "{\"status\":\"invalid_token\",\"scope\":\"https://mail.example/\","                             \
  "\"openid-configuration\":\"https://example/.well-known/openid-configuration\"}"

static void
test_oauthbearer_error_challenge (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("OAUTHBEARER", USER, NULL, 0);
  GBytes *initial = step_text (sasl, NULL);

  outbox_sasl_response_free (initial);
  g_assert_null (outbox_sasl_get_server_error (sasl));
  assert_response (sasl, ERROR_JSON, "\001");
  g_assert_cmpstr (outbox_sasl_get_server_error (sasl), ==,
                   "the server refused the access token (invalid_token; it needs the scope "
                   "“https://mail.example/”)");
  /* After the 0x01 the server can only fail the exchange. */
  assert_step_fails (sasl, ERROR_JSON, OUTBOX_SASL_ERROR_PROTOCOL);
}

static void
test_oauthbearer_bad_challenge (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("OAUTHBEARER", USER, NULL, 0);
  GBytes *initial = step_text (sasl, NULL);

  outbox_sasl_response_free (initial);
  assert_step_fails (sasl, "not json", OUTBOX_SASL_ERROR_PROTOCOL);
  g_assert_null (outbox_sasl_get_server_error (sasl));
}

static void
test_xoauth2_initial_response (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("XOAUTH2", USER, "smtp.example.org", 587);

  g_assert_true (outbox_sasl_client_first (sasl));
  assert_response (sasl, NULL, "user=" USER "\001auth=Bearer " TOKEN "\001\001");
}

static void
test_xoauth2_error_challenge (void)
{
  g_autoptr (OutboxSasl) sasl = token_client_new ("XOAUTH2", USER, NULL, 0);
  GBytes *initial = step_text (sasl, NULL);

  outbox_sasl_response_free (initial);
  /* Google's form: the status is an HTTP code. */
  assert_response (sasl, "{\"status\":\"400\",\"schemes\":\"Bearer\"}", "");
  g_assert_cmpstr (outbox_sasl_get_server_error (sasl), ==,
                   "the server refused the access token (400)");
  assert_step_fails (sasl, "{\"status\":\"400\"}", OUTBOX_SASL_ERROR_PROTOCOL);
}

/* The OAuth2 error parser ------------------------------------------------ */

static void
assert_oauth_error (const char *json, const char *status, const char *scope)
{
  g_autofree char *out_status = NULL;
  g_autofree char *out_scope = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (
      outbox_sasl_parse_oauth_error (json, strlen (json), &out_status, &out_scope, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out_status, ==, status);
  g_assert_cmpstr (out_scope, ==, scope);
}

static void
assert_oauth_error_invalid (const char *json, gsize len)
{
  char *out_status = NULL;
  char *out_scope = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_sasl_parse_oauth_error (json, len, &out_status, &out_scope, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL);
  g_assert_null (out_status);
  g_assert_null (out_scope);
}

static void
test_oauth_error_valid (void)
{
  assert_oauth_error (ERROR_JSON, "invalid_token", "https://mail.example/");
  assert_oauth_error ("{\"status\":\"401\"}", "401", NULL);
  /* A scope that is not a string is not one. */
  assert_oauth_error ("{\"status\":\"x\",\"scope\":7}", "x", NULL);
  assert_oauth_error ("{\"status\":\"x\",\"scope\":\"\\uD800y\"}", "x", NULL);
}

static void
test_oauth_error_missing_status (void)
{
  assert_oauth_error_invalid ("{\"scope\":\"a\"}", 13);
  assert_oauth_error_invalid ("{\"status\":401}", 14);
  assert_oauth_error_invalid ("{\"status\":null}", 15);
  assert_oauth_error_invalid ("{\"status\":{}}", 13);
}

static void
test_oauth_error_not_object (void)
{
  assert_oauth_error_invalid ("[\"status\"]", 10);
  assert_oauth_error_invalid ("\"status\"", 8);
  assert_oauth_error_invalid ("42", 2);
}

static void
test_oauth_error_garbage (void)
{
  assert_oauth_error_invalid ("", 0);
  assert_oauth_error_invalid ("{", 1);
  assert_oauth_error_invalid ("{\"status\":\"a\"", 13);
  assert_oauth_error_invalid ("{\"status\":\"\xff\"}", 14);
  /* json-glib decodes a lone surrogate escape to bytes that are not UTF-8. */
  assert_oauth_error_invalid ("{\"status\":\"\\uD800x\"}", 19);
  /* The length counts, not a NUL. */
  assert_oauth_error_invalid ("{\"status\":\"a\"}", 5);
  assert_oauth_error_invalid ("{\"status\":\"a\"}\0garbage", 22);
}

/* Choosing --------------------------------------------------------------- */

static void
assert_chosen (const char *const *offered,
               OutboxSaslSecretKind kind,
               GTlsConnection *tls,
               const char *pinned,
               const char *expected)
{
  g_autoptr (GError) error = NULL;

  g_assert_cmpstr (outbox_sasl_choose (offered, kind, tls, pinned, &error), ==, expected);
  g_assert_no_error (error);
}

static void
assert_unavailable (const char *const *offered,
                    OutboxSaslSecretKind kind,
                    GTlsConnection *tls,
                    const char *pinned,
                    const char *message)
{
  g_autoptr (GError) error = NULL;

  g_assert_null (outbox_sasl_choose (offered, kind, tls, pinned, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_choose_password (void)
{
  const char *const all[] = { "login",       "Plain",         "XOAUTH2", "OAUTHBEARER",
                              "scram-sha-1", "SCRAM-SHA-256", NULL };
  const char *const sha1[] = { "PLAIN", "SCRAM-SHA-1", "LOGIN", NULL };
  const char *const plain_login[] = { "LOGIN", "PLAIN", NULL };
  const char *const login[] = { "login", NULL };

  assert_chosen (all, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL, "SCRAM-SHA-256");
  assert_chosen (sha1, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL, "SCRAM-SHA-1");
  assert_chosen (plain_login, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL, "PLAIN");
  assert_chosen (login, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL, "LOGIN");
}

static void
test_choose_password_never_oauth (void)
{
  const char *const oauth[] = { "OAUTHBEARER", "XOAUTH2", "CRAM-MD5", NULL };

  assert_unavailable (oauth, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL,
                      "The server offers no sign-in method Outbox can use with a password (it "
                      "offers: OAUTHBEARER, XOAUTH2, CRAM-MD5)");
}

static void
test_choose_token (void)
{
  const char *const both[] = { "PLAIN", "xoauth2", "SCRAM-SHA-256", "oauthbearer", NULL };
  const char *const xoauth2[] = { "PLAIN", "XOAUTH2", "LOGIN", NULL };
  const char *const passwords[] = { "PLAIN", "LOGIN", "SCRAM-SHA-256", NULL };

  assert_chosen (both, OUTBOX_SASL_SECRET_TOKEN, NULL, NULL, "OAUTHBEARER");
  assert_chosen (xoauth2, OUTBOX_SASL_SECRET_TOKEN, NULL, NULL, "XOAUTH2");
  assert_unavailable (passwords, OUTBOX_SASL_SECRET_TOKEN, NULL, NULL,
                      "The server offers no sign-in method Outbox can use with an OAuth2 token "
                      "(it offers: PLAIN, LOGIN, SCRAM-SHA-256); OAuth2 needs OAUTHBEARER or "
                      "XOAUTH2");
}

static void
test_choose_plus_without_tls (void)
{
  const char *const offered[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", NULL };
  const char *const plus_only[] = { "SCRAM-SHA-256-PLUS", NULL };

  assert_chosen (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL, "SCRAM-SHA-1");
  assert_unavailable (plus_only, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL,
                      "The server offers no sign-in method Outbox can use with a password (it "
                      "offers: SCRAM-SHA-256-PLUS)");
}

static void
test_choose_none_offered (void)
{
  const char *const nothing[] = { NULL };

  assert_unavailable (nothing, OUTBOX_SASL_SECRET_PASSWORD, NULL, NULL,
                      "The server offers no sign-in method Outbox can use with a password (it "
                      "offers: nothing)");
  assert_unavailable (NULL, OUTBOX_SASL_SECRET_TOKEN, NULL, NULL,
                      "The server offers no sign-in method Outbox can use with an OAuth2 token "
                      "(it offers: nothing); OAuth2 needs OAUTHBEARER or XOAUTH2");
}

static void
test_choose_pinned (void)
{
  const char *const offered[] = { "scram-sha-256", "plain", "LOGIN", "xoauth2", NULL };

  /* The pin wins over stronger ones, and comes back as the table spells it. */
  assert_chosen (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, "login", "LOGIN");
  assert_chosen (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, "Plain", "PLAIN");
  assert_chosen (offered, OUTBOX_SASL_SECRET_TOKEN, NULL, "XOAUTH2", "XOAUTH2");
}

static void
test_choose_pinned_not_offered (void)
{
  const char *const offered[] = { "PLAIN", "LOGIN", NULL };

  assert_unavailable (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, "SCRAM-SHA-256",
                      "The server offers PLAIN, LOGIN; this account is set to use SCRAM-SHA-256");
}

static void
test_choose_pinned_wrong_kind (void)
{
  const char *const offered[] = { "PLAIN", "XOAUTH2", NULL };

  assert_unavailable (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, "xoauth2",
                      "The server offers PLAIN, XOAUTH2; this account is set to use XOAUTH2, "
                      "which needs an OAuth2 token, but the account has a password");
  assert_unavailable (offered, OUTBOX_SASL_SECRET_TOKEN, NULL, "PLAIN",
                      "The server offers PLAIN, XOAUTH2; this account is set to use PLAIN, which "
                      "needs a password, but the account has an OAuth2 token");
}

static void
test_choose_pinned_plus_without_tls (void)
{
  const char *const offered[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", NULL };

  assert_unavailable (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, "SCRAM-SHA-256-PLUS",
                      "The server offers SCRAM-SHA-256-PLUS, SCRAM-SHA-256; this account is set "
                      "to use SCRAM-SHA-256-PLUS, which needs TLS channel binding, and this "
                      "connection cannot give it");
}

static void
test_choose_pinned_unknown (void)
{
  const char *const offered[] = { "PLAIN", "CRAM-MD5", NULL };

  /* Unknown even when the server offers it. */
  assert_unavailable (offered, OUTBOX_SASL_SECRET_PASSWORD, NULL, "CRAM-MD5",
                      "Unknown authentication mechanism “CRAM-MD5”; use one of: "
                      "SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, "
                      "LOGIN, OAUTHBEARER, XOAUTH2");
}

/* SCRAM against GNU SASL's server ------------------------------------------ */

typedef struct
{
  Gsasl *context;
  Gsasl_session *session;
  const char *password;
  Gsasl_property binding_property; /* 0: none */
  char *binding;                   /* (owned) base64 */
} ScramServer;

static int
scram_server_callback (Gsasl *context, Gsasl_session *session, Gsasl_property property)
{
  ScramServer *server = gsasl_callback_hook_get (context);

  if (property == GSASL_PASSWORD &&
      g_strcmp0 (gsasl_property_fast (session, GSASL_AUTHID), USER) == 0)
    return gsasl_property_set (session, GSASL_PASSWORD, server->password);
  if (property == server->binding_property && server->binding != NULL)
    return gsasl_property_set (session, property, server->binding);
  return GSASL_NO_CALLBACK;
}

static void
scram_server_start (ScramServer *server, const char *mechanism)
{
  g_assert_cmpint (gsasl_init (&server->context), ==, GSASL_OK);
  gsasl_callback_set (server->context, scram_server_callback);
  gsasl_callback_hook_set (server->context, server);
  g_assert_cmpint (gsasl_server_start (server->context, mechanism, &server->session), ==, GSASL_OK);
  if (server->password == NULL)
    server->password = PASSWORD;
}

static void
scram_server_clear (ScramServer *server)
{
  g_clear_pointer (&server->session, gsasl_finish);
  g_clear_pointer (&server->context, gsasl_done);
  g_clear_pointer (&server->binding, g_free);
}

/* The server's answer to @message; NULL with *rc its failure. */
static GBytes *
scram_server_step (ScramServer *server, GBytes *message, int *rc)
{
  gsize len;
  const char *data = g_bytes_get_data (message, &len);
  char *output = NULL;
  size_t output_len = 0;
  GBytes *answer = NULL;

  *rc = gsasl_step (server->session, data, len, &output, &output_len);
  if (*rc == GSASL_OK || *rc == GSASL_NEEDS_MORE)
    answer = g_bytes_new (output, output_len);
  gsasl_free (output);
  return answer;
}

/* Runs an exchange up to the client-final message; returns the server's
 * answer to it (the server-final message), or NULL with *rc. */
static GBytes *
scram_run_to_final (OutboxSasl *client, ScramServer *server, const char *gs2_header, int *rc)
{
  g_autoptr (GBytes) client_first = step (client, NULL);
  g_autoptr (GBytes) server_first = NULL;
  g_autoptr (GBytes) client_final = NULL;
  gsize len;
  const char *data = g_bytes_get_data (client_first, &len);

  g_assert_cmpuint (len, >, strlen (gs2_header));
  g_assert_cmpmem (data, strlen (gs2_header), gs2_header, strlen (gs2_header));

  server_first = scram_server_step (server, client_first, rc);
  g_assert_cmpint (*rc, ==, GSASL_NEEDS_MORE);
  client_final = step (client, server_first);
  return scram_server_step (server, client_final, rc);
}

static void
scram_succeeds (const char *mechanism, GTlsConnection *tls, ScramServer *server, const char *gs2)
{
  g_autoptr (OutboxSasl) client = client_new (mechanism, OUTBOX_SASL_SECRET_PASSWORD, tls);
  g_autoptr (GBytes) server_final = NULL;
  g_autoptr (GBytes) last = NULL;
  g_autoptr (GError) error = NULL;
  int rc;

  scram_server_start (server, mechanism);
  server_final = scram_run_to_final (client, server, gs2, &rc);
  g_assert_cmpint (rc, ==, GSASL_OK);
  g_assert_nonnull (server_final);
  last = step (client, server_final);
  g_assert_cmpuint (g_bytes_get_size (last), ==, 0);
  g_assert_true (outbox_sasl_check_success (client, NULL, &error));
  g_assert_no_error (error);
  assert_step_fails (client, "v=again", OUTBOX_SASL_ERROR_PROTOCOL);
}

static void
test_scram_sha1 (void)
{
  ScramServer server = { 0 };

  scram_succeeds ("SCRAM-SHA-1", NULL, &server, "n,,n=");
  scram_server_clear (&server);
}

static void
test_scram_sha256 (void)
{
  ScramServer server = { 0 };

  scram_succeeds ("SCRAM-SHA-256", NULL, &server, "n,,n=");
  scram_server_clear (&server);
}

static void
test_scram_wrong_password (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  ScramServer server = { .password = "not the password" };
  g_autoptr (GBytes) server_final = NULL;
  g_autoptr (GError) error = NULL;
  int rc;

  scram_server_start (&server, "SCRAM-SHA-256");
  server_final = scram_run_to_final (client, &server, "n,,", &rc);
  g_assert_null (server_final);
  g_assert_cmpint (rc, ==, GSASL_AUTHENTICATION_ERROR);
  /* Had the server said yes anyway, the client would not believe it. */
  g_assert_false (outbox_sasl_check_success (client, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  scram_server_clear (&server);
}

/* @server_final with one byte of its signature changed. */
static GBytes *
tamper (GBytes *server_final)
{
  gsize len;
  char *data = g_memdup2 (g_bytes_get_data (server_final, &len), g_bytes_get_size (server_final));

  g_assert_cmpuint (len, >, 4);
  g_assert_cmpmem (data, 2, "v=", 2);
  data[3] = data[3] == 'A' ? 'B' : 'A';
  return g_bytes_new_take (data, len);
}

static void
test_scram_tampered_server_final (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-1", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  ScramServer server = { 0 };
  g_autoptr (GBytes) server_final = NULL;
  g_autoptr (GBytes) tampered = NULL;
  g_autoptr (GError) error = NULL;
  int rc;

  scram_server_start (&server, "SCRAM-SHA-1");
  server_final = scram_run_to_final (client, &server, "n,,", &rc);
  g_assert_cmpint (rc, ==, GSASL_OK);
  tampered = tamper (server_final);
  g_assert_null (outbox_sasl_step (client, tampered, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  g_clear_error (&error);
  g_assert_false (outbox_sasl_check_success (client, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  scram_server_clear (&server);
}

static void
test_scram_success_without_server_final (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  ScramServer server = { 0 };
  g_autoptr (GBytes) server_final = NULL;
  g_autoptr (GError) error = NULL;
  int rc;

  g_assert_false (outbox_sasl_check_success (client, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  g_clear_error (&error);

  scram_server_start (&server, "SCRAM-SHA-256");
  server_final = scram_run_to_final (client, &server, "n,,", &rc);
  g_assert_cmpint (rc, ==, GSASL_OK);
  g_assert_false (outbox_sasl_check_success (client, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  scram_server_clear (&server);
}

/* Some servers send the server-final message with their success reply. */
static void
test_scram_server_final_with_success (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  g_autoptr (OutboxSasl) fooled = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  ScramServer server = { 0 };
  ScramServer other = { 0 };
  g_autoptr (GBytes) server_final = NULL;
  g_autoptr (GBytes) other_final = NULL;
  g_autoptr (GBytes) tampered = NULL;
  g_autoptr (GError) error = NULL;
  int rc;

  scram_server_start (&server, "SCRAM-SHA-256");
  server_final = scram_run_to_final (client, &server, "n,,", &rc);
  g_assert_true (outbox_sasl_check_success (client, server_final, &error));
  g_assert_no_error (error);

  scram_server_start (&other, "SCRAM-SHA-256");
  other_final = scram_run_to_final (fooled, &other, "n,,", &rc);
  tampered = tamper (other_final);
  g_assert_false (outbox_sasl_check_success (fooled, tampered, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  scram_server_clear (&server);
  scram_server_clear (&other);
}

static void
test_scram_server_error (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  ScramServer server = { .password = "not the password" };
  g_autoptr (GBytes) server_final = NULL;
  int rc;

  g_autoptr (GBytes) error_challenge = bytes_of ("e=invalid-proof");
  g_autoptr (GBytes) response = NULL;
  g_autoptr (GError) error = NULL;

  scram_server_start (&server, "SCRAM-SHA-256");
  server_final = scram_run_to_final (client, &server, "n,,", &rc);
  /* The server says no: an empty response ends the exchange, so that the
   * server's failure reply tells the session what happened. */
  response = outbox_sasl_step (client, error_challenge, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (response), ==, 0);
  g_assert_cmpstr (outbox_sasl_get_server_error (client), ==, "SCRAM: the server says invalid-proof");
  g_assert_false (outbox_sasl_check_success (client, NULL, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  scram_server_clear (&server);
}

/* A success whose additional data is an error proves nothing. */
static void
test_scram_server_error_with_success (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  ScramServer server = { 0 };
  g_autoptr (GBytes) server_final = NULL;
  g_autoptr (GBytes) server_error = bytes_of ("e=other-error");
  g_autoptr (GError) error = NULL;
  int rc;

  scram_server_start (&server, "SCRAM-SHA-256");
  server_final = scram_run_to_final (client, &server, "n,,", &rc);
  g_assert_false (outbox_sasl_check_success (client, server_error, &error));
  g_assert_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_SERVER_PROOF);
  scram_server_clear (&server);
}

static void
test_scram_bad_server_first (void)
{
  g_autoptr (OutboxSasl) garbage = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  g_autoptr (OutboxSasl) foreign = client_new ("SCRAM-SHA-1", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  GBytes *first;

  first = step_text (garbage, NULL);
  outbox_sasl_response_free (first);
  assert_step_fails (garbage, "garbage", OUTBOX_SASL_ERROR_PROTOCOL);

  /* The server's nonce must start with the client's. */
  first = step_text (foreign, NULL);
  outbox_sasl_response_free (first);
  assert_step_fails (foreign, "r=someone-elses-nonce,s=c2FsdA==,i=4096",
                     OUTBOX_SASL_ERROR_PROTOCOL);
}

/* A server can make the client hash for ever: its iteration count is
 * bounded. */
static void
test_scram_too_many_iterations (void)
{
  g_autoptr (OutboxSasl) client = client_new ("SCRAM-SHA-256", OUTBOX_SASL_SECRET_PASSWORD, NULL);
  g_autoptr (GBytes) first = step_text (client, NULL);
  g_autofree char *text = g_strndup (g_bytes_get_data (first, NULL), g_bytes_get_size (first));
  const char *nonce = strstr (text, ",r=");
  g_autofree char *server_first = NULL;

  g_assert_nonnull (nonce);
  server_first = g_strdup_printf ("r=%sserver,s=c2FsdA==,i=1000001", nonce + 3);
  assert_step_fails (client, server_first, OUTBOX_SASL_ERROR_PROTOCOL);
}

/* SCRAM-*-PLUS over real TLS ----------------------------------------------- */

static TestCerts certs;

typedef struct
{
  GIOStream *server; /* (owned) GTlsServerConnection */
  GIOStream *client; /* (owned) GTlsClientConnection */
} TlsPair;

static gboolean
accept_any (GTlsConnection *connection, GTlsCertificate *certificate, GTlsCertificateFlags errors)
{
  return TRUE;
}

static gpointer
server_handshake (gpointer user_data)
{
  g_autoptr (GError) error = NULL;

  g_tls_connection_handshake (G_TLS_CONNECTION (user_data), NULL, &error);
  g_assert_no_error (error);
  return NULL;
}

static GIOStream *
stream_from_fd (int fd)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocket) socket = g_socket_new_from_fd (fd, &error);

  g_assert_no_error (error);
  return G_IO_STREAM (g_socket_connection_factory_create_connection (socket));
}

/* Both ends of a TLS connection over a socket pair, after the handshake. */
static void
tls_pair_open (TlsPair *pair)
{
  g_autoptr (GIOStream) server_stream = NULL;
  g_autoptr (GIOStream) client_stream = NULL;
  g_autoptr (GError) error = NULL;
  GThread *thread;
  int fds[2];

  if (certs.dir == NULL)
    test_certs_make (&certs);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  server_stream = stream_from_fd (fds[0]);
  client_stream = stream_from_fd (fds[1]);

  pair->server = g_tls_server_connection_new (server_stream, certs.localhost.certificate, &error);
  g_assert_no_error (error);
  pair->client = g_tls_client_connection_new (client_stream, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (pair->client, "accept-certificate", G_CALLBACK (accept_any), NULL);

  thread = g_thread_new ("tls-server", server_handshake, pair->server);
  g_tls_connection_handshake (G_TLS_CONNECTION (pair->client), NULL, &error);
  g_assert_no_error (error);
  g_thread_join (thread);
}

static void
tls_pair_clear (TlsPair *pair)
{
  g_clear_object (&pair->client);
  g_clear_object (&pair->server);
}

/* The server side's binding, for the gsasl server; @corrupt flips a bit. */
static void
server_binding (ScramServer *server, TlsPair *pair, gboolean corrupt)
{
  GTlsConnection *tls = G_TLS_CONNECTION (pair->server);
  g_autoptr (GByteArray) data = g_byte_array_new ();
  g_autoptr (GError) error = NULL;
  gboolean tls13 = g_tls_connection_get_protocol_version (tls) == G_TLS_PROTOCOL_VERSION_TLS_1_3;

  g_tls_connection_get_channel_binding_data (
      tls, tls13 ? G_TLS_CHANNEL_BINDING_TLS_EXPORTER : G_TLS_CHANNEL_BINDING_TLS_UNIQUE, data,
      &error);
  g_assert_no_error (error);
  g_assert_cmpuint (data->len, >, 0);
  if (corrupt)
    data->data[0] ^= 1;
  server->binding_property = tls13 ? GSASL_CB_TLS_EXPORTER : GSASL_CB_TLS_UNIQUE;
  server->binding = g_base64_encode (data->data, data->len);
}

static void
scram_plus_round (const char *mechanism, GTlsProtocolVersion version, const char *gs2)
{
  TlsPair pair = { 0 };
  ScramServer server = { 0 };
  ScramServer wrong = { 0 };
  g_autoptr (OutboxSasl) client = NULL;
  g_autoptr (GBytes) server_final = NULL;
  int rc;

  tls_pair_open (&pair);
  g_assert_cmpint (g_tls_connection_get_protocol_version (G_TLS_CONNECTION (pair.client)), ==,
                   version);

  server_binding (&server, &pair, FALSE);
  scram_succeeds (mechanism, G_TLS_CONNECTION (pair.client), &server, gs2);

  server_binding (&wrong, &pair, TRUE);
  client = client_new (mechanism, OUTBOX_SASL_SECRET_PASSWORD, G_TLS_CONNECTION (pair.client));
  scram_server_start (&wrong, mechanism);
  server_final = scram_run_to_final (client, &wrong, gs2, &rc);
  g_assert_null (server_final);
  g_assert_cmpint (rc, ==, GSASL_AUTHENTICATION_ERROR);

  scram_server_clear (&server);
  scram_server_clear (&wrong);
  tls_pair_clear (&pair);
}

static void
test_scram_plus_tls13 (void)
{
  scram_plus_round ("SCRAM-SHA-256-PLUS", G_TLS_PROTOCOL_VERSION_TLS_1_3, "p=tls-exporter,,n=");
  scram_plus_round ("SCRAM-SHA-1-PLUS", G_TLS_PROTOCOL_VERSION_TLS_1_3, "p=tls-exporter,,n=");
}

/* The non-PLUS forms must not claim, with "y", a binding they do not use,
 * even when the connection could give one. */
static void
test_scram_over_tls_does_not_bind (void)
{
  TlsPair pair = { 0 };
  ScramServer server = { 0 };

  tls_pair_open (&pair);
  scram_succeeds ("SCRAM-SHA-256", G_TLS_CONNECTION (pair.client), &server, "n,,n=");
  scram_server_clear (&server);
  tls_pair_clear (&pair);
}

static void
test_choose_plus_with_tls (void)
{
  const char *const offered[] = { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", NULL };
  const char *const both[] = { "SCRAM-SHA-1-PLUS", "scram-sha-256-plus", NULL };
  TlsPair pair = { 0 };
  GTlsConnection *tls;

  tls_pair_open (&pair);
  tls = G_TLS_CONNECTION (pair.client);
  assert_chosen (offered, OUTBOX_SASL_SECRET_PASSWORD, tls, NULL, "SCRAM-SHA-1-PLUS");
  assert_chosen (both, OUTBOX_SASL_SECRET_PASSWORD, tls, NULL, "SCRAM-SHA-256-PLUS");
  assert_chosen (both, OUTBOX_SASL_SECRET_PASSWORD, tls, "scram-sha-1-plus", "SCRAM-SHA-1-PLUS");
  /* A token never takes SCRAM, binding or not. */
  assert_unavailable (both, OUTBOX_SASL_SECRET_TOKEN, tls, NULL,
                      "The server offers no sign-in method Outbox can use with an OAuth2 token "
                      "(it offers: SCRAM-SHA-1-PLUS, scram-sha-256-plus); OAuth2 needs "
                      "OAUTHBEARER or XOAUTH2");
  tls_pair_clear (&pair);
}

/* GnuTLS reads G_TLS_GNUTLS_PRIORITY once per process, when the first TLS
 * connection is made: so TLS 1.2 runs in a subprocess of its own that sets
 * it first. */
static void
test_scram_plus_tls12 (void)
{
  if (g_test_subprocess ())
    {
      g_setenv ("G_TLS_GNUTLS_PRIORITY", "NORMAL:-VERS-TLS1.3", TRUE);
      scram_plus_round ("SCRAM-SHA-256-PLUS", G_TLS_PROTOCOL_VERSION_TLS_1_2, "p=tls-unique,,n=");
      scram_plus_round ("SCRAM-SHA-1-PLUS", G_TLS_PROTOCOL_VERSION_TLS_1_2, "p=tls-unique,,n=");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/sasl/mechanisms", test_mechanisms);
  g_test_add_func ("/sasl/new/refuses", test_new_refuses);
  g_test_add_func ("/sasl/plain/initial-response", test_plain_initial_response);
  g_test_add_func ("/sasl/plain/empty-challenge", test_plain_empty_challenge);
  g_test_add_func ("/sasl/plain/challenge-first", test_plain_challenge_first);
  g_test_add_func ("/sasl/login/prompts", test_login_prompts);
  g_test_add_func ("/sasl/login/no-initial-response", test_login_no_initial_response);
  g_test_add_func ("/sasl/oauthbearer/initial-response", test_oauthbearer_initial_response);
  g_test_add_func ("/sasl/oauthbearer/no-host-port", test_oauthbearer_no_host_port);
  g_test_add_func ("/sasl/oauthbearer/saslname", test_oauthbearer_saslname);
  g_test_add_func ("/sasl/oauthbearer/error-challenge", test_oauthbearer_error_challenge);
  g_test_add_func ("/sasl/oauthbearer/bad-challenge", test_oauthbearer_bad_challenge);
  g_test_add_func ("/sasl/xoauth2/initial-response", test_xoauth2_initial_response);
  g_test_add_func ("/sasl/xoauth2/error-challenge", test_xoauth2_error_challenge);
  g_test_add_func ("/sasl/oauth-error/valid", test_oauth_error_valid);
  g_test_add_func ("/sasl/oauth-error/missing-status", test_oauth_error_missing_status);
  g_test_add_func ("/sasl/oauth-error/not-object", test_oauth_error_not_object);
  g_test_add_func ("/sasl/oauth-error/garbage", test_oauth_error_garbage);
  g_test_add_func ("/sasl/choose/password", test_choose_password);
  g_test_add_func ("/sasl/choose/password-never-oauth", test_choose_password_never_oauth);
  g_test_add_func ("/sasl/choose/token", test_choose_token);
  g_test_add_func ("/sasl/choose/plus-without-tls", test_choose_plus_without_tls);
  g_test_add_func ("/sasl/choose/plus-with-tls", test_choose_plus_with_tls);
  g_test_add_func ("/sasl/choose/none-offered", test_choose_none_offered);
  g_test_add_func ("/sasl/choose/pinned", test_choose_pinned);
  g_test_add_func ("/sasl/choose/pinned-not-offered", test_choose_pinned_not_offered);
  g_test_add_func ("/sasl/choose/pinned-wrong-kind", test_choose_pinned_wrong_kind);
  g_test_add_func ("/sasl/choose/pinned-plus-without-tls", test_choose_pinned_plus_without_tls);
  g_test_add_func ("/sasl/choose/pinned-unknown", test_choose_pinned_unknown);
  g_test_add_func ("/sasl/scram/sha1", test_scram_sha1);
  g_test_add_func ("/sasl/scram/sha256", test_scram_sha256);
  g_test_add_func ("/sasl/scram/wrong-password", test_scram_wrong_password);
  g_test_add_func ("/sasl/scram/tampered-server-final", test_scram_tampered_server_final);
  g_test_add_func ("/sasl/scram/success-without-server-final",
                   test_scram_success_without_server_final);
  g_test_add_func ("/sasl/scram/server-final-with-success", test_scram_server_final_with_success);
  g_test_add_func ("/sasl/scram/server-error", test_scram_server_error);
  g_test_add_func ("/sasl/scram/server-error-with-success", test_scram_server_error_with_success);
  g_test_add_func ("/sasl/scram/bad-server-first", test_scram_bad_server_first);
  g_test_add_func ("/sasl/scram/too-many-iterations", test_scram_too_many_iterations);
  g_test_add_func ("/sasl/scram/over-tls-does-not-bind", test_scram_over_tls_does_not_bind);
  g_test_add_func ("/sasl/scram-plus/tls13", test_scram_plus_tls13);
  g_test_add_func ("/sasl/scram-plus/tls12", test_scram_plus_tls12);

  status = g_test_run ();
  test_certs_clear (&certs);
  return status;
}
