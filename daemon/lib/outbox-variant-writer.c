/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-variant-writer.h"

/* GVariant's serialised form, as far as this writer needs it:
 *
 * - s: the octets and a NUL; b: one octet; u: 4 octets; x, t: 8, in the
 *   host's byte order as GVariant writes them.  Each aligned to its size,
 *   relative to the start of the buffer (every container below starts at a
 *   multiple of 8, so that the two are the same).
 * - v: the value, a NUL, the value's type string.  Aligned to 8.
 * - {sv}: the key, the variant (aligned to 8), then one framing offset:
 *   where the key ends.
 * - an array of a type of variable size (a{sv}, aa{sv}): each element
 *   aligned to 8, then one framing offset per element, where it ends.
 * - framing offsets are little endian, relative to the container's
 *   start, all of one size: the smallest of 1, 2, 4 and 8 octets in which the container's
 *   whole size, offsets included, fits.  An empty array is no octets. */

typedef enum
{
  FRAME_ARRAY, /* aa{sv}: ends are its dictionaries' */
  FRAME_DICT,  /* a{sv}: ends are its entries' */
} FrameKind;

typedef struct
{
  FrameKind kind;
  gsize start;
  GArray *ends;      /* (element-type gsize) relative to start */
  /* An array that is the value of an entry: where that entry starts and
   * where its key ends (relative to the entry); else G_MAXSIZE. */
  gsize entry_start;
  gsize key_end;
} Frame;

struct _OutboxVariantWriter
{
  GByteArray *out;
  GArray *frames;  /* (element-type Frame) the open containers, innermost last */
  guint depth;     /* how many of frames are open; the rest are kept for reuse */
};

OutboxVariantWriter *
outbox_variant_writer_new (void)
{
  OutboxVariantWriter *writer = g_new0 (OutboxVariantWriter, 1);

  writer->out = g_byte_array_sized_new (4096);
  writer->frames = g_array_new (FALSE, TRUE, sizeof (Frame));
  return writer;
}

void
outbox_variant_writer_free (OutboxVariantWriter *writer)
{
  if (writer == NULL)
    return;
  for (guint i = 0; i < writer->frames->len; i++)
    g_array_unref (g_array_index (writer->frames, Frame, i).ends);
  g_array_unref (writer->frames);
  g_byte_array_unref (writer->out);
  g_free (writer);
}

static void
pad_to (OutboxVariantWriter *writer, gsize alignment)
{
  static const guint8 zeros[8] = { 0 };
  gsize over = writer->out->len % alignment;

  if (over != 0)
    g_byte_array_append (writer->out, zeros, alignment - over);
}

static Frame *
innermost (OutboxVariantWriter *writer)
{
  /* A call out of order is a programming error. */
  g_assert (writer->depth > 0);
  return &g_array_index (writer->frames, Frame, writer->depth - 1);
}

static Frame *
push_frame (OutboxVariantWriter *writer, FrameKind kind)
{
  Frame *frame;

  if (writer->depth == writer->frames->len)
    {
      Frame fresh = { 0 };

      fresh.ends = g_array_new (FALSE, FALSE, sizeof (gsize));
      g_array_append_val (writer->frames, fresh);
    }
  frame = &g_array_index (writer->frames, Frame, writer->depth++);
  frame->kind = kind;
  frame->start = writer->out->len;
  frame->entry_start = G_MAXSIZE;
  frame->key_end = 0;
  g_array_set_size (frame->ends, 0);
  return frame;
}

/* The size of one framing offset of a container whose body (without
 * them) is @body octets, with @n offsets. */
static guint
offset_size (gsize body, gsize n)
{
  if (body + n <= G_MAXUINT8)
    return 1;
  if (body + 2 * n <= G_MAXUINT16)
    return 2;
  if (body + 4 * n <= G_MAXUINT32)
    return 4;
  return 8;
}

static void
append_offset (OutboxVariantWriter *writer, guint64 value, guint size)
{
  guint8 octets[8];

  for (guint i = 0; i < size; i++)
    octets[i] = (guint8) (value >> (8 * i));
  g_byte_array_append (writer->out, octets, size);
}

static void
append_offsets (OutboxVariantWriter *writer, gsize start, const gsize *ends, gsize n)
{
  guint size;

  if (n == 0)
    return;
  size = offset_size (writer->out->len - start, n);
  for (gsize i = 0; i < n; i++)
    append_offset (writer, ends[i], size);
}

/* An entry of the innermost dictionary: the key, then the variant's start
 * (aligned); returns where the entry starts. */
static gsize
begin_entry (OutboxVariantWriter *writer, const char *key, gsize *out_key_end)
{
  Frame *dict = innermost (writer);
  gsize entry_start;

  g_return_val_if_fail (dict->kind == FRAME_DICT, 0);
  pad_to (writer, 8);
  entry_start = writer->out->len;
  g_byte_array_append (writer->out, (const guint8 *) key, strlen (key) + 1);
  *out_key_end = writer->out->len - entry_start;
  pad_to (writer, 8);
  return entry_start;
}

/* After the variant's value: its type, the key's offset, and the entry's
 * end in the dictionary. */
