/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-error.h"
#include "outbox-smtp-session.h"
#include "outbox-tls.h"
#include "session-test-support.h"

static TestCerts certs;

/* The fake server's SMTP --------------------------------------------------
 *
 * The FakeServer (session-test-support.h) sends the greeting, does TLS and
 * records the command lines; this answers them, and keeps the DATA payload
 * as received. */

typedef struct
{
  /* The script: replies with their CR LF; NULL means a plain default. */
  const char *ehlo;
  const char *ehlo_tls;    /* EHLO once TLS is up */
  const char *const *auth; /* successive replies to AUTH and its continuations */
  const char *const *mail; /* successive replies to MAIL */
  const char *const *rcpt; /* successive replies to RCPT */
  const char *data;
  const char *final;       /* to the final dot or BDAT LAST */
  const char *const *bdat; /* successive replies to BDAT, before final's */
  gboolean drop_after_dot; /* close instead of answering the final dot or BDAT LAST */

  guint auth_i, mail_i, rcpt_i, bdat_i;
  gboolean in_auth;

  /* The record. */
  GString *payload; /* DATA payload as received, dot line included */
  GString *chunks;  /* the octets of every BDAT chunk, one after the other */
  gboolean dot_seen;
  gboolean last_seen; /* BDAT LAST */
} FakeSmtp;

static const char *
next_reply (const char *const *replies, guint *index, const char *fallback)
{
  if (replies == NULL || replies[*index] == NULL)
    return fallback;
  return replies[(*index)++];
}

static const char *
reply_or (const char *reply, const char *fallback)
{
  return reply != NULL ? reply : fallback;
}

/* Reads the DATA payload up to the dot line; FALSE at end of stream. */
static gboolean
smtp_read_payload (FakeServer *server)
{
  FakeSmtp *smtp = server->script;
  gsize len = 0;

  for (;;)
    {
      g_autofree char *line = fake_server_read_line (server, &len);
      if (line == NULL)
        return FALSE;
      g_string_append_len (smtp->payload, line, (gssize) len);
      g_string_append (smtp->payload, "\r\n");
      if (g_str_equal (line, "."))
        {
          smtp->dot_seen = TRUE;
          return TRUE;
        }
    }
}

static gboolean
smtp_handle_data (FakeServer *server)
{
  FakeSmtp *smtp = server->script;
  const char *reply = reply_or (smtp->data, "354 go ahead\r\n");

  fake_server_send (server, reply);
  if (!g_str_has_prefix (reply, "354"))
    return TRUE;
  if (!smtp_read_payload (server) || smtp->drop_after_dot)
    return FALSE;
  fake_server_send (server, reply_or (smtp->final, "250 2.0.0 queued\r\n"));
  return TRUE;
}

/* Reads the chunk's octets whatever the reply, as RFC 3030 asks. */
static gboolean
smtp_handle_bdat (FakeServer *server, const char *line)
{
  FakeSmtp *smtp = server->script;
  char *end = NULL;
  guint64 size = g_ascii_strtoull (line + strlen ("BDAT "), &end, 10);
  gboolean last = g_str_equal (end, " LAST");
  g_autofree char *octets = g_malloc (size + 1);
  gsize got = 0;

  if (!g_input_stream_read_all (G_INPUT_STREAM (server->input), octets, size, &got, NULL, NULL) ||
      got != size)
    return FALSE;
  g_string_append_len (smtp->chunks, octets, (gssize) size);
  if (smtp->bdat != NULL && smtp->bdat[smtp->bdat_i] != NULL)
    {
      fake_server_send (server, smtp->bdat[smtp->bdat_i++]);
      return TRUE;
    }
  if (!last)
    {
      fake_server_send (server, "250 2.0.0 chunk ok\r\n");
      return TRUE;
    }
  smtp->last_seen = TRUE;
  if (smtp->drop_after_dot)
    return FALSE;
  fake_server_send (server, reply_or (smtp->final, "250 2.0.0 queued\r\n"));
  return TRUE;
}

static gboolean
smtp_handle_auth (FakeServer *server)
{
  FakeSmtp *smtp = server->script;
  const char *reply = next_reply (smtp->auth, &smtp->auth_i, "235 2.7.0 ok\r\n");

  smtp->in_auth = g_str_has_prefix (reply, "334");
  fake_server_send (server, reply);
  return TRUE;
}

static gboolean
smtp_handle_starttls (FakeServer *server)
{
  fake_server_send (server, "220 2.0.0 ready\r\n");
  if (server->certificate != NULL)
    return fake_server_start_tls (server);
  return TRUE;
}

static gboolean
smtp_handle (FakeServer *server, const char *line)
{
  FakeSmtp *smtp = server->script;
  g_autofree char *verb = g_ascii_strup (line, MIN (strlen (line), 4));

  if (smtp->in_auth)
    return smtp_handle_auth (server);
  if (server->hang_on != NULL && g_str_equal (verb, server->hang_on))
    return TRUE;
  if (g_str_equal (verb, "EHLO"))
    fake_server_send (server,
                      reply_or (server->tls_up && smtp->ehlo_tls ? smtp->ehlo_tls : smtp->ehlo,
                                "250-fake.test\r\n250 ENHANCEDSTATUSCODES\r\n"));
  else if (g_str_equal (verb, "HELO"))
    fake_server_send (server, "250 fake.test\r\n");
  else if (g_str_equal (verb, "STAR"))
    return smtp_handle_starttls (server);
  else if (g_str_equal (verb, "AUTH"))
    return smtp_handle_auth (server);
  else if (g_str_equal (verb, "MAIL"))
    fake_server_send (server, next_reply (smtp->mail, &smtp->mail_i, "250 2.1.0 ok\r\n"));
  else if (g_str_equal (verb, "RCPT"))
    fake_server_send (server, next_reply (smtp->rcpt, &smtp->rcpt_i, "250 2.1.5 ok\r\n"));
  else if (g_str_equal (verb, "DATA"))
    return smtp_handle_data (server);
  else if (g_str_equal (verb, "BDAT"))
    return smtp_handle_bdat (server, line);
  else if (g_str_equal (verb, "RSET"))
    fake_server_send (server, "250 2.0.0 ok\r\n");
  else if (g_str_equal (verb, "QUIT"))
    {
      fake_server_send (server, "221 2.0.0 bye\r\n");
      return FALSE;
    }
  else
    fake_server_send (server, "502 5.5.2 unknown command\r\n");
  return TRUE;
}

static const FakeProtocol fake_smtp = {
  .name = "fake-smtp",
  .greeting = "220 fake.test ESMTP\r\n",
  .handle = smtp_handle,
};

/* The session side ------------------------------------------------------ */

