/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* What the SMTP, IMAP and POP3 clients share below their protocols: a
 * deadline for each network step, the TCP connect and the TLS handshake.
 *
 * A step guard gives one I/O call a cancellable that is cancelled when the
 * caller's is, or when @seconds pass (0: never); outbox_step_guard_timed_out()
 * then tells the two apart. */
typedef struct
{
  GCancellable *cancellable; /* (owned) give this to the I/O call */
  guint seconds;
  /* (private) */
  GCancellable *caller;
  gulong caller_handler;
  GSource *timer;
  gboolean timed_out;
} OutboxStepGuard;

OutboxStepGuard *outbox_step_guard_new (GCancellable *caller, guint seconds);
void outbox_step_guard_free (OutboxStepGuard *guard);
/* TRUE when @error is the cancellation the guard's own timer caused. */
gboolean outbox_step_guard_timed_out (const OutboxStepGuard *guard, const GError *error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxStepGuard, outbox_step_guard_free)

/* Connects to @host:@port within @seconds.  A timeout fails with
 * @timeout_domain/@timeout_code and says so ("Could not connect to
 * HOST:PORT within N s"); other failures are GIO's. */
void outbox_transport_connect_async (const char *host,
                                     guint16 port,
                                     guint seconds,
                                     GQuark timeout_domain,
                                     int timeout_code,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
GSocketConnection *outbox_transport_connect_finish (GAsyncResult *result, GError **error);

/* Wraps @base in TLS for @host (see outbox_tls_client_new() for @ca_file
 * and @fingerprint), completes the handshake within @seconds and checks the
 * pin.  A timeout fails as for connect ("No TLS handshake with ...").  On
 * any failure, @out_offered gets the certificate the server offered
 * (nullable), and the error says what was wrong with it. */
void outbox_transport_handshake_async (GIOStream *base,
                                       const char *host,
                                       guint16 port,
                                       const char *ca_file,
                                       const char *fingerprint,
                                       guint seconds,
                                       GQuark timeout_domain,
                                       int timeout_code,
                                       GCancellable *cancellable,
                                       GAsyncReadyCallback callback,
                                       gpointer user_data);
/* (transfer full) the TLS connection, or NULL */
GIOStream *outbox_transport_handshake_finish (GAsyncResult *result,
                                              GTlsCertificate **out_offered,
                                              GError **error);

G_END_DECLS
