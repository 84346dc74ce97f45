/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <sys/types.h>

#include <gio/gio.h>

#include "outbox-cli-util.h"

G_BEGIN_DECLS

/* What the parts of outbox-sendmail share: the envelope of a message and
 * the draft it is written to (a maildrop file being written; see
 * outbox-maildrop-format.h), for the delivery mode (outbox-sendmail.c)
 * and the -bs SMTP server (outbox-sendmail-bs.c). */

typedef struct
{
  char *from;             /* (nullable) envelope sender */
  GPtrArray *recipients;  /* (element-type utf8) */
  char *from_field;       /* (nullable) a From field to add */
  gboolean rewrite;       /* the header block must change */
  OutboxCliDsn dsn;       /* what the message asks of DSN */
} SendmailEnvelope;

/* A maildrop file in maildrop/tmp/, until committed or freed. */
typedef struct
{
  char *dir;           /* the maildrop */
  char *name;
  char *tmp_path;
  int fd;
  off_t message_offset;
  gboolean committed;
} SendmailDraft;

void sendmail_envelope_clear (SendmailEnvelope *envelope);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SendmailEnvelope, sendmail_envelope_clear)
void sendmail_dsn_copy (const OutboxCliDsn *from,
                        OutboxCliDsn       *to);

/* Creates maildrop/tmp/NAME (0600, O_EXCL) holding the envelope. */
SendmailDraft *sendmail_draft_new    (const SendmailEnvelope  *envelope,
                                      GError                 **error);
void           sendmail_draft_free   (SendmailDraft           *draft);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SendmailDraft, sendmail_draft_free)
/* Appends message bytes; OUTBOX_CLI_ERROR_TEMPORARY when the disk fails. */
gboolean       sendmail_draft_write  (SendmailDraft           *draft,
                                      const void              *data,
                                      gsize                    length,
                                      GError                 **error);
/* Hands the finished draft to the daemon on @bus, or leaves it in the
 * maildrop when there is no daemon to take it.  Returns the queue id, or
 * "" for the maildrop. */
char          *sendmail_draft_finish (SendmailDraft           *draft,
                                      GDBusConnection         *bus,
                                      const SendmailEnvelope  *envelope,
                                      GError                 **error);

/* Adds @address unless it is there already (compared without case). */
void     sendmail_add_unique_address (GPtrArray  *addresses,
                                      const char *address);
/* Whether the header field at @field (@length octets) is called @name. */
gboolean sendmail_field_is           (const char *field,
                                      gsize       length,
                                      const char *name);

G_END_DECLS
