/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "outbox-imap.h"
#include "outbox-line-reader.h"
#include "outbox-tls.h"
#include "outbox-transport.h"
#include "outbox-text.h"

G_DEFINE_QUARK (outbox-imap-error-quark, outbox_imap_error)

/* The session ------------------------------------------------------------ */

/* Message data is read and written in blocks of this size, so memory stays
 * bounded whatever the size of the message. */
#define APPEND_CHUNK (64 * 1024)
/* RFC 7888: LITERAL- allows non-synchronizing literals up to this size. */
#define LITERAL_MINUS_MAX 4096
/* Longer strings go as literals even when they could be quoted. */
#define QUOTED_MAX 1024
/* How long LOGOUT and the close after it may take. */
#define LOGOUT_TIMEOUT 5
#define APPEND_MAX_FLAGS 32

void
outbox_imap_timeouts_init_default (OutboxImapTimeouts *timeouts)
{
  g_return_if_fail (timeouts != NULL);

  timeouts->connect = 60;
  timeouts->command = 120;
  timeouts->append_data = 300;
}

struct _OutboxImapSession
{
  GObject parent_instance;

  /* Configuration, copied from the OutboxImapConfig. */
  OutboxServerUrl *url;  /* (owned) */
  char *password;        /* (owned) (nullable) wiped before it is freed */
  char *tls_ca_file;     /* (owned) (nullable) */
  char *tls_fingerprint; /* (owned) (nullable) */
  OutboxImapTimeouts timeouts;
  char *trace_name; /* (owned) "imap host:port", prefix of trace lines */

  /* Transport: the protocol code below only uses stream and reader. */
  GSocketConnection *connection;     /* (owned) (nullable) the raw TCP stream */
  GIOStream *stream;                 /* (owned) (nullable) connection, or TLS over it */
  OutboxLineReader *reader;          /* (owned) (nullable) reads stream */
  OutboxImapParser *parser;          /* (owned) */
  GTlsCertificate *peer_certificate; /* (owned) (nullable) */

  /* Protocol state. */
  char **capabilities;    /* (owned) (nullable) NULL while unknown */
  char *last_server_text; /* (owned) (nullable) */
  char *bye_text;         /* (owned) (nullable) set once the server said BYE */
  guint next_tag;
  gboolean authenticated;
  gboolean ready; /* open succeeded and nothing broke since */
  gboolean busy;  /* an operation is running */
};

G_DEFINE_TYPE (OutboxImapSession, outbox_imap_session, G_TYPE_OBJECT)

static void
wipe_string (char **secret)
{
  if (*secret == NULL)
    return;
  memset (*secret, 0, strlen (*secret));
  g_clear_pointer (secret, g_free);
}

/* Drops the connection at once, without LOGOUT or TLS close_notify: used
 * when it is broken or can no longer be trusted. */
static void
session_abort (OutboxImapSession *self)
{
  self->ready = FALSE;
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->reader);
  g_clear_object (&self->stream);
  g_clear_object (&self->connection);
}

static void
outbox_imap_session_finalize (GObject *object)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (object);

  session_abort (self);
  outbox_server_url_free (self->url);
  wipe_string (&self->password);
  g_free (self->tls_ca_file);
  g_free (self->tls_fingerprint);
  g_free (self->trace_name);
  outbox_imap_parser_free (self->parser);
  g_clear_object (&self->peer_certificate);
  g_strfreev (self->capabilities);
  g_free (self->last_server_text);
  g_free (self->bye_text);

  G_OBJECT_CLASS (outbox_imap_session_parent_class)->finalize (object);
}

static void
outbox_imap_session_class_init (OutboxImapSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_imap_session_finalize;
}

static void
outbox_imap_session_init (OutboxImapSession *self)
{
  self->parser = outbox_imap_parser_new ();
  self->next_tag = 1;
}

OutboxImapSession *
outbox_imap_session_new (const OutboxImapConfig *config)
{
  OutboxImapSession *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->url != NULL, NULL);
  g_return_val_if_fail (config->url->protocol == OUTBOX_PROTOCOL_IMAP, NULL);

  self = g_object_new (OUTBOX_TYPE_IMAP_SESSION, NULL);
  self->url = outbox_server_url_copy (config->url);
  self->password = g_strdup (config->password);
  self->tls_ca_file = g_strdup (config->tls_ca_file);
  self->tls_fingerprint = g_strdup (config->tls_fingerprint);
  self->timeouts = config->timeouts;

  if (strchr (self->url->host, ':') != NULL)
    self->trace_name = g_strdup_printf ("imap [%s]:%u", self->url->host, self->url->port);
  else
    self->trace_name = g_strdup_printf ("imap %s:%u", self->url->host, self->url->port);

  return self;
}

gboolean
outbox_imap_session_has_capability (OutboxImapSession *session, const char *name)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  for (char **c = session->capabilities; c != NULL && *c != NULL; c++)
    {
      if (g_ascii_strcasecmp (*c, name) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
stream_is_tls (OutboxImapSession *self)
{
  return G_IS_TLS_CONNECTION (self->stream);
}

/* Protocol trace ------------------------------------------------------
 *
 * Control and 8-bit octets are escaped; quotes, frequent in IMAP, are
 * not. */

#define TRACE_UNESCAPED "\""

static void
trace_client (OutboxImapSession *self, const char *text)
{
  g_autofree char *escaped = g_strescape (text, TRACE_UNESCAPED);

  g_debug ("%s C: %s", self->trace_name, escaped);
}

static void
trace_server (OutboxImapSession *self, const char *line)
{
  g_autofree char *escaped = g_strescape (line, TRACE_UNESCAPED);

  g_debug ("%s S: %s", self->trace_name, escaped);
}

/* Step guards ---------------------------------------------------------
 *
 * Every network step runs with its own GCancellable, cancelled either by
 * the caller's cancellable or by a timer; when the timer fired, the
 * resulting G_IO_ERROR_CANCELLED is reported as OUTBOX_IMAP_ERROR_TIMEOUT
 * naming the step. */

/* Guarded I/O ---------------------------------------------------------
 *
 * One guarded step either reads one whole response (lines and literals) or
 * writes one block of bytes.  @what names the step in error messages:
 * "greeting", "response to LIST", "LOGIN", "message data". */

typedef struct
{
  OutboxStepGuard *guard; /* (owned) */
  char *what;       /* (owned) */
  GBytes *bytes;    /* (owned) (nullable) being written */
} GuardedStep;

static void
guarded_step_free (GuardedStep *step)
{
  outbox_step_guard_free (step->guard);
  g_free (step->what);
  g_clear_pointer (&step->bytes, g_bytes_unref);
  g_free (step);
}

static GTask *
guarded_task_new (OutboxImapSession *self,
                  guint seconds,
                  const char *what,
                  gpointer source_tag,
                  GCancellable *cancellable,
                  GAsyncReadyCallback callback,
                  gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  GuardedStep *step = g_new0 (GuardedStep, 1);

  g_task_set_source_tag (task, source_tag);
  step->guard = outbox_step_guard_new (cancellable, seconds);
  step->what = g_strdup (what);
  g_task_set_task_data (task, step, (GDestroyNotify) guarded_step_free);
  return task;
}

/* Makes transport errors say what the session was doing. */
static GError *
read_error (OutboxImapSession *self, const GuardedStep *step, GError *error)
{
  GError *converted;

  if (outbox_step_guard_timed_out (step->guard, error))
    converted = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TIMEOUT, "No %s within %u s",
                             step->what, step->guard->seconds);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    converted = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED,
                             "The server closed the connection before the %s%s%s", step->what,
                             self->bye_text != NULL ? ": " : "",
                             self->bye_text != NULL ? self->bye_text : "");
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE))
    converted = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                             "The server sent a line longer than %u octets in the %s",
                             OUTBOX_IMAP_MAX_LINE, step->what);
  else
    return error;

  g_error_free (error);
  return converted;
}

