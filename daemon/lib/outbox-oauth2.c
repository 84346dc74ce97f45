/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-oauth2.h"

#include <gnutls/crypto.h>
#include <json-glib/json-glib.h>
#include <string.h>

/* Real answers nest two levels deep; json-glib recurses per level, so a
 * deeper document is refused before it is parsed. */
#define MAX_JSON_DEPTH 16
/* An error code is a short ASCII word (RFC 6749 section 5.2). */
#define MAX_ERROR_CODE 40
/* A device interval longer than this is not a real one. */
#define MAX_INTERVAL 3600
#define PKCE_OCTETS 32
#define STATE_OCTETS 16

G_DEFINE_QUARK (outbox-oauth2-error-quark, outbox_oauth2_error)

static const char *const error_code_names[] = {
  [OUTBOX_OAUTH2_ERROR_FAILED] = "failed",
  [OUTBOX_OAUTH2_ERROR_INVALID_GRANT] = "invalid_grant",
  [OUTBOX_OAUTH2_ERROR_INVALID_CLIENT] = "invalid_client",
  [OUTBOX_OAUTH2_ERROR_INVALID_SCOPE] = "invalid_scope",
  [OUTBOX_OAUTH2_ERROR_AUTHORIZATION_PENDING] = "authorization_pending",
  [OUTBOX_OAUTH2_ERROR_SLOW_DOWN] = "slow_down",
  [OUTBOX_OAUTH2_ERROR_ACCESS_DENIED] = "access_denied",
  [OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN] = "expired_token",
  [OUTBOX_OAUTH2_ERROR_PROTOCOL] = "protocol",
  [OUTBOX_OAUTH2_ERROR_HTTP] = "http",
  [OUTBOX_OAUTH2_ERROR_NETWORK] = "network",
  [OUTBOX_OAUTH2_ERROR_BAD_URL] = "bad_url",
};

const char *
outbox_oauth2_error_code_to_string (OutboxOAuth2Error code)
{
  if ((guint) code >= G_N_ELEMENTS (error_code_names))
    return error_code_names[OUTBOX_OAUTH2_ERROR_FAILED];
  return error_code_names[code];
}

/* Settings ----------------------------------------------------------------- */

static OutboxOAuth2Settings *
settings_copy (const OutboxOAuth2Settings *settings)
{
  OutboxOAuth2Settings *copy = g_new0 (OutboxOAuth2Settings, 1);

  copy->auth_url = g_strdup (settings->auth_url);
  copy->token_url = g_strdup (settings->token_url);
  copy->device_url = g_strdup (settings->device_url);
  copy->scope = g_strdup (settings->scope);
  copy->client_id = g_strdup (settings->client_id);
  return copy;
}

/* Secrets ------------------------------------------------------------------ */

static void
wipe_string (char *text)
{
  if (text == NULL)
    return;
  explicit_bzero (text, strlen (text));
  g_free (text);
}

static void
wipe_gstring (GString *text)
{
  explicit_bzero (text->str, text->allocated_len);
  g_string_free (text, TRUE);
}

void
outbox_oauth2_tokens_free (OutboxOAuth2Tokens *tokens)
{
  if (tokens == NULL)
    return;
  wipe_string (tokens->access_token);
  wipe_string (tokens->refresh_token);
  g_free (tokens->scope);
  g_free (tokens);
}

void
outbox_oauth2_device_code_free (OutboxOAuth2DeviceCode *device)
{
  if (device == NULL)
    return;
  wipe_string (device->device_code);
  g_free (device->user_code);
  g_free (device->verification_uri);
  g_free (device->verification_uri_complete);
  g_free (device);
}

/* Endpoints ---------------------------------------------------------------- */

static gboolean
is_loopback_host (const char *host)
{
  g_autoptr (GInetAddress) inet = NULL;

  if (g_ascii_strcasecmp (host, "localhost") == 0)
    return TRUE;
  inet = g_inet_address_new_from_string (host);
  return inet != NULL && g_inet_address_get_is_loopback (inet);
}

/* What may be logged of a URL: no query (a provider's URL should have
 * none, but a user-made one might carry anything), no user, no fragment. */
static char *
uri_for_log (GUri *uri)
{
  return g_uri_to_string_partial (uri, G_URI_HIDE_USERINFO | G_URI_HIDE_QUERY |
                                           G_URI_HIDE_FRAGMENT);
}

/* Returns: (nullable): @url parsed, when it may receive credentials. */
static GUri *
parse_endpoint (const char *url, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  g_autofree char *shown = NULL;
  const char *host;

  if (url == NULL || *url == '\0')
    {
      g_set_error_literal (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL,
                           "No OAuth2 endpoint URL is set");
      return NULL;
    }
  uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  host = uri != NULL ? g_uri_get_host (uri) : NULL;
  if (host == NULL || *host == '\0')
    {
      g_set_error_literal (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL,
                           "The OAuth2 endpoint is not an absolute URL with a host");
      return NULL;
    }

  shown = uri_for_log (uri);
  if (g_uri_get_userinfo (uri) != NULL)
    g_set_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL,
                 "The OAuth2 endpoint %s must not hold a user name or password", shown);
  else if (g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0)
    return g_steal_pointer (&uri);
  else if (g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") == 0 && is_loopback_host (host))
    return g_steal_pointer (&uri);
  else
    g_set_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_BAD_URL,
                 "The OAuth2 endpoint %s is not an https URL: plain http is allowed only to a "
                 "loopback host (127.0.0.0/8, ::1 or localhost)",
                 shown);
  return NULL;
}

