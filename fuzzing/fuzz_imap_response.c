/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-imap.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static void
assert_displayable (const char *text)
{
  if (text == NULL)
    return;
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    g_assert_false (g_unichar_iscntrl (g_utf8_get_char (p)));
}

static void
check_strv (char **strv, gboolean upper_case)
{
  for (char **item = strv; item != NULL && *item != NULL; item++)
    {
      g_autofree char *upper = g_ascii_strup (*item, -1);
      assert_displayable (*item);
      if (upper_case)
        g_assert_cmpstr (*item, ==, upper);
    }
}

static void
check_status (const OutboxImapResponse *response)
{
  switch (response->kind)
    {
    case OUTBOX_IMAP_RESPONSE_TAGGED:
      g_assert_nonnull (response->tag);
      g_assert_true (response->status == OUTBOX_IMAP_STATUS_OK
                     || response->status == OUTBOX_IMAP_STATUS_NO
                     || response->status == OUTBOX_IMAP_STATUS_BAD);
      break;
    case OUTBOX_IMAP_RESPONSE_CONTINUATION:
      g_assert_null (response->tag);
      g_assert_cmpint (response->status, ==, OUTBOX_IMAP_STATUS_NONE);
      break;
    case OUTBOX_IMAP_RESPONSE_UNTAGGED:
      g_assert_null (response->tag);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* What the session relies on, and what may be shown to a person. */
static void
check_response (const OutboxImapResponse *response)
{
  g_autofree char *shown = outbox_imap_response_to_string (response);

  check_status (response);
  g_assert_nonnull (response->text);
  assert_displayable (response->text);
  assert_displayable (response->code);
  assert_displayable (response->code_args);
  assert_displayable (response->raw);
  assert_displayable (shown);
  check_strv (response->capabilities, TRUE);
  if (response->code != NULL)
    check_strv ((char *[]) { response->code, NULL }, TRUE);
  if (response->mailbox != NULL)
    {
      g_assert_cmpint (response->data, ==, OUTBOX_IMAP_DATA_LIST);
      g_assert_nonnull (response->mailbox->name);
      assert_displayable (response->mailbox->display_name);
      check_strv (response->mailbox->flags, FALSE);
    }
}

/* Encoding what a name decodes to gives a name that decodes to the same.
 * (Not necessarily the same octets: "&APw-&APw-" is accepted although the
 * encoder writes "&APwA,A-".) */
static void
check_utf7 (const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *decoded = outbox_imap_utf7_decode (name, &error);
  g_autofree char *encoded = NULL;
  g_autofree char *again = NULL;

  if (decoded == NULL)
    {
      g_assert_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL);
      return;
    }
  g_assert_true (g_utf8_validate (decoded, -1, NULL));
  encoded = outbox_imap_utf7_encode (decoded);
  g_assert_nonnull (encoded);
  again = outbox_imap_utf7_decode (encoded, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, decoded);
}

/* Feeds the input line by line (split at LF) as the session does. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (OutboxImapParser) parser = outbox_imap_parser_new ();
  g_autofree char *text = g_strndup ((const char *) data, size);
  const char *line = (const char *) data;
  const char *end = line + size;

  check_utf7 (text);
  while (line < end)
    {
      const char *lf = memchr (line, '\n', end - line);
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
          g_assert_error (error, OUTBOX_IMAP_ERROR, OUTBOX_IMAP_ERROR_PROTOCOL);
          g_assert_null (response);
          assert_displayable (error->message);
        }
      line += len + 1;
    }

  return 0;
}
