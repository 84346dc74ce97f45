/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-smtp-data.h"

/* Inputs whose every split point is tried: each mixes line breaks, dots,
 * NULs and ordinary bytes next to one another. */
static const struct
{
  const char *data;
  gsize len;
} chunking_inputs[] = {
#define INPUT(s) { s, sizeof (s) - 1 }
  INPUT ("Subject: x\r\n\r\nbody\r\n.\r\nmore\r\n"),
  INPUT ("a\n.\nb\r.\r\nc\r\n.\rd\r\n\0.\r\n"),
  INPUT ("\r\r\n\n\r\n\r\r.\r\n..\n.\r"),
  INPUT (".\r\n.\n.\r.\0\r\n\0\r\0\n"),
  INPUT ("line one\r\nline two\rline three\nline four"),
  INPUT ("\r"),
  INPUT ("\n"),
  INPUT ("."),
  INPUT ("\0\0\0"),
#undef INPUT
};

static GByteArray *
encode_chunked (const char *data, gsize len, const gsize *chunk_lens, gsize n_chunks)
{
  GByteArray *out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;
  gsize pos = 0;

  outbox_smtp_data_encoder_init (&encoder);
  for (gsize i = 0; i < n_chunks && pos < len; i++)
    {
      gsize chunk = MIN (chunk_lens[i], len - pos);

      outbox_smtp_data_encoder_process (&encoder, (const guint8 *) data + pos, chunk, out);
      pos += chunk;
    }
  outbox_smtp_data_encoder_process (&encoder, (const guint8 *) data + pos, len - pos, out);
  outbox_smtp_data_encoder_finish (&encoder, out);

  return out;
}

static GByteArray *
encode (const char *data, gsize len)
{
  return encode_chunked (data, len, NULL, 0);
}

static GByteArray *
encode_in_pieces_of (const char *data, gsize len, gsize piece)
{
  gsize n_chunks = len / piece + 1;
  g_autofree gsize *chunk_lens = g_new (gsize, n_chunks);

  for (gsize i = 0; i < n_chunks; i++)
    chunk_lens[i] = piece;

  return encode_chunked (data, len, chunk_lens, n_chunks);
}

static char *
escape_bytes (const GByteArray *bytes)
{
  GString *escaped = g_string_new (NULL);

  for (guint i = 0; i < bytes->len; i++)
    {
      guint8 b = bytes->data[i];

      if (b == '\r')
        g_string_append (escaped, "\\r");
      else if (b == '\n')
        g_string_append (escaped, "\\n");
      else if (b < 0x20 || b >= 0x7f)
        g_string_append_printf (escaped, "\\x%02x", b);
      else
        g_string_append_c (escaped, (char) b);
    }

  return g_string_free (escaped, FALSE);
}

static void
assert_bytes_equal (const GByteArray *actual, const char *expected, gsize expected_len)
{
  g_autofree char *actual_text = escape_bytes (actual);
  g_autoptr (GByteArray) expected_bytes = g_byte_array_new ();
  g_autofree char *expected_text = NULL;

  g_byte_array_append (expected_bytes, (const guint8 *) expected, expected_len);
  expected_text = escape_bytes (expected_bytes);
  g_assert_cmpstr (actual_text, ==, expected_text);
}

/* The promises of security.md items 8 and 9: no NUL, no lone CR or LF, no
 * end-of-data before the end, and the end-of-data at the end.  Returns
 * what is wrong, or NULL. */
