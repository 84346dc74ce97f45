/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-message.h"
#include "outbox-options.h"
#include "outbox-smtp-dsn.h"
#include "outbox-submit.h"

typedef struct
{
  char *account;     /* (nullable) */
  char *from;        /* (nullable) */
  GPtrArray *recipients; /* (nullable) (element-type utf8) */
  gint64 send_at;
  gboolean send_at_given;
  gint64 delay;      /* -1: the account's send-delay, unless send-at or hold */
  gboolean hold;
  int save_to_sent;  /* -1: the account decides */
  OutboxDsnNotify notify; /* DEFAULT: the account's dsn-notify */
  OutboxDsnRet ret;
  char *envid;       /* (nullable) */
  int dsn_required;  /* -1: the account decides, when the message is sent */
} SubmitOptions;

typedef struct
{
  OutboxQueue *queue;              /* (owned) */
  OutboxAccountStore *accounts;    /* (unowned) lives as long as the daemon */
  SubmitOptions options;
  char *origin;                    /* (owned) (nullable) */
  OutboxSpoolDraft *draft;         /* (owned) */
  OutboxMessageImport *import;     /* (owned) */
  OutboxAccountConfig *account;          /* (owned) a copy: the store may change meanwhile */
  char *from;                      /* (owned) envelope sender */
  GPtrArray *recipients;           /* (owned) (element-type utf8) */
  const OutboxMessageHeaders *headers; /* (unowned) owned by import */
  OutboxSpoolRecord *record;       /* (owned) (nullable) being committed */
} SubmitData;

static void
submit_data_free (SubmitData *data)
{
  g_clear_object (&data->queue);
  g_free (data->origin);
  g_free (data->options.account);
  g_free (data->options.from);
  g_clear_pointer (&data->options.recipients, g_ptr_array_unref);
  g_free (data->options.envid);
  g_clear_pointer (&data->import, outbox_message_import_free);
  g_clear_pointer (&data->draft, outbox_spool_draft_free);
  g_clear_pointer (&data->account, outbox_account_config_free);
  g_free (data->from);
  g_clear_pointer (&data->recipients, g_ptr_array_unref);
  g_clear_pointer (&data->record, outbox_spool_record_free);
  g_free (data);
}

static gboolean
check_recipients (const char *key, GVariant *value, GError **error)
{
  gsize n;
  g_autofree const char **strv = g_variant_get_strv (value, &n);

  if (n == 0)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Option “recipients” is empty; leave it out to take the recipients "
                   "from the message's To, Cc and Bcc");
      return FALSE;
    }
  if (n > OUTBOX_MESSAGE_MAX_RECIPIENTS)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Too many recipients (%" G_GSIZE_FORMAT "); at most %d per message", n,
                   OUTBOX_MESSAGE_MAX_RECIPIENTS);
      return FALSE;
    }
  for (gsize i = 0; i < n; i++)
    if (!outbox_address_validate (strv[i], FALSE, error))
      return FALSE;
  return TRUE;
}

static gboolean
check_sender (const char *key, GVariant *value, GError **error)
{
  return outbox_address_validate (g_variant_get_string (value, NULL), TRUE, error);
}

/* The DSN module says what is wrong; the option is named in front. */
static gboolean
option_refused (const char *key, GError *local_error, GError **error)
{
  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS, "Option “%s”: %s", key,
               local_error->message);
  g_error_free (local_error);
  return FALSE;
}

static gboolean
check_notify (const char *key, GVariant *value, GError **error)
{
  g_autofree const char **words = g_variant_get_strv (value, NULL);
  OutboxDsnNotify notify;
  GError *local_error = NULL;

  return outbox_dsn_notify_from_words (words, &notify, &local_error)
         || option_refused (key, local_error, error);
}

static gboolean
check_ret (const char *key, GVariant *value, GError **error)
{
  OutboxDsnRet ret;
  GError *local_error = NULL;

  return outbox_dsn_ret_parse (g_variant_get_string (value, NULL), &ret, &local_error)
         || option_refused (key, local_error, error);
}

static gboolean
check_envid (const char *key, GVariant *value, GError **error)
{
  GError *local_error = NULL;

  return outbox_dsn_envid_validate (g_variant_get_string (value, NULL), &local_error)
         || option_refused (key, local_error, error);
}

static gboolean
check_delay (const char *key, GVariant *value, GError **error)
{
  if (g_variant_get_uint32 (value) > OUTBOX_SEND_DELAY_MAX)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Option “delay” is %u seconds; at most %d (a day): for later than that "
                   "give send-at",
                   g_variant_get_uint32 (value), OUTBOX_SEND_DELAY_MAX);
      return FALSE;
    }
  return TRUE;
}