typedef struct
{
  FakeServer server;
  FakeSmtp smtp;
  OutboxServerUrl *url;
  OutboxSmtpConfig config;
  OutboxSmtpSession *session;
  const OutboxDsnRequest *dsn; /* (nullable) what the transactions ask */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  outbox_smtp_timeouts_init_default (&f->config.timeouts);
  f->config.timeouts.connect = 10;
  f->config.timeouts.greeting = 10;
  f->config.timeouts.command = 10;
  f->config.timeouts.data_init = 10;
  f->config.timeouts.data_block = 10;
  f->config.timeouts.data_final = 10;
  f->smtp.payload = g_string_new (NULL);
  f->smtp.chunks = g_string_new (NULL);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->session);
  fake_server_clear (&f->server);
  g_string_free (g_steal_pointer (&f->smtp.payload), TRUE);
  g_string_free (g_steal_pointer (&f->smtp.chunks), TRUE);
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

  fake_server_start (&f->server, &fake_smtp, &f->smtp);
  f->url = fake_server_url (&f->server, url_format);
  f->config.url = f->url;
  f->session = outbox_smtp_session_new (&f->config);
  outbox_session_open_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  return outbox_session_open_finish (OUTBOX_SESSION (f->session), wait_for (&result), error);
}

static void
open_plain_session (Fixture *f)
{
  g_autoptr (GError) error = NULL;

  open_session (f, "smtp+insecure://127.0.0.1:%u", &error);
  g_assert_no_error (error);
}

static OutboxSmtpSendResult *
send_body_stream (Fixture *f,
                  const char *const *rcpts,
                  GInputStream *body,
                  guint64 size,
                  OutboxSmtpSendFlags flags)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_smtp_session_send_async (f->session, "a@example.org", rcpts, body, size, flags, f->dsn,
                                  NULL, store_result, &result);
  return outbox_smtp_session_send_finish (f->session, wait_for (&result));
}

static OutboxSmtpSendResult *
send_message (Fixture *f, const char *const *rcpts, const char *body, OutboxSmtpSendFlags flags)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (body, -1, NULL);

  return send_body_stream (f, rcpts, stream, strlen (body), flags);
}

static OutboxSmtpSendResult *
send_simple (Fixture *f)
{
  static const char *const rcpts[] = { "b@example.org", NULL };

  return send_message (f, rcpts, "Subject: hi\n\nhello\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
}

static gboolean
quit_session (Fixture *f, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_session_quit_async (OUTBOX_SESSION (f->session), NULL, store_result, &result);
  return outbox_session_quit_finish (OUTBOX_SESSION (f->session), wait_for (&result), error);
}

static guint
reply_code (const OutboxSmtpReply *reply)
{
  return reply != NULL ? reply->code : 0;
}

static guint
rcpt_code (const OutboxSmtpSendResult *result, guint i)
{
  g_assert_cmpuint (i, <, result->rcpt_replies->len);
  return reply_code (g_ptr_array_index (result->rcpt_replies, i));
}

/* Sending ------------------------------------------------------------- */

static void
test_plain_send (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", "c@example.org", NULL };
  static const char *const expected[] = { "EHLO [127.0.0.1]",
                                          "MAIL FROM:<a@example.org>",
                                          "RCPT TO:<b@example.org>",
                                          "RCPT TO:<c@example.org>",
                                          "DATA",
                                          NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  open_plain_session (f);
  result = send_message (f, rcpts, "Subject: dots\n\n.hidden\nline\r\n.\nend",
                         OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_cmpuint (rcpt_code (result, 1), ==, 250);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);
  g_assert_false (result->unknown_outcome);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
  g_assert_cmpstr (f->smtp.payload->str, ==,
                   "Subject: dots\r\n\r\n..hidden\r\nline\r\n..\r\nend\r\n.\r\n");
}

static void
test_one_command_at_a_time (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", "c@example.org", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  open_plain_session (f);
  result = send_message (f, rcpts, "x\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==, "MAIL FROM:<a@example.org>");
  g_assert_cmpuint (g_array_index (f->server.buffered_after, gsize, 1), ==, 0);
  g_assert_cmpuint (g_array_index (f->server.buffered_after, gsize, 2), ==, 0);
}

static void
test_pipelining (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", "c@example.org", "d@example.org", NULL };
  static const char *const replies[] = { "250 2.1.5 ok\r\n", "550 5.1.1 no such user\r\n",
                                         "450 4.2.1 try later\r\n", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 PIPELINING\r\n";
  f->smtp.rcpt = replies;
  open_plain_session (f);
  result = send_message (f, rcpts, "x\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_cmpuint (rcpt_code (result, 1), ==, 550);
  g_assert_cmpuint (rcpt_code (result, 2), ==, 450);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);

  end_conversation (f);
  /* MAIL arrived with all three RCPT lines behind it: one write. */
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==, "MAIL FROM:<a@example.org>");
  g_assert_cmpuint (g_array_index (f->server.buffered_after, gsize, 1), ==,
                    3 * strlen ("RCPT TO:<b@example.org>\r\n"));
}

static void
test_no_rcpt_accepted (Fixture *f, gconstpointer data)
{
  static const char *const replies[] = { "550 5.1.1 no such user\r\n", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.rcpt = replies;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 550);
  g_assert_null (result->final_reply);
  g_assert_null (result->stop_reply);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "DATA"));
  g_assert_cmpuint (f->smtp.payload->len, ==, 0);
}

static void
test_mail_refused (Fixture *f, gconstpointer data)
{
  static const char *const replies[] = { "452 4.3.1 out of space\r\n", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.mail = replies;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->stop_reply), ==, 452);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 0);
  g_assert_null (result->final_reply);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "RCPT"));
}

/* Replies to RCPT after a refused MAIL carry nothing about the recipient. */
static void
test_pipelined_mail_refused (Fixture *f, gconstpointer data)
{
  static const char *const mail[] = { "452 4.3.1 out of space\r\n", NULL };
  static const char *const rcpt[] = { "503 5.5.1 need MAIL\r\n", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 PIPELINING\r\n";
  f->smtp.mail = mail;
  f->smtp.rcpt = rcpt;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->stop_reply), ==, 452);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 0);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "DATA"));
}

static void
test_data_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.data = "554 5.5.1 no valid recipients\r\n";
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->stop_reply), ==, 554);
  g_assert_null (result->final_reply);

  end_conversation (f);
  g_assert_cmpuint (f->smtp.payload->len, ==, 0);
}

static void
test_final_reply_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.final = "554 5.7.1 spam\r\n";
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 554);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_reuse (Fixture *f, gconstpointer data)
{
  static const char *const mail[] = { "550 5.7.1 not you\r\n", "250 2.1.0 ok\r\n", NULL };
  static const char *const expected[] = { "EHLO [127.0.0.1]",
                                          "MAIL FROM:<a@example.org>",
                                          "RSET",
                                          "MAIL FROM:<a@example.org>",
                                          "RCPT TO:<b@example.org>",
                                          "DATA",
                                          NULL };
  g_autoptr (OutboxSmtpSendResult) first = NULL;
  g_autoptr (OutboxSmtpSendResult) second = NULL;

  f->smtp.mail = mail;
  open_plain_session (f);
  first = send_simple (f);
  g_assert_cmpuint (reply_code (first->stop_reply), ==, 550);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  second = send_simple (f);
  g_assert_no_error (second->error);
  g_assert_cmpuint (reply_code (second->final_reply), ==, 250);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_reuse_without_reset (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) first = NULL;
  g_autoptr (OutboxSmtpSendResult) second = NULL;

  open_plain_session (f);
  first = send_simple (f);
  second = send_simple (f);
  g_assert_cmpuint (reply_code (first->final_reply), ==, 250);
  g_assert_cmpuint (reply_code (second->final_reply), ==, 250);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "RSET"));
  g_assert_cmpuint (f->server.commands->len, ==, 7);
}