static void
replace_string (char **slot, char *value)
{
  g_free (*slot);
  *slot = value;
}

/* What every response teaches, whatever command it answers. */
static void
note_response (OutboxImapSession *self, const OutboxImapResponse *response)
{
  if (response->capabilities != NULL)
    {
      g_strfreev (self->capabilities);
      self->capabilities = g_strdupv (response->capabilities);
    }
  if (response->status != OUTBOX_IMAP_STATUS_NONE)
    replace_string (&self->last_server_text, outbox_imap_response_to_string (response));
  if (response->status == OUTBOX_IMAP_STATUS_BYE)
    replace_string (&self->bye_text, g_strdup (self->last_server_text));
}

static void read_response_line (GTask *task);

static void
response_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  g_autofree char *line = NULL;
  GError *error = NULL;
  gsize len = 0;

  line = outbox_line_reader_read_line_finish (OUTBOX_LINE_READER (source), result, &len, &error);
  if (line == NULL)
    {
      g_task_return_error (task, read_error (self, g_task_get_task_data (task), error));
      return;
    }
  trace_server (self, line);
  if (!outbox_imap_parser_feed_line (self->parser, line, len, &response, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (response == NULL)
    {
      read_response_line (task);
      return;
    }
  note_response (self, response);
  g_task_return_pointer (task, g_steal_pointer (&response),
                         (GDestroyNotify) outbox_imap_response_free);
}

static void
read_response_line (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  GuardedStep *step = g_task_get_task_data (task);

  outbox_line_reader_read_line_async (self->reader, step->guard->cancellable, response_line_read,
                                      g_object_ref (task));
}

static gboolean
session_check_connected (OutboxImapSession *self, GTask *task)
{
  if (self->stream != NULL)
    return TRUE;
  g_task_return_new_error (task, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED,
                           "The connection to the server is closed");
  return FALSE;
}

/* Reads one response, however many lines and literals it takes. */
static void
response_read_async (OutboxImapSession *self,
                     guint seconds,
                     const char *what,
                     GCancellable *cancellable,
                     GAsyncReadyCallback callback,
                     gpointer user_data)
{
  g_autoptr (GTask) task = guarded_task_new (self, seconds, what, response_read_async, cancellable,
                                             callback, user_data);

  if (session_check_connected (self, task))
    read_response_line (task);
}

static OutboxImapResponse *
response_read_finish (OutboxImapSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == response_read_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
bytes_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GuardedStep *step = g_task_get_task_data (task);
  GError *error = NULL;

  if (g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (outbox_step_guard_timed_out (step->guard, error))
    {
      g_clear_error (&error);
      error = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TIMEOUT,
                           "Could not send %s within %u s", step->what, step->guard->seconds);
    }
  g_task_return_error (task, error);
}

static void
bytes_write_async (OutboxImapSession *self,
                   GBytes *bytes,
                   guint seconds,
                   const char *what,
                   GCancellable *cancellable,
                   GAsyncReadyCallback callback,
                   gpointer user_data)
{
  g_autoptr (GTask) task = guarded_task_new (self, seconds, what, bytes_write_async, cancellable,
                                             callback, user_data);
  GuardedStep *step = g_task_get_task_data (task);
  gsize len = 0;
  const void *data = g_bytes_get_data (bytes, &len);

  if (!session_check_connected (self, task))
    return;
  step->bytes = g_bytes_ref (bytes);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (self->stream), data, len,
                                   G_PRIORITY_DEFAULT, step->guard->cancellable, bytes_written,
                                   g_object_ref (task));
}

