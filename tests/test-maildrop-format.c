/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "outbox-maildrop-format.h"
#include "outbox-message.h"

/* The maildrop file format: what outbox-sendmail writes, outboxd reads. */

static const char body[] = "Subject: hi\r\n\r\nbody\r\n";

/* @envelope formatted, then @body. */
static GString *
format_file (const OutboxMaildropEnvelope *envelope)
{
  GString *file = outbox_maildrop_envelope_format (envelope);

  g_string_append (file, body);
  return file;
}

static void
round_trip (const OutboxMaildropEnvelope *envelope)
{
  g_autoptr(GString) file = format_file (envelope);
  g_auto(OutboxMaildropEnvelope) parsed = { NULL, };
  g_autoptr(GError) error = NULL;
  gsize body_offset = 0;

  g_assert_true (outbox_maildrop_envelope_parse (file->str, file->len, &parsed, &body_offset,
                                                 &error));
  g_assert_no_error (error);
  g_assert_true (outbox_maildrop_envelope_equal (envelope, &parsed));
  g_assert_cmpstr (file->str + body_offset, ==, body);
}

/* Every line differs from an envelope without it. */
static void
test_equal (void)
{
  g_auto(OutboxMaildropEnvelope) a = { NULL, };
  g_auto(OutboxMaildropEnvelope) b = { NULL, };

  outbox_maildrop_envelope_init (&a);
  outbox_maildrop_envelope_init (&b);
  g_assert_true (outbox_maildrop_envelope_equal (&a, &b));
  a.from = g_strdup ("");
  g_assert_false (outbox_maildrop_envelope_equal (&a, &b));
  b.from = g_strdup ("");
  g_ptr_array_add (a.recipients, g_strdup ("bob@example.org"));
  g_assert_false (outbox_maildrop_envelope_equal (&a, &b));
  g_ptr_array_add (b.recipients, g_strdup ("Bob@example.org"));
  g_assert_false (outbox_maildrop_envelope_equal (&a, &b));
  ((char *) g_ptr_array_index (b.recipients, 0))[0] = 'b';
  g_assert_true (outbox_maildrop_envelope_equal (&a, &b));
  a.envid = g_strdup ("x");
  g_assert_false (outbox_maildrop_envelope_equal (&a, &b));
}

static void
test_round_trip (void)
{
  g_auto(OutboxMaildropEnvelope) envelope = { NULL, };

  outbox_maildrop_envelope_init (&envelope);
  envelope.from = g_strdup ("alice@example.org");
  g_ptr_array_add (envelope.recipients, g_strdup ("bob@example.org"));
  g_ptr_array_add (envelope.recipients, g_strdup ("carol@example.net"));
  envelope.notify = g_strdup ("failure,delay");
  envelope.ret = g_strdup ("hdrs");
  envelope.envid = g_strdup ("QQ314159");
  round_trip (&envelope);
}

/* Absent lines stay absent; "" is the null sender <>, not an absent one. */
static void
test_round_trip_minimal (void)
{
  g_auto(OutboxMaildropEnvelope) envelope = { NULL, };
  g_auto(OutboxMaildropEnvelope) null_sender = { NULL, };

  outbox_maildrop_envelope_init (&envelope);
  round_trip (&envelope);

  outbox_maildrop_envelope_init (&null_sender);
  null_sender.from = g_strdup ("");
  round_trip (&null_sender);
}

/* Spaces, controls, '%', DEL and non-ASCII UTF-8 survive the escaping,
 * and no escaped line holds a space after its key or a line break. */
static void
test_round_trip_escapes (void)
{
  g_auto(OutboxMaildropEnvelope) envelope = { NULL, };
  g_autoptr(GString) file = NULL;
  g_auto(GStrv) lines = NULL;

  outbox_maildrop_envelope_init (&envelope);
  envelope.from = g_strdup ("\"odd local\"@example.org");
  g_ptr_array_add (envelope.recipients, g_strdup ("100%\t\x7f\r\n@example.org"));
  g_ptr_array_add (envelope.recipients, g_strdup ("jürgen@bücher.example"));
  envelope.envid = g_strdup ("a b");
  round_trip (&envelope);

  file = outbox_maildrop_envelope_format (&envelope);
  g_assert_true (g_str_has_suffix (file->str, "\n\n"));
  g_string_truncate (file, file->len - 2);
  lines = g_strsplit (file->str, "\n", -1);
  g_assert_cmpstr (lines[0], ==, OUTBOX_MAILDROP_MAGIC);
  g_assert_cmpstr (lines[1], ==, "from \"odd%20local\"@example.org");
  g_assert_cmpstr (lines[2], ==, "recipient 100%25%09%7F%0D%0A@example.org");
  g_assert_cmpstr (lines[3], ==, "recipient jürgen@bücher.example");
  g_assert_cmpstr (lines[4], ==, "envid a%20b");
  g_assert_null (lines[5]);
}

