/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-credentials.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* Files a copy of each sent message into the account's IMAP Sent folder
 * (see the comment at the top of outbox-sent-copy.c). */
#define OUTBOX_TYPE_SENT_COPY (outbox_sent_copy_get_type ())
G_DECLARE_FINAL_TYPE (OutboxSentCopy, outbox_sent_copy, OUTBOX, SENT_COPY, GObject)

OutboxSentCopy *outbox_sent_copy_new (OutboxQueue *queue,
                                      OutboxAccountStore *accounts,
                                      OutboxCredentials *credentials);
/* Starts the copies that are due. */
void outbox_sent_copy_schedule (OutboxSentCopy *sent_copy);

G_END_DECLS
