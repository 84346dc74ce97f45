/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* RFC 5321 section 4.5.3.1 limits. */
#define OUTBOX_ADDRESS_MAX_LOCAL_PART 64
#define OUTBOX_ADDRESS_MAX_DOMAIN 255
#define OUTBOX_ADDRESS_MAX_PATH 256

/* outbox_address_validate:
 * @address: an envelope address (addr-spec, without angle brackets)
 * @allow_empty: whether "" (the null reverse-path) is acceptable
 * @error: OUTBOX_ERROR_INVALID_ADDRESS with a message a person can act on
 *
 * Checks an envelope address before it is queued and again before it is
 * written into a command: valid UTF-8; no control characters (C0, DEL, C1),
 * no space, no '<', '>' or unquoted ','; exactly one '@' outside a quoted
 * local part with a non-empty local part and domain; local part at most 64
 * octets, domain at most 255, whole path at most 256; domain made of labels
 * (LDH or non-ASCII, 1..63 octets) or an address literal "[...]".
 */
gboolean outbox_address_validate (const char *address,
                                  gboolean allow_empty,
                                  GError **error);

/* TRUE when @address is pure ASCII (sending it needs no SMTPUTF8). */
gboolean outbox_address_is_ascii (const char *address);

G_END_DECLS
