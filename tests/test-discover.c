/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <string.h>

#include "outbox-discover.h"
#include "outbox-error.h"
#include "outbox-url.h"

#define ADDRESS "me@example.org"

/* Autoconfig documents ---------------------------------------------------- */

#define CONFIG_HEAD                                                                                \
  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"                                                   \
  "<clientConfig version=\"1.1\">\n"                                                               \
  " <emailProvider id=\"example.org\">\n"                                                          \
  "  <domain>example.org</domain>\n"                                                               \
  "  <displayName>Example Mail</displayName>\n"
#define CONFIG_TAIL                                                                                \
  " </emailProvider>\n"                                                                            \
  "</clientConfig>\n"
#define SERVER(element, type, host, port, socket, user)                                            \
  "  <" element " type=\"" type "\">\n"                                                            \
  "   <hostname>" host "</hostname>\n"                                                             \
  "   <port>" port "</port>\n"                                                                     \
  "   <socketType>" socket "</socketType>\n"                                                       \
  "   <username>" user "</username>\n"                                                             \
  "   <authentication>password-cleartext</authentication>\n"                                       \
  "  </" element ">\n"
#define SMTP(host, port, socket, user) SERVER ("outgoingServer", "smtp", host, port, socket, user)
#define IMAP(host, port, socket, user) SERVER ("incomingServer", "imap", host, port, socket, user)
#define POP3(host, port, socket, user) SERVER ("incomingServer", "pop3", host, port, socket, user)

/* A plain, valid document: what the HTTP server and ISP files serve. */
#define GOOD_CONFIG(host)                                                                          \
  CONFIG_HEAD                                                                                      \
  IMAP (host, "993", "SSL", "%EMAILADDRESS%")                                                      \
  SMTP (host, "465", "SSL", "%EMAILADDRESS%")                                                      \
  CONFIG_TAIL

/* A fake resolver ----------------------------------------------------------
 *
 * Answers SRV queries from canned lists and resolves every "*.test" host
 * name to 127.0.0.1, recording each question. */

#define FAKE_TYPE_RESOLVER (fake_resolver_get_type ())
G_DECLARE_FINAL_TYPE (FakeResolver, fake_resolver, FAKE, RESOLVER, GResolver)

struct _FakeResolver
{
  GResolver parent_instance;

  GHashTable *services; /* rrname -> GList of GSrvTarget */
  GPtrArray *questions; /* rrnames and host names asked, in order */
};

G_DEFINE_TYPE (FakeResolver, fake_resolver, G_TYPE_RESOLVER)

static void
free_srv_targets (gpointer targets)
{
  g_list_free_full (targets, (GDestroyNotify) g_srv_target_free);
}

static gpointer
copy_srv_target (gconstpointer target, gpointer user_data)
{
  return g_srv_target_copy ((GSrvTarget *) target);
}

static void
free_inet_addresses (gpointer addresses)
{
  g_list_free_full (addresses, g_object_unref);
}

static GList *
fake_lookup_service (GResolver *resolver,
                     const char *rrname,
                     GCancellable *cancellable,
                     GError **error)
{
  FakeResolver *self = FAKE_RESOLVER (resolver);
  GList *targets = g_hash_table_lookup (self->services, rrname);

  g_ptr_array_add (self->questions, g_strdup (rrname));
  if (targets == NULL)
    {
      g_set_error (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND, "No SRV record for %s",
                   rrname);
      return NULL;
    }
  return g_list_copy_deep (targets, copy_srv_target, NULL);
}

static void
fake_lookup_service_async (GResolver *resolver,
                           const char *rrname,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (resolver, cancellable, callback, user_data);
  GError *error = NULL;
  GList *targets = fake_lookup_service (resolver, rrname, cancellable, &error);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, targets, free_srv_targets);
}

static GList *
fake_lookup_finish (GResolver *resolver, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GList *
fake_lookup_by_name_with_flags (GResolver *resolver,
                                const char *hostname,
                                GResolverNameLookupFlags flags,
                                GCancellable *cancellable,
                                GError **error)
{
  FakeResolver *self = FAKE_RESOLVER (resolver);

  g_ptr_array_add (self->questions, g_strdup (hostname));
  if (!g_str_has_suffix (hostname, ".test") || flags == G_RESOLVER_NAME_LOOKUP_FLAGS_IPV6_ONLY)
    {
      g_set_error (error, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND, "No address for %s",
                   hostname);
      return NULL;
    }
  return g_list_prepend (NULL, g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4));
}

static GList *
fake_lookup_by_name (GResolver *resolver,
                     const char *hostname,
                     GCancellable *cancellable,
                     GError **error)
{
  return fake_lookup_by_name_with_flags (resolver, hostname, G_RESOLVER_NAME_LOOKUP_FLAGS_DEFAULT,
                                         cancellable, error);
}

static void
fake_lookup_by_name_with_flags_async (GResolver *resolver,
                                      const char *hostname,
                                      GResolverNameLookupFlags flags,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (resolver, cancellable, callback, user_data);
  GError *error = NULL;
  GList *addresses =
      fake_lookup_by_name_with_flags (resolver, hostname, flags, cancellable, &error);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, addresses, free_inet_addresses);
}

static void
fake_lookup_by_name_async (GResolver *resolver,
                           const char *hostname,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  fake_lookup_by_name_with_flags_async (resolver, hostname, G_RESOLVER_NAME_LOOKUP_FLAGS_DEFAULT,
                                        cancellable, callback, user_data);
}

static void
fake_resolver_finalize (GObject *object)
{
  FakeResolver *self = FAKE_RESOLVER (object);

  g_hash_table_unref (self->services);
  g_ptr_array_unref (self->questions);
  G_OBJECT_CLASS (fake_resolver_parent_class)->finalize (object);
}

static void
fake_resolver_class_init (FakeResolverClass *klass)
{
  GResolverClass *resolver_class = G_RESOLVER_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = fake_resolver_finalize;
  resolver_class->lookup_service = fake_lookup_service;
  resolver_class->lookup_service_async = fake_lookup_service_async;
  resolver_class->lookup_service_finish = fake_lookup_finish;
  resolver_class->lookup_by_name = fake_lookup_by_name;
  resolver_class->lookup_by_name_async = fake_lookup_by_name_async;
  resolver_class->lookup_by_name_finish = fake_lookup_finish;
  resolver_class->lookup_by_name_with_flags = fake_lookup_by_name_with_flags;
  resolver_class->lookup_by_name_with_flags_async = fake_lookup_by_name_with_flags_async;
  resolver_class->lookup_by_name_with_flags_finish = fake_lookup_finish;
}

