/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-imap-parser.h"
#include "outbox-text.h"

/* How much of an offending line an error message quotes. */
#define QUOTED_LINE_MAX 80

/* Text shown to people -------------------------------------------------- */

static char *
quote_line (const char *line, gsize len)
{
  g_autofree char *text = outbox_text_sanitize (line, MIN (len, QUOTED_LINE_MAX));

  if (len > QUOTED_LINE_MAX)
    return g_strdup_printf ("“%s…”", text);
  return g_strdup_printf ("“%s”", text);
}

/* Mailboxes and responses ----------------------------------------------- */

OutboxImapMailbox *
outbox_imap_mailbox_copy (const OutboxImapMailbox *mailbox)
{
  OutboxImapMailbox *copy;

  g_return_val_if_fail (mailbox != NULL, NULL);

  copy = g_new0 (OutboxImapMailbox, 1);
  copy->name = g_strdup (mailbox->name);
  copy->display_name = g_strdup (mailbox->display_name);
  copy->flags = g_strdupv (mailbox->flags);
  copy->delimiter = mailbox->delimiter;
  return copy;
}

void
outbox_imap_mailbox_free (OutboxImapMailbox *mailbox)
{
  if (mailbox == NULL)
    return;

  g_free (mailbox->name);
  g_free (mailbox->display_name);
  g_strfreev (mailbox->flags);
  g_free (mailbox);
}

gboolean
outbox_imap_mailbox_has_flag (const OutboxImapMailbox *mailbox, const char *flag)
{
  g_return_val_if_fail (mailbox != NULL, FALSE);
  g_return_val_if_fail (flag != NULL, FALSE);

  for (char **f = mailbox->flags; f != NULL && *f != NULL; f++)
    {
      if (g_ascii_strcasecmp (*f, flag) == 0)
        return TRUE;
    }
  return FALSE;
}

void
outbox_imap_response_free (OutboxImapResponse *response)
{
  if (response == NULL)
    return;

  g_free (response->tag);
  g_free (response->code);
  g_free (response->code_args);
  g_free (response->text);
  g_strfreev (response->capabilities);
  outbox_imap_mailbox_free (response->mailbox);
  g_free (response->raw);
  g_free (response);
}

static const char *
status_to_string (OutboxImapStatus status)
{
  switch (status)
    {
    case OUTBOX_IMAP_STATUS_OK:
      return "OK";
    case OUTBOX_IMAP_STATUS_NO:
      return "NO";
    case OUTBOX_IMAP_STATUS_BAD:
      return "BAD";
    case OUTBOX_IMAP_STATUS_PREAUTH:
      return "PREAUTH";
    case OUTBOX_IMAP_STATUS_BYE:
      return "BYE";
    case OUTBOX_IMAP_STATUS_NONE:
    default:
      return NULL;
    }
}

static void
append_data_summary (GString *out, const OutboxImapResponse *response)
{
  g_autofree char *capabilities = NULL;

  switch (response->data)
    {
    case OUTBOX_IMAP_DATA_CAPABILITY:
      capabilities = g_strjoinv (" ", response->capabilities);
      g_string_append_printf (out, "CAPABILITY %s", capabilities);
      break;
    case OUTBOX_IMAP_DATA_LIST:
      g_string_append_printf (out, "LIST %s", response->mailbox->display_name);
      break;
    case OUTBOX_IMAP_DATA_EXISTS:
      g_string_append_printf (out, "%u EXISTS", response->number);
      break;
    case OUTBOX_IMAP_DATA_OTHER:
      g_string_append (out, response->raw);
      break;
    case OUTBOX_IMAP_DATA_NONE:
    default:
      break;
    }
}

char *
outbox_imap_response_to_string (const OutboxImapResponse *response)
{
  GString *out = g_string_new (NULL);
  const char *status;

  g_return_val_if_fail (response != NULL, NULL);

  if (response->kind == OUTBOX_IMAP_RESPONSE_CONTINUATION)
    g_string_append (out, "+");
  status = status_to_string (response->status);
  if (status == NULL)
    append_data_summary (out, response);
  else
    g_string_append (out, status);
  if (response->code != NULL)
    {
      g_string_append_printf (out, " [%s", response->code);
      if (response->code_args != NULL)
        g_string_append_printf (out, " %s", response->code_args);
      g_string_append_c (out, ']');
    }
  if (response->text != NULL && *response->text != '\0')
    g_string_append_printf (out, " %s", response->text);
  return g_string_free (out, FALSE);
}

/* Modified UTF-7 (RFC 3501 section 5.1.3) -------------------------------- */

static const char utf7_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
utf7_value (char c)
{
  const char *found = c != '\0' ? strchr (utf7_alphabet, c) : NULL;

  return found != NULL ? (int) (found - utf7_alphabet) : -1;
}