/* A transaction refused before MAIL, with @code: the session stays open
 * for the next message, and the server saw only EHLO and QUIT. */
static void
assert_refused_before_mail (Fixture *f, const OutboxSmtpSendResult *result, gint code)
{
  static const char *const expected[] = { "EHLO [127.0.0.1]", "QUIT", NULL };
  g_autoptr (GError) error = NULL;

  g_assert_error (result->error, OUTBOX_SMTP_ERROR, code);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  quit_session (f, &error);
  g_assert_no_error (error);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_8bit_not_offered (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = "250 fake.test\r\n";
  open_plain_session (f);
  result = send_message (f, rcpts, "caf\xc3\xa9\n", OUTBOX_SMTP_SEND_8BITMIME);
  assert_refused_before_mail (f, result, OUTBOX_SMTP_ERROR_UNSUPPORTED);
}

static void
test_8bit_offered (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 8BITMIME\r\n";
  open_plain_session (f);
  result = send_message (f, rcpts, "caf\xc3\xa9\n", OUTBOX_SMTP_SEND_8BITMIME);
  g_assert_no_error (result->error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==,
                   "MAIL FROM:<a@example.org> BODY=8BITMIME");
}

static void
test_smtputf8_not_offered (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b\xc3\xa9@example.org", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  open_plain_session (f);
  result = send_message (f, rcpts, "x\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_error (result->error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_UNSUPPORTED);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "MAIL"));
}

static void
test_size_param (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 SIZE 1000\r\n";
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==,
                   "MAIL FROM:<a@example.org> SIZE=19");
}

static void
test_size_over_limit (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (GInputStream) body = g_memory_input_stream_new_from_data ("x\n", -1, NULL);
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 SIZE 1000\r\n";
  open_plain_session (f);
  result = send_body_stream (f, rcpts, body, 1001, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_error (result->error, OUTBOX_SMTP_ERROR, OUTBOX_SMTP_ERROR_UNSUPPORTED);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "MAIL"));
}

/* Delivery status notifications (RFC 3461) ---------------------------- */

#define EHLO_WITH_DSN "250-fake.test\r\n250 DSN\r\n"
#define EHLO_WITH_UTF8_AND_DSN "250-fake.test\r\n250-SMTPUTF8\r\n250 DSN\r\n"

/* Sends "x" to @rcpts, asking @dsn of a server whose EHLO is @ehlo (NULL:
 * the default, without DSN). */
static OutboxSmtpSendResult *
send_asking_dsn (Fixture *f,
                 const char *ehlo,
                 const OutboxDsnRequest *dsn,
                 const char *const *rcpts)
{
  f->smtp.ehlo = ehlo;
  f->dsn = dsn;
  open_plain_session (f);
  return send_message (f, rcpts, "x\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
}

/* The same, for a transaction that must go through, with @expected the
 * commands the server saw. */
static void
assert_dsn_commands (Fixture *f,
                     const char *ehlo,
                     const OutboxDsnRequest *dsn,
                     const char *const *rcpts,
                     const char *const *expected)
{
  g_autoptr (OutboxSmtpSendResult) result = send_asking_dsn (f, ehlo, dsn, rcpts);

  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);
  g_assert_cmpint (result->dsn_not_offered, ==, ehlo == NULL);
  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

/* Transactions that go through, and the exact lines the server sees. */
typedef struct
{
  const char *ehlo; /* (nullable) NULL: the default, without DSN */
  OutboxDsnRequest dsn;
  const char *rcpts[3];
  const char *expected[6];
} DsnCase;

static const DsnCase dsn_offered = {
  EHLO_WITH_DSN,
  { OUTBOX_DSN_NOTIFY_SUCCESS | OUTBOX_DSN_NOTIFY_FAILURE, OUTBOX_DSN_RET_HDRS, "X+1 y", FALSE },
  { "b@example.org", "c+tag@example.org", NULL },
  { "EHLO [127.0.0.1]",
    "MAIL FROM:<a@example.org> RET=HDRS ENVID=X+2B1+20y",
    "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org",
    "RCPT TO:<c+tag@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c+2Btag@example.org",
    "DATA", NULL },
};

static const DsnCase dsn_never_alone = {
  EHLO_WITH_DSN,
  { OUTBOX_DSN_NOTIFY_NEVER, OUTBOX_DSN_RET_DEFAULT, NULL, FALSE },
  { "b@example.org", NULL },
  { "EHLO [127.0.0.1]", "MAIL FROM:<a@example.org>",
    "RCPT TO:<b@example.org> NOTIFY=NEVER ORCPT=rfc822;b@example.org", "DATA", NULL },
};

/* A server that does not offer DSN gets the transaction without it, and
 * the result says so. */
static const DsnCase dsn_not_offered = {
  NULL,
  { OUTBOX_DSN_NOTIFY_FAILURE, OUTBOX_DSN_RET_FULL, "id", FALSE },
  { "b@example.org", NULL },
  { "EHLO [127.0.0.1]", "MAIL FROM:<a@example.org>", "RCPT TO:<b@example.org>", "DATA", NULL },
};

/* A non-ASCII recipient's ORCPT is of type utf-8, in the ASCII form of
 * RFC 6533. */
static const DsnCase dsn_utf8_orcpt = {
  EHLO_WITH_UTF8_AND_DSN,
  { OUTBOX_DSN_NOTIFY_FAILURE, OUTBOX_DSN_RET_DEFAULT, NULL, FALSE },
  { "jos\xc3\xa9@example.org", NULL },
  { "EHLO [127.0.0.1]", "MAIL FROM:<a@example.org> SMTPUTF8",
    "RCPT TO:<jos\xc3\xa9@example.org> NOTIFY=FAILURE ORCPT=utf-8;jos\\x{E9}@example.org",
    "DATA", NULL },
};

static void
test_dsn_commands (Fixture *f, gconstpointer data)
{
  const DsnCase *dsn_case = data;

  assert_dsn_commands (f, dsn_case->ehlo, &dsn_case->dsn, dsn_case->rcpts, dsn_case->expected);
}

/* Required and not offered: nothing is sent, and the session stays open
 * for the next message. */
static void
test_dsn_required_not_offered (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  const OutboxDsnRequest dsn = { OUTBOX_DSN_NOTIFY_FAILURE, OUTBOX_DSN_RET_DEFAULT, NULL, TRUE };
  g_autoptr (OutboxSmtpSendResult) result = send_asking_dsn (f, NULL, &dsn, rcpts);

  g_assert_false (result->dsn_not_offered);
  g_assert_nonnull (strstr (result->error->message, "127.0.0.1 does not offer DSN"));
  assert_refused_before_mail (f, result, OUTBOX_SMTP_ERROR_DSN_NOT_OFFERED);
}

/* Requiring DSN without asking anything of it changes nothing. */
static void
test_dsn_required_alone (Fixture *f, gconstpointer data)
{
  const OutboxDsnRequest dsn = { OUTBOX_DSN_NOTIFY_DEFAULT, OUTBOX_DSN_RET_DEFAULT, NULL, TRUE };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->dsn = &dsn;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_false (result->dsn_not_offered);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 2), ==, "RCPT TO:<b@example.org>");
}

