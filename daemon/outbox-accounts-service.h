/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-account.h"
#include "outbox-dbus.h"
#include "outbox-delivery.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* org.outbox.Outbox1.Accounts */
#define OUTBOX_TYPE_ACCOUNTS_SERVICE (outbox_accounts_service_get_type ())
G_DECLARE_FINAL_TYPE (OutboxAccountsService,
                      outbox_accounts_service,
                      OUTBOX,
                      ACCOUNTS_SERVICE,
                      OutboxDbusAccountsSkeleton)

OutboxAccountsService *outbox_accounts_service_new (OutboxAccountStore *accounts,
                                                    OutboxQueue *queue,
                                                    OutboxDelivery *delivery,
                                                    OutboxCredentials *credentials);
/* Emits the AccountChanged signals still waiting for their window now;
 * before the service is unexported, so that they reach the bus. */
void outbox_accounts_service_flush_changes (OutboxAccountsService *self);

G_END_DECLS
