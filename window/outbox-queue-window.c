/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-queue-window.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>

#include "outbox-account-bar.h"
#include "outbox-message-row.h"

/* The queue: a list view over libOutbox's live list of messages (through
 * a GtkMultiSelection), the accounts that need attention above it, and
 * an action bar for what is selected.  Sent messages the spool still
 * keeps are listed dimmed; the empty state shows when nothing is pending. */
struct _OutboxQueueWindow
{
  AdwApplicationWindow parent_instance;

  OutboxClient *client;          /* (owned) */
  GtkSelectionModel *selection;  /* (owned) GtkMultiSelection of OutboxMessage */
  char *wanted_id;               /* (owned) (nullable) show-message before it arrived */
  gboolean loaded;

  AdwWindowTitle *title;
  AdwToastOverlay *toasts;
  GtkStack *stack;
  GtkListView *list_view;
  GtkActionBar *action_bar;
  GtkLabel *selection_label;
};

G_DEFINE_FINAL_TYPE (OutboxQueueWindow, outbox_queue_window, ADW_TYPE_APPLICATION_WINDOW)

/* The per-message actions: the same OutboxMessage call for a row's
 * button (win.NAME, with the id) and for the selection (win.NAME-selected). */
typedef void (*MessageAsync) (OutboxMessage *, GCancellable *, GAsyncReadyCallback, gpointer);
typedef gboolean (*MessageFinish) (OutboxMessage *, GAsyncResult *, GError **);

typedef struct
{
  const char *name;
  MessageAsync start;
  MessageFinish finish;
} MessageAction;

static const MessageAction message_actions[] = {
  { "retry", outbox_message_retry_async, outbox_message_retry_finish },
  /* Retry makes a waiting message (scheduled, deferred) go now. */
  { "send-now", outbox_message_retry_async, outbox_message_retry_finish },
  { "hold", outbox_message_hold_async, outbox_message_hold_finish },
  { "release", outbox_message_release_async, outbox_message_release_finish },
  { "cancel", outbox_message_cancel_async, outbox_message_cancel_finish },
};

typedef struct
{
  OutboxQueueWindow *window;     /* (owned) */
  const MessageAction *action;
} ActionCall;

static void
show_toast (OutboxQueueWindow *self, const char *text)
{
  g_autofree char *markup = g_markup_escape_text (text, -1);
  AdwToast *toast = adw_toast_new (markup);

  adw_toast_set_timeout (toast, 10);
  adw_toast_overlay_add_toast (self->toasts, toast);
}

static void
on_action_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ActionCall *call = user_data;
  g_autoptr (GError) error = NULL;

  /* The daemon's sentence says what went wrong and what to do. */
  if (!call->action->finish (OUTBOX_MESSAGE (source), result, &error))
    show_toast (call->window, error->message);
  g_object_unref (call->window);
  g_free (call);
}

static void
run_action (OutboxQueueWindow *self, const MessageAction *action, OutboxMessage *message)
{
  ActionCall *call = g_new0 (ActionCall, 1);

  call->window = g_object_ref (self);
  call->action = action;
  action->start (message, NULL, on_action_done, call);
}

static void
on_message_action (GSimpleAction *simple, GVariant *parameter, gpointer user_data)
{
  OutboxQueueWindow *self = user_data;
  const MessageAction *action = g_object_get_data (G_OBJECT (simple), "outbox-action");
  const char *id = g_variant_get_string (parameter, NULL);
  OutboxMessage *message = outbox_client_get_message (self->client, id);

  if (message == NULL)
    {
      g_autofree char *text = g_strdup_printf (_("Message %s is no longer in the queue"), id);
      show_toast (self, text);
      return;
    }
  run_action (self, action, message);
}