static gboolean
bytes_write_finish (OutboxImapSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bytes_write_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Commands ------------------------------------------------------------
 *
 * A command is built as parts.  A synchronizing literal {n} ends a part:
 * the next one goes out only after the server's "+".  Non-synchronizing
 * literals {n+} (RFC 7888) and quoted strings stay in the same part.  A
 * part is either bytes or a stream of message data.  Each part keeps its
 * own trace text, in which passwords are replaced by "****"; the bytes of
 * every part are wiped once written, as they may hold a secret. */

typedef struct
{
  GBytes *bytes;        /* (owned) (nullable) */
  GInputStream *stream; /* (owned) (nullable) message data */
  guint64 stream_size;
  gboolean after_continuation; /* wait for "+" before sending it */
  char *trace;                 /* (owned) */
} CommandPart;

static void
command_part_free (CommandPart *part)
{
  g_clear_pointer (&part->bytes, g_bytes_unref);
  g_clear_object (&part->stream);
  g_free (part->trace);
  g_free (part);
}

typedef struct
{
  char *tag;            /* (owned) */
  char *verb;           /* (owned) for messages: "LIST" */
  char *awaited;        /* (owned) "response to LIST" */
  guint seconds;        /* per response and per write */
  GPtrArray *parts;     /* (owned) (element-type CommandPart) */
  GString *text;        /* (owned) the part being built */
  GString *trace;       /* (owned) its trace */
  gboolean next_waits;  /* the part being built follows a {n} */
  /* LIST only: the first selectable mailbox named list_name, or marked
   * \Sent when list_name is NULL, is kept in list_match. */
  gboolean collects_mailbox;
  char *list_name;              /* (owned) (nullable) */
  OutboxImapMailbox *list_match; /* (owned) (nullable) */
} Command;

static void
wipe_gstring (gpointer data)
{
  GString *text = data;

  memset (text->str, 0, text->len);
  g_string_free (text, TRUE);
}

static void
command_free (Command *command)
{
  g_free (command->tag);
  g_free (command->verb);
  g_free (command->awaited);
  g_ptr_array_unref (command->parts);
  wipe_gstring (command->text);
  g_string_free (command->trace, TRUE);
  g_free (command->list_name);
  outbox_imap_mailbox_free (command->list_match);
  g_free (command);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Command, command_free)

static Command *
command_new (OutboxImapSession *self, const char *verb, guint seconds)
{
  Command *command = g_new0 (Command, 1);

  command->tag = g_strdup_printf ("A%u", self->next_tag++);
  command->verb = g_strdup (verb);
  command->awaited = g_strdup_printf ("response to %s", verb);
  command->seconds = seconds;
  command->parts = g_ptr_array_new_with_free_func ((GDestroyNotify) command_part_free);
  command->text = g_string_sized_new (256);
  command->trace = g_string_new (NULL);
  g_string_append_printf (command->text, "%s ", command->tag);
  g_string_append (command->trace, command->text->str);
  return command;
}

static void
command_add (Command *command, const char *text)
{
  g_string_append (command->text, text);
  g_string_append (command->trace, text);
}

static void
command_add_secret (Command *command, const char *secret)
{
  g_string_append (command->text, secret);
  g_string_append (command->trace, "****");
}

static void
command_end_part (Command *command)
{
  CommandPart *part = g_new0 (CommandPart, 1);
  GString *text = g_steal_pointer (&command->text);

  part->bytes = g_bytes_new_with_free_func (text->str, text->len, wipe_gstring, text);
  part->after_continuation = command->next_waits;
  part->trace = g_string_free (g_steal_pointer (&command->trace), FALSE);
  g_ptr_array_add (command->parts, part);
  command->text = g_string_sized_new (256);
  command->trace = g_string_new (NULL);
  command->next_waits = FALSE;
}

/* Ends the line and makes what follows wait for the server's "+": for
 * AUTHENTICATE without an initial response. */
static void
command_await_continuation (Command *command)
{
  g_string_append (command->text, "\r\n");
  command_end_part (command);
  command->next_waits = TRUE;
}

static gboolean
literal_can_be_nonsync (OutboxImapSession *self, guint64 size)
{
  return outbox_imap_session_has_capability (self, "LITERAL+") ||
         (outbox_imap_session_has_capability (self, "LITERAL-") && size <= LITERAL_MINUS_MAX);
}

/* The marker ends the part; what follows waits for the server's "+"
 * unless the literal can be non-synchronizing.  A @secret literal's size is
 * not traced either. */
static void
command_add_literal_marker (OutboxImapSession *self,
                            Command *command,
                            guint64 size,
                            gboolean secret)
{
  gboolean nonsync = literal_can_be_nonsync (self, size);
  g_autofree char *marker =
      g_strdup_printf ("{%" G_GUINT64_FORMAT "%s}", size, nonsync ? "+" : "");

  g_string_append_printf (command->text, "%s\r\n", marker);
  g_string_append (command->trace, secret ? "****" : marker);
  command_end_part (command);
  command->next_waits = !nonsync;
}

static gboolean
can_be_quoted (const char *value)
{
  if (strlen (value) > QUOTED_MAX)
    return FALSE;
  for (const char *p = value; *p != '\0'; p++)
    {
      if ((guchar) *p > 0x7f || *p == '\r' || *p == '\n')
        return FALSE;
    }
  return TRUE;
}

static char *
quote_string (const char *value)
{
  GString *quoted = g_string_new ("\"");

  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_c (quoted, '\\');
      g_string_append_c (quoted, *p);
    }
  g_string_append_c (quoted, '"');
  return g_string_free (quoted, FALSE);
}

/* Adds @value as an IMAP string: quoted when it can be, a literal
 * otherwise.  A @secret is traced as "****". */
static void
command_add_string (OutboxImapSession *self, Command *command, const char *value, gboolean secret)
{
  g_autofree char *quoted = NULL;

  if (can_be_quoted (value))
    {
      quoted = quote_string (value);
      if (secret)
        command_add_secret (command, quoted);
      else
        command_add (command, quoted);
      wipe_string (&quoted);
      return;
    }
  command_add_literal_marker (self, command, strlen (value), secret);
  g_string_append (command->text, value);
  if (!secret)
    g_string_append (command->trace, value);
}

static void
command_add_stream (OutboxImapSession *self,
                    Command *command,
                    GInputStream *stream,
                    guint64 size)
{
  CommandPart *part = g_new0 (CommandPart, 1);

  command_add_literal_marker (self, command, size, FALSE);
  part->stream = g_object_ref (stream);
  part->stream_size = size;
  part->after_continuation = command->next_waits;
  part->trace = g_strdup_printf ("(%" G_GUINT64_FORMAT " octets of message data)", size);
  g_ptr_array_add (command->parts, part);
  command->next_waits = FALSE;
}

static void
command_end (Command *command)
{
  g_string_append (command->text, "\r\n");
  command_end_part (command);
}

/* A whole command in one part, such as "CAPABILITY". */
static Command *
simple_command (OutboxImapSession *self, const char *line, guint seconds)
{
  Command *command = command_new (self, line, seconds);

  command_add (command, line);
  command_end (command);
  return command;
}

/* Running a command ---------------------------------------------------
 *
 * The parts go out in order; before a part that follows a synchronizing
 * literal, responses are read until the "+" comes.  Then responses are read
 * until the tagged one, which is the result.  A tagged NO or BAD may come
 * instead of a "+": the rest of the command is then never sent and the
 * session stays usable.  Untagged responses are noted on the way (and LIST
 * ones matched).  Any other failure drops the connection. */

typedef struct
{
  Command *command; /* (owned) */
  guint next_part;
  gboolean continued;      /* the "+" for next_part came */
  gboolean streaming;      /* next_part is a stream being sent */
  guint64 stream_left;     /* octets of it still to send */
} CommandRun;

static void
command_run_free (CommandRun *run)
{
  g_clear_pointer (&run->command, command_free);
  g_free (run);
}

static void command_run_next (GTask *task);

static void
command_fail (GTask *task, GError *error)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  session_abort (self);
  g_task_return_error (task, error);
}

static CommandPart *
command_run_part (CommandRun *run)
{
  if (run->next_part >= run->command->parts->len)
    return NULL;
  return g_ptr_array_index (run->command->parts, run->next_part);
}

static void
command_part_done (GTask *task)
{
  CommandRun *run = g_task_get_task_data (task);

  run->next_part++;
  run->continued = FALSE;
  run->streaming = FALSE;
  command_run_next (task);
}

