/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "session-test-support.h"

#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

/* Test certificates ------------------------------------------------------- */

static void
check_gnutls (int ret)
{
  if (ret < 0)
    g_error ("GnuTLS: %s", gnutls_strerror (ret));
}

static char *
datum_to_string (gnutls_datum_t *datum)
{
  char *text = g_strndup ((const char *) datum->data, datum->size);

  gnutls_free (datum->data);
  return text;
}

static char *
der_fingerprint (gnutls_x509_crt_t crt)
{
  gnutls_datum_t der = { NULL, 0 };
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  char *fingerprint;

  check_gnutls (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_DER, &der));
  g_checksum_update (checksum, der.data, der.size);
  fingerprint = g_strconcat ("sha256:", g_checksum_get_string (checksum), NULL);
  gnutls_free (der.data);
  return fingerprint;
}

static void
set_identity (gnutls_x509_crt_t crt, const char *dns_name, gboolean with_loopback_ip)
{
  static const guint8 loopback[4] = { 127, 0, 0, 1 };

  check_gnutls (gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, dns_name,
                                               (unsigned) strlen (dns_name)));
  check_gnutls (gnutls_x509_crt_set_subject_alt_name (
      crt, GNUTLS_SAN_DNSNAME, dns_name, (unsigned) strlen (dns_name), GNUTLS_FSAN_APPEND));
  if (with_loopback_ip)
    check_gnutls (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_IPADDRESS, loopback,
                                                        sizeof loopback, GNUTLS_FSAN_APPEND));
}

static void
test_cert_make (TestCert *cert,
                const char *dir,
                const char *dns_name,
                gboolean with_loopback_ip,
                gboolean expired,
                const char *file)
{
  gnutls_x509_privkey_t key;
  gnutls_x509_crt_t crt;
  gnutls_datum_t datum = { NULL, 0 };
  g_autofree char *cert_pem = NULL;
  g_autofree char *key_pem = NULL;
  g_autofree char *both = NULL;
  g_autoptr (GError) error = NULL;
  time_t now = time (NULL);
  guint8 serial[8] = { 1 };

  check_gnutls (gnutls_x509_privkey_init (&key));
  check_gnutls (gnutls_x509_privkey_generate (
      key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0));
  check_gnutls (gnutls_x509_crt_init (&crt));
  check_gnutls (gnutls_x509_crt_set_version (crt, 3));
  serial[1] = (guint8) g_random_int ();
  check_gnutls (gnutls_x509_crt_set_serial (crt, serial, sizeof serial));
  check_gnutls (gnutls_x509_crt_set_activation_time (crt, now - (expired ? 2 * 86400 : 3600)));
  check_gnutls (gnutls_x509_crt_set_expiration_time (crt, expired ? now - 86400 : now + 86400));
  set_identity (crt, dns_name, with_loopback_ip);
  check_gnutls (gnutls_x509_crt_set_key (crt, key));
  check_gnutls (gnutls_x509_crt_set_basic_constraints (crt, 1, -1));
  check_gnutls (
      gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN));
  check_gnutls (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0));
  check_gnutls (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0));

  check_gnutls (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &datum));
  cert_pem = datum_to_string (&datum);
  check_gnutls (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                   GNUTLS_PKCS_PLAIN, &datum));
  key_pem = datum_to_string (&datum);
  cert->fingerprint = der_fingerprint (crt);
  gnutls_x509_crt_deinit (crt);
  gnutls_x509_privkey_deinit (key);

  both = g_strconcat (cert_pem, key_pem, NULL);
  cert->certificate = g_tls_certificate_new_from_pem (both, -1, &error);
  g_assert_no_error (error);
  cert->ca_file = g_build_filename (dir, file, NULL);
  g_file_set_contents (cert->ca_file, cert_pem, -1, &error);
  g_assert_no_error (error);
}