static void
on_selection_action (GSimpleAction *simple, GVariant *parameter, gpointer user_data)
{
  OutboxQueueWindow *self = user_data;
  const MessageAction *action = g_object_get_data (G_OBJECT (simple), "outbox-action");
  g_autoptr (GtkBitset) selected = gtk_selection_model_get_selection (self->selection);
  GtkBitsetIter iter;
  guint position;

  for (gboolean more = gtk_bitset_iter_init_first (&iter, selected, &position); more;
       more = gtk_bitset_iter_next (&iter, &position))
    {
      g_autoptr (OutboxMessage) message = g_list_model_get_item (G_LIST_MODEL (self->selection),
                                                                 position);
      run_action (self, action, message);
    }
}

static void
add_message_actions (OutboxQueueWindow *self)
{
  for (gsize i = 0; i < G_N_ELEMENTS (message_actions); i++)
    {
      const MessageAction *action = &message_actions[i];
      g_autofree char *selected_name = g_strconcat (action->name, "-selected", NULL);
      g_autoptr (GSimpleAction) one = g_simple_action_new (action->name, G_VARIANT_TYPE_STRING);
      g_autoptr (GSimpleAction) all = g_simple_action_new (selected_name, NULL);

      g_object_set_data (G_OBJECT (one), "outbox-action", (gpointer) action);
      g_object_set_data (G_OBJECT (all), "outbox-action", (gpointer) action);
      g_signal_connect (one, "activate", G_CALLBACK (on_message_action), self);
      g_signal_connect (all, "activate", G_CALLBACK (on_selection_action), self);
      g_action_map_add_action (G_ACTION_MAP (self), G_ACTION (one));
      g_action_map_add_action (G_ACTION_MAP (self), G_ACTION (all));
    }
}

static gboolean
is_pending (OutboxMessage *message)
{
  OutboxMessageState state = outbox_message_get_state (message);

  return state != OUTBOX_MESSAGE_STATE_SENT && state != OUTBOX_MESSAGE_STATE_REMOVED;
}

static void
update_summary (OutboxQueueWindow *self)
{
  GListModel *model = G_LIST_MODEL (self->selection);
  guint n = g_list_model_get_n_items (model);
  guint pending = 0;
  g_autofree char *subtitle = NULL;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (OutboxMessage) message = g_list_model_get_item (model, i);
      pending += is_pending (message);
    }
  if (pending == 0)
    subtitle = g_strdup (_("Nothing waiting"));
  else
    subtitle = g_strdup_printf (g_dngettext (NULL, "%u message waiting", "%u messages waiting",
                                             pending), pending);
  if (!outbox_client_get_online (self->client))
    {
      g_autofree char *both = g_strdup_printf (_("%s — offline"), subtitle);
      g_free (subtitle);
      subtitle = g_steal_pointer (&both);
    }
  adw_window_title_set_subtitle (self->title, subtitle);
  if (self->loaded)
    gtk_stack_set_visible_child_name (self->stack, pending > 0 ? "queue" : "empty");
}

static gboolean
select_message (OutboxQueueWindow *self, const char *id)
{
  GListModel *model = G_LIST_MODEL (self->selection);
  guint n = g_list_model_get_n_items (model);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (OutboxMessage) message = g_list_model_get_item (model, i);
      if (g_strcmp0 (outbox_message_get_id (message), id) != 0)
        continue;
      gtk_stack_set_visible_child_name (self->stack, "queue");
      gtk_selection_model_select_item (self->selection, i, TRUE);
      gtk_widget_activate_action (GTK_WIDGET (self->list_view), "list.scroll-to-item", "u", i);
      return TRUE;
    }
  return FALSE;
}

void
outbox_queue_window_show_message (OutboxQueueWindow *self, const char *id)
{
  g_return_if_fail (OUTBOX_IS_QUEUE_WINDOW (self));

  g_clear_pointer (&self->wanted_id, g_free);
  if (!select_message (self, id))
    self->wanted_id = g_strdup (id);
}

static void
on_message_state (OutboxMessage *message, GParamSpec *pspec, OutboxQueueWindow *self)
{
  update_summary (self);
}

