/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-cli-util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sysexits.h>
#include <unistd.h>

G_DEFINE_QUARK (outbox-cli-error-quark, outbox_cli_error)

#define OUTBOX_DBUS_ERROR_PREFIX "org.outbox.Outbox1.Error."
#define SYSTEMD_DBUS_ERROR_PREFIX "org.freedesktop.systemd1."
#define ELLIPSIS "…"

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

static gboolean
set_bad_time_error (const char  *when,
                    GError     **error)
{
  g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE,
               "cannot understand the time “%s”: use ISO 8601 (2025-03-01T09:30) "
               "or a delay such as +45s, +30m, +2h or +1d", when);
  return FALSE;
}

static gint64
seconds_per_unit (char unit)
{
  switch (unit)
    {
    case 's':
      return 1;
    case 'm':
      return 60;
    case 'h':
      return 60 * 60;
    case 'd':
      return 24 * 60 * 60;
    default:
      return 0;
    }
}

static gboolean
parse_delay (const char  *when,
             GDateTime   *now,
             gint64      *out_unix_time,
             GError     **error)
{
  const char *digits = when + 1;
  char *end = NULL;
  guint64 amount;
  gint64 unit;
  gint64 now_unix = g_date_time_to_unix (now);

  if (!g_ascii_isdigit (digits[0]))
    return set_bad_time_error (when, error);

  errno = 0;
  amount = g_ascii_strtoull (digits, &end, 10);
  if (errno != 0 || end[0] == '\0' || end[1] != '\0')
    return set_bad_time_error (when, error);

  unit = seconds_per_unit (end[0]);
  if (unit == 0 || amount > (guint64) (G_MAXINT64 - now_unix) / (guint64) unit)
    return set_bad_time_error (when, error);

  *out_unix_time = now_unix + (gint64) amount * unit;
  return TRUE;
}

gboolean
outbox_cli_parse_send_at (const char  *when,
                          GDateTime   *now,
                          gint64      *out_unix_time,
                          GError     **error)
{
  g_autoptr(GTimeZone) local_zone = NULL;
  g_autoptr(GDateTime) time = NULL;

  if (when[0] == '+')
    return parse_delay (when, now, out_unix_time, error);

  local_zone = g_time_zone_new_local ();
  time = g_date_time_new_from_iso8601 (when, local_zone);
  if (time == NULL)
    return set_bad_time_error (when, error);

  *out_unix_time = g_date_time_to_unix (time);
  return TRUE;
}

/* Delivery status notifications */

void
outbox_cli_dsn_clear (OutboxCliDsn *dsn)
{
  g_clear_pointer (&dsn->envid, g_free);
}

static gboolean
dsn_usage_error (const char *flag, GError *local_error, GError **error)
{
  g_autofree char *message = outbox_cli_sanitize (local_error->message);

  g_set_error (error, OUTBOX_CLI_ERROR, OUTBOX_CLI_ERROR_USAGE, "%s: %s", flag, message);
  g_error_free (local_error);
  return FALSE;
}

gboolean
outbox_cli_dsn_parse (const char *const flags[3],
                      const char   *notify,
                      const char   *ret,
                      const char   *envid,
                      OutboxCliDsn *out,
                      GError      **error)
{
  GError *local_error = NULL;

  if (notify != NULL && !outbox_dsn_notify_parse (notify, &out->notify, &local_error))
    return dsn_usage_error (flags[0], local_error, error);
  if (ret != NULL && !outbox_dsn_ret_parse (ret, &out->ret, &local_error))
    return dsn_usage_error (flags[1], local_error, error);
  if (envid != NULL && !outbox_dsn_envid_validate (envid, &local_error))
    return dsn_usage_error (flags[2], local_error, error);
  if (envid != NULL)
    {
      g_free (out->envid);
      out->envid = g_strdup (envid);
    }
  return TRUE;
}

