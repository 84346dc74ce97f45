/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "outbox-cli-json.h"
#include "outbox-cli-text.h"

static const char *const time_keys[] = { "created",        "send-at",       "next-attempt",
                                         "sent-copy-next", "tls-not-after", "failing-since",
                                         NULL };

JsonNode *
outbox_cli_time_to_json (gint64 unix_time)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (unix_time);
  g_autofree char *iso = NULL;

  if (time == NULL)
    return json_node_init_int (json_node_alloc (), unix_time);

  iso = g_date_time_format_iso8601 (time);
  return json_node_init_string (json_node_alloc (), iso);
}

static JsonNode *
value_to_json (const char *key,
               GVariant   *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64) && g_strv_contains (time_keys, key))
    return outbox_cli_time_to_json (g_variant_get_int64 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT))
    return outbox_cli_vardict_to_json (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE ("aa{sv}")))
    return outbox_cli_vardicts_to_json (value);

  return json_gvariant_serialize (value);
}

JsonNode *
outbox_cli_vardict_to_json (GVariant *vardict)
{
  JsonObject *object = json_object_new ();
  JsonNode *node = json_node_init_object (json_node_alloc (), object);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, vardict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autofree char *member = g_strdelimit (g_strdup (key), "-", '_');

      json_object_set_member (object, member, value_to_json (key, value));
      g_variant_unref (value);
    }

  json_object_unref (object);
  return node;
}

JsonNode *
outbox_cli_vardicts_to_json (GVariant *vardicts)
{
  JsonArray *array = json_array_sized_new ((guint) g_variant_n_children (vardicts));
  JsonNode *node = json_node_init_array (json_node_alloc (), array);
  GVariantIter iter;
  GVariant *vardict;

  g_variant_iter_init (&iter, vardicts);
  while ((vardict = g_variant_iter_next_value (&iter)) != NULL)
    {
      json_array_add_element (array, outbox_cli_vardict_to_json (vardict));
      g_variant_unref (vardict);
    }

  json_array_unref (array);
  return node;
}

/* Pretty, indented by two: the one form of every JSON output. */
static JsonGenerator *
json_generator_new_pretty (void)
{
  JsonGenerator *generator = json_generator_new ();

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 2);
  return generator;
}

static char *
json_to_text (JsonNode *root)
{
  g_autoptr(JsonGenerator) generator = json_generator_new_pretty ();

  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

/* JSON is UTF-8 whatever the locale: written as it is, not through
 * g_print(), which would turn what the locale's charset lacks into '?'. */
void
outbox_cli_print_json (JsonNode *root)
{
  g_autofree char *text = json_to_text (root);

  fputs (text, stdout);
  fputs ("\n", stdout);
  fflush (stdout);
}

/* The same text as outbox_cli_print_json() of an object whose only member
 * is that array, written one element at a time: a queue of 100,000
 * messages is never held whole, as dictionaries, JSON nodes or text.
 * Written with stdio, which g_print() would flush at every call.  The head
 * goes out with the first element, or at the end: a failure before either
 * leaves the output empty. */

void
outbox_cli_json_list_begin (OutboxCliJsonList *list,
                            const char        *member)
{
  list->member = member;
  list->empty = TRUE;
  list->text = g_string_new (NULL);
}

static void
json_list_print_head (OutboxCliJsonList *list)
{
  g_autoptr(JsonNode) name = json_node_init_string (json_node_alloc (), list->member);
  g_autofree char *quoted = json_to_text (name);

  fprintf (stdout, "{\n  %s : [", quoted);
}

/* The text of a listing, written straight from the dictionaries in the
 * form json_generator_new_pretty() gives (a listing of 100,000 messages is
 * 2.5 million values: through JSON nodes and a generator it took seconds).
 * What a message dictionary does not hold (anything but strings, numbers,
 * booleans, arrays of strings, a{sv} and aa{sv}) goes through json-glib. */

static void
json_indent (GString *out, guint level)
{
  for (guint i = 0; i < level; i++)
    g_string_append_len (out, "  ", 2);
}

static void
json_write_string (GString *out, const char *text)
{
  static const char hex[] = "0123456789abcdef";

  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
        case '"': g_string_append_len (out, "\\\"", 2); break;
        case '\\': g_string_append_len (out, "\\\\", 2); break;
        case '\b': g_string_append_len (out, "\\b", 2); break;
        case '\f': g_string_append_len (out, "\\f", 2); break;
        case '\n': g_string_append_len (out, "\\n", 2); break;
        case '\r': g_string_append_len (out, "\\r", 2); break;
        case '\t': g_string_append_len (out, "\\t", 2); break;
        default:
          if (c < 0x20 || c == 0x7f)
            {
              g_string_append_len (out, "\\u00", 4);
              g_string_append_c (out, hex[c >> 4]);
              g_string_append_c (out, hex[c & 0xf]);
            }
          else
            g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

static void json_write_vardict (GString *out, GVariant *vardict, guint level);

/* An array of dictionaries (a message's recipients) or of strings (its
 * notify). */
static void
json_write_array (GString *out, GVariant *array, guint level)
{
  gsize n = g_variant_n_children (array);

  if (n == 0)
    {
      g_string_append_len (out, "[]", 2);
      return;
    }
  g_string_append_len (out, "[\n", 2);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) element = g_variant_get_child_value (array, i);

      json_indent (out, level + 1);
      if (g_variant_is_of_type (element, G_VARIANT_TYPE_STRING))
        json_write_string (out, g_variant_get_string (element, NULL));
      else
        json_write_vardict (out, element, level + 1);
      g_string_append (out, i + 1 < n ? ",\n" : "\n");
    }
  json_indent (out, level);
  g_string_append_c (out, ']');
}

