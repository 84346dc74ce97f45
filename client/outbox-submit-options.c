/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/**
 * OutboxSubmitOptions:
 *
 * How a message is to be sent: the Submit options of outboxd's Queue
 * interface.  Everything left unset takes the account's setting, as
 * `outbox send` without options does.
 *
 * ```python
 * options = Outbox.SubmitOptions(account="work", delay=10)
 * client.submit_bytes_sync(GLib.Bytes(message), options, None)
 * ```
 */
struct _OutboxSubmitOptions
{
  GObject parent_instance;

  char *account;
  char *sender;
  GStrv recipients;
  GDateTime *send_at;
  guint delay;
  gboolean delay_set;
  gboolean hold;
  gboolean save_to_sent;
  gboolean save_to_sent_set;
  GStrv notify;
  char *ret;
  char *envid;
  gboolean dsn_required;
  gboolean dsn_required_set;
};

G_DEFINE_FINAL_TYPE (OutboxSubmitOptions, outbox_submit_options, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_ACCOUNT,
  PROP_SENDER,
  PROP_RECIPIENTS,
  PROP_SEND_AT,
  PROP_DELAY,
  PROP_HOLD,
  PROP_SAVE_TO_SENT,
  PROP_NOTIFY,
  PROP_RET,
  PROP_ENVID,
  PROP_DSN_REQUIRED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
outbox_submit_options_finalize (GObject *object)
{
  OutboxSubmitOptions *self = OUTBOX_SUBMIT_OPTIONS (object);

  g_free (self->account);
  g_free (self->sender);
  g_strfreev (self->recipients);
  g_clear_pointer (&self->send_at, g_date_time_unref);
  g_strfreev (self->notify);
  g_free (self->ret);
  g_free (self->envid);
  G_OBJECT_CLASS (outbox_submit_options_parent_class)->finalize (object);
}

static void
outbox_submit_options_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  OutboxSubmitOptions *self = OUTBOX_SUBMIT_OPTIONS (object);

  switch (prop_id)
    {
    case PROP_ACCOUNT:
      g_value_set_string (value, self->account);
      break;
    case PROP_SENDER:
      g_value_set_string (value, self->sender);
      break;
    case PROP_RECIPIENTS:
      g_value_set_boxed (value, self->recipients);
      break;
    case PROP_SEND_AT:
      g_value_set_boxed (value, self->send_at);
      break;
    case PROP_DELAY:
      g_value_set_uint (value, self->delay);
      break;
    case PROP_HOLD:
      g_value_set_boolean (value, self->hold);
      break;
    case PROP_SAVE_TO_SENT:
      g_value_set_boolean (value, self->save_to_sent);
      break;
    case PROP_NOTIFY:
      g_value_set_boxed (value, self->notify);
      break;
    case PROP_RET:
      g_value_set_string (value, self->ret);
      break;
    case PROP_ENVID:
      g_value_set_string (value, self->envid);
      break;
    case PROP_DSN_REQUIRED:
      g_value_set_boolean (value, self->dsn_required);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_submit_options_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  OutboxSubmitOptions *self = OUTBOX_SUBMIT_OPTIONS (object);

  switch (prop_id)
    {
    case PROP_ACCOUNT:
      outbox_submit_options_set_account (self, g_value_get_string (value));
      break;
    case PROP_SENDER:
      outbox_submit_options_set_sender (self, g_value_get_string (value));
      break;
    case PROP_RECIPIENTS:
      outbox_submit_options_set_recipients (self, g_value_get_boxed (value));
      break;
    case PROP_SEND_AT:
      outbox_submit_options_set_send_at (self, g_value_get_boxed (value));
      break;
    case PROP_DELAY:
      outbox_submit_options_set_delay (self, g_value_get_uint (value));
      break;
    case PROP_HOLD:
      outbox_submit_options_set_hold (self, g_value_get_boolean (value));
      break;
    case PROP_SAVE_TO_SENT:
      outbox_submit_options_set_save_to_sent (self, g_value_get_boolean (value));
      break;
    case PROP_NOTIFY:
      outbox_submit_options_set_notify (self, g_value_get_boxed (value));
      break;
    case PROP_RET:
      outbox_submit_options_set_ret (self, g_value_get_string (value));
      break;
    case PROP_ENVID:
      outbox_submit_options_set_envid (self, g_value_get_string (value));
      break;
    case PROP_DSN_REQUIRED:
      outbox_submit_options_set_dsn_required (self, g_value_get_boolean (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_submit_options_class_init (OutboxSubmitOptionsClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = outbox_submit_options_finalize;
  object_class->get_property = outbox_submit_options_get_property;
  object_class->set_property = outbox_submit_options_set_property;

  /**
   * OutboxSubmitOptions:account:
   *
   * The account to send through; %NULL: the account whose address or
   * alias is the message's From, else the default account.
   */
  properties[PROP_ACCOUNT] = g_param_spec_string ("account", NULL, NULL, NULL, flags);
  /**
   * OutboxSubmitOptions:sender:
   *
   * The envelope sender (MAIL FROM); %NULL: the account's address.
   */
  properties[PROP_SENDER] = g_param_spec_string ("sender", NULL, NULL, NULL, flags);
  /**
   * OutboxSubmitOptions:recipients:
   *
   * The envelope recipients; %NULL: the message's To, Cc and Bcc, and Bcc
   * is then removed from what is sent.
   */
  properties[PROP_RECIPIENTS] = g_param_spec_boxed ("recipients", NULL, NULL, G_TYPE_STRV, flags);
  /**
   * OutboxSubmitOptions:send-at:
   *
   * Send later: the message waits as scheduled until then.
   */
  properties[PROP_SEND_AT] = g_param_spec_boxed ("send-at", NULL, NULL, G_TYPE_DATE_TIME, flags);
  /**
   * OutboxSubmitOptions:delay:
   *
   * Undo send: seconds (at most 86400) the message waits as scheduled so
   * that cancelling it within them undoes it.  Not with
   * #OutboxSubmitOptions:send-at.  Once set, 0 sends at once even where
   * the account has a send-delay; unset, the account's send-delay applies.
   */
  properties[PROP_DELAY] = g_param_spec_uint ("delay", NULL, NULL, 0, G_MAXUINT, 0, flags);
  /**
   * OutboxSubmitOptions:hold:
   *
   * Queue the message held: it goes once released.
   */
  properties[PROP_HOLD] = g_param_spec_boolean ("hold", NULL, NULL, FALSE, flags);
  /**
   * OutboxSubmitOptions:save-to-sent:
   *
   * Whether a copy goes to the account's IMAP Sent folder; unset, the
   * account decides (a copy where it has an IMAP server).
   */
  properties[PROP_SAVE_TO_SENT] = g_param_spec_boolean ("save-to-sent", NULL, NULL, FALSE, flags);
  /**
   * OutboxSubmitOptions:notify:
   *
   * Delivery status notifications (RFC 3461) to ask for: "never", or any
   * of "success", "failure" and "delay"; %NULL: the account's dsn-notify.
   */
  properties[PROP_NOTIFY] = g_param_spec_boxed ("notify", NULL, NULL, G_TYPE_STRV, flags);
  /**
   * OutboxSubmitOptions:ret:
   *
   * What a notification returns of the message: "full" or "hdrs".
   */
  properties[PROP_RET] = g_param_spec_string ("ret", NULL, NULL, NULL, flags);
  /**
   * OutboxSubmitOptions:envid:
   *
   * An envelope ID for the notifications to carry.
   */
  properties[PROP_ENVID] = g_param_spec_string ("envid", NULL, NULL, NULL, flags);
  /**
   * OutboxSubmitOptions:dsn-required:
   *
   * Where a server does not offer DSN, wait instead of sending without;
   * unset, the account's dsn-required decides.
   */
  properties[PROP_DSN_REQUIRED] = g_param_spec_boolean ("dsn-required", NULL, NULL, FALSE, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
outbox_submit_options_init (OutboxSubmitOptions *self)
{
}

/**
 * outbox_submit_options_new:
 *
 * Returns: (transfer full): options with nothing set: the account's
 *   settings apply.
 */
OutboxSubmitOptions *
outbox_submit_options_new (void)
{
  return g_object_new (OUTBOX_TYPE_SUBMIT_OPTIONS, NULL);
}

static void
set_string (OutboxSubmitOptions *self, char **field, const char *value, guint prop)
{
  if (value != NULL && *value == '\0')
    value = NULL;
  if (g_strcmp0 (*field, value) == 0)
    return;
  g_free (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static void
set_strv (OutboxSubmitOptions *self, GStrv *field, const char *const *value, guint prop)
{
  if (*field == NULL && value == NULL)
    return;
  if (*field != NULL && value != NULL && g_strv_equal ((const char *const *) *field, value))
    return;
  g_strfreev (*field);
  *field = g_strdupv ((char **) value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static void
set_flag (OutboxSubmitOptions *self, gboolean *field, gboolean *is_set, gboolean value, guint prop)
{
  gboolean changed = *field != !!value;

  *field = !!value;
  if (is_set != NULL)
    *is_set = TRUE;
  if (changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

/**
 * outbox_submit_options_get_account:
 *
 * Returns: (nullable): the #OutboxSubmitOptions:account
 */
const char *
outbox_submit_options_get_account (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return self->account;
}

/**
 * outbox_submit_options_set_account:
 * @account: (nullable): an account name
 */
void
outbox_submit_options_set_account (OutboxSubmitOptions *self, const char *account)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_string (self, &self->account, account, PROP_ACCOUNT);
}

/**
 * outbox_submit_options_get_sender:
 *
 * Returns: (nullable): the #OutboxSubmitOptions:sender
 */
const char *
outbox_submit_options_get_sender (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return self->sender;
}

/**
 * outbox_submit_options_set_sender:
 * @sender: (nullable): the envelope sender
 */
void
outbox_submit_options_set_sender (OutboxSubmitOptions *self, const char *sender)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_string (self, &self->sender, sender, PROP_SENDER);
}

/**
 * outbox_submit_options_get_recipients:
 *
 * Returns: (nullable) (array zero-terminated=1): the envelope recipients
 */
const char *const *
outbox_submit_options_get_recipients (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return (const char *const *) self->recipients;
}

/**
 * outbox_submit_options_set_recipients:
 * @recipients: (nullable) (array zero-terminated=1): envelope recipients
 */
void
outbox_submit_options_set_recipients (OutboxSubmitOptions *self, const char *const *recipients)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_strv (self, &self->recipients, recipients, PROP_RECIPIENTS);
}

/**
 * outbox_submit_options_get_send_at:
 *
 * Returns: (nullable) (transfer none): the #OutboxSubmitOptions:send-at
 */
GDateTime *
outbox_submit_options_get_send_at (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return self->send_at;
}

/**
 * outbox_submit_options_set_send_at:
 * @send_at: (nullable): when to send
 */
void
outbox_submit_options_set_send_at (OutboxSubmitOptions *self, GDateTime *send_at)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  if (self->send_at == send_at ||
      (self->send_at != NULL && send_at != NULL && g_date_time_equal (self->send_at, send_at)))
    return;
  g_clear_pointer (&self->send_at, g_date_time_unref);
  self->send_at = send_at != NULL ? g_date_time_ref (send_at) : NULL;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SEND_AT]);
}

/**
 * outbox_submit_options_get_delay:
 *
 * Returns: the #OutboxSubmitOptions:delay in seconds
 */
guint
outbox_submit_options_get_delay (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), 0);
  return self->delay;
}

/**
 * outbox_submit_options_set_delay:
 * @seconds: the undo window; 0 sends at once
 */
void
outbox_submit_options_set_delay (OutboxSubmitOptions *self, guint seconds)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  self->delay_set = TRUE;
  if (self->delay == seconds)
    return;
  self->delay = seconds;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DELAY]);
}

/**
 * outbox_submit_options_get_hold:
 *
 * Returns: whether the message is queued held
 */
gboolean
outbox_submit_options_get_hold (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), FALSE);
  return self->hold;
}

