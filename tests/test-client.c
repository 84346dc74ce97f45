/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors
 *
 * libOutbox against the real outboxd on the test's private session bus.
 * tests/integration/test_client_library.py runs this program after adding
 * two accounts: "sink" (the default) to a Postfix smtp-sink that takes
 * everything, and "failing" to an smtp-sink that refuses every RCPT with a
 * 500; it checks at the sink what the daemon delivered. */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <string.h>

#include <gio/gunixinputstream.h>
#include <outbox/outbox.h>

static OutboxClient *client;

/* Waiting, with a deadline, for what the daemon reports. */

typedef gboolean (*Condition) (gpointer data);

static gboolean
wake_up (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static gboolean
wait_for (Condition condition, gpointer data, guint seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  guint ticker = g_timeout_add (50, wake_up, NULL);
  gboolean met;

  while (!(met = condition (data)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (ticker);
  return met;
}

typedef struct
{
  OutboxMessage *message;
  OutboxMessageState state;
} StateWait;

static gboolean
has_state (gpointer data)
{
  StateWait *wait = data;

  return outbox_message_get_state (wait->message) == wait->state;
}

static void
assert_reaches (OutboxMessage *message, OutboxMessageState state)
{
  StateWait wait = { message, state };

  if (!wait_for (has_state, &wait, 60))
    g_error ("message %s stayed %d, not %d (last reply: %s)", outbox_message_get_id (message),
             outbox_message_get_state (message), state, outbox_message_get_last_reply (message));
}

static gboolean
is_known (gpointer data)
{
  return outbox_client_get_message (client, data) != NULL;
}

/* The model's row for an id, and its position. */
static OutboxMessage *
model_find (GListModel *model, const char *id, guint *position)
{
  for (guint i = 0; i < g_list_model_get_n_items (model); i++)
    {
      g_autoptr (OutboxMessage) message = g_list_model_get_item (model, i);

      if (g_strcmp0 (outbox_message_get_id (message), id) == 0)
        {
          if (position != NULL)
            *position = i;
          return message;
        }
    }
  return NULL;
}

static GBytes *
make_message (const char *subject, gsize body_size)
{
  GString *text = g_string_new (NULL);

  g_string_append_printf (text,
                          "From: Alice <alice@example.org>\r\n"
                          "To: Bob <bob@example.org>\r\n"
                          "Subject: %s\r\n"
                          "\r\n", subject);
  while (body_size > 0)
    {
      gsize line = MIN (body_size, 76);

      for (gsize i = 0; i < line; i++)
        g_string_append_c (text, 'a' + (char) (i % 26));
      g_string_append (text, "\r\n");
      body_size -= line;
    }
  return g_string_free_to_bytes (text);
}

static char *
submit_sync (GBytes *message, OutboxSubmitOptions *options)
{
  g_autoptr (GError) error = NULL;
  char *id = outbox_client_submit_bytes_sync (client, message, options, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (id);
  return id;
}

static void
async_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
has_result (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

static GAsyncResult *
wait_result (GAsyncResult **result)
{
  g_assert_true (wait_for (has_result, result, 60));
  return *result;
}

/* Tests */

static void
test_client_properties (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_autoptr (OutboxClient) other = NULL;
  g_autoptr (OutboxClient) async_client = NULL;
  g_autoptr (GAsyncResult) result = NULL;

  g_assert_no_error (error);
  g_assert_true (outbox_client_get_daemon_running (client));
  g_assert_cmpstr (outbox_client_get_daemon_version (client), ==, PACKAGE_VERSION);
  g_assert_true (outbox_client_get_connection (client) != NULL);

  other = outbox_client_new_for_connection_sync (bus, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (outbox_client_get_connection (other) == bus);

  outbox_client_new (NULL, async_result, &result);
  async_client = outbox_client_new_finish (wait_result (&result), &error);
  g_assert_no_error (error);
  g_assert_true (OUTBOX_IS_CLIENT (async_client));
  g_assert_true (outbox_client_get_daemon_running (async_client));
}

static void
test_submit_bytes (void)
{
  g_autoptr (GBytes) text = make_message ("bytes", 1000);
  g_autofree char *id = submit_sync (text, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxMessage) message = outbox_client_lookup_message_sync (client, id, NULL, &error);
  const char *const *recipients;

  g_assert_no_error (error);
  g_assert_cmpstr (outbox_message_get_id (message), ==, id);
  g_assert_cmpstr (outbox_message_get_subject (message), ==, "bytes");
  g_assert_cmpstr (outbox_message_get_account (message), ==, "sink");
  recipients = outbox_message_get_recipients (message);
  g_assert_cmpuint (g_strv_length ((char **) recipients), ==, 1);
  g_assert_cmpstr (recipients[0], ==, "bob@example.org");
  g_assert_cmpuint (outbox_message_get_size (message), >, 1000);
  g_assert_nonnull (outbox_message_get_created (message));
  /* One object per message. */
  g_assert_true (outbox_client_get_message (client, id) == message);

  assert_reaches (message, OUTBOX_MESSAGE_STATE_SENT);
  g_print ("# sent %s bytes\n", id);
}

static void
test_submit_big_bytes (void)
{
  /* Over the size that goes as bytes on the bus: through a memory file. */
  g_autoptr (GBytes) text = make_message ("big bytes", 3 * 1024 * 1024);
  g_autofree char *id = submit_sync (text, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxMessage) message = outbox_client_lookup_message_sync (client, id, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (outbox_message_get_size (message), >=, g_bytes_get_size (text));
  assert_reaches (message, OUTBOX_MESSAGE_STATE_SENT);
}

static void
test_submit_stream (void)
{
  g_autoptr (GBytes) text = make_message ("memory stream", 300 * 1024);
  g_autoptr (GInputStream) memory = g_memory_input_stream_new_from_bytes (text);
  g_autoptr (GBytes) piped_text = make_message ("pipe stream", 200 * 1024);
  g_autoptr (GInputStream) pipe_in = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxMessage) first = NULL;
  g_autoptr (OutboxMessage) second = NULL;
  g_autofree char *memory_id = NULL;
  g_autofree char *pipe_id = NULL;
  g_autofree char *path = NULL;
  int fd;

  /* A stream without a descriptor, asynchronously. */
  outbox_client_submit_stream_async (client, memory, NULL, NULL, async_result, &result);
  memory_id = outbox_client_submit_stream_finish (client, wait_result (&result), &error);
  g_assert_no_error (error);

  /* A stream with one (a file), passed as it stands: after its first line. */
  fd = g_file_open_tmp ("outbox-client-XXXXXX", &path, &error);
  g_assert_no_error (error);
  close (fd);
  {
    g_autofree char *contents = g_strconcat ("garbage line that is skipped\n",
                                             (const char *) g_bytes_get_data (piped_text, NULL), NULL);

    g_assert_true (g_file_set_contents (path, contents, -1, &error));
    g_assert_no_error (error);
  }
  fd = open (path, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  pipe_in = g_unix_input_stream_new (fd, TRUE);
  {
    char skip[29];

    g_assert_cmpint (g_input_stream_read (pipe_in, skip, sizeof skip, NULL, &error), ==, sizeof skip);
    g_assert_no_error (error);
  }
  pipe_id = outbox_client_submit_stream_sync (client, pipe_in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_unlink (path);

  first = outbox_client_lookup_message_sync (client, memory_id, NULL, &error);
  g_assert_no_error (error);
  second = outbox_client_lookup_message_sync (client, pipe_id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (outbox_message_get_subject (first), ==, "memory stream");
  g_assert_cmpstr (outbox_message_get_subject (second), ==, "pipe stream");
  assert_reaches (first, OUTBOX_MESSAGE_STATE_SENT);
  assert_reaches (second, OUTBOX_MESSAGE_STATE_SENT);
}

static void
test_submit_stream_error (void)
{
  /* A stream that fails part way (gzip that is not) queues nothing. */
  static const char garbage[] = "\x1f\x8b\x08\x00 this is not deflate data at all, not at all";
  g_autoptr (GInputStream) raw = g_memory_input_stream_new_from_data (garbage, sizeof garbage, NULL);
  g_autoptr (GZlibDecompressor) gunzip = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  g_autoptr (GInputStream) broken = g_converter_input_stream_new (raw, G_CONVERTER (gunzip));
  g_autoptr (GError) error = NULL;
  GListModel *model = outbox_client_load_messages_sync (client, NULL, &error);
  guint before;
  char *id;

  g_assert_no_error (error);
  g_object_unref (model);
  before = g_list_model_get_n_items (model);
  id = outbox_client_submit_stream_sync (client, broken, NULL, NULL, &error);
  g_assert_null (id);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_true (g_str_has_prefix (error->message, "Could not read the message: "));
  /* Give a wrongly queued message time to be told. */
  g_usleep (200 * 1000);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (g_list_model_get_n_items (model), ==, before);
}

static void
test_submit_file (void)
{
  g_autoptr (GBytes) text = make_message ("file", 5000);
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileIOStream) io = NULL;
  g_autoptr (GFile) file = g_file_new_tmp ("outbox-client-XXXXXX", &io, &error);
  g_autoptr (GFile) missing = g_file_new_for_path ("/nonexistent/outbox-message");
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (OutboxMessage) message = NULL;
  g_autofree char *id = NULL;
  char *none;

  g_assert_no_error (error);
  g_assert_true (g_file_replace_contents (file, g_bytes_get_data (text, NULL), g_bytes_get_size (text), NULL,
                                          FALSE, G_FILE_CREATE_NONE, NULL, NULL, &error));
  outbox_client_submit_file_async (client, file, NULL, NULL, async_result, &result);
  id = outbox_client_submit_file_finish (client, wait_result (&result), &error);
  g_assert_no_error (error);
  g_file_delete (file, NULL, NULL);

  message = outbox_client_lookup_message_sync (client, id, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (outbox_message_get_subject (message), ==, "file");
  assert_reaches (message, OUTBOX_MESSAGE_STATE_SENT);

  none = outbox_client_submit_file_sync (client, missing, NULL, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

typedef struct
{
  guint added;
  guint removed;
} Changes;

static void
count_changes (GListModel *model, guint position, guint removed, guint added, Changes *changes)
{
  changes->added += added;
  changes->removed += removed;
}

static void
count_notify (GObject *object, GParamSpec *pspec, guint *count)
{
  (*count)++;
}

static void
test_live_model (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxSubmitOptions) held = outbox_submit_options_new ();
  g_autoptr (GBytes) first_text = make_message ("live one", 100);
  g_autoptr (GBytes) second_text = make_message ("live two", 100);
  g_autofree char *first_id = NULL;
  g_autofree char *second_id = NULL;
  GListModel *model = outbox_client_load_messages_sync (client, NULL, &error);
  OutboxMessage *first, *second;
  Changes changes = { 0, 0 };
  guint state_notifies = 0;
  guint position, n;
  gulong handler;

  g_assert_no_error (error);
  g_object_unref (model);
  g_assert_true (model == outbox_client_get_messages (client));
  g_assert_true (g_list_model_get_item_type (model) == OUTBOX_TYPE_MESSAGE);
  handler = g_signal_connect (model, "items-changed", G_CALLBACK (count_changes), &changes);

  outbox_submit_options_set_hold (held, TRUE);
  first_id = submit_sync (first_text, held);
  second_id = submit_sync (second_text, held);
  g_assert_true (wait_for (is_known, first_id, 10));
  g_assert_true (wait_for (is_known, second_id, 10));
  first = outbox_client_get_message (client, first_id);
  second = outbox_client_get_message (client, second_id);
  assert_reaches (first, OUTBOX_MESSAGE_STATE_HELD);
  g_assert_cmpuint (changes.added, ==, 2);

  /* Newest last, and the rows are the client's objects. */
  n = g_list_model_get_n_items (model);
  g_assert_true (model_find (model, second_id, &position) == second);
  g_assert_cmpuint (position, ==, n - 1);
  g_assert_true (model_find (model, first_id, NULL) == first);

  /* A change is the same row with new properties, not a new row. */
  g_signal_connect (first, "notify::state", G_CALLBACK (count_notify), &state_notifies);
  g_assert_true (outbox_message_release_sync (first, NULL, &error));
  g_assert_no_error (error);
  assert_reaches (first, OUTBOX_MESSAGE_STATE_SENT);
  g_assert_cmpuint (state_notifies, >=, 1);
  g_assert_true (model_find (model, first_id, NULL) == first);
  g_assert_cmpuint (changes.removed, ==, 0);
  g_assert_cmpuint (changes.added, ==, 2);

  /* Cancel: the row goes, the object says so. */
  g_object_ref (second);
  g_assert_true (outbox_message_cancel_sync (second, NULL, &error));
  g_assert_no_error (error);
  assert_reaches (second, OUTBOX_MESSAGE_STATE_REMOVED);
  g_assert_null (model_find (model, second_id, NULL));
  g_assert_null (outbox_client_get_message (client, second_id));
  g_assert_cmpuint (changes.removed, ==, 1);
  g_object_unref (second);
  g_signal_handler_disconnect (model, handler);
}

static void
test_async_actions (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxSubmitOptions) held = g_object_new (OUTBOX_TYPE_SUBMIT_OPTIONS, "hold", TRUE, NULL);
  g_autoptr (GBytes) text = make_message ("async actions", 100);
  g_autofree char *id = submit_sync (text, held);
  g_autoptr (OutboxMessage) message = outbox_client_lookup_message_sync (client, id, NULL, &error);
  g_autoptr (GAsyncResult) hold_result = NULL;
  g_autoptr (GAsyncResult) release_result = NULL;
  g_autoptr (GAsyncResult) flush_result = NULL;

  g_assert_no_error (error);
  assert_reaches (message, OUTBOX_MESSAGE_STATE_HELD);
  outbox_message_hold_async (message, NULL, async_result, &hold_result);
  g_assert_true (outbox_message_hold_finish (message, wait_result (&hold_result), &error));
  g_assert_no_error (error);
  outbox_message_release_async (message, NULL, async_result, &release_result);
  g_assert_true (outbox_message_release_finish (message, wait_result (&release_result), &error));
  g_assert_no_error (error);
  outbox_client_flush_async (client, NULL, async_result, &flush_result);
  g_assert_true (outbox_client_flush_finish (client, wait_result (&flush_result), &error));
  g_assert_no_error (error);
  assert_reaches (message, OUTBOX_MESSAGE_STATE_SENT);
}

static void
test_failure_and_retry (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxSubmitOptions) options = outbox_submit_options_new ();
  g_autoptr (GBytes) text = make_message ("refused", 100);
  g_autofree char *id = NULL;
  g_autoptr (OutboxMessage) message = NULL;
  g_autoptr (GAsyncResult) result = NULL;
  GVariant *details;

  outbox_submit_options_set_account (options, "failing");
  id = submit_sync (text, options);
  message = outbox_client_lookup_message_sync (client, id, NULL, &error);
  g_assert_no_error (error);
  assert_reaches (message, OUTBOX_MESSAGE_STATE_FAILED);
  g_assert_cmpuint (outbox_message_get_attempts (message), ==, 1);
  g_assert_nonnull (strstr (outbox_message_get_last_reply (message), "500"));
  details = outbox_message_get_details (message);
  g_assert_true (g_variant_is_of_type (details, G_VARIANT_TYPE_VARDICT));
  g_assert_true (g_variant_lookup (details, "recipients", "@aa{sv}", NULL));

  /* Retry goes again (and fails again at this server). */
  outbox_message_retry_async (message, NULL, async_result, &result);
  g_assert_true (outbox_message_retry_finish (message, wait_result (&result), &error));
  g_assert_no_error (error);
  assert_reaches (message, OUTBOX_MESSAGE_STATE_FAILED);
  {
    gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;

    while (outbox_message_get_attempts (message) < 2 && g_get_monotonic_time () < deadline)
      g_main_context_iteration (NULL, TRUE);
  }
  g_assert_cmpuint (outbox_message_get_attempts (message), ==, 2);
  g_assert_true (outbox_message_cancel_sync (message, NULL, &error));
  g_assert_no_error (error);
}

static void
assert_submit_error (GBytes *text, OutboxSubmitOptions *options, int code)
{
  g_autoptr (GError) error = NULL;
  char *id = outbox_client_submit_bytes_sync (client, text, options, NULL, &error);

  g_assert_null (id);
  g_assert_error (error, OUTBOX_CLIENT_ERROR, code);
  /* The daemon's sentence, without the bus's wrapping. */
  g_assert_null (strstr (error->message, "GDBus.Error"));
  g_assert_cmpuint (strlen (error->message), >, 10);
  g_print ("# %s\n", error->message);
}

static void
test_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) good = make_message ("errors", 10);
  g_autoptr (GBytes) headerless = g_bytes_new_static ("just a body line\r\n", 18);
  static const char nul_text[] = "To: bob@example.org\r\nSubject: x\r\n\r\na\0b\r\n";
  g_autoptr (GBytes) with_nul = g_bytes_new_static (nul_text, sizeof nul_text - 1);
  g_autoptr (OutboxSubmitOptions) no_account = outbox_submit_options_new ();
  g_autoptr (OutboxSubmitOptions) bad_address = outbox_submit_options_new ();
  g_autoptr (OutboxSubmitOptions) too_long = outbox_submit_options_new ();
  const char *const bad_recipients[] = { "not an address", NULL };
  OutboxMessage *nothing;
  GAsyncResult *result = NULL;

  assert_submit_error (headerless, NULL, OUTBOX_CLIENT_ERROR_INVALID_MESSAGE);
  assert_submit_error (with_nul, NULL, OUTBOX_CLIENT_ERROR_INVALID_MESSAGE);
  outbox_submit_options_set_account (no_account, "nobody");
  assert_submit_error (good, no_account, OUTBOX_CLIENT_ERROR_NO_SUCH_ACCOUNT);
  outbox_submit_options_set_recipients (bad_address, bad_recipients);
  assert_submit_error (good, bad_address, OUTBOX_CLIENT_ERROR_INVALID_ADDRESS);
  outbox_submit_options_set_delay (too_long, 100000);
  assert_submit_error (good, too_long, OUTBOX_CLIENT_ERROR_INVALID_ARGS);

  nothing = outbox_client_lookup_message_sync (client, "no-such-id", NULL, &error);
  g_assert_null (nothing);
  g_assert_error (error, OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_NO_SUCH_MESSAGE);
  g_clear_error (&error);

  outbox_client_lookup_message_async (client, "no-such-id", NULL, async_result, &result);
  nothing = outbox_client_lookup_message_finish (client, wait_result (&result), &error);
  g_clear_object (&result);
  g_assert_null (nothing);
  g_assert_error (error, OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_NO_SUCH_MESSAGE);
}

static void
test_accounts (void)
{
  g_autoptr (GError) error = NULL;
  GListModel *accounts = outbox_client_load_accounts_sync (client, NULL, &error);
  OutboxAccount *sink, *failing;
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GVariant) results = NULL;
  g_autoptr (GVariant) smtp = NULL;
  gboolean ok = FALSE;

  g_assert_no_error (error);
  g_object_unref (accounts);
  g_assert_true (accounts == outbox_client_get_accounts (client));
  g_assert_cmpuint (g_list_model_get_n_items (accounts), ==, 2);
  sink = outbox_client_get_account (client, "sink");
  failing = outbox_client_get_account (client, "failing");
  g_assert_nonnull (sink);
  g_assert_nonnull (failing);
  /* By name. */
  {
    g_autoptr (OutboxAccount) first = g_list_model_get_item (accounts, 0);

    g_assert_true (first == failing);
  }
  g_assert_cmpstr (outbox_account_get_address (sink), ==, "alice@example.org");
  g_assert_true (outbox_account_get_is_default (sink));
  g_assert_false (outbox_account_get_is_default (failing));
  g_assert_true (g_str_has_prefix (outbox_account_get_smtp_url (sink), "smtp+insecure://"));
  g_assert_cmpint (outbox_account_get_state (sink), ==, OUTBOX_ACCOUNT_STATE_OK);
  g_assert_false (outbox_account_get_needs_attention (sink));

  outbox_account_test_async (sink, NULL, async_result, &result);
  results = outbox_account_test_finish (sink, wait_result (&result), &error);
  g_assert_no_error (error);
  smtp = g_variant_lookup_value (results, "smtp", G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (smtp);
  g_assert_true (g_variant_lookup (smtp, "reached", "b", &ok));
  g_assert_true (ok);
}

static void
call_accounts (const char *method, GVariant *parameters)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;

  reply = g_dbus_connection_call_sync (outbox_client_get_connection (client), OUTBOX_BUS_NAME,
                                       OUTBOX_OBJECT_PATH, "org.outbox.Outbox1.Accounts", method,
                                       parameters, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
}

static gboolean
has_account (gpointer data)
{
  return outbox_client_get_account (client, data) != NULL;
}

static gboolean
lacks_account (gpointer data)
{
  return outbox_client_get_account (client, data) == NULL;
}

static gboolean
has_timeout_30 (gpointer data)
{
  guint32 timeout = 0;

  return g_variant_lookup (outbox_account_get_settings (data), "timeout", "u", &timeout) && timeout == 30;
}

static gboolean
is_default (gpointer data)
{
  return outbox_account_get_is_default (data);
}

static gboolean
is_not_default (gpointer data)
{
  return !outbox_account_get_is_default (data);
}

static void
test_accounts_live (void)
{
  g_autoptr (GError) error = NULL;
  GListModel *accounts = outbox_client_load_accounts_sync (client, NULL, &error);
  g_auto (GVariantBuilder) settings = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto (GVariantBuilder) update = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto (GVariantBuilder) make_default = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto (GVariantBuilder) back = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto (GVariantBuilder) bad = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto (GVariantBuilder) again = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GAsyncResult) result = NULL;
  OutboxAccount *sink = outbox_client_get_account (client, "sink");
  g_autoptr (OutboxAccount) extra = NULL;
  Changes changes = { 0, 0 };
  guint position;
  gulong handler;

  g_assert_no_error (error);
  g_object_unref (accounts);
  handler = g_signal_connect (accounts, "items-changed", G_CALLBACK (count_changes), &changes);

  /* An account added by another program (here: straight over the bus)
   * appears. */
  g_variant_builder_add (&settings, "{sv}", "from", g_variant_new_string ("extra@example.org"));
  g_variant_builder_add (&settings, "{sv}", "smtp", g_variant_new_string ("smtp+insecure://127.0.0.1:9"));
  call_accounts ("Add", g_variant_new ("(s@a{sv})", "extra", g_variant_builder_end (&settings)));
  g_assert_true (wait_for (has_account, (gpointer) "extra", 10));
  extra = g_object_ref (outbox_client_get_account (client, "extra"));
  g_assert_cmpstr (outbox_account_get_address (extra), ==, "extra@example.org");
  g_assert_true (g_list_store_find (G_LIST_STORE (accounts), extra, &position));
  g_assert_cmpuint (changes.added, ==, 1);

  /* A change is the same object with new values. */
  g_variant_builder_add (&update, "{sv}", "timeout", g_variant_new_uint32 (30));
  outbox_account_update_async (extra, g_variant_builder_end (&update), NULL, async_result, &result);
  g_assert_true (outbox_account_update_finish (extra, wait_result (&result), &error));
  g_assert_no_error (error);
  g_clear_object (&result);
  g_assert_true (wait_for (has_timeout_30, extra, 10));
  g_assert_true (outbox_client_get_account (client, "extra") == extra);

  /* The default moves: both objects say so. */
  g_variant_builder_add (&make_default, "{sv}", "default", g_variant_new_boolean (TRUE));
  g_assert_true (outbox_account_update_sync (extra, g_variant_builder_end (&make_default), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for (is_default, extra, 10));
  g_assert_true (wait_for (is_not_default, sink, 10));
  g_variant_builder_add (&back, "{sv}", "default", g_variant_new_boolean (TRUE));
  g_assert_true (outbox_account_update_sync (sink, g_variant_builder_end (&back), NULL, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for (is_default, sink, 10));

  /* Refusals are the daemon's, in the library's domain. */
  g_variant_builder_add (&bad, "{sv}", "smtp", g_variant_new_string ("gopher://example.org"));
  g_assert_false (outbox_account_update_sync (extra, g_variant_builder_end (&bad), NULL, &error));
  g_assert_error (error, OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_INVALID_ACCOUNT);
  g_print ("# %s\n", error->message);
  g_clear_error (&error);
  g_variant_builder_add (&again, "{sv}", "from", g_variant_new_string ("extra@example.org"));
  g_variant_builder_add (&again, "{sv}", "smtp", g_variant_new_string ("smtp+insecure://127.0.0.1:9"));
  g_assert_false (outbox_client_add_account_sync (client, "extra", g_variant_builder_end (&again), NULL, &error));
  g_assert_error (error, OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_ACCOUNT_EXISTS);
  g_clear_error (&error);
  g_assert_null (outbox_client_discover_sync (client, "not an address", NULL, &error));
  g_assert_error (error, OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_INVALID_ADDRESS);
  g_clear_error (&error);

  /* Removed: gone from the list, and the object says so. */
  g_assert_true (outbox_account_remove_sync (extra, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for (lacks_account, (gpointer) "extra", 10));
  g_assert_cmpint (outbox_account_get_state (extra), ==, OUTBOX_ACCOUNT_STATE_REMOVED);
  g_assert_false (g_list_store_find (G_LIST_STORE (accounts), extra, NULL));
  g_assert_cmpuint (changes.removed, ==, 1);
  g_assert_cmpuint (changes.added, ==, 1);
  g_signal_handler_disconnect (accounts, handler);
}

static gboolean
daemon_stopped (gpointer data)
{
  return !outbox_client_get_daemon_running (client);
}

static gboolean
daemon_started (gpointer data)
{
  return outbox_client_get_daemon_running (client);
}

static gboolean
process_gone (gpointer data)
{
  return kill ((pid_t) GPOINTER_TO_UINT (data), 0) != 0;
}

static guint32
daemon_pid (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = NULL;
  guint32 pid;

  reply = g_dbus_connection_call_sync (outbox_client_get_connection (client), "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixProcessID", g_variant_new ("(s)", OUTBOX_BUS_NAME),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &pid);
  return pid;
}

static void
test_daemon_restart (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OutboxSubmitOptions) held = g_object_new (OUTBOX_TYPE_SUBMIT_OPTIONS, "hold", TRUE, NULL);
  g_autoptr (GBytes) text = make_message ("across a restart", 100);
  g_autoptr (GBytes) later_text = make_message ("after the restart", 100);
  g_autofree char *id = submit_sync (text, held);
  g_autofree char *later_id = NULL;
  GListModel *model = outbox_client_load_messages_sync (client, NULL, &error);
  OutboxMessage *message;
  guint32 pid;

  g_assert_no_error (error);
  g_object_unref (model);
  g_assert_true (wait_for (is_known, id, 10));
  message = outbox_client_get_message (client, id);
  assert_reaches (message, OUTBOX_MESSAGE_STATE_HELD);

  pid = daemon_pid ();
  g_assert_cmpint (kill ((pid_t) pid, SIGTERM), ==, 0);
  g_assert_true (wait_for (daemon_stopped, NULL, 30));
  /* The name goes before the process ends (and lets go of the spool). */
  g_assert_true (wait_for (process_gone, GUINT_TO_POINTER (pid), 30));
  g_assert_false (outbox_client_get_online (client));
  g_assert_null (outbox_client_get_daemon_version (client));

  /* The next call starts outboxd again; the client reads the queue again
   * and keeps its objects. */
  g_assert_true (outbox_client_flush_sync (client, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (wait_for (daemon_started, NULL, 30));
  g_assert_cmpuint (daemon_pid (), !=, pid);
  g_assert_true (outbox_client_get_message (client, id) == message);
  g_assert_true (model_find (model, id, NULL) == message);

  later_id = submit_sync (later_text, NULL);
  g_assert_true (wait_for (is_known, later_id, 10));
  assert_reaches (outbox_client_get_message (client, later_id), OUTBOX_MESSAGE_STATE_SENT);
  g_assert_true (outbox_message_release_sync (message, NULL, &error));
  g_assert_no_error (error);
  assert_reaches (message, OUTBOX_MESSAGE_STATE_SENT);
  g_assert_true (model_find (model, id, NULL) == message);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);

  client = outbox_client_new_sync (NULL, &error);
  g_assert_no_error (error);

  g_test_add_func ("/client/properties", test_client_properties);
  g_test_add_func ("/client/submit-bytes", test_submit_bytes);
  g_test_add_func ("/client/submit-big-bytes", test_submit_big_bytes);
  g_test_add_func ("/client/submit-stream", test_submit_stream);
  g_test_add_func ("/client/submit-stream-error", test_submit_stream_error);
  g_test_add_func ("/client/submit-file", test_submit_file);
  g_test_add_func ("/client/live-model", test_live_model);
  g_test_add_func ("/client/async-actions", test_async_actions);
  g_test_add_func ("/client/failure-and-retry", test_failure_and_retry);
  g_test_add_func ("/client/errors", test_errors);
  g_test_add_func ("/client/accounts", test_accounts);
  g_test_add_func ("/client/accounts-live", test_accounts_live);
  g_test_add_func ("/client/daemon-restart", test_daemon_restart);

  status = g_test_run ();
  g_object_unref (client);
  return status;
}
