/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "outbox-imap.h"
#include "session-test-support.h"

static TestCerts certs;

/* The fake server's IMAP --------------------------------------------------
 *
 * The FakeServer (session-test-support.h) sends the greeting, does TLS and
 * records each command whole: a literal is kept inline after its marker
 * and a CR LF, as it came.  This reads and answers the commands. */

typedef struct
{
  /* The script; NULL means a plain default. */
  const char *capabilities;      /* CAPABILITY data before TLS and login */
  const char *capabilities_tls;  /* ... once TLS is up */
  const char *capabilities_auth; /* ... once logged in */
  const char *login;             /* status and text answering LOGIN or AUTHENTICATE */
  const char *const *lists;      /* untagged lines answering each LIST in turn */
  const char *append;            /* status and text answering APPEND */
  const char *append_refusal;    /* status and text sent instead of "+" to APPEND {n} */

  guint list_i;
  gboolean append_refused; /* the command read got append_refusal instead of "+" */

  /* The record. */
  guint continuations; /* "+" sent for literals */
  gboolean logged_in;
} FakeImap;

static void imap_reply (FakeServer *server, const char *tag, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
imap_reply (FakeServer *server, const char *tag, const char *format, ...)
{
  g_autofree char *text = NULL;
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  line = g_strdup_printf ("%s %s\r\n", tag, text);
  fake_server_send (server, line);
}

/* The size of a literal marker ending @line, or -1. */
static gssize
literal_size (const char *line, gboolean *out_sync)
{
  const char *open = strrchr (line, '{');
  char *end = NULL;
  guint64 size;

  if (open == NULL || !g_str_has_suffix (line, "}"))
    return -1;
  size = g_ascii_strtoull (open + 1, &end, 10);
  *out_sync = *end != '+';
  return size;
}

static char *
word_at (const char *command, guint index)
{
  g_auto (GStrv) words = g_strsplit (command, " ", 3);

  if (g_strv_length (words) <= index)
    return g_strdup ("");
  return g_ascii_strup (words[index], -1);
}

static gboolean
verb_is (const char *command, const char *verb)
{
  g_autofree char *word = word_at (command, 1);

  return g_str_equal (word, verb);
}

/* A whole command, literals included; NULL at the end of the stream. */
static char *
imap_read_command (FakeServer *server)
{
  FakeImap *imap = server->script;
  g_autoptr (GString) command = g_string_new (NULL);

  imap->append_refused = FALSE;
  for (;;)
    {
      g_autofree char *line = fake_server_read_line (server, NULL);
      g_autofree char *literal = NULL;
      gboolean sync = FALSE;
      gssize size;

      if (line == NULL)
        return NULL;
      g_string_append (command, line);
      size = literal_size (line, &sync);
      if (size < 0)
        break;
      if (sync && imap->append_refusal != NULL && verb_is (command->str, "APPEND"))
        {
          imap->append_refused = TRUE;
          break;
        }
      if (sync)
        {
          fake_server_send (server, "+ go ahead\r\n");
          imap->continuations++;
        }
      literal = g_malloc (size + 1);
      if (!g_input_stream_read_all (G_INPUT_STREAM (server->input), literal, size, NULL, NULL,
                                    NULL))
        return NULL;
      g_string_append (command, "\r\n");
      g_string_append_len (command, literal, size);
    }
  return g_string_free (g_steal_pointer (&command), FALSE);
}

static const char *
reply_or (const char *reply, const char *fallback)
{
  return reply != NULL ? reply : fallback;
}

static const char *
imap_capabilities (FakeServer *server)
{
  FakeImap *imap = server->script;

  if (imap->logged_in && imap->capabilities_auth != NULL)
    return imap->capabilities_auth;
  if (server->tls_up && imap->capabilities_tls != NULL)
    return imap->capabilities_tls;
  return reply_or (imap->capabilities, "IMAP4rev1 AUTH=PLAIN SASL-IR");
}

static gboolean
imap_handle_starttls (FakeServer *server, const char *tag)
{
  imap_reply (server, tag, "OK begin TLS now");
  if (server->certificate != NULL)
    return fake_server_start_tls (server);
  return TRUE;
}

static gboolean
imap_handle_login (FakeServer *server, const char *tag, const char *command)
{
  FakeImap *imap = server->script;
  const char *reply = reply_or (imap->login, "OK logged in");

  g_auto (GStrv) words = g_strsplit (command, " ", -1);

  /* AUTHENTICATE PLAIN without an initial response. */
  if (verb_is (command, "AUTHENTICATE") && g_strv_length (words) == 3)
    {
      g_autofree char *response = NULL;

      fake_server_send (server, "+ \r\n");
      response = fake_server_read_line (server, NULL);
      if (response == NULL)
        return FALSE;
      fake_server_record (server, response);
    }
  imap->logged_in = g_str_has_prefix (reply, "OK");
  imap_reply (server, tag, "%s", reply);
  return TRUE;
}

static void
imap_handle_list (FakeServer *server, const char *tag)
{
  FakeImap *imap = server->script;

  if (imap->lists != NULL && imap->lists[imap->list_i] != NULL)
    fake_server_send (server, imap->lists[imap->list_i++]);
  imap_reply (server, tag, "OK LIST done");
}

static gboolean
imap_handle (FakeServer *server, const char *command)
{
  FakeImap *imap = server->script;
  g_autofree char *tag = word_at (command, 0);
  g_autofree char *verb = word_at (command, 1);

  if (server->hang_on != NULL && g_str_equal (verb, server->hang_on))
    return TRUE;
  if (g_str_equal (verb, "CAPABILITY"))
    {
      g_autofree char *data = g_strdup_printf ("* CAPABILITY %s\r\n", imap_capabilities (server));
      fake_server_send (server, data);
      imap_reply (server, tag, "OK CAPABILITY done");
    }
  else if (g_str_equal (verb, "STARTTLS"))
    return imap_handle_starttls (server, tag);
  else if (g_str_equal (verb, "LOGIN") || g_str_equal (verb, "AUTHENTICATE"))
    return imap_handle_login (server, tag, command);
  else if (g_str_equal (verb, "LIST"))
    imap_handle_list (server, tag);
  else if (g_str_equal (verb, "APPEND"))
    imap_reply (server, tag, "%s",
                imap->append_refused ? imap->append_refusal
                                     : reply_or (imap->append, "OK [APPENDUID 1 1] APPEND done"));
  else if (g_str_equal (verb, "LOGOUT"))
    {
      fake_server_send (server, "* BYE logging out\r\n");
      imap_reply (server, tag, "OK LOGOUT done");
      return FALSE;
    }
  else
    imap_reply (server, tag, "BAD unknown command");
  return TRUE;
}

static const FakeProtocol fake_imap = {
  .name = "fake-imap",
  .greeting = "* OK fake IMAP ready\r\n",
  .read_command = imap_read_command,
  .handle = imap_handle,
};

/* Unlike fake_server_received(), looks at the verb after the tag. */
static gboolean
server_received (FakeServer *server, const char *verb)
{
  for (guint i = 0; i < server->commands->len; i++)
    {
      if (verb_is (g_ptr_array_index (server->commands, i), verb))
        return TRUE;
    }
  return FALSE;
}

/* The session side ------------------------------------------------------ */

typedef struct
{
  FakeServer server;
  FakeImap imap;
  OutboxServerUrl *url;
  OutboxImapConfig config;
  OutboxImapSession *session;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->config.timeouts.connect = 10;
  f->config.timeouts.command = 10;
  f->config.timeouts.append_data = 10;
  f->config.password = "secret";
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

  fake_server_start (&f->server, &fake_imap, &f->imap);
  f->url = fake_server_url (&f->server, url_format);
  f->config.url = f->url;
  f->session = outbox_imap_session_new (&f->config);
  outbox_session_open_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  return outbox_session_open_finish (OUTBOX_SESSION (f->session), wait_for (&result), error);
}

static void
open_plain_session (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  open_session (f, "imap+insecure://alice@127.0.0.1:%u", &error);
  g_assert_no_error (error);
}

static OutboxImapMailbox *
find_sent (Fixture *f, const char *configured, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_imap_session_find_sent_async (f->session, configured, NULL, store_result, &result);
  return outbox_imap_session_find_sent_finish (f->session, wait_for (&result), error);
}

static gboolean
append_with_flags (Fixture *f,
                   GInputStream *message,
                   guint64 size,
                   const char *const *flags,
                   GDateTime *date,
                   GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_imap_session_append_async (f->session, "Sent", message, size, flags, date, NULL,
                                    store_result, &result);
  return outbox_imap_session_append_finish (f->session, wait_for (&result), error);
}

static gboolean
append_stream (Fixture *f, GInputStream *message, guint64 size, GDateTime *date, GError **error)
{
  static const char *const seen[] = { "\\Seen", NULL };

  return append_with_flags (f, message, size, seen, date, error);
}

static gboolean
append_text (Fixture *f, const char *message, GError **error)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (message, -1, NULL);

  return append_stream (f, stream, strlen (message), NULL, error);
}

