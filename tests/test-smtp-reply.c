/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-smtp-reply.h"

/* Feeds @lines (NULL-terminated) and returns the reply completed by the
 * last one; every earlier line must leave the reply incomplete. */
static OutboxSmtpReply *
parse_lines (const char *const *lines)
{
  g_autoptr (OutboxSmtpReplyParser) parser = outbox_smtp_reply_parser_new ();
  OutboxSmtpReply *reply = NULL;

  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;

      g_assert_null (reply);
      g_assert_true (outbox_smtp_reply_parser_feed (parser, lines[i], strlen (lines[i]), &reply,
                                                    &error));
      g_assert_no_error (error);
    }

  g_assert_nonnull (reply);
  return reply;
}

static OutboxSmtpReply *
parse_line (const char *line)
{
  const char *lines[] = { line, NULL };

  return parse_lines (lines);
}

/* Feeds @lines and checks that the last one is refused as a protocol
 * error whose message quotes @quoted. */
static void
assert_lines_refused (const char *const *lines, gsize last_len, const char *quoted)
{
  g_autoptr (OutboxSmtpReplyParser) parser = outbox_smtp_reply_parser_new ();
  g_autoptr (OutboxSmtpReply) reply = NULL;
  g_autoptr (GError) error = NULL;
  gsize i;

  for (i = 0; lines[i + 1] != NULL; i++)
    {
      g_assert_true (outbox_smtp_reply_parser_feed (parser, lines[i], strlen (lines[i]), &reply,
                                                    &error));
      g_assert_null (reply);
    }

  g_assert_false (outbox_smtp_reply_parser_feed (parser, lines[i], last_len, &reply, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_null (reply);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  if (quoted != NULL && strstr (error->message, quoted) == NULL)
    g_assert_cmpstr (error->message, ==, quoted);
}

static void
assert_line_refused (const char *line)
{
  const char *lines[] = { line, NULL };

  assert_lines_refused (lines, strlen (line), line);
}

static void
test_single_line (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250 2.1.0 Ok");

  g_assert_cmpuint (reply->code, ==, 250);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 1);
  g_assert_cmpstr (reply->lines[0], ==, "2.1.0 Ok");
}

static void
test_multiline (void)
{
  const char *lines[] = { "250-mail.example.org", "250-PIPELINING", "250 8BITMIME", NULL };
  g_autoptr (OutboxSmtpReply) reply = parse_lines (lines);

  g_assert_cmpuint (reply->code, ==, 250);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 3);
  g_assert_cmpstr (reply->lines[0], ==, "mail.example.org");
  g_assert_cmpstr (reply->lines[1], ==, "PIPELINING");
  g_assert_cmpstr (reply->lines[2], ==, "8BITMIME");
}

static void
test_code_alone (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250");

  g_assert_cmpuint (reply->code, ==, 250);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 1);
  g_assert_cmpstr (reply->lines[0], ==, "");
}

static void
test_code_and_space (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("354 ");

  g_assert_cmpuint (reply->code, ==, 354);
  g_assert_cmpstr (reply->lines[0], ==, "");
}

static void
test_parser_reused (void)
{
  g_autoptr (OutboxSmtpReplyParser) parser = outbox_smtp_reply_parser_new ();
  g_autoptr (OutboxSmtpReply) first = NULL;
  g_autoptr (OutboxSmtpReply) second = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_smtp_reply_parser_feed (parser, "250 Ok", 6, &first, &error));
  g_assert_true (outbox_smtp_reply_parser_feed (parser, "550-5.1.1 no", 12, &second, &error));
  g_assert_null (second);
  g_assert_true (outbox_smtp_reply_parser_feed (parser, "550 such user", 13, &second, &error));
  g_assert_no_error (error);
  g_assert_nonnull (second);
  g_assert_cmpuint (second->code, ==, 550);
  g_assert_cmpuint (g_strv_length (second->lines), ==, 2);
}

