/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-address.h"
#include "outbox-error.h"

static void
log_address (const char *address)
{
  g_autofree char *escaped = g_strescape (address, NULL);

  g_test_message ("address: %s", escaped);
}

static void
assert_valid (const char *address)
{
  g_autoptr (GError) error = NULL;

  log_address (address);
  g_assert_true (outbox_address_validate (address, FALSE, &error));
  g_assert_no_error (error);
}

/* Checks that @address is refused and that the message names it (as shown,
 * when given) and says what is wrong through @problem. */
static void
assert_refused_showing (const char *address, const char *shown, const char *problem)
{
  g_autoptr (GError) error = NULL;

  log_address (address);
  g_assert_false (outbox_address_validate (address, FALSE, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  if (strstr (error->message, shown) == NULL || strstr (error->message, problem) == NULL)
    g_assert_cmpstr (error->message, ==, problem);
}

static void
assert_refused (const char *address, const char *problem)
{
  assert_refused_showing (address, address, problem);
}

static char *
repeat (char c, gsize n)
{
  return g_strnfill (n, c);
}

static void
test_simple (void)
{
  assert_valid ("someone@example.org");
}

static void
test_atext_specials (void)
{
  assert_valid ("a.b+tag!#$%&'*/=?^_`{|}~-x@example.org");
}

/* Not a Dot-string, but such addresses exist and carry no risk. */
static void
test_dots_in_local_part (void)
{
  assert_valid (".john..doe.@example.org");
}

static void
test_single_label_domain (void)
{
  assert_valid ("root@localhost");
}

static void
test_quoted_local_part (void)
{
  assert_valid ("\"john doe\"@example.org");
}

static void
test_quoted_specials (void)
{
  assert_valid ("\"a@b,(c)\\\"d\\\\\"@example.org");
}

static void
test_non_ascii (void)
{
  assert_valid ("jörg@bücher.example");
}

static void
test_ipv4_literal (void)
{
  assert_valid ("postmaster@[192.0.2.1]");
}

static void
test_ipv6_literal (void)
{
  assert_valid ("postmaster@[IPv6:2001:db8::1]");
}

static void
test_longest_parts (void)
{
  g_autofree char *local = repeat ('l', OUTBOX_ADDRESS_MAX_LOCAL_PART);
  g_autofree char *label = repeat ('d', 63);
  g_autofree char *address = g_strdup_printf ("%s@%s.example", local, label);

  assert_valid (address);
}

static void
test_longest_path (void)
{
  g_autofree char *local = repeat ('l', OUTBOX_ADDRESS_MAX_LOCAL_PART);
  g_autofree char *label = repeat ('d', 63);
  g_autofree char *last = repeat ('d', 61);
  g_autofree char *address = g_strdup_printf ("%s@%s.%s.%s", local, label, label, last);

  g_assert_cmpuint (strlen ("<>") + strlen (address), ==, OUTBOX_ADDRESS_MAX_PATH);
  assert_valid (address);
}

static void
test_empty_allowed (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_address_validate ("", TRUE, &error));
  g_assert_no_error (error);
}

static void
test_empty_refused (void)
{
  assert_refused ("", "empty");
}

static void
test_no_at (void)
{
  assert_refused ("someone.example.org", "no “@”");
}

static void
test_two_at (void)
{
  assert_refused ("a@b@example.org", "more than one “@”");
}

static void
test_empty_local_part (void)
{
  assert_refused ("@example.org", "nothing before “@”");
}

static void
test_empty_quoted_local_part (void)
{
  assert_refused ("\"\"@example.org", "nothing before “@”");
}

static void
test_empty_domain (void)
{
  assert_refused ("someone@", "no domain");
}

static void
test_space (void)
{
  assert_refused ("a b@example.org", "contains a space");
}

static void
test_space_in_domain (void)
{
  assert_refused ("ab@exam ple.org", "contains a space");
}

static void
test_display_name (void)
{
  assert_refused ("Someone <someone@example.org>", "without a name or angle brackets");
}

static void
test_angle_brackets (void)
{
  assert_refused ("<someone@example.org>", "without a name or angle brackets");
}

static void
test_angle_bracket_inside_quotes (void)
{
  assert_refused ("\"<a>\"@example.org", "without a name or angle brackets");
}

static void
test_comma (void)
{
  assert_refused ("a@example.org,b@example.org", "one address at a time");
}

static void
test_stray_quote (void)
{
  assert_refused ("ab\"c\"@example.org", "quotes must enclose");
}

static void
test_text_after_quote (void)
{
  assert_refused ("\"ab\"c@example.org", "between the closing quote and “@”");
}

static void
test_unclosed_quote (void)
{
  assert_refused ("\"ab@example.org", "never closed");
}

static void
test_bad_quoted_pair (void)
{
  assert_refused ("\"a\\é\"@example.org", "backslash");
}

static void
test_bracket_in_local_part (void)
{
  assert_refused ("a[b]@example.org", "only allowed inside a quoted local part");
}

static void
test_cr (void)
{
  assert_refused_showing ("a@example.org\rRCPT TO:<b@example.org>",
                          "a@example.org\\rRCPT TO:<b@example.org>", "line break");
}

static void
test_lf (void)
{
  assert_refused_showing ("a\n@example.org", "a\\n@example.org", "line break");
}

static void
test_lf_inside_quotes (void)
{
  assert_refused_showing ("\"a\nb\"@example.org", "\"a\\nb\"@example.org", "line break");
}

static void
test_tab_inside_quotes (void)
{
  assert_refused_showing ("\"a\tb\"@example.org", "\"a\\u0009b\"@example.org", "U+0009");
}

static void
test_delete (void)
{
  assert_refused_showing ("a\x7f@example.org", "a\\u007F@example.org", "U+007F");
}

static void
test_c1_control (void)
{
  assert_refused_showing ("a\xc2\x9b@example.org", "a\\u009B@example.org", "U+009B");
}

static void
test_invalid_utf8 (void)
{
  assert_refused_showing ("j\xf6rg@example.org", "j\xef\xbf\xbdrg@example.org", "UTF-8");
}

static void
test_local_part_too_long (void)
{
  g_autofree char *local = repeat ('l', OUTBOX_ADDRESS_MAX_LOCAL_PART + 1);
  g_autofree char *address = g_strconcat (local, "@example.org", NULL);

  assert_refused_showing (address, "lllll", "65 octets before “@”");
}

static void
test_quoted_local_part_too_long (void)
{
  g_autofree char *local = repeat ('l', OUTBOX_ADDRESS_MAX_LOCAL_PART - 1);
  g_autofree char *address = g_strconcat ("\"", local, "\"@example.org", NULL);

  assert_refused_showing (address, "lllll", "65 octets before “@”");
}

static void
test_domain_too_long (void)
{
  g_autofree char *label = repeat ('d', 63);
  g_autofree char *address = g_strdup_printf ("a@%s.%s.%s.%sx", label, label, label, label);

  assert_refused_showing (address, "ddddd", "domain of 256 octets");
}

static void
test_path_too_long (void)
{
  g_autofree char *local = repeat ('l', OUTBOX_ADDRESS_MAX_LOCAL_PART);
  g_autofree char *label = repeat ('d', 63);
  g_autofree char *last = repeat ('d', 62);
  g_autofree char *address = g_strdup_printf ("%s@%s.%s.%s", local, label, label, last);

  assert_refused_showing (address, "lllll", "255 octets long");
}

static void
test_shown_address_truncated (void)
{
  g_autofree char *local = repeat ('l', 200);
  g_autofree char *address = g_strconcat (local, "@example.org", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_address_validate (address, FALSE, &error));
  g_assert_null (strstr (error->message, "@example.org"));
  g_assert_nonnull (strstr (error->message, "…"));
}

static void
test_label_too_long (void)
{
  g_autofree char *label = repeat ('d', 64);
  g_autofree char *address = g_strdup_printf ("a@%s.example", label);

  assert_refused_showing (address, "ddddd", "longer than 63 octets");
}

static void
test_domain_leading_dot (void)
{
  assert_refused ("a@.example.org", "empty part in its domain");
}

static void
test_domain_trailing_dot (void)
{
  assert_refused ("a@example.org.", "empty part in its domain");
}

static void
test_domain_double_dot (void)
{
  assert_refused ("a@example..org", "empty part in its domain");
}

static void
test_domain_leading_hyphen (void)
{
  assert_refused ("a@-example.org", "starts or ends with a hyphen");
}

static void
test_domain_trailing_hyphen (void)
{
  assert_refused ("a@example-.org", "starts or ends with a hyphen");
}

static void
test_domain_underscore (void)
{
  assert_refused ("a@ex_ample.org", "“_” in its domain");
}

static void
test_domain_bracket_in_name (void)
{
  assert_refused ("a@example[1].org", "“[” in its domain");
}

static void
test_literal_unclosed (void)
{
  assert_refused ("a@[192.0.2.1", "closing “]”");
}

static void
test_literal_bad_ipv4 (void)
{
  assert_refused ("a@[192.0.2.256]", "address literal");
}

static void
test_literal_short_ipv4 (void)
{
  assert_refused ("a@[192.0.2]", "address literal");
}

static void
test_literal_ipv6_without_tag (void)
{
  assert_refused ("a@[2001:db8::1]", "address literal");
}

static void
test_literal_bad_ipv6 (void)
{
  assert_refused ("a@[IPv6:2001:db8:::1]", "address literal");
}

static void
test_literal_ipv4_with_ipv6_tag (void)
{
  assert_refused ("a@[IPv6:192.0.2.1]", "address literal");
}

static void
test_literal_general (void)
{
  assert_refused ("a@[x400:abc]", "address literal");
}

static void
test_is_ascii (void)
{
  g_assert_true (outbox_address_is_ascii ("someone@example.org"));
  g_assert_true (outbox_address_is_ascii (""));
}

static void
test_is_not_ascii (void)
{
  g_assert_false (outbox_address_is_ascii ("jörg@example.org"));
  g_assert_false (outbox_address_is_ascii ("jorg@bücher.example"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/address/valid/simple", test_simple);
  g_test_add_func ("/address/valid/atext-specials", test_atext_specials);
  g_test_add_func ("/address/valid/dots-in-local-part", test_dots_in_local_part);
  g_test_add_func ("/address/valid/single-label-domain", test_single_label_domain);
  g_test_add_func ("/address/valid/quoted-local-part", test_quoted_local_part);
  g_test_add_func ("/address/valid/quoted-specials", test_quoted_specials);
  g_test_add_func ("/address/valid/non-ascii", test_non_ascii);
  g_test_add_func ("/address/valid/ipv4-literal", test_ipv4_literal);
  g_test_add_func ("/address/valid/ipv6-literal", test_ipv6_literal);
  g_test_add_func ("/address/valid/longest-parts", test_longest_parts);
  g_test_add_func ("/address/valid/longest-path", test_longest_path);
  g_test_add_func ("/address/valid/empty-allowed", test_empty_allowed);
  g_test_add_func ("/address/invalid/empty", test_empty_refused);
  g_test_add_func ("/address/invalid/no-at", test_no_at);
  g_test_add_func ("/address/invalid/two-at", test_two_at);
  g_test_add_func ("/address/invalid/empty-local-part", test_empty_local_part);
  g_test_add_func ("/address/invalid/empty-quoted-local-part", test_empty_quoted_local_part);
  g_test_add_func ("/address/invalid/empty-domain", test_empty_domain);
  g_test_add_func ("/address/invalid/space", test_space);
  g_test_add_func ("/address/invalid/space-in-domain", test_space_in_domain);
  g_test_add_func ("/address/invalid/display-name", test_display_name);
  g_test_add_func ("/address/invalid/angle-brackets", test_angle_brackets);
  g_test_add_func ("/address/invalid/angle-bracket-inside-quotes",
                   test_angle_bracket_inside_quotes);
  g_test_add_func ("/address/invalid/comma", test_comma);
  g_test_add_func ("/address/invalid/stray-quote", test_stray_quote);
  g_test_add_func ("/address/invalid/text-after-quote", test_text_after_quote);
  g_test_add_func ("/address/invalid/unclosed-quote", test_unclosed_quote);
  g_test_add_func ("/address/invalid/bad-quoted-pair", test_bad_quoted_pair);
  g_test_add_func ("/address/invalid/bracket-in-local-part", test_bracket_in_local_part);
  g_test_add_func ("/address/invalid/cr", test_cr);
  g_test_add_func ("/address/invalid/lf", test_lf);
  g_test_add_func ("/address/invalid/lf-inside-quotes", test_lf_inside_quotes);
  g_test_add_func ("/address/invalid/tab-inside-quotes", test_tab_inside_quotes);
  g_test_add_func ("/address/invalid/delete", test_delete);
  g_test_add_func ("/address/invalid/c1-control", test_c1_control);
  g_test_add_func ("/address/invalid/invalid-utf8", test_invalid_utf8);
  g_test_add_func ("/address/invalid/local-part-too-long", test_local_part_too_long);
  g_test_add_func ("/address/invalid/quoted-local-part-too-long", test_quoted_local_part_too_long);
  g_test_add_func ("/address/invalid/domain-too-long", test_domain_too_long);
  g_test_add_func ("/address/invalid/path-too-long", test_path_too_long);
  g_test_add_func ("/address/invalid/shown-address-truncated", test_shown_address_truncated);
  g_test_add_func ("/address/invalid/label-too-long", test_label_too_long);
  g_test_add_func ("/address/invalid/domain-leading-dot", test_domain_leading_dot);
  g_test_add_func ("/address/invalid/domain-trailing-dot", test_domain_trailing_dot);
  g_test_add_func ("/address/invalid/domain-double-dot", test_domain_double_dot);
  g_test_add_func ("/address/invalid/domain-leading-hyphen", test_domain_leading_hyphen);
  g_test_add_func ("/address/invalid/domain-trailing-hyphen", test_domain_trailing_hyphen);
  g_test_add_func ("/address/invalid/domain-underscore", test_domain_underscore);
  g_test_add_func ("/address/invalid/domain-bracket-in-name", test_domain_bracket_in_name);
  g_test_add_func ("/address/invalid/literal-unclosed", test_literal_unclosed);
  g_test_add_func ("/address/invalid/literal-bad-ipv4", test_literal_bad_ipv4);
  g_test_add_func ("/address/invalid/literal-short-ipv4", test_literal_short_ipv4);
  g_test_add_func ("/address/invalid/literal-ipv6-without-tag", test_literal_ipv6_without_tag);
  g_test_add_func ("/address/invalid/literal-bad-ipv6", test_literal_bad_ipv6);
  g_test_add_func ("/address/invalid/literal-ipv4-with-ipv6-tag", test_literal_ipv4_with_ipv6_tag);
  g_test_add_func ("/address/invalid/literal-general", test_literal_general);
  g_test_add_func ("/address/is-ascii", test_is_ascii);
  g_test_add_func ("/address/is-not-ascii", test_is_not_ascii);

  return g_test_run ();
}