/**
 * outbox_submit_options_set_hold:
 * @hold: whether to queue the message held
 */
void
outbox_submit_options_set_hold (OutboxSubmitOptions *self, gboolean hold)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_flag (self, &self->hold, NULL, hold, PROP_HOLD);
}

/**
 * outbox_submit_options_get_save_to_sent:
 *
 * Returns: the #OutboxSubmitOptions:save-to-sent
 */
gboolean
outbox_submit_options_get_save_to_sent (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), FALSE);
  return self->save_to_sent;
}

/**
 * outbox_submit_options_set_save_to_sent:
 * @save_to_sent: whether a copy goes to the Sent folder
 */
void
outbox_submit_options_set_save_to_sent (OutboxSubmitOptions *self, gboolean save_to_sent)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_flag (self, &self->save_to_sent, &self->save_to_sent_set, save_to_sent, PROP_SAVE_TO_SENT);
}

/**
 * outbox_submit_options_get_notify:
 *
 * Returns: (nullable) (array zero-terminated=1): the #OutboxSubmitOptions:notify
 */
const char *const *
outbox_submit_options_get_notify (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return (const char *const *) self->notify;
}

/**
 * outbox_submit_options_set_notify:
 * @notify: (nullable) (array zero-terminated=1): "never", or any of
 *   "success", "failure" and "delay"
 */