void
outbox_cli_dsn_insert (const OutboxCliDsn *dsn,
                       GVariantDict       *options)
{
  if (dsn->notify != OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_auto(GStrv) words = outbox_dsn_notify_to_words (dsn->notify);

      g_variant_dict_insert_value (options, "notify",
                                   g_variant_new_strv ((const char *const *) words, -1));
    }
  if (dsn->ret != OUTBOX_DSN_RET_DEFAULT)
    g_variant_dict_insert (options, "ret", "s", outbox_dsn_ret_to_string (dsn->ret));
  if (dsn->envid != NULL)
    g_variant_dict_insert (options, "envid", "s", dsn->envid);
}

guint
outbox_cli_terminal_width (void)
{
  const char *columns = g_getenv ("COLUMNS");
  guint64 value;
  struct winsize size;

  if (columns != NULL &&
      g_ascii_string_to_unsigned (columns, 10, 1, G_MAXUINT16, &value, NULL))
    return (guint) value;

  if (isatty (STDOUT_FILENO) &&
      ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    return size.ws_col;

  return 80;
}

static guint
unichar_width (gunichar c)
{
  if (g_unichar_iszerowidth (c))
    return 0;
  return g_unichar_iswide (c) ? 2 : 1;
}

/* @text must be valid UTF-8 (as outbox_cli_sanitize() returns). */
guint
outbox_cli_display_width (const char *text)
{
  guint width = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    width += unichar_width (g_utf8_get_char (p));

  return width;
}

static gboolean
is_bidi_control (gunichar c)
{
  return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069);
}

/* Text from a server or a message must not drive the terminal: control
 * characters and bidi overrides are replaced, and the result is one line
 * of valid UTF-8. */
char *
outbox_cli_sanitize (const char *text)
{
  g_autofree char *valid = g_utf8_make_valid (text, -1);
  GString *clean = g_string_sized_new (strlen (valid));

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iscntrl (c) && g_unichar_isspace (c))
        g_string_append_c (clean, ' ');
      else if (g_unichar_iscntrl (c) || is_bidi_control (c))
        g_string_append_unichar (clean, 0xFFFD);
      else
        g_string_append_unichar (clean, c);
    }

  return g_string_free (clean, FALSE);
}

/* Sanitizes @text and cuts it to @width columns, ending in "…" when cut. */
char *
outbox_cli_fit (const char *text,
                guint       width)
{
  g_autofree char *clean = outbox_cli_sanitize (text);
  GString *fitted;
  guint used = 0;

  if (outbox_cli_display_width (clean) <= width)
    return g_steal_pointer (&clean);
  if (width == 0)
    return g_strdup ("");

  fitted = g_string_new (NULL);
  for (const char *p = clean; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (used + unichar_width (c) > width - 1)
        break;
      used += unichar_width (c);
      g_string_append_unichar (fitted, c);
    }
  g_string_append (fitted, ELLIPSIS);

  return g_string_free (fitted, FALSE);
}

char *
outbox_cli_format_size (guint64 size)
{
  static const char units[] = "KMGTPE";
  double value = (double) size / 1024.0;
  gsize unit = 0;

  if (size < 1024)
    return g_strdup_printf ("%" G_GUINT64_FORMAT, size);

  while (value >= 999.5 && units[unit + 1] != '\0')
    {
      value /= 1024.0;
      unit++;
    }

  if (value < 9.95)
    return g_strdup_printf ("%.1f%c", value, units[unit]);
  return g_strdup_printf ("%.0f%c", value, units[unit]);
}

char *
outbox_cli_format_duration (gint64 seconds)
{
  guint64 magnitude = seconds < 0 ? (guint64) -(seconds + 1) + 1 : (guint64) seconds;

  if (magnitude < 60)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "s", magnitude);
  if (magnitude < 60 * 60)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "m", magnitude / 60);
  if (magnitude < 24 * 60 * 60)
    return g_strdup_printf ("%" G_GUINT64_FORMAT "h", magnitude / (60 * 60));
  return g_strdup_printf ("%" G_GUINT64_FORMAT "d", magnitude / (24 * 60 * 60));
}

