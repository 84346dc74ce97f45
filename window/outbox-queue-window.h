/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <adwaita.h>
#include <outbox/outbox.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_QUEUE_WINDOW (outbox_queue_window_get_type ())
G_DECLARE_FINAL_TYPE (OutboxQueueWindow, outbox_queue_window, OUTBOX, QUEUE_WINDOW,
                      AdwApplicationWindow)

OutboxQueueWindow *outbox_queue_window_new (AdwApplication *application,
                                            OutboxClient *client);

/* Selects the message's row and scrolls to it; a message not in the list
 * yet is selected when it arrives. */
void outbox_queue_window_show_message (OutboxQueueWindow *self,
                                       const char *id);

G_END_DECLS
