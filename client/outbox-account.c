/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/**
 * OutboxAccount:
 *
 * A mail account outboxd sends through.  Its properties change in place as
 * the daemon reports them: #OutboxAccount:needs-attention turns true when
 * the user must do something (store a password, renew an authorization,
 * look at a linked account) before the account's messages can go, and
 * #OutboxAccount:state-message says what.
 */
struct _OutboxAccount
{
  GObject parent_instance;

  OutboxDbusAccounts *accounts;
  char *name;
  char *address;
  char *smtp_url;
  gboolean is_default;
  OutboxAccountState state;
  char *state_message;
  GDateTime *next_attempt;
  GVariant *settings;
};

G_DEFINE_FINAL_TYPE (OutboxAccount, outbox_account, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_NAME,
  PROP_ADDRESS,
  PROP_SMTP_URL,
  PROP_IS_DEFAULT,
  PROP_STATE,
  PROP_STATE_MESSAGE,
  PROP_NEEDS_ATTENTION,
  PROP_NEXT_ATTEMPT,
  PROP_SETTINGS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* Test logs in to every server of the account, each with its timeouts. */
#define TEST_TIMEOUT_MS (10 * 60 * 1000)

static void
outbox_account_finalize (GObject *object)
{
  OutboxAccount *self = OUTBOX_ACCOUNT (object);

  g_clear_object (&self->accounts);
  g_free (self->name);
  g_free (self->address);
  g_free (self->smtp_url);
  g_free (self->state_message);
  g_clear_pointer (&self->next_attempt, g_date_time_unref);
  g_clear_pointer (&self->settings, g_variant_unref);
  G_OBJECT_CLASS (outbox_account_parent_class)->finalize (object);
}

static void
outbox_account_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  OutboxAccount *self = OUTBOX_ACCOUNT (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_ADDRESS:
      g_value_set_string (value, self->address);
      break;
    case PROP_SMTP_URL:
      g_value_set_string (value, self->smtp_url);
      break;
    case PROP_IS_DEFAULT:
      g_value_set_boolean (value, self->is_default);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_STATE_MESSAGE:
      g_value_set_string (value, self->state_message);
      break;
    case PROP_NEEDS_ATTENTION:
      g_value_set_boolean (value, outbox_account_get_needs_attention (self));
      break;
    case PROP_NEXT_ATTEMPT:
      g_value_set_boxed (value, self->next_attempt);
      break;
    case PROP_SETTINGS:
      g_value_set_variant (value, self->settings);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_account_class_init (OutboxAccountClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = outbox_account_finalize;
  object_class->get_property = outbox_account_get_property;

  (void) outbox_client_error_quark ();

  /**
   * OutboxAccount:name:
   *
   * The account's name, as `outbox account list` shows it.
   */
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, flags);
  /**
   * OutboxAccount:address:
   *
   * The account's From address.
   */
  properties[PROP_ADDRESS] = g_param_spec_string ("address", NULL, NULL, NULL, flags);
  /**
   * OutboxAccount:smtp-url:
   *
   * The submission server, such as smtps://user@host.
   */
  properties[PROP_SMTP_URL] = g_param_spec_string ("smtp-url", NULL, NULL, NULL, flags);
  /**
   * OutboxAccount:is-default:
   *
   * Whether messages whose From matches no account go through this one.
   */
  properties[PROP_IS_DEFAULT] = g_param_spec_boolean ("is-default", NULL, NULL, FALSE, flags);
  /**
   * OutboxAccount:state:
   *
   * Whether the account's messages can go.
   */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, OUTBOX_TYPE_ACCOUNT_STATE,
                                              OUTBOX_ACCOUNT_STATE_UNKNOWN, flags);
  /**
   * OutboxAccount:state-message:
   *
   * A sentence saying what is wrong and what to do, when the state is not
   * %OUTBOX_ACCOUNT_STATE_OK.
   */
  properties[PROP_STATE_MESSAGE] = g_param_spec_string ("state-message", NULL, NULL, NULL, flags);
  /**
   * OutboxAccount:needs-attention:
   *
   * Whether the account's mail waits for the user: a password to store,
   * an authorization to renew, or a linked account to look at (the
   * #OutboxAccount:state-message says which).  A failing server is not
   * the user's to fix and does not count.
   */
  properties[PROP_NEEDS_ATTENTION] = g_param_spec_boolean ("needs-attention", NULL, NULL, FALSE, flags);
  /**
   * OutboxAccount:next-attempt:
   *
   * While the account is failing, when its server is tried again.
   */
  properties[PROP_NEXT_ATTEMPT] = g_param_spec_boxed ("next-attempt", NULL, NULL, G_TYPE_DATE_TIME, flags);
  /**
   * OutboxAccount:settings:
   *
   * The whole settings dictionary outboxd last gave (see the Accounts
   * interface); it never holds a secret.
   */
  properties[PROP_SETTINGS] = g_param_spec_variant ("settings", NULL, NULL, G_VARIANT_TYPE_VARDICT,
                                                    NULL, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
outbox_account_init (OutboxAccount *self)
{
}

static void
update_string (OutboxAccount *self, char **field, GVariant *settings, const char *key, guint prop)
{
  if (_outbox_take_string (field, settings, key))
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

/* @state: (nullable) the state from AccountChanged, which wins over the
 * dictionary's ("removed" is in no dictionary). */
void
_outbox_account_update (OutboxAccount *self, const char *state, GVariant *settings)
{
  gboolean needed = outbox_account_get_needs_attention (self);
  OutboxAccountState new_state;
  gboolean is_default = FALSE;

  if (state == NULL)
    g_variant_lookup (settings, "state", "&s", &state);

  g_object_freeze_notify (G_OBJECT (self));

  if (g_strcmp0 (state, "removed") != 0)
    {
      update_string (self, &self->address, settings, "from", PROP_ADDRESS);
      update_string (self, &self->smtp_url, settings, "smtp", PROP_SMTP_URL);
      update_string (self, &self->state_message, settings, "state-message", PROP_STATE_MESSAGE);
      g_variant_lookup (settings, "default", "b", &is_default);
      if (is_default != self->is_default)
        {
          self->is_default = is_default;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_IS_DEFAULT]);
        }
      if (_outbox_take_time (&self->next_attempt, settings, "next-attempt"))
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NEXT_ATTEMPT]);
      if (self->settings == NULL || !g_variant_equal (self->settings, settings))
        {
          g_clear_pointer (&self->settings, g_variant_unref);
          self->settings = g_variant_ref_sink (settings);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SETTINGS]);
        }
    }

  new_state = _outbox_enum_from_nick (OUTBOX_TYPE_ACCOUNT_STATE, state, OUTBOX_ACCOUNT_STATE_UNKNOWN);
  if (new_state != self->state)
    {
      self->state = new_state;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }
  if (needed != outbox_account_get_needs_attention (self))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_NEEDS_ATTENTION]);

  g_object_thaw_notify (G_OBJECT (self));
}

