/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gtk/gtk.h>
#include <outbox/outbox.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_MESSAGE_ROW (outbox_message_row_get_type ())
G_DECLARE_FINAL_TYPE (OutboxMessageRow, outbox_message_row, OUTBOX, MESSAGE_ROW, GtkBox)

GtkWidget *outbox_message_row_new (void);

/* Shows message (NULL: none) and follows its changes until the next call.
 * The buttons activate win.retry, win.send-now, win.hold, win.release and
 * win.cancel with the message's id. */
void outbox_message_row_set_message (OutboxMessageRow *self,
                                     OutboxMessage *message);

/* "3 min ago", "in 8 s": how far away a time is, for a person. */
char *outbox_format_distance (gint64 seconds);

G_END_DECLS