static void
fake_resolver_init (FakeResolver *self)
{
  self->services = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, free_srv_targets);
  self->questions = g_ptr_array_new_with_free_func (g_free);
}

/* Adds one SRV record for _SERVICE._tcp.example.org. */
static void
fake_resolver_add (FakeResolver *self,
                   const char *service,
                   const char *target,
                   guint16 port,
                   guint16 priority,
                   guint16 weight)
{
  g_autofree char *rrname = g_strdup_printf ("_%s._tcp.example.org", service);
  g_autofree char *old_rrname = NULL;
  GList *targets = NULL;

  g_hash_table_steal_extended (self->services, rrname, (gpointer *) &old_rrname,
                               (gpointer *) &targets);
  targets = g_list_append (targets, g_srv_target_new (target, port, priority, weight));
  g_hash_table_insert (self->services, g_steal_pointer (&rrname), targets);
}

static gboolean
fake_resolver_was_asked (FakeResolver *self, const char *question)
{
  return g_ptr_array_find_with_equal_func (self->questions, question, g_str_equal, NULL);
}

/* The fixture: resolver, web server, ISP directory --------------------------- */

typedef struct
{
  guint status;
  char *body; /* (nullable) */
  gsize body_len;
  char *location; /* (nullable) Location header */
  gboolean hang;  /* never answer */
} Response;

static void
response_free (Response *response)
{
  g_free (response->body);
  g_free (response->location);
  g_free (response);
}

typedef struct
{
  FakeResolver *resolver;
  GSocketService *http_service;
  guint16 http_port;
  char *base_url;             /* "http://127.0.0.1:PORT" */
  GHashTable *responses;      /* path -> Response */
  GPtrArray *exchanges;       /* HttpExchange still open */
  GPtrArray *requested_paths; /* in order */
  char *last_query;           /* (nullable) */
  gboolean saw_credentials;   /* a request had Authorization or Cookie */
  GPtrArray *urls;            /* autoconfig URL templates, NULL-terminated */
  char *isp_dir;
  gboolean allow_http;
  guint http_timeout;

  gboolean done;
  GVariant *result;
  GError *error;
} Fixture;

/* The web server ------------------------------------------------------------
 *
 * A small HTTP/1.1 peer on a GSocketService: reads the request head, notes
 * its path, query and any credential, answers from f->responses and closes
 * (or never answers, for a "hang" response). */

typedef struct
{
  Fixture *fixture;
  GSocketConnection *connection; /* (owned) */
  GDataInputStream *input;       /* (owned) */
  GCancellable *cancellable;     /* (owned) */
  gboolean has_request_line;
  char *path;    /* (owned) (nullable) */
  GBytes *reply; /* (owned) (nullable) being written */
  gboolean idle; /* nothing pending: a hanging exchange */
} HttpExchange;

static void
http_exchange_free (HttpExchange *exchange)
{
  g_ptr_array_remove (exchange->fixture->exchanges, exchange);
  g_object_unref (exchange->connection);
  g_object_unref (exchange->input);
  g_object_unref (exchange->cancellable);
  g_free (exchange->path);
  g_clear_pointer (&exchange->reply, g_bytes_unref);
  g_free (exchange);
}

static GBytes *
format_reply (const Response *response)
{
  GString *reply = g_string_new (NULL);

  g_string_append_printf (reply, "HTTP/1.1 %u %s\r\n", response->status,
                          soup_status_get_phrase (response->status));
  g_string_append_printf (reply, "Content-Length: %" G_GSIZE_FORMAT "\r\n", response->body_len);
  g_string_append (reply, "Content-Type: application/xml\r\nConnection: close\r\n");
  g_string_append (reply, "Set-Cookie: session=secret; Path=/\r\n");
  if (response->location != NULL)
    g_string_append_printf (reply, "Location: %s\r\n", response->location);
  if (response->status == SOUP_STATUS_UNAUTHORIZED)
    g_string_append (reply, "WWW-Authenticate: Basic realm=\"mail\"\r\n");
  g_string_append (reply, "\r\n");
  if (response->body != NULL)
    g_string_append_len (reply, response->body, (gssize) response->body_len);

  return g_string_free_to_bytes (reply);
}

static void
on_reply_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  http_exchange_free (user_data);
}

static void
send_reply (HttpExchange *exchange)
{
  static const Response not_found = { SOUP_STATUS_NOT_FOUND, NULL, 0, NULL, FALSE };
  const Response *response = g_hash_table_lookup (exchange->fixture->responses, exchange->path);
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (exchange->connection));

  if (response == NULL)
    response = &not_found;
  if (response->hang)
    {
      exchange->idle = TRUE;
      return;
    }

  exchange->reply = format_reply (response);
  g_output_stream_write_all_async (output, g_bytes_get_data (exchange->reply, NULL),
                                   g_bytes_get_size (exchange->reply), G_PRIORITY_DEFAULT,
                                   exchange->cancellable, on_reply_written, exchange);
}

static void
note_request_line (HttpExchange *exchange, const char *line)
{
  Fixture *f = exchange->fixture;
  g_auto (GStrv) words = g_strsplit (line, " ", 3);
  g_auto (GStrv) target = NULL;

  g_assert_cmpuint (g_strv_length (words), ==, 3);
  target = g_strsplit (words[1], "?", 2);
  exchange->path = g_strdup (target[0]);
  g_ptr_array_add (f->requested_paths, g_strdup (target[0]));
  g_free (f->last_query);
  f->last_query = g_strdup (target[1]);
  exchange->has_request_line = TRUE;
}

static void read_request_line (HttpExchange *exchange);

static void
on_request_line (GObject *source, GAsyncResult *result, gpointer user_data)
{
  HttpExchange *exchange = user_data;
  g_autofree char *line = NULL;

  line = g_data_input_stream_read_line_finish (exchange->input, result, NULL, NULL);
  if (line == NULL)
    {
      http_exchange_free (exchange);
      return;
    }

  if (!exchange->has_request_line)
    note_request_line (exchange, line);
  else if (line[0] == '\0')
    {
      send_reply (exchange);
      return;
    }
  else if (g_ascii_strncasecmp (line, "Authorization:", 14) == 0 ||
           g_ascii_strncasecmp (line, "Cookie:", 7) == 0)
    exchange->fixture->saw_credentials = TRUE;

  read_request_line (exchange);
}

