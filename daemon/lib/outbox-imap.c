/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-imap.h"

G_DEFINE_QUARK (outbox-imap-error-quark, outbox_imap_error)

/* The session ------------------------------------------------------------
 *
 * What IMAP adds to OutboxSession (RFC 3501, SASL-IR from RFC 4959,
 * LITERAL+ and LITERAL- from RFC 7888): tagged commands, built in parts
 * around their literals, whose result is the tagged response after any
 * untagged ones; a greeting that may be PREAUTH (no sign-in) or carry the
 * capabilities (no CAPABILITY); AUTHENTICATE with "+" challenges, and LOGIN
 * for servers without a usable mechanism.  Every response the base reads is
 * one complete response, literals included, and teaches the session what it
 * carries (note_response()). */

/* Message data is read and written in blocks of this size, so memory stays
 * bounded whatever the size of the message. */
#define APPEND_CHUNK (64 * 1024)
/* RFC 7888: LITERAL- allows non-synchronizing literals up to this size. */
#define LITERAL_MINUS_MAX 4096
/* Longer strings go as literals even when they could be quoted. */
#define QUOTED_MAX 1024
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
  OutboxSession parent_instance;

  OutboxImapTimeouts timeouts;
  OutboxImapParser *parser; /* (owned) */

  char **capabilities;    /* (owned) (nullable) NULL while unknown */
  char *last_server_text; /* (owned) (nullable) */
  char *bye_text;         /* (owned) (nullable) set once the server said BYE */
  char *auth_tag;         /* (owned) (nullable) the tag of the last AUTHENTICATE */
  guint next_tag;
  gboolean preauthenticated; /* the greeting was PREAUTH */
};

G_DEFINE_TYPE (OutboxImapSession, outbox_imap_session, OUTBOX_TYPE_SESSION)

#define SESSION(self) (OUTBOX_SESSION (self))

/* Responses ------------------------------------------------------------ */

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
  if (!outbox_session_reply_matters (OUTBOX_SESSION (self)))
    return;
  if (response->status != OUTBOX_IMAP_STATUS_NONE)
    replace_string (&self->last_server_text, outbox_imap_response_to_string (response));
  if (response->status == OUTBOX_IMAP_STATUS_BYE)
    replace_string (&self->bye_text, g_strdup (self->last_server_text));
}

/* One reply for the base is one whole response: untagged, continuation or
 * tagged, with its literals. */
static gboolean
imap_feed_line (OutboxSession *session,
                const char *line,
                gsize len,
                gpointer *out_reply,
                GError **error)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);
  OutboxImapResponse *response = NULL;

  if (!outbox_imap_parser_feed_line (self->parser, line, len, &response, error))
    return FALSE;
  if (response != NULL)
    note_response (self, response);
  *out_reply = response;
  return TRUE;
}

/* The response an exchange read; a server that said BYE before it closed
 * the connection gets to say why. */
static OutboxImapResponse *
response_read_finish (OutboxImapSession *self, GAsyncResult *result, GError **error)
{
  gpointer response = NULL;
  GError *local_error = NULL;

  if (outbox_session_exchange_finish (SESSION (self), result, &response, &local_error))
    return response;
  if (self->bye_text != NULL &&
      g_error_matches (local_error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED))
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED, "%s: %s",
                   local_error->message, self->bye_text);
      g_error_free (local_error);
      return NULL;
    }
  g_propagate_error (error, local_error);
  return NULL;
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
  guint seconds;        /* per response and per write */
  GPtrArray *parts;     /* (owned) (element-type CommandPart) */
  GString *text;        /* (owned) the part being built */
  GString *trace;       /* (owned) its trace */
  gboolean next_waits;  /* the part being built follows a {n} */
  /* AUTHENTICATE: a "+" once every part is sent is a challenge, and ends
   * the command like a tagged response. */
  gboolean takes_challenge;
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

  explicit_bzero (text->str, text->len);
  g_string_free (text, TRUE);
}

static void
command_free (Command *command)
{
  g_free (command->tag);
  g_free (command->verb);
  g_ptr_array_unref (command->parts);
  wipe_gstring (command->text);
  g_string_free (command->trace, TRUE);
  g_free (command->list_name);
  outbox_imap_mailbox_free (command->list_match);
  g_free (command);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Command, command_free)

/* A command whose responses carry @tag, without the tag in its text: for
 * the lines that go on an AUTHENTICATE. */