gboolean
outbox_oauth2_check_endpoint (const char *url, GError **error)
{
  g_autoptr (GUri) uri = parse_endpoint (url, error);

  return uri != NULL;
}

/* PKCE and state ------------------------------------------------------------ */

/* RFC 4648 section 5, without padding, as RFC 7636 appendix A does. */
static char *
base64url_encode (const guint8 *data, gsize len)
{
  char *text = g_base64_encode (data, len);

  for (char *p = text; *p != '\0'; p++)
    {
      if (*p == '+')
        *p = '-';
      else if (*p == '/')
        *p = '_';
      else if (*p == '=')
        {
          *p = '\0';
          break;
        }
    }
  return text;
}

static char *
random_base64url (gsize n_octets, GError **error)
{
  guint8 octets[PKCE_OCTETS];
  char *text;

  g_assert (n_octets <= sizeof octets);
  if (gnutls_rnd (GNUTLS_RND_KEY, octets, n_octets) < 0)
    {
      g_set_error_literal (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_FAILED,
                           "The system's random number generator failed");
      return NULL;
    }
  text = base64url_encode (octets, n_octets);
  explicit_bzero (octets, sizeof octets);
  return text;
}

char *
outbox_oauth2_pkce_challenge (const char *verifier)
{
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize digest_len = sizeof digest;

  g_return_val_if_fail (verifier != NULL, NULL);

  g_checksum_update (checksum, (const guchar *) verifier, strlen (verifier));
  g_checksum_get_digest (checksum, digest, &digest_len);
  return base64url_encode (digest, digest_len);
}

gboolean
outbox_oauth2_pkce_new (char **out_verifier, char **out_challenge, GError **error)
{
  char *verifier;

  g_return_val_if_fail (out_verifier != NULL && out_challenge != NULL, FALSE);

  verifier = random_base64url (PKCE_OCTETS, error);
  if (verifier == NULL)
    return FALSE;
  *out_challenge = outbox_oauth2_pkce_challenge (verifier);
  *out_verifier = verifier;
  return TRUE;
}

char *
outbox_oauth2_random_state (GError **error)
{
  return random_base64url (STATE_OCTETS, error);
}

/* Percent-encoding ---------------------------------------------------------- */

/* Everything but RFC 3986's unreserved characters is escaped: right in a
 * query and in an application/x-www-form-urlencoded body alike. */
static gboolean
is_unreserved (guchar c)
{
  return g_ascii_isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static gsize
encoded_length (const char *value)
{
  gsize len = 0;

  for (const char *p = value; *p != '\0'; p++)
    len += is_unreserved (*p) ? 1 : 3;
  return len;
}

static void
append_encoded (GString *out, const char *value)
{
  static const char hex[] = "0123456789ABCDEF";

  for (const guchar *p = (const guchar *) value; *p != '\0'; p++)
    {
      if (is_unreserved (*p))
        g_string_append_c (out, *p);
      else
        {
          g_string_append_c (out, '%');
          g_string_append_c (out, hex[*p >> 4]);
          g_string_append_c (out, hex[*p & 0xf]);
        }
    }
}

typedef struct
{
  const char *name;
  const char *value; /* (nullable): the field is left out */
} FormField;

/* The body is sized once, so that no copy of a secret is left behind by a
 * reallocation, and it is wiped when freed. */
static GBytes *
form_encode (const FormField *fields, gsize n_fields)
{
  GString *form;
  gsize total = 1;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (fields[i].value != NULL)
        total += strlen (fields[i].name) + encoded_length (fields[i].value) + 2;
    }

  form = g_string_sized_new (total);
  for (gsize i = 0; i < n_fields; i++)
    {
      if (fields[i].value == NULL)
        continue;
      if (form->len > 0)
        g_string_append_c (form, '&');
      append_encoded (form, fields[i].name);
      g_string_append_c (form, '=');
      append_encoded (form, fields[i].value);
    }
  return g_bytes_new_with_free_func (form->str, form->len, (GDestroyNotify) wipe_gstring, form);
}

/* The authorization URL ---------------------------------------------------- */

static void
append_query_field (GString *url, gboolean *first, const char *name, const char *value)
{
  g_string_append_c (url, *first ? '?' : '&');
  *first = FALSE;
  append_encoded (url, name);
  g_string_append_c (url, '=');
  append_encoded (url, value);
}

