/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "outbox-imap.h"
#include "outbox-line-reader.h"
#include "outbox-tls.h"
#include "outbox-transport.h"
#include "outbox-text.h"

G_DEFINE_QUARK (outbox-imap-error-quark, outbox_imap_error)

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

static gboolean
mailbox_is_selectable (const OutboxImapMailbox *mailbox)
{
  return !outbox_imap_mailbox_has_flag (mailbox, "\\Noselect") &&
         !outbox_imap_mailbox_has_flag (mailbox, "\\NonExistent");
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

  g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
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

/* What a mailbox name looks like to people: decoded when it is modified
 * UTF-7, as sent otherwise (a server with UTF8=ACCEPT sends UTF-8). */
static char *
mailbox_display_name (const char *name)
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
      g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                   "Malformed IMAP response from the server (%s): %s", why, quoted);
    }
  else
    g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
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

/* RFC 3501 ATOM-CHAR: printable ASCII but atom-specials. */
static gboolean
is_atom_char (char ch)
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
  gsize len = cursor_span (c, is_atom_char);

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
  return is_atom_char (ch) || ch == ']';
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
  mailbox->display_name = mailbox_display_name (mailbox->name);
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

/* The session ------------------------------------------------------------ */

/* Message data is read and written in blocks of this size, so memory stays
 * bounded whatever the size of the message. */
#define APPEND_CHUNK (64 * 1024)
/* RFC 7888: LITERAL- allows non-synchronizing literals up to this size. */
#define LITERAL_MINUS_MAX 4096
/* Longer strings go as literals even when they could be quoted. */
#define QUOTED_MAX 1024
/* How long LOGOUT and the close after it may take. */
#define LOGOUT_TIMEOUT 5
#define APPEND_MAX_FLAGS 32

void
outbox_imap_timeouts_init_default (OutboxImapTimeouts *timeouts)
{
  g_return_if_fail (timeouts != NULL);

  timeouts->connect = 60;
  timeouts->command = 120;
  timeouts->append_data = 300;
}

struct _OutboxImapSession
{
  GObject parent_instance;

  /* Configuration, copied from the OutboxImapConfig. */
  OutboxServerUrl *url;  /* (owned) */
  char *password;        /* (owned) (nullable) wiped before it is freed */
  char *tls_ca_file;     /* (owned) (nullable) */
  char *tls_fingerprint; /* (owned) (nullable) */
  OutboxImapTimeouts timeouts;
  char *trace_name; /* (owned) "imap host:port", prefix of trace lines */

  /* Transport: the protocol code below only uses stream and reader. */
  GSocketConnection *connection;     /* (owned) (nullable) the raw TCP stream */
  GIOStream *stream;                 /* (owned) (nullable) connection, or TLS over it */
  OutboxLineReader *reader;          /* (owned) (nullable) reads stream */
  OutboxImapParser *parser;          /* (owned) */
  GTlsCertificate *peer_certificate; /* (owned) (nullable) */

  /* Protocol state. */
  char **capabilities;    /* (owned) (nullable) NULL while unknown */
  char *last_server_text; /* (owned) (nullable) */
  char *bye_text;         /* (owned) (nullable) set once the server said BYE */
  guint next_tag;
  gboolean authenticated;
  gboolean ready; /* open succeeded and nothing broke since */
  gboolean busy;  /* an operation is running */
};

G_DEFINE_TYPE (OutboxImapSession, outbox_imap_session, G_TYPE_OBJECT)

static void
wipe_string (char **secret)
{
  if (*secret == NULL)
    return;
  memset (*secret, 0, strlen (*secret));
  g_clear_pointer (secret, g_free);
}

/* Drops the connection at once, without LOGOUT or TLS close_notify: used
 * when it is broken or can no longer be trusted. */
static void
session_abort (OutboxImapSession *self)
{
  self->ready = FALSE;
  if (self->connection != NULL)
    g_io_stream_close (G_IO_STREAM (self->connection), NULL, NULL);
  g_clear_object (&self->reader);
  g_clear_object (&self->stream);
  g_clear_object (&self->connection);
}

static void
outbox_imap_session_finalize (GObject *object)
{
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (object);

  session_abort (self);
  outbox_server_url_free (self->url);
  wipe_string (&self->password);
  g_free (self->tls_ca_file);
  g_free (self->tls_fingerprint);
  g_free (self->trace_name);
  outbox_imap_parser_free (self->parser);
  g_clear_object (&self->peer_certificate);
  g_strfreev (self->capabilities);
  g_free (self->last_server_text);
  g_free (self->bye_text);

  G_OBJECT_CLASS (outbox_imap_session_parent_class)->finalize (object);
}

static void
outbox_imap_session_class_init (OutboxImapSessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_imap_session_finalize;
}

static void
outbox_imap_session_init (OutboxImapSession *self)
{
  self->parser = outbox_imap_parser_new ();
  self->next_tag = 1;
}

OutboxImapSession *
outbox_imap_session_new (const OutboxImapConfig *config)
{
  OutboxImapSession *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->url != NULL, NULL);
  g_return_val_if_fail (config->url->protocol == OUTBOX_PROTOCOL_IMAP, NULL);

  self = g_object_new (OUTBOX_TYPE_IMAP_SESSION, NULL);
  self->url = outbox_server_url_copy (config->url);
  self->password = g_strdup (config->password);
  self->tls_ca_file = g_strdup (config->tls_ca_file);
  self->tls_fingerprint = g_strdup (config->tls_fingerprint);
  self->timeouts = config->timeouts;

  if (strchr (self->url->host, ':') != NULL)
    self->trace_name = g_strdup_printf ("imap [%s]:%u", self->url->host, self->url->port);
  else
    self->trace_name = g_strdup_printf ("imap %s:%u", self->url->host, self->url->port);

  return self;
}

