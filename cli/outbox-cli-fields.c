/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-cli-fields.h"
#include "outbox-cli-util.h"

gint64
outbox_cli_now_unix (void)
{
  return g_get_real_time () / G_USEC_PER_SEC;
}

/* A list of words, such as a server's capabilities; NULL when empty. */
static char *
format_words_field (GVariant   *dict,
                    const char *key,
                    const char *separator)
{
  g_autofree const char **words = NULL;
  g_autofree char *joined = NULL;

  if (!g_variant_lookup (dict, key, "^a&s", &words) || words[0] == NULL)
    return NULL;
  joined = g_strjoinv (separator, (char **) words);
  return outbox_cli_sanitize (joined);
}

static gboolean
any_recipient_sent (GVariant *message)
{
  g_autoptr(GVariant) recipients = outbox_cli_lookup_vardicts (message, "recipients");
  gsize n = recipients != NULL ? g_variant_n_children (recipients) : 0;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) recipient = g_variant_get_child_value (recipients, i);

      if (g_strcmp0 (outbox_cli_lookup_text (recipient, "state"), "sent") == 0)
        return TRUE;
    }
  return FALSE;
}

/* Whether the servers were asked what the message asks of DSN; NULL
 * while nothing was sent, or nothing asked. */
static char *
format_dsn_outcome (GVariant *message)
{
  gboolean flag;

  if (g_variant_lookup (message, "dsn-not-offered", "b", &flag) && flag)
    return g_strdup ("the server does not offer it: sent without NOTIFY, RET and ENVID");
  if (!g_variant_lookup (message, "notify", "as", NULL) && outbox_cli_lookup_text (message, "ret") == NULL
      && outbox_cli_lookup_text (message, "envid") == NULL)
    return NULL;
  if (!any_recipient_sent (message))
    return NULL;
  return g_strdup ("asked of the server, which offers it");
}

static char *
format_size_field (GVariant   *dict,
                   const char *key)
{
  guint64 size;
  g_autofree char *short_size = NULL;

  if (!g_variant_lookup (dict, key, "t", &size))
    return NULL;
  if (size < 1024)
    return g_strdup_printf ("%" G_GUINT64_FORMAT " bytes", size);

  short_size = outbox_cli_format_size (size);
  return g_strdup_printf ("%s (%" G_GUINT64_FORMAT " bytes)", short_size, size);
}

static char *
format_flag_field (GVariant   *dict,
                   const char *key,
                   const char *yes,
                   const char *no)
{
  gboolean flag;

  if (!g_variant_lookup (dict, key, "b", &flag))
    return NULL;
  return g_strdup (flag ? yes : no);
}

static char *
format_field (GVariant          *dict,
              const OutboxField *field,
              gint64             now)
{
  gint64 time;
  guint32 count;
  const char *text;

  switch (field->kind)
    {
    case OUTBOX_FIELD_TEXT:
      text = outbox_cli_lookup_text (dict, field->key);
      return text != NULL ? outbox_cli_sanitize (text) : NULL;
    case OUTBOX_FIELD_SIZE:
      return format_size_field (dict, field->key);
    case OUTBOX_FIELD_TIME:
      if (!g_variant_lookup (dict, field->key, "x", &time))
        return NULL;
      return outbox_cli_format_time (time, now);
    case OUTBOX_FIELD_COUNT:
      if (!g_variant_lookup (dict, field->key, "u", &count))
        return NULL;
      return g_strdup_printf ("%" G_GUINT32_FORMAT, count);
    case OUTBOX_FIELD_SECONDS:
      if (!g_variant_lookup (dict, field->key, "u", &count))
        return NULL;
      return outbox_cli_format_seconds (count, TRUE);
    case OUTBOX_FIELD_YES_NO:
      return format_flag_field (dict, field->key, "yes", "no");
    case OUTBOX_FIELD_WORDS:
      return format_words_field (dict, field->key, " ");
    case OUTBOX_FIELD_LIST:
      return format_words_field (dict, field->key, ", ");
    case OUTBOX_FIELD_DSN_OUTCOME:
      return format_dsn_outcome (dict);
    default:
      g_assert_not_reached ();
    }
}

void
outbox_cli_print_fields (GVariant          *dict,
                         const OutboxField *fields,
                         gsize              n_fields)
{
  gint64 now = outbox_cli_now_unix ();
  int label_width = 0;

  for (gsize i = 0; i < n_fields; i++)
    label_width = MAX (label_width, (int) strlen (fields[i].label) + 1);

  for (gsize i = 0; i < n_fields; i++)
    {
      g_autofree char *value = NULL;
      g_autofree char *label = NULL;

      if (fields[i].shown_with != NULL &&
          outbox_cli_lookup_text (dict, fields[i].shown_with) == NULL)
        continue;
      value = format_field (dict, &fields[i], now);
      if (value == NULL)
        continue;
      label = g_strconcat (fields[i].label, ":", NULL);
      g_print ("%-*s %s\n", label_width, label, value);
    }
}

void
outbox_cli_print_vardict_json (GVariant *vardict)
{
  g_autoptr(JsonNode) root = outbox_cli_vardict_to_json (vardict);

  outbox_cli_print_json (root);
}

void
outbox_cli_print_json_list (const char *member,
                            GVariant   *vardicts)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *object = json_object_new ();

  json_object_set_member (object, member, outbox_cli_vardicts_to_json (vardicts));
  json_node_take_object (root, object);
  outbox_cli_print_json (root);
}