char *
outbox_oauth2_authorization_url (const OutboxOAuth2Settings *settings,
                                 const char *redirect_uri,
                                 const char *state,
                                 const char *challenge,
                                 const char *login_hint,
                                 GError **error)
{
  g_autoptr (GUri) uri = NULL;
  g_autofree char *base = NULL;
  GString *url;
  gboolean first;

  g_return_val_if_fail (settings != NULL && redirect_uri != NULL, NULL);
  g_return_val_if_fail (state != NULL && challenge != NULL, NULL);

  uri = parse_endpoint (settings->auth_url, error);
  if (uri == NULL)
    return NULL;

  /* A query the provider put in its URL stays first. */
  base = g_uri_to_string_partial (uri, G_URI_HIDE_FRAGMENT);
  url = g_string_new (base);
  first = g_uri_get_query (uri) == NULL;
  append_query_field (url, &first, "response_type", "code");
  append_query_field (url, &first, "client_id", settings->client_id ? settings->client_id : "");
  append_query_field (url, &first, "redirect_uri", redirect_uri);
  if (settings->scope != NULL)
    append_query_field (url, &first, "scope", settings->scope);
  append_query_field (url, &first, "state", state);
  append_query_field (url, &first, "code_challenge", challenge);
  append_query_field (url, &first, "code_challenge_method", "S256");
  if (g_ascii_strcasecmp (g_uri_get_host (uri), "accounts.google.com") == 0)
    append_query_field (url, &first, "access_type", "offline");
  if (login_hint != NULL)
    append_query_field (url, &first, "login_hint", login_hint);
  return g_string_free (url, FALSE);
}

/* Reading answers ------------------------------------------------------------ */

static gboolean
is_success (guint http_status)
{
  return http_status >= 200 && http_status < 300;
}

/* Counts brackets outside strings: enough to bound json-glib's recursion. */
static gboolean
json_nesting_is_shallow (const char *text, gsize len)
{
  gboolean in_string = FALSE;
  guint depth = 0;

  for (gsize i = 0; i < len; i++)
    {
      char c = text[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
        }
      else if (c == '"')
        in_string = TRUE;
      else if (c == '{' || c == '[')
        {
          if (++depth > MAX_JSON_DEPTH)
            return FALSE;
        }
      else if ((c == '}' || c == ']') && depth > 0)
        depth--;
    }
  return TRUE;
}

/* Returns: (nullable): the root of @body when it is a JSON object.  Valid
 * UTF-8 is checked first, so that every string taken from it is; the
 * parser's own message is not passed on, since it may quote the body. */
static JsonNode *
load_json_object (const char *body, gsize len)
{
  g_autoptr (JsonParser) parser = NULL;
  g_autoptr (JsonNode) root = NULL;

  if (body == NULL || len == 0 || len > OUTBOX_OAUTH2_MAX_RESPONSE ||
      memchr (body, '\0', len) != NULL || !g_utf8_validate (body, len, NULL) ||
      !json_nesting_is_shallow (body, len))
    return NULL;

  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, body, len, NULL))
    return NULL;
  root = json_parser_steal_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return g_steal_pointer (&root);
}

static JsonNode *
get_member (JsonObject *object, const char *name)
{
  return json_object_has_member (object, name) ? json_object_get_member (object, name) : NULL;
}

/* Returns: (nullable): the string member @name; *@bad is set when there is
 * a member of that name that is not a string. */
static const char *
get_string_member (JsonObject *object, const char *name, gboolean *bad)
{
  JsonNode *node = get_member (object, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      *bad = TRUE;
      return NULL;
    }
  return json_node_get_string (node);
}

typedef enum
{
  SECONDS_ABSENT,
  SECONDS_GIVEN,
  SECONDS_BAD,
} SecondsMember;

/* A number of seconds: a JSON integer, or a string of digits, which some
 * providers send. */
static SecondsMember
get_seconds_member (JsonObject *object, const char *name, guint64 max, guint64 *out)
{
  JsonNode *node = get_member (object, name);
  gint64 number;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return SECONDS_ABSENT;
  if (!JSON_NODE_HOLDS_VALUE (node))
    return SECONDS_BAD;
  if (json_node_get_value_type (node) == G_TYPE_STRING)
    return g_ascii_string_to_unsigned (json_node_get_string (node), 10, 0, max, out, NULL)
               ? SECONDS_GIVEN
               : SECONDS_BAD;
  if (json_node_get_value_type (node) != G_TYPE_INT64)
    return SECONDS_BAD;
  number = json_node_get_int (node);
  if (number < 0 || (guint64) number > max)
    return SECONDS_BAD;
  *out = (guint64) number;
  return SECONDS_GIVEN;
}

/* What a provider wrote, fit to show: printable characters only (others
 * become spaces or U+FFFD), cut to @max_chars with an ellipsis. */
static char *
sanitize_text (const char *text, guint max_chars)
{
  GString *out = g_string_new (NULL);
  guint n_chars = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p), n_chars++)
    {
      gunichar c = g_utf8_get_char (p);

      if (n_chars == max_chars)
        {
          g_string_append (out, "…");
          break;
        }
      if (g_unichar_isspace (c))
        c = ' ';
      else if (!g_unichar_isprint (c))
        c = 0xFFFD;
      g_string_append_unichar (out, c);
    }
  return g_strstrip (g_string_free (out, FALSE));
}

