/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-discover.h"

#include <libsoup/soup.h>
#include <string.h>

#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-url.h"

/* Real autoconfig documents nest four levels deep; ignored elements get
 * some room, a document nesting deeper is not one. */
#define MAX_DEPTH 32
/* A host name, port, socket type or user name: far more than any real one. */
#define MAX_FIELD_TEXT 1024
#define MAX_REDIRECTS 5
#define READ_CHUNK 16384

#define N_PROTOCOLS (OUTBOX_PROTOCOL_POP3 + 1)

static const char *const default_autoconfig_urls[] = {
  "https://autoconfig.%DOMAIN%/mail/config-v1.1.xml?emailaddress=%EMAIL%",
  "https://%DOMAIN%/.well-known/autoconfig/mail/config-v1.1.xml",
  NULL,
};

/* Text substitution ----------------------------------------------------- */

typedef struct
{
  const char *name; /* "%EMAIL%" */
  const char *value;
} Placeholder;

/* Replaces each placeholder in one pass, so that a value which happens to
 * contain a placeholder name (a local part may hold '%') stays as it is. */
static char *
expand_placeholders (const char *text, const Placeholder *placeholders, gsize n_placeholders)
{
  GString *out = g_string_sized_new (strlen (text));
  const char *p = text;

  while (*p != '\0')
    {
      gsize i;

      for (i = 0; i < n_placeholders; i++)
        {
          if (g_str_has_prefix (p, placeholders[i].name))
            break;
        }
      if (i < n_placeholders)
        {
          g_string_append (out, placeholders[i].value);
          p += strlen (placeholders[i].name);
        }
      else
        g_string_append_c (out, *p++);
    }

  return g_string_free (out, FALSE);
}

/* The address ----------------------------------------------------------- */

typedef struct
{
  char *address;      /* (owned) as given */
  char *local_part;   /* (owned) */
  char *domain;       /* (owned) as given */
  char *ascii_domain; /* (owned) lower-case, IDNA-encoded: used in lookups */
} MailAddress;

static void
mail_address_clear (MailAddress *mail)
{
  g_clear_pointer (&mail->address, g_free);
  g_clear_pointer (&mail->local_part, g_free);
  g_clear_pointer (&mail->domain, g_free);
  g_clear_pointer (&mail->ascii_domain, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MailAddress, mail_address_clear)

static gboolean
mail_address_init (MailAddress *mail, const char *address, GError **error)
{
  const char *at;
  g_autofree char *ascii = NULL;

  if (!outbox_address_validate (address, FALSE, error))
    return FALSE;

  /* A quoted local part may hold '@'; a domain never does. */
  at = strrchr (address, '@');
  if (at[1] == '[' || (ascii = g_hostname_to_ascii (at + 1)) == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ADDRESS,
                   "“%s” has no domain name to look up settings for", address);
      return FALSE;
    }

  mail->address = g_strdup (address);
  mail->local_part = g_strndup (address, at - address);
  mail->domain = g_strdup (at + 1);
  mail->ascii_domain = g_ascii_strdown (ascii, -1);
  return TRUE;
}

/* Proposed servers ------------------------------------------------------ */

typedef struct
{
  char *servers[N_PROTOCOLS]; /* (owned) (nullable) canonical URLs by OutboxProtocol */
  char *username;             /* (owned) (nullable) */
} Proposal;

static void
proposal_clear (Proposal *proposal)
{
  for (gsize i = 0; i < N_PROTOCOLS; i++)
    g_clear_pointer (&proposal->servers[i], g_free);
  g_clear_pointer (&proposal->username, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Proposal, proposal_clear)

static gboolean
proposal_has_smtp (const Proposal *proposal)
{
  return proposal->servers[OUTBOX_PROTOCOL_SMTP] != NULL;
}

static GVariant *
proposal_to_variant (const Proposal *proposal, const char *address, const char *source)
{
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  g_variant_builder_add (&builder, "{sv}", "address", g_variant_new_string (address));
  g_variant_builder_add (&builder, "{sv}", "source", g_variant_new_string (source));
  for (gsize i = 0; i < N_PROTOCOLS; i++)
    {
      if (proposal->servers[i] != NULL)
        g_variant_builder_add (&builder, "{sv}", outbox_protocol_to_string (i),
                               g_variant_new_string (proposal->servers[i]));
    }
  if (proposal->username != NULL)
    g_variant_builder_add (&builder, "{sv}", "username", g_variant_new_string (proposal->username));

  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/* Host names come from DNS or from a document anyone may have written:
 * nothing but an IP address or letters, digits, '-', '.' and non-ASCII
 * (IDNA) may reach a URL, so that no '@', ':', '/' or '%' can move the
 * host's boundaries in it. */
static gboolean
is_plain_host_name (const char *host)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);

  if (inet != NULL)
    return TRUE;
  if (*host == '\0')
    return FALSE;
  for (const char *p = host; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.' && (guchar) *p < 0x80)
        return FALSE;
    }
  return TRUE;
}

/* Returns the canonical URL of the server, or NULL when any part of it is
 * not valid: the URL must parse back to the same user and port. */
