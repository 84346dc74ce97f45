/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <gio/gio.h>

#include "outbox-maildrop-format.h"
#include "outbox-message.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* An envelope read from a maildrop file, written again, reads back the
 * same: outbox-sendmail and outboxd never disagree on what a file says.
 * Only the length may differ: a raw space or control in a value is
 * written escaped, which can take a line over the limit. */
static void
check_round_trip (const OutboxMaildropEnvelope *envelope)
{
  g_autoptr (GString) written = outbox_maildrop_envelope_format (envelope);
  g_auto (OutboxMaildropEnvelope) again = { NULL, };
  g_autoptr (GError) error = NULL;
  gsize body_offset = 0;

  if (!outbox_maildrop_envelope_parse (written->str, written->len, &again, &body_offset, &error))
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
      g_assert_cmpstr (error->message, ==, "The envelope has an overlong line or a NUL byte");
      return;
    }
  g_assert_cmpuint (body_offset, ==, written->len);
  g_assert_true (outbox_maildrop_envelope_equal (&again, envelope));
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_auto (OutboxMaildropEnvelope) envelope = { NULL, };
  gsize body_offset = 0;

  if (!outbox_maildrop_envelope_parse ((const char *) data, size, &envelope, &body_offset, NULL))
    return 0;

  g_assert_cmpuint (body_offset, <=, size);
  g_assert_cmpuint (envelope.recipients->len, <=, OUTBOX_MESSAGE_MAX_RECIPIENTS);
  g_assert_true (envelope.from == NULL || g_utf8_validate (envelope.from, -1, NULL));
  check_round_trip (&envelope);
  return 0;
}
