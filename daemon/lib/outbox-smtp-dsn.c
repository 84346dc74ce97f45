/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-error.h"
#include "outbox-smtp-dsn.h"
#include "outbox-text.h"

#define NOTIFY_WORDS_HINT                                                                          \
  "give never, or one or more of success, failure and delay separated by commas (such as "         \
  "failure,delay)"

static const struct
{
  const char *word;
  OutboxDsnNotify flag;
} notify_words[] = {
  { "never", OUTBOX_DSN_NOTIFY_NEVER },
  { "success", OUTBOX_DSN_NOTIFY_SUCCESS },
  { "failure", OUTBOX_DSN_NOTIFY_FAILURE },
  { "delay", OUTBOX_DSN_NOTIFY_DELAY },
};

static const char *const ret_words[] = {
  [OUTBOX_DSN_RET_DEFAULT] = NULL,
  [OUTBOX_DSN_RET_FULL] = "full",
  [OUTBOX_DSN_RET_HDRS] = "hdrs",
};

gboolean
outbox_dsn_request_asks (const OutboxDsnRequest *request)
{
  return request != NULL && (request->notify != OUTBOX_DSN_NOTIFY_DEFAULT ||
                             request->ret != OUTBOX_DSN_RET_DEFAULT || request->envid != NULL);
}

/* What the caller typed goes back in the message, made safe to show. */
static gboolean
invalid (GError **error, const char *what, const char *problem)
{
  g_autofree char *shown = outbox_text_sanitize (what, strlen (what));

  g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS, "“%s” %s", shown, problem);
  return FALSE;
}

static gboolean
add_notify_word (const char *word, OutboxDsnNotify *notify, GError **error)
{
  for (gsize i = 0; i < G_N_ELEMENTS (notify_words); i++)
    if (g_ascii_strcasecmp (word, notify_words[i].word) == 0)
      {
        *notify |= notify_words[i].flag;
        return TRUE;
      }
  return invalid (error, word, "is not a condition to notify of: " NOTIFY_WORDS_HINT);
}

/* Commas and white space separate, as Postfix's sendmail -N takes them. */
static gboolean
add_notify_list (const char *list, OutboxDsnNotify *notify, GError **error)
{
  g_auto (GStrv) words = g_strsplit_set (list, ", \t", -1);

  for (char **word = words; *word != NULL; word++)
    if (**word != '\0' && !add_notify_word (*word, notify, error))
      return FALSE;
  return TRUE;
}

gboolean
outbox_dsn_notify_from_words (const char *const *words,
                              OutboxDsnNotify *out_notify,
                              GError **error)
{
  OutboxDsnNotify notify = OUTBOX_DSN_NOTIFY_DEFAULT;

  g_return_val_if_fail (words != NULL, FALSE);

  for (gsize i = 0; words[i] != NULL; i++)
    if (!add_notify_list (words[i], &notify, error))
      return FALSE;
  if (notify == OUTBOX_DSN_NOTIFY_DEFAULT)
    {
      g_set_error_literal (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                           "no condition to notify of: " NOTIFY_WORDS_HINT);
      return FALSE;
    }
  if ((notify & OUTBOX_DSN_NOTIFY_NEVER) && notify != OUTBOX_DSN_NOTIFY_NEVER)
    {
      g_set_error_literal (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                           "never cannot go with success, failure or delay: give never alone, "
                           "or the conditions to notify of");
      return FALSE;
    }
  *out_notify = notify;
  return TRUE;
}

gboolean
outbox_dsn_notify_parse (const char *list, OutboxDsnNotify *out_notify, GError **error)
{
  const char *const words[] = { list, NULL };

  g_return_val_if_fail (list != NULL, FALSE);

  return outbox_dsn_notify_from_words (words, out_notify, error);
}

char **
outbox_dsn_notify_to_words (OutboxDsnNotify notify)
{
  g_autoptr (GStrvBuilder) words = g_strv_builder_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (notify_words); i++)
    if (notify & notify_words[i].flag)
      g_strv_builder_add (words, notify_words[i].word);
  return g_strv_builder_end (words);
}

char *
outbox_dsn_notify_to_string (OutboxDsnNotify notify, gboolean upper)
{
  g_auto (GStrv) words = outbox_dsn_notify_to_words (notify);
  g_autofree char *joined = g_strjoinv (",", words);

  return upper ? g_ascii_strup (joined, -1) : g_steal_pointer (&joined);
}