gboolean
outbox_imap_session_has_capability (OutboxImapSession *session, const char *name)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  for (char **c = session->capabilities; c != NULL && *c != NULL; c++)
    {
      if (g_ascii_strcasecmp (*c, name) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
stream_is_tls (OutboxImapSession *self)
{
  return G_IS_TLS_CONNECTION (self->stream);
}

/* Protocol trace ------------------------------------------------------
 *
 * Control and 8-bit octets are escaped; quotes, frequent in IMAP, are
 * not. */

#define TRACE_UNESCAPED "\""

static void
trace_client (OutboxImapSession *self, const char *text)
{
  g_autofree char *escaped = g_strescape (text, TRACE_UNESCAPED);

  g_debug ("%s C: %s", self->trace_name, escaped);
}

static void
trace_server (OutboxImapSession *self, const char *line)
{
  g_autofree char *escaped = g_strescape (line, TRACE_UNESCAPED);

  g_debug ("%s S: %s", self->trace_name, escaped);
}

/* Step guards ---------------------------------------------------------
 *
 * Every network step runs with its own GCancellable, cancelled either by
 * the caller's cancellable or by a timer; when the timer fired, the
 * resulting G_IO_ERROR_CANCELLED is reported as OUTBOX_IMAP_ERROR_TIMEOUT
 * naming the step. */

/* Guarded I/O ---------------------------------------------------------
 *
 * One guarded step either reads one whole response (lines and literals) or
 * writes one block of bytes.  @what names the step in error messages:
 * "greeting", "response to LIST", "LOGIN", "message data". */

typedef struct
{
  OutboxStepGuard *guard; /* (owned) */
  char *what;       /* (owned) */
  GBytes *bytes;    /* (owned) (nullable) being written */
} GuardedStep;

static void
guarded_step_free (GuardedStep *step)
{
  outbox_step_guard_free (step->guard);
  g_free (step->what);
  g_clear_pointer (&step->bytes, g_bytes_unref);
  g_free (step);
}

static GTask *
guarded_task_new (OutboxImapSession *self,
                  guint seconds,
                  const char *what,
                  gpointer source_tag,
                  GCancellable *cancellable,
                  GAsyncReadyCallback callback,
                  gpointer user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  GuardedStep *step = g_new0 (GuardedStep, 1);

  g_task_set_source_tag (task, source_tag);
  step->guard = outbox_step_guard_new (cancellable, seconds);
  step->what = g_strdup (what);
  g_task_set_task_data (task, step, (GDestroyNotify) guarded_step_free);
  return task;
}

/* Makes transport errors say what the session was doing. */
static GError *
read_error (OutboxImapSession *self, const GuardedStep *step, GError *error)
{
  GError *converted;

  if (outbox_step_guard_timed_out (step->guard, error))
    converted = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TIMEOUT, "No %s within %u s",
                             step->what, step->guard->seconds);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED))
    converted = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED,
                             "The server closed the connection before the %s%s%s", step->what,
                             self->bye_text != NULL ? ": " : "",
                             self->bye_text != NULL ? self->bye_text : "");
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE))
    converted = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                             "The server sent a line longer than %u octets in the %s",
                             OUTBOX_IMAP_MAX_LINE, step->what);
  else
    return error;

  g_error_free (error);
  return converted;
}

static void
replace_string (char **slot, char *value)
{
  g_free (*slot);
  *slot = value;
}

/* What every response teaches, whatever command it answers. */
static void
note_response (OutboxImapSession *self, const OutboxImapResponse *response)
{
  if (response->capabilities != NULL)
    {
      g_strfreev (self->capabilities);
      self->capabilities = g_strdupv (response->capabilities);
    }
  if (response->status != OUTBOX_IMAP_STATUS_NONE)
    replace_string (&self->last_server_text, outbox_imap_response_to_string (response));
  if (response->status == OUTBOX_IMAP_STATUS_BYE)
    replace_string (&self->bye_text, g_strdup (self->last_server_text));
}

static void read_response_line (GTask *task);

