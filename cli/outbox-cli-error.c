/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <sysexits.h>

#include <gio/gio.h>

#include "outbox-cli-error.h"
#include "outbox-cli-text.h"

G_DEFINE_QUARK (outbox-cli-error-quark, outbox_cli_error)

#define OUTBOX_DBUS_ERROR_PREFIX "org.outbox.Outbox1.Error."
#define SYSTEMD_DBUS_ERROR_PREFIX "org.freedesktop.systemd1."

typedef struct
{
  const char *name;  /* after OUTBOX_DBUS_ERROR_PREFIX */
  int exit_code;
  const char *hint;
} OutboxCliErrorInfo;

static const OutboxCliErrorInfo outbox_errors[] = {
  { "InvalidArgs", EX_USAGE, NULL },
  { "InvalidAddress", EX_NOUSER, NULL },
  { "InvalidMessage", EX_DATAERR, NULL },
  { "NoSuchAccount", EX_CONFIG, "see outbox account list" },
  { "InvalidAccount", EX_CONFIG, "see outbox account add --help" },
  { "AccountExists", EX_CONFIG, "choose another name, or see outbox account list" },
  { "StorageFailed", EX_TEMPFAIL, "check the free space and permissions of the spool, then try again" },
  { "SecretFailed", EX_TEMPFAIL, "check that the keyring is unlocked, then try again" },
  { "NoSuchMessage", EXIT_FAILURE, "see outbox queue" },
  { "InvalidState", EXIT_FAILURE, NULL },
  { "Failed", EXIT_FAILURE, NULL },
};

static const char hint_not_running[] =
  "the outbox daemon is not running and could not be started; is outboxd installed?";
static const char hint_mismatch[] =
  "the running outbox daemon does not speak this version of the interface; restart it";
static const char hint_timeout[] =
  "the outbox daemon did not answer in time; try again";
static const char hint_no_bus[] =
  "outbox needs a desktop session (or DBUS_SESSION_BUS_ADDRESS)";

static const OutboxCliErrorInfo *
lookup_outbox_error (const GError *error)
{
  g_autofree char *remote_name = g_dbus_error_get_remote_error (error);

  if (remote_name == NULL || !g_str_has_prefix (remote_name, OUTBOX_DBUS_ERROR_PREFIX))
    return NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (outbox_errors); i++)
    {
      if (g_str_equal (remote_name + strlen (OUTBOX_DBUS_ERROR_PREFIX), outbox_errors[i].name))
        return &outbox_errors[i];
    }

  return NULL;
}

gboolean
outbox_cli_error_is (const GError *error,
                     const char   *outbox_error_name)
{
  const OutboxCliErrorInfo *info = lookup_outbox_error (error);

  return info != NULL && g_str_equal (info->name, outbox_error_name);
}

static gboolean
is_systemd_error (const GError *error)
{
  g_autofree char *remote_name = g_dbus_error_get_remote_error (error);

  return remote_name != NULL && g_str_has_prefix (remote_name, SYSTEMD_DBUS_ERROR_PREFIX);
}

gboolean
outbox_cli_error_is_daemon_missing (const GError *error)
{
  if (error->domain != G_DBUS_ERROR)
    return is_systemd_error (error);

  switch (error->code)
    {
    case G_DBUS_ERROR_SERVICE_UNKNOWN:
    case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
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
      return TRUE;
    default:
      return FALSE;
    }
}

static gboolean
is_interface_mismatch (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY);
}

static gboolean
is_timeout (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_TIMEOUT) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_TIMED_OUT) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY);
}

static gboolean
is_bus_lost (const GError *error)
{
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_DISCONNECTED) ||
         g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_SERVER);
}

static int
cli_error_exit_code (const GError *error)
{
  switch ((OutboxCliError) error->code)
    {
    case OUTBOX_CLI_ERROR_USAGE:
      return EX_USAGE;
    case OUTBOX_CLI_ERROR_UNAVAILABLE:
      return EX_UNAVAILABLE;
    case OUTBOX_CLI_ERROR_CONFIG:
      return EX_CONFIG;
    case OUTBOX_CLI_ERROR_DATA:
      return EX_DATAERR;
    case OUTBOX_CLI_ERROR_ADDRESS:
      return EX_NOUSER;
    case OUTBOX_CLI_ERROR_TEMPORARY:
      return EX_TEMPFAIL;
    default:
      return EXIT_FAILURE;
    }
}

int
outbox_cli_exit_code (const GError *error)
{
  const OutboxCliErrorInfo *info;

  if (error->domain == OUTBOX_CLI_ERROR)
    return cli_error_exit_code (error);
  if (error->domain == G_OPTION_ERROR ||
      g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS))
    return EX_USAGE;
  if (outbox_cli_error_is_daemon_missing (error) || is_interface_mismatch (error) ||
      is_bus_lost (error))
    return EX_UNAVAILABLE;
  if (is_timeout (error))
    return EX_TEMPFAIL;

  info = lookup_outbox_error (error);
  return info != NULL ? info->exit_code : EXIT_FAILURE;
}

static const char *
default_hint (const GError *error)
{
  const OutboxCliErrorInfo *info;

  if (g_error_matches (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_UNAVAILABLE))
    return hint_no_bus;
  if (outbox_cli_error_is_daemon_missing (error))
    return hint_not_running;
  if (is_interface_mismatch (error))
    return hint_mismatch;
  if (is_timeout (error))
    return hint_timeout;

  info = lookup_outbox_error (error);
  return info != NULL ? info->hint : NULL;
}

char *
outbox_cli_error_message (const GError *error)
{
  g_autoptr(GError) stripped = g_error_copy (error);

  g_dbus_error_strip_remote_error (stripped);
  return outbox_cli_sanitize (stripped->message);
}

/* Prints "outbox: MESSAGE; HINT" on stderr, with @hint, or else the usual
 * hint for this error, and returns the exit code for it. */
int
outbox_cli_report_error (const GError *error,
                         const char   *hint)
{
  g_autofree char *message = outbox_cli_error_message (error);

  if (hint == NULL)
    hint = default_hint (error);
  /* The daemon's own message often says what to do already. */
  if (hint != NULL && strstr (message, hint) != NULL)
    hint = NULL;

  g_strchomp (message);
  if (hint != NULL && g_str_has_suffix (message, "."))
    message[strlen (message) - 1] = '\0';

  if (hint != NULL)
    g_printerr ("%s: %s; %s\n", g_get_application_name (), message, hint);
  else
    g_printerr ("%s: %s\n", g_get_application_name (), message);

  return outbox_cli_exit_code (error);
}

/* Usage errors */

int
outbox_cli_report_usage (const char   *command,
              const GError *error)
{
  g_autofree char *hint = g_strdup_printf ("see outbox %s --help", command);

  return outbox_cli_report_error (error, hint);
}

int
outbox_cli_usage_error (const char *command,
             const char *format,
             ...)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  error = g_error_new_literal (OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE, message);
  return outbox_cli_report_usage (command, error);
}

/* Checks the number of positional arguments; returns EXIT_SUCCESS or the
 * usage error's exit code. */
int
outbox_cli_expect_arguments (const char *command,
                  char      **args,
                  guint       min,
                  guint       max,
                  const char *what)
{
  guint count = args != NULL ? g_strv_length (args) : 0;
  g_autofree char *unexpected = NULL;

  if (count < min)
    return outbox_cli_usage_error (command, "missing %s", what);
  if (count <= max)
    return EXIT_SUCCESS;

  unexpected = outbox_cli_sanitize (args[max]);
  return outbox_cli_usage_error (command, "unexpected argument “%s”", unexpected);
}
