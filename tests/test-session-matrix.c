/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-imap.h"
#include "outbox-pop3.h"
#include "outbox-smtp-session.h"
#include "session-test-support.h"

/* What OutboxSession promises for every protocol: TLS, STARTTLS and its
 * injection check, certificate trust and pins, the sign-in through the
 * SASL layer or the protocol's own password command, deadlines,
 * cancellation and the redacted trace.  A table of dialects says how SMTP,
 * IMAP and POP3 word each step on a scripted fake server; each case runs
 * once per dialect as /session-matrix/PROTOCOL/CASE. */

#define USER "alice"
#define PASSWORD "s3cret-Pa55word"
#define TOKEN "ya29.matrix-t0ken"
#define OAUTH_ERROR "{\"status\":\"invalid_token\",\"schemes\":\"bearer\"}"

static TestCerts certs;

typedef struct _Fixture Fixture;

/* A dialect ---------------------------------------------------------------
 *
 * Replies are without their CR LF; a tagged dialect (IMAP) puts the tag of
 * the command in front of each final reply. */

typedef struct
{
  const char *name; /* in the test paths and the URL schemes */
  const FakeProtocol *fake;
  gboolean tagged;
  const char *capability_verb;
  const char *starttls_verb;
  const char *auth_verb;
  const char *user_verb;      /* (nullable) POP3's USER before the password command */
  const char *password_verb;  /* (nullable) the protocol's own password command */
  const char *password_trace; /* (nullable) how the trace shows that command */
  const char *quit_verb;
  const char *challenge_prefix; /* "334 " or "+ " */
  const char *starttls_ok;
  const char *starttls_refused;
  const char *injected; /* with its CR LF: sent right after starttls_ok, in the same write */
  const char *accepted; /* the credentials */
  const char *refused;
  const char *unsupported; /* a mechanism not offered */
  const char *unknown;
  const char *quit;
  /* The answer to the capability command: the head, STARTTLS when it is
   * offered, the mechanisms each after mechanism_prefix between the
   * mechanisms_open and _close, the tail and then the status (nullable). */
  const char *capability_head;
  const char *capability_starttls;
  const char *mechanisms_open;
  const char *mechanism_prefix;
  const char *mechanisms_close;
  const char *capability_tail;
  const char *capability_status;
  OutboxSession *(*session_new) (Fixture *f);
} Dialect;

/* The fake server's script, state and record ----------------------------- */

typedef enum
{
  STARTTLS_AGREE,
  STARTTLS_REFUSE,
  STARTTLS_INJECT, /* agree, and send more bytes right after the answer */
} StarttlsAnswer;

typedef struct
{
  const Dialect *dialect;

  /* The script. */
  gboolean starttls_offered;
  StarttlsAnswer starttls;
  const char *mechanisms;     /* (nullable) the SASL mechanisms offered, space-separated */
  const char *mechanisms_tls; /* (nullable) once TLS is up; NULL: the same */
  const char *password;       /* what the server holds for USER */
  const char *token;

  /* State. */
  char *tag;            /* (owned) (nullable) of the command being answered */
  char *exchange;       /* (owned) (nullable) the mechanism of the running AUTH */
  guint exchange_round; /* client messages in it so far */
  gboolean user_ok;     /* LOGIN's first answer, POP3's USER */
  gboolean bare_prompts; /* LOGIN's prompts are empty challenges */

  /* The record. */
  char *mechanism;        /* (owned) (nullable) what the last AUTH asked for */
  GBytes *client_first;   /* (owned) (nullable) its first client message, decoded */
  GPtrArray *responses;   /* (owned) every base64 client message of the sign-in */
  char *after_error;      /* (owned) (nullable) the answer to the OAuth2 error challenge */
  guint capabilities_tls; /* capability commands answered over TLS */
} Script;

static void
send_status (FakeServer *server, const char *text)
{
  Script *script = server->script;
  g_autofree char *line = NULL;

  if (script->dialect->tagged)
    line = g_strdup_printf ("%s %s\r\n", script->tag, text);
  else
    line = g_strdup_printf ("%s\r\n", text);
  fake_server_send (server, line);
}

static void
send_challenge (FakeServer *server, const char *base64)
{
  Script *script = server->script;
  g_autofree char *line = g_strdup_printf ("%s%s\r\n", script->dialect->challenge_prefix, base64);

  fake_server_send (server, line);
}

static const char *
offered_mechanisms (FakeServer *server)
{
  Script *script = server->script;

  if (server->tls_up && script->mechanisms_tls != NULL)
    return script->mechanisms_tls;
  return script->mechanisms;
}

