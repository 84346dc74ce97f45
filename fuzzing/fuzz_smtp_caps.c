/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-smtp-reply.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* A 250 reply whose lines are @lines, taken as they are: the parser
 * sanitises what a server sends, but the capability parser must not rely
 * on it. */
static OutboxSmtpReply *
reply_of_lines (const char * const *lines, guint n_lines)
{
  OutboxSmtpReply *reply = g_new0 (OutboxSmtpReply, 1);

  reply->code = 250;
  reply->lines = g_new0 (char *, n_lines + 1);
  for (guint i = 0; i < n_lines; i++)
    reply->lines[i] = g_strdup (lines[i]);
  return reply;
}

static OutboxSmtpCaps
caps_of_lines (const char * const *lines, guint n_lines)
{
  g_autoptr (OutboxSmtpReply) reply = reply_of_lines (lines, n_lines);
  OutboxSmtpCaps caps;

  outbox_smtp_caps_parse (reply, &caps);
  return caps;
}

static void
check_consistent (const OutboxSmtpCaps *caps)
{
  if (caps->auth_mechs != 0)
    g_assert_true (caps->flags & OUTBOX_SMTP_CAP_AUTH);
  if (caps->size_limit != 0)
    g_assert_true (caps->flags & OUTBOX_SMTP_CAP_SIZE);
}

/* Each keyword line stands on its own: what the whole reply offers is what
 * its lines offer one by one, and the greeting line offers nothing. */
static void
check_lines_independent (char **lines, const OutboxSmtpCaps *whole)
{
  guint n_lines = g_strv_length (lines);
  OutboxSmtpCapFlags flags = 0;
  OutboxSmtpAuthMechs mechs = 0;

  for (guint i = 0; i < n_lines; i++)
    {
      const char *pair[] = { "greeting", lines[i] };
      OutboxSmtpCaps one = caps_of_lines (pair, 2);

      if (i > 0)
        {
          flags |= one.flags;
          mechs |= one.auth_mechs;
        }
    }
  g_assert_cmphex (whole->flags, ==, flags);
  g_assert_cmphex (whole->auth_mechs, ==, mechs);
  if (n_lines > 0)
    {
      OutboxSmtpCaps greeting_only = caps_of_lines ((const char * const *) lines, 1);
      g_assert_cmphex (greeting_only.flags, ==, 0);
    }
}

/* Keywords and mechanism names are case-insensitive (RFC 5321 section
 * 2.4, RFC 4954 section 3). */
static void
check_case_insensitive (char **lines, const OutboxSmtpCaps *whole)
{
  guint n_lines = g_strv_length (lines);
  g_autoptr (GPtrArray) upper = g_ptr_array_new_with_free_func (g_free);
  OutboxSmtpCaps caps;

  for (guint i = 0; i < n_lines; i++)
    g_ptr_array_add (upper, g_ascii_strup (lines[i], -1));
  caps = caps_of_lines ((const char * const *) upper->pdata, upper->len);
  g_assert_cmphex (caps.flags, ==, whole->flags);
  g_assert_cmphex (caps.auth_mechs, ==, whole->auth_mechs);
  g_assert_cmpuint (caps.size_limit, ==, whole->size_limit);
}

/* One line an LF; the first is the greeting. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_auto (GStrv) lines = g_strsplit (text, "\n", OUTBOX_SMTP_REPLY_MAX_LINES);
  OutboxSmtpCaps whole;

  whole = caps_of_lines ((const char * const *) lines, g_strv_length (lines));
  check_consistent (&whole);
  check_lines_independent (lines, &whole);
  check_case_insensitive (lines, &whole);

  return 0;
}
