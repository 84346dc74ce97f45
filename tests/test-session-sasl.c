/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <gsasl.h>
#include <string.h>

#include "outbox-pop3.h"
#include "outbox-smtp-session.h"
#include "session-test-support.h"

/* The SMTP and POP3 sessions signing in with SCRAM, over implicit TLS, to a
 * fake server whose SASL side is GNU SASL's server: the whole path from
 * mechanism choice through channel binding to the server's proof, as the
 * daemon runs it.  Each case runs once per protocol. */

#define USER "alice"
#define PASSWORD "Tr0ub4dor-Ünïcode-scram"
#define ALL_SCRAM "SCRAM-SHA-256-PLUS SCRAM-SHA-256 SCRAM-SHA-1-PLUS SCRAM-SHA-1"

static TestCerts certs;

/* The server's SASL side ----------------------------------------------------
 *
 * One GNU SASL server session per AUTH command, in the fake server's
 * thread.  The channel binding it checks the client's against is its own,
 * taken from its end of the TLS connection: tls-exporter on TLS 1.3,
 * tls-unique before. */

typedef struct
{
  /* The script. */
  const char *offered;      /* mechanisms, space-separated */
  const char *password;     /* (nullable) what the server holds for USER; NULL: PASSWORD */
  gboolean corrupt_binding; /* the server's binding data has a bit flipped */
  gboolean forge_final;     /* the server-final message's v= is altered */
  gboolean error_challenge; /* a refused proof is answered "e=invalid-proof" first */

  /* State. */
  Gsasl *context;
  Gsasl_session *session;
  Gsasl_property binding_property; /* 0: no binding data */
  char *binding;                   /* (owned) (nullable) base64 */
  gboolean in_auth;                /* a challenge went: the next line answers it */
  gboolean final_sent;             /* the server-final message went */
  gboolean error_sent;             /* the e= challenge went: the next line ends it */

  /* The record, for the test once the server has stopped. */
  char *mechanism;    /* (owned) (nullable) what the client's AUTH asked for */
  char *client_first; /* (owned) (nullable) decoded */
  GTlsProtocolVersion tls_version;
  int final_rc;         /* gsasl's verdict on the client-final message; -1: none */
  guint forged_after;   /* commands recorded when the forged server-final went; 0: none */
  GPtrArray *responses; /* (owned) the base64 lines the client sent during AUTH */
} SaslServer;

typedef enum
{
  SASL_CHALLENGE,
  SASL_SUCCESS,
  SASL_FAILURE,
} SaslOutcome;

static int
sasl_server_callback (Gsasl *context, Gsasl_session *session, Gsasl_property property)
{
  SaslServer *sasl = gsasl_callback_hook_get (context);

  if (property == GSASL_PASSWORD &&
      g_strcmp0 (gsasl_property_fast (session, GSASL_AUTHID), USER) == 0)
    return gsasl_property_set (session, GSASL_PASSWORD,
                               sasl->password != NULL ? sasl->password : PASSWORD);
  if (property == sasl->binding_property && sasl->binding != NULL)
    return gsasl_property_set (session, property, sasl->binding);
  return GSASL_NO_CALLBACK;
}

/* The server's own binding data, from its end of the TLS connection. */
static void
sasl_server_bind (SaslServer *sasl, GTlsConnection *tls)
{
  g_autoptr (GByteArray) data = g_byte_array_new ();
  GTlsChannelBindingType type;

  sasl->tls_version = g_tls_connection_get_protocol_version (tls);
  type = sasl->tls_version == G_TLS_PROTOCOL_VERSION_TLS_1_3 ? G_TLS_CHANNEL_BINDING_TLS_EXPORTER
                                                             : G_TLS_CHANNEL_BINDING_TLS_UNIQUE;
  if (!g_tls_connection_get_channel_binding_data (tls, type, data, NULL) || data->len == 0)
    return;
  if (sasl->corrupt_binding)
    data->data[0] ^= 1;
  sasl->binding_property =
      type == G_TLS_CHANNEL_BINDING_TLS_EXPORTER ? GSASL_CB_TLS_EXPORTER : GSASL_CB_TLS_UNIQUE;
  sasl->binding = g_base64_encode (data->data, data->len);
}

