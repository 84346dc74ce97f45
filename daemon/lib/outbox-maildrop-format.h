/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The maildrop file format, written by outbox-sendmail and read by outboxd
 * (the directory and its life cycle: outbox-maildrop.h).
 *
 * Version 1: a text envelope, a blank line, then the message bytes exactly
 * as they are to be submitted.
 *
 *   outbox-maildrop 1\n
 *   from VALUE\n          at most once: the envelope sender ("" for <>);
 *                         absent: the account's address
 *   recipient VALUE\n     zero or more, at most 1000; none: the recipients
 *                         are the message's To, Cc and Bcc, and Bcc is
 *                         removed from what is sent
 *   notify VALUE\n        at most once each: the Submit options of
 *   ret VALUE\n           delivery status notifications (notify as one
 *   envid VALUE\n         list, "failure,delay"); checked as Submit
 *                         checks them.  A daemon older than them sets
 *                         such a file aside in rejected/, whole.
 *   \n
 *   MESSAGE
 *
 * A VALUE is UTF-8 in which every octet below 0x21, '%' and 0x7f is
 * written as %XX (two hex digits).  An envelope line is at most
 * OUTBOX_MAILDROP_MAX_LINE octets without its newline. */
#define OUTBOX_MAILDROP_MAGIC "outbox-maildrop 1"
#define OUTBOX_MAILDROP_MAX_LINE 1024

typedef struct
{
  char *from;               /* (owned) (nullable) */
  GPtrArray *recipients;    /* (owned) (element-type utf8) */
  char *notify;             /* (owned) (nullable) one list: "failure,delay" */
  char *ret;                /* (owned) (nullable) */
  char *envid;              /* (owned) (nullable) */
} OutboxMaildropEnvelope;

void     outbox_maildrop_envelope_init   (OutboxMaildropEnvelope       *envelope);
void     outbox_maildrop_envelope_clear  (OutboxMaildropEnvelope       *envelope);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OutboxMaildropEnvelope, outbox_maildrop_envelope_clear)

/* Whether @a and @b say the same, line for line. */
gboolean outbox_maildrop_envelope_equal  (const OutboxMaildropEnvelope *a,
                                          const OutboxMaildropEnvelope *b);

/* The envelope as a file starts: the magic line, the envelope's lines and
 * the blank line after them.  The values are not checked: Submit checks
 * them when the daemon reads the file. */
GString *outbox_maildrop_envelope_format (const OutboxMaildropEnvelope *envelope);

/* Reading, one line at a time as the daemon reads the file (a line without
 * its "\n"; @length is its length in octets, NUL bytes included). */
typedef struct
{
  OutboxMaildropEnvelope envelope;
  gboolean seen_magic;
  gboolean complete;        /* the blank line was read: the message follows */
} OutboxMaildropReader;

void     outbox_maildrop_reader_init     (OutboxMaildropReader *reader);
void     outbox_maildrop_reader_clear    (OutboxMaildropReader *reader);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OutboxMaildropReader, outbox_maildrop_reader_clear)
/* Takes the next line, or the end of the file when @line is NULL.  Returns
 * NULL, or why the file is not a maildrop file (a sentence for the
 * rejected/NAME.error file); nothing more may be given after either a
 * reason or the blank line that completes the envelope. */
const char *outbox_maildrop_reader_take_line (OutboxMaildropReader *reader,
                                              const char           *line,
                                              gsize                 length);

/* The envelope at the start of @data; @body_offset is where the message
 * starts.  G_IO_ERROR_INVALID_DATA with the reason when it is not one. */
gboolean outbox_maildrop_envelope_parse  (const char             *data,
                                          gsize                   length,
                                          OutboxMaildropEnvelope *envelope,
                                          gsize                  *body_offset,
                                          GError                **error);

G_END_DECLS
