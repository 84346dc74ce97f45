/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-url.h"

G_BEGIN_DECLS

/* What the SMTP, IMAP and POP3 session tests share: certificates made at
 * run time, a scripted fake server on loopback that each test teaches its
 * protocol, waiting for an asynchronous result, and capturing the log. */

/* Test certificates -------------------------------------------------------
 *
 * Self-signed certificates that are their own CA, so that a PEM file holding
 * one can serve as tls_ca_file.  test_certs_make() writes those files to a
 * new temporary directory; test_certs_clear() removes them and it. */

typedef struct
{
  GTlsCertificate *certificate; /* (owned) with its private key */
  char *ca_file;                /* (owned) PEM file of the certificate alone */
  char *fingerprint;            /* (owned) "sha256:HEX" of its DER */
} TestCert;

typedef struct
{
  char *dir;          /* (owned) where the CA files are */
  TestCert localhost; /* for 127.0.0.1 and localhost */
  TestCert other;     /* for other.example only */
  TestCert expired;   /* for 127.0.0.1 and localhost, expired yesterday */
} TestCerts;

void test_certs_make (TestCerts *certs);
void test_certs_clear (TestCerts *certs);

/* The fake server ---------------------------------------------------------
 *
 * One scripted peer on a free loopback port, run in a thread with blocking
 * I/O while the session under test runs in the main context.  The server
 * handles the connection, implicit TLS, the greeting and the record of what
 * the client sent; a FakeProtocol reads and answers its commands.  The test
 * sets the script before fake_server_start() and reads the record after
 * fake_server_stop(), which joins the thread. */

typedef struct _FakeServer FakeServer;

typedef struct
{
  const char *name;     /* of the server's thread */
  const char *greeting; /* with its CR LF, when the test sets none */
  /* One command, which may span lines; NULL at the end of the stream.
   * Without it, a command is one line. */
  char *(*read_command) (FakeServer *server);
  /* Answers @command, already recorded; FALSE ends the conversation. */
  gboolean (*handle) (FakeServer *server, const char *command);
} FakeProtocol;

struct _FakeServer
{
  /* The script every protocol has; NULL means the protocol's default. */
  const char *greeting; /* the whole greeting with its CR LF */
  const char *hang_on;  /* never answer this verb ("CONNECT": the greeting) */
  gboolean implicit_tls;
  GTlsCertificate *certificate; /* for TLS; without it, agreeing to STARTTLS does nothing */

  const FakeProtocol *protocol;
  gpointer script; /* the protocol's own script and state */
  GSocketListener *listener;
  GCancellable *cancellable;
  guint16 port;
  GThread *thread;
  GIOStream *stream;
  GDataInputStream *input;

  /* The record. */
  GPtrArray *commands;    /* what the client sent, without the last CR LF */
  GArray *buffered_after; /* gsize per command: bytes that arrived with it */
  gboolean tls_up;
};

void fake_server_start (FakeServer *server, const FakeProtocol *protocol, gpointer script);
OutboxServerUrl *fake_server_url (FakeServer *server, const char *url_format);
void fake_server_stop (FakeServer *server);
void fake_server_clear (FakeServer *server);

/* For the protocol, in the server's thread. */
void fake_server_send (FakeServer *server, const char *text);
char *fake_server_read_line (FakeServer *server, gsize *length);
void fake_server_record (FakeServer *server, const char *command);
gboolean fake_server_start_tls (FakeServer *server);

/* For the test, after fake_server_stop(). */
void fake_server_assert_commands (FakeServer *server, const char *const *expected);
gboolean fake_server_received (FakeServer *server, const char *prefix);

GSocketListener *listen_on_loopback (guint16 *out_port);

/* Asynchronous calls ------------------------------------------------------
 *
 * store_result() as the callback with &result as its data, then
 * wait_for (&result) runs the main context until the result is there.
 * cancel_soon() is a GSourceFunc that cancels its GCancellable. */

void store_result (GObject *source, GAsyncResult *result, gpointer user_data);
GAsyncResult *wait_for (GAsyncResult **slot);
gboolean cancel_soon (gpointer cancellable);

/* The log ---------------------------------------------------------------
 *
 * With log_capture_writer() as the log writer, every message logged between
 * log_capture_start() and log_capture_stop() is kept for logs_contain(). */

GLogWriterOutput log_capture_writer (GLogLevelFlags level,
                                     const GLogField *fields,
                                     gsize n_fields,
                                     gpointer user_data);
void log_capture_start (void);
void log_capture_stop (void);
gboolean logs_contain (const char *needle);

G_END_DECLS
