/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-error.h"
#include "outbox-smtp-dsn.h"

/* Delivery status notifications: the words, the envelope ID, xtext. */

static void
test_xtext_encode (void)
{
  static const struct
  {
    const char *in;
    const char *out;
  } cases[] = {
    { "plain-ID.42", "plain-ID.42" },
    { "a+b", "a+2Bb" },
    { "a=b", "a+3Db" },
    { "two words", "two+20words" },
    { "caf\xc3\xa9", "caf+C3+A9" },
    { "tab\there", "tab+09here" },
    { "~!", "~!" },
    { "\x7f", "+7F" },
    { "", "" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *encoded = outbox_xtext_encode (cases[i].in);
      g_autofree char *decoded = outbox_xtext_decode (encoded);

      g_assert_cmpstr (encoded, ==, cases[i].out);
      g_assert_cmpstr (decoded, ==, cases[i].in);
    }
}

static void
test_xtext_decode_refuses (void)
{
  static const char *const bad[] = {
    "a+2b",   /* lower-case hex */
    "a+2",    /* cut short */
    "a+",     /* nothing after the plus */
    "a=b",    /* '=' must be encoded */
    "a b",    /* so must a space */
    "a+00b",  /* a NUL */
    "caf\xc3\xa9",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *decoded = outbox_xtext_decode (bad[i]);

      g_assert_null (decoded);
    }
}

static void
test_utf8_addr_xtext (void)
{
  g_autofree char *plain = outbox_utf8_addr_xtext_encode ("bob@example.org");
  g_autofree char *accented = outbox_utf8_addr_xtext_encode ("jos\xc3\xa9@example.org");
  g_autofree char *cjk = outbox_utf8_addr_xtext_encode ("\xe7\x94\xb0\xe4\xb8\xad@example.jp");
  g_autofree char *specials = outbox_utf8_addr_xtext_encode ("a+b=c\\d@example.org");

  g_assert_cmpstr (plain, ==, "bob@example.org");
  g_assert_cmpstr (accented, ==, "jos\\x{E9}@example.org");
  g_assert_cmpstr (cjk, ==, "\\x{7530}\\x{4E2D}@example.jp");
  g_assert_cmpstr (specials, ==, "a\\x{2B}b\\x{3D}c\\x{5C}d@example.org");
}

static void
assert_notify (const char *list, OutboxDsnNotify expected, const char *words)
{
  OutboxDsnNotify notify = OUTBOX_DSN_NOTIFY_DEFAULT;
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;

  g_assert_true (outbox_dsn_notify_parse (list, &notify, &error));
  g_assert_no_error (error);
  g_assert_cmpint (notify, ==, expected);
  text = outbox_dsn_notify_to_string (notify, FALSE);
  g_assert_cmpstr (text, ==, words);
}

static void
test_notify_parse (void)
{
  assert_notify ("never", OUTBOX_DSN_NOTIFY_NEVER, "never");
  assert_notify ("failure,delay", OUTBOX_DSN_NOTIFY_FAILURE | OUTBOX_DSN_NOTIFY_DELAY,
                 "failure,delay");
  /* Any order, any case, spaces too, as Postfix's -N takes them. */
  assert_notify ("Delay, SUCCESS failure",
                 OUTBOX_DSN_NOTIFY_SUCCESS | OUTBOX_DSN_NOTIFY_FAILURE | OUTBOX_DSN_NOTIFY_DELAY,
                 "success,failure,delay");
  assert_notify ("success,success", OUTBOX_DSN_NOTIFY_SUCCESS, "success");
}

static void
test_notify_words (void)
{
  static const char *const words[] = { "success", "delay,failure", NULL };
  OutboxDsnNotify notify = OUTBOX_DSN_NOTIFY_DEFAULT;
  g_autoptr (GError) error = NULL;
  g_autofree char *upper = NULL;
  g_auto (GStrv) back = NULL;

  g_assert_true (outbox_dsn_notify_from_words (words, &notify, &error));
  g_assert_no_error (error);
  upper = outbox_dsn_notify_to_string (notify, TRUE);
  g_assert_cmpstr (upper, ==, "SUCCESS,FAILURE,DELAY");
  back = outbox_dsn_notify_to_words (notify);
  g_assert_cmpuint (g_strv_length (back), ==, 3);
  g_assert_cmpstr (back[0], ==, "success");
  g_assert_cmpstr (back[2], ==, "delay");
}

static void
assert_notify_refused (const char *list, const char *says)
{
  OutboxDsnNotify notify = OUTBOX_DSN_NOTIFY_DELAY;
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_dsn_notify_parse (list, &notify, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_nonnull (strstr (error->message, says));
  g_assert_cmpint (notify, ==, OUTBOX_DSN_NOTIFY_DELAY);
}

static void
test_notify_refused (void)
{
  /* Each message names what would do. */
  assert_notify_refused ("bogus", "“bogus” is not a condition to notify of: give never, or one "
                                  "or more of success, failure and delay");
  assert_notify_refused ("never,failure", "never cannot go with success, failure or delay");
  assert_notify_refused ("", "no condition to notify of: give never");
  assert_notify_refused (" , ", "no condition to notify of");
  assert_notify_refused ("failures", "“failures”");
  assert_notify_refused ("fail\nure", "“fail?ure”");
}

static void
test_ret (void)
{
  OutboxDsnRet ret = OUTBOX_DSN_RET_DEFAULT;
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_dsn_ret_parse ("HDRS", &ret, &error));
  g_assert_cmpint (ret, ==, OUTBOX_DSN_RET_HDRS);
  g_assert_cmpstr (outbox_dsn_ret_to_string (ret), ==, "hdrs");
  g_assert_true (outbox_dsn_ret_parse ("full", &ret, &error));
  g_assert_cmpint (ret, ==, OUTBOX_DSN_RET_FULL);
  g_assert_null (outbox_dsn_ret_to_string (OUTBOX_DSN_RET_DEFAULT));
  g_assert_no_error (error);

  g_assert_false (outbox_dsn_ret_parse ("headers", &ret, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_nonnull (strstr (error->message, "give full (the whole message) or hdrs"));
  g_assert_cmpint (ret, ==, OUTBOX_DSN_RET_FULL);
}

static void
assert_envid_refused (const char *envid, const char *says)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_dsn_envid_validate (envid, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_nonnull (strstr (error->message, says));
}

static void
test_envid_limits (void)
{
  g_autofree char *hundred = g_strnfill (OUTBOX_DSN_ENVID_MAX, 'x');
  g_autofree char *too_long = g_strnfill (OUTBOX_DSN_ENVID_MAX + 1, 'x');
  /* 33 pluses and an x are 100 characters once encoded; 34 pluses, 102. */
  g_autofree char *pluses = g_strnfill (33, '+');
  g_autofree char *fits = g_strconcat (pluses, "x", NULL);
  g_autofree char *over = g_strconcat (pluses, "+", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_dsn_envid_validate ("a", &error));
  g_assert_true (outbox_dsn_envid_validate ("with spaces and = + signs", &error));
  g_assert_true (outbox_dsn_envid_validate (hundred, &error));
  g_assert_true (outbox_dsn_envid_validate (fits, &error));
  g_assert_no_error (error);

  assert_envid_refused ("", "the envelope ID is 0 characters; give 1 to 100");
  assert_envid_refused (too_long, "the envelope ID is 101 characters; give 1 to 100");
  assert_envid_refused (over, "102 characters once xtext-encoded");
  assert_envid_refused ("caf\xc3\xa9", "not printable ASCII");
  assert_envid_refused ("a\r\nRSET", "not printable ASCII");
}

static void
test_request_asks (void)
{
  OutboxDsnRequest request = { 0 };

  g_assert_false (outbox_dsn_request_asks (NULL));
  g_assert_false (outbox_dsn_request_asks (&request));
  /* Requiring alone asks the server for nothing. */
  request.required = TRUE;
  g_assert_false (outbox_dsn_request_asks (&request));
  request.envid = "id";
  g_assert_true (outbox_dsn_request_asks (&request));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/smtp/dsn/xtext/encode", test_xtext_encode);
  g_test_add_func ("/smtp/dsn/xtext/decode-refuses", test_xtext_decode_refuses);
  g_test_add_func ("/smtp/dsn/xtext/utf8-addr", test_utf8_addr_xtext);
  g_test_add_func ("/smtp/dsn/notify/parse", test_notify_parse);
  g_test_add_func ("/smtp/dsn/notify/words", test_notify_words);
  g_test_add_func ("/smtp/dsn/notify/refused", test_notify_refused);
  g_test_add_func ("/smtp/dsn/ret", test_ret);
  g_test_add_func ("/smtp/dsn/envid/limits", test_envid_limits);
  g_test_add_func ("/smtp/dsn/request-asks", test_request_asks);

  return g_test_run ();
}
