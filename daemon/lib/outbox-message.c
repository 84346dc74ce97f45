/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include <gmime/gmime.h>

#include "outbox-error.h"
#include "outbox-message.h"

/* Body bytes are read and written this many at a time. */
#define CHUNK_SIZE (64 * 1024)

/* An import goes through two steps.
 *
 * read_headers reads chunks into @buffer and scans complete lines until the
 * header block ends: at a blank line (consumed), at a line that is neither
 * a header field nor a continuation (it starts the body, as in Postfix), or
 * at the end of input.  Then buffer[0, header_end) is the header block and
 * buffer[body_start, len) the first bytes of the body.
 *
 * write sends the rewritten header block and the blank line, then the body:
 * what is left in @buffer, then chunk after chunk from the input, each
 * normalised to CRLF and checked before it is written. */
struct _OutboxMessageImport
{
  GInputStream *in;            /* (owned) */
  GOutputStream *out;          /* (owned) */

  GByteArray *buffer;          /* (owned) */
  gsize scan_pos;              /* start of the first line not yet scanned */
  guint header_lines;
  gsize header_end;
  gsize body_start;
  gboolean header_complete;
  gboolean input_ended;
  OutboxMessageHeaders *headers; /* (owned) (nullable) once read */
  gboolean has_from;
  gboolean has_message_id;

  /* writing */
  guint8 *chunk;               /* (owned) */
  GByteArray *pending;         /* (owned) bytes being written */
  GChecksum *checksum;         /* (owned) */
  guint64 size;
  guint line_number;           /* of the line being normalised */
  guint64 line_length;
  gboolean pending_cr;
  gboolean eightbit;
  gboolean body_complete;
  char *message_id;            /* (owned) */
};

static gpointer
init_gmime (gpointer data)
{
  g_mime_init ();
  return NULL;
}

static void
ensure_gmime (void)
{
  static GOnce once = G_ONCE_INIT;

  g_once (&once, init_gmime, NULL);
}

void
outbox_message_headers_free (OutboxMessageHeaders *headers)
{
  if (headers == NULL)
    return;
  g_free (headers->from_address);
  g_free (headers->from_name);
  g_ptr_array_unref (headers->to);
  g_ptr_array_unref (headers->cc);
  g_ptr_array_unref (headers->bcc);
  g_free (headers->message_id);
  g_free (headers->subject);
  g_free (headers);
}

void
outbox_message_written_free (OutboxMessageWritten *written)
{
  if (written == NULL)
    return;
  g_free (written->sha256);
  g_free (written->message_id);
  g_free (written);
}

OutboxMessageImport *
outbox_message_import_new (GInputStream *in,
                           GOutputStream *out)
{
  OutboxMessageImport *import;

  g_return_val_if_fail (G_IS_INPUT_STREAM (in), NULL);
  g_return_val_if_fail (G_IS_OUTPUT_STREAM (out), NULL);

  import = g_new0 (OutboxMessageImport, 1);
  import->in = g_object_ref (in);
  import->out = g_object_ref (out);
  import->buffer = g_byte_array_new ();
  import->pending = g_byte_array_new ();
  import->checksum = g_checksum_new (G_CHECKSUM_SHA256);
  return import;
}

void
outbox_message_import_free (OutboxMessageImport *import)
{
  if (import == NULL)
    return;
  g_object_unref (import->in);
  g_object_unref (import->out);
  g_byte_array_unref (import->buffer);
  g_byte_array_unref (import->pending);
  g_checksum_free (import->checksum);
  outbox_message_headers_free (import->headers);
  g_free (import->chunk);
  g_free (import->message_id);
  g_free (import);
}

static gboolean
invalid_message (GError **error,
                 const char *format,
                 ...) G_GNUC_PRINTF (2, 3);

static gboolean
invalid_message (GError **error,
                 const char *format,
                 ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_MESSAGE, message);
  return FALSE;
}