void
outbox_submit_options_set_notify (OutboxSubmitOptions *self, const char *const *notify)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_strv (self, &self->notify, notify, PROP_NOTIFY);
}

/**
 * outbox_submit_options_get_ret:
 *
 * Returns: (nullable): the #OutboxSubmitOptions:ret
 */
const char *
outbox_submit_options_get_ret (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return self->ret;
}

/**
 * outbox_submit_options_set_ret:
 * @ret: (nullable): "full" or "hdrs"
 */
void
outbox_submit_options_set_ret (OutboxSubmitOptions *self, const char *ret)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_string (self, &self->ret, ret, PROP_RET);
}

/**
 * outbox_submit_options_get_envid:
 *
 * Returns: (nullable): the #OutboxSubmitOptions:envid
 */
const char *
outbox_submit_options_get_envid (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), NULL);
  return self->envid;
}

/**
 * outbox_submit_options_set_envid:
 * @envid: (nullable): an envelope ID
 */
void
outbox_submit_options_set_envid (OutboxSubmitOptions *self, const char *envid)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_string (self, &self->envid, envid, PROP_ENVID);
}

/**
 * outbox_submit_options_get_dsn_required:
 *
 * Returns: the #OutboxSubmitOptions:dsn-required
 */
gboolean
outbox_submit_options_get_dsn_required (OutboxSubmitOptions *self)
{
  g_return_val_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self), FALSE);
  return self->dsn_required;
}

