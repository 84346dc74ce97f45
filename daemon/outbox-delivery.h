/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-credentials.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* Delivers what the queue holds, one lane (one SMTP connection at a time)
 * per account, and records every outcome in the queue.
 *
 * Signal "account-state-changed" (const char *account): what
 * outbox_delivery_get_account_state() says of @account, its state or its
 * message, changed. */
#define OUTBOX_TYPE_DELIVERY (outbox_delivery_get_type ())
G_DECLARE_FINAL_TYPE (OutboxDelivery, outbox_delivery, OUTBOX, DELIVERY, GObject)

OutboxDelivery *outbox_delivery_new (OutboxQueue *queue,
                                     OutboxAccountStore *accounts,
                                     OutboxCredentials *credentials);

/* Why an account's messages wait for the user (Accounts.List "state"). */
typedef enum
{
  OUTBOX_ACCOUNT_STATE_OK,
  OUTBOX_ACCOUNT_STATE_FAILING,             /* its server failed: retried with backoff */
  OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD,      /* refused or missing password */
  OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION, /* OAuth2: outbox account authorize */
  OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION,     /* a linked account gone, sign-in switched off */
} OutboxAccountState;

/* "ok", "failing", "needs-password", ... */
const char *outbox_account_state_to_string (OutboxAccountState state);

/* Looks for due messages and starts idle lanes. */
void outbox_delivery_schedule (OutboxDelivery *delivery);
/* Makes every deferred message due now and unblocks every account (Flush). */
void outbox_delivery_flush (OutboxDelivery *delivery);
/* Retry: unblocks @account and makes its next attempt now, once; the
 * retried message's "due" starts it. */
void outbox_delivery_retry_account (OutboxDelivery *delivery, const char *account);
/* Unblocks @account and forgets its failures (after SetPassword, an
 * authorization, a change of its settings). */
void outbox_delivery_account_changed (OutboxDelivery *delivery, const char *account);
/* Whether the account waits for the user, and (nullable, transfer none)
 * the sentence that says what to do. */
OutboxAccountState outbox_delivery_get_account_state (OutboxDelivery *delivery,
                                                      const char *account,
                                                      const char **out_message);
/* For a failing account: since when (Unix time) and the next attempt (0:
 * none planned).  FALSE when the account is not failing. */
gboolean outbox_delivery_get_account_failure (OutboxDelivery *delivery,
                                              const char *account,
                                              gint64 *out_since,
                                              gint64 *out_next_attempt);
/* Whether GNetworkMonitor says servers can be reached ("online" property). */
gboolean outbox_delivery_get_online (OutboxDelivery *delivery);
/* TRUE while @id is being sent. */
gboolean outbox_delivery_is_sending (OutboxDelivery *delivery, const char *id);

G_END_DECLS
