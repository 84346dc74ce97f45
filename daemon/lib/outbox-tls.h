/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* TLS set-up shared by the SMTP, IMAP and POP3 clients.
 *
 * outbox_tls_client_new() wraps @base (the raw TCP stream, never a buffered
 * reader over it) in a GTlsClientConnection whose server identity is @host.
 * With @ca_file, only the CAs in that PEM file are trusted.  With
 * @fingerprint ("sha256:HEX", colons optional, case-insensitive), the
 * certificate is accepted when and only when the SHA-256 of its DER equals
 * the pin, whatever the CA validation says; nothing is remembered.
 * Validation flags are left alone.
 *
 * outbox_tls_check_pin() must be called after the handshake: it fails with
 * G_TLS_ERROR_BAD_CERTIFICATE when a pin is set and the peer certificate
 * does not match (a certificate that validated against the CAs must still
 * match the pin). */
GIOStream *outbox_tls_client_new (GIOStream *base,
                                  const char *host,
                                  guint16 port,
                                  const char *ca_file,
                                  const char *fingerprint,
                                  GError **error);
gboolean outbox_tls_check_pin (GTlsConnection *tls, const char *fingerprint, GError **error);

/* After a failed handshake over a connection from outbox_tls_client_new():
 * returns the certificate the server offered (nullable; transfer full), and
 * when the certificate was refused, rewrites @error's message to say what
 * was wrong with it and how to trust it. */
GTlsCertificate *outbox_tls_explain_failure (GTlsConnection *tls, GError **error);

/* Parses "sha256:HEX" into 32 bytes; FALSE with G_IO_ERROR_INVALID_ARGUMENT
 * when it is not a valid pin. */
gboolean outbox_tls_parse_fingerprint (const char *fingerprint, guint8 out[32], GError **error);
/* "sha256:AB:CD:..." of a certificate's DER, for showing to a person. */
char *outbox_tls_certificate_fingerprint (GTlsCertificate *certificate);

G_END_DECLS