static void
assert_rejected (const char *data,
                 gsize       length,
                 const char *reason)
{
  g_auto(OutboxMaildropEnvelope) parsed = { NULL, };
  g_autoptr(GError) error = NULL;
  gsize body_offset = 0;

  g_assert_false (outbox_maildrop_envelope_parse (data, length, &parsed, &body_offset, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_cmpstr (error->message, ==, reason);
}

#define REJECTED(data, reason) assert_rejected (data, sizeof data - 1, reason)

static void
test_rejects_malformed (void)
{
  REJECTED ("", "The file ends inside its envelope");
  REJECTED ("\n\nbody", "Not an Outbox maildrop file: the first line is not “outbox-maildrop 1”");
  REJECTED ("outbox-maildrop 2\n\n", "Not an Outbox maildrop file: the first line is not “outbox-maildrop 1”");
  REJECTED ("outbox-maildrop 1\nfrom a@b\n", "The file ends inside its envelope");
  REJECTED ("outbox-maildrop 1\nfrom a@b", "The file ends inside its envelope");
  REJECTED ("outbox-maildrop 1\nfrom a@b\nfrom c@d\n\n", "The envelope has two “from” lines");
  REJECTED ("outbox-maildrop 1\nfrom a%ZZ@b\n\n", "The envelope's sender is badly escaped");
  REJECTED ("outbox-maildrop 1\nfrom a%00@b\n\n", "The envelope's sender is badly escaped");
  REJECTED ("outbox-maildrop 1\nfrom a%FF@b\n\n", "The envelope's sender is badly escaped");
  REJECTED ("outbox-maildrop 1\nrecipient %\n\n", "The envelope has a badly escaped recipient");
  REJECTED ("outbox-maildrop 1\nnotify failure\nnotify delay\n\n", "The envelope has a DSN line twice");
  REJECTED ("outbox-maildrop 1\nret %G0\n\n", "The envelope has a badly escaped DSN line");
  REJECTED ("outbox-maildrop 1\nsize 12\n\n", "The envelope has an unknown line");
  REJECTED ("outbox-maildrop 1\nfrom\n\n", "The envelope has an unknown line");
  REJECTED ("outbox-maildrop 1\nfrom a\0b\n\n", "The envelope has an overlong line or a NUL byte");
}

/* A line of exactly OUTBOX_MAILDROP_MAX_LINE octets is taken, one more
 * octet is not. */
static void
test_rejects_overlong_line (void)
{
  g_autoptr(GString) file = g_string_new (OUTBOX_MAILDROP_MAGIC "\nrecipient ");
  g_auto(OutboxMaildropEnvelope) parsed = { NULL, };
  gsize body_offset;

  while (file->len < strlen (OUTBOX_MAILDROP_MAGIC "\n") + OUTBOX_MAILDROP_MAX_LINE)
    g_string_append_c (file, 'x');
  g_string_append (file, "\n\n");
  g_assert_true (outbox_maildrop_envelope_parse (file->str, file->len, &parsed, &body_offset,
                                                 NULL));

  g_string_insert_c (file, strlen (OUTBOX_MAILDROP_MAGIC "\n"), 'y');
  assert_rejected (file->str, file->len, "The envelope has an overlong line or a NUL byte");
}

static void
test_rejects_too_many_recipients (void)
{
  g_autoptr(GString) file = g_string_new (OUTBOX_MAILDROP_MAGIC "\n");
  g_auto(OutboxMaildropEnvelope) parsed = { NULL, };
  gsize body_offset;

  for (guint i = 0; i < OUTBOX_MESSAGE_MAX_RECIPIENTS; i++)
    g_string_append_printf (file, "recipient r%u@example.org\n", i);
  g_string_append (file, "\n");
  g_assert_true (outbox_maildrop_envelope_parse (file->str, file->len, &parsed, &body_offset,
                                                 NULL));
  g_assert_cmpuint (parsed.recipients->len, ==, OUTBOX_MESSAGE_MAX_RECIPIENTS);

  g_string_truncate (file, file->len - 1);
  g_string_append (file, "recipient one-too-many@example.org\n\n");
  assert_rejected (file->str, file->len, "The envelope has too many recipients");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/maildrop/format/equal", test_equal);
  g_test_add_func ("/maildrop/format/round-trip", test_round_trip);
  g_test_add_func ("/maildrop/format/round-trip/minimal", test_round_trip_minimal);
  g_test_add_func ("/maildrop/format/round-trip/escapes", test_round_trip_escapes);
  g_test_add_func ("/maildrop/format/rejects/malformed", test_rejects_malformed);
  g_test_add_func ("/maildrop/format/rejects/overlong-line", test_rejects_overlong_line);
  g_test_add_func ("/maildrop/format/rejects/too-many-recipients", test_rejects_too_many_recipients);

  return g_test_run ();
}
