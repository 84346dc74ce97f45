/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <json-glib/json-glib.h>
#include <string.h>

#include "outbox-sasl-private.h"

G_DEFINE_QUARK (outbox-sasl-error-quark, outbox_sasl_error)

/* Strongest first: outbox_sasl_choose() takes the first one that fits. */
static const OutboxSaslMechanism *const mechanism_table[] = {
  &outbox_sasl_scram_sha256_plus,
  &outbox_sasl_scram_sha1_plus,
  &outbox_sasl_scram_sha256,
  &outbox_sasl_scram_sha1,
  &outbox_sasl_plain,
  &outbox_sasl_login,
  &outbox_sasl_oauthbearer,
  &outbox_sasl_xoauth2,
};

#define N_MECHANISMS G_N_ELEMENTS (mechanism_table)

/* Wiped buffers */

void
outbox_sasl_wipe_string (char *text)
{
  if (text == NULL)
    return;
  explicit_bzero (text, strlen (text));
  g_free (text);
}

GString *
outbox_sasl_buffer_new (gsize size)
{
  /* One more for the NUL that GString keeps after the bytes. */
  return g_string_sized_new (size + 1);
}

static void
wipe_buffer (gpointer user_data)
{
  GString *buffer = user_data;

  explicit_bzero (buffer->str, buffer->allocated_len);
  g_string_free (buffer, TRUE);
}

GBytes *
outbox_sasl_response_take_buffer (GString *buffer)
{
  return g_bytes_new_with_free_func (buffer->str, buffer->len, wipe_buffer, buffer);
}

GBytes *
outbox_sasl_response_new (gconstpointer data, gsize len)
{
  GString *buffer = outbox_sasl_buffer_new (len);

  g_string_append_len (buffer, data, len);
  return outbox_sasl_response_take_buffer (buffer);
}

void
outbox_sasl_response_free (GBytes *response)
{
  /* The wiping is the free function each response was made with. */
  if (response != NULL)
    g_bytes_unref (response);
}

/* The table */

const char *const *
outbox_sasl_mechanisms (void)
{
  static const char *names[N_MECHANISMS + 1];
  static gsize filled = 0;

  if (g_once_init_enter (&filled))
    {
      for (gsize i = 0; i < N_MECHANISMS; i++)
        names[i] = mechanism_table[i]->name;
      g_once_init_leave (&filled, 1);
    }
  return names;
}

static const OutboxSaslMechanism *
find_mechanism (const char *name)
{
  for (gsize i = 0; i < N_MECHANISMS; i++)
    {
      if (g_ascii_strcasecmp (name, mechanism_table[i]->name) == 0)
        return mechanism_table[i];
    }
  return NULL;
}

gboolean
outbox_sasl_mechanism_is_known (const char *name)
{
  g_return_val_if_fail (name != NULL, FALSE);

  return find_mechanism (name) != NULL;
}

/* Channel binding */

gboolean
outbox_sasl_channel_binding (GTlsConnection *tls,
                             GTlsChannelBindingType *out_type,
                             GByteArray *data,
                             GError **error)
{
  /* RFC 9266: tls-unique is not defined for TLS 1.3, tls-exporter is. */
  if (g_tls_connection_get_protocol_version (tls) == G_TLS_PROTOCOL_VERSION_TLS_1_3)
    *out_type = G_TLS_CHANNEL_BINDING_TLS_EXPORTER;
  else
    *out_type = G_TLS_CHANNEL_BINDING_TLS_UNIQUE;
  return g_tls_connection_get_channel_binding_data (tls, *out_type, data, error);
}

/* Fetches the data rather than asking whether the backend knows the type:
 * only the data itself shows that this connection can give it. */
static gboolean
can_bind (GTlsConnection *tls)
{
  g_autoptr (GByteArray) data = g_byte_array_new ();
  GTlsChannelBindingType type;

  return tls != NULL && outbox_sasl_channel_binding (tls, &type, data, NULL) && data->len > 0;
}