/**
 * outbox_submit_options_set_dsn_required:
 * @dsn_required: whether to wait for a server that offers DSN
 */
void
outbox_submit_options_set_dsn_required (OutboxSubmitOptions *self, gboolean dsn_required)
{
  g_return_if_fail (OUTBOX_IS_SUBMIT_OPTIONS (self));
  set_flag (self, &self->dsn_required, &self->dsn_required_set, dsn_required, PROP_DSN_REQUIRED);
}

/* The Submit options dictionary: only what was set, so that the daemon
 * applies the account's settings to the rest. */
GVariant *
_outbox_submit_options_to_variant (OutboxSubmitOptions *self)
{
  g_auto (GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (self == NULL)
    return g_variant_builder_end (&builder);
  if (self->account != NULL)
    g_variant_builder_add (&builder, "{sv}", "account", g_variant_new_string (self->account));
  if (self->sender != NULL)
    g_variant_builder_add (&builder, "{sv}", "from", g_variant_new_string (self->sender));
  if (self->recipients != NULL)
    g_variant_builder_add (&builder, "{sv}", "recipients",
                           g_variant_new_strv ((const char *const *) self->recipients, -1));
  if (self->send_at != NULL)
    g_variant_builder_add (&builder, "{sv}", "send-at",
                           g_variant_new_int64 (g_date_time_to_unix (self->send_at)));
  if (self->delay_set)
    g_variant_builder_add (&builder, "{sv}", "delay", g_variant_new_uint32 (self->delay));
  if (self->hold)
    g_variant_builder_add (&builder, "{sv}", "hold", g_variant_new_boolean (TRUE));
  if (self->save_to_sent_set)
    g_variant_builder_add (&builder, "{sv}", "save-to-sent", g_variant_new_boolean (self->save_to_sent));
  if (self->notify != NULL)
    g_variant_builder_add (&builder, "{sv}", "notify",
                           g_variant_new_strv ((const char *const *) self->notify, -1));
  if (self->ret != NULL)
    g_variant_builder_add (&builder, "{sv}", "ret", g_variant_new_string (self->ret));
  if (self->envid != NULL)
    g_variant_builder_add (&builder, "{sv}", "envid", g_variant_new_string (self->envid));
  if (self->dsn_required_set)
    g_variant_builder_add (&builder, "{sv}", "dsn-required", g_variant_new_boolean (self->dsn_required));
  return g_variant_builder_end (&builder);
}