/* An ORCPT longer than servers keep is left out; NOTIFY stays. */
static void
test_dsn_long_orcpt_left_out (Fixture *f, gconstpointer data)
{
  const OutboxDsnRequest dsn = { OUTBOX_DSN_NOTIFY_FAILURE, OUTBOX_DSN_RET_DEFAULT, NULL, FALSE };
  g_autoptr (GString) rcpt = g_string_new ("x@");
  g_autoptr (GString) rcpt_line = g_string_new (NULL);
  const char *rcpts[] = { NULL, NULL };
  const char *expected[] = {
    "EHLO [127.0.0.1]", "MAIL FROM:<a@example.org> SMTPUTF8", NULL, "DATA", NULL
  };

  /* Four labels of 20 CJK characters: 80 characters of 8 in ORCPT. */
  for (guint label = 0; label < 4; label++)
    {
      for (guint i = 0; i < 20; i++)
        g_string_append (rcpt, "\xe7\x94\xb0");
      g_string_append_c (rcpt, '.');
    }
  g_string_append (rcpt, "jp");
  rcpts[0] = rcpt->str;
  g_string_printf (rcpt_line, "RCPT TO:<%s> NOTIFY=FAILURE", rcpt->str);
  expected[2] = rcpt_line->str;
  assert_dsn_commands (f, EHLO_WITH_UTF8_AND_DSN, &dsn, rcpts, expected);
}

/* A server that offers DSN and then refuses its parameters: the refusal
 * is the recipient's, as any other. */
static void
test_dsn_rcpt_parameters_refused (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  static const char *const replies[] = { "555 5.5.4 Unsupported option: NOTIFY\r\n", NULL };
  const OutboxDsnRequest dsn = { OUTBOX_DSN_NOTIFY_FAILURE, OUTBOX_DSN_RET_DEFAULT, NULL, FALSE };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.rcpt = replies;
  result = send_asking_dsn (f, EHLO_WITH_DSN, &dsn, rcpts);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 555);
  g_assert_null (result->final_reply);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "DATA"));
}

static void
test_address_injection (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org>\r\nRSET\r\nRCPT TO:<c@example.org", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  open_plain_session (f);
  result = send_message (f, rcpts, "x\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_error (result->error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "MAIL"));
  g_assert_false (fake_server_received (&f->server, "RSET"));
}

/* A body bigger than one read block goes through whole. */
static void
test_body_several_blocks (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (GString) body = g_string_new (NULL);
  g_autoptr (GString) expected = g_string_new (NULL);
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  for (guint i = 0; i < 30000; i++)
    {
      g_string_append_printf (body, "%sline %u\n", i % 7 == 0 ? "." : "", i);
      g_string_append_printf (expected, "%sline %u\r\n", i % 7 == 0 ? ".." : "", i);
    }
  g_string_append (expected, ".\r\n");
  open_plain_session (f);
  result = send_message (f, rcpts, body->str, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);

  end_conversation (f);
  g_assert_cmpuint (f->smtp.payload->len, ==, expected->len);
  g_assert_cmpstr (f->smtp.payload->str, ==, expected->str);
}

/* CHUNKING ------------------------------------------------------------ */

#define EHLO_CHUNKING "250-fake.test\r\n250 CHUNKING\r\n"
/* What the session puts in a BDAT chunk before sending it (BDAT_CHUNK). */
#define TEST_BDAT_CHUNK (256 * 1024)

/* A line starting with "." goes unstuffed, lone LF and CR become CRLF, NUL
 * is dropped, the last line gets its CRLF: the DATA octets without the
 * transparency dots and the terminator, in one "BDAT n LAST". */
static void
test_bdat_small (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  static const char body[] = "Subject: dots\n\n.hidden\nline\r\n.\nlone\rcr\r\r\nn\0ul\nend";
  static const char wire[] =
      "Subject: dots\r\n\r\n.hidden\r\nline\r\n.\r\nlone\r\ncr\r\n\r\nnul\r\nend\r\n";
  g_autoptr (GInputStream) stream =
      g_memory_input_stream_new_from_data (body, sizeof body - 1, NULL);
  g_autofree char *bdat = g_strdup_printf ("BDAT %zu LAST", strlen (wire));
  const char *const expected[] = { "EHLO [127.0.0.1]", "MAIL FROM:<a@example.org>",
                                   "RCPT TO:<b@example.org>", bdat, NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = EHLO_CHUNKING;
  open_plain_session (f);
  result = send_body_stream (f, rcpts, stream, sizeof body - 1, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);
  g_assert_false (result->unknown_outcome);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
  g_assert_cmpstr (f->smtp.chunks->str, ==, wire);
  g_assert_cmpuint (f->smtp.payload->len, ==, 0);
}

/* A body of @n_lines lines, some of them starting with ".", in @body as
 * given and in @wire as BDAT carries it. */
static void
make_dotted_body (guint n_lines, GString *body, GString *wire)
{
  for (guint i = 0; i < n_lines; i++)
    {
      g_string_append_printf (body, "%sline %u\n", i % 7 == 0 ? "." : "", i);
      g_string_append_printf (wire, "%sline %u\r\n", i % 7 == 0 ? "." : "", i);
    }
}

/* Every BDAT line the server saw, checked against the octets it got: each
 * chunk but the last holds at least TEST_BDAT_CHUNK octets.  Returns how
 * many chunks there were. */
static guint
assert_chunks (Fixture *f, gsize total)
{
  guint n_chunks = 0;
  gsize sum = 0;

  for (guint i = 0; i < f->server.commands->len; i++)
    {
      const char *line = g_ptr_array_index (f->server.commands, i);
      char *end = NULL;
      guint64 size;

      if (!g_str_has_prefix (line, "BDAT "))
        continue;
      size = g_ascii_strtoull (line + 5, &end, 10);
      if (!g_str_equal (end, " LAST"))
        g_assert_cmpuint (size, >=, TEST_BDAT_CHUNK);
      sum += size;
      n_chunks++;
    }
  g_assert_cmpuint (sum, ==, total);
  return n_chunks;
}

static void
test_bdat_several_chunks (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (GString) body = g_string_new (NULL);
  g_autoptr (GString) wire = g_string_new (NULL);
  g_autoptr (OutboxSmtpSendResult) result = NULL;
  const char *last;

  make_dotted_body (80000, body, wire);
  f->smtp.ehlo = EHLO_CHUNKING;
  open_plain_session (f);
  result = send_message (f, rcpts, body->str, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);

  end_conversation (f);
  g_assert_cmpuint (assert_chunks (f, wire->len), >=, 3);
  last = g_ptr_array_index (f->server.commands, f->server.commands->len - 1);
  g_assert_true (g_str_has_prefix (last, "BDAT ") && g_str_has_suffix (last, " LAST"));
  g_assert_cmpuint (f->smtp.chunks->len, ==, wire->len);
  g_assert_true (memcmp (f->smtp.chunks->str, wire->str, wire->len) == 0);
  g_assert_false (fake_server_received (&f->server, "DATA"));
}

/* Data that ends where a chunk ends leaves nothing for the last one. */
static void
test_bdat_chunk_boundary (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (GString) body = g_string_new (NULL);
  g_autofree char *full = g_strdup_printf ("BDAT %u", TEST_BDAT_CHUNK);
  const char *const expected[] = { "EHLO [127.0.0.1]",
                                   "MAIL FROM:<a@example.org>",
                                   "RCPT TO:<b@example.org>",
                                   full,
                                   full,
                                   "BDAT 0 LAST",
                                   NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  /* 64-octet lines, CRLF included: 2 * TEST_BDAT_CHUNK octets as they are. */
  while (body->len < 2 * TEST_BDAT_CHUNK)
    g_string_append_printf (body, "%062zu\r\n", body->len);
  g_assert_cmpuint (body->len, ==, 2 * TEST_BDAT_CHUNK);
  f->smtp.ehlo = EHLO_CHUNKING;
  open_plain_session (f);
  result = send_message (f, rcpts, body->str, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
  g_assert_cmpstr (f->smtp.chunks->str, ==, body->str);
}

/* A refused chunk stops the transaction: no chunk after it, RSET, and the
 * reply is the stop reply, for every recipient RCPT accepted. */
static void
test_bdat_middle_chunk_refused (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  static const char *const bdat[] = { "250 2.0.0 ok\r\n", "554 5.6.0 message refused\r\n", NULL };
  g_autoptr (GString) body = g_string_new (NULL);
  g_autoptr (GString) wire = g_string_new (NULL);
  g_autoptr (OutboxSmtpSendResult) result = NULL;
  guint n_bdat = 0;

  make_dotted_body (80000, body, wire);
  f->smtp.ehlo = EHLO_CHUNKING;
  f->smtp.bdat = bdat;
  open_plain_session (f);
  result = send_message (f, rcpts, body->str, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_cmpuint (reply_code (result->stop_reply), ==, 554);
  g_assert_null (result->final_reply);
  g_assert_false (result->unknown_outcome);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  for (guint i = 0; i < f->server.commands->len; i++)
    n_bdat += g_str_has_prefix (g_ptr_array_index (f->server.commands, i), "BDAT ");
  g_assert_cmpuint (n_bdat, ==, 2);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, f->server.commands->len - 1), ==, "RSET");
  g_assert_false (f->smtp.last_seen);
}

static void
test_bdat_last_chunk_deferred (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;
  const char *last;

  f->smtp.ehlo = EHLO_CHUNKING;
  f->smtp.final = "451 4.3.0 try again later\r\n";
  open_plain_session (f);
  result = send_simple (f);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 451);
  g_assert_null (result->stop_reply);
  g_assert_false (result->unknown_outcome);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  last = g_ptr_array_index (f->server.commands, f->server.commands->len - 2);
  g_assert_true (g_str_has_suffix (last, " LAST"));
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, f->server.commands->len - 1), ==, "RSET");
}

