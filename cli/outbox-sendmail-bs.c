/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "outbox-address.h"
#include "outbox-cli-bus.h"
#include "outbox-message.h"
#include "outbox-sendmail.h"
#include "outbox-sendmail-bs.h"

/* RFC 5321 section 4.5.3.1.4, and the 500 octets RFC 3461 section 4 lets
 * NOTIFY and ORCPT add to a RCPT line, with room for the CRLF and the NUL. */
#define SMTP_COMMAND_BUFFER_SIZE (512 + 500 + 3)
/* DATA lines are streamed in pieces of at most this size. */
#define SMTP_DATA_BUFFER_SIZE 4096

/* -bs: an SMTP server on standard input and output.
 *
 * States: before HELO/EHLO nothing but NOOP, RSET and QUIT; after it, MAIL
 * opens a transaction, RCPT adds recipients to it, DATA reads the message
 * (dot-unstuffed) and queues it, which ends the transaction; RSET and a new
 * HELO/EHLO end it too. */

typedef struct
{
  GDBusConnection *bus;   /* (nullable) no bus: the maildrop */
  FILE *in;
  FILE *out;
  gboolean greeted;
  gboolean in_transaction;
  char *from;
  GPtrArray *recipients;  /* (element-type utf8) */
  const OutboxCliDsn *dsn_defaults; /* (unowned) -N, -R, -V */
  OutboxCliDsn dsn;       /* the transaction's: RET and ENVID of MAIL, the
                           * NOTIFY of its RCPTs, else the defaults */
  gboolean notify_taken;  /* a RCPT set dsn.notify */
} SmtpServer;

static void
smtp_reply (SmtpServer *server,
            const char *reply)
{
  fprintf (server->out, "%s\r\n", reply);
  fflush (server->out);
}

static void smtp_reply_printf (SmtpServer *server,
                               const char *format,
                               ...) G_GNUC_PRINTF (2, 3);

static void
smtp_reply_printf (SmtpServer *server,
                   const char *format,
                   ...)
{
  g_autofree char *reply = NULL;
  va_list args;

  va_start (args, format);
  reply = g_strdup_vprintf (format, args);
  va_end (args);
  smtp_reply (server, reply);
}

static void
smtp_reset (SmtpServer *server)
{
  server->in_transaction = FALSE;
  g_clear_pointer (&server->from, g_free);
  g_ptr_array_set_size (server->recipients, 0);
  outbox_cli_dsn_clear (&server->dsn);
  server->notify_taken = FALSE;
}

/* "<address>" followed by nothing or by " PARAMETERS"; returns the address
 * and points @parameters at what follows. */
static char *
parse_path (const char  *text,
            const char **parameters)
{
  const char *end;

  if (text[0] != '<' || (end = strchr (text, '>')) == NULL)
    return NULL;
  if (end[1] != '\0' && end[1] != ' ')
    return NULL;
  *parameters = end[1] == ' ' ? end + 2 : end + 1;
  return g_strndup (text + 1, (gsize) (end - text - 1));
}

static gboolean
mail_parameter_is_known (const char *parameter)
{
  const char *digits;

  if (g_ascii_strcasecmp (parameter, "BODY=7BIT") == 0 ||
      g_ascii_strcasecmp (parameter, "BODY=8BITMIME") == 0 ||
      g_ascii_strcasecmp (parameter, "SMTPUTF8") == 0)
    return TRUE;
  if (g_ascii_strncasecmp (parameter, "SIZE=", 5) != 0)
    return FALSE;
  digits = parameter + 5;
  return digits[0] != '\0' && strspn (digits, "0123456789") == strlen (digits);
}

/* RET= and ENVID= (RFC 3461 sections 4.3 and 4.4) into @dsn.  FALSE when
 * @parameter is neither; else *out_reply is the refusal of a bad one, or
 * NULL. */
static gboolean
take_mail_dsn_parameter (const char    *parameter,
                         OutboxCliDsn  *dsn,
                         const char   **out_reply)
{
  g_autofree char *envid = NULL;

  *out_reply = NULL;
  if (g_ascii_strncasecmp (parameter, "RET=", 4) == 0)
    {
      if (!outbox_dsn_ret_parse (parameter + 4, &dsn->ret, NULL))
        *out_reply = "501 5.5.4 Bad RET parameter: give RET=FULL or RET=HDRS";
      return TRUE;
    }
  if (g_ascii_strncasecmp (parameter, "ENVID=", 6) != 0)
    return FALSE;
  envid = outbox_xtext_decode (parameter + 6);
  if (envid == NULL || !outbox_dsn_envid_validate (envid, NULL))
    {
      *out_reply = "501 5.5.4 Bad ENVID parameter: give 1 to 100 printable ASCII characters, "
                   "xtext-encoded";
      return TRUE;
    }
  g_free (dsn->envid);
  dsn->envid = g_steal_pointer (&envid);
  return TRUE;
}

