/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Reads CRLF (or LF) terminated lines from a GInputStream asynchronously,
 * with a hard cap on line length, and can tell whether bytes are buffered
 * beyond the last line handed out: after the reply to STARTTLS any such
 * byte is an injection attempt.
 *
 * Errors: G_IO_ERROR_MESSAGE_TOO_LARGE for a line over @max_line octets,
 * G_IO_ERROR_CONNECTION_CLOSED at end of stream (also in the middle of a
 * line), and whatever the stream reports. */
#define OUTBOX_TYPE_LINE_READER (outbox_line_reader_get_type ())
G_DECLARE_FINAL_TYPE (OutboxLineReader, outbox_line_reader, OUTBOX, LINE_READER, GObject)

OutboxLineReader *outbox_line_reader_new (GInputStream *stream, gsize max_line);
GInputStream *outbox_line_reader_get_stream (OutboxLineReader *reader);
/* The line (without CR LF, NUL-terminated, owned by the caller) and its
 * length through @out_len. */
void outbox_line_reader_read_line_async (OutboxLineReader *reader,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data);
char *outbox_line_reader_read_line_finish (OutboxLineReader *reader,
                                           GAsyncResult *result,
                                           gsize *out_len,
                                           GError **error);
/* TRUE when bytes have been read from the stream that no line has taken. */
gboolean outbox_line_reader_has_buffered (OutboxLineReader *reader);

G_END_DECLS