static gboolean
offers (FakeServer *server, const char *mechanism)
{
  const char *offered = offered_mechanisms (server);
  g_auto (GStrv) names = g_strsplit (offered != NULL ? offered : "", " ", -1);

  for (gsize i = 0; names[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (names[i], mechanism) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
bytes_are (GBytes *bytes, const char *expected, gsize len)
{
  g_autoptr (GBytes) wanted = g_bytes_new_static (expected, len);

  return bytes != NULL && g_bytes_equal (bytes, wanted);
}

static gboolean
bytes_are_string (GBytes *bytes, const char *expected)
{
  return bytes_are (bytes, expected, strlen (expected));
}

/* "=" is an empty initial response, an empty line an empty answer. */
static GBytes *
decode (const char *base64)
{
  gsize len = 0;
  guchar *octets;

  if (*base64 == '\0' || g_str_equal (base64, "="))
    return g_bytes_new (NULL, 0);
  octets = g_base64_decode (base64, &len);
  return g_bytes_new_take (octets, len);
}

static void
finish_exchange (FakeServer *server, gboolean accept)
{
  Script *script = server->script;

  g_clear_pointer (&script->exchange, g_free);
  send_status (server, accept ? script->dialect->accepted : script->dialect->refused);
}

static gboolean
plain_is_right (Script *script, GBytes *message)
{
  g_autofree char *expected = g_strdup_printf ("%c%s%c%s", 0, USER, 0, script->password);

  return bytes_are (message, expected, strlen (USER) + strlen (script->password) + 2);
}

static gboolean
oauth_is_right (FakeServer *server, GBytes *message)
{
  Script *script = server->script;
  g_autofree char *expected = NULL;

  if (g_str_equal (script->exchange, "XOAUTH2"))
    expected = g_strdup_printf ("user=%s\001auth=Bearer %s\001\001", USER, script->token);
  else
    expected = g_strdup_printf ("n,a=%s,\001host=127.0.0.1\001port=%u\001auth=Bearer %s\001\001",
                                USER, server->port, script->token);
  return bytes_are_string (message, expected);
}

/* One client message of the exchange, in base64; NULL when the command
 * carried no initial response. */
static void
exchange_step (FakeServer *server, const char *base64)
{
  Script *script = server->script;
  const char *mechanism = script->exchange;
  g_autoptr (GBytes) message = NULL;
  guint round;

  if (base64 == NULL)
    {
      /* LOGIN waits for its first prompt; the others are asked for their
       * first message. */
      send_challenge (server, g_str_equal (mechanism, "LOGIN") && !script->bare_prompts
                                  ? "VXNlcm5hbWU6"
                                  : "");
      return;
    }
  g_ptr_array_add (script->responses, g_strdup (base64));
  message = decode (base64);
  round = script->exchange_round++;
  if (round == 0)
    script->client_first = g_bytes_ref (message);

  if (g_str_equal (mechanism, "PLAIN"))
    finish_exchange (server, plain_is_right (script, message));
  else if (g_str_equal (mechanism, "LOGIN") && round == 0)
    {
      script->user_ok = bytes_are_string (message, USER);
      send_challenge (server, script->bare_prompts ? "" : "UGFzc3dvcmQ6");
    }
  else if (g_str_equal (mechanism, "LOGIN"))
    finish_exchange (server, script->user_ok && bytes_are_string (message, script->password));
  else if ((g_str_equal (mechanism, "OAUTHBEARER") || g_str_equal (mechanism, "XOAUTH2")) &&
           round == 0)
    {
      g_autofree char *challenge = NULL;

      if (oauth_is_right (server, message))
        {
          finish_exchange (server, TRUE);
          return;
        }
      /* RFC 7628 section 3.2.2: the error as a challenge, then the refusal. */
      challenge = g_base64_encode ((const guchar *) OAUTH_ERROR, strlen (OAUTH_ERROR));
      send_challenge (server, challenge);
    }
  else if (g_str_equal (mechanism, "OAUTHBEARER") || g_str_equal (mechanism, "XOAUTH2"))
    {
      script->after_error = g_strdup (base64);
      finish_exchange (server, FALSE);
    }
  else
    /* SCRAM and the rest: only which one the client chose counts here. */
    finish_exchange (server, FALSE);
}

/* "MECHANISM [initial-response]" */
static void
exchange_start (FakeServer *server, const char *arguments)
{
  Script *script = server->script;
  g_auto (GStrv) words = g_strsplit (arguments, " ", 2);

  if (words[0] == NULL)
    {
      send_status (server, script->dialect->unsupported);
      return;
    }
  g_free (script->mechanism);
  script->mechanism = g_ascii_strup (words[0], -1);
  if (!offers (server, script->mechanism))
    {
      send_status (server, script->dialect->unsupported);
      return;
    }
  script->exchange = g_strdup (script->mechanism);
  script->exchange_round = 0;
  g_clear_pointer (&script->client_first, g_bytes_unref);
  exchange_step (server, words[1]);
}

static gboolean
answer_starttls (FakeServer *server)
{
  Script *script = server->script;
  const Dialect *dialect = script->dialect;
  g_autofree char *answer = NULL;

  switch (script->starttls)
    {
    case STARTTLS_REFUSE:
      send_status (server, dialect->starttls_refused);
      return TRUE;
    case STARTTLS_INJECT:
      answer = dialect->tagged
                   ? g_strdup_printf ("%s %s\r\n%s", script->tag, dialect->starttls_ok,
                                      dialect->injected)
                   : g_strdup_printf ("%s\r\n%s", dialect->starttls_ok, dialect->injected);
      fake_server_send (server, answer);
      return TRUE;
    case STARTTLS_AGREE:
    default:
      send_status (server, dialect->starttls_ok);
      return fake_server_start_tls (server);
    }
}

/* IMAP's LOGIN "user" "password", POP3's PASS password. */
static void
answer_password (FakeServer *server, const char *arguments)
{
  Script *script = server->script;
  g_autofree char *expected = NULL;

  if (script->dialect->user_verb != NULL)
    expected = g_strdup (script->password);
  else
    expected = g_strdup_printf ("\"%s\" \"%s\"", USER, script->password);
  send_status (server, (script->dialect->user_verb == NULL || script->user_ok) &&
                               g_str_equal (arguments, expected)
                           ? script->dialect->accepted
                           : script->dialect->refused);
}

/* The verb of @command, upper case, after the tag in a tagged dialect;
 * *@out_tag gets the tag and *@out_arguments what follows the verb. */
static char *
split_command (const Dialect *dialect,
               const char *command,
               char **out_tag,
               const char **out_arguments)
{
  const char *verb = command;
  const char *end;

  if (dialect->tagged)
    {
      end = strchr (command, ' ');
      verb = end != NULL ? end + 1 : command + strlen (command);
      if (out_tag != NULL)
        {
          g_free (*out_tag);
          *out_tag = g_strndup (command, (gsize) (verb - command) - (end != NULL ? 1 : 0));
        }
    }
  end = verb + strcspn (verb, " ");
  if (out_arguments != NULL)
    *out_arguments = *end == ' ' ? end + 1 : end;
  return g_ascii_strup (verb, end - verb);
}

static void
answer_capabilities (FakeServer *server)
{
  Script *script = server->script;
  const Dialect *dialect = script->dialect;
  const char *mechanisms = offered_mechanisms (server);
  g_autoptr (GString) answer = g_string_new (dialect->capability_head);

  if (script->starttls_offered && !server->tls_up)
    g_string_append (answer, dialect->capability_starttls);
  if (mechanisms != NULL)
    {
      g_auto (GStrv) names = g_strsplit (mechanisms, " ", -1);

      g_string_append (answer, dialect->mechanisms_open);
      for (gsize i = 0; names[i] != NULL; i++)
        g_string_append_printf (answer, "%s%s", dialect->mechanism_prefix, names[i]);
      g_string_append (answer, dialect->mechanisms_close);
    }
  g_string_append (answer, dialect->capability_tail);
  fake_server_send (server, answer->str);
  if (dialect->capability_status != NULL)
    send_status (server, dialect->capability_status);
  script->capabilities_tls += server->tls_up;
}

static gboolean
matrix_handle (FakeServer *server, const char *command)
{
  Script *script = server->script;
  const Dialect *dialect = script->dialect;
  g_autofree char *verb = NULL;
  const char *arguments = NULL;

  if (script->exchange != NULL)
    {
      exchange_step (server, command);
      return TRUE;
    }
  verb = split_command (dialect, command, &script->tag, &arguments);
  if (g_strcmp0 (verb, server->hang_on) == 0)
    return TRUE;
  if (g_str_equal (verb, dialect->capability_verb))
    answer_capabilities (server);
  else if (g_str_equal (verb, dialect->starttls_verb))
    return answer_starttls (server);
  else if (g_str_equal (verb, dialect->auth_verb))
    exchange_start (server, arguments);
  else if (g_strcmp0 (verb, dialect->user_verb) == 0)
    {
      script->user_ok = g_str_equal (arguments, USER);
      send_status (server, "+OK");
    }
  else if (g_strcmp0 (verb, dialect->password_verb) == 0)
    answer_password (server, arguments);
  else if (g_str_equal (verb, dialect->quit_verb))
    {
      send_status (server, dialect->quit);
      return FALSE;
    }
  else
    send_status (server, dialect->unknown);
  return TRUE;
}

/* The dialects ------------------------------------------------------------ */

static const FakeProtocol fake_smtp = {
  .name = "fake-smtp",
  .greeting = "220 fake.test ESMTP\r\n",
  .handle = matrix_handle,
};

static const FakeProtocol fake_imap = {
  .name = "fake-imap",
  .greeting = "* OK fake IMAP ready\r\n",
  .handle = matrix_handle,
};

static const FakeProtocol fake_pop3 = {
  .name = "fake-pop3",
  .greeting = "+OK Fake POP3 ready.\r\n",
  .handle = matrix_handle,
};

/* The session side ------------------------------------------------------ */

struct _Fixture
{
  const Dialect *dialect;
  FakeServer server;
  Script script;
  OutboxServerUrl *url;
  OutboxSession *session;

  /* The session's configuration. */
  const char *secret;
  OutboxSaslSecretKind secret_kind;
  const char *tls_ca_file;
  const char *tls_fingerprint;
  guint greeting_timeout;
  guint command_timeout;
};

#define CONFIGURE(config, f)                                                                       \
  G_STMT_START                                                                                     \
  {                                                                                                \
    (config)->url = (f)->url;                                                                      \
    (config)->password = (f)->secret;                                                              \
    (config)->secret_kind = (f)->secret_kind;                                                      \
    (config)->tls_ca_file = (f)->tls_ca_file;                                                      \
    (config)->tls_fingerprint = (f)->tls_fingerprint;                                              \
    (config)->timeouts.connect = 10;                                                               \
  }                                                                                                \
  G_STMT_END

static OutboxSession *
smtp_session_new (Fixture *f)
{
  OutboxSmtpConfig config = { 0 };

  outbox_smtp_timeouts_init_default (&config.timeouts);
  CONFIGURE (&config, f);
  config.timeouts.greeting = f->greeting_timeout;
  config.timeouts.command = f->command_timeout;
  return OUTBOX_SESSION (outbox_smtp_session_new (&config));
}

/* IMAP waits for its greeting as for any response. */
static OutboxSession *
imap_session_new (Fixture *f)
{
  OutboxImapConfig config = { 0 };

  outbox_imap_timeouts_init_default (&config.timeouts);
  CONFIGURE (&config, f);
  config.timeouts.command = MIN (f->greeting_timeout, f->command_timeout);
  return OUTBOX_SESSION (outbox_imap_session_new (&config));
}

static OutboxSession *
pop3_session_new (Fixture *f)
{
  OutboxPop3Config config = { 0 };

  outbox_pop3_timeouts_init_default (&config.timeouts);
  CONFIGURE (&config, f);
  config.timeouts.greeting = f->greeting_timeout;
  config.timeouts.command = f->command_timeout;
  return OUTBOX_SESSION (outbox_pop3_session_new (&config));
}

static const Dialect dialects[] = {
  {
      .name = "smtp",
      .fake = &fake_smtp,
      .capability_verb = "EHLO",
      .starttls_verb = "STARTTLS",
      .auth_verb = "AUTH",
      .quit_verb = "QUIT",
      .challenge_prefix = "334 ",
      .starttls_ok = "220 2.0.0 Ready to start TLS",
      .starttls_refused = "454 4.7.0 TLS not available",
      .injected = "250 injected\r\n",
      .accepted = "235 2.7.0 Authentication successful",
      .refused = "535 5.7.8 Authentication credentials invalid",
      .unsupported = "504 5.5.4 Unrecognized authentication type",
      .unknown = "502 5.5.2 Unknown command",
      .quit = "221 2.0.0 Bye",
      .capability_head = "250-fake.test\r\n",
      .capability_starttls = "250-STARTTLS\r\n",
      .mechanisms_open = "250-AUTH",
      .mechanism_prefix = " ",
      .mechanisms_close = "\r\n",
      .capability_tail = "250 ENHANCEDSTATUSCODES\r\n",
      .session_new = smtp_session_new,
  },
  {
      .name = "imap",
      .fake = &fake_imap,
      .tagged = TRUE,
      .capability_verb = "CAPABILITY",
      .starttls_verb = "STARTTLS",
      .auth_verb = "AUTHENTICATE",
      .password_verb = "LOGIN",
      .password_trace = "LOGIN \"" USER "\" ****",
      .quit_verb = "LOGOUT",
      .challenge_prefix = "+ ",
      .starttls_ok = "OK Begin TLS negotiation now",
      .starttls_refused = "NO [UNAVAILABLE] TLS not available",
      .injected = "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n",
      .accepted = "OK Logged in",
      .refused = "NO [AUTHENTICATIONFAILED] Authentication failed.",
      .unsupported = "NO Unsupported authentication mechanism",
      .unknown = "BAD Unknown command",
      .quit = "OK Logout completed",
      /* LOGIN stays allowed: without a mechanism, it is the way in. */
      .capability_head = "* CAPABILITY IMAP4rev1 SASL-IR",
      .capability_starttls = " STARTTLS",
      .mechanisms_open = "",
      .mechanism_prefix = " AUTH=",
      .mechanisms_close = "",
      .capability_tail = "\r\n",
      .capability_status = "OK CAPABILITY completed",
      .session_new = imap_session_new,
  },
  {
      .name = "pop3",
      .fake = &fake_pop3,
      .capability_verb = "CAPA",
      .starttls_verb = "STLS",
      .auth_verb = "AUTH",
      .user_verb = "USER",
      .password_verb = "PASS",
      .password_trace = "PASS ****",
      .quit_verb = "QUIT",
      .challenge_prefix = "+ ",
      .starttls_ok = "+OK Begin TLS negotiation now.",
      .starttls_refused = "-ERR TLS not available",
      .injected = "+OK Logged in.\r\n",
      .accepted = "+OK Logged in.",
      .refused = "-ERR [AUTH] Authentication failed.",
      .unsupported = "-ERR Unsupported authentication mechanism.",
      .unknown = "-ERR Unknown command.",
      .quit = "+OK Logging out.",
      .capability_head = "+OK Capability list follows\r\nUSER\r\n",
      .capability_starttls = "STLS\r\n",
      .mechanisms_open = "SASL",
      .mechanism_prefix = " ",
      .mechanisms_close = "\r\n",
      .capability_tail = ".\r\n",
      .session_new = pop3_session_new,
  },
};

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dialect = data;
  f->script.dialect = f->dialect;
  f->script.password = PASSWORD;
  f->script.token = TOKEN;
  f->script.responses = g_ptr_array_new_with_free_func (g_free);
  f->server.certificate = certs.localhost.certificate;
  f->secret = PASSWORD;
  f->secret_kind = OUTBOX_SASL_SECRET_PASSWORD;
  f->tls_ca_file = certs.localhost.ca_file;
  f->greeting_timeout = 10;
  f->command_timeout = 10;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->session);
  fake_server_clear (&f->server);
  g_clear_pointer (&f->url, outbox_server_url_free);
  g_clear_pointer (&f->script.tag, g_free);
  g_clear_pointer (&f->script.exchange, g_free);
  g_clear_pointer (&f->script.mechanism, g_free);
  g_clear_pointer (&f->script.client_first, g_bytes_unref);
  g_clear_pointer (&f->script.after_error, g_free);
  g_clear_pointer (&f->script.responses, g_ptr_array_unref);
}

typedef enum
{
  PLAINTEXT,    /* PROTOCOL+insecure:// */
  STARTTLS,     /* PROTOCOL:// */
  IMPLICIT_TLS, /* PROTOCOLs:// */
} Security;

/* Starts the fake server and opens a session to USER@@host on it. */
static gboolean
open_session_full (
    Fixture *f, Security security, const char *host, GCancellable *cancellable, GError **error)
{
  static const char *const suffixes[] = { "+insecure", "", "s" };
  g_autofree char *url_format = NULL;
  g_autoptr (GAsyncResult) result = NULL;

  f->server.implicit_tls = security == IMPLICIT_TLS;
  fake_server_start (&f->server, f->dialect->fake, &f->script);
  url_format =
      g_strdup_printf ("%s%s://%s@%s:%%u", f->dialect->name, suffixes[security], USER, host);
  f->url = fake_server_url (&f->server, url_format);
  f->session = f->dialect->session_new (f);
  outbox_session_open_async (f->session, cancellable, store_result, &result);
  return outbox_session_open_finish (f->session, wait_for (&result), error);
}

static gboolean
open_session (Fixture *f, Security security, GError **error)
{
  return open_session_full (f, security, "127.0.0.1", NULL, error);
}

/* Drops the client side and waits until the server has seen everything. */
static void
end_conversation (Fixture *f)
{
  g_clear_object (&f->session);
  fake_server_stop (&f->server);
}

/* The verbs of the first @n commands the server received (all of them
 * for G_MAXUINT), space-separated. */
static char *
received_verbs (Fixture *f, guint n)
{
  g_autoptr (GString) verbs = g_string_new (NULL);

  for (guint i = 0; i < MIN (n, f->server.commands->len); i++)
    {
      g_autofree char *verb =
          split_command (f->dialect, g_ptr_array_index (f->server.commands, i), NULL, NULL);

      g_string_append_printf (verbs, "%s%s", i > 0 ? " " : "", verb);
    }
  return g_string_free (g_steal_pointer (&verbs), FALSE);
}

/* The server received exactly these verbs (NULL-terminated), in order. */
static void assert_verbs (Fixture *f, const char *first, ...) G_GNUC_NULL_TERMINATED;

static void
assert_verbs (Fixture *f, const char *first, ...)
{
  g_autoptr (GString) expected = g_string_new (NULL);
  g_autofree char *received = received_verbs (f, G_MAXUINT);
  va_list args;

  va_start (args, first);
  for (const char *verb = first; verb != NULL; verb = va_arg (args, const char *))
    g_string_append_printf (expected, "%s%s", expected->len > 0 ? " " : "", verb);
  va_end (args);
  g_assert_cmpstr (received, ==, expected->str);
}

static guint
count_verb (Fixture *f, const char *verb)
{
  guint count = 0;

  for (guint i = 0; verb != NULL && i < f->server.commands->len; i++)
    {
      g_autofree char *received =
          split_command (f->dialect, g_ptr_array_index (f->server.commands, i), NULL, NULL);

      count += g_str_equal (received, verb);
    }
  return count;
}

static void
assert_open_fails (Fixture *f, Security security, GQuark domain, int code, GError **error)
{
  g_assert_false (open_session (f, security, error));
  g_assert_error (*error, domain, code);
  g_assert_false (outbox_session_is_open (f->session));
  g_assert_false (outbox_session_is_signed_in (f->session));
}

static void
assert_signed_in (Fixture *f, Security security, const char *mechanism)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (open_session (f, security, &error));
  g_assert_no_error (error);
  g_assert_true (outbox_session_is_open (f->session));
  g_assert_true (outbox_session_is_signed_in (f->session));
  g_assert_cmpstr (outbox_session_get_mechanism (f->session), ==, mechanism);
}