static gboolean
logout (Fixture *f, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_session_quit_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  return outbox_session_quit_finish (OUTBOX_SESSION (f->session), wait_for (&result), error);
}

static char *
plain_response (const char *user, const char *password)
{
  g_autoptr (GString) message = g_string_new (NULL);

  g_string_append_c (message, '\0');
  g_string_append (message, user);
  g_string_append_c (message, '\0');
  g_string_append (message, password);
  return g_base64_encode ((const guchar *) message->str, message->len);
}

/* Logging in -------------------------------------------------------------- */

static void
test_login_sasl_ir (Fixture *f, gconstpointer data)
{
  g_autofree char *plain = plain_response ("alice", "secret");
  g_autofree char *auth = g_strconcat ("A2 AUTHENTICATE PLAIN ", plain, NULL);
  const char *const expected[] = { "A1 CAPABILITY", auth, "A3 CAPABILITY", NULL };

  open_plain_session (f);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_login_continuation (Fixture *f, gconstpointer data)
{
  g_autofree char *plain = plain_response ("alice", "secret");
  const char *const expected[] = { "A1 CAPABILITY", "A2 AUTHENTICATE PLAIN", plain,
                                   "A3 CAPABILITY", NULL };

  f->imap.capabilities = "IMAP4rev1 AUTH=PLAIN";
  open_plain_session (f);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_login_fallback (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "A1 CAPABILITY", "A2 LOGIN \"alice\" \"secret\"",
                                          "A3 CAPABILITY", NULL };

  f->imap.capabilities = "IMAP4rev1 AUTH=CRAM-MD5";
  open_plain_session (f);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

/* LOGOUT follows the refusal (RFC 9051 section 6.1.3: allowed in any
 * state), and the NO, not the BYE or OK of the LOGOUT, is what the caller
 * reads as the server's last word. */
static void
test_login_refused_then_logout (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "A1 CAPABILITY", "A2 LOGIN \"alice\" \"secret\"",
                                          "A3 LOGOUT", NULL };
  g_autoptr (GError) error = NULL;

  f->imap.capabilities = "IMAP4rev1";
  f->imap.login = "NO [AUTHENTICATIONFAILED] Authentication failed.";
  g_assert_false (open_session (f, "imap+insecure://alice@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH);
  g_assert_cmpstr (outbox_imap_session_get_last_server_text (f->session), ==,
                   "NO [AUTHENTICATIONFAILED] Authentication failed.");
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_login_quoted_escapes (Fixture *f, gconstpointer data)
{
  f->imap.capabilities = "IMAP4rev1";
  f->config.password = "p\"a\\ss";
  open_plain_session (f);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==,
                   "A2 LOGIN \"alice\" \"p\\\"a\\\\ss\"");
}

static void
test_login_literal (Fixture *f, gconstpointer data)
{
  f->imap.capabilities = "IMAP4rev1";
  f->config.password = "pässwort";
  open_plain_session (f);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==,
                   "A2 LOGIN \"alice\" {9}\r\npässwort");
  g_assert_cmpuint (f->imap.continuations, ==, 1);
}

static void
test_login_literal_plus (Fixture *f, gconstpointer data)
{
  f->imap.capabilities = "IMAP4rev1 LITERAL+";
  f->config.password = "pässwort";
  open_plain_session (f);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==,
                   "A2 LOGIN \"alice\" {9+}\r\npässwort");
  g_assert_cmpuint (f->imap.continuations, ==, 0);
}

static void
test_login_disabled (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "A1 CAPABILITY", NULL };
  g_autoptr (GError) error = NULL;

  f->imap.capabilities = "IMAP4rev1 LOGINDISABLED";
  g_assert_false (open_session (f, "imap+insecure://alice@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_login_without_user (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (open_session (f, "imap+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE);
}

/* AUTHENTICATE through the SASL layer --------------------------------------- */

/* Without SASL-IR the initial response waits for the server's "+ ". */
static void
test_authenticate_plain_continuation (Fixture *f, gconstpointer data)
{
  g_autofree char *plain = plain_response ("alice", "secret");

  f->imap.capabilities = "IMAP4rev1 AUTH=PLAIN";
  open_plain_session (f);
  g_assert_true (outbox_session_is_signed_in (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==, "A2 AUTHENTICATE PLAIN");
  g_assert_cmpuint (g_array_index (f->server.buffered_after, gsize, 1), ==, 0);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 2), ==, plain);
}