static void
command_part_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  CommandRun *run = g_task_get_task_data (task);
  GError *error = NULL;

  if (!bytes_write_finish (OUTBOX_IMAP_SESSION (source), result, &error))
    {
      command_fail (task, error);
      return;
    }
  if (run->streaming)
    command_run_next (task);
  else
    command_part_done (task);
}

/* Message data */

static GError *
message_size_error (guint64 size, const char *how)
{
  return g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                      "The message is %s than the %" G_GUINT64_FORMAT " octets announced", how,
                      size);
}

static void
stream_chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  CommandPart *part = command_run_part (run);
  g_autoptr (GBytes) chunk = NULL;
  GError *error = NULL;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      g_prefix_error (&error, "Could not read the message: ");
      command_fail (task, error);
      return;
    }
  if (run->stream_left == 0)
    {
      /* The check for octets beyond the announced size. */
      if (g_bytes_get_size (chunk) > 0)
        command_fail (task, message_size_error (part->stream_size, "longer"));
      else
        command_part_done (task);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      command_fail (task, message_size_error (part->stream_size, "shorter"));
      return;
    }
  run->stream_left -= g_bytes_get_size (chunk);
  bytes_write_async (self, chunk, self->timeouts.append_data, "message data",
                     g_task_get_cancellable (task), command_part_written, g_object_ref (task));
}

static void
command_stream_next (GTask *task, CommandPart *part)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  gsize count;

  if (!run->streaming)
    {
      trace_client (self, part->trace);
      run->streaming = TRUE;
      run->stream_left = part->stream_size;
    }
  /* Once the announced size is sent, one more octet is asked for: there
   * must be none. */
  count = run->stream_left > 0 ? (gsize) MIN (run->stream_left, APPEND_CHUNK) : 1;
  g_input_stream_read_bytes_async (part->stream, count, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), stream_chunk_read,
                                   g_object_ref (task));
}

/* Responses */

/* \Noselect and \NonExistent (RFC 5258) mailboxes cannot take a message. */
static gboolean
mailbox_is_selectable (const OutboxImapMailbox *mailbox)
{
  return !outbox_imap_mailbox_has_flag (mailbox, "\\Noselect") &&
         !outbox_imap_mailbox_has_flag (mailbox, "\\NonExistent");
}

static void
command_take_list (Command *command, const OutboxImapResponse *response)
{
  const OutboxImapMailbox *mailbox = response->mailbox;
  gboolean wanted;

  if (!command->collects_mailbox || command->list_match != NULL ||
      !mailbox_is_selectable (mailbox))
    return;
  if (command->list_name != NULL)
    wanted = g_str_equal (mailbox->name, command->list_name);
  else
    wanted = outbox_imap_mailbox_has_flag (mailbox, "\\Sent");
  if (wanted)
    command->list_match = outbox_imap_mailbox_copy (mailbox);
}

/* TRUE to read on; FALSE with @error to fail; FALSE without: @response is
 * the tagged result. */
static gboolean
command_take_response (GTask *task, OutboxImapResponse *response, GError **error)
{
  CommandRun *run = g_task_get_task_data (task);
  CommandPart *part = command_run_part (run);
  g_autofree char *text = NULL;

  switch (response->kind)
    {
    case OUTBOX_IMAP_RESPONSE_UNTAGGED:
      if (response->data == OUTBOX_IMAP_DATA_LIST)
        command_take_list (run->command, response);
      return TRUE;
    case OUTBOX_IMAP_RESPONSE_CONTINUATION:
      if (part != NULL && part->after_continuation && !run->continued)
        {
          run->continued = TRUE;
          return TRUE;
        }
      text = outbox_imap_response_to_string (response);
      g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                   "The server sent an unexpected continuation request to %s: %s",
                   run->command->verb, text);
      return FALSE;
    case OUTBOX_IMAP_RESPONSE_TAGGED:
    default:
      if (!g_str_equal (response->tag, run->command->tag))
        g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                     "The server answered %s with the tag “%s” instead of “%s”",
                     run->command->verb, response->tag, run->command->tag);
      else if (part != NULL && response->status == OUTBOX_IMAP_STATUS_OK)
        g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                     "The server accepted %s before it was complete", run->command->verb);
      return FALSE;
    }
}

static void
command_response_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = response_read_finish (OUTBOX_IMAP_SESSION (source), result, &error);
  if (response == NULL)
    {
      command_fail (task, error);
      return;
    }
  if (command_take_response (task, response, &error))
    command_run_next (task);
  else if (error != NULL)
    command_fail (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&response),
                           (GDestroyNotify) outbox_imap_response_free);
}

static void
command_run_next (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  CommandPart *part = command_run_part (run);

  if (part == NULL || (part->after_continuation && !run->continued))
    {
      response_read_async (self, run->command->seconds, run->command->awaited,
                           g_task_get_cancellable (task), command_response_read,
                           g_object_ref (task));
      return;
    }
  if (part->stream != NULL)
    {
      command_stream_next (task, part);
      return;
    }
  if (*part->trace != '\0')
    trace_client (self, part->trace);
  bytes_write_async (self, part->bytes, run->command->seconds, run->command->verb,
                     g_task_get_cancellable (task), command_part_written, g_object_ref (task));
}

/* Runs @command (transfer full); the result is its tagged response. */
static void
command_async (OutboxImapSession *self,
               Command *command,
               GCancellable *cancellable,
               GAsyncReadyCallback callback,
               gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  CommandRun *run = g_new0 (CommandRun, 1);

  g_task_set_source_tag (task, command_async);
  run->command = command;
  g_task_set_task_data (task, run, (GDestroyNotify) command_run_free);
  if (session_check_connected (self, task))
    command_run_next (task);
}

/* The tagged response, or NULL on error.  With @out_command, the command
 * (with its LIST match) goes back to the caller. */
static OutboxImapResponse *
command_finish (OutboxImapSession *self,
                GAsyncResult *result,
                Command **out_command,
                GError **error)
{
  CommandRun *run;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == command_async, NULL);

  run = g_task_get_task_data (G_TASK (result));
  if (out_command != NULL)
    *out_command = g_steal_pointer (&run->command);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GError *
reply_error (gint code, const char *what, const OutboxImapResponse *response)
{
  g_autofree char *text = outbox_imap_response_to_string (response);

  return g_error_new (OUTBOX_IMAP_ERROR, code, "%s: %s", what, text);
}

/* Transport set-up ---------------------------------------------------- */