static const struct
{
  const char *name;
  OutboxOAuth2Error code;
  const char *sentence;
} known_errors[] = {
  { "invalid_grant", OUTBOX_OAUTH2_ERROR_INVALID_GRANT,
    "The provider no longer accepts this account's authorization (invalid_grant): the account "
    "must be authorized again." },
  { "invalid_client", OUTBOX_OAUTH2_ERROR_INVALID_CLIENT,
    "The provider does not accept this OAuth2 client ID or client secret (invalid_client)." },
  { "unauthorized_client", OUTBOX_OAUTH2_ERROR_INVALID_CLIENT,
    "The provider does not let this OAuth2 client ID use this kind of authorization "
    "(unauthorized_client)." },
  { "invalid_scope", OUTBOX_OAUTH2_ERROR_INVALID_SCOPE,
    "The provider does not grant the scope asked for (invalid_scope)." },
  { "authorization_pending", OUTBOX_OAUTH2_ERROR_AUTHORIZATION_PENDING,
    "The authorization has not been given yet (authorization_pending)." },
  { "slow_down", OUTBOX_OAUTH2_ERROR_SLOW_DOWN,
    "The provider asks to be polled less often (slow_down)." },
  { "access_denied", OUTBOX_OAUTH2_ERROR_ACCESS_DENIED,
    "The authorization was refused (access_denied): nothing was granted." },
  { "expired_token", OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN,
    "The code expired before the authorization was given (expired_token): start the "
    "authorization again." },
};

/* RFC 6749 section 5.2. */
static void
set_error_from_answer (const char *code, const char *description, GError **error)
{
  g_autofree char *sentence = NULL;
  g_autofree char *said = NULL;
  OutboxOAuth2Error domain_code = OUTBOX_OAUTH2_ERROR_FAILED;

  for (gsize i = 0; i < G_N_ELEMENTS (known_errors) && sentence == NULL; i++)
    {
      if (strcmp (code, known_errors[i].name) == 0)
        {
          domain_code = known_errors[i].code;
          sentence = g_strdup (known_errors[i].sentence);
        }
    }
  if (sentence == NULL)
    {
      g_autofree char *shown = sanitize_text (code, MAX_ERROR_CODE);

      sentence = g_strdup_printf ("The provider refused the request (%s).", shown);
    }

  if (description != NULL)
    said = sanitize_text (description, OUTBOX_OAUTH2_MAX_DESCRIPTION);
  if (said != NULL && *said != '\0')
    g_set_error (error, OUTBOX_OAUTH2_ERROR, domain_code, "%s The provider says: “%s”", sentence,
                 said);
  else
    g_set_error_literal (error, OUTBOX_OAUTH2_ERROR, domain_code, sentence);
}

static void
set_protocol_error (GError **error, const char *problem)
{
  g_set_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL,
               "The provider's answer is not a valid OAuth2 answer: %s.", problem);
}

/* Returns: (nullable): the object of a successful answer; NULL with the
 * error of any other. */
static JsonNode *
load_answer (guint http_status, const char *body, gsize len, GError **error)
{
  g_autoptr (JsonNode) root = load_json_object (body, len);
  JsonObject *object;
  const char *code;
  gboolean bad = FALSE;

  if (root == NULL && !is_success (http_status))
    {
      g_set_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_HTTP,
                   "The provider answered HTTP %u (%s) without an OAuth2 error.", http_status,
                   soup_status_get_phrase (http_status));
      return NULL;
    }
  if (root == NULL)
    {
      set_protocol_error (error, len > OUTBOX_OAUTH2_MAX_RESPONSE
                                     ? "it is too large"
                                     : "it is not a JSON object");
      return NULL;
    }

  object = json_node_get_object (root);
  code = get_string_member (object, "error", &bad);
  if (bad || (code != NULL && *code == '\0'))
    {
      set_protocol_error (error, "its error is not a string");
      return NULL;
    }
  if (code != NULL)
    {
      const char *description = get_string_member (object, "error_description", &bad);

      set_error_from_answer (code, description, error);
      return NULL;
    }
  if (!is_success (http_status))
    {
      g_set_error (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_HTTP,
                   "The provider answered HTTP %u (%s) without an OAuth2 error.", http_status,
                   soup_status_get_phrase (http_status));
      return NULL;
    }
  return g_steal_pointer (&root);
}

static gint64
expiry_from_now (guint64 seconds)
{
  return g_get_real_time () / G_USEC_PER_SEC + (gint64) seconds;
}

/* Fills @tokens from a successful answer (RFC 6749 section 5.1). */
static gboolean
read_tokens (JsonObject *object, gpointer answer, GError **error)
{
  OutboxOAuth2Tokens *tokens = answer;
  gboolean bad = FALSE;
  const char *access_token = get_string_member (object, "access_token", &bad);
  const char *token_type = get_string_member (object, "token_type", &bad);
  const char *refresh_token = get_string_member (object, "refresh_token", &bad);
  const char *scope = get_string_member (object, "scope", &bad);
  guint64 expires_in = 0;

  if (bad)
    {
      set_protocol_error (error, "a member that should be a string is not one");
      return FALSE;
    }
  if (access_token == NULL || *access_token == '\0')
    {
      set_protocol_error (error, "it has no access_token");
      return FALSE;
    }
  if (token_type == NULL || g_ascii_strcasecmp (token_type, "bearer") != 0)
    {
      set_protocol_error (error, "its token_type is not “bearer”");
      return FALSE;
    }
  switch (get_seconds_member (object, "expires_in", G_MAXINT32, &expires_in))
    {
    case SECONDS_BAD:
      set_protocol_error (error, "its expires_in is not a number of seconds");
      return FALSE;
    case SECONDS_GIVEN:
      tokens->expires_at = expiry_from_now (expires_in);
      break;
    case SECONDS_ABSENT:
      break;
    }

  tokens->access_token = g_strdup (access_token);
  if (refresh_token != NULL && *refresh_token != '\0')
    tokens->refresh_token = g_strdup (refresh_token);
  tokens->scope = g_strdup (scope);
  return TRUE;
}