static gboolean
line_too_long (GError **error,
               guint line_number,
               guint64 length,
               gboolean complete)
{
  return invalid_message (error,
                          "Line %u of the message is %s%" G_GUINT64_FORMAT " octets long, over the "
                          "limit of %d; encode the body as quoted-printable or base64 and fold long "
                          "header fields",
                          line_number, complete ? "" : "at least ", length, OUTBOX_MESSAGE_MAX_LINE);
}

static gboolean
nul_byte (GError **error,
          guint line_number)
{
  return invalid_message (error,
                          "Line %u of the message contains a NUL byte; encode binary content as base64",
                          line_number);
}

/* Header block */

typedef enum
{
  HEADER_LINE_FIELD,
  HEADER_LINE_CONTINUATION,
  HEADER_LINE_BLANK,
  HEADER_LINE_OTHER,
} HeaderLineKind;

/* Length of the field name when @line starts a header field, else 0. */
static gsize
field_name_length (const guint8 *line,
                   gsize length)
{
  for (gsize i = 0; i < length; i++)
    {
      if (line[i] == ':')
        return i;
      if (line[i] < 33 || line[i] > 126)
        return 0;
    }
  return 0;
}

static HeaderLineKind
classify_header_line (const guint8 *line,
                      gsize length)
{
  if (length == 0)
    return HEADER_LINE_BLANK;
  if (line[0] == ' ' || line[0] == '\t')
    return HEADER_LINE_CONTINUATION;
  if (field_name_length (line, length) > 0)
    return HEADER_LINE_FIELD;
  return HEADER_LINE_OTHER;
}

/* @length excludes the line terminator. */
static gboolean
check_header_line (const guint8 *line,
                   gsize length,
                   guint line_number,
                   GError **error)
{
  if (memchr (line, '\0', length) != NULL)
    return nul_byte (error, line_number);
  if (memchr (line, '\r', length) != NULL)
    return invalid_message (error,
                            "Line %u of the message header contains a carriage return that does not "
                            "end the line", line_number);
  if (length > OUTBOX_MESSAGE_MAX_LINE)
    return line_too_long (error, line_number, length, TRUE);
  return TRUE;
}

static gboolean
no_header (GError **error)
{
  return invalid_message (error,
                          "The message has no header; it must start with header fields such as "
                          "From: and Subject:");
}

static void
end_header (OutboxMessageImport *import,
            gsize header_end,
            gsize body_start)
{
  import->header_end = header_end;
  import->body_start = body_start;
  import->header_complete = TRUE;
}

/* The line at scan_pos has no terminator yet: it may still be valid. */
static gboolean
check_incomplete_line (OutboxMessageImport *import,
                       gsize available,
                       GError **error)
{
  if (available > OUTBOX_MESSAGE_MAX_LINE + 2)
    return line_too_long (error, import->header_lines + 1, available, FALSE);
  return TRUE;
}

/* Handles one complete line, or the last line at the end of input. */
static gboolean
scan_header_line (OutboxMessageImport *import,
                  gsize line_end,
                  gsize length,
                  GError **error)
{
  const guint8 *line = import->buffer->data + import->scan_pos;
  guint line_number = import->header_lines + 1;
  HeaderLineKind kind;

  if (!check_header_line (line, length, line_number, error))
    return FALSE;
  kind = classify_header_line (line, length);
  if (line_number == 1 && kind != HEADER_LINE_FIELD)
    return no_header (error);
  if (kind == HEADER_LINE_BLANK)
    end_header (import, import->scan_pos, line_end);
  else if (kind == HEADER_LINE_OTHER)
    end_header (import, import->scan_pos, import->scan_pos);
  else
    {
      import->header_lines++;
      import->scan_pos = line_end;
    }
  if (import->scan_pos > OUTBOX_MESSAGE_MAX_HEADER)
    return invalid_message (error,
                            "The header block of the message is over %d octets; shorten or remove "
                            "header fields", OUTBOX_MESSAGE_MAX_HEADER);
  return TRUE;
}