/* TLS ------------------------------------------------------------------------ */

static void
test_implicit_tls (Fixture *f, gconstpointer data)
{
  f->script.mechanisms = "PLAIN";
  assert_signed_in (f, IMPLICIT_TLS, "PLAIN");
  g_assert_true (g_tls_certificate_is_same (outbox_session_get_peer_certificate (f->session),
                                            certs.localhost.certificate));

  end_conversation (f);
  g_assert_true (f->server.tls_up);
  g_assert_cmpuint (count_verb (f, f->dialect->starttls_verb), ==, 0);
}

static void
test_starttls_missing (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.mechanisms = "PLAIN";
  assert_open_fails (f, STARTTLS, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TLS_REQUIRED, &error);
  g_assert_nonnull (strstr (error->message, f->dialect->starttls_verb));

  end_conversation (f);
  assert_verbs (f, f->dialect->capability_verb, NULL);
}

static void
test_starttls_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.starttls_offered = TRUE;
  f->script.starttls = STARTTLS_REFUSE;
  f->script.mechanisms = "PLAIN";
  assert_open_fails (f, STARTTLS, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TLS_REQUIRED, &error);
  g_assert_nonnull (strstr (error->message, f->dialect->starttls_refused));

  end_conversation (f);
  assert_verbs (f, f->dialect->capability_verb, f->dialect->starttls_verb, NULL);
}

