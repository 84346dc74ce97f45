/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-cli-bus.h"
#include "outbox-cli-commands.h"
#include "outbox-cli-fields.h"
#include "outbox-cli-util.h"

/* outbox status */

static gboolean opt_json;

static const GOptionEntry entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  G_OPTION_ENTRY_NULL
};

static const char *const known_states[] = {
  "queued", "scheduled", "held", "sending", "deferred", "sent", "failed",
};

typedef struct
{
  guint32 version;
  char *daemon_version;  /* (owned) (nullable) absent from older daemons */
  gboolean online;
  GVariant *messages;  /* (owned) aa{sv} */
  GPtrArray *blocked_accounts; /* (owned) (element-type GVariant) a{sv} from Accounts.List */
} OutboxStatus;

static void
outbox_status_clear (OutboxStatus *status)
{
  g_clear_pointer (&status->daemon_version, g_free);
  g_clear_pointer (&status->messages, g_variant_unref);
  g_clear_pointer (&status->blocked_accounts, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (OutboxStatus, outbox_status_clear)

static gboolean
fetch_queue_properties (OutboxStatus  *status,
                        GError       **error)
{
  g_autoptr(GVariant) properties = outbox_cli_bus_queue_properties (error);

  if (properties == NULL)
    return FALSE;
  g_variant_lookup (properties, "Version", "u", &status->version);
  g_variant_lookup (properties, "DaemonVersion", "s", &status->daemon_version);
  g_variant_lookup (properties, "Online", "b", &status->online);
  return TRUE;
}

/* Accounts whose messages wait for the user (a refused password, an
 * OAuth2 grant to renew, a linked account gone): each a{sv} with name,
 * state and what to do. */
static gboolean
fetch_blocked_accounts (OutboxStatus  *status,
                        GError       **error)
{
  g_autoptr(GVariant) accounts = outbox_cli_bus_list_accounts (error);
  GVariantIter iter;
  GVariant *account;

  if (accounts == NULL)
    return FALSE;

  status->blocked_accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_variant_iter_init (&iter, accounts);
  while ((account = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *state = outbox_cli_lookup_text_or (account, "state", "ok");

      if (outbox_cli_lookup_text (account, "name") != NULL && !g_str_equal (state, "ok"))
        g_ptr_array_add (status->blocked_accounts, g_variant_ref (account));
      g_variant_unref (account);
    }
  return TRUE;
}

static gboolean
fetch_status (OutboxStatus  *status,
              GError       **error)
{
  if (!fetch_queue_properties (status, error))
    return FALSE;

  status->messages = outbox_cli_bus_list_messages (TRUE, error);
  if (status->messages == NULL)
    return FALSE;

  return fetch_blocked_accounts (status, error);
}

/* Every known state (in lifecycle order, zero or not), then any state a
 * newer daemon reports that this client does not know. */
static JsonObject *
count_states (GVariant *messages)
{
  JsonObject *counts = json_object_new ();
  GVariantIter iter;
  GVariant *message;

  for (gsize i = 0; i < G_N_ELEMENTS (known_states); i++)
    json_object_set_int_member (counts, known_states[i], 0);

  g_variant_iter_init (&iter, messages);
  while ((message = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *state = outbox_cli_lookup_text_or (message, "state", "unknown");
      gint64 count = json_object_has_member (counts, state)
                     ? json_object_get_int_member (counts, state) : 0;

      json_object_set_int_member (counts, state, count + 1);
      g_variant_unref (message);
    }

  return counts;
}

/* An x (Unix time) of @dict as an ISO 8601 member, when it is there. */
static void
set_time_member (JsonObject *object,
                 GVariant   *dict,
                 const char *key,
                 const char *member)
{
  gint64 when;

  if (g_variant_lookup (dict, key, "x", &when))
    json_object_set_member (object, member, outbox_cli_time_to_json (when));
}

static void
print_status_json (const OutboxStatus *status)
{
  g_autoptr(JsonNode) root = json_node_new (JSON_NODE_OBJECT);
  JsonObject *object = json_object_new ();
  JsonArray *names = json_array_new ();
  JsonArray *blocked = json_array_new ();

  for (guint i = 0; i < status->blocked_accounts->len; i++)
    {
      GVariant *account = g_ptr_array_index (status->blocked_accounts, i);
      JsonObject *entry = json_object_new ();
      const char *state = outbox_cli_lookup_text (account, "state");

      json_object_set_string_member (entry, "name", outbox_cli_lookup_text (account, "name"));
      json_object_set_string_member (entry, "state", state);
      json_object_set_string_member (entry, "message",
                                     outbox_cli_lookup_text_or (account, "state-message", ""));
      set_time_member (entry, account, "failing-since", "failing_since");
      set_time_member (entry, account, "next-attempt", "next_attempt");
      json_array_add_object_element (blocked, entry);
      if (g_str_equal (state, "needs-password"))
        json_array_add_string_element (names, outbox_cli_lookup_text (account, "name"));
    }
  json_object_set_int_member (object, "version", status->version);
  if (status->daemon_version != NULL)
    json_object_set_string_member (object, "daemon_version", status->daemon_version);
  json_object_set_string_member (object, "client_version", PACKAGE_VERSION);
  json_object_set_boolean_member (object, "online", status->online);
  json_object_set_int_member (object, "total", (gint64) g_variant_n_children (status->messages));
  json_object_set_object_member (object, "counts", count_states (status->messages));
  json_object_set_array_member (object, "accounts_needing_password", names);
  json_object_set_array_member (object, "accounts_needing_attention", blocked);
  json_node_take_object (root, object);
  outbox_cli_print_json (root);
}

static void
print_blocked_accounts (GPtrArray *accounts)
{
  if (accounts->len == 0)
    return;

  g_print ("Accounts needing attention:\n");
  for (guint i = 0; i < accounts->len; i++)
    {
      GVariant *account = g_ptr_array_index (accounts, i);
      g_autofree char *name = outbox_cli_sanitize (outbox_cli_lookup_text (account, "name"));
      g_autofree char *state = outbox_cli_sanitize (outbox_cli_lookup_text (account, "state"));
      g_autofree char *message =
          outbox_cli_sanitize (outbox_cli_lookup_text_or (account, "state-message", ""));

      gint64 since = 0;
      gint64 next_attempt = 0;

      g_print ("  %s (%s): %s\n", name, state, message);
      if (g_variant_lookup (account, "failing-since", "x", &since))
        {
          g_autofree char *since_text = outbox_cli_format_time (since, outbox_cli_now_unix ());

          g_print ("    failing since %s", since_text);
          if (g_variant_lookup (account, "next-attempt", "x", &next_attempt))
            {
              g_autofree char *next_text = outbox_cli_format_time (next_attempt, outbox_cli_now_unix ());
              g_print ("; next attempt %s", next_text);
            }
          g_print ("\n");
        }
    }
}

static void
print_status_text (const OutboxStatus *status)
{
  g_autoptr(JsonObject) counts = count_states (status->messages);
  g_autoptr(GList) states = json_object_get_members (counts);
  g_autofree char *daemon_version =
      outbox_cli_sanitize (status->daemon_version != NULL ? status->daemon_version : "unknown");

  g_print ("%-15s %s (interface %" G_GUINT32_FORMAT ")\n", "Daemon version:", daemon_version,
           status->version);
  g_print ("%-15s %s\n", "Client version:", PACKAGE_VERSION);
  g_print ("%-15s %s\n", "Online:", status->online ? "yes" : "no");
  g_print ("%-15s %" G_GSIZE_FORMAT "\n", "Messages:", g_variant_n_children (status->messages));
  for (GList *l = states; l != NULL; l = l->next)
    {
      g_autofree char *state = outbox_cli_sanitize (l->data);

      g_print ("  %-13s %" G_GINT64_FORMAT "\n", state,
               json_object_get_int_member (counts, l->data));
    }
  print_blocked_accounts (status->blocked_accounts);
}

static int
run_status (char **args)
{
  g_autoptr(GError) error = NULL;
  g_auto(OutboxStatus) status = { 0, };

  if (!fetch_status (&status, &error))
    return outbox_cli_report_error (error, NULL);

  if (opt_json)
    print_status_json (&status);
  else
    print_status_text (&status);
  return EXIT_SUCCESS;
}

const OutboxCliCommand outbox_cli_status_command = {
  .name = "status",
  .summary = "Show the daemon's state and the queue's counts",
  .run = run_status,
  .entries = entries,
  .description = "Show the daemon's version, whether it is online, how many messages are in "
                 "each state,\nand the accounts whose mail waits for you, with what to do.",
};
