/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-sasl.h"

G_BEGIN_DECLS

/* What outbox-sasl.c and the mechanism files share: the table entry each
 * mechanism file defines, the client state they all work on, and the helpers
 * for wiped buffers. */

typedef struct _OutboxSaslMechanism OutboxSaslMechanism;

struct _OutboxSaslMechanism
{
  const char *name; /* as outbox_sasl_mechanisms() spells it */
  OutboxSaslSecretKind kind;
  gboolean client_first;
  gboolean channel_binding; /* the -PLUS forms */
  /* (nullable) Sets up sasl->state; FALSE with an error. */
  gboolean (*start) (OutboxSasl *sasl, GError **error);
  /* Round @round (0 for the first) of the exchange.  @challenge is NULL
   * only in round 0 of a client-first mechanism. */
  GBytes *(*step) (OutboxSasl *sasl, guint round, GBytes *challenge, GError **error);
  /* (nullable) NULL means the mechanism needs no proof from the server. */
  gboolean (*check_success) (OutboxSasl *sasl, GBytes *additional_data, GError **error);
  /* (nullable) Wipes and frees sasl->state. */
  void (*finish) (OutboxSasl *sasl);
};

struct _OutboxSasl
{
  const OutboxSaslMechanism *mechanism;
  char *user;   /* (owned) */
  char *secret; /* (owned) wiped at free */
  char *host;   /* (owned) (nullable) */
  guint16 port;
  GTlsConnection *tls; /* (owned) (nullable) */
  guint round;         /* how many steps have given a response */
  gboolean failed;     /* a step failed: the exchange is over */
  char *server_error;  /* (owned) (nullable) see outbox_sasl_get_server_error() */
  gpointer state;      /* the mechanism's own */
};

extern const OutboxSaslMechanism outbox_sasl_scram_sha256_plus;
extern const OutboxSaslMechanism outbox_sasl_scram_sha1_plus;
extern const OutboxSaslMechanism outbox_sasl_scram_sha256;
extern const OutboxSaslMechanism outbox_sasl_scram_sha1;
extern const OutboxSaslMechanism outbox_sasl_plain;
extern const OutboxSaslMechanism outbox_sasl_login;
extern const OutboxSaslMechanism outbox_sasl_oauthbearer;
extern const OutboxSaslMechanism outbox_sasl_xoauth2;

/* Wipes and frees a string that held a secret (NULL is fine). */
void outbox_sasl_wipe_string (char *text);

/* A GString that can hold @size bytes without growing, so that no copy of
 * the secrets put into it is left behind by a reallocation. */
GString *outbox_sasl_buffer_new (gsize size);

/* The response holding @buffer's bytes, which it takes: wiped when freed. */
GBytes *outbox_sasl_response_take_buffer (GString *buffer);

/* A wiped copy of @len bytes at @data as a response. */
GBytes *outbox_sasl_response_new (gconstpointer data, gsize len);

/* Which channel binding @tls gives (tls-exporter on TLS 1.3, tls-unique
 * before) into @out_type, and the data into @data (nullable). */
gboolean outbox_sasl_channel_binding (GTlsConnection *tls,
                                      GTlsChannelBindingType *out_type,
                                      GByteArray *data,
                                      GError **error);

/* OAUTHBEARER and XOAUTH2 after their initial response: the only
 * challenge that may come is the error one of RFC 7628 section 3.2.2.  Keeps
 * its sentence for outbox_sasl_get_server_error() and returns the response
 * that ends the exchange, @final_len bytes at @final_response. */
GBytes *outbox_sasl_oauth_answer_error (OutboxSasl *sasl,
                                        guint round,
                                        GBytes *challenge,
                                        const char *final_response,
                                        gsize final_len,
                                        GError **error);

G_END_DECLS
