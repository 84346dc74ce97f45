/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/**
 * OutboxMessage:
 *
 * One message in outboxd's queue.  There is one object per message for an
 * #OutboxClient: its properties change in place as the daemon reports the
 * message's progress (so a list row bound to them stays right), and when
 * the message leaves the queue its #OutboxMessage:state becomes
 * %OUTBOX_MESSAGE_STATE_REMOVED.
 */
struct _OutboxMessage
{
  GObject parent_instance;

  OutboxDbusQueue *queue;
  char *id;
  OutboxMessageState state;
  char *account;
  char *sender;
  GStrv recipients;
  char *subject;
  char *message_id;
  char *last_reply;
  GDateTime *created;
  GDateTime *send_at;
  GDateTime *next_attempt;
  guint64 size;
  guint attempts;
  GVariant *details;
};

G_DEFINE_FINAL_TYPE (OutboxMessage, outbox_message, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_ID,
  PROP_STATE,
  PROP_ACCOUNT,
  PROP_SENDER,
  PROP_RECIPIENTS,
  PROP_SUBJECT,
  PROP_MESSAGE_ID,
  PROP_LAST_REPLY,
  PROP_CREATED,
  PROP_SEND_AT,
  PROP_NEXT_ATTEMPT,
  PROP_SIZE,
  PROP_ATTEMPTS,
  PROP_DETAILS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
outbox_message_finalize (GObject *object)
{
  OutboxMessage *self = OUTBOX_MESSAGE (object);

  g_clear_object (&self->queue);
  g_free (self->id);
  g_free (self->account);
  g_free (self->sender);
  g_strfreev (self->recipients);
  g_free (self->subject);
  g_free (self->message_id);
  g_free (self->last_reply);
  g_clear_pointer (&self->created, g_date_time_unref);
  g_clear_pointer (&self->send_at, g_date_time_unref);
  g_clear_pointer (&self->next_attempt, g_date_time_unref);
  g_clear_pointer (&self->details, g_variant_unref);
  G_OBJECT_CLASS (outbox_message_parent_class)->finalize (object);
}

static void
outbox_message_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  OutboxMessage *self = OUTBOX_MESSAGE (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_string (value, self->id);
      break;
    case PROP_STATE:
      g_value_set_enum (value, self->state);
      break;
    case PROP_ACCOUNT:
      g_value_set_string (value, self->account);
      break;
    case PROP_SENDER:
      g_value_set_string (value, self->sender);
      break;
    case PROP_RECIPIENTS:
      g_value_set_boxed (value, self->recipients);
      break;
    case PROP_SUBJECT:
      g_value_set_string (value, self->subject);
      break;
    case PROP_MESSAGE_ID:
      g_value_set_string (value, self->message_id);
      break;
    case PROP_LAST_REPLY:
      g_value_set_string (value, self->last_reply);
      break;
    case PROP_CREATED:
      g_value_set_boxed (value, self->created);
      break;
    case PROP_SEND_AT:
      g_value_set_boxed (value, self->send_at);
      break;
    case PROP_NEXT_ATTEMPT:
      g_value_set_boxed (value, self->next_attempt);
      break;
    case PROP_SIZE:
      g_value_set_uint64 (value, self->size);
      break;
    case PROP_ATTEMPTS:
      g_value_set_uint (value, self->attempts);
      break;
    case PROP_DETAILS:
      g_value_set_variant (value, self->details);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_message_class_init (OutboxMessageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = outbox_message_finalize;
  object_class->get_property = outbox_message_get_property;

  /* Registers the daemon's error names before any reply can carry one. */
  (void) outbox_client_error_quark ();

  /**
   * OutboxMessage:id:
   *
   * The queue id, as `outbox queue` shows it.
   */
  properties[PROP_ID] = g_param_spec_string ("id", NULL, NULL, NULL, flags);
  /**
   * OutboxMessage:state:
   *
   * Where the message is.
   */
  properties[PROP_STATE] = g_param_spec_enum ("state", NULL, NULL, OUTBOX_TYPE_MESSAGE_STATE,
                                              OUTBOX_MESSAGE_STATE_UNKNOWN, flags);
  /**
   * OutboxMessage:account:
   *
   * The account it goes through.
   */
  properties[PROP_ACCOUNT] = g_param_spec_string ("account", NULL, NULL, NULL, flags);
  /**
   * OutboxMessage:sender:
   *
   * The envelope sender.
   */
  properties[PROP_SENDER] = g_param_spec_string ("sender", NULL, NULL, NULL, flags);
  /**
   * OutboxMessage:recipients:
   *
   * The envelope recipients' addresses; the state and last reply of each
   * are in #OutboxMessage:details under "recipients".
   */
  properties[PROP_RECIPIENTS] = g_param_spec_boxed ("recipients", NULL, NULL, G_TYPE_STRV, flags);
  /**
   * OutboxMessage:subject:
   *
   * The Subject header, decoded.
   */
  properties[PROP_SUBJECT] = g_param_spec_string ("subject", NULL, NULL, NULL, flags);
  /**
   * OutboxMessage:message-id:
   *
   * The Message-ID header.
   */
  properties[PROP_MESSAGE_ID] = g_param_spec_string ("message-id", NULL, NULL, NULL, flags);
  /**
   * OutboxMessage:last-reply:
   *
   * The last server reply that mattered, such as why it was deferred.
   */
  properties[PROP_LAST_REPLY] = g_param_spec_string ("last-reply", NULL, NULL, NULL, flags);
  /**
   * OutboxMessage:created:
   *
   * When it was submitted.
   */
  properties[PROP_CREATED] = g_param_spec_boxed ("created", NULL, NULL, G_TYPE_DATE_TIME, flags);
  /**
   * OutboxMessage:send-at:
   *
   * When a scheduled message goes (send later, or the end of an undo
   * window).
   */
  properties[PROP_SEND_AT] = g_param_spec_boxed ("send-at", NULL, NULL, G_TYPE_DATE_TIME, flags);
  /**
   * OutboxMessage:next-attempt:
   *
   * When a deferred message is tried again.
   */
  properties[PROP_NEXT_ATTEMPT] = g_param_spec_boxed ("next-attempt", NULL, NULL, G_TYPE_DATE_TIME, flags);
  /**
   * OutboxMessage:size:
   *
   * Its size in octets.
   */
  properties[PROP_SIZE] = g_param_spec_uint64 ("size", NULL, NULL, 0, G_MAXUINT64, 0, flags);
  /**
   * OutboxMessage:attempts:
   *
   * How many times delivery was tried.
   */
  properties[PROP_ATTEMPTS] = g_param_spec_uint ("attempts", NULL, NULL, 0, G_MAXUINT, 0, flags);
  /**
   * OutboxMessage:details:
   *
   * The whole a{sv} dictionary outboxd last gave for the message (see the
   * Queue interface), for what has no property of its own.
   */
  properties[PROP_DETAILS] = g_param_spec_variant ("details", NULL, NULL, G_VARIANT_TYPE_VARDICT,
                                                   NULL, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
outbox_message_init (OutboxMessage *self)
{
}

static void
update_string (OutboxMessage *self, char **field, GVariant *details, const char *key, guint prop)
{
  if (_outbox_take_string (field, details, key))
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static void
update_time (OutboxMessage *self, GDateTime **field, GVariant *details, const char *key, guint prop)
{
  if (_outbox_take_time (field, details, key))
    g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

static void
update_recipients (OutboxMessage *self, GVariant *details)
{
  g_autoptr (GVariant) list = g_variant_lookup_value (details, "recipients", G_VARIANT_TYPE ("aa{sv}"));
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) addresses = NULL;
  GVariantIter iter;
  GVariant *recipient;

  if (list != NULL)
    {
      g_variant_iter_init (&iter, list);
      while ((recipient = g_variant_iter_next_value (&iter)) != NULL)
        {
          const char *address;

          if (g_variant_lookup (recipient, "address", "&s", &address))
            g_strv_builder_add (builder, address);
          g_variant_unref (recipient);
        }
    }
  addresses = g_strv_builder_end (builder);
  if (self->recipients != NULL && g_strv_equal ((const char *const *) self->recipients,
                                                (const char *const *) addresses))
    return;
  g_strfreev (self->recipients);
  self->recipients = g_steal_pointer (&addresses);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RECIPIENTS]);
}

/* @state: (nullable) the state from MessageChanged, which wins over the
 * dictionary's ("removed" is in no dictionary). */
void
_outbox_message_update (OutboxMessage *self, const char *state, GVariant *details)
{
  OutboxMessageState new_state;
  guint64 size = 0;
  guint32 attempts = 0;

  g_return_if_fail (g_variant_is_of_type (details, G_VARIANT_TYPE_VARDICT));

  if (state == NULL)
    g_variant_lookup (details, "state", "&s", &state);

  g_object_freeze_notify (G_OBJECT (self));

  /* A removal says nothing more of the message: what was known stays. */
  if (g_strcmp0 (state, "removed") != 0)
    {
      update_string (self, &self->account, details, "account", PROP_ACCOUNT);
      update_string (self, &self->sender, details, "from", PROP_SENDER);
      update_string (self, &self->subject, details, "subject", PROP_SUBJECT);
      update_string (self, &self->message_id, details, "message-id", PROP_MESSAGE_ID);
      update_string (self, &self->last_reply, details, "last-reply", PROP_LAST_REPLY);
      update_time (self, &self->created, details, "created", PROP_CREATED);
      update_time (self, &self->send_at, details, "send-at", PROP_SEND_AT);
      update_time (self, &self->next_attempt, details, "next-attempt", PROP_NEXT_ATTEMPT);
      update_recipients (self, details);
      g_variant_lookup (details, "size", "t", &size);
      if (size != self->size)
        {
          self->size = size;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SIZE]);
        }
      g_variant_lookup (details, "attempts", "u", &attempts);
      if (attempts != self->attempts)
        {
          self->attempts = attempts;
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ATTEMPTS]);
        }
      if (self->details == NULL || !g_variant_equal (self->details, details))
        {
          g_clear_pointer (&self->details, g_variant_unref);
          self->details = g_variant_ref_sink (details);
          g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DETAILS]);
        }
    }

  new_state = _outbox_enum_from_nick (OUTBOX_TYPE_MESSAGE_STATE, state, OUTBOX_MESSAGE_STATE_UNKNOWN);
  if (new_state != self->state)
    {
      self->state = new_state;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }

  g_object_thaw_notify (G_OBJECT (self));
}

