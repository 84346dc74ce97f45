/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-message-row.h"

#include <glib/gi18n.h>

/* One message of the queue.  The row is recycled by the list view: it
 * shows whichever message it is given, follows that object's notify
 * signal (messages change in place, they are never replaced), and ticks
 * once a second while it shows one, for the age and the countdowns. */
struct _OutboxMessageRow
{
  GtkBox parent_instance;

  OutboxMessage *message;   /* (owned) (nullable) */
  gulong notify_id;
  guint tick_id;

  GtkWidget *state_label;
  GtkWidget *subject_label;
  GtkWidget *recipients_label;
  GtkWidget *time_label;
  GtkWidget *reply_label;
  GtkWidget *retry_button;
  GtkWidget *send_now_button;
  GtkWidget *hold_button;
  GtkWidget *release_button;
  GtkWidget *cancel_button;
};

G_DEFINE_FINAL_TYPE (OutboxMessageRow, outbox_message_row, GTK_TYPE_BOX)

char *
outbox_format_distance (gint64 seconds)
{
  gint64 s = ABS (seconds);

  /* Seconds while they count: an undo-send window is a minute or two. */
  if (s < 120)
    return g_strdup_printf ("%" G_GINT64_FORMAT " s", s);
  if (s < 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT " min", s / 60);
  if (s < 2 * 86400)
    return g_strdup_printf ("%" G_GINT64_FORMAT " h", s / 3600);
  return g_strdup_printf ("%" G_GINT64_FORMAT " days", s / 86400);
}

static const char *
state_name (OutboxMessageState state)
{
  switch (state)
    {
    case OUTBOX_MESSAGE_STATE_QUEUED: return _("Queued");
    case OUTBOX_MESSAGE_STATE_SCHEDULED: return _("Scheduled");
    case OUTBOX_MESSAGE_STATE_HELD: return _("Held");
    case OUTBOX_MESSAGE_STATE_SENDING: return _("Sending…");
    case OUTBOX_MESSAGE_STATE_DEFERRED: return _("Deferred");
    case OUTBOX_MESSAGE_STATE_SENT: return _("Sent");
    case OUTBOX_MESSAGE_STATE_FAILED: return _("Failed");
    case OUTBOX_MESSAGE_STATE_REMOVED: return _("Removed");
    case OUTBOX_MESSAGE_STATE_UNKNOWN:
    default: return _("Unknown");
    }
}

static gint64
seconds_until (GDateTime *when)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  return g_date_time_difference (when, now) / G_TIME_SPAN_SECOND;
}

static char *
format_age (OutboxMessage *message)
{
  GDateTime *created = outbox_message_get_created (message);
  gint64 age;
  g_autofree char *distance = NULL;

  if (created == NULL)
    return g_strdup ("");
  age = -seconds_until (created);
  if (age < 60)
    return g_strdup (_("just now"));
  distance = outbox_format_distance (age);
  return g_strdup_printf (_("%s ago"), distance);
}

/* Undo send: a message whose send-at is near says how long is left. */
static char *
format_schedule (OutboxMessage *message)
{
  GDateTime *send_at = outbox_message_get_send_at (message);
  g_autoptr (GDateTime) local = NULL;
  g_autofree char *distance = NULL;
  gint64 left;

  if (send_at == NULL)
    return NULL;
  left = MAX (seconds_until (send_at), 0);
  if (left >= 3600)
    {
      local = g_date_time_to_local (send_at);
      return g_date_time_format (local, _("Sending at %H:%M on %e %b"));
    }
  distance = outbox_format_distance (left);
  return g_strdup_printf (_("Sending in %s — Cancel to undo"), distance);
}

static char *
format_next_attempt (OutboxMessage *message)
{
  GDateTime *next = outbox_message_get_next_attempt (message);
  g_autofree char *distance = NULL;
  gint64 left;

  if (next == NULL)
    return NULL;
  left = seconds_until (next);
  if (left <= 0)
    return g_strdup (_("next attempt now"));
  distance = outbox_format_distance (left);
  return g_strdup_printf (_("next attempt in %s"), distance);
}

