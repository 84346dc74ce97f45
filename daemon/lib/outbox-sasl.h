/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The SASL client that the SMTP, IMAP and POP3 sessions all drive (RFC 4422).
 *
 * A session knows how its protocol carries SASL (AUTH, AUTHENTICATE, base64
 * lines, continuations); this layer knows the mechanisms: what the client
 * sends first, how it answers each server challenge, and whether the server
 * proved itself at the end.  It works on decoded octets; the session does
 * the base64.  One file per mechanism (outbox-sasl-plain.c, -login.c,
 * -scram.c through GNU SASL, -oauthbearer.c, -xoauth2.c) behind the table in
 * outbox-sasl.c.
 *
 * Secrets: every buffer that holds a password, a token or a response built
 * from them is wiped before it is freed; nothing here logs. */

#define OUTBOX_SASL_ERROR (outbox_sasl_error_quark ())
GQuark outbox_sasl_error_quark (void);

typedef enum
{
  OUTBOX_SASL_ERROR_UNAVAILABLE, /* no mechanism both sides can use, or one pinned that cannot be */
  OUTBOX_SASL_ERROR_PROTOCOL,    /* a malformed challenge, or one where none may come */
  OUTBOX_SASL_ERROR_SERVER_PROOF, /* SCRAM: the server's signature is wrong or missing */
  OUTBOX_SASL_ERROR_REFUSED,     /* OAuth2: the server sent an error challenge (see the message) */
} OutboxSaslError;

/* What the account can prove itself with. */
typedef enum
{
  OUTBOX_SASL_SECRET_PASSWORD, /* PLAIN, LOGIN, SCRAM-* */
  OUTBOX_SASL_SECRET_TOKEN,    /* an OAuth2 access token: OAUTHBEARER, XOAUTH2 */
} OutboxSaslSecretKind;

typedef struct
{
  const char *user;   /* the authentication identity, UTF-8 */
  const char *secret; /* the password or the access token */
  OutboxSaslSecretKind kind;
  const char *host;   /* (nullable) the server, for OAUTHBEARER's host= */
  guint16 port;       /* for OAUTHBEARER's port=; 0: left out */
} OutboxSaslCredentials;

/* The mechanisms known here, strongest first: SCRAM-SHA-256-PLUS,
 * SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN, OAUTHBEARER,
 * XOAUTH2 (NULL-terminated, static). */
const char *const *outbox_sasl_mechanisms (void);

/* TRUE when @name (any case) is one of outbox_sasl_mechanisms(). */
gboolean outbox_sasl_mechanism_is_known (const char *name);

/* Picks the mechanism for a login: @pinned (nullable; the account's --auth)
 * when the server offers it and it suits @kind, else the strongest one in
 * @offered (the server's list, any case) that suits @kind: for passwords
 * SCRAM-*-PLUS (only when @tls can give channel binding data), SCRAM-*,
 * PLAIN, LOGIN; for tokens OAUTHBEARER, then XOAUTH2.  Returns the
 * mechanism's name as outbox_sasl_mechanisms() spells it (static), or NULL
 * with OUTBOX_SASL_ERROR_UNAVAILABLE and a sentence that names what the
 * server offers and what would be needed. */
const char *outbox_sasl_choose (const char *const *offered,
                                OutboxSaslSecretKind kind,
                                GTlsConnection *tls,
                                const char *pinned,
                                GError **error);

typedef struct _OutboxSasl OutboxSasl;

/* A client for one login with @mechanism.  @tls (nullable) is the
 * connection the exchange runs over; the -PLUS mechanisms take their channel
 * binding from it (tls-exporter on TLS 1.3, tls-unique before) and fail here
 * without it.  The credentials are copied. */
OutboxSasl *outbox_sasl_new (const char *mechanism,
                             const OutboxSaslCredentials *credentials,
                             GTlsConnection *tls,
                             GError **error);
void outbox_sasl_free (OutboxSasl *sasl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSasl, outbox_sasl_free)

const char *outbox_sasl_get_mechanism (OutboxSasl *sasl);

/* TRUE when the client speaks first (PLAIN, SCRAM, OAUTHBEARER, XOAUTH2):
 * outbox_sasl_step() with a NULL challenge then gives the initial
 * response.  LOGIN waits for the server's prompt. */
gboolean outbox_sasl_client_first (OutboxSasl *sasl);

/* One step: @challenge is the decoded server challenge (NULL for the
 * initial response).  Returns the response to send (never NULL on success;
 * possibly empty), to be freed with outbox_sasl_response_free(), or NULL
 * with an error:
 * - OUTBOX_SASL_ERROR_PROTOCOL for a challenge that makes no sense;
 * - OUTBOX_SASL_ERROR_SERVER_PROOF when SCRAM's server-final message does
 *   not prove the server knows the password (the session must then abort,
 *   not send anything more).
 * An OAuth2 error challenge (a JSON object, RFC 7628 section 3.2.2) is not
 * an error here: the step returns the response that ends the exchange
 * (OAUTHBEARER: one octet 0x01; XOAUTH2: empty) and remembers the error for
 * outbox_sasl_get_server_error(). */
GBytes *outbox_sasl_step (OutboxSasl *sasl, GBytes *challenge, GError **error);

/* Called when the server said the login succeeded, with the additional data
 * that came with the success (nullable).  FALSE with
 * OUTBOX_SASL_ERROR_SERVER_PROOF when the mechanism needs the server's proof
 * and has not seen a valid one (SCRAM); TRUE for every other mechanism. */
gboolean outbox_sasl_check_success (OutboxSasl *sasl, GBytes *additional_data, GError **error);

/* (nullable) After an OAuth2 error challenge: a sentence for people built
 * from its "status" (and "scope"), such as "the server refused the access
 * token (invalid_token)".  NULL otherwise. */
const char *outbox_sasl_get_server_error (OutboxSasl *sasl);

/* Wipes and frees a response. */
void outbox_sasl_response_free (GBytes *response);

/* The parsers behind the mechanisms, public to be tested and fuzzed. */

/* RFC 7628 section 3.2.2: the error JSON of an OAUTHBEARER or XOAUTH2
 * challenge.  Fills @out_status (never NULL on success) and @out_scope
 * (nullable).  FALSE with OUTBOX_SASL_ERROR_PROTOCOL on anything but a JSON
 * object whose "status" is a string. */
gboolean outbox_sasl_parse_oauth_error (const char *json,
                                        gsize len,
                                        char **out_status,
                                        char **out_scope,
                                        GError **error);

G_END_DECLS
