/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixoutputstream.h>

#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-smtp-dsn.h"
#include "outbox-spool.h"

#define RECORD_MAGIC "outbox-record 1"
#define RECORD_MAX_SIZE (1024 * 1024)
#define ID_MAX_LENGTH 64
#define SHA256_HEX_LENGTH 64

/* States */

static const char * const message_state_names[] = {
  [OUTBOX_SPOOL_STATE_QUEUED] = "queued",
  [OUTBOX_SPOOL_STATE_SCHEDULED] = "scheduled",
  [OUTBOX_SPOOL_STATE_HELD] = "held",
  [OUTBOX_SPOOL_STATE_SENDING] = "sending",
  [OUTBOX_SPOOL_STATE_DEFERRED] = "deferred",
  [OUTBOX_SPOOL_STATE_SENT] = "sent",
  [OUTBOX_SPOOL_STATE_FAILED] = "failed",
};

static const char * const recipient_state_names[] = {
  [OUTBOX_RECIPIENT_STATE_QUEUED] = "queued",
  [OUTBOX_RECIPIENT_STATE_DEFERRED] = "deferred",
  [OUTBOX_RECIPIENT_STATE_SENT] = "sent",
  [OUTBOX_RECIPIENT_STATE_FAILED] = "failed",
};

static const char * const sent_copy_state_names[] = {
  [OUTBOX_SENT_COPY_NONE] = NULL,
  [OUTBOX_SENT_COPY_PENDING] = "pending",
  [OUTBOX_SENT_COPY_SAVED] = "saved",
  [OUTBOX_SENT_COPY_FAILED] = "failed",
};

static gboolean
state_from_string (const char * const *names,
                   guint n_names,
                   const char *str,
                   guint *out)
{
  for (guint i = 0; i < n_names; i++)
    {
      if (g_strcmp0 (names[i], str) == 0)
        {
          *out = i;
          return TRUE;
        }
    }
  return FALSE;
}

const char *
outbox_spool_state_to_string (OutboxSpoolState state)
{
  g_return_val_if_fail (state < G_N_ELEMENTS (message_state_names), NULL);
  return message_state_names[state];
}

gboolean
outbox_spool_state_from_string (const char *str,
                                  OutboxSpoolState *out)
{
  guint state;

  if (!state_from_string (message_state_names, G_N_ELEMENTS (message_state_names), str, &state))
    return FALSE;
  *out = state;
  return TRUE;
}

const char *
outbox_sent_copy_state_to_string (OutboxSentCopyState state)
{
  g_return_val_if_fail (state < G_N_ELEMENTS (sent_copy_state_names), NULL);
  return sent_copy_state_names[state];
}

const char *
outbox_recipient_state_to_string (OutboxRecipientState state)
{
  g_return_val_if_fail (state < G_N_ELEMENTS (recipient_state_names), NULL);
  return recipient_state_names[state];
}

gboolean
outbox_recipient_state_from_string (const char *str,
                                    OutboxRecipientState *out)
{
  guint state;

  if (!state_from_string (recipient_state_names, G_N_ELEMENTS (recipient_state_names), str, &state))
    return FALSE;
  *out = state;
  return TRUE;
}

/* Records */

/* A new zeroed recipient at the end of a record that is not compact.
 * Moves the recipients: pointers to them do not survive it. */
static OutboxRecipient *
append_recipient_slot (OutboxSpoolRecord *record)
{
  guint n = record->n_recipients;

  g_assert (!record->compact);
  /* Room for a power of two of them, so that a long list is not copied
   * at every addition; compacting trims it. */
  if ((n & (n - 1)) == 0)
    record->recipients = g_renew (OutboxRecipient, record->recipients, n == 0 ? 1 : 2 * n);
  memset (&record->recipients[record->n_recipients], 0, sizeof (OutboxRecipient));
  return &record->recipients[record->n_recipients++];
}

OutboxSpoolRecord *
outbox_spool_record_new (void)
{
  OutboxSpoolRecord *record = g_new0 (OutboxSpoolRecord, 1);

  record->save_to_sent = -1;
  record->dsn_required = -1;
  return record;
}

OutboxSpoolRecord *
outbox_spool_record_copy (const OutboxSpoolRecord *record)
{
  OutboxSpoolRecord *copy;

  g_return_val_if_fail (record != NULL, NULL);

  copy = g_memdup2 (record, sizeof *record);
  copy->compact = FALSE;
  copy->id = g_strdup (record->id);
  copy->account = g_strdup (record->account);
  copy->from = g_strdup (record->from);
  copy->message_id = g_strdup (record->message_id);
  copy->subject = g_strdup (record->subject);
  copy->last_reply = g_strdup (record->last_reply);
  copy->origin = g_strdup (record->origin);
  copy->sent_copy_reply = g_strdup (record->sent_copy_reply);
  copy->dsn_envid = g_strdup (record->dsn_envid);
  copy->recipients = NULL;
  copy->n_recipients = 0;
  for (guint i = 0; i < record->n_recipients; i++)
    {
      OutboxRecipient *recipient = append_recipient_slot (copy);

      *recipient = record->recipients[i];
      recipient->address = g_strdup (record->recipients[i].address);
      recipient->reply = g_strdup (record->recipients[i].reply);
    }
  return copy;
}

void
outbox_spool_record_free (OutboxSpoolRecord *record)
{
  if (record == NULL)
    return;
  for (guint i = 0; i < record->n_recipients; i++)
    g_free (record->recipients[i].reply);
  /* Only what may change after compacting lives outside the block. */
  if (!record->compact)
    {
      for (guint i = 0; i < record->n_recipients; i++)
        g_free (record->recipients[i].address);
      g_free (record->recipients);
      g_free (record->id);
      g_free (record->account);
      g_free (record->from);
      g_free (record->message_id);
      g_free (record->subject);
      g_free (record->origin);
      g_free (record->dsn_envid);
    }
  g_free (record->last_reply);
  g_free (record->sent_copy_reply);
  g_free (record);
}

/* The strings outbox_spool_record_compact() packs: set once, never replaced. */
static const gsize packed_strings[] = {
  G_STRUCT_OFFSET (OutboxSpoolRecord, id),
  G_STRUCT_OFFSET (OutboxSpoolRecord, account),
  G_STRUCT_OFFSET (OutboxSpoolRecord, from),
  G_STRUCT_OFFSET (OutboxSpoolRecord, message_id),
  G_STRUCT_OFFSET (OutboxSpoolRecord, subject),
  G_STRUCT_OFFSET (OutboxSpoolRecord, origin),
  G_STRUCT_OFFSET (OutboxSpoolRecord, dsn_envid),
};

static char *
pack_string (char **cursor, const char *str)
{
  gsize len;
  char *packed;

  if (str == NULL)
    return NULL;
  len = strlen (str) + 1;
  packed = memcpy (*cursor, str, len);
  *cursor += len;
  return packed;
}

OutboxSpoolRecord *
outbox_spool_record_compact (OutboxSpoolRecord *record)
{
  guint n_recipients;
  gsize size;
  OutboxSpoolRecord *compact;
  OutboxRecipient *recipients;
  char *cursor;

  g_return_val_if_fail (record != NULL, NULL);
  if (record->compact)
    return record;

  n_recipients = record->n_recipients;
  size = sizeof *record + n_recipients * sizeof (OutboxRecipient);
  for (gsize i = 0; i < G_N_ELEMENTS (packed_strings); i++)
    {
      const char *str = G_STRUCT_MEMBER (const char *, record, packed_strings[i]);

      if (str != NULL)
        size += strlen (str) + 1;
    }
  for (guint i = 0; i < n_recipients; i++)
    size += strlen (record->recipients[i].address) + 1;

  compact = g_malloc (size);
  *compact = *record;
  recipients = (OutboxRecipient *) (compact + 1);
  cursor = (char *) (recipients + n_recipients);
  for (gsize i = 0; i < G_N_ELEMENTS (packed_strings); i++)
    G_STRUCT_MEMBER (char *, compact, packed_strings[i]) =
        pack_string (&cursor, G_STRUCT_MEMBER (const char *, record, packed_strings[i]));
  compact->recipients = n_recipients > 0 ? recipients : NULL;
  for (guint i = 0; i < n_recipients; i++)
    {
      recipients[i] = record->recipients[i];
      recipients[i].address = pack_string (&cursor, record->recipients[i].address);
      record->recipients[i].reply = NULL; /* now the compact record's */
    }
  compact->compact = TRUE;
  g_assert (cursor == (char *) compact + size);

  /* The strings that may change moved over as they were. */
  record->last_reply = NULL;
  record->sent_copy_reply = NULL;
  outbox_spool_record_free (record);
  return compact;
}

void
outbox_spool_record_add_recipient (OutboxSpoolRecord *record,
                                   const char *address)
{
  OutboxRecipient *recipient;

  g_return_if_fail (!record->compact);
  recipient = append_recipient_slot (record);
  recipient->address = g_strdup (address);
  recipient->state = OUTBOX_RECIPIENT_STATE_QUEUED;
}

OutboxRecipient *
outbox_spool_record_get_recipient (OutboxSpoolRecord *record,
                                   guint i)
{
  g_return_val_if_fail (i < record->n_recipients, NULL);
  return &record->recipients[i];
}

/* The record format, one field a line, "key value", values escaped with
 * g_strescape() so that no value can hold a line break:
 *
 *   outbox-record 1
 *   id 018f2c3a4b5c6d7e8f
 *   ...                         every field of record_fields, in order
 *   recipient STATE CODE ADDRESS
 *   recipient-reply REPLY       optional, belongs to the recipient above
 *   sha256 HEX                  over every byte before this line
 */
typedef enum
{
  FIELD_STRING,
  FIELD_NULLABLE_STRING,
  FIELD_TIME,
  FIELD_UINT,
  FIELD_UINT64,
  FIELD_BOOLEAN,
  FIELD_TRISTATE,
  FIELD_MESSAGE_STATE,
  FIELD_SENT_COPY_STATE, /* absent: none */
  FIELD_DIGEST,     /* a SHA-256, in hex */
  /* The fields below came after the first records: written only when they
   * say something, so that a record without them reads as it always did. */
  FIELD_FLAG,              /* a boolean; absent: 0 */
  FIELD_OPTIONAL_TRISTATE, /* absent: -1 */
  FIELD_DSN_NOTIFY,        /* "success,failure"; absent: none asked */
  FIELD_DSN_RET,           /* "full" or "hdrs"; absent: none asked */
  FIELD_DSN_ENVID,         /* a valid envelope ID; absent: none */
} FieldKind;

typedef struct
{
  const char *key;
  FieldKind kind;
  gsize offset;
} RecordField;

static const RecordField record_fields[] = {
  { "id", FIELD_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, id) },
  { "account", FIELD_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, account) },
  { "from", FIELD_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, from) },
  { "state", FIELD_MESSAGE_STATE, G_STRUCT_OFFSET (OutboxSpoolRecord, state) },
  { "created", FIELD_TIME, G_STRUCT_OFFSET (OutboxSpoolRecord, created) },
  { "send-at", FIELD_TIME, G_STRUCT_OFFSET (OutboxSpoolRecord, send_at) },
  { "next-attempt", FIELD_TIME, G_STRUCT_OFFSET (OutboxSpoolRecord, next_attempt) },
  { "first-failure", FIELD_TIME, G_STRUCT_OFFSET (OutboxSpoolRecord, first_failure) },
  { "finished", FIELD_TIME, G_STRUCT_OFFSET (OutboxSpoolRecord, finished) },
  { "attempts", FIELD_UINT, G_STRUCT_OFFSET (OutboxSpoolRecord, attempts) },
  { "size", FIELD_UINT64, G_STRUCT_OFFSET (OutboxSpoolRecord, size) },
  { "data-sha256", FIELD_DIGEST, G_STRUCT_OFFSET (OutboxSpoolRecord, sha256) },
  { "message-id", FIELD_NULLABLE_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, message_id) },
  { "subject", FIELD_NULLABLE_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, subject) },
  { "last-reply", FIELD_NULLABLE_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, last_reply) },
  { "eightbit", FIELD_BOOLEAN, G_STRUCT_OFFSET (OutboxSpoolRecord, eightbit) },
  { "smtputf8", FIELD_BOOLEAN, G_STRUCT_OFFSET (OutboxSpoolRecord, smtputf8) },
  { "unknown-outcome", FIELD_BOOLEAN, G_STRUCT_OFFSET (OutboxSpoolRecord, unknown_outcome) },
  { "save-to-sent", FIELD_TRISTATE, G_STRUCT_OFFSET (OutboxSpoolRecord, save_to_sent) },
  { "network-deferred", FIELD_BOOLEAN, G_STRUCT_OFFSET (OutboxSpoolRecord, network_deferred) },
  { "origin", FIELD_NULLABLE_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, origin) },
  { "sent-copy", FIELD_SENT_COPY_STATE, G_STRUCT_OFFSET (OutboxSpoolRecord, sent_copy) },
  { "sent-copy-reply", FIELD_NULLABLE_STRING, G_STRUCT_OFFSET (OutboxSpoolRecord, sent_copy_reply) },
  { "sent-copy-attempts", FIELD_UINT, G_STRUCT_OFFSET (OutboxSpoolRecord, sent_copy_attempts) },
  { "sent-copy-next", FIELD_TIME, G_STRUCT_OFFSET (OutboxSpoolRecord, sent_copy_next) },
  { "dsn-notify", FIELD_DSN_NOTIFY, G_STRUCT_OFFSET (OutboxSpoolRecord, dsn_notify) },
  { "dsn-ret", FIELD_DSN_RET, G_STRUCT_OFFSET (OutboxSpoolRecord, dsn_ret) },
  { "dsn-envid", FIELD_DSN_ENVID, G_STRUCT_OFFSET (OutboxSpoolRecord, dsn_envid) },
  { "dsn-required", FIELD_OPTIONAL_TRISTATE, G_STRUCT_OFFSET (OutboxSpoolRecord, dsn_required) },
  { "dsn-not-offered", FIELD_FLAG, G_STRUCT_OFFSET (OutboxSpoolRecord, dsn_not_offered) },
};

/* Whether a record may lack the field: the older records do. */
static gboolean
field_is_optional (FieldKind kind)
{
  return kind == FIELD_NULLABLE_STRING || kind == FIELD_SENT_COPY_STATE || kind >= FIELD_FLAG;
}