/* MAIL FROM:<address> [BODY=… SIZE=… SMTPUTF8 RET=… ENVID=…]; returns the
 * reply. */
static const char *
smtp_mail (SmtpServer *server,
           const char *argument)
{
  const char *parameters = NULL;
  g_autofree char *address = NULL;
  g_auto(GStrv) words = NULL;
  g_auto(OutboxCliDsn) dsn = { 0, };

  if (!server->greeted)
    return "503 5.5.1 Send HELO or EHLO first";
  if (server->in_transaction)
    return "503 5.5.1 Nested MAIL command";
  if (g_ascii_strncasecmp (argument, "FROM:", 5) != 0 ||
      (address = parse_path (argument + 5, &parameters)) == NULL)
    return "501 5.5.4 Syntax: MAIL FROM:<address>";
  if (!outbox_address_validate (address, TRUE, NULL))
    return "553 5.1.7 Invalid sender address";

  sendmail_dsn_copy (server->dsn_defaults, &dsn);
  words = g_strsplit (parameters, " ", -1);
  for (char **word = words; *word != NULL; word++)
    {
      const char *refusal = NULL;

      if ((*word)[0] == '\0' || mail_parameter_is_known (*word))
        continue;
      if (!take_mail_dsn_parameter (*word, &dsn, &refusal))
        return "555 5.5.4 Unsupported MAIL parameter";
      if (refusal != NULL)
        return refusal;
    }

  server->in_transaction = TRUE;
  server->from = g_steal_pointer (&address);
  sendmail_dsn_copy (&dsn, &server->dsn);
  server->notify_taken = FALSE;
  return "250 2.1.0 Ok";
}

/* "TYPE;VALUE" with an atom for TYPE (RFC 3461 section 4.2).  Outbox names
 * each recipient in its own ORCPT: the client's is checked and left. */
static gboolean
orcpt_is_valid (const char *value)
{
  const char *semicolon = strchr (value, ';');

  if (semicolon == NULL || semicolon == value || semicolon[1] == '\0')
    return FALSE;
  for (const char *p = value; p < semicolon; p++)
    if (!g_ascii_isalnum (*p) && *p != '-')
      return FALSE;
  return TRUE;
}

/* NOTIFY= and ORCPT= (RFC 3461 sections 4.1 and 4.2); the reply that
 * refuses them, or NULL with *out_notify the recipient's (the default when
 * the client gives none). */
static const char *
take_rcpt_dsn_parameters (SmtpServer      *server,
                          const char      *parameters,
                          OutboxDsnNotify *out_notify)
{
  g_auto(GStrv) words = g_strsplit (parameters, " ", -1);

  *out_notify = server->dsn_defaults->notify;
  for (char **word = words; *word != NULL; word++)
    {
      if ((*word)[0] == '\0')
        continue;
      if (g_ascii_strncasecmp (*word, "NOTIFY=", 7) == 0)
        {
          if (!outbox_dsn_notify_parse (*word + 7, out_notify, NULL))
            return "501 5.5.4 Bad NOTIFY parameter: give NEVER, or any of SUCCESS, FAILURE and "
                   "DELAY separated by commas";
        }
      else if (g_ascii_strncasecmp (*word, "ORCPT=", 6) == 0)
        {
          if (!orcpt_is_valid (*word + 6))
            return "501 5.5.4 Bad ORCPT parameter: give ORCPT=rfc822;ADDRESS (xtext)";
        }
      else
        return "555 5.5.4 Unsupported RCPT parameter";
    }
  return NULL;
}

/* Outbox asks one NOTIFY for all the recipients of a message: a recipient
 * that wants another is for another transaction, which a client that gets
 * 452 makes (RFC 5321 section 4.5.3.1.10). */
static const char *
take_rcpt_notify (SmtpServer      *server,
                  OutboxDsnNotify  notify)
{
  if (server->notify_taken && notify != server->dsn.notify)
    return "452 4.5.3 One NOTIFY for all the recipients of a message: send this one in "
           "another transaction";
  server->dsn.notify = notify;
  server->notify_taken = TRUE;
  return NULL;
}

