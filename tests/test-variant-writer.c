/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-variant-writer.h"

/* Each case writes the same value twice, through the writer and through a
 * GVariantBuilder, and wants the same octets: the writer's output is
 * GVariant's normal form, read back as trusted data. */

static char *
random_text (GRand *rand, gsize max)
{
  gsize len = g_rand_int_range (rand, 0, (gint32) max + 1);
  char *text = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    text[i] = (char) g_rand_int_range (rand, 'a', 'z' + 1);
  text[len] = '\0';
  return text;
}

static void
add_entry (GVariantBuilder *builder, const char *key, GVariant *value)
{
  g_variant_builder_add (builder, "{sv}", key, value);
}

static void write_dict (OutboxVariantWriter *writer, GVariantBuilder *builder, GRand *rand, guint depth, gsize max_text);

static void
write_dicts (OutboxVariantWriter *writer, GVariantBuilder *builder, GRand *rand, guint depth, gsize max_text)
{
  guint n = g_rand_int_range (rand, 0, depth == 0 ? 40 : 5);

  for (guint i = 0; i < n; i++)
    {
      g_variant_builder_open (builder, G_VARIANT_TYPE_VARDICT);
      outbox_variant_writer_begin_dict (writer);
      write_dict (writer, builder, rand, depth + 1, max_text);
      outbox_variant_writer_end_dict (writer);
      g_variant_builder_close (builder);
    }
}

/* Entries of every kind the writer has, in a random order and number. */
static void
write_dict (OutboxVariantWriter *writer, GVariantBuilder *builder, GRand *rand, guint depth, gsize max_text)
{
  guint n = g_rand_int_range (rand, 0, 14);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *key = random_text (rand, 12);

      switch (g_rand_int_range (rand, 0, depth < 3 ? 7 : 6))
        {
        case 0:
          {
            g_autofree char *text = random_text (rand, max_text);

            outbox_variant_writer_add_string (writer, key, text);
            add_entry (builder, key, g_variant_new_string (text));
            break;
          }
        case 1:
          {
            gboolean value = g_rand_boolean (rand);

            outbox_variant_writer_add_boolean (writer, key, value);
            add_entry (builder, key, g_variant_new_boolean (value));
            break;
          }
        case 2:
          {
            guint32 value = g_rand_int (rand);

            outbox_variant_writer_add_uint32 (writer, key, value);
            add_entry (builder, key, g_variant_new_uint32 (value));
            break;
          }
        case 3:
          {
            gint64 value = (gint64) (((guint64) g_rand_int (rand) << 32) | g_rand_int (rand));

            outbox_variant_writer_add_int64 (writer, key, value);
            add_entry (builder, key, g_variant_new_int64 (value));
            break;
          }
        case 4:
          {
            guint64 value = ((guint64) g_rand_int (rand) << 32) | g_rand_int (rand);

            outbox_variant_writer_add_uint64 (writer, key, value);
            add_entry (builder, key, g_variant_new_uint64 (value));
            break;
          }
        case 5:
          {
            g_autoptr(GPtrArray) texts = g_ptr_array_new_with_free_func (g_free);
            guint n_texts = g_rand_int_range (rand, 0, 6);

            for (guint t = 0; t < n_texts; t++)
              g_ptr_array_add (texts, random_text (rand, max_text));
            g_ptr_array_add (texts, NULL);
            outbox_variant_writer_add_strv (writer, key, (const char *const *) texts->pdata);
            add_entry (builder, key, g_variant_new_strv ((const char *const *) texts->pdata, -1));
            break;
          }
        default:
          {
            GVariantBuilder inner;

            g_variant_builder_init (&inner, G_VARIANT_TYPE ("aa{sv}"));
            outbox_variant_writer_begin_dict_array (writer, key);
            write_dicts (writer, &inner, rand, depth + 1, max_text);
            outbox_variant_writer_end_array (writer);
            add_entry (builder, key, g_variant_builder_end (&inner));
            break;
          }
        }
    }
}

static void
assert_same (OutboxVariantWriter *writer, GVariant *expected)
{
  g_autoptr(GBytes) bytes = outbox_variant_writer_steal_bytes (writer);
  g_autoptr(GVariant) sunk = g_variant_ref_sink (expected);
  g_autoptr(GVariant) read = g_variant_new_from_bytes (g_variant_get_type (sunk), bytes, FALSE);

  g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), g_variant_get_data (sunk),
                   g_variant_get_size (sunk));
  g_assert_true (g_variant_is_normal_form (read));
  g_assert_true (g_variant_equal (read, sunk));
}