static void
read_request_line (HttpExchange *exchange)
{
  g_data_input_stream_read_line_async (exchange->input, G_PRIORITY_DEFAULT, exchange->cancellable,
                                       on_request_line, exchange);
}

static gboolean
on_incoming (GSocketService *service,
             GSocketConnection *connection,
             GObject *source_object,
             gpointer user_data)
{
  Fixture *f = user_data;
  HttpExchange *exchange = g_new0 (HttpExchange, 1);
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (connection));

  exchange->fixture = f;
  exchange->connection = g_object_ref (connection);
  exchange->input = g_data_input_stream_new (input);
  g_data_input_stream_set_newline_type (exchange->input, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
  exchange->cancellable = g_cancellable_new ();
  g_ptr_array_add (f->exchanges, exchange);
  read_request_line (exchange);
  return TRUE;
}

static void
start_http_service (Fixture *f)
{
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  f->http_service = g_socket_service_new ();
  g_socket_listener_add_address (G_SOCKET_LISTENER (f->http_service), any_port,
                                 G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  f->http_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  f->base_url = g_strdup_printf ("http://127.0.0.1:%u", f->http_port);
  g_signal_connect (f->http_service, "incoming", G_CALLBACK (on_incoming), f);
  g_socket_service_start (f->http_service);
}

/* Ends every exchange: hanging ones at once, the others once their
 * cancelled read or write has returned. */
static void
stop_http_service (Fixture *f)
{
  g_socket_service_stop (f->http_service);
  g_socket_listener_close (G_SOCKET_LISTENER (f->http_service));
  g_clear_object (&f->http_service);

  for (guint i = f->exchanges->len; i > 0; i--)
    {
      HttpExchange *exchange = g_ptr_array_index (f->exchanges, i - 1);

      if (exchange->idle)
        http_exchange_free (exchange);
      else
        g_cancellable_cancel (exchange->cancellable);
    }
  while (f->exchanges->len > 0)
    g_main_context_iteration (NULL, TRUE);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->resolver = g_object_new (FAKE_TYPE_RESOLVER, NULL);
  f->responses =
      g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) response_free);
  f->exchanges = g_ptr_array_new ();
  f->requested_paths = g_ptr_array_new_with_free_func (g_free);
  f->urls = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (f->urls, NULL);
  f->allow_http = TRUE;
  start_http_service (f);

  f->isp_dir = g_dir_make_tmp ("outbox-discover-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (f->isp_dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (f->isp_dir, name, NULL);

      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (f->isp_dir), ==, 0);
  g_free (f->isp_dir);

  stop_http_service (f);
  g_ptr_array_unref (f->exchanges);
  g_free (f->base_url);
  g_hash_table_unref (f->responses);
  g_ptr_array_unref (f->requested_paths);
  g_free (f->last_query);
  g_ptr_array_unref (f->urls);
  g_clear_object (&f->resolver);
  g_clear_pointer (&f->result, g_variant_unref);
  g_clear_error (&f->error);
}

static Response *
serve (Fixture *f, const char *path, guint status, const char *body)
{
  Response *response = g_new0 (Response, 1);

  response->status = status;
  response->body = g_strdup (body);
  response->body_len = body != NULL ? strlen (body) : 0;
  g_hash_table_replace (f->responses, g_strdup (path), response);
  return response;
}

static void
add_url (Fixture *f, const char *url)
{
  g_ptr_array_insert (f->urls, (gint) f->urls->len - 1, g_strdup (url));
}

/* Adds @path on the test server to the autoconfig URLs. */
static void
add_served_url (Fixture *f, const char *path)
{
  g_autofree char *url = g_strconcat (f->base_url, path, NULL);

  add_url (f, url);
}

static void
write_isp_file (Fixture *f, const char *domain, const char *xml)
{
  g_autofree char *name = g_strconcat (domain, ".xml", NULL);
  g_autofree char *path = g_build_filename (f->isp_dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, xml, -1, &error);
  g_assert_no_error (error);
}

static guint
count_requests (Fixture *f, const char *path)
{
  guint count = 0;

  for (guint i = 0; i < f->requested_paths->len; i++)
    {
      if (strcmp (g_ptr_array_index (f->requested_paths, i), path) == 0)
        count++;
    }
  return count;
}

static void
on_discovered (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *f = user_data;

  f->result = outbox_discover_finish (result, &f->error);
  f->done = TRUE;
}

static void
start_discover (Fixture *f, const char *address, GCancellable *cancellable)
{
  OutboxDiscoverSources sources = {
    .resolver = G_RESOLVER (f->resolver),
    .autoconfig_urls = (const char *const *) f->urls->pdata,
    .isp_dir = f->isp_dir,
    .allow_http = f->allow_http,
    .http_timeout = f->http_timeout,
  };

  f->done = FALSE;
  outbox_discover_async (address, &sources, cancellable, on_discovered, f);
}

static void
wait_for_discover (Fixture *f)
{
  while (!f->done)
    g_main_context_iteration (NULL, TRUE);
}

/* Runs a discovery that must succeed. */
static void
discover (Fixture *f, const char *address)
{
  start_discover (f, address, NULL);
  wait_for_discover (f);
  g_assert_no_error (f->error);
  g_assert_nonnull (f->result);
}

static char *
lookup_string (GVariant *dict, const char *key)
{
  char *value = NULL;

  if (dict != NULL)
    g_variant_lookup (dict, key, "s", &value);
  return value;
}

static void
assert_string (GVariant *dict, const char *key, const char *expected)
{
  g_autofree char *value = lookup_string (dict, key);

  g_assert_cmpstr (value, ==, expected);
}

/* Every URL proposed parses, with the protocol of its key. */
static void
assert_proposal_sound (GVariant *dict)
{
  static const char *const keys[] = { "smtp", "imap", "pop3" };
  static const OutboxProtocol protocols[] = {
    OUTBOX_PROTOCOL_SMTP,
    OUTBOX_PROTOCOL_IMAP,
    OUTBOX_PROTOCOL_POP3,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree char *text = lookup_string (dict, keys[i]);
      g_autoptr (OutboxServerUrl) url = NULL;
      g_autoptr (GError) error = NULL;

      if (text == NULL)
        continue;
      url = outbox_server_url_parse (text, &error);
      g_assert_no_error (error);
      g_assert_cmpint (url->protocol, ==, protocols[i]);
      g_assert_false (url->security == OUTBOX_SECURITY_INSECURE && url->user != NULL);
    }
}

/* The address ---------------------------------------------------------------- */

