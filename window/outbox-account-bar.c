/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-account-bar.h"

#include <adwaita.h>
#include <glib/gi18n.h>

/* libadwaita 1.2 has no AdwBanner: each account that needs attention gets
 * a GtkInfoBar.  The bars are few and change rarely, so they are made
 * again from the list whenever an account or the list changes. */
struct _OutboxAccountBar
{
  GtkBox parent_instance;

  GListModel *accounts;   /* (owned) */
};

enum
{
  SIGNAL_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (OutboxAccountBar, outbox_account_bar, GTK_TYPE_BOX)

static void
report (OutboxAccountBar *self, const char *what, const GError *error)
{
  g_autofree char *text = g_strdup_printf ("%s: %s", what, error->message);

  g_signal_emit (self, signals[SIGNAL_ERROR], 0, text);
}

static void
on_password_set (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxAccountBar) self = user_data;
  g_autoptr (GError) error = NULL;

  if (!outbox_account_set_password_finish (OUTBOX_ACCOUNT (source), result, &error))
    report (self, outbox_account_get_name (OUTBOX_ACCOUNT (source)), error);
}

static void
on_password_response (AdwMessageDialog *dialog, const char *response, gpointer user_data)
{
  OutboxAccountBar *self = user_data;
  OutboxAccount *account = g_object_get_data (G_OBJECT (dialog), "outbox-account");
  GtkWidget *entry = adw_message_dialog_get_extra_child (dialog);

  if (g_strcmp0 (response, "save") != 0)
    return;
  outbox_account_set_password_async (account, "smtp", gtk_editable_get_text (GTK_EDITABLE (entry)),
                                     NULL, on_password_set, g_object_ref (self));
}

static void
ask_password (OutboxAccountBar *self, OutboxAccount *account)
{
  GtkWindow *parent = GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self)));
  g_autofree char *heading = g_strdup_printf (_("Password for %s"), outbox_account_get_name (account));
  GtkWidget *dialog = adw_message_dialog_new (parent, heading,
                                              outbox_account_get_state_message (account));
  GtkWidget *entry = gtk_password_entry_new ();

  gtk_password_entry_set_show_peek_icon (GTK_PASSWORD_ENTRY (entry), TRUE);
  gtk_accessible_update_property (GTK_ACCESSIBLE (entry), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Password"), -1);
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), entry);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog), "cancel", _("Cancel"),
                                    "save", _("Save"), NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "save",
                                              ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "save");
  g_object_set_data_full (G_OBJECT (dialog), "outbox-account", g_object_ref (account),
                          g_object_unref);
  g_signal_connect_object (dialog, "response", G_CALLBACK (on_password_response), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
on_authorize_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxAccountBar) self = user_data;
  g_autoptr (GError) error = NULL;

  if (!g_subprocess_wait_check_finish (G_SUBPROCESS (source), result, &error))
    report (self, _("outbox account authorize"), error);
}

/* The command line does the OAuth 2.0 grant (browser, loopback redirect);
 * the window only starts it. */
static void
authorize (OutboxAccountBar *self, OutboxAccount *account)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, "outbox",
                                                      "account", "authorize",
                                                      outbox_account_get_name (account), NULL);

  if (process == NULL)
    {
      report (self, _("outbox account authorize"), error);
      return;
    }
  g_subprocess_wait_check_async (process, NULL, on_authorize_done, g_object_ref (self));
}

static void
on_fix_clicked (GtkButton *button, OutboxAccountBar *self)
{
  OutboxAccount *account = g_object_get_data (G_OBJECT (button), "outbox-account");

  if (outbox_account_get_state (account) == OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD)
    ask_password (self, account);
  else
    authorize (self, account);
}

static const char *
fix_label (OutboxAccountState state)
{
  switch (state)
    {
    case OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD: return _("Enter Password…");
    case OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION: return _("Sign In…");
    default: return NULL;
    }
}

static GtkWidget *
make_info_bar (OutboxAccountBar *self, OutboxAccount *account)
{
  GtkWidget *bar = gtk_info_bar_new ();
  g_autofree char *text = g_strdup_printf ("%s: %s", outbox_account_get_name (account),
                                           outbox_account_get_state_message (account));
  GtkWidget *label = gtk_label_new (text);
  const char *fix = fix_label (outbox_account_get_state (account));

  gtk_label_set_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_widget_set_hexpand (label, TRUE);
  gtk_info_bar_set_message_type (GTK_INFO_BAR (bar), GTK_MESSAGE_WARNING);
  gtk_info_bar_add_child (GTK_INFO_BAR (bar), label);
  if (fix != NULL)
    {
      GtkWidget *button = gtk_button_new_with_label (fix);
      g_object_set_data_full (G_OBJECT (button), "outbox-account", g_object_ref (account),
                              g_object_unref);
      g_signal_connect_object (button, "clicked", G_CALLBACK (on_fix_clicked), self, 0);
      gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
      gtk_info_bar_add_action_widget (GTK_INFO_BAR (bar), button, GTK_RESPONSE_NONE);
    }
  return bar;
}

static void
rebuild (OutboxAccountBar *self)
{
  GtkWidget *child;
  guint n = g_list_model_get_n_items (self->accounts);

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
    gtk_box_remove (GTK_BOX (self), child);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (OutboxAccount) account = g_list_model_get_item (self->accounts, i);
      if (outbox_account_get_needs_attention (account))
        gtk_box_append (GTK_BOX (self), make_info_bar (self, account));
    }
  gtk_widget_set_visible (GTK_WIDGET (self), gtk_widget_get_first_child (GTK_WIDGET (self)) != NULL);
}

static void
on_account_notify (OutboxAccount *account, GParamSpec *pspec, OutboxAccountBar *self)
{
  rebuild (self);
}

static void
on_items_changed (GListModel *model, guint position, guint removed, guint added,
                  OutboxAccountBar *self)
{
  for (guint i = position; i < position + added; i++)
    {
      g_autoptr (OutboxAccount) account = g_list_model_get_item (model, i);
      g_signal_connect_object (account, "notify", G_CALLBACK (on_account_notify), self, 0);
    }
  rebuild (self);
}

static void
outbox_account_bar_dispose (GObject *object)
{
  OutboxAccountBar *self = OUTBOX_ACCOUNT_BAR (object);

  if (self->accounts != NULL)
    g_signal_handlers_disconnect_by_data (self->accounts, self);
  g_clear_object (&self->accounts);
  G_OBJECT_CLASS (outbox_account_bar_parent_class)->dispose (object);
}

static void
outbox_account_bar_class_init (OutboxAccountBarClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = outbox_account_bar_dispose;
  signals[SIGNAL_ERROR] = g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                        0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
outbox_account_bar_init (OutboxAccountBar *self)
{
  gtk_orientable_set_orientation (GTK_ORIENTABLE (self), GTK_ORIENTATION_VERTICAL);
}

GtkWidget *
outbox_account_bar_new (GListModel *accounts)
{
  OutboxAccountBar *self = g_object_new (OUTBOX_TYPE_ACCOUNT_BAR, NULL);

  self->accounts = g_object_ref (accounts);
  g_signal_connect (accounts, "items-changed", G_CALLBACK (on_items_changed), self);
  on_items_changed (accounts, 0, 0, g_list_model_get_n_items (accounts), self);
  return GTK_WIDGET (self);
}