static void
test_starttls_injection (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.starttls_offered = TRUE;
  f->script.starttls = STARTTLS_INJECT;
  f->script.mechanisms = "PLAIN";
  assert_open_fails (f, STARTTLS, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_INJECTION, &error);

  end_conversation (f);
  /* A TLS ClientHello would show up here as one more "command". */
  assert_verbs (f, f->dialect->capability_verb, f->dialect->starttls_verb, NULL);
  g_assert_false (f->server.tls_up);
}

/* What the server offered before TLS is void once TLS is up: the client
 * asks again over TLS and uses what it hears then. */
static void
test_starttls_forgets_capabilities (Fixture *f, gconstpointer data)
{
  g_autofree char *received = NULL;
  g_autofree char *expected = NULL;

  f->script.starttls_offered = TRUE;
  f->script.mechanisms = "PLAIN";
  f->script.mechanisms_tls = "LOGIN";
  assert_signed_in (f, STARTTLS, "LOGIN");
  g_assert_nonnull (outbox_session_get_peer_certificate (f->session));

  end_conversation (f);
  g_assert_true (f->server.tls_up);
  g_assert_cmpuint (f->script.capabilities_tls, >=, 1);
  received = received_verbs (f, 4);
  expected = g_strdup_printf ("%s %s %s %s", f->dialect->capability_verb, f->dialect->starttls_verb,
                              f->dialect->capability_verb, f->dialect->auth_verb);
  g_assert_cmpstr (received, ==, expected);
  /* One exchange, and not with PLAIN. */
  g_assert_cmpuint (count_verb (f, f->dialect->auth_verb), ==, 1);
  g_assert_cmpstr (f->script.mechanism, ==, "LOGIN");
}

