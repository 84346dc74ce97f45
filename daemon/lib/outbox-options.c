/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-error.h"
#include "outbox-options.h"

static const OutboxOption *
find_option (const OutboxOption *table, gsize n_table, const char *key, gsize *out_index)
{
  for (gsize i = 0; i < n_table; i++)
    if (g_str_equal (table[i].key, key))
      {
        *out_index = i;
        return &table[i];
      }
  return NULL;
}

gboolean
outbox_options_unknown (const OutboxOption *table,
                        gsize n_table,
                        const char *what,
                        const char *key,
                        GError **error)
{
  g_autoptr (GString) known = g_string_new (NULL);

  for (gsize i = 0; i < n_table; i++)
    g_string_append_printf (known, "%s“%s”", i == 0 ? "" : i + 1 == n_table ? " and " : ", ",
                            table[i].key);
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS, "Unknown option “%s”; %s knows %s",
               key, what, known->str);
  return FALSE;
}

static gboolean
check_entry (const OutboxOption *option, GVariant *value, GError **error)
{
  if (!g_variant_is_of_type (value, G_VARIANT_TYPE (option->type)))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Option “%s” must be of type “%s”, not “%s”", option->key, option->type,
                   g_variant_get_type_string (value));
      return FALSE;
    }
  return option->check == NULL || option->check (option->key, value, error);
}

gboolean
outbox_options_check (GVariant *options,
                      const OutboxOption *table,
                      gsize n_table,
                      const char *what,
                      GVariant **out_values,
                      GError **error)
{
  g_return_val_if_fail (g_variant_is_of_type (options, G_VARIANT_TYPE_VARDICT), FALSE);

  if (out_values != NULL)
    memset (out_values, 0, n_table * sizeof *out_values);
  for (gsize i = 0; i < g_variant_n_children (options); i++)
    {
      const char *key;
      g_autoptr (GVariant) value = NULL;
      const OutboxOption *option;
      gsize index = 0;

      g_variant_get_child (options, i, "{&sv}", &key, &value);
      option = find_option (table, n_table, key, &index);
      if (option == NULL ? !outbox_options_unknown (table, n_table, what, key, error)
                         : !check_entry (option, value, error))
        {
          if (out_values != NULL)
            outbox_options_clear (out_values, n_table);
          return FALSE;
        }
      if (out_values != NULL)
        {
          g_clear_pointer (&out_values[index], g_variant_unref);
          out_values[index] = g_steal_pointer (&value);
        }
    }
  return TRUE;
}

void
outbox_options_clear (GVariant **values, gsize n_table)
{
  for (gsize i = 0; i < n_table; i++)
    g_clear_pointer (&values[i], g_variant_unref);
}