static char *
build_server_url (OutboxProtocol protocol,
                  OutboxSecurity security,
                  const char *user,
                  const char *host,
                  guint port,
                  GError **error)
{
  OutboxServerUrl url = { protocol, security, (char *) user, (char *) host, (guint16) port };
  g_autofree char *written = NULL;
  g_autoptr (OutboxServerUrl) parsed = NULL;

  if (!is_plain_host_name (host) || port == 0 || port > G_MAXUINT16)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "Not a valid host name and port");
      return NULL;
    }

  written = outbox_server_url_to_string (&url);
  parsed = outbox_server_url_parse (written, error);
  if (parsed == NULL)
    return NULL;
  if (g_strcmp0 (parsed->user, user) != 0 || parsed->port != port)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ACCOUNT,
                   "The server does not survive a round trip through its URL");
      return NULL;
    }

  return outbox_server_url_to_string (parsed);
}

/* The autoconfig parser --------------------------------------------------
 *
 * The Mozilla format: <clientConfig> holds one <emailProvider id="...">,
 * which holds <domain>, <displayName>, ..., and the servers:
 * <incomingServer type="imap|pop3"> and <outgoingServer type="smtp">, each
 * with <hostname>, <port>, <socketType> (SSL, STARTTLS or plain) and
 * <username>.  Everything else is ignored, subtree and all. */

typedef enum
{
  FIELD_NONE,
  FIELD_HOSTNAME,
  FIELD_PORT,
  FIELD_SOCKET_TYPE,
  FIELD_USERNAME,
  N_FIELDS,
} Field;

static const char *const field_names[N_FIELDS] = {
  NULL, "hostname", "port", "socketType", "username",
};

typedef struct
{
  OutboxProtocol protocol;
  char *fields[N_FIELDS]; /* (owned) (nullable) stripped text; [FIELD_NONE] unused */
} ServerEntry;

static void
server_entry_free (ServerEntry *entry)
{
  for (gsize i = 0; i < N_FIELDS; i++)
    g_free (entry->fields[i]);
  g_free (entry);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ServerEntry, server_entry_free)

typedef struct
{
  guint depth;      /* elements open */
  guint skip_depth; /* depth of the ignored element being skipped, or 0 */
  gboolean seen_provider;
  ServerEntry *server; /* (owned) (nullable) the server element open */
  Field field;         /* the field element open, if any */
  GString *text;       /* (owned) its text so far */
  GPtrArray *servers;  /* (owned) ServerEntry in document order */
} AutoconfigParser;

static void
autoconfig_parser_clear (AutoconfigParser *parser)
{
  g_clear_pointer (&parser->server, server_entry_free);
  if (parser->text != NULL)
    g_string_free (g_steal_pointer (&parser->text), TRUE);
  g_clear_pointer (&parser->servers, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (AutoconfigParser, autoconfig_parser_clear)

static const char *
find_attribute (const char **names, const char **values, const char *wanted)
{
  for (gsize i = 0; names[i] != NULL; i++)
    {
      if (strcmp (names[i], wanted) == 0)
        return values[i];
    }
  return NULL;
}

static void
start_root (const char *element, GError **error)
{
  if (strcmp (element, "clientConfig") != 0)
    g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_UNKNOWN_ELEMENT,
                 "<%s> is not <clientConfig>: not an autoconfig document", element);
}

static void
start_config_child (AutoconfigParser *parser,
                    const char *element,
                    const char **names,
                    const char **values,
                    GError **error)
{
  const char *id;

  if (strcmp (element, "emailProvider") != 0)
    {
      parser->skip_depth = parser->depth;
      return;
    }

  id = find_attribute (names, values, "id");
  if (parser->seen_provider)
    g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                         "More than one <emailProvider>");
  else if (id == NULL || *id == '\0')
    g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_MISSING_ATTRIBUTE,
                         "<emailProvider> has no id");
  else
    parser->seen_provider = TRUE;
}

static void
start_provider_child (AutoconfigParser *parser,
                      const char *element,
                      const char **names,
                      const char **values)
{
  const char *type = find_attribute (names, values, "type");
  gboolean incoming = strcmp (element, "incomingServer") == 0;
  gboolean outgoing = strcmp (element, "outgoingServer") == 0;

  parser->skip_depth = parser->depth;
  if (type == NULL || !(incoming || outgoing))
    return;

  /* Exchange, EWS and the like are for other programs: ignored. */
  if (outgoing && strcmp (type, "smtp") == 0)
    parser->server = g_new0 (ServerEntry, 1);
  else if (incoming && strcmp (type, "imap") == 0)
    {
      parser->server = g_new0 (ServerEntry, 1);
      parser->server->protocol = OUTBOX_PROTOCOL_IMAP;
    }
  else if (incoming && strcmp (type, "pop3") == 0)
    {
      parser->server = g_new0 (ServerEntry, 1);
      parser->server->protocol = OUTBOX_PROTOCOL_POP3;
    }
  if (parser->server != NULL)
    parser->skip_depth = 0;
}

static void
start_server_child (AutoconfigParser *parser, const char *element, GError **error)
{
  for (Field field = FIELD_HOSTNAME; field < N_FIELDS; field++)
    {
      if (strcmp (element, field_names[field]) != 0)
        continue;
      if (parser->server->fields[field] != NULL)
        g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                     "<%s> given twice for one server", element);
      parser->field = field;
      g_string_truncate (parser->text, 0);
      return;
    }

  parser->skip_depth = parser->depth;
}