static void
use_connection (OutboxImapSession *self, GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr (GError) error = NULL;

  /* Commands are small and each waits for its response: Nagle only adds
   * delay. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("%s: could not set TCP_NODELAY: %s", self->trace_name, error->message);

  self->connection = g_object_ref (connection);
  self->stream = G_IO_STREAM (g_object_ref (connection));
  self->reader =
      outbox_line_reader_new (g_io_stream_get_input_stream (self->stream), OUTBOX_IMAP_MAX_LINE);
}

/* Replaces the plain stream with @tls.  The old reader goes away with
 * whatever it held (the caller made sure it held nothing), and every
 * capability learnt in plaintext is forgotten. */
static void
use_tls (OutboxImapSession *self, GIOStream *tls)
{
  g_clear_object (&self->reader);
  g_set_object (&self->stream, tls);
  self->reader = outbox_line_reader_new (g_io_stream_get_input_stream (tls), OUTBOX_IMAP_MAX_LINE);
  g_set_object (&self->peer_certificate,
                g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (tls)));
  g_clear_pointer (&self->capabilities, g_strfreev);
}

/* Security item 5: credentials only over TLS, or in plaintext to this
 * machine when the user asked for +insecure. */
static gboolean
login_allowed (OutboxImapSession *self)
{
  if (stream_is_tls (self))
    return TRUE;
  return self->url->security == OUTBOX_SECURITY_INSECURE &&
         outbox_server_url_is_loopback (self->url);
}

/* The open state machine ----------------------------------------------
 *
 * outbox_imap_session_open_async() walks these states; each state starts
 * one asynchronous step and the step's callback picks the next state,
 * mostly through next_open_state(), which asks in order: are the
 * capabilities known, is TLS up when the URL requires STARTTLS, is the
 * session logged in.
 *
 *   OPEN_CONNECT        GSocketClient connects to host:port (connect
 *                       timeout).  Next: OPEN_IMPLICIT_TLS for imaps,
 *                       OPEN_GREETING otherwise.
 *   OPEN_IMPLICIT_TLS   TLS handshake on the fresh TCP stream (connect
 *                       timeout), then the pin check.  Next: OPEN_GREETING.
 *   OPEN_GREETING       reads the greeting (command timeout): "* OK" goes
 *                       on; "* PREAUTH" counts as logged in, but fails with
 *                       TLS_REQUIRED in plaintext when STARTTLS is required
 *                       (STARTTLS is not allowed once authenticated, and
 *                       a man in the middle could answer PREAUTH to keep
 *                       the session in plaintext); "* BYE" fails with
 *                       CLOSED.  A [CAPABILITY ...] code saves a command.
 *   OPEN_CAPABILITY     CAPABILITY; the untagged answer replaces what was
 *                       known.  Next: next_open_state().
 *   OPEN_STARTTLS       STARTTLS, which must have been offered; only OK
 *                       goes on (else TLS_REQUIRED).  Any byte already
 *                       buffered after that OK was sent before the TLS
 *                       handshake and is an injection attempt
 *                       (CVE-2011-0411, CVE-2020-14928): fail.
 *                       Next: OPEN_STARTTLS_HANDSHAKE.
 *   OPEN_STARTTLS_HANDSHAKE  TLS over the raw TCP stream (never over the
 *                       line reader), pin check, a fresh line reader, all
 *                       capabilities forgotten.  Next: OPEN_CAPABILITY.
 *   OPEN_LOGIN          refuses to go on in plaintext (except +insecure to
 *                       loopback) or without a user or password.  With
 *                       AUTH=PLAIN: AUTHENTICATE PLAIN, the credentials as
 *                       an initial response when SASL-IR is offered, else
 *                       after the server's "+".  Otherwise LOGIN, unless
 *                       LOGINDISABLED.  The capabilities are forgotten as
 *                       they may change; the OK may carry the new ones.
 *                       NO fails with AUTH.  Next: next_open_state().
 *   OPEN_DONE           the session is ready for commands.
 *
 * Any failure closes the connection: a half-opened session is never
 * reused. */
typedef enum
{
  OPEN_CONNECT,
  OPEN_IMPLICIT_TLS,
  OPEN_GREETING,
  OPEN_CAPABILITY,
  OPEN_STARTTLS,
  OPEN_STARTTLS_HANDSHAKE,
  OPEN_LOGIN,
  OPEN_DONE,
} OpenState;

typedef struct
{
  OpenState state;
} OpenData;

static void
open_data_free (OpenData *data)
{
  g_free (data);
}

static OpenState
next_open_state (OutboxImapSession *self)
{
  if (self->capabilities == NULL)
    return OPEN_CAPABILITY;
  if (self->url->security == OUTBOX_SECURITY_STARTTLS && !stream_is_tls (self))
    return OPEN_STARTTLS;
  if (!self->authenticated)
    return OPEN_LOGIN;
  return OPEN_DONE;
}

static void open_advance (GTask *task);

static void
open_fail (GTask *task, GError *error)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  g_debug ("%s: open failed: %s", self->trace_name, error->message);
  session_abort (self);
  self->busy = FALSE;
  g_task_return_error (task, error);
}

static void open_command_done (GObject *source, GAsyncResult *result, gpointer user_data);

static void
open_command (GTask *task, Command *command)
{
  command_async (g_task_get_source_object (task), command, g_task_get_cancellable (task),
                 open_command_done, g_object_ref (task));
}

/* Connect */

static void
connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GSocketConnection) connection = NULL;
  GError *error = NULL;

  connection = outbox_transport_connect_finish (result, &error);
  if (connection == NULL)
    {
      open_fail (task, error);
      return;
    }
  use_connection (self, connection);
  data->state = self->url->security == OUTBOX_SECURITY_TLS ? OPEN_IMPLICIT_TLS : OPEN_GREETING;
  open_advance (task);
}

static void
open_connect (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  outbox_transport_connect_async (self->url->host, self->url->port, self->timeouts.connect,
                                  OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TIMEOUT,
                                  g_task_get_cancellable (task), connected, g_object_ref (task));
}

/* TLS handshake, implicit or after STARTTLS */

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GTlsCertificate) offered = NULL;
  GError *error = NULL;

  tls = outbox_transport_handshake_finish (result, &offered, &error);
  if (tls == NULL)
    {
      g_set_object (&self->peer_certificate, offered);
      open_fail (task, error);
      return;
    }
  use_tls (self, tls);
  g_debug ("%s: TLS is up", self->trace_name);
  data->state = data->state == OPEN_IMPLICIT_TLS ? OPEN_GREETING : next_open_state (self);
  open_advance (task);
}