static void
response_line_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  g_autofree char *line = NULL;
  GError *error = NULL;
  gsize len = 0;

  line = outbox_line_reader_read_line_finish (OUTBOX_LINE_READER (source), result, &len, &error);
  if (line == NULL)
    {
      g_task_return_error (task, read_error (self, g_task_get_task_data (task), error));
      return;
    }
  trace_server (self, line);
  if (!outbox_imap_parser_feed_line (self->parser, line, len, &response, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (response == NULL)
    {
      read_response_line (task);
      return;
    }
  note_response (self, response);
  g_task_return_pointer (task, g_steal_pointer (&response),
                         (GDestroyNotify) outbox_imap_response_free);
}

static void
read_response_line (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  GuardedStep *step = g_task_get_task_data (task);

  outbox_line_reader_read_line_async (self->reader, step->guard->cancellable, response_line_read,
                                      g_object_ref (task));
}

static gboolean
session_check_connected (OutboxImapSession *self, GTask *task)
{
  if (self->stream != NULL)
    return TRUE;
  g_task_return_new_error (task, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED,
                           "The connection to the server is closed");
  return FALSE;
}

/* Reads one response, however many lines and literals it takes. */
static void
response_read_async (OutboxImapSession *self,
                     guint seconds,
                     const char *what,
                     GCancellable *cancellable,
                     GAsyncReadyCallback callback,
                     gpointer user_data)
{
  g_autoptr (GTask) task = guarded_task_new (self, seconds, what, response_read_async, cancellable,
                                             callback, user_data);

  if (session_check_connected (self, task))
    read_response_line (task);
}

static OutboxImapResponse *
response_read_finish (OutboxImapSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == response_read_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
bytes_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  GuardedStep *step = g_task_get_task_data (task);
  GError *error = NULL;

  if (g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (outbox_step_guard_timed_out (step->guard, error))
    {
      g_clear_error (&error);
      error = g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TIMEOUT,
                           "Could not send %s within %u s", step->what, step->guard->seconds);
    }
  g_task_return_error (task, error);
}

static void
bytes_write_async (OutboxImapSession *self,
                   GBytes *bytes,
                   guint seconds,
                   const char *what,
                   GCancellable *cancellable,
                   GAsyncReadyCallback callback,
                   gpointer user_data)
{
  g_autoptr (GTask) task = guarded_task_new (self, seconds, what, bytes_write_async, cancellable,
                                             callback, user_data);
  GuardedStep *step = g_task_get_task_data (task);
  gsize len = 0;
  const void *data = g_bytes_get_data (bytes, &len);

  if (!session_check_connected (self, task))
    return;
  step->bytes = g_bytes_ref (bytes);
  g_output_stream_write_all_async (g_io_stream_get_output_stream (self->stream), data, len,
                                   G_PRIORITY_DEFAULT, step->guard->cancellable, bytes_written,
                                   g_object_ref (task));
}

static gboolean
bytes_write_finish (OutboxImapSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bytes_write_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Commands ------------------------------------------------------------
 *
 * A command is built as parts.  A synchronizing literal {n} ends a part:
 * the next one goes out only after the server's "+".  Non-synchronizing
 * literals {n+} (RFC 7888) and quoted strings stay in the same part.  A
 * part is either bytes or a stream of message data.  Each part keeps its
 * own trace text, in which passwords are replaced by "****"; the bytes of
 * every part are wiped once written, as they may hold a secret. */

typedef struct
{
  GBytes *bytes;        /* (owned) (nullable) */
  GInputStream *stream; /* (owned) (nullable) message data */
  guint64 stream_size;
  gboolean after_continuation; /* wait for "+" before sending it */
  char *trace;                 /* (owned) */
} CommandPart;

static void
command_part_free (CommandPart *part)
{
  g_clear_pointer (&part->bytes, g_bytes_unref);
  g_clear_object (&part->stream);
  g_free (part->trace);
  g_free (part);
}

typedef struct
{
  char *tag;            /* (owned) */
  char *verb;           /* (owned) for messages: "LIST" */
  char *awaited;        /* (owned) "response to LIST" */
  guint seconds;        /* per response and per write */
  GPtrArray *parts;     /* (owned) (element-type CommandPart) */
  GString *text;        /* (owned) the part being built */
  GString *trace;       /* (owned) its trace */
  gboolean next_waits;  /* the part being built follows a {n} */
  /* LIST only: the first selectable mailbox named list_name, or marked
   * \Sent when list_name is NULL, is kept in list_match. */
  gboolean collects_mailbox;
  char *list_name;              /* (owned) (nullable) */
  OutboxImapMailbox *list_match; /* (owned) (nullable) */
} Command;

static void
wipe_gstring (gpointer data)
{
  GString *text = data;

  memset (text->str, 0, text->len);
  g_string_free (text, TRUE);
}

static void
command_free (Command *command)
{
  g_free (command->tag);
  g_free (command->verb);
  g_free (command->awaited);
  g_ptr_array_unref (command->parts);
  wipe_gstring (command->text);
  g_string_free (command->trace, TRUE);
  g_free (command->list_name);
  outbox_imap_mailbox_free (command->list_match);
  g_free (command);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Command, command_free)

static Command *
command_new (OutboxImapSession *self, const char *verb, guint seconds)
{
  Command *command = g_new0 (Command, 1);

  command->tag = g_strdup_printf ("A%u", self->next_tag++);
  command->verb = g_strdup (verb);
  command->awaited = g_strdup_printf ("response to %s", verb);
  command->seconds = seconds;
  command->parts = g_ptr_array_new_with_free_func ((GDestroyNotify) command_part_free);
  command->text = g_string_sized_new (256);
  command->trace = g_string_new (NULL);
  g_string_append_printf (command->text, "%s ", command->tag);
  g_string_append (command->trace, command->text->str);
  return command;
}

static void
command_add (Command *command, const char *text)
{
  g_string_append (command->text, text);
  g_string_append (command->trace, text);
}

static void
command_add_secret (Command *command, const char *secret)
{
  g_string_append (command->text, secret);
  g_string_append (command->trace, "****");
}

static void
command_end_part (Command *command)
{
  CommandPart *part = g_new0 (CommandPart, 1);
  GString *text = g_steal_pointer (&command->text);

  part->bytes = g_bytes_new_with_free_func (text->str, text->len, wipe_gstring, text);
  part->after_continuation = command->next_waits;
  part->trace = g_string_free (g_steal_pointer (&command->trace), FALSE);
  g_ptr_array_add (command->parts, part);
  command->text = g_string_sized_new (256);
  command->trace = g_string_new (NULL);
  command->next_waits = FALSE;
}

/* Ends the line and makes what follows wait for the server's "+": for
 * AUTHENTICATE without an initial response. */
static void
command_await_continuation (Command *command)
{
  g_string_append (command->text, "\r\n");
  command_end_part (command);
  command->next_waits = TRUE;
}

static gboolean
literal_can_be_nonsync (OutboxImapSession *self, guint64 size)
{
  return outbox_imap_session_has_capability (self, "LITERAL+") ||
         (outbox_imap_session_has_capability (self, "LITERAL-") && size <= LITERAL_MINUS_MAX);
}

/* The marker ends the part; what follows waits for the server's "+"
 * unless the literal can be non-synchronizing.  A @secret literal's size is
 * not traced either. */
static void
command_add_literal_marker (OutboxImapSession *self,
                            Command *command,
                            guint64 size,
                            gboolean secret)
{
  gboolean nonsync = literal_can_be_nonsync (self, size);
  g_autofree char *marker =
      g_strdup_printf ("{%" G_GUINT64_FORMAT "%s}", size, nonsync ? "+" : "");

  g_string_append_printf (command->text, "%s\r\n", marker);
  g_string_append (command->trace, secret ? "****" : marker);
  command_end_part (command);
  command->next_waits = !nonsync;
}

static gboolean
can_be_quoted (const char *value)
{
  if (strlen (value) > QUOTED_MAX)
    return FALSE;
  for (const char *p = value; *p != '\0'; p++)
    {
      if ((guchar) *p > 0x7f || *p == '\r' || *p == '\n')
        return FALSE;
    }
  return TRUE;
}

static char *
quote_string (const char *value)
{
  GString *quoted = g_string_new ("\"");

  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_c (quoted, '\\');
      g_string_append_c (quoted, *p);
    }
  g_string_append_c (quoted, '"');
  return g_string_free (quoted, FALSE);
}

/* Adds @value as an IMAP string: quoted when it can be, a literal
 * otherwise.  A @secret is traced as "****". */
static void
command_add_string (OutboxImapSession *self, Command *command, const char *value, gboolean secret)
{
  g_autofree char *quoted = NULL;

  if (can_be_quoted (value))
    {
      quoted = quote_string (value);
      if (secret)
        command_add_secret (command, quoted);
      else
        command_add (command, quoted);
      wipe_string (&quoted);
      return;
    }
  command_add_literal_marker (self, command, strlen (value), secret);
  g_string_append (command->text, value);
  if (!secret)
    g_string_append (command->trace, value);
}

static void
command_add_stream (OutboxImapSession *self,
                    Command *command,
                    GInputStream *stream,
                    guint64 size)
{
  CommandPart *part = g_new0 (CommandPart, 1);

  command_add_literal_marker (self, command, size, FALSE);
  part->stream = g_object_ref (stream);
  part->stream_size = size;
  part->after_continuation = command->next_waits;
  part->trace = g_strdup_printf ("(%" G_GUINT64_FORMAT " octets of message data)", size);
  g_ptr_array_add (command->parts, part);
  command->next_waits = FALSE;
}

static void
command_end (Command *command)
{
  g_string_append (command->text, "\r\n");
  command_end_part (command);
}

/* A whole command in one part, such as "CAPABILITY". */
static Command *
simple_command (OutboxImapSession *self, const char *line, guint seconds)
{
  Command *command = command_new (self, line, seconds);

  command_add (command, line);
  command_end (command);
  return command;
}

/* Running a command ---------------------------------------------------
 *
 * The parts go out in order; before a part that follows a synchronizing
 * literal, responses are read until the "+" comes.  Then responses are read
 * until the tagged one, which is the result.  A tagged NO or BAD may come
 * instead of a "+": the rest of the command is then never sent and the
 * session stays usable.  Untagged responses are noted on the way (and LIST
 * ones matched).  Any other failure drops the connection. */

typedef struct
{
  Command *command; /* (owned) */
  guint next_part;
  gboolean continued;      /* the "+" for next_part came */
  gboolean streaming;      /* next_part is a stream being sent */
  guint64 stream_left;     /* octets of it still to send */
} CommandRun;

static void
command_run_free (CommandRun *run)
{
  g_clear_pointer (&run->command, command_free);
  g_free (run);
}

static void command_run_next (GTask *task);

static void
command_fail (GTask *task, GError *error)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  session_abort (self);
  g_task_return_error (task, error);
}

static CommandPart *
command_run_part (CommandRun *run)
{
  if (run->next_part >= run->command->parts->len)
    return NULL;
  return g_ptr_array_index (run->command->parts, run->next_part);
}