static void
test_mismatched_codes (void)
{
  const char *lines[] = { "250-first", "251 second", NULL };

  assert_lines_refused (lines, strlen (lines[1]), "251 second");
}

static void
test_first_digit_one (void)
{
  assert_line_refused ("150 Opening");
}

static void
test_first_digit_six (void)
{
  assert_line_refused ("650 no");
}

static void
test_second_digit_six (void)
{
  assert_line_refused ("260 no");
}

static void
test_non_digits (void)
{
  assert_line_refused ("2x0 no");
}

static void
test_too_short (void)
{
  assert_line_refused ("25");
}

static void
test_empty_line (void)
{
  const char *lines[] = { "", NULL };

  assert_lines_refused (lines, 0, NULL);
}

static void
test_missing_separator (void)
{
  assert_line_refused ("250x");
}

static void
test_tab_separator (void)
{
  const char *lines[] = { "250\tOk", NULL };

  assert_lines_refused (lines, 6, "“250?Ok”");
}

static void
test_over_long_line (void)
{
  g_autofree char *line = g_strnfill (OUTBOX_SMTP_REPLY_MAX_LINE + 1, 'x');
  const char *lines[] = { line, NULL };

  memcpy (line, "250 ", 4);
  assert_lines_refused (lines, strlen (line), "250 xxxx");
}

static void
test_longest_line_accepted (void)
{
  g_autofree char *line = g_strnfill (OUTBOX_SMTP_REPLY_MAX_LINE, 'x');
  g_autoptr (OutboxSmtpReply) reply = NULL;

  memcpy (line, "250 ", 4);
  reply = parse_line (line);
  g_assert_cmpuint (strlen (reply->lines[0]), ==, OUTBOX_SMTP_REPLY_MAX_LINE - 4);
}

static void
test_too_many_lines (void)
{
  g_autoptr (GPtrArray) lines = g_ptr_array_new ();

  for (guint i = 0; i < OUTBOX_SMTP_REPLY_MAX_LINES; i++)
    g_ptr_array_add (lines, (gpointer) "250-more");
  g_ptr_array_add (lines, (gpointer) "250 last");
  g_ptr_array_add (lines, NULL);

  assert_lines_refused ((const char *const *) lines->pdata, 8, "250 last");
}

static void
test_most_lines_accepted (void)
{
  g_autoptr (GPtrArray) lines = g_ptr_array_new ();
  g_autoptr (OutboxSmtpReply) reply = NULL;

  for (guint i = 1; i < OUTBOX_SMTP_REPLY_MAX_LINES; i++)
    g_ptr_array_add (lines, (gpointer) "250-more");
  g_ptr_array_add (lines, (gpointer) "250 last");
  g_ptr_array_add (lines, NULL);

  reply = parse_lines ((const char *const *) lines->pdata);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, OUTBOX_SMTP_REPLY_MAX_LINES);
}

