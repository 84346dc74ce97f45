/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

#include <glib.h>

#include <outbox/outbox-version.h>

G_BEGIN_DECLS

/**
 * OUTBOX_CLIENT_ERROR:
 *
 * The error domain of libOutbox: one code for each error outboxd answers
 * with (`org.outbox.Outbox1.Error.*`), and
 * three codes for the bus itself: %OUTBOX_CLIENT_ERROR_DAEMON_UNAVAILABLE
 * (nothing was done), %OUTBOX_CLIENT_ERROR_NO_REPLY (what was done is not
 * known) and %OUTBOX_CLIENT_ERROR_INCOMPATIBLE_DAEMON.
 * The message is the daemon's, which says what to do.
 */
#define OUTBOX_CLIENT_ERROR (outbox_client_error_quark ())

/**
 * OutboxClientError:
 * @OUTBOX_CLIENT_ERROR_FAILED: `org.outbox.Outbox1.Error.Failed`, or an
 *   error the library does not know
 * @OUTBOX_CLIENT_ERROR_INVALID_ARGS: `InvalidArgs`: an option or argument
 *   outboxd refuses
 * @OUTBOX_CLIENT_ERROR_INVALID_ADDRESS: `InvalidAddress`: an address is not
 *   one mail can go to
 * @OUTBOX_CLIENT_ERROR_INVALID_MESSAGE: `InvalidMessage`: the message is
 *   not one that can be sent (no headers, lines over 998 octets, NUL bytes)
 * @OUTBOX_CLIENT_ERROR_NO_SUCH_ACCOUNT: `NoSuchAccount`
 * @OUTBOX_CLIENT_ERROR_NO_SUCH_MESSAGE: `NoSuchMessage`
 * @OUTBOX_CLIENT_ERROR_STORAGE_FAILED: `StorageFailed`: the spool could not
 *   store it (disk full, say); nothing was queued
 * @OUTBOX_CLIENT_ERROR_INVALID_STATE: `InvalidState`: not now (cancelling a
 *   message while it is being sent, say)
 * @OUTBOX_CLIENT_ERROR_INVALID_ACCOUNT: `InvalidAccount`: account settings
 *   outboxd refuses
 * @OUTBOX_CLIENT_ERROR_ACCOUNT_EXISTS: `AccountExists`
 * @OUTBOX_CLIENT_ERROR_SECRET_FAILED: `SecretFailed`: the Secret Service
 *   could not store or find a secret
 * @OUTBOX_CLIENT_ERROR_DAEMON_UNAVAILABLE: outboxd is not running and the
 *   session bus could not start it (or there is no session bus): the call
 *   was certainly not carried out
 * @OUTBOX_CLIENT_ERROR_NO_REPLY: outboxd went away or did not answer in
 *   time: whether the call was carried out (a submission queued) is not
 *   known, so look before doing it again
 * @OUTBOX_CLIENT_ERROR_INCOMPATIBLE_DAEMON: what answers on the bus does
 *   not have this method or interface (an outboxd of another release)
 *
 * What went wrong in a call to outboxd.
 */
typedef enum
{
  OUTBOX_CLIENT_ERROR_FAILED,
  OUTBOX_CLIENT_ERROR_INVALID_ARGS,
  OUTBOX_CLIENT_ERROR_INVALID_ADDRESS,
  OUTBOX_CLIENT_ERROR_INVALID_MESSAGE,
  OUTBOX_CLIENT_ERROR_NO_SUCH_ACCOUNT,
  OUTBOX_CLIENT_ERROR_NO_SUCH_MESSAGE,
  OUTBOX_CLIENT_ERROR_STORAGE_FAILED,
  OUTBOX_CLIENT_ERROR_INVALID_STATE,
  OUTBOX_CLIENT_ERROR_INVALID_ACCOUNT,
  OUTBOX_CLIENT_ERROR_ACCOUNT_EXISTS,
  OUTBOX_CLIENT_ERROR_SECRET_FAILED,
  OUTBOX_CLIENT_ERROR_DAEMON_UNAVAILABLE,
  OUTBOX_CLIENT_ERROR_NO_REPLY,
  OUTBOX_CLIENT_ERROR_INCOMPATIBLE_DAEMON,
} OutboxClientError;

OUTBOX_EXPORT
GQuark outbox_client_error_quark (void);

G_END_DECLS
