/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-text.h"

gboolean
outbox_text_is_unsafe_char (gunichar c)
{
  GUnicodeType type = g_unichar_type (c);

  /* Cc covers C0, DEL and C1; line and paragraph separators would break
   * the text into lines wherever it is shown. */
  return type == G_UNICODE_CONTROL || type == G_UNICODE_LINE_SEPARATOR
         || type == G_UNICODE_PARAGRAPH_SEPARATOR;
}

char *
outbox_text_sanitize (const char *text, gsize len)
{
  g_autofree char *ascii_safe = g_malloc (len + 1);
  g_autofree char *valid = NULL;
  GString *out;

  /* Replaced before the UTF-8 repair, which would turn a NUL into U+FFFD. */
  for (gsize i = 0; i < len; i++)
    ascii_safe[i] = (guchar) text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
  ascii_safe[len] = '\0';
  valid = g_utf8_make_valid (ascii_safe, (gssize) len);
  out = g_string_sized_new (strlen (valid));

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      if (outbox_text_is_unsafe_char (g_utf8_get_char (p)))
        g_string_append_c (out, '?');
      else
        g_string_append_len (out, p, g_utf8_next_char (p) - p);
    }
  return g_string_free (out, FALSE);
}
