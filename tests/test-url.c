/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-error.h"
#include "outbox-url.h"

static void
log_url (const char *text)
{
  g_autofree char *escaped = g_strescape (text, NULL);

  g_test_message ("URL: %s", escaped);
}

static OutboxServerUrl *
parse_valid (const char *text)
{
  g_autoptr (GError) error = NULL;
  OutboxServerUrl *url;

  log_url (text);
  url = outbox_server_url_parse (text, &error);
  g_assert_no_error (error);
  g_assert_nonnull (url);

  return url;
}

/* Checks that @text is refused with a message containing @problem. */
static void
assert_refused (const char *text, const char *problem)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxServerUrl) url = NULL;

  log_url (text);
  url = outbox_server_url_parse (text, &error);
  g_assert_null (url);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  if (strstr (error->message, problem) == NULL)
    g_assert_cmpstr (error->message, ==, problem);
}

static void
assert_canonical (const char *text, const char *canonical)
{
  g_autoptr (OutboxServerUrl) url = parse_valid (text);
  g_autofree char *written = outbox_server_url_to_string (url);

  g_assert_cmpstr (written, ==, canonical);
}

static void
test_smtps (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://me@mail.example.org");

  g_assert_cmpint (url->protocol, ==, OUTBOX_PROTOCOL_SMTP);
  g_assert_cmpint (url->security, ==, OUTBOX_SECURITY_TLS);
  g_assert_cmpstr (url->user, ==, "me");
  g_assert_cmpstr (url->host, ==, "mail.example.org");
  g_assert_cmpuint (url->port, ==, 465);
}

static void
test_smtp_starttls (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtp://me@mail.example.org");

  g_assert_cmpint (url->protocol, ==, OUTBOX_PROTOCOL_SMTP);
  g_assert_cmpint (url->security, ==, OUTBOX_SECURITY_STARTTLS);
  g_assert_cmpuint (url->port, ==, 587);
}

static void
test_smtp_insecure (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtp+insecure://localhost:2525");

  g_assert_cmpint (url->protocol, ==, OUTBOX_PROTOCOL_SMTP);
  g_assert_cmpint (url->security, ==, OUTBOX_SECURITY_INSECURE);
  g_assert_null (url->user);
  g_assert_cmpuint (url->port, ==, 2525);
}