static void
on_items_changed (GListModel *model, guint position, guint removed, guint added,
                  OutboxQueueWindow *self)
{
  for (guint i = position; i < position + added; i++)
    {
      g_autoptr (OutboxMessage) message = g_list_model_get_item (model, i);
      g_signal_connect_object (message, "notify::state", G_CALLBACK (on_message_state), self, 0);
    }
  if (self->wanted_id != NULL && select_message (self, self->wanted_id))
    g_clear_pointer (&self->wanted_id, g_free);
  update_summary (self);
}

static void
on_selection_changed (GtkSelectionModel *model, guint position, guint n_items,
                      OutboxQueueWindow *self)
{
  g_autoptr (GtkBitset) selected = gtk_selection_model_get_selection (model);
  guint64 count = gtk_bitset_get_size (selected);
  g_autofree char *text = g_strdup_printf (g_dngettext (NULL, "%u selected", "%u selected", count),
                                           (guint) count);

  gtk_label_set_label (self->selection_label, text);
  gtk_action_bar_set_revealed (self->action_bar, count > 0);
}

/* OUTBOX_WINDOW_SCREENSHOT=FILE: once the queue is on screen, the window
 * renders itself into FILE as a PNG (written beside it, then renamed, so
 * that whoever waits for FILE never reads half of it).  For the README's
 * picture and the tests; it works on any display, Xvfb included. */
static void
save_screenshot (OutboxQueueWindow *self, const char *path)
{
  GtkWidget *widget = GTK_WIDGET (self);
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  g_autoptr (GdkPaintable) paintable = gtk_widget_paintable_new (widget);
  g_autoptr (GtkSnapshot) snapshot = gtk_snapshot_new ();
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  g_autofree char *partial = g_strconcat (path, ".part", NULL);

  gdk_paintable_snapshot (paintable, GDK_SNAPSHOT (snapshot), width, height);
  node = gtk_snapshot_to_node (snapshot);
  if (node == NULL)
    {
      g_warning ("Nothing to take a screenshot of");
      return;
    }
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (self)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  if (!gdk_texture_save_to_png (texture, partial) || g_rename (partial, path) != 0)
    g_warning ("Could not write the screenshot %s", path);
}

static gboolean
on_screenshot_time (gpointer user_data)
{
  OutboxQueueWindow *self = user_data;

  save_screenshot (self, g_getenv ("OUTBOX_WINDOW_SCREENSHOT"));
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static void
on_messages_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxQueueWindow) self = user_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GListModel) list = outbox_client_load_messages_finish (OUTBOX_CLIENT (source),
                                                                   result, &error);

  if (list == NULL)
    show_toast (self, error->message);
  self->loaded = TRUE;
  update_summary (self);
  /* Time for the rows to be laid out and drawn. */
  if (g_getenv ("OUTBOX_WINDOW_SCREENSHOT") != NULL)
    g_timeout_add (1500, on_screenshot_time, g_object_ref (self));
}

static void
on_account_error (OutboxAccountBar *bar, const char *text, OutboxQueueWindow *self)
{
  show_toast (self, text);
}

static void
setup_row (GtkSignalListItemFactory *factory, GtkListItem *item, gpointer user_data)
{
  gtk_list_item_set_child (item, outbox_message_row_new ());
}

static void
bind_row (GtkSignalListItemFactory *factory, GtkListItem *item, gpointer user_data)
{
  outbox_message_row_set_message (OUTBOX_MESSAGE_ROW (gtk_list_item_get_child (item)),
                                  gtk_list_item_get_item (item));
}

static void
unbind_row (GtkSignalListItemFactory *factory, GtkListItem *item, gpointer user_data)
{
  outbox_message_row_set_message (OUTBOX_MESSAGE_ROW (gtk_list_item_get_child (item)), NULL);
}

