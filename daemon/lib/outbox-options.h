/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Declared a{sv} options: what a D-Bus method (Submit, List, the account
 * settings of Add and Update) accepts, each key with its type and, where
 * the type says too little, a check of the value.  One table per method,
 * one function that checks a dictionary against it, one wording of the
 * errors (OUTBOX_ERROR_INVALID_ARGS). */

/* Returns FALSE with @error set when @value (of the right type) will not
 * do; the message says what would. */
typedef gboolean (*OutboxOptionCheck) (const char *key, GVariant *value, GError **error);

typedef struct
{
  const char *key;
  const char *type;        /* a GVariant type string */
  OutboxOptionCheck check; /* (nullable) */
} OutboxOption;

/* Checks every entry of @options (a{sv}) against the @n_table options of
 * @table: known key, its type, its check.  @what names the caller in the
 * message about an unknown key ("Submit", "List", "Account settings").
 * On success, and when @out_values is not NULL, out_values[i] is the value
 * given for table[i] (transfer full, NULL when absent; a key given twice:
 * the last). */
gboolean outbox_options_check (GVariant *options,
                               const OutboxOption *table,
                               gsize n_table,
                               const char *what,
                               GVariant **out_values,
                               GError **error);
/* Sets the error about @key, which is not in @table, and returns FALSE. */
gboolean outbox_options_unknown (const OutboxOption *table,
                                 gsize n_table,
                                 const char *what,
                                 const char *key,
                                 GError **error);
/* Frees the values outbox_options_check() gave. */
void outbox_options_clear (GVariant **values, gsize n_table);

G_END_DECLS