static void
on_start_element (GMarkupParseContext *context,
                  const char *element,
                  const char **names,
                  const char **values,
                  gpointer user_data,
                  GError **error)
{
  AutoconfigParser *parser = user_data;

  parser->depth++;
  if (parser->depth > MAX_DEPTH)
    {
      g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                   "Elements nested more than %d deep", MAX_DEPTH);
      return;
    }
  if (parser->skip_depth != 0)
    return;

  if (parser->field != FIELD_NONE)
    g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT, "<%s> inside <%s>", element,
                 field_names[parser->field]);
  else if (parser->server != NULL)
    start_server_child (parser, element, error);
  else if (parser->depth == 3)
    start_provider_child (parser, element, names, values);
  else if (parser->depth == 2)
    start_config_child (parser, element, names, values, error);
  else
    start_root (element, error);
}

static void
on_end_element (GMarkupParseContext *context,
                const char *element,
                gpointer user_data,
                GError **error)
{
  AutoconfigParser *parser = user_data;

  if (parser->skip_depth == parser->depth)
    parser->skip_depth = 0;
  else if (parser->skip_depth != 0)
    ;
  else if (parser->field != FIELD_NONE)
    {
      parser->server->fields[parser->field] = g_strstrip (g_strdup (parser->text->str));
      parser->field = FIELD_NONE;
    }
  else if (parser->server != NULL)
    g_ptr_array_add (parser->servers, g_steal_pointer (&parser->server));

  parser->depth--;
}

static void
on_text (
    GMarkupParseContext *context, const char *text, gsize len, gpointer user_data, GError **error)
{
  AutoconfigParser *parser = user_data;

  if (parser->skip_depth != 0 || parser->field == FIELD_NONE)
    return;

  if (parser->text->len + len > MAX_FIELD_TEXT || memchr (text, '\0', len) != NULL)
    {
      g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                   "<%s> is longer than %d octets or holds a NUL", field_names[parser->field],
                   MAX_FIELD_TEXT);
      return;
    }
  g_string_append_len (parser->text, text, len);
}

/* Comments and processing instructions pass; a DOCTYPE, and the entity
 * definitions it could carry, does not. */
static void
on_passthrough (
    GMarkupParseContext *context, const char *text, gsize len, gpointer user_data, GError **error)
{
  if (len >= 2 && text[0] == '<' && text[1] == '!' && !(len >= 4 && memcmp (text, "<!--", 4) == 0))
    g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                         "A DOCTYPE or entity definition is not allowed");
}

static const GMarkupParser autoconfig_markup_parser = {
  on_start_element, on_end_element, on_text, on_passthrough, NULL,
};

/* GMarkup may quote half a character of the document in its messages. */
static void
make_message_valid (GError *error)
{
  char *valid;

  if (g_utf8_validate (error->message, -1, NULL))
    return;
  valid = g_utf8_make_valid (error->message, -1);
  g_free (error->message);
  error->message = valid;
}

static gboolean
parse_servers (const char *xml, gsize len, GPtrArray **out_servers, GError **error)
{
  g_auto (AutoconfigParser) parser = { 0 };
  g_autoptr (GMarkupParseContext) context = NULL;
  GError *markup_error = NULL;

  if (len > OUTBOX_DISCOVER_MAX_DOCUMENT)
    {
      g_set_error (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                   "The document is larger than %d octets", OUTBOX_DISCOVER_MAX_DOCUMENT);
      return FALSE;
    }

  parser.text = g_string_new (NULL);
  parser.servers = g_ptr_array_new_with_free_func ((GDestroyNotify) server_entry_free);
  if (xml == NULL)
    xml = "";
  /* GMarkup would quote the bad bytes in its error message. */
  if (!g_utf8_validate_len (xml, len, NULL))
    {
      g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_BAD_UTF8,
                           "The document is not valid UTF-8");
      return FALSE;
    }
  context = g_markup_parse_context_new (
      &autoconfig_markup_parser, G_MARKUP_TREAT_CDATA_AS_TEXT | G_MARKUP_PREFIX_ERROR_POSITION,
      &parser, NULL);
  if (!g_markup_parse_context_parse (context, xml, (gssize) len, &markup_error) ||
      !g_markup_parse_context_end_parse (context, &markup_error))
    {
      make_message_valid (markup_error);
      g_propagate_error (error, markup_error);
      return FALSE;
    }

  if (!parser.seen_provider)
    {
      g_set_error_literal (error, G_MARKUP_ERROR, G_MARKUP_ERROR_INVALID_CONTENT,
                           "The document has no <emailProvider>");
      return FALSE;
    }

  *out_servers = g_steal_pointer (&parser.servers);
  return TRUE;
}

/* Choosing among the servers of a document ------------------------------ */

static gboolean
parse_socket_type (const char *text, OutboxSecurity *out_security)
{
  if (text == NULL)
    return FALSE;
  if (g_ascii_strcasecmp (text, "SSL") == 0)
    *out_security = OUTBOX_SECURITY_TLS;
  else if (g_ascii_strcasecmp (text, "STARTTLS") == 0)
    *out_security = OUTBOX_SECURITY_STARTTLS;
  else if (g_ascii_strcasecmp (text, "plain") == 0)
    *out_security = OUTBOX_SECURITY_INSECURE;
  else
    return FALSE;
  return TRUE;
}