static void
command_part_done (GTask *task)
{
  CommandRun *run = g_task_get_task_data (task);

  run->next_part++;
  run->continued = FALSE;
  run->streaming = FALSE;
  command_run_next (task);
}

static void
command_part_written (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  CommandRun *run = g_task_get_task_data (task);
  GError *error = NULL;

  if (!bytes_write_finish (OUTBOX_IMAP_SESSION (source), result, &error))
    {
      command_fail (task, error);
      return;
    }
  if (run->streaming)
    command_run_next (task);
  else
    command_part_done (task);
}

/* Message data */

static GError *
message_size_error (guint64 size, const char *how)
{
  return g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                      "The message is %s than the %" G_GUINT64_FORMAT " octets announced", how,
                      size);
}

static void
stream_chunk_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  CommandPart *part = command_run_part (run);
  g_autoptr (GBytes) chunk = NULL;
  GError *error = NULL;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      g_prefix_error (&error, "Could not read the message: ");
      command_fail (task, error);
      return;
    }
  if (run->stream_left == 0)
    {
      /* The check for octets beyond the announced size. */
      if (g_bytes_get_size (chunk) > 0)
        command_fail (task, message_size_error (part->stream_size, "longer"));
      else
        command_part_done (task);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      command_fail (task, message_size_error (part->stream_size, "shorter"));
      return;
    }
  run->stream_left -= g_bytes_get_size (chunk);
  bytes_write_async (self, chunk, self->timeouts.append_data, "message data",
                     g_task_get_cancellable (task), command_part_written, g_object_ref (task));
}

static void
command_stream_next (GTask *task, CommandPart *part)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  gsize count;

  if (!run->streaming)
    {
      trace_client (self, part->trace);
      run->streaming = TRUE;
      run->stream_left = part->stream_size;
    }
  /* Once the announced size is sent, one more octet is asked for: there
   * must be none. */
  count = run->stream_left > 0 ? (gsize) MIN (run->stream_left, APPEND_CHUNK) : 1;
  g_input_stream_read_bytes_async (part->stream, count, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), stream_chunk_read,
                                   g_object_ref (task));
}

/* Responses */

static void
command_take_list (Command *command, const OutboxImapResponse *response)
{
  const OutboxImapMailbox *mailbox = response->mailbox;
  gboolean wanted;

  if (!command->collects_mailbox || command->list_match != NULL ||
      !mailbox_is_selectable (mailbox))
    return;
  if (command->list_name != NULL)
    wanted = g_str_equal (mailbox->name, command->list_name);
  else
    wanted = outbox_imap_mailbox_has_flag (mailbox, "\\Sent");
  if (wanted)
    command->list_match = outbox_imap_mailbox_copy (mailbox);
}

/* TRUE to read on; FALSE with @error to fail; FALSE without: @response is
 * the tagged result. */
static gboolean
command_take_response (GTask *task, OutboxImapResponse *response, GError **error)
{
  CommandRun *run = g_task_get_task_data (task);
  CommandPart *part = command_run_part (run);
  g_autofree char *text = NULL;

  switch (response->kind)
    {
    case OUTBOX_IMAP_RESPONSE_UNTAGGED:
      if (response->data == OUTBOX_IMAP_DATA_LIST)
        command_take_list (run->command, response);
      return TRUE;
    case OUTBOX_IMAP_RESPONSE_CONTINUATION:
      if (part != NULL && part->after_continuation && !run->continued)
        {
          run->continued = TRUE;
          return TRUE;
        }
      text = outbox_imap_response_to_string (response);
      g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                   "The server sent an unexpected continuation request to %s: %s",
                   run->command->verb, text);
      return FALSE;
    case OUTBOX_IMAP_RESPONSE_TAGGED:
    default:
      if (!g_str_equal (response->tag, run->command->tag))
        g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                     "The server answered %s with the tag “%s” instead of “%s”",
                     run->command->verb, response->tag, run->command->tag);
      else if (part != NULL && response->status == OUTBOX_IMAP_STATUS_OK)
        g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                     "The server accepted %s before it was complete", run->command->verb);
      return FALSE;
    }
}

static void
command_response_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = response_read_finish (OUTBOX_IMAP_SESSION (source), result, &error);
  if (response == NULL)
    {
      command_fail (task, error);
      return;
    }
  if (command_take_response (task, response, &error))
    command_run_next (task);
  else if (error != NULL)
    command_fail (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&response),
                           (GDestroyNotify) outbox_imap_response_free);
}

static void
command_run_next (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  CommandRun *run = g_task_get_task_data (task);
  CommandPart *part = command_run_part (run);

  if (part == NULL || (part->after_continuation && !run->continued))
    {
      response_read_async (self, run->command->seconds, run->command->awaited,
                           g_task_get_cancellable (task), command_response_read,
                           g_object_ref (task));
      return;
    }
  if (part->stream != NULL)
    {
      command_stream_next (task, part);
      return;
    }
  if (*part->trace != '\0')
    trace_client (self, part->trace);
  bytes_write_async (self, part->bytes, run->command->seconds, run->command->verb,
                     g_task_get_cancellable (task), command_part_written, g_object_ref (task));
}

/* Runs @command (transfer full); the result is its tagged response. */
static void
command_async (OutboxImapSession *self,
               Command *command,
               GCancellable *cancellable,
               GAsyncReadyCallback callback,
               gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (self, cancellable, callback, user_data);
  CommandRun *run = g_new0 (CommandRun, 1);

  g_task_set_source_tag (task, command_async);
  run->command = command;
  g_task_set_task_data (task, run, (GDestroyNotify) command_run_free);
  if (session_check_connected (self, task))
    command_run_next (task);
}

/* The tagged response, or NULL on error.  With @out_command, the command
 * (with its LIST match) goes back to the caller. */
static OutboxImapResponse *
command_finish (OutboxImapSession *self,
                GAsyncResult *result,
                Command **out_command,
                GError **error)
{
  CommandRun *run;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == command_async, NULL);

  run = g_task_get_task_data (G_TASK (result));
  if (out_command != NULL)
    *out_command = g_steal_pointer (&run->command);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static GError *
reply_error (gint code, const char *what, const OutboxImapResponse *response)
{
  g_autofree char *text = outbox_imap_response_to_string (response);

  return g_error_new (OUTBOX_IMAP_ERROR, code, "%s: %s", what, text);
}

/* Transport set-up ---------------------------------------------------- */

static void
use_connection (OutboxImapSession *self, GSocketConnection *connection)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  g_autoptr (GError) error = NULL;

  /* Commands are small and each waits for its response: Nagle only adds
   * delay. */
  if (!g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, &error))
    g_debug ("%s: could not set TCP_NODELAY: %s", self->trace_name, error->message);

  self->connection = g_object_ref (connection);
  self->stream = G_IO_STREAM (g_object_ref (connection));
  self->reader =
      outbox_line_reader_new (g_io_stream_get_input_stream (self->stream), OUTBOX_IMAP_MAX_LINE);
}