static void
update_times (OutboxMessageRow *self)
{
  OutboxMessageState state = outbox_message_get_state (self->message);
  g_autofree char *age = format_age (self->message);
  g_autofree char *extra = NULL;
  g_autofree char *text = NULL;

  if (state == OUTBOX_MESSAGE_STATE_SCHEDULED)
    extra = format_schedule (self->message);
  else if (state == OUTBOX_MESSAGE_STATE_DEFERRED)
    extra = format_next_attempt (self->message);
  text = extra ? g_strdup_printf ("%s · %s", age, extra) : g_steal_pointer (&age);
  gtk_label_set_label (GTK_LABEL (self->time_label), text);
}

static void
set_style (GtkWidget *widget, const char *style_class, gboolean on)
{
  if (on)
    gtk_widget_add_css_class (widget, style_class);
  else
    gtk_widget_remove_css_class (widget, style_class);
}

static void
update_style (OutboxMessageRow *self, OutboxMessageState state)
{
  gboolean failed = state == OUTBOX_MESSAGE_STATE_FAILED;
  gboolean deferred = state == OUTBOX_MESSAGE_STATE_DEFERRED;

  set_style (self->state_label, "error", failed);
  set_style (self->reply_label, "error", failed);
  set_style (self->state_label, "warning", deferred);
  set_style (self->reply_label, "warning", deferred);
  /* Sent messages stay listed while the spool keeps them, dimmed. */
  set_style (GTK_WIDGET (self), "dim-label", state == OUTBOX_MESSAGE_STATE_SENT);
}

static void
update_buttons (OutboxMessageRow *self, OutboxMessageState state)
{
  gboolean pending = state != OUTBOX_MESSAGE_STATE_SENT && state != OUTBOX_MESSAGE_STATE_REMOVED;
  gboolean waiting = state == OUTBOX_MESSAGE_STATE_QUEUED
                     || state == OUTBOX_MESSAGE_STATE_SCHEDULED
                     || state == OUTBOX_MESSAGE_STATE_DEFERRED;

  gtk_widget_set_visible (self->retry_button, state == OUTBOX_MESSAGE_STATE_FAILED);
  gtk_widget_set_visible (self->send_now_button, waiting);
  gtk_widget_set_visible (self->hold_button, waiting);
  gtk_widget_set_visible (self->release_button, state == OUTBOX_MESSAGE_STATE_HELD);
  gtk_widget_set_visible (self->cancel_button, pending && state != OUTBOX_MESSAGE_STATE_SENDING);
}

static void
update (OutboxMessageRow *self)
{
  OutboxMessage *message = self->message;
  OutboxMessageState state = outbox_message_get_state (message);
  const char *subject = outbox_message_get_subject (message);
  const char *reply = outbox_message_get_last_reply (message);
  const char *const *recipients = outbox_message_get_recipients (message);
  g_autofree char *to = g_strjoinv (", ", (char **) recipients);

  gtk_label_set_label (GTK_LABEL (self->state_label), state_name (state));
  gtk_label_set_label (GTK_LABEL (self->subject_label),
                       subject && *subject ? subject : _("(no subject)"));
  gtk_label_set_label (GTK_LABEL (self->recipients_label), to);
  gtk_label_set_label (GTK_LABEL (self->reply_label), reply ? reply : "");
  gtk_widget_set_visible (self->reply_label, reply != NULL && *reply != '\0');
  update_style (self, state);
  update_buttons (self, state);
  update_times (self);
}

static void
on_message_notify (OutboxMessage *message, GParamSpec *pspec, OutboxMessageRow *self)
{
  update (self);
}

static gboolean
on_tick (gpointer user_data)
{
  update_times (OUTBOX_MESSAGE_ROW (user_data));
  return G_SOURCE_CONTINUE;
}

static void
set_target (GtkWidget *button, const char *id)
{
  gtk_actionable_set_action_target_value (GTK_ACTIONABLE (button),
                                          id ? g_variant_new_string (id) : NULL);
}

static void
set_targets (OutboxMessageRow *self, const char *id)
{
  set_target (self->retry_button, id);
  set_target (self->send_now_button, id);
  set_target (self->hold_button, id);
  set_target (self->release_button, id);
  set_target (self->cancel_button, id);
}