static void
test_bdat_lost_after_last (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.ehlo = EHLO_CHUNKING;
  f->smtp.drop_after_dot = TRUE;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_error (result->error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
  g_assert_true (result->unknown_outcome);
  g_assert_null (result->final_reply);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_true (f->smtp.last_seen);
}

/* A server that offers CHUNKING and does not know BDAT gets the same
 * transaction again with DATA, and DATA from then on; a body longer than
 * the first chunk arrives whole. */
static void
test_bdat_refused (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  static const char *const bdat[] = { "502 5.5.1 command not implemented\r\n", NULL };
  g_autoptr (GString) body = g_string_new (NULL);
  g_autoptr (GString) wire = g_string_new (NULL);
  g_autoptr (OutboxSmtpSendResult) result = NULL;
  g_autoptr (OutboxSmtpSendResult) second = NULL;
  static const char *const tail[] = { "RSET",
                                      "MAIL FROM:<a@example.org>",
                                      "RCPT TO:<b@example.org>",
                                      "DATA",
                                      "MAIL FROM:<a@example.org>",
                                      "RCPT TO:<b@example.org>",
                                      "DATA",
                                      NULL };
  guint n = 0;

  make_dotted_body (80000, body, wire);
  f->smtp.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n";
  f->smtp.bdat = bdat;
  log_capture_start ();
  open_plain_session (f);
  result = send_message (f, rcpts, body->str, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_null (result->stop_reply);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);
  second = send_simple (f);
  g_assert_no_error (second->error);
  g_assert_cmpuint (reply_code (second->final_reply), ==, 250);
  g_assert_true (logs_contain ("refused BDAT"));
  log_capture_stop ();

  end_conversation (f);
  for (guint i = 0; i < f->server.commands->len; i++)
    n += g_str_has_prefix (g_ptr_array_index (f->server.commands, i), "BDAT ");
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpuint (f->server.commands->len, ==, 4 + g_strv_length ((char **) tail));
  for (guint i = 0; tail[i] != NULL; i++)
    g_assert_cmpstr (g_ptr_array_index (f->server.commands, 4 + i), ==, tail[i]);
  /* The whole body, dot-stuffed, then the second message. */
  g_assert_true (g_str_has_prefix (f->smtp.payload->str, "..line 0\r\nline 1\r\n"));
  g_assert_nonnull (strstr (f->smtp.payload->str, "line 79999\r\n.\r\nSubject: hi\r\n"));
}

/* A body stream whose end waits until the test releases it, as the
 * delivery's held-back end does. */
#define TEST_TYPE_HELD_STREAM (test_held_stream_get_type ())
G_DECLARE_FINAL_TYPE (TestHeldStream, test_held_stream, TEST, HELD_STREAM, GInputStream)

struct _TestHeldStream
{
  GInputStream parent_instance;
  GInputStream *base; /* (owned) */
  gboolean open;
  GTask *waiting; /* (owned) (nullable) the read that reached the end */
};

G_DEFINE_TYPE (TestHeldStream, test_held_stream, G_TYPE_INPUT_STREAM)

static gssize
test_held_stream_read (
    GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  return g_input_stream_read (TEST_HELD_STREAM (stream)->base, buffer, count, cancellable, error);
}

static void
test_held_stream_read_async (GInputStream *stream,
                             void *buffer,
                             gsize count,
                             int io_priority,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  TestHeldStream *self = TEST_HELD_STREAM (stream);
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;
  gssize n_read = test_held_stream_read (stream, buffer, count, cancellable, &error);

  if (n_read < 0)
    g_task_return_error (task, error);
  else if (n_read == 0 && !self->open)
    self->waiting = g_steal_pointer (&task);
  else
    g_task_return_int (task, n_read);
}

static gssize
test_held_stream_read_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_int (G_TASK (result), error);
}

static void
test_held_stream_release (TestHeldStream *self)
{
  g_autoptr (GTask) waiting = g_steal_pointer (&self->waiting);

  self->open = TRUE;
  if (waiting != NULL)
    g_task_return_int (waiting, 0);
}

