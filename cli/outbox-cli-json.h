/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* JSON: a{sv} dictionaries from the daemon become objects with snake_case
 * members; Unix times become ISO 8601 strings in UTC. */
JsonNode *outbox_cli_vardict_to_json    (GVariant     *vardict);
JsonNode *outbox_cli_vardicts_to_json   (GVariant     *vardicts);
void      outbox_cli_print_json         (JsonNode     *root);
/* (transfer full) an ISO 8601 string in UTC (a number if out of range). */
JsonNode *outbox_cli_time_to_json       (gint64        unix_time);
/* {"MEMBER": [dictionaries…]} as outbox_cli_print_json() prints it, written
 * as the dictionaries come; nothing at all if it ends incomplete before the
 * first one. */
typedef struct
{
  const char *member;       /* (unowned) */
  gboolean empty;           /* no element yet, nor the head */
  GString *text;            /* (owned) */
} OutboxCliJsonList;
void      outbox_cli_json_list_begin    (OutboxCliJsonList *list,
                                         const char        *member);
void      outbox_cli_json_list_add      (OutboxCliJsonList *list,
                                         GVariant          *vardict);
/* @complete: FALSE ends the output where it is, as no whole document. */
void      outbox_cli_json_list_end      (OutboxCliJsonList *list,
                                         gboolean           complete);

G_END_DECLS
