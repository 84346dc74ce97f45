/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* (transfer full) The path of the helper program @name (such as
 * "outbox-oauth2-helper"), which lies next to the running executable: both
 * in libexecdir once installed, both in the build tree's daemon/ before.
 * The helpers do what needs libsoup, which outboxd does not load. */
char *outbox_helper_path (const char *name, GError **error);

G_END_DECLS
