/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-imap.h"

/* Feeds @lines (without CR LF) and returns the response that the last one
 * completes; every earlier line must leave the response incomplete. */
static OutboxImapResponse *
parse_lines (const char *const *lines)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  OutboxImapResponse *response = NULL;
  g_autoptr (GError) error = NULL;

  for (gsize i = 0; lines[i] != NULL; i++)
    {
      g_assert_null (response);
      outbox_imap_parser_feed_line (parser, lines[i], strlen (lines[i]), &response, &error);
      g_assert_no_error (error);
    }
  g_assert_nonnull (response);
  return response;
}

static OutboxImapResponse *
parse_line (const char *line)
{
  const char *lines[] = { line, NULL };

  return parse_lines (lines);
}

/* Feeds @lines and expects a PROTOCOL error from one of them. */
static void
assert_lines_fail (const char *const *lines)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  g_autoptr (GError) error = NULL;

  for (gsize i = 0; lines[i] != NULL && error == NULL; i++)
    {
      g_autoptr (OutboxImapResponse) response = NULL;
      gboolean ok =
          outbox_imap_parser_feed_line (parser, lines[i], strlen (lines[i]), &response, &error);
      g_assert_true (ok == (error == NULL));
      g_assert_null (response);
    }
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
}

static void
assert_line_fails (const char *line)
{
  const char *lines[] = { line, NULL };

  assert_lines_fail (lines);
}

static void
assert_strv (char **actual, const char *const *expected)
{
  g_assert_nonnull (actual);
  g_assert_cmpstrv (actual, expected);
}

/* Tagged responses -------------------------------------------------------- */

static void
test_tagged_ok (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A1 OK LOGIN completed");

  g_assert_cmpint (r->kind, ==, OUTBOX_IMAP_RESPONSE_TAGGED);
  g_assert_cmpstr (r->tag, ==, "A1");
  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_OK);
  g_assert_null (r->code);
  g_assert_cmpstr (r->text, ==, "LOGIN completed");
}

static void
test_tagged_no_with_code (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A2 NO [TRYCREATE] No such mailbox");

  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_NO);
  g_assert_cmpstr (r->code, ==, "TRYCREATE");
  g_assert_null (r->code_args);
  g_assert_cmpstr (r->text, ==, "No such mailbox");
}

static void
test_tagged_bad (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A3 BAD Command unknown");

  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_BAD);
}

static void
test_code_arguments (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A4 OK [APPENDUID 38505 3955] APPEND completed");

  g_assert_cmpstr (r->code, ==, "APPENDUID");
  g_assert_cmpstr (r->code_args, ==, "38505 3955");
  g_assert_cmpstr (r->text, ==, "APPEND completed");
}

static void
test_code_without_text (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A5 OK [READ-WRITE]");

  g_assert_cmpstr (r->code, ==, "READ-WRITE");
  g_assert_cmpstr (r->text, ==, "");
}

static void
test_status_without_text (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A6 OK");

  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_OK);
  g_assert_cmpstr (r->text, ==, "");
}

static void
test_status_case_insensitive (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("a7 ok [trycreate] done");

  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_OK);
  g_assert_cmpstr (r->code, ==, "TRYCREATE");
  g_assert_cmpstr (r->tag, ==, "a7");
}

static void
test_text_sanitised (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A8 NO bad\x1b[31m th\xc2\x85ing \xff");

  g_assert_cmpstr (r->text, ==, "bad?[31m th?ing \xef\xbf\xbd");
}

static void
test_to_string (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("A9 NO [TRYCREATE] No such mailbox");
  g_autofree char *text = outbox_imap_response_to_string (r);

  g_assert_cmpstr (text, ==, "NO [TRYCREATE] No such mailbox");
}

/* Untagged responses ------------------------------------------------------ */

static void
test_greeting_capability (void)
{
  static const char *const expected[] = { "IMAP4REV1", "STARTTLS", "AUTH=PLAIN", "LITERAL+",
                                          NULL };
  g_autoptr (OutboxImapResponse) r =
      parse_line ("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN LITERAL+] Dovecot ready.");

  g_assert_cmpint (r->kind, ==, OUTBOX_IMAP_RESPONSE_UNTAGGED);
  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_OK);
  g_assert_cmpstr (r->code, ==, "CAPABILITY");
  assert_strv (r->capabilities, expected);
  g_assert_cmpstr (r->text, ==, "Dovecot ready.");
}