static gboolean
sasl_server_offers (SaslServer *sasl, const char *mechanism)
{
  g_auto (GStrv) offered = g_strsplit (sasl->offered, " ", -1);

  for (gsize i = 0; offered[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (offered[i], mechanism) == 0)
        return TRUE;
    }
  return FALSE;
}

/* FALSE when the mechanism is not offered or gsasl cannot serve it. */
static gboolean
sasl_server_start (SaslServer *sasl, GIOStream *stream, const char *mechanism)
{
  g_free (sasl->mechanism);
  sasl->mechanism = g_strdup (mechanism);
  if (!sasl_server_offers (sasl, mechanism) || sasl->context != NULL)
    return FALSE;
  if (G_IS_TLS_CONNECTION (stream))
    sasl_server_bind (sasl, G_TLS_CONNECTION (stream));
  if (gsasl_init (&sasl->context) != GSASL_OK)
    {
      sasl->context = NULL;
      return FALSE;
    }
  gsasl_callback_set (sasl->context, sasl_server_callback);
  gsasl_callback_hook_set (sasl->context, sasl);
  if (gsasl_server_start (sasl->context, mechanism, &sasl->session) != GSASL_OK)
    {
      sasl->session = NULL;
      return FALSE;
    }
  return TRUE;
}

static void
sasl_server_clear (SaslServer *sasl)
{
  g_clear_pointer (&sasl->session, gsasl_finish);
  g_clear_pointer (&sasl->context, gsasl_done);
  g_clear_pointer (&sasl->binding, g_free);
  g_clear_pointer (&sasl->mechanism, g_free);
  g_clear_pointer (&sasl->client_first, g_free);
  g_clear_pointer (&sasl->responses, g_ptr_array_unref);
}

/* The answer to one base64 line from the client ("=": an empty initial
 * response); *@out_challenge (base64) goes with SASL_CHALLENGE. */
static SaslOutcome
sasl_server_step (SaslServer *sasl, const char *line, char **out_challenge)
{
  g_autofree guchar *input = NULL;
  gsize input_len = 0;
  char *output = NULL;
  size_t output_len = 0;
  int rc;

  g_ptr_array_add (sasl->responses, g_strdup (line));
  if (g_str_equal (line, "*"))
    return SASL_FAILURE;
  /* After the server-final message only an empty line may come. */
  if (sasl->final_sent)
    return *line == '\0' ? SASL_SUCCESS : SASL_FAILURE;
  if (*line != '\0' && !g_str_equal (line, "="))
    input = g_base64_decode (line, &input_len);
  if (sasl->client_first == NULL && input_len > 0)
    sasl->client_first = g_strndup ((const char *) input, input_len);

  rc = gsasl_step (sasl->session, (const char *) input, input_len, &output, &output_len);
  if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE)
    {
      sasl->final_rc = rc;
      gsasl_free (output);
      return SASL_FAILURE;
    }
  if (rc == GSASL_OK)
    {
      sasl->final_rc = rc;
      sasl->final_sent = TRUE;
      /* "v=" and the signature in base64: one letter of it changed. */
      if (sasl->forge_final && output_len > 3)
        output[3] = output[3] == 'A' ? 'B' : 'A';
    }
  *out_challenge = g_base64_encode ((const guchar *) output, output_len);
  gsasl_free (output);
  return SASL_CHALLENGE;
}

/* The fake servers' SMTP and POP3 -------------------------------------------
 *
 * The FakeServer (session-test-support.h) does the implicit TLS, sends the
 * greeting and records every line; a Dialect says how each protocol words
 * the capabilities and the sign-in. */

typedef struct
{
  const char *capability_verb;   /* "EHLO" */
  const char *capability_prefix; /* the answer to it up to the mechanisms */
  const char *capability_suffix; /* and after them */
  const char *challenge_prefix;  /* "334 " */
  const char *success;
  const char *failure;
  const char *unsupported; /* a mechanism not offered */
  const char *quit;
  const char *unknown;
} Dialect;