typedef struct
{
  OutboxSecurity security;
  char *url;      /* (owned) */
  char *username; /* (owned) (nullable) */
} Candidate;

static void
candidate_clear (Candidate *candidate)
{
  g_clear_pointer (&candidate->url, g_free);
  g_clear_pointer (&candidate->username, g_free);
}

/* Fills @candidate from @entry, or returns FALSE when the server cannot be
 * proposed. */
static gboolean
candidate_from_entry (const ServerEntry *entry, const MailAddress *mail, Candidate *candidate)
{
  const Placeholder placeholders[] = {
    { "%EMAILADDRESS%", mail->address },
    { "%EMAILLOCALPART%", mail->local_part },
    { "%EMAILDOMAIN%", mail->domain },
  };
  g_autofree char *host = NULL;
  g_autofree char *user = NULL;
  guint64 port;

  if (entry->fields[FIELD_HOSTNAME] == NULL || entry->fields[FIELD_PORT] == NULL ||
      !parse_socket_type (entry->fields[FIELD_SOCKET_TYPE], &candidate->security) ||
      !g_ascii_string_to_unsigned (entry->fields[FIELD_PORT], 10, 1, G_MAXUINT16, &port, NULL))
    return FALSE;

  host = expand_placeholders (entry->fields[FIELD_HOSTNAME], placeholders,
                              G_N_ELEMENTS (placeholders));
  if (entry->fields[FIELD_USERNAME] != NULL && entry->fields[FIELD_USERNAME][0] != '\0')
    user = expand_placeholders (entry->fields[FIELD_USERNAME], placeholders,
                                G_N_ELEMENTS (placeholders));

  /* No credential in plaintext: a plain server is only for mail that needs
   * no login. */
  if (candidate->security == OUTBOX_SECURITY_INSECURE && user != NULL)
    return FALSE;

  candidate->url =
      build_server_url (entry->protocol, candidate->security, user, host, (guint) port, NULL);
  if (candidate->url == NULL)
    return FALSE;
  candidate->username = g_steal_pointer (&user);
  return TRUE;
}

/* Implicit TLS first (RFC 8314), then STARTTLS, then plain (the order of
 * OutboxSecurity); among equals, the provider's order. */
static void
choose_servers (GPtrArray *servers, const MailAddress *mail, Proposal *proposal)
{
  Candidate best[N_PROTOCOLS] = { { 0 } };

  for (guint i = 0; i < servers->len; i++)
    {
      const ServerEntry *entry = g_ptr_array_index (servers, i);
      Candidate candidate = { 0 };
      Candidate *current = &best[entry->protocol];

      if (!candidate_from_entry (entry, mail, &candidate))
        continue;
      if (current->url == NULL || candidate.security < current->security)
        {
          candidate_clear (current);
          *current = candidate;
        }
      else
        candidate_clear (&candidate);
    }

  for (gsize i = 0; i < N_PROTOCOLS; i++)
    {
      if (proposal->username == NULL)
        proposal->username = g_steal_pointer (&best[i].username);
      proposal->servers[i] = g_steal_pointer (&best[i].url);
      candidate_clear (&best[i]);
    }
}

static gboolean
propose_from_autoconfig (
    const char *xml, gsize len, const MailAddress *mail, Proposal *proposal, GError **error)
{
  g_autoptr (GPtrArray) servers = NULL;

  if (!parse_servers (xml, len, &servers, error))
    return FALSE;
  choose_servers (servers, mail, proposal);
  return TRUE;
}

GVariant *
outbox_discover_parse_autoconfig (const char *xml, gsize len, const char *address, GError **error)
{
  g_auto (MailAddress) mail = { 0 };
  g_auto (Proposal) proposal = { { 0 } };

  g_return_val_if_fail (xml != NULL || len == 0, NULL);
  g_return_val_if_fail (address != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!mail_address_init (&mail, address, error) ||
      !propose_from_autoconfig (xml, len, &mail, &proposal, error))
    return NULL;

  return proposal_to_variant (&proposal, address, "autoconfig");
}

/* The discovery ----------------------------------------------------------
 *
 * One GTask runs the sources in turn, each started by the end of the one
 * before: all SRV lookups at once; then each autoconfig URL, one request
 * (and its redirects) at a time under a deadline; then the ISP file.  The
 * first source that proposes an SMTP server returns the task. */

typedef struct
{
  const char *service;
  OutboxProtocol protocol;
  OutboxSecurity security;
} SrvService;

/* RFC 6186 names, implicit TLS before STARTTLS for each protocol. */
static const SrvService srv_services[] = {
  { "submissions", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_TLS },
  { "submission", OUTBOX_PROTOCOL_SMTP, OUTBOX_SECURITY_STARTTLS },
  { "imaps", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_TLS },
  { "imap", OUTBOX_PROTOCOL_IMAP, OUTBOX_SECURITY_STARTTLS },
  { "pop3s", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_TLS },
  { "pop3", OUTBOX_PROTOCOL_POP3, OUTBOX_SECURITY_STARTTLS },
};