/* Scans the lines read so far; sets header_complete at the end of the
 * header block. */
static gboolean
scan_header (OutboxMessageImport *import,
             GError **error)
{
  while (!import->header_complete)
    {
      const guint8 *start = import->buffer->data + import->scan_pos;
      gsize available = import->buffer->len - import->scan_pos;
      const guint8 *newline = memchr (start, '\n', available);
      gsize length = newline != NULL ? (gsize) (newline - start) : available;
      gsize line_end = import->scan_pos + length + (newline != NULL ? 1 : 0);

      if (newline == NULL && !import->input_ended)
        return check_incomplete_line (import, available, error);
      if (available == 0)
        {
          end_header (import, import->scan_pos, import->scan_pos);
          break;
        }
      /* A CR at the end of input ends the line as well as a CRLF does. */
      if (length > 0 && start[length - 1] == '\r')
        length--;
      if (!scan_header_line (import, line_end, length, error))
        return FALSE;
    }
  return TRUE;
}

/* Walks the header block one line at a time; returns FALSE after the last.
 * @length excludes the terminator. */
static gboolean
next_header_line (OutboxMessageImport *import,
                  gsize *pos,
                  const guint8 **line,
                  gsize *length)
{
  const guint8 *start = import->buffer->data + *pos;
  gsize available = import->header_end - *pos;
  const guint8 *newline;

  if (*pos >= import->header_end)
    return FALSE;
  newline = memchr (start, '\n', available);
  *line = start;
  *length = newline != NULL ? (gsize) (newline - start) : available;
  *pos += *length + (newline != NULL ? 1 : 0);
  if (*length > 0 && start[*length - 1] == '\r')
    (*length)--;
  return TRUE;
}

static gboolean
field_name_is (const guint8 *line,
               gsize length,
               const char *name)
{
  gsize name_length = field_name_length (line, length);

  return name_length == strlen (name)
    && g_ascii_strncasecmp ((const char *) line, name, name_length) == 0;
}

/* GMime gets the header block with LF line ends and a blank line. */
static GMimeMessage *
parse_header_block (OutboxMessageImport *import)
{
  g_autoptr(GByteArray) block = g_byte_array_sized_new (import->header_end + 1);
  GMimeMessage *message;
  GMimeStream *stream;
  GMimeParser *parser;
  const guint8 *line;
  gsize length;
  gsize pos = 0;

  while (next_header_line (import, &pos, &line, &length))
    {
      g_byte_array_append (block, line, length);
      g_byte_array_append (block, (const guint8 *) "\n", 1);
    }
  g_byte_array_append (block, (const guint8 *) "\n", 1);

  ensure_gmime ();
  stream = g_mime_stream_mem_new_with_buffer ((const char *) block->data, block->len);
  parser = g_mime_parser_new_with_stream (stream);
  message = g_mime_parser_construct_message (parser, NULL);
  g_object_unref (parser);
  g_object_unref (stream);
  return message;
}

static const char *
mailbox_address (InternetAddress *address)
{
  InternetAddressMailbox *mailbox = INTERNET_ADDRESS_MAILBOX (address);
  const char *idn = internet_address_mailbox_get_idn_addr (mailbox);

  return idn != NULL ? idn : internet_address_mailbox_get_addr (mailbox);
}

/* Appends every mailbox of @list, groups flattened. */
static void
collect_addresses (InternetAddressList *list,
                   GPtrArray *addresses)
{
  int n = list != NULL ? internet_address_list_length (list) : 0;

  for (int i = 0; i < n; i++)
    {
      InternetAddress *address = internet_address_list_get_address (list, i);

      if (INTERNET_ADDRESS_IS_GROUP (address))
        collect_addresses (internet_address_group_get_members (INTERNET_ADDRESS_GROUP (address)),
                           addresses);
      else if (INTERNET_ADDRESS_IS_MAILBOX (address)
               && mailbox_address (address) != NULL && *mailbox_address (address) != '\0')
        g_ptr_array_add (addresses, g_strdup (mailbox_address (address)));
    }
}