/* A record is written at every change of its message, twice for each
 * message a drain sends: its lines are put together without printf. */

static void
append_key (GString *out,
            const char *key)
{
  g_string_append (out, key);
  g_string_append_c (out, ' ');
}

static void
append_number (GString *out,
               guint64 value,
               gboolean negative)
{
  char digits[24];
  char *start = digits + sizeof digits;

  do
    *--start = (char) ('0' + value % 10);
  while ((value /= 10) != 0);
  if (negative)
    *--start = '-';
  g_string_append_len (out, start, digits + sizeof digits - start);
}

static void
append_signed_line (GString *out,
                    const char *key,
                    gint64 value)
{
  append_key (out, key);
  /* Without overflow for G_MININT64 too. */
  append_number (out, value < 0 ? (guint64) 0 - (guint64) value : (guint64) value, value < 0);
  g_string_append_c (out, '\n');
}

static void
append_unsigned_line (GString *out,
                      const char *key,
                      guint64 value)
{
  append_key (out, key);
  append_number (out, value, FALSE);
  g_string_append_c (out, '\n');
}

static void
append_hex (GString *out,
            const guint8 *data,
            gsize len)
{
  static const char hex[] = "0123456789abcdef";

  for (gsize i = 0; i < len; i++)
    {
      g_string_append_c (out, hex[data[i] >> 4]);
      g_string_append_c (out, hex[data[i] & 0xf]);
    }
}

/* As g_strescape() writes @value, without a copy when nothing needs
 * escaping (the usual case). */
static void
append_escaped (GString *out,
                const char *value)
{
  g_autofree char *escaped = NULL;

  for (const char *p = value; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
        {
          escaped = g_strescape (value, NULL);
          g_string_append (out, escaped);
          return;
        }
    }
  g_string_append (out, value);
}

static void
append_string (GString *out,
               const char *key,
               const char *value)
{
  append_key (out, key);
  append_escaped (out, value != NULL ? value : "");
  g_string_append_c (out, '\n');
}

static void
append_dsn_notify (GString *out,
                   const char *key,
                   OutboxDsnNotify notify)
{
  g_autofree char *words = NULL;

  if (notify == OUTBOX_DSN_NOTIFY_DEFAULT)
    return;
  words = outbox_dsn_notify_to_string (notify, FALSE);
  append_string (out, key, words);
}

static void
append_field (GString *out,
              const RecordField *field,
              const OutboxSpoolRecord *record)
{
  gconstpointer member = G_STRUCT_MEMBER_P (record, field->offset);
  OutboxSpoolState state;

  switch (field->kind)
    {
    case FIELD_STRING:
      append_string (out, field->key, *(char * const *) member);
      break;
    case FIELD_DIGEST:
      append_key (out, field->key);
      append_hex (out, member, OUTBOX_SPOOL_SHA256_LENGTH);
      g_string_append_c (out, '\n');
      break;
    case FIELD_NULLABLE_STRING:
      if (*(char * const *) member != NULL)
        append_string (out, field->key, *(char * const *) member);
      break;
    case FIELD_TIME:
      append_signed_line (out, field->key, *(const gint64 *) member);
      break;
    case FIELD_UINT:
      append_unsigned_line (out, field->key, *(const guint *) member);
      break;
    case FIELD_UINT64:
      append_unsigned_line (out, field->key, *(const guint64 *) member);
      break;
    case FIELD_BOOLEAN:
      append_unsigned_line (out, field->key, *(const guint8 *) member ? 1 : 0);
      break;
    case FIELD_TRISTATE:
      append_signed_line (out, field->key, CLAMP (*(const gint8 *) member, -1, 1));
      break;
    case FIELD_MESSAGE_STATE:
      /* A crash in the middle of a delivery must not leave it stuck. */
      state = *(const OutboxSpoolState *) member;
      if (state == OUTBOX_SPOOL_STATE_SENDING)
        state = OUTBOX_SPOOL_STATE_QUEUED;
      append_key (out, field->key);
      g_string_append (out, outbox_spool_state_to_string (state));
      g_string_append_c (out, '\n');
      break;
    case FIELD_SENT_COPY_STATE:
      if (*(const OutboxSentCopyState *) member != OUTBOX_SENT_COPY_NONE)
        append_string (out, field->key,
                       outbox_sent_copy_state_to_string (*(const OutboxSentCopyState *) member));
      break;
    case FIELD_FLAG:
      if (*(const guint8 *) member)
        append_unsigned_line (out, field->key, 1);
      break;
    case FIELD_OPTIONAL_TRISTATE:
      if (*(const gint8 *) member >= 0)
        append_signed_line (out, field->key, MIN (*(const gint8 *) member, 1));
      break;
    case FIELD_DSN_NOTIFY:
      append_dsn_notify (out, field->key, *(const guint8 *) member);
      break;
    case FIELD_DSN_RET:
      if (*(const guint8 *) member != OUTBOX_DSN_RET_DEFAULT)
        append_string (out, field->key, outbox_dsn_ret_to_string (*(const guint8 *) member));
      break;
    case FIELD_DSN_ENVID:
      if (*(char * const *) member != NULL)
        append_string (out, field->key, *(char * const *) member);
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
append_recipient (GString *out,
                  const OutboxRecipient *recipient)
{
  append_key (out, "recipient");
  g_string_append (out, outbox_recipient_state_to_string (recipient->state));
  g_string_append_c (out, ' ');
  append_number (out, recipient->reply_code, FALSE);
  g_string_append_c (out, ' ');
  append_escaped (out, recipient->address != NULL ? recipient->address : "");
  g_string_append_c (out, '\n');
  if (recipient->reply != NULL)
    append_string (out, "recipient-reply", recipient->reply);
}

GBytes *
outbox_spool_record_serialize (const OutboxSpoolRecord *record)
{
  GString *out = g_string_sized_new (1024);
  guint8 checksum[OUTBOX_SPOOL_SHA256_LENGTH];
  gsize checksum_len = sizeof checksum;
  GChecksum *hash;

  g_return_val_if_fail (record != NULL, NULL);

  g_string_append (out, RECORD_MAGIC "\n");
  for (guint i = 0; i < G_N_ELEMENTS (record_fields); i++)
    append_field (out, &record_fields[i], record);
  for (guint i = 0; i < record->n_recipients; i++)
    append_recipient (out, &record->recipients[i]);

  hash = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (hash, (const guchar *) out->str, out->len);
  g_checksum_get_digest (hash, checksum, &checksum_len);
  g_checksum_free (hash);
  append_key (out, "sha256");
  append_hex (out, checksum, checksum_len);
  g_string_append_c (out, '\n');
  return g_string_free_to_bytes (out);
}

static int
unescape_simple (char c)
{
  switch (c)
    {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'v': return '\v';
    case '\\': return '\\';
    case '"': return '"';
    default: return -1;
    }
}

/* Three octal digits, as g_strescape() writes them; -1 if not. */
static int
unescape_octal (const char *p)
{
  for (guint i = 0; i < 3; i++)
    {
      if (p[i] < '0' || p[i] > '7')
        return -1;
    }
  if (p[0] > '3')
    return -1;
  return (p[0] - '0') * 64 + (p[1] - '0') * 8 + (p[2] - '0');
}

/* The inverse of g_strescape(), refusing anything it would not produce. */
static char *
unescape_value (const char *value)
{
  /* Unescaped is never longer: one block of the right size, as the
   * records of a big queue keep these strings for as long as they live. */
  g_autofree char *out = g_malloc (strlen (value) + 1);
  char *o = out;

  for (const char *p = value; *p != '\0'; p++)
    {
      int c;

      if ((guchar) *p < 0x20 || *p == 0x7f)
        return NULL;
      if (*p != '\\')
        {
          *o++ = *p;
          continue;
        }
      p++;
      if ((c = unescape_simple (*p)) < 0)
        {
          c = unescape_octal (p);
          if (c <= 0)
            return NULL;
          p += 2;
        }
      *o++ = (char) c;
    }
  *o = '\0';
  return g_steal_pointer (&out);
}

static gboolean
record_error (GError **error,
              const char *format,
              ...) G_GNUC_PRINTF (2, 3);

static gboolean
record_error (GError **error,
              const char *format,
              ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
               "The spool record is not valid: %s", message);
  return FALSE;
}

static gboolean
parse_number (const char *value,
              gint64 min,
              gint64 max,
              gint64 *out)
{
  return g_ascii_string_to_signed (value, 10, min, max, out, NULL);
}

/* A boolean or a tristate, into its one octet. */
static gboolean
parse_octet (const char *value,
             gint64 min,
             gint64 max,
             gpointer member)
{
  gint64 number;
  gint8 octet;

  if (!parse_number (value, min, max, &number))
    return FALSE;
  octet = (gint8) number;
  memcpy (member, &octet, 1);
  return TRUE;
}

/* What a message asks of DSN, checked as Submit checks it. */
static gboolean
parse_dsn_value (const RecordField *field,
                 const char *value,
                 gpointer member)
{
  OutboxDsnNotify notify;
  OutboxDsnRet ret;

  switch (field->kind)
    {
    case FIELD_DSN_NOTIFY:
      if (!outbox_dsn_notify_parse (value, &notify, NULL))
        return FALSE;
      *(guint8 *) member = (guint8) notify;
      return TRUE;
    case FIELD_DSN_RET:
      if (!outbox_dsn_ret_parse (value, &ret, NULL))
        return FALSE;
      *(guint8 *) member = (guint8) ret;
      return TRUE;
    case FIELD_DSN_ENVID:
      *(char **) member = unescape_value (value);
      return *(char **) member != NULL && outbox_dsn_envid_validate (*(char **) member, NULL);
    default:
      g_assert_not_reached ();
    }
}

static gboolean
parse_field_value (const RecordField *field,
                   const char *value,
                   OutboxSpoolRecord *record)
{
  gpointer member = G_STRUCT_MEMBER_P (record, field->offset);
  guint64 unsigned_value;
  gint64 number;
  guint state;

  switch (field->kind)
    {
    case FIELD_STRING:
    case FIELD_NULLABLE_STRING:
      *(char **) member = unescape_value (value);
      return *(char **) member != NULL;
    case FIELD_DIGEST:
      return outbox_spool_sha256_from_hex (value, member);
    case FIELD_TIME:
      return parse_number (value, 0, G_MAXINT64, (gint64 *) member);
    case FIELD_UINT:
      if (!parse_number (value, 0, G_MAXUINT, &number))
        return FALSE;
      *(guint *) member = (guint) number;
      return TRUE;
    case FIELD_UINT64:
      if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT64, &unsigned_value, NULL))
        return FALSE;
      *(guint64 *) member = unsigned_value;
      return TRUE;
    case FIELD_BOOLEAN:
      return parse_octet (value, 0, 1, member);
    case FIELD_TRISTATE:
      return parse_octet (value, -1, 1, member);
    case FIELD_MESSAGE_STATE:
      if (!state_from_string (message_state_names, G_N_ELEMENTS (message_state_names), value, &state))
        return FALSE;
      *(OutboxSpoolState *) member = state == OUTBOX_SPOOL_STATE_SENDING ? OUTBOX_SPOOL_STATE_QUEUED : state;
      return TRUE;
    case FIELD_SENT_COPY_STATE:
      /* "none" is never written: only the three others can be read. */
      if (!state_from_string (sent_copy_state_names, G_N_ELEMENTS (sent_copy_state_names), value, &state)
          || state == OUTBOX_SENT_COPY_NONE)
        return FALSE;
      *(OutboxSentCopyState *) member = state;
      return TRUE;
    case FIELD_FLAG:
      /* Only a set flag is written. */
      return parse_octet (value, 1, 1, member);
    case FIELD_OPTIONAL_TRISTATE:
      /* -1 is never written: it is what an absent field means. */
      return parse_octet (value, 0, 1, member);
    default:
      return parse_dsn_value (field, value, member);
    }
}

static gboolean
parse_recipient (const char *value,
                 OutboxSpoolRecord *record,
                 GError **error)
{
  g_auto(GStrv) parts = g_strsplit (value, " ", 3);
  g_autofree char *address = NULL;
  g_autoptr(GError) address_error = NULL;
  OutboxRecipient *recipient;
  OutboxRecipientState state;
  gint64 code;

  if (g_strv_length (parts) != 3
      || !outbox_recipient_state_from_string (parts[0], &state)
      || !parse_number (parts[1], 0, 599, &code)
      || (address = unescape_value (parts[2])) == NULL)
    return record_error (error, "malformed recipient “%s”", value);
  if (!outbox_address_validate (address, FALSE, &address_error))
    return record_error (error, "invalid recipient: %s", address_error->message);

  recipient = append_recipient_slot (record);
  recipient->address = g_steal_pointer (&address);
  recipient->state = state;
  recipient->reply_code = (guint) code;
  return TRUE;
}

static gboolean
parse_recipient_reply (const char *value,
                       OutboxSpoolRecord *record,
                       GError **error)
{
  OutboxRecipient *recipient;

  if (record->n_recipients == 0)
    return record_error (error, "a recipient reply before any recipient");
  recipient = &record->recipients[record->n_recipients - 1];
  if (recipient->reply != NULL)
    return record_error (error, "two replies for recipient %s", recipient->address);
  recipient->reply = unescape_value (value);
  if (recipient->reply == NULL)
    return record_error (error, "malformed recipient reply");
  return TRUE;
}

static gboolean
parse_line (char *line,
            OutboxSpoolRecord *record,
            gboolean *seen,
            guint *next_field,
            GError **error)
{
  char *space = strchr (line, ' ');
  const char *value;

  if (space == NULL)
    return record_error (error, "line “%s” has no value", line);
  *space = '\0';
  value = space + 1;

  if (strcmp (line, "recipient") == 0)
    return parse_recipient (value, record, error);
  if (strcmp (line, "recipient-reply") == 0)
    return parse_recipient_reply (value, record, error);

  /* The fields are written in order: the one after the last is tried
   * first, so that a record costs one comparison a line, not a dozen. */
  for (guint n = 0; n < G_N_ELEMENTS (record_fields); n++)
    {
      guint i = (*next_field + n) % G_N_ELEMENTS (record_fields);

      if (strcmp (line, record_fields[i].key) != 0)
        continue;
      *next_field = i + 1;
      if (seen[i])
        return record_error (error, "field %s appears twice", line);
      seen[i] = TRUE;
      if (!parse_field_value (&record_fields[i], value, record))
        return record_error (error, "field %s has a bad value", line);
      return TRUE;
    }
  return record_error (error, "unknown field %s", line);
}

