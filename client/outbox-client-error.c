/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/* One to one with the daemon's errors (see the Queue interface's XML). */
static const GDBusErrorEntry outbox_client_error_entries[] = {
  { OUTBOX_CLIENT_ERROR_FAILED, "org.outbox.Outbox1.Error.Failed" },
  { OUTBOX_CLIENT_ERROR_INVALID_ARGS, "org.outbox.Outbox1.Error.InvalidArgs" },
  { OUTBOX_CLIENT_ERROR_INVALID_ADDRESS, "org.outbox.Outbox1.Error.InvalidAddress" },
  { OUTBOX_CLIENT_ERROR_INVALID_MESSAGE, "org.outbox.Outbox1.Error.InvalidMessage" },
  { OUTBOX_CLIENT_ERROR_NO_SUCH_ACCOUNT, "org.outbox.Outbox1.Error.NoSuchAccount" },
  { OUTBOX_CLIENT_ERROR_NO_SUCH_MESSAGE, "org.outbox.Outbox1.Error.NoSuchMessage" },
  { OUTBOX_CLIENT_ERROR_STORAGE_FAILED, "org.outbox.Outbox1.Error.StorageFailed" },
  { OUTBOX_CLIENT_ERROR_INVALID_STATE, "org.outbox.Outbox1.Error.InvalidState" },
  { OUTBOX_CLIENT_ERROR_INVALID_ACCOUNT, "org.outbox.Outbox1.Error.InvalidAccount" },
  { OUTBOX_CLIENT_ERROR_ACCOUNT_EXISTS, "org.outbox.Outbox1.Error.AccountExists" },
  { OUTBOX_CLIENT_ERROR_SECRET_FAILED, "org.outbox.Outbox1.Error.SecretFailed" },
};

GQuark
outbox_client_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("outbox-client-error-quark", &quark,
                                      outbox_client_error_entries,
                                      G_N_ELEMENTS (outbox_client_error_entries));
  return (GQuark) quark;
}

gboolean
_outbox_client_error_is_unavailable (const GError *error)
{
  if (error->domain == G_DBUS_ERROR)
    {
      switch (error->code)
        {
        case G_DBUS_ERROR_SERVICE_UNKNOWN:
        case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
        case G_DBUS_ERROR_NO_REPLY:
        case G_DBUS_ERROR_TIMEOUT:
        case G_DBUS_ERROR_TIMED_OUT:
        case G_DBUS_ERROR_DISCONNECTED:
        case G_DBUS_ERROR_NO_SERVER:
        case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
        case G_DBUS_ERROR_SPAWN_FORK_FAILED:
        case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
        case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
        case G_DBUS_ERROR_SPAWN_FAILED:
        case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
        case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
        case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
        case G_DBUS_ERROR_SPAWN_FILE_INVALID:
        case G_DBUS_ERROR_SPAWN_NO_MEMORY:
        case G_DBUS_ERROR_UNKNOWN_OBJECT:
        case G_DBUS_ERROR_UNKNOWN_INTERFACE:
          return TRUE;
        default:
          return FALSE;
        }
    }
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

/* Every error a call to outboxd gives comes out in OUTBOX_CLIENT_ERROR,
 * with the daemon's sentence and without the D-Bus error name in front. */
void
_outbox_client_error_translate (GError **error)
{
  GError *translated;

  if (error == NULL || *error == NULL)
    return;
  if ((*error)->domain == OUTBOX_CLIENT_ERROR)
    {
      g_dbus_error_strip_remote_error (*error);
      return;
    }
  if (g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  if (_outbox_client_error_is_unavailable (*error))
    {
      g_dbus_error_strip_remote_error (*error);
      translated = g_error_new (OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_DAEMON_UNAVAILABLE,
                                "outboxd is not available: %s", (*error)->message);
    }
  else
    {
      g_dbus_error_strip_remote_error (*error);
      translated = g_error_new_literal (OUTBOX_CLIENT_ERROR, OUTBOX_CLIENT_ERROR_FAILED,
                                        (*error)->message);
    }
  g_error_free (*error);
  *error = translated;
}

void
_outbox_task_return_dbus_error (GTask *task, GError *error)
{
  _outbox_client_error_translate (&error);
  g_task_return_error (task, error);
}