/* Replaces the plain stream with @tls.  The old reader goes away with
 * whatever it held (the caller made sure it held nothing), and every
 * capability learnt in plaintext is forgotten. */
static void
use_tls (OutboxImapSession *self, GIOStream *tls)
{
  g_clear_object (&self->reader);
  g_set_object (&self->stream, tls);
  self->reader = outbox_line_reader_new (g_io_stream_get_input_stream (tls), OUTBOX_IMAP_MAX_LINE);
  g_set_object (&self->peer_certificate,
                g_tls_connection_get_peer_certificate (G_TLS_CONNECTION (tls)));
  g_clear_pointer (&self->capabilities, g_strfreev);
}

/* Security item 5: credentials only over TLS, or in plaintext to this
 * machine when the user asked for +insecure. */
static gboolean
login_allowed (OutboxImapSession *self)
{
  if (stream_is_tls (self))
    return TRUE;
  return self->url->security == OUTBOX_SECURITY_INSECURE &&
         outbox_server_url_is_loopback (self->url);
}

/* The open state machine ----------------------------------------------
 *
 * outbox_imap_session_open_async() walks these states; each state starts
 * one asynchronous step and the step's callback picks the next state,
 * mostly through next_open_state(), which asks in order: are the
 * capabilities known, is TLS up when the URL requires STARTTLS, is the
 * session logged in.
 *
 *   OPEN_CONNECT        GSocketClient connects to host:port (connect
 *                       timeout).  Next: OPEN_IMPLICIT_TLS for imaps,
 *                       OPEN_GREETING otherwise.
 *   OPEN_IMPLICIT_TLS   TLS handshake on the fresh TCP stream (connect
 *                       timeout), then the pin check.  Next: OPEN_GREETING.
 *   OPEN_GREETING       reads the greeting (command timeout): "* OK" goes
 *                       on; "* PREAUTH" counts as logged in, but fails with
 *                       TLS_REQUIRED in plaintext when STARTTLS is required
 *                       (STARTTLS is not allowed once authenticated, and
 *                       a man in the middle could answer PREAUTH to keep
 *                       the session in plaintext); "* BYE" fails with
 *                       CLOSED.  A [CAPABILITY ...] code saves a command.
 *   OPEN_CAPABILITY     CAPABILITY; the untagged answer replaces what was
 *                       known.  Next: next_open_state().
 *   OPEN_STARTTLS       STARTTLS, which must have been offered; only OK
 *                       goes on (else TLS_REQUIRED).  Any byte already
 *                       buffered after that OK was sent before the TLS
 *                       handshake and is an injection attempt
 *                       (CVE-2011-0411, CVE-2020-14928): fail.
 *                       Next: OPEN_STARTTLS_HANDSHAKE.
 *   OPEN_STARTTLS_HANDSHAKE  TLS over the raw TCP stream (never over the
 *                       line reader), pin check, a fresh line reader, all
 *                       capabilities forgotten.  Next: OPEN_CAPABILITY.
 *   OPEN_LOGIN          refuses to go on in plaintext (except +insecure to
 *                       loopback) or without a user or password.  With
 *                       AUTH=PLAIN: AUTHENTICATE PLAIN, the credentials as
 *                       an initial response when SASL-IR is offered, else
 *                       after the server's "+".  Otherwise LOGIN, unless
 *                       LOGINDISABLED.  The capabilities are forgotten as
 *                       they may change; the OK may carry the new ones.
 *                       NO fails with AUTH.  Next: next_open_state().
 *   OPEN_DONE           the session is ready for commands.
 *
 * Any failure closes the connection: a half-opened session is never
 * reused. */
typedef enum
{
  OPEN_CONNECT,
  OPEN_IMPLICIT_TLS,
  OPEN_GREETING,
  OPEN_CAPABILITY,
  OPEN_STARTTLS,
  OPEN_STARTTLS_HANDSHAKE,
  OPEN_LOGIN,
  OPEN_DONE,
} OpenState;

typedef struct
{
  OpenState state;
} OpenData;

static void
open_data_free (OpenData *data)
{
  g_free (data);
}

static OpenState
next_open_state (OutboxImapSession *self)
{
  if (self->capabilities == NULL)
    return OPEN_CAPABILITY;
  if (self->url->security == OUTBOX_SECURITY_STARTTLS && !stream_is_tls (self))
    return OPEN_STARTTLS;
  if (!self->authenticated)
    return OPEN_LOGIN;
  return OPEN_DONE;
}

static void open_advance (GTask *task);

static void
open_fail (GTask *task, GError *error)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  g_debug ("%s: open failed: %s", self->trace_name, error->message);
  session_abort (self);
  self->busy = FALSE;
  g_task_return_error (task, error);
}

static void open_command_done (GObject *source, GAsyncResult *result, gpointer user_data);

static void
open_command (GTask *task, Command *command)
{
  command_async (g_task_get_source_object (task), command, g_task_get_cancellable (task),
                 open_command_done, g_object_ref (task));
}

/* Connect */

static void
connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GSocketConnection) connection = NULL;
  GError *error = NULL;

  connection = outbox_transport_connect_finish (result, &error);
  if (connection == NULL)
    {
      open_fail (task, error);
      return;
    }
  use_connection (self, connection);
  data->state = self->url->security == OUTBOX_SECURITY_TLS ? OPEN_IMPLICIT_TLS : OPEN_GREETING;
  open_advance (task);
}

static void
open_connect (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  outbox_transport_connect_async (self->url->host, self->url->port, self->timeouts.connect,
                                  OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TIMEOUT,
                                  g_task_get_cancellable (task), connected, g_object_ref (task));
}

/* TLS handshake, implicit or after STARTTLS */

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GTlsCertificate) offered = NULL;
  GError *error = NULL;

  tls = outbox_transport_handshake_finish (result, &offered, &error);
  if (tls == NULL)
    {
      g_set_object (&self->peer_certificate, offered);
      open_fail (task, error);
      return;
    }
  use_tls (self, tls);
  g_debug ("%s: TLS is up", self->trace_name);
  data->state = data->state == OPEN_IMPLICIT_TLS ? OPEN_GREETING : next_open_state (self);
  open_advance (task);
}

static void
open_handshake (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  outbox_transport_handshake_async (G_IO_STREAM (self->connection), self->url->host,
                                    self->url->port, self->tls_ca_file, self->tls_fingerprint,
                                    self->timeouts.connect, OUTBOX_IMAP_ERROR,
                                    OUTBOX_IMAP_ERROR_TIMEOUT, g_task_get_cancellable (task),
                                    handshake_done, g_object_ref (task));
}

/* Greeting */