static gboolean
is_lowercase_hex (const char *str,
                  gsize length)
{
  if (strlen (str) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    {
      if (!g_ascii_isxdigit (str[i]) || g_ascii_isupper (str[i]))
        return FALSE;
    }
  return TRUE;
}

gboolean
outbox_spool_sha256_from_hex (const char *hex,
                              guint8 out[OUTBOX_SPOOL_SHA256_LENGTH])
{
  if (!is_lowercase_hex (hex, 2 * OUTBOX_SPOOL_SHA256_LENGTH))
    return FALSE;
  for (gsize i = 0; i < OUTBOX_SPOOL_SHA256_LENGTH; i++)
    out[i] = (guint8) (g_ascii_xdigit_value (hex[2 * i]) << 4 | g_ascii_xdigit_value (hex[2 * i + 1]));
  return TRUE;
}

/* Returns the length of what the final "sha256 HEX" line covers, or 0
 * when that line is missing or does not match. */
static gsize
verify_record_checksum (const guint8 *data,
                        gsize len)
{
  g_autofree char *actual = NULL;
  g_autofree char *last_line = NULL;
  gsize body_len;

  if (len < 2 || data[len - 1] != '\n')
    return 0;
  for (body_len = len - 1; body_len > 0 && data[body_len - 1] != '\n'; body_len--)
    ;
  if (body_len == 0)
    return 0;
  last_line = g_strndup ((const char *) data + body_len, len - 1 - body_len);
  if (!g_str_has_prefix (last_line, "sha256 ") || !is_lowercase_hex (last_line + 7, SHA256_HEX_LENGTH))
    return 0;
  actual = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, body_len);
  return strcmp (actual, last_line + 7) == 0 ? body_len : 0;
}

static gboolean
check_record_fields (const char *id,
                     const OutboxSpoolRecord *record,
                     const gboolean *seen,
                     GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (record_fields); i++)
    {
      if (!seen[i] && !field_is_optional (record_fields[i].kind))
        return record_error (error, "field %s is missing", record_fields[i].key);
    }
  if (!outbox_spool_id_is_valid (record->id))
    return record_error (error, "bad id “%s”", record->id);
  if (id != NULL && strcmp (id, record->id) != 0)
    return record_error (error, "the record of %s carries the id %s", id, record->id);
  if (record->n_recipients == 0)
    return record_error (error, "no recipient");
  return outbox_address_validate (record->from, TRUE, error);
}

OutboxSpoolRecord *
outbox_spool_record_parse (const char *id,
                           const guint8 *data,
                           gsize len,
                           GError **error)
{
  g_autoptr(OutboxSpoolRecord) record = outbox_spool_record_new ();
  gboolean seen[G_N_ELEMENTS (record_fields)] = { FALSE, };
  guint next_field = 0;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gsize body_len;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (memchr (data, '\0', len) != NULL)
    {
      record_error (error, "it contains a NUL byte");
      return NULL;
    }
  body_len = verify_record_checksum (data, len);
  if (body_len == 0)
    {
      record_error (error, "it is truncated or corrupt (checksum mismatch)");
      return NULL;
    }

  /* The body ends with a newline, so the last split element is empty. */
  text = g_strndup ((const char *) data, body_len - 1);
  lines = g_strsplit (text, "\n", -1);
  if (g_strcmp0 (lines[0], RECORD_MAGIC) != 0)
    {
      record_error (error, "unknown format “%s”", lines[0]);
      return NULL;
    }
  for (guint i = 1; lines[i] != NULL; i++)
    {
      if (!parse_line (lines[i], record, seen, &next_field, error))
        return NULL;
    }
  if (!check_record_fields (id, record, seen, error))
    return NULL;
  return g_steal_pointer (&record);
}

/* Record files
 *
 * A record file has two slots of the same size (a multiple of 4096
 * octets), each "outbox-slot SEQ LEN\n" and a serialised record of LEN
 * octets.  The record is the valid slot with the higher SEQ.  A save
 * writes the other slot in place and flushes that one file: no new inode,
 * no rename, no directory to flush.  A write torn by a crash spoils only
 * the slot being written, and the previous record stays in the other.  A
 * record that outgrows its slots, or a file in the older one-record form,
 * is replaced whole (tmp file, rename) instead. */

#define SLOT_MAGIC "outbox-slot "
#define SLOT_ALIGN 4096
#define SLOT_HEADER_MAX 64

/* File names in queue/ (see outbox-spool.h): a message file ID.msg starts
 * with two record slots of SLOT_ALIGN octets each, and its data follows.  A
 * record file ID.rec, when there is one, wins over those slots.  ID.eml
 * (data only, always with an ID.rec) is the older form, still read. */
#define MESSAGE_SUFFIX ".msg"
#define RECORD_SUFFIX ".rec"
#define PLAIN_DATA_SUFFIX ".eml"
#define MESSAGE_HEAD (2 * SLOT_ALIGN)

static gsize
slot_size_for (gsize record_len)
{
  return (record_len + SLOT_HEADER_MAX + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
}

static GBytes *
slot_bytes (guint64 seq,
            GBytes *record)
{
  GString *out = g_string_new (NULL);

  g_string_printf (out, SLOT_MAGIC "%" G_GUINT64_FORMAT " %" G_GSIZE_FORMAT "\n", seq,
                   g_bytes_get_size (record));
  g_string_append_len (out, g_bytes_get_data (record, NULL), g_bytes_get_size (record));
  return g_string_free_to_bytes (out);
}

/* Reads a slot's header: its sequence number and where its record is. */
static gboolean
slot_header (const guint8 *slot,
             gsize slot_size,
             guint64 *out_seq,
             const guint8 **out_record,
             gsize *out_len,
             GError **error)
{
  const guint8 *end = memchr (slot, '\n', MIN (slot_size, SLOT_HEADER_MAX));
  g_autofree char *header = NULL;
  g_auto(GStrv) words = NULL;
  guint64 seq, len;

  if (end == NULL || memcmp (slot, SLOT_MAGIC, strlen (SLOT_MAGIC)) != 0)
    return record_error (error, "an empty or damaged slot");
  header = g_strndup ((const char *) slot, end - slot);
  words = g_strsplit (header + strlen (SLOT_MAGIC), " ", -1);
  if (g_strv_length (words) != 2
      || !g_ascii_string_to_unsigned (words[0], 10, 1, G_MAXUINT64, &seq, NULL)
      || !g_ascii_string_to_unsigned (words[1], 10, 1, slot_size - (end + 1 - slot), &len, NULL))
    return record_error (error, "a slot with a damaged header");
  *out_seq = seq;
  *out_record = end + 1;
  *out_len = len;
  return TRUE;
}

/* The record of one slot, or NULL; @out_seq: its sequence number. */
static OutboxSpoolRecord *
parse_slot (const char *id,
            const guint8 *slot,
            gsize slot_size,
            guint64 *out_seq,
            GError **error)
{
  const guint8 *record;
  gsize len;

  if (!slot_header (slot, slot_size, out_seq, &record, &len, error))
    return NULL;
  return outbox_spool_record_parse (id, record, len, error);
}

/* Which slot holds the current record, by the slots' headers and checksums
 * alone: a save need not parse the record it replaces.  -1 when neither
 * slot holds a whole record, or for the one-record form. */
static int
current_slot (const guint8 *data,
              gsize len,
              guint64 *out_seq)
{
  gsize slot_size = len / 2;
  guint64 best_seq = 0;
  int best = -1;

  if (len == 0 || len % (2 * SLOT_ALIGN) != 0)
    return -1;
  for (int slot = 0; slot < 2; slot++)
    {
      const guint8 *record;
      gsize record_len;
      guint64 seq;

      if (!slot_header (data + slot * slot_size, slot_size, &seq, &record, &record_len, NULL)
          || memchr (record, '\0', record_len) != NULL
          || verify_record_checksum (record, record_len) == 0)
        continue;
      if (best < 0 || seq > best_seq)
        {
          best = slot;
          best_seq = seq;
        }
    }
  *out_seq = best_seq;
  return best;
}

/* The record of a record file or message head: the valid slot with the
 * higher sequence number, or the one-record form. */
static OutboxSpoolRecord *
parse_record_file (const char *id,
                   const guint8 *data,
                   gsize len,
                   GError **error)
{
  g_autoptr(OutboxSpoolRecord) best = NULL;
  g_autoptr(GError) first_error = NULL;
  gsize slot_size = len / 2;
  guint64 best_seq = 0;

  if (len >= strlen (RECORD_MAGIC) && memcmp (data, RECORD_MAGIC, strlen (RECORD_MAGIC)) == 0)
    return outbox_spool_record_parse (id, data, len, error);
  if (len == 0 || len % (2 * SLOT_ALIGN) != 0)
    {
      record_error (error, "a record file of %" G_GSIZE_FORMAT " octets, not two whole slots", len);
      return NULL;
    }
  for (int slot = 0; slot < 2; slot++)
    {
      g_autoptr(GError) local_error = NULL;
      guint64 seq = 0;
      OutboxSpoolRecord *record = parse_slot (id, data + slot * slot_size, slot_size, &seq, &local_error);

      if (record == NULL)
        {
          if (first_error == NULL)
            first_error = g_steal_pointer (&local_error);
          continue;
        }
      if (best == NULL || seq > best_seq)
        {
          g_clear_pointer (&best, outbox_spool_record_free);
          best = record;
          best_seq = seq;
        }
      else
        outbox_spool_record_free (record);
    }
  if (best == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&first_error));
      return NULL;
    }
  return g_steal_pointer (&best);
}

OutboxSpoolRecord *
outbox_spool_record_file_parse (const char *id,
                                const guint8 *data,
                                gsize len,
                                GError **error)
{
  g_return_val_if_fail (data != NULL || len == 0, NULL);
  return parse_record_file (id, data, len, error);
}

/* Ids */

G_LOCK_DEFINE_STATIC (id_clock);

char *
outbox_spool_new_id (void)
{
  static gint64 last_time;
  gint64 now;

  /* Strictly increasing within a process, so that ids sort by submission
   * even when the clock steps back or two drafts share a microsecond. */
  G_LOCK (id_clock);
  now = MAX (g_get_real_time (), last_time + 1);
  last_time = now;
  G_UNLOCK (id_clock);

  return g_strdup_printf ("%013" G_GINT64_MODIFIER "x%06x", now, g_random_int () & 0xffffff);
}

gboolean
outbox_spool_id_is_valid (const char *id)
{
  gsize length;

  if (id == NULL)
    return FALSE;
  length = strlen (id);
  if (length == 0 || length > ID_MAX_LENGTH)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    {
      if (!g_ascii_isdigit (id[i]) && !(id[i] >= 'a' && id[i] <= 'z'))
        return FALSE;
    }
  return TRUE;
}

/* The spool */

struct _OutboxSpool
{
  GObject parent_instance;

  char *path;
  int root_fd;        /* directory descriptors, opened once */
  int tmp_fd;
  int queue_fd;
  int quarantine_fd;
  OutboxSpoolFault fault;

  /* Group commit (see below) */
  GMutex commit_lock;
  GCond batch_done;
  gboolean batch_running;  /* (lock commit_lock) a batch runs in a worker thread */
  GPtrArray *waiting;      /* (element-type Job) (owned) main thread only */
  guint64 tmp_serial;      /* names the records being replaced in tmp/ */
  GHashTable *committing;  /* (element-type utf8) main thread only: the ids of
                            * asynchronous commits not completed yet */
  guint64 changes;         /* main thread only: changes asked for since the
                            * index was last written (see below) */
  GMutex index_lock;       /* one index written at a time */
};

G_DEFINE_FINAL_TYPE (OutboxSpool, outbox_spool, G_TYPE_OBJECT)

typedef struct _Job Job;
static void job_free (Job *job);

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
outbox_spool_finalize (GObject *object)
{
  OutboxSpool *spool = OUTBOX_SPOOL (object);

  close_fd (&spool->root_fd);
  close_fd (&spool->tmp_fd);
  close_fd (&spool->queue_fd);
  close_fd (&spool->quarantine_fd);
  g_free (spool->path);
  g_ptr_array_unref (spool->waiting);
  g_hash_table_unref (spool->committing);
  g_mutex_clear (&spool->commit_lock);
  g_mutex_clear (&spool->index_lock);
  g_cond_clear (&spool->batch_done);

  G_OBJECT_CLASS (outbox_spool_parent_class)->finalize (object);
}

static void
outbox_spool_class_init (OutboxSpoolClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_spool_finalize;
}

static void
outbox_spool_init (OutboxSpool *spool)
{
  spool->root_fd = -1;
  spool->tmp_fd = -1;
  spool->queue_fd = -1;
  spool->quarantine_fd = -1;
  g_mutex_init (&spool->commit_lock);
  g_mutex_init (&spool->index_lock);
  g_cond_init (&spool->batch_done);
  spool->waiting = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
  spool->committing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

static gboolean
errno_error (GError **error,
             int saved_errno,
             const char *format,
             ...) G_GNUC_PRINTF (3, 4);

static gboolean
errno_error (GError **error,
             int saved_errno,
             const char *format,
             ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
               "%s: %s", message, g_strerror (saved_errno));
  return FALSE;
}

static gboolean
check_private_dir (int fd,
                   const char *display_path,
                   GError **error)
{
  struct stat st;

  if (fstat (fd, &st) < 0)
    return errno_error (error, errno, "Cannot inspect the spool directory %s", display_path);
  if (st.st_uid != getuid ())
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                   "The spool directory %s belongs to user %u, not to you (user %u); "
                   "give it back with “chown -R %u %s” or remove it",
                   display_path, (guint) st.st_uid, (guint) getuid (),
                   (guint) getuid (), display_path);
      return FALSE;
    }
  if ((st.st_mode & 0077) != 0)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                   "The spool directory %s is open to other users (mode %04o); "
                   "close it with “chmod 700 %s”",
                   display_path, (guint) (st.st_mode & 07777), display_path);
      return FALSE;
    }
  return TRUE;
}

