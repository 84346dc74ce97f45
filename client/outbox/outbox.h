/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

/* libOutbox: a client of outboxd, the user's mail submission daemon. */

#define OUTBOX_INSIDE

#include <outbox/outbox-version.h>
#include <outbox/outbox-types.h>
#include <outbox/outbox-enums.h>
#include <outbox/outbox-client-error.h>
#include <outbox/outbox-submit-options.h>
#include <outbox/outbox-message.h>
#include <outbox/outbox-account.h>
#include <outbox/outbox-client.h>

#undef OUTBOX_INSIDE
