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

/* The code for an error of the bus, not of outboxd; FAILED when none fits. */
static OutboxClientError
bus_error_code (const GError *error)
{
  if (error->domain == G_DBUS_ERROR)
    switch (error->code)
      {
      case G_DBUS_ERROR_SERVICE_UNKNOWN:
      case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
      case G_DBUS_ERROR_NO_SERVER:
      case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
      case G_DBUS_ERROR_SPAWN_FORK_FAILED:
      case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
      case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
      case G_DBUS_ERROR_SPAWN_FAILED:
      case G_DBUS_ERROR_SPAWN_SETUP_FAILED:
      case G_DBUS_ERROR_SPAWN_CONFIG_INVALID:
      case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
      case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
      case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
      case G_DBUS_ERROR_SPAWN_FILE_INVALID:
      case G_DBUS_ERROR_SPAWN_NO_MEMORY:
        return OUTBOX_CLIENT_ERROR_DAEMON_UNAVAILABLE;
      case G_DBUS_ERROR_NO_REPLY:
      case G_DBUS_ERROR_TIMEOUT:
      case G_DBUS_ERROR_TIMED_OUT:
      case G_DBUS_ERROR_DISCONNECTED:
        return OUTBOX_CLIENT_ERROR_NO_REPLY;
      case G_DBUS_ERROR_UNKNOWN_METHOD:
      case G_DBUS_ERROR_UNKNOWN_OBJECT:
      case G_DBUS_ERROR_UNKNOWN_INTERFACE:
      case G_DBUS_ERROR_UNKNOWN_PROPERTY:
        return OUTBOX_CLIENT_ERROR_INCOMPATIBLE_DAEMON;
      default:
        return OUTBOX_CLIENT_ERROR_FAILED;
      }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return OUTBOX_CLIENT_ERROR_NO_REPLY;
  return OUTBOX_CLIENT_ERROR_FAILED;
}

static const char *const bus_error_prefixes[] = {
  [OUTBOX_CLIENT_ERROR_DAEMON_UNAVAILABLE] = "outboxd is not available",
  [OUTBOX_CLIENT_ERROR_NO_REPLY] = "outboxd did not answer (whether it did what was asked is not known)",
  [OUTBOX_CLIENT_ERROR_INCOMPATIBLE_DAEMON] = "the outboxd that answers is of another release; restart it",
};

/* Every error a call to outboxd gives comes out in OUTBOX_CLIENT_ERROR,
 * with the daemon's sentence and without the D-Bus error name in front. */
void
_outbox_client_error_translate (GError **error)
{
  OutboxClientError code;
  GError *translated;

  if (error == NULL || *error == NULL)
    return;
  g_dbus_error_strip_remote_error (*error);
  if ((*error)->domain == OUTBOX_CLIENT_ERROR || g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  code = bus_error_code (*error);
  if (code == OUTBOX_CLIENT_ERROR_FAILED)
    translated = g_error_new_literal (OUTBOX_CLIENT_ERROR, code, (*error)->message);
  else
    translated = g_error_new (OUTBOX_CLIENT_ERROR, code, "%s: %s", bus_error_prefixes[code], (*error)->message);
  g_error_free (*error);
  *error = translated;
}

void
_outbox_task_return_dbus_error (GTask *task, GError *error)
{
  _outbox_client_error_translate (&error);
  g_task_return_error (task, error);
}
