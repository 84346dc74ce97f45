/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

#include "outbox-account.h"

G_BEGIN_DECLS

/* When to try again: one policy for a message's delivery, an account
 * whose server fails, and a Sent copy.  The wait doubles from @first
 * after each failed attempt up to @max; after @give_up_after seconds of
 * failing the work is given up. */
typedef struct
{
  guint first;
  guint max;
  guint give_up_after;
} OutboxRetryPolicy;

/* The account's retry-first, retry-max and give-up-after, or the defaults
 * (one minute, one hour, five days) when @account is NULL (it was removed). */
OutboxRetryPolicy outbox_retry_policy_for (const OutboxAccountConfig *account);
/* The wait before the next attempt after @attempts failed ones (at least 1). */
guint outbox_retry_backoff (const OutboxRetryPolicy *policy, guint attempts);
/* Whether work failing since @since (Unix time) is to be given up at @now. */
gboolean outbox_retry_gives_up (const OutboxRetryPolicy *policy, gint64 since, gint64 now);
/* "5 days", "2 hours", "90 seconds": as a person would say it. */
char *outbox_retry_format_duration (guint seconds);

G_END_DECLS