OutboxAccount *
_outbox_account_new (OutboxDbusAccounts *accounts, const char *name, const char *state, GVariant *settings)
{
  OutboxAccount *self = g_object_new (OUTBOX_TYPE_ACCOUNT, NULL);

  self->accounts = g_object_ref (accounts);
  self->name = g_strdup (name);
  _outbox_account_update (self, state, settings);
  return self;
}

/**
 * outbox_account_get_name:
 *
 * Returns: the #OutboxAccount:name
 */
const char *
outbox_account_get_name (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return self->name;
}

/**
 * outbox_account_get_address:
 *
 * Returns: (nullable): the #OutboxAccount:address
 */
const char *
outbox_account_get_address (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return self->address;
}

/**
 * outbox_account_get_smtp_url:
 *
 * Returns: (nullable): the #OutboxAccount:smtp-url
 */
const char *
outbox_account_get_smtp_url (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return self->smtp_url;
}

/**
 * outbox_account_get_is_default:
 *
 * Returns: the #OutboxAccount:is-default
 */
gboolean
outbox_account_get_is_default (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), FALSE);
  return self->is_default;
}

/**
 * outbox_account_get_state:
 *
 * Returns: the #OutboxAccount:state
 */
OutboxAccountState
outbox_account_get_state (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), OUTBOX_ACCOUNT_STATE_UNKNOWN);
  return self->state;
}

/**
 * outbox_account_get_state_message:
 *
 * Returns: (nullable): the #OutboxAccount:state-message
 */
const char *
outbox_account_get_state_message (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return self->state_message;
}

/**
 * outbox_account_get_needs_attention:
 *
 * Returns: the #OutboxAccount:needs-attention
 */
gboolean
outbox_account_get_needs_attention (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), FALSE);
  return self->state == OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD ||
         self->state == OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION ||
         self->state == OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION;
}

/**
 * outbox_account_get_next_attempt:
 *
 * Returns: (nullable) (transfer none): the #OutboxAccount:next-attempt
 */
GDateTime *
outbox_account_get_next_attempt (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return self->next_attempt;
}

/**
 * outbox_account_get_settings:
 *
 * Returns: (transfer none): the #OutboxAccount:settings
 */
GVariant *
outbox_account_get_settings (OutboxAccount *self)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return self->settings;
}

/**
 * outbox_account_set_password_async:
 * @service: "smtp", "imap" or "pop3"
 * @secret: the password, which outboxd stores in the Secret Service
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the password is stored
 * @user_data: data for @callback
 *
 * Stores a password for one of the account's servers; messages that
 * waited for it go again.
 */
void
outbox_account_set_password_async (OutboxAccount *self, const char *service, const char *secret,
                                   GCancellable *cancellable, GAsyncReadyCallback callback,
                                   gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_ACCOUNT (self));
  g_return_if_fail (service != NULL && secret != NULL);
  _outbox_call (self->accounts, "SetPassword", g_variant_new ("(sss)", self->name, service, secret),
                OUTBOX_CALL_TIMEOUT_MS,
                _outbox_task_new (self, outbox_account_set_password_async, cancellable, callback, user_data));
}

