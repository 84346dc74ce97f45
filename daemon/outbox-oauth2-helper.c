/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outbox-oauth2.h"

/* outbox-oauth2-helper [--verbose] refresh
 *
 * Refreshes one OAuth2 access token for outboxd, in a process of its own
 * so that the daemon never loads libsoup.  Secrets travel on standard
 * input only, never in the arguments, which other users can read in /proc.
 *
 * Standard input: one JSON object, at most 64 KiB:
 *   {"token_url":     "https://...",  the token endpoint (https, or http
 *                                     to a loopback host)
 *    "client_id":     "...",
 *    "client_secret": "...",          (optional)
 *    "refresh_token": "...",
 *    "scope":         "..."}          (optional) sent with the refresh
 *
 * Standard output: one JSON object on one line, for outboxd:
 *   exit 0:  {"access_token": "...",
 *             "expires_at": N,          wall-clock Unix seconds; 0 when the
 *                                       provider gave no lifetime
 *             "refresh_token": "...",   only when the provider rotated it:
 *                                       the old one is then to be replaced
 *             "scope": "..."}           only when the provider named one
 *   exit 1:  {"error": NAME, "message": "..."}, where NAME is an
 *            OUTBOX_OAUTH2_ERROR code's name (outbox-oauth2.h), e.g.
 *            "invalid_grant" (the account must be authorized again),
 *            "network" (no answer: try again later), "bad_url"; the message
 *            is a sentence for the user;
 *   exit 64: a usage error: bad arguments, or standard input that is not
 *            such an object; nothing on standard output.
 * Log messages go to standard error; none holds a token or a secret. */

#define EXIT_USAGE 64
#define HELPER_MAX_INPUT (64 * 1024)

/* A GString that is wiped when freed. */
typedef GString WipedString;

static void
wiped_string_free (WipedString *text)
{
  explicit_bzero (text->str, text->allocated_len);
  g_string_free (text, TRUE);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (WipedString, wiped_string_free)

/* Reads all of standard input into a buffer sized once, so that no copy
 * of a secret is left behind by a reallocation. */
static WipedString *
read_input (GError **error)
{
  g_autoptr (WipedString) input = g_string_sized_new (HELPER_MAX_INPUT + 1);

  for (;;)
    {
      ssize_t n = read (STDIN_FILENO, input->str + input->len, HELPER_MAX_INPUT + 1 - input->len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "Could not read standard input: %s", g_strerror (errno));
          return NULL;
        }
      if (n == 0)
        break;
      g_string_set_size (input, input->len + n);
      if (input->len > HELPER_MAX_INPUT)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                       "Standard input is larger than %d octets", HELPER_MAX_INPUT);
          return NULL;
        }
    }
  return g_steal_pointer (&input);
}

typedef struct
{
  OutboxOAuth2Settings settings; /* token_url, client_id and scope only */
  char *client_secret;           /* (nullable) wiped */
  char *refresh_token;           /* wiped */
} RefreshRequest;

static void
wipe_string (char *text)
{
  if (text == NULL)
    return;
  explicit_bzero (text, strlen (text));
  g_free (text);
}

static void
refresh_request_clear (RefreshRequest *request)
{
  g_clear_pointer (&request->settings.token_url, g_free);
  g_clear_pointer (&request->settings.client_id, g_free);
  g_clear_pointer (&request->settings.scope, g_free);
  g_clear_pointer (&request->client_secret, wipe_string);
  g_clear_pointer (&request->refresh_token, wipe_string);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RefreshRequest, refresh_request_clear)

static const char *const input_members[] = {
  "token_url", "client_id", "client_secret", "refresh_token", "scope",
};

/* Returns where the member called @name goes in @request. */
static char **
member_slot (RefreshRequest *request, const char *name)
{
  char **slots[] = {
    &request->settings.token_url, &request->settings.client_id, &request->client_secret,
    &request->refresh_token,      &request->settings.scope,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (input_members); i++)
    {
      if (strcmp (name, input_members[i]) == 0)
        return slots[i];
    }
  return NULL;
}

/* Every member known and a non-empty string; an unknown one is refused,
 * since it is more likely a typo than something to do without. */
static gboolean
read_members (JsonObject *object, RefreshRequest *request, GError **error)
{
  g_autoptr (GList) names = json_object_get_members (object);

  for (GList *l = names; l != NULL; l = l->next)
    {
      JsonNode *node = json_object_get_member (object, l->data);
      char **slot = member_slot (request, l->data);

      if (slot == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "Unknown member “%s”",
                       (const char *) l->data);
          return FALSE;
        }
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING ||
          *json_node_get_string (node) == '\0')
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "“%s” is not a non-empty string", (const char *) l->data);
          return FALSE;
        }
      *slot = g_strdup (json_node_get_string (node));
    }
  return TRUE;
}