/* A certificate the CAs vouch for must still match the pin. */
static void
test_pin_mismatch (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->tls_fingerprint = certs.other.fingerprint;
  assert_open_fails (f, IMPLICIT_TLS, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE, &error);

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 0);
}

/* Without tls_ca_file the system's CAs decide, and none signed the test
 * certificate. */
static void
test_untrusted_cert (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->tls_ca_file = NULL;
  assert_open_fails (f, IMPLICIT_TLS, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE, &error);

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 0);
}

/* Even a CA the user trusts cannot vouch for an expired certificate; the
 * error says what was wrong and the certificate stays for account test. */
static void
test_expired_cert (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.certificate = certs.expired.certificate;
  f->tls_ca_file = certs.expired.ca_file;
  assert_open_fails (f, IMPLICIT_TLS, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE, &error);
  g_assert_nonnull (strstr (error->message, "it has expired"));
  g_assert_nonnull (strstr (error->message, "certificate sha256:"));
  g_assert_nonnull (outbox_session_get_peer_certificate (f->session));

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 0);
}

/* Sign-in ---------------------------------------------------------------------- */

/* 0.0.0.0 reaches this machine but is not a loopback address: the session
 * must treat the connection as plaintext to a remote host. */
static void
test_plaintext_login_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.mechanisms = "PLAIN LOGIN";
  g_assert_false (open_session_full (f, PLAINTEXT, "0.0.0.0", NULL, &error));
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE))
    {
      g_test_skip ("this system does not route 0.0.0.0 to the local host");
      return;
    }
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "unencrypted"));

  end_conversation (f);
  assert_verbs (f, f->dialect->capability_verb, NULL);
}