static void
test_address_invalid (Fixture *f, gconstpointer data)
{
  start_discover (f, "me\r\nRCPT TO:<x>@example.org", NULL);
  wait_for_discover (f);

  g_assert_error (f->error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS);
  g_assert_cmpuint (f->resolver->questions->len, ==, 0);
}

static void
test_address_literal (Fixture *f, gconstpointer data)
{
  start_discover (f, "me@[192.0.2.1]", NULL);
  wait_for_discover (f);

  g_assert_error (f->error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS);
}

/* SRV records ---------------------------------------------------------------- */

static void
test_srv_found (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submissions", "smtp.example.org", 465, 0, 1);
  fake_resolver_add (f->resolver, "imaps", "imap.example.org", 993, 0, 1);
  fake_resolver_add (f->resolver, "pop3s", "pop.example.org", 995, 0, 1);

  discover (f, ADDRESS);

  assert_string (f->result, "address", ADDRESS);
  assert_string (f->result, "source", "dns-srv");
  assert_string (f->result, "smtp", "smtps://me%40example.org@smtp.example.org:465");
  assert_string (f->result, "imap", "imaps://me%40example.org@imap.example.org:993");
  assert_string (f->result, "pop3", "pop3s://me%40example.org@pop.example.org:995");
  assert_string (f->result, "username", ADDRESS);
}

static void
test_srv_questions (Fixture *f, gconstpointer data)
{
  static const char *const expected[] = {
    "_submissions._tcp.example.org", "_submission._tcp.example.org", "_imaps._tcp.example.org",
    "_imap._tcp.example.org",        "_pop3s._tcp.example.org",      "_pop3._tcp.example.org",
  };

  fake_resolver_add (f->resolver, "submissions", "smtp.example.org", 465, 0, 1);
  discover (f, "me@Example.ORG");

  for (gsize i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_true (fake_resolver_was_asked (f->resolver, expected[i]));
}

static void
test_srv_implicit_tls_preferred (Fixture *f, gconstpointer data)
{
  /* The STARTTLS services have the better priority: implicit TLS still
   * wins (RFC 8314 section 5.1). */
  fake_resolver_add (f->resolver, "submission", "smtp.example.org", 587, 0, 1);
  fake_resolver_add (f->resolver, "submissions", "smtp.example.org", 465, 10, 1);
  fake_resolver_add (f->resolver, "imap", "imap.example.org", 143, 0, 1);
  fake_resolver_add (f->resolver, "imaps", "imap.example.org", 993, 10, 1);

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtps://me%40example.org@smtp.example.org:465");
  assert_string (f->result, "imap", "imaps://me%40example.org@imap.example.org:993");
}

static void
test_srv_starttls (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submission", "smtp.example.org", 587, 0, 1);
  fake_resolver_add (f->resolver, "imap", "imap.example.org", 143, 0, 1);

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtp://me%40example.org@smtp.example.org:587");
  assert_string (f->result, "imap", "imap://me%40example.org@imap.example.org:143");
}

static void
test_srv_dot_target (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submissions", ".", 0, 0, 0);
  fake_resolver_add (f->resolver, "submission", "smtp.example.org", 587, 0, 1);
  fake_resolver_add (f->resolver, "imaps", ".", 993, 0, 0);

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtp://me%40example.org@smtp.example.org:587");
  assert_string (f->result, "imap", NULL);
}

static void
test_srv_priority (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submissions", "backup.example.org", 465, 20, 100);
  fake_resolver_add (f->resolver, "submissions", "light.example.org", 465, 10, 10);
  fake_resolver_add (f->resolver, "submissions", "heavy.example.org", 4650, 10, 50);

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtps://me%40example.org@heavy.example.org:4650");
}

static void
test_srv_trailing_dot (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submissions", "smtp.example.org.", 465, 0, 1);

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtps://me%40example.org@smtp.example.org:465");
}

static void
test_srv_bad_target_skipped (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submissions", "evil.example\r\nX:", 465, 0, 1);
  fake_resolver_add (f->resolver, "submissions", "attacker@evil.example", 465, 1, 1);
  fake_resolver_add (f->resolver, "submissions", "smtp.example.org", 465, 2, 1);

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtps://me%40example.org@smtp.example.org:465");
}

static void
test_srv_without_smtp_falls_through (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "imaps", "imap.example.org", 993, 0, 1);
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, ADDRESS);

  assert_string (f->result, "source", "isp-file");
  assert_string (f->result, "imap", "imaps://me%40example.org@isp.example.org:993");
}

/* The order of the sources ------------------------------------------------------ */

static void
test_order_srv_first (Fixture *f, gconstpointer data)
{
  fake_resolver_add (f->resolver, "submissions", "smtp.example.org", 465, 0, 1);
  serve (f, "/autoconfig", SOUP_STATUS_OK, GOOD_CONFIG ("web.example.org"));
  add_served_url (f, "/autoconfig");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, ADDRESS);

  assert_string (f->result, "source", "dns-srv");
  g_assert_cmpuint (f->requested_paths->len, ==, 0);
}

static void
test_order_autoconfig_before_isp_file (Fixture *f, gconstpointer data)
{
  serve (f, "/autoconfig", SOUP_STATUS_OK, GOOD_CONFIG ("web.example.org"));
  add_served_url (f, "/autoconfig");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, ADDRESS);

  assert_string (f->result, "source", "autoconfig");
  assert_string (f->result, "smtp", "smtps://me%40example.org@web.example.org:465");
}

/* Autoconfig over HTTP(S) --------------------------------------------------------- */

static void
test_autoconfig_found (Fixture *f, gconstpointer data)
{
  serve (f, "/mail/config-v1.1.xml", SOUP_STATUS_OK,
         CONFIG_HEAD IMAP ("imap.%EMAILDOMAIN%", "993", "SSL", "%EMAILLOCALPART%")
             POP3 ("pop.example.org", "995", "SSL", "%EMAILLOCALPART%")
                 SMTP ("smtp.%EMAILDOMAIN%", "465", "SSL", "%EMAILLOCALPART%") CONFIG_TAIL);
  add_served_url (f, "/mail/config-v1.1.xml?emailaddress=%EMAIL%");

  discover (f, ADDRESS);

  assert_string (f->result, "address", ADDRESS);
  assert_string (f->result, "source", "autoconfig");
  assert_string (f->result, "smtp", "smtps://me@smtp.example.org:465");
  assert_string (f->result, "imap", "imaps://me@imap.example.org:993");
  assert_string (f->result, "pop3", "pop3s://me@pop.example.org:995");
  assert_string (f->result, "username", "me");
}