OutboxMessage *
_outbox_message_new (OutboxDbusQueue *queue, const char *id, const char *state, GVariant *details)
{
  OutboxMessage *self = g_object_new (OUTBOX_TYPE_MESSAGE, NULL);

  self->queue = g_object_ref (queue);
  self->id = g_strdup (id);
  _outbox_message_update (self, state, details);
  return self;
}

gint64
_outbox_message_get_created_unix (OutboxMessage *self)
{
  return self->created != NULL ? g_date_time_to_unix (self->created) : 0;
}

/**
 * outbox_message_get_id:
 *
 * Returns: the #OutboxMessage:id
 */
const char *
outbox_message_get_id (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->id;
}

/**
 * outbox_message_get_state:
 *
 * Returns: the #OutboxMessage:state
 */
OutboxMessageState
outbox_message_get_state (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), OUTBOX_MESSAGE_STATE_UNKNOWN);
  return self->state;
}

/**
 * outbox_message_get_account:
 *
 * Returns: (nullable): the #OutboxMessage:account
 */
const char *
outbox_message_get_account (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->account;
}

/**
 * outbox_message_get_sender:
 *
 * Returns: (nullable): the #OutboxMessage:sender
 */
const char *
outbox_message_get_sender (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->sender;
}

/**
 * outbox_message_get_recipients:
 *
 * Returns: (array zero-terminated=1) (transfer none): the
 *   #OutboxMessage:recipients
 */