static void
test_held_stream_finalize (GObject *object)
{
  TestHeldStream *self = TEST_HELD_STREAM (object);

  g_assert_null (self->waiting);
  g_clear_object (&self->base);
  G_OBJECT_CLASS (test_held_stream_parent_class)->finalize (object);
}

static void
test_held_stream_class_init (TestHeldStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_held_stream_finalize;
  stream_class->read_fn = test_held_stream_read;
  stream_class->read_async = test_held_stream_read_async;
  stream_class->read_finish = test_held_stream_read_finish;
}

static void
test_held_stream_init (TestHeldStream *self)
{
}

/* The held-back final commit: "BDAT n LAST" waits for the end of the
 * body; the chunks before it do not. */
static void
test_bdat_last_held_back (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (GString) body = g_string_new (NULL);
  g_autoptr (GString) wire = g_string_new (NULL);
  g_autoptr (TestHeldStream) held = g_object_new (TEST_TYPE_HELD_STREAM, NULL);
  g_autoptr (GAsyncResult) async_result = NULL;
  g_autoptr (OutboxSmtpSendResult) result = NULL;
  const char *last;

  make_dotted_body (40000, body, wire);
  held->base = g_memory_input_stream_new_from_data (body->str, (gssize) body->len, NULL);
  f->smtp.ehlo = EHLO_CHUNKING;
  open_plain_session (f);
  outbox_smtp_session_send_async (f->session, "a@example.org", rcpts, G_INPUT_STREAM (held),
                                  body->len, OUTBOX_SMTP_SEND_FLAGS_NONE, NULL, NULL, store_result,
                                  &async_result);
  while (held->waiting == NULL)
    g_main_context_iteration (NULL, TRUE);
  /* Nothing more happens while the end is held: the first chunk was
   * answered (the session read on), the last is not sent. */
  for (guint i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_null (async_result);
  test_held_stream_release (held);
  result = outbox_smtp_session_send_finish (f->session, wait_for (&async_result));
  g_clear_object (&async_result); /* it holds the session */
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->final_reply), ==, 250);

  end_conversation (f);
  g_assert_cmpuint (assert_chunks (f, wire->len), ==, 2);
  last = g_ptr_array_index (f->server.commands, f->server.commands->len - 1);
  g_assert_true (g_str_has_suffix (last, " LAST"));
  g_assert_true (f->smtp.chunks->len == wire->len &&
                 memcmp (f->smtp.chunks->str, wire->str, wire->len) == 0);
}

/* A body stream that yields some data and then fails. */
#define TEST_TYPE_FAILING_STREAM (test_failing_stream_get_type ())
G_DECLARE_FINAL_TYPE (TestFailingStream, test_failing_stream, TEST, FAILING_STREAM, GInputStream)

struct _TestFailingStream
{
  GInputStream parent_instance;
  gboolean data_given;
};

G_DEFINE_TYPE (TestFailingStream, test_failing_stream, G_TYPE_INPUT_STREAM)

static gssize
test_failing_stream_read (
    GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  TestFailingStream *self = TEST_FAILING_STREAM (stream);
  static const char data[] = "Subject: x\r\n\r\nhello\r\n";

  if (self->data_given)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "disk on fire");
      return -1;
    }
  self->data_given = TRUE;
  g_assert_cmpuint (count, >=, sizeof data - 1);
  memcpy (buffer, data, sizeof data - 1);
  return sizeof data - 1;
}

static void
test_failing_stream_read_async (GInputStream *stream,
                                void *buffer,
                                gsize count,
                                int io_priority,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;
  gssize n_read = test_failing_stream_read (stream, buffer, count, cancellable, &error);

  if (n_read < 0)
    g_task_return_error (task, error);
  else
    g_task_return_int (task, n_read);
}

static gssize
test_failing_stream_read_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_int (G_TASK (result), error);
}

static void
test_failing_stream_class_init (TestFailingStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  stream_class->read_fn = test_failing_stream_read;
  stream_class->read_async = test_failing_stream_read_async;
  stream_class->read_finish = test_failing_stream_read_finish;
}

static void
test_failing_stream_init (TestFailingStream *self)
{
}

