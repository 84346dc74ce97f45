/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Maps OUTBOX_ERROR codes to org.outbox.Outbox1.Error.* names. */
void outbox_dbus_error_register (void);

/* Returns @error (taken) to the caller; errors of other domains become
 * org.outbox.Outbox1.Error.Failed with their message. */
void outbox_dbus_return_error (GDBusMethodInvocation *invocation, GError *error);

G_END_DECLS
