/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Text for a terminal. */
guint     outbox_cli_terminal_width     (void);
guint     outbox_cli_display_width      (const char   *text);
char     *outbox_cli_sanitize           (const char   *text);
char     *outbox_cli_fit                (const char   *text,
                                         guint         width);
char     *outbox_cli_format_size        (guint64       size);
char     *outbox_cli_format_duration    (gint64        seconds);
/* A setting in seconds, in the largest unit that holds it exactly:
 * "90 s", "1 min", "1 h", "5 days".  Approximate (rounded down) when
 * @exact is FALSE: "in 2 h", "3 days ago". */
char     *outbox_cli_format_seconds     (guint64       seconds,
                                         gboolean      exact);
char     *outbox_cli_format_time        (gint64        unix_time,
                                         gint64        now);

/* A table whose @flexible columns shrink (with "…") to fit @width.  @rows
 * holds one string vector of @n_columns cells per row. */
void      outbox_cli_print_table        (guint              n_columns,
                                         const char *const *headers,
                                         const gboolean    *flexible,
                                         GPtrArray         *rows,
                                         guint              width);

G_END_DECLS
