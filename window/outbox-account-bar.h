/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gtk/gtk.h>
#include <outbox/outbox.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_ACCOUNT_BAR (outbox_account_bar_get_type ())
G_DECLARE_FINAL_TYPE (OutboxAccountBar, outbox_account_bar, OUTBOX, ACCOUNT_BAR, GtkBox)

/* One bar per account that needs attention, above the queue, saying the
 * daemon's sentence, with a button that runs the fix.  Follows accounts
 * (a live GListModel of OutboxAccount).  Emits ::error with a sentence
 * when a fix fails. */
GtkWidget *outbox_account_bar_new (GListModel *accounts);

G_END_DECLS