enum
{
  OPTION_ACCOUNT,
  OPTION_FROM,
  OPTION_RECIPIENTS,
  OPTION_SEND_AT,
  OPTION_HOLD,
  OPTION_DELAY,
  OPTION_SAVE_TO_SENT,
  OPTION_NOTIFY,
  OPTION_RET,
  OPTION_ENVID,
  OPTION_DSN_REQUIRED,
  N_OPTIONS
};

static const OutboxOption submit_options[N_OPTIONS] = {
  [OPTION_ACCOUNT] = { "account", "s", NULL },
  [OPTION_FROM] = { "from", "s", check_sender },
  [OPTION_RECIPIENTS] = { "recipients", "as", check_recipients },
  [OPTION_SEND_AT] = { "send-at", "x", NULL },
  [OPTION_HOLD] = { "hold", "b", NULL },
  [OPTION_DELAY] = { "delay", "u", check_delay },
  [OPTION_SAVE_TO_SENT] = { "save-to-sent", "b", NULL },
  [OPTION_NOTIFY] = { "notify", "as", check_notify },
  [OPTION_RET] = { "ret", "s", check_ret },
  [OPTION_ENVID] = { "envid", "s", check_envid },
  [OPTION_DSN_REQUIRED] = { "dsn-required", "b", NULL },
};

/* The values were checked by the table. */
static void
parse_dsn_options (GVariant **values, SubmitOptions *out)
{
  if (values[OPTION_NOTIFY] != NULL)
    {
      g_autofree const char **words = g_variant_get_strv (values[OPTION_NOTIFY], NULL);

      outbox_dsn_notify_from_words (words, &out->notify, NULL);
    }
  if (values[OPTION_RET] != NULL)
    outbox_dsn_ret_parse (g_variant_get_string (values[OPTION_RET], NULL), &out->ret, NULL);
  if (values[OPTION_ENVID] != NULL)
    out->envid = g_variant_dup_string (values[OPTION_ENVID], NULL);
  if (values[OPTION_DSN_REQUIRED] != NULL)
    out->dsn_required = g_variant_get_boolean (values[OPTION_DSN_REQUIRED]);
}

static gboolean
parse_options (GVariant *options, SubmitOptions *out, GError **error)
{
  GVariant *values[N_OPTIONS];

  out->save_to_sent = -1;
  out->dsn_required = -1;
  out->delay = -1;
  if (!outbox_options_check (options, submit_options, N_OPTIONS, "Submit", values, error))
    return FALSE;
  if (values[OPTION_DELAY] != NULL && values[OPTION_SEND_AT] != NULL)
    {
      outbox_options_clear (values, N_OPTIONS);
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "Options “delay” and “send-at” exclude each other: give one of them");
      return FALSE;
    }
  if (values[OPTION_ACCOUNT] != NULL)
    out->account = g_variant_dup_string (values[OPTION_ACCOUNT], NULL);
  if (values[OPTION_FROM] != NULL)
    out->from = g_variant_dup_string (values[OPTION_FROM], NULL);
  if (values[OPTION_RECIPIENTS] != NULL)
    {
      g_autofree const char **strv = g_variant_get_strv (values[OPTION_RECIPIENTS], NULL);

      out->recipients = g_ptr_array_new_with_free_func (g_free);
      for (gsize i = 0; strv[i] != NULL; i++)
        g_ptr_array_add (out->recipients, g_strdup (strv[i]));
    }
  if (values[OPTION_SEND_AT] != NULL)
    {
      out->send_at = g_variant_get_int64 (values[OPTION_SEND_AT]);
      out->send_at_given = TRUE;
    }
  if (values[OPTION_DELAY] != NULL)
    out->delay = g_variant_get_uint32 (values[OPTION_DELAY]);
  if (values[OPTION_HOLD] != NULL)
    out->hold = g_variant_get_boolean (values[OPTION_HOLD]);
  if (values[OPTION_SAVE_TO_SENT] != NULL)
    out->save_to_sent = g_variant_get_boolean (values[OPTION_SAVE_TO_SENT]);
  parse_dsn_options (values, out);
  outbox_options_clear (values, N_OPTIONS);
  return TRUE;
}