/* Choosing */

static gboolean
offers (const char *const *offered, const char *name)
{
  for (gsize i = 0; offered != NULL && offered[i] != NULL; i++)
    {
      if (g_ascii_strcasecmp (offered[i], name) == 0)
        return TRUE;
    }
  return FALSE;
}

static char *
list_offered (const char *const *offered)
{
  if (offered == NULL || offered[0] == NULL)
    return g_strdup ("nothing");
  return g_strjoinv (", ", (char **) offered);
}

static const char *
kind_phrase (OutboxSaslSecretKind kind)
{
  return kind == OUTBOX_SASL_SECRET_PASSWORD ? "a password" : "an OAuth2 token";
}

static const char *
choose_pinned (const char *const *offered,
               OutboxSaslSecretKind kind,
               GTlsConnection *tls,
               const char *pinned,
               GError **error)
{
  const OutboxSaslMechanism *mechanism = find_mechanism (pinned);
  g_autofree char *offered_list = list_offered (offered);

  if (mechanism == NULL)
    {
      g_autofree char *known = g_strjoinv (", ", (char **) outbox_sasl_mechanisms ());

      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "Unknown authentication mechanism “%s”; use one of: %s", pinned, known);
      return NULL;
    }
  if (mechanism->kind != kind)
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "The server offers %s; this account is set to use %s, which needs %s, but "
                   "the account has %s",
                   offered_list, mechanism->name, kind_phrase (mechanism->kind),
                   kind_phrase (kind));
      return NULL;
    }
  if (!offers (offered, mechanism->name))
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "The server offers %s; this account is set to use %s", offered_list,
                   mechanism->name);
      return NULL;
    }
  if (mechanism->channel_binding && !can_bind (tls))
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "The server offers %s; this account is set to use %s, which needs TLS "
                   "channel binding, and this connection cannot give it",
                   offered_list, mechanism->name);
      return NULL;
    }
  return mechanism->name;
}

static void
set_none_suits (GError **error, const char *const *offered, OutboxSaslSecretKind kind)
{
  g_autofree char *offered_list = list_offered (offered);

  if (kind == OUTBOX_SASL_SECRET_PASSWORD)
    g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                 "The server offers no sign-in method Outbox can use with a password (it "
                 "offers: %s)",
                 offered_list);
  else
    g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                 "The server offers no sign-in method Outbox can use with an OAuth2 token (it "
                 "offers: %s); OAuth2 needs OAUTHBEARER or XOAUTH2",
                 offered_list);
}

const char *
outbox_sasl_choose (const char *const *offered,
                    OutboxSaslSecretKind kind,
                    GTlsConnection *tls,
                    const char *pinned,
                    GError **error)
{
  gboolean bind_checked = FALSE;
  gboolean bind = FALSE;

  g_return_val_if_fail (tls == NULL || G_IS_TLS_CONNECTION (tls), NULL);

  if (pinned != NULL)
    return choose_pinned (offered, kind, tls, pinned, error);

  for (gsize i = 0; i < N_MECHANISMS; i++)
    {
      const OutboxSaslMechanism *mechanism = mechanism_table[i];

      if (mechanism->kind != kind || !offers (offered, mechanism->name))
        continue;
      if (mechanism->channel_binding && !bind_checked)
        {
          /* Once: fetching the binding is the same work for every -PLUS. */
          bind = can_bind (tls);
          bind_checked = TRUE;
        }
      if (!mechanism->channel_binding || bind)
        return mechanism->name;
    }
  set_none_suits (error, offered, kind);
  return NULL;
}

/* The client */