/* An answer of the token or device endpoint read into a new struct of
 * @size octets by @read; @free_func frees it when @read fails. */
typedef gboolean (*AnswerReader) (JsonObject *object, gpointer answer, GError **error);

static gpointer
parse_answer (guint http_status,
              const char *body,
              gsize len,
              gsize size,
              AnswerReader read,
              GDestroyNotify free_func,
              GError **error)
{
  g_autoptr (JsonNode) root = load_answer (http_status, body, len, error);
  gpointer answer;

  if (root == NULL)
    return NULL;
  answer = g_malloc0 (size);
  if (!read (json_node_get_object (root), answer, error))
    {
      free_func (answer);
      return NULL;
    }
  return answer;
}

gboolean
outbox_oauth2_parse_token_response (guint http_status,
                                    const char *body,
                                    gsize len,
                                    OutboxOAuth2Tokens **out,
                                    GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);

  *out = parse_answer (http_status, body, len, sizeof (OutboxOAuth2Tokens),
                       read_tokens, (GDestroyNotify) outbox_oauth2_tokens_free,
                       error);
  return *out != NULL;
}

/* The user code and the URIs are shown to the user: nothing that could
 * move a terminal's cursor or hide a part of them. */
static gboolean
is_displayable (const char *text)
{
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (!g_unichar_isprint (c) || g_unichar_isspace (c))
        return FALSE;
    }
  return TRUE;
}

static gboolean
is_web_uri (const char *text)
{
  g_autoptr (GUri) uri = g_uri_parse (text, SOUP_HTTP_URI_FLAGS, NULL);

  return uri != NULL && g_uri_get_host (uri) != NULL && is_displayable (text) &&
         (g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0 ||
          g_ascii_strcasecmp (g_uri_get_scheme (uri), "http") == 0);
}

/* Fills @device from a successful answer (RFC 8628 section 3.2). */
static gboolean
read_device_code (JsonObject *object, gpointer answer, GError **error)
{
  OutboxOAuth2DeviceCode *device = answer;
  gboolean bad = FALSE;
  const char *device_code = get_string_member (object, "device_code", &bad);
  const char *user_code = get_string_member (object, "user_code", &bad);
  const char *uri = get_string_member (object, "verification_uri", &bad);
  const char *url = get_string_member (object, "verification_url", &bad);
  const char *complete = get_string_member (object, "verification_uri_complete", &bad);
  guint64 expires_in = 0;
  guint64 interval = OUTBOX_OAUTH2_DEFAULT_INTERVAL;

  if (uri == NULL)
    uri = url;
  if (bad || device_code == NULL || *device_code == '\0' || user_code == NULL ||
      *user_code == '\0' || !is_displayable (user_code) || uri == NULL || !is_web_uri (uri) ||
      (complete != NULL && !is_web_uri (complete)))
    {
      set_protocol_error (error, "it lacks a device_code, user_code or verification_uri");
      return FALSE;
    }
  if (get_seconds_member (object, "expires_in", G_MAXINT32, &expires_in) != SECONDS_GIVEN ||
      expires_in == 0 ||
      get_seconds_member (object, "interval", MAX_INTERVAL, &interval) == SECONDS_BAD)
    {
      set_protocol_error (error, "its expires_in or interval is not a number of seconds");
      return FALSE;
    }

  device->device_code = g_strdup (device_code);
  device->user_code = g_strdup (user_code);
  device->verification_uri = g_strdup (uri);
  device->verification_uri_complete = g_strdup (complete);
  device->interval = (guint) interval;
  device->expires_in = (guint) expires_in;
  device->expires_at = expiry_from_now (expires_in);
  return TRUE;
}

gboolean
outbox_oauth2_parse_device_response (guint http_status,
                                     const char *body,
                                     gsize len,
                                     OutboxOAuth2DeviceCode **out,
                                     GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);

  *out = parse_answer (http_status, body, len, sizeof (OutboxOAuth2DeviceCode),
                       read_device_code,
                       (GDestroyNotify) outbox_oauth2_device_code_free, error);
  return *out != NULL;
}

/* POSTing a form ------------------------------------------------------------ */

typedef struct
{
  guint status;
  GString *body; /* (owned) wiped when freed */
} HttpAnswer;

static void
http_answer_free (HttpAnswer *answer)
{
  wipe_gstring (answer->body);
  g_free (answer);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HttpAnswer, http_answer_free)

typedef struct
{
  SoupSession *session;      /* (owned) */
  SoupMessage *message;      /* (owned) */
  GInputStream *stream;      /* (owned) (nullable) the response body */
  GString *body;             /* (owned) (nullable) read so far; wiped */
  char *shown_url;           /* (owned) for the log and messages */
  GCancellable *cancellable; /* (owned) cancelled by the caller's or the deadline */
  GCancellable *parent;      /* (owned) (nullable) the caller's */
  gulong parent_handler;
  GSource *deadline; /* (owned) */
  gboolean timed_out;
} HttpPost;