static void
test_default_ports (void)
{
  const struct
  {
    const char *url;
    OutboxProtocol protocol;
    OutboxSecurity security;
    guint16 port;
  } cases[] = {
    { "smtps://h", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_TLS, 465 },
    { "smtp://h", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_STARTTLS, 587 },
    { "smtp+insecure://h", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_INSECURE, 25 },
    { "imaps://h", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_TLS, 993 },
    { "imap://h", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_STARTTLS, 143 },
    { "imap+insecure://h", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_INSECURE, 143 },
    { "pop3s://h", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_TLS, 995 },
    { "pop3://h", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_STARTTLS, 110 },
    { "pop3+insecure://h", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_INSECURE, 110 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (OutboxServerUrl) url = parse_valid (cases[i].url);

      g_assert_cmpint (url->protocol, ==, cases[i].protocol);
      g_assert_cmpint (url->security, ==, cases[i].security);
      g_assert_cmpuint (url->port, ==, cases[i].port);
    }
}

static void
test_scheme_case_insensitive (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("SMTPS://mail.example.org");

  g_assert_cmpint (url->security, ==, OUTBOX_SECURITY_TLS);
}

static void
test_host_lower_case (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://Mail.Example.ORG");

  g_assert_cmpstr (url->host, ==, "mail.example.org");
}

static void
test_idn_host (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://mail.BÜCHER.example");

  g_assert_cmpstr (url->host, ==, "mail.bücher.example");
}

static void
test_explicit_port (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://mail.example.org:1465");

  g_assert_cmpuint (url->port, ==, 1465);
}

static void
test_highest_port (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://mail.example.org:65535");

  g_assert_cmpuint (url->port, ==, 65535);
}

static void
test_trailing_slash (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://mail.example.org:465/");

  g_assert_cmpstr (url->host, ==, "mail.example.org");
}

static void
test_user_percent_decoded (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtp://me%40example.org@mail.example.org");

  g_assert_cmpstr (url->user, ==, "me@example.org");
  g_assert_cmpstr (url->host, ==, "mail.example.org");
}

static void
test_user_with_literal_at (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtp://me@example.org@mail.example.org");

  g_assert_cmpstr (url->user, ==, "me@example.org");
  g_assert_cmpstr (url->host, ==, "mail.example.org");
}

static void
test_user_with_encoded_colon (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtp://domain%5Cme%3Ax@mail.example.org");

  g_assert_cmpstr (url->user, ==, "domain\\me:x");
}

static void
test_ipv4_host (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtp+insecure://192.0.2.1:25");

  g_assert_cmpstr (url->host, ==, "192.0.2.1");
}

static void
test_ipv6_host (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("smtps://me@[2001:DB8:0::1]:2465");

  g_assert_cmpstr (url->user, ==, "me");
  g_assert_cmpstr (url->host, ==, "2001:db8::1");
  g_assert_cmpuint (url->port, ==, 2465);
}

static void
test_ipv6_host_default_port (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("imaps://[::1]");

  g_assert_cmpstr (url->host, ==, "::1");
  g_assert_cmpuint (url->port, ==, 993);
}

static void
test_to_string_adds_port (void)
{
  assert_canonical ("smtps://me@mail.example.org", "smtps://me@mail.example.org:465");
}

static void
test_to_string_without_user (void)
{
  assert_canonical ("pop3://Mail.Example.org", "pop3://mail.example.org:110");
}

static void
test_to_string_encodes_user (void)
{
  assert_canonical ("smtp://me@example.org@mail.example.org:25/",
                    "smtp://me%40example.org@mail.example.org:25");
}

static void
test_to_string_encodes_colon (void)
{
  assert_canonical ("imap://a%3Ab%2Fc@h", "imap://a%3Ab%2Fc@h:143");
}

static void
test_to_string_ipv6 (void)
{
  assert_canonical ("smtp+insecure://[::1]:2525", "smtp+insecure://[::1]:2525");
}

static void
test_to_string_round_trip (void)
{
  const char *urls[] = {
    "smtps://me%40example.org@mail.example.org:465",
    "imap+insecure://%25%20x@[2001:db8::5]:1143",
    "pop3s://jörg@bücher.example:995",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (urls); i++)
    {
      g_autoptr (OutboxServerUrl) url = parse_valid (urls[i]);
      g_autofree char *written = outbox_server_url_to_string (url);
      g_autoptr (OutboxServerUrl) again = parse_valid (written);

      g_assert_cmpstr (written, ==, urls[i]);
      g_assert_cmpstr (again->user, ==, url->user);
      g_assert_cmpstr (again->host, ==, url->host);
      g_assert_cmpuint (again->port, ==, url->port);
    }
}

static void
test_copy (void)
{
  g_autoptr (OutboxServerUrl) url = parse_valid ("imaps://me@imap.example.org:1993");
  g_autoptr (OutboxServerUrl) copy = outbox_server_url_copy (url);

  g_assert_true (copy != url);
  g_assert_cmpint (copy->protocol, ==, OUTBOX_PROTOCOL_IMAP);
  g_assert_cmpint (copy->security, ==, OUTBOX_SECURITY_TLS);
  g_assert_cmpstr (copy->user, ==, "me");
  g_assert_true (copy->user != url->user);
  g_assert_cmpstr (copy->host, ==, "imap.example.org");
  g_assert_cmpuint (copy->port, ==, 1993);
}

static void
test_protocol_names (void)
{
  g_assert_cmpstr (outbox_protocol_to_string (OUTBOX_PROTOCOL_SMTP), ==, "smtp");
  g_assert_cmpstr (outbox_protocol_to_string (OUTBOX_PROTOCOL_IMAP), ==, "imap");
  g_assert_cmpstr (outbox_protocol_to_string (OUTBOX_PROTOCOL_POP3), ==, "pop3");
}

static void
assert_loopback (const char *text, gboolean expected)
{
  g_autoptr (OutboxServerUrl) url = parse_valid (text);

  g_assert_cmpint (outbox_server_url_is_loopback (url), ==, expected);
}

static void
test_loopback_localhost (void)
{
  assert_loopback ("smtp+insecure://LocalHost:25", TRUE);
}

static void
test_loopback_ipv4 (void)
{
  assert_loopback ("smtp+insecure://127.0.0.1:25", TRUE);
  assert_loopback ("smtp+insecure://127.255.0.9:25", TRUE);
}

static void
test_loopback_ipv6 (void)
{
  assert_loopback ("smtp+insecure://[::1]:25", TRUE);
}

static void
test_not_loopback (void)
{
  assert_loopback ("smtp+insecure://128.0.0.1:25", FALSE);
  assert_loopback ("smtp+insecure://[::2]:25", FALSE);
  assert_loopback ("smtp+insecure://localhost.example.org:25", FALSE);
  assert_loopback ("smtp+insecure://127.0.0.1.example.org:25", FALSE);
}

static void
test_unknown_scheme (void)
{
  assert_refused ("smtpx://mail.example.org",
                  "Unknown URL scheme “smtpx”; use smtps://, smtp:// or smtp+insecure://");
}

static void
test_http_scheme (void)
{
  assert_refused ("https://mail.example.org", "Unknown URL scheme “https”");
}

static void
test_no_scheme (void)
{
  assert_refused ("mail.example.org", "write it as smtps://user@mail.example.org");
}

static void
test_password (void)
{
  assert_refused ("smtps://me:secret@mail.example.org", "--password-stdin");
}

static void
test_password_not_shown (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxServerUrl) url = outbox_server_url_parse ("smtps://me:s3cr3t@h", &error);

  g_assert_null (url);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_null (strstr (error->message, "s3cr3t"));
}