/* Opens (creating it when missing) a directory that must be private.
 * @follow: whether the directory itself may be a symbolic link. */
static int
open_private_dir (int parent_fd,
                  const char *name,
                  const char *display_path,
                  gboolean follow,
                  GError **error)
{
  gboolean created = FALSE;
  int fd;

  if (mkdirat (parent_fd, name, 0700) == 0)
    created = TRUE;
  else if (errno != EEXIST)
    {
      errno_error (error, errno, "Cannot create the spool directory %s", display_path);
      return -1;
    }

  fd = openat (parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0)
    {
      errno_error (error, errno, "Cannot open the spool directory %s", display_path);
      return -1;
    }

  /* The umask may have taken bits away or, set to 0, left none. */
  if (created && fchmod (fd, 0700) < 0)
    {
      errno_error (error, errno, "Cannot set the mode of the spool directory %s", display_path);
      close (fd);
      return -1;
    }
  if (!check_private_dir (fd, display_path, error))
    {
      close (fd);
      return -1;
    }
  return fd;
}

static int
open_spool_subdir (int root_fd,
                   const char *spool_path,
                   const char *name,
                   GError **error)
{
  g_autofree char *display_path = g_build_filename (spool_path, name, NULL);

  return open_private_dir (root_fd, name, display_path, FALSE, error);
}

/* (element-type filename): every entry of a directory but . and .. */
static GPtrArray *
list_dir (int dir_fd,
          GError **error)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  int fd = openat (dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct dirent *entry;
  DIR *dir;

  if (fd < 0 || (dir = fdopendir (fd)) == NULL)
    {
      errno_error (error, errno, "Cannot read the spool directory");
      if (fd >= 0)
        close (fd);
      return NULL;
    }
  while ((entry = readdir (dir)) != NULL)
    {
      if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0)
        g_ptr_array_add (names, g_strdup (entry->d_name));
    }
  closedir (dir);
  return g_steal_pointer (&names);
}

/* What is in tmp/ at start was never acknowledged to anyone. */
static gboolean
clean_tmp (OutboxSpool *spool,
           GError **error)
{
  g_autoptr(GPtrArray) names = list_dir (spool->tmp_fd, error);

  if (names == NULL)
    return FALSE;
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = g_ptr_array_index (names, i);

      if (unlinkat (spool->tmp_fd, name, 0) < 0 && errno != ENOENT)
        return errno_error (error, errno, "Cannot remove the unfinished file tmp/%s from the spool", name);
    }
  return TRUE;
}

OutboxSpool *
outbox_spool_open (const char *path,
                   GError **error)
{
  g_autoptr(OutboxSpool) spool = NULL;
  g_autofree char *parent = NULL;
  int root_fd;
  int maildrop_fd;

  g_return_val_if_fail (path != NULL, NULL);

  parent = g_path_get_dirname (path);
  if (g_mkdir_with_parents (parent, 0700) < 0)
    {
      errno_error (error, errno, "Cannot create the directory %s", parent);
      return NULL;
    }

  root_fd = open_private_dir (AT_FDCWD, path, path, TRUE, error);
  if (root_fd < 0)
    return NULL;

  spool = g_object_new (OUTBOX_TYPE_SPOOL, NULL);
  spool->path = g_strdup (path);
  if ((spool->tmp_fd = open_spool_subdir (root_fd, path, "tmp", error)) < 0
      || (spool->queue_fd = open_spool_subdir (root_fd, path, "queue", error)) < 0
      || (spool->quarantine_fd = open_spool_subdir (root_fd, path, "quarantine", error)) < 0
      || (maildrop_fd = open_spool_subdir (root_fd, path, "maildrop", error)) < 0)
    {
      close (root_fd);
      return NULL;
    }
  close (maildrop_fd);
  spool->root_fd = root_fd;

  if (!clean_tmp (spool, error))
    return NULL;
  return g_steal_pointer (&spool);
}

const char *
outbox_spool_get_path (OutboxSpool *spool)
{
  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), NULL);
  return spool->path;
}

void
outbox_spool_set_fault (OutboxSpool *spool,
                        OutboxSpoolFault fault)
{
  g_return_if_fail (OUTBOX_IS_SPOOL (spool));
  spool->fault = fault;
}

static int
spool_fsync (OutboxSpool *spool,
             int fd,
             OutboxSpoolFault step)
{
  if (spool->fault == step)
    {
      errno = EIO;
      return -1;
    }
  return fsync (fd);
}

/* fdatasync where only data changed in place: the size is the same, and
 * a new modification time need not cost a second write. */
static int
spool_flush_fd (OutboxSpool *spool,
                int fd,
                gboolean data_only,
                OutboxSpoolFault step)
{
  if (spool->fault == step)
    {
      errno = EIO;
      return -1;
    }
  return data_only ? fdatasync (fd) : fsync (fd);
}

static gboolean
write_all (OutboxSpool *spool,
           int fd,
           const guint8 *data,
           gsize len)
{
  if (spool->fault == OUTBOX_SPOOL_FAULT_WRITE_RECORD)
    {
      errno = ENOSPC;
      return FALSE;
    }
  while (len > 0)
    {
      gssize written = write (fd, data, len);

      if (written < 0 && errno == EINTR)
        continue;
      if (written < 0)
        return FALSE;
      data += written;
      len -= written;
    }
  return TRUE;
}

static char *
file_name (const char *id,
           const char *suffix)
{
  return g_strconcat (id, suffix, NULL);
}

/* Group commit
 *
 * Every change to queue/ is a job: a draft to commit, a record to replace,
 * a message to remove.  Jobs run in batches, in the order they were asked
 * for.  A batch writes every new file in tmp/, makes them durable together
 * (fsync(2) for one or two files, one syncfs(2) for more), renames or
 * unlinks in order, and fsyncs queue/ once.  No job completes before the
 * end of its batch: nothing is acknowledged before it is on disk, while
 * many callers share the cost of a flush.
 *
 * Asynchronous jobs run in a worker thread; those asked for while a batch
 * runs wait and go together in the next one.  A synchronous call waits for
 * the running batch, then runs the waiting jobs and its own in the calling
 * thread, so that changes reach the disk in the order they were made. */

typedef enum
{
  JOB_COMMIT,
  JOB_SAVE,
  JOB_REMOVE,
} JobKind;

struct _Job
{
  JobKind kind;
  char *id;
  GBytes *record;             /* (nullable) commit, save: what to write */
  char *tmp_name;             /* (nullable) commit, save: the record in tmp/ */
  OutboxSpoolDraft *draft;    /* (nullable) (unowned) commit: kept alive by the caller */
  int data_fd;                /* commit: the draft's message file, else -1 */
  int record_fd;              /* while the batch runs, else -1 */
  gboolean in_place;          /* save: written into its file's free slot */
  gboolean embedded;          /* commit: the record is in the message file's first slot */
  gboolean moved;             /* queue/ changed: it needs a flush */
  GError *error;
  GTask *task;                /* (nullable) (owned) an asynchronous caller */
};

static Job *
job_new (JobKind kind,
         const char *id)
{
  Job *job = g_new0 (Job, 1);

  job->kind = kind;
  job->id = g_strdup (id);
  job->data_fd = -1;
  job->record_fd = -1;
  return job;
}

static void
job_free (Job *job)
{
  if (job->record_fd >= 0)
    close (job->record_fd);
  g_free (job->id);
  g_clear_pointer (&job->record, g_bytes_unref);
  g_free (job->tmp_name);
  g_clear_error (&job->error);
  g_clear_object (&job->task);
  g_free (job);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Job, job_free)

static gboolean
job_failed (Job *job,
            int saved_errno,
            const char *what)
{
  if (job->error == NULL)
    errno_error (&job->error, saved_errno, "%s (message %s)", what, job->id);
  return FALSE;
}

static gboolean
no_such_message (GError **error,
                 const char *id)
{
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_MESSAGE,
               "There is no message %s in the queue", id);
  return FALSE;
}

/* Writes tmp/@job->tmp_name, a record file with the record in its first
 * slot, leaving it open for the flush. */
static gboolean
write_job_record (OutboxSpool *spool,
                  Job *job)
{
  int flags = job->kind == JOB_COMMIT ? O_EXCL : O_TRUNC;
  g_autoptr(GBytes) bytes = slot_bytes (1, job->record);
  gsize slot_size = slot_size_for (g_bytes_get_size (job->record));
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  job->record_fd = openat (spool->tmp_fd, job->tmp_name,
                           O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | flags, 0600);
  if (job->record_fd < 0)
    return job_failed (job, errno, "Cannot create a spool record in tmp/");
  if (fchmod (job->record_fd, 0600) < 0 || !write_all (spool, job->record_fd, data, len)
      || ftruncate (job->record_fd, 2 * slot_size) < 0)
    return job_failed (job, errno, "Cannot write a spool record in tmp/");
  return TRUE;
}

static gboolean
pwrite_all (int fd,
            const guint8 *data,
            gsize len,
            off_t offset)
{
  while (len > 0)
    {
      gssize written = pwrite (fd, data, len, offset);

      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        {
          if (written == 0)
            errno = EIO;
          return FALSE;
        }
      data += written;
      len -= written;
      offset += written;
    }
  return TRUE;
}

/* Writes the record of a commit into the first slot of its message file,
 * which the message file's own flush then makes durable: one new file per
 * message, not two. */
static gboolean
write_embedded_record (OutboxSpool *spool,
                       Job *job)
{
  g_autoptr(GBytes) bytes = slot_bytes (1, job->record);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  if (spool->fault == OUTBOX_SPOOL_FAULT_WRITE_RECORD)
    errno = ENOSPC;
  else if (pwrite_all (job->data_fd, data, len, 0))
    return TRUE;
  return job_failed (job, errno, "Cannot write a spool record in tmp/");
}

static gboolean
read_fd_fully (int fd,
               guint8 *data,
               gsize len)
{
  gsize done = 0;

  while (done < len)
    {
      gssize n = pread (fd, data + done, len - done, done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      done += n;
    }
  return TRUE;
}

/* Writes the record into the free slot of its record file or, without
 * one, of its message file's head.  FALSE when a whole record file must be
 * written instead (older form, slots too small, no valid slot left); TRUE
 * when done or when the job failed. */
static gboolean
save_in_place (OutboxSpool *spool,
               Job *job)
{
  g_autofree char *record_name = file_name (job->id, RECORD_SUFFIX);
  g_autofree char *message_name = file_name (job->id, MESSAGE_SUFFIX);
  g_autoptr(GBytes) bytes = NULL;
  g_autofree guint8 *data = NULL;
  gboolean embedded = FALSE;
  int fd = openat (spool->queue_fd, record_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  gsize region, slot_size;
  guint64 seq = 0;
  int slot = -1;
  struct stat st;

  if (fd < 0 && errno == ENOENT)
    {
      embedded = TRUE;
      fd = openat (spool->queue_fd, message_name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    }
  if (fd < 0 && errno == ENOENT)
    {
      no_such_message (&job->error, job->id);
      return TRUE;
    }
  if (fd < 0)
    return !job_failed (job, errno, "Cannot open a spool record");
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode)
      || (embedded ? st.st_size < MESSAGE_HEAD : st.st_size > 2 * (RECORD_MAX_SIZE + SLOT_ALIGN)))
    {
      close (fd);
      return FALSE;
    }
  region = embedded ? MESSAGE_HEAD : (gsize) st.st_size;
  data = g_malloc (MAX (region, 1));
  if (read_fd_fully (fd, data, region))
    slot = current_slot (data, region, &seq);
  bytes = slot_bytes (seq + 1, job->record);
  slot_size = region / 2;
  if (slot < 0 || g_bytes_get_size (bytes) > slot_size)
    {
      close (fd);
      return FALSE;
    }
  job->record_fd = fd;
  job->in_place = TRUE;
  if (spool->fault == OUTBOX_SPOOL_FAULT_WRITE_RECORD)
    errno = ENOSPC;
  else if (pwrite_all (fd, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                       (off_t) ((1 - slot) * slot_size)))
    return TRUE;
  job_failed (job, errno, "Cannot write a spool record");
  return TRUE;
}

/* In the order asked for: a save after a removal in the same batch finds
 * nothing; a save after the commit of its message replaces the new file. */
static void
write_job (OutboxSpool *spool,
           Job *job,
           GHashTable *committed,
           GHashTable *removed)
{
  switch (job->kind)
    {
    case JOB_COMMIT:
      g_hash_table_add (committed, job->id);
      if (job->embedded)
        write_embedded_record (spool, job);
      else
        write_job_record (spool, job);
      return;
    case JOB_REMOVE:
      g_hash_table_add (removed, job->id);
      return;
    case JOB_SAVE:
      if (g_hash_table_contains (removed, job->id))
        no_such_message (&job->error, job->id);
      else if (g_hash_table_contains (committed, job->id) || !save_in_place (spool, job))
        write_job_record (spool, job);
      return;
    default:
      g_assert_not_reached ();
    }
}

static gboolean
job_is_live (const Job *job)
{
  return job->error == NULL;
}

static guint
count_files_to_flush (GPtrArray *jobs)
{
  guint n = 0;

  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job_is_live (job))
        n += (job->data_fd >= 0) + (job->record_fd >= 0);
    }
  return n;
}

static void
fail_live_jobs (GPtrArray *jobs,
                int saved_errno,
                const char *what)
{
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job_is_live (job))
        job_failed (job, saved_errno, what);
    }
}

/* fsync is cheapest for a lone file; for many, one syncfs flushes them all
 * with a single journal commit where each fsync would wait for its own.
 * Both report a write-back error that happened since the last flush. */
static void
flush_batch_files (OutboxSpool *spool,
                   GPtrArray *jobs)
{
  guint n = count_files_to_flush (jobs);

  if (n > 2)
    {
      if (spool->fault == OUTBOX_SPOOL_FAULT_FSYNC_DATA || spool->fault == OUTBOX_SPOOL_FAULT_FSYNC_RECORD)
        errno = EIO;
      else if (syncfs (spool->queue_fd) == 0)
        return;
      fail_live_jobs (jobs, errno, "Cannot save the spool to disk");
      return;
    }
  for (guint i = 0; n > 0 && i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (!job_is_live (job))
        continue;
      if (job->embedded && spool->fault == OUTBOX_SPOOL_FAULT_FSYNC_RECORD)
        job_failed (job, EIO, "Cannot save a spool record to disk");
      else if (job->data_fd >= 0 && spool_fsync (spool, job->data_fd, OUTBOX_SPOOL_FAULT_FSYNC_DATA) < 0)
        job_failed (job, errno, "Cannot save a message to disk");
      else if (job->record_fd >= 0
               && spool_flush_fd (spool, job->record_fd, job->in_place, OUTBOX_SPOOL_FAULT_FSYNC_RECORD) < 0)
        job_failed (job, errno, "Cannot save a spool record to disk");
    }
}