static const OutboxAccountConfig *
choose_account (SubmitData *data, GError **error)
{
  const OutboxAccountConfig *account;

  if (data->options.account != NULL)
    {
      account = outbox_account_store_lookup (data->accounts, data->options.account);
      if (account == NULL)
        g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT,
                     "No account named “%s”; see outbox account list", data->options.account);
      return account;
    }
  account = outbox_account_store_find_by_address (data->accounts, data->headers->from_address);
  if (account == NULL)
    account = outbox_account_store_get_default (data->accounts);
  if (account == NULL)
    g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_NO_SUCH_ACCOUNT,
                 "No account configured: run outbox account add NAME --from ADDRESS "
                 "--smtp smtps://USER@HOST --password-stdin");
  return account;
}

static void
add_unique (GPtrArray *list, const char *address)
{
  for (guint i = 0; i < list->len; i++)
    if (g_ascii_strcasecmp (g_ptr_array_index (list, i), address) == 0)
      return;
  g_ptr_array_add (list, g_strdup (address));
}

/* Recipients from the options, else To, Cc and Bcc, each once. */
static gboolean
collect_recipients (SubmitData *data, GError **error)
{
  GPtrArray *sources[] = { data->headers->to, data->headers->cc, data->headers->bcc };

  data->recipients = g_ptr_array_new_with_free_func (g_free);
  if (data->options.recipients != NULL)
    {
      for (guint i = 0; i < data->options.recipients->len; i++)
        add_unique (data->recipients, g_ptr_array_index (data->options.recipients, i));
      return TRUE;
    }
  for (gsize s = 0; s < G_N_ELEMENTS (sources); s++)
    for (guint i = 0; sources[s] != NULL && i < sources[s]->len; i++)
      {
        const char *address = g_ptr_array_index (sources[s], i);
        if (!outbox_address_validate (address, FALSE, error))
          return FALSE;
        add_unique (data->recipients, address);
      }
  if (data->recipients->len == 0)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_MESSAGE,
                   "The message has no recipients: give them as arguments or in To, Cc or Bcc");
      return FALSE;
    }
  if (data->recipients->len > OUTBOX_MESSAGE_MAX_RECIPIENTS)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_MESSAGE,
                   "The message has %u recipients; at most %d per message",
                   data->recipients->len, OUTBOX_MESSAGE_MAX_RECIPIENTS);
      return FALSE;
    }
  return TRUE;
}

static gboolean
any_non_ascii (SubmitData *data)
{
  if (!outbox_address_is_ascii (data->from))
    return TRUE;
  for (guint i = 0; i < data->recipients->len; i++)
    if (!outbox_address_is_ascii (g_ptr_array_index (data->recipients, i)))
      return TRUE;
  return FALSE;
}

static OutboxSpoolState
initial_state (const SubmitOptions *options, gint64 send_at, gint64 now)
{
  if (options->hold)
    return OUTBOX_SPOOL_STATE_HELD;
  if (send_at > now)
    return OUTBOX_SPOOL_STATE_SCHEDULED;
  return OUTBOX_SPOOL_STATE_QUEUED;
}

/* When the message goes.  A delay (the option's, else the account's
 * send-delay when the call gives neither send-at nor hold) makes it
 * scheduled for now + delay, so that Cancel undoes it meanwhile.  Hold wins
 * over a delay: a held message goes when it is released. */
static gint64
choose_send_at (const SubmitData *data, gint64 now)
{
  const SubmitOptions *options = &data->options;
  gint64 delay = options->delay;

  if (options->hold)
    return options->send_at;
  if (options->send_at_given)
    return options->send_at;
  if (delay < 0)
    delay = data->account->send_delay;
  return delay > 0 ? now + delay : 0;
}

static OutboxSpoolRecord *
build_record (SubmitData *data, const OutboxMessageWritten *written)
{
  OutboxSpoolRecord *record = outbox_spool_record_new ();
  gboolean checksum_ok;

  record->id = g_strdup (outbox_spool_draft_get_id (data->draft));
  record->account = g_strdup (data->account->name);
  record->from = g_strdup (data->from);
  for (guint i = 0; i < data->recipients->len; i++)
    outbox_spool_record_add_recipient (record, g_ptr_array_index (data->recipients, i));
  record->created = g_get_real_time () / G_USEC_PER_SEC;
  record->send_at = choose_send_at (data, record->created);
  record->state = initial_state (&data->options, record->send_at, record->created);
  record->size = written->size;
  /* The import made the hex digits itself. */
  checksum_ok = outbox_spool_sha256_from_hex (written->sha256, record->sha256);
  g_assert (checksum_ok);
  record->message_id = g_strdup (written->message_id);
  record->subject = g_strdup (data->headers->subject);
  record->eightbit = written->eightbit;
  record->smtputf8 = any_non_ascii (data);
  record->save_to_sent = data->options.save_to_sent;
  record->origin = g_strdup (data->origin);
  /* The message records what it asks: the account's dsn-notify as it is
   * now, when the call gives none. */
  record->dsn_notify = data->options.notify != OUTBOX_DSN_NOTIFY_DEFAULT ? data->options.notify
                                                                          : data->account->dsn_notify;
  record->dsn_ret = data->options.ret;
  record->dsn_envid = g_strdup (data->options.envid);
  record->dsn_required = (gint8) data->options.dsn_required;
  return record;
}