typedef struct
{
  MailAddress mail;
  GResolver *resolver;    /* (owned) */
  char **autoconfig_urls; /* (owned) */
  char *isp_dir;          /* (owned) (nullable) */
  gboolean allow_http;
  guint http_timeout;

  GList *srv_targets[G_N_ELEMENTS (srv_services)]; /* (owned) GSrvTarget */
  guint srv_pending;

  guint next_url;
  SoupSession *session; /* (owned) (nullable) */
  SoupMessage *message; /* (owned) (nullable) the request in flight */
  guint redirects;
  GCancellable *fetch_cancellable; /* (owned) (nullable) cancelled by the deadline */
  gulong parent_handler;           /* on the task's cancellable */
  GSource *deadline;               /* (owned) (nullable) */
  gboolean timed_out;
} Discovery;

static void
end_deadline (Discovery *discovery, GCancellable *parent)
{
  if (discovery->parent_handler != 0)
    g_cancellable_disconnect (parent, discovery->parent_handler);
  discovery->parent_handler = 0;
  if (discovery->deadline != NULL)
    g_source_destroy (discovery->deadline);
  g_clear_pointer (&discovery->deadline, g_source_unref);
  g_clear_object (&discovery->fetch_cancellable);
}

static void
discovery_free (Discovery *discovery)
{
  end_deadline (discovery, NULL);
  mail_address_clear (&discovery->mail);
  g_clear_object (&discovery->resolver);
  g_strfreev (discovery->autoconfig_urls);
  g_free (discovery->isp_dir);
  for (gsize i = 0; i < G_N_ELEMENTS (srv_services); i++)
    g_list_free_full (discovery->srv_targets[i], (GDestroyNotify) g_srv_target_free);
  g_clear_object (&discovery->message);
  g_clear_object (&discovery->session);
  g_free (discovery);
}

static void
return_proposal (GTask *task, const Proposal *proposal, const char *source)
{
  Discovery *discovery = g_task_get_task_data (task);

  g_debug ("Settings for %s found by %s", discovery->mail.domain, source);
  g_task_return_pointer (task, proposal_to_variant (proposal, discovery->mail.address, source),
                         (GDestroyNotify) g_variant_unref);
}

static void
return_nothing_found (GTask *task)
{
  Discovery *discovery = g_task_get_task_data (task);

  g_task_return_new_error (task, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                           "No settings found for %s: give the servers with --smtp/--imap",
                           discovery->mail.domain);
}

/* Reading a document, capped -------------------------------------------- */

static void read_next_chunk (GTask *task);

static void
on_chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GByteArray *document = g_task_get_task_data (task);
  g_autoptr (GBytes) chunk = NULL;
  GError *error = NULL;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      g_task_return_pointer (task, g_byte_array_free_to_bytes (g_byte_array_ref (document)),
                             (GDestroyNotify) g_bytes_unref);
      return;
    }
  if (document->len + g_bytes_get_size (chunk) > OUTBOX_DISCOVER_MAX_DOCUMENT)
    {
      g_task_return_new_error (task, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                               "The document is larger than %d octets",
                               OUTBOX_DISCOVER_MAX_DOCUMENT);
      return;
    }

  g_byte_array_append (document, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  read_next_chunk (g_steal_pointer (&task));
}

static void
read_next_chunk (GTask *task)
{
  g_input_stream_read_bytes_async (g_task_get_source_object (task), READ_CHUNK, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), on_chunk_read, task);
}

/* Reads @stream to its end, failing once it passes
 * OUTBOX_DISCOVER_MAX_DOCUMENT octets. */
static void
read_document_async (GInputStream *stream,
                     GCancellable *cancellable,
                     GAsyncReadyCallback callback,
                     gpointer user_data)
{
  GTask *task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, read_document_async);
  g_task_set_task_data (task, g_byte_array_new (), (GDestroyNotify) g_byte_array_unref);
  read_next_chunk (task);
}

static GBytes *
read_document_finish (GInputStream *stream, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Source 3: the ISP file ------------------------------------------------- */

static char *
default_isp_dir (void)
{
  g_autofree char *user_dir = g_build_filename (g_get_user_data_dir (), "outbox", "isp", NULL);
  const char *const *system_dirs = g_get_system_data_dirs ();

  if (g_file_test (user_dir, G_FILE_TEST_IS_DIR))
    return g_steal_pointer (&user_dir);
  for (gsize i = 0; system_dirs[i] != NULL; i++)
    {
      g_autofree char *dir = g_build_filename (system_dirs[i], "outbox", "isp", NULL);

      if (g_file_test (dir, G_FILE_TEST_IS_DIR))
        return g_steal_pointer (&dir);
    }
  return NULL;
}

static void
on_isp_file_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Discovery *discovery = g_task_get_task_data (task);
  g_autoptr (GBytes) document = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (Proposal) proposal = { { 0 } };
  const char *data;
  gsize len;

  document = read_document_finish (G_INPUT_STREAM (source), result, &error);
  if (document == NULL)
    {
      g_debug ("ISP file for %s: %s", discovery->mail.domain, error->message);
      return_nothing_found (task);
      return;
    }

  data = g_bytes_get_data (document, &len);
  if (!propose_from_autoconfig (data, len, &discovery->mail, &proposal, &error))
    g_debug ("ISP file for %s: %s", discovery->mail.domain, error->message);
  if (proposal_has_smtp (&proposal))
    return_proposal (task, &proposal, "isp-file");
  else
    return_nothing_found (task);
}