char *
outbox_cli_format_seconds (guint64  seconds,
                           gboolean exact)
{
  static const struct { guint64 size; const char *one; const char *many; } units[] = {
    { 24 * 60 * 60, "day", "days" }, { 60 * 60, "h", "h" }, { 60, "min", "min" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (units); i++)
    {
      guint64 count = seconds / units[i].size;

      if (count == 0 || (exact && seconds % units[i].size != 0))
        continue;
      return g_strdup_printf ("%" G_GUINT64_FORMAT " %s", count,
                              count == 1 ? units[i].one : units[i].many);
    }
  return g_strdup_printf ("%" G_GUINT64_FORMAT " s", seconds);
}

/* Local time, with how far it is from @now: "2025-03-01 09:30:00 (in 2 h)". */
char *
outbox_cli_format_time (gint64 unix_time,
                        gint64 now)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (unix_time);
  g_autoptr(GDateTime) local = NULL;
  g_autofree char *formatted = NULL;
  g_autofree char *distance =
      outbox_cli_format_seconds (unix_time >= now ? (guint64) (unix_time - now)
                                                  : (guint64) (now - unix_time), FALSE);

  if (utc == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);

  local = g_date_time_to_local (utc);
  formatted = g_date_time_format (local, "%Y-%m-%d %H:%M:%S");
  if (unix_time == now)
    return g_strdup_printf ("%s (now)", formatted);
  if (unix_time > now)
    return g_strdup_printf ("%s (in %s)", formatted, distance);
  return g_strdup_printf ("%s (%s ago)", formatted, distance);
}

static void
measure_columns (guint              n_columns,
                 const char *const *headers,
                 GPtrArray         *rows,
                 guint             *natural)
{
  for (guint c = 0; c < n_columns; c++)
    {
      g_autofree char *header = outbox_cli_sanitize (headers[c]);

      natural[c] = outbox_cli_display_width (header);
      for (guint r = 0; r < rows->len; r++)
        {
          const char *const *row = g_ptr_array_index (rows, r);
          g_autofree char *cell = outbox_cli_sanitize (row[c]);

          natural[c] = MAX (natural[c], outbox_cli_display_width (cell));
        }
    }
}

/* Flexible columns narrower than an even share of the room left keep
 * their width; the others split what remains. */
static void
share_flexible_width (guint           n_columns,
                      const gboolean *flexible,
                      const guint    *natural,
                      guint           room,
                      guint          *widths)
{
  enum { MIN_FLEXIBLE_WIDTH = 4 };
  g_autofree gboolean *settled = g_new0 (gboolean, n_columns);
  guint unsettled = 0;
  gboolean progress = TRUE;

  for (guint c = 0; c < n_columns; c++)
    {
      settled[c] = !flexible[c];
      unsettled += flexible[c] ? 1 : 0;
    }

  while (unsettled > 0 && progress)
    {
      guint share = room / unsettled;

      progress = FALSE;
      for (guint c = 0; c < n_columns; c++)
        {
          if (settled[c] || natural[c] > share)
            continue;
          widths[c] = natural[c];
          room -= natural[c];
          settled[c] = TRUE;
          unsettled--;
          progress = TRUE;
        }
    }

  for (guint c = 0; c < n_columns && unsettled > 0; c++)
    {
      if (settled[c])
        continue;
      widths[c] = MAX (room / unsettled, (guint) MIN_FLEXIBLE_WIDTH);
      room -= MIN (widths[c], room);
      unsettled--;
    }
}

static void
print_row (guint              n_columns,
           const char *const *cells,
           const guint       *widths)
{
  GString *line = g_string_new (NULL);

  for (guint c = 0; c < n_columns; c++)
    {
      g_autofree char *cell = outbox_cli_fit (cells[c], widths[c]);

      if (c > 0)
        g_string_append (line, "  ");
      g_string_append (line, cell);
      if (c + 1 < n_columns)
        {
          for (guint pad = outbox_cli_display_width (cell); pad < widths[c]; pad++)
            g_string_append_c (line, ' ');
        }
    }

  g_strchomp (line->str);
  g_print ("%s\n", line->str);
  g_string_free (line, TRUE);
}

