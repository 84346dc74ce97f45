/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-error.h"
#include "outbox-options.h"

/* Declared a{sv} options: one table, one check, one wording. */

static gboolean
check_even (const char *key, GVariant *value, GError **error)
{
  if (g_variant_get_uint32 (value) % 2 == 0)
    return TRUE;
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS, "Option “%s” must be even", key);
  return FALSE;
}

static const OutboxOption table[] = {
  { "name", "s", NULL },
  { "count", "u", check_even },
  { "after", "(xs)", NULL },
};

static gboolean
check (const char *text, GVariant **values, GError **error)
{
  g_autoptr (GVariant) options = g_variant_ref_sink (g_variant_new_parsed (text));

  return outbox_options_check (options, table, G_N_ELEMENTS (table), "Frob", values, error);
}

static void
test_values (void)
{
  GVariant *values[G_N_ELEMENTS (table)];
  g_autoptr (GError) error = NULL;

  g_assert_true (check ("{'count': <@u 4>, 'name': <'a'>, 'name': <'b'>}", values, &error));
  g_assert_no_error (error);
  /* A key given twice: the last one. */
  g_assert_cmpstr (g_variant_get_string (values[0], NULL), ==, "b");
  g_assert_cmpuint (g_variant_get_uint32 (values[1]), ==, 4);
  g_assert_null (values[2]);
  outbox_options_clear (values, G_N_ELEMENTS (table));
  g_assert_null (values[0]);
}

static void
test_empty (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (check ("@a{sv} {}", NULL, &error));
  g_assert_no_error (error);
}

static void
test_unknown_names_the_known (void)
{
  GVariant *values[G_N_ELEMENTS (table)];
  g_autoptr (GError) error = NULL;

  g_assert_false (check ("{'name': <'a'>, 'colour': <'red'>}", values, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_cmpstr (error->message, ==,
                   "Unknown option “colour”; Frob knows “name”, “count” and “after”");
  /* Nothing is left to free after a refusal. */
  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    g_assert_null (values[i]);
}

static void
test_wrong_type (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (check ("{'count': <'4'>}", NULL, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_cmpstr (error->message, ==, "Option “count” must be of type “u”, not “s”");
}

static void
test_check_refuses (void)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (check ("{'count': <@u 3>}", NULL, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_cmpstr (error->message, ==, "Option “count” must be even");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/options/values", test_values);
  g_test_add_func ("/options/empty", test_empty);
  g_test_add_func ("/options/unknown-names-the-known", test_unknown_names_the_known);
  g_test_add_func ("/options/wrong-type", test_wrong_type);
  g_test_add_func ("/options/check-refuses", test_check_refuses);
  return g_test_run ();
}
