/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <gio/gunixinputstream.h>
#include <glib-unix.h>

#include "outbox-error.h"
#include "outbox-message.h"

typedef struct
{
  GMainLoop *loop;
  GAsyncResult *result;
} Wait;

static void
on_done (GObject *source,
         GAsyncResult *result,
         gpointer user_data)
{
  Wait *wait = user_data;

  wait->result = g_object_ref (result);
  g_main_loop_quit (wait->loop);
}

static void
wait_init (Wait *wait)
{
  wait->loop = g_main_loop_new (NULL, FALSE);
  wait->result = NULL;
}

static void
wait_clear (Wait *wait)
{
  g_main_loop_unref (wait->loop);
  g_clear_object (&wait->result);
}

static const OutboxMessageHeaders *
read_headers (OutboxMessageImport *import,
              GError **error)
{
  const OutboxMessageHeaders *headers;
  Wait wait;

  wait_init (&wait);
  outbox_message_import_read_headers_async (import, NULL, on_done, &wait);
  g_main_loop_run (wait.loop);
  headers = outbox_message_import_read_headers_finish (import, wait.result, error);
  wait_clear (&wait);
  return headers;
}

static OutboxMessageWritten *
write_message_for_domain (OutboxMessageImport *import,
                          OutboxMessageWriteFlags flags,
                          const char *from_header,
                          const char *id_domain,
                          GError **error)
{
  OutboxMessageWritten *written;
  Wait wait;

  wait_init (&wait);
  outbox_message_import_write_async (import, flags, from_header, id_domain, NULL, on_done, &wait);
  g_main_loop_run (wait.loop);
  written = outbox_message_import_write_finish (import, wait.result, error);
  wait_clear (&wait);
  return written;
}

static OutboxMessageWritten *
write_message (OutboxMessageImport *import,
               OutboxMessageWriteFlags flags,
               const char *from_header,
               GError **error)
{
  return write_message_for_domain (import, flags, from_header, "example.org", error);
}

static OutboxMessageImport *
import_new (const char *input,
            gssize len,
            GOutputStream **out)
{
  g_autoptr(GInputStream) in = NULL;

  if (len < 0)
    len = strlen (input);
  in = g_memory_input_stream_new_from_data (g_memdup2 (input, len), len, g_free);
  *out = g_memory_output_stream_new_resizable ();
  return outbox_message_import_new (in, *out);
}

static char *
output_text (GOutputStream *out)
{
  GMemoryOutputStream *memory = G_MEMORY_OUTPUT_STREAM (out);

  return g_strndup (g_memory_output_stream_get_data (memory), g_memory_output_stream_get_data_size (memory));
}

/* Runs both steps over @input; returns what was written, or NULL with
 * @error set by either step. */
static char *
import_message (const char *input,
                gssize len,
                OutboxMessageWriteFlags flags,
                const char *from_header,
                OutboxMessageWritten **out_written,
                GError **error)
{
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(OutboxMessageImport) import = import_new (input, len, &out);
  g_autoptr(OutboxMessageWritten) written = NULL;

  if (read_headers (import, error) == NULL)
    return NULL;
  written = write_message (import, flags, from_header, error);
  if (written == NULL)
    return NULL;
  if (out_written != NULL)
    *out_written = g_steal_pointer (&written);
  return output_text (out);
}

/* The part of @text before the blank line. */
static char *
header_part (const char *text)
{
  const char *end = strstr (text, "\r\n\r\n");

  g_assert_nonnull (end);
  return g_strndup (text, end - text + 2);
}

static void
assert_addresses (GPtrArray *addresses,
                  const char * const *expected)
{
  g_assert_cmpuint (addresses->len, ==, g_strv_length ((char **) expected));
  for (guint i = 0; i < addresses->len; i++)
    g_assert_cmpstr (g_ptr_array_index (addresses, i), ==, expected[i]);
}

static void
assert_refused (const char *input,
                gssize len,
                const char *expected_text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message (input, len, OUTBOX_MESSAGE_WRITE_NONE, NULL, NULL, &error);

  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_MESSAGE);
  g_assert_null (output);
  if (strstr (error->message, expected_text) == NULL)
    g_error ("“%s” does not say “%s”", error->message, expected_text);
}