static GtkWidget *
make_queue_view (OutboxQueueWindow *self)
{
  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  GtkWidget *scrolled = gtk_scrolled_window_new ();

  g_signal_connect (factory, "setup", G_CALLBACK (setup_row), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_row), NULL);
  g_signal_connect (factory, "unbind", G_CALLBACK (unbind_row), NULL);
  self->list_view = GTK_LIST_VIEW (gtk_list_view_new (g_object_ref (self->selection), factory));
  gtk_list_view_set_show_separators (self->list_view, TRUE);
  gtk_widget_add_css_class (GTK_WIDGET (self->list_view), "rich-list");
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->list_view), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Queue"), -1);
  gtk_scrolled_window_set_child (GTK_SCROLLED_WINDOW (scrolled), GTK_WIDGET (self->list_view));
  gtk_widget_set_vexpand (scrolled, TRUE);
  return scrolled;
}

static GtkWidget *
make_empty_state (void)
{
  GtkWidget *page = adw_status_page_new ();

  adw_status_page_set_icon_name (ADW_STATUS_PAGE (page), "org.outbox.Outbox-symbolic");
  adw_status_page_set_title (ADW_STATUS_PAGE (page), _("All mail is sent"));
  adw_status_page_set_description (ADW_STATUS_PAGE (page),
                                   _("Messages waiting to go out will show here."));
  return page;
}

static void
add_selection_button (GtkActionBar *bar, const char *label, const char *action, gboolean end)
{
  GtkWidget *button = gtk_button_new_with_label (label);

  gtk_actionable_set_action_name (GTK_ACTIONABLE (button), action);
  if (end)
    gtk_action_bar_pack_end (bar, button);
  else
    gtk_action_bar_pack_start (bar, button);
}

static GtkWidget *
make_action_bar (OutboxQueueWindow *self)
{
  self->action_bar = GTK_ACTION_BAR (gtk_action_bar_new ());
  self->selection_label = GTK_LABEL (gtk_label_new (NULL));
  gtk_action_bar_set_center_widget (self->action_bar, GTK_WIDGET (self->selection_label));
  add_selection_button (self->action_bar, _("Retry"), "win.retry-selected", FALSE);
  add_selection_button (self->action_bar, _("Hold"), "win.hold-selected", FALSE);
  add_selection_button (self->action_bar, _("Release"), "win.release-selected", FALSE);
  add_selection_button (self->action_bar, _("Cancel"), "win.cancel-selected", TRUE);
  gtk_action_bar_set_revealed (self->action_bar, FALSE);
  return GTK_WIDGET (self->action_bar);
}

static GtkWidget *
make_header_bar (OutboxQueueWindow *self)
{
  GtkWidget *header = adw_header_bar_new ();
  GtkWidget *flush = gtk_button_new_from_icon_name ("mail-send-receive-symbolic");

  self->title = ADW_WINDOW_TITLE (adw_window_title_new (_("Outbox"), NULL));
  adw_header_bar_set_title_widget (ADW_HEADER_BAR (header), GTK_WIDGET (self->title));
  gtk_widget_set_tooltip_text (flush, _("Send everything waiting now"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (flush), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Send All Now"), -1);
  gtk_actionable_set_action_name (GTK_ACTIONABLE (flush), "win.flush");
  adw_header_bar_pack_start (ADW_HEADER_BAR (header), flush);
  return header;
}

static void
on_flushed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxQueueWindow) self = user_data;
  g_autoptr (GError) error = NULL;

  if (!outbox_client_flush_finish (OUTBOX_CLIENT (source), result, &error))
    show_toast (self, error->message);
}

static void
on_flush (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  OutboxQueueWindow *self = user_data;

  outbox_client_flush_async (self->client, NULL, on_flushed, g_object_ref (self));
}

