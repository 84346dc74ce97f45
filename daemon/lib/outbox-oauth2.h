/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-oauth2-provider.h"
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* The OAuth2 client side that the CLI and outbox-oauth2-helper share:
 * provider facts, PKCE, the authorization URL, and the token endpoint
 * (authorization code, refresh and device grants; RFC 6749, 7636, 8628).
 * It needs libsoup, so outboxd never links it: the daemon refreshes tokens
 * through outbox-oauth2-helper.
 *
 * Nothing here logs a token, code, verifier or client secret, nor puts one
 * in an error message; g_debug shows URLs without their query and HTTP
 * status codes only. */

/* How long one request to a token or device endpoint may take. */
#define OUTBOX_OAUTH2_HTTP_TIMEOUT 30
/* No token endpoint answer is larger; anything larger is refused. */
#define OUTBOX_OAUTH2_MAX_RESPONSE (64 * 1024)
/* RFC 8628 section 3.5: slow_down adds 5 seconds to the polling interval. */
#define OUTBOX_OAUTH2_SLOW_DOWN_STEP_MS 5000
/* RFC 8628 section 3.2: the interval when the server names none. */
#define OUTBOX_OAUTH2_DEFAULT_INTERVAL 5
/* The longest error_description quoted in a message, in characters. */
#define OUTBOX_OAUTH2_MAX_DESCRIPTION 200

#define OUTBOX_OAUTH2_ERROR (outbox_oauth2_error_quark ())
GQuark outbox_oauth2_error_quark (void);

/* Each has a name (outbox_oauth2_error_code_to_string), given in the
 * comment, which outbox-oauth2-helper prints. */
typedef enum
{
  OUTBOX_OAUTH2_ERROR_FAILED,                /* failed: any other refusal */
  OUTBOX_OAUTH2_ERROR_INVALID_GRANT,         /* invalid_grant: authorize again */
  OUTBOX_OAUTH2_ERROR_INVALID_CLIENT,        /* invalid_client (and unauthorized_client) */
  OUTBOX_OAUTH2_ERROR_INVALID_SCOPE,         /* invalid_scope */
  OUTBOX_OAUTH2_ERROR_AUTHORIZATION_PENDING, /* authorization_pending */
  OUTBOX_OAUTH2_ERROR_SLOW_DOWN,             /* slow_down */
  OUTBOX_OAUTH2_ERROR_ACCESS_DENIED,         /* access_denied */
  OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN,         /* expired_token: the device code */
  OUTBOX_OAUTH2_ERROR_PROTOCOL,              /* protocol: an answer not as RFC 6749 says */
  OUTBOX_OAUTH2_ERROR_HTTP,                  /* http: an HTTP error without an OAuth2 one */
  OUTBOX_OAUTH2_ERROR_NETWORK,               /* network: no answer (try again later) */
  OUTBOX_OAUTH2_ERROR_BAD_URL,               /* bad_url: not https, nor loopback */
} OutboxOAuth2Error;

const char *outbox_oauth2_error_code_to_string (OutboxOAuth2Error code);

/* Providers and settings: outbox-oauth2-provider.h (read by the daemon
 * too, which does not link this library). */

/* outbox_oauth2_check_endpoint:
 *
 * Whether @url may receive a client's credentials: an absolute https URL,
 * or plain http to a loopback host (127.0.0.0/8, ::1, localhost), and
 * without a user or password in it.  Every request function checks its
 * URL with this first; an error is OUTBOX_OAUTH2_ERROR_BAD_URL. */
gboolean outbox_oauth2_check_endpoint (const char *url, GError **error);

/* PKCE and state (RFC 7636) ------------------------------------------------ */

/* outbox_oauth2_pkce_new:
 * @out_verifier: (out): 32 random octets from GnuTLS's key-grade generator,
 *   base64url without padding (43 characters); wipe it when done
 * @out_challenge: (out): its S256 challenge
 *
 * Fails only when the random generator does. */
gboolean outbox_oauth2_pkce_new (char **out_verifier, char **out_challenge, GError **error);
/* The S256 challenge of @verifier: base64url (no padding) of its SHA-256. */
char *outbox_oauth2_pkce_challenge (const char *verifier);
/* A fresh "state" for one authorization: 16 random octets, base64url. */
char *outbox_oauth2_random_state (GError **error);

/* outbox_oauth2_authorization_url:
 * @login_hint: (nullable): the address to sign in as
 *
 * The URL to open in the browser for the authorization code grant with
 * PKCE (S256): @settings' auth_url (which must pass
 * outbox_oauth2_check_endpoint) with response_type=code, client_id,
 * redirect_uri, scope, state, code_challenge, code_challenge_method and,
 * when given, login_hint added to its query, each percent-encoded.
 * Google hands out a refresh token only when asked for offline access, so
 * access_type=offline is added when the host is accounts.google.com;
 * other providers (Microsoft: the offline_access scope) need nothing more.
 *
 * Returns: (nullable): the URL, or NULL with OUTBOX_OAUTH2_ERROR_BAD_URL. */
char *outbox_oauth2_authorization_url (const OutboxOAuth2Settings *settings,
                                       const char *redirect_uri,
                                       const char *state,
                                       const char *challenge,
                                       const char *login_hint,
                                       GError **error);

/* Tokens ------------------------------------------------------------------ */

typedef struct
{
  char *access_token;  /* never empty */
  char *refresh_token; /* (nullable): NULL when the provider did not give
                        * (or, on refresh, did not rotate) one */
  gint64 expires_at;   /* wall-clock Unix seconds; 0 when not given */
  char *scope;         /* (nullable): the scope granted, when given */
} OutboxOAuth2Tokens;