static void
test_autoconfig_address_encoded (Fixture *f, gconstpointer data)
{
  serve (f, "/mail/config-v1.1.xml", SOUP_STATUS_OK, GOOD_CONFIG ("mail.example.org"));
  add_served_url (f, "/mail/config-v1.1.xml?emailaddress=%EMAIL%");

  discover (f, "me+tag&x=1@example.org");

  g_assert_cmpstr (f->last_query, ==, "emailaddress=me%2Btag%26x%3D1%40example.org");
}

static void
test_autoconfig_next_url (Fixture *f, gconstpointer data)
{
  serve (f, "/second", SOUP_STATUS_OK, GOOD_CONFIG ("second.example.org"));
  add_served_url (f, "/missing");
  add_served_url (f, "/second");

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtps://me%40example.org@second.example.org:465");
  g_assert_cmpuint (count_requests (f, "/missing"), ==, 1);
}

static void
test_autoconfig_no_credentials (Fixture *f, gconstpointer data)
{
  g_autofree char *with_credentials = g_strdup_printf ("http://user:password@%s/with-credentials",
                                                       f->base_url + strlen ("http://"));

  serve (f, "/with-credentials", SOUP_STATUS_OK, GOOD_CONFIG ("evil.example"));
  serve (f, "/protected", SOUP_STATUS_UNAUTHORIZED, "no");
  serve (f, "/open", SOUP_STATUS_OK, GOOD_CONFIG ("mail.example.org"));
  add_url (f, with_credentials);
  add_served_url (f, "/protected");
  add_served_url (f, "/open");

  discover (f, ADDRESS);

  assert_string (f->result, "smtp", "smtps://me%40example.org@mail.example.org:465");
  g_assert_cmpuint (count_requests (f, "/with-credentials"), ==, 0);
  g_assert_cmpuint (count_requests (f, "/protected"), ==, 1);
  g_assert_false (f->saw_credentials);
}

static void
test_autoconfig_body_cap (Fixture *f, gconstpointer data)
{
  g_autofree char *padding = g_strnfill (OUTBOX_DISCOVER_MAX_DOCUMENT, ' ');
  g_autofree char *body =
      g_strconcat (CONFIG_HEAD, padding, SMTP ("web.example.org", "465", "SSL", "%EMAILADDRESS%"),
                   CONFIG_TAIL, NULL);

  serve (f, "/big", SOUP_STATUS_OK, body);
  add_served_url (f, "/big");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, ADDRESS);

  g_assert_cmpuint (count_requests (f, "/big"), ==, 1);
  assert_string (f->result, "source", "isp-file");
}

static void
test_autoconfig_under_cap (Fixture *f, gconstpointer data)
{
  const char *document = GOOD_CONFIG ("web.example.org");
  g_autofree char *padding = g_strnfill (OUTBOX_DISCOVER_MAX_DOCUMENT - strlen (document), ' ');
  g_autofree char *body = g_strconcat (document, padding, NULL);

  g_assert_cmpuint (strlen (body), ==, OUTBOX_DISCOVER_MAX_DOCUMENT);
  serve (f, "/large", SOUP_STATUS_OK, body);
  add_served_url (f, "/large");

  discover (f, ADDRESS);

  assert_string (f->result, "source", "autoconfig");
}

static guint16
closed_loopback_port (void)
{
  g_autoptr (GSocket) socket = NULL;
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (socket, any_port, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
test_autoconfig_unreachable (Fixture *f, gconstpointer data)
{
  g_autofree char *url =
      g_strdup_printf ("http://127.0.0.1:%u/mail/config-v1.1.xml", closed_loopback_port ());

  add_url (f, url);
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, ADDRESS);

  assert_string (f->result, "source", "isp-file");
}

static void
test_autoconfig_timeout (Fixture *f, gconstpointer data)
{
  gint64 start = g_get_monotonic_time ();

  serve (f, "/hang", 0, NULL)->hang = TRUE;
  add_served_url (f, "/hang");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));
  f->http_timeout = 1;

  discover (f, ADDRESS);

  assert_string (f->result, "source", "isp-file");
  g_assert_cmpuint (count_requests (f, "/hang"), ==, 1);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
}

static void
test_autoconfig_http_refused (Fixture *f, gconstpointer data)
{
  serve (f, "/autoconfig", SOUP_STATUS_OK, GOOD_CONFIG ("web.example.org"));
  add_served_url (f, "/autoconfig");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));
  f->allow_http = FALSE;

  discover (f, ADDRESS);

  g_assert_cmpuint (f->requested_paths->len, ==, 0);
  assert_string (f->result, "source", "isp-file");
}

static void
test_autoconfig_redirect_followed (Fixture *f, gconstpointer data)
{
  serve (f, "/old", SOUP_STATUS_FOUND, NULL)->location = g_strdup ("/new");
  serve (f, "/new", SOUP_STATUS_OK, GOOD_CONFIG ("web.example.org"));
  add_served_url (f, "/old");

  discover (f, ADDRESS);

  assert_string (f->result, "source", "autoconfig");
  g_assert_cmpuint (count_requests (f, "/new"), ==, 1);
}

static void
test_autoconfig_redirect_to_http_refused (Fixture *f, gconstpointer data)
{
  g_autoptr (GResolver) default_resolver = g_resolver_get_default ();
  /* Were the redirect followed, "redirect.test" would resolve to the test
   * server, which would see the request. */
  g_autofree char *target = g_strdup_printf ("http://redirect.test:%u/evil", f->http_port);

  serve (f, "/old", SOUP_STATUS_MOVED_PERMANENTLY, NULL)->location = g_strdup (target);
  serve (f, "/evil", SOUP_STATUS_OK, GOOD_CONFIG ("evil.example"));
  add_served_url (f, "/old");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));
  g_resolver_set_default (G_RESOLVER (f->resolver));

  discover (f, ADDRESS);
  g_resolver_set_default (default_resolver);

  g_assert_cmpuint (count_requests (f, "/old"), ==, 1);
  g_assert_cmpuint (count_requests (f, "/evil"), ==, 0);
  assert_string (f->result, "source", "isp-file");
}

static void
test_autoconfig_without_smtp_falls_through (Fixture *f, gconstpointer data)
{
  serve (f, "/autoconfig", SOUP_STATUS_OK,
         CONFIG_HEAD IMAP ("web.example.org", "993", "SSL", "%EMAILADDRESS%") CONFIG_TAIL);
  add_served_url (f, "/autoconfig");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, ADDRESS);

  assert_string (f->result, "source", "isp-file");
  assert_string (f->result, "imap", "imaps://me%40example.org@isp.example.org:993");
}