static gboolean
message_in_queue (OutboxSpool *spool,
                  const char *id)
{
  g_autofree char *record_name = file_name (id, RECORD_SUFFIX);
  g_autofree char *message_name = file_name (id, MESSAGE_SUFFIX);
  struct stat st;

  return fstatat (spool->queue_fd, record_name, &st, AT_SYMLINK_NOFOLLOW) == 0
         || fstatat (spool->queue_fd, message_name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* The message file goes first: a record file in queue/ always has its
 * message. */
static gboolean
move_commit (OutboxSpool *spool,
             Job *job)
{
  g_autofree char *message_name = file_name (job->id, MESSAGE_SUFFIX);

  job->moved = TRUE;
  if (renameat (spool->tmp_fd, message_name, spool->queue_fd, message_name) < 0
      || (job->tmp_name != NULL
          && renameat (spool->tmp_fd, job->tmp_name, spool->queue_fd, job->tmp_name) < 0))
    return job_failed (job, errno, "Cannot move a message into the queue");
  return TRUE;
}

static gboolean
move_save (OutboxSpool *spool,
           Job *job)
{
  g_autofree char *record_name = file_name (job->id, RECORD_SUFFIX);

  if (job->in_place)
    return TRUE;
  /* Removed by an earlier job or by hand: a save must not bring it back. */
  if (!message_in_queue (spool, job->id))
    {
      no_such_message (&job->error, job->id);
      return FALSE;
    }
  job->moved = TRUE;
  if (renameat (spool->tmp_fd, job->tmp_name, spool->queue_fd, record_name) < 0)
    return job_failed (job, errno, "Cannot replace a spool record");
  return TRUE;
}

/* A message file goes first: an older record in its slots must never
 * outlive a newer record file.  A record file left behind by a crash is
 * then set aside at the next start, as its message is missing.  In the
 * older form the record goes first, and a data file left behind is set
 * aside as an orphan. */
static gboolean
move_remove (OutboxSpool *spool,
             Job *job)
{
  g_autofree char *record_name = file_name (job->id, RECORD_SUFFIX);
  g_autofree char *message_name = file_name (job->id, MESSAGE_SUFFIX);
  g_autofree char *data_name = file_name (job->id, PLAIN_DATA_SUFFIX);
  const char *second = record_name;

  if (unlinkat (spool->queue_fd, message_name, 0) < 0)
    {
      if (errno != ENOENT)
        return job_failed (job, errno, "Cannot remove a message from the queue");
      if (unlinkat (spool->queue_fd, record_name, 0) < 0)
        {
          if (errno == ENOENT)
            {
              no_such_message (&job->error, job->id);
              return FALSE;
            }
          return job_failed (job, errno, "Cannot remove a message from the queue");
        }
      second = data_name;
    }
  job->moved = TRUE;
  if (unlinkat (spool->queue_fd, second, 0) < 0 && errno != ENOENT)
    g_warning ("Cannot remove queue/%s: %s", second, g_strerror (errno));
  return TRUE;
}

static gboolean
move_job (OutboxSpool *spool,
          Job *job)
{
  switch (job->kind)
    {
    case JOB_COMMIT:
      return move_commit (spool, job);
    case JOB_SAVE:
      return move_save (spool, job);
    case JOB_REMOVE:
      return move_remove (spool, job);
    default:
      g_assert_not_reached ();
    }
}

/* Leaves nothing of a failed job behind: a commit that did not complete
 * was never acknowledged, and its files go wherever they got to. */
static void
clean_failed_job (OutboxSpool *spool,
                  Job *job)
{
  g_autofree char *message_name = file_name (job->id, MESSAGE_SUFFIX);

  if (job->tmp_name != NULL)
    unlinkat (spool->tmp_fd, job->tmp_name, 0);
  if (job->kind != JOB_COMMIT)
    return;
  if (job->tmp_name != NULL)
    unlinkat (spool->queue_fd, job->tmp_name, 0);
  unlinkat (spool->queue_fd, message_name, 0);
  unlinkat (spool->tmp_fd, message_name, 0);
}

static void
run_batch (OutboxSpool *spool,
           GPtrArray *jobs)
{
  g_autoptr(GHashTable) committed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) removed = g_hash_table_new (g_str_hash, g_str_equal);
  gboolean moved_any = FALSE;

  for (guint i = 0; i < jobs->len; i++)
    write_job (spool, g_ptr_array_index (jobs, i), committed, removed);
  flush_batch_files (spool, jobs);
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job_is_live (job))
        move_job (spool, job);
      moved_any |= job->moved;
    }
  if (moved_any && spool_fsync (spool, spool->queue_fd, OUTBOX_SPOOL_FAULT_FSYNC_DIR) < 0)
    {
      int saved_errno = errno;

      for (guint i = 0; i < jobs->len; i++)
        {
          Job *job = g_ptr_array_index (jobs, i);

          if (job->moved)
            job_failed (job, saved_errno, "Cannot save the queue directory");
        }
    }
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->record_fd >= 0)
        {
          close (job->record_fd);
          job->record_fd = -1;
        }
      if (!job_is_live (job))
        clean_failed_job (spool, job);
    }
}

/* In the main context: tells each asynchronous caller how its job went. */
static void
complete_jobs (OutboxSpool *spool,
               GPtrArray *jobs)
{
  for (guint i = 0; i < jobs->len; i++)
    {
      Job *job = g_ptr_array_index (jobs, i);

      if (job->kind == JOB_COMMIT)
        g_hash_table_remove (spool->committing, job->id);
      if (job->draft != NULL)
        g_output_stream_close (outbox_spool_draft_get_stream (job->draft), NULL, NULL);
      if (job->task == NULL)
        continue;
      if (job->error != NULL)
        g_task_return_error (job->task, g_steal_pointer (&job->error));
      else
        g_task_return_boolean (job->task, TRUE);
    }
}

static void start_batch (OutboxSpool *spool);

/* The index (see outbox_spool_write_index()) is a copy of queue/ as it was
 * when it was written.  It stays through later changes: a loader takes an
 * entry only while the message's files are as the entry says, and an entry
 * is written only for files that had not changed in the clock tick the
 * index was begun in, so that any later change shows in their stamps. */
#define INDEX_NAME "index"

static void
batch_thread (GTask *task,
              gpointer source_object,
              gpointer task_data,
              GCancellable *cancellable)
{
  OutboxSpool *spool = source_object;

  run_batch (spool, task_data);
  g_mutex_lock (&spool->commit_lock);
  spool->batch_running = FALSE;
  g_cond_broadcast (&spool->batch_done);
  g_mutex_unlock (&spool->commit_lock);
  g_task_return_boolean (task, TRUE);
}

static void
on_batch_done (GObject *source,
               GAsyncResult *result,
               gpointer user_data)
{
  OutboxSpool *spool = OUTBOX_SPOOL (source);

  complete_jobs (spool, g_task_get_task_data (G_TASK (result)));
  start_batch (spool);
}

static void
start_batch (OutboxSpool *spool)
{
  g_autoptr(GTask) task = NULL;
  GPtrArray *jobs;

  g_mutex_lock (&spool->commit_lock);
  if (spool->batch_running || spool->waiting->len == 0)
    {
      g_mutex_unlock (&spool->commit_lock);
      return;
    }
  spool->batch_running = TRUE;
  g_mutex_unlock (&spool->commit_lock);

  jobs = g_steal_pointer (&spool->waiting);
  spool->waiting = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
  task = g_task_new (spool, NULL, on_batch_done, NULL);
  g_task_set_source_tag (task, start_batch);
  g_task_set_task_data (task, jobs, (GDestroyNotify) g_ptr_array_unref);
  g_task_run_in_thread (task, batch_thread);
}

static void
submit_job (OutboxSpool *spool,
            Job *job,
            GTask *task)
{
  spool->changes++;
  job->task = task;
  if (job->kind == JOB_COMMIT)
    g_hash_table_add (spool->committing, g_strdup (job->id));
  g_ptr_array_add (spool->waiting, job);
  start_batch (spool);
}

typedef struct
{
  OutboxSpool *spool; /* (owned) */
  GPtrArray *jobs;    /* (owned) */
} LaterJobs;

static void
later_jobs_free (gpointer data)
{
  LaterJobs *later = data;

  g_object_unref (later->spool);
  g_ptr_array_unref (later->jobs);
  g_free (later);
}

static gboolean
complete_later (gpointer user_data)
{
  LaterJobs *later = user_data;

  complete_jobs (later->spool, later->jobs);
  return G_SOURCE_REMOVE;
}

/* Runs the waiting jobs, then @job (nullable), here and now. */
static gboolean
run_jobs_now (OutboxSpool *spool,
              Job *job,
              GError **error)
{
  g_autoptr(GPtrArray) jobs = NULL;
  gboolean ok = TRUE;

  spool->changes++;
  g_mutex_lock (&spool->commit_lock);
  while (spool->batch_running)
    g_cond_wait (&spool->batch_done, &spool->commit_lock);
  g_mutex_unlock (&spool->commit_lock);

  jobs = g_steal_pointer (&spool->waiting);
  spool->waiting = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
  if (job != NULL)
    g_ptr_array_add (jobs, job);
  run_batch (spool, jobs);
  if (job != NULL)
    {
      ok = job_is_live (job);
      if (!ok)
        g_propagate_error (error, g_steal_pointer (&job->error));
      job->draft = NULL;
      g_ptr_array_steal_index (jobs, jobs->len - 1);
    }
  /* Callers are told from the main loop, not from inside this call. */
  if (jobs->len > 0)
    {
      LaterJobs *later = g_new0 (LaterJobs, 1);

      later->spool = g_object_ref (spool);
      later->jobs = g_steal_pointer (&jobs);
      g_idle_add_full (G_PRIORITY_DEFAULT, complete_later, later, later_jobs_free);
    }
  return ok;
}

void
outbox_spool_flush (OutboxSpool *spool)
{
  g_return_if_fail (OUTBOX_IS_SPOOL (spool));
  run_jobs_now (spool, NULL, NULL);
}

gboolean
outbox_spool_is_idle (OutboxSpool *spool)
{
  gboolean idle;

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), TRUE);
  g_mutex_lock (&spool->commit_lock);
  idle = !spool->batch_running && spool->waiting->len == 0;
  g_mutex_unlock (&spool->commit_lock);
  return idle;
}

/* Drafts */

struct _OutboxSpoolDraft
{
  OutboxSpool *spool;     /* (owned) */
  char *id;
  char *data_name;        /* ID.msg, its data after MESSAGE_HEAD */
  GOutputStream *stream;  /* (owned) */
  gboolean finished;      /* handed to a commit, or discarded */
};

OutboxSpoolDraft *
outbox_spool_draft_new (OutboxSpool *spool,
                        GError **error)
{
  OutboxSpoolDraft *draft;
  g_autofree char *id = NULL;
  g_autofree char *data_name = NULL;
  int fd;

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), NULL);

  do
    {
      g_free (id);
      g_free (data_name);
      id = outbox_spool_new_id ();
      data_name = file_name (id, MESSAGE_SUFFIX);
      fd = openat (spool->tmp_fd, data_name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
  while (fd < 0 && errno == EEXIST);

  if (fd < 0)
    {
      errno_error (error, errno, "Cannot create a message file in the spool");
      return NULL;
    }
  /* The record slots come first, the data after them. */
  if (fchmod (fd, 0600) < 0 || ftruncate (fd, MESSAGE_HEAD) < 0 || lseek (fd, MESSAGE_HEAD, SEEK_SET) < 0)
    {
      errno_error (error, errno, "Cannot prepare a message file in the spool");
      close (fd);
      unlinkat (spool->tmp_fd, data_name, 0);
      return NULL;
    }

  draft = g_new0 (OutboxSpoolDraft, 1);
  draft->spool = g_object_ref (spool);
  draft->id = g_steal_pointer (&id);
  draft->data_name = g_steal_pointer (&data_name);
  draft->stream = g_unix_output_stream_new (fd, TRUE);
  return draft;
}

const char *
outbox_spool_draft_get_id (OutboxSpoolDraft *draft)
{
  return draft->id;
}

GOutputStream *
outbox_spool_draft_get_stream (OutboxSpoolDraft *draft)
{
  return draft->stream;
}

/* Everything written has reached the file, which has the record's size. */
static gboolean
check_data_file (OutboxSpoolDraft *draft,
                 const OutboxSpoolRecord *record,
                 GError **error)
{
  int fd = g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (draft->stream));
  g_autoptr(GError) local_error = NULL;
  struct stat st;

  if (!g_output_stream_flush (draft->stream, NULL, &local_error))
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                   "Cannot write message %s to the spool: %s", draft->id, local_error->message);
      return FALSE;
    }
  if (fstat (fd, &st) < 0)
    return errno_error (error, errno, "Cannot inspect message %s in the spool", draft->id);
  if (st.st_size < MESSAGE_HEAD || (guint64) st.st_size - MESSAGE_HEAD != record->size)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                   "Message %s has %" G_GINT64_FORMAT " octets on disk, its record says %" G_GUINT64_FORMAT,
                   draft->id, (gint64) st.st_size - MESSAGE_HEAD, record->size);
      return FALSE;
    }
  return TRUE;
}

/* NULL, with the draft discarded, when the data is not as the record says. */
static Job *
commit_job_new (OutboxSpoolDraft *draft,
                const OutboxSpoolRecord *record,
                GError **error)
{
  Job *job;

  draft->finished = TRUE;
  if (!check_data_file (draft, record, error))
    {
      g_output_stream_close (draft->stream, NULL, NULL);
      unlinkat (draft->spool->tmp_fd, draft->data_name, 0);
      return NULL;
    }
  job = job_new (JOB_COMMIT, draft->id);
  job->record = outbox_spool_record_serialize (record);
  /* A record too big for a slot of the message file gets a file of its own. */
  if (slot_size_for (g_bytes_get_size (job->record)) == SLOT_ALIGN)
    job->embedded = TRUE;
  else
    job->tmp_name = file_name (draft->id, RECORD_SUFFIX);
  job->draft = draft;
  job->data_fd = g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (draft->stream));
  return job;
}

