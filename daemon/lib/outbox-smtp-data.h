/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Streaming transformation of message bytes into the SMTP DATA payload,
 * or into the octets of BDAT chunks (RFC 3030).
 *
 * Normalise first, then dot-stuff (RFC 5321 section 4.5.2):
 * - CRLF stays; a lone LF becomes CRLF; a lone CR becomes CRLF;
 * - NUL bytes are dropped (some servers drop them, which could otherwise turn
 *   "CRLF NUL . CRLF" into an end-of-data);
 * - a '.' at the start of a line gets a second '.';
 * finish() ends the last line with CRLF when it has none and appends
 * ".\r\n".  Whatever the chunking of the input, the output never contains
 * CRLF "." CRLF before the final terminator and never a lone CR or LF.
 * A CR at the very end of one chunk is held until the next chunk shows
 * whether an LF follows.
 *
 * An encoder made with outbox_smtp_data_encoder_init_unstuffed() is the
 * same normalisation for BDAT: no dot is doubled and finish() ends the last
 * line but appends no terminator, so its output is the DATA payload with
 * the transparency dots and the final ".\r\n" taken out. */
typedef struct
{
  /*< private >*/
  gboolean at_line_start;
  gboolean pending_cr;
  gboolean empty;
  gboolean dot_stuffing;
  guint64 line_length; /* octets in the current output line so far */
  guint64 max_line_length; /* longest line seen, without CRLF */
} OutboxSmtpDataEncoder;

void outbox_smtp_data_encoder_init (OutboxSmtpDataEncoder *encoder);
void outbox_smtp_data_encoder_init_unstuffed (OutboxSmtpDataEncoder *encoder);
/* Appends the encoded form of @in to @out. */
void outbox_smtp_data_encoder_process (OutboxSmtpDataEncoder *encoder,
                                       const guint8 *in,
                                       gsize in_len,
                                       GByteArray *out);
/* Appends the end of the last line (if needed) and, when dot-stuffing,
 * ".\r\n" to @out. */
void outbox_smtp_data_encoder_finish (OutboxSmtpDataEncoder *encoder, GByteArray *out);

G_END_DECLS