static char *
utf7_fail (GError **error, const char *name, const char *why)
{
  g_autofree char *quoted = quote_line (name, strlen (name));

  g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
               "The mailbox name %s is not valid modified UTF-7: %s", quoted, why);
  return NULL;
}

typedef struct
{
  guint32 bits;
  guint n_bits;
  gunichar2 high_surrogate; /* waiting for its low half; 0 when none */
  gboolean any;             /* a code unit came out of this shift */
} Utf7Shift;

/* Takes one UTF-16 code unit; returns the reason it is invalid, or NULL. */
static const char *
utf7_take_unit (Utf7Shift *shift, gunichar2 unit, GString *out)
{
  shift->any = TRUE;
  if (shift->high_surrogate != 0)
    {
      if (unit < 0xdc00 || unit > 0xdfff)
        return "a surrogate is unpaired";
      g_string_append_unichar (out, 0x10000 + ((gunichar) (shift->high_surrogate - 0xd800) << 10) +
                                        (unit - 0xdc00));
      shift->high_surrogate = 0;
      return NULL;
    }
  if (unit >= 0xd800 && unit <= 0xdbff)
    shift->high_surrogate = unit;
  else if (unit >= 0xdc00 && unit <= 0xdfff)
    return "a surrogate is unpaired";
  else if (unit >= 0x20 && unit <= 0x7e)
    return "printable ASCII must not be encoded";
  else if (unit == 0)
    return "it encodes NUL";
  else
    g_string_append_unichar (out, unit);
  return NULL;
}

/* Decodes the base64 run after '&' up to its '-'; *p ends after the '-'. */
static const char *
utf7_decode_shift (const char **p, GString *out)
{
  Utf7Shift shift = { 0 };

  for (; **p != '-'; (*p)++)
    {
      int value = utf7_value (**p);
      const char *why;

      if (value < 0)
        return **p == '\0' ? "a shift is not closed with '-'" : "a shift holds a non-base64 octet";
      shift.bits = (shift.bits << 6) | (guint32) value;
      shift.n_bits += 6;
      if (shift.n_bits < 16)
        continue;
      shift.n_bits -= 16;
      why = utf7_take_unit (&shift, (gunichar2) (shift.bits >> shift.n_bits), out);
      if (why != NULL)
        return why;
      shift.bits &= (1u << shift.n_bits) - 1;
    }
  (*p)++;
  if (!shift.any || shift.n_bits >= 6 || shift.bits != 0)
    return "a shift has a bad length or padding";
  if (shift.high_surrogate != 0)
    return "a surrogate is unpaired";
  return NULL;
}

