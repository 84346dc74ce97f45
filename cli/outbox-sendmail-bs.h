/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-cli-util.h"

G_BEGIN_DECLS

/* outbox-sendmail -bs: an SMTP server on standard input and output that
 * queues each message it receives (or leaves it in the maildrop when no
 * daemon answers).  @dsn_defaults: what -N, -R and -V ask, for the
 * messages whose MAIL and RCPT commands do not.  Returns the exit status. */
int outbox_sendmail_run_smtp (const OutboxCliDsn *dsn_defaults);

G_END_DECLS