static void
test_error_resets_parser (void)
{
  g_autoptr (OutboxSmtpReplyParser) parser = outbox_smtp_reply_parser_new ();
  g_autoptr (OutboxSmtpReply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_smtp_reply_parser_feed (parser, "250-a", 5, &reply, &error));
  g_assert_false (outbox_smtp_reply_parser_feed (parser, "251 b", 5, &reply, &error));
  g_clear_error (&error);
  g_assert_true (outbox_smtp_reply_parser_feed (parser, "221 bye", 7, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (reply->code, ==, 221);
  g_assert_cmpuint (g_strv_length (reply->lines), ==, 1);
}

static void
test_control_characters_sanitised (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("550 bad\x1b[31m\tuser\x7f\xc2\x85!");

  g_assert_cmpstr (reply->lines[0], ==, "bad?[31m?user?" "?!");
}

static void
test_embedded_nul_sanitised (void)
{
  g_autoptr (OutboxSmtpReplyParser) parser = outbox_smtp_reply_parser_new ();
  g_autoptr (OutboxSmtpReply) reply = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_smtp_reply_parser_feed (parser, "250 a\0b", 7, &reply, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (reply->lines[0], ==, "a?b");
}

static void
test_invalid_utf8 (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("550 caf\xe9 \xff ok");

  g_assert_true (g_utf8_validate (reply->lines[0], -1, NULL));
  g_assert_cmpstr (reply->lines[0], ==, "caf\xef\xbf\xbd \xef\xbf\xbd ok");
}

static void
test_valid_utf8_kept (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250 café ✓");

  g_assert_cmpstr (reply->lines[0], ==, "café ✓");
}

static void
test_error_message_sanitised (void)
{
  const char line[] = "999 \r\n\xff";
  const char *lines[] = { line, NULL };

  assert_lines_refused (lines, sizeof line - 1, "“999 ??\xef\xbf\xbd”");
}

static void
test_bare_cr_removed (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250 Ok\r");

  g_assert_cmpstr (reply->lines[0], ==, "Ok");
}

static void
test_bare_cr_after_code (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250\r");

  g_assert_cmpuint (reply->code, ==, 250);
  g_assert_cmpstr (reply->lines[0], ==, "");
}

static void
test_inner_cr_sanitised (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250 a\rb\r\r");

  g_assert_cmpstr (reply->lines[0], ==, "a?b?");
}

static void
test_to_string (void)
{
  const char *lines[] = { "550-5.1.1 <x>:", "550 no such user", NULL };
  g_autoptr (OutboxSmtpReply) reply = parse_lines (lines);
  g_autofree char *text = outbox_smtp_reply_to_string (reply);

  g_assert_cmpstr (text, ==, "550 5.1.1 <x>: no such user");
}

static void
test_to_string_code_alone (void)
{
  g_autoptr (OutboxSmtpReply) reply = parse_line ("250");
  g_autofree char *text = outbox_smtp_reply_to_string (reply);

  g_assert_cmpstr (text, ==, "250");
}

static void
test_new (void)
{
  g_autoptr (OutboxSmtpReply) reply = outbox_smtp_reply_new (421, "4.4.2 timed\nout");
  g_autofree char *text = outbox_smtp_reply_to_string (reply);

  g_assert_cmpuint (reply->code, ==, 421);
  g_assert_cmpstr (text, ==, "421 4.4.2 timed?out");
}

static void
test_is_positive (void)
{
  g_autoptr (OutboxSmtpReply) ok = outbox_smtp_reply_new (354, NULL);
  g_autoptr (OutboxSmtpReply) deferred = outbox_smtp_reply_new (451, NULL);

  g_assert_true (outbox_smtp_reply_is_positive (ok));
  g_assert_false (outbox_smtp_reply_is_positive (deferred));
}

static void
parse_caps (const char *const *lines, OutboxSmtpCaps *caps)
{
  g_autoptr (OutboxSmtpReply) reply = parse_lines (lines);

  memset (caps, 0xff, sizeof *caps);
  outbox_smtp_caps_parse (reply, caps);
}

/* Every keyword caps_parse() does not know, once, upper-cased, in order;
 * nothing that is not an ehlo-keyword, so the names are safe to show. */
static void
test_caps_ignored_keywords (void)
{
  const char *lines[] = { "250-mx.test greets you", "250-PIPELINING",
                          "250-pipeconnect",        "250-X-EXPS GSSAPI NTLM",
                          "250-SIZE 100",           "250-AUTH PLAIN",
                          "250-AUTH=LOGIN",         "250-chunking",
                          "250-PIPECONNECT",        "250-BAD\x01WORD",
                          "250- LEADING-SPACE",     "250-VRFY",
                          "250 BINARYMIME",         NULL };
  const char *expected[] = { "PIPECONNECT", "X-EXPS", "VRFY", "BINARYMIME", NULL };
  g_autoptr (OutboxSmtpReply) reply = parse_lines (lines);
  g_auto (GStrv) ignored = outbox_smtp_caps_ignored_keywords (reply);

  g_assert_cmpstrv (ignored, expected);
}

static void
test_caps_greeting_skipped (void)
{
  const char *lines[] = { "250 STARTTLS", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, 0);
  g_assert_cmpuint (caps.size_limit, ==, 0);
  g_assert_cmpuint (caps.auth_mechs, ==, 0);
}

static void
test_caps_keywords (void)
{
  const struct
  {
    const char *keyword;
    OutboxSmtpCapFlags flag;
  } keywords[] = {
    { "250 PIPELINING", OUTBOX_SMTP_CAP_PIPELINING },
    { "250 8BITMIME", OUTBOX_SMTP_CAP_8BITMIME },
    { "250 SMTPUTF8", OUTBOX_SMTP_CAP_SMTPUTF8 },
    { "250 STARTTLS", OUTBOX_SMTP_CAP_STARTTLS },
    { "250 ENHANCEDSTATUSCODES", OUTBOX_SMTP_CAP_ENHANCEDSTATUSCODES },
    { "250 CHUNKING", OUTBOX_SMTP_CAP_CHUNKING },
    { "250 dsn", OUTBOX_SMTP_CAP_DSN },
    { "250 SIZE", OUTBOX_SMTP_CAP_SIZE },
    { "250 AUTH PLAIN", OUTBOX_SMTP_CAP_AUTH },
    { "250 X-UNKNOWN PIPELINING", 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (keywords); i++)
    {
      const char *lines[] = { "250-mail.example.org", keywords[i].keyword, NULL };
      OutboxSmtpCaps caps;

      parse_caps (lines, &caps);
      g_assert_cmpuint (caps.flags, ==, keywords[i].flag);
    }
}

static void
test_caps_case_insensitive (void)
{
  const char *lines[] = { "250-mail.example.org", "250-pipelining", "250-StartTLS",
                          "250 auth plain", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==,
                    OUTBOX_SMTP_CAP_PIPELINING | OUTBOX_SMTP_CAP_STARTTLS | OUTBOX_SMTP_CAP_AUTH);
  g_assert_cmpuint (caps.auth_mechs, ==, OUTBOX_SMTP_AUTH_PLAIN);
}

static void
test_caps_auth_mechanisms (void)
{
  const char *lines[] = { "250-mail.example.org",
                          "250 AUTH CRAM-MD5 PLAIN  LOGIN xoauth2 SCRAM-SHA-256-PLUS scram-sha-1",
                          NULL };
  OutboxSmtpCaps caps;
  g_auto (GStrv) names = NULL;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, OUTBOX_SMTP_CAP_AUTH);
  g_assert_cmpuint (caps.auth_mechs, ==,
                    OUTBOX_SMTP_AUTH_PLAIN | OUTBOX_SMTP_AUTH_LOGIN | OUTBOX_SMTP_AUTH_XOAUTH2 |
                        OUTBOX_SMTP_AUTH_SCRAM_SHA_256_PLUS | OUTBOX_SMTP_AUTH_SCRAM_SHA_1);
  names = outbox_smtp_auth_mechs_to_strv (caps.auth_mechs);
  g_assert_cmpstrv (names, ((const char *const[]){ "PLAIN", "LOGIN", "SCRAM-SHA-1",
                                                    "SCRAM-SHA-256-PLUS", "XOAUTH2", NULL }));
}

static void
test_caps_auth_none_usable (void)
{
  const char *lines[] = { "250-mail.example.org", "250 AUTH CRAM-MD5", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, OUTBOX_SMTP_CAP_AUTH);
  g_assert_cmpuint (caps.auth_mechs, ==, 0);
}

static void
test_caps_legacy_auth (void)
{
  const char *lines[] = { "250-mail.example.org", "250 AUTH=LOGIN PLAIN", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, OUTBOX_SMTP_CAP_AUTH);
  g_assert_cmpuint (caps.auth_mechs, ==, OUTBOX_SMTP_AUTH_PLAIN | OUTBOX_SMTP_AUTH_LOGIN);
}

static void
test_caps_legacy_auth_single (void)
{
  const char *lines[] = { "250-mail.example.org", "250 AUTH=PLAIN", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.auth_mechs, ==, OUTBOX_SMTP_AUTH_PLAIN);
}

static void
test_caps_auth_merged (void)
{
  const char *lines[] = { "250-mail.example.org", "250-AUTH LOGIN", "250 AUTH=PLAIN", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.auth_mechs, ==, OUTBOX_SMTP_AUTH_PLAIN | OUTBOX_SMTP_AUTH_LOGIN);
}

static void
test_caps_size_limit (void)
{
  const char *lines[] = { "250-mail.example.org", "250 SIZE 35882577", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, OUTBOX_SMTP_CAP_SIZE);
  g_assert_cmpuint (caps.size_limit, ==, 35882577);
}

static void
test_caps_size_without_argument (void)
{
  const char *lines[] = { "250-mail.example.org", "250 SIZE", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, OUTBOX_SMTP_CAP_SIZE);
  g_assert_cmpuint (caps.size_limit, ==, 0);
}

static void
test_caps_size_zero (void)
{
  const char *lines[] = { "250-mail.example.org", "250 SIZE 0", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, OUTBOX_SMTP_CAP_SIZE);
  g_assert_cmpuint (caps.size_limit, ==, 0);
}

static void
test_caps_size_malformed (void)
{
  const char *lines[] = { "250-mail.example.org", "250-SIZE lots", "250 SIZE -5", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, 0);
  g_assert_cmpuint (caps.size_limit, ==, 0);
}

static void
test_caps_size_huge (void)
{
  const char *lines[] = { "250-mail.example.org", "250 SIZE 18446744073709551615", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.size_limit, ==, G_MAXUINT64);
}

static void
test_caps_full_reply (void)
{
  const char *lines[] = {
    "250-mail.example.org Hello",
    "250-PIPELINING",
    "250-SIZE 10240000",
    "250-ETRN",
    "250-STARTTLS",
    "250-AUTH PLAIN LOGIN",
    "250-AUTH=PLAIN LOGIN",
    "250-ENHANCEDSTATUSCODES",
    "250-8BITMIME",
    "250-DSN",
    "250-SMTPUTF8",
    "250 CHUNKING",
    NULL,
  };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==,
                    OUTBOX_SMTP_CAP_PIPELINING | OUTBOX_SMTP_CAP_SIZE | OUTBOX_SMTP_CAP_STARTTLS |
                      OUTBOX_SMTP_CAP_AUTH | OUTBOX_SMTP_CAP_ENHANCEDSTATUSCODES |
                      OUTBOX_SMTP_CAP_8BITMIME | OUTBOX_SMTP_CAP_SMTPUTF8 |
                      OUTBOX_SMTP_CAP_CHUNKING | OUTBOX_SMTP_CAP_DSN);
  g_assert_cmpuint (caps.size_limit, ==, 10240000);
  g_assert_cmpuint (caps.auth_mechs, ==, OUTBOX_SMTP_AUTH_PLAIN | OUTBOX_SMTP_AUTH_LOGIN);
}

static void
test_caps_keyword_prefix_not_matched (void)
{
  const char *lines[] = { "250-mail.example.org", "250-STARTTLSX", "250 PIPELININGS", NULL };
  OutboxSmtpCaps caps;

  parse_caps (lines, &caps);
  g_assert_cmpuint (caps.flags, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/smtp/reply/single-line", test_single_line);
  g_test_add_func ("/smtp/reply/multiline", test_multiline);
  g_test_add_func ("/smtp/reply/code-alone", test_code_alone);
  g_test_add_func ("/smtp/reply/code-and-space", test_code_and_space);
  g_test_add_func ("/smtp/reply/parser-reused", test_parser_reused);
  g_test_add_func ("/smtp/reply/mismatched-codes", test_mismatched_codes);
  g_test_add_func ("/smtp/reply/first-digit-one", test_first_digit_one);
  g_test_add_func ("/smtp/reply/first-digit-six", test_first_digit_six);
  g_test_add_func ("/smtp/reply/second-digit-six", test_second_digit_six);
  g_test_add_func ("/smtp/reply/non-digits", test_non_digits);
  g_test_add_func ("/smtp/reply/too-short", test_too_short);
  g_test_add_func ("/smtp/reply/empty-line", test_empty_line);
  g_test_add_func ("/smtp/reply/missing-separator", test_missing_separator);
  g_test_add_func ("/smtp/reply/tab-separator", test_tab_separator);
  g_test_add_func ("/smtp/reply/over-long-line", test_over_long_line);
  g_test_add_func ("/smtp/reply/longest-line-accepted", test_longest_line_accepted);
  g_test_add_func ("/smtp/reply/too-many-lines", test_too_many_lines);
  g_test_add_func ("/smtp/reply/most-lines-accepted", test_most_lines_accepted);
  g_test_add_func ("/smtp/reply/error-resets-parser", test_error_resets_parser);
  g_test_add_func ("/smtp/reply/sanitise/control-characters", test_control_characters_sanitised);
  g_test_add_func ("/smtp/reply/sanitise/embedded-nul", test_embedded_nul_sanitised);
  g_test_add_func ("/smtp/reply/sanitise/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/smtp/reply/sanitise/valid-utf8-kept", test_valid_utf8_kept);
  g_test_add_func ("/smtp/reply/sanitise/error-message", test_error_message_sanitised);
  g_test_add_func ("/smtp/reply/sanitise/inner-cr", test_inner_cr_sanitised);
  g_test_add_func ("/smtp/reply/bare-cr-removed", test_bare_cr_removed);
  g_test_add_func ("/smtp/reply/bare-cr-after-code", test_bare_cr_after_code);
  g_test_add_func ("/smtp/reply/to-string", test_to_string);
  g_test_add_func ("/smtp/reply/to-string-code-alone", test_to_string_code_alone);
  g_test_add_func ("/smtp/reply/new", test_new);
  g_test_add_func ("/smtp/reply/is-positive", test_is_positive);
  g_test_add_func ("/smtp/caps/greeting-skipped", test_caps_greeting_skipped);
  g_test_add_func ("/smtp/caps/keywords", test_caps_keywords);
  g_test_add_func ("/smtp/caps/case-insensitive", test_caps_case_insensitive);
  g_test_add_func ("/smtp/caps/auth-mechanisms", test_caps_auth_mechanisms);
  g_test_add_func ("/smtp/caps/auth-none-usable", test_caps_auth_none_usable);
  g_test_add_func ("/smtp/caps/legacy-auth", test_caps_legacy_auth);
  g_test_add_func ("/smtp/caps/legacy-auth-single", test_caps_legacy_auth_single);
  g_test_add_func ("/smtp/caps/auth-merged", test_caps_auth_merged);
  g_test_add_func ("/smtp/caps/size-limit", test_caps_size_limit);
  g_test_add_func ("/smtp/caps/size-without-argument", test_caps_size_without_argument);
  g_test_add_func ("/smtp/caps/size-zero", test_caps_size_zero);
  g_test_add_func ("/smtp/caps/size-malformed", test_caps_size_malformed);
  g_test_add_func ("/smtp/caps/size-huge", test_caps_size_huge);
  g_test_add_func ("/smtp/caps/full-reply", test_caps_full_reply);
  g_test_add_func ("/smtp/caps/ignored-keywords", test_caps_ignored_keywords);
  g_test_add_func ("/smtp/caps/keyword-prefix-not-matched", test_caps_keyword_prefix_not_matched);

  return g_test_run ();
}