static void
on_isp_file_opened (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr (GFileInputStream) stream = NULL;
  g_autoptr (GError) error = NULL;

  stream = g_file_read_finish (G_FILE (source), result, &error);
  if (stream == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&error));
      else
        return_nothing_found (task);
      return;
    }

  read_document_async (G_INPUT_STREAM (stream), cancellable, on_isp_file_read,
                       g_steal_pointer (&task));
}

static void
start_isp_file (GTask *task)
{
  Discovery *discovery = g_task_get_task_data (task);
  g_autofree char *dir =
      discovery->isp_dir != NULL ? g_strdup (discovery->isp_dir) : default_isp_dir ();
  g_autofree char *name = NULL;
  g_autoptr (GFile) file = NULL;

  if (dir == NULL)
    {
      return_nothing_found (task);
      g_object_unref (task);
      return;
    }

  /* The ASCII domain holds only letters, digits, '-' and '.' and no empty
   * label: a file name that cannot leave the directory. */
  name = g_strconcat (discovery->mail.ascii_domain, ".xml", NULL);
  file = g_file_new_build_filename (dir, name, NULL);
  g_file_read_async (file, G_PRIORITY_DEFAULT, g_task_get_cancellable (task), on_isp_file_opened,
                     task);
}

/* Source 2: autoconfig over HTTPS ---------------------------------------- */

static gboolean
is_loopback_literal (const char *host)
{
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);

  return inet != NULL && g_inet_address_get_is_loopback (inet);
}

/* HTTPS only (plain http to loopback for tests), and never a URL that
 * carries a user or password. */
static gboolean
uri_is_allowed (GUri *uri, gboolean allow_http)
{
  const char *scheme = g_uri_get_scheme (uri);
  const char *host = g_uri_get_host (uri);

  if (host == NULL || *host == '\0' || g_uri_get_userinfo (uri) != NULL)
    return FALSE;
  if (g_ascii_strcasecmp (scheme, "https") == 0)
    return TRUE;
  return allow_http && g_ascii_strcasecmp (scheme, "http") == 0 && is_loopback_literal (host);
}

static void fetch_next_url (GTask *task);
static void send_request (GTask *task, GUri *uri);

static gboolean
on_deadline (gpointer user_data)
{
  Discovery *discovery = user_data;

  discovery->timed_out = TRUE;
  g_cancellable_cancel (discovery->fetch_cancellable);
  return G_SOURCE_REMOVE;
}

static void
cancel_fetch (GCancellable *parent, GCancellable *fetch_cancellable)
{
  g_cancellable_cancel (fetch_cancellable);
}

static void
start_deadline (Discovery *discovery, GCancellable *parent)
{
  discovery->timed_out = FALSE;
  discovery->fetch_cancellable = g_cancellable_new ();
  if (parent != NULL)
    discovery->parent_handler =
        g_cancellable_connect (parent, G_CALLBACK (cancel_fetch),
                               g_object_ref (discovery->fetch_cancellable), g_object_unref);
  discovery->deadline = g_timeout_source_new_seconds (discovery->http_timeout);
  g_source_set_callback (discovery->deadline, on_deadline, discovery, NULL);
  g_source_attach (discovery->deadline, g_main_context_get_thread_default ());
}

/* Ends the current URL; an error other than the caller's cancellation only
 * moves on to the next source. */
static void
fetch_done (GTask *task, const GError *error)
{
  Discovery *discovery = g_task_get_task_data (task);
  GCancellable *parent = g_task_get_cancellable (task);
  g_autofree char *url = g_uri_to_string (soup_message_get_uri (discovery->message));

  end_deadline (discovery, parent);
  g_clear_object (&discovery->message);

  if (g_cancellable_is_cancelled (parent))
    {
      g_task_return_error_if_cancelled (task);
      g_object_unref (task);
      return;
    }
  if (discovery->timed_out)
    g_debug ("Autoconfig %s: no answer within %u s", url, discovery->http_timeout);
  else if (error != NULL)
    g_debug ("Autoconfig %s: %s", url, error->message);
  fetch_next_url (task);
}

static void
on_autoconfig_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  Discovery *discovery = g_task_get_task_data (task);
  g_autoptr (GBytes) document = NULL;
  g_autoptr (GError) error = NULL;
  g_auto (Proposal) proposal = { { 0 } };
  const char *data;
  gsize len;

  document = read_document_finish (G_INPUT_STREAM (source), result, &error);
  if (document != NULL)
    {
      data = g_bytes_get_data (document, &len);
      propose_from_autoconfig (data, len, &discovery->mail, &proposal, &error);
    }

  if (proposal_has_smtp (&proposal))
    {
      end_deadline (discovery, g_task_get_cancellable (task));
      return_proposal (task, &proposal, "autoconfig");
      g_object_unref (task);
      return;
    }
  if (error == NULL)
    g_set_error_literal (&error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED, "No usable SMTP server");
  fetch_done (task, error);
}