static InternetAddress *
first_mailbox (InternetAddressList *list)
{
  int n = list != NULL ? internet_address_list_length (list) : 0;

  for (int i = 0; i < n; i++)
    {
      InternetAddress *address = internet_address_list_get_address (list, i);
      InternetAddress *found = address;

      if (INTERNET_ADDRESS_IS_GROUP (address))
        found = first_mailbox (internet_address_group_get_members (INTERNET_ADDRESS_GROUP (address)));
      if (found != NULL && INTERNET_ADDRESS_IS_MAILBOX (found))
        return found;
    }
  return NULL;
}

static OutboxMessageHeaders *
headers_from_message (GMimeMessage *message)
{
  OutboxMessageHeaders *headers = g_new0 (OutboxMessageHeaders, 1);
  InternetAddress *from = first_mailbox (g_mime_message_get_from (message));

  if (from != NULL)
    {
      headers->from_address = g_strdup (mailbox_address (from));
      headers->from_name = g_strdup (internet_address_get_name (from));
    }
  headers->to = g_ptr_array_new_with_free_func (g_free);
  headers->cc = g_ptr_array_new_with_free_func (g_free);
  headers->bcc = g_ptr_array_new_with_free_func (g_free);
  collect_addresses (g_mime_message_get_addresses (message, GMIME_ADDRESS_TYPE_TO), headers->to);
  collect_addresses (g_mime_message_get_addresses (message, GMIME_ADDRESS_TYPE_CC), headers->cc);
  collect_addresses (g_mime_message_get_addresses (message, GMIME_ADDRESS_TYPE_BCC), headers->bcc);
  headers->message_id = g_strdup (g_mime_message_get_message_id (message));
  headers->subject = g_strdup (g_mime_message_get_subject (message));
  return headers;
}

/* Which fields the message has, from the raw lines: a field GMime cannot
 * parse is still there and must not be added a second time. */
static void
find_present_fields (OutboxMessageImport *import)
{
  const guint8 *line;
  gsize length;
  gsize pos = 0;

  while (next_header_line (import, &pos, &line, &length))
    {
      import->has_from |= field_name_is (line, length, "from");
      import->has_message_id |= field_name_is (line, length, "message-id");
      import->headers->has_date |= field_name_is (line, length, "date");
    }
}

static gboolean
parse_headers (OutboxMessageImport *import,
               GError **error)
{
  GMimeMessage *message = parse_header_block (import);

  if (message == NULL)
    return invalid_message (error, "The message header cannot be parsed; check its syntax");
  import->headers = headers_from_message (message);
  g_object_unref (message);
  find_present_fields (import);
  return TRUE;
}

static gboolean
take_header_input (OutboxMessageImport *import,
                   GError **error)
{
  if (import->input_ended && import->buffer->len == 0)
    return invalid_message (error, "The message is empty");
  if (!scan_header (import, error))
    return FALSE;
  return !import->header_complete || parse_headers (import, error);
}

static void read_header_chunk (GTask *task);

static void
on_header_chunk_read (GObject *source,
                      GAsyncResult *result,
                      gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  OutboxMessageImport *import = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n_read;

  n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_byte_array_set_size (import->buffer, import->buffer->len - CHUNK_SIZE + MAX (n_read, 0));
  if (n_read < 0)
    {
      g_task_return_error (task, error);
      return;
    }
  import->input_ended = n_read == 0;
  if (!take_header_input (import, &error))
    g_task_return_error (task, error);
  else if (!import->header_complete)
    read_header_chunk (g_steal_pointer (&task));
  else
    g_task_return_boolean (task, TRUE);
}

static void
read_header_chunk (GTask *task)
{
  OutboxMessageImport *import = g_task_get_task_data (task);
  gsize old_length = import->buffer->len;

  g_byte_array_set_size (import->buffer, old_length + CHUNK_SIZE);
  g_input_stream_read_async (import->in, import->buffer->data + old_length, CHUNK_SIZE,
                             G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                             on_header_chunk_read, task);
}