static gboolean
parse_request (const WipedString *input, RefreshRequest *request, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  JsonNode *root;

  if (!g_utf8_validate (input->str, input->len, NULL) ||
      !json_parser_load_from_data (parser, input->str, input->len, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "Standard input is not one JSON object");
      return FALSE;
    }
  if (!read_members (json_node_get_object (root), request, error))
    return FALSE;
  if (request->settings.token_url == NULL || request->settings.client_id == NULL ||
      request->refresh_token == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           "token_url, client_id and refresh_token are required");
      return FALSE;
    }
  return TRUE;
}

/* Prints @builder's object as one line and wipes the text. */
static void
print_object (JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  gsize len = 0;
  char *text;

  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &len);
  fwrite (text, 1, len, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
  explicit_bzero (text, len);
  g_free (text);
}

static void
print_tokens (const OutboxOAuth2Tokens *tokens)
{
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "access_token");
  json_builder_add_string_value (builder, tokens->access_token);
  json_builder_set_member_name (builder, "expires_at");
  json_builder_add_int_value (builder, tokens->expires_at);
  if (tokens->refresh_token != NULL)
    {
      json_builder_set_member_name (builder, "refresh_token");
      json_builder_add_string_value (builder, tokens->refresh_token);
    }
  if (tokens->scope != NULL)
    {
      json_builder_set_member_name (builder, "scope");
      json_builder_add_string_value (builder, tokens->scope);
    }
  json_builder_end_object (builder);
  print_object (builder);
}

static void
print_error (const GError *error)
{
  g_autoptr (JsonBuilder) builder = json_builder_new_immutable ();
  const char *name = error->domain == OUTBOX_OAUTH2_ERROR
                         ? outbox_oauth2_error_code_to_string (error->code)
                         : outbox_oauth2_error_code_to_string (OUTBOX_OAUTH2_ERROR_FAILED);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, name);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, error->message);
  json_builder_end_object (builder);
  print_object (builder);
}

typedef struct
{
  GMainLoop *loop;
  OutboxOAuth2Tokens *tokens; /* (owned) (nullable) */
  GError *error;              /* (owned) (nullable) */
} Refresh;

static void
on_refreshed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Refresh *refresh = user_data;

  refresh->tokens = outbox_oauth2_refresh_finish (result, &refresh->error);
  g_main_loop_quit (refresh->loop);
}

static int
run_refresh (void)
{
  g_auto (RefreshRequest) request = { { 0 } };
  g_autoptr (WipedString) input = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GMainLoop) loop = NULL;
  Refresh refresh = { NULL, NULL, NULL };
  int status;

  input = read_input (&error);
  if (input == NULL || !parse_request (input, &request, &error))
    {
      g_printerr ("outbox-oauth2-helper: %s\n", error->message);
      return EXIT_USAGE;
    }

  loop = g_main_loop_new (NULL, FALSE);
  refresh.loop = loop;
  outbox_oauth2_refresh_async (NULL, &request.settings, request.client_secret,
                               request.refresh_token, NULL, on_refreshed, &refresh);
  g_main_loop_run (loop);

  if (refresh.tokens != NULL)
    {
      print_tokens (refresh.tokens);
      status = EXIT_SUCCESS;
    }
  else
    {
      print_error (refresh.error);
      status = EXIT_FAILURE;
    }
  g_clear_pointer (&refresh.tokens, outbox_oauth2_tokens_free);
  g_clear_error (&refresh.error);
  return status;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) option_context = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) commands = NULL;
  gboolean verbose = FALSE;
  const GOptionEntry entries[] = {
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &commands, NULL, "refresh" },
    { NULL },
  };

  setlocale (LC_ALL, "");
  /* GLib writes debug and info messages to standard output by default,
   * which belongs to the protocol here. */
  g_log_writer_default_set_use_stderr (TRUE);
  option_context = g_option_context_new ("- refresh an OAuth2 access token");
  g_option_context_add_main_entries (option_context, entries, NULL);
  if (!g_option_context_parse (option_context, &argc, &argv, &error))
    {
      g_printerr ("outbox-oauth2-helper: %s\n", error->message);
      return EXIT_USAGE;
    }
  if (commands == NULL || g_strv_length (commands) != 1 || strcmp (commands[0], "refresh") != 0)
    {
      g_printerr ("outbox-oauth2-helper: expected the command “refresh”\n");
      return EXIT_USAGE;
    }
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  return run_refresh ();
}