static void
test_plain (Fixture *f, gconstpointer data)
{
  f->script.mechanisms = "LOGIN PLAIN";
  assert_signed_in (f, PLAINTEXT, "PLAIN");

  end_conversation (f);
  g_assert_cmpstr (f->script.mechanism, ==, "PLAIN");
  g_assert_cmpuint (count_verb (f, f->dialect->auth_verb), ==, 1);
}

static void
test_login (Fixture *f, gconstpointer data)
{
  f->script.mechanisms = "LOGIN";
  assert_signed_in (f, PLAINTEXT, "LOGIN");

  end_conversation (f);
  g_assert_true (f->script.user_ok);
  g_assert_cmpuint (f->script.responses->len, ==, 2);
}

/* Some servers prompt LOGIN with empty challenges ("334 ", "+ "): the order
 * counts, not the words. */
static void
test_login_bare_prompts (Fixture *f, gconstpointer data)
{
  f->script.mechanisms = "LOGIN";
  f->script.bare_prompts = TRUE;
  assert_signed_in (f, PLAINTEXT, "LOGIN");

  end_conversation (f);
  g_assert_true (f->script.user_ok);
  g_assert_cmpuint (f->script.responses->len, ==, 2);
}

/* The strongest mechanism wins; the refusal of its client-first message
 * is a refused sign-in. */
static void
test_scram_chosen (Fixture *f, gconstpointer data)
{
  static const char gs2_and_user[] = "n,,n=" USER ",r=";
  g_autoptr (GError) error = NULL;
  const char *client_first;
  gsize len = 0;

  f->script.mechanisms = "PLAIN SCRAM-SHA-256 LOGIN";
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH, &error);
  g_assert_cmpstr (outbox_session_get_mechanism (f->session), ==, "SCRAM-SHA-256");

  end_conversation (f);
  g_assert_cmpstr (f->script.mechanism, ==, "SCRAM-SHA-256");
  g_assert_nonnull (f->script.client_first);
  client_first = g_bytes_get_data (f->script.client_first, &len);
  g_assert_cmpuint (len, >, strlen (gs2_and_user));
  g_assert_cmpmem (client_first, strlen (gs2_and_user), gs2_and_user, strlen (gs2_and_user));
}