static void
test_capability_data (void)
{
  static const char *const expected[] = { "IMAP4REV1", "SASL-IR", "AUTH=PLAIN", "SPECIAL-USE",
                                          NULL };
  g_autoptr (OutboxImapResponse) r =
      parse_line ("* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN SPECIAL-USE");

  g_assert_cmpint (r->data, ==, OUTBOX_IMAP_DATA_CAPABILITY);
  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_NONE);
  assert_strv (r->capabilities, expected);
}

static void
test_capability_trailing_space (void)
{
  static const char *const expected[] = { "IMAP4REV1", "IDLE", NULL };
  g_autoptr (OutboxImapResponse) r = parse_line ("* CAPABILITY IMAP4rev1 IDLE ");

  assert_strv (r->capabilities, expected);
}

static void
test_preauth (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* PREAUTH IMAP4rev1 server logged in as Smith");

  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_PREAUTH);
}

static void
test_bye (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* BYE Autologout; idle for too long");
  g_autofree char *text = outbox_imap_response_to_string (r);

  g_assert_cmpint (r->status, ==, OUTBOX_IMAP_STATUS_BYE);
  g_assert_cmpstr (text, ==, "BYE Autologout; idle for too long");
}

static void
test_status_text_braces_are_text (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* OK unbalanced ( \"text {5}");

  g_assert_cmpstr (r->text, ==, "unbalanced ( \"text {5}");
}

static void
test_exists (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* 23 EXISTS");

  g_assert_cmpint (r->data, ==, OUTBOX_IMAP_DATA_EXISTS);
  g_assert_cmpuint (r->number, ==, 23);
}

static void
test_other_kept_raw (void)
{
  g_autoptr (OutboxImapResponse) r =
      parse_line ("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");

  g_assert_cmpint (r->data, ==, OUTBOX_IMAP_DATA_OTHER);
  g_assert_cmpstr (r->raw, ==, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
}

static void
test_other_with_literal (void)
{
  static const char *const lines[] = { "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {13}",
                                       "From: a@b", "", ")", NULL };
  g_autoptr (OutboxImapResponse) r = parse_lines (lines);

  g_assert_cmpint (r->data, ==, OUTBOX_IMAP_DATA_OTHER);
  g_assert_cmpstr (r->raw, ==, "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {13}");
}

/* Continuations ----------------------------------------------------------- */

static void
test_continuation (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("+ Ready for literal data");

  g_assert_cmpint (r->kind, ==, OUTBOX_IMAP_RESPONSE_CONTINUATION);
  g_assert_cmpstr (r->text, ==, "Ready for literal data");
}

static void
test_continuation_empty (void)
{
  g_autoptr (OutboxImapResponse) bare = parse_line ("+");
  g_autoptr (OutboxImapResponse) spaced = parse_line ("+ ");

  g_assert_cmpint (bare->kind, ==, OUTBOX_IMAP_RESPONSE_CONTINUATION);
  g_assert_cmpstr (bare->text, ==, "");
  g_assert_cmpstr (spaced->text, ==, "");
}

/* LIST -------------------------------------------------------------------- */

static void
test_list_flags (void)
{
  static const char *const flags[] = { "\\HasNoChildren", "\\Sent", NULL };
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"");

  g_assert_cmpint (r->data, ==, OUTBOX_IMAP_DATA_LIST);
  assert_strv (r->mailbox->flags, flags);
  g_assert_cmpint (r->mailbox->delimiter, ==, '/');
  g_assert_cmpstr (r->mailbox->name, ==, "Sent");
  g_assert_true (outbox_imap_mailbox_has_flag (r->mailbox, "\\sent"));
}