static void
json_write_value (GString *out, const char *key, GVariant *value, guint level)
{
  const GVariantType *type = g_variant_get_type (value);

  if (g_variant_type_equal (type, G_VARIANT_TYPE_STRING))
    json_write_string (out, g_variant_get_string (value, NULL));
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_BOOLEAN))
    g_string_append (out, g_variant_get_boolean (value) ? "true" : "false");
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_UINT32))
    g_string_append_printf (out, "%u", g_variant_get_uint32 (value));
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_UINT64))
    g_string_append_printf (out, "%" G_GINT64_FORMAT, (gint64) g_variant_get_uint64 (value));
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_INT64))
    {
      gint64 number = g_variant_get_int64 (value);
      g_autoptr(GDateTime) time = g_strv_contains (time_keys, key) ? g_date_time_new_from_unix_utc (number)
                                                                     : NULL;
      g_autofree char *iso = time != NULL ? g_date_time_format_iso8601 (time) : NULL;

      if (iso != NULL)
        json_write_string (out, iso);
      else
        g_string_append_printf (out, "%" G_GINT64_FORMAT, number);
    }
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_VARDICT))
    json_write_vardict (out, value, level);
  else if (g_variant_type_equal (type, G_VARIANT_TYPE ("aa{sv}"))
           || g_variant_type_equal (type, G_VARIANT_TYPE_STRING_ARRAY))
    json_write_array (out, value, level);
  else
    {
      g_autoptr(JsonNode) node = value_to_json (key, value);
      g_autoptr(JsonGenerator) generator = json_generator_new ();

      json_generator_set_root (generator, node);
      json_generator_to_gstring (generator, out);
    }
}

static void
json_write_vardict (GString *out, GVariant *vardict, guint level)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;
  gboolean first = TRUE;

  if (g_variant_n_children (vardict) == 0)
    {
      g_string_append_len (out, "{  }", 4);
      return;
    }
  g_string_append_len (out, "{\n", 2);
  g_variant_iter_init (&iter, vardict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      if (!first)
        g_string_append_len (out, ",\n", 2);
      first = FALSE;
      json_indent (out, level + 1);
      g_string_append_c (out, '"');
      for (const char *p = key; *p != '\0'; p++)
        g_string_append_c (out, *p == '-' ? '_' : *p);
      g_string_append_len (out, "\" : ", 4);
      json_write_value (out, key, value, level + 1);
      g_variant_unref (value);
    }
  g_string_append_c (out, '\n');
  json_indent (out, level);
  g_string_append_c (out, '}');
}

void
outbox_cli_json_list_add (OutboxCliJsonList *list,
                          GVariant          *vardict)
{
  if (list->empty)
    json_list_print_head (list);
  g_string_truncate (list->text, 0);
  g_string_append (list->text, list->empty ? "\n    " : ",\n    ");
  list->empty = FALSE;
  json_write_vardict (list->text, vardict, 2);
  fwrite (list->text->str, 1, list->text->len, stdout);
}

void
outbox_cli_json_list_end (OutboxCliJsonList *list,
                          gboolean           complete)
{
  if (complete && list->empty)
    {
      json_list_print_head (list);
      fputs ("]\n}\n", stdout);
    }
  else if (complete)
    fputs ("\n  ]\n}\n", stdout);
  else if (!list->empty)
    fputs ("\n", stdout);
  fflush (stdout);
  g_string_free (g_steal_pointer (&list->text), TRUE);
}