static void
end_entry (OutboxVariantWriter *writer, gsize entry_start, gsize key_end, const char *type)
{
  Frame *dict;
  gsize end;

  g_byte_array_append (writer->out, (const guint8 *) "", 1);
  g_byte_array_append (writer->out, (const guint8 *) type, strlen (type));
  append_offsets (writer, entry_start, &key_end, 1);
  dict = innermost (writer);
  end = writer->out->len - dict->start;
  g_array_append_val (dict->ends, end);
}

static void
add_fixed (OutboxVariantWriter *writer, const char *key, const char *type, const void *value, gsize size)
{
  gsize key_end;
  gsize entry_start = begin_entry (writer, key, &key_end);

  g_byte_array_append (writer->out, value, size);
  end_entry (writer, entry_start, key_end, type);
}

/* A string and its NUL.  The reader trusts what it gets: a string is
 * UTF-8, whatever the caller had (U+FFFD for what is not). */
static void
append_string_value (OutboxVariantWriter *writer, const char *value)
{
  gsize len = strlen (value);
  g_autofree char *valid = NULL;

  if (!g_utf8_validate_len (value, len, NULL))
    {
      valid = g_utf8_make_valid (value, len);
      value = valid;
      len = strlen (valid);
    }
  g_byte_array_append (writer->out, (const guint8 *) value, len + 1);
}

void
outbox_variant_writer_add_string (OutboxVariantWriter *writer, const char *key, const char *value)
{
  gsize key_end;
  gsize entry_start = begin_entry (writer, key, &key_end);

  append_string_value (writer, value);
  end_entry (writer, entry_start, key_end, "s");
}

/* as: the strings one after the other, then where each ends. */
void
outbox_variant_writer_add_strv (OutboxVariantWriter *writer,
                                const char *key,
                                const char *const *values)
{
  gsize key_end;
  gsize entry_start = begin_entry (writer, key, &key_end);
  gsize start = writer->out->len;
  g_autoptr (GArray) ends = g_array_new (FALSE, FALSE, sizeof (gsize));

  for (gsize i = 0; values[i] != NULL; i++)
    {
      gsize end;

      append_string_value (writer, values[i]);
      end = writer->out->len - start;
      g_array_append_val (ends, end);
    }
  append_offsets (writer, start, (const gsize *) ends->data, ends->len);
  end_entry (writer, entry_start, key_end, "as");
}

void
outbox_variant_writer_add_boolean (OutboxVariantWriter *writer, const char *key, gboolean value)
{
  guint8 octet = value ? 1 : 0;

  add_fixed (writer, key, "b", &octet, 1);
}

void
outbox_variant_writer_add_uint32 (OutboxVariantWriter *writer, const char *key, guint32 value)
{
  add_fixed (writer, key, "u", &value, sizeof value);
}

void
outbox_variant_writer_add_int64 (OutboxVariantWriter *writer, const char *key, gint64 value)
{
  add_fixed (writer, key, "x", &value, sizeof value);
}

void
outbox_variant_writer_add_uint64 (OutboxVariantWriter *writer, const char *key, guint64 value)
{
  add_fixed (writer, key, "t", &value, sizeof value);
}

void
outbox_variant_writer_begin_array (OutboxVariantWriter *writer)
{
  g_return_if_fail (writer->depth == 0 && writer->out->len == 0);
  push_frame (writer, FRAME_ARRAY);
}

void
outbox_variant_writer_begin_dict_array (OutboxVariantWriter *writer, const char *key)
{
  gsize key_end;
  gsize entry_start = begin_entry (writer, key, &key_end);
  Frame *array = push_frame (writer, FRAME_ARRAY);

  array->entry_start = entry_start;
  array->key_end = key_end;
}

void
outbox_variant_writer_end_array (OutboxVariantWriter *writer)
{
  Frame *array = innermost (writer);
  gsize entry_start, key_end;

  g_return_if_fail (array->kind == FRAME_ARRAY);
  append_offsets (writer, array->start, (const gsize *) array->ends->data, array->ends->len);
  entry_start = array->entry_start;
  key_end = array->key_end;
  writer->depth--;
  if (entry_start != G_MAXSIZE)
    end_entry (writer, entry_start, key_end, "aa{sv}");
}

void
outbox_variant_writer_begin_dict (OutboxVariantWriter *writer)
{
  if (writer->depth == 0)
    g_return_if_fail (writer->out->len == 0);
  else
    {
      g_return_if_fail (innermost (writer)->kind == FRAME_ARRAY);
      pad_to (writer, 8);
    }
  push_frame (writer, FRAME_DICT);
}

void
outbox_variant_writer_end_dict (OutboxVariantWriter *writer)
{
  Frame *dict = innermost (writer);
  Frame *array;
  gsize end;

  g_return_if_fail (dict->kind == FRAME_DICT);
  append_offsets (writer, dict->start, (const gsize *) dict->ends->data, dict->ends->len);
  writer->depth--;
  if (writer->depth == 0)
    return;
  array = innermost (writer);
  end = writer->out->len - array->start;
  g_array_append_val (array->ends, end);
}

gsize
outbox_variant_writer_get_size (OutboxVariantWriter *writer)
{
  return writer->out->len;
}

GBytes *
outbox_variant_writer_steal_bytes (OutboxVariantWriter *writer)
{
  GByteArray *out = writer->out;

  g_return_val_if_fail (writer->depth == 0, NULL);
  writer->out = g_byte_array_sized_new (4096);
  return g_byte_array_free_to_bytes (out);
}