void
outbox_message_import_read_headers_async (OutboxMessageImport *import,
                                          GCancellable *cancellable,
                                          GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  GTask *task;

  g_return_if_fail (import != NULL);
  g_return_if_fail (import->buffer->len == 0 && import->headers == NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_message_import_read_headers_async);
  g_task_set_task_data (task, import, NULL);
  read_header_chunk (task);
}

const OutboxMessageHeaders *
outbox_message_import_read_headers_finish (OutboxMessageImport *import,
                                           GAsyncResult *result,
                                           GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_message_import_read_headers_async,
                        NULL);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  return import->headers;
}

/* Writing: the header block */

static void
append_line (GByteArray *out,
             const char *line)
{
  g_byte_array_append (out, (const guint8 *) line, strlen (line));
  g_byte_array_append (out, (const guint8 *) "\r\n", 2);
}

static gboolean
is_blind_copy_field (const guint8 *line,
                     gsize length)
{
  return field_name_is (line, length, "bcc") || field_name_is (line, length, "resent-bcc");
}

/* The original lines, CRLF-terminated, blind copy fields (with their
 * continuation lines) left out when asked. */
static void
append_original_fields (OutboxMessageImport *import,
                        gboolean remove_bcc,
                        GByteArray *out)
{
  gboolean skipping = FALSE;
  const guint8 *line;
  gsize length;
  gsize pos = 0;

  while (next_header_line (import, &pos, &line, &length))
    {
      if (classify_header_line (line, length) == HEADER_LINE_FIELD)
        skipping = remove_bcc && is_blind_copy_field (line, length);
      if (skipping)
        continue;
      g_byte_array_append (out, line, length);
      g_byte_array_append (out, (const guint8 *) "\r\n", 2);
    }
}

static gboolean
is_valid_id_domain (const char *domain)
{
  if (*domain == '\0')
    return FALSE;
  for (const char *p = domain; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-')
        return FALSE;
    }
  return TRUE;
}

static char *
new_message_id (const char *id_domain)
{
  return g_strdup_printf ("%08x%08x%08x%08x@%s",
                          g_random_int (), g_random_int (), g_random_int (), g_random_int (),
                          id_domain);
}

/* @from_header must be one mailbox; GMime re-encodes it so that it holds
 * neither raw 8-bit text nor a line break. */
static char *
encode_from_header (const char *from_header,
                    GError **error)
{
  InternetAddressList *list;
  g_autofree char *encoded = NULL;

  ensure_gmime ();
  list = internet_address_list_parse (NULL, from_header);
  if (list != NULL && internet_address_list_length (list) == 1
      && INTERNET_ADDRESS_IS_MAILBOX (internet_address_list_get_address (list, 0)))
    encoded = internet_address_list_to_string (list, NULL, TRUE);
  g_clear_object (&list);
  if (encoded == NULL || strpbrk (encoded, "\r\n") != NULL
      || strlen (encoded) > OUTBOX_MESSAGE_MAX_LINE - strlen ("From: "))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "The sender “%s” cannot be written as a From header", from_header);
      return NULL;
    }
  return g_steal_pointer (&encoded);
}

static gboolean
append_missing_fields (OutboxMessageImport *import,
                       const char *from_header,
                       const char *id_domain,
                       GByteArray *out,
                       GError **error)
{
  if (!import->headers->has_date)
    {
      g_autoptr(GDateTime) now = g_date_time_new_now_local ();
      g_autofree char *date = g_mime_utils_header_format_date (now);
      g_autofree char *line = g_strconcat ("Date: ", date, NULL);

      append_line (out, line);
    }
  if (!import->has_message_id)
    {
      g_autofree char *line = NULL;

      import->message_id = new_message_id (id_domain);
      line = g_strdup_printf ("Message-ID: <%s>", import->message_id);
      append_line (out, line);
    }
  else
    import->message_id = g_strdup (import->headers->message_id);
  if (!import->has_from && from_header != NULL)
    {
      g_autofree char *encoded = encode_from_header (from_header, error);
      g_autofree char *line = NULL;

      if (encoded == NULL)
        return FALSE;
      line = g_strconcat ("From: ", encoded, NULL);
      append_line (out, line);
    }
  return TRUE;
}