static gboolean
handle_greeting (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  gboolean untagged = response->kind == OUTBOX_IMAP_RESPONSE_UNTAGGED;

  if (untagged && response->status == OUTBOX_IMAP_STATUS_BYE)
    {
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_CLOSED,
                                             "The server refused the connection", response));
      return FALSE;
    }
  if (untagged && response->status == OUTBOX_IMAP_STATUS_PREAUTH)
    {
      if (self->url->security == OUTBOX_SECURITY_STARTTLS && !stream_is_tls (self))
        {
          g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TLS_REQUIRED,
                       "%s:%u greeted with PREAUTH in plaintext, which rules out STARTTLS; "
                       "this account requires TLS",
                       self->url->host, self->url->port);
          return FALSE;
        }
      self->authenticated = TRUE;
      return TRUE;
    }
  if (untagged && response->status == OUTBOX_IMAP_STATUS_OK)
    return TRUE;
  g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_PROTOCOL,
                                         "The server did not send an IMAP greeting", response));
  return FALSE;
}

static void
greeting_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  OpenData *data = g_task_get_task_data (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = response_read_finish (self, result, &error);
  if (response == NULL || !handle_greeting (self, response, &error))
    {
      open_fail (task, error);
      return;
    }
  data->state = next_open_state (self);
  open_advance (task);
}

static void
open_read_greeting (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  response_read_async (self, self->timeouts.command, "greeting", g_task_get_cancellable (task),
                       greeting_read, g_object_ref (task));
}

/* STARTTLS */

static void
open_send_starttls (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  if (!outbox_imap_session_has_capability (self, "STARTTLS"))
    {
      open_fail (task, g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_TLS_REQUIRED,
                                    "%s:%u does not offer STARTTLS, which this account requires; "
                                    "Outbox never falls back to plaintext",
                                    self->url->host, self->url->port));
      return;
    }
  open_command (task, simple_command (self, "STARTTLS", self->timeouts.command));
}

static gboolean
handle_starttls (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_TLS_REQUIRED,
                                             "The server refused STARTTLS, which this account "
                                             "requires",
                                             response));
      return FALSE;
    }
  if (outbox_line_reader_has_buffered (self->reader))
    {
      g_set_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_INJECTION,
                   "%s:%u sent data after its answer to STARTTLS and before the TLS handshake; "
                   "someone may be tampering with the connection",
                   self->url->host, self->url->port);
      return FALSE;
    }
  return TRUE;
}

/* Login */

static gboolean login_unavailable (GError **error, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
login_unavailable (GError **error, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  g_propagate_error (error, g_error_new_valist (OUTBOX_IMAP_ERROR,
                                                OUTBOX_IMAP_ERROR_AUTH_UNAVAILABLE, format, args));
  va_end (args);
  return FALSE;
}

static gboolean
check_login_possible (OutboxImapSession *self, GError **error)
{
  if (self->url->user == NULL)
    return login_unavailable (error,
                              "The IMAP server %s needs a user name; give one in the URL, "
                              "such as imaps://me@%s",
                              self->url->host, self->url->host);
  if (!login_allowed (self))
    return login_unavailable (error,
                              "Refusing to send the password for %s over an unencrypted "
                              "connection to %s",
                              self->url->user, self->url->host);
  if (self->password == NULL)
    return login_unavailable (error, "No password stored for %s on %s", self->url->user,
                              self->url->host);
  return TRUE;
}

/* "\0user\0password" in base64 (RFC 4616). */
static char *
plain_initial_response (OutboxImapSession *self)
{
  gsize user_len = strlen (self->url->user);
  gsize password_len = strlen (self->password);
  gsize len = user_len + password_len + 2;
  char *message = g_malloc0 (len);
  char *encoded;

  memcpy (message + 1, self->url->user, user_len);
  memcpy (message + user_len + 2, self->password, password_len);
  encoded = g_base64_encode ((const guchar *) message, len);
  memset (message, 0, len);
  g_free (message);
  return encoded;
}

static Command *
authenticate_plain_command (OutboxImapSession *self)
{
  Command *command = command_new (self, "AUTHENTICATE", self->timeouts.command);
  char *initial = plain_initial_response (self);

  command_add (command, "AUTHENTICATE PLAIN");
  if (outbox_imap_session_has_capability (self, "SASL-IR"))
    command_add (command, " ");
  else
    command_await_continuation (command);
  command_add_secret (command, initial);
  command_end (command);
  wipe_string (&initial);
  return command;
}

static Command *
login_command (OutboxImapSession *self)
{
  Command *command = command_new (self, "LOGIN", self->timeouts.command);

  command_add (command, "LOGIN ");
  command_add_string (self, command, self->url->user, FALSE);
  command_add (command, " ");
  command_add_string (self, command, self->password, TRUE);
  command_end (command);
  return command;
}

static void
open_send_login (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  Command *command;
  GError *error = NULL;

  if (!check_login_possible (self, &error))
    {
      open_fail (task, error);
      return;
    }
  if (outbox_imap_session_has_capability (self, "AUTH=PLAIN"))
    command = authenticate_plain_command (self);
  else if (!outbox_imap_session_has_capability (self, "LOGINDISABLED"))
    command = login_command (self);
  else
    {
      login_unavailable (&error,
                         "%s:%u disables LOGIN and offers no mechanism that Outbox supports "
                         "(AUTH=PLAIN)",
                         self->url->host, self->url->port);
      open_fail (task, error);
      return;
    }
  g_clear_pointer (&self->capabilities, g_strfreev);
  open_command (task, command);
}

static gboolean
handle_login (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  switch (response->status)
    {
    case OUTBOX_IMAP_STATUS_OK:
      g_debug ("%s: logged in as %s", self->trace_name, self->url->user);
      self->authenticated = TRUE;
      return TRUE;
    case OUTBOX_IMAP_STATUS_NO:
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_AUTH,
                                             "The server refused the user name or password",
                                             response));
      return FALSE;
    default:
      g_propagate_error (error, reply_error (OUTBOX_IMAP_ERROR_REPLY, "Login failed", response));
      return FALSE;
    }
}

static gboolean
handle_capability (OutboxImapSession *self, const OutboxImapResponse *response, GError **error)
{
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      g_propagate_error (error,
                         reply_error (OUTBOX_IMAP_ERROR_REPLY, "CAPABILITY failed", response));
      return FALSE;
    }
  if (self->capabilities == NULL)
    {
      g_set_error_literal (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL,
                           "The server answered CAPABILITY without listing its capabilities");
      return FALSE;
    }
  return TRUE;
}

static gboolean
open_handle_response (OutboxImapSession *self,
                      OpenData *data,
                      const OutboxImapResponse *response,
                      GError **error)
{
  switch (data->state)
    {
    case OPEN_CAPABILITY:
      if (!handle_capability (self, response, error))
        return FALSE;
      break;
    case OPEN_STARTTLS:
      if (!handle_starttls (self, response, error))
        return FALSE;
      data->state = OPEN_STARTTLS_HANDSHAKE;
      return TRUE;
    case OPEN_LOGIN:
      if (!handle_login (self, response, error))
        return FALSE;
      break;
    case OPEN_CONNECT:
    case OPEN_IMPLICIT_TLS:
    case OPEN_GREETING:
    case OPEN_STARTTLS_HANDSHAKE:
    case OPEN_DONE:
    default:
      g_assert_not_reached ();
    }
  data->state = next_open_state (self);
  return TRUE;
}