static const Dialect smtp_dialect = {
  .capability_verb = "EHLO",
  .capability_prefix = "250-fake.test\r\n250-AUTH ",
  .capability_suffix = "\r\n250 ENHANCEDSTATUSCODES\r\n",
  .challenge_prefix = "334 ",
  .success = "235 2.7.0 Authentication successful\r\n",
  .failure = "535 5.7.8 Authentication credentials invalid\r\n",
  .unsupported = "504 5.5.4 Unrecognized authentication type\r\n",
  .quit = "221 2.0.0 Bye\r\n",
  .unknown = "502 5.5.2 Unknown command\r\n",
};

static const Dialect pop3_dialect = {
  .capability_verb = "CAPA",
  .capability_prefix = "+OK Capability list follows\r\nUSER\r\nSASL ",
  .capability_suffix = "\r\n.\r\n",
  .challenge_prefix = "+ ",
  .success = "+OK Logged in.\r\n",
  .failure = "-ERR [AUTH] Authentication failed.\r\n",
  .unsupported = "-ERR Unsupported authentication mechanism.\r\n",
  .quit = "+OK Logging out.\r\n",
  .unknown = "-ERR Unknown command.\r\n",
};

static void
dialect_answer (FakeServer *server,
                const Dialect *dialect,
                SaslOutcome outcome,
                const char *challenge)
{
  SaslServer *sasl = server->script;
  g_autofree char *reply = NULL;

  sasl->in_auth = outcome == SASL_CHALLENGE;
  switch (outcome)
    {
    case SASL_CHALLENGE:
      reply = g_strconcat (dialect->challenge_prefix, challenge, "\r\n", NULL);
      if (sasl->forge_final && sasl->final_sent)
        sasl->forged_after = server->commands->len;
      break;
    case SASL_SUCCESS:
      reply = g_strdup (dialect->success);
      break;
    case SASL_FAILURE:
    default:
      reply = g_strdup (dialect->failure);
      break;
    }
  fake_server_send (server, reply);
}

/* "AUTH MECHANISM [initial-response]" */
static void
dialect_auth (FakeServer *server, const Dialect *dialect, const char *command)
{
  SaslServer *sasl = server->script;
  g_auto (GStrv) words = g_strsplit (command, " ", 3);
  g_autofree char *challenge = NULL;
  SaslOutcome outcome;

  if (words[1] == NULL || !sasl_server_start (sasl, server->stream, words[1]))
    {
      fake_server_send (server, dialect->unsupported);
      return;
    }
  if (words[2] == NULL)
    {
      dialect_answer (server, dialect, SASL_CHALLENGE, "");
      return;
    }
  outcome = sasl_server_step (sasl, words[2], &challenge);
  dialect_answer (server, dialect, outcome, challenge);
}

static gboolean
dialect_handle (FakeServer *server, const Dialect *dialect, const char *command)
{
  SaslServer *sasl = server->script;
  g_autofree char *verb = g_ascii_strup (command, (gssize) strcspn (command, " "));
  g_autofree char *reply = NULL;
  g_autofree char *challenge = NULL;
  SaslOutcome outcome;

  if (sasl->in_auth && sasl->error_sent)
    {
      g_ptr_array_add (sasl->responses, g_strdup (command));
      dialect_answer (server, dialect, SASL_FAILURE, NULL);
      return TRUE;
    }
  if (sasl->in_auth)
    {
      outcome = sasl_server_step (sasl, command, &challenge);
      if (outcome == SASL_FAILURE && sasl->error_challenge && sasl->final_rc != -1)
        {
          g_free (challenge);
          challenge = g_base64_encode ((const guchar *) "e=invalid-proof", 15);
          outcome = SASL_CHALLENGE;
          sasl->error_sent = TRUE;
        }
      dialect_answer (server, dialect, outcome, challenge);
      return TRUE;
    }
  if (g_str_equal (verb, dialect->capability_verb))
    {
      reply =
          g_strconcat (dialect->capability_prefix, sasl->offered, dialect->capability_suffix, NULL);
      fake_server_send (server, reply);
    }
  else if (g_str_equal (verb, "AUTH"))
    dialect_auth (server, dialect, command);
  else if (g_str_equal (verb, "QUIT"))
    {
      fake_server_send (server, dialect->quit);
      return FALSE;
    }
  else
    fake_server_send (server, dialect->unknown);
  return TRUE;
}