static char *
find_unsafe_bytes (const GByteArray *out)
{
  const guint8 *data = out->data;
  gsize len = out->len;

  if (len < 3 || memcmp (data + len - 3, ".\r\n", 3) != 0)
    return g_strdup ("no “.\\r\\n” at the end");
  if (len > 3 && (len < 5 || memcmp (data + len - 5, "\r\n", 2) != 0))
    return g_strdup ("the final “.” does not start a line");

  for (gsize i = 0; i < len; i++)
    {
      if (data[i] == '\0')
        return g_strdup_printf ("NUL at offset %" G_GSIZE_FORMAT, i);
      if (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n'))
        return g_strdup_printf ("lone CR at offset %" G_GSIZE_FORMAT, i);
      if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
        return g_strdup_printf ("lone LF at offset %" G_GSIZE_FORMAT, i);
      if (i + 5 < len && memcmp (data + i, "\r\n.\r\n", 5) == 0)
        return g_strdup_printf ("end of data at offset %" G_GSIZE_FORMAT, i);
    }

  return NULL;
}

static void
assert_safe_payload (const GByteArray *out)
{
  g_autofree char *problem = find_unsafe_bytes (out);

  if (problem != NULL)
    {
      g_autofree char *text = escape_bytes (out);

      g_test_message ("unsafe payload: “%s”", text);
    }
  g_assert_cmpstr (problem, ==, NULL);
}

static void
assert_encodes_to (const char *in, gsize in_len, const char *expected, gsize expected_len)
{
  g_autoptr (GByteArray) out = encode (in, in_len);

  assert_bytes_equal (out, expected, expected_len);
  assert_safe_payload (out);
}

#define ASSERT_ENCODES_TO(in, expected) \
  assert_encodes_to (in, sizeof (in) - 1, expected, sizeof (expected) - 1)

static void
test_empty (void)
{
  ASSERT_ENCODES_TO ("", ".\r\n");
}

static void
test_only_nul (void)
{
  ASSERT_ENCODES_TO ("\0\0", ".\r\n");
}

static void
test_crlf_kept (void)
{
  ASSERT_ENCODES_TO ("a\r\nb\r\n", "a\r\nb\r\n.\r\n");
}

static void
test_unterminated_last_line (void)
{
  ASSERT_ENCODES_TO ("a\r\nb", "a\r\nb\r\n.\r\n");
}

static void
test_lone_lf (void)
{
  ASSERT_ENCODES_TO ("\na\nb\n", "\r\na\r\nb\r\n.\r\n");
}

static void
test_lone_cr (void)
{
  ASSERT_ENCODES_TO ("\ra\rb\r", "\r\na\r\nb\r\n.\r\n");
}

static void
test_cr_cr_lf (void)
{
  ASSERT_ENCODES_TO ("a\r\r\nb", "a\r\n\r\nb\r\n.\r\n");
}

static void
test_lf_cr (void)
{
  ASSERT_ENCODES_TO ("a\n\rb", "a\r\n\r\nb\r\n.\r\n");
}

static void
test_nul_dropped (void)
{
  ASSERT_ENCODES_TO ("a\0b\r\n\0", "ab\r\n.\r\n");
}

static void
test_nul_inside_crlf (void)
{
  ASSERT_ENCODES_TO ("a\r\0\nb", "a\r\nb\r\n.\r\n");
}

static void
test_dot_stuffing (void)
{
  ASSERT_ENCODES_TO (".a\r\n..b\r\nc.d\r\n.\r\n", "..a\r\n...b\r\nc.d\r\n..\r\n.\r\n");
}

static void
test_dot_alone_at_end (void)
{
  ASSERT_ENCODES_TO ("a\r\n.", "a\r\n..\r\n.\r\n");
}

static void
test_smuggling_lf_dot_lf (void)
{
  ASSERT_ENCODES_TO ("a\n.\nb", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_smuggling_lf_dot_crlf (void)
{
  ASSERT_ENCODES_TO ("a\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_smuggling_cr_dot_crlf (void)
{
  ASSERT_ENCODES_TO ("a\r.\r\nb", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_smuggling_crlf_dot_cr (void)
{
  ASSERT_ENCODES_TO ("a\r\n.\rb", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_smuggling_crlf_nul_dot_crlf (void)
{
  ASSERT_ENCODES_TO ("a\r\n\0.\r\nb", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_smuggling_crlf_dot_crlf (void)
{
  ASSERT_ENCODES_TO ("a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n");
}

static void
test_bare_cr_at_start (void)
{
  ASSERT_ENCODES_TO ("\r.x", "\r\n..x\r\n.\r\n");
}

static void
test_bare_lf_at_start (void)
{
  ASSERT_ENCODES_TO ("\n.x", "\r\n..x\r\n.\r\n");
}

static void
test_bare_cr_at_end (void)
{
  ASSERT_ENCODES_TO ("x\r", "x\r\n.\r\n");
}

static void
test_bare_lf_at_end (void)
{
  ASSERT_ENCODES_TO ("x\n", "x\r\n.\r\n");
}

static void
test_max_line_length (void)
{
  const char in[] = "12345\r\n1234567890\n.23\r123";
  g_autoptr (GByteArray) out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;

  outbox_smtp_data_encoder_init (&encoder);
  outbox_smtp_data_encoder_process (&encoder, (const guint8 *) in, sizeof in - 1, out);
  g_assert_cmpuint (encoder.max_line_length, ==, 10);
  outbox_smtp_data_encoder_finish (&encoder, out);
  g_assert_cmpuint (encoder.max_line_length, ==, 10);
}

static void
test_max_line_length_last_line (void)
{
  const char in[] = "1\r\n12345678901";
  g_autoptr (GByteArray) out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;

  outbox_smtp_data_encoder_init (&encoder);
  outbox_smtp_data_encoder_process (&encoder, (const guint8 *) in, sizeof in - 1, out);
  outbox_smtp_data_encoder_finish (&encoder, out);
  g_assert_cmpuint (encoder.max_line_length, ==, 11);
}

static void
test_max_line_length_ignores_stuffed_dot (void)
{
  const char in[] = "..\r\n";
  g_autoptr (GByteArray) out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;

  outbox_smtp_data_encoder_init (&encoder);
  outbox_smtp_data_encoder_process (&encoder, (const guint8 *) in, sizeof in - 1, out);
  outbox_smtp_data_encoder_finish (&encoder, out);
  assert_bytes_equal (out, "...\r\n.\r\n", 8);
  g_assert_cmpuint (encoder.max_line_length, ==, 2);
}

static void
test_cr_lf_split_across_chunks (void)
{
  const gsize chunks[] = { 2, 1 };
  g_autoptr (GByteArray) out = encode_chunked ("a\r\nb", 4, chunks, G_N_ELEMENTS (chunks));

  assert_bytes_equal (out, "a\r\nb\r\n.\r\n", 9);
}

static void
test_empty_chunks_keep_pending_cr (void)
{
  const gsize chunks[] = { 2, 0, 0, 1 };
  g_autoptr (GByteArray) out = encode_chunked ("a\r\nb", 4, chunks, G_N_ELEMENTS (chunks));

  assert_bytes_equal (out, "a\r\nb\r\n.\r\n", 9);
}

static void
assert_pieces_match_one_shot (gsize piece)
{
  for (gsize i = 0; i < G_N_ELEMENTS (chunking_inputs); i++)
    {
      const char *data = chunking_inputs[i].data;
      gsize len = chunking_inputs[i].len;
      g_autoptr (GByteArray) whole = encode (data, len);
      g_autoptr (GByteArray) pieces = encode_in_pieces_of (data, len, piece);

      assert_bytes_equal (pieces, (const char *) whole->data, whole->len);
      assert_safe_payload (pieces);
    }
}

static void
test_one_byte_chunks (void)
{
  assert_pieces_match_one_shot (1);
}

static void
test_two_byte_chunks (void)
{
  assert_pieces_match_one_shot (2);
}

static void
test_every_split_point (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (chunking_inputs); i++)
    {
      const char *data = chunking_inputs[i].data;
      gsize len = chunking_inputs[i].len;
      g_autoptr (GByteArray) whole = encode (data, len);

      for (gsize split = 0; split <= len; split++)
        {
          g_autoptr (GByteArray) halves = encode_chunked (data, len, &split, 1);

          assert_bytes_equal (halves, (const char *) whole->data, whole->len);
        }
    }
}

static void
test_random_chunks (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20240229);

  for (guint round = 0; round < 200; round++)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (chunking_inputs); i++)
        {
          const char *data = chunking_inputs[i].data;
          gsize len = chunking_inputs[i].len;
          g_autofree gsize *chunk_lens = g_new (gsize, len + 1);
          g_autoptr (GByteArray) whole = encode (data, len);
          g_autoptr (GByteArray) chunked = NULL;

          for (gsize c = 0; c <= len; c++)
            chunk_lens[c] = (gsize) g_rand_int_range (rand, 0, 5);
          chunked = encode_chunked (data, len, chunk_lens, len + 1);

          assert_bytes_equal (chunked, (const char *) whole->data, whole->len);
        }
    }
}

/* Random bytes drawn mostly from the bytes that matter, so that every
 * combination of CR, LF, NUL and '.' shows up. */
static void
test_random_input_is_safe (void)
{
  static const char alphabet[] = { '\r', '\n', '\0', '.', 'a', ' ' };
  g_autoptr (GRand) rand = g_rand_new_with_seed (5321);

  for (guint round = 0; round < 2000; round++)
    {
      char data[32];
      gsize len = (gsize) g_rand_int_range (rand, 0, sizeof data);
      g_autoptr (GByteArray) whole = NULL;
      g_autoptr (GByteArray) bytewise = NULL;

      for (gsize i = 0; i < len; i++)
        data[i] = alphabet[g_rand_int_range (rand, 0, G_N_ELEMENTS (alphabet))];
      whole = encode (data, len);
      bytewise = encode_in_pieces_of (data, len, 1);

      assert_safe_payload (whole);
      assert_bytes_equal (bytewise, (const char *) whole->data, whole->len);
    }
}

static void
test_long_run (void)
{
  gsize len = 1 << 20;
  g_autofree char *data = g_malloc (len);
  g_autoptr (GByteArray) out = NULL;

  memset (data, 'x', len);
  data[len / 2] = '\n';
  out = encode (data, len);

  g_assert_cmpuint (out->len, ==, len + 1 + 2 + 3);
  assert_safe_payload (out);
}

/* The BDAT form -------------------------------------------------------- */

static GByteArray *
encode_unstuffed_in_pieces_of (const char *data, gsize len, gsize piece)
{
  GByteArray *out = g_byte_array_new ();
  OutboxSmtpDataEncoder encoder;

  outbox_smtp_data_encoder_init_unstuffed (&encoder);
  for (gsize pos = 0; pos < len; pos += piece)
    outbox_smtp_data_encoder_process (&encoder, (const guint8 *) data + pos, MIN (piece, len - pos),
                                      out);
  outbox_smtp_data_encoder_finish (&encoder, out);
  return out;
}

/* The DATA payload without its terminator and its transparency dots. */
static GByteArray *
undo_dot_stuffing (const GByteArray *payload)
{
  GByteArray *out = g_byte_array_new ();
  gboolean at_line_start = TRUE;

  g_assert_cmpuint (payload->len, >=, 3);
  for (guint i = 0; i < payload->len - 3; i++)
    {
      if (!(at_line_start && payload->data[i] == '.'))
        g_byte_array_append (out, payload->data + i, 1);
      at_line_start = payload->data[i] == '\n';
    }
  return out;
}

/* Whatever the pieces, the BDAT octets are the DATA payload, normalised
 * by the same code, without dot-stuffing and terminator. */
static void
test_unstuffed_is_data_minus_stuffing (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (chunking_inputs); i++)
    {
      const char *data = chunking_inputs[i].data;
      gsize len = chunking_inputs[i].len;
      g_autoptr (GByteArray) stuffed = encode (data, len);
      g_autoptr (GByteArray) expected = undo_dot_stuffing (stuffed);

      for (gsize piece = 1; piece <= len; piece++)
        {
          g_autoptr (GByteArray) out = encode_unstuffed_in_pieces_of (data, len, piece);

          g_assert_cmpmem (out->data, out->len, expected->data, expected->len);
        }
    }
}

static void
test_unstuffed_dot_lines (void)
{
  static const char input[] = ".\r\n..x\n.";
  g_autoptr (GByteArray) out = encode_unstuffed_in_pieces_of (input, sizeof input - 1, 64);

  g_assert_cmpmem (out->data, out->len, ".\r\n..x\r\n.\r\n", 11);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/smtp/data/empty", test_empty);
  g_test_add_func ("/smtp/data/only-nul", test_only_nul);
  g_test_add_func ("/smtp/data/crlf-kept", test_crlf_kept);
  g_test_add_func ("/smtp/data/unterminated-last-line", test_unterminated_last_line);
  g_test_add_func ("/smtp/data/lone-lf", test_lone_lf);
  g_test_add_func ("/smtp/data/lone-cr", test_lone_cr);
  g_test_add_func ("/smtp/data/cr-cr-lf", test_cr_cr_lf);
  g_test_add_func ("/smtp/data/lf-cr", test_lf_cr);
  g_test_add_func ("/smtp/data/nul-dropped", test_nul_dropped);
  g_test_add_func ("/smtp/data/nul-inside-crlf", test_nul_inside_crlf);
  g_test_add_func ("/smtp/data/dot-stuffing", test_dot_stuffing);
  g_test_add_func ("/smtp/data/dot-alone-at-end", test_dot_alone_at_end);
  g_test_add_func ("/smtp/data/smuggling/lf-dot-lf", test_smuggling_lf_dot_lf);
  g_test_add_func ("/smtp/data/smuggling/lf-dot-crlf", test_smuggling_lf_dot_crlf);
  g_test_add_func ("/smtp/data/smuggling/cr-dot-crlf", test_smuggling_cr_dot_crlf);
  g_test_add_func ("/smtp/data/smuggling/crlf-dot-cr", test_smuggling_crlf_dot_cr);
  g_test_add_func ("/smtp/data/smuggling/crlf-nul-dot-crlf", test_smuggling_crlf_nul_dot_crlf);
  g_test_add_func ("/smtp/data/smuggling/crlf-dot-crlf", test_smuggling_crlf_dot_crlf);
  g_test_add_func ("/smtp/data/bare-cr-at-start", test_bare_cr_at_start);
  g_test_add_func ("/smtp/data/bare-lf-at-start", test_bare_lf_at_start);
  g_test_add_func ("/smtp/data/bare-cr-at-end", test_bare_cr_at_end);
  g_test_add_func ("/smtp/data/bare-lf-at-end", test_bare_lf_at_end);
  g_test_add_func ("/smtp/data/max-line-length", test_max_line_length);
  g_test_add_func ("/smtp/data/max-line-length-last-line", test_max_line_length_last_line);
  g_test_add_func ("/smtp/data/max-line-length-ignores-stuffed-dot",
                   test_max_line_length_ignores_stuffed_dot);
  g_test_add_func ("/smtp/data/chunks/cr-lf-split", test_cr_lf_split_across_chunks);
  g_test_add_func ("/smtp/data/chunks/empty-keep-pending-cr", test_empty_chunks_keep_pending_cr);
  g_test_add_func ("/smtp/data/chunks/one-byte", test_one_byte_chunks);
  g_test_add_func ("/smtp/data/chunks/two-bytes", test_two_byte_chunks);
  g_test_add_func ("/smtp/data/chunks/every-split-point", test_every_split_point);
  g_test_add_func ("/smtp/data/chunks/random", test_random_chunks);
  g_test_add_func ("/smtp/data/random-input-is-safe", test_random_input_is_safe);
  g_test_add_func ("/smtp/data/long-run", test_long_run);

  g_test_add_func ("/smtp/data/unstuffed/is-data-minus-stuffing",
                   test_unstuffed_is_data_minus_stuffing);
  g_test_add_func ("/smtp/data/unstuffed/dot-lines", test_unstuffed_dot_lines);
  return g_test_run ();
}
