/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <outbox/outbox.h>

#include "outbox-queue-window.h"

#define OUTBOX_TYPE_WINDOW_APP (outbox_window_app_get_type ())
G_DECLARE_FINAL_TYPE (OutboxWindowApp, outbox_window_app, OUTBOX, WINDOW_APP, AdwApplication)

/* org.outbox.Outbox: one window over the queue, D-Bus activatable.  The
 * client to outboxd is made once, at start-up; until it is there, what
 * was asked (a window, a message to show) waits in want_window and
 * wanted_id. */
struct _OutboxWindowApp
{
  AdwApplication parent_instance;

  OutboxClient *client;        /* (owned) (nullable) until connected */
  OutboxQueueWindow *window;   /* (unowned) (nullable) */
  gboolean want_window;
  char *wanted_id;             /* (owned) (nullable) */
};

G_DEFINE_FINAL_TYPE (OutboxWindowApp, outbox_window_app, ADW_TYPE_APPLICATION)

static void
present (OutboxWindowApp *self)
{
  if (self->client == NULL)
    {
      self->want_window = TRUE;
      return;
    }
  if (self->window == NULL)
    {
      self->window = outbox_queue_window_new (ADW_APPLICATION (self), self->client);
      g_object_add_weak_pointer (G_OBJECT (self->window), (gpointer *) &self->window);
    }
  if (self->wanted_id != NULL)
    {
      outbox_queue_window_show_message (self->window, self->wanted_id);
      g_clear_pointer (&self->wanted_id, g_free);
    }
  gtk_window_present (GTK_WINDOW (self->window));
}

static void
on_show_message (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  OutboxWindowApp *self = user_data;

  g_free (self->wanted_id);
  self->wanted_id = g_variant_dup_string (parameter, NULL);
  present (self);
}

static void
on_quit (GSimpleAction *action, GVariant *parameter, gpointer user_data)
{
  g_application_quit (G_APPLICATION (user_data));
}

static void
on_client_ready (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (OutboxWindowApp) self = user_data;
  g_autoptr (GError) error = NULL;

  self->client = outbox_client_new_finish (result, &error);
  if (self->client == NULL)
    {
      g_printerr ("outbox-window: %s\n", error->message);
      g_application_quit (G_APPLICATION (self));
    }
  else if (self->want_window || self->wanted_id != NULL)
    present (self);
  g_application_release (G_APPLICATION (self));
}

static void
outbox_window_app_startup (GApplication *application)
{
  OutboxWindowApp *self = OUTBOX_WINDOW_APP (application);
  static const GActionEntry entries[] = {
    { .name = "show-message", .activate = on_show_message, .parameter_type = "s" },
    { .name = "quit", .activate = on_quit },
  };
  static const char *const quit_accels[] = { "<Control>q", NULL };
  static const char *const close_accels[] = { "<Control>w", NULL };

  G_APPLICATION_CLASS (outbox_window_app_parent_class)->startup (application);
  g_action_map_add_action_entries (G_ACTION_MAP (self), entries, G_N_ELEMENTS (entries), self);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "app.quit", quit_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (self), "window.close", close_accels);
  /* Dark or light as the system says: AdwStyleManager's default. */
  g_application_hold (application);
  outbox_client_new (NULL, on_client_ready, g_object_ref (self));
}

static void
outbox_window_app_activate (GApplication *application)
{
  present (OUTBOX_WINDOW_APP (application));
}

static void
outbox_window_app_finalize (GObject *object)
{
  OutboxWindowApp *self = OUTBOX_WINDOW_APP (object);

  g_clear_object (&self->client);
  g_clear_pointer (&self->wanted_id, g_free);
  G_OBJECT_CLASS (outbox_window_app_parent_class)->finalize (object);
}

static void
outbox_window_app_class_init (OutboxWindowAppClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_window_app_finalize;
  G_APPLICATION_CLASS (klass)->startup = outbox_window_app_startup;
  G_APPLICATION_CLASS (klass)->activate = outbox_window_app_activate;
}

static void
outbox_window_app_init (OutboxWindowApp *self)
{
}

int
main (int argc, char *argv[])
{
  g_autoptr (OutboxWindowApp) app = NULL;

  g_set_application_name (_("Outbox"));
  app = g_object_new (OUTBOX_TYPE_WINDOW_APP,
                      "application-id", "org.outbox.Outbox",
                      "flags", G_APPLICATION_DEFAULT_FLAGS,
                      NULL);
  /* Started by D-Bus activation (--gapplication-service), stay a while
   * for the call that started us, whenever it gets dispatched. */
  g_application_set_inactivity_timeout (G_APPLICATION (app), 10000);
  return g_application_run (G_APPLICATION (app), argc, argv);
}
