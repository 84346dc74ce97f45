/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-line-reader.h"

/* An input stream that hands out one predefined chunk per read, so a test
 * decides exactly where the reads split the data.  After the last chunk it
 * reports end of stream. */
#define TEST_TYPE_CHUNK_STREAM (test_chunk_stream_get_type ())
G_DECLARE_FINAL_TYPE (TestChunkStream, test_chunk_stream, TEST, CHUNK_STREAM, GInputStream)

struct _TestChunkStream
{
  GInputStream parent_instance;
  GQueue chunks; /* (element-type GBytes) (owned) */
  guint n_reads;
};

G_DEFINE_TYPE (TestChunkStream, test_chunk_stream, G_TYPE_INPUT_STREAM)

static gssize
test_chunk_stream_read (
    GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  TestChunkStream *self = TEST_CHUNK_STREAM (stream);
  g_autoptr (GBytes) chunk = g_queue_pop_head (&self->chunks);
  gsize len = 0;
  const guint8 *data;

  self->n_reads++;
  if (chunk == NULL)
    return 0;
  data = g_bytes_get_data (chunk, &len);
  if (len > count)
    {
      g_queue_push_head (&self->chunks, g_bytes_new_from_bytes (chunk, count, len - count));
      len = count;
    }
  memcpy (buffer, data, len);
  return (gssize) len;
}

/* Completes from the main loop, without the thread GInputStream would use. */
static void
test_chunk_stream_read_async (GInputStream *stream,
                              void *buffer,
                              gsize count,
                              int io_priority,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;
  gssize n_read = test_chunk_stream_read (stream, buffer, count, cancellable, &error);

  g_task_return_int (task, n_read);
}

static gssize
test_chunk_stream_read_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_int (G_TASK (result), error);
}

static void
test_chunk_stream_finalize (GObject *object)
{
  TestChunkStream *self = TEST_CHUNK_STREAM (object);

  g_queue_clear_full (&self->chunks, (GDestroyNotify) g_bytes_unref);
  G_OBJECT_CLASS (test_chunk_stream_parent_class)->finalize (object);
}

static void
test_chunk_stream_class_init (TestChunkStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = test_chunk_stream_finalize;
  stream_class->read_fn = test_chunk_stream_read;
  stream_class->read_async = test_chunk_stream_read_async;
  stream_class->read_finish = test_chunk_stream_read_finish;
}

static void
test_chunk_stream_init (TestChunkStream *self)
{
  g_queue_init (&self->chunks);
}

/* NULL-terminated chunks of text; "\0" inside a chunk is not possible with
 * this helper, see chunk_stream_add(). */
static TestChunkStream *
chunk_stream_new (const char *first_chunk, ...)
{
  TestChunkStream *stream = g_object_new (TEST_TYPE_CHUNK_STREAM, NULL);
  va_list args;

  va_start (args, first_chunk);
  for (const char *chunk = first_chunk; chunk != NULL; chunk = va_arg (args, const char *))
    g_queue_push_tail (&stream->chunks, g_bytes_new (chunk, strlen (chunk)));
  va_end (args);
  return stream;
}

static void
chunk_stream_add (TestChunkStream *stream, const void *data, gsize len)
{
  g_queue_push_tail (&stream->chunks, g_bytes_new (data, len));
}

static void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

static char *
read_line (OutboxLineReader *reader, gsize *out_len, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  outbox_line_reader_read_line_async (reader, NULL, store_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return outbox_line_reader_read_line_finish (reader, result, out_len, error);
}

static void
assert_next_line (OutboxLineReader *reader, const char *expected)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  gsize len = 0;

  line = read_line (reader, &len, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (line, ==, expected);
  g_assert_cmpuint (len, ==, strlen (expected));
}

static void
assert_read_fails (OutboxLineReader *reader, gint code)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  gsize len = 1;

  line = read_line (reader, &len, &error);
  g_assert_error (error, G_IO_ERROR, code);
  g_assert_null (line);
  g_assert_cmpuint (len, ==, 0);
}