static void
test_preauth (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "A1 CAPABILITY", NULL };

  f->server.greeting = "* PREAUTH welcome back\r\n";
  open_plain_session (f);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  g_assert_false (outbox_session_is_signed_in (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

/* Capabilities ------------------------------------------------------------ */

static void
test_capability_from_greeting (Fixture *f, gconstpointer data)
{
  g_autofree char *plain = plain_response ("alice", "secret");
  g_autofree char *auth = g_strconcat ("A1 AUTHENTICATE PLAIN ", plain, NULL);
  const char *const expected[] = { auth, "A2 CAPABILITY", NULL };

  f->server.greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n";
  open_plain_session (f);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_capability_after_login (Fixture *f, gconstpointer data)
{
  f->imap.capabilities_auth = "IMAP4rev1 SPECIAL-USE LITERAL+";
  open_plain_session (f);

  g_assert_true (outbox_imap_session_has_capability (f->session, "special-use"));
  g_assert_false (outbox_imap_session_has_capability (f->session, "AUTH=PLAIN"));
}

static void
test_capability_in_login_ok (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "IMAP4REV1", "SPECIAL-USE", NULL };

  f->imap.login = "OK [CAPABILITY IMAP4rev1 SPECIAL-USE] logged in";
  open_plain_session (f);
  g_assert_cmpstrv (outbox_imap_session_get_capabilities (f->session), expected);

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 2);
}

static void
test_bad_greeting (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "HTTP/1.1 400 Bad Request\r\n";
  g_assert_false (open_session (f, "imap+insecure://alice@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
}

static void
test_bye_on_connect (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "* BYE Too many connections\r\n";
  g_assert_false (open_session (f, "imap+insecure://alice@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
  g_assert_nonnull (strstr (error->message, "Too many connections"));
  g_assert_cmpstr (outbox_imap_session_get_last_server_text (f->session), ==,
                   "BYE Too many connections");
}

static void
test_timeout (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->config.timeouts.command = 1;
  f->server.hang_on = "CAPABILITY";
  g_assert_false (open_session (f, "imap+insecure://alice@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT);
  g_assert_nonnull (strstr (error->message, "CAPABILITY"));
}

/* STARTTLS and TLS -------------------------------------------------------- */

static void
test_starttls_forgets_capabilities (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->imap.capabilities = "IMAP4rev1 STARTTLS X-PLAINTEXT-ONLY LOGINDISABLED";
  f->imap.capabilities_tls = "IMAP4rev1 AUTH=PLAIN SASL-IR";
  f->imap.capabilities_auth = NULL;
  f->imap.login = "OK [CAPABILITY IMAP4rev1] logged in";
  f->server.certificate = certs.localhost.certificate;
  f->config.tls_ca_file = certs.localhost.ca_file;
  open_session (f, "imap://alice@127.0.0.1:%u", &error);
  g_assert_no_error (error);
  g_assert_false (outbox_imap_session_has_capability (f->session, "X-PLAINTEXT-ONLY"));
  g_assert_false (outbox_imap_session_has_capability (f->session, "STARTTLS"));
}

/* PREAUTH in plaintext would keep the session out of STARTTLS. */
static void
test_preauth_plaintext (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] welcome back\r\n";
  g_assert_false (open_session (f, "imap://alice@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TLS_REQUIRED);

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 0);
}

/* Finding the Sent mailbox ------------------------------------------------ */

static void
test_find_sent_special_use (Fixture *f, gconstpointer data)
{
  static const char *const lists[] = {
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
    "* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n"
    "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n",
    NULL
  };
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GError) error = NULL;

  f->imap.capabilities_auth = "IMAP4rev1 SPECIAL-USE";
  f->imap.lists = lists;
  open_plain_session (f);
  sent = find_sent (f, "Archive", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sent->name, ==, "Sent Items");

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==,
                   "A4 LIST \"\" \"*\" RETURN (SPECIAL-USE)");
  g_assert_cmpuint (f->server.commands->len, ==, 4);
}

static void
test_find_sent_skips_noselect (Fixture *f, gconstpointer data)
{
  static const char *const lists[] = { "* LIST (\\Noselect \\Sent) \"/\" Sent\r\n", "", NULL };
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GError) error = NULL;

  f->imap.capabilities_auth = "IMAP4rev1 SPECIAL-USE";
  f->imap.lists = lists;
  open_plain_session (f);
  sent = find_sent (f, NULL, &error);
  g_assert_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_NO_SENT_FOLDER);
  g_assert_null (sent);
}

static void
test_find_sent_configured (Fixture *f, gconstpointer data)
{
  static const char *const lists[] = { "* LIST () \".\" Gesendet\r\n", NULL };
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GError) error = NULL;

  f->imap.lists = lists;
  open_plain_session (f);
  sent = find_sent (f, "Gesendet", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sent->name, ==, "Gesendet");

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==, "A4 LIST \"\" \"Gesendet\"");
  g_assert_cmpuint (f->server.commands->len, ==, 4);
}

static void
test_find_sent_fallback (Fixture *f, gconstpointer data)
{
  static const char *const lists[] = { "", "* LIST () \"/\" Sent\r\n", NULL };
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GError) error = NULL;

  f->imap.lists = lists;
  open_plain_session (f);
  sent = find_sent (f, "Outgoing", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sent->name, ==, "Sent");

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 5);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==, "A4 LIST \"\" \"Outgoing\"");
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 4), ==, "A5 LIST \"\" \"Sent\"");
}