static void
test_list_atom_name (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST () \".\" INBOX");

  g_assert_cmpstr (r->mailbox->name, ==, "INBOX");
  g_assert_cmpuint (g_strv_length (r->mailbox->flags), ==, 0);
}

static void
test_list_nil_delimiter (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST (\\Noselect) NIL \"\"");

  g_assert_cmpint (r->mailbox->delimiter, ==, '\0');
  g_assert_cmpstr (r->mailbox->name, ==, "");
}

static void
test_list_escaped_delimiter (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST () \"\\\\\" Foo");

  g_assert_cmpint (r->mailbox->delimiter, ==, '\\');
}

static void
test_list_quoted_escapes (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST () \"/\" \"a \\\"b\\\" \\\\c\"");

  g_assert_cmpstr (r->mailbox->name, ==, "a \"b\" \\c");
}

static void
test_list_literal_name (void)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  g_autoptr (OutboxImapResponse) r = NULL;
  g_autoptr (GError) error = NULL;
  const char *first = "* LIST (\\Sent) \"/\" {9}";

  outbox_imap_parser_feed_line (parser, first, strlen (first), &r, &error);
  g_assert_no_error (error);
  g_assert_null (r);
  g_assert_cmpuint (outbox_imap_parser_get_literal_needed (parser), ==, 9);
  outbox_imap_parser_feed_line (parser, "Sent Mail", 9, &r, &error);
  g_assert_no_error (error);
  g_assert_nonnull (r);
  g_assert_cmpuint (outbox_imap_parser_get_literal_needed (parser), ==, 0);
  g_assert_cmpstr (r->mailbox->name, ==, "Sent Mail");
}

static void
test_list_literal_plus (void)
{
  static const char *const lines[] = { "* LIST () \"/\" {4+}", "Sent", NULL };
  g_autoptr (OutboxImapResponse) r = parse_lines (lines);

  g_assert_cmpstr (r->mailbox->name, ==, "Sent");
}

/* The literal holds a line break: two lines make it, and the response goes
 * on after its last octet on the second line. */
static void
test_list_literal_across_lines (void)
{
  static const char *const lines[] = { "* LIST () \"/\" {6}", "ab", "cd (\"CHILDINFO\")", NULL };
  g_autoptr (OutboxImapResponse) r = parse_lines (lines);

  g_assert_cmpstr (r->mailbox->name, ==, "ab\r\ncd");
  g_assert_cmpstr (r->mailbox->display_name, ==, "ab??cd");
}

static void
test_list_extended_data (void)
{
  g_autoptr (OutboxImapResponse) r =
      parse_line ("* LIST (\\HasChildren) \"/\" \"Archive\" (\"CHILDINFO\" (\"SUBSCRIBED\"))");

  g_assert_cmpstr (r->mailbox->name, ==, "Archive");
}

static void
test_list_utf7_display (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST () \"/\" \"Entw&APw-rfe\"");

  g_assert_cmpstr (r->mailbox->name, ==, "Entw&APw-rfe");
  g_assert_cmpstr (r->mailbox->display_name, ==, "Entwürfe");
}

static void
test_list_invalid_utf7_shown_raw (void)
{
  g_autoptr (OutboxImapResponse) r = parse_line ("* LIST () \"/\" \"R&D\"");

  g_assert_cmpstr (r->mailbox->display_name, ==, "R&D");
}

/* Modified UTF-7 ---------------------------------------------------------- */

static void
assert_utf7_decodes (const char *encoded, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *decoded = outbox_imap_utf7_decode (encoded, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (decoded, ==, expected);
}

static void
assert_utf7_invalid (const char *encoded)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *decoded = outbox_imap_utf7_decode (encoded, &error);

  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
  g_assert_null (decoded);
}

static void
test_utf7_decode (void)
{
  assert_utf7_decodes ("&AOQ-", "ä");
  assert_utf7_decodes ("&-", "&");
  assert_utf7_decodes ("Sent", "Sent");
  assert_utf7_decodes ("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/台北/日本語");
  assert_utf7_decodes ("&2D3eAA-", "\xf0\x9f\x98\x80");
}