static gboolean
cancel_later (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

static void
test_cancelled (Fixture *f, gconstpointer data)
{
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();

  serve (f, "/hang", 0, NULL)->hang = TRUE;
  add_served_url (f, "/hang");
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  start_discover (f, ADDRESS, cancellable);
  while (count_requests (f, "/hang") == 0)
    g_main_context_iteration (NULL, TRUE);
  g_idle_add (cancel_later, cancellable);
  wait_for_discover (f);

  g_assert_error (f->error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* The ISP file --------------------------------------------------------------------- */

static void
test_isp_file_found (Fixture *f, gconstpointer data)
{
  write_isp_file (f, "example.org", GOOD_CONFIG ("isp.example.org"));

  discover (f, "me@EXAMPLE.org");

  assert_string (f->result, "source", "isp-file");
  assert_string (f->result, "smtp", "smtps://me%40EXAMPLE.org@isp.example.org:465");
  assert_string (f->result, "username", "me@EXAMPLE.org");
}

static void
test_isp_file_malicious (Fixture *f, gconstpointer data)
{
  write_isp_file (f, "example.org",
                  CONFIG_HEAD SMTP ("evil.example&#13;&#10;X:", "465", "SSL", "%EMAILADDRESS%")
                      SMTP ("mail.example.org", "0", "SSL", "%EMAILADDRESS%")
                          SMTP ("mail.example.org", "25", "plain", "%EMAILADDRESS%") CONFIG_TAIL);

  start_discover (f, ADDRESS, NULL);
  wait_for_discover (f);

  g_assert_error (f->error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED);
  g_assert_null (f->result);
}

static void
test_nothing_found (Fixture *f, gconstpointer data)
{
  start_discover (f, ADDRESS, NULL);
  wait_for_discover (f);

  g_assert_error (f->error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED);
  g_assert_cmpstr (f->error->message, ==,
                   "No settings found for example.org: give the servers with --smtp/--imap");
}

/* The parser ---------------------------------------------------------------------- */

static GVariant *
parse_for (const char *xml, const char *address)
{
  g_autoptr (GError) error = NULL;
  GVariant *result = outbox_discover_parse_autoconfig (xml, strlen (xml), address, &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
  assert_proposal_sound (result);
  return result;
}

static GVariant *
parse (const char *xml)
{
  return parse_for (xml, ADDRESS);
}

static void
test_parse_placeholders (void)
{
  g_autoptr (GVariant) result =
      parse (CONFIG_HEAD SMTP ("smtp.%EMAILDOMAIN%", "465", "SSL", "%EMAILLOCALPART%+%EMAILDOMAIN%")
                 IMAP ("imap.example.org", "993", "SSL", "%EMAILADDRESS%") CONFIG_TAIL);

  assert_string (result, "source", "autoconfig");
  assert_string (result, "smtp", "smtps://me+example.org@smtp.example.org:465");
  assert_string (result, "imap", "imaps://me%40example.org@imap.example.org:993");
  assert_string (result, "username", "me+example.org");
}

static void
test_parse_placeholder_in_address (void)
{
  g_autoptr (GVariant) result = parse_for (
      CONFIG_HEAD SMTP ("smtp.example.org", "465", "SSL", "%EMAILLOCALPART%") CONFIG_TAIL,
      "%EMAILDOMAIN%@example.org");

  assert_string (result, "username", "%EMAILDOMAIN%");
}

static void
test_parse_ssl_preferred (void)
{
  g_autoptr (GVariant) result =
      parse (CONFIG_HEAD SMTP ("plain.example.org", "25", "plain", "")
                 SMTP ("starttls.example.org", "587", "STARTTLS", "%EMAILADDRESS%")
                     SMTP ("ssl.example.org", "465", "SSL", "%EMAILADDRESS%")
                         IMAP ("starttls.example.org", "143", "STARTTLS", "%EMAILADDRESS%")
                             IMAP ("ssl.example.org", "993", "SSL", "%EMAILADDRESS%") CONFIG_TAIL);

  assert_string (result, "smtp", "smtps://me%40example.org@ssl.example.org:465");
  assert_string (result, "imap", "imaps://me%40example.org@ssl.example.org:993");
}

static void
test_parse_document_order (void)
{
  g_autoptr (GVariant) result =
      parse (CONFIG_HEAD SMTP ("first.example.org", "465", "SSL", "%EMAILADDRESS%")
                 SMTP ("second.example.org", "465", "SSL", "%EMAILADDRESS%") CONFIG_TAIL);

  assert_string (result, "smtp", "smtps://me%40example.org@first.example.org:465");
}

static void
test_parse_plain_with_username_skipped (void)
{
  g_autoptr (GVariant) result =
      parse (CONFIG_HEAD SMTP ("plain.example.org", "25", "plain", "%EMAILADDRESS%")
                 IMAP ("plain.example.org", "143", "plain", "%EMAILADDRESS%")
                     POP3 ("pop.example.org", "110", "STARTTLS", "%EMAILADDRESS%") CONFIG_TAIL);

  assert_string (result, "smtp", NULL);
  assert_string (result, "imap", NULL);
  assert_string (result, "pop3", "pop3://me%40example.org@pop.example.org:110");
}

static void
test_parse_plain_without_username (void)
{
  g_autoptr (GVariant) result =
      parse (CONFIG_HEAD SMTP ("relay.example.org", "25", "plain", "") CONFIG_TAIL);

  assert_string (result, "smtp", "smtp+insecure://relay.example.org:25");
  assert_string (result, "username", NULL);
}

static void
test_parse_bad_server_skipped (void)
{
  g_autoptr (GVariant) result =
      parse (CONFIG_HEAD SMTP ("evil.example&#13;&#10;X:", "465", "SSL", "%EMAILADDRESS%")
                 SMTP ("mail.example.org", "587", "STARTTLS", "%EMAILADDRESS%") CONFIG_TAIL);

  assert_string (result, "smtp", "smtp://me%40example.org@mail.example.org:587");
}

static void
test_parse_unknown_elements_ignored (void)
{
  g_autoptr (GVariant) result =
      parse ("<?xml version=\"1.0\"?>\n"
             "<!-- a comment -->\n"
             "<clientConfig version=\"1.1\" future=\"yes\">\n"
             " <oAuth2><issuer>x</issuer><hostname>evil.example</hostname></oAuth2>\n"
             " <emailProvider id=\"example.org\" extra=\"1\">\n"
             "  <documentation url=\"https://example.org/help\"><descr lang=\"en\">Help</descr>"
             "</documentation>\n"
             "  <incomingServer type=\"exchange\"><hostname>ews.example.org</hostname>"
             "<port>443</port><socketType>SSL</socketType></incomingServer>\n"
             "  <outgoingServer type=\"smtp\" extra=\"x\">\n"
             "   <hostname><![CDATA[mail.example.org]]></hostname>\n"
             "   <port> 465 </port>\n"
             "   <socketType>SSL</socketType>\n"
             "   <username>%EMAILADDRESS%</username>\n"
             "   <authentication>OAuth2</authentication>\n"
             "   <future><deeper><hostname>evil.example</hostname></deeper></future>\n"
             "  </outgoingServer>\n"
             " </emailProvider>\n"
             " <webMail><loginPage url=\"https://example.org\"/></webMail>\n"
             "</clientConfig>\n");

  assert_string (result, "smtp", "smtps://me%40example.org@mail.example.org:465");
  assert_string (result, "imap", NULL);
}

static void
test_parse_not_autoconfig (void)
{
  const char *html = "<html><body>Not here</body></html>";
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) result =
      outbox_discover_parse_autoconfig (html, strlen (html), ADDRESS, &error);

  g_assert_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_UNKNOWN_ELEMENT);
  g_assert_null (result);
}

/* Malicious documents: each is refused, or its server skipped.  Nothing bad
 * is ever proposed. */

typedef struct
{
  const char *name;
  const char *xml;
  gsize len; /* 0: strlen */
} Malicious;

/* One more than a DNS label may hold. */
#define LONG_LABEL "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

#define EMBEDDED_NUL                                                                               \
  CONFIG_HEAD "  <outgoingServer type=\"smtp\"><hostname>mail.example.org\0.evil</hostname>"       \
              "<port>465</port><socketType>SSL</socketType></outgoingServer>" CONFIG_TAIL

static const Malicious malicious_documents[] = {
  { "hostname-crlf", CONFIG_HEAD SMTP ("evil.example&#13;&#10;X:", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-raw-crlf", CONFIG_HEAD SMTP ("evil.example\r\nX: y", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-control", CONFIG_HEAD SMTP ("evil&#1;.example", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-tab", CONFIG_HEAD SMTP ("evil\t.example", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-at", CONFIG_HEAD SMTP ("attacker@evil.example", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-port", CONFIG_HEAD SMTP ("mail.example.org:25", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-path", CONFIG_HEAD SMTP ("mail.example.org/x", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-percent", CONFIG_HEAD SMTP ("mail%2eexample.org", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-space", CONFIG_HEAD SMTP ("mail example.org", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-empty", CONFIG_HEAD SMTP ("", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-bidi", CONFIG_HEAD SMTP ("mail.\u202Eelpmaxe.org", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-long", CONFIG_HEAD SMTP (LONG_LABEL ".org", "465", "SSL", "u") CONFIG_TAIL },
  { "username-crlf",
    CONFIG_HEAD SMTP ("mail.example.org", "465", "SSL", "u&#13;&#10;RCPT TO:<x>") CONFIG_TAIL },
  { "username-nul-ref", CONFIG_HEAD SMTP ("mail.example.org", "465", "SSL", "u&#0;x") CONFIG_TAIL },
  { "port-zero", CONFIG_HEAD SMTP ("mail.example.org", "0", "SSL", "u") CONFIG_TAIL },
  { "port-high", CONFIG_HEAD SMTP ("mail.example.org", "65536", "SSL", "u") CONFIG_TAIL },
  { "port-negative", CONFIG_HEAD SMTP ("mail.example.org", "-1", "SSL", "u") CONFIG_TAIL },
  { "port-plus", CONFIG_HEAD SMTP ("mail.example.org", "+465", "SSL", "u") CONFIG_TAIL },
  { "port-junk", CONFIG_HEAD SMTP ("mail.example.org", "465x", "SSL", "u") CONFIG_TAIL },
  { "port-huge",
    CONFIG_HEAD SMTP ("mail.example.org", "18446744073709551617", "SSL", "u") CONFIG_TAIL },
  { "port-missing",
    CONFIG_HEAD "<outgoingServer type=\"smtp\"><hostname>mail.example.org"
                "</hostname><socketType>SSL</socketType></outgoingServer>" CONFIG_TAIL },
  { "socket-unknown", CONFIG_HEAD SMTP ("mail.example.org", "465", "TLS1.3", "u") CONFIG_TAIL },
  { "plain-with-username", CONFIG_HEAD SMTP ("mail.example.org", "25", "plain", "u") CONFIG_TAIL },
  { "internal-entity",
    "<?xml version=\"1.0\"?>\n<!DOCTYPE clientConfig [<!ENTITY host \"evil.example\">]>\n"
    "<clientConfig><emailProvider id=\"x\">" SMTP (
        "&host;", "465", "SSL", "u") "</emailProvider></clientConfig>" },
  { "external-entity",
    "<?xml version=\"1.0\"?>\n<!DOCTYPE clientConfig SYSTEM \"file:///etc/passwd\">\n"
    "<clientConfig><emailProvider id=\"x\">" SMTP (
        "mail.example.org", "465", "SSL", "u") "</emailProvider></clientConfig>" },
  { "undefined-entity", CONFIG_HEAD SMTP ("&xxe;", "465", "SSL", "u") CONFIG_TAIL },
  { "element-in-hostname",
    CONFIG_HEAD SMTP ("mail<b/>.example.org", "465", "SSL", "u") CONFIG_TAIL },
  { "hostname-twice", CONFIG_HEAD "<outgoingServer type=\"smtp\"><hostname>mail.example.org"
                                  "</hostname><hostname>evil.example</hostname><port>465</port>"
                                  "<socketType>SSL</socketType></outgoingServer>" CONFIG_TAIL },
  { "two-providers", "<clientConfig><emailProvider id=\"a\"></emailProvider>"
                     "<emailProvider id=\"b\">" SMTP (
                         "mail.example.org", "465", "SSL", "u") "</emailProvider></clientConfig>" },
  { "provider-without-id",
    "<clientConfig><emailProvider>" SMTP (
        "mail.example.org", "465", "SSL", "u") "</emailProvider></clientConfig>" },
  { "no-provider",
    "<clientConfig>" SMTP ("mail.example.org", "465", "SSL", "u") "</clientConfig>" },
  { "truncated", CONFIG_HEAD SMTP ("mail.example.org", "465", "SSL", "u") },
  { "invalid-utf8", CONFIG_HEAD SMTP ("mail.\xff\xfe.org", "465", "SSL", "u") CONFIG_TAIL },
  { "embedded-nul", EMBEDDED_NUL, sizeof EMBEDDED_NUL - 1 },
  { "empty", "" },
};

static void
assert_nothing_bad (const char *xml, gsize len)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) result = outbox_discover_parse_autoconfig (xml, len, ADDRESS, &error);

  if (result == NULL)
    {
      g_assert_nonnull (error);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return;
    }
  g_assert_no_error (error);
  assert_proposal_sound (result);
  assert_string (result, "smtp", NULL);
}

static void
test_parse_malicious (gconstpointer data)
{
  const Malicious *document = data;

  assert_nothing_bad (document->xml, document->len != 0 ? document->len : strlen (document->xml));
}

static void
test_parse_deep_nesting (void)
{
  GString *xml = g_string_new (CONFIG_HEAD);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) result = NULL;

  for (int i = 0; i < 10000; i++)
    g_string_append (xml, "<a>");
  for (int i = 0; i < 10000; i++)
    g_string_append (xml, "</a>");
  g_string_append (xml, SMTP ("mail.example.org", "465", "SSL", "u") CONFIG_TAIL);

  result = outbox_discover_parse_autoconfig (xml->str, xml->len, ADDRESS, &error);
  g_string_free (xml, TRUE);

  g_assert_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT);
  g_assert_null (result);
}

static void
test_parse_huge (void)
{
  g_autofree char *padding = g_strnfill (OUTBOX_DISCOVER_MAX_DOCUMENT, ' ');
  g_autofree char *xml = g_strconcat (
      CONFIG_HEAD, padding, SMTP ("mail.example.org", "465", "SSL", "u"), CONFIG_TAIL, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) result =
      outbox_discover_parse_autoconfig (xml, strlen (xml), ADDRESS, &error);

  g_assert_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT);
  g_assert_null (result);
}

static void
test_parse_long_field (void)
{
  g_autofree char *label = g_strnfill (2000, 'a');
  g_autofree char *xml = g_strconcat (CONFIG_HEAD "<outgoingServer type=\"smtp\"><hostname>", label,
                                      ".example.org</hostname><port>465</port>"
                                      "<socketType>SSL</socketType></outgoingServer>" CONFIG_TAIL,
                                      NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) result =
      outbox_discover_parse_autoconfig (xml, strlen (xml), ADDRESS, &error);

  g_assert_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT);
  g_assert_null (result);
}

#define ADD(name, func) g_test_add (name, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/discover/address/invalid", test_address_invalid);
  ADD ("/discover/address/literal", test_address_literal);

  ADD ("/discover/srv/found", test_srv_found);
  ADD ("/discover/srv/questions", test_srv_questions);
  ADD ("/discover/srv/implicit-tls-preferred", test_srv_implicit_tls_preferred);
  ADD ("/discover/srv/starttls", test_srv_starttls);
  ADD ("/discover/srv/dot-target", test_srv_dot_target);
  ADD ("/discover/srv/priority", test_srv_priority);
  ADD ("/discover/srv/trailing-dot", test_srv_trailing_dot);
  ADD ("/discover/srv/bad-target-skipped", test_srv_bad_target_skipped);
  ADD ("/discover/srv/without-smtp-falls-through", test_srv_without_smtp_falls_through);

  ADD ("/discover/order/srv-first", test_order_srv_first);
  ADD ("/discover/order/autoconfig-before-isp-file", test_order_autoconfig_before_isp_file);

  ADD ("/discover/autoconfig/found", test_autoconfig_found);
  ADD ("/discover/autoconfig/address-encoded", test_autoconfig_address_encoded);
  ADD ("/discover/autoconfig/next-url", test_autoconfig_next_url);
  ADD ("/discover/autoconfig/no-credentials", test_autoconfig_no_credentials);
  ADD ("/discover/autoconfig/body-cap", test_autoconfig_body_cap);
  ADD ("/discover/autoconfig/under-cap", test_autoconfig_under_cap);
  ADD ("/discover/autoconfig/unreachable", test_autoconfig_unreachable);
  ADD ("/discover/autoconfig/timeout", test_autoconfig_timeout);
  ADD ("/discover/autoconfig/http-refused", test_autoconfig_http_refused);
  ADD ("/discover/autoconfig/redirect-followed", test_autoconfig_redirect_followed);
  ADD ("/discover/autoconfig/redirect-to-http-refused", test_autoconfig_redirect_to_http_refused);
  ADD ("/discover/autoconfig/without-smtp-falls-through",
       test_autoconfig_without_smtp_falls_through);
  ADD ("/discover/cancelled", test_cancelled);

  ADD ("/discover/isp-file/found", test_isp_file_found);
  ADD ("/discover/isp-file/malicious", test_isp_file_malicious);
  ADD ("/discover/nothing-found", test_nothing_found);

  g_test_add_func ("/discover/parse/placeholders", test_parse_placeholders);
  g_test_add_func ("/discover/parse/placeholder-in-address", test_parse_placeholder_in_address);
  g_test_add_func ("/discover/parse/ssl-preferred", test_parse_ssl_preferred);
  g_test_add_func ("/discover/parse/document-order", test_parse_document_order);
  g_test_add_func ("/discover/parse/plain-with-username-skipped",
                   test_parse_plain_with_username_skipped);
  g_test_add_func ("/discover/parse/plain-without-username", test_parse_plain_without_username);
  g_test_add_func ("/discover/parse/bad-server-skipped", test_parse_bad_server_skipped);
  g_test_add_func ("/discover/parse/unknown-elements-ignored", test_parse_unknown_elements_ignored);
  g_test_add_func ("/discover/parse/not-autoconfig", test_parse_not_autoconfig);
  g_test_add_func ("/discover/parse/deep-nesting", test_parse_deep_nesting);
  g_test_add_func ("/discover/parse/huge", test_parse_huge);
  g_test_add_func ("/discover/parse/long-field", test_parse_long_field);
  for (gsize i = 0; i < G_N_ELEMENTS (malicious_documents); i++)
    {
      g_autofree char *path =
          g_strconcat ("/discover/parse/malicious/", malicious_documents[i].name, NULL);

      g_test_add_data_func (path, &malicious_documents[i], test_parse_malicious);
    }

  return g_test_run ();
}