static void
token_signs_in (Fixture *f, const char *mechanism)
{
  f->script.mechanisms = g_str_equal (mechanism, "XOAUTH2") ? "PLAIN LOGIN XOAUTH2"
                                                            : "PLAIN LOGIN XOAUTH2 OAUTHBEARER";
  f->secret = TOKEN;
  f->secret_kind = OUTBOX_SASL_SECRET_TOKEN;
  assert_signed_in (f, PLAINTEXT, mechanism);

  end_conversation (f);
  g_assert_cmpstr (f->script.mechanism, ==, mechanism);
  g_assert_null (f->script.after_error);
}

static void
test_oauthbearer (Fixture *f, gconstpointer data)
{
  token_signs_in (f, "OAUTHBEARER");
}

static void
test_xoauth2 (Fixture *f, gconstpointer data)
{
  token_signs_in (f, "XOAUTH2");
}

/* RFC 7628 section 3.2.2: the server's error challenge is answered with
 * the message that ends the exchange, and its status makes it into the
 * error. */
static void
token_refused (Fixture *f, const char *mechanism, const char *final_answer)
{
  g_autoptr (GError) error = NULL;

  f->script.mechanisms = mechanism;
  f->script.token = "another-token";
  f->secret = TOKEN;
  f->secret_kind = OUTBOX_SASL_SECRET_TOKEN;
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH, &error);
  g_assert_nonnull (strstr (error->message, "invalid_token"));
  g_assert_nonnull (strstr (error->message, f->dialect->refused));

  end_conversation (f);
  g_assert_cmpstr (f->script.after_error, ==, final_answer);
}

static void
test_oauthbearer_refused (Fixture *f, gconstpointer data)
{
  /* One octet 0x01. */
  token_refused (f, "OAUTHBEARER", "AQ==");
}

static void
test_xoauth2_refused (Fixture *f, gconstpointer data)
{
  token_refused (f, "XOAUTH2", "");
}

/* IMAP LOGIN, POP3 USER and PASS: for servers that offer no mechanism. */
static void
test_password_command (Fixture *f, gconstpointer data)
{
  assert_signed_in (f, PLAINTEXT, NULL);

  end_conversation (f);
  g_assert_cmpuint (count_verb (f, f->dialect->password_verb), ==, 1);
  g_assert_cmpuint (count_verb (f, f->dialect->auth_verb), ==, 0);
}

static void
test_password_command_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.password = "not-" PASSWORD;
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH, &error);
  g_assert_nonnull (strstr (error->message, f->dialect->refused));

  end_conversation (f);
  g_assert_cmpuint (count_verb (f, f->dialect->password_verb), ==, 1);
  g_assert_cmpuint (count_verb (f, f->dialect->quit_verb), ==, 1);
}

/* One attempt: no other mechanism and no password command after it. */
static void
test_password_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.mechanisms = "PLAIN LOGIN";
  f->script.password = "not-" PASSWORD;
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH, &error);
  g_assert_nonnull (strstr (error->message, f->dialect->refused));

  end_conversation (f);
  g_assert_cmpuint (count_verb (f, f->dialect->auth_verb), ==, 1);
  g_assert_cmpuint (count_verb (f, f->dialect->password_verb), ==, 0);
  g_assert_cmpuint (count_verb (f, f->dialect->user_verb), ==, 0);
}

/* A refusal ends the exchange with the server in step: QUIT (LOGOUT)
 * before the TLS close, and the open still fails with the refusal. */
static void
test_refused_says_quit (Fixture *f, gconstpointer data)
{
  g_autofree char *received = NULL;
  g_autofree char *expected = NULL;
  g_autoptr (GError) error = NULL;

  f->script.starttls_offered = TRUE;
  f->script.mechanisms = "PLAIN";
  f->script.password = "not-" PASSWORD;
  assert_open_fails (f, STARTTLS, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH, &error);
  g_assert_nonnull (strstr (error->message, f->dialect->refused));

  end_conversation (f);
  g_assert_true (f->server.tls_up);
  received = received_verbs (f, G_MAXUINT);
  expected = g_strdup_printf ("%s %s %s %s %s", f->dialect->capability_verb,
                              f->dialect->starttls_verb, f->dialect->capability_verb,
                              f->dialect->auth_verb, f->dialect->quit_verb);
  g_assert_cmpstr (received, ==, expected);
}

static void
test_no_password (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->script.mechanisms = "PLAIN";
  f->secret = NULL;
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE,
                     &error);
  g_assert_nonnull (strstr (error->message, "No password stored"));

  end_conversation (f);
  assert_verbs (f, f->dialect->capability_verb, NULL);
}

/* Deadlines and cancellation ---------------------------------------------- */

static void
test_greeting_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.hang_on = "CONNECT";
  f->greeting_timeout = 1;
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT, &error);
  g_assert_cmpstr (error->message, ==, "No greeting within 1 s");
}

static void
test_sign_in_timeout (Fixture *f, gconstpointer data)
{
  g_autofree char *expected = NULL;
  g_autoptr (GError) error = NULL;

  f->script.mechanisms = "PLAIN";
  f->server.hang_on = f->dialect->auth_verb;
  f->command_timeout = 1;
  assert_open_fails (f, PLAINTEXT, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT, &error);
  expected = g_strdup_printf ("to %s within 1 s", f->dialect->auth_verb);
  g_assert_nonnull (strstr (error->message, expected));

  /* Out of step: QUIT could be taken for the answer the server waits for. */
  end_conversation (f);
  g_assert_cmpuint (count_verb (f, f->dialect->quit_verb), ==, 0);
}