/* Follows a redirect by hand, so that each target is checked like the
 * first URL: a redirect to http:// or to a URL with credentials is not
 * followed. */
static gboolean
follow_redirect (GTask *task, GError **error)
{
  Discovery *discovery = g_task_get_task_data (task);
  SoupMessageHeaders *headers = soup_message_get_response_headers (discovery->message);
  const char *location = soup_message_headers_get_one (headers, "Location");
  g_autoptr (GUri) target = NULL;

  if (location == NULL || discovery->redirects >= MAX_REDIRECTS)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                   "Redirect without a Location or "
                   "more than %d redirects",
                   MAX_REDIRECTS);
      return FALSE;
    }
  target = g_uri_parse_relative (soup_message_get_uri (discovery->message), location,
                                 SOUP_HTTP_URI_FLAGS, error);
  if (target == NULL)
    return FALSE;
  if (!uri_is_allowed (target, discovery->allow_http))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED,
                   "Redirect to a URL that is not https: not followed");
      return FALSE;
    }

  discovery->redirects++;
  send_request (task, target);
  return TRUE;
}

static void
on_response (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = user_data;
  Discovery *discovery = g_task_get_task_data (task);
  g_autoptr (GInputStream) body = NULL;
  g_autoptr (GError) error = NULL;
  guint status;

  body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (body == NULL)
    {
      fetch_done (task, error);
      return;
    }

  status = soup_message_get_status (discovery->message);
  if (SOUP_STATUS_IS_REDIRECTION (status))
    {
      if (!follow_redirect (task, &error))
        fetch_done (task, error);
      return;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_set_error (&error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED, "HTTP status %u", status);
      fetch_done (task, error);
      return;
    }

  read_document_async (body, discovery->fetch_cancellable, on_autoconfig_read, task);
}

static void
send_request (GTask *task, GUri *uri)
{
  Discovery *discovery = g_task_get_task_data (task);

  g_clear_object (&discovery->message);
  discovery->message = soup_message_new_from_uri (SOUP_METHOD_GET, uri);
  soup_message_add_flags (discovery->message,
                          SOUP_MESSAGE_NO_REDIRECT | SOUP_MESSAGE_DO_NOT_USE_AUTH_CACHE);
  soup_message_headers_replace (soup_message_get_request_headers (discovery->message), "Accept",
                                "application/xml, text/xml");
  soup_session_send_async (discovery->session, discovery->message, G_PRIORITY_DEFAULT,
                           discovery->fetch_cancellable, on_response, task);
}

static char *
expand_url_template (Discovery *discovery, const char *template)
{
  g_autofree char *escaped = g_uri_escape_string (discovery->mail.address, NULL, FALSE);
  const Placeholder placeholders[] = {
    { "%DOMAIN%", discovery->mail.ascii_domain },
    { "%EMAIL%", escaped },
  };

  return expand_placeholders (template, placeholders, G_N_ELEMENTS (placeholders));
}

static void
fetch_next_url (GTask *task)
{
  Discovery *discovery = g_task_get_task_data (task);
  g_autofree char *url = NULL;
  g_autoptr (GUri) uri = NULL;
  g_autoptr (GError) error = NULL;

  if (discovery->autoconfig_urls[discovery->next_url] == NULL)
    {
      start_isp_file (task);
      return;
    }

  url = expand_url_template (discovery, discovery->autoconfig_urls[discovery->next_url++]);
  uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, &error);
  if (uri == NULL || !uri_is_allowed (uri, discovery->allow_http))
    {
      g_debug ("Autoconfig %s: not an https URL", url);
      fetch_next_url (task);
      return;
    }

  discovery->redirects = 0;
  start_deadline (discovery, g_task_get_cancellable (task));
  send_request (task, uri);
}

/* Nothing that could identify the user beyond the address travels: a new
 * session has no cookie jar, and without its auth manager nothing answers
 * a 401 with credentials, cached or from the URL. */
static SoupSession *
new_autoconfig_session (void)
{
  SoupSession *session =
      soup_session_new_with_options ("user-agent", PACKAGE_NAME "/" PACKAGE_VERSION, NULL);

  soup_session_remove_feature_by_type (session, SOUP_TYPE_AUTH_MANAGER);
  return session;
}

static void
start_autoconfig (GTask *task)
{
  Discovery *discovery = g_task_get_task_data (task);

  if (discovery->autoconfig_urls[0] != NULL)
    discovery->session = new_autoconfig_session ();
  fetch_next_url (task);
}

/* Source 1: RFC 6186 SRV records ----------------------------------------- */

static gboolean
srv_target_is_offered (GSrvTarget *target)
{
  const char *host = g_srv_target_get_hostname (target);

  /* RFC 2782: a target of "." means the service is not offered. */
  return host[0] != '\0' && strcmp (host, ".") != 0 && g_srv_target_get_port (target) != 0;
}

/* Lowest priority first; among equals, the heaviest first: a fixed choice
 * where RFC 2782 would pick at random, since one server is proposed. */
