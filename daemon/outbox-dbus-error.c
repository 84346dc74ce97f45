/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-dbus-error.h"
#include "outbox-error.h"

static const GDBusErrorEntry outbox_dbus_error_entries[] = {
  { OUTBOX_ERROR_FAILED, "org.outbox.Outbox1.Error.Failed" },
  { OUTBOX_ERROR_INVALID_ARGS, "org.outbox.Outbox1.Error.InvalidArgs" },
  { OUTBOX_ERROR_INVALID_ADDRESS, "org.outbox.Outbox1.Error.InvalidAddress" },
  { OUTBOX_ERROR_INVALID_MESSAGE, "org.outbox.Outbox1.Error.InvalidMessage" },
  { OUTBOX_ERROR_NO_SUCH_ACCOUNT, "org.outbox.Outbox1.Error.NoSuchAccount" },
  { OUTBOX_ERROR_NO_SUCH_MESSAGE, "org.outbox.Outbox1.Error.NoSuchMessage" },
  { OUTBOX_ERROR_STORAGE_FAILED, "org.outbox.Outbox1.Error.StorageFailed" },
  { OUTBOX_ERROR_INVALID_STATE, "org.outbox.Outbox1.Error.InvalidState" },
  { OUTBOX_ERROR_INVALID_ACCOUNT, "org.outbox.Outbox1.Error.InvalidAccount" },
  { OUTBOX_ERROR_ACCOUNT_EXISTS, "org.outbox.Outbox1.Error.AccountExists" },
  { OUTBOX_ERROR_SECRET_FAILED, "org.outbox.Outbox1.Error.SecretFailed" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (outbox_dbus_error_entries) == OUTBOX_ERROR_N_ERRORS);

void
outbox_dbus_error_register (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (outbox_dbus_error_entries); i++)
    g_dbus_error_register_error (OUTBOX_ERROR, outbox_dbus_error_entries[i].error_code,
                                 outbox_dbus_error_entries[i].dbus_error_name);
}

void
outbox_dbus_return_error (GDBusMethodInvocation *invocation, GError *error)
{
  if (error->domain != OUTBOX_ERROR)
    {
      GError *wrapped = g_error_new_literal (OUTBOX_ERROR, OUTBOX_ERROR_FAILED, error->message);
      g_error_free (error);
      error = wrapped;
    }
  g_dbus_method_invocation_take_error (invocation, error);
}
