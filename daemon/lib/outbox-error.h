/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The errors a caller of the daemon can see.  Each maps to a D-Bus error
 * named org.outbox.Outbox1.Error.<Name> (see outbox-dbus-error.c). */
#define OUTBOX_ERROR (outbox_error_quark ())
GQuark outbox_error_quark (void);

typedef enum
{
  OUTBOX_ERROR_FAILED,           /* Failed */
  OUTBOX_ERROR_INVALID_ARGS,     /* InvalidArgs */
  OUTBOX_ERROR_INVALID_ADDRESS,  /* InvalidAddress */
  OUTBOX_ERROR_INVALID_MESSAGE,  /* InvalidMessage */
  OUTBOX_ERROR_NO_SUCH_ACCOUNT,  /* NoSuchAccount */
  OUTBOX_ERROR_NO_SUCH_MESSAGE,  /* NoSuchMessage */
  OUTBOX_ERROR_STORAGE_FAILED,   /* StorageFailed */
  OUTBOX_ERROR_INVALID_STATE,    /* InvalidState */
  OUTBOX_ERROR_INVALID_ACCOUNT,  /* InvalidAccount: bad account settings */
  OUTBOX_ERROR_ACCOUNT_EXISTS,   /* AccountExists */
  OUTBOX_ERROR_SECRET_FAILED,    /* SecretFailed: the Secret Service failed */
} OutboxError;

#define OUTBOX_ERROR_N_ERRORS (OUTBOX_ERROR_SECRET_FAILED + 1)

G_END_DECLS