static void
open_handshake (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  outbox_transport_handshake_async (G_IO_STREAM (self->connection), self->url->host,
                                    self->url->port, self->tls_ca_file, self->tls_fingerprint,
                                    self->timeouts.connect, OUTBOX_IMAP_ERROR,
                                    OUTBOX_IMAP_ERROR_TIMEOUT, g_task_get_cancellable (task),
                                    handshake_done, g_object_ref (task));
}

/* Greeting */

static gboolean
handle_greeting (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  gboolean untagged = response->kind == OUTBOX_IMAP_RESPONSE_UNTAGGED;

  if (untagged && response->status == OUTBOX_IMAP_STATUS_BYE)
    {
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_CLOSED,
                                             "The server refused the connection", response));
      return FALSE;
    }
  if (untagged && response->status == OUTBOX_IMAP_STATUS_PREAUTH)
    {
      if (self->url->security == OUTBOX_SECURITY_STARTTLS && !stream_is_tls (self))
        {
          g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TLS_REQUIRED,
                       "%s:%u greeted with PREAUTH in plaintext, which rules out STARTTLS; "
                       "this account requires TLS",
                       self->url->host, self->url->port);
          return FALSE;
        }
      self->authenticated = TRUE;
      return TRUE;
    }
  if (untagged && response->status == OUTBOX_IMAP_STATUS_OK)
    return TRUE;
  g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_PROTOCOL,
                                         "The server did not send an IMAP greeting", response));
  return FALSE;
}

static void
greeting_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = response_read_finish (self, result, &error);
  if (response == NULL || !handle_greeting (self, response, &error))
    {
      open_fail (task, error);
      return;
    }
  data->state = next_open_state (self);
  open_advance (task);
}

static void
open_read_greeting (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  response_read_async (self, self->timeouts.command, "greeting", g_task_get_cancellable (task),
                       greeting_read, g_object_ref (task));
}

/* STARTTLS */

static void
open_send_starttls (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  if (!outbox_imap_session_has_capability (self, "STARTTLS"))
    {
      open_fail (task, g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TLS_REQUIRED,
                                    "%s:%u does not offer STARTTLS, which this account requires; "
                                    "Outbox never falls back to plaintext",
                                    self->url->host, self->url->port));
      return;
    }
  open_command (task, simple_command (self, "STARTTLS", self->timeouts.command));
}

static gboolean
handle_starttls (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_TLS_REQUIRED,
                                             "The server refused STARTTLS, which this account "
                                             "requires",
                                             response));
      return FALSE;
    }
  if (outbox_line_reader_has_buffered (self->reader))
    {
      g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_INJECTION,
                   "%s:%u sent data after its answer to STARTTLS and before the TLS handshake; "
                   "someone may be tampering with the connection",
                   self->url->host, self->url->port);
      return FALSE;
    }
  return TRUE;
}

/* Login */

static gboolean login_unavailable (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
login_unavailable (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (OUTBOX_IMAP_ERROR,
                                                OUTBOX_IMAP_ERROR_AUTH_UNAVAILABLE, format, args));
  va_end (args);
  return FALSE;
}

static gboolean
check_login_possible (OutboxImapSession *self, GError **error)
{
  if (self->url->user == NULL)
    return login_unavailable (error,
                              "The IMAP server %s needs a user name; give one in the URL, "
                              "such as imaps://me@%s",
                              self->url->host, self->url->host);
  if (!login_allowed (self))
    return login_unavailable (error,
                              "Refusing to send the password for %s over an unencrypted "
                              "connection to %s",
                              self->url->user, self->url->host);
  if (self->password == NULL)
    return login_unavailable (error, "No password stored for %s on %s", self->url->user,
                              self->url->host);
  return TRUE;
}

/* "\0user\0password" in base64 (RFC 4616). */
static char *
plain_initial_response (OutboxImapSession *self)
{
  gsize user_len = strlen (self->url->user);
  gsize password_len = strlen (self->password);
  gsize len = user_len + password_len + 2;
  char *message = g_malloc0 (len);
  char *encoded;

  memcpy (message + 1, self->url->user, user_len);
  memcpy (message + user_len + 2, self->password, password_len);
  encoded = g_base64_encode ((const guchar *) message, len);
  memset (message, 0, len);
  g_free (message);
  return encoded;
}

static Command *
authenticate_plain_command (OutboxImapSession *self)
{
  Command *command = command_new (self, "AUTHENTICATE", self->timeouts.command);
  char *initial = plain_initial_response (self);

  command_add (command, "AUTHENTICATE PLAIN");
  if (outbox_imap_session_has_capability (self, "SASL-IR"))
    command_add (command, " ");
  else
    command_await_continuation (command);
  command_add_secret (command, initial);
  command_end (command);
  wipe_string (&initial);
  return command;
}

static Command *
login_command (OutboxImapSession *self)
{
  Command *command = command_new (self, "LOGIN", self->timeouts.command);

  command_add (command, "LOGIN ");
  command_add_string (self, command, self->url->user, FALSE);
  command_add (command, " ");
  command_add_string (self, command, self->password, TRUE);
  command_end (command);
  return command;
}

static void
open_send_login (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  Command *command;
  GError *error = NULL;

  if (!check_login_possible (self, &error))
    {
      open_fail (task, error);
      return;
    }
  if (outbox_imap_session_has_capability (self, "AUTH=PLAIN"))
    command = authenticate_plain_command (self);
  else if (!outbox_imap_session_has_capability (self, "LOGINDISABLED"))
    command = login_command (self);
  else
    {
      login_unavailable (&error,
                         "%s:%u disables LOGIN and offers no mechanism that Outbox supports "
                         "(AUTH=PLAIN)",
                         self->url->host, self->url->port);
      open_fail (task, error);
      return;
    }
  g_clear_pointer (&self->capabilities, g_strfreev);
  open_command (task, command);
}

static gboolean
handle_login (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  switch (response->status)
    {
    case OUTBOX_IMAP_STATUS_OK:
      g_debug ("%s: logged in as %s", self->trace_name, self->url->user);
      self->authenticated = TRUE;
      return TRUE;
    case OUTBOX_IMAP_STATUS_NO:
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_AUTH,
                                             "The server refused the user name or password",
                                             response));
      return FALSE;
    default:
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_REPLY, "Login failed", response));
      return FALSE;
    }
}

static gboolean
handle_capability (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      g_propagate_error (error,
                         reply_error (OUTBOX_IMAP_ERROR_REPLY, "CAPABILITY failed", response));
      return FALSE;
    }
  if (self->capabilities == NULL)
    {
      g_set_error_literal (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                           "The server answered CAPABILITY without listing its capabilities");
      return FALSE;
    }
  return TRUE;
}