static gboolean
smtp_handle (FakeServer *server, const char *command)
{
  return dialect_handle (server, &smtp_dialect, command);
}

static gboolean
pop3_handle (FakeServer *server, const char *command)
{
  return dialect_handle (server, &pop3_dialect, command);
}

static const FakeProtocol fake_smtp = {
  .name = "fake-smtp",
  .greeting = "220 fake.test ESMTP\r\n",
  .handle = smtp_handle,
};

static const FakeProtocol fake_pop3 = {
  .name = "fake-pop3",
  .greeting = "+OK Fake POP3 ready.\r\n",
  .handle = pop3_handle,
};

/* The session side ------------------------------------------------------ */

typedef struct _Fixture Fixture;

typedef struct
{
  const char *name; /* in the test paths */
  const FakeProtocol *fake;
  const char *url_format; /* %u: the server's port */
  OutboxSession *(*session_new) (Fixture *f);
} Protocol;

struct _Fixture
{
  const Protocol *protocol;
  FakeServer server;
  SaslServer sasl;
  OutboxServerUrl *url;
  const char *auth_mech; /* (nullable) pinned */
  OutboxSession *session;
};

static OutboxSession *
smtp_session_new (Fixture *f)
{
  OutboxSmtpConfig config = { 0 };

  outbox_smtp_timeouts_init_default (&config.timeouts);
  config.timeouts.connect = 10;
  config.timeouts.greeting = 10;
  config.timeouts.command = 10;
  config.url = f->url;
  config.password = PASSWORD;
  config.tls_ca_file = certs.localhost.ca_file;
  config.auth_mech = f->auth_mech;
  return OUTBOX_SESSION (outbox_smtp_session_new (&config));
}

static OutboxSession *
pop3_session_new (Fixture *f)
{
  OutboxPop3Config config = { 0 };

  outbox_pop3_timeouts_init_default (&config.timeouts);
  config.timeouts.connect = 10;
  config.timeouts.greeting = 10;
  config.timeouts.command = 10;
  config.url = f->url;
  config.password = PASSWORD;
  config.tls_ca_file = certs.localhost.ca_file;
  config.auth_mech = f->auth_mech;
  return OUTBOX_SESSION (outbox_pop3_session_new (&config));
}

static const Protocol protocols[] = {
  { "smtp", &fake_smtp, "smtps://" USER "@127.0.0.1:%u", smtp_session_new },
  { "pop3", &fake_pop3, "pop3s://" USER "@127.0.0.1:%u", pop3_session_new },
};

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->protocol = data;
  f->server.implicit_tls = TRUE;
  f->server.certificate = certs.localhost.certificate;
  f->sasl.offered = ALL_SCRAM;
  f->sasl.final_rc = -1;
  f->sasl.responses = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->session);
  fake_server_clear (&f->server);
  sasl_server_clear (&f->sasl);
  g_clear_pointer (&f->url, outbox_server_url_free);
}

/* Starts the server and opens a session to it. */
static gboolean
open_session (Fixture *f, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  fake_server_start (&f->server, f->protocol->fake, &f->sasl);
  f->url = fake_server_url (&f->server, f->protocol->url_format);
  f->session = f->protocol->session_new (f);
  outbox_session_open_async (f->session, NULL, store_result, &result);
  return outbox_session_open_finish (f->session, wait_for (&result), error);
}

/* Drops the client side and waits until the server has seen everything. */
static void
end_conversation (Fixture *f)
{
  g_clear_object (&f->session);
  fake_server_stop (&f->server);
}

static void
assert_signed_in_with (Fixture *f, const char *mechanism)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (open_session (f, &error));
  g_assert_no_error (error);
  g_assert_true (outbox_session_is_signed_in (f->session));
  g_assert_cmpstr (outbox_session_get_mechanism (f->session), ==, mechanism);
  end_conversation (f);
  /* The server agrees: it was asked for that and the client proved itself. */
  g_assert_cmpstr (f->sasl.mechanism, ==, mechanism);
  g_assert_cmpint (f->sasl.final_rc, ==, GSASL_OK);
}