/* Writing: the body */

static void
end_body_line (OutboxMessageImport *import,
               guint8 **write)
{
  *(*write)++ = '\r';
  *(*write)++ = '\n';
  import->line_number++;
  import->line_length = 0;
}

/* Length of the line that @rest continues, as far as it can be seen. */
static gboolean
long_body_line (OutboxMessageImport *import,
                const guint8 *rest,
                gsize rest_length,
                GError **error)
{
  gsize more = 0;

  while (more < rest_length && rest[more] != '\r' && rest[more] != '\n')
    more++;
  return line_too_long (error, import->line_number, import->line_length + more, more < rest_length);
}

/* Appends @data to @out normalised to CRLF, refusing NUL bytes and long
 * lines; state carries over from one chunk to the next. */
static gboolean
normalise_body (OutboxMessageImport *import,
                const guint8 *data,
                gsize length,
                GByteArray *out,
                GError **error)
{
  gsize old_length = out->len;
  guint8 *write;

  g_byte_array_set_size (out, old_length + 2 * length + 2);
  write = out->data + old_length;
  for (gsize i = 0; i < length; i++)
    {
      guint8 c = data[i];

      if (import->pending_cr)
        {
          import->pending_cr = FALSE;
          end_body_line (import, &write);
          if (c == '\n')
            continue;
        }
      if (c == '\r')
        import->pending_cr = TRUE;
      else if (c == '\n')
        end_body_line (import, &write);
      else if (c == '\0')
        return nul_byte (error, import->line_number);
      else if (++import->line_length > OUTBOX_MESSAGE_MAX_LINE)
        return long_body_line (import, data + i + 1, length - i - 1, error);
      else
        {
          import->eightbit |= c >= 0x80;
          *write++ = c;
        }
    }
  g_byte_array_set_size (out, write - out->data);
  return TRUE;
}

/* The last line of the file ends with CRLF like every other. */
static void
finish_body (OutboxMessageImport *import,
             GByteArray *out)
{
  if (import->pending_cr || import->line_length > 0)
    g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  import->pending_cr = FALSE;
  import->line_length = 0;
  import->body_complete = TRUE;
}

static gboolean
build_first_block (OutboxMessageImport *import,
                   OutboxMessageWriteFlags flags,
                   const char *from_header,
                   const char *id_domain,
                   GError **error)
{
  GByteArray *out = import->pending;
  const guint8 *rest = import->buffer->data + import->body_start;

  append_original_fields (import, (flags & OUTBOX_MESSAGE_WRITE_REMOVE_BCC) != 0, out);
  if (!append_missing_fields (import, from_header, id_domain, out, error))
    return FALSE;
  g_byte_array_append (out, (const guint8 *) "\r\n", 2);
  for (guint i = 0; i < out->len; i++)
    import->eightbit |= out->data[i] >= 0x80;

  /* Body lines are numbered from the start of the message. */
  import->line_number = import->header_lines + 1 + (import->body_start > import->header_end ? 1 : 0);
  if (!normalise_body (import, rest, import->buffer->len - import->body_start, out, error))
    return FALSE;
  if (import->input_ended)
    finish_body (import, out);
  return TRUE;
}