static void
test_password_without_scheme_not_shown (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxServerUrl) url = outbox_server_url_parse ("me:s3cr3t@h", &error);

  g_assert_null (url);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_null (strstr (error->message, "s3cr3t"));
}

static void
test_empty_password (void)
{
  assert_refused ("smtps://me:@mail.example.org", "--password-stdin");
}

static void
test_empty_user (void)
{
  assert_refused ("smtps://@mail.example.org", "empty user name");
}

static void
test_bad_percent_escape (void)
{
  assert_refused ("smtps://me%4@mail.example.org", "percent escape");
}

static void
test_percent_encoded_nul (void)
{
  assert_refused ("smtps://me%00@mail.example.org", "percent escape");
}

static void
test_percent_encoded_newline (void)
{
  assert_refused ("smtps://me%0D%0AQUIT@mail.example.org", "control characters");
}

static void
test_user_too_long (void)
{
  g_autofree char *user = g_strnfill (256, 'u');
  g_autofree char *text = g_strdup_printf ("smtps://%s@mail.example.org", user);

  assert_refused (text, "longer than 255 octets");
}

static void
test_no_host (void)
{
  assert_refused ("smtps://", "no host name");
}

static void
test_no_host_with_port (void)
{
  assert_refused ("smtps://me@:465", "no host name");
}

static void
test_port_zero (void)
{
  assert_refused ("smtps://mail.example.org:0", "“0”");
}

static void
test_port_too_big (void)
{
  assert_refused ("smtps://mail.example.org:65536", "from 1 to 65535");
}

static void
test_port_not_a_number (void)
{
  assert_refused ("smtps://mail.example.org:smtps", "from 1 to 65535");
}

static void
test_port_signed (void)
{
  assert_refused ("smtps://mail.example.org:+465", "from 1 to 65535");
}