static void
unset_message (OutboxMessageRow *self)
{
  g_clear_handle_id (&self->tick_id, g_source_remove);
  if (self->message != NULL)
    g_clear_signal_handler (&self->notify_id, self->message);
  g_clear_object (&self->message);
}

void
outbox_message_row_set_message (OutboxMessageRow *self, OutboxMessage *message)
{
  g_return_if_fail (OUTBOX_IS_MESSAGE_ROW (self));

  unset_message (self);
  if (message == NULL)
    {
      set_targets (self, NULL);
      return;
    }
  self->message = g_object_ref (message);
  self->notify_id = g_signal_connect (message, "notify", G_CALLBACK (on_message_notify), self);
  self->tick_id = g_timeout_add_seconds (1, on_tick, self);
  set_targets (self, outbox_message_get_id (message));
  update (self);
}

static GtkWidget *
make_label (const char *style_class, gboolean wrap)
{
  GtkWidget *label = gtk_label_new (NULL);

  gtk_label_set_xalign (GTK_LABEL (label), 0);
  if (wrap)
    gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  else
    gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_END);
  if (style_class)
    gtk_widget_add_css_class (label, style_class);
  return label;
}

static GtkWidget *
make_button (GtkWidget *box, const char *label, const char *action, const char *tooltip)
{
  GtkWidget *button = gtk_button_new_with_label (label);

  gtk_actionable_set_action_name (GTK_ACTIONABLE (button), action);
  gtk_widget_set_tooltip_text (button, tooltip);
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_box_append (GTK_BOX (box), button);
  return button;
}

static void
add_buttons (OutboxMessageRow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 6);

  gtk_widget_set_valign (box, GTK_ALIGN_CENTER);
  self->retry_button = make_button (box, _("Retry"), "win.retry", _("Try this message again"));
  self->send_now_button = make_button (box, _("Send Now"), "win.send-now", _("Send without waiting"));
  self->hold_button = make_button (box, _("Hold"), "win.hold", _("Keep this message until released"));
  self->release_button = make_button (box, _("Release"), "win.release", _("Let this message go"));
  self->cancel_button = make_button (box, _("Cancel"), "win.cancel", _("Remove this message unsent"));
  gtk_widget_add_css_class (self->cancel_button, "destructive-action");
  gtk_box_append (GTK_BOX (self), box);
}

static void
outbox_message_row_init (OutboxMessageRow *self)
{
  GtkWidget *text = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *top = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);

  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_HORIZONTAL);
  gtk_box_set_spacing (GTK_BOX (self), 12);
  g_object_set (self, "margin-top", 8, "margin-bottom", 8, "margin-start", 12, "margin-end", 12, NULL);

  self->state_label = make_label ("caption-heading", FALSE);
  gtk_widget_set_size_request (self->state_label, 80, -1);
  self->subject_label = make_label ("heading", FALSE);
  self->recipients_label = make_label (NULL, FALSE);
  self->time_label = make_label ("caption", FALSE);
  gtk_widget_add_css_class (self->time_label, "numeric");
  self->reply_label = make_label ("caption", TRUE);
  gtk_label_set_selectable (GTK_LABEL (self->reply_label), TRUE);

  gtk_box_append (GTK_BOX (top), self->subject_label);
  gtk_box_append (GTK_BOX (top), self->time_label);
  gtk_box_append (GTK_BOX (text), top);
  gtk_box_append (GTK_BOX (text), self->recipients_label);
  gtk_box_append (GTK_BOX (text), self->reply_label);
  gtk_widget_set_hexpand (text, TRUE);

  gtk_box_append (GTK_BOX (self), self->state_label);
  gtk_box_append (GTK_BOX (self), text);
  add_buttons (self);
}

static void
outbox_message_row_dispose (GObject *object)
{
  unset_message (OUTBOX_MESSAGE_ROW (object));
  G_OBJECT_CLASS (outbox_message_row_parent_class)->dispose (object);
}

static void
outbox_message_row_class_init (OutboxMessageRowClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = outbox_message_row_dispose;
}

GtkWidget *
outbox_message_row_new (void)
{
  return g_object_new (OUTBOX_TYPE_MESSAGE_ROW, NULL);
}
