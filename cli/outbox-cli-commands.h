/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include "outbox-cli-command.h"

G_BEGIN_DECLS

/* The commands of `outbox`, one file a group (outbox-send.c,
 * outbox-queue.c, outbox-status.c, outbox-account*.c); outbox.c lists
 * them in the order `outbox help` shows. */
extern const OutboxCliCommand outbox_cli_send_command;

extern const OutboxCliCommand outbox_cli_queue_command;
extern const OutboxCliCommand outbox_cli_show_command;
extern const OutboxCliCommand outbox_cli_cancel_command;
extern const OutboxCliCommand outbox_cli_hold_command;
extern const OutboxCliCommand outbox_cli_release_command;
extern const OutboxCliCommand outbox_cli_retry_command;
extern const OutboxCliCommand outbox_cli_flush_command;

extern const OutboxCliCommand outbox_cli_status_command;

extern const OutboxCliCommand outbox_cli_account_command;
extern const OutboxCliCommand outbox_cli_account_add_command;
extern const OutboxCliCommand outbox_cli_account_update_command;
extern const OutboxCliCommand outbox_cli_account_authorize_command;

G_END_DECLS