static const char addressed_message[] =
  "From: \"Zoë Writer\" <zoe@example.org>\n"
  "To: \"Alice Example\" <alice@example.org>, bob@example.org\n"
  "Cc: Team: carol@example.org, \"Dave D.\" <dave@example.org>;\n"
  "Bcc: \"Eve, E.\" <eve@example.org>,\n"
  " frank@example.org\n"
  "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\n"
  "Message-ID: <1234.5678@example.org>\n"
  "Date: Mon, 1 Jan 2024 10:00:00 +0100\n"
  "\n"
  "Hello\n";

static const OutboxMessageHeaders *
read_addressed_headers (OutboxMessageImport **import)
{
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  const OutboxMessageHeaders *headers;

  *import = import_new (addressed_message, -1, &out);
  headers = read_headers (*import, &error);
  g_assert_no_error (error);
  return headers;
}

static void
test_headers_addresses (void)
{
  g_autoptr(OutboxMessageImport) import = NULL;
  const OutboxMessageHeaders *headers = read_addressed_headers (&import);
  const char * const to[] = { "alice@example.org", "bob@example.org", NULL };
  const char * const cc[] = { "carol@example.org", "dave@example.org", NULL };
  const char * const bcc[] = { "eve@example.org", "frank@example.org", NULL };

  assert_addresses (headers->to, to);
  assert_addresses (headers->cc, cc);
  assert_addresses (headers->bcc, bcc);
}

static void
test_headers_from (void)
{
  g_autoptr(OutboxMessageImport) import = NULL;
  const OutboxMessageHeaders *headers = read_addressed_headers (&import);

  g_assert_cmpstr (headers->from_address, ==, "zoe@example.org");
  g_assert_cmpstr (headers->from_name, ==, "Zoë Writer");
}

static void
test_headers_other_fields (void)
{
  g_autoptr(OutboxMessageImport) import = NULL;
  const OutboxMessageHeaders *headers = read_addressed_headers (&import);

  g_assert_cmpstr (headers->subject, ==, "Grüße aus Köln");
  g_assert_cmpstr (headers->message_id, ==, "1234.5678@example.org");
  g_assert_true (headers->has_date);
}

static void
test_headers_none_missing (void)
{
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(OutboxMessageImport) import = import_new ("Subject: x\n\nbody\n", -1, &out);
  g_autoptr(GError) error = NULL;
  const OutboxMessageHeaders *headers = read_headers (import, &error);

  g_assert_no_error (error);
  g_assert_null (headers->from_address);
  g_assert_null (headers->message_id);
  g_assert_false (headers->has_date);
  g_assert_cmpuint (headers->to->len, ==, 0);
}