static void
test_cert_clear (TestCert *cert)
{
  g_clear_object (&cert->certificate);
  if (cert->ca_file != NULL)
    g_unlink (cert->ca_file);
  g_clear_pointer (&cert->ca_file, g_free);
  g_clear_pointer (&cert->fingerprint, g_free);
}

void
test_certs_make (TestCerts *certs)
{
  g_autoptr (GError) error = NULL;

  certs->dir = g_dir_make_tmp ("outbox-test-certs-XXXXXX", &error);
  g_assert_no_error (error);
  test_cert_make (&certs->localhost, certs->dir, "localhost", TRUE, FALSE, "localhost.pem");
  test_cert_make (&certs->other, certs->dir, "other.example", FALSE, FALSE, "other.pem");
  test_cert_make (&certs->expired, certs->dir, "localhost", TRUE, TRUE, "expired.pem");
}

void
test_certs_clear (TestCerts *certs)
{
  test_cert_clear (&certs->localhost);
  test_cert_clear (&certs->other);
  test_cert_clear (&certs->expired);
  if (certs->dir != NULL)
    g_rmdir (certs->dir);
  g_clear_pointer (&certs->dir, g_free);
}

/* The fake server --------------------------------------------------------- */

void
fake_server_send (FakeServer *server, const char *text)
{
  g_output_stream_write_all (g_io_stream_get_output_stream (server->stream), text, strlen (text),
                             NULL, NULL, NULL);
}

static void
fake_server_use_stream (FakeServer *server, GIOStream *stream)
{
  g_set_object (&server->stream, stream);
  g_clear_object (&server->input);
  server->input = g_data_input_stream_new (g_io_stream_get_input_stream (stream));
  /* The plain stream goes on under TLS: dropping its reader must not close it. */
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (server->input), FALSE);
  g_data_input_stream_set_newline_type (server->input, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
}

/* One line without its CR LF, not recorded; NULL at the end of the stream. */
char *
fake_server_read_line (FakeServer *server, gsize *length)
{
  return g_data_input_stream_read_line (server->input, length, NULL, NULL);
}

void
fake_server_record (FakeServer *server, const char *command)
{
  gsize available = g_buffered_input_stream_get_available (G_BUFFERED_INPUT_STREAM (server->input));

  g_ptr_array_add (server->commands, g_strdup (command));
  g_array_append_val (server->buffered_after, available);
}

gboolean
fake_server_start_tls (FakeServer *server)
{
  g_autoptr (GIOStream) tls = NULL;

  tls = g_tls_server_connection_new (server->stream, server->certificate, NULL);
  if (tls == NULL || !g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, NULL))
    return FALSE;
  fake_server_use_stream (server, tls);
  server->tls_up = TRUE;
  return TRUE;
}

static char *
fake_server_read_command (FakeServer *server)
{
  if (server->protocol->read_command != NULL)
    return server->protocol->read_command (server);
  return fake_server_read_line (server, NULL);
}

static void
fake_server_converse (FakeServer *server)
{
  if (server->implicit_tls && !fake_server_start_tls (server))
    return;
  if (g_strcmp0 (server->hang_on, "CONNECT") != 0)
    fake_server_send (server,
                      server->greeting != NULL ? server->greeting : server->protocol->greeting);
  for (;;)
    {
      g_autofree char *command = fake_server_read_command (server);

      if (command == NULL)
        return;
      fake_server_record (server, command);
      if (!server->protocol->handle (server, command))
        return;
    }
}

static gpointer
fake_server_run (gpointer user_data)
{
  FakeServer *server = user_data;
  g_autoptr (GSocketConnection) connection = NULL;

  connection = g_socket_listener_accept (server->listener, NULL, server->cancellable, NULL);
  if (connection == NULL)
    return NULL;
  fake_server_use_stream (server, G_IO_STREAM (connection));
  fake_server_converse (server);
  g_io_stream_close (server->stream, NULL, NULL);
  g_clear_object (&server->input);
  g_clear_object (&server->stream);
  return NULL;
}