OutboxSasl *
outbox_sasl_new (const char *mechanism,
                 const OutboxSaslCredentials *credentials,
                 GTlsConnection *tls,
                 GError **error)
{
  const OutboxSaslMechanism *entry;
  g_autoptr (OutboxSasl) sasl = NULL;

  g_return_val_if_fail (mechanism != NULL, NULL);
  g_return_val_if_fail (credentials != NULL, NULL);
  g_return_val_if_fail (credentials->user != NULL && credentials->secret != NULL, NULL);
  g_return_val_if_fail (tls == NULL || G_IS_TLS_CONNECTION (tls), NULL);

  entry = find_mechanism (mechanism);
  if (entry == NULL)
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "Unknown authentication mechanism “%s”", mechanism);
      return NULL;
    }
  if (entry->kind != credentials->kind)
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE, "%s needs %s, not %s",
                   entry->name, kind_phrase (entry->kind), kind_phrase (credentials->kind));
      return NULL;
    }
  if (entry->channel_binding && tls == NULL)
    {
      g_set_error (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_UNAVAILABLE,
                   "%s needs TLS channel binding, and the connection is not encrypted",
                   entry->name);
      return NULL;
    }

  sasl = g_new0 (OutboxSasl, 1);
  sasl->mechanism = entry;
  sasl->user = g_strdup (credentials->user);
  sasl->secret = g_strdup (credentials->secret);
  sasl->host = g_strdup (credentials->host);
  sasl->port = credentials->port;
  sasl->tls = tls != NULL ? g_object_ref (tls) : NULL;
  if (entry->start != NULL && !entry->start (sasl, error))
    return NULL;
  return g_steal_pointer (&sasl);
}

void
outbox_sasl_free (OutboxSasl *sasl)
{
  if (sasl == NULL)
    return;

  if (sasl->mechanism->finish != NULL)
    sasl->mechanism->finish (sasl);
  outbox_sasl_wipe_string (sasl->secret);
  outbox_sasl_wipe_string (sasl->user);
  g_free (sasl->host);
  g_clear_object (&sasl->tls);
  g_free (sasl->server_error);
  g_free (sasl);
}

const char *
outbox_sasl_get_mechanism (OutboxSasl *sasl)
{
  g_return_val_if_fail (sasl != NULL, NULL);

  return sasl->mechanism->name;
}

gboolean
outbox_sasl_client_first (OutboxSasl *sasl)
{
  g_return_val_if_fail (sasl != NULL, FALSE);

  return sasl->mechanism->client_first;
}

static gboolean
protocol_failure (GError **error, const char *message)
{
  g_set_error_literal (error, OUTBOX_SASL_ERROR, OUTBOX_SASL_ERROR_PROTOCOL, message);
  return FALSE;
}

static GBytes *
protocol_error (GError **error, const char *message)
{
  protocol_failure (error, message);
  return NULL;
}

/* RFC 4422 section 5: when the protocol could not carry the initial
 * response with the command, the server asks for it with an empty
 * challenge. */
static gboolean
asks_for_initial_response (OutboxSasl *sasl, GBytes *challenge)
{
  return sasl->mechanism->client_first && sasl->round == 0 && challenge != NULL &&
         g_bytes_get_size (challenge) == 0;
}

static GBytes *
dispatch_step (OutboxSasl *sasl, GBytes *challenge, GError **error)
{
  gboolean initial = sasl->mechanism->client_first && sasl->round == 0;

  if (sasl->failed)
    return protocol_error (error, "The sign-in exchange has already failed");
  if (asks_for_initial_response (sasl, challenge))
    challenge = NULL;
  if (challenge == NULL && !initial)
    return protocol_error (error, "The server did not send the challenge this step answers");
  if (challenge != NULL && initial)
    return protocol_error (error, "The server sent a challenge before the client's first message");
  return sasl->mechanism->step (sasl, sasl->round, challenge, error);
}