static void
test_port_empty (void)
{
  assert_refused ("smtps://mail.example.org:", "no port number");
}

static void
test_path (void)
{
  assert_refused ("smtps://mail.example.org/submit", "remove “/submit”");
}

static void
test_query (void)
{
  assert_refused ("smtps://mail.example.org?tls=no", "remove “?tls=no”");
}

static void
test_fragment (void)
{
  assert_refused ("smtps://mail.example.org:465#x", "remove “#x”");
}

static void
test_ipv6_without_brackets (void)
{
  assert_refused ("smtps://2001:db8::1", "put it in brackets");
}

static void
test_ipv6_unclosed_bracket (void)
{
  assert_refused ("smtps://[2001:db8::1:465", "no closing “]”");
}

static void
test_ipv4_in_brackets (void)
{
  assert_refused ("smtps://[192.0.2.1]:465", "not an IPv6 address");
}

static void
test_garbage_after_bracket (void)
{
  assert_refused ("smtps://[::1]x:465", "Unexpected “x:465”");
}

static void
test_host_underscore (void)
{
  assert_refused ("smtps://mail_server.example.org", "contains “_”");
}

static void
test_host_trailing_dot (void)
{
  assert_refused ("smtps://mail.example.org.", "empty part");
}

static void
test_host_hyphen (void)
{
  assert_refused ("smtps://-mail.example.org", "starts or ends with “-”");
}

static void
test_host_label_too_long (void)
{
  g_autofree char *label = g_strnfill (64, 'a');
  g_autofree char *text = g_strdup_printf ("smtps://%s.example.org", label);

  assert_refused (text, "longer than 63");
}

static void
test_host_too_long (void)
{
  g_autofree char *label = g_strnfill (63, 'a');
  g_autofree char *text = g_strdup_printf ("smtps://%s.%s.%s.%s", label, label, label, label);

  assert_refused (text, "longer than 253");
}

static void
test_host_bad_punycode (void)
{
  assert_refused ("pop3s://xn--m", "not a valid internationalised domain name");
}

static void
test_space (void)
{
  assert_refused ("smtps://my name@mail.example.org", "contains a space");
}

static void
test_control_character (void)
{
  assert_refused ("smtps://mail.example.org\r\n:465", "control character");
}

static void
test_invalid_utf8 (void)
{
  assert_refused ("smtps://mail.ex\xffmple.org", "not valid UTF-8");
}

