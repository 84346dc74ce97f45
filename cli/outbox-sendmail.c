/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "outbox-account.h"
#include "outbox-address.h"
#include "outbox-cli-bus.h"
#include "outbox-cli-util.h"
#include "outbox-maildrop-format.h"
#include "outbox-message.h"
#include "outbox-sendmail.h"
#include "outbox-sendmail-bs.h"

/* outbox-sendmail: the sendmail(8) interface of Outbox.
 *
 * A message is handed to the daemon over the session bus.  When no bus
 * answers (cron, ssh) it goes into the maildrop instead, where the daemon
 * takes it from at its next start: either way the caller sees success
 * (EX_OK) once the message is durable.
 *
 * Memory stays bounded by the header block: the body is streamed.  When the
 * header block must change (Bcc removed, From added) or standard input is
 * not a file, the message is first written to a draft in maildrop/tmp/ on
 * the same disk as the spool, and the daemon reads the draft.  The draft is
 * already a maildrop file, so that a daemon that cannot be reached is not a
 * reason to lose the message. */

/* GMime 3.2 does not declare these. */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (InternetAddress, g_object_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (InternetAddressList, g_object_unref)

#define USAGE_HINT "see outbox-sendmail --help"
#define COPY_BUFFER_SIZE 65536

typedef enum
{
  MODE_DELIVER,
  MODE_LIST,
  MODE_FLUSH,
  MODE_SMTP,
} SendmailMode;

typedef struct
{
  SendmailMode mode;
  gboolean read_recipients;  /* -t */
  gboolean verbose;          /* -v */
  char *from;                /* -f, -r: envelope sender; "" for <> */
  char *full_name;           /* -F */
  GPtrArray *recipients;     /* (element-type utf8) from the arguments */
  char *dsn_args[3];         /* -N, -R, -V as given */
  OutboxCliDsn dsn;          /* what they ask, checked */
} SendmailOptions;

/* Postfix's flags for delivery status notifications. */
static const char *const dsn_flags[3] = { "-N", "-R", "-V" };

static void
sendmail_options_clear (SendmailOptions *options)
{
  g_clear_pointer (&options->from, g_free);
  g_clear_pointer (&options->full_name, g_free);
  g_clear_pointer (&options->recipients, g_ptr_array_unref);
  for (gsize i = 0; i < G_N_ELEMENTS (options->dsn_args); i++)
    g_clear_pointer (&options->dsn_args[i], g_free);
  outbox_cli_dsn_clear (&options->dsn);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SendmailOptions, sendmail_options_clear)

/* Addresses */

void
sendmail_add_unique_address (GPtrArray  *addresses,
                             const char *address)
{
  for (guint i = 0; i < addresses->len; i++)
    {
      if (g_ascii_strcasecmp (g_ptr_array_index (addresses, i), address) == 0)
        return;
    }
  g_ptr_array_add (addresses, g_strdup (address));
}

static void
add_address_list (GPtrArray           *addresses,
                  InternetAddressList *list)
{
  int length = list != NULL ? internet_address_list_length (list) : 0;

  for (int i = 0; i < length; i++)
    {
      InternetAddress *address = internet_address_list_get_address (list, i);

      if (INTERNET_ADDRESS_IS_GROUP (address))
        add_address_list (addresses,
                          internet_address_group_get_members (INTERNET_ADDRESS_GROUP (address)));
      else
        sendmail_add_unique_address (addresses,
                            internet_address_mailbox_get_addr (INTERNET_ADDRESS_MAILBOX (address)));
    }
}

/* A recipient argument may be a list ("a@x, Bob <b@y>"), as with sendmail. */
static gboolean
add_recipient_argument (GPtrArray   *recipients,
                        const char  *argument,
                        GError     **error)
{
  g_autoptr(InternetAddressList) list = internet_address_list_parse (NULL, argument);
  guint before = recipients->len;

  add_address_list (recipients, list);
  if (recipients->len > before)
    return TRUE;

  g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_ADDRESS,
               "cannot read the recipient “%s”", argument);
  return FALSE;
}