static Command *
command_continue (const char *tag, const char *verb, guint seconds)
{
  Command *command = g_new0 (Command, 1);

  command->tag = g_strdup (tag);
  command->verb = g_strdup (verb);
  command->seconds = seconds;
  command->parts = g_ptr_array_new_with_free_func ((GDestroyNotify) command_part_free);
  command->text = g_string_sized_new (256);
  command->trace = g_string_new (NULL);
  return command;
}

static Command *
command_new (OutboxImapSession *self, const char *verb, guint seconds)
{
  g_autofree char *tag = g_strdup_printf ("A%u", self->next_tag++);
  Command *command = command_continue (tag, verb, seconds);

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
      outbox_session_wipe_string (&quoted);
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
 * until the tagged one, which is the result (or, for AUTHENTICATE, until a
 * "+" challenge).  Each write and each response is one exchange of the
 * base, with its own deadline.  A tagged NO or BAD may come instead of a
 * "+": the rest of the command is then never sent and the session stays
 * usable.  Untagged responses are noted on the way (and LIST ones matched).
 * Any other failure drops the connection. */

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

  outbox_session_abort (SESSION (self));
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

  if (!outbox_session_exchange_finish (SESSION (source), result, NULL, &error))
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
  outbox_session_exchange_async (SESSION (self), chunk, NULL, "message data", 0, FALSE,
                                 self->timeouts.append_data, g_task_get_cancellable (task),
                                 command_part_written, g_object_ref (task));
}

static void
command_stream_next (GTask *task, CommandPart *part)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  gsize count;

  if (!run->streaming)
    {
      outbox_session_trace_client (SESSION (self), part->trace);
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
 * the result. */
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
      if (part == NULL && run->command->takes_challenge)
        return FALSE;
      text = outbox_imap_response_to_string (response);
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                   "The server sent an unexpected continuation request to %s: %s",
                   run->command->verb, text);
      return FALSE;
    case OUTBOX_IMAP_RESPONSE_TAGGED:
    default:
      if (!g_str_equal (response->tag, run->command->tag))
        g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                     "The server answered %s with the tag “%s” instead of “%s”",
                     run->command->verb, response->tag, run->command->tag);
      else if (part != NULL && response->status == OUTBOX_IMAP_STATUS_OK)
        g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
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
      outbox_session_exchange_async (SESSION (self), NULL, NULL, run->command->verb, 0, TRUE,
                                     run->command->seconds, g_task_get_cancellable (task),
                                     command_response_read, g_object_ref (task));
      return;
    }
  if (part->stream != NULL)
    {
      command_stream_next (task, part);
      return;
    }
  outbox_session_exchange_async (SESSION (self), part->bytes,
                                 *part->trace != '\0' ? part->trace : NULL, run->command->verb, 0,
                                 FALSE, run->command->seconds, g_task_get_cancellable (task),
                                 command_part_written, g_object_ref (task));
}

/* Runs @command (transfer full); the result is its tagged response, or
 * the challenge that ends an AUTHENTICATE step. */
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
  command_run_next (task);
}

/* The result, or NULL on error.  With @out_command, the command
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

  return g_error_new (OUTBOX_SESSION_ERROR, code, "%s: %s", what, text);
}

/* Open steps -------------------------------------------------------------
 *
 * Each runs one command for the base and judges its tagged response. */

typedef gboolean (*ResponseJudge) (OutboxImapSession *self,
                                   const OutboxImapResponse *response,
                                   GError **error);

/* TRUE when the command ran and @judge accepts its response; FALSE once
 * @step has failed. */
static gboolean
step_judge (GTask *step, GAsyncResult *result, ResponseJudge judge)
{
  OutboxImapSession *self = g_task_get_source_object (step);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response != NULL && judge (self, response, &error))
    return TRUE;
  g_task_return_error (step, error);
  return FALSE;
}

static void
step_command (GTask *step, Command *command, GAsyncReadyCallback callback)
{
  command_async (g_task_get_source_object (step), command, g_task_get_cancellable (step), callback,
                 g_object_ref (step));
}

static gboolean
starttls_required (OutboxImapSession *self)
{
  return outbox_session_get_url (SESSION (self))->security == OUTBOX_SECURITY_STARTTLS &&
         !outbox_session_is_tls (SESSION (self));
}

/* Greeting: "* OK" goes on, "* PREAUTH" needs no sign-in, "* BYE" refuses. */