static void
test_too_long (void)
{
  g_autofree char *host = g_strnfill (2100, 'a');
  g_autofree char *text = g_strconcat ("smtps://", host, NULL);

  assert_refused (text, "longer than 2048 octets");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/url/parse/smtps", test_smtps);
  g_test_add_func ("/url/parse/smtp-starttls", test_smtp_starttls);
  g_test_add_func ("/url/parse/smtp-insecure", test_smtp_insecure);
  g_test_add_func ("/url/parse/default-ports", test_default_ports);
  g_test_add_func ("/url/parse/scheme-case-insensitive", test_scheme_case_insensitive);
  g_test_add_func ("/url/parse/host-lower-case", test_host_lower_case);
  g_test_add_func ("/url/parse/idn-host", test_idn_host);
  g_test_add_func ("/url/parse/explicit-port", test_explicit_port);
  g_test_add_func ("/url/parse/highest-port", test_highest_port);
  g_test_add_func ("/url/parse/trailing-slash", test_trailing_slash);
  g_test_add_func ("/url/parse/user-percent-decoded", test_user_percent_decoded);
  g_test_add_func ("/url/parse/user-with-literal-at", test_user_with_literal_at);
  g_test_add_func ("/url/parse/user-with-encoded-colon", test_user_with_encoded_colon);
  g_test_add_func ("/url/parse/ipv4-host", test_ipv4_host);
  g_test_add_func ("/url/parse/ipv6-host", test_ipv6_host);
  g_test_add_func ("/url/parse/ipv6-host-default-port", test_ipv6_host_default_port);
  g_test_add_func ("/url/to-string/adds-port", test_to_string_adds_port);
  g_test_add_func ("/url/to-string/without-user", test_to_string_without_user);
  g_test_add_func ("/url/to-string/encodes-user", test_to_string_encodes_user);
  g_test_add_func ("/url/to-string/encodes-colon", test_to_string_encodes_colon);
  g_test_add_func ("/url/to-string/ipv6", test_to_string_ipv6);
  g_test_add_func ("/url/to-string/round-trip", test_to_string_round_trip);
  g_test_add_func ("/url/copy", test_copy);
  g_test_add_func ("/url/protocol-names", test_protocol_names);
  g_test_add_func ("/url/loopback/localhost", test_loopback_localhost);
  g_test_add_func ("/url/loopback/ipv4", test_loopback_ipv4);
  g_test_add_func ("/url/loopback/ipv6", test_loopback_ipv6);
  g_test_add_func ("/url/loopback/not-loopback", test_not_loopback);
  g_test_add_func ("/url/invalid/unknown-scheme", test_unknown_scheme);
  g_test_add_func ("/url/invalid/http-scheme", test_http_scheme);
  g_test_add_func ("/url/invalid/no-scheme", test_no_scheme);
  g_test_add_func ("/url/invalid/password", test_password);
  g_test_add_func ("/url/invalid/password-not-shown", test_password_not_shown);
  g_test_add_func ("/url/invalid/password-without-scheme-not-shown",
                   test_password_without_scheme_not_shown);
  g_test_add_func ("/url/invalid/empty-password", test_empty_password);
  g_test_add_func ("/url/invalid/empty-user", test_empty_user);
  g_test_add_func ("/url/invalid/bad-percent-escape", test_bad_percent_escape);
  g_test_add_func ("/url/invalid/percent-encoded-nul", test_percent_encoded_nul);
  g_test_add_func ("/url/invalid/percent-encoded-newline", test_percent_encoded_newline);
  g_test_add_func ("/url/invalid/user-too-long", test_user_too_long);
  g_test_add_func ("/url/invalid/no-host", test_no_host);
  g_test_add_func ("/url/invalid/no-host-with-port", test_no_host_with_port);
  g_test_add_func ("/url/invalid/port-zero", test_port_zero);
  g_test_add_func ("/url/invalid/port-too-big", test_port_too_big);
  g_test_add_func ("/url/invalid/port-not-a-number", test_port_not_a_number);
  g_test_add_func ("/url/invalid/port-signed", test_port_signed);
  g_test_add_func ("/url/invalid/port-empty", test_port_empty);
  g_test_add_func ("/url/invalid/path", test_path);
  g_test_add_func ("/url/invalid/query", test_query);
  g_test_add_func ("/url/invalid/fragment", test_fragment);
  g_test_add_func ("/url/invalid/ipv6-without-brackets", test_ipv6_without_brackets);
  g_test_add_func ("/url/invalid/ipv6-unclosed-bracket", test_ipv6_unclosed_bracket);
  g_test_add_func ("/url/invalid/ipv4-in-brackets", test_ipv4_in_brackets);
  g_test_add_func ("/url/invalid/garbage-after-bracket", test_garbage_after_bracket);
  g_test_add_func ("/url/invalid/host-underscore", test_host_underscore);
  g_test_add_func ("/url/invalid/host-trailing-dot", test_host_trailing_dot);
  g_test_add_func ("/url/invalid/host-hyphen", test_host_hyphen);
  g_test_add_func ("/url/invalid/host-label-too-long", test_host_label_too_long);
  g_test_add_func ("/url/invalid/host-too-long", test_host_too_long);
  g_test_add_func ("/url/invalid/host-bad-punycode", test_host_bad_punycode);
  g_test_add_func ("/url/invalid/space", test_space);
  g_test_add_func ("/url/invalid/control-character", test_control_character);
  g_test_add_func ("/url/invalid/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/url/invalid/too-long", test_too_long);

  return g_test_run ();
}
