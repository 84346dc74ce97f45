/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-imap.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
assert_displayable (const char *text)
{
  g_assert_nonnull (text);
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (g_unichar_iscntrl (g_utf8_get_char (p)));
}

static void
assert_atoms (char **atoms)
{
  for (char **a = atoms; a != NULL && *a != NULL; a++)
    {
      g_assert_cmpuint (strlen (*a), >, 0);
      for (const char *p = *a; *p != '\0'; p++)
        g_assert_true (*p > 0x20 && *p < 0x7f);
    }
}

/* A name that decodes must decode the same after a round trip. */
static void
check_utf7 (const char *name)
{
  g_autofree char *decoded = outbox_imap_utf7_decode (name, NULL);
  g_autofree char *encoded = NULL;
  g_autofree char *again = NULL;

  if (decoded == NULL)
    return;
  encoded = outbox_imap_utf7_encode (decoded);
  g_assert_nonnull (encoded);
  again = outbox_imap_utf7_decode (encoded, NULL);
  g_assert_cmpstr (again, ==, decoded);
}

static void
check_response (const OutboxImapResponse *response)
{
  g_autofree char *text = outbox_imap_response_to_string (response);

  assert_displayable (text);
  assert_displayable (response->text);
  if (response->code_args != NULL)
    assert_displayable (response->code_args);
  if (response->raw != NULL)
    assert_displayable (response->raw);
  if (response->kind == OUTBOX_IMAP_RESPONSE_TAGGED)
    g_assert_cmpuint (strlen (response->tag), >, 0);
  assert_atoms (response->capabilities);
  if (response->mailbox != NULL)
    {
      assert_displayable (response->mailbox->display_name);
      check_utf7 (response->mailbox->name);
    }
}

/* Feeds the input line by line (split at LF) as the line reader would. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  const char *line = (const char *) data;
  const char *end = line + size;

  while (line < end)
    {
      const char *lf = memchr (line, '\n', (size_t) (end - line));
      gsize len = lf != NULL ? (gsize) (lf - line) : (gsize) (end - line);
      g_autoptr (OutboxImapResponse) response = NULL;
      g_autoptr (GError) error = NULL;

      if (outbox_imap_parser_feed_line (parser, line, len, &response, &error))
        {
          g_assert_no_error (error);
          if (response != NULL)
            check_response (response);
        }
      else
        {
          g_assert_error (error, OUTBOX_SESSION_ERROR, OUTBOX_SESSION_ERROR_PROTOCOL);
          g_assert_null (response);
          assert_displayable (error->message);
          g_assert_cmpuint (outbox_imap_parser_get_literal_needed (parser), ==, 0);
        }
      line += len + 1;
    }

  return 0;
}