static void
test_utf7_decode_invalid (void)
{
  assert_utf7_invalid ("&AOQ");      /* not closed */
  assert_utf7_invalid ("&AGE-");     /* printable ASCII "a" encoded */
  assert_utf7_invalid ("&AOQ=-");    /* '=' is not in the alphabet */
  assert_utf7_invalid ("&2D0-");     /* unpaired high surrogate */
  assert_utf7_invalid ("&2D0A5A-");  /* high surrogate, then U+00E4 */
  assert_utf7_invalid ("&3gA-");     /* lone low surrogate */
  assert_utf7_invalid ("&AOR-");     /* non-zero padding bits */
  assert_utf7_invalid ("caf\xc3\xa9"); /* 8-bit */
}

static void
test_utf7_encode (void)
{
  g_autofree char *german = outbox_imap_utf7_encode ("Entwürfe");
  g_autofree char *ampersand = outbox_imap_utf7_encode ("R&D");
  g_autofree char *cjk = outbox_imap_utf7_encode ("~peter/mail/台北/日本語");

  g_assert_cmpstr (german, ==, "Entw&APw-rfe");
  g_assert_cmpstr (ampersand, ==, "R&-D");
  g_assert_cmpstr (cjk, ==, "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
}

static void
test_utf7_round_trip (void)
{
  const char *name = "Gesendete Elemente \xf0\x9f\x98\x80 & ä";
  g_autofree char *encoded = outbox_imap_utf7_encode (name);

  assert_utf7_decodes (encoded, name);
}

/* Bad input --------------------------------------------------------------- */

static void
test_bad_missing_tag (void)
{
  assert_line_fails (" OK done");
}

static void
test_bad_tag_char (void)
{
  assert_line_fails ("A+1 OK done");
}

static void
test_bad_status (void)
{
  assert_line_fails ("A1 MAYBE done");
}

static void
test_bad_missing_status (void)
{
  assert_line_fails ("A1");
}

static void
test_bad_untagged_without_space (void)
{
  assert_line_fails ("*OK ready");
}

static void
test_bad_continuation_without_space (void)
{
  assert_line_fails ("+OK");
}

static void
test_bad_unclosed_code (void)
{
  assert_line_fails ("A1 OK [ALERT never closed");
}

static void
test_bad_unbalanced_open (void)
{
  assert_line_fails ("* FLAGS (\\Seen (\\Draft)");
}

static void
test_bad_unbalanced_close (void)
{
  assert_line_fails ("* FLAGS \\Seen)");
}

static void
test_bad_unterminated_quote (void)
{
  assert_line_fails ("* LIST () \"/\" \"Sent");
}

static void
test_bad_escape (void)
{
  assert_line_fails ("* LIST () \"/\" \"a\\b\"");
}

static void
test_bad_list_without_flags (void)
{
  assert_line_fails ("* LIST \"/\" Sent");
}

static void
test_bad_list_trailing_data (void)
{
  assert_line_fails ("* LIST () \"/\" Sent Mail");
}

static void
test_bad_stray_space (void)
{
  assert_line_fails ("* SEARCH  1 2");
}

static void
test_bad_nul (void)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  g_autoptr (OutboxImapResponse) r = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_imap_parser_feed_line (parser, "A1 OK a\0b", 9, &r, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
}

static void
test_bad_cr_inside_line (void)
{
  assert_line_fails ("A1 OK a\rb");
}

static void
test_bad_overlong_line (void)
{
  g_autofree char *line = g_strnfill (OUTBOX_IMAP_MAX_LINE + 1, 'a');

  memcpy (line, "A1 OK ", 6);
  assert_line_fails (line);
}

static void
test_longest_line_accepted (void)
{
  g_autofree char *line = g_strnfill (OUTBOX_IMAP_MAX_LINE, 'a');
  g_autoptr (OutboxImapResponse) r = NULL;

  memcpy (line, "A1 OK ", 6);
  r = parse_line (line);
  g_assert_cmpuint (strlen (r->text), ==, OUTBOX_IMAP_MAX_LINE - 6);
}

static void
test_bad_huge_literal (void)
{
  g_autofree char *line =
      g_strdup_printf ("* LIST () \"/\" {%u}", OUTBOX_IMAP_MAX_LITERAL + 1);

  assert_line_fails (line);
}

static void
test_bad_enormous_literal (void)
{
  assert_line_fails ("* LIST () \"/\" {99999999999999999999}");
}

static void
test_bad_nul_in_literal (void)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  g_autoptr (OutboxImapResponse) r = NULL;
  g_autoptr (GError) error = NULL;
  const char *first = "* LIST () \"/\" {3}";

  g_assert_true (outbox_imap_parser_feed_line (parser, first, strlen (first), &r, &error));
  g_assert_false (outbox_imap_parser_feed_line (parser, "a\0b", 3, &r, &error));
  g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
}