static gint
compare_srv_targets (gconstpointer a, gconstpointer b)
{
  GSrvTarget *left = (GSrvTarget *) a;
  GSrvTarget *right = (GSrvTarget *) b;

  if (g_srv_target_get_priority (left) != g_srv_target_get_priority (right))
    return g_srv_target_get_priority (left) < g_srv_target_get_priority (right) ? -1 : 1;
  if (g_srv_target_get_weight (left) != g_srv_target_get_weight (right))
    return g_srv_target_get_weight (left) > g_srv_target_get_weight (right) ? -1 : 1;
  return 0;
}

static char *
srv_server_url (GList *targets, const SrvService *service, const char *user)
{
  g_autoptr (GList) sorted = g_list_sort (g_list_copy (targets), compare_srv_targets);

  for (GList *l = sorted; l != NULL; l = l->next)
    {
      GSrvTarget *target = l->data;
      g_autofree char *host = NULL;
      char *url;

      if (!srv_target_is_offered (target))
        continue;
      host = g_strdup (g_srv_target_get_hostname (target));
      if (g_str_has_suffix (host, "."))
        host[strlen (host) - 1] = '\0';
      url = build_server_url (service->protocol, service->security, user, host,
                              g_srv_target_get_port (target), NULL);
      if (url != NULL)
        return url;
    }
  return NULL;
}

/* RFC 6186 section 4: the user name is the whole address. */
static void
propose_from_srv (Discovery *discovery, Proposal *proposal)
{
  for (gsize i = 0; i < G_N_ELEMENTS (srv_services); i++)
    {
      const SrvService *service = &srv_services[i];

      if (proposal->servers[service->protocol] == NULL)
        proposal->servers[service->protocol] =
            srv_server_url (discovery->srv_targets[i], service, discovery->mail.address);
    }
  proposal->username = g_strdup (discovery->mail.address);
}

static void
srv_lookups_done (GTask *task)
{
  Discovery *discovery = g_task_get_task_data (task);
  g_auto (Proposal) proposal = { { 0 } };

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return;
    }

  propose_from_srv (discovery, &proposal);
  if (!proposal_has_smtp (&proposal))
    {
      start_autoconfig (task);
      return;
    }
  return_proposal (task, &proposal, "dns-srv");
  g_object_unref (task);
}

typedef struct
{
  GTask *task; /* (owned) */
  gsize index; /* in srv_services */
} SrvLookup;

static void
on_srv_lookup (GObject *source, GAsyncResult *result, gpointer user_data)
{
  SrvLookup *lookup = user_data;
  Discovery *discovery = g_task_get_task_data (lookup->task);
  g_autoptr (GError) error = NULL;

  discovery->srv_targets[lookup->index] =
      g_resolver_lookup_service_finish (G_RESOLVER (source), result, &error);
  if (error != NULL)
    g_debug ("SRV _%s._tcp.%s: %s", srv_services[lookup->index].service,
             discovery->mail.ascii_domain, error->message);

  discovery->srv_pending--;
  if (discovery->srv_pending == 0)
    srv_lookups_done (lookup->task);
  else
    g_object_unref (lookup->task);
  g_free (lookup);
}

static void
start_srv_lookups (GTask *task)
{
  Discovery *discovery = g_task_get_task_data (task);

  discovery->srv_pending = G_N_ELEMENTS (srv_services);
  for (gsize i = 0; i < G_N_ELEMENTS (srv_services); i++)
    {
      SrvLookup *lookup = g_new0 (SrvLookup, 1);

      lookup->task = g_object_ref (task);
      lookup->index = i;
      g_resolver_lookup_service_async (discovery->resolver, srv_services[i].service, "tcp",
                                       discovery->mail.ascii_domain, g_task_get_cancellable (task),
                                       on_srv_lookup, lookup);
    }
  g_object_unref (task);
}

/* Entry points ----------------------------------------------------------- */

static Discovery *
discovery_new (const OutboxDiscoverSources *sources)
{
  Discovery *discovery = g_new0 (Discovery, 1);
  const OutboxDiscoverSources defaults = { NULL };

  if (sources == NULL)
    sources = &defaults;
  discovery->resolver =
      sources->resolver != NULL ? g_object_ref (sources->resolver) : g_resolver_get_default ();
  discovery->autoconfig_urls =
      g_strdupv ((char **) (sources->autoconfig_urls != NULL ? sources->autoconfig_urls
                                                             : default_autoconfig_urls));
  discovery->isp_dir = g_strdup (sources->isp_dir);
  discovery->allow_http = sources->allow_http;
  discovery->http_timeout =
      sources->http_timeout != 0 ? sources->http_timeout : OUTBOX_DISCOVER_HTTP_TIMEOUT;
  return discovery;
}

void
outbox_discover_async (const char *address,
                       const OutboxDiscoverSources *sources,
                       GCancellable *cancellable,
                       GAsyncReadyCallback callback,
                       gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  Discovery *discovery;
  GError *error = NULL;

  g_return_if_fail (address != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_discover_async);
  discovery = discovery_new (sources);
  g_task_set_task_data (task, discovery, (GDestroyNotify) discovery_free);

  if (!mail_address_init (&discovery->mail, address, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  start_srv_lookups (g_steal_pointer (&task));
}

GVariant *
outbox_discover_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_discover_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