static void
return_import_error (GTask *task, GError *error)
{
  if (error->domain == OUTBOX_ERROR)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_new_error (task, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                           "Could not queue the message: %s", error->message);
  g_error_free (error);
}

static void
commit_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SubmitData *data = g_task_get_task_data (task);
  OutboxSpoolRecord *record = data->record;
  GError *error = NULL;

  if (!outbox_spool_draft_commit_finish (data->draft, result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_info ("Queued %s for %u recipient(s) through account %s (%" G_GUINT64_FORMAT " octets)",
          record->id, record->n_recipients, record->account, record->size);
  outbox_queue_add (data->queue, g_steal_pointer (&data->record));
  g_task_return_pointer (task, g_strdup (outbox_spool_draft_get_id (data->draft)), g_free);
}

static void
write_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SubmitData *data = g_task_get_task_data (task);
  g_autoptr (OutboxMessageWritten) written = NULL;
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;

  written = outbox_message_import_write_finish (data->import, result, &error);
  if (written == NULL)
    {
      return_import_error (task, error);
      return;
    }
  /* Acknowledged only once on disk, in one flush with whatever else is
   * being committed meanwhile. */
  data->record = build_record (data, written);
  outbox_spool_draft_commit_async (data->draft, data->record, cancellable, commit_done,
                                   g_steal_pointer (&task));
}

static void
read_headers_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  SubmitData *data = g_task_get_task_data (task);
  const OutboxAccountConfig *account;
  GCancellable *cancellable;
  OutboxMessageWriteFlags flags = OUTBOX_MESSAGE_WRITE_NONE;
  const char *domain;
  GError *error = NULL;

  data->headers = outbox_message_import_read_headers_finish (data->import, result, &error);
  if (data->headers == NULL)
    {
      return_import_error (task, error);
      return;
    }
  account = choose_account (data, &error);
  if (account == NULL || !collect_recipients (data, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  data->account = outbox_account_config_copy (account);
  data->from = g_strdup (data->options.from ? data->options.from : account->from);
  if (data->options.recipients == NULL)
    flags |= OUTBOX_MESSAGE_WRITE_REMOVE_BCC;
  domain = strrchr (account->from, '@') + 1;
  cancellable = g_task_get_cancellable (task);
  outbox_message_import_write_async (data->import, flags, account->from, domain, cancellable,
                                     write_done, g_steal_pointer (&task));
}

void
outbox_submit_async (OutboxQueue *queue,
                     OutboxAccountStore *accounts,
                     GInputStream *in,
                     GVariant *options,
                     GCancellable *cancellable,
                     GAsyncReadyCallback callback,
                     gpointer user_data)
{
  outbox_submit_with_origin_async (queue, accounts, in, options, NULL, cancellable, callback,
                                   user_data);
}

void
outbox_submit_with_origin_async (OutboxQueue *queue,
                                 OutboxAccountStore *accounts,
                                 GInputStream *in,
                                 GVariant *options,
                                 const char *origin,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  SubmitData *data = g_new0 (SubmitData, 1);
  GError *error = NULL;

  g_task_set_source_tag (task, outbox_submit_with_origin_async);
  g_task_set_task_data (task, data, (GDestroyNotify) submit_data_free);
  data->queue = g_object_ref (queue);
  data->accounts = accounts;
  data->origin = g_strdup (origin);

  if (!parse_options (options, &data->options, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  data->draft = outbox_spool_draft_new (outbox_queue_get_spool (queue), &error);
  if (data->draft == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  data->import = outbox_message_import_new (in, outbox_spool_draft_get_stream (data->draft));
  outbox_message_import_read_headers_async (data->import, cancellable, read_headers_done,
                                            g_steal_pointer (&task));
}

char *
outbox_submit_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