static gboolean
judge_greeting (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  const OutboxServerUrl *url = outbox_session_get_url (SESSION (self));
  gboolean untagged = response->kind == OUTBOX_IMAP_RESPONSE_UNTAGGED;

  if (untagged && response->status == OUTBOX_IMAP_STATUS_BYE)
    {
      g_propagate_error (error, reply_error (OUTBOX_SESSION_ERROR_CLOSED,
                                             "The server refused the connection", response));
      return FALSE;
    }
  /* STARTTLS is not allowed once authenticated, and a man in the middle
   * could answer PREAUTH to keep the session in plaintext. */
  if (untagged && response->status == OUTBOX_IMAP_STATUS_PREAUTH && starttls_required (self))
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_TLS_REQUIRED,
                   "%s:%u greeted with PREAUTH in plaintext, which rules out STARTTLS; "
                   "this account requires TLS",
                   url->host, url->port);
      return FALSE;
    }
  if (untagged && response->status == OUTBOX_IMAP_STATUS_PREAUTH)
    {
      self->preauthenticated = TRUE;
      return TRUE;
    }
  if (!untagged || response->status != OUTBOX_IMAP_STATUS_OK)
    {
      g_propagate_error (error, reply_error (OUTBOX_SESSION_ERROR_PROTOCOL,
                                             "The server did not send an IMAP greeting", response));
      return FALSE;
    }
  /* Unlike SMTP, IMAP has nothing to offer without a sign-in. */
  if (url->user == NULL)
    {
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE,
                   "The IMAP server %s needs a user name; give one in the URL, such as "
                   "imaps://me@%s",
                   url->host, url->host);
      return FALSE;
    }
  return TRUE;
}

static void
greeting_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = response_read_finish (self, result, &error);
  if (response == NULL || !judge_greeting (self, response, &error))
    g_task_return_error (step, error);
  else
    g_task_return_boolean (step, TRUE);
}

static void
imap_greeting (OutboxSession *session, GTask *step)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);

  self->preauthenticated = FALSE;
  outbox_session_exchange_async (session, NULL, NULL, NULL, 0, TRUE, self->timeouts.command,
                                 g_task_get_cancellable (step), greeting_read, g_object_ref (step));
}

static gboolean
needs_sign_in (OutboxSession *session)
{
  return !OUTBOX_IMAP_SESSION (session)->preauthenticated;
}

/* CAPABILITY: the untagged answer replaces what was known. */

static gboolean
judge_capability (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      g_propagate_error (error,
                         reply_error (OUTBOX_SESSION_ERROR_REPLY, "CAPABILITY failed", response));
      return FALSE;
    }
  if (self->capabilities == NULL)
    {
      g_set_error_literal (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                           "The server answered CAPABILITY without listing its capabilities");
      return FALSE;
    }
  return TRUE;
}

static void
capability_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;

  if (step_judge (step, result, judge_capability))
    g_task_return_boolean (step, TRUE);
}

static Command *
capability_command (OutboxImapSession *self)
{
  return simple_command (self, "CAPABILITY", self->timeouts.command);
}

/* A [CAPABILITY ...] code in the greeting (or the OK to a sign-in) saves
 * the command. */
static void
imap_capabilities (OutboxSession *session, GTask *step)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);

  if (self->capabilities != NULL)
    g_task_return_boolean (step, TRUE);
  else
    step_command (step, capability_command (self), capability_done);
}

/* STARTTLS */

static gboolean
imap_offers_starttls (OutboxSession *session, const char **out_why)
{
  return outbox_imap_session_has_capability (OUTBOX_IMAP_SESSION (session), "STARTTLS");
}

static gboolean
judge_starttls (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status == OUTBOX_IMAP_STATUS_OK)
    return TRUE;
  g_propagate_error (error, reply_error (OUTBOX_SESSION_ERROR_TLS_REQUIRED,
                                         "The server refused STARTTLS, which this account "
                                         "requires",
                                         response));
  return FALSE;
}

static void
starttls_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;

  if (step_judge (step, result, judge_starttls))
    g_task_return_boolean (step, TRUE);
}

static void
imap_starttls (OutboxSession *session, GTask *step)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);

  step_command (step, simple_command (self, "STARTTLS", self->timeouts.command), starttls_done);
}

/* RFC 3501 section 6.2.1: what the server said before TLS is void. */
static void
imap_forget_capabilities (OutboxSession *session)
{
  g_clear_pointer (&OUTBOX_IMAP_SESSION (session)->capabilities, g_strfreev);
}

/* Sign-in -----------------------------------------------------------------
 *
 * The capabilities may change with the sign-in, so they are forgotten when
 * it starts; the tagged OK may list the new ones, and CAPABILITY asks for
 * them when it does not. */