/* A listener on a free port of 127.0.0.1, which goes to @out_port. */
GSocketListener *
listen_on_loopback (guint16 *out_port)
{
  GSocketListener *listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) effective = NULL;
  g_autoptr (GError) error = NULL;

  g_socket_listener_add_address (listener, address, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                 NULL, &effective, &error);
  g_assert_no_error (error);
  *out_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  return listener;
}

/* @script is the protocol's, for its functions to find in server->script. */
void
fake_server_start (FakeServer *server, const FakeProtocol *protocol, gpointer script)
{
  server->protocol = protocol;
  server->script = script;
  server->listener = listen_on_loopback (&server->port);
  server->cancellable = g_cancellable_new ();
  server->commands = g_ptr_array_new_with_free_func (g_free);
  server->buffered_after = g_array_new (FALSE, FALSE, sizeof (gsize));
  server->thread = g_thread_new (protocol->name, fake_server_run, server);
}

/* @url_format parsed with the server's port in place of its %u. */
OutboxServerUrl *
fake_server_url (FakeServer *server, const char *url_format)
{
  g_autofree char *url_text = NULL;
  g_autoptr (GError) error = NULL;
  OutboxServerUrl *url;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  url_text = g_strdup_printf (url_format, server->port);
#pragma GCC diagnostic pop
  url = outbox_server_url_parse (url_text, &error);
  g_assert_no_error (error);
  return url;
}

/* Waits for the conversation to end: the session must be closed first. */
void
fake_server_stop (FakeServer *server)
{
  if (server->thread == NULL)
    return;
  g_cancellable_cancel (server->cancellable);
  g_thread_join (g_steal_pointer (&server->thread));
}

void
fake_server_clear (FakeServer *server)
{
  fake_server_stop (server);
  g_clear_object (&server->listener);
  g_clear_object (&server->cancellable);
  g_clear_pointer (&server->commands, g_ptr_array_unref);
  g_clear_pointer (&server->buffered_after, g_array_unref);
}

void
fake_server_assert_commands (FakeServer *server, const char *const *expected)
{
  guint n_expected = g_strv_length ((char **) expected);

  for (guint i = 0; i < MIN (n_expected, server->commands->len); i++)
    g_assert_cmpstr (g_ptr_array_index (server->commands, i), ==, expected[i]);
  g_assert_cmpuint (server->commands->len, ==, n_expected);
}

gboolean
fake_server_received (FakeServer *server, const char *prefix)
{
  for (guint i = 0; i < server->commands->len; i++)
    {
      if (g_str_has_prefix (g_ptr_array_index (server->commands, i), prefix))
        return TRUE;
    }
  return FALSE;
}

/* Asynchronous calls ------------------------------------------------------ */

void
store_result (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
}

GAsyncResult *
wait_for (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

gboolean
cancel_soon (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* The log ------------------------------------------------------------------- */

static GPtrArray *captured_logs;

GLogWriterOutput
log_capture_writer (GLogLevelFlags level,
                    const GLogField *fields,
                    gsize n_fields,
                    gpointer user_data)
{
  for (gsize i = 0; captured_logs != NULL && i < n_fields; i++)
    {
      if (g_str_equal (fields[i].key, "MESSAGE"))
        g_ptr_array_add (captured_logs, g_strdup (fields[i].value));
    }
  return g_log_writer_default (level, fields, n_fields, user_data);
}

void
log_capture_start (void)
{
  g_clear_pointer (&captured_logs, g_ptr_array_unref);
  captured_logs = g_ptr_array_new_with_free_func (g_free);
}

void
log_capture_stop (void)
{
  g_clear_pointer (&captured_logs, g_ptr_array_unref);
}

gboolean
logs_contain (const char *needle)
{
  for (guint i = 0; i < captured_logs->len; i++)
    {
      if (strstr (g_ptr_array_index (captured_logs, i), needle) != NULL)
        return TRUE;
    }
  return FALSE;
}
