/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-account.h"
#include "outbox-queue.h"

G_BEGIN_DECLS

/* The maildrop: where outbox-sendmail leaves a message when no session bus
 * answers (cron, ssh), and where the daemon takes it from.
 *
 * Directory $XDG_DATA_HOME/outbox/maildrop/ (0700):
 *
 *   tmp/NAME        being written by outbox-sendmail (0600, O_EXCL)
 *   NAME            complete: written, fsynced, renamed here, directory fsynced
 *   claimed/NAME    taken by the daemon (an atomic rename), being queued
 *   rejected/NAME   did not validate; rejected/NAME.error says why
 *
 * NAME is 1 to 128 characters of [A-Za-z0-9._-] not starting with '.'.
 *
 * The files' format: outbox-maildrop-format.h.
 *
 * A message is never in two places and never in none: the spool record of
 * a message taken from the maildrop carries the origin "maildrop:NAME", the
 * claimed file is deleted only after that record is durable, and at start a
 * claimed file whose origin is already queued is only deleted. */
#define OUTBOX_MAILDROP_ORIGIN_PREFIX "maildrop:"

#define OUTBOX_TYPE_MAILDROP (outbox_maildrop_get_type ())
G_DECLARE_FINAL_TYPE (OutboxMaildrop, outbox_maildrop, OUTBOX, MAILDROP, GObject)

/* @dir: the maildrop directory; @accounts must outlive the maildrop. */
OutboxMaildrop *outbox_maildrop_new (OutboxQueue *queue,
                                     OutboxAccountStore *accounts,
                                     const char *dir);
/* Finishes what a crash left in claimed/, queues every file in the
 * maildrop, and watches it for more.  Call once the bus name is owned. */
void outbox_maildrop_start (OutboxMaildrop *maildrop);

G_END_DECLS
