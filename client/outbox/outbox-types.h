/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

#include <glib-object.h>

#include <outbox/outbox-version.h>

G_BEGIN_DECLS

/**
 * OutboxMessageState:
 * @OUTBOX_MESSAGE_STATE_UNKNOWN: a state this version of the library does
 *   not know (a newer outboxd)
 * @OUTBOX_MESSAGE_STATE_QUEUED: waiting for its turn
 * @OUTBOX_MESSAGE_STATE_SCHEDULED: waiting for its send time (send later,
 *   or the undo window of a delay)
 * @OUTBOX_MESSAGE_STATE_HELD: kept back until released
 * @OUTBOX_MESSAGE_STATE_SENDING: being sent now
 * @OUTBOX_MESSAGE_STATE_DEFERRED: a temporary failure; the next attempt
 *   time is known
 * @OUTBOX_MESSAGE_STATE_SENT: every recipient took it
 * @OUTBOX_MESSAGE_STATE_FAILED: failed for good; kept until retried or
 *   cancelled
 * @OUTBOX_MESSAGE_STATE_REMOVED: it left the queue (cancelled, or a sent
 *   message the spool no longer keeps); the object is no longer in the
 *   list of messages
 *
 * Where a message is in the queue, as outboxd reports it.
 */
typedef enum
{
  OUTBOX_MESSAGE_STATE_UNKNOWN,
  OUTBOX_MESSAGE_STATE_QUEUED,
  OUTBOX_MESSAGE_STATE_SCHEDULED,
  OUTBOX_MESSAGE_STATE_HELD,
  OUTBOX_MESSAGE_STATE_SENDING,
  OUTBOX_MESSAGE_STATE_DEFERRED,
  OUTBOX_MESSAGE_STATE_SENT,
  OUTBOX_MESSAGE_STATE_FAILED,
  OUTBOX_MESSAGE_STATE_REMOVED,
} OutboxMessageState;

/**
 * OutboxAccountState:
 * @OUTBOX_ACCOUNT_STATE_UNKNOWN: a state this version of the library does
 *   not know (a newer outboxd)
 * @OUTBOX_ACCOUNT_STATE_OK: nothing keeps the account's mail back
 * @OUTBOX_ACCOUNT_STATE_FAILING: its server could not be reached or
 *   refused the session for a passing reason; its messages are retried
 *   with backoff
 * @OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD: the server refused the password,
 *   or none is stored
 * @OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION: the OAuth2 grant must be
 *   renewed (`outbox account authorize`)
 * @OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION: a linked GNOME Online Accounts
 *   account is gone or its mail is switched off, or the server switched
 *   this way of signing in off
 * @OUTBOX_ACCOUNT_STATE_REMOVED: the account was removed; the object is no
 *   longer in the list of accounts
 *
 * Whether an account's messages can go, as outboxd reports it.
 */
typedef enum
{
  OUTBOX_ACCOUNT_STATE_UNKNOWN,
  OUTBOX_ACCOUNT_STATE_OK,
  OUTBOX_ACCOUNT_STATE_FAILING,
  OUTBOX_ACCOUNT_STATE_NEEDS_PASSWORD,
  OUTBOX_ACCOUNT_STATE_NEEDS_AUTHORIZATION,
  OUTBOX_ACCOUNT_STATE_NEEDS_ATTENTION,
  OUTBOX_ACCOUNT_STATE_REMOVED,
} OutboxAccountState;

typedef struct _OutboxClient OutboxClient;
typedef struct _OutboxMessage OutboxMessage;
typedef struct _OutboxAccount OutboxAccount;
typedef struct _OutboxSubmitOptions OutboxSubmitOptions;

G_END_DECLS
