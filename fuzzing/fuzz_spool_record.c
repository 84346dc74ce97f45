/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include <string.h>

#include "outbox-address.h"
#include "outbox-error.h"
#include "outbox-spool.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

/* What the delivery engine relies on in every record the spool hands it. */
static void
check_record (const OutboxSpoolRecord *record)
{
  g_assert_true (outbox_spool_id_is_valid (record->id));
  g_assert_cmpint (record->state, !=, OUTBOX_SPOOL_STATE_SENDING);
  g_assert_cmpuint (record->n_recipients, >=, 1);
  g_assert_true (outbox_address_validate (record->from, TRUE, NULL));
  for (guint i = 0; i < record->n_recipients; i++)
    {
      const OutboxRecipient *recipient = &record->recipients[i];
      g_assert_true (outbox_address_validate (recipient->address, FALSE, NULL));
      g_assert_cmpuint (recipient->reply_code, <=, 599);
    }
}

/* A record read back must be written again exactly as it was written, so
 * that saving a record never changes what it says. */
static void
check_round_trip (const OutboxSpoolRecord *record)
{
  g_autoptr (GBytes) written = outbox_spool_record_serialize (record);
  g_autoptr (OutboxSpoolRecord) again = NULL;
  g_autoptr (GBytes) rewritten = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;
  const guint8 *bytes = g_bytes_get_data (written, &len);

  again = outbox_spool_record_parse (record->id, bytes, len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (again);
  rewritten = outbox_spool_record_serialize (again);
  g_assert_true (g_bytes_equal (written, rewritten));
}

static void
parse_and_check (const guint8 *data, gsize size)
{
  g_autoptr (OutboxSpoolRecord) record = NULL;
  g_autoptr (GError) error = NULL;

  record = outbox_spool_record_parse (NULL, data, size, &error);
  if (record == NULL)
    {
      g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
      g_assert_cmpstr (error->message, !=, "");
      return;
    }
  g_assert_no_error (error);
  check_record (record);
  check_round_trip (record);
}

/* A record file (two slots) built around the input: whatever the file
 * parser returns is a record that the record parser accepts as well. */
static void
parse_file_and_check (const guint8 *data, gsize size)
{
  g_autoptr (GByteArray) file = g_byte_array_new ();
  g_autoptr (OutboxSpoolRecord) record = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *header = g_strdup_printf ("outbox-slot 1 %" G_GSIZE_FORMAT "\n", size);
  gsize slot = (size + 64 + 4095) / 4096 * 4096;

  g_byte_array_append (file, (const guint8 *) header, strlen (header));
  g_byte_array_append (file, data, size);
  g_byte_array_set_size (file, 2 * slot);
  memset (file->data + strlen (header) + size, 0, 2 * slot - strlen (header) - size);
  /* The second slot gets the raw input: usually garbage, sometimes not. */
  memcpy (file->data + slot, data, MIN (size, slot));

  record = outbox_spool_record_file_parse (NULL, file->data, file->len, &error);
  if (record == NULL)
    {
      g_assert_error (error, OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED);
      return;
    }
  check_record (record);
  check_round_trip (record);
}

/* The input is tried as it is (the checksum check), then with a correct
 * "sha256" line appended, so that the field parser behind the checksum
 * sees arbitrary bytes too. */
int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (GByteArray) sealed = g_byte_array_sized_new (size + 72);
  g_autofree char *checksum = NULL;

  parse_and_check (data, size);

  g_byte_array_append (sealed, data, size);
  if (size == 0 || data[size - 1] != '\n')
    g_byte_array_append (sealed, (const guint8 *) "\n", 1);
  checksum = g_compute_checksum_for_data (G_CHECKSUM_SHA256, sealed->data, sealed->len);
  g_byte_array_append (sealed, (const guint8 *) "sha256 ", 7);
  g_byte_array_append (sealed, (const guint8 *) checksum, strlen (checksum));
  g_byte_array_append (sealed, (const guint8 *) "\n", 1);
  parse_and_check (sealed->data, sealed->len);
  parse_file_and_check (sealed->data, sealed->len);

  return 0;
}
