/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Writes GVariant's serialised form of arrays of dictionaries (aa{sv},
 * a{sv}) straight into one buffer, value after value, in normal form: the
 * bytes g_variant_get_data() would give for the same value built with a
 * GVariantBuilder, without a GVariant per entry, key and value.  A listing
 * of 100,000 messages is some 2.5 million entries: built as a tree, it
 * costs the daemon seconds of allocations and locks.
 *
 * The values a dictionary can hold are the ones Outbox puts in its
 * messages: s, b, u, x, t, as, and a nested aa{sv} (for instance a message's
 * recipients); what is not UTF-8 in a string is written as U+FFFD.
 * Calls nest as the value does:
 *
 *   begin_array (aa{sv})
 *     begin_dict  ... add_string / add_uint32 / ... ;
 *       begin_dict_array (key)  begin_dict ... end_dict ...  end_array
 *     end_dict
 *   end_array
 *
 * (a lone a{sv}: begin_dict ... end_dict at the top). */
typedef struct _OutboxVariantWriter OutboxVariantWriter;

OutboxVariantWriter *outbox_variant_writer_new (void);
void outbox_variant_writer_free (OutboxVariantWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxVariantWriter, outbox_variant_writer_free)

/* An array of dictionaries (aa{sv}), at the top or as the value of @key
 * in the dictionary being written. */
void outbox_variant_writer_begin_array (OutboxVariantWriter *writer);
void outbox_variant_writer_begin_dict_array (OutboxVariantWriter *writer, const char *key);
void outbox_variant_writer_end_array (OutboxVariantWriter *writer);

/* A dictionary (a{sv}): at the top, or the next element of the array being
 * written. */
void outbox_variant_writer_begin_dict (OutboxVariantWriter *writer);
void outbox_variant_writer_end_dict (OutboxVariantWriter *writer);

void outbox_variant_writer_add_string (OutboxVariantWriter *writer, const char *key, const char *value);
void outbox_variant_writer_add_boolean (OutboxVariantWriter *writer, const char *key, gboolean value);
void outbox_variant_writer_add_uint32 (OutboxVariantWriter *writer, const char *key, guint32 value);
void outbox_variant_writer_add_int64 (OutboxVariantWriter *writer, const char *key, gint64 value);
void outbox_variant_writer_add_uint64 (OutboxVariantWriter *writer, const char *key, guint64 value);
/* An array of strings (as); @values is NULL-terminated. */
void outbox_variant_writer_add_strv (OutboxVariantWriter *writer,
                                     const char *key,
                                     const char *const *values);

/* The octets written so far. */
gsize outbox_variant_writer_get_size (OutboxVariantWriter *writer);
/* Everything written, the writer left empty for the next value; once every
 * begin has had its end. */
GBytes *outbox_variant_writer_steal_bytes (OutboxVariantWriter *writer);

G_END_DECLS