void
outbox_cli_print_table (guint              n_columns,
                        const char *const *headers,
                        const gboolean    *flexible,
                        GPtrArray         *rows,
                        guint              width)
{
  enum { COLUMN_GAP = 2 };
  g_autofree guint *natural = g_new0 (guint, n_columns);
  g_autofree guint *widths = g_new0 (guint, n_columns);
  guint fixed = COLUMN_GAP * (n_columns - 1);
  guint total = fixed;

  measure_columns (n_columns, headers, rows, natural);
  for (guint c = 0; c < n_columns; c++)
    {
      widths[c] = natural[c];
      total += natural[c];
      fixed += flexible[c] ? 0 : natural[c];
    }

  if (total > width)
    share_flexible_width (n_columns, flexible, natural,
                          width > fixed ? width - fixed : 0, widths);

  print_row (n_columns, headers, widths);
  for (guint r = 0; r < rows->len; r++)
    print_row (n_columns, g_ptr_array_index (rows, r), widths);
}

static const char *const time_keys[] = { "created",        "send-at",       "next-attempt",
                                         "sent-copy-next", "tls-not-after", "failing-since",
                                         NULL };

JsonNode *
outbox_cli_time_to_json (gint64 unix_time)
{
  g_autoptr(GDateTime) time = g_date_time_new_from_unix_utc (unix_time);
  g_autofree char *iso = NULL;

  if (time == NULL)
    return json_node_init_int (json_node_alloc (), unix_time);

  iso = g_date_time_format_iso8601 (time);
  return json_node_init_string (json_node_alloc (), iso);
}

static JsonNode *
value_to_json (const char *key,
               GVariant   *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64) && g_strv_contains (time_keys, key))
    return outbox_cli_time_to_json (g_variant_get_int64 (value));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT))
    return outbox_cli_vardict_to_json (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE ("aa{sv}")))
    return outbox_cli_vardicts_to_json (value);

  return json_gvariant_serialize (value);
}

JsonNode *
outbox_cli_vardict_to_json (GVariant *vardict)
{
  JsonObject *object = json_object_new ();
  JsonNode *node = json_node_init_object (json_node_alloc (), object);
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, vardict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autofree char *member = g_strdelimit (g_strdup (key), "-", '_');

      json_object_set_member (object, member, value_to_json (key, value));
      g_variant_unref (value);
    }

  json_object_unref (object);
  return node;
}

JsonNode *
outbox_cli_vardicts_to_json (GVariant *vardicts)
{
  JsonArray *array = json_array_sized_new ((guint) g_variant_n_children (vardicts));
  JsonNode *node = json_node_init_array (json_node_alloc (), array);
  GVariantIter iter;
  GVariant *vardict;

  g_variant_iter_init (&iter, vardicts);
  while ((vardict = g_variant_iter_next_value (&iter)) != NULL)
    {
      json_array_add_element (array, outbox_cli_vardict_to_json (vardict));
      g_variant_unref (vardict);
    }

  json_array_unref (array);
  return node;
}

/* Pretty, indented by two: the one form of every JSON output. */
static JsonGenerator *
json_generator_new_pretty (void)
{
  JsonGenerator *generator = json_generator_new ();

  json_generator_set_pretty (generator, TRUE);
  json_generator_set_indent (generator, 2);
  return generator;
}

static char *
json_to_text (JsonNode *root)
{
  g_autoptr(JsonGenerator) generator = json_generator_new_pretty ();

  json_generator_set_root (generator, root);
  return json_generator_to_data (generator, NULL);
}

/* JSON is UTF-8 whatever the locale: written as it is, not through
 * g_print(), which would turn what the locale's charset lacks into '?'. */