static void
return_written (GTask *task)
{
  OutboxMessageImport *import = g_task_get_task_data (task);
  OutboxMessageWritten *written = g_new0 (OutboxMessageWritten, 1);

  /* The buffers go now, not with the import: a submission then waits for
   * its flush (shared by many) holding none of its 64 KiB chunks, and the
   * heap between the queue's records is not left full of their holes. */
  g_clear_pointer (&import->chunk, g_free);
  g_byte_array_unref (import->buffer);
  import->buffer = g_byte_array_new ();
  g_byte_array_unref (import->pending);
  import->pending = g_byte_array_new ();

  written->size = import->size;
  written->sha256 = g_strdup (g_checksum_get_string (import->checksum));
  written->message_id = g_strdup (import->message_id);
  written->eightbit = import->eightbit;
  g_task_return_pointer (task, written, (GDestroyNotify) outbox_message_written_free);
}

static void write_pending (GTask *task);

static void
on_body_chunk_read (GObject *source,
                    GAsyncResult *result,
                    gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  OutboxMessageImport *import = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n_read;

  n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_byte_array_set_size (import->pending, 0);
  if (n_read == 0)
    finish_body (import, import->pending);
  else if (n_read < 0 || !normalise_body (import, import->chunk, n_read, import->pending, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  write_pending (g_steal_pointer (&task));
}

static void
read_body_chunk (GTask *task)
{
  OutboxMessageImport *import = g_task_get_task_data (task);

  if (import->chunk == NULL)
    import->chunk = g_malloc (CHUNK_SIZE);
  g_input_stream_read_async (import->in, import->chunk, CHUNK_SIZE, G_PRIORITY_DEFAULT,
                             g_task_get_cancellable (task), on_body_chunk_read, task);
}

static void
pending_written (GTask *task,
                 gboolean written,
                 GError *error)
{
  OutboxMessageImport *import = g_task_get_task_data (task);

  if (!written)
    g_task_return_error (task, error);
  else if (import->body_complete)
    return_written (task);
  else
    read_body_chunk (g_object_ref (task));
}

static void
on_pending_written (GObject *source,
                    GAsyncResult *result,
                    gpointer user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  gboolean written = g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error);

  pending_written (task, written, error);
}

/* Takes @task. */
static void
write_pending (GTask *task)
{
  OutboxMessageImport *import = g_task_get_task_data (task);

  g_checksum_update (import->checksum, import->pending->data, import->pending->len);
  import->size += import->pending->len;
  /* A spool file cannot be polled: GIO would write it from its thread pool,
   * two thread switches per chunk, where the write itself only copies the
   * chunk into the page cache.  So it is written here. */
  if (!G_IS_POLLABLE_OUTPUT_STREAM (import->out)
      || !g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (import->out)))
    {
      g_autoptr(GTask) owned = task;
      GError *error = NULL;
      gboolean written = g_output_stream_write_all (import->out, import->pending->data,
                                                    import->pending->len, NULL,
                                                    g_task_get_cancellable (task), &error);

      pending_written (owned, written, error);
      return;
    }
  g_output_stream_write_all_async (import->out, import->pending->data, import->pending->len,
                                   G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   on_pending_written, task);
}

void
outbox_message_import_write_async (OutboxMessageImport *import,
                                   OutboxMessageWriteFlags flags,
                                   const char *from_header,
                                   const char *id_domain,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *ascii_domain = NULL;
  GError *error = NULL;

  g_return_if_fail (import != NULL);
  g_return_if_fail (import->headers != NULL);
  g_return_if_fail (import->message_id == NULL);
  g_return_if_fail (id_domain != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_message_import_write_async);
  g_task_set_task_data (task, import, NULL);

  ascii_domain = g_hostname_to_ascii (id_domain);
  if (ascii_domain == NULL || !is_valid_id_domain (ascii_domain))
    {
      g_task_return_new_error (task, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                               "“%s” cannot be the domain of a Message-ID", id_domain);
      return;
    }
  if (!build_first_block (import, flags, from_header, ascii_domain, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  write_pending (g_steal_pointer (&task));
}

OutboxMessageWritten *
outbox_message_import_write_finish (OutboxMessageImport *import,
                                    GAsyncResult *result,
                                    GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_message_import_write_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