static void
http_post_free (HttpPost *post)
{
  if (post->deadline != NULL)
    {
      g_source_destroy (post->deadline);
      g_source_unref (post->deadline);
    }
  if (post->parent != NULL)
    g_cancellable_disconnect (post->parent, post->parent_handler);
  g_clear_object (&post->parent);
  g_clear_object (&post->cancellable);
  g_clear_object (&post->stream);
  g_clear_object (&post->message);
  g_clear_object (&post->session);
  if (post->body != NULL)
    wipe_gstring (post->body);
  g_free (post->shown_url);
  g_free (post);
}

SoupSession *
outbox_oauth2_session_new (void)
{
  SoupSession *session =
      soup_session_new_with_options ("user-agent", PACKAGE_NAME "/" PACKAGE_VERSION, NULL);

  soup_session_remove_feature_by_type (session, SOUP_TYPE_AUTH_MANAGER);
  soup_session_remove_feature_by_type (session, SOUP_TYPE_COOKIE_JAR);
  return session;
}

static gboolean
on_post_deadline (gpointer user_data)
{
  HttpPost *post = user_data;

  post->timed_out = TRUE;
  g_cancellable_cancel (post->cancellable);
  return G_SOURCE_REMOVE;
}

static void
cancel_post (GCancellable *parent, GCancellable *cancellable)
{
  g_cancellable_cancel (cancellable);
}

/* Ends the POST with @error, which it takes, unless the caller cancelled:
 * transport failures and the deadline become OUTBOX_OAUTH2_ERROR_NETWORK,
 * so that a caller can tell "try again later" from a refusal. */
static void
post_fail (GTask *task, GError *error)
{
  HttpPost *post = g_task_get_task_data (task);

  if (g_task_return_error_if_cancelled (task))
    g_error_free (error);
  else if (post->timed_out)
    {
      g_task_return_new_error (task, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_NETWORK,
                               "%s did not answer within %d s", post->shown_url,
                               OUTBOX_OAUTH2_HTTP_TIMEOUT);
      g_error_free (error);
    }
  else if (error->domain != OUTBOX_OAUTH2_ERROR)
    {
      g_task_return_new_error (task, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_NETWORK,
                               "Could not reach %s: %s", post->shown_url, error->message);
      g_error_free (error);
    }
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static void read_more (GTask *task);

static void
on_body_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  HttpPost *post = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  HttpAnswer *answer;

  if (n < 0)
    {
      post_fail (task, error);
      return;
    }
  if (n > 0)
    {
      g_string_set_size (post->body, post->body->len + n);
      if (post->body->len > OUTBOX_OAUTH2_MAX_RESPONSE)
        {
          post_fail (task, g_error_new (OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_PROTOCOL,
                                        "The answer of %s is larger than %d octets",
                                        post->shown_url, OUTBOX_OAUTH2_MAX_RESPONSE));
          return;
        }
      read_more (task);
      return;
    }

  answer = g_new0 (HttpAnswer, 1);
  answer->status = soup_message_get_status (post->message);
  answer->body = g_steal_pointer (&post->body);
  g_debug ("POST %s: HTTP %u", post->shown_url, answer->status);
  g_task_return_pointer (task, answer, (GDestroyNotify) http_answer_free);
  g_object_unref (task);
}

/* Reads straight into the body, sized once for the largest answer plus
 * one octet (to see that it is too large): never reallocated, so never
 * copied unwiped. */
static void
read_more (GTask *task)
{
  HttpPost *post = g_task_get_task_data (task);

  g_input_stream_read_async (post->stream, post->body->str + post->body->len,
                             OUTBOX_OAUTH2_MAX_RESPONSE + 1 - post->body->len, G_PRIORITY_DEFAULT,
                             post->cancellable, on_body_read, task);
}

static void
on_post_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  HttpPost *post = g_task_get_task_data (task);
  GError *error = NULL;

  post->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (post->stream == NULL)
    {
      post_fail (task, error);
      return;
    }
  post->body = g_string_sized_new (OUTBOX_OAUTH2_MAX_RESPONSE + 1);
  read_more (task);
}

static void
start_deadline (HttpPost *post)
{
  post->deadline = g_timeout_source_new_seconds (OUTBOX_OAUTH2_HTTP_TIMEOUT);
  g_source_set_callback (post->deadline, on_post_deadline, post, NULL);
  g_source_attach (post->deadline, g_main_context_get_thread_default ());
}

/* POSTs @form (taken) to @url, which must pass parse_endpoint.  The result
 * is an HttpAnswer whatever its status. */
static void
post_form_async (SoupSession *session,
                 const char *url,
                 GBytes *form,
                 GCancellable *cancellable,
                 GAsyncReadyCallback callback,
                 gpointer user_data)
{
  g_autoptr (GBytes) body = form;
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GUri) uri = NULL;
  GError *error = NULL;
  HttpPost *post;

  g_task_set_source_tag (task, post_form_async);
  uri = parse_endpoint (url, &error);
  if (uri == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  post = g_new0 (HttpPost, 1);
  g_task_set_task_data (task, post, (GDestroyNotify) http_post_free);
  post->session = session != NULL ? g_object_ref (session) : outbox_oauth2_session_new ();
  post->shown_url = uri_for_log (uri);
  post->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      post->parent = g_object_ref (cancellable);
      post->parent_handler =
          g_cancellable_connect (cancellable, G_CALLBACK (cancel_post),
                                 g_object_ref (post->cancellable), g_object_unref);
    }
  start_deadline (post);

  /* Credentials travel in the body only: never in a redirected request,
   * never answered to a 401 from a cache. */
  post->message = soup_message_new_from_uri (SOUP_METHOD_POST, uri);
  soup_message_add_flags (post->message,
                          SOUP_MESSAGE_NO_REDIRECT | SOUP_MESSAGE_DO_NOT_USE_AUTH_CACHE);
  soup_message_headers_replace (soup_message_get_request_headers (post->message), "Accept",
                                "application/json");
  soup_message_set_request_body_from_bytes (post->message, "application/x-www-form-urlencoded",
                                            body);
  soup_session_send_async (post->session, post->message, G_PRIORITY_DEFAULT, post->cancellable,
                           on_post_sent, g_steal_pointer (&task));
}