const char *const *
outbox_message_get_recipients (OutboxMessage *self)
{
  static const char *const none[] = { NULL };

  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->recipients != NULL ? (const char *const *) self->recipients : none;
}

/**
 * outbox_message_get_subject:
 *
 * Returns: (nullable): the #OutboxMessage:subject
 */
const char *
outbox_message_get_subject (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->subject;
}

/**
 * outbox_message_get_message_id:
 *
 * Returns: (nullable): the #OutboxMessage:message-id
 */
const char *
outbox_message_get_message_id (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->message_id;
}

/**
 * outbox_message_get_last_reply:
 *
 * Returns: (nullable): the #OutboxMessage:last-reply
 */
const char *
outbox_message_get_last_reply (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->last_reply;
}

/**
 * outbox_message_get_created:
 *
 * Returns: (nullable) (transfer none): the #OutboxMessage:created
 */
GDateTime *
outbox_message_get_created (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->created;
}

/**
 * outbox_message_get_send_at:
 *
 * Returns: (nullable) (transfer none): the #OutboxMessage:send-at
 */
GDateTime *
outbox_message_get_send_at (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->send_at;
}

/**
 * outbox_message_get_next_attempt:
 *
 * Returns: (nullable) (transfer none): the #OutboxMessage:next-attempt
 */
GDateTime *
outbox_message_get_next_attempt (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->next_attempt;
}

/**
 * outbox_message_get_size:
 *
 * Returns: the #OutboxMessage:size
 */
guint64
outbox_message_get_size (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), 0);
  return self->size;
}

/**
 * outbox_message_get_attempts:
 *
 * Returns: the #OutboxMessage:attempts
 */
guint
outbox_message_get_attempts (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), 0);
  return self->attempts;
}

/**
 * outbox_message_get_details:
 *
 * Returns: (transfer none): the #OutboxMessage:details
 */
