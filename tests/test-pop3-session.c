/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-pop3.h"
#include "outbox-text.h"
#include "session-test-support.h"

/* The fake server's POP3 --------------------------------------------------
 *
 * The FakeServer (session-test-support.h) sends the greeting, does TLS and
 * records the command lines; this answers them. */

typedef struct
{
  /* The script: whole replies with their CR LF; NULL means a default. */
  const char *capa;
  const char *auth;          /* reply to AUTH */
  const char *auth_response; /* reply to the line sent after a "+ " */
  const char *user;
  const char *pass;
  const char *stat;
  const char *drop_on; /* close the connection instead of answering this verb */

  gboolean awaiting_response; /* a "+ " was sent: the next line answers it */
} FakePop3;

#define DEFAULT_CAPA "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\n.\r\n"

static const char *
reply_or (const char *reply, const char *fallback)
{
  return reply != NULL ? reply : fallback;
}

static void
pop3_handle_auth (FakeServer *server, const char *line)
{
  FakePop3 *pop3 = server->script;
  const char *reply = reply_or (pop3->auth, "+OK Logged in.\r\n");

  /* RFC 5034: without an initial response the server asks for it. */
  if (g_ascii_strcasecmp (line, "AUTH PLAIN") == 0)
    reply = "+ \r\n";
  pop3->awaiting_response = g_str_equal (reply, "+ \r\n");
  fake_server_send (server, reply);
}

static gboolean
pop3_handle (FakeServer *server, const char *line)
{
  FakePop3 *pop3 = server->script;
  g_autofree char *verb = g_ascii_strup (line, strcspn (line, " "));

  if (pop3->awaiting_response)
    {
      pop3->awaiting_response = FALSE;
      fake_server_send (server, reply_or (pop3->auth_response, "+OK Logged in.\r\n"));
      return TRUE;
    }
  if (g_strcmp0 (verb, server->hang_on) == 0)
    return TRUE;
  if (g_strcmp0 (verb, pop3->drop_on) == 0)
    return FALSE;
  if (g_str_equal (verb, "CAPA"))
    fake_server_send (server, reply_or (pop3->capa, DEFAULT_CAPA));
  else if (g_str_equal (verb, "AUTH"))
    pop3_handle_auth (server, line);
  else if (g_str_equal (verb, "USER"))
    fake_server_send (server, reply_or (pop3->user, "+OK\r\n"));
  else if (g_str_equal (verb, "PASS"))
    fake_server_send (server, reply_or (pop3->pass, "+OK Logged in.\r\n"));
  else if (g_str_equal (verb, "STAT"))
    fake_server_send (server, reply_or (pop3->stat, "+OK 2 320\r\n"));
  else if (g_str_equal (verb, "QUIT"))
    {
      fake_server_send (server, "+OK Logging out.\r\n");
      return FALSE;
    }
  else
    fake_server_send (server, "-ERR Unknown command.\r\n");
  return TRUE;
}

static const FakeProtocol fake_pop3 = {
  .name = "fake-pop3",
  .greeting = "+OK Fake POP3 ready.\r\n",
  .handle = pop3_handle,
};

/* The session side ------------------------------------------------------ */

typedef struct
{
  FakeServer server;
  FakePop3 pop3;
  OutboxServerUrl *url;
  OutboxPop3Config config;
  OutboxPop3Session *session;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  outbox_pop3_timeouts_init_default (&f->config.timeouts);
  f->config.timeouts.connect = 10;
  f->config.timeouts.greeting = 10;
  f->config.timeouts.command = 10;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->session);
  fake_server_clear (&f->server);
  g_clear_pointer (&f->url, outbox_server_url_free);
}

/* Closes the client side and waits until the server has seen everything. */
static void
end_conversation (Fixture *f)
{
  g_clear_object (&f->session);
  fake_server_stop (&f->server);
}

/* Starts the fake server and opens a session to it with @url_format, in
 * which %u is the server's port. */
static gboolean
open_session (Fixture *f, const char *url_format, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  fake_server_start (&f->server, &fake_pop3, &f->pop3);
  f->url = fake_server_url (&f->server, url_format);
  f->config.url = f->url;
  f->session = outbox_pop3_session_new (&f->config);
  outbox_session_open_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  return outbox_session_open_finish (OUTBOX_SESSION (f->session), wait_for (&result), error);
}