static GError *
sign_in_refused (const OutboxImapResponse *response, const char *what)
{
  if (response->status == OUTBOX_IMAP_STATUS_NO)
    return reply_error (OUTBOX_SESSION_ERROR_AUTH, what, response);
  return reply_error (OUTBOX_SESSION_ERROR_REPLY, "Login failed", response);
}

/* "AUTH=PLAIN AUTH=SCRAM-SHA-256" lists the mechanisms (RFC 3501 section
 * 6.2.2). */
static char **
imap_sasl_mechanisms (OutboxSession *session)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();

  for (char **c = self->capabilities; c != NULL && *c != NULL; c++)
    {
      if (g_str_has_prefix (*c, "AUTH=") && (*c)[strlen ("AUTH=")] != '\0')
        g_strv_builder_add (names, *c + strlen ("AUTH="));
    }
  return g_strv_builder_end (names);
}

/* RFC 4959: the initial response goes with AUTHENTICATE only with SASL-IR;
 * otherwise it answers the server's empty "+". */
static gboolean
imap_initial_response_fits (OutboxSession *session, const char *mechanism, gsize len)
{
  return outbox_imap_session_has_capability (OUTBOX_IMAP_SESSION (session), "SASL-IR");
}

static void
auth_succeed (GTask *step)
{
  OutboxSessionAuthReply *answer = g_new0 (OutboxSessionAuthReply, 1);

  answer->status = OUTBOX_SESSION_AUTH_SUCCESS;
  g_task_return_pointer (step, answer, (GDestroyNotify) outbox_session_auth_reply_free);
}

static void
auth_capability_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;

  if (step_judge (step, result, judge_capability))
    auth_succeed (step);
}

/* A "+" is a challenge; the tagged OK's text is not SASL data. */
static void
auth_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  OutboxSessionAuthReply *answer;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL)
    g_task_return_error (step, error);
  else if (response->kind == OUTBOX_IMAP_RESPONSE_CONTINUATION)
    {
      answer = g_new0 (OutboxSessionAuthReply, 1);
      answer->status = OUTBOX_SESSION_AUTH_CHALLENGE;
      answer->text = g_strdup (response->text);
      g_task_return_pointer (step, answer, (GDestroyNotify) outbox_session_auth_reply_free);
    }
  else if (response->status != OUTBOX_IMAP_STATUS_OK)
    g_task_return_error (step, sign_in_refused (response, "The server refused the credentials"));
  else if (self->capabilities != NULL)
    auth_succeed (step);
  else
    step_command (step, capability_command (self), auth_capability_done);
}

/* "TAG AUTHENTICATE MECH [IR]" first, then each response line under the
 * same tag. */
static void
imap_auth_exchange (OutboxSession *session,
                    const char *mechanism,
                    const char *response,
                    GTask *step)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);
  Command *command;

  if (mechanism != NULL)
    {
      command = command_new (self, "AUTHENTICATE", self->timeouts.command);
      replace_string (&self->auth_tag, g_strdup (command->tag));
      command_add (command, "AUTHENTICATE ");
      command_add (command, mechanism);
      if (response != NULL)
        {
          command_add (command, " ");
          command_add_secret (command, response);
        }
      imap_forget_capabilities (session);
    }
  else
    {
      command = command_continue (self->auth_tag, "AUTHENTICATE", self->timeouts.command);
      command_add_secret (command, response);
    }
  command_end (command);
  command->takes_challenge = TRUE;
  step_command (step, command, auth_replied);
}

static gboolean
judge_login (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status == OUTBOX_IMAP_STATUS_OK)
    return TRUE;
  g_propagate_error (error,
                     sign_in_refused (response, "The server refused the user name or password"));
  return FALSE;
}

static void
login_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);

  if (!step_judge (step, result, judge_login))
    return;
  if (self->capabilities != NULL)
    g_task_return_boolean (step, TRUE);
  else
    step_command (step, capability_command (self), capability_done);
}

static Command *
login_command (OutboxImapSession *self)
{
  Command *command = command_new (self, "LOGIN", self->timeouts.command);

  command_add (command, "LOGIN ");
  command_add_string (self, command, outbox_session_get_url (SESSION (self))->user, FALSE);
  command_add (command, " ");
  command_add_string (self, command, outbox_session_get_secret (SESSION (self)), TRUE);
  command_end (command);
  return command;
}

/* LOGIN, for servers that offer no mechanism Outbox can use, unless
 * LOGINDISABLED. */
