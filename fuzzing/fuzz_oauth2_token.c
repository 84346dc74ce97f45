/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "outbox-oauth2.h"

/* The first octet picks the HTTP status; the rest is the body. */
static const guint statuses[] = { 200, 400, 401, 503 };

/* Shorter values could match a word of a sentence by chance. */
#define MIN_SECRET_LEN 8

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static const char *
string_member (JsonObject *object, const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

/* Whether the parser may quote @secret: it is part of what the provider
 * gave as its error code or description, which are shown on purpose. */
static gboolean
is_in_quoted_member (JsonObject *object, const char *secret)
{
  const char *code = string_member (object, "error");
  const char *description = string_member (object, "error_description");

  return (code != NULL && strstr (code, secret) != NULL) ||
         (description != NULL && strstr (description, secret) != NULL);
}

/* The token-like string members of @body, when it is a JSON object. */
static GPtrArray *
secrets_of (const char *body, gsize len)
{
  static const char *const names[] = { "access_token", "refresh_token", "device_code" };
  g_autoptr (JsonParser) parser = json_parser_new ();
  GPtrArray *secrets = g_ptr_array_new_with_free_func (g_free);
  JsonObject *object;
  JsonNode *root;

  if (!g_utf8_validate (body, len, NULL) || memchr (body, '\0', len) != NULL ||
      !json_parser_load_from_data (parser, body, len, NULL))
    return secrets;
  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return secrets;
  object = json_node_get_object (root);
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *secret = string_member (object, names[i]);

      if (secret != NULL && strlen (secret) >= MIN_SECRET_LEN &&
          !is_in_quoted_member (object, secret))
        g_ptr_array_add (secrets, g_strdup (secret));
    }
  return secrets;
}

/* A refusal is an OUTBOX_OAUTH2_ERROR with a short, printable sentence
 * that quotes no token of the answer. */
static void
check_error (const GError *error, const GPtrArray *secrets)
{
  g_assert_nonnull (error);
  g_assert_true (error->domain == OUTBOX_OAUTH2_ERROR);
  g_assert_cmpint (error->code, >=, OUTBOX_OAUTH2_ERROR_FAILED);
  g_assert_cmpint (error->code, <=, OUTBOX_OAUTH2_ERROR_BAD_URL);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_assert_cmpuint (g_utf8_strlen (error->message, -1), <=, 200 + OUTBOX_OAUTH2_MAX_DESCRIPTION);
  for (const char *p = error->message; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_true (g_unichar_isprint (g_utf8_get_char (p)));
  for (guint i = 0; i < secrets->len; i++)
    g_assert_null (strstr (error->message, g_ptr_array_index (secrets, i)));
}

static void
check_tokens (const OutboxOAuth2Tokens *tokens)
{
  g_assert_nonnull (tokens->access_token);
  g_assert_cmpstr (tokens->access_token, !=, "");
  g_assert_true (g_utf8_validate (tokens->access_token, -1, NULL));
  g_assert_true (tokens->refresh_token == NULL || *tokens->refresh_token != '\0');
  g_assert_cmpint (tokens->expires_at, >=, 0);
}

static void
check_device (const OutboxOAuth2DeviceCode *device)
{
  g_assert_cmpstr (device->device_code, !=, "");
  g_assert_cmpstr (device->user_code, !=, "");
  g_assert_cmpint (g_ascii_strncasecmp (device->verification_uri, "http", 4), ==, 0);
  g_assert_cmpuint (device->expires_in, >, 0);
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GPtrArray) secrets = NULL;
  g_autoptr (OutboxOAuth2Tokens) tokens = NULL;
  g_autoptr (OutboxOAuth2DeviceCode) device = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) device_error = NULL;
  const char *body;
  guint status;

  if (size == 0)
    return 0;
  status = statuses[data[0] % G_N_ELEMENTS (statuses)];
  body = (const char *) data + 1;
  size--;
  secrets = secrets_of (body, size);

  if (outbox_oauth2_parse_token_response (status, body, size, &tokens, &error))
    {
      g_assert_no_error (error);
      g_assert_cmpuint (status, ==, 200);
      check_tokens (tokens);
    }
  else
    {
      g_assert_null (tokens);
      check_error (error, secrets);
    }

  if (outbox_oauth2_parse_device_response (status, body, size, &device, &device_error))
    {
      g_assert_no_error (device_error);
      check_device (device);
    }
  else
    {
      g_assert_null (device);
      check_error (device_error, secrets);
    }

  return 0;
}