static void
open_command_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL || !open_handle_response (self, g_task_get_task_data (task), response, &error))
    {
      open_fail (task, error);
      return;
    }
  open_advance (task);
}

static void
open_succeed (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  self->ready = TRUE;
  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

static void
open_advance (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  OpenData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case OPEN_CONNECT:
      open_connect (task);
      break;
    case OPEN_IMPLICIT_TLS:
    case OPEN_STARTTLS_HANDSHAKE:
      open_handshake (task);
      break;
    case OPEN_GREETING:
      open_read_greeting (task);
      break;
    case OPEN_CAPABILITY:
      open_command (task, simple_command (self, "CAPABILITY", self->timeouts.command));
      break;
    case OPEN_STARTTLS:
      open_send_starttls (task);
      break;
    case OPEN_LOGIN:
      open_send_login (task);
      break;
    case OPEN_DONE:
    default:
      open_succeed (task);
      break;
    }
}

void
outbox_imap_session_open_async (OutboxImapSession *session,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  OpenData *data;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_open_async);
  data = g_new0 (OpenData, 1);
  data->state = OPEN_CONNECT;
  g_task_set_task_data (task, data, (GDestroyNotify) open_data_free);

  if (session->busy || session->stream != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The IMAP session is already open or busy");
      return;
    }
  session->busy = TRUE;
  open_advance (task);
}

gboolean
outbox_imap_session_open_finish (OutboxImapSession *session, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_open_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Operations on an open session --------------------------------------- */

static gboolean
operation_can_start (OutboxImapSession *self, GError **error)
{
  if (self->busy)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_PENDING,
                           "The IMAP session is busy with another operation");
      return FALSE;
    }
  if (!outbox_imap_session_is_open (self))
    {
      g_set_error_literal (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED,
                           "The IMAP session is not open");
      return FALSE;
    }
  return TRUE;
}

static void
operation_return_error (GTask *task, GError *error)
{
  OutboxImapSession *self = g_task_get_source_object (task);

  self->busy = FALSE;
  g_task_return_error (task, error);
}

/* Finding the Sent mailbox --------------------------------------------
 *
 *   FIND_SPECIAL_USE  with SPECIAL-USE offered: LIST "" "*" RETURN
 *                     (SPECIAL-USE); a selectable \Sent mailbox ends the
 *                     search.
 *   FIND_CONFIGURED   with a configured name: LIST "" NAME; the mailbox
 *                     must come back under exactly that name.
 *   FIND_DEFAULT      LIST "" "Sent", the same way.
 *   FIND_DONE         the match, or NO_SENT_FOLDER.
 *
 * A NO or BAD to a LIST fails the search (REPLY) but leaves the session
 * open. */
typedef enum
{
  FIND_SPECIAL_USE,
  FIND_CONFIGURED,
  FIND_DEFAULT,
  FIND_DONE,
} FindState;

typedef struct
{
  FindState state;
  char *configured_name;    /* (owned) (nullable) modified UTF-7 */
  OutboxImapMailbox *found; /* (owned) (nullable) */
} FindData;

static void
find_data_free (FindData *data)
{
  g_free (data->configured_name);
  outbox_imap_mailbox_free (data->found);
  g_free (data);
}

static void find_advance (GTask *task);

static void
find_listed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  FindData *data = g_task_get_task_data (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  g_autoptr (Command) command = NULL;
  GError *error = NULL;

  response = command_finish (self, result, &command, &error);
  if (response == NULL)
    {
      operation_return_error (task, error);
      return;
    }
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      operation_return_error (task, reply_error (OUTBOX_IMAP_ERROR_REPLY, "LIST failed", response));
      return;
    }
  data->found = g_steal_pointer (&command->list_match);
  data->state = data->found != NULL ? FIND_DONE : data->state + 1;
  find_advance (task);
}

/* LIST "" @pattern, keeping the mailbox named @name, or the \Sent one when
 * @name is NULL. */
static void
find_list (GTask *task, const char *pattern, const char *name, const char *options)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  Command *command = command_new (self, "LIST", self->timeouts.command);

  command_add (command, "LIST \"\" ");
  command_add_string (self, command, pattern, FALSE);
  if (options != NULL)
    command_add (command, options);
  command_end (command);
  command->collects_mailbox = TRUE;
  command->list_name = g_strdup (name);
  command_async (self, command, g_task_get_cancellable (task), find_listed, g_object_ref (task));
}

static void
find_done (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  FindData *data = g_task_get_task_data (task);

  if (data->found == NULL)
    {
      operation_return_error (
          task, g_error_new (OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_NO_SENT_FOLDER,
                             "%s has no mailbox marked \\Sent%s%s%s and none named “Sent”",
                             self->url->host, data->configured_name != NULL ? ", none named “" : "",
                             data->configured_name != NULL ? data->configured_name : "",
                             data->configured_name != NULL ? "”" : ""));
      return;
    }
  g_debug ("%s: sent mail goes to %s", self->trace_name, data->found->display_name);
  self->busy = FALSE;
  g_task_return_pointer (task, g_steal_pointer (&data->found),
                         (GDestroyNotify) outbox_imap_mailbox_free);
}

static void
find_advance (GTask *task)
{
  OutboxImapSession *self = g_task_get_source_object (task);
  FindData *data = g_task_get_task_data (task);

  switch (data->state)
    {
    case FIND_SPECIAL_USE:
      if (outbox_imap_session_has_capability (self, "SPECIAL-USE"))
        {
          find_list (task, "*", NULL, " RETURN (SPECIAL-USE)");
          return;
        }
      data->state = FIND_CONFIGURED;
      G_GNUC_FALLTHROUGH;
    case FIND_CONFIGURED:
      if (data->configured_name != NULL)
        {
          find_list (task, data->configured_name, data->configured_name, NULL);
          return;
        }
      data->state = FIND_DEFAULT;
      G_GNUC_FALLTHROUGH;
    case FIND_DEFAULT:
      if (g_strcmp0 (data->configured_name, "Sent") != 0)
        {
          find_list (task, "Sent", "Sent", NULL);
          return;
        }
      data->state = FIND_DONE;
      G_GNUC_FALLTHROUGH;
    case FIND_DONE:
    default:
      find_done (task);
      return;
    }
}