static void
test_split_across_reads (void)
{
  g_autoptr (TestChunkStream) stream =
      chunk_stream_new ("250-fi", "rst\r", "\n250 sec", "ond\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  assert_next_line (reader, "250-first");
  assert_next_line (reader, "250 second");
  g_assert_cmpuint (stream->n_reads, ==, 4);
}

static void
test_crlf_and_lf (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("a\r\nb\nc\r\n\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  assert_next_line (reader, "a");
  assert_next_line (reader, "b");
  assert_next_line (reader, "c");
  assert_next_line (reader, "");
}

static void
test_bare_cr_kept (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("a\rb\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  assert_next_line (reader, "a\rb");
}

static void
test_nul_in_line (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new (NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;
  gsize len = 0;

  chunk_stream_add (stream, "a\0b\r\n", 5);
  line = read_line (reader, &len, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (line, len, "a\0b", 3);
  g_assert_cmpint (line[3], ==, '\0');
}

static void
test_max_line_exact (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("12345678\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 8);

  assert_next_line (reader, "12345678");
}

static void
test_max_line_exceeded (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("123456789\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 8);

  assert_read_fails (reader, G_IO_ERROR_MESSAGE_TOO_LARGE);
}

/* The cap holds even when no line end ever comes: the reader stops at the
 * cap instead of buffering until end of stream. */
static void
test_max_line_without_newline (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("1234", "5678", "90", "ab", "cd", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 8);

  assert_read_fails (reader, G_IO_ERROR_MESSAGE_TOO_LARGE);
  g_assert_cmpuint (stream->n_reads, ==, 3);
}

static void
test_eof_mid_line (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("250 ok\r\n250 trun", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  assert_next_line (reader, "250 ok");
  assert_read_fails (reader, G_IO_ERROR_CONNECTION_CLOSED);
}

static void
test_eof_between_lines (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("250 ok\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  assert_next_line (reader, "250 ok");
  assert_read_fails (reader, G_IO_ERROR_CONNECTION_CLOSED);
}

static void
test_has_buffered (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("220 go\r\n250 injected\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  g_assert_false (outbox_line_reader_has_buffered (reader));
  assert_next_line (reader, "220 go");
  g_assert_true (outbox_line_reader_has_buffered (reader));
  assert_next_line (reader, "250 injected");
  g_assert_false (outbox_line_reader_has_buffered (reader));
}

static void
test_nothing_buffered_after_whole_read (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("220 go\r\n", "250 later\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);

  assert_next_line (reader, "220 go");
  g_assert_false (outbox_line_reader_has_buffered (reader));
}

static void
test_one_read_at_a_time (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("a\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);
  g_autoptr (GAsyncResult) first = NULL;

  outbox_line_reader_read_line_async (reader, NULL, store_result, &first);
  assert_read_fails (reader, G_IO_ERROR_PENDING);
  while (first == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_free (outbox_line_reader_read_line_finish (reader, first, NULL, NULL));
}

static void
test_cancelled (void)
{
  g_autoptr (TestChunkStream) stream = chunk_stream_new ("a\r\n", NULL);
  g_autoptr (OutboxLineReader) reader = outbox_line_reader_new (G_INPUT_STREAM (stream), 512);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *line = NULL;

  g_cancellable_cancel (cancellable);
  outbox_line_reader_read_line_async (reader, cancellable, store_result, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  line = outbox_line_reader_read_line_finish (reader, result, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (line);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/line-reader/split-across-reads", test_split_across_reads);
  g_test_add_func ("/line-reader/crlf-and-lf", test_crlf_and_lf);
  g_test_add_func ("/line-reader/bare-cr-kept", test_bare_cr_kept);
  g_test_add_func ("/line-reader/nul-in-line", test_nul_in_line);
  g_test_add_func ("/line-reader/max-line-exact", test_max_line_exact);
  g_test_add_func ("/line-reader/max-line-exceeded", test_max_line_exceeded);
  g_test_add_func ("/line-reader/max-line-without-newline", test_max_line_without_newline);
  g_test_add_func ("/line-reader/eof-mid-line", test_eof_mid_line);
  g_test_add_func ("/line-reader/eof-between-lines", test_eof_between_lines);
  g_test_add_func ("/line-reader/has-buffered", test_has_buffered);
  g_test_add_func ("/line-reader/nothing-buffered", test_nothing_buffered_after_whole_read);
  g_test_add_func ("/line-reader/one-read-at-a-time", test_one_read_at_a_time);
  g_test_add_func ("/line-reader/cancelled", test_cancelled);

  return g_test_run ();
}