static void
test_cancelled (Fixture *f, gconstpointer data)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;

  f->server.hang_on = "CONNECT";
  g_timeout_add (100, cancel_soon, cancellable);
  g_assert_false (open_session_full (f, PLAINTEXT, "127.0.0.1", cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (outbox_session_is_open (f->session));
}

/* The trace ------------------------------------------------------------------
 *
 * With debug messages on, the protocol trace shows "****" where a secret
 * went, and never the secret, its base64 or any client message of the
 * sign-in.  In a subprocess, so that G_MESSAGES_DEBUG does not flood the
 * TAP stream. */

static void
assert_trace_redacted (Fixture *f, const char *redacted_line)
{
  g_autofree char *secret_base64 = NULL;
  g_autoptr (GError) error = NULL;

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      g_test_trap_assert_stdout_unmatched ("*" PASSWORD "*");
      g_test_trap_assert_stderr_unmatched ("*" PASSWORD "*");
      g_test_trap_assert_stdout_unmatched ("*" TOKEN "*");
      g_test_trap_assert_stderr_unmatched ("*" TOKEN "*");
      return;
    }

  g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);
  secret_base64 = g_base64_encode ((const guchar *) f->secret, strlen (f->secret));
  log_capture_start ();
  g_assert_true (open_session (f, PLAINTEXT, &error));
  g_assert_no_error (error);
  end_conversation (f);

  g_assert_true (logs_contain (redacted_line));
  g_assert_false (logs_contain (f->secret));
  g_assert_false (logs_contain (secret_base64));
  for (guint i = 0; i < f->script.responses->len; i++)
    {
      const char *response = g_ptr_array_index (f->script.responses, i);

      if (strlen (response) > 1)
        g_assert_false (logs_contain (response));
    }
  log_capture_stop ();
}

static void
test_trace_plain (Fixture *f, gconstpointer data)
{
  g_autofree char *line = g_strdup_printf ("%s PLAIN ****", f->dialect->auth_verb);

  f->script.mechanisms = "PLAIN";
  assert_trace_redacted (f, line);
}

static void
test_trace_login (Fixture *f, gconstpointer data)
{
  f->script.mechanisms = "LOGIN";
  assert_trace_redacted (f, "C: ****");
}

static void
test_trace_token (Fixture *f, gconstpointer data)
{
  g_autofree char *line = g_strdup_printf ("%s OAUTHBEARER ****", f->dialect->auth_verb);

  f->script.mechanisms = "OAUTHBEARER";
  f->secret = TOKEN;
  f->secret_kind = OUTBOX_SASL_SECRET_TOKEN;
  assert_trace_redacted (f, line);
}

static void
test_trace_password_command (Fixture *f, gconstpointer data)
{
  assert_trace_redacted (f, f->dialect->password_trace);
}

/* The table of cases -------------------------------------------------------- */

typedef struct
{
  const char *name;
  void (*func) (Fixture *f, gconstpointer data);
  gboolean needs_password_command;
} Case;

static const Case cases[] = {
  { "implicit-tls", test_implicit_tls },
  { "starttls-missing", test_starttls_missing },
  { "starttls-refused", test_starttls_refused },
  { "starttls-injection", test_starttls_injection },
  { "starttls-forgets-capabilities", test_starttls_forgets_capabilities },
  { "pin-mismatch", test_pin_mismatch },
  { "untrusted-cert", test_untrusted_cert },
  { "expired-cert", test_expired_cert },
  { "plaintext-login-refused", test_plaintext_login_refused },
  { "plain", test_plain },
  { "login", test_login },
  { "login-bare-prompts", test_login_bare_prompts },
  { "scram-sha-256-chosen", test_scram_chosen },
  { "oauthbearer", test_oauthbearer },
  { "xoauth2", test_xoauth2 },
  { "oauthbearer-refused", test_oauthbearer_refused },
  { "xoauth2-refused", test_xoauth2_refused },
  { "password-command", test_password_command, TRUE },
  { "password-command-refused", test_password_command_refused, TRUE },
  { "password-refused", test_password_refused },
  { "refused-says-quit", test_refused_says_quit },
  { "no-password", test_no_password },
  { "greeting-timeout", test_greeting_timeout },
  { "sign-in-timeout", test_sign_in_timeout },
  { "cancelled", test_cancelled },
  { "trace-plain", test_trace_plain },
  { "trace-login", test_trace_login },
  { "trace-token", test_trace_token },
  { "trace-password-command", test_trace_password_command, TRUE },
};

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_capture_writer, NULL, NULL);
  test_certs_make (&certs);

  for (gsize i = 0; i < G_N_ELEMENTS (dialects); i++)
    {
      for (gsize j = 0; j < G_N_ELEMENTS (cases); j++)
        {
          g_autofree char *path = NULL;

          if (cases[j].needs_password_command && dialects[i].password_verb == NULL)
            continue;
          path = g_strdup_printf ("/session-matrix/%s/%s", dialects[i].name, cases[j].name);
          g_test_add (path, Fixture, &dialects[i], fixture_setup, cases[j].func, fixture_teardown);
        }
    }

  status = g_test_run ();

  test_certs_clear (&certs);
  return status;
}