gboolean
outbox_spool_draft_commit (OutboxSpoolDraft *draft,
                           const OutboxSpoolRecord *record,
                           GError **error)
{
  Job *job;
  gboolean committed;

  g_return_val_if_fail (draft != NULL, FALSE);
  g_return_val_if_fail (!draft->finished, FALSE);
  g_return_val_if_fail (record != NULL && g_strcmp0 (record->id, draft->id) == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  job = commit_job_new (draft, record, error);
  if (job == NULL)
    return FALSE;
  committed = run_jobs_now (draft->spool, job, error);
  g_output_stream_close (draft->stream, NULL, NULL);
  job_free (job);
  return committed;
}

void
outbox_spool_draft_commit_async (OutboxSpoolDraft *draft,
                                 const OutboxSpoolRecord *record,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Job *job;

  g_return_if_fail (draft != NULL);
  g_return_if_fail (!draft->finished);
  g_return_if_fail (record != NULL && g_strcmp0 (record->id, draft->id) == 0);

  task = g_task_new (draft->spool, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_spool_draft_commit_async);
  if (g_task_return_error_if_cancelled (task))
    return;
  job = commit_job_new (draft, record, &error);
  if (job == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  submit_job (draft->spool, job, g_steal_pointer (&task));
}

gboolean
outbox_spool_draft_commit_finish (OutboxSpoolDraft *draft,
                                  GAsyncResult *result,
                                  GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, draft->spool), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, outbox_spool_draft_commit_async), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
outbox_spool_draft_free (OutboxSpoolDraft *draft)
{
  if (draft == NULL)
    return;
  if (!draft->finished)
    {
      g_output_stream_close (draft->stream, NULL, NULL);
      unlinkat (draft->spool->tmp_fd, draft->data_name, 0);
    }
  g_object_unref (draft->stream);
  g_object_unref (draft->spool);
  g_free (draft->id);
  g_free (draft->data_name);
  g_free (draft);
}

/* Records in the queue */

static Job *
save_job_new (OutboxSpool *spool,
              const OutboxSpoolRecord *record)
{
  Job *job = job_new (JOB_SAVE, record->id);

  job->record = outbox_spool_record_serialize (record);
  job->tmp_name = g_strdup_printf ("%s.rec.%" G_GUINT64_FORMAT, record->id, ++spool->tmp_serial);
  return job;
}

gboolean
outbox_spool_save (OutboxSpool *spool,
                   const OutboxSpoolRecord *record,
                   GError **error)
{
  g_autoptr(Job) job = NULL;

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), FALSE);
  g_return_val_if_fail (record != NULL, FALSE);

  if (!outbox_spool_id_is_valid (record->id))
    return no_such_message (error, record->id);
  job = save_job_new (spool, record);
  return run_jobs_now (spool, job, error);
}

void
outbox_spool_save_async (OutboxSpool *spool,
                         const OutboxSpoolRecord *record,
                         GCancellable *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (OUTBOX_IS_SPOOL (spool));
  g_return_if_fail (record != NULL);

  task = g_task_new (spool, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_spool_save_async);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (!outbox_spool_id_is_valid (record->id))
    {
      GError *error = NULL;

      no_such_message (&error, record->id);
      g_task_return_error (task, error);
      return;
    }
  submit_job (spool, save_job_new (spool, record), g_steal_pointer (&task));
}

gboolean
outbox_spool_save_finish (OutboxSpool *spool,
                          GAsyncResult *result,
                          GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, spool), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, outbox_spool_save_async), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
outbox_spool_remove (OutboxSpool *spool,
                     const char *id,
                     GError **error)
{
  g_autoptr(Job) job = NULL;

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), FALSE);

  if (!outbox_spool_id_is_valid (id))
    return no_such_message (error, id);
  job = job_new (JOB_REMOVE, id);
  return run_jobs_now (spool, job, error);
}

void
outbox_spool_remove_async (OutboxSpool *spool,
                           const char *id,
                           GCancellable *cancellable,
                           GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (OUTBOX_IS_SPOOL (spool));

  task = g_task_new (spool, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_spool_remove_async);
  if (g_task_return_error_if_cancelled (task))
    return;
  if (!outbox_spool_id_is_valid (id))
    {
      GError *error = NULL;

      no_such_message (&error, id);
      g_task_return_error (task, error);
      return;
    }
  submit_job (spool, job_new (JOB_REMOVE, id), g_steal_pointer (&task));
}

gboolean
outbox_spool_remove_finish (OutboxSpool *spool,
                            GAsyncResult *result,
                            GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, spool), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, outbox_spool_remove_async), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Moves queue/@name into quarantine/ without ever replacing a file there.
 * Returns FALSE when there was nothing to move or the move failed. */
static gboolean
quarantine_file (OutboxSpool *spool,
                 const char *name)
{
  g_autofree char *target = g_strdup (name);
  struct stat st;

  if (fstatat (spool->queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return FALSE;
  for (guint n = 1; fstatat (spool->quarantine_fd, target, &st, AT_SYMLINK_NOFOLLOW) == 0; n++)
    {
      g_free (target);
      target = g_strdup_printf ("%s.%u", name, n);
    }
  if (renameat (spool->queue_fd, name, spool->quarantine_fd, target) < 0)
    {
      g_warning ("Cannot move queue/%s into quarantine/: %s", name, g_strerror (errno));
      return FALSE;
    }
  return TRUE;
}

static gboolean
quarantine_message (OutboxSpool *spool,
                    const char *id)
{
  g_autofree char *record_name = file_name (id, RECORD_SUFFIX);
  g_autofree char *message_name = file_name (id, MESSAGE_SUFFIX);
  g_autofree char *data_name = file_name (id, PLAIN_DATA_SUFFIX);
  gboolean moved_record = quarantine_file (spool, record_name);
  gboolean moved_message = quarantine_file (spool, message_name);
  gboolean moved_data = quarantine_file (spool, data_name);

  return moved_record || moved_message || moved_data;
}

static void
sync_after_quarantine (OutboxSpool *spool)
{
  if (spool_fsync (spool, spool->quarantine_fd, OUTBOX_SPOOL_FAULT_FSYNC_DIR) < 0
      || spool_fsync (spool, spool->queue_fd, OUTBOX_SPOOL_FAULT_FSYNC_DIR) < 0)
    g_warning ("Cannot save the spool directories after setting messages aside: %s", g_strerror (errno));
}

gboolean
outbox_spool_quarantine (OutboxSpool *spool,
                         const char *id,
                         GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), FALSE);

  /* Whatever was asked for before reaches the disk first (and the index
   * goes). */
  run_jobs_now (spool, NULL, NULL);
  if (!outbox_spool_id_is_valid (id) || !quarantine_message (spool, id))
    return no_such_message (error, id);
  g_message ("Message %s set aside in quarantine/", id);
  sync_after_quarantine (spool);
  return TRUE;
}

/* Reads queue/@name into @buffer, which is reused from one record to the
 * next: a fresh block per record would leave the heap full of holes that
 * the records' small allocations keep from being returned.  @head: how
 * many octets to read from the start (a message file's record slots), or
 * 0 for the whole file (a record file).  @st: what fstat(2) said of it. */
