/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-error.h"

G_DEFINE_QUARK (outbox-error-quark, outbox_error)