void
outbox_imap_session_find_sent_async (OutboxImapSession *session,
                                     const char *configured_name,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  FindData *data;
  GError *error = NULL;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_find_sent_async);
  data = g_new0 (FindData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) find_data_free);

  if (configured_name != NULL && *configured_name != '\0')
    {
      data->configured_name = outbox_imap_utf7_encode (configured_name);
      if (data->configured_name == NULL)
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                                   "The Sent mailbox name is not valid UTF-8");
          return;
        }
    }
  if (!operation_can_start (session, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  session->busy = TRUE;
  find_advance (task);
}

OutboxImapMailbox *
outbox_imap_session_find_sent_finish (OutboxImapSession *session,
                                      GAsyncResult *result,
                                      GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);
  g_return_val_if_fail (g_task_is_valid (result, session), NULL);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_find_sent_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* APPEND -------------------------------------------------------------- */

/* RFC 3501 flag: "\" atom, or atom (a keyword). */
static gboolean
flag_is_valid (const char *flag)
{
  const char *p = flag[0] == '\\' ? flag + 1 : flag;

  if (*p == '\0' || strlen (p) > 64)
    return FALSE;
  for (; *p != '\0'; p++)
    {
      if (!is_atom_char (*p))
        return FALSE;
    }
  return TRUE;
}

static gboolean
check_append_args (const char *mailbox, const char *const *flags, GError **error)
{
  if (*mailbox == '\0')
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "The mailbox name is empty");
      return FALSE;
    }
  for (gsize i = 0; flags != NULL && flags[i] != NULL; i++)
    {
      if (i >= APPEND_MAX_FLAGS || !flag_is_valid (flags[i]))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "Invalid or too many IMAP flags (at “%s”)", flags[i]);
          return FALSE;
        }
    }
  return TRUE;
}

/* RFC 3501 date-time, with English month names whatever the locale:
 * "\" 5-Mar-2024 14:03:09 +0100\"". */
static char *
format_date_time (GDateTime *date)
{
  static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  gint64 offset = g_date_time_get_utc_offset (date) / G_TIME_SPAN_MINUTE;
  char sign = offset < 0 ? '-' : '+';

  offset = ABS (offset);
  return g_strdup_printf ("\"%2d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
                          g_date_time_get_day_of_month (date),
                          months[g_date_time_get_month (date) - 1], g_date_time_get_year (date),
                          g_date_time_get_hour (date), g_date_time_get_minute (date),
                          g_date_time_get_second (date), sign, (int) (offset / 60),
                          (int) (offset % 60));
}

static Command *
append_command (OutboxImapSession *self,
                const char *mailbox,
                GInputStream *message,
                guint64 size,
                const char *const *flags,
                GDateTime *date)
{
  Command *command = command_new (self, "APPEND", self->timeouts.command);

  command_add (command, "APPEND ");
  command_add_string (self, command, mailbox, FALSE);
  if (flags != NULL && flags[0] != NULL)
    {
      g_autofree char *joined = g_strjoinv (" ", (char **) flags);
      g_autofree char *list = g_strdup_printf (" (%s)", joined);
      command_add (command, list);
    }
  if (date != NULL)
    {
      g_autofree char *text = format_date_time (date);
      command_add (command, " ");
      command_add (command, text);
    }
  command_add (command, " ");
  command_add_stream (self, command, message, size);
  command_end (command);
  return command;
}

static void
appended (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  const char *mailbox = g_task_get_task_data (task);
  g_autoptr (OutboxImapResponse) response = NULL;
  g_autofree char *what = NULL;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL)
    {
      operation_return_error (task, error);
      return;
    }
  if (response->status != OUTBOX_IMAP_STATUS_OK)
    {
      what = g_strdup_printf ("Could not save the message in “%s”", mailbox);
      operation_return_error (task, reply_error (OUTBOX_IMAP_ERROR_REPLY, what, response));
      return;
    }
  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
}

void
outbox_imap_session_append_async (OutboxImapSession *session,
                                  const char *mailbox,
                                  GInputStream *message,
                                  guint64 size,
                                  const char *const *flags,
                                  GDateTime *date,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  GError *error = NULL;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (mailbox != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (message));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_append_async);
  g_task_set_task_data (task, mailbox_display_name (mailbox), g_free);

  if (!check_append_args (mailbox, flags, &error) || !operation_can_start (session, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  session->busy = TRUE;
  command_async (session, append_command (session, mailbox, message, size, flags, date),
                 cancellable, appended, g_object_ref (task));
}

gboolean
outbox_imap_session_append_finish (OutboxImapSession *session,
                                   GAsyncResult *result,
                                   GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_append_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* LOGOUT -------------------------------------------------------------- */

static void
logout_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = g_task_get_source_object (task);
  GError *error = NULL;

  g_io_stream_close_finish (G_IO_STREAM (source), result, &error);
  session_abort (self);
  self->busy = FALSE;
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
logout_replied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  OutboxImapSession *self = OUTBOX_IMAP_SESSION (source);
  g_autoptr (OutboxImapResponse) response = NULL;
  OutboxStepGuard *guard;
  GError *error = NULL;

  response = command_finish (self, result, NULL, &error);
  if (response == NULL)
    {
      self->busy = FALSE;
      /* A server that says BYE and closes without the tagged OK is common. */
      if (self->bye_text != NULL &&
          g_error_matches (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_CLOSED))
        {
          g_clear_error (&error);
          g_task_return_boolean (task, TRUE);
        }
      else
        g_task_return_error (task, error);
      return;
    }
  guard = outbox_step_guard_new (g_task_get_cancellable (task), LOGOUT_TIMEOUT);
  g_task_set_task_data (task, guard, (GDestroyNotify) outbox_step_guard_free);
  g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, guard->cancellable, logout_closed,
                           g_object_ref (task));
}

void
outbox_imap_session_logout_async (OutboxImapSession *session,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr (GTask) task = NULL;
  guint seconds;

  g_return_if_fail (OUTBOX_IS_IMAP_SESSION (session));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (session, cancellable, callback, user_data);
  g_task_set_source_tag (task, outbox_imap_session_logout_async);

  if (session->busy)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The IMAP session is busy with another operation");
      return;
    }
  if (session->stream == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  session->ready = FALSE;
  session->busy = TRUE;
  seconds = session->timeouts.command > 0 ? MIN (session->timeouts.command, LOGOUT_TIMEOUT)
                                          : LOGOUT_TIMEOUT;
  command_async (session, simple_command (session, "LOGOUT", seconds), cancellable,
                 logout_replied, g_object_ref (task));
}

gboolean
outbox_imap_session_logout_finish (OutboxImapSession *session,
                                   GAsyncResult *result,
                                   GError **error)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, session), FALSE);
  g_return_val_if_fail (
      g_task_get_source_tag (G_TASK (result)) == outbox_imap_session_logout_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Accessors ----------------------------------------------------------- */

gboolean
outbox_imap_session_is_open (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), FALSE);

  return session->ready && session->stream != NULL;
}

const char *const *
outbox_imap_session_get_capabilities (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return (const char *const *) session->capabilities;
}

GTlsCertificate *
outbox_imap_session_get_peer_certificate (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return session->peer_certificate;
}

const char *
outbox_imap_session_get_last_server_text (OutboxImapSession *session)
{
  g_return_val_if_fail (OUTBOX_IS_IMAP_SESSION (session), NULL);

  return session->last_server_text;
}
