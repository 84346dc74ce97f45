/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* Delivers what the queue holds, one lane (one SMTP connection at a time)
 * per account, and records every outcome in the queue. */
#define OUTBOX_TYPE_DELIVERY (outbox_delivery_get_type ())
G_DECLARE_FINAL_TYPE (OutboxDelivery, outbox_delivery, OUTBOX, DELIVERY, GObject)

OutboxDelivery *outbox_delivery_new (OutboxQueue *queue, OutboxAccountStore *accounts);

/* Looks for due messages and starts idle lanes. */
void outbox_delivery_schedule (OutboxDelivery *delivery);
/* Makes every deferred message due now and forgets that an account needed
 * its password (Flush). */
void outbox_delivery_flush (OutboxDelivery *delivery);
/* Forgets that @account needed its password (after SetPassword). */
void outbox_delivery_account_changed (OutboxDelivery *delivery, const char *account);
/* TRUE while a 535 (or a missing password) stops the account. */
gboolean outbox_delivery_account_needs_password (OutboxDelivery *delivery, const char *account);
/* Whether GNetworkMonitor says servers can be reached ("online" property). */
gboolean outbox_delivery_get_online (OutboxDelivery *delivery);
/* TRUE while @id is being sent. */
gboolean outbox_delivery_is_sending (OutboxDelivery *delivery, const char *id);

G_END_DECLS
