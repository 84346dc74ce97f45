/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* outbox account authorize NAME [--device] [--no-browser]: argv[0] is
 * "authorize".  Returns the exit status (sysexits.h codes on errors). */
int outbox_cli_account_authorize (int    argc,
                                  char **argv);

G_END_DECLS
