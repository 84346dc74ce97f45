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

#include <gio/gunixfdlist.h>
#include <gmime/gmime.h>

#include "outbox-account.h"
#include "outbox-address.h"
#include "outbox-cli-bus.h"
#include "outbox-cli-util.h"
#include "outbox-maildrop.h"
#include "outbox-message.h"

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
/* RFC 5321 section 4.5.3.1.4, and the 500 octets RFC 3461 section 4 lets
 * NOTIFY and ORCPT add to a RCPT line, with room for the CRLF and the NUL. */
#define SMTP_COMMAND_BUFFER_SIZE (512 + 500 + 3)
/* DATA lines are streamed in pieces of at most this size. */
#define SMTP_DATA_BUFFER_SIZE 4096

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

static void
add_unique_address (GPtrArray  *addresses,
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
        add_unique_address (addresses,
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

static gboolean
field_is (const char *field,
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
  gboolean is_bcc = field_is (field, length, "bcc");

  if (field_is (field, length, "from"))
    info->has_from = TRUE;
  if (is_bcc || field_is (field, length, "to") || field_is (field, length, "cc"))
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

typedef struct
{
  char *from;             /* (nullable) envelope sender */
  GPtrArray *recipients;  /* (element-type utf8) */
  char *from_field;       /* (nullable) a From field to add */
  gboolean rewrite;       /* the header block must change */
  OutboxCliDsn dsn;       /* what the message asks of DSN */
} Envelope;

static void
envelope_clear (Envelope *envelope)
{
  g_clear_pointer (&envelope->from, g_free);
  g_clear_pointer (&envelope->recipients, g_ptr_array_unref);
  g_clear_pointer (&envelope->from_field, g_free);
  outbox_cli_dsn_clear (&envelope->dsn);
}

static void
dsn_copy (const OutboxCliDsn *from,
          OutboxCliDsn       *to)
{
  outbox_cli_dsn_clear (to);
  *to = *from;
  to->envid = g_strdup (from->envid);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Envelope, envelope_clear)

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
                Envelope               *envelope,
                GError                **error)
{
  envelope->recipients = g_ptr_array_new_with_free_func (g_free);
  if (options->read_recipients)
    for (guint i = 0; i < info->addresses->len; i++)
      add_unique_address (envelope->recipients, g_ptr_array_index (info->addresses, i));
  for (guint i = 0; i < options->recipients->len; i++)
    add_unique_address (envelope->recipients, g_ptr_array_index (options->recipients, i));

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
  dsn_copy (&options->dsn, &envelope->dsn);
  envelope->from_field = from_field_to_add (options, info, crlf);
  envelope->rewrite = info->has_bcc || envelope->from_field != NULL;
  return TRUE;
}

static GVariant *
envelope_to_options (const Envelope *envelope)
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

/* The draft: a maildrop file being written (see outbox-maildrop.h) */

typedef struct
{
  char *dir;           /* the maildrop */
  char *name;
  char *tmp_path;
  int fd;
  off_t message_offset;
  gboolean committed;
} Draft;

static void
draft_free (Draft *draft)
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Draft, draft_free)

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

static gboolean
write_all (Draft         *draft,
           const void    *data,
           gsize          length,
           GError       **error)
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

static void
append_escaped (GString    *line,
                const char *value)
{
  for (const guchar *c = (const guchar *) value; *c != '\0'; c++)
    {
      if (*c <= 0x20 || *c == '%' || *c == 0x7f)
        g_string_append_printf (line, "%%%02X", *c);
      else
        g_string_append_c (line, (char) *c);
    }
}

/* "KEY VALUE\n", unless @value is NULL. */
static void
append_envelope_line (GString    *text,
                      const char *key,
                      const char *value)
{
  if (value == NULL)
    return;
  g_string_append_printf (text, "%s ", key);
  append_escaped (text, value);
  g_string_append_c (text, '\n');
}

static GString *
format_envelope (const Envelope *envelope)
{
  GString *text = g_string_new (OUTBOX_MAILDROP_MAGIC "\n");
  g_autofree char *notify = NULL;

  append_envelope_line (text, "from", envelope->from);
  for (guint i = 0; i < envelope->recipients->len; i++)
    append_envelope_line (text, "recipient", g_ptr_array_index (envelope->recipients, i));
  if (envelope->dsn.notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    notify = outbox_dsn_notify_to_string (envelope->dsn.notify, FALSE);
  append_envelope_line (text, "notify", notify);
  append_envelope_line (text, "ret", outbox_dsn_ret_to_string (envelope->dsn.ret));
  append_envelope_line (text, "envid", envelope->dsn.envid);
  g_string_append_c (text, '\n');
  return text;
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
static Draft *
draft_new (const Envelope  *from_envelope,
           GError         **error)
{
  g_autoptr(Draft) draft = g_new0 (Draft, 1);
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

  if (!write_all (draft, envelope->str, envelope->len, error))
    return NULL;
  draft->message_offset = (off_t) envelope->len;
  return g_steal_pointer (&draft);
}

static gboolean
draft_copy_from (Draft   *draft,
                 int      fd,
                 GError **error)
{
  guint8 buffer[COPY_BUFFER_SIZE];

  for (;;)
    {
      gssize n = read_some (fd, buffer, sizeof buffer, error);

      if (n < 0)
        return FALSE;
      if (n == 0)
        return TRUE;
      if (!write_all (draft, buffer, (gsize) n, error))
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
draft_commit (Draft   *draft,
              GError **error)
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
draft_open_message (Draft   *draft,
                    GError **error)
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
static char *
finish_draft (Draft            *draft,
              GDBusConnection  *bus,
              const Envelope   *envelope,
              GError          **error)
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
write_message_start (Draft               *draft,
                     const MessageStart  *start,
                     const HeaderInfo    *info,
                     const Envelope      *envelope,
                     GError             **error)
{
  const guint8 *rest = start->head->data + start->header_end;
  gsize rest_length = start->head->len - start->header_end;

  if (envelope->from_field != NULL &&
      !write_all (draft, envelope->from_field, strlen (envelope->from_field), error))
    return FALSE;
  return write_all (draft, info->kept->str, info->kept->len, error) &&
         write_all (draft, rest, rest_length, error);
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
submit_through_draft (const SendmailOptions *options,
                      const MessageStart    *start,
                      const HeaderInfo      *info,
                      const Envelope        *envelope,
                      GDBusConnection       *bus)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Draft) draft = draft_new (envelope, &error);
  g_autofree char *id = NULL;

  if (draft == NULL ||
      !write_message_start (draft, start, info, envelope, &error) ||
      !draft_copy_from (draft, STDIN_FILENO, &error))
    return report_error (error);

  id = finish_draft (draft, bus, envelope, &error);
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
  g_auto(Envelope) envelope = { NULL, };
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

  dsn_copy (server->dsn_defaults, &dsn);
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
  dsn_copy (&dsn, &server->dsn);
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

  add_unique_address (server->recipients, address);
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
    filter->in_bcc = field_is (line, length, "bcc");
  filter->dropping = !filter->in_body && filter->in_bcc;
}

/* Reads the message up to the lone dot, dot-unstuffed and without its Bcc
 * fields, into @draft (when there is one and no write failed yet).  FALSE
 * at end of input before the dot. */
static gboolean
smtp_receive_data (SmtpServer  *server,
                   Draft       *draft,
                   GError     **error)
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
        write_all (draft, piece, length, error);
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
  g_autoptr(Draft) draft = NULL;
  g_auto(Envelope) envelope = { NULL, };
  g_autofree char *id = NULL;

  envelope.from = g_strdup (server->from);
  envelope.recipients = g_ptr_array_ref (server->recipients);
  dsn_copy (&server->dsn, &envelope.dsn);
  draft = draft_new (&envelope, &error);
  smtp_reply (server, "354 End data with <CR><LF>.<CR><LF>");
  if (!smtp_receive_data (server, draft, &error))
    return NULL;

  if (error == NULL)
    id = finish_draft (draft, server->bus, &envelope, &error);
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

static int
run_smtp (const SendmailOptions *options)
{
  SmtpServer server = { NULL, };
  char line[SMTP_COMMAND_BUFFER_SIZE];
  gboolean too_long;

  server.dsn_defaults = &options->dsn;
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
      return run_smtp (&options);
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
