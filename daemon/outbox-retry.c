/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-retry.h"

OutboxRetryPolicy
outbox_retry_policy_for (const OutboxAccountConfig *account)
{
  OutboxRetryPolicy policy = { 60, 3600, 5 * 24 * 3600 };

  if (account != NULL)
    {
      policy.first = account->retry_first;
      policy.max = MAX (account->retry_max, account->retry_first);
      policy.give_up_after = account->give_up_after;
    }
  return policy;
}

guint
outbox_retry_backoff (const OutboxRetryPolicy *policy, guint attempts)
{
  guint delay = policy->first;

  for (guint i = 1; i < attempts && delay < policy->max; i++)
    delay = delay > G_MAXUINT / 2 ? G_MAXUINT : delay * 2;
  return MIN (delay, policy->max);
}

gboolean
outbox_retry_gives_up (const OutboxRetryPolicy *policy, gint64 since, gint64 now)
{
  return since != 0 && now - since >= (gint64) policy->give_up_after;
}

char *
outbox_retry_format_duration (guint seconds)
{
  if (seconds % 86400 == 0)
    return g_strdup_printf ("%u day%s", seconds / 86400, seconds == 86400 ? "" : "s");
  if (seconds % 3600 == 0)
    return g_strdup_printf ("%u hour%s", seconds / 3600, seconds == 3600 ? "" : "s");
  return g_strdup_printf ("%u seconds", seconds);
}
