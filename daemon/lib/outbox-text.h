/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Text from a server goes to people and over D-Bus: returns it as valid
 * UTF-8 with every control character (C0, DEL, C1) and every line or
 * paragraph separator replaced by '?'.  @text need not be NUL-terminated. */
char *outbox_text_sanitize (const char *text, gsize len);

/* TRUE for the characters outbox_text_sanitize() replaces. */
gboolean outbox_text_is_unsafe_char (gunichar c);

G_END_DECLS