static void
test_find_sent_none (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  sent = find_sent (f, NULL, &error);
  g_assert_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_NO_SENT_FOLDER);
  g_assert_null (sent);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_find_sent_utf7_name (Fixture *f, gconstpointer data)
{
  static const char *const lists[] = { "* LIST () \"/\" \"Gesendete Entw&APw-rfe\"\r\n", NULL };
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GError) error = NULL;

  f->imap.lists = lists;
  open_plain_session (f);
  sent = find_sent (f, "Gesendete Entwürfe", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sent->name, ==, "Gesendete Entw&APw-rfe");
  g_assert_cmpstr (sent->display_name, ==, "Gesendete Entwürfe");
}

/* APPEND ------------------------------------------------------------------ */

#define MESSAGE "Subject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nhello\r\n"
#define MESSAGE_LF "Subject: hi\nMessage-ID: <1@example.org>\n\nhello\n"

static void
test_append_literal_plus (Fixture *f, gconstpointer data)
{
  g_autofree char *expected =
      g_strdup_printf ("A4 APPEND \"Sent\" (\\Seen) {%zu+}\r\n" MESSAGE, strlen (MESSAGE));
  g_autoptr (GError) error = NULL;

  f->imap.capabilities_auth = "IMAP4rev1 LITERAL+";
  open_plain_session (f);
  g_assert_true (append_text (f, MESSAGE, &error));
  g_assert_no_error (error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==, expected);
  g_assert_cmpuint (f->imap.continuations, ==, 0);
}