static void
test_bcc_removed (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message (addressed_message, -1, OUTBOX_MESSAGE_WRITE_REMOVE_BCC,
                                            NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_null (strstr (output, "Bcc"));
  g_assert_null (strstr (output, "eve@"));
  g_assert_null (strstr (output, "frank@"));
  g_assert_nonnull (strstr (output, "\r\nSubject: =?UTF-8?B?"));
}

static void
test_bcc_kept (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message (addressed_message, -1, OUTBOX_MESSAGE_WRITE_NONE,
                                            NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (strstr (output, "\r\nBcc: \"Eve, E.\" <eve@example.org>,\r\n frank@example.org\r\n"));
}

static void
test_present_fields_kept_as_they_are (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autofree char *output = import_message (addressed_message, -1, OUTBOX_MESSAGE_WRITE_NONE,
                                            "Other <other@example.org>", &written, &error);
  g_autofree char *headers = NULL;
  g_autoptr(GString) expected = g_string_new (addressed_message);

  g_assert_no_error (error);
  g_string_replace (expected, "\n", "\r\n", 0);
  g_string_truncate (expected, strstr (expected->str, "\r\n\r\n") + 2 - expected->str);
  headers = header_part (output);
  g_assert_cmpstr (headers, ==, expected->str);
  g_assert_cmpstr (written->message_id, ==, "1234.5678@example.org");
}

static void
test_missing_fields_added (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autofree char *output = import_message ("Subject: x\n\nbody\n", -1, OUTBOX_MESSAGE_WRITE_NONE,
                                            "Zoë <zoe@example.org>", &written, &error);
  g_autofree char *message_id = NULL;
  g_autoptr(GRegex) date = g_regex_new ("\r\nDate: [A-Z][a-z][a-z], \\d\\d? [A-Z][a-z][a-z] \\d{4} "
                                        "\\d\\d:\\d\\d:\\d\\d [+-]\\d{4}\r\n", 0, 0, NULL);

  g_assert_no_error (error);
  g_assert_true (g_regex_match (date, output, 0, NULL));
  g_assert_true (g_str_has_suffix (written->message_id, "@example.org"));
  g_assert_cmpuint (strlen (written->message_id), ==, 32 + strlen ("@example.org"));
  message_id = g_strdup_printf ("\r\nMessage-ID: <%s>\r\n", written->message_id);
  g_assert_nonnull (strstr (output, message_id));
  g_assert_nonnull (strstr (output, "\r\nFrom: =?"));
  g_assert_nonnull (strstr (output, "<zoe@example.org>\r\n"));
}

static void
test_from_header_refuses_two_fields (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message ("Subject: x\n\nbody\n", -1, OUTBOX_MESSAGE_WRITE_NONE,
                                            "a@example.org\r\nBcc: spy@example.org", NULL, &error);

  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_null (output);
}

static void
test_message_ids_differ (void)
{
  g_autoptr(OutboxMessageWritten) first = NULL;
  g_autoptr(OutboxMessageWritten) second = NULL;
  g_autofree char *output1 = import_message ("Subject: x\n\n", -1, OUTBOX_MESSAGE_WRITE_NONE, NULL, &first, NULL);
  g_autofree char *output2 = import_message ("Subject: x\n\n", -1, OUTBOX_MESSAGE_WRITE_NONE, NULL, &second, NULL);

  g_assert_nonnull (output1);
  g_assert_nonnull (output2);
  g_assert_cmpstr (first->message_id, !=, second->message_id);
}

static void
test_message_id_idn_domain (void)
{
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(OutboxMessageImport) import = import_new ("Subject: x\n\n", -1, &out);
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autoptr(GError) error = NULL;

  read_headers (import, &error);
  g_assert_no_error (error);
  written = write_message_for_domain (import, OUTBOX_MESSAGE_WRITE_NONE, NULL, "bücher.example", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (written->message_id, "@xn--bcher-kva.example"));
}

static void
test_message_id_bad_domain_refused (void)
{
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(OutboxMessageImport) import = import_new ("Subject: x\n\n", -1, &out);
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autoptr(GError) error = NULL;

  read_headers (import, &error);
  g_assert_no_error (error);
  written = write_message_for_domain (import, OUTBOX_MESSAGE_WRITE_NONE, NULL, "example.org>\r\nBcc: x", &error);
  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS);
  g_assert_null (written);
}

static const char dated_header[] =
  "From: a@example.org\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\nMessage-ID: <1@example.org>\r\n";

/* Imports @body after a complete header block and returns what follows
 * the blank line. */
static char *
import_body (const char *body,
             gssize body_len,
             OutboxMessageWritten **written,
             GError **error)
{
  g_autoptr(GByteArray) input = g_byte_array_new ();
  g_autofree char *output = NULL;

  g_byte_array_append (input, (const guint8 *) dated_header, strlen (dated_header));
  g_byte_array_append (input, (const guint8 *) "\r\n", 2);
  g_byte_array_append (input, (const guint8 *) body, body_len < 0 ? strlen (body) : (gsize) body_len);
  output = import_message ((const char *) input->data, input->len, OUTBOX_MESSAGE_WRITE_NONE,
                           NULL, written, error);
  if (output == NULL)
    return NULL;
  g_assert_true (g_str_has_prefix (output, dated_header));
  return g_strdup (output + strlen (dated_header) + 2);
}

static void
test_body_line_endings (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *body = import_body ("a\nb\r\nc\rd\r\re\n\nf", -1, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (body, ==, "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n\r\nf\r\n");
}

static void
test_header_line_endings (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message ("Subject: x\nTo: b@example.org\r\nX-Folded: a\n b\n\nbody", -1,
                                            OUTBOX_MESSAGE_WRITE_NONE, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (output, "Subject: x\r\nTo: b@example.org\r\nX-Folded: a\r\n b\r\n"));
  g_assert_true (g_str_has_suffix (output, "\r\n\r\nbody\r\n"));
}

static void
test_headers_only (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message (dated_header, -1, OUTBOX_MESSAGE_WRITE_NONE, NULL, NULL, &error);
  g_autofree char *expected = g_strconcat (dated_header, "\r\n", NULL);

  g_assert_no_error (error);
  g_assert_cmpstr (output, ==, expected);
}

static void
test_headers_only_unterminated (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message ("Subject: x", -1, OUTBOX_MESSAGE_WRITE_NONE, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (output, "Subject: x\r\nDate: "));
  g_assert_true (g_str_has_suffix (output, ">\r\n\r\n"));
}

/* As Postfix does, a line that is no header field starts the body. */
static void
test_body_without_blank_line (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) input = g_string_new (dated_header);
  g_autofree char *output = NULL;
  g_autofree char *expected = g_strconcat (dated_header, "\r\nHello there\r\n", NULL);

  g_string_append (input, "Hello there\n");
  output = import_message (input->str, input->len, OUTBOX_MESSAGE_WRITE_NONE, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (output, ==, expected);
}

static char *
line_of (gsize length)
{
  return g_strnfill (length, 'x');
}

static void
test_body_line_998_accepted (void)
{
  g_autofree char *line = line_of (998);
  g_autofree char *input = g_strconcat ("ok\n", line, "\nok\n", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *body = import_body (input, -1, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (strlen (body), ==, 4 + 1000 + 4);
}

static void
test_body_line_999_refused (void)
{
  g_autofree char *line = line_of (999);
  g_autoptr(GString) input = g_string_new (dated_header);

  /* Header lines 1-3, blank line 4, body lines 5 and 6. */
  g_string_append_printf (input, "\r\nok\n%s\nok\n", line);
  assert_refused (input->str, input->len, "Line 6 of the message is 999 octets long");
}

static void
test_body_long_line_at_end (void)
{
  g_autofree char *line = line_of (1500);
  g_autoptr(GString) input = g_string_new (dated_header);

  g_string_append_printf (input, "\r\n%s", line);
  assert_refused (input->str, input->len, "Line 5 of the message is at least 1500 octets long");
}

static void
test_header_line_998_accepted (void)
{
  g_autofree char *value = line_of (998 - strlen ("X-Long: "));
  g_autofree char *input = g_strconcat ("Subject: x\nX-Long: ", value, "\n\nbody\n", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message (input, -1, OUTBOX_MESSAGE_WRITE_NONE, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (strstr (output, value));
}

static void
test_header_line_999_refused (void)
{
  g_autofree char *value = line_of (999 - strlen ("X-Long: "));
  g_autofree char *input = g_strconcat ("Subject: x\nX-Long: ", value, "\n\nbody\n", NULL);

  assert_refused (input, -1, "Line 2 of the message is 999 octets long");
}

static void
test_header_line_endless_refused (void)
{
  g_autofree char *value = line_of (200000);
  g_autofree char *input = g_strconcat ("Subject: x\nX-Long: ", value, NULL);

  assert_refused (input, -1, "Line 2 of the message is at least");
}

static void
test_nul_in_header_refused (void)
{
  static const char input[] = "Subject: a\0b\n\nbody\n";

  assert_refused (input, sizeof input - 1, "Line 1 of the message contains a NUL byte");
}

static void
test_nul_in_body_refused (void)
{
  static const char body[] = "line\nli\0ne\n";
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_body (body, sizeof body - 1, NULL, &error);

  g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_MESSAGE);
  g_assert_nonnull (strstr (error->message, "Line 6 of the message contains a NUL byte"));
  g_assert_null (output);
}

static void
test_lone_cr_in_header_refused (void)
{
  assert_refused ("Subject: a\rBcc: b@example.org\n\nbody\n", -1, "carriage return");
}

static void
test_empty_refused (void)
{
  assert_refused ("", 0, "The message is empty");
}

static void
test_no_header_refused (void)
{
  assert_refused ("Hello, this is just text\n\nMore text\n", -1, "The message has no header");
}

static void
test_blank_first_line_refused (void)
{
  assert_refused ("\nSubject: x\n", -1, "The message has no header");
}

static void
test_continuation_first_refused (void)
{
  assert_refused (" Subject: x\n\nbody\n", -1, "The message has no header");
}

static void
test_huge_header_refused (void)
{
  g_autoptr(GString) input = g_string_new ("Subject: x\n");
  g_autofree char *value = line_of (900);

  while (input->len <= OUTBOX_MESSAGE_MAX_HEADER)
    g_string_append_printf (input, "X-Fill: %s\n", value);
  g_string_append (input, "\nbody\n");
  assert_refused (input->str, input->len, "header block");
}

static void
test_eightbit_detected (void)
{
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autofree char *body = import_body ("Grüße\n", -1, &written, NULL);

  g_assert_nonnull (body);
  g_assert_true (written->eightbit);
}

static void
test_seven_bit_detected (void)
{
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autofree char *body = import_body ("Hello\n", -1, &written, NULL);

  g_assert_nonnull (body);
  g_assert_false (written->eightbit);
}

static void
test_checksum_matches_output (void)
{
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *output = import_message (addressed_message, -1, OUTBOX_MESSAGE_WRITE_REMOVE_BCC,
                                            NULL, &written, &error);
  g_autofree char *sha256 = NULL;

  g_assert_no_error (error);
  sha256 = g_compute_checksum_for_string (G_CHECKSUM_SHA256, output, -1);
  g_assert_cmpuint (written->size, ==, strlen (output));
  g_assert_cmpstr (written->sha256, ==, sha256);
}

static void
test_write_error_reported (void)
{
  g_autofree char *body_text = line_of (500);
  g_autofree char *input = g_strconcat ("Subject: x\n\n", body_text, "\n", NULL);
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data (input, strlen (input), NULL);
  g_autofree guint8 *space = g_malloc (100);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new (space, 100, NULL, NULL);
  g_autoptr(OutboxMessageImport) import = outbox_message_import_new (in, out);
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autoptr(GError) error = NULL;

  read_headers (import, &error);
  g_assert_no_error (error);
  written = write_message (import, OUTBOX_MESSAGE_WRITE_NONE, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_assert_null (written);
}

/* Through a pipe fed slowly by another thread: every read waits, and the
 * main loop must keep turning meanwhile. */
#define PIPE_LINES 20000

static gpointer
feed_pipe (gpointer data)
{
  int fd = GPOINTER_TO_INT (data);
  g_autoptr(GString) text = g_string_new ("From: a@example.org\nSubject: slow\n");

  g_usleep (50 * 1000);
  g_assert_cmpint (write (fd, text->str, text->len), ==, (gssize) text->len);
  g_string_assign (text, "\n");
  for (guint i = 0; i < PIPE_LINES; i++)
    g_string_append_printf (text, "line %u of a body long enough to take several reads\n", i);
  for (gsize done = 0; done < text->len;)
    {
      gssize n = write (fd, text->str + done, MIN (text->len - done, 100000));

      g_assert_cmpint (n, >, 0);
      done += n;
      g_usleep (10 * 1000);
    }
  close (fd);
  return NULL;
}

static gboolean
count_tick (gpointer data)
{
  guint *ticks = data;

  (*ticks)++;
  return G_SOURCE_CONTINUE;
}

static void
test_pipe_async (void)
{
  int fds[2];
  g_autoptr(GThread) writer = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(OutboxMessageImport) import = NULL;
  g_autoptr(OutboxMessageWritten) written = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *output = NULL;
  guint ticks = 0;
  guint tick_source;

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  in = g_unix_input_stream_new (fds[0], TRUE);
  import = outbox_message_import_new (in, out);
  writer = g_thread_new ("feed-pipe", feed_pipe, GINT_TO_POINTER (fds[1]));
  tick_source = g_timeout_add (5, count_tick, &ticks);

  g_assert_nonnull (read_headers (import, &error));
  g_assert_no_error (error);
  written = write_message (import, OUTBOX_MESSAGE_WRITE_NONE, NULL, &error);
  g_assert_no_error (error);
  g_source_remove (tick_source);
  g_thread_join (g_steal_pointer (&writer));

  output = output_text (out);
  g_assert_cmpuint (written->size, ==, strlen (output));
  g_assert_nonnull (strstr (output, "\r\nline 19999 of a body long enough to take several reads\r\n"));
  g_assert_cmpuint (ticks, >, 5);
}

int
main (int argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/message/headers/addresses", test_headers_addresses);
  g_test_add_func ("/message/headers/from", test_headers_from);
  g_test_add_func ("/message/headers/other-fields", test_headers_other_fields);
  g_test_add_func ("/message/headers/none-missing", test_headers_none_missing);

  g_test_add_func ("/message/write/bcc-removed", test_bcc_removed);
  g_test_add_func ("/message/write/bcc-kept", test_bcc_kept);
  g_test_add_func ("/message/write/present-fields-kept", test_present_fields_kept_as_they_are);
  g_test_add_func ("/message/write/missing-fields-added", test_missing_fields_added);
  g_test_add_func ("/message/write/from-header-refuses-two-fields", test_from_header_refuses_two_fields);
  g_test_add_func ("/message/write/message-ids-differ", test_message_ids_differ);
  g_test_add_func ("/message/write/message-id-idn-domain", test_message_id_idn_domain);
  g_test_add_func ("/message/write/message-id-bad-domain", test_message_id_bad_domain_refused);
  g_test_add_func ("/message/write/body-line-endings", test_body_line_endings);
  g_test_add_func ("/message/write/header-line-endings", test_header_line_endings);
  g_test_add_func ("/message/write/headers-only", test_headers_only);
  g_test_add_func ("/message/write/headers-only-unterminated", test_headers_only_unterminated);
  g_test_add_func ("/message/write/body-without-blank-line", test_body_without_blank_line);
  g_test_add_func ("/message/write/eightbit", test_eightbit_detected);
  g_test_add_func ("/message/write/seven-bit", test_seven_bit_detected);
  g_test_add_func ("/message/write/checksum", test_checksum_matches_output);
  g_test_add_func ("/message/write/error-reported", test_write_error_reported);
  g_test_add_func ("/message/write/pipe-async", test_pipe_async);

  g_test_add_func ("/message/refuse/body-line-998-accepted", test_body_line_998_accepted);
  g_test_add_func ("/message/refuse/body-line-999", test_body_line_999_refused);
  g_test_add_func ("/message/refuse/body-long-line-at-end", test_body_long_line_at_end);
  g_test_add_func ("/message/refuse/header-line-998-accepted", test_header_line_998_accepted);
  g_test_add_func ("/message/refuse/header-line-999", test_header_line_999_refused);
  g_test_add_func ("/message/refuse/header-line-endless", test_header_line_endless_refused);
  g_test_add_func ("/message/refuse/nul-in-header", test_nul_in_header_refused);
  g_test_add_func ("/message/refuse/nul-in-body", test_nul_in_body_refused);
  g_test_add_func ("/message/refuse/lone-cr-in-header", test_lone_cr_in_header_refused);
  g_test_add_func ("/message/refuse/empty", test_empty_refused);
  g_test_add_func ("/message/refuse/no-header", test_no_header_refused);
  g_test_add_func ("/message/refuse/blank-first-line", test_blank_first_line_refused);
  g_test_add_func ("/message/refuse/continuation-first", test_continuation_first_refused);
  g_test_add_func ("/message/refuse/huge-header", test_huge_header_refused);

  return g_test_run ();
}