static gboolean
read_record_file (OutboxSpool *spool,
                  const char *name,
                  gsize head,
                  GByteArray *buffer,
                  struct stat *st,
                  GError **error)
{
  int fd = openat (spool->queue_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  gboolean complete;

  if (fd < 0 || fstat (fd, st) < 0)
    {
      errno_error (error, errno, "Cannot read queue/%s", name);
      if (fd >= 0)
        close (fd);
      return FALSE;
    }
  if (!S_ISREG (st->st_mode) || (head == 0 && st->st_size > 2 * (RECORD_MAX_SIZE + SLOT_ALIGN)))
    {
      close (fd);
      return record_error (error, "queue/%s is not a file of at most two slots of 1 MiB", name);
    }
  if (head > 0 && (gsize) st->st_size < head)
    {
      close (fd);
      return record_error (error, "queue/%s is shorter than its record slots", name);
    }
  g_byte_array_set_size (buffer, head > 0 ? head : (gsize) st->st_size);
  complete = read_fd_fully (fd, buffer->data, buffer->len);
  close (fd);
  if (!complete)
    return record_error (error, "queue/%s changed while it was read", name);
  return TRUE;
}

/* What queue/ holds of one message id. */
enum
{
  HAS_RECORD_FILE = 1 << 0,   /* ID.rec */
  HAS_MESSAGE_FILE = 1 << 1,  /* ID.msg */
  HAS_PLAIN_DATA = 1 << 2,    /* ID.eml */
};

static gboolean
all_zero (const guint8 *data,
          gsize len)
{
  for (gsize i = 0; i < len; i++)
    if (data[i] != 0)
      return FALSE;
  return TRUE;
}

#define NO_RECORD_REASON \
  "a message file without a record: most likely a submission stopped before it " \
  "was acknowledged, or a removal stopped halfway; kept in case it is not"

static OutboxSpoolRecord *
load_record (OutboxSpool *spool,
             const char *id,
             guint files,
             GByteArray *buffer,
             GError **error)
{
  g_autofree char *record_name = file_name (id, RECORD_SUFFIX);
  g_autofree char *data_name = file_name (id, (files & HAS_MESSAGE_FILE) ? MESSAGE_SUFFIX : PLAIN_DATA_SUFFIX);
  guint64 head = (files & HAS_MESSAGE_FILE) ? MESSAGE_HEAD : 0;
  g_autoptr(OutboxSpoolRecord) record = NULL;
  struct stat st;

  if (files & HAS_RECORD_FILE)
    {
      if (!read_record_file (spool, record_name, 0, buffer, &st, error))
        return NULL;
    }
  else
    {
      /* Its fstat() tells the size of the message as well. */
      if (!read_record_file (spool, data_name, MESSAGE_HEAD, buffer, &st, error))
        return NULL;
      /* A record too big for the slots was still to be written. */
      if (all_zero (buffer->data, buffer->len))
        {
          record_error (error, NO_RECORD_REASON);
          return NULL;
        }
    }
  record = parse_record_file (id, buffer->data, buffer->len, error);
  if (record == NULL)
    return NULL;
  if ((files & HAS_RECORD_FILE)
      && (fstatat (spool->queue_fd, data_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG (st.st_mode)))
    {
      record_error (error, "its message file is missing");
      return NULL;
    }
  if ((guint64) st.st_size < head || (guint64) st.st_size - head != record->size)
    {
      record_error (error, "its message file has %" G_GINT64_FORMAT " octets, not %" G_GUINT64_FORMAT,
                           (gint64) (st.st_size - head), record->size);
      return NULL;
    }
  return g_steal_pointer (&record);
}

static gint
compare_records (gconstpointer a,
                 gconstpointer b)
{
  const OutboxSpoolRecord *record_a = *(OutboxSpoolRecord * const *) a;
  const OutboxSpoolRecord *record_b = *(OutboxSpoolRecord * const *) b;

  if (record_a->created != record_b->created)
    return record_a->created < record_b->created ? -1 : 1;
  return strcmp (record_a->id, record_b->id);
}

static void
set_aside (OutboxSpool *spool,
           const char *id,
           const char *reason,
           GPtrArray *quarantined)
{
  g_message ("Message %s set aside in quarantine/: %s", id, reason);
  quarantine_message (spool, id);
  g_ptr_array_add (quarantined, g_strdup (id));
}

/* Loading
 *
 * Two sources, in this order: the index, when the last daemon left one
 * (see outbox_spool_write_index()), and then queue/ itself, read as a
 * directory, for every message the index did not vouch for.  An index
 * entry is taken only when the message's files are still those it
 * describes (which of them exist, their sizes and change times); any
 * other message is read from its files.  Both are read a few records at a
 * time, so that whoever loads them can go on answering between two steps.
 * A message that the caller knows already (submitted since the start) or
 * whose commit is still being written is left to the caller; one whose
 * files are gone by the time they are read was removed meanwhile. */

typedef struct
{
  gint64 size;
  gint64 ctime_sec;
  gint64 ctime_nsec;
} FileStamp;

struct _OutboxSpoolLoader
{
  OutboxSpool *spool;            /* (owned) */
  OutboxSpoolKnownFunc known;
  gpointer known_data;
  guint8 *index;                 /* (nullable) the index, mapped */
  gsize index_len;
  gsize index_pos;
  DIR *dir;                      /* (owned) (nullable) queue/, once the index is read */
  gboolean done;
  GHashTable *seen;              /* (element-type utf8) (owned) ids given out */
  GPtrArray *quarantined;        /* (element-type utf8) (owned) */
  GByteArray *buffer;            /* (owned) reused from one record to the next */
  guint from_index;
  guint from_files;
};

static void
stamp_of (const struct stat *st,
          FileStamp *out)
{
  out->size = st->st_size;
  out->ctime_sec = st->st_ctim.tv_sec;
  out->ctime_nsec = st->st_ctim.tv_nsec;
}

/* Which of its files queue/ holds of @id (HAS_*), and the stamps of its
 * record file and of its data file (zero when absent). */
static guint
message_files_stamped (OutboxSpool *spool,
                       const char *id,
                       FileStamp *record_stamp,
                       FileStamp *data_stamp)
{
  g_autofree char *record_name = file_name (id, RECORD_SUFFIX);
  g_autofree char *message_name = file_name (id, MESSAGE_SUFFIX);
  g_autofree char *plain_name = file_name (id, PLAIN_DATA_SUFFIX);
  guint files = 0;
  struct stat st;

  memset (record_stamp, 0, sizeof *record_stamp);
  memset (data_stamp, 0, sizeof *data_stamp);
  if (fstatat (spool->queue_fd, record_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      files |= HAS_RECORD_FILE;
      stamp_of (&st, record_stamp);
    }
  if (fstatat (spool->queue_fd, message_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      files |= HAS_MESSAGE_FILE;
      stamp_of (&st, data_stamp);
    }
  else if (fstatat (spool->queue_fd, plain_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
    {
      files |= HAS_PLAIN_DATA;
      stamp_of (&st, data_stamp);
    }
  return files;
}

static guint
message_files (OutboxSpool *spool,
               const char *id)
{
  FileStamp record_stamp, data_stamp;

  return message_files_stamped (spool, id, &record_stamp, &data_stamp);
}

/* The index
 *
 *   outbox-index 2 SEC NSEC                                 when it was begun
 *   entry ID FILES RSIZE RSEC RNSEC DSIZE DSEC DNSEC LEN    one per message:
 *   RECORD                                                  its files, their
 *                                                           stamps, and its
 *                                                           record (LEN octets
 *                                                           and a newline)
 *   end COUNT
 *
 * SEC NSEC is the file system's time when the index was begun: every
 * stamp in it is older, so that a file changed since has a newer one.  An
 * index begun later than the clock says it is now (the clock was set
 * back) is not read, nor one without its end line.  Each record carries
 * its own checksum. */

#define INDEX_MAGIC "outbox-index 2 "

static gboolean
stamp_is_older (gint64 sec,
                gint64 nsec,
                gint64 than_sec,
                gint64 than_nsec)
{
  return sec < than_sec || (sec == than_sec && nsec < than_nsec);
}

/* Whether @map ends with the end line (looked for in its last octets
 * only: the records before it may hold anything). */
static gboolean
has_end_line (const char *map,
              gsize len)
{
  gsize tail = MIN (len, 32);

  return g_strrstr_len (map + len - tail, tail, "\nend ") != NULL && map[len - 1] == '\n';
}

static void
open_index (OutboxSpoolLoader *loader)
{
  int fd = openat (loader->spool->root_fd, INDEX_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  gint64 now = g_get_real_time ();
  const char *header_end;
  gint64 begun_sec, begun_nsec;
  char header[65] = { 0 };
  int consumed = 0;
  struct stat st;
  void *map;

  if (fd < 0)
    return;
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_size < (off_t) strlen (INDEX_MAGIC))
    {
      close (fd);
      return;
    }
  map = mmap (NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close (fd);
  if (map == MAP_FAILED)
    return;
  madvise (map, st.st_size, MADV_SEQUENTIAL);
  loader->index = map;
  loader->index_len = st.st_size;
  loader->index_pos = loader->index_len;
  header_end = memchr (map, '\n', MIN ((gsize) st.st_size, 64));
  /* sscanf() reads its string to a NUL, which the mapping need not have
   * (a file that ends at a page's end has none after it): the header line
   * is read from a NUL-terminated copy. */
  if (header_end != NULL)
    memcpy (header, map, header_end + 1 - (const char *) map);
  if (header_end == NULL || memcmp (map, INDEX_MAGIC, strlen (INDEX_MAGIC)) != 0
      || sscanf (header + strlen (INDEX_MAGIC),
                 "%" G_GINT64_MODIFIER "d %" G_GINT64_MODIFIER "d\n%n", &begun_sec, &begun_nsec, &consumed) != 2
      || (const char *) map + strlen (INDEX_MAGIC) + consumed != header_end + 1
      || !has_end_line (map, st.st_size))
    {
      g_message ("The spool index is incomplete or unknown; reading every record file");
      return;
    }
  if (stamp_is_older (now / G_USEC_PER_SEC, (now % G_USEC_PER_SEC) * 1000, begun_sec, begun_nsec))
    {
      g_message ("The spool index was written later than the clock now says; reading every record file");
      return;
    }
  loader->index_pos = header_end + 1 - (const char *) map;
}

static void
close_index (OutboxSpoolLoader *loader)
{
  if (loader->index != NULL)
    munmap (loader->index, loader->index_len);
  loader->index = NULL;
}

typedef struct
{
  char id[ID_MAX_LENGTH + 1];
  guint files;
  FileStamp record_stamp;
  FileStamp data_stamp;
  const guint8 *record;
  gsize len;
} IndexEntry;

/* The entry at @loader->index_pos, moving past it; FALSE at the end or at
 * anything that is not an entry, which ends the index. */
static gboolean
next_index_entry (OutboxSpoolLoader *loader,
                  IndexEntry *entry)
{
  const char *line = (const char *) loader->index + loader->index_pos;
  gsize left = loader->index_len - loader->index_pos;
  const char *end = memchr (line, '\n', MIN (left, 256));
  g_autofree char *header = NULL;
  guint64 len;
  int consumed = 0;

  if (end == NULL)
    return FALSE;
  header = g_strndup (line, end - line);
  if (sscanf (header, "entry %64[0-9a-z] %u %" G_GINT64_MODIFIER "d %" G_GINT64_MODIFIER "d %"
              G_GINT64_MODIFIER "d %" G_GINT64_MODIFIER "d %" G_GINT64_MODIFIER "d %"
              G_GINT64_MODIFIER "d %" G_GUINT64_FORMAT "%n",
              entry->id, &entry->files, &entry->record_stamp.size, &entry->record_stamp.ctime_sec,
              &entry->record_stamp.ctime_nsec, &entry->data_stamp.size, &entry->data_stamp.ctime_sec,
              &entry->data_stamp.ctime_nsec, &len, &consumed) != 9
      || (gsize) consumed != strlen (header)
      || len + 1 > left - (end + 1 - line) || ((const char *) end + 1)[len] != '\n')
    return FALSE;
  entry->record = (const guint8 *) end + 1;
  entry->len = len;
  loader->index_pos += (end + 1 - line) + len + 1;
  return TRUE;
}

static gboolean
stamps_equal (const FileStamp *a,
              const FileStamp *b)
{
  return a->size == b->size && a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

/* The record of an index entry, when the files are still as it says. */
static OutboxSpoolRecord *
index_entry_record (OutboxSpoolLoader *loader,
                    const IndexEntry *entry)
{
  FileStamp record_stamp, data_stamp;
  OutboxSpoolRecord *record;
  guint files = message_files_stamped (loader->spool, entry->id, &record_stamp, &data_stamp);
  gint64 head = (files & HAS_MESSAGE_FILE) ? MESSAGE_HEAD : 0;

  if (files != entry->files || !stamps_equal (&record_stamp, &entry->record_stamp)
      || !stamps_equal (&data_stamp, &entry->data_stamp))
    return NULL;
  record = outbox_spool_record_parse (entry->id, entry->record, entry->len, NULL);
  if (record != NULL && (guint64) (data_stamp.size - head) != record->size)
    g_clear_pointer (&record, outbox_spool_record_free);
  return record;
}

static gboolean
loader_knows (OutboxSpoolLoader *loader,
              const char *id)
{
  return g_hash_table_contains (loader->seen, id)
         || g_hash_table_contains (loader->spool->committing, id)
         || (loader->known != NULL && loader->known (id, loader->known_data));
}

static void
loader_give (OutboxSpoolLoader *loader,
             GPtrArray *records,
             OutboxSpoolRecord *record)
{
  g_hash_table_add (loader->seen, g_strdup (record->id));
  /* Compacted at once, so that the next record reuses what parsing took. */
  g_ptr_array_add (records, outbox_spool_record_compact (record));
}

static void
read_from_index (OutboxSpoolLoader *loader,
                 GPtrArray *records,
                 guint max)
{
  IndexEntry entry;

  while (records->len < max)
    {
      OutboxSpoolRecord *record;

      if (!next_index_entry (loader, &entry))
        {
          close_index (loader);
          return;
        }
      if (loader_knows (loader, entry.id))
        continue;
      record = index_entry_record (loader, &entry);
      if (record != NULL)
        {
          loader->from_index++;
          loader_give (loader, records, record);
        }
    }
}

/* The id a name of queue/ is for, or NULL for a file of no message. */
static char *
name_to_id (const char *name)
{
  static const char *const suffixes[] = { RECORD_SUFFIX, MESSAGE_SUFFIX, PLAIN_DATA_SUFFIX };

  for (gsize k = 0; k < G_N_ELEMENTS (suffixes); k++)
    {
      if (g_str_has_suffix (name, suffixes[k]))
        {
          char *id = g_strndup (name, strlen (name) - strlen (suffixes[k]));

          if (outbox_spool_id_is_valid (id))
            return id;
          g_free (id);
          return NULL;
        }
    }
  return NULL;
}

/* Reads @id from its files; nothing when they are gone (removed since the
 * directory was listed), set aside when they do not validate. */
static void
read_from_files (OutboxSpoolLoader *loader,
                 const char *id,
                 GPtrArray *records)
{
  g_autoptr(GError) local_error = NULL;
  OutboxSpoolRecord *record;
  guint files = message_files (loader->spool, id);

  if (files == 0)
    return;
  if ((files & (HAS_RECORD_FILE | HAS_MESSAGE_FILE)) == 0)
    {
      g_hash_table_add (loader->seen, g_strdup (id));
      set_aside (loader->spool, id, NO_RECORD_REASON, loader->quarantined);
      return;
    }
  record = load_record (loader->spool, id, files, loader->buffer, &local_error);
  if (record == NULL && message_files (loader->spool, id) == 0)
    return;
  if (record == NULL)
    {
      g_hash_table_add (loader->seen, g_strdup (id));
      set_aside (loader->spool, id, local_error->message, loader->quarantined);
      return;
    }
  loader->from_files++;
  loader_give (loader, records, record);
}

static void
read_from_dir (OutboxSpoolLoader *loader,
               GPtrArray *records,
               guint max)
{
  while (records->len < max)
    {
      struct dirent *dirent = readdir (loader->dir);
      g_autofree char *id = NULL;

      if (dirent == NULL)
        {
          loader->done = TRUE;
          return;
        }
      id = name_to_id (dirent->d_name);
      if (id != NULL && !loader_knows (loader, id))
        read_from_files (loader, id, records);
    }
}

static gboolean
open_dir (OutboxSpoolLoader *loader,
          GError **error)
{
  int fd = openat (loader->spool->queue_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 || (loader->dir = fdopendir (fd)) == NULL)
    {
      errno_error (error, errno, "Cannot read the spool directory");
      if (fd >= 0)
        close (fd);
      return FALSE;
    }
  return TRUE;
}

OutboxSpoolLoader *
outbox_spool_loader_new (OutboxSpool *spool,
                         OutboxSpoolKnownFunc known,
                         gpointer known_data,
                         GError **error)
{
  g_autoptr(OutboxSpoolLoader) loader = g_new0 (OutboxSpoolLoader, 1);

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), NULL);

  loader->spool = g_object_ref (spool);
  loader->known = known;
  loader->known_data = known_data;
  loader->seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  loader->quarantined = g_ptr_array_new_with_free_func (g_free);
  loader->buffer = g_byte_array_sized_new (2 * SLOT_ALIGN);
  open_index (loader);
  if (!open_dir (loader, error))
    return NULL;
  return g_steal_pointer (&loader);
}

gboolean
outbox_spool_loader_is_done (OutboxSpoolLoader *loader)
{
  return loader->done;
}

guint
outbox_spool_loader_get_from_index (OutboxSpoolLoader *loader)
{
  return loader->from_index;
}

guint
outbox_spool_loader_get_from_files (OutboxSpoolLoader *loader)
{
  return loader->from_files;
}

GPtrArray *
outbox_spool_loader_next (OutboxSpoolLoader *loader,
                          guint max)
{
  GPtrArray *records = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_spool_record_free);
  guint quarantined_before = loader->quarantined->len;

  if (loader->index != NULL)
    read_from_index (loader, records, max);
  if (loader->index == NULL && !loader->done)
    read_from_dir (loader, records, max);
  if (loader->quarantined->len > quarantined_before)
    sync_after_quarantine (loader->spool);
  return records;
}

GPtrArray *
outbox_spool_loader_get_quarantined (OutboxSpoolLoader *loader)
{
  return loader->quarantined;
}

void
outbox_spool_loader_free (OutboxSpoolLoader *loader)
{
  if (loader == NULL)
    return;
  close_index (loader);
  if (loader->dir != NULL)
    closedir (loader->dir);
  g_object_unref (loader->spool);
  g_hash_table_unref (loader->seen);
  g_ptr_array_unref (loader->quarantined);
  g_byte_array_unref (loader->buffer);
  g_free (loader);
}

GPtrArray *
outbox_spool_load (OutboxSpool *spool,
                   GPtrArray **out_quarantined,
                   GError **error)
{
  g_autoptr(OutboxSpoolLoader) loader = outbox_spool_loader_new (spool, NULL, NULL, error);
  g_autoptr(GPtrArray) records = NULL;

  if (loader == NULL)
    return NULL;
  records = g_ptr_array_new_with_free_func ((GDestroyNotify) outbox_spool_record_free);
  while (!outbox_spool_loader_is_done (loader))
    {
      g_autoptr(GPtrArray) more = outbox_spool_loader_next (loader, G_MAXUINT);

      g_ptr_array_extend_and_steal (records, g_steal_pointer (&more));
    }
  g_ptr_array_sort (records, compare_records);
  if (out_quarantined != NULL)
    *out_quarantined = g_ptr_array_ref (loader->quarantined);
  return g_steal_pointer (&records);
}

/* Writing the index
 *
 * What an entry says is read back from the files, not taken from memory,
 * where a record may run ahead of its file: the index is a copy of the
 * disk, never of the daemon's view of it. */

/* The record bytes of @id's current slot (or one-record file), with its
 * files and their stamps; FALSE when it has none that validates. */
static gboolean
current_record_bytes (OutboxSpool *spool,
                      const char *id,
                      IndexEntry *entry,
                      GByteArray *buffer)
{
  guint files = message_files_stamped (spool, id, &entry->record_stamp, &entry->data_stamp);
  gboolean from_record_file = (files & HAS_RECORD_FILE) != 0;
  g_autofree char *name = file_name (id, from_record_file ? RECORD_SUFFIX : MESSAGE_SUFFIX);
  const guint8 *record;
  guint64 seq;
  struct stat st;
  int slot;

  if ((files & (HAS_RECORD_FILE | HAS_MESSAGE_FILE)) == 0
      || !read_record_file (spool, name, from_record_file ? 0 : MESSAGE_HEAD, buffer, &st, NULL))
    return FALSE;
  entry->files = files;
  if (buffer->len >= strlen (RECORD_MAGIC) && memcmp (buffer->data, RECORD_MAGIC, strlen (RECORD_MAGIC)) == 0)
    {
      entry->record = buffer->data;
      entry->len = buffer->len;
      return TRUE;
    }
  slot = current_slot (buffer->data, buffer->len, &seq);
  if (slot < 0)
    return FALSE;
  return slot_header (buffer->data + slot * (buffer->len / 2), buffer->len / 2, &seq, &record,
                      &entry->len, NULL)
         && (entry->record = record) != NULL;
}

static void
append_index_entry (GString *out,
                    const char *id,
                    const IndexEntry *entry)
{
  g_string_append_printf (out, "entry %s %u %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT
                          " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %" G_GSIZE_FORMAT "\n",
                          id, entry->files, entry->record_stamp.size, entry->record_stamp.ctime_sec,
                          entry->record_stamp.ctime_nsec, entry->data_stamp.size,
                          entry->data_stamp.ctime_sec, entry->data_stamp.ctime_nsec, entry->len);
  g_string_append_len (out, (const char *) entry->record, entry->len);
  g_string_append_c (out, '\n');
}

static gboolean
write_index_file (OutboxSpool *spool,
                  int fd,
                  const struct timespec *begun,
                  GPtrArray *ids)
{
  g_autoptr(GByteArray) buffer = g_byte_array_sized_new (2 * SLOT_ALIGN);
  g_autoptr(GString) out = g_string_sized_new (1024 * 1024);
  guint count = 0;

  g_string_append_printf (out, INDEX_MAGIC "%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n",
                          (gint64) begun->tv_sec, (gint64) begun->tv_nsec);
  for (guint i = 0; i < ids->len; i++)
    {
      IndexEntry entry = { { 0 }, };

      /* Files changed in the tick the index was begun in could change
       * again within it, their stamps unmoved: those are read at the next
       * start (so are files changed since). */
      if (current_record_bytes (spool, g_ptr_array_index (ids, i), &entry, buffer)
          && stamp_is_older (entry.record_stamp.ctime_sec, entry.record_stamp.ctime_nsec, begun->tv_sec,
                             begun->tv_nsec)
          && stamp_is_older (entry.data_stamp.ctime_sec, entry.data_stamp.ctime_nsec, begun->tv_sec,
                             begun->tv_nsec))
        {
          append_index_entry (out, g_ptr_array_index (ids, i), &entry);
          count++;
        }
      if (out->len >= 1024 * 1024)
        {
          if (!write_all (spool, fd, (const guint8 *) out->str, out->len))
            return FALSE;
          g_string_truncate (out, 0);
        }
    }
  g_string_append_printf (out, "end %u\n", count);
  return write_all (spool, fd, (const guint8 *) out->str, out->len);
}

/* Any thread; one index at a time. */
static gboolean
write_index (OutboxSpool *spool,
             GPtrArray *ids,
             GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&spool->index_lock);
  struct stat st;
  gboolean ok;
  int fd;

  /* A new file: its change time is the file system's time now, older
   * than any change that comes after. */
  if (unlinkat (spool->tmp_fd, INDEX_NAME, 0) < 0 && errno != ENOENT)
    return errno_error (error, errno, "Cannot create the spool index");
  fd = openat (spool->tmp_fd, INDEX_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno_error (error, errno, "Cannot create the spool index");
  ok = fstat (fd, &st) == 0;
  if (spool->fault == OUTBOX_SPOOL_FAULT_INDEX_TICK)
    st.st_ctim.tv_sec = st.st_ctim.tv_nsec = 0;
  if (!ok || !write_index_file (spool, fd, &st.st_ctim, ids) || fsync (fd) < 0)
    {
      errno_error (error, errno, "Cannot write the spool index");
      close (fd);
      unlinkat (spool->tmp_fd, INDEX_NAME, 0);
      return FALSE;
    }
  close (fd);
  if (renameat (spool->tmp_fd, INDEX_NAME, spool->root_fd, INDEX_NAME) < 0 || fsync (spool->root_fd) < 0)
    {
      errno_error (error, errno, "Cannot put the spool index in place");
      unlinkat (spool->tmp_fd, INDEX_NAME, 0);
      return FALSE;
    }
  return TRUE;
}

gboolean
outbox_spool_write_index (OutboxSpool *spool,
                          GPtrArray *ids,
                          GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), FALSE);

  /* Every change asked for is on disk before the copy is made. */
  run_jobs_now (spool, NULL, NULL);
  spool->changes = 0;
  return write_index (spool, ids, error);
}

static void
write_index_thread (GTask *task,
                    gpointer source_object,
                    gpointer task_data,
                    GCancellable *cancellable)
{
  GError *error = NULL;

  if (write_index (source_object, task_data, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

void
outbox_spool_write_index_async (OutboxSpool *spool,
                                GPtrArray *ids,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  GPtrArray *copy;

  g_return_if_fail (OUTBOX_IS_SPOOL (spool));

  copy = g_ptr_array_new_full (ids->len, g_free);
  for (guint i = 0; i < ids->len; i++)
    g_ptr_array_add (copy, g_strdup (g_ptr_array_index (ids, i)));
  spool->changes = 0;
  task = g_task_new (spool, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_spool_write_index_async);
  g_task_set_task_data (task, copy, (GDestroyNotify) g_ptr_array_unref);
  g_task_run_in_thread (task, write_index_thread);
}

gboolean
outbox_spool_write_index_finish (OutboxSpool *spool,
                                 GAsyncResult *result,
                                 GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, spool), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

guint64
outbox_spool_get_changes_since_index (OutboxSpool *spool)
{
  return spool->changes;
}

OutboxSpoolRecord *
outbox_spool_read (OutboxSpool *spool,
                   const char *id,
                   GError **error)
{
  g_autoptr(GByteArray) buffer = NULL;
  OutboxSpoolRecord *record;
  guint files;

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), NULL);

  if (!outbox_spool_id_is_valid (id))
    {
      no_such_message (error, id);
      return NULL;
    }
  files = message_files (spool, id);
  if ((files & (HAS_RECORD_FILE | HAS_MESSAGE_FILE)) == 0)
    {
      no_such_message (error, id);
      return NULL;
    }
  buffer = g_byte_array_sized_new (2 * SLOT_ALIGN);
  record = load_record (spool, id, files, buffer, error);
  return record != NULL ? outbox_spool_record_compact (record) : NULL;
}

/* Reading a message back: a stream that checks size and SHA-256 against
 * the record and turns the end of input into an error on mismatch. */

#define OUTBOX_TYPE_VERIFIED_INPUT_STREAM (outbox_verified_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (OutboxVerifiedInputStream, outbox_verified_input_stream,
                      OUTBOX, VERIFIED_INPUT_STREAM, GInputStream)

struct _OutboxVerifiedInputStream
{
  GInputStream parent_instance;

  /* A regular file of the spool, read at offset + count: such a file
   * cannot be polled, so a GUnixInputStream would only add a pollability
   * probe (three system calls) and a second object. */
  int fd;
  goffset offset;           /* where the message data starts */
  char *id;
  guint64 expected_size;
  guint8 expected_sha256[OUTBOX_SPOOL_SHA256_LENGTH];
  GChecksum *checksum;
  guint64 count;
  gboolean at_end;  /* the checksum is final */
};

G_DEFINE_FINAL_TYPE (OutboxVerifiedInputStream, outbox_verified_input_stream, G_TYPE_INPUT_STREAM)

static gboolean
changed_on_disk (OutboxVerifiedInputStream *self,
                 GError **error)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               "The file of message %s changed on disk (%" G_GUINT64_FORMAT " octets read, "
               "%" G_GUINT64_FORMAT " recorded); set it aside",
               self->id, self->count, self->expected_size);
  return FALSE;
}

static gboolean
digest_is (GChecksum *checksum,
           const guint8 expected[OUTBOX_SPOOL_SHA256_LENGTH])
{
  guint8 digest[OUTBOX_SPOOL_SHA256_LENGTH];
  gsize len = sizeof digest;

  g_checksum_get_digest (checksum, digest, &len);
  return len == sizeof digest && memcmp (digest, expected, len) == 0;
}

/* Accounts for the result of a read of the file. */
static gssize
verify_read (OutboxVerifiedInputStream *self,
             const void *buffer,
             gssize n_read,
             GError **error)
{
  if (n_read < 0)
    return n_read;
  if (n_read > 0)
    {
      self->count += n_read;
      if (self->at_end || self->count > self->expected_size)
        {
          changed_on_disk (self, error);
          return -1;
        }
      g_checksum_update (self->checksum, buffer, n_read);
      return n_read;
    }

  self->at_end = TRUE;
  if (self->count != self->expected_size
      || !digest_is (self->checksum, self->expected_sha256))
    {
      changed_on_disk (self, error);
      return -1;
    }
  return 0;
}

static gssize
outbox_verified_input_stream_read (GInputStream *stream,
                                   void *buffer,
                                   gsize count,
                                   GCancellable *cancellable,
                                   GError **error)
{
  OutboxVerifiedInputStream *self = OUTBOX_VERIFIED_INPUT_STREAM (stream);
  gssize n_read;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return -1;
  do
    n_read = pread (self->fd, buffer, MIN (count, G_MAXSSIZE), self->offset + (goffset) self->count);
  while (n_read < 0 && errno == EINTR);
  if (n_read < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "Cannot read message %s: %s", self->id, g_strerror (saved_errno));
      return -1;
    }
  return verify_read (self, buffer, n_read, error);
}

