/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-smtp-data.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* A @chunk_seed of 0 encodes everything in one call. */
static GByteArray *
encode (const guint8 *data, gsize size, guint32 chunk_seed)
{
  gboolean one_shot = chunk_seed == 0;
  GByteArray *out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;
  gsize pos = 0;

  outbox_smtp_data_encoder_init (&encoder);
  while (pos < size)
    {
      gsize chunk = one_shot ? size : MIN (size - pos, (chunk_seed >> 16) % 7);

      outbox_smtp_data_encoder_process (&encoder, data + pos, chunk, out);
      pos += chunk;
      chunk_seed = chunk_seed * 1103515245 + 12345;
    }
  outbox_smtp_data_encoder_finish (&encoder, out);

  return out;
}

static void
assert_safe (const GByteArray *out)
{
  const guint8 *bytes = out->data;
  gsize len = out->len;

  g_assert_cmpuint (len, >=, 3);
  g_assert_cmpmem (bytes + len - 3, 3, ".\r\n", 3);
  for (gsize i = 0; i < len; i++)
    {
      g_assert_cmpuint (bytes[i], !=, '\0');
      if (bytes[i] == '\r')
        g_assert_true (i + 1 < len && bytes[i + 1] == '\n');
      if (bytes[i] == '\n')
        g_assert_true (i > 0 && bytes[i - 1] == '\r');
      if (i + 5 < len)
        g_assert_false (memcmp (bytes + i, "\r\n.\r\n", 5) == 0);
    }
}

/* The first four bytes choose a chunking; the output must not depend on
 * it, and must be safe to put between DATA and the terminator. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  guint32 seed = 1;
  g_autoptr (GByteArray) whole = NULL;
  g_autoptr (GByteArray) chunked = NULL;

  if (size >= 4)
    {
      memcpy (&seed, data, 4);
      data += 4;
      size -= 4;
    }

  whole = encode (data, size, 0);
  chunked = encode (data, size, seed | 1);
  assert_safe (whole);
  g_assert_cmpmem (whole->data, whole->len, chunked->data, chunked->len);

  return 0;
}
