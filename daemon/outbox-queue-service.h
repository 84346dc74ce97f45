/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-account.h"
#include "outbox-dbus.h"
#include "outbox-delivery.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* org.outbox.Outbox1.Queue */
#define OUTBOX_TYPE_QUEUE_SERVICE (outbox_queue_service_get_type ())
G_DECLARE_FINAL_TYPE (OutboxQueueService,
                      outbox_queue_service,
                      OUTBOX,
                      QUEUE_SERVICE,
                      OutboxDbusQueueSkeleton)

OutboxQueueService *outbox_queue_service_new (OutboxQueue *queue,
                                              OutboxDelivery *delivery,
                                              OutboxAccountStore *accounts);
/* Retry of @id, asked for elsewhere than on the bus (a notification's
 * action): the change Retry makes, with a refusal (no such message, or
 * one that cannot be retried now) logged. */
void outbox_queue_service_retry (OutboxQueueService *self, const char *id);
/* Emits the MessageChanged signals still waiting for their window now,
 * but those of messages whose change is still being written; before the
 * service is unexported, so that they reach the bus. */
void outbox_queue_service_flush_changes (OutboxQueueService *self);

G_END_DECLS