static const char *
smtp_rcpt (SmtpServer *server,
           const char *argument)
{
  const char *parameters = NULL;
  g_autofree char *address = NULL;
  OutboxDsnNotify notify;
  const char *refusal;

  if (!server->in_transaction)
    return "503 5.5.1 Need MAIL command first";
  if (g_ascii_strncasecmp (argument, "TO:", 3) != 0 ||
      (address = parse_path (argument + 3, &parameters)) == NULL)
    return "501 5.5.4 Syntax: RCPT TO:<address>";
  if ((refusal = take_rcpt_dsn_parameters (server, parameters, &notify)) != NULL)
    return refusal;
  if (!outbox_address_validate (address, FALSE, NULL))
    return "553 5.1.3 Invalid recipient address";
  if (server->recipients->len >= OUTBOX_MESSAGE_MAX_RECIPIENTS)
    return "452 4.5.3 Too many recipients";
  if ((refusal = take_rcpt_notify (server, notify)) != NULL)
    return refusal;

  sendmail_add_unique_address (server->recipients, address);
  return "250 2.1.5 Ok";
}

/* Bcc fields are dropped from what -bs receives, as from what the other
 * modes read, so that blind copies stay blind whichever way a client hands
 * the message over.  The decision is made where a line starts and holds for
 * the rest of it, which may come in more than one read. */
typedef struct
{
  gboolean in_body;
  gboolean in_bcc;     /* the current field is a Bcc field */
  gboolean dropping;   /* the current line belongs to it */
} BccFilter;

static void
bcc_filter_start_line (BccFilter  *filter,
                       const char *line,
                       gsize       length)
{
  if (filter->in_body)
    return;
  if (length == 0 || line[0] == '\n' || (line[0] == '\r' && length > 1 && line[1] == '\n'))
    filter->in_body = TRUE;
  else if (line[0] != ' ' && line[0] != '\t')
    filter->in_bcc = sendmail_field_is (line, length, "bcc");
  filter->dropping = !filter->in_body && filter->in_bcc;
}

/* Reads the message up to the lone dot, dot-unstuffed and without its Bcc
 * fields, into @draft (when there is one and no write failed yet).  FALSE
 * at end of input before the dot. */
static gboolean
smtp_receive_data (SmtpServer     *server,
                   SendmailDraft  *draft,
                   GError        **error)
{
  char buffer[SMTP_DATA_BUFFER_SIZE];
  gboolean at_line_start = TRUE;
  BccFilter filter = { FALSE, };

  while (fgets (buffer, sizeof buffer, server->in) != NULL)
    {
      const char *piece = buffer;
      gsize length = strlen (buffer);

      if (at_line_start && buffer[0] == '.')
        {
          if (g_str_equal (buffer, ".\r\n") || g_str_equal (buffer, ".\n"))
            return TRUE;
          piece++;
          length--;
        }
      if (at_line_start)
        bcc_filter_start_line (&filter, piece, length);
      at_line_start = length > 0 && piece[length - 1] == '\n';
      /* After a failed write the rest is still read up to the dot, so that
       * the dialogue stays in step. */
      if (draft != NULL && *error == NULL && !filter.dropping)
        sendmail_draft_write (draft, piece, length, error);
    }
  return FALSE;
}

static char *
format_error_reply (const GError *error)
{
  g_autofree char *message = outbox_cli_error_message (error);

  switch (outbox_cli_exit_code (error))
    {
    case EX_DATAERR:
      return g_strdup_printf ("554 5.6.0 %s", message);
    case EX_NOUSER:
      return g_strdup_printf ("553 5.1.3 %s", message);
    case EX_USAGE:
      return g_strdup_printf ("501 5.5.4 %s", message);
    default:
      return g_strdup_printf ("451 4.3.0 %s", message);
    }
}

/* Receives and queues one message.  Returns the reply, or NULL when the
 * input ended before the message did. */
static char *
smtp_take_message (SmtpServer *server)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SendmailDraft) draft = NULL;
  g_auto(SendmailEnvelope) envelope = { NULL, };
  g_autofree char *id = NULL;

  envelope.from = g_strdup (server->from);
  envelope.recipients = g_ptr_array_ref (server->recipients);
  sendmail_dsn_copy (&server->dsn, &envelope.dsn);
  draft = sendmail_draft_new (&envelope, &error);
  smtp_reply (server, "354 End data with <CR><LF>.<CR><LF>");
  if (!smtp_receive_data (server, draft, &error))
    return NULL;

  if (error == NULL)
    id = sendmail_draft_finish (draft, server->bus, &envelope, &error);
  if (id == NULL)
    return format_error_reply (error);
  if (id[0] != '\0')
    return g_strdup_printf ("250 2.0.0 Ok: queued as %s", id);
  return g_strdup_printf ("250 2.0.0 Ok: left in the maildrop as %s", draft->name);
}