static void
assert_open_fails (Fixture *f, int code)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (open_session (f, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, code);
  g_assert_false (outbox_session_is_signed_in (f->session));
  g_assert_false (outbox_session_is_open (f->session));
  end_conversation (f);
}

/* The GS2 header of the client-first message as the server received it,
 * such as "p=tls-exporter,,". */
static void
assert_gs2_header (Fixture *f, const char *expected)
{
  g_autofree char *header = NULL;
  const char *client_first = f->sasl.client_first;
  const char *end;

  g_assert_nonnull (client_first);
  end = strstr (client_first, ",n=");
  header = end != NULL ? g_strndup (client_first, (gsize) (end - client_first) + 1)
                       : g_strdup (client_first);
  g_assert_cmpstr (header, ==, expected);
}

/* SCRAM-SHA-256-PLUS and its channel binding ---------------------------- */

static void
plus_signs_in (Fixture *f, GTlsProtocolVersion version, const char *gs2_header)
{
  assert_signed_in_with (f, "SCRAM-SHA-256-PLUS");
  g_assert_cmpint (f->sasl.tls_version, ==, version);
  g_assert_nonnull (f->sasl.binding);
  assert_gs2_header (f, gs2_header);
}

static void
test_plus_tls13 (Fixture *f, gconstpointer data)
{
  plus_signs_in (f, G_TLS_PROTOCOL_VERSION_TLS_1_3, "p=tls-exporter,,");
}

/* GnuTLS reads G_TLS_GNUTLS_PRIORITY once per process, when the first TLS
 * connection is made: so TLS 1.2 runs in a subprocess of its own that sets
 * it first. */
