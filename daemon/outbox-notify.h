/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Shows a desktop notification through org.freedesktop.Notifications when a
 * notification server runs on the session bus; never starts one, never
 * waits, and only logs when there is none.  The log gets the text too, so a
 * failure is never silent. */
void outbox_notify (const char *summary, const char *body);

G_END_DECLS
