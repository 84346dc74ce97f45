/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/* Reading the daemon's dictionaries into the objects' fields. */

int
_outbox_enum_from_nick (GType type, const char *nick, int unknown)
{
  g_autoptr (GEnumClass) klass = g_type_class_ref (type);
  GEnumValue *value;

  if (nick == NULL)
    return unknown;
  value = g_enum_get_value_by_nick (klass, nick);
  return value != NULL ? value->value : unknown;
}

gboolean
_outbox_take_string (char **field, GVariant *dict, const char *key)
{
  const char *value = NULL;

  g_variant_lookup (dict, key, "&s", &value);
  if (g_strcmp0 (*field, value) == 0)
    return FALSE;
  g_free (*field);
  *field = g_strdup (value);
  return TRUE;
}

gboolean
_outbox_take_time (GDateTime **field, GVariant *dict, const char *key)
{
  gint64 value = 0;
  gboolean present = g_variant_lookup (dict, key, "x", &value);

  if (!present && *field == NULL)
    return FALSE;
  if (present && *field != NULL && g_date_time_to_unix (*field) == value)
    return FALSE;
  g_clear_pointer (field, g_date_time_unref);
  if (present)
    *field = g_date_time_new_from_unix_local (value);
  return TRUE;
}
