/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "outbox-cli-text.h"

#define ELLIPSIS "…"

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