static void
test_body_read_error (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", NULL };
  g_autoptr (GInputStream) body = g_object_new (TEST_TYPE_FAILING_STREAM, NULL);
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  open_plain_session (f);
  result = send_body_stream (f, rcpts, body, 100, OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_error (result->error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_false (result->unknown_outcome);
  g_assert_null (result->final_reply);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_true (g_str_has_prefix (f->smtp.payload->str, "Subject: x\r\n"));
  g_assert_false (f->smtp.dot_seen);
}

static void
test_lost_after_dot (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.drop_after_dot = TRUE;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_error (result->error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
  g_assert_true (result->unknown_outcome);
  g_assert_null (result->final_reply);
  g_assert_cmpuint (rcpt_code (result, 0), ==, 250);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_421_on_rcpt (Fixture *f, gconstpointer data)
{
  static const char *const rcpts[] = { "b@example.org", "c@example.org", NULL };
  static const char *const replies[] = { "250 2.1.5 ok\r\n", "421 4.3.0 shutting down\r\n", NULL };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->smtp.rcpt = replies;
  open_plain_session (f);
  result = send_message (f, rcpts, "x\n", OUTBOX_SMTP_SEND_FLAGS_NONE);
  g_assert_no_error (result->error);
  g_assert_cmpuint (reply_code (result->stop_reply), ==, 421);
  g_assert_cmpuint (rcpt_code (result, 1), ==, 421);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "DATA"));
}

static void
test_not_open (Fixture *f, gconstpointer data)
{
  static const OutboxServerUrl url = { OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_INSECURE, NULL,
                                       (char *) "127.0.0.1", 25 };
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->config.url = &url;
  f->session = outbox_smtp_session_new (&f->config);
  result = send_simple (f);
  g_assert_error (result->error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED);
}

/* Opening ------------------------------------------------------------- */

static void
test_greeting_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "554 5.3.2 not now\r\n";
  g_assert_false (open_session (f, "smtp+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_cmpuint (reply_code (outbox_smtp_session_get_last_reply (f->session)), ==, 554);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_multiline_reply (Fixture *f, gconstpointer data)
{
  const OutboxSmtpCaps *caps;

  f->server.greeting = "220-fake.test\r\n220-welcome\r\n220 ESMTP\r\n";
  f->smtp.ehlo = "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";
  open_plain_session (f);
  caps = outbox_smtp_session_get_caps (f->session);
  g_assert_cmpuint (caps->flags, ==,
                    OUTBOX_SMTP_CAP_PIPELINING | OUTBOX_SMTP_CAP_SIZE | OUTBOX_SMTP_CAP_8BITMIME);
  g_assert_cmpuint (caps->size_limit, ==, 1000);
}

/* What the server offers and Outbox does not use is kept for `outbox
 * account test`, and what it offered before STARTTLS is forgotten. */
static void
test_ignored_keywords (Fixture *f, gconstpointer data)
{
  const char *after_tls[] = { "PIPECONNECT", "BINARYMIME", NULL };
  g_autoptr (GError) error = NULL;

  f->server.certificate = certs.localhost.certificate;
  f->config.tls_ca_file = certs.localhost.ca_file;
  f->smtp.ehlo = "250-fake.test\r\n250-VRFY\r\n250 STARTTLS\r\n";
  f->smtp.ehlo_tls = "250-fake.test\r\n250-PIPECONNECT\r\n250-CHUNKING\r\n250 BINARYMIME\r\n";
  open_session (f, "smtp://127.0.0.1:%u", &error);
  g_assert_no_error (error);
  g_assert_cmpstrv (outbox_smtp_session_get_ignored_keywords (f->session), after_tls);
}

static void
test_bad_reply (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.greeting = "hello there\r\n";
  g_assert_false (open_session (f, "smtp+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_mixed_codes (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "250-fake.test\r\n220 PIPELINING\r\n";
  g_assert_false (open_session (f, "smtp+insecure://127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
}

static void
test_helo_fallback (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "EHLO [127.0.0.1]", "HELO [127.0.0.1]", NULL };

  f->smtp.ehlo = "502 5.5.1 what?\r\n";
  open_plain_session (f);
  g_assert_true (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  g_assert_cmpuint (outbox_smtp_session_get_caps (f->session)->flags, ==, 0);

  end_conversation (f);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_no_helo_fallback_with_auth (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "502 5.5.1 what?\r\n";
  f->config.password = "secret";
  g_assert_false (open_session (f, "smtp+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);

  end_conversation (f);
  g_assert_false (fake_server_received (&f->server, "HELO"));
}

static void
test_helo_name (Fixture *f, gconstpointer data)
{
  f->config.helo_name = "client.example.org";
  open_plain_session (f);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 0), ==, "EHLO client.example.org");
}

static void
test_timeout_rcpt (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxSmtpSendResult) result = NULL;

  f->server.hang_on = "RCPT";
  f->config.timeouts.command = 1;
  open_plain_session (f);
  result = send_simple (f);
  g_assert_error (result->error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TIMEOUT);
  g_assert_cmpstr (result->error->message, ==, "No reply to RCPT within 1 s");
  g_assert_cmpuint (rcpt_code (result, 0), ==, 0);
  g_assert_false (result->unknown_outcome);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
}

static void
test_quit (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  open_plain_session (f);
  g_assert_true (quit_session (f, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));
  g_assert_cmpuint (reply_code (outbox_smtp_session_get_last_reply (f->session)), ==, 221);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, f->server.commands->len - 1), ==, "QUIT");
}

/* STARTTLS and TLS ------------------------------------------------------ */

static void
test_starttls_forgets_caps (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 SIZE 10\r\n";
  f->smtp.ehlo_tls = "250 fake.test\r\n";
  f->server.certificate = certs.localhost.certificate;
  f->config.tls_ca_file = certs.localhost.ca_file;
  open_session (f, "smtp://127.0.0.1:%u", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (outbox_smtp_session_get_caps (f->session)->flags, ==, 0);
  g_assert_cmpuint (outbox_smtp_session_get_caps (f->session)->size_limit, ==, 0);
}

static void
test_wrong_host_cert (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = { "EHLO [127.0.0.1]", "STARTTLS", NULL };
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 STARTTLS\r\n";
  f->server.certificate = certs.other.certificate;
  f->config.tls_ca_file = certs.other.ca_file;
  g_assert_false (open_session (f, "smtp://127.0.0.1:%u", &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  end_conversation (f);
  g_assert_false (f->server.tls_up);
  fake_server_assert_commands (&f->server, expected);
}

static void
test_quit_over_tls (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.implicit_tls = TRUE;
  f->server.certificate = certs.localhost.certificate;
  f->config.tls_ca_file = certs.localhost.ca_file;
  open_session (f, "smtps://127.0.0.1:%u", &error);
  g_assert_no_error (error);
  g_assert_true (quit_session (f, &error));
  g_assert_no_error (error);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, f->server.commands->len - 1), ==, "QUIT");
}

/* Without any CA trusting the certificate, the pin alone lets it in. */
static void
test_pin_ok (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.implicit_tls = TRUE;
  f->server.certificate = certs.localhost.certificate;
  f->config.tls_ca_file = certs.other.ca_file;
  f->config.tls_fingerprint = certs.localhost.fingerprint;
  open_session (f, "smtps://127.0.0.1:%u", &error);
  g_assert_no_error (error);
  g_assert_true (g_tls_certificate_is_same (outbox_session_get_peer_certificate (OUTBOX_SESSION (f->session)),
                                            certs.localhost.certificate));
}

static void
test_pin_mismatch (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->server.implicit_tls = TRUE;
  f->server.certificate = certs.localhost.certificate;
  f->config.tls_ca_file = certs.other.ca_file;
  f->config.tls_fingerprint = certs.other.fingerprint;
  g_assert_false (open_session (f, "smtps://127.0.0.1:%u", &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 0);
}

/* AUTH ---------------------------------------------------------------- */

static void
test_auth_454 (Fixture *f, gconstpointer data)
{
  static const char *const replies[] = { "454 4.7.0 try later\r\n", NULL };
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 AUTH PLAIN\r\n";
  f->smtp.auth = replies;
  f->config.password = "secret";
  g_assert_false (open_session (f, "smtp+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_REPLY);
  g_assert_cmpuint (reply_code (outbox_smtp_session_get_last_reply (f->session)), ==, 454);
}

/* Servers log a connection dropped after a refusal as a fault ("lost
 * connection after AUTH"): the session says QUIT first, and the 535 stays
 * the reply that explains the failure. */
static void
test_auth_535_then_quit (Fixture *f, gconstpointer data)
{
  static const char *const replies[] = { "535 5.7.8 Authentication credentials invalid\r\n", NULL };
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 AUTH PLAIN\r\n";
  f->smtp.auth = replies;
  f->config.password = "wrong";
  g_assert_false (open_session (f, "smtp+insecure://me@127.0.0.1:%u", &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "535 5.7.8"));
  g_assert_cmpuint (reply_code (outbox_smtp_session_get_last_reply (f->session)), ==, 535);
  g_assert_false (outbox_session_is_open (OUTBOX_SESSION (f->session)));

  end_conversation (f);
  g_assert_cmpuint (f->server.commands->len, ==, 3);
  g_assert_true (g_str_has_prefix (g_ptr_array_index (f->server.commands, 1), "AUTH PLAIN"));
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 2), ==, "QUIT");
}

static void
test_auth_mech_configured (Fixture *f, gconstpointer data)
{
  static const char *const replies[] = { "334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n",
                                         "235 2.7.0 ok\r\n", NULL };
  g_autoptr (GError) error = NULL;

  f->smtp.ehlo = "250-fake.test\r\n250 AUTH PLAIN LOGIN\r\n";
  f->smtp.auth = replies;
  f->config.password = "secret";
  f->config.auth_mech = "LOGIN";
  open_session (f, "smtp+insecure://me@127.0.0.1:%u", &error);
  g_assert_no_error (error);

  end_conversation (f);
  g_assert_cmpstr (g_ptr_array_index (f->server.commands, 1), ==, "AUTH LOGIN");
}

/* TLS helpers ----------------------------------------------------------- */

static void
test_parse_fingerprint (void)
{
  static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
  g_autofree char *plain = g_strconcat ("SHA256:", hex, NULL);
  g_autoptr (GString) colons = g_string_new ("sha256:");
  guint8 a[32], b[32];
  g_autoptr (GError) error = NULL;

  for (gsize i = 0; i < 64; i += 2)
    g_string_append_printf (colons, i == 0 ? "%.2s" : ":%.2s", hex + i);
  g_assert_true (outbox_tls_parse_fingerprint (plain, a, &error));
  g_assert_no_error (error);
  g_assert_true (outbox_tls_parse_fingerprint (colons->str, b, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  g_assert_cmpuint (a[0], ==, 0x00);
  g_assert_cmpuint (a[31], ==, 0xff);
}

static void
test_parse_fingerprint_invalid (void)
{
  static const char *const invalid[] = {
    "",
    "sha1:00",
    "sha256:",
    "sha256:0011",
    "sha256:zz",
    "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00",
    "sha256::00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "sha256:0:0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff:",
  };
  guint8 out[32];

  for (gsize i = 0; i < G_N_ELEMENTS (invalid); i++)
    {
      g_autoptr (GError) error = NULL;
      g_assert_false (outbox_tls_parse_fingerprint (invalid[i], out, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    }
}

static void
test_certificate_fingerprint (void)
{
  g_autofree char *shown = outbox_tls_certificate_fingerprint (certs.localhost.certificate);
  guint8 a[32], b[32];

  g_assert_true (g_str_has_prefix (shown, "sha256:"));
  g_assert_cmpuint (strlen (shown), ==, strlen ("sha256:") + 32 * 3 - 1);
  g_assert_true (outbox_tls_parse_fingerprint (shown, a, NULL));
  g_assert_true (outbox_tls_parse_fingerprint (certs.localhost.fingerprint, b, NULL));
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
}

#define ADD(name, func) g_test_add (name, Fixture, NULL, fixture_setup, func, fixture_teardown)
#define ADD_CASE(name, data, func)                                                                 \
  g_test_add (name, Fixture, data, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  int status;

  g_test_init (&argc, &argv, NULL);
  g_log_set_writer_func (log_capture_writer, NULL, NULL);
  test_certs_make (&certs);

  ADD ("/smtp/session/plain-send", test_plain_send);
  ADD ("/smtp/session/one-command-at-a-time", test_one_command_at_a_time);
  ADD ("/smtp/session/pipelining", test_pipelining);
  ADD ("/smtp/session/no-rcpt-accepted", test_no_rcpt_accepted);
  ADD ("/smtp/session/mail-refused", test_mail_refused);
  ADD ("/smtp/session/pipelined-mail-refused", test_pipelined_mail_refused);
  ADD ("/smtp/session/data-refused", test_data_refused);
  ADD ("/smtp/session/final-reply-refused", test_final_reply_refused);
  ADD ("/smtp/session/reuse", test_reuse);
  ADD ("/smtp/session/reuse-without-reset", test_reuse_without_reset);
  ADD ("/smtp/session/8bit-not-offered", test_8bit_not_offered);
  ADD ("/smtp/session/8bit-offered", test_8bit_offered);
  ADD ("/smtp/session/smtputf8-not-offered", test_smtputf8_not_offered);
  ADD ("/smtp/session/size-param", test_size_param);
  ADD ("/smtp/session/size-over-limit", test_size_over_limit);
  ADD_CASE ("/smtp/session/dsn/offered", &dsn_offered, test_dsn_commands);
  ADD_CASE ("/smtp/session/dsn/never-alone", &dsn_never_alone, test_dsn_commands);
  ADD_CASE ("/smtp/session/dsn/not-offered", &dsn_not_offered, test_dsn_commands);
  ADD ("/smtp/session/dsn/required-not-offered", test_dsn_required_not_offered);
  ADD ("/smtp/session/dsn/required-alone", test_dsn_required_alone);
  ADD_CASE ("/smtp/session/dsn/utf8-orcpt", &dsn_utf8_orcpt, test_dsn_commands);
  ADD ("/smtp/session/dsn/long-orcpt-left-out", test_dsn_long_orcpt_left_out);
  ADD ("/smtp/session/dsn/rcpt-parameters-refused", test_dsn_rcpt_parameters_refused);
  ADD ("/smtp/session/address-injection", test_address_injection);
  ADD ("/smtp/session/body-several-blocks", test_body_several_blocks);
  ADD ("/smtp/session/body-read-error", test_body_read_error);
  ADD ("/smtp/session/bdat/small", test_bdat_small);
  ADD ("/smtp/session/bdat/several-chunks", test_bdat_several_chunks);
  ADD ("/smtp/session/bdat/chunk-boundary", test_bdat_chunk_boundary);
  ADD ("/smtp/session/bdat/middle-chunk-refused", test_bdat_middle_chunk_refused);
  ADD ("/smtp/session/bdat/last-chunk-deferred", test_bdat_last_chunk_deferred);
  ADD ("/smtp/session/bdat/lost-after-last", test_bdat_lost_after_last);
  ADD ("/smtp/session/bdat/refused", test_bdat_refused);
  ADD ("/smtp/session/bdat/last-held-back", test_bdat_last_held_back);
  ADD ("/smtp/session/lost-after-dot", test_lost_after_dot);
  ADD ("/smtp/session/421-on-rcpt", test_421_on_rcpt);
  ADD ("/smtp/session/not-open", test_not_open);
  ADD ("/smtp/session/greeting-refused", test_greeting_refused);
  ADD ("/smtp/session/multiline-reply", test_multiline_reply);
  ADD ("/smtp/session/ignored-keywords", test_ignored_keywords);
  ADD ("/smtp/session/bad-reply", test_bad_reply);
  ADD ("/smtp/session/mixed-codes", test_mixed_codes);
  ADD ("/smtp/session/helo-fallback", test_helo_fallback);
  ADD ("/smtp/session/no-helo-fallback-with-auth", test_no_helo_fallback_with_auth);
  ADD ("/smtp/session/helo-name", test_helo_name);
  ADD ("/smtp/session/timeout-rcpt", test_timeout_rcpt);
  ADD ("/smtp/session/quit", test_quit);
  ADD ("/smtp/session/starttls-forgets-caps", test_starttls_forgets_caps);
  ADD ("/smtp/session/wrong-host-cert", test_wrong_host_cert);
  ADD ("/smtp/session/quit-over-tls", test_quit_over_tls);
  ADD ("/smtp/session/pin-ok", test_pin_ok);
  ADD ("/smtp/session/pin-mismatch", test_pin_mismatch);
  ADD ("/smtp/session/auth-454", test_auth_454);
  ADD ("/smtp/session/auth-535-then-quit", test_auth_535_then_quit);
  ADD ("/smtp/session/auth-mech-configured", test_auth_mech_configured);
  g_test_add_func ("/smtp/tls/parse-fingerprint", test_parse_fingerprint);
  g_test_add_func ("/smtp/tls/parse-fingerprint-invalid", test_parse_fingerprint_invalid);
  g_test_add_func ("/smtp/tls/certificate-fingerprint", test_certificate_fingerprint);

  status = g_test_run ();

  test_certs_clear (&certs);
  return status;
}