static void
test_append_continuation (Fixture *f, gconstpointer data)
{
  g_autofree char *expected =
      g_strdup_printf ("A4 APPEND \"Sent\" (\\Seen) {%zu}\r\n" MESSAGE, strlen (MESSAGE));
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_true (append_text (f, MESSAGE, &error));
  g_assert_no_error (error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==, expected);
  g_assert_cmpuint (f->imap.continuations, ==, 1);
}

/* The record shows the CR LF after the literal: the next command starts
 * on a line of its own. */
static void
test_append_then_logout (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_true (append_text (f, MESSAGE, &error));
  g_assert_true (logout (f, &error));
  g_assert_no_error (error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 4), ==, "A5 LOGOUT");
}

static void
test_append_trycreate (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->imap.append_refusal = "NO [TRYCREATE] Mailbox doesn't exist: Sent";
  open_plain_session (f);
  g_assert_false (append_text (f, MESSAGE, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_nonnull (strstr (error->message, "NO [TRYCREATE] Mailbox doesn't exist: Sent"));
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_cmpuint (f->imap.continuations, ==, 0);
}

static void
test_append_refused_after_data (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->imap.append = "NO [OVERQUOTA] Quota exceeded";
  open_plain_session (f);
  g_assert_false (append_text (f, MESSAGE, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_nonnull (strstr (error->message, "OVERQUOTA"));
}

static void
test_append_several_blocks (Fixture *f, gconstpointer data)
{
  gsize size = 300 * 1024 + 7;
  g_autofree char *message = g_malloc (size + 1);
  g_autofree char *expected = NULL;
  g_autoptr (GError) error = NULL;

  for (gsize i = 0; i < size; i++)
    message[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char) ('a' + i % 26);
  message[size] = '\0';
  expected = g_strdup_printf ("A4 APPEND \"Sent\" (\\Seen) {%zu}\r\n%s", size, message);
  open_plain_session (f);
  g_assert_true (append_text (f, message, &error));
  g_assert_no_error (error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==, expected);
}

static void
test_append_short_message (Fixture *f, gconstpointer data)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data ("short", 5, NULL);
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_false (append_stream (f, stream, 100, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_append_long_message (Fixture *f, gconstpointer data)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data ("longer", 6, NULL);
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_false (append_stream (f, stream, 4, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_append_date (Fixture *f, gconstpointer data)
{
  g_autoptr (GTimeZone) zone = g_time_zone_new_offset (3600);
  g_autoptr (GDateTime) date = g_date_time_new (zone, 2024, 3, 5, 14, 3, 9);
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data ("x\r\n", 3, NULL);
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_true (append_stream (f, stream, 3, date, &error));
  g_assert_no_error (error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 3), ==,
                   "A4 APPEND \"Sent\" (\\Seen) \" 5-Mar-2024 14:03:09 +0100\" {3}\r\nx\r\n");
}

static void
test_append_bad_flag (Fixture *f, gconstpointer data)
{
  static const char *const flags[] = { "\\Seen) {5}", NULL };
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data ("x", 1, NULL);
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_false (append_with_flags (f, stream, 1, flags, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);

  end_conversation (f);
  g_assert_false (server_received (&f->server, "APPEND"));
}

static void
test_append_not_open (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_true (logout (f, &error));
  g_assert_false (append_text (f, MESSAGE, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
}

/* LOGOUT ------------------------------------------------------------------ */

static void
test_logout (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_true (logout (f, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, f->server.commands->len - 1), ==,
                   "A4 LOGOUT");
}

/* The protocol trace ------------------------------------------------------ */

static void
test_trace_redacts_login (Fixture *f, gconstpointer data)
{
  log_capture_start ();
  f->imap.capabilities = "IMAP4rev1";
  f->config.password = "pässwort";
  open_plain_session (f);
  g_assert_true (logs_contain ("A2 LOGIN \"alice\" ****"));
  g_assert_false (logs_contain ("sswort"));
  g_assert_false (logs_contain ("{9}"));
  log_capture_stop ();
}

/* A real Dovecot ---------------------------------------------------------
 *
 * A private instance from its own configuration in a temporary directory,
 * on a free loopback port, in plaintext (+insecure to loopback).  It runs
 * mail as "nobody", so the test needs root; it is skipped otherwise, or
 * when Dovecot is not installed. */

#define DOVECOT_CONFIG                                                                            \
  "base_dir = %1$s/base\n"                                                                        \
  "state_dir = %1$s/state\n"                                                                      \
  "log_path = %1$s/dovecot.log\n"                                                                 \
  "listen = 127.0.0.1\n"                                                                          \
  "protocols = imap\n"                                                                            \
  "ssl = no\n"                                                                                    \
  "disable_plaintext_auth = no\n"                                                                 \
  "auth_mechanisms = plain\n"                                                                     \
  "default_login_user = dovenull\n"                                                               \
  "default_internal_user = dovecot\n"                                                             \
  "mail_location = maildir:%1$s/mail/%%u\n"                                                       \
  "passdb {\n  driver = passwd-file\n  args = %1$s/passwd\n}\n"                                   \
  "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup\n}\n"                             \
  "service imap-login {\n  inet_listener imap {\n    port = %2$u\n  }\n"                          \
  "  inet_listener imaps {\n    port = 0\n  }\n}\n"                                               \
  "namespace inbox {\n  inbox = yes\n"                                                            \
  "  mailbox Sent {\n    auto = create\n    special_use = \\Sent\n  }\n}\n"

typedef struct
{
  char *dir;    /* (owned) */
  char *config; /* (owned) */
  guint16 port;
  GPid pid; /* the master, in the foreground: our child */
} Dovecot;

/* A port that is free again once the listener that found it is gone. */
static guint16
free_loopback_port (void)
{
  guint16 port = 0;
  g_autoptr (GSocketListener) listener = listen_on_loopback (&port);

  return port;
}

static void
write_file (const char *dir, const char *name, const char *contents)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

static gboolean
dovecot_accepts (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) connection =
      g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);

  return connection != NULL;
}

/* Dovecot goes with the test process, even when an assertion aborts it. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static void
dovecot_write_config (Dovecot *dovecot)
{
  g_autofree char *mail = NULL;
  g_autofree char *config = NULL;
  struct passwd *nobody = getpwnam ("nobody");
  g_autoptr (GError) error = NULL;

  dovecot->dir = g_dir_make_tmp ("outbox-test-dovecot-XXXXXX", &error);
  g_assert_no_error (error);
  g_assert_no_errno (g_chmod (dovecot->dir, 0755));
  mail = g_build_filename (dovecot->dir, "mail", NULL);
  g_assert_no_errno (g_mkdir (mail, 0700));
  g_assert_no_errno (chown (mail, nobody->pw_uid, nobody->pw_gid));
  write_file (dovecot->dir, "passwd", "alice:{PLAIN}secret\n");
  dovecot->port = free_loopback_port ();
  config = g_strdup_printf (DOVECOT_CONFIG, dovecot->dir, dovecot->port);
  write_file (dovecot->dir, "dovecot.conf", config);
  dovecot->config = g_build_filename (dovecot->dir, "dovecot.conf", NULL);
}

static gboolean
dovecot_start (Dovecot *dovecot)
{
  const char *argv[] = { "dovecot", "-F", "-c", NULL, NULL };
  g_autoptr (GError) error = NULL;

  dovecot_write_config (dovecot);
  argv[3] = dovecot->config;
  if (!g_spawn_async (NULL, (char **) argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                          G_SPAWN_STDERR_TO_DEV_NULL,
                      die_with_parent, NULL, &dovecot->pid, &error))
    return FALSE;
  for (guint i = 0; i < 100; i++)
    {
      if (dovecot_accepts (dovecot->port))
        return TRUE;
      g_usleep (50 * 1000);
    }
  return FALSE;
}

static void
dovecot_stop (Dovecot *dovecot)
{
  const char *argv[] = { "rm", "-rf", dovecot->dir, NULL };

  if (dovecot->pid > 0)
    {
      kill (dovecot->pid, SIGTERM);
      waitpid (dovecot->pid, NULL, 0);
      g_spawn_close_pid (dovecot->pid);
    }
  if (dovecot->dir != NULL)
    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL,
                  NULL);
  g_clear_pointer (&dovecot->dir, g_free);
  g_clear_pointer (&dovecot->config, g_free);
}

/* The one file in the Sent maildir's cur/, with its name. */
static char *
sent_message (Dovecot *dovecot, char **out_name)
{
  g_autofree char *cur = g_build_filename (dovecot->dir, "mail", "alice", ".Sent", "cur", NULL);
  g_autoptr (GDir) dir = g_dir_open (cur, 0, NULL);
  g_autofree char *path = NULL;
  char *contents = NULL;
  const char *name;

  g_assert_nonnull (dir);
  name = g_dir_read_name (dir);
  g_assert_nonnull (name);
  g_assert_null (g_dir_read_name (dir));
  path = g_build_filename (cur, name, NULL);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  *out_name = g_strdup (name);
  return contents;
}

static void
test_dovecot (Fixture *f, gconstpointer data)
{
  Dovecot dovecot = { 0 };
  g_autofree char *program = NULL;
  g_autofree char *url_text = NULL;
  g_autofree char *stored = NULL;
  g_autofree char *stored_name = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (OutboxImapMailbox) sent = NULL;
  g_autoptr (GInputStream) message = NULL;
  g_autoptr (GError) error = NULL;

  if (getuid () != 0 || getpwnam ("nobody") == NULL)
    {
      g_test_skip ("Dovecot runs mail as nobody: the test needs root");
      return;
    }
  program = g_find_program_in_path ("dovecot");
  if (program == NULL)
    {
      g_test_skip ("Dovecot is not installed");
      return;
    }
  g_assert_true (dovecot_start (&dovecot));

  url_text = g_strdup_printf ("imap+insecure://alice@127.0.0.1:%u", dovecot.port);
  f->url = outbox_server_url_parse (url_text, &error);
  g_assert_no_error (error);
  f->config.url = f->url;
  f->session = outbox_imap_session_new (&f->config);
  outbox_session_open_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  outbox_session_open_finish (OUTBOX_SESSION (f->session), wait_for (&result), &error);
  g_assert_no_error (error);
  g_assert_true (outbox_imap_session_has_capability (f->session, "SPECIAL-USE"));

  sent = find_sent (f, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sent->name, ==, "Sent");
  message = g_memory_input_stream_new_from_data (MESSAGE, -1, NULL);
  g_assert_true (append_stream (f, message, strlen (MESSAGE), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (logout (f, &error));
  g_assert_no_error (error);

  /* Dovecot keeps maildir files with LF line ends. */
  stored = sent_message (&dovecot, &stored_name);
  g_assert_cmpstr (stored, ==, MESSAGE_LF);
  g_assert_true (g_str_has_suffix (stored_name, ":2,S"));
  dovecot_stop (&dovecot);
}

#define ADD(name, func) g_test_add (name, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_capture_writer, NULL, NULL);
  test_certs_make (&certs);

  ADD ("/imap/session/login/sasl-ir", test_login_sasl_ir);
  ADD ("/imap/session/login/continuation", test_login_continuation);
  ADD ("/imap/session/login/login-fallback", test_login_fallback);
  ADD ("/imap/session/login/refused-then-logout", test_login_refused_then_logout);
  ADD ("/imap/session/login/quoted-escapes", test_login_quoted_escapes);
  ADD ("/imap/session/login/literal", test_login_literal);
  ADD ("/imap/session/login/literal-plus", test_login_literal_plus);
  ADD ("/imap/session/login/logindisabled", test_login_disabled);
  ADD ("/imap/session/login/without-user", test_login_without_user);
  ADD ("/imap/session/authenticate/plain-continuation", test_authenticate_plain_continuation);
  ADD ("/imap/session/preauth", test_preauth);
  ADD ("/imap/session/capability/from-greeting", test_capability_from_greeting);
  ADD ("/imap/session/capability/after-login", test_capability_after_login);
  ADD ("/imap/session/capability/in-login-ok", test_capability_in_login_ok);
  ADD ("/imap/session/bad-greeting", test_bad_greeting);
  ADD ("/imap/session/bye-on-connect", test_bye_on_connect);
  ADD ("/imap/session/timeout", test_timeout);
  ADD ("/imap/session/starttls/forgets-capabilities", test_starttls_forgets_capabilities);
  ADD ("/imap/session/starttls/preauth-plaintext", test_preauth_plaintext);
  ADD ("/imap/session/find-sent/special-use", test_find_sent_special_use);
  ADD ("/imap/session/find-sent/skips-noselect", test_find_sent_skips_noselect);
  ADD ("/imap/session/find-sent/configured", test_find_sent_configured);
  ADD ("/imap/session/find-sent/fallback", test_find_sent_fallback);
  ADD ("/imap/session/find-sent/none", test_find_sent_none);
  ADD ("/imap/session/find-sent/utf7-name", test_find_sent_utf7_name);
  ADD ("/imap/session/append/literal-plus", test_append_literal_plus);
  ADD ("/imap/session/append/continuation", test_append_continuation);
  ADD ("/imap/session/append/then-logout", test_append_then_logout);
  ADD ("/imap/session/append/trycreate", test_append_trycreate);
  ADD ("/imap/session/append/refused-after-data", test_append_refused_after_data);
  ADD ("/imap/session/append/several-blocks", test_append_several_blocks);
  ADD ("/imap/session/append/short-message", test_append_short_message);
  ADD ("/imap/session/append/long-message", test_append_long_message);
  ADD ("/imap/session/append/date", test_append_date);
  ADD ("/imap/session/append/bad-flag", test_append_bad_flag);
  ADD ("/imap/session/append/not-open", test_append_not_open);
  ADD ("/imap/session/logout", test_logout);
  ADD ("/imap/session/trace/redacts-login", test_trace_redacts_login);
  ADD ("/imap/session/dovecot", test_dovecot);

  status = g_test_run ();

  test_certs_clear (&certs);
  return status;
}