static void
imap_login (OutboxSession *session, GTask *step)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);
  const OutboxServerUrl *url = outbox_session_get_url (session);
  Command *command;

  if (outbox_imap_session_has_capability (self, "LOGINDISABLED"))
    {
      g_task_return_new_error (step, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_AUTH_UNAVAILABLE,
                               "%s:%u disables LOGIN and offers no mechanism that Outbox "
                               "supports",
                               url->host, url->port);
      return;
    }
  /* The command is built with the capabilities it depends on (LITERAL+). */
  command = login_command (self);
  imap_forget_capabilities (session);
  step_command (step, command, login_done);
}

/* LOGOUT ----------------------------------------------------------------- */

static void
logout_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) step = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  /* A server that says BYE and closes without the tagged OK is common. */
  if (response == NULL && self->bye_text != NULL &&
      g_error_matches (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_CLOSED))
    g_clear_error (&error);
  if (error != NULL)
    g_task_return_error (step, error);
  else
    g_task_return_boolean (step, TRUE);
}

static void
imap_quit (OutboxSession *session, GTask *step)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (session);
  guint seconds = self->timeouts.command > 0
                      ? MIN (self->timeouts.command, OUTBOX_SESSION_QUIT_TIMEOUT)
                      : OUTBOX_SESSION_QUIT_TIMEOUT;

  step_command (step, simple_command (self, "LOGOUT", seconds), logout_done);
}

/* The type --------------------------------------------------------------- */

static void
outbox_imap_session_finalize (GObject *object)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (object);

  outbox_imap_parser_free (self->parser);
  g_strfreev (self->capabilities);
  g_free (self->last_server_text);
  g_free (self->bye_text);
  g_free (self->auth_tag);

  G_OBJECT_CLASS (outbox_imap_session_parent_class)->finalize (object);
}

static void
outbox_imap_session_init (OutboxImapSession *self)
{
  self->parser = outbox_imap_parser_new ();
  self->next_tag = 1;
}

static void
outbox_imap_session_class_init (OutboxImapSessionClass *klass)
{
  OutboxSessionClass *session_class = OUTBOX_SESSION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = outbox_imap_session_finalize;
  OUTBOX_SESSION_CLASS_IMPLEMENT (session_class, imap, "imap", "STARTTLS", "response",
                                  OUTBOX_IMAP_MAX_LINE, outbox_imap_response_free);
  session_class->needs_sign_in = needs_sign_in;
  session_class->login = imap_login;
}

OutboxImapSession *
outbox_imap_session_new (const OutboxImapConfig *config)
{
  OutboxImapSession *self;

  g_return_val_if_fail (config != NULL && config->url != NULL, NULL);
  g_return_val_if_fail (config->url->protocol == OUTBOX_PROTOCOL_IMAP, NULL);

  self = g_object_new (OUTBOX_TYPE_IMAP_SESSION, NULL);
  self->timeouts = config->timeouts;
  outbox_session_configure (SESSION (self),
                            &OUTBOX_SESSION_CONFIG_OF (config, config->timeouts.connect,
                                                       config->timeouts.command,
                                                       config->timeouts.command));
  return self;
}

/* Operations on an open session --------------------------------------- */

static void
operation_return_error (GTask *task, GError *error)
{
  outbox_session_end_operation (g_task_get_source_object (task));
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
      operation_return_error (task,
                              reply_error (OUTBOX_SESSION_ERROR_REPLY, "LIST failed", response));
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
                             outbox_session_get_url (SESSION (self))->host,
                             data->configured_name != NULL ? ", none named “" : "",
                             data->configured_name != NULL ? data->configured_name : "",
                             data->configured_name != NULL ? "”" : ""));
      return;
    }
  g_debug ("%s: sent mail goes to %s", outbox_session_get_trace_name (SESSION (self)),
           data->found->display_name);
  outbox_session_end_operation (SESSION (self));
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
  if (!outbox_session_begin_operation (SESSION (session), &error))
    {
      g_task_return_error (task, error);
      return;
    }
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
      operation_return_error (task, reply_error (OUTBOX_SESSION_ERROR_REPLY, what, response));
      return;
    }
  outbox_session_end_operation (SESSION (self));
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

  if (!check_append_args (mailbox, flags, &error) ||
      !outbox_session_begin_operation (SESSION (session), &error))
    {
      g_task_return_error (task, error);
      return;
    }
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

/* Accessors ----------------------------------------------------------- */

const char *const *
outbox_imap_session_get_capabilities (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return (const char *const *) session->capabilities;
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

const char *
outbox_imap_session_get_last_server_text (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return session->last_server_text;
}