static gboolean
open_handle_response (OutboxImapSession *self,
                      OpenData *data,
                      const OutboxImapResponse *response,
                      GError **error)
{
  switch (data->state)
    {
    case OPEN_CAPABILITY:
      if (!handle_capability (self, response, error))
        return FALSE;
      break;
    case OPEN_STARTTLS:
      if (!handle_starttls (self, response, error))
        return FALSE;
      data->state = OPEN_STARTTLS_HANDSHAKE;
      return TRUE;
    case OPEN_LOGIN:
      if (!handle_login (self, response, error))
        return FALSE;
      break;
    case OPEN_CONNECT:
    case OPEN_IMPLICIT_TLS:
    case OPEN_GREETING:
    case OPEN_STARTTLS_HANDSHAKE:
    case OPEN_DONE:
    default:
      g_assert_not_reached ();
    }
  data->state = next_open_state (self);
  return TRUE;
}

static void
open_command_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL || !open_handle_response (self, g_task_get_task_data (task), response, &error))
    {
      open_fail (task, error);
      return;
    }
  open_advance (task);
}

static void
open_succeed (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  self->ready = TRUE;
  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

static void
open_advance (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case OPEN_CONNECT:
      open_connect (task);
      break;
    case OPEN_IMPLICIT_TLS:
    case OPEN_STARTTLS_HANDSHAKE:
      open_handshake (task);
      break;
    case OPEN_GREETING:
      open_read_greeting (task);
      break;
    case OPEN_CAPABILITY:
      open_command (task, simple_command (self, "CAPABILITY", self->timeouts.command));
      break;
    case OPEN_STARTTLS:
      open_send_starttls (task);
      break;
    case OPEN_LOGIN:
      open_send_login (task);
      break;
    case OPEN_DONE:
    default:
      open_succeed (task);
      break;
    }
}

void
outbox_imap_session_open_async (OutboxImapSession *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  OpenData *data;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_open_async);
  data = g_new0 (OpenData, 1);
  data->state = OPEN_CONNECT;
  g_task_set_task_data (task, data, (GDestroyNotify) open_data_free);

  if (session->busy || session->stream != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The IMAP session is already open or busy");
      return;
    }
  session->busy = TRUE;
  open_advance (task);
}

gboolean
outbox_imap_session_open_finish (OutboxImapSession *session, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_open_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Operations on an open session --------------------------------------- */

static gboolean
operation_can_start (OutboxImapSession *self, GError **error)
{
  if (self->busy)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                           "The IMAP session is busy with another operation");
      return FALSE;
    }
  if (!outbox_imap_session_is_open (self))
    {
      g_set_error_literal (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED,
                           "The IMAP session is not open");
      return FALSE;
    }
  return TRUE;
}

static void
operation_return_error (GTask *task, GError *error)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  self->busy = FALSE;
  g_task_return_error (task, error);
}

/* Finding the Sent mailbox --------------------------------------------
 *
 *   FIND_SPECIAL_USE  with SPECIAL-USE offered: LIST "" "*" RETURN
 *                     (SPECIAL-USE); a selectable \Sent mailbox ends the
 *                     search.
 *   FIND_CONFIGURED   with a configured name: LIST "" NAME; the mailbox
 *                     must come back under exactly that name.
 *   FIND_DEFAULT      LIST "" "Sent", the same way.
 *   FIND_DONE         the match, or NO_SENT_FOLDER.
 *
 * A NO or BAD to a LIST fails the search (REPLY) but leaves the session
 * open. */
typedef enum
{
  FIND_SPECIAL_USE,
  FIND_CONFIGURED,
  FIND_DEFAULT,
  FIND_DONE,
} FindState;

typedef struct
{
  FindState state;
  char *configured_name;    /* (owned) (nullable) modified UTF-7 */
  OutboxImapMailbox *found; /* (owned) (nullable) */
} FindData;

static void
find_data_free (FindData *data)
{
  g_free (data->configured_name);
  outbox_imap_mailbox_free (data->found);
  g_free (data);
}

static void find_advance (GTask *task);

static void
find_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  FindData *data = g_task_get_task_data (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  g_autoptr (Command) command = NULL;
  GError *error = NULL;

  response = command_finish (self, result, &command, &error);
  if (response == NULL)
    {
      operation_return_error (task, error);
      return;
    }
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      operation_return_error (task, reply_error (OUTBOX_IMAP_ERROR_REPLY, "LIST failed", response));
      return;
    }
  data->found = g_steal_pointer (&command->list_match);
  data->state = data->found != NULL ? FIND_DONE : data->state + 1;
  find_advance (task);
}

/* LIST "" @pattern, keeping the mailbox named @name, or the \Sent one when
 * @name is NULL. */
static void
find_list (GTask *task, const char *pattern, const char *name, const char *options)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  Command *command = command_new (self, "LIST", self->timeouts.command);

  command_add (command, "LIST \"\" ");
  command_add_string (self, command, pattern, FALSE);
  if (options != NULL)
    command_add (command, options);
  command_end (command);
  command->collects_mailbox = TRUE;
  command->list_name = g_strdup (name);
  command_async (self, command, g_task_get_cancellable (task), find_listed, g_object_ref (task));
}

static void
find_done (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  FindData *data = g_task_get_task_data (task);

  if (data->found == NULL)
    {
      operation_return_error (
          task, g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_NO_SENT_FOLDER,
                             "%s has no mailbox marked \\Sent%s%s%s and none named “Sent”",
                             self->url->host, data->configured_name != NULL ? ", none named “" : "",
                             data->configured_name != NULL ? data->configured_name : "",
                             data->configured_name != NULL ? "”" : ""));
      return;
    }
  g_debug ("%s: sent mail goes to %s", self->trace_name, data->found->display_name);
  self->busy = FALSE;
  g_task_return_pointer (task, g_steal_pointer (&data->found),
                         (GDestroyNotify) outbox_imap_mailbox_free);
}

static void
find_advance (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  FindData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case FIND_SPECIAL_USE:
      if (outbox_imap_session_has_capability (self, "SPECIAL-USE"))
        {
          find_list (task, "*", NULL, " RETURN (SPECIAL-USE)");
          return;
        }
      data->state = FIND_CONFIGURED;
      G_GNUC_FALLTHROUGH;
    case FIND_CONFIGURED:
      if (data->configured_name != NULL)
        {
          find_list (task, data->configured_name, data->configured_name, NULL);
          return;
        }
      data->state = FIND_DEFAULT;
      G_GNUC_FALLTHROUGH;
    case FIND_DEFAULT:
      if (g_strcmp0 (data->configured_name, "Sent") != 0)
        {
          find_list (task, "Sent", "Sent", NULL);
          return;
        }
      data->state = FIND_DONE;
      G_GNUC_FALLTHROUGH;
    case FIND_DONE:
    default:
      find_done (task);
      return;
    }
}