static HttpAnswer *
post_form_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == post_form_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* The token endpoint ------------------------------------------------------- */

static gboolean
check_client (const OutboxOAuth2Settings *settings, GError **error)
{
  if (settings->client_id != NULL && *settings->client_id != '\0')
    return TRUE;
  g_set_error_literal (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_INVALID_CLIENT,
                       "No OAuth2 client ID is set for this account.");
  return FALSE;
}

static void
on_token_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (HttpAnswer) answer = NULL;
  OutboxOAuth2Tokens *tokens = NULL;
  GError *error = NULL;

  answer = post_form_finish (result, &error);
  if (answer != NULL)
    outbox_oauth2_parse_token_response (answer->status, answer->body->str, answer->body->len,
                                        &tokens, &error);
  if (tokens != NULL)
    g_task_return_pointer (task, tokens, (GDestroyNotify) outbox_oauth2_tokens_free);
  else
    g_task_return_error (task, error);
}

/* POSTs @form (taken) to the token endpoint; the result is the tokens. */
static void
request_tokens_async (SoupSession *session,
                      const OutboxOAuth2Settings *settings,
                      GBytes *form,
                      gpointer source_tag,
                      GCancellable *cancellable,
                      GAsyncReadyCallback callback,
                      gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, source_tag);
  if (!check_client (settings, &error))
    {
      g_bytes_unref (form);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  post_form_async (session, settings->token_url, form, cancellable, on_token_answer, task);
}

static OutboxOAuth2Tokens *
request_tokens_finish (GAsyncResult *result, gpointer source_tag, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

void
outbox_oauth2_exchange_code_async (SoupSession *session,
                                   const OutboxOAuth2Settings *settings,
                                   const char *client_secret,
                                   const char *code,
                                   const char *verifier,
                                   const char *redirect_uri,
                                   GCancellable *cancellable,
                                   GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  const FormField fields[] = {
    { "grant_type", "authorization_code" },
    { "code", code },
    { "redirect_uri", redirect_uri },
    { "client_id", settings != NULL ? settings->client_id : NULL },
    { "client_secret", client_secret },
    { "code_verifier", verifier },
  };

  g_return_if_fail (settings != NULL);
  g_return_if_fail (code != NULL && verifier != NULL && redirect_uri != NULL);

  request_tokens_async (session, settings, form_encode (fields, G_N_ELEMENTS (fields)),
                        outbox_oauth2_exchange_code_async, cancellable, callback, user_data);
}

OutboxOAuth2Tokens *
outbox_oauth2_exchange_code_finish (GAsyncResult *result, GError **error)
{
  return request_tokens_finish (result, outbox_oauth2_exchange_code_async, error);
}

void
outbox_oauth2_refresh_async (SoupSession *session,
                             const OutboxOAuth2Settings *settings,
                             const char *client_secret,
                             const char *refresh_token,
                             GCancellable *cancellable,
                             GAsyncReadyCallback callback,
                             gpointer user_data)
{
  const FormField fields[] = {
    { "grant_type", "refresh_token" },
    { "refresh_token", refresh_token },
    { "client_id", settings != NULL ? settings->client_id : NULL },
    { "client_secret", client_secret },
    { "scope", settings != NULL ? settings->scope : NULL },
  };

  g_return_if_fail (settings != NULL && refresh_token != NULL);

  request_tokens_async (session, settings, form_encode (fields, G_N_ELEMENTS (fields)),
                        outbox_oauth2_refresh_async, cancellable, callback, user_data);
}

OutboxOAuth2Tokens *
outbox_oauth2_refresh_finish (GAsyncResult *result, GError **error)
{
  return request_tokens_finish (result, outbox_oauth2_refresh_async, error);
}

/* The device grant ----------------------------------------------------------- */

static void
on_device_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (HttpAnswer) answer = NULL;
  OutboxOAuth2DeviceCode *device = NULL;
  GError *error = NULL;

  answer = post_form_finish (result, &error);
  if (answer != NULL)
    outbox_oauth2_parse_device_response (answer->status, answer->body->str, answer->body->len,
                                         &device, &error);
  if (device != NULL)
    g_task_return_pointer (task, device, (GDestroyNotify) outbox_oauth2_device_code_free);
  else
    g_task_return_error (task, error);
}