/* "<a@b>" and "a@b" are the same sender; "<>" and "" the null sender. */
static char *
strip_angle_brackets (const char *address)
{
  gsize length = strlen (address);

  if (length >= 2 && address[0] == '<' && address[length - 1] == '>')
    return g_strndup (address + 1, length - 2);
  return g_strdup (address);
}

static gboolean
validate_address (const char  *address,
                  gboolean     allow_empty,
                  GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  if (outbox_address_validate (address, allow_empty, &local_error))
    return TRUE;

  g_set_error_literal (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_ADDRESS, local_error->message);
  return FALSE;
}

/* Command line */

/* Flags of other sendmails that change nothing here: -i and -oi (input
 * always ends at end of file), delivery and error modes, -bm (the default
 * mode) and the submission-type flags. */
static const char *const ignored_flags[] = {
  "-i", "-oi", "-odb", "-odi", "-oem", "-om", "-oee", "-bm", "-Am", "-Ac", NULL
};

/* A flag's value: attached (-fADDR) or the next argument (-f ADDR). */
static gboolean
take_value (int          argc,
            char       **argv,
            int         *index,
            char       **out_value,
            GError     **error)
{
  const char *argument = argv[*index];

  g_free (*out_value);
  if (argument[2] != '\0')
    {
      *out_value = g_strdup (argument + 2);
      return TRUE;
    }
  if (*index + 1 >= argc)
    {
      *out_value = NULL;
      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                   "option %s needs a value", argument);
      return FALSE;
    }
  *out_value = g_strdup (argv[++*index]);
  return TRUE;
}

/* Which of -N, -R and -V @letter is, or -1. */
static int
dsn_flag_index (char letter)
{
  for (gsize i = 0; i < G_N_ELEMENTS (dsn_flags); i++)
    if (letter == dsn_flags[i][1])
      return (int) i;
  return -1;
}