void
outbox_imap_session_find_sent_async (OutboxImapSession *session,
                                     const char *configured_name,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  FindData *data;
  GError *error = NULL;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_find_sent_async);
  data = g_new0 (FindData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) find_data_free);

  if (configured_name != NULL && *configured_name != '\0')
    {
      data->configured_name = outbox_imap_utf7_encode (configured_name);
      if (data->configured_name == NULL)
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                   "The Sent mailbox name is not valid UTF-8");
          return;
        }
    }
  if (!operation_can_start (session, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  session->busy = TRUE;
  find_advance (task);
}

OutboxImapMailbox *
outbox_imap_session_find_sent_finish (OutboxImapSession *session,
                                      GAsyncResult *result,
                                      GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);
  g_return_val_if_fail (g_task_is_valid (result, session), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_find_sent_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* APPEND -------------------------------------------------------------- */

/* RFC 3501 flag: "\" atom, or atom (a keyword). */
static gboolean
flag_is_valid (const char *flag)
{
  const char *p = flag[0] == '\\' ? flag + 1 : flag;

  if (*p == '\0' || strlen (p) > 64)
    return FALSE;
  for (; *p != '\0'; p++)
    {
      if (!outbox_imap_is_atom_char (*p))
        return FALSE;
    }
  return TRUE;
}

static gboolean
check_append_args (const char *mailbox, const char *const *flags, GError **error)
{
  if (*mailbox == '\0')
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "The mailbox name is empty");
      return FALSE;
    }
  for (gsize i = 0; flags != NULL && flags[i] != NULL; i++)
    {
      if (i >= APPEND_MAX_FLAGS || !flag_is_valid (flags[i]))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "Invalid or too many IMAP flags (at “%s”)", flags[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* RFC 3501 date-time, with English month names whatever the locale:
 * "\" 5-Mar-2024 14:03:09 +0100\"". */
static char *
format_date_time (GDateTime *date)
{
  static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  gint64 offset = g_date_time_get_utc_offset (date) / G_TIME_SPAN_MINUTE;
  char sign = offset < 0 ? '-' : '+';

  offset = ABS (offset);
  return g_strdup_printf ("\"%2d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
                          g_date_time_get_day_of_month (date),
                          months[g_date_time_get_month (date) - 1], g_date_time_get_year (date),
                          g_date_time_get_hour (date), g_date_time_get_minute (date),
                          g_date_time_get_second (date), sign, (int) (offset / 60),
                          (int) (offset % 60));
}

static Command *
append_command (OutboxImapSession *self,
                const char *mailbox,
                GInputStream *message,
                guint64 size,
                const char *const *flags,
                GDateTime *date)
{
  Command *command = command_new (self, "APPEND", self->timeouts.command);

  command_add (command, "APPEND ");
  command_add_string (self, command, mailbox, FALSE);
  if (flags != NULL && flags[0] != NULL)
    {
      g_autofree char *joined = g_strjoinv (" ", (char **) flags);
      g_autofree char *list = g_strdup_printf (" (%s)", joined);
      command_add (command, list);
    }
  if (date != NULL)
    {
      g_autofree char *text = format_date_time (date);
      command_add (command, " ");
      command_add (command, text);
    }
  command_add (command, " ");
  command_add_stream (self, command, message, size);
  command_end (command);
  return command;
}

static void
appended (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  const char *mailbox = g_task_get_task_data (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  g_autofree char *what = NULL;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL)
    {
      operation_return_error (task, error);
      return;
    }
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      what = g_strdup_printf ("Could not save the message in “%s”", mailbox);
      operation_return_error (task, reply_error (OUTBOX_IMAP_ERROR_REPLY, what, response));
      return;
    }
  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

void
outbox_imap_session_append_async (OutboxImapSession *session,
                                  const char *mailbox,
                                  GInputStream *message,
                                  guint64 size,
                                  const char *const *flags,
                                  GDateTime *date,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  GError *error = NULL;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (mailbox != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (message));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_append_async);
  g_task_set_task_data (task, outbox_imap_mailbox_display_name (mailbox), g_free);

  if (!check_append_args (mailbox, flags, &error) || !operation_can_start (session, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  session->busy = TRUE;
  command_async (session, append_command (session, mailbox, message, size, flags, date),
                 cancellable, appended, g_object_ref (task));
}

gboolean
outbox_imap_session_append_finish (OutboxImapSession *session,
                                   GAsyncResult *result,
                                   GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_append_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* LOGOUT -------------------------------------------------------------- */

static void
logout_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  GError *error = NULL;

  g_io_stream_close_finish (G_IO_STREAM (source), result, &error);
  session_abort (self);
  self->busy = FALSE;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
logout_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  OutboxStepGuard *guard;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL)
    {
      self->busy = FALSE;
      /* A server that says BYE and closes without the tagged OK is common. */
      if (self->bye_text != NULL &&
          g_error_matches (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED))
        {
          g_clear_error (&error);
          g_task_return_boolean (task, TRUE);
        }
      else
        g_task_return_error (task, error);
      return;
    }
  guard = outbox_step_guard_new (g_task_get_cancellable (task), LOGOUT_TIMEOUT);
  g_task_set_task_data (task, guard, (GDestroyNotify) outbox_step_guard_free);
  g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, guard->cancellable, logout_closed,
                           g_object_ref (task));
}

void
outbox_imap_session_logout_async (OutboxImapSession *session,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  guint seconds;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_logout_async);

  if (session->busy)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The IMAP session is busy with another operation");
      return;
    }
  if (session->stream == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  session->ready = FALSE;
  session->busy = TRUE;
  seconds = session->timeouts.command > 0 ? MIN (session->timeouts.command, LOGOUT_TIMEOUT)
                                          : LOGOUT_TIMEOUT;
  command_async (session, simple_command (session, "LOGOUT", seconds), cancellable,
                 logout_replied, g_object_ref (task));
}

gboolean
outbox_imap_session_logout_finish (OutboxImapSession *session,
                                   GAsyncResult *result,
                                   GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_logout_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Accessors ----------------------------------------------------------- */

gboolean
outbox_imap_session_is_open (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);

  return session->ready && session->stream != NULL;
}

const char *const *
outbox_imap_session_get_capabilities (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return (const char *const *) session->capabilities;
}

GTlsCertificate *
outbox_imap_session_get_peer_certificate (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return session->peer_certificate;
}

const char *
outbox_imap_session_get_last_server_text (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return session->last_server_text;
}