void
outbox_oauth2_device_start_async (SoupSession *session,
                                  const OutboxOAuth2Settings *settings,
                                  const char *client_secret,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  GError *error = NULL;
  FormField fields[] = {
    { "client_id", NULL },
    { "client_secret", client_secret },
    { "scope", NULL },
  };

  g_return_if_fail (settings != NULL);

  fields[0].value = settings->client_id;
  fields[2].value = settings->scope;
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_oauth2_device_start_async);
  if (!check_client (settings, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  post_form_async (session, settings->device_url, form_encode (fields, G_N_ELEMENTS (fields)),
                   cancellable, on_device_answer, g_steal_pointer (&task));
}

OutboxOAuth2DeviceCode *
outbox_oauth2_device_start_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_oauth2_device_start_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  SoupSession *session;           /* (owned) (nullable) */
  OutboxOAuth2Settings *settings; /* (owned) */
  char *client_secret;            /* (owned) (nullable) wiped */
  char *device_code;              /* (owned) wiped */
  gint64 expires_at;              /* wall-clock Unix seconds */
  guint64 interval_ms;
  guint slow_down_step_ms;
} DevicePoll;

static void
device_poll_free (DevicePoll *poll)
{
  g_clear_object (&poll->session);
  outbox_oauth2_settings_free (poll->settings);
  wipe_string (poll->client_secret);
  wipe_string (poll->device_code);
  g_free (poll);
}

static void wait_and_poll (GTask *task);

static void
on_poll_answer (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  DevicePoll *poll = g_task_get_task_data (task);
  GError *error = NULL;
  OutboxOAuth2Tokens *tokens = request_tokens_finish (result, on_poll_answer, &error);

  if (tokens != NULL)
    g_task_return_pointer (task, tokens, (GDestroyNotify) outbox_oauth2_tokens_free);
  else if (g_error_matches (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_AUTHORIZATION_PENDING))
    {
      g_error_free (error);
      wait_and_poll (task);
      return;
    }
  else if (g_error_matches (error, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_SLOW_DOWN))
    {
      /* RFC 8628 section 3.5: for this and every later request. */
      poll->interval_ms += poll->slow_down_step_ms;
      g_debug ("Device grant: polling every %" G_GUINT64_FORMAT " ms", poll->interval_ms);
      g_error_free (error);
      wait_and_poll (task);
      return;
    }
  else
    g_task_return_error (task, error);
  g_object_unref (task);
}

static gboolean
on_poll_time (gpointer user_data)
{
  GTask *task = user_data;
  DevicePoll *poll = g_task_get_task_data (task);
  const FormField fields[] = {
    { "grant_type", "urn:ietf:params:oauth:grant-type:device_code" },
    { "device_code", poll->device_code },
    { "client_id", poll->settings->client_id },
    { "client_secret", poll->client_secret },
  };

  if (g_task_return_error_if_cancelled (task))
    g_object_unref (task);
  else
    request_tokens_async (poll->session, poll->settings,
                          form_encode (fields, G_N_ELEMENTS (fields)), on_poll_answer,
                          g_task_get_cancellable (task), on_poll_answer, task);
  return G_SOURCE_REMOVE;
}

/* Waits one interval, or less when the caller cancels, then polls; the
 * source holds the task's reference meanwhile.  A wait that would end
 * after the device code expired is not started. */
static void
wait_and_poll (GTask *task)
{
  DevicePoll *poll = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  gint64 now_ms = g_get_real_time () / 1000;
  GSource *wait;

  if (now_ms + (gint64) poll->interval_ms >= poll->expires_at * 1000)
    {
      g_task_return_new_error (task, OUTBOX_OAUTH2_ERROR, OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN,
                               "The code expired before the authorization was given: start the "
                               "authorization again.");
      g_object_unref (task);
      return;
    }

  wait = g_timeout_source_new (MIN (poll->interval_ms, G_MAXUINT));
  if (cancellable != NULL)
    {
      g_autoptr (GSource) cancelled = g_cancellable_source_new (cancellable);

      /* The cancellation dispatches the wait early; on_poll_time sees it. */
      g_source_set_dummy_callback (cancelled);
      g_source_add_child_source (wait, cancelled);
    }
  g_source_set_callback (wait, on_poll_time, task, NULL);
  g_source_attach (wait, g_main_context_get_thread_default ());
  g_source_unref (wait);
}

void
outbox_oauth2_device_poll_async (SoupSession *session,
                                 const OutboxOAuth2Settings *settings,
                                 const char *client_secret,
                                 const OutboxOAuth2DeviceCode *device,
                                 guint slow_down_step_ms,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  GTask *task;
  DevicePoll *poll;

  g_return_if_fail (settings != NULL && device != NULL && device->device_code != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  poll = g_new0 (DevicePoll, 1);
  g_task_set_source_tag (task, outbox_oauth2_device_poll_async);
  g_task_set_task_data (task, poll, (GDestroyNotify) device_poll_free);
  /* One session for every poll: the connection is kept between them. */
  poll->session = session != NULL ? g_object_ref (session) : outbox_oauth2_session_new ();
  poll->settings = settings_copy (settings);
  poll->client_secret = g_strdup (client_secret);
  poll->device_code = g_strdup (device->device_code);
  poll->expires_at = device->expires_at;
  poll->interval_ms = (guint64) device->interval * 1000;
  poll->slow_down_step_ms = slow_down_step_ms;
  wait_and_poll (task);
}

OutboxOAuth2Tokens *
outbox_oauth2_device_poll_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_oauth2_device_poll_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