void
outbox_cli_print_json (JsonNode *root)
{
  g_autofree char *text = json_to_text (root);

  fputs (text, stdout);
  fputs ("\n", stdout);
  fflush (stdout);
}

/* The same text as outbox_cli_print_json() of an object whose only member
 * is that array, written one element at a time: a queue of 100,000
 * messages is never held whole, as dictionaries, JSON nodes or text.
 * Written with stdio, which g_print() would flush at every call.  The head
 * goes out with the first element, or at the end: a failure before either
 * leaves the output empty. */

void
outbox_cli_json_list_begin (OutboxCliJsonList *list,
                            const char        *member)
{
  list->member = member;
  list->empty = TRUE;
  list->text = g_string_new (NULL);
}

static void
json_list_print_head (OutboxCliJsonList *list)
{
  g_autoptr(JsonNode) name = json_node_init_string (json_node_alloc (), list->member);
  g_autofree char *quoted = json_to_text (name);

  fprintf (stdout, "{\n  %s : [", quoted);
}

/* The text of a listing, written straight from the dictionaries in the
 * form json_generator_new_pretty() gives (a listing of 100,000 messages is
 * 2.5 million values: through JSON nodes and a generator it took seconds).
 * What a message dictionary does not hold (anything but strings, numbers,
 * booleans, arrays of strings, a{sv} and aa{sv}) goes through json-glib. */

static void
json_indent (GString *out, guint level)
{
  for (guint i = 0; i < level; i++)
    g_string_append_len (out, "  ", 2);
}

static void
json_write_string (GString *out, const char *text)
{
  static const char hex[] = "0123456789abcdef";

  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
        case '"': g_string_append_len (out, "\\\"", 2); break;
        case '\\': g_string_append_len (out, "\\\\", 2); break;
        case '\b': g_string_append_len (out, "\\b", 2); break;
        case '\f': g_string_append_len (out, "\\f", 2); break;
        case '\n': g_string_append_len (out, "\\n", 2); break;
        case '\r': g_string_append_len (out, "\\r", 2); break;
        case '\t': g_string_append_len (out, "\\t", 2); break;
        default:
          if (c < 0x20 || c == 0x7f)
            {
              g_string_append_len (out, "\\u00", 4);
              g_string_append_c (out, hex[c >> 4]);
              g_string_append_c (out, hex[c & 0xf]);
            }
          else
            g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

static void json_write_vardict (GString *out, GVariant *vardict, guint level);

/* An array of dictionaries (a message's recipients) or of strings (its
 * notify). */
static void
json_write_array (GString *out, GVariant *array, guint level)
{
  gsize n = g_variant_n_children (array);

  if (n == 0)
    {
      g_string_append_len (out, "[]", 2);
      return;
    }
  g_string_append_len (out, "[\n", 2);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) element = g_variant_get_child_value (array, i);

      json_indent (out, level + 1);
      if (g_variant_is_of_type (element, G_VARIANT_TYPE_STRING))
        json_write_string (out, g_variant_get_string (element, NULL));
      else
        json_write_vardict (out, element, level + 1);
      g_string_append (out, i + 1 < n ? ",\n" : "\n");
    }
  json_indent (out, level);
  g_string_append_c (out, ']');
}