char *
outbox_imap_utf7_decode (const char *name, GError **error)
{
  g_autoptr (GString) out = g_string_new (NULL);
  const char *p = name;

  g_return_val_if_fail (name != NULL, NULL);

  while (*p != '\0')
    {
      const char *why = NULL;

      if ((guchar) *p < 0x20 || (guchar) *p > 0x7e)
        return utf7_fail (error, name, "it holds an octet outside printable ASCII");
      if (*p != '&')
        g_string_append_c (out, *p++);
      else if (p[1] == '-')
        {
          g_string_append_c (out, '&');
          p += 2;
        }
      else
        {
          p++;
          why = utf7_decode_shift (&p, out);
        }
      if (why != NULL)
        return utf7_fail (error, name, why);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
utf7_flush (GString *out, guint32 *bits, guint *n_bits)
{
  if (*n_bits > 0)
    g_string_append_c (out, utf7_alphabet[(*bits << (6 - *n_bits)) & 0x3f]);
  g_string_append_c (out, '-');
  *bits = 0;
  *n_bits = 0;
}

static void
utf7_add_unit (GString *out, guint32 *bits, guint *n_bits, gunichar2 unit)
{
  *bits = (*bits << 16) | unit;
  *n_bits += 16;
  while (*n_bits >= 6)
    {
      *n_bits -= 6;
      g_string_append_c (out, utf7_alphabet[(*bits >> *n_bits) & 0x3f]);
    }
  *bits &= (1u << *n_bits) - 1;
}

char *
outbox_imap_utf7_encode (const char *utf8)
{
  g_autoptr (GString) out = g_string_new (NULL);
  gboolean shifted = FALSE;
  guint32 bits = 0;
  guint n_bits = 0;

  g_return_val_if_fail (utf8 != NULL, NULL);

  if (!g_utf8_validate (utf8, -1, NULL))
    return NULL;
  for (const char *p = utf8; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c >= 0x20 && c <= 0x7e)
        {
          if (shifted)
            utf7_flush (out, &bits, &n_bits);
          shifted = FALSE;
          if (c == '&')
            g_string_append (out, "&-");
          else
            g_string_append_c (out, (char) c);
          continue;
        }
      if (!shifted)
        g_string_append_c (out, '&');
      shifted = TRUE;
      if (c >= 0x10000)
        {
          utf7_add_unit (out, &bits, &n_bits, (gunichar2) (0xd800 + ((c - 0x10000) >> 10)));
          utf7_add_unit (out, &bits, &n_bits, (gunichar2) (0xdc00 + ((c - 0x10000) & 0x3ff)));
        }
      else
        utf7_add_unit (out, &bits, &n_bits, (gunichar2) c);
    }
  if (shifted)
    utf7_flush (out, &bits, &n_bits);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

char *
outbox_imap_mailbox_display_name (const char *name)
{
  g_autofree char *decoded = outbox_imap_utf7_decode (name, NULL);

  if (decoded != NULL)
    return outbox_text_sanitize (decoded, strlen (decoded));
  return outbox_text_sanitize (name, strlen (name));
}

/* The parser --------------------------------------------------------------
 *
 * Lines and literals of the response in progress are kept as segments:
 * line, literal, line, literal, ..., line.  A line that ends in a literal
 * marker is followed by the literal's octets, and the response ends with
 * the first line that does not.  Only then is the whole response parsed,
 * by recursive descent over the segments (the Cursor below). */

struct _OutboxImapParser
{
  GPtrArray *segments;    /* (owned) (element-type GString) */
  gsize size;             /* octets held in segments */
  GString *literal;       /* (owned) (nullable) the literal being collected */
  gsize literal_needed;   /* octets it still lacks */
  gboolean data_response; /* the response may hold literals */
};

static void
free_segment (gpointer segment)
{
  g_string_free (segment, TRUE);
}

static void
parser_reset (OutboxImapParser *parser)
{
  g_ptr_array_set_size (parser->segments, 0);
  parser->size = 0;
  if (parser->literal != NULL)
    g_string_free (g_steal_pointer (&parser->literal), TRUE);
  parser->literal_needed = 0;
  parser->data_response = FALSE;
}

OutboxImapParser *
outbox_imap_parser_new (void)
{
  OutboxImapParser *parser = g_new0 (OutboxImapParser, 1);

  parser->segments = g_ptr_array_new_with_free_func (free_segment);
  return parser;
}

void
outbox_imap_parser_free (OutboxImapParser *parser)
{
  if (parser == NULL)
    return;

  parser_reset (parser);
  g_ptr_array_unref (parser->segments);
  g_free (parser);
}

gsize
outbox_imap_parser_get_literal_needed (OutboxImapParser *parser)
{
  g_return_val_if_fail (parser != NULL, 0);

  return parser->literal_needed;
}

static const char *
first_line (OutboxImapParser *parser, gsize *out_len)
{
  GString *line = g_ptr_array_index (parser->segments, 0);

  *out_len = line->len;
  return line->str;
}

static gboolean parser_fail (OutboxImapParser *parser, GError **error, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

/* Fails with PROTOCOL, quoting the start of the response, and starts
 * afresh. */
static gboolean
parser_fail (OutboxImapParser *parser, GError **error, const char *format, ...)
{
  g_autofree char *why = NULL;
  g_autofree char *quoted = NULL;
  va_list args;

  va_start (args, format);
  why = g_strdup_vprintf (format, args);
  va_end (args);
  if (parser->segments->len > 0)
    {
      gsize len = 0;
      const char *line = first_line (parser, &len);
      quoted = quote_line (line, len);
      g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                   "Malformed IMAP response from the server (%s): %s", why, quoted);
    }
  else
    g_set_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL,
                 "Malformed IMAP response from the server: %s", why);
  parser_reset (parser);
  return FALSE;
}

static gboolean
is_status_word (const char *word, gsize len)
{
  static const char *const words[] = { "OK", "NO", "BAD", "BYE", "PREAUTH" };

  for (gsize i = 0; i < G_N_ELEMENTS (words); i++)
    {
      if (len == strlen (words[i]) && g_ascii_strncasecmp (word, words[i], len) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Untagged data may hold literals; status responses, tagged responses and
 * continuations hold text, where a '{' means nothing. */
static gboolean
line_starts_data_response (const char *line, gsize len)
{
  gsize word_end = 2;

  if (len < 2 || line[0] != '*' || line[1] != ' ')
    return FALSE;
  while (word_end < len && line[word_end] != ' ')
    word_end++;
  return !is_status_word (line + 2, word_end - 2);
}

/* Whether the line ends in {n} or {n+} outside a quoted string; *out_size
 * is G_MAXSIZE for a number too big to care about. */
static gboolean
line_ends_with_literal (const char *line, gsize len, gsize *out_size)
{
  gboolean quoted = FALSE;
  gsize open, digits_end;
  guint64 size = 0;

  for (gsize i = 0; i < len; i++)
    {
      if (quoted && line[i] == '\\')
        i++;
      else if (line[i] == '"')
        quoted = !quoted;
    }
  if (quoted || len < 3 || line[len - 1] != '}')
    return FALSE;
  digits_end = line[len - 2] == '+' ? len - 2 : len - 1;
  open = digits_end;
  while (open > 0 && g_ascii_isdigit (line[open - 1]))
    open--;
  if (open == 0 || open == digits_end || line[open - 1] != '{')
    return FALSE;
  for (gsize i = open; i < digits_end && size <= G_MAXUINT32; i++)
    size = size * 10 + (guint64) (line[i] - '0');
  *out_size = size <= G_MAXUINT32 ? (gsize) size : G_MAXSIZE;
  return TRUE;
}

static gboolean parse_response (OutboxImapParser *parser,
                                OutboxImapResponse **out_response,
                                GError **error);

static gboolean
check_line_octets (OutboxImapParser *parser, const char *line, gsize len, GError **error)
{
  if (memchr (line, '\0', len) != NULL)
    return parser_fail (parser, error, "a NUL octet in a line");
  if (memchr (line, '\r', len) != NULL)
    return parser_fail (parser, error, "a CR octet inside a line");
  return TRUE;
}

/* A line outside any literal: the start of a response or the rest of one
 * after a literal. */
static gboolean
take_line (OutboxImapParser *parser,
           const char *line,
           gsize len,
           OutboxImapResponse **out_response,
           GError **error)
{
  gsize literal_size = 0;

  if (len > OUTBOX_IMAP_MAX_LINE)
    return parser_fail (parser, error, "a line of more than %u octets", OUTBOX_IMAP_MAX_LINE);
  if (parser->size + len > OUTBOX_IMAP_MAX_RESPONSE)
    return parser_fail (parser, error, "a response of more than %u octets",
                        OUTBOX_IMAP_MAX_RESPONSE);
  if (parser->segments->len == 0)
    parser->data_response = line_starts_data_response (line, len);
  g_ptr_array_add (parser->segments, g_string_new_len (line, (gssize) len));
  parser->size += len;
  if (!check_line_octets (parser, line, len, error))
    return FALSE;

  if (!parser->data_response || !line_ends_with_literal (line, len, &literal_size))
    return parse_response (parser, out_response, error);
  if (literal_size > OUTBOX_IMAP_MAX_LITERAL)
    return parser_fail (parser, error, "a literal of more than %u octets",
                        OUTBOX_IMAP_MAX_LITERAL);
  if (parser->size + literal_size > OUTBOX_IMAP_MAX_RESPONSE)
    return parser_fail (parser, error, "a response of more than %u octets",
                        OUTBOX_IMAP_MAX_RESPONSE);
  parser->literal = g_string_sized_new (literal_size);
  parser->literal_needed = literal_size;
  return TRUE;
}

static void
finish_literal (OutboxImapParser *parser)
{
  parser->size += parser->literal->len;
  g_ptr_array_add (parser->segments, g_steal_pointer (&parser->literal));
}

gboolean
outbox_imap_parser_feed_line (OutboxImapParser *parser,
                              const char *line,
                              gsize len,
                              OutboxImapResponse **out_response,
                              GError **error)
{
  gsize taken;

  g_return_val_if_fail (parser != NULL, FALSE);
  g_return_val_if_fail (line != NULL || len == 0, FALSE);
  g_return_val_if_fail (out_response != NULL && *out_response == NULL, FALSE);

  if (line == NULL)
    line = "";
  if (parser->literal == NULL)
    return take_line (parser, line, len, out_response, error);

  taken = MIN (parser->literal_needed, len);
  g_string_append_len (parser->literal, line, (gssize) taken);
  parser->literal_needed -= taken;
  if (parser->literal_needed == 0)
    {
      finish_literal (parser);
      return take_line (parser, line + taken, len - taken, out_response, error);
    }
  /* The whole line and the line break after it belong to the literal. */
  if (parser->literal_needed == 1)
    return parser_fail (parser, error, "a literal ends between CR and LF");
  g_string_append (parser->literal, "\r\n");
  parser->literal_needed -= 2;
  if (parser->literal_needed == 0)
    finish_literal (parser);
  return TRUE;
}

/* The cursor: recursive descent over the segments of one response. */

typedef struct
{
  OutboxImapParser *parser;
  guint segment;  /* index of the current line */
  const char *p;  /* in that line */
  const char *end;
  guint items;
  GError **error; /* where the first failure goes */
} Cursor;

static void
cursor_enter_line (Cursor *c, guint segment)
{
  GString *line = g_ptr_array_index (c->parser->segments, segment);

  c->segment = segment;
  c->p = line->str;
  c->end = line->str + line->len;
}

/* The current octet, or '\0' at the end of a line (lines hold no NUL). */
static char
cursor_peek (const Cursor *c)
{
  return c->p < c->end ? *c->p : '\0';
}

static gboolean
cursor_at_end (const Cursor *c)
{
  return c->p == c->end && c->segment + 1 == c->parser->segments->len;
}

static gboolean cursor_fail (Cursor *c, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
cursor_fail (Cursor *c, const char *format, ...)
{
  g_autofree char *why = NULL;
  va_list args;

  va_start (args, format);
  why = g_strdup_vprintf (format, args);
  va_end (args);
  return parser_fail (c->parser, c->error, "%s", why);
}

static gboolean
cursor_count_item (Cursor *c)
{
  if (++c->items > OUTBOX_IMAP_MAX_ITEMS)
    return cursor_fail (c, "more than %u items", OUTBOX_IMAP_MAX_ITEMS);
  return TRUE;
}

static gboolean
cursor_expect (Cursor *c, char expected, const char *what)
{
  if (cursor_peek (c) != expected)
    return cursor_fail (c, "%s expected", what);
  c->p++;
  return TRUE;
}

static gboolean
cursor_expect_end (Cursor *c)
{
  if (!cursor_at_end (c))
    return cursor_fail (c, "unexpected data after the response");
  return TRUE;
}

gboolean
outbox_imap_is_atom_char (char ch)
{
  return ch > 0x20 && ch < 0x7f && strchr ("(){%*\"\\]", ch) == NULL;
}

static gsize
cursor_span (Cursor *c, gboolean (*accept) (char))
{
  const char *start = c->p;

  while (c->p < c->end && accept (*c->p))
    c->p++;
  return (gsize) (c->p - start);
}

/* An atom, or NULL with an error naming @what. */
static char *
cursor_atom (Cursor *c, const char *what)
{
  const char *start = c->p;
  gsize len = cursor_span (c, outbox_imap_is_atom_char);

  if (len == 0)
    {
      cursor_fail (c, "%s expected", what);
      return NULL;
    }
  if (!cursor_count_item (c))
    return NULL;
  return g_strndup (start, len);
}

static char *
cursor_atom_upper (Cursor *c, const char *what)
{
  g_autofree char *atom = cursor_atom (c, what);

  return atom != NULL ? g_ascii_strup (atom, -1) : NULL;
}

static gboolean
is_astring_char (char ch)
{
  return outbox_imap_is_atom_char (ch) || ch == ']';
}

static gboolean
cursor_number (Cursor *c, guint32 *out)
{
  guint64 value = 0;
  const char *start = c->p;

  while (c->p < c->end && g_ascii_isdigit (*c->p) && value <= G_MAXUINT32)
    value = value * 10 + (guint64) (*c->p++ - '0');
  if (c->p == start || value > G_MAXUINT32)
    return cursor_fail (c, "a 32-bit number expected");
  *out = (guint32) value;
  return TRUE;
}

/* A quoted string, unescaped into @out. */
static gboolean
cursor_quoted (Cursor *c, GString *out)
{
  c->p++;
  for (;;)
    {
      char ch = cursor_peek (c);

      if (ch == '\0')
        return cursor_fail (c, "an unterminated quoted string");
      c->p++;
      if (ch == '"')
        return cursor_count_item (c);
      if (ch == '\\')
        {
          ch = cursor_peek (c);
          if (ch != '"' && ch != '\\')
            return cursor_fail (c, "a bad escape in a quoted string");
          c->p++;
        }
      g_string_append_c (out, ch);
    }
}

/* A literal: the marker must end the line; its octets are the next
 * segment, and the cursor goes on at the start of the line after it. */
static gboolean
cursor_literal (Cursor *c, GString *out)
{
  GString *literal;
  guint32 size = 0;

  c->p++;
  if (!cursor_number (c, &size))
    return FALSE;
  if (cursor_peek (c) == '+')
    c->p++;
  if (!cursor_expect (c, '}', "'}'"))
    return FALSE;
  if (c->p != c->end || c->segment + 2 >= c->parser->segments->len)
    return cursor_fail (c, "a literal marker that does not end its line");
  literal = g_ptr_array_index (c->parser->segments, c->segment + 1);
  if (memchr (literal->str, '\0', literal->len) != NULL)
    return cursor_fail (c, "a NUL octet in a literal");
  g_string_append_len (out, literal->str, (gssize) literal->len);
  cursor_enter_line (c, c->segment + 2);
  return cursor_count_item (c);
}

static gboolean
cursor_string (Cursor *c, GString *out)
{
  switch (cursor_peek (c))
    {
    case '"':
      return cursor_quoted (c, out);
    case '{':
      return cursor_literal (c, out);
    default:
      return cursor_fail (c, "a string expected");
    }
}

static gboolean
cursor_astring (Cursor *c, GString *out)
{
  const char *start = c->p;
  gsize len;

  if (cursor_peek (c) == '"' || cursor_peek (c) == '{')
    return cursor_string (c, out);
  len = cursor_span (c, is_astring_char);
  if (len == 0)
    return cursor_fail (c, "a mailbox name expected");
  g_string_append_len (out, start, (gssize) len);
  return cursor_count_item (c);
}

/* Generic data: atoms (with [...] sections such as BODY[HEADER.FIELDS
 * (FROM)]), quoted strings, literals and balanced parenthesised lists,
 * separated by single spaces. */

static gboolean
is_generic_atom_char (char ch)
{
  return ch > 0x20 && ch < 0x7f && strchr ("(){\"[", ch) == NULL;
}

static gboolean
cursor_generic_atom (Cursor *c)
{
  const char *start = c->p;

  for (;;)
    {
      cursor_span (c, is_generic_atom_char);
      if (cursor_peek (c) != '[')
        break;
      while (c->p < c->end && *c->p != ']')
        c->p++;
      if (!cursor_expect (c, ']', "']'"))
        return FALSE;
    }
  if (c->p == start)
    return cursor_fail (c, "an unexpected %s", c->p == c->end ? "end of line" : "octet");
  return cursor_count_item (c);
}

static gboolean
cursor_generic_token (Cursor *c, guint *depth)
{
  g_autoptr (GString) ignored = g_string_new (NULL);

  switch (cursor_peek (c))
    {
    case '(':
      c->p++;
      if (++*depth > OUTBOX_IMAP_MAX_DEPTH)
        return cursor_fail (c, "lists nested more than %u deep", OUTBOX_IMAP_MAX_DEPTH);
      return cursor_count_item (c);
    case ')':
      if (*depth == 0)
        return cursor_fail (c, "unbalanced parentheses");
      c->p++;
      (*depth)--;
      return TRUE;
    case '"':
    case '{':
      return cursor_string (c, ignored);
    default:
      return cursor_generic_atom (c);
    }
}

/* What may follow a token: a space and another token, ')' or the end. */
static gboolean
cursor_generic_separator (Cursor *c, gboolean after_open)
{
  char next = cursor_peek (c);

  if (after_open || next == ')' || cursor_at_end (c))
    return TRUE;
  if (next != ' ')
    return cursor_fail (c, "a space expected between items");
  c->p++;
  if (cursor_at_end (c) || cursor_peek (c) == ' ' || cursor_peek (c) == ')')
    return cursor_fail (c, "a stray space");
  return TRUE;
}

static gboolean
cursor_generic (Cursor *c)
{
  guint depth = 0;

  while (!cursor_at_end (c))
    {
      gboolean open = cursor_peek (c) == '(';

      if (!cursor_generic_token (c, &depth) || !cursor_generic_separator (c, open))
        return FALSE;
    }
  if (depth != 0)
    return cursor_fail (c, "unbalanced parentheses");
  return TRUE;
}

/* Capability lists, as data or in a [CAPABILITY ...] code: atoms separated
 * by single spaces; a trailing space is tolerated (some servers send
 * one).  @stop is the octet that ends the list: ']' or '\0' for the end of
 * the line. */
static char **
cursor_capabilities (Cursor *c, char stop)
{
  g_autoptr (GPtrArray) capabilities = g_ptr_array_new_with_free_func (g_free);

  for (;;)
    {
      char *capability = cursor_atom_upper (c, "a capability");

      if (capability == NULL)
        return NULL;
      g_ptr_array_add (capabilities, capability);
      if (cursor_peek (c) != ' ')
        break;
      c->p++;
      if (cursor_peek (c) == stop)
        break;
    }
  g_ptr_array_add (capabilities, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&capabilities), FALSE);
}

static gboolean
is_code_arg_char (char ch)
{
  return ch != ']';
}

/* "[" atom [SP args] "]" */
static gboolean
cursor_response_code (Cursor *c, OutboxImapResponse *response)
{
  const char *start;

  c->p++;
  response->code = cursor_atom_upper (c, "a response code");
  if (response->code == NULL)
    return FALSE;
  if (cursor_peek (c) == ' ')
    {
      c->p++;
      start = c->p;
      if (!g_str_equal (response->code, "CAPABILITY"))
        cursor_span (c, is_code_arg_char);
      else if ((response->capabilities = cursor_capabilities (c, ']')) == NULL)
        return FALSE;
      response->code_args = outbox_text_sanitize (start, (gsize) (c->p - start));
    }
  return cursor_expect (c, ']', "']' after the response code");
}

/* resp-text: ["[" code "]" SP] text, where the text may be empty. */
static gboolean
cursor_resp_text (Cursor *c, OutboxImapResponse *response)
{
  if (!cursor_at_end (c) && !cursor_expect (c, ' ', "a space after the status"))
    return FALSE;
  if (cursor_peek (c) == '[')
    {
      if (!cursor_response_code (c, response))
        return FALSE;
      if (!cursor_at_end (c) && !cursor_expect (c, ' ', "a space after the response code"))
        return FALSE;
    }
  response->text = outbox_text_sanitize (c->p, (gsize) (c->end - c->p));
  c->p = c->end;
  return TRUE;
}

static OutboxImapStatus
status_from_word (const char *word)
{
  if (g_str_equal (word, "OK"))
    return OUTBOX_IMAP_STATUS_OK;
  if (g_str_equal (word, "NO"))
    return OUTBOX_IMAP_STATUS_NO;
  if (g_str_equal (word, "BAD"))
    return OUTBOX_IMAP_STATUS_BAD;
  if (g_str_equal (word, "PREAUTH"))
    return OUTBOX_IMAP_STATUS_PREAUTH;
  if (g_str_equal (word, "BYE"))
    return OUTBOX_IMAP_STATUS_BYE;
  return OUTBOX_IMAP_STATUS_NONE;
}

/* ASTRING-CHAR but "+" (RFC 3501 tag). */
static gboolean
is_tag_char (char ch)
{
  return is_astring_char (ch) && ch != '+';
}

static gboolean
cursor_tagged (Cursor *c, OutboxImapResponse *response)
{
  const char *start = c->p;
  gsize len = cursor_span (c, is_tag_char);
  g_autofree char *word = NULL;

  if (len == 0)
    return cursor_fail (c, "a bad tag");
  response->kind = OUTBOX_IMAP_RESPONSE_TAGGED;
  response->tag = g_strndup (start, len);
  if (!cursor_expect (c, ' ', "a space after the tag"))
    return FALSE;
  word = cursor_atom_upper (c, "a status");
  if (word == NULL)
    return FALSE;
  response->status = status_from_word (word);
  if (response->status != OUTBOX_IMAP_STATUS_OK && response->status != OUTBOX_IMAP_STATUS_NO &&
      response->status != OUTBOX_IMAP_STATUS_BAD)
    return cursor_fail (c, "OK, NO or BAD expected after the tag");
  return cursor_resp_text (c, response);
}

static gboolean
cursor_continuation (Cursor *c, OutboxImapResponse *response)
{
  response->kind = OUTBOX_IMAP_RESPONSE_CONTINUATION;
  c->p++;
  if (!cursor_at_end (c) && !cursor_expect (c, ' ', "a space after '+'"))
    return FALSE;
  response->text = outbox_text_sanitize (c->p, (gsize) (c->end - c->p));
  c->p = c->end;
  return TRUE;
}

static gboolean
cursor_list_flags (Cursor *c, GPtrArray *flags)
{
  if (!cursor_expect (c, '(', "'(' before the mailbox flags"))
    return FALSE;
  while (cursor_peek (c) != ')')
    {
      g_autofree char *atom = NULL;
      gboolean system;

      if (flags->len > 0 && !cursor_expect (c, ' ', "a space between flags"))
        return FALSE;
      system = cursor_peek (c) == '\\';
      if (system)
        c->p++;
      atom = cursor_atom (c, "a mailbox flag");
      if (atom == NULL)
        return FALSE;
      g_ptr_array_add (flags, g_strconcat (system ? "\\" : "", atom, NULL));
    }
  c->p++;
  return TRUE;
}

/* QUOTED-CHAR in quotes, or NIL. */
static gboolean
cursor_delimiter (Cursor *c, char *out)
{
  g_autofree char *nil = NULL;
  gboolean escaped;

  if (cursor_peek (c) != '"')
    {
      nil = cursor_atom_upper (c, "a hierarchy delimiter");
      if (nil == NULL)
        return FALSE;
      if (!g_str_equal (nil, "NIL"))
        return cursor_fail (c, "a hierarchy delimiter expected");
      *out = '\0';
      return TRUE;
    }
  c->p++;
  escaped = cursor_peek (c) == '\\';
  if (escaped)
    c->p++;
  *out = cursor_peek (c);
  if (*out == '\0' || escaped != (*out == '"' || *out == '\\'))
    return cursor_fail (c, "a bad hierarchy delimiter");
  c->p++;
  return cursor_expect (c, '"', "'\"' after the hierarchy delimiter");
}

static gboolean
cursor_list (Cursor *c, OutboxImapResponse *response)
{
  g_autoptr (GPtrArray) flags = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) name = g_string_new (NULL);
  OutboxImapMailbox *mailbox;
  char delimiter = '\0';

  if (!cursor_expect (c, ' ', "a space after LIST") || !cursor_list_flags (c, flags) ||
      !cursor_expect (c, ' ', "a space after the flags") || !cursor_delimiter (c, &delimiter) ||
      !cursor_expect (c, ' ', "a space after the delimiter") || !cursor_astring (c, name))
    return FALSE;
  /* RFC 5258 extended data: a parenthesised list. */
  if (cursor_peek (c) == ' ')
    {
      c->p++;
      if (cursor_peek (c) != '(' || !cursor_generic (c))
        return cursor_fail (c, "bad extended LIST data");
    }
  if (!cursor_expect_end (c))
    return FALSE;

  g_ptr_array_add (flags, NULL);
  mailbox = g_new0 (OutboxImapMailbox, 1);
  mailbox->flags = (char **) g_ptr_array_free (g_steal_pointer (&flags), FALSE);
  mailbox->delimiter = delimiter;
  mailbox->name = g_string_free (g_steal_pointer (&name), FALSE);
  mailbox->display_name = outbox_imap_mailbox_display_name (mailbox->name);
  response->data = OUTBOX_IMAP_DATA_LIST;
  response->mailbox = mailbox;
  return TRUE;
}

/* What follows "* n ": EXISTS is understood, the rest is checked and kept
 * raw. */
static gboolean
cursor_message_data (Cursor *c, OutboxImapResponse *response)
{
  g_autofree char *word = NULL;

  if (!cursor_number (c, &response->number) || !cursor_expect (c, ' ', "a space after a number"))
    return FALSE;
  word = cursor_atom_upper (c, "a response name");
  if (word == NULL)
    return FALSE;
  if (g_str_equal (word, "EXISTS"))
    {
      response->data = OUTBOX_IMAP_DATA_EXISTS;
      return cursor_expect_end (c);
    }
  response->data = OUTBOX_IMAP_DATA_OTHER;
  response->number = 0;
  if (!cursor_at_end (c) && !cursor_expect (c, ' ', "a space after the response name"))
    return FALSE;
  return cursor_generic (c);
}

static gboolean
cursor_untagged_word (Cursor *c, OutboxImapResponse *response)
{
  g_autofree char *word = cursor_atom_upper (c, "a response name");

  if (word == NULL)
    return FALSE;
  response->status = status_from_word (word);
  if (response->status != OUTBOX_IMAP_STATUS_NONE)
    return cursor_resp_text (c, response);
  if (g_str_equal (word, "CAPABILITY"))
    {
      response->data = OUTBOX_IMAP_DATA_CAPABILITY;
      if (!cursor_expect (c, ' ', "a space after CAPABILITY"))
        return FALSE;
      response->capabilities = cursor_capabilities (c, '\0');
      return response->capabilities != NULL && cursor_expect_end (c);
    }
  if (g_str_equal (word, "LIST"))
    return cursor_list (c, response);
  response->data = OUTBOX_IMAP_DATA_OTHER;
  if (!cursor_at_end (c) && !cursor_expect (c, ' ', "a space after the response name"))
    return FALSE;
  return cursor_generic (c);
}

static gboolean
cursor_untagged (Cursor *c, OutboxImapResponse *response)
{
  gsize len = 0;
  const char *line = first_line (c->parser, &len);

  response->kind = OUTBOX_IMAP_RESPONSE_UNTAGGED;
  c->p++;
  if (!cursor_expect (c, ' ', "a space after '*'"))
    return FALSE;
  if (!(g_ascii_isdigit (cursor_peek (c)) ? cursor_message_data (c, response)
                                           : cursor_untagged_word (c, response)))
    return FALSE;
  if (response->data == OUTBOX_IMAP_DATA_OTHER)
    response->raw = outbox_text_sanitize (line, len);
  return TRUE;
}

static gboolean
parse_response (OutboxImapParser *parser, OutboxImapResponse **out_response, GError **error)
{
  g_autoptr (OutboxImapResponse) response = g_new0 (OutboxImapResponse, 1);
  Cursor c = { .parser = parser, .error = error };
  gboolean parsed;

  cursor_enter_line (&c, 0);
  switch (cursor_peek (&c))
    {
    case '+':
      parsed = cursor_continuation (&c, response);
      break;
    case '*':
      parsed = cursor_untagged (&c, response);
      break;
    default:
      parsed = cursor_tagged (&c, response);
      break;
    }
  if (!parsed)
    return FALSE;
  if (response->text == NULL)
    response->text = g_strdup ("");
  parser_reset (parser);
  *out_response = g_steal_pointer (&response);
  return TRUE;
}