/* Sizes from a few octets (offsets of 1 octet) to over 64 KiB (offsets of
 * 4), arrays and dictionaries empty and nested. */
static void
test_arrays_like_the_builder (gconstpointer data)
{
  gsize max_text = GPOINTER_TO_SIZE (data);
  g_autoptr(GRand) rand = g_rand_new_with_seed (max_text);
  g_autoptr(OutboxVariantWriter) writer = outbox_variant_writer_new ();

  for (guint round = 0; round < 200; round++)
    {
      GVariantBuilder builder;

      g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
      outbox_variant_writer_begin_array (writer);
      write_dicts (writer, &builder, rand, 0, max_text);
      outbox_variant_writer_end_array (writer);
      assert_same (writer, g_variant_builder_end (&builder));
    }
}

static void
test_dict_like_the_builder (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  g_autoptr(OutboxVariantWriter) writer = outbox_variant_writer_new ();

  for (guint round = 0; round < 200; round++)
    {
      GVariantBuilder builder;

      g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
      outbox_variant_writer_begin_dict (writer);
      write_dict (writer, &builder, rand, 0, 300);
      outbox_variant_writer_end_dict (writer);
      assert_same (writer, g_variant_builder_end (&builder));
    }
}

/* The boundaries of the offset sizes: a string that makes its entry and
 * its dictionary cross 255 and 65,535 octets, one octet at a time. */
static void
test_offset_size_boundaries (void)
{
  g_autoptr(OutboxVariantWriter) writer = outbox_variant_writer_new ();
  gsize lengths[] = { 230, 250, 65500 };

  for (gsize l = 0; l < G_N_ELEMENTS (lengths); l++)
    for (gsize len = lengths[l]; len < lengths[l] + 40; len++)
      {
        g_autofree char *text = g_strnfill (len, 'x');
        GVariantBuilder builder;

        g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
        g_variant_builder_open (&builder, G_VARIANT_TYPE_VARDICT);
        add_entry (&builder, "subject", g_variant_new_string (text));
        add_entry (&builder, "size", g_variant_new_uint64 (len));
        g_variant_builder_close (&builder);
        outbox_variant_writer_begin_array (writer);
        outbox_variant_writer_begin_dict (writer);
        outbox_variant_writer_add_string (writer, "subject", text);
        outbox_variant_writer_add_uint64 (writer, "size", len);
        outbox_variant_writer_end_dict (writer);
        outbox_variant_writer_end_array (writer);
        assert_same (writer, g_variant_builder_end (&builder));
      }
}

/* A string that is not UTF-8 is made so: the reader trusts the octets. */
static void
test_invalid_utf8_made_valid (void)
{
  g_autoptr(OutboxVariantWriter) writer = outbox_variant_writer_new ();
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) read = NULL;
  const char *subject = NULL;

  outbox_variant_writer_begin_dict (writer);
  outbox_variant_writer_add_string (writer, "subject", "caf\xe9 \xff!");
  outbox_variant_writer_end_dict (writer);
  bytes = outbox_variant_writer_steal_bytes (writer);
  read = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_VARDICT, bytes, FALSE));
  g_assert_true (g_variant_is_normal_form (read));
  g_assert_true (g_variant_lookup (read, "subject", "&s", &subject));
  g_assert_cmpstr (subject, ==, "caf\xef\xbf\xbd \xef\xbf\xbd!");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_data_func ("/variant-writer/arrays/small", GSIZE_TO_POINTER (8), test_arrays_like_the_builder);
  g_test_add_data_func ("/variant-writer/arrays/medium", GSIZE_TO_POINTER (200), test_arrays_like_the_builder);
  g_test_add_data_func ("/variant-writer/arrays/large", GSIZE_TO_POINTER (5000), test_arrays_like_the_builder);
  g_test_add_func ("/variant-writer/dict", test_dict_like_the_builder);
  g_test_add_func ("/variant-writer/offset-size-boundaries", test_offset_size_boundaries);
  g_test_add_func ("/variant-writer/invalid-utf8-made-valid", test_invalid_utf8_made_valid);
  return g_test_run ();
}