static void
json_write_value (GString *out, const char *key, GVariant *value, guint level)
{
  const GVariantType *type = g_variant_get_type (value);

  if (g_variant_type_equal (type, G_VARIANT_TYPE_STRING))
    json_write_string (out, g_variant_get_string (value, NULL));
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_BOOLEAN))
    g_string_append (out, g_variant_get_boolean (value) ? "true" : "false");
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_UINT32))
    g_string_append_printf (out, "%u", g_variant_get_uint32 (value));
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_UINT64))
    g_string_append_printf (out, "%" G_GINT64_FORMAT, (gint64) g_variant_get_uint64 (value));
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_INT64))
    {
      gint64 number = g_variant_get_int64 (value);
      g_autoptr(GDateTime) time = g_strv_contains (time_keys, key) ? g_date_time_new_from_unix_utc (number)
                                                                     : NULL;
      g_autofree char *iso = time != NULL ? g_date_time_format_iso8601 (time) : NULL;

      if (iso != NULL)
        json_write_string (out, iso);
      else
        g_string_append_printf (out, "%" G_GINT64_FORMAT, number);
    }
  else if (g_variant_type_equal (type, G_VARIANT_TYPE_VARDICT))
    json_write_vardict (out, value, level);
  else if (g_variant_type_equal (type, G_VARIANT_TYPE ("aa{sv}"))
           || g_variant_type_equal (type, G_VARIANT_TYPE_STRING_ARRAY))
    json_write_array (out, value, level);
  else
    {
      g_autoptr(JsonNode) node = value_to_json (key, value);
      g_autoptr(JsonGenerator) generator = json_generator_new ();

      json_generator_set_root (generator, node);
      json_generator_to_gstring (generator, out);
    }
}

static void
json_write_vardict (GString *out, GVariant *vardict, guint level)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;
  gboolean first = TRUE;

  if (g_variant_n_children (vardict) == 0)
    {
      g_string_append_len (out, "{  }", 4);
      return;
    }
  g_string_append_len (out, "{\n", 2);
  g_variant_iter_init (&iter, vardict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      if (!first)
        g_string_append_len (out, ",\n", 2);
      first = FALSE;
      json_indent (out, level + 1);
      g_string_append_c (out, '"');
      for (const char *p = key; *p != '\0'; p++)
        g_string_append_c (out, *p == '-' ? '_' : *p);
      g_string_append_len (out, "\" : ", 4);
      json_write_value (out, key, value, level + 1);
      g_variant_unref (value);
    }
  g_string_append_c (out, '\n');
  json_indent (out, level);
  g_string_append_c (out, '}');
}

void
outbox_cli_json_list_add (OutboxCliJsonList *list,
                          GVariant          *vardict)
{
  if (list->empty)
    json_list_print_head (list);
  g_string_truncate (list->text, 0);
  g_string_append (list->text, list->empty ? "\n    " : ",\n    ");
  list->empty = FALSE;
  json_write_vardict (list->text, vardict, 2);
  fwrite (list->text->str, 1, list->text->len, stdout);
}

void
outbox_cli_json_list_end (OutboxCliJsonList *list,
                          gboolean           complete)
{
  if (complete && list->empty)
    {
      json_list_print_head (list);
      fputs ("]\n}\n", stdout);
    }
  else if (complete)
    fputs ("\n  ]\n}\n", stdout);
  else if (!list->empty)
    fputs ("\n", stdout);
  fflush (stdout);
  g_string_free (g_steal_pointer (&list->text), TRUE);
}

const char *
outbox_cli_lookup_text (GVariant   *dict,
                        const char *key)
{
  const char *value = NULL;

  return g_variant_lookup (dict, key, "&s", &value) ? value : NULL;
}

const char *
outbox_cli_lookup_text_or (GVariant   *dict,
                           const char *key,
                           const char *fallback)
{
  const char *value = outbox_cli_lookup_text (dict, key);

  return value != NULL ? value : fallback;
}

GVariant *
outbox_cli_lookup_vardicts (GVariant   *dict,
                            const char *key)
{
  return g_variant_lookup_value (dict, key, G_VARIANT_TYPE ("aa{sv}"));
}

enum
{
  QUEUE_ID,
  QUEUE_SIZE,
  QUEUE_AGE,
  QUEUE_STATE,
  QUEUE_FROM,
  QUEUE_RECIPIENTS,
  QUEUE_LAST_REPLY,
  QUEUE_N_COLUMNS
};

static const char *const queue_headers[QUEUE_N_COLUMNS] = {
  "ID", "SIZE", "AGE", "STATE", "FROM", "RECIPIENTS", "LAST REPLY",
};

