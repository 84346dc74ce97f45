/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-line-reader.h"

/* Bytes asked from the stream at a time.  The reader never holds more than
 * one line plus one chunk, whatever the peer sends. */
#define READ_CHUNK 4096

struct _OutboxLineReader
{
  GObject parent_instance;

  GInputStream *stream; /* (owned) */
  gsize max_line;
  GByteArray *buffer; /* (owned) read from the stream, not yet handed out */
  guint8 chunk[READ_CHUNK];
  GTask *pending; /* (nullable) (unowned) the read in progress */
};

G_DEFINE_TYPE (OutboxLineReader, outbox_line_reader, G_TYPE_OBJECT)

static void
outbox_line_reader_finalize (GObject *object)
{
  OutboxLineReader *self = OUTBOX_LINE_READER (object);

  g_clear_object (&self->stream);
  g_byte_array_unref (self->buffer);

  G_OBJECT_CLASS (outbox_line_reader_parent_class)->finalize (object);
}

static void
outbox_line_reader_class_init (OutboxLineReaderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_line_reader_finalize;
}

static void
outbox_line_reader_init (OutboxLineReader *self)
{
  self->buffer = g_byte_array_new ();
}

OutboxLineReader *
outbox_line_reader_new (GInputStream *stream, gsize max_line)
{
  OutboxLineReader *self;

  g_return_val_if_fail (G_IS_INPUT_STREAM (stream), NULL);
  g_return_val_if_fail (max_line > 0, NULL);

  self = g_object_new (OUTBOX_TYPE_LINE_READER, NULL);
  self->stream = g_object_ref (stream);
  self->max_line = max_line;

  return self;
}

GInputStream *
outbox_line_reader_get_stream (OutboxLineReader *reader)
{
  g_return_val_if_fail (OUTBOX_IS_LINE_READER (reader), NULL);

  return reader->stream;
}

gboolean
outbox_line_reader_has_buffered (OutboxLineReader *reader)
{
  g_return_val_if_fail (OUTBOX_IS_LINE_READER (reader), FALSE);

  return reader->buffer->len > 0;
}

/* Length of the line content (without CR LF) and of the line with its
 * terminator, when a whole line is buffered. */
static gboolean
find_line (OutboxLineReader *self, gsize *out_content_len, gsize *out_total_len)
{
  const guint8 *lf;
  gsize content_len;

  /* An empty GByteArray may have no storage at all: memchr must not see it. */
  if (self->buffer->len == 0)
    return FALSE;
  lf = memchr (self->buffer->data, '\n', self->buffer->len);
  if (lf == NULL)
    return FALSE;

  content_len = (gsize) (lf - self->buffer->data);
  *out_total_len = content_len + 1;
  if (content_len > 0 && self->buffer->data[content_len - 1] == '\r')
    content_len--;
  *out_content_len = content_len;
  return TRUE;
}

static void
return_line (OutboxLineReader *self, GTask *task, gsize content_len, gsize total_len)
{
  gsize *out_len = g_new (gsize, 1);
  char *line = g_malloc (content_len + 1);

  memcpy (line, self->buffer->data, content_len);
  line[content_len] = '\0';
  g_byte_array_remove_range (self->buffer, 0, (guint) total_len);

  *out_len = content_len;
  g_task_set_task_data (task, out_len, g_free);
  self->pending = NULL;
  g_task_return_pointer (task, line, g_free);
}

static void
return_error (OutboxLineReader *self, GTask *task, GError *error)
{
  self->pending = NULL;
  g_task_return_error (task, error);
}

/* A line that cannot end within max_line octets, even if the next byte is
 * the LF after a CR. */
static gboolean
line_too_long (OutboxLineReader *self, gsize content_len, gboolean complete)
{
  if (complete)
    return content_len > self->max_line;
  return self->buffer->len > self->max_line + 1;
}

static void read_more (OutboxLineReader *self, GTask *task);

static void
try_take_line (OutboxLineReader *self, GTask *task)
{
  gsize content_len = 0;
  gsize total_len = 0;
  gboolean complete = find_line (self, &content_len, &total_len);

  if (line_too_long (self, content_len, complete))
    {
      return_error (self, task,
                    g_error_new (G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                                 "The peer sent a line longer than %" G_GSIZE_FORMAT " octets",
                                 self->max_line));
      return;
    }
  if (complete)
    return_line (self, task, content_len, total_len);
  else
    read_more (self, task);
}

static void
chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxLineReader *self = g_task_get_source_object (task);
  GError *error = NULL;
  gssize n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (n_read < 0)
    {
      return_error (self, task, error);
      return;
    }
  if (n_read == 0)
    {
      return_error (self, task,
                    g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                         self->buffer->len > 0
                                             ? "The connection was closed in the middle of a line"
                                             : "The connection was closed"));
      return;
    }
  g_byte_array_append (self->buffer, self->chunk, (guint) n_read);
  try_take_line (self, task);
}

static void
read_more (OutboxLineReader *self, GTask *task)
{
  g_input_stream_read_async (self->stream, self->chunk, sizeof self->chunk, G_PRIORITY_DEFAULT,
                             g_task_get_cancellable (task), chunk_read, g_object_ref (task));
}

void
outbox_line_reader_read_line_async (OutboxLineReader *reader,
                                    GCancellable *cancellable,
                                    GAsyncReadyCallback callback,
                                    gpointer user_data)
{
  g_autoptr (GTask) task = NULL;

  g_return_if_fail (OUTBOX_IS_LINE_READER (reader));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (reader, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_line_reader_read_line_async);

  if (reader->pending != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "A line is already being read");
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  reader->pending = task;
  try_take_line (reader, task);
}

char *
outbox_line_reader_read_line_finish (OutboxLineReader *reader,
                                     GAsyncResult *result,
                                     gsize *out_len,
                                     GError **error)
{
  char *line;

  g_return_val_if_fail (OUTBOX_IS_LINE_READER (reader), NULL);
  g_return_val_if_fail (g_task_is_valid (result, reader), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_line_reader_read_line_async, NULL);

  line = g_task_propagate_pointer (G_TASK (result), error);
  if (out_len != NULL)
    *out_len = line != NULL ? *(gsize *) g_task_get_task_data (G_TASK (result)) : 0;
  return line;
}