gboolean
outbox_dsn_ret_parse (const char *word, OutboxDsnRet *out_ret, GError **error)
{
  g_return_val_if_fail (word != NULL, FALSE);

  for (guint i = OUTBOX_DSN_RET_FULL; i < G_N_ELEMENTS (ret_words); i++)
    if (g_ascii_strcasecmp (word, ret_words[i]) == 0)
      {
        *out_ret = i;
        return TRUE;
      }
  return invalid (error, word,
                  "is not what a notification can return: give full (the whole message) or "
                  "hdrs (its header only)");
}

const char *
outbox_dsn_ret_to_string (OutboxDsnRet ret)
{
  g_return_val_if_fail (ret < G_N_ELEMENTS (ret_words), NULL);

  return ret_words[ret];
}

/* xtext ------------------------------------------------------------------ */

static gboolean
is_xchar (guchar c)
{
  return c >= '!' && c <= '~' && c != '+' && c != '=';
}

static gsize
xtext_length (const char *text)
{
  gsize length = 0;

  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    length += is_xchar (*p) ? 1 : 3;
  return length;
}

gboolean
outbox_dsn_envid_validate (const char *envid, GError **error)
{
  gsize length;

  g_return_val_if_fail (envid != NULL, FALSE);

  length = strlen (envid);
  if (length == 0 || length > OUTBOX_DSN_ENVID_MAX)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "the envelope ID is %" G_GSIZE_FORMAT " characters; give 1 to %d", length,
                   OUTBOX_DSN_ENVID_MAX);
      return FALSE;
    }
  for (const guchar *p = (const guchar *) envid; *p != '\0'; p++)
    if (*p < ' ' || *p > '~')
      {
        g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                     "the envelope ID holds a character that is not printable ASCII: give "
                     "letters, digits, punctuation and spaces only");
        return FALSE;
      }
  if (xtext_length (envid) > OUTBOX_DSN_ENVID_MAX)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_INVALID_ARGS,
                   "the envelope ID is %" G_GSIZE_FORMAT " characters once xtext-encoded ('+', "
                   "'=' and a space take three each); at most %d",
                   xtext_length (envid), OUTBOX_DSN_ENVID_MAX);
      return FALSE;
    }
  return TRUE;
}

char *
outbox_xtext_encode (const char *text)
{
  static const char hex[] = "0123456789ABCDEF";
  GString *out;

  g_return_val_if_fail (text != NULL, NULL);

  out = g_string_sized_new (xtext_length (text));
  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    {
      if (is_xchar (*p))
        {
          g_string_append_c (out, (char) *p);
          continue;
        }
      g_string_append_c (out, '+');
      g_string_append_c (out, hex[*p >> 4]);
      g_string_append_c (out, hex[*p & 0xf]);
    }
  return g_string_free (out, FALSE);
}

static int
upper_hex_value (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

char *
outbox_xtext_decode (const char *text)
{
  g_autofree char *out = NULL;
  char *o;

  g_return_val_if_fail (text != NULL, NULL);

  o = out = g_malloc (strlen (text) + 1);
  for (const char *p = text; *p != '\0'; p++)
    {
      int high, low;

      if (is_xchar ((guchar) *p))
        {
          *o++ = *p;
          continue;
        }
      if (*p != '+' || (high = upper_hex_value (p[1])) < 0 || (low = upper_hex_value (p[2])) < 0
          || (high == 0 && low == 0))
        return NULL;
      *o++ = (char) (high << 4 | low);
      p += 2;
    }
  *o = '\0';
  return g_steal_pointer (&out);
}

char *
outbox_utf8_addr_xtext_encode (const char *address)
{
  GString *out;

  g_return_val_if_fail (address != NULL, NULL);
  g_return_val_if_fail (g_utf8_validate (address, -1, NULL), NULL);

  out = g_string_new (NULL);
  for (const char *p = address; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c >= '!' && c <= '~' && c != '+' && c != '=' && c != '\\')
        g_string_append_c (out, (char) c);
      else if (c < 0x100)
        g_string_append_printf (out, "\\x{%02X}", (guint) c);
      else
        g_string_append_printf (out, "\\x{%X}", (guint) c);
    }
  return g_string_free (out, FALSE);
}