/**
 * outbox_account_set_password_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether the password was stored
 */
gboolean
outbox_account_set_password_finish (OutboxAccount *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_boolean (self, result, outbox_account_set_password_async, error);
}

/**
 * outbox_account_set_password_sync:
 * @service: "smtp", "imap" or "pop3"
 * @secret: the password
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Stores a password for one of the account's servers, blocking.
 *
 * Returns: whether the password was stored
 */
gboolean
outbox_account_set_password_sync (OutboxAccount *self, const char *service, const char *secret,
                                  GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), FALSE);
  return _outbox_call_sync_boolean (self->accounts, "SetPassword",
                                    g_variant_new ("(sss)", self->name, service, secret),
                                    OUTBOX_CALL_TIMEOUT_MS, cancellable, error);
}

/**
 * outbox_account_test_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the results
 * @user_data: data for @callback
 *
 * Logs in to every server of the account and reports each (see the
 * Accounts interface's Test); no mail is sent.
 */
void
outbox_account_test_async (OutboxAccount *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_ACCOUNT (self));
  _outbox_call (self->accounts, "Test", g_variant_new ("(s)", self->name), TEST_TIMEOUT_MS,
                _outbox_task_new (self, outbox_account_test_async, cancellable, callback, user_data));
}

/**
 * outbox_account_test_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: (transfer full): an a{sv} dictionary with one dictionary per
 *   server under "smtp", "imap" and "pop3"
 */
GVariant *
outbox_account_test_finish (OutboxAccount *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_pointer (self, result, outbox_account_test_async, error);
}

/**
 * outbox_account_test_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Logs in to every server of the account, blocking.
 *
 * Returns: (transfer full): the results, as outbox_account_test_finish()
 */
GVariant *
outbox_account_test_sync (OutboxAccount *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), NULL);
  return _outbox_call_sync (self->accounts, "Test", g_variant_new ("(s)", self->name), TEST_TIMEOUT_MS,
                            cancellable, error);
}

/**
 * outbox_account_update_async:
 * @settings: an a{sv} dictionary of the settings to change (see the
 *   Accounts interface; an empty string removes an optional one)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the settings are stored
 * @user_data: data for @callback
 *
 * Changes some of the account's settings.  The object's properties follow
 * once outboxd tells the change.
 */
void
outbox_account_update_async (OutboxAccount *self, GVariant *settings, GCancellable *cancellable,
                             GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_ACCOUNT (self));
  g_return_if_fail (g_variant_is_of_type (settings, G_VARIANT_TYPE_VARDICT));
  _outbox_call (self->accounts, "Update", g_variant_new ("(s@a{sv})", self->name, settings),
                OUTBOX_CALL_TIMEOUT_MS,
                _outbox_task_new (self, outbox_account_update_async, cancellable, callback, user_data));
}

/**
 * outbox_account_update_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *   (%OUTBOX_CLIENT_ERROR_INVALID_ACCOUNT for a setting outboxd refuses)
 *
 * Returns: whether the settings were stored
 */
gboolean
outbox_account_update_finish (OutboxAccount *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_boolean (self, result, outbox_account_update_async, error);
}

/**
 * outbox_account_update_sync:
 * @settings: an a{sv} dictionary of the settings to change
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Changes some of the account's settings, blocking.
 *
 * Returns: whether the settings were stored
 */
gboolean
outbox_account_update_sync (OutboxAccount *self, GVariant *settings, GCancellable *cancellable,
                            GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), FALSE);
  g_return_val_if_fail (g_variant_is_of_type (settings, G_VARIANT_TYPE_VARDICT), FALSE);
  return _outbox_call_sync_boolean (self->accounts, "Update", g_variant_new ("(s@a{sv})", self->name, settings),
                                    OUTBOX_CALL_TIMEOUT_MS, cancellable, error);
}

/**
 * outbox_account_remove_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the account is removed
 * @user_data: data for @callback
 *
 * Removes the account and its passwords; refused with
 * %OUTBOX_CLIENT_ERROR_INVALID_STATE while messages for it are queued.
 */
void
outbox_account_remove_async (OutboxAccount *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_ACCOUNT (self));
  _outbox_call (self->accounts, "Remove", g_variant_new ("(s)", self->name), OUTBOX_CALL_TIMEOUT_MS,
                _outbox_task_new (self, outbox_account_remove_async, cancellable, callback, user_data));
}

/**
 * outbox_account_remove_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether the account was removed
 */
gboolean
outbox_account_remove_finish (OutboxAccount *self, GAsyncResult *result, GError **error)
{
  return _outbox_task_finish_boolean (self, result, outbox_account_remove_async, error);
}

/**
 * outbox_account_remove_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Removes the account and its passwords, blocking.
 *
 * Returns: whether the account was removed
 */
gboolean
outbox_account_remove_sync (OutboxAccount *self, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_ACCOUNT (self), FALSE);
  return _outbox_call_sync_boolean (self->accounts, "Remove", g_variant_new ("(s)", self->name),
                                    OUTBOX_CALL_TIMEOUT_MS, cancellable, error);
}
