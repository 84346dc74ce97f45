/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The "Label: value" blocks of outbox show, account show, account test and
 * account discover: one row a key of the daemon's a{sv}, read as @kind. */
typedef enum
{
  OUTBOX_FIELD_TEXT,
  OUTBOX_FIELD_SIZE,
  OUTBOX_FIELD_TIME,
  OUTBOX_FIELD_COUNT,
  OUTBOX_FIELD_SECONDS,
  OUTBOX_FIELD_YES_NO,
  OUTBOX_FIELD_WORDS,
  OUTBOX_FIELD_LIST,         /* words, separated by commas */
  OUTBOX_FIELD_DSN_OUTCOME,  /* whether the servers did what the message asked of DSN */
} OutboxFieldKind;

typedef struct
{
  const char *key;
  const char *label;
  OutboxFieldKind kind;
  const char *shown_with;  /* only shown when this key is present, or NULL */
} OutboxField;

/* Rows whose key is absent (or of another type) are left out. */
void  outbox_cli_print_fields       (GVariant          *dict,
                                     const OutboxField *fields,
                                     gsize              n_fields);

/* The time now, as the daemon's dictionaries give times. */
gint64 outbox_cli_now_unix          (void);

/* JSON output: one dictionary, or {"MEMBER": [dictionaries…]}. */
void  outbox_cli_print_vardict_json (GVariant          *vardict);
void  outbox_cli_print_json_list    (const char        *member,
                                     GVariant          *vardicts);

G_END_DECLS