static gboolean
parse_flag (SendmailOptions  *options,
            int               argc,
            char            **argv,
            int              *index,
            GError          **error)
{
  const char *flag = argv[*index];

  if (g_strv_contains (ignored_flags, flag))
    return TRUE;
  if (g_str_equal (flag, "-t"))
    options->read_recipients = TRUE;
  else if (g_str_equal (flag, "-v"))
    options->verbose = TRUE;
  else if (g_str_equal (flag, "-bp"))
    options->mode = MODE_LIST;
  else if (g_str_equal (flag, "-bs"))
    options->mode = MODE_SMTP;
  else if (g_str_equal (flag, "-q"))
    options->mode = MODE_FLUSH;
  else if (g_str_has_prefix (flag, "-f") || g_str_has_prefix (flag, "-r"))
    return take_value (argc, argv, index, &options->from, error);
  else if (g_str_has_prefix (flag, "-F"))
    return take_value (argc, argv, index, &options->full_name, error);
  else if (flag[0] == '-' && dsn_flag_index (flag[1]) >= 0)
    return take_value (argc, argv, index, &options->dsn_args[dsn_flag_index (flag[1])], error);
  else
    {
      g_autofree char *clean_flag = outbox_cli_sanitize (flag);

      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
                   "unknown option %s", clean_flag);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_command_line (SendmailOptions  *options,
                    int               argc,
                    char            **argv,
                    GError          **error)
{
  gboolean only_recipients = FALSE;

  options->recipients = g_ptr_array_new_with_free_func (g_free);
  for (int i = 1; i < argc; i++)
    {
      if (only_recipients || argv[i][0] != '-')
        {
          if (!add_recipient_argument (options->recipients, argv[i], error))
            return FALSE;
        }
      else if (g_str_equal (argv[i], "--"))
        only_recipients = TRUE;
      else if (!parse_flag (options, argc, argv, &i, error))
        return FALSE;
    }

  if (options->from != NULL)
    {
      g_autofree char *from = strip_angle_brackets (options->from);

      g_free (options->from);
      options->from = g_steal_pointer (&from);
    }
  return outbox_cli_dsn_parse (dsn_flags, options->dsn_args[0], options->dsn_args[1],
                               options->dsn_args[2], &options->dsn, error);
}

static void
print_help (void)
{
  g_print ("Usage:\n"
           "  %s [-t] [-i] [-f FROM] [-F NAME] [-N DSN] [-R RET] [-V ENVID] [-v] [--]\n"
           "     [RECIPIENT…] < MESSAGE\n"
           "  %s -bp | -q | -bs\n\n"
           "Hands a message to Outbox, like sendmail.\n\n"
           "  -t         Take recipients from To, Cc and Bcc (added to the arguments)\n"
           "  -f, -r ADDR  Envelope sender; also the From when the message has none\n"
           "  -F NAME    Display name of the From added when the message has none\n"
           "  -N DSN     Delivery status notifications: never, or a comma list of\n"
           "             success, failure, delay (asked of servers that offer DSN)\n"
           "  -R RET     What a notification returns: full or hdrs\n"
           "  -V ENVID   The envelope ID notifications carry\n"
           "  -bp        List the queue (like mailq)\n"
           "  -q         Try every queued and deferred message now\n"
           "  -bs        Speak SMTP on standard input and output\n"
           "  -v         Say where the message went\n"
           "  -i, -oi, -odb, -odi, -oem, -om, -oee, -bm, -Am, -Ac   Accepted, ignored\n\n"
           "Bcc header fields are always removed. See outbox-sendmail(8).\n",
           g_get_prgname (), g_get_prgname ());
}

/* Reading the message's start */

/* The header block of the message on standard input, and the bytes read
 * past it. */
typedef struct
{
  GByteArray *head;     /* everything read so far */
  gsize header_end;     /* where the blank line after the header block starts */
  gboolean crlf;        /* the first line ends in CRLF */
} MessageStart;

static void
message_start_clear (MessageStart *start)
{
  g_clear_pointer (&start->head, g_byte_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (MessageStart, message_start_clear)

/* The offset of the empty line that ends the header block, searching from
 * @from, or -1. */
static gssize
find_header_end (const GByteArray *head,
                 gsize             from)
{
  const guint8 *data = head->data;

  if (from == 0 && head->len > 0 && (data[0] == '\n' || (data[0] == '\r' && head->len > 1 &&
                                                         data[1] == '\n')))
    return 0;
  for (gsize i = from; i + 1 < head->len; i++)
    {
      if (data[i] != '\n')
        continue;
      if (data[i + 1] == '\n' || (data[i + 1] == '\r' && i + 2 < head->len && data[i + 2] == '\n'))
        return (gssize) i + 1;
    }
  return -1;
}

static gssize
read_some (int      fd,
           guint8  *buffer,
           gsize    size,
           GError **error)
{
  gssize n;

  do
    n = read (fd, buffer, size);
  while (n < 0 && errno == EINTR);

  if (n < 0)
    {
      int saved_errno = errno;

      g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_TEMPORARY,
                   "cannot read the message: %s", g_strerror (saved_errno));
    }
  return n;
}

static gboolean
first_line_ends_in_crlf (const GByteArray *head)
{
  const guint8 *newline;

  /* An empty GByteArray may have no storage: memchr must not see it. */
  if (head->len == 0)
    return FALSE;
  newline = memchr (head->data, '\n', head->len);

  return newline != NULL && newline > head->data && newline[-1] == '\r';
}

/* Reads up to the end of the header block (or of the input, or of what a
 * header block may be: the daemon refuses anything longer). */
static gboolean
read_message_start (int            fd,
                    MessageStart  *start,
                    GError       **error)
{
  guint8 buffer[COPY_BUFFER_SIZE];
  gssize found = -1;

  start->head = g_byte_array_new ();
  while (found < 0 && start->head->len <= OUTBOX_MESSAGE_MAX_HEADER)
    {
      gsize searched = start->head->len > 2 ? start->head->len - 2 : 0;
      gssize n = read_some (fd, buffer, sizeof buffer, error);

      if (n < 0)
        return FALSE;
      if (n == 0)
        break;
      g_byte_array_append (start->head, buffer, (guint) n);
      found = find_header_end (start->head, searched);
    }

  start->header_end = found >= 0 ? (gsize) found : start->head->len;
  start->crlf = first_line_ends_in_crlf (start->head);
  return TRUE;
}

/* The header block */

typedef struct
{
  GString *kept;          /* the header block without its Bcc fields */
  gboolean has_from;
  gboolean has_bcc;
  GPtrArray *addresses;   /* (element-type utf8) of To, Cc and Bcc */
} HeaderInfo;

static void
header_info_clear (HeaderInfo *info)
{
  if (info->kept != NULL)
    g_string_free (info->kept, TRUE);
  info->kept = NULL;
  g_clear_pointer (&info->addresses, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (HeaderInfo, header_info_clear)

gboolean
sendmail_field_is (const char *field,
                   gsize       length,
                   const char *name)
{
  gsize name_length = strlen (name);

  return length > name_length && field[name_length] == ':' &&
         g_ascii_strncasecmp (field, name, name_length) == 0;
}

static void
collect_field_addresses (HeaderInfo *info,
                         const char *field,
                         gsize       length)
{
  const char *colon = memchr (field, ':', length);
  g_autofree char *value = g_strndup (colon + 1, length - (gsize) (colon + 1 - field));
  g_autoptr(InternetAddressList) list = NULL;

  /* Unfolded: the parser wants one line. */
  g_strdelimit (value, "\r\n", ' ');
  list = internet_address_list_parse (NULL, value);
  add_address_list (info->addresses, list);
}

static void
examine_field (HeaderInfo *info,
               const char *field,
               gsize       length)
{
  gboolean is_bcc = sendmail_field_is (field, length, "bcc");

  if (sendmail_field_is (field, length, "from"))
    info->has_from = TRUE;
  if (is_bcc || sendmail_field_is (field, length, "to") || sendmail_field_is (field, length, "cc"))
    collect_field_addresses (info, field, length);

  if (is_bcc)
    info->has_bcc = TRUE;
  else
    g_string_append_len (info->kept, field, (gssize) length);
}

static gsize
next_line (const char *data,
           gsize       position,
           gsize       end)
{
  const char *newline = memchr (data + position, '\n', end - position);

  return newline != NULL ? (gsize) (newline - data) + 1 : end;
}

/* Splits the header block into fields (a line and its continuation lines)
 * and examines each. */
static void
examine_header_block (const MessageStart *start,
                      HeaderInfo         *info)
{
  const char *data = (const char *) start->head->data;
  gsize end = start->header_end;
  gsize position = 0;

  info->kept = g_string_new (NULL);
  info->addresses = g_ptr_array_new_with_free_func (g_free);
  while (position < end)
    {
      gsize field_start = position;

      position = next_line (data, position, end);
      while (position < end && (data[position] == ' ' || data[position] == '\t'))
        position = next_line (data, position, end);
      examine_field (info, data + field_start, position - field_start);
    }
}

/* The envelope */


void
sendmail_envelope_clear (SendmailEnvelope *envelope)
{
  g_clear_pointer (&envelope->from, g_free);
  g_clear_pointer (&envelope->recipients, g_ptr_array_unref);
  g_clear_pointer (&envelope->from_field, g_free);
  outbox_cli_dsn_clear (&envelope->dsn);
}

void
sendmail_dsn_copy (const OutboxCliDsn *from,
                   OutboxCliDsn       *to)
{
  outbox_cli_dsn_clear (to);
  *to = *from;
  to->envid = g_strdup (from->envid);
}


/* The address the daemon would use: the default account's. */
static char *
default_account_address (void)
{
  g_autofree char *path = g_build_filename (g_get_user_config_dir (), "outbox",
                                            "accounts.conf", NULL);
  g_autoptr(OutboxAccountStore) store = outbox_account_store_load (path, NULL);
  const OutboxAccountConfig *account = store != NULL ? outbox_account_store_get_default (store) : NULL;

  return account != NULL ? g_strdup (account->from) : NULL;
}

/* "From: NAME <ADDRESS>", quoted and encoded as RFC 5322 and RFC 2047 want. */
static char *
format_from_field (const char *full_name,
                   const char *address,
                   gboolean    crlf)
{
  g_autoptr(InternetAddress) mailbox = internet_address_mailbox_new (full_name, address);
  g_autofree char *text = internet_address_to_string (mailbox, NULL, TRUE);

  return g_strdup_printf ("From: %s%s", text, crlf ? "\r\n" : "\n");
}

static char *
from_field_to_add (const SendmailOptions *options,
                   const HeaderInfo      *info,
                   gboolean               crlf)
{
  g_autofree char *address = NULL;

  if (info->has_from || (options->full_name == NULL &&
                         (options->from == NULL || options->from[0] == '\0')))
    return NULL;

  address = options->from != NULL && options->from[0] != '\0'
            ? g_strdup (options->from) : default_account_address ();
  /* Without any account the daemon refuses the message anyway. */
  if (address == NULL)
    return NULL;
  return format_from_field (options->full_name, address, crlf);
}

static gboolean
build_envelope (const SendmailOptions  *options,
                const HeaderInfo       *info,
                gboolean                crlf,
                SendmailEnvelope       *envelope,
                GError                **error)
{
  envelope->recipients = g_ptr_array_new_with_free_func (g_free);
  if (options->read_recipients)
    for (guint i = 0; i < info->addresses->len; i++)
      sendmail_add_unique_address (envelope->recipients, g_ptr_array_index (info->addresses, i));
  for (guint i = 0; i < options->recipients->len; i++)
    sendmail_add_unique_address (envelope->recipients, g_ptr_array_index (options->recipients, i));

  if (envelope->recipients->len == 0)
    {
      g_set_error_literal (error, OUTBOX_CLI_ERROR,
                           options->read_recipients ? OUTBOX_CLI_ERROR_DATA : OUTBOX_CLI_ERROR_USAGE,
                           options->read_recipients
                           ? "the message has no recipient in To, Cc or Bcc"
                           : "no recipients: give them as arguments, or use -t");
      return FALSE;
    }
  for (guint i = 0; i < envelope->recipients->len; i++)
    if (!validate_address (g_ptr_array_index (envelope->recipients, i), FALSE, error))
      return FALSE;
  if (options->from != NULL && !validate_address (options->from, TRUE, error))
    return FALSE;

  envelope->from = g_strdup (options->from);
  sendmail_dsn_copy (&options->dsn, &envelope->dsn);
  envelope->from_field = from_field_to_add (options, info, crlf);
  envelope->rewrite = info->has_bcc || envelope->from_field != NULL;
  return TRUE;
}

static GVariant *
envelope_to_options (const SendmailEnvelope *envelope)
{
  g_autoptr(GVariantDict) options = g_variant_dict_new (NULL);

  if (envelope->from != NULL)
    g_variant_dict_insert (options, "from", "s", envelope->from);
  g_ptr_array_add (envelope->recipients, NULL);
  g_variant_dict_insert_value (options, "recipients",
                               g_variant_new_strv ((const char *const *) envelope->recipients->pdata,
                                                   -1));
  g_ptr_array_remove_index (envelope->recipients, envelope->recipients->len - 1);
  outbox_cli_dsn_insert (&envelope->dsn, options);
  return g_variant_ref_sink (g_variant_dict_end (options));
}

/* The draft: a maildrop file being written (see outbox-maildrop-format.h) */


void
sendmail_draft_free (SendmailDraft *draft)
{
  if (draft->fd >= 0)
    close (draft->fd);
  if (!draft->committed)
    unlink (draft->tmp_path);
  g_free (draft->dir);
  g_free (draft->name);
  g_free (draft->tmp_path);
  g_free (draft);
}


static gboolean
set_errno_error (GError     **error,
                 int          saved_errno,
                 const char  *what,
                 const char  *path)
{
  g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_TEMPORARY,
               "cannot %s %s: %s", what, path, g_strerror (saved_errno));
  return FALSE;
}

gboolean
sendmail_draft_write (SendmailDraft  *draft,
                      const void     *data,
                      gsize           length,
                      GError        **error)
{
  const char *bytes = data;

  while (length > 0)
    {
      gssize n = write (draft->fd, bytes, length);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return set_errno_error (error, errno, "write", draft->tmp_path);
      bytes += n;
      length -= (gsize) n;
    }
  return TRUE;
}

/* The envelope as the maildrop file starts. */
static GString *
format_envelope (const SendmailEnvelope *envelope)
{
  g_auto(OutboxMaildropEnvelope) file_envelope = { NULL, };

  file_envelope.from = g_strdup (envelope->from);
  file_envelope.recipients = g_ptr_array_ref (envelope->recipients);
  if (envelope->dsn.notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    file_envelope.notify = outbox_dsn_notify_to_string (envelope->dsn.notify, FALSE);
  file_envelope.ret = g_strdup (outbox_dsn_ret_to_string (envelope->dsn.ret));
  file_envelope.envid = g_strdup (envelope->dsn.envid);
  return outbox_maildrop_envelope_format (&file_envelope);
}

static gboolean
make_private_directory (const char  *path,
                        GError     **error)
{
  if (g_mkdir_with_parents (path, 0700) == 0)
    return TRUE;
  return set_errno_error (error, errno, "create", path);
}

/* Creates maildrop/tmp/NAME (0600, O_EXCL) holding the envelope. */
SendmailDraft *
sendmail_draft_new (const SendmailEnvelope  *from_envelope,
                    GError                 **error)
{
  g_autoptr(SendmailDraft) draft = g_new0 (SendmailDraft, 1);
  g_autofree char *tmp_dir = NULL;
  g_autoptr(GString) envelope = format_envelope (from_envelope);

  draft->fd = -1;
  draft->committed = TRUE;
  draft->dir = g_build_filename (g_get_user_data_dir (), "outbox", "maildrop", NULL);
  tmp_dir = g_build_filename (draft->dir, "tmp", NULL);
  if (!make_private_directory (tmp_dir, error))
    return NULL;

  draft->name = g_strdup_printf ("%" G_GINT64_FORMAT ".%d.%08x", g_get_real_time (),
                                 (int) getpid (), g_random_int ());
  draft->tmp_path = g_build_filename (tmp_dir, draft->name, NULL);
  draft->fd = open (draft->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (draft->fd < 0)
    {
      set_errno_error (error, errno, "create", draft->tmp_path);
      return NULL;
    }
  draft->committed = FALSE;

  if (!sendmail_draft_write (draft, envelope->str, envelope->len, error))
    return NULL;
  draft->message_offset = (off_t) envelope->len;
  return g_steal_pointer (&draft);
}

static gboolean
draft_copy_from (SendmailDraft  *draft,
                 int             fd,
                 GError        **error)
{
  guint8 buffer[COPY_BUFFER_SIZE];

  for (;;)
    {
      gssize n = read_some (fd, buffer, sizeof buffer, error);

      if (n < 0)
        return FALSE;
      if (n == 0)
        return TRUE;
      if (!sendmail_draft_write (draft, buffer, (gsize) n, error))
        return FALSE;
    }
}

static gboolean
fsync_directory (const char  *path,
                 GError     **error)
{
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int saved_errno;

  if (fd >= 0 && fsync (fd) == 0)
    {
      close (fd);
      return TRUE;
    }
  saved_errno = errno;
  if (fd >= 0)
    close (fd);
  return set_errno_error (error, saved_errno, "sync", path);
}

/* Makes the draft a maildrop file: fsync, rename, directory fsync. */
static gboolean
draft_commit (SendmailDraft  *draft,
              GError        **error)
{
  g_autofree char *path = g_build_filename (draft->dir, draft->name, NULL);

  if (fsync (draft->fd) != 0)
    return set_errno_error (error, errno, "sync", draft->tmp_path);
  if (close (draft->fd) != 0)
    {
      draft->fd = -1;
      return set_errno_error (error, errno, "write", draft->tmp_path);
    }
  draft->fd = -1;
  if (rename (draft->tmp_path, path) != 0)
    return set_errno_error (error, errno, "move into place", draft->tmp_path);
  draft->committed = TRUE;
  return fsync_directory (draft->dir, error);
}

/* A descriptor reading the draft's message, for Submit. */
static int
draft_open_message (SendmailDraft  *draft,
                    GError        **error)
{
  int fd = open (draft->tmp_path, O_RDONLY | O_CLOEXEC);

  if (fd >= 0 && lseek (fd, draft->message_offset, SEEK_SET) == draft->message_offset)
    return fd;

  set_errno_error (error, errno, "read", draft->tmp_path);
  if (fd >= 0)
    close (fd);
  return -1;
}

/* The daemon */

/* Where a message went: a queue id, or the maildrop. */
static void
report_queued (gboolean    verbose,
               const char *id,
               const char *maildrop_name)
{
  if (!verbose)
    return;
  if (id != NULL)
    g_printerr ("%s: queued as %s\n", g_get_prgname (), id);
  else
    g_printerr ("%s: no session bus answered; left in the maildrop as %s for outboxd\n",
                g_get_prgname (), maildrop_name);
}

/* Hands a finished draft to the daemon, or leaves it in the maildrop when
 * there is no daemon to take it.  Returns the queue id, or "" for the
 * maildrop. */
char *
sendmail_draft_finish (SendmailDraft           *draft,
                       GDBusConnection         *bus,
                       const SendmailEnvelope  *envelope,
                       GError                 **error)
{
  g_autoptr(GError) submit_error = NULL;

  if (bus != NULL)
    {
      g_autoptr(GVariant) options = envelope_to_options (envelope);
      int fd = draft_open_message (draft, error);
      char *id;

      if (fd < 0)
        return NULL;
      id = outbox_cli_bus_submit_fd (bus, fd, options, &submit_error);
      close (fd);
      if (id != NULL)
        return id;
      if (!outbox_cli_error_is_daemon_missing (submit_error))
        {
          g_propagate_error (error, g_steal_pointer (&submit_error));
          return NULL;
        }
    }

  if (!draft_commit (draft, error))
    return NULL;
  return g_strdup ("");
}

/* Delivery mode: a message on standard input */

static gboolean
write_message_start (SendmailDraft           *draft,
                     const MessageStart      *start,
                     const HeaderInfo        *info,
                     const SendmailEnvelope  *envelope,
                     GError                 **error)
{
  const guint8 *rest = start->head->data + start->header_end;
  gsize rest_length = start->head->len - start->header_end;

  if (envelope->from_field != NULL &&
      !sendmail_draft_write (draft, envelope->from_field, strlen (envelope->from_field), error))
    return FALSE;
  return sendmail_draft_write (draft, info->kept->str, info->kept->len, error) &&
         sendmail_draft_write (draft, rest, rest_length, error);
}

/* Standard input is a file read from @offset on: the daemon can read it
 * itself when nothing in it must change. */
static gboolean
rewind_stdin (off_t offset)
{
  struct stat info;

  return offset >= 0 && fstat (STDIN_FILENO, &info) == 0 && S_ISREG (info.st_mode) &&
         lseek (STDIN_FILENO, offset, SEEK_SET) == offset;
}

static int
report_error (const GError *error)
{
  return outbox_cli_report_error (error, error->domain == OUTBOX_CLI_ERROR &&
                                  error->code == OUTBOX_CLI_ERROR_USAGE ? USAGE_HINT : NULL);
}

static int
submit_through_draft (const SendmailOptions  *options,
                      const MessageStart     *start,
                      const HeaderInfo       *info,
                      const SendmailEnvelope *envelope,
                      GDBusConnection        *bus)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SendmailDraft) draft = sendmail_draft_new (envelope, &error);
  g_autofree char *id = NULL;

  if (draft == NULL ||
      !write_message_start (draft, start, info, envelope, &error) ||
      !draft_copy_from (draft, STDIN_FILENO, &error))
    return report_error (error);

  id = sendmail_draft_finish (draft, bus, envelope, &error);
  if (id == NULL)
    return report_error (error);
  report_queued (options->verbose, id[0] != '\0' ? id : NULL, draft->name);
  return EX_OK;
}

static int
run_deliver (const SendmailOptions *options)
{
  g_autoptr(GError) error = NULL;
  g_auto(MessageStart) start = { NULL, };
  g_auto(HeaderInfo) info = { NULL, };
  g_auto(SendmailEnvelope) envelope = { NULL, };
  g_autoptr(GDBusConnection) bus = NULL;
  off_t stdin_offset = lseek (STDIN_FILENO, 0, SEEK_CUR);

  if (!read_message_start (STDIN_FILENO, &start, &error))
    return report_error (error);
  examine_header_block (&start, &info);
  if (!build_envelope (options, &info, start.crlf, &envelope, &error))
    return report_error (error);

  bus = outbox_cli_bus_connect_to_daemon (NULL);
  if (bus != NULL && !envelope.rewrite && rewind_stdin (stdin_offset))
    {
      g_autoptr(GVariant) submit_options = envelope_to_options (&envelope);
      g_autofree char *id = outbox_cli_bus_submit_fd (bus, STDIN_FILENO, submit_options, &error);

      if (id == NULL)
        return report_error (error);
      report_queued (options->verbose, id, NULL);
      return EX_OK;
    }
  return submit_through_draft (options, &start, &info, &envelope, bus);
}

/* -bp and -q */

static int
run_list (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) messages = outbox_cli_bus_list_messages (FALSE, &error);

  if (messages == NULL)
    return report_error (error);

  outbox_cli_print_queue_table (messages, FALSE);
  return EX_OK;
}

static int
run_flush (void)
{
  g_autoptr(GError) error = NULL;

  if (!outbox_cli_bus_flush (&error))
    return report_error (error);
  return EX_OK;
}

static int
run (int    argc,
     char **argv)
{
  g_auto(SendmailOptions) options = { 0, };
  g_autoptr(GError) error = NULL;

  if (argc == 2 && (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h")))
    {
      print_help ();
      return EX_OK;
    }
  if (argc == 2 && g_str_equal (argv[1], "--version"))
    {
      g_print ("%s (outbox) %s\n", g_get_prgname (), PACKAGE_VERSION);
      return EX_OK;
    }

  /* Installed as mailq, it lists the queue. */
  if (g_str_equal (g_get_prgname (), "mailq"))
    options.mode = MODE_LIST;
  if (!parse_command_line (&options, argc, argv, &error))
    return report_error (error);

  switch (options.mode)
    {
    case MODE_LIST:
      return run_list ();
    case MODE_FLUSH:
      return run_flush ();
    case MODE_SMTP:
      return outbox_sendmail_run_smtp (&options.dsn);
    case MODE_DELIVER:
    default:
      return run_deliver (&options);
    }
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *program = g_path_get_basename (argc > 0 ? argv[0] : "outbox-sendmail");
  int status;

  setlocale (LC_ALL, "");
  /* Maildrop files are for this user only. */
  umask (0077);
  g_set_prgname (program);
  g_set_application_name (program);

  g_mime_init ();
  status = run (argc, argv);
  g_mime_shutdown ();
  return status;
}