/* Logs in as "me" with "secret" in plaintext to loopback. */
static void
open_logged_in (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  f->config.password = "secret";
  open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error);
  g_assert_no_error (error);
  g_assert_true (outbox_session_is_signed_in (OUTBOX_SESSION (f->session)));
}

static gboolean
stat_session (Fixture *f, guint64 *messages, guint64 *octets, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_pop3_session_stat_async (f->session, NULL, store_result, &result);
  return outbox_pop3_session_stat_finish (f->session, wait_for (&result), messages, octets, error);
}

static gboolean
quit_session (Fixture *f, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_session_quit_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  return outbox_session_quit_finish (OUTBOX_SESSION (f->session), wait_for (&result), error);
}

static char *
plain_response (const char *user, const char *password)
{
  g_autofree char *message = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  gsize len = strlen (user) + strlen (password) + 2;

  return g_base64_encode ((const guchar *) message, len);
}

/* Greeting -------------------------------------------------------------- */

static void
test_greeting_ok (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "CAPA", NULL };
  g_autoptr (GError) error = NULL;

  g_assert_true (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_no_error (error);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  g_assert_false (outbox_session_is_signed_in (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_greeting_err (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "-ERR [SYS/TEMP] Too many connections\r\n";
  g_assert_false (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_nonnull (strstr (error->message, "-ERR [SYS/TEMP] Too many connections"));
  g_assert_cmpstr (outbox_pop3_session_get_last_reply (f->session), ==,
                   "-ERR [SYS/TEMP] Too many connections");
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_greeting_malformed (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "+OKAY welcome\r\n";
  g_assert_false (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
}

static void
test_greeting_control_chars (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "-ERR go\x1b[2J away\x7f\r\n";
  g_assert_false (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  /* Every control character shows as '?', as in SMTP and IMAP text. */
  g_assert_cmpstr (outbox_pop3_session_get_last_reply (f->session), ==, "-ERR go?[2J away?");
  g_assert_null (strchr (error->message, '\x1b'));
}

static void
test_overlong_line (Fixture *f, gconstpointer data)
{
  g_autofree char *padding = g_strnfill (600, 'x');
  g_autofree char *greeting = g_strconcat ("+OK ", padding, "\r\n", NULL);
  g_autoptr (GError) error = NULL;

  f->server.greeting = greeting;
  g_assert_false (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "The server sent an overlong line in the greeting");
}

static void
test_closed (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pop3.drop_on = "CAPA";
  g_assert_false (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
  g_assert_cmpstr (error->message, ==,
                   "The server closed the connection before sending the reply to CAPA");
}

/* CAPA ------------------------------------------------------------------ */

static void
test_capa_parsing (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "TOP", ".hidden", "SASL PLAIN LOGIN", "", "USER", NULL };
  const char *const *capabilities;
  g_autoptr (GError) error = NULL;

  f->pop3.capa = "+OK list\r\nTOP\r\n..hidden\r\nSASL PLAIN LOGIN\r\n\r\nUSER\r\n.\r\n";
  g_assert_true (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_no_error (error);
  capabilities = outbox_pop3_session_get_capabilities (f->session);
  g_assert_nonnull (capabilities);
  g_assert_cmpstrv (capabilities, expected);
  g_assert_true (outbox_pop3_session_has_capability (f->session, "sasl"));
  g_assert_true (outbox_pop3_session_has_capability (f->session, "USER"));
  g_assert_false (outbox_pop3_session_has_capability (f->session, "PLAIN"));
  g_assert_false (outbox_pop3_session_has_capability (f->session, "STLS"));
}

static void
test_capa_err (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pop3.capa = "-ERR Unknown command.\r\n";
  g_assert_true (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_no_error (error);
  g_assert_null (outbox_pop3_session_get_capabilities (f->session));
}

static void
test_capa_control_chars (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "IMPLEMENTATION e?vi?l", NULL };
  g_autoptr (GError) error = NULL;

  f->pop3.capa = "+OK\r\nIMPLEMENTATION e\x1bvi\x01l\r\n.\r\n";
  g_assert_true (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_no_error (error);
  g_assert_cmpstrv (outbox_pop3_session_get_capabilities (f->session), expected);
}

static void
test_capa_too_many_lines (Fixture *f, gconstpointer data)
{
  g_autoptr (GString) capa = g_string_new ("+OK\r\n");
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < 300; i++)
    g_string_append_printf (capa, "X-CAP-%u\r\n", i);
  g_string_append (capa, ".\r\n");
  f->pop3.capa = capa->str;
  g_assert_false (open_session (f, "pop3+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "more than"));
}

/* STLS ------------------------------------------------------------------ */

static void
test_stls_capa_failed (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "CAPA", NULL };
  g_autoptr (GError) error = NULL;

  f->pop3.capa = "-ERR Unknown command.\r\n";
  g_assert_false (open_session (f, "pop3://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TLS_REQUIRED);
  g_assert_nonnull (strstr (error->message, "did not answer CAPA"));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

/* Login ----------------------------------------------------------------- */

/* RFC 5034 section 4: an initial response that would make the command
 * longer than 255 octets is sent after the server's "+ " instead. */
static void
test_auth_plain_long (Fixture *f, gconstpointer data)
{
  g_autofree char *password = g_strnfill (200, 'p');
  g_autofree char *plain = plain_response ("me", password);
  const char *const expected[] = { "CAPA", "AUTH PLAIN", plain, NULL };
  g_autoptr (GError) error = NULL;

  f->pop3.capa = "+OK\r\nSASL PLAIN\r\n.\r\n";
  f->config.password = password;
  g_assert_true (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_no_error (error);
  g_assert_true (outbox_session_is_signed_in (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_user_pass_without_capa (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "CAPA", "USER me", "PASS secret", NULL };

  f->pop3.capa = "-ERR Unknown command.\r\n";
  open_logged_in (f);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

/* A refused login leaves the server in the AUTHORIZATION state, where QUIT
 * is allowed (RFC 1939 section 5): the session says it before closing, and
 * the refusal stays the last reply. */
static void
test_pass_refused (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "CAPA", "USER me", "PASS wrong", "QUIT", NULL };
  g_autoptr (GError) error = NULL;

  f->pop3.pass = "-ERR [AUTH] Authentication failed.\r\n";
  f->config.password = "wrong";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "-ERR [AUTH] Authentication failed."));
  g_assert_cmpstr (outbox_pop3_session_get_last_reply (f->session), ==,
                   "-ERR [AUTH] Authentication failed.");
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_user_refused (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "CAPA", "USER me", "QUIT", NULL };
  g_autoptr (GError) error = NULL;

  f->pop3.user = "-ERR No such user\r\n";
  f->config.password = "secret";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_login_in_use (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pop3.pass = "-ERR [IN-USE] Mailbox locked by another session.\r\n";
  f->config.password = "secret";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_nonnull (strstr (error->message, "[IN-USE]"));
}

static void
test_password_line_break (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "CAPA", NULL };
  g_autoptr (GError) error = NULL;

  f->config.password = "secret\r\nDELE 1";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

/* STAT and QUIT --------------------------------------------------------- */

static void
test_stat (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint64 messages = 0, octets = 0;

  f->pop3.stat = "+OK 3 12345678901\r\n";
  open_logged_in (f);
  g_assert_true (stat_session (f, &messages, &octets, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (messages, ==, 3);
  g_assert_cmpuint (octets, ==, G_GUINT64_CONSTANT (12345678901));
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

/* RFC 1939 puts no requirement on what follows the size. */
static void
test_stat_trailing_text (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  guint64 messages = 0, octets = 0;

  f->pop3.stat = "+OK 0 0 maildrop is empty\r\n";
  open_logged_in (f);
  g_assert_true (stat_session (f, &messages, &octets, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (messages, ==, 0);
  g_assert_cmpuint (octets, ==, 0);
}

static void
test_stat_malformed (Fixture *f, gconstpointer data)
{
  static const char *const malformed[] = {
    "+OK two 320\r\n",
    "+OK 2\r\n",
    "+OK 2  320\r\n",
    "+OK -2 320\r\n",
    "+OK 2 320x\r\n",
    "+OK\r\n",
    "+OK 2 99999999999999999999\r\n",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (malformed); i++)
    {
      Fixture each = { 0 };
      g_autoptr (GError) error = NULL;

      fixture_setup (&each, NULL);
      each.pop3.stat = malformed[i];
      open_logged_in (&each);
      g_assert_false (stat_session (&each, NULL, NULL, &error));
      g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
      g_assert_false (outbox_session_is_open (OUTBOX_SESSION (each.session)));
      fixture_teardown (&each, NULL);
    }
}

static void
test_stat_err (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pop3.stat = "-ERR [SYS/TEMP] Try again\r\n";
  open_logged_in (f);
  g_assert_false (stat_session (f, NULL, NULL, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_nonnull (strstr (error->message, "Try again"));
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_stat_not_open (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->url = outbox_server_url_parse ("pop3s://me@127.0.0.1:1", &error);
  g_assert_no_error (error);
  f->config.url = f->url;
  f->session = outbox_pop3_session_new (&f->config);
  g_assert_false (stat_session (f, NULL, NULL, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
}

static void
test_quit (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  open_logged_in (f);
  g_assert_true (quit_session (f, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  g_assert_cmpstr (outbox_pop3_session_get_last_reply (f->session), ==, "+OK Logging out.");

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, f->server.commands->len - 1), ==, "QUIT");
}

/* Timeouts -------------------------------------------------------------- */

static void
test_timeout_pass (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.hang_on = "PASS";
  f->config.timeouts.command = 1;
  f->config.password = "secret";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "No reply to PASS within 1 s");
}

static void
test_login_sys_temp (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pop3.pass = "-ERR [SYS/TEMP] Try again later.\r\n";
  f->config.password = "secret";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
}

/* A text in brackets that is not an RFC 2449 response code blames nobody
 * but the credentials. */
static void
test_login_not_a_code (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->pop3.pass = "-ERR [SYS/ bad password\r\n";
  f->config.password = "secret";
  g_assert_false (open_session (f, "pop3+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH);
}

/* Parsers ---------------------------------------------------------------- */

/* Feeds @lines (NULL-terminated) and returns the reply the last one
 * completes; every line before it must leave the reply incomplete. */
static OutboxPop3Reply *
feed_lines (OutboxPop3Expect expect, const char *const *lines, GError **error)
{
  g_autoptr (OutboxPop3ReplyParser) parser = outbox_pop3_reply_parser_new (expect);
  OutboxPop3Reply *reply = NULL;

  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_assert_null (reply);
      if (!outbox_pop3_reply_parser_feed_line (parser, lines[i], strlen (lines[i]), &reply,
                                               error))
        return NULL;
    }
  return reply;
}

static OutboxPop3Reply *
feed_status (OutboxPop3Expect expect, const char *line, GError **error)
{
  const char *lines[] = { line, NULL };

  return feed_lines (expect, lines, error);
}

static void
assert_sanitised (const char *text)
{
  g_assert_nonnull (text);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (outbox_text_is_unsafe_char (g_utf8_get_char (p)));
}

static void
test_parse_status_ok (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply = feed_status (
      OUTBOX_POP3_EXPECT_STATUS, "+OK POP3 ready <1896.697170952@dbc.example>", &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  g_assert_cmpint (reply->status, ==, OUTBOX_POP3_STATUS_OK);
  g_assert_cmpstr (reply->text, ==, "POP3 ready <1896.697170952@dbc.example>");
  g_assert_null (reply->lines);
}

static void
test_parse_status_bare (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) ok = feed_status (OUTBOX_POP3_EXPECT_STATUS, "+OK", &error);
  g_autoptr (OutboxPop3Reply) err = feed_status (OUTBOX_POP3_EXPECT_STATUS, "-ERR", &error);

  g_assert_no_error (error);
  g_assert_cmpint (ok->status, ==, OUTBOX_POP3_STATUS_OK);
  g_assert_cmpstr (ok->text, ==, "");
  g_assert_cmpint (err->status, ==, OUTBOX_POP3_STATUS_ERR);
  g_assert_cmpstr (err->text, ==, "");
}

static void
test_parse_status_err (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply =
      feed_status (OUTBOX_POP3_EXPECT_STATUS, "-ERR [AUTH] Authentication failed.", &error);

  g_assert_no_error (error);
  g_assert_cmpint (reply->status, ==, OUTBOX_POP3_STATUS_ERR);
  g_assert_cmpstr (reply->text, ==, "[AUTH] Authentication failed.");
}

static void
test_parse_status_malformed (void)
{
  static const char *const malformed[] = {
    "", "OK", "+ok", "+OKAY", "+OK\tready", "-ER", "-ERROR", "-ERR\x01", "* OK", " +OK",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (malformed); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (OutboxPop3Reply) reply =
          feed_status (OUTBOX_POP3_EXPECT_MULTILINE | OUTBOX_POP3_EXPECT_CONTINUATION,
                       malformed[i], &error);

      g_test_message ("line %" G_GSIZE_FORMAT ": %s", i, malformed[i]);
      g_assert_null (reply);
      g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
      assert_sanitised (error->message);
    }
}

static void
test_parse_status_continuation (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply =
      feed_status (OUTBOX_POP3_EXPECT_CONTINUATION, "+ dGVzdA==", &error);
  g_autoptr (OutboxPop3Reply) bare = feed_status (OUTBOX_POP3_EXPECT_CONTINUATION, "+", &error);

  g_assert_no_error (error);
  g_assert_cmpint (reply->status, ==, OUTBOX_POP3_STATUS_CONTINUATION);
  g_assert_cmpstr (reply->text, ==, "dGVzdA==");
  g_assert_cmpint (bare->status, ==, OUTBOX_POP3_STATUS_CONTINUATION);
  g_assert_cmpstr (bare->text, ==, "");
}

/* "+ " only answers AUTH: anywhere else it is malformed. */
static void
test_parse_status_continuation_unexpected (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply =
      feed_status (OUTBOX_POP3_EXPECT_MULTILINE, "+ dGVzdA==", &error);

  g_assert_null (reply);
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
}

static void
test_parse_status_sanitised (void)
{
  static const char line[] = "-ERR bad\x1b[31m\x7f\xc2\x85 \xff end\r";
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply = feed_status (OUTBOX_POP3_EXPECT_STATUS, line, &error);

  g_assert_no_error (error);
  assert_sanitised (reply->text);
  g_assert_true (g_str_has_prefix (reply->text, "bad?[31m"));
  g_assert_true (g_str_has_suffix (reply->text, " end?"));
}

/* A NUL inside the line is the server's, not the end of the text. */
static void
test_parse_status_nul (void)
{
  static const char line[] = "-ERR a\0b";
  g_autoptr (OutboxPop3ReplyParser) parser = outbox_pop3_reply_parser_new (0);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (
      outbox_pop3_reply_parser_feed_line (parser, line, sizeof line - 1, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (reply->text, ==, "a?b");
}

static void
test_parse_multiline (void)
{
  static const char *const lines[] = {
    "+OK Capability list follows", "TOP", "SASL PLAIN LOGIN", "..dotted", ".", NULL,
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply = feed_lines (OUTBOX_POP3_EXPECT_MULTILINE, lines, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  g_assert_cmpint (reply->status, ==, OUTBOX_POP3_STATUS_OK);
  g_assert_cmpstr (reply->text, ==, "Capability list follows");
  g_assert_nonnull (reply->lines);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 3);
  g_assert_cmpstr (reply->lines[0], ==, "TOP");
  g_assert_cmpstr (reply->lines[1], ==, "SASL PLAIN LOGIN");
  g_assert_cmpstr (reply->lines[2], ==, ".dotted");
}

static void
test_parse_multiline_empty (void)
{
  static const char *const lines[] = { "+OK", ".", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply = feed_lines (OUTBOX_POP3_EXPECT_MULTILINE, lines, &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply->lines);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 0);
}

/* A body line that only looks like a status line is part of the body. */
static void
test_parse_multiline_status_like_line (void)
{
  static const char *const lines[] = { "+OK", "-ERR not a reply", "+OK", ".", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply = feed_lines (OUTBOX_POP3_EXPECT_MULTILINE, lines, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 2);
  g_assert_cmpstr (reply->lines[0], ==, "-ERR not a reply");
}

static void
test_parse_multiline_err (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply =
      feed_status (OUTBOX_POP3_EXPECT_MULTILINE, "-ERR no CAPA here", &error);

  g_assert_no_error (error);
  g_assert_nonnull (reply);
  g_assert_cmpint (reply->status, ==, OUTBOX_POP3_STATUS_ERR);
  g_assert_null (reply->lines);
}

static void
test_parse_multiline_sanitised (void)
{
  static const char *const lines[] = { "+OK", "IMPLEMENTATION \x1b]0;owned\x07", ".", NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxPop3Reply) reply = feed_lines (OUTBOX_POP3_EXPECT_MULTILINE, lines, &error);

  g_assert_no_error (error);
  assert_sanitised (reply->lines[0]);
  g_assert_cmpstr (reply->lines[0], ==, "IMPLEMENTATION ?]0;owned?");
}

static gboolean
feed_body (OutboxPop3ReplyParser *parser, guint count, OutboxPop3Reply **reply, GError **error)
{
  if (!outbox_pop3_reply_parser_feed_line (parser, "+OK", 3, reply, error))
    return FALSE;
  for (guint i = 0; i < count; i++)
    {
      if (!outbox_pop3_reply_parser_feed_line (parser, "X", 1, reply, error))
        return FALSE;
    }
  return outbox_pop3_reply_parser_feed_line (parser, ".", 1, reply, error);
}

static void
test_parse_multiline_max_lines (void)
{
  g_autoptr (OutboxPop3ReplyParser) parser =
      outbox_pop3_reply_parser_new (OUTBOX_POP3_EXPECT_MULTILINE);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (feed_body (parser, OUTBOX_POP3_MAX_REPLY_LINES, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, OUTBOX_POP3_MAX_REPLY_LINES);
}

static void
test_parse_multiline_too_many_lines (void)
{
  g_autoptr (OutboxPop3ReplyParser) parser =
      outbox_pop3_reply_parser_new (OUTBOX_POP3_EXPECT_MULTILINE);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (feed_body (parser, OUTBOX_POP3_MAX_REPLY_LINES + 1, &reply, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_null (reply);
}

/* After an error, the next line is read as a new status line. */
static void
test_parse_restarts_after_error (void)
{
  g_autoptr (OutboxPop3ReplyParser) parser =
      outbox_pop3_reply_parser_new (OUTBOX_POP3_EXPECT_MULTILINE);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (feed_body (parser, OUTBOX_POP3_MAX_REPLY_LINES + 1, &reply, &error));
  g_clear_error (&error);
  g_assert_false (outbox_pop3_reply_parser_in_body (parser));
  g_assert_true (outbox_pop3_reply_parser_feed_line (parser, "-ERR x", 6, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpint (reply->status, ==, OUTBOX_POP3_STATUS_ERR);
}

static void
test_parse_in_body (void)
{
  g_autoptr (OutboxPop3ReplyParser) parser =
      outbox_pop3_reply_parser_new (OUTBOX_POP3_EXPECT_MULTILINE);
  g_autoptr (OutboxPop3Reply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_pop3_reply_parser_in_body (parser));
  g_assert_true (outbox_pop3_reply_parser_feed_line (parser, "+OK", 3, &reply, &error));
  g_assert_null (reply);
  g_assert_true (outbox_pop3_reply_parser_in_body (parser));
  g_assert_true (outbox_pop3_reply_parser_feed_line (parser, ".", 1, &reply, &error));
  g_assert_nonnull (reply);
  g_assert_false (outbox_pop3_reply_parser_in_body (parser));
}

static void
test_parse_stat (void)
{
  guint64 messages = 0, octets = 0;

  g_assert_true (outbox_pop3_parse_stat ("2 320", &messages, &octets));
  g_assert_cmpuint (messages, ==, 2);
  g_assert_cmpuint (octets, ==, 320);
  g_assert_true (outbox_pop3_parse_stat ("0 0 maildrop empty", &messages, &octets));
  g_assert_cmpuint (messages, ==, 0);
  g_assert_cmpuint (octets, ==, 0);
}

static void
test_parse_stat_limits (void)
{
  guint64 messages = 0, octets = 0;

  g_assert_true (outbox_pop3_parse_stat ("18446744073709551615 007", &messages, &octets));
  g_assert_cmpuint (messages, ==, G_MAXUINT64);
  g_assert_cmpuint (octets, ==, 7);
}

static void
test_parse_stat_malformed (void)
{
  static const char *const malformed[] = {
    "", "2", "2 ", " 2 320", "2  320", "2\t320", "-1 320", "+2 320", "2 320x", "2 -320",
    "18446744073709551616 0", "2 99999999999999999999", "two 320",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (malformed); i++)
    {
      guint64 messages = 11, octets = 12;

      g_test_message ("text %" G_GSIZE_FORMAT ": %s", i, malformed[i]);
      g_assert_false (outbox_pop3_parse_stat (malformed[i], &messages, &octets));
      g_assert_cmpuint (messages, ==, 11);
      g_assert_cmpuint (octets, ==, 12);
    }
}

static void
assert_response_code (const char *text, const char *expected)
{
  g_autofree char *code = outbox_pop3_parse_response_code (text);

  g_test_message ("text: %s", text);
  g_assert_cmpstr (code, ==, expected);
}

static void
test_parse_response_code (void)
{
  assert_response_code ("[IN-USE] Mailbox locked", "IN-USE");
  assert_response_code ("[SYS/TEMP] Try later", "SYS/TEMP");
  assert_response_code ("[AUTH]", "AUTH");
  assert_response_code ("[A/B-2/c]rest", "A/B-2/c");
}

static void
test_parse_response_code_invalid (void)
{
  static const char *const invalid[] = {
    "", "IN-USE", "[]", "[/X]", "[X/]", "[X//Y]", "[X", "[X Y]", "[X_Y]", " [AUTH]", "[AUTH",
    "[SYS/",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
    assert_response_code (invalid[i], NULL);
}

static void
test_parse_capabilities_have (void)
{
  static const char *const caps[] = { "TOP", "stls", "SASL PLAIN", "UIDLX", NULL };

  g_assert_true (outbox_pop3_capabilities_have (caps, "STLS"));
  g_assert_true (outbox_pop3_capabilities_have (caps, "top"));
  g_assert_true (outbox_pop3_capabilities_have (caps, "SASL"));
  g_assert_false (outbox_pop3_capabilities_have (caps, "UIDL"));
  g_assert_false (outbox_pop3_capabilities_have (caps, "PLAIN"));
  g_assert_false (outbox_pop3_capabilities_have (NULL, "TOP"));
}

static void
test_parse_capabilities_sasl (void)
{
  static const char *const caps[] = { "PLAIN", "SASL CRAM-MD5 plain", "XSASL LOGIN", NULL };

  g_assert_true (outbox_pop3_capabilities_have_sasl (caps, "PLAIN"));
  g_assert_true (outbox_pop3_capabilities_have_sasl (caps, "cram-md5"));
  g_assert_false (outbox_pop3_capabilities_have_sasl (caps, "LOGIN"));
  g_assert_false (outbox_pop3_capabilities_have_sasl (caps, "CRAM"));
  g_assert_false (outbox_pop3_capabilities_have_sasl (NULL, "PLAIN"));
}

/* Protocol trace -------------------------------------------------------- */

static void
test_trace_redacts_user_pass (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->config.password = "pa55-word";
  log_capture_start ();
  open_session (f, "pop3+insecure://somebody@127.0.0.1:%u", &error);
  g_assert_no_error (error);

  g_assert_true (logs_contain ("C: CAPA"));
  g_assert_true (logs_contain ("C: USER ****"));
  g_assert_true (logs_contain ("C: PASS ****"));
  g_assert_false (logs_contain ("pa55-word"));
  g_assert_false (logs_contain ("USER somebody"));
  log_capture_stop ();
}

#define ADD(name, func) g_test_add (name, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_capture_writer, NULL, NULL);

  ADD ("/pop3/session/greeting-ok", test_greeting_ok);
  ADD ("/pop3/session/greeting-err", test_greeting_err);
  ADD ("/pop3/session/greeting-malformed", test_greeting_malformed);
  ADD ("/pop3/session/greeting-control-chars", test_greeting_control_chars);
  ADD ("/pop3/session/overlong-line", test_overlong_line);
  ADD ("/pop3/session/closed", test_closed);
  ADD ("/pop3/session/capa-parsing", test_capa_parsing);
  ADD ("/pop3/session/capa-err", test_capa_err);
  ADD ("/pop3/session/capa-control-chars", test_capa_control_chars);
  ADD ("/pop3/session/capa-too-many-lines", test_capa_too_many_lines);
  ADD ("/pop3/session/stls-capa-failed", test_stls_capa_failed);
  ADD ("/pop3/session/auth-plain-long", test_auth_plain_long);
  ADD ("/pop3/session/user-pass-without-capa", test_user_pass_without_capa);
  ADD ("/pop3/session/pass-refused", test_pass_refused);
  ADD ("/pop3/session/user-refused", test_user_refused);
  ADD ("/pop3/session/login-in-use", test_login_in_use);
  ADD ("/pop3/session/login-sys-temp", test_login_sys_temp);
  ADD ("/pop3/session/login-not-a-code", test_login_not_a_code);
  ADD ("/pop3/session/password-line-break", test_password_line_break);
  ADD ("/pop3/session/stat", test_stat);
  ADD ("/pop3/session/stat-trailing-text", test_stat_trailing_text);
  ADD ("/pop3/session/stat-malformed", test_stat_malformed);
  ADD ("/pop3/session/stat-err", test_stat_err);
  ADD ("/pop3/session/stat-not-open", test_stat_not_open);
  ADD ("/pop3/session/quit", test_quit);
  ADD ("/pop3/session/timeout-pass", test_timeout_pass);
  ADD ("/pop3/session/trace-redacts-user-pass", test_trace_redacts_user_pass);

  g_test_add_func ("/pop3/parse/status-ok", test_parse_status_ok);
  g_test_add_func ("/pop3/parse/status-bare", test_parse_status_bare);
  g_test_add_func ("/pop3/parse/status-err", test_parse_status_err);
  g_test_add_func ("/pop3/parse/status-malformed", test_parse_status_malformed);
  g_test_add_func ("/pop3/parse/status-continuation", test_parse_status_continuation);
  g_test_add_func ("/pop3/parse/status-continuation-unexpected",
                   test_parse_status_continuation_unexpected);
  g_test_add_func ("/pop3/parse/status-sanitised", test_parse_status_sanitised);
  g_test_add_func ("/pop3/parse/status-nul", test_parse_status_nul);
  g_test_add_func ("/pop3/parse/multiline", test_parse_multiline);
  g_test_add_func ("/pop3/parse/multiline-empty", test_parse_multiline_empty);
  g_test_add_func ("/pop3/parse/multiline-status-like-line", test_parse_multiline_status_like_line);
  g_test_add_func ("/pop3/parse/multiline-err", test_parse_multiline_err);
  g_test_add_func ("/pop3/parse/multiline-sanitised", test_parse_multiline_sanitised);
  g_test_add_func ("/pop3/parse/multiline-max-lines", test_parse_multiline_max_lines);
  g_test_add_func ("/pop3/parse/multiline-too-many-lines", test_parse_multiline_too_many_lines);
  g_test_add_func ("/pop3/parse/restarts-after-error", test_parse_restarts_after_error);
  g_test_add_func ("/pop3/parse/in-body", test_parse_in_body);
  g_test_add_func ("/pop3/parse/stat", test_parse_stat);
  g_test_add_func ("/pop3/parse/stat-limits", test_parse_stat_limits);
  g_test_add_func ("/pop3/parse/stat-malformed", test_parse_stat_malformed);
  g_test_add_func ("/pop3/parse/response-code", test_parse_response_code);
  g_test_add_func ("/pop3/parse/response-code-invalid", test_parse_response_code_invalid);
  g_test_add_func ("/pop3/parse/capabilities-have", test_parse_capabilities_have);
  g_test_add_func ("/pop3/parse/capabilities-sasl", test_parse_capabilities_sasl);

  status = g_test_run ();

  return status;
}