GBytes *
outbox_sasl_step (OutboxSasl *sasl, GBytes *challenge, GError **error)
{
  GBytes *response;

  g_return_val_if_fail (sasl != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  response = dispatch_step (sasl, challenge, error);
  if (response == NULL)
    sasl->failed = TRUE;
  else
    sasl->round++;
  return response;
}

gboolean
outbox_sasl_check_success (OutboxSasl *sasl, GBytes *additional_data, GError **error)
{
  g_return_val_if_fail (sasl != NULL, FALSE);

  if (sasl->mechanism->check_success == NULL)
    return TRUE;
  return sasl->mechanism->check_success (sasl, additional_data, error);
}

const char *
outbox_sasl_get_server_error (OutboxSasl *sasl)
{
  g_return_val_if_fail (sasl != NULL, NULL);

  return sasl->server_error;
}

/* OAuth2 errors */

gboolean
outbox_sasl_parse_oauth_error (const char *json,
                               gsize len,
                               char **out_status,
                               char **out_scope,
                               GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *object;
  JsonNode *root;
  JsonNode *status;
  JsonNode *scope;

  g_return_val_if_fail (json != NULL || len == 0, FALSE);
  g_return_val_if_fail (out_status != NULL && out_scope != NULL, FALSE);

  /* json-glib does not insist on UTF-8, and what comes out of here goes
   * into sentences for people. */
  if (len > G_MAXSSIZE || !g_utf8_validate_len (json, len, NULL) ||
      !json_parser_load_from_data (parser, json, (gssize) len, NULL))
    return protocol_failure (error, "The server's OAuth2 error challenge is not JSON");

  root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return protocol_failure (error, "The server's OAuth2 error challenge is not a JSON object");

  object = json_node_get_object (root);
  status = json_object_get_member (object, "status");
  if (status == NULL || json_node_get_value_type (status) != G_TYPE_STRING)
    return protocol_failure (error, "The server's OAuth2 error challenge has no “status”");

  /* Escapes such as a lone \uD800 could decode to something that is not
   * UTF-8 even when the input is. */
  if (!g_utf8_validate (json_node_get_string (status), -1, NULL))
    return protocol_failure (error, "The server's OAuth2 error challenge has no “status”");

  scope = json_object_get_member (object, "scope");
  *out_status = g_strdup (json_node_get_string (status));
  *out_scope = scope != NULL && json_node_get_value_type (scope) == G_TYPE_STRING &&
                       g_utf8_validate (json_node_get_string (scope), -1, NULL)
                   ? g_strdup (json_node_get_string (scope))
                   : NULL;
  return TRUE;
}

/* The server's words go into a sentence: no control characters. */
static char *
displayable (const char *text)
{
  GString *shown = g_string_new (NULL);

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c))
        g_string_append_c (shown, '?');
      else
        g_string_append_unichar (shown, c);
    }
  return g_string_free (shown, FALSE);
}

static char *
describe_oauth_error (const char *status, const char *scope)
{
  g_autofree char *shown_status = displayable (status);
  g_autofree char *shown_scope = scope != NULL ? displayable (scope) : NULL;

  if (shown_scope != NULL)
    return g_strdup_printf ("the server refused the access token (%s; it needs the scope “%s”)",
                            shown_status, shown_scope);
  return g_strdup_printf ("the server refused the access token (%s)", shown_status);
}

GBytes *
outbox_sasl_oauth_answer_error (OutboxSasl *sasl,
                                guint round,
                                GBytes *challenge,
                                const char *final_response,
                                gsize final_len,
                                GError **error)
{
  g_autofree char *status = NULL;
  g_autofree char *scope = NULL;
  gsize len;
  const char *json = g_bytes_get_data (challenge, &len);

  if (round > 1)
    return protocol_error (error, "The server went on after its OAuth2 error challenge");
  if (!outbox_sasl_parse_oauth_error (json, len, &status, &scope, error))
    return NULL;

  g_free (sasl->server_error);
  sasl->server_error = describe_oauth_error (status, scope);
  return g_bytes_new (final_response, final_len);
}