GVariant *
outbox_message_get_details (OutboxMessage *self)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), NULL);
  return self->details;
}

/* Retry, Hold, Release and Cancel: one call each, on the message's id. */

static void
action_async (OutboxMessage *self, const char *method, gpointer tag, GCancellable *cancellable,
              GAsyncReadyCallback callback, gpointer user_data)
{
  g_return_if_fail (OUTBOX_IS_MESSAGE (self));
  _outbox_call (self->queue, method, g_variant_new ("(s)", self->id), OUTBOX_CALL_TIMEOUT_MS,
                _outbox_task_new (self, tag, cancellable, callback, user_data));
}

static gboolean
action_finish (OutboxMessage *self, GAsyncResult *result, gpointer tag, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), FALSE);
  return _outbox_task_finish_boolean (self, result, tag, error);
}

static gboolean
action_sync (OutboxMessage *self, const char *method, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_MESSAGE (self), FALSE);
  return _outbox_call_sync_boolean (self->queue, method, g_variant_new ("(s)", self->id),
                                    OUTBOX_CALL_TIMEOUT_MS, cancellable, error);
}

/**
 * outbox_message_retry_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when outboxd has taken the request
 * @user_data: data for @callback
 *
 * Tries a deferred or failed message now.
 */
void
outbox_message_retry_async (OutboxMessage *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data)
{
  action_async (self, "Retry", outbox_message_retry_async, cancellable, callback, user_data);
}

/**
 * outbox_message_retry_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_message_retry_finish (OutboxMessage *self, GAsyncResult *result, GError **error)
{
  return action_finish (self, result, outbox_message_retry_async, error);
}

/**
 * outbox_message_retry_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Tries a deferred or failed message now, blocking until outboxd has taken
 * the request.
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_message_retry_sync (OutboxMessage *self, GCancellable *cancellable, GError **error)
{
  return action_sync (self, "Retry", cancellable, error);
}

/**
 * outbox_message_hold_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when outboxd has taken the request
 * @user_data: data for @callback
 *
 * Keeps the message from being sent until it is released.
 */
void
outbox_message_hold_async (OutboxMessage *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
  action_async (self, "Hold", outbox_message_hold_async, cancellable, callback, user_data);
}

/**
 * outbox_message_hold_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_message_hold_finish (OutboxMessage *self, GAsyncResult *result, GError **error)
{
  return action_finish (self, result, outbox_message_hold_async, error);
}

/**
 * outbox_message_hold_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Keeps the message from being sent until it is released.
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_message_hold_sync (OutboxMessage *self, GCancellable *cancellable, GError **error)
{
  return action_sync (self, "Hold", cancellable, error);
}

/**
 * outbox_message_release_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when outboxd has taken the request
 * @user_data: data for @callback
 *
 * Lets a held message go out.
 */
void
outbox_message_release_async (OutboxMessage *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  action_async (self, "Release", outbox_message_release_async, cancellable, callback, user_data);
}

/**
 * outbox_message_release_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_message_release_finish (OutboxMessage *self, GAsyncResult *result, GError **error)
{
  return action_finish (self, result, outbox_message_release_async, error);
}

/**
 * outbox_message_release_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Lets a held message go out.
 *
 * Returns: whether outboxd took the request
 */
gboolean
outbox_message_release_sync (OutboxMessage *self, GCancellable *cancellable, GError **error)
{
  return action_sync (self, "Release", cancellable, error);
}

/**
 * outbox_message_cancel_async:
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when outboxd has removed the message
 * @user_data: data for @callback
 *
 * Removes the message from the queue: within an undo window, this is the
 * undo.  Fails with %OUTBOX_CLIENT_ERROR_INVALID_STATE while the message
 * is being sent.
 */
void
outbox_message_cancel_async (OutboxMessage *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  action_async (self, "Cancel", outbox_message_cancel_async, cancellable, callback, user_data);
}

/**
 * outbox_message_cancel_finish:
 * @result: the result passed to the callback
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Returns: whether the message was removed
 */
gboolean
outbox_message_cancel_finish (OutboxMessage *self, GAsyncResult *result, GError **error)
{
  return action_finish (self, result, outbox_message_cancel_async, error);
}

/**
 * outbox_message_cancel_sync:
 * @cancellable: (nullable): a #GCancellable
 * @error: where to put an #OUTBOX_CLIENT_ERROR
 *
 * Removes the message from the queue.
 *
 * Returns: whether the message was removed
 */
gboolean
outbox_message_cancel_sync (OutboxMessage *self, GCancellable *cancellable, GError **error)
{
  return action_sync (self, "Cancel", cancellable, error);
}
