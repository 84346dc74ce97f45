/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-credentials.h"

G_BEGIN_DECLS

/* Logs in to every server of @account (SMTP, and IMAP and POP3 where set)
 * at once, each with the secret @credentials gives, and returns an a{sv} with one a{sv} per service ("smtp", "imap",
 * "pop3"), as documented for org.outbox.Outbox1.Accounts.Test.  Never fails
 * for a server's sake: each server's failure is in its own entry. */
void outbox_account_check_async (const OutboxAccountConfig *account,
                                 OutboxCredentials *credentials,
                                 GCancellable *cancellable,
                                 GAsyncReadyCallback callback,
                                 gpointer user_data);
GVariant *outbox_account_check_finish (GAsyncResult *result, GError **error);

G_END_DECLS