/* Skipped bytes are read, so that they are counted and hashed too. */
static gssize
outbox_verified_input_stream_skip (GInputStream *stream,
                                   gsize count,
                                   GCancellable *cancellable,
                                   GError **error)
{
  guint8 buffer[8192];

  return outbox_verified_input_stream_read (stream, buffer, MIN (count, sizeof buffer), cancellable, error);
}

/* The file is a regular file of the spool, which cannot be polled: GIO
 * would run each asynchronous read in its thread pool, two thread switches
 * per read.  A read from the page cache costs less than those, and a cold
 * read of one chunk blocks for about one disk access; so it is done here. */
static void
outbox_verified_input_stream_read_async (GInputStream *stream,
                                         void *buffer,
                                         gsize count,
                                         int io_priority,
                                         GCancellable *cancellable,
                                         GAsyncReadyCallback callback,
                                         gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;
  gssize n_read;

  g_task_set_source_tag (task, outbox_verified_input_stream_read_async);
  n_read = outbox_verified_input_stream_read (stream, buffer, count, cancellable, &error);
  if (n_read < 0)
    g_task_return_error (task, error);
  else
    g_task_return_int (task, n_read);
}

static gssize
outbox_verified_input_stream_read_finish (GInputStream *stream,
                                          GAsyncResult *result,
                                          GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);
  return g_task_propagate_int (G_TASK (result), error);
}

static gboolean
outbox_verified_input_stream_close (GInputStream *stream,
                                    GCancellable *cancellable,
                                    GError **error)
{
  OutboxVerifiedInputStream *self = OUTBOX_VERIFIED_INPUT_STREAM (stream);
  int fd = self->fd;

  self->fd = -1;
  /* The descriptor is gone whatever close() says; nothing was written. */
  if (fd >= 0 && close (fd) < 0 && errno != EINTR)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "Cannot close message %s: %s", self->id, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

/* Closing a file descriptor of a regular file does not block either. */
static void
outbox_verified_input_stream_close_async (GInputStream *stream,
                                          int io_priority,
                                          GCancellable *cancellable,
                                          GAsyncReadyCallback callback,
                                          gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, outbox_verified_input_stream_close_async);
  if (!G_INPUT_STREAM_GET_CLASS (stream)->close_fn (stream, cancellable, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static gboolean
outbox_verified_input_stream_close_finish (GInputStream *stream,
                                           GAsyncResult *result,
                                           GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
outbox_verified_input_stream_finalize (GObject *object)
{
  OutboxVerifiedInputStream *self = OUTBOX_VERIFIED_INPUT_STREAM (object);

  if (self->fd >= 0)
    close (self->fd);
  g_free (self->id);
  g_checksum_free (self->checksum);

  G_OBJECT_CLASS (outbox_verified_input_stream_parent_class)->finalize (object);
}

static void
outbox_verified_input_stream_class_init (OutboxVerifiedInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = outbox_verified_input_stream_finalize;
  stream_class->read_fn = outbox_verified_input_stream_read;
  stream_class->close_fn = outbox_verified_input_stream_close;
  stream_class->skip = outbox_verified_input_stream_skip;
  stream_class->read_async = outbox_verified_input_stream_read_async;
  stream_class->read_finish = outbox_verified_input_stream_read_finish;
  stream_class->close_async = outbox_verified_input_stream_close_async;
  stream_class->close_finish = outbox_verified_input_stream_close_finish;
}

static void
outbox_verified_input_stream_init (OutboxVerifiedInputStream *self)
{
  self->fd = -1;
  self->checksum = g_checksum_new (G_CHECKSUM_SHA256);
}

GInputStream *
outbox_spool_open_message (OutboxSpool *spool,
                           const OutboxSpoolRecord *record,
                           GError **error)
{
  g_autofree char *data_name = NULL;
  OutboxVerifiedInputStream *self;
  goffset offset = MESSAGE_HEAD;
  int fd;

  g_return_val_if_fail (OUTBOX_IS_SPOOL (spool), NULL);
  g_return_val_if_fail (record != NULL, NULL);

  if (!outbox_spool_id_is_valid (record->id))
    {
      no_such_message (error, record->id);
      return NULL;
    }
  data_name = file_name (record->id, MESSAGE_SUFFIX);
  fd = openat (spool->queue_fd, data_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    {
      g_free (data_name);
      data_name = file_name (record->id, PLAIN_DATA_SUFFIX);
      fd = openat (spool->queue_fd, data_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      offset = 0;
    }
  if (fd < 0)
    {
      errno_error (error, errno, "Cannot open message %s", record->id);
      return NULL;
    }

  self = g_object_new (OUTBOX_TYPE_VERIFIED_INPUT_STREAM, NULL);
  self->fd = fd;
  self->offset = offset;
  self->id = g_strdup (record->id);
  self->expected_size = record->size;
  memcpy (self->expected_sha256, record->sha256, sizeof self->expected_sha256);
  return G_INPUT_STREAM (self);
}