/* Frees @tokens, wiping both tokens first. */
void outbox_oauth2_tokens_free (OutboxOAuth2Tokens *tokens);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxOAuth2Tokens, outbox_oauth2_tokens_free)

/* outbox_oauth2_parse_token_response:
 * @http_status: the token endpoint's HTTP status
 * @body: its body, not necessarily NUL-terminated
 * @len: the body's length in octets
 * @out: (out): the tokens
 *
 * Reads an RFC 6749 section 5.1 answer (a bearer token_type, compared
 * without case; an access_token; expires_in as a number or a string of
 * digits) or a section 5.2 error, which becomes the OUTBOX_OAUTH2_ERROR
 * code of the same name.  A body larger than OUTBOX_OAUTH2_MAX_RESPONSE,
 * malformed or nested deeper than any real answer, is
 * OUTBOX_OAUTH2_ERROR_PROTOCOL; an HTTP error status without an OAuth2
 * error is OUTBOX_OAUTH2_ERROR_HTTP.
 *
 * Messages are sentences meant for the user.  They quote the provider's
 * error_description, made printable and cut to
 * OUTBOX_OAUTH2_MAX_DESCRIPTION characters, and never a token.  The
 * caller adds what to do about it (for invalid_grant: authorize the
 * account again). */
gboolean outbox_oauth2_parse_token_response (guint http_status,
                                             const char *body,
                                             gsize len,
                                             OutboxOAuth2Tokens **out,
                                             GError **error);

/* Requests to the token endpoint -------------------------------------------
 *
 * Each POSTs an application/x-www-form-urlencoded body to @settings'
 * token_url (checked with outbox_oauth2_check_endpoint), follows no
 * redirect and gives up after OUTBOX_OAUTH2_HTTP_TIMEOUT seconds
 * (OUTBOX_OAUTH2_ERROR_NETWORK, like any failure to get an answer).  The
 * client secret, when not NULL, travels as client_secret in the body.
 * @session may be NULL for a new one from outbox_oauth2_session_new. */

/* A session that sends no cookie and answers no 401 with credentials. */
SoupSession *outbox_oauth2_session_new (void);

/* The authorization code grant with PKCE (RFC 6749 section 4.1.3). */
void outbox_oauth2_exchange_code_async (SoupSession *session,
                                        const OutboxOAuth2Settings *settings,
                                        const char *client_secret,
                                        const char *code,
                                        const char *verifier,
                                        const char *redirect_uri,
                                        GCancellable *cancellable,
                                        GAsyncReadyCallback callback,
                                        gpointer user_data);
OutboxOAuth2Tokens *outbox_oauth2_exchange_code_finish (GAsyncResult *result, GError **error);

/* A refresh (RFC 6749 section 6); scope is sent when @settings has one.
 * The result's refresh_token is NULL unless the provider rotated it. */
void outbox_oauth2_refresh_async (SoupSession *session,
                                  const OutboxOAuth2Settings *settings,
                                  const char *client_secret,
                                  const char *refresh_token,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data);
OutboxOAuth2Tokens *outbox_oauth2_refresh_finish (GAsyncResult *result, GError **error);

/* The device grant (RFC 8628) ---------------------------------------------- */

typedef struct
{
  char *device_code;               /* a secret: wiped when freed */
  char *user_code;                 /* what the user types */
  char *verification_uri;          /* where (Google calls it verification_url) */
  char *verification_uri_complete; /* (nullable): the same with the code in it */
  guint interval;                  /* seconds between polls */
  guint expires_in;                /* seconds the codes live */
  gint64 expires_at;               /* wall-clock Unix seconds */
} OutboxOAuth2DeviceCode;

void outbox_oauth2_device_code_free (OutboxOAuth2DeviceCode *device);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxOAuth2DeviceCode, outbox_oauth2_device_code_free)

/* Reads a device authorization answer (RFC 8628 section 3.2); errors as
 * outbox_oauth2_parse_token_response. */
gboolean outbox_oauth2_parse_device_response (guint http_status,
                                              const char *body,
                                              gsize len,
                                              OutboxOAuth2DeviceCode **out,
                                              GError **error);

/* Asks @settings' device_url for a device and a user code for its scope. */
void outbox_oauth2_device_start_async (SoupSession *session,
                                       const OutboxOAuth2Settings *settings,
                                       const char *client_secret,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
OutboxOAuth2DeviceCode *outbox_oauth2_device_start_finish (GAsyncResult *result, GError **error);

/* outbox_oauth2_device_poll_async:
 * @device: what outbox_oauth2_device_start_finish gave; copied
 * @slow_down_step_ms: what each slow_down adds to the interval:
 *   OUTBOX_OAUTH2_SLOW_DOWN_STEP_MS, as RFC 8628 section 3.5 requires
 *   (tests pass less, to stay fast)
 *
 * Asks the token endpoint for the tokens every @device->interval seconds,
 * the first time at once, until the user has decided: through
 * authorization_pending it keeps polling, and slow_down lengthens the
 * interval for this and every later request.  Fails with
 * OUTBOX_OAUTH2_ERROR_ACCESS_DENIED when the user refused,
 * OUTBOX_OAUTH2_ERROR_EXPIRED_TOKEN when the device code expired (said by
 * the server or found here), and any other error of the token endpoint. */
void outbox_oauth2_device_poll_async (SoupSession *session,
                                      const OutboxOAuth2Settings *settings,
                                      const char *client_secret,
                                      const OutboxOAuth2DeviceCode *device,
                                      guint slow_down_step_ms,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
OutboxOAuth2Tokens *outbox_oauth2_device_poll_finish (GAsyncResult *result, GError **error);

G_END_DECLS