static void
test_plus_tls12 (Fixture *f, gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_setenv ("G_TLS_GNUTLS_PRIORITY", "NORMAL:-VERS-TLS1.3", TRUE);
      plus_signs_in (f, G_TLS_PROTOCOL_VERSION_TLS_1_2, "p=tls-unique,,");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

/* A server whose binding differs (a man in the middle's would) refuses the
 * client's proof. */
static void
test_plus_wrong_binding (Fixture *f, gconstpointer data)
{
  f->sasl.corrupt_binding = TRUE;
  assert_open_fails (f, OUTBOX_SESSION_ERROR_AUTH);
  g_assert_cmpstr (f->sasl.mechanism, ==, "SCRAM-SHA-256-PLUS");
  assert_gs2_header (f, "p=tls-exporter,,");
  g_assert_cmpint (f->sasl.final_rc, ==, GSASL_AUTHENTICATION_ERROR);
}

/* Choosing ---------------------------------------------------------------- */

static void
test_choose_strongest (Fixture *f, gconstpointer data)
{
  f->sasl.offered = "PLAIN SCRAM-SHA-1 SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-256-PLUS";
  assert_signed_in_with (f, "SCRAM-SHA-256-PLUS");
}

static void
test_choose_sha1_only (Fixture *f, gconstpointer data)
{
  f->sasl.offered = "PLAIN SCRAM-SHA-1";
  assert_signed_in_with (f, "SCRAM-SHA-1");
  /* No binding claimed for a mechanism that does not bind. */
  assert_gs2_header (f, "n,,");
}

static void
test_choose_pinned (Fixture *f, gconstpointer data)
{
  f->auth_mech = "SCRAM-SHA-1";
  f->sasl.offered = ALL_SCRAM " PLAIN";
  assert_signed_in_with (f, "SCRAM-SHA-1");
}

/* Failures ---------------------------------------------------------------- */

static void
test_wrong_password (Fixture *f, gconstpointer data)
{
  f->sasl.password = "not-" PASSWORD;
  assert_open_fails (f, OUTBOX_SESSION_ERROR_AUTH);
  g_assert_cmpint (f->sasl.final_rc, ==, GSASL_AUTHENTICATION_ERROR);
}

/* RFC 5802's way: the server answers a wrong proof with "e=invalid-proof"
 * as a challenge; the client ends the exchange and the server's failure
 * reply says what happened: a refused password, not a broken server. */
static void
test_error_challenge (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->sasl.password = "not-" PASSWORD;
  f->sasl.error_challenge = TRUE;
  g_assert_false (open_session (f, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "the server says invalid-proof"));
  g_assert_true (f->sasl.error_sent);
  end_conversation (f);
}

/* The lines the client sent from the @first-th on, one per line. */
static char *
commands_from (Fixture *f, guint first)
{
  GString *text = g_string_new (NULL);

  for (guint i = first; i < f->server.commands->len; i++)
    g_string_append_printf (text, "%s\n", (const char *) g_ptr_array_index (f->server.commands, i));
  return g_string_free (text, FALSE);
}

/* A server that cannot prove it knows the password is not answered: the
 * session drops the connection at once. */
static void
test_forged_server_final (Fixture *f, gconstpointer data)
{
  g_autofree char *after = NULL;

  f->sasl.forge_final = TRUE;
  assert_open_fails (f, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_cmpuint (f->sasl.forged_after, >, 0);
  after = commands_from (f, f->sasl.forged_after);
  g_assert_cmpstr (after, ==, "");
}

/* The trace ---------------------------------------------------------------- */

/* With debug messages on, the protocol trace shows that the sign-in went
 * and with which mechanism, and never the password or anything the client
 * sent during the exchange.  In a subprocess, so that G_MESSAGES_DEBUG does
 * not flood the TAP stream. */
static void
test_trace_hides_password (Fixture *f, gconstpointer data)
{
  g_autofree char *password_base64 = NULL;
  g_autoptr (GError) error = NULL;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      g_test_trap_assert_stdout_unmatched ("*" PASSWORD "*");
      g_test_trap_assert_stderr_unmatched ("*" PASSWORD "*");
      return;
    }

  g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);
  password_base64 = g_base64_encode ((const guchar *) PASSWORD, strlen (PASSWORD));
  log_capture_start ();
  g_assert_true (open_session (f, &error));
  g_assert_no_error (error);
  end_conversation (f);

  g_assert_true (logs_contain ("C: AUTH SCRAM-SHA-256-PLUS ****"));
  g_assert_true (logs_contain ("C: ****"));
  g_assert_false (logs_contain (PASSWORD));
  g_assert_false (logs_contain (password_base64));
  /* The client proof is worth the password for this exchange. */
  g_assert_cmpuint (f->sasl.responses->len, >=, 2);
  for (guint i = 0; i < f->sasl.responses->len; i++)
    {
      const char *response = g_ptr_array_index (f->sasl.responses, i);

      if (strlen (response) > 1)
        g_assert_false (logs_contain (response));
    }
  log_capture_stop ();
}

static void
add_test (const Protocol *protocol, const char *name, void (*func) (Fixture *f, gconstpointer data))
{
  g_autofree char *path = g_strdup_printf ("/session-sasl/%s/%s", protocol->name, name);

  g_test_add (path, Fixture, protocol, fixture_setup, func, fixture_teardown);
}

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_capture_writer, NULL, NULL);
  test_certs_make (&certs);

  for (gsize i = 0; i < G_N_ELEMENTS (protocols); i++)
    {
      const Protocol *protocol = &protocols[i];

      add_test (protocol, "scram-sha-256-plus/tls13", test_plus_tls13);
      add_test (protocol, "scram-sha-256-plus/tls12", test_plus_tls12);
      add_test (protocol, "scram-sha-256-plus/wrong-binding", test_plus_wrong_binding);
      add_test (protocol, "choose/strongest", test_choose_strongest);
      add_test (protocol, "choose/sha1-only", test_choose_sha1_only);
      add_test (protocol, "choose/pinned", test_choose_pinned);
      add_test (protocol, "scram/wrong-password", test_wrong_password);
      add_test (protocol, "scram/forged-server-final", test_forged_server_final);
      add_test (protocol, "scram/error-challenge", test_error_challenge);
      add_test (protocol, "trace/hides-password", test_trace_hides_password);
    }

  status = g_test_run ();

  test_certs_clear (&certs);
  return status;
}
