/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <glib/gstdio.h>
#include <sys/stat.h>

#include "outbox-account.h"
#include "outbox-error.h"

typedef struct
{
  char *dir;
  char *path;
  OutboxAccountStore *store;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("outbox-account-XXXXXX", &error);
  g_assert_no_error (error);
  f->path = g_build_filename (f->dir, "outbox", "accounts.conf", NULL);
  f->store = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (f->store);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  outbox_account_store_free (f->store);
  remove_tree (f->dir);
  g_free (f->path);
  g_free (f->dir);
}

static GVariant *
settings (const char *from, const char *smtp)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (from != NULL)
    g_variant_builder_add (&builder, "{sv}", "from", g_variant_new_string (from));
  if (smtp != NULL)
    g_variant_builder_add (&builder, "{sv}", "smtp", g_variant_new_string (smtp));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static GVariant *
one_setting (const char *key, GVariant *value)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&builder, "{sv}", key, value);
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static void
add_ok (Fixture *f, const char *name, const char *from, const char *smtp)
{
  g_autoptr (GVariant) s = settings (from, smtp);
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_account_store_add (f->store, name, s, &error));
  g_assert_no_error (error);
}

static void
test_add_and_reload (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxAccountStore) reloaded = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  const OutboxAccountConfig *account;
  struct stat st;

  add_ok (f, "work", "me@example.org", "smtps://me@mail.example.org");
  g_assert_cmpint (g_stat (f->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  g_assert_true (g_file_get_contents (f->path, &contents, NULL, NULL));
  g_assert_nonnull (strstr (contents, "[account work]"));
  g_assert_nonnull (strstr (contents, "smtp=smtps://me@mail.example.org:465"));

  reloaded = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  account = outbox_account_store_lookup (reloaded, "work");
  g_assert_nonnull (account);
  g_assert_cmpstr (account->from, ==, "me@example.org");
  g_assert_cmpstr (account->smtp->host, ==, "mail.example.org");
  g_assert_cmpuint (account->smtp->port, ==, 465);
  g_assert_true (account->is_default);
}

static void
test_default_moves (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) make_default = one_setting ("default", g_variant_new_boolean (TRUE));
  g_autoptr (GError) error = NULL;

  add_ok (f, "a", "a@example.org", "smtps://a.example.org");
  add_ok (f, "b", "b@example.org", "smtps://b.example.org");
  g_assert_cmpstr (outbox_account_store_get_default (f->store)->name, ==, "a");

  g_assert_true (outbox_account_store_update (f->store, "b", make_default, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (outbox_account_store_get_default (f->store)->name, ==, "b");
  g_assert_false (outbox_account_store_lookup (f->store, "a")->is_default);

  g_assert_true (outbox_account_store_remove (f->store, "b", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (outbox_account_store_get_default (f->store)->name, ==, "a");
}

static void
assert_add_fails (Fixture *f, GVariant *s, GQuark domain, int code)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_account_store_add (f->store, "bad", s, &error));
  g_assert_error (error, domain, code);
  g_assert_null (outbox_account_store_lookup (f->store, "bad"));
  g_assert_false (g_file_test (f->path, G_FILE_TEST_EXISTS));
}

static void
test_invalid_settings (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) no_from = settings (NULL, "smtps://mail.example.org");
  g_autoptr (GVariant) no_smtp = settings ("me@example.org", NULL);
  g_autoptr (GVariant) bad_from = settings ("me\r\n@example.org", "smtps://mail.example.org");
  g_autoptr (GVariant) imap_as_smtp = settings ("me@example.org", "imaps://mail.example.org");
  g_autoptr (GVariant) clear_password = settings ("me@example.org", "smtp+insecure://me@mail.example.org");
  g_autoptr (GVariant) unknown = one_setting ("colour", g_variant_new_string ("blue"));
  g_autoptr (GVariant) wrong_type = one_setting ("from", g_variant_new_int32 (3));
  g_autoptr (GVariant) relative_ca = one_setting ("tls-ca-file", g_variant_new_string ("ca.pem"));
  g_autoptr (GVariant) bad_auth = one_setting ("auth", g_variant_new_string ("CRAM-MD5"));

  assert_add_fails (f, no_from, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  assert_add_fails (f, no_smtp, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  assert_add_fails (f, bad_from, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  assert_add_fails (f, imap_as_smtp, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  assert_add_fails (f, clear_password, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  assert_add_fails (f, unknown, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  assert_add_fails (f, wrong_type, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  assert_add_fails (f, relative_ca, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  assert_add_fails (f, bad_auth, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
}

static void
test_insecure_loopback_with_user (Fixture *f, gconstpointer data)
{
  add_ok (f, "local", "me@example.org", "smtp+insecure://me@127.0.0.1:2525");
  g_assert_cmpuint (outbox_account_store_lookup (f->store, "local")->smtp->port, ==, 2525);
}

static void
test_name_rules (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) s = settings ("me@example.org", "smtps://mail.example.org");
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_account_store_add (f->store, "has space", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_clear_error (&error);
  g_assert_false (outbox_account_store_add (f->store, "", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_clear_error (&error);

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  g_assert_false (outbox_account_store_add (f->store, "work", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_ACCOUNT_EXISTS);
}

static void
test_find_by_address (Fixture *f, gconstpointer data)
{
  add_ok (f, "a", "Ann@Example.org", "smtps://a.example.org");
  add_ok (f, "b", "bob@example.net", "smtps://b.example.org");

  g_assert_cmpstr (outbox_account_store_find_by_address (f->store, "Ann@example.ORG")->name, ==,
                   "a");
  g_assert_cmpstr (outbox_account_store_find_by_address (f->store, "bob@example.net")->name, ==,
                   "b");
  /* Local parts are case-sensitive (RFC 5321 section 2.4). */
  g_assert_null (outbox_account_store_find_by_address (f->store, "ann@example.org"));
  g_assert_null (outbox_account_store_find_by_address (f->store, NULL));
}

static void
test_same_from_default_wins (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) make_default = one_setting ("default", g_variant_new_boolean (TRUE));
  g_autoptr (GError) error = NULL;

  add_ok (f, "a", "other@example.org", "smtps://a.example.org");
  add_ok (f, "b", "me@example.org", "smtps://b.example.org");
  add_ok (f, "c", "me@example.org", "smtps://c.example.org");
  /* No default among them: the first by name. */
  g_assert_cmpstr (outbox_account_store_find_by_address (f->store, "me@example.org")->name, ==,
                   "b");
  g_assert_true (outbox_account_store_update (f->store, "c", make_default, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (outbox_account_store_find_by_address (f->store, "me@example.org")->name, ==,
                   "c");
}

static void
set_aliases_ok (Fixture *f, const char *name, const char *const *aliases)
{
  g_autoptr (GVariant) s = one_setting ("aliases", g_variant_new_strv (aliases, -1));
  g_autoptr (GError) error = NULL;

  g_assert_true (outbox_account_store_update (f->store, name, s, &error));
  g_assert_no_error (error);
}

static const char *
account_for (Fixture *f, const char *address)
{
  const OutboxAccountConfig *account = outbox_account_store_find_by_address (f->store, address);

  return account != NULL ? account->name : NULL;
}

static void
test_aliases_choose_account (Fixture *f, gconstpointer data)
{
  const char *const work_aliases[] = { "boss@example.org", "*@example.org", NULL };
  const char *const home_aliases[] = { "me@Example.NET", NULL };

  add_ok (f, "home", "me@example.com", "smtps://home.example.com");
  add_ok (f, "work", "me@example.org", "smtps://work.example.org");
  set_aliases_ok (f, "work", work_aliases);
  set_aliases_ok (f, "home", home_aliases);

  g_assert_cmpstr (account_for (f, "boss@example.org"), ==, "work");
  g_assert_cmpstr (account_for (f, "anyone@EXAMPLE.org"), ==, "work");
  g_assert_cmpstr (account_for (f, "me@example.net"), ==, "home");
  g_assert_null (account_for (f, "me@sub.example.org"));
  g_assert_null (account_for (f, "Me@example.net"));
}

static void
test_exact_alias_beats_wildcard (Fixture *f, gconstpointer data)
{
  const char *const catch_all[] = { "*@example.org", NULL };
  const char *const exact[] = { "sales@example.org", NULL };
  g_autoptr (GVariant) make_default = one_setting ("default", g_variant_new_boolean (TRUE));
  g_autoptr (GError) error = NULL;

  add_ok (f, "a-catch-all", "me@example.com", "smtps://a.example.com");
  add_ok (f, "b-sales", "me@example.net", "smtps://b.example.net");
  set_aliases_ok (f, "a-catch-all", catch_all);
  set_aliases_ok (f, "b-sales", exact);
  /* The default covers the address only by its wildcard: the exact one wins. */
  g_assert_true (outbox_account_store_lookup (f->store, "a-catch-all")->is_default);
  g_assert_cmpstr (account_for (f, "sales@example.org"), ==, "b-sales");
  g_assert_cmpstr (account_for (f, "info@example.org"), ==, "a-catch-all");

  /* Two wildcards: the default wins the tie. */
  add_ok (f, "c-other", "me@example.info", "smtps://c.example.info");
  set_aliases_ok (f, "c-other", catch_all);
  g_assert_true (outbox_account_store_update (f->store, "c-other", make_default, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (account_for (f, "info@example.org"), ==, "c-other");
  g_assert_cmpstr (account_for (f, "sales@example.org"), ==, "b-sales");
}

static void
test_aliases_saved_and_cleared (Fixture *f, gconstpointer data)
{
  const char *const aliases[] = { "a@example.org", "*@example.net", NULL };
  const char *const none[] = { NULL };
  g_autoptr (OutboxAccountStore) reloaded = NULL;
  g_autoptr (GVariant) listed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree const char **shown = NULL;
  const OutboxAccountConfig *account;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  set_aliases_ok (f, "work", aliases);
  reloaded = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  account = outbox_account_store_lookup (reloaded, "work");
  g_assert_cmpstrv (account->aliases, aliases);
  listed = g_variant_ref_sink (outbox_account_config_to_variant (account));
  g_assert_true (g_variant_lookup (listed, "aliases", "^a&s", &shown));
  g_assert_cmpstrv (shown, aliases);

  set_aliases_ok (f, "work", none);
  g_assert_null (outbox_account_store_lookup (f->store, "work")->aliases);
  g_assert_null (account_for (f, "a@example.org"));
}

static void
assert_alias_refused (Fixture *f, const char *alias, const char *hint)
{
  const char *const aliases[] = { alias, NULL };
  g_autoptr (GVariant) s = one_setting ("aliases", g_variant_new_strv (aliases, -1));
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_account_store_update (f->store, "work", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_nonnull (strstr (error->message, "aliases"));
  g_assert_nonnull (strstr (error->message, hint));
  g_assert_null (outbox_account_store_lookup (f->store, "work")->aliases);
}

static void
test_bad_aliases_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) wrong_type = one_setting ("aliases", g_variant_new_string ("a@example.org"));
  g_autoptr (GError) error = NULL;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  assert_alias_refused (f, "no-at-sign", "no-at-sign");
  assert_alias_refused (f, "a\r\n@example.org", "aliases");
  assert_alias_refused (f, "sales*@example.org", "*@example.org");
  assert_alias_refused (f, "*@*.example.org", "*@example.org");
  assert_alias_refused (f, "*@", "*@");
  g_assert_false (outbox_account_store_update (f->store, "work", wrong_type, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
}

static void
test_unknown_account (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) s = settings ("me@example.org", NULL);
  g_autoptr (GError) error = NULL;

  g_assert_false (outbox_account_store_update (f->store, "nope", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT);
  g_clear_error (&error);
  g_assert_false (outbox_account_store_remove (f->store, "nope", &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT);
}

static void
test_write_failure_changes_nothing (Fixture *f, gconstpointer data)
{
  g_autofree char *blocker = g_path_get_dirname (f->path);
  g_autoptr (GVariant) s = settings ("me@example.org", "smtps://mail.example.org");
  g_autoptr (GError) error = NULL;

  /* A file where the accounts directory should be: the write must fail. */
  g_assert_true (g_file_set_contents (blocker, "", 0, NULL));
  g_assert_false (outbox_account_store_add (f->store, "work", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
  g_assert_cmpuint (outbox_account_store_list (f->store)->len, ==, 0);
  g_assert_null (outbox_account_store_lookup (f->store, "work"));
}

/* A file as a hand would write it. */
static void
write_accounts_file (Fixture *f, const char *contents)
{
  g_autofree char *dir = g_path_get_dirname (f->path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (f->path, contents, -1, NULL));
}

static void
test_bad_file_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxAccountStore) store = NULL;
  g_autoptr (GError) error = NULL;

  write_accounts_file (f, "[account x]\nfrom=me@example.org\nsmtp=ftp://host\n");
  store = outbox_account_store_load (f->path, &error);
  g_assert_null (store);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_nonnull (strstr (error->message, "[account x]"));
}

static void
test_timeout_caps_defaults (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) cap = one_setting ("timeout", g_variant_new_uint32 (5));
  g_autoptr (GError) error = NULL;
  const OutboxAccountConfig *account;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  account = outbox_account_store_lookup (f->store, "work");
  g_assert_cmpuint (account->timeouts.data_final, ==, 600);
  g_assert_true (outbox_account_store_update (f->store, "work", cap, &error));
  g_assert_no_error (error);
  account = outbox_account_store_lookup (f->store, "work");
  g_assert_cmpuint (account->timeouts.data_final, ==, 5);
  g_assert_cmpuint (account->timeouts.greeting, ==, 5);
}

static void
test_numeric_settings (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) too_many = one_setting ("max-connections", g_variant_new_uint32 (17));
  g_autoptr (GVariant) retry = one_setting ("retry-first", g_variant_new_uint32 (5));
  g_autoptr (GVariant) back_to_default = one_setting ("retry-first", g_variant_new_uint32 (0));
  g_autoptr (OutboxAccountStore) reloaded = NULL;
  g_autoptr (GError) error = NULL;
  const OutboxAccountConfig *account;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  account = outbox_account_store_lookup (f->store, "work");
  g_assert_cmpuint (account->max_connections, ==, 2);
  g_assert_cmpuint (account->retry_first, ==, 60);
  g_assert_cmpuint (account->retry_max, ==, 3600);
  g_assert_cmpuint (account->give_up_after, ==, 5 * 86400);

  g_assert_false (outbox_account_store_update (f->store, "work", too_many, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_clear_error (&error);

  g_assert_true (outbox_account_store_update (f->store, "work", retry, &error));
  g_assert_no_error (error);
  reloaded = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (outbox_account_store_lookup (reloaded, "work")->retry_first, ==, 5);

  g_assert_true (outbox_account_store_update (f->store, "work", back_to_default, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (outbox_account_store_lookup (f->store, "work")->retry_first, ==, 60);
}

/* dsn-notify and dsn-required: set, shown, kept in the file, cleared. */
static void
test_dsn_settings (Fixture *f, gconstpointer data)
{
  const char *const notify[] = { "delay", "failure", NULL };
  const char *const none[] = { NULL };
  const char *const expected[] = { "failure", "delay", NULL };
  g_autoptr (GVariant) set_notify = one_setting ("dsn-notify", g_variant_new_strv (notify, -1));
  g_autoptr (GVariant) clear_notify = one_setting ("dsn-notify", g_variant_new_strv (none, -1));
  g_autoptr (GVariant) required = one_setting ("dsn-required", g_variant_new_boolean (TRUE));
  g_autoptr (OutboxAccountStore) reloaded = NULL;
  g_autoptr (GVariant) listed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  g_autofree const char **shown = NULL;
  const OutboxAccountConfig *account;
  gboolean flag = FALSE;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  account = outbox_account_store_lookup (f->store, "work");
  g_assert_cmpint (account->dsn_notify, ==, OUTBOX_DSN_NOTIFY_DEFAULT);
  g_assert_false (account->dsn_required);
  g_assert_true (outbox_account_store_update (f->store, "work", set_notify, &error));
  g_assert_true (outbox_account_store_update (f->store, "work", required, &error));
  g_assert_no_error (error);

  g_assert_true (g_file_get_contents (f->path, &contents, NULL, NULL));
  g_assert_nonnull (strstr (contents, "dsn-notify=failure;delay;"));
  g_assert_nonnull (strstr (contents, "dsn-required=true"));
  reloaded = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  account = outbox_account_store_lookup (reloaded, "work");
  g_assert_cmpint (account->dsn_notify, ==, OUTBOX_DSN_NOTIFY_FAILURE | OUTBOX_DSN_NOTIFY_DELAY);
  g_assert_true (account->dsn_required);
  listed = g_variant_ref_sink (outbox_account_config_to_variant (account));
  g_assert_true (g_variant_lookup (listed, "dsn-notify", "^a&s", &shown));
  g_assert_cmpstrv (shown, expected);
  g_assert_true (g_variant_lookup (listed, "dsn-required", "b", &flag));
  g_assert_true (flag);

  g_assert_true (outbox_account_store_update (f->store, "work", clear_notify, &error));
  g_assert_no_error (error);
  g_assert_cmpint (outbox_account_store_lookup (f->store, "work")->dsn_notify, ==,
                   OUTBOX_DSN_NOTIFY_DEFAULT);
}

/* send-delay (undo send): 0 by default, kept in the file and listed,
 * at most a day, and 0 sends at once again. */
static void
test_send_delay (Fixture *f, gconstpointer data)
{
  g_autoptr (GVariant) ten = one_setting ("send-delay", g_variant_new_uint32 (10));
  g_autoptr (GVariant) too_long = one_setting ("send-delay", g_variant_new_uint32 (86401));
  g_autoptr (GVariant) off = one_setting ("send-delay", g_variant_new_uint32 (0));
  g_autoptr (OutboxAccountStore) reloaded = NULL;
  g_autoptr (GVariant) listed = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *contents = NULL;
  const OutboxAccountConfig *account;
  guint32 value = 0;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  account = outbox_account_store_lookup (f->store, "work");
  g_assert_cmpuint (account->send_delay, ==, 0);
  listed = g_variant_ref_sink (outbox_account_config_to_variant (account));
  g_assert_false (g_variant_lookup (listed, "send-delay", "u", &value));
  g_clear_pointer (&listed, g_variant_unref);

  g_assert_false (outbox_account_store_update (f->store, "work", too_long, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_nonnull (strstr (error->message, "send-delay"));
  g_clear_error (&error);

  g_assert_true (outbox_account_store_update (f->store, "work", ten, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (f->path, &contents, NULL, NULL));
  g_assert_nonnull (strstr (contents, "send-delay=10"));
  reloaded = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  account = outbox_account_store_lookup (reloaded, "work");
  g_assert_cmpuint (account->send_delay, ==, 10);
  listed = g_variant_ref_sink (outbox_account_config_to_variant (account));
  g_assert_true (g_variant_lookup (listed, "send-delay", "u", &value));
  g_assert_cmpuint (value, ==, 10);

  g_assert_true (outbox_account_store_update (f->store, "work", off, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (outbox_account_store_lookup (f->store, "work")->send_delay, ==, 0);
}

/* A hand-written list with commas reads as the API's words would. */
static void
test_dsn_notify_from_file (Fixture *f, gconstpointer data)
{
  g_autoptr (OutboxAccountStore) store = NULL;
  g_autoptr (GError) error = NULL;

  write_accounts_file (f, "[account x]\nfrom=me@example.org\n"
                          "smtp=smtps://mail.example.org\ndsn-notify=success,failure\n");
  store = outbox_account_store_load (f->path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (outbox_account_store_lookup (store, "x")->dsn_notify, ==,
                   OUTBOX_DSN_NOTIFY_SUCCESS | OUTBOX_DSN_NOTIFY_FAILURE);
}

static void
test_dsn_notify_refused (Fixture *f, gconstpointer data)
{
  const char *const bad[] = { "never", "delay", NULL };
  g_autoptr (GVariant) s = one_setting ("dsn-notify", g_variant_new_strv (bad, -1));
  g_autoptr (GError) error = NULL;

  add_ok (f, "work", "me@example.org", "smtps://mail.example.org");
  g_assert_false (outbox_account_store_update (f->store, "work", s, &error));
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT);
  g_assert_nonnull (strstr (error->message, "Setting “dsn-notify”: never cannot go with"));
  g_assert_cmpint (outbox_account_store_lookup (f->store, "work")->dsn_notify, ==,
                   OUTBOX_DSN_NOTIFY_DEFAULT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/account/store/add-and-reload", test_add_and_reload);
  ADD ("/account/store/default-moves", test_default_moves);
  ADD ("/account/store/invalid-settings", test_invalid_settings);
  ADD ("/account/store/insecure-loopback-with-user", test_insecure_loopback_with_user);
  ADD ("/account/store/name-rules", test_name_rules);
  ADD ("/account/store/find-by-address", test_find_by_address);
  ADD ("/account/store/same-from-default-wins", test_same_from_default_wins);
  ADD ("/account/store/aliases-choose-account", test_aliases_choose_account);
  ADD ("/account/store/exact-alias-beats-wildcard", test_exact_alias_beats_wildcard);
  ADD ("/account/store/aliases-saved-and-cleared", test_aliases_saved_and_cleared);
  ADD ("/account/store/bad-aliases-refused", test_bad_aliases_refused);
  ADD ("/account/store/unknown-account", test_unknown_account);
  ADD ("/account/store/write-failure-changes-nothing", test_write_failure_changes_nothing);
  ADD ("/account/store/bad-file-refused", test_bad_file_refused);
  ADD ("/account/store/dsn-settings", test_dsn_settings);
  ADD ("/account/store/dsn-notify-from-file", test_dsn_notify_from_file);
  ADD ("/account/store/dsn-notify-refused", test_dsn_notify_refused);
  ADD ("/account/store/timeout-caps-defaults", test_timeout_caps_defaults);
  ADD ("/account/store/numeric-settings", test_numeric_settings);
  ADD ("/account/store/send-delay", test_send_delay);
#undef ADD

  return g_test_run ();
}