static void
build_content (OutboxQueueWindow *self)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  GtkWidget *accounts = outbox_account_bar_new (outbox_client_get_accounts (self->client));
  GtkWidget *loading = gtk_spinner_new ();

  self->stack = GTK_STACK (gtk_stack_new ());
  gtk_spinner_start (GTK_SPINNER (loading));
  gtk_stack_add_named (self->stack, loading, "loading");
  gtk_stack_add_named (self->stack, make_queue_view (self), "queue");
  gtk_stack_add_named (self->stack, make_empty_state (), "empty");
  gtk_widget_set_vexpand (GTK_WIDGET (self->stack), TRUE);
  g_signal_connect_object (accounts, "error", G_CALLBACK (on_account_error), self, 0);

  gtk_box_append (GTK_BOX (box), make_header_bar (self));
  gtk_box_append (GTK_BOX (box), accounts);
  gtk_box_append (GTK_BOX (box), GTK_WIDGET (self->stack));
  gtk_box_append (GTK_BOX (box), make_action_bar (self));
  self->toasts = ADW_TOAST_OVERLAY (adw_toast_overlay_new ());
  adw_toast_overlay_set_child (self->toasts, box);
  adw_application_window_set_content (ADW_APPLICATION_WINDOW (self), GTK_WIDGET (self->toasts));
}

static void
on_online_changed (OutboxClient *client, GParamSpec *pspec, OutboxQueueWindow *self)
{
  update_summary (self);
}

static void
outbox_queue_window_constructed (GObject *object)
{
  OutboxQueueWindow *self = OUTBOX_QUEUE_WINDOW (object);
  GListModel *messages = outbox_client_get_messages (self->client);
  static const GActionEntry entries[] = { { .name = "flush", .activate = on_flush } };

  G_OBJECT_CLASS (outbox_queue_window_parent_class)->constructed (object);
  self->selection = GTK_SELECTION_MODEL (gtk_multi_selection_new (g_object_ref (messages)));
  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
  add_message_actions (self);
  build_content (self);
  g_signal_connect (self->selection, "items-changed", G_CALLBACK (on_items_changed), self);
  g_signal_connect (self->selection, "selection-changed", G_CALLBACK (on_selection_changed), self);
  g_signal_connect_object (self->client, "notify::online", G_CALLBACK (on_online_changed), self, 0);
  on_items_changed (G_LIST_MODEL (self->selection), 0, 0,
                    g_list_model_get_n_items (G_LIST_MODEL (self->selection)), self);
  outbox_client_load_messages_async (self->client, NULL, on_messages_loaded, g_object_ref (self));
}

enum
{
  PROP_0,
  PROP_CLIENT,
};

static void
outbox_queue_window_set_property (GObject *object, guint prop_id, const GValue *value,
                                  GParamSpec *pspec)
{
  OutboxQueueWindow *self = OUTBOX_QUEUE_WINDOW (object);

  switch (prop_id)
    {
    case PROP_CLIENT:
      self->client = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
outbox_queue_window_dispose (GObject *object)
{
  OutboxQueueWindow *self = OUTBOX_QUEUE_WINDOW (object);

  if (self->selection != NULL)
    g_signal_handlers_disconnect_by_data (self->selection, self);
  g_clear_object (&self->selection);
  g_clear_object (&self->client);
  g_clear_pointer (&self->wanted_id, g_free);
  G_OBJECT_CLASS (outbox_queue_window_parent_class)->dispose (object);
}

static void
outbox_queue_window_class_init (OutboxQueueWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = outbox_queue_window_constructed;
  object_class->set_property = outbox_queue_window_set_property;
  object_class->dispose = outbox_queue_window_dispose;
  g_object_class_install_property (object_class, PROP_CLIENT,
    g_param_spec_object ("client", NULL, NULL, OUTBOX_TYPE_CLIENT,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS));
}

static void
outbox_queue_window_init (OutboxQueueWindow *self)
{
  gtk_window_set_default_size (GTK_WINDOW (self), 960, 600);
  gtk_window_set_title (GTK_WINDOW (self), _("Outbox"));
}

OutboxQueueWindow *
outbox_queue_window_new (AdwApplication *application, OutboxClient *client)
{
  return g_object_new (OUTBOX_TYPE_QUEUE_WINDOW, "application", application, "client", client,
                       NULL);
}
