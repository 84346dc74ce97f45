/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Hard limits on what is accepted at submission. */
#define OUTBOX_MESSAGE_MAX_LINE 998               /* RFC 5322 section 2.1.1 */
#define OUTBOX_MESSAGE_MAX_HEADER (1024 * 1024)  /* the whole header block */
#define OUTBOX_MESSAGE_MAX_RECIPIENTS 1000

/* Reads a message from a stream in two steps, with memory bounded by the
 * header block, and writes it to another stream.
 *
 * 1. read_headers: reads up to the blank line (or end of input) and parses
 *    the header block with GMime.  Fails with OUTBOX_ERROR_INVALID_MESSAGE
 *    for an empty message, no header block, a header block over
 *    OUTBOX_MESSAGE_MAX_HEADER, a NUL byte or a line over 998 octets.
 * 2. write: writes the header block (Bcc removed when asked; Date,
 *    Message-ID and From added when missing), then streams the body through,
 *    refusing NUL bytes and lines over 998 octets (INVALID_MESSAGE, with the
 *    line number), counting octets and computing the SHA-256 of what was
 *    written.  Line endings are written as CRLF.
 */
typedef struct _OutboxMessageImport OutboxMessageImport;

typedef struct
{
  char *from_address;  /* (nullable) first address of From */
  char *from_name;     /* (nullable) */
  GPtrArray *to;       /* (element-type utf8) addresses of To */
  GPtrArray *cc;       /* Cc */
  GPtrArray *bcc;      /* Bcc */
  char *message_id;    /* (nullable) without angle brackets */
  char *subject;       /* (nullable) decoded */
  gboolean has_date;
} OutboxMessageHeaders;

typedef struct
{
  guint64 size;
  char *sha256;        /* hex */
  char *message_id;    /* the one written (existing or added) */
  gboolean eightbit;   /* some octet >= 0x80 */
} OutboxMessageWritten;

void outbox_message_headers_free (OutboxMessageHeaders *headers);
void outbox_message_written_free (OutboxMessageWritten *written);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxMessageHeaders, outbox_message_headers_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxMessageWritten, outbox_message_written_free)

OutboxMessageImport *outbox_message_import_new (GInputStream *in, GOutputStream *out);
void outbox_message_import_free (OutboxMessageImport *import);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxMessageImport, outbox_message_import_free)

void outbox_message_import_read_headers_async (OutboxMessageImport *import,
                                               GCancellable *cancellable,
                                               GAsyncReadyCallback callback,
                                               gpointer user_data);
/* (transfer none) valid until the import is freed */
const OutboxMessageHeaders *outbox_message_import_read_headers_finish (OutboxMessageImport *import,
                                                                       GAsyncResult *result,
                                                                       GError **error);

typedef enum
{
  OUTBOX_MESSAGE_WRITE_NONE = 0,
  OUTBOX_MESSAGE_WRITE_REMOVE_BCC = 1 << 0,
} OutboxMessageWriteFlags;

/* @from_header: (nullable) written as From when the message has none.
 * @id_domain: the domain for an added Message-ID (<random@id_domain>). */
void outbox_message_import_write_async (OutboxMessageImport *import,
                                        OutboxMessageWriteFlags flags,
                                        const char *from_header,
                                        const char *id_domain,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
OutboxMessageWritten *outbox_message_import_write_finish (OutboxMessageImport *import,
                                                          GAsyncResult *result,
                                                          GError **error);

G_END_DECLS
