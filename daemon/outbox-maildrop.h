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
 * File format, version 1: a text envelope, a blank line, then the message
 * bytes exactly as they are to be submitted.
 *
 *   outbox-maildrop 1\n
 *   from VALUE\n          at most once: the envelope sender ("" for <>);
 *                         absent: the account's address
 *   recipient VALUE\n     zero or more, at most 1000; none: the recipients
 *                         are the message's To, Cc and Bcc, and Bcc is
 *                         removed from what is sent
 *   notify VALUE\n        at most once each: the Submit options of
 *   ret VALUE\n           delivery status notifications (notify as one
 *   envid VALUE\n         list, "failure,delay"); checked as Submit
 *                         checks them.  A daemon older than them sets
 *                         such a file aside in rejected/, whole.
 *   \n
 *   MESSAGE
 *
 * A VALUE is UTF-8 in which every octet below 0x21, '%' and 0x7f is
 * written as %XX (two hex digits).  An envelope line is at most
 * OUTBOX_MAILDROP_MAX_LINE octets without its newline.
 *
 * A message is never in two places and never in none: the spool record of
 * a message taken from the maildrop carries the origin "maildrop:NAME", the
 * claimed file is deleted only after that record is durable, and at start a
 * claimed file whose origin is already queued is only deleted. */
#define OUTBOX_MAILDROP_MAGIC "outbox-maildrop 1"
#define OUTBOX_MAILDROP_MAX_LINE 1024
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