/* FALSE when the input ended in the middle of the message. */
static gboolean
smtp_data (SmtpServer *server)
{
  g_autofree char *reply = NULL;

  if (!server->in_transaction)
    {
      smtp_reply (server, "503 5.5.1 Need MAIL command first");
      return TRUE;
    }
  if (server->recipients->len == 0)
    {
      smtp_reply (server, "554 5.5.1 No valid recipients");
      return TRUE;
    }

  reply = smtp_take_message (server);
  smtp_reset (server);
  if (reply == NULL)
    return FALSE;
  smtp_reply (server, reply);
  return TRUE;
}

static void
smtp_hello (SmtpServer *server,
            const char *verb,
            const char *argument)
{
  if (argument[0] == '\0')
    {
      smtp_reply_printf (server, "501 5.5.4 Syntax: %s hostname", verb);
      return;
    }

  smtp_reset (server);
  server->greeted = TRUE;
  if (g_ascii_strcasecmp (verb, "HELO") == 0)
    {
      smtp_reply_printf (server, "250 %s", g_get_host_name ());
      return;
    }
  smtp_reply_printf (server, "250-%s", g_get_host_name ());
  smtp_reply (server, "250-8BITMIME");
  smtp_reply (server, "250-SMTPUTF8");
  smtp_reply (server, "250-DSN");
  smtp_reply (server, "250 ENHANCEDSTATUSCODES");
}

static gboolean
verb_is (const char *verb,
         const char *name)
{
  return g_ascii_strcasecmp (verb, name) == 0;
}

/* Commands that take no argument. */
static const char *
smtp_simple_command (SmtpServer *server,
                     const char *verb,
                     const char *argument)
{
  gboolean known = verb_is (verb, "RSET") || verb_is (verb, "NOOP") || verb_is (verb, "QUIT");

  if (!known)
    return "500 5.5.2 Command not recognized";
  if (argument[0] != '\0' && !verb_is (verb, "NOOP"))
    return "501 5.5.4 Syntax error: no argument allowed";
  if (verb_is (verb, "RSET"))
    smtp_reset (server);
  return verb_is (verb, "QUIT") ? "221 2.0.0 Bye" : "250 2.0.0 Ok";
}

/* Runs one command line; FALSE when the session is over. */
static gboolean
smtp_command (SmtpServer *server,
              char       *line)
{
  char *argument = line + strcspn (line, " ");
  const char *reply;

  if (*argument == ' ')
    *argument++ = '\0';

  if (verb_is (line, "EHLO") || verb_is (line, "HELO"))
    {
      smtp_hello (server, line, argument);
      return TRUE;
    }
  if (verb_is (line, "DATA") && argument[0] == '\0')
    return smtp_data (server);

  if (verb_is (line, "MAIL"))
    reply = smtp_mail (server, argument);
  else if (verb_is (line, "RCPT"))
    reply = smtp_rcpt (server, argument);
  else if (verb_is (line, "DATA"))
    reply = "501 5.5.4 Syntax error: no argument allowed";
  else
    reply = smtp_simple_command (server, line, argument);

  smtp_reply (server, reply);
  return !(verb_is (line, "QUIT") && argument[0] == '\0');
}

/* One command line without its line end; FALSE at end of input.  A line
 * over the RFC 5321 limit is read to its end and returned empty. */
static gboolean
smtp_read_command (SmtpServer *server,
                   char       *buffer,
                   gsize       size,
                   gboolean   *too_long)
{
  gsize length;

  *too_long = FALSE;
  if (fgets (buffer, (int) size, server->in) == NULL)
    return FALSE;
  length = strlen (buffer);
  if (length > 0 && buffer[length - 1] == '\n')
    {
      buffer[length - 1] = '\0';
      if (length > 1 && buffer[length - 2] == '\r')
        buffer[length - 2] = '\0';
      return TRUE;
    }

  *too_long = TRUE;
  for (int c = 0; c != '\n' && c != EOF;)
    c = getc (server->in);
  return TRUE;
}

int
outbox_sendmail_run_smtp (const OutboxCliDsn *dsn_defaults)
{
  SmtpServer server = { NULL, };
  char line[SMTP_COMMAND_BUFFER_SIZE];
  gboolean too_long;

  server.dsn_defaults = dsn_defaults;
  server.bus = outbox_cli_bus_connect_to_daemon (NULL);
  server.in = stdin;
  server.out = stdout;
  server.recipients = g_ptr_array_new_with_free_func (g_free);

  smtp_reply_printf (&server, "220 %s ESMTP outbox-sendmail", g_get_host_name ());
  while (smtp_read_command (&server, line, sizeof line, &too_long))
    {
      if (too_long)
        smtp_reply (&server, "500 5.5.2 Line too long");
      else if (!smtp_command (&server, line))
        break;
    }

  smtp_reset (&server);
  g_ptr_array_unref (server.recipients);
  g_clear_object (&server.bus);
  return EX_OK;
}
