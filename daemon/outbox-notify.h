/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* What the user asked for with the "retry" action of the notification
 * about @message_id. */
typedef void (*OutboxNotifyRetryFunc) (const char *message_id, gpointer user_data);

/* Shows notifications through org.freedesktop.Notifications on @bus from
 * now on, follows which server owns that name and whether it offers
 * actions (asked once per owner, without waiting), and answers the
 * actions of the notifications about one message: "retry" calls @retry,
 * "show" and "default" ask the Outbox window (org.outbox.Outbox, started
 * by D-Bus if need be) to show the message.  Before this, and after
 * outbox_notify_stop(), notifications are only logged. */
void outbox_notify_start (GDBusConnection *bus, OutboxNotifyRetryFunc retry, gpointer user_data);
void outbox_notify_stop (void);

/* Shows a desktop notification when a notification server runs on the
 * session bus; never starts one, never waits, and only logs when there is
 * none.  The log gets the text too, so a failure is never silent. */
void outbox_notify (const char *summary, const char *body);

/* The same for mail that was not delivered (category "email.bounced");
 * when @message_id (nullable) names the one message it is about and the
 * server offers actions, with the actions "retry" and "show" for it. */
void outbox_notify_bounced (const char *summary, const char *body, const char *message_id);

G_END_DECLS
