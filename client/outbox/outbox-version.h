/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

/* Marks what libOutbox exports: everything else in the library is hidden. */
#define OUTBOX_EXPORT __attribute__ ((visibility ("default"))) extern