static const gboolean queue_flexible[QUEUE_N_COLUMNS] = {
  FALSE, FALSE, FALSE, FALSE, TRUE, TRUE, TRUE,
};

static char *
join_recipient_addresses (GVariant *message)
{
  g_autoptr(GVariant) recipients = outbox_cli_lookup_vardicts (message, "recipients");
  g_autoptr(GPtrArray) addresses = g_ptr_array_new ();
  GVariantIter iter;
  GVariant *recipient;

  if (recipients == NULL)
    return g_strdup ("");

  g_variant_iter_init (&iter, recipients);
  while ((recipient = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *address = outbox_cli_lookup_text (recipient, "address");

      /* The string belongs to @recipients, which outlives the array. */
      if (address != NULL)
        g_ptr_array_add (addresses, (gpointer) address);
      g_variant_unref (recipient);
    }
  g_ptr_array_add (addresses, NULL);

  return g_strjoinv (", ", (char **) addresses->pdata);
}

/* A scheduled message says how long is left ("scheduled, in 8 s"): what an
 * undo window or a send-later time leaves to cancel it. */
static char *
format_queue_state (GVariant *message,
                    gint64    now)
{
  const char *state = outbox_cli_lookup_text_or (message, "state", "-");
  gint64 send_at;
  g_autofree char *left = NULL;

  if (!g_str_equal (state, "scheduled") || !g_variant_lookup (message, "send-at", "x", &send_at)
      || send_at <= now)
    return g_strdup (state);
  left = outbox_cli_format_seconds ((guint64) (send_at - now), FALSE);
  return g_strdup_printf ("scheduled, in %s", left);
}

static char **
queue_row_new (GVariant *message,
               gint64    now)
{
  char **row = g_new0 (char *, QUEUE_N_COLUMNS + 1);
  guint64 size;
  gint64 created;

  row[QUEUE_ID] = g_strdup (outbox_cli_lookup_text_or (message, "id", "-"));
  row[QUEUE_SIZE] = g_variant_lookup (message, "size", "t", &size)
                    ? outbox_cli_format_size (size) : g_strdup ("-");
  row[QUEUE_AGE] = g_variant_lookup (message, "created", "x", &created)
                   ? outbox_cli_format_duration (now - created) : g_strdup ("-");
  row[QUEUE_STATE] = format_queue_state (message, now);
  row[QUEUE_FROM] = g_strdup (outbox_cli_lookup_text_or (message, "from", ""));
  row[QUEUE_RECIPIENTS] = join_recipient_addresses (message);
  row[QUEUE_LAST_REPLY] = g_strdup (outbox_cli_lookup_text_or (message, "last-reply", ""));

  return row;
}

/* In a pipe, or with --wide, a cut value would be lost to whoever reads
 * it: the table grows instead. */
void
outbox_cli_print_queue_table (GVariant *messages,
                              gboolean  wide)
{
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  GVariantIter iter;
  GVariant *message;

  if (g_variant_n_children (messages) == 0)
    {
      g_print ("Queue is empty.\n");
      return;
    }

  g_variant_iter_init (&iter, messages);
  while ((message = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_ptr_array_add (rows, queue_row_new (message, now));
      g_variant_unref (message);
    }

  outbox_cli_print_table (QUEUE_N_COLUMNS, queue_headers, queue_flexible, rows,
                          wide || !isatty (STDOUT_FILENO) ? G_MAXUINT
                                                          : outbox_cli_terminal_width ());
}

/* Command line plumbing ------------------------------------------------- */


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

GVariant *
outbox_cli_find_account (GVariant   *list,
              const char *name)
{
  GVariantIter iter;
  GVariant *account;

  g_variant_iter_init (&iter, list);
  while ((account = g_variant_iter_next_value (&iter)) != NULL)
    {
      if (g_strcmp0 (outbox_cli_lookup_text (account, "name"), name) == 0)
        return account;
      g_variant_unref (account);
    }

  return NULL;
}