static void
test_bad_literal_split_line_break (void)
{
  static const char *const lines[] = { "* LIST () \"/\" {3}", "ab", "", NULL };

  assert_lines_fail (lines);
}

static void
test_bad_literal_in_capability (void)
{
  static const char *const lines[] = { "* CAPABILITY {4}", "IMAP", "", NULL };

  assert_lines_fail (lines);
}

static void
test_bad_too_many_items (void)
{
  g_autoptr (GString) line = g_string_new ("* CAPABILITY");

  for (guint i = 0; i <= OUTBOX_IMAP_MAX_ITEMS; i++)
    g_string_append (line, " X");
  assert_line_fails (line->str);
}

static void
test_bad_too_deep (void)
{
  g_autoptr (GString) line = g_string_new ("* X ");

  for (guint i = 0; i <= OUTBOX_IMAP_MAX_DEPTH; i++)
    g_string_append_c (line, '(');
  for (guint i = 0; i <= OUTBOX_IMAP_MAX_DEPTH; i++)
    g_string_append_c (line, ')');
  assert_line_fails (line->str);
}

static void
test_bad_number (void)
{
  assert_line_fails ("* 99999999999 EXISTS");
}

static void
test_recovers_after_error (void)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  g_autoptr (OutboxImapResponse) r = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_imap_parser_feed_line (parser, "A1 HUH", 6, &r, &error));
  g_clear_error (&error);
  g_assert_true (outbox_imap_parser_feed_line (parser, "A2 OK", 5, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (r->tag, ==, "A2");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/imap/parser/tagged/ok", test_tagged_ok);
  g_test_add_func ("/imap/parser/tagged/no-with-code", test_tagged_no_with_code);
  g_test_add_func ("/imap/parser/tagged/bad", test_tagged_bad);
  g_test_add_func ("/imap/parser/tagged/code-arguments", test_code_arguments);
  g_test_add_func ("/imap/parser/tagged/code-without-text", test_code_without_text);
  g_test_add_func ("/imap/parser/tagged/no-text", test_status_without_text);
  g_test_add_func ("/imap/parser/tagged/case-insensitive", test_status_case_insensitive);
  g_test_add_func ("/imap/parser/tagged/text-sanitised", test_text_sanitised);
  g_test_add_func ("/imap/parser/tagged/to-string", test_to_string);
  g_test_add_func ("/imap/parser/untagged/greeting-capability", test_greeting_capability);
  g_test_add_func ("/imap/parser/untagged/capability", test_capability_data);
  g_test_add_func ("/imap/parser/untagged/capability-trailing-space",
                   test_capability_trailing_space);
  g_test_add_func ("/imap/parser/untagged/preauth", test_preauth);
  g_test_add_func ("/imap/parser/untagged/bye", test_bye);
  g_test_add_func ("/imap/parser/untagged/status-text-is-text", test_status_text_braces_are_text);
  g_test_add_func ("/imap/parser/untagged/exists", test_exists);
  g_test_add_func ("/imap/parser/untagged/other", test_other_kept_raw);
  g_test_add_func ("/imap/parser/untagged/other-with-literal", test_other_with_literal);
  g_test_add_func ("/imap/parser/continuation/text", test_continuation);
  g_test_add_func ("/imap/parser/continuation/empty", test_continuation_empty);
  g_test_add_func ("/imap/parser/list/flags", test_list_flags);
  g_test_add_func ("/imap/parser/list/atom-name", test_list_atom_name);
  g_test_add_func ("/imap/parser/list/nil-delimiter", test_list_nil_delimiter);
  g_test_add_func ("/imap/parser/list/escaped-delimiter", test_list_escaped_delimiter);
  g_test_add_func ("/imap/parser/list/quoted-escapes", test_list_quoted_escapes);
  g_test_add_func ("/imap/parser/list/literal-name", test_list_literal_name);
  g_test_add_func ("/imap/parser/list/literal-plus", test_list_literal_plus);
  g_test_add_func ("/imap/parser/list/literal-across-lines", test_list_literal_across_lines);
  g_test_add_func ("/imap/parser/list/extended-data", test_list_extended_data);
  g_test_add_func ("/imap/parser/list/utf7-display", test_list_utf7_display);
  g_test_add_func ("/imap/parser/list/invalid-utf7-shown-raw", test_list_invalid_utf7_shown_raw);
  g_test_add_func ("/imap/parser/utf7/decode", test_utf7_decode);
  g_test_add_func ("/imap/parser/utf7/decode-invalid", test_utf7_decode_invalid);
  g_test_add_func ("/imap/parser/utf7/encode", test_utf7_encode);
  g_test_add_func ("/imap/parser/utf7/round-trip", test_utf7_round_trip);
  g_test_add_func ("/imap/parser/bad/missing-tag", test_bad_missing_tag);
  g_test_add_func ("/imap/parser/bad/tag-char", test_bad_tag_char);
  g_test_add_func ("/imap/parser/bad/status", test_bad_status);
  g_test_add_func ("/imap/parser/bad/missing-status", test_bad_missing_status);
  g_test_add_func ("/imap/parser/bad/untagged-without-space", test_bad_untagged_without_space);
  g_test_add_func ("/imap/parser/bad/continuation-without-space",
                   test_bad_continuation_without_space);
  g_test_add_func ("/imap/parser/bad/unclosed-code", test_bad_unclosed_code);
  g_test_add_func ("/imap/parser/bad/unbalanced-open", test_bad_unbalanced_open);
  g_test_add_func ("/imap/parser/bad/unbalanced-close", test_bad_unbalanced_close);
  g_test_add_func ("/imap/parser/bad/unterminated-quote", test_bad_unterminated_quote);
  g_test_add_func ("/imap/parser/bad/escape", test_bad_escape);
  g_test_add_func ("/imap/parser/bad/list-without-flags", test_bad_list_without_flags);
  g_test_add_func ("/imap/parser/bad/list-trailing-data", test_bad_list_trailing_data);
  g_test_add_func ("/imap/parser/bad/stray-space", test_bad_stray_space);
  g_test_add_func ("/imap/parser/bad/nul", test_bad_nul);
  g_test_add_func ("/imap/parser/bad/cr-inside-line", test_bad_cr_inside_line);
  g_test_add_func ("/imap/parser/bad/overlong-line", test_bad_overlong_line);
  g_test_add_func ("/imap/parser/longest-line-accepted", test_longest_line_accepted);
  g_test_add_func ("/imap/parser/bad/huge-literal", test_bad_huge_literal);
  g_test_add_func ("/imap/parser/bad/enormous-literal", test_bad_enormous_literal);
  g_test_add_func ("/imap/parser/bad/nul-in-literal", test_bad_nul_in_literal);
  g_test_add_func ("/imap/parser/bad/literal-split-line-break",
                   test_bad_literal_split_line_break);
  g_test_add_func ("/imap/parser/bad/literal-in-capability", test_bad_literal_in_capability);
  g_test_add_func ("/imap/parser/bad/too-many-items", test_bad_too_many_items);
  g_test_add_func ("/imap/parser/bad/too-deep", test_bad_too_deep);
  g_test_add_func ("/imap/parser/bad/number", test_bad_number);
  g_test_add_func ("/imap/parser/recovers-after-error", test_recovers_after_error);

  return g_test_run ();
}
