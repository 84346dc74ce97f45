/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  OUTBOX_SPOOL_STATE_QUEUED,
  OUTBOX_SPOOL_STATE_SCHEDULED,
  OUTBOX_SPOOL_STATE_HELD,
  OUTBOX_SPOOL_STATE_SENDING, /* never on disk: read back as queued */
  OUTBOX_SPOOL_STATE_DEFERRED,
  OUTBOX_SPOOL_STATE_SENT,
  OUTBOX_SPOOL_STATE_FAILED,
} OutboxSpoolState;

typedef enum
{
  OUTBOX_RECIPIENT_STATE_QUEUED,
  OUTBOX_RECIPIENT_STATE_DEFERRED,
  OUTBOX_RECIPIENT_STATE_SENT,
  OUTBOX_RECIPIENT_STATE_FAILED,
} OutboxRecipientState;

/* The copy of a sent message in the account's IMAP Sent folder. */
typedef enum
{
  OUTBOX_SENT_COPY_NONE,    /* none wanted; not written */
  OUTBOX_SENT_COPY_PENDING, /* to be made, at sent_copy_next */
  OUTBOX_SENT_COPY_SAVED,
  OUTBOX_SENT_COPY_FAILED,  /* given up; outbox retry makes it pending again */
} OutboxSentCopyState;

const char *outbox_spool_state_to_string (OutboxSpoolState state);
gboolean outbox_spool_state_from_string (const char *str, OutboxSpoolState *out);
const char *outbox_recipient_state_to_string (OutboxRecipientState state);
gboolean outbox_recipient_state_from_string (const char *str, OutboxRecipientState *out);
/* (nullable) NULL for OUTBOX_SENT_COPY_NONE, else "pending", "saved", "failed" */
const char *outbox_sent_copy_state_to_string (OutboxSentCopyState state);

typedef struct
{
  char *address;              /* (owned) */
  OutboxRecipientState state;
  guint reply_code;           /* 0: no reply yet */
  char *reply;                /* (nullable) (owned) last server reply */
} OutboxRecipient;

#define OUTBOX_SPOOL_SHA256_LENGTH 32

/* What the spool knows of one message; the bytes are in a file beside it.
 * Ordered so that 100,000 of them in memory waste no padding. */
typedef struct
{
  char *id;                   /* (owned) */
  char *account;              /* (owned) */
  char *from;                 /* (owned) envelope sender, may be "" */
  OutboxRecipient *recipients; /* (array length=n_recipients) (owned), inside the
                               * record's block when it is compact */
  guint n_recipients;         /* at least 1 in a stored record */
  OutboxSpoolState state;
  gint64 created;             /* Unix time */
  gint64 send_at;             /* 0: now */
  gint64 next_attempt;        /* 0: none planned */
  gint64 first_failure;       /* 0: none yet; for the give-up time */
  gint64 finished;            /* 0, or when it became sent or failed */
  guint64 size;               /* octets of the message data */
  guint8 sha256[OUTBOX_SPOOL_SHA256_LENGTH]; /* of the message data */
  char *message_id;           /* (nullable) (owned) */
  char *subject;              /* (nullable) (owned) */
  char *last_reply;           /* (nullable) (owned) */
  char *origin;               /* (nullable) (owned) where it came from, such as
                               * "maildrop:NAME", so that a source is taken once */
  char *sent_copy_reply;      /* (nullable) (owned) why the last copy failed */
  char *dsn_envid;            /* (nullable) (owned) the DSN envelope ID (RFC 3461 ENVID) */
  gint64 sent_copy_next;      /* 0: now, when pending */
  guint sent_copy_attempts;
  guint attempts;
  OutboxSentCopyState sent_copy;
  gint8 save_to_sent;         /* -1 account default, 0 no, 1 yes */
  guint8 eightbit;            /* (boolean) the body has 8-bit octets */
  guint8 smtputf8;            /* (boolean) an address is not ASCII */
  guint8 unknown_outcome;     /* (boolean) a previous attempt may have delivered it */
  guint8 network_deferred;    /* (boolean) deferred because the server was unreachable */
  guint8 dsn_notify;          /* OutboxDsnNotify: 0 asks nothing */
  guint8 dsn_ret;             /* OutboxDsnRet: 0 asks nothing */
  gint8 dsn_required;         /* -1 account default, 0 no, 1 yes */
  guint8 dsn_not_offered;     /* (boolean) DSN was asked for, and a transaction went
                               * without it: the server does not offer it */
  guint8 compact;             /* (private) see outbox_spool_record_compact() */
} OutboxSpoolRecord;

OutboxSpoolRecord *outbox_spool_record_new (void);
OutboxSpoolRecord *outbox_spool_record_copy (const OutboxSpoolRecord *record);
void outbox_spool_record_free (OutboxSpoolRecord *record);
/* (transfer full) @record, in the form a record kept for long takes: the
 * struct, its recipients and the strings that never change (id, account,
 * from, message_id, subject, origin, dsn_envid, the addresses) in one block.
 * Takes @record.  Such a record may have its other fields changed as any
 * other, but no recipient added and none of those strings replaced.  A
 * queue of 100,000 messages saves about a third of its memory by it. */
OutboxSpoolRecord *outbox_spool_record_compact (OutboxSpoolRecord *record);
/* Moves the recipients: pointers to them (outbox_spool_record_get_recipient())
 * do not survive it. */
void outbox_spool_record_add_recipient (OutboxSpoolRecord *record, const char *address);
OutboxRecipient *outbox_spool_record_get_recipient (OutboxSpoolRecord *record, guint i);
/* Sets @out from 64 lowercase hexadecimal digits; FALSE if @hex is not that. */
gboolean outbox_spool_sha256_from_hex (const char *hex, guint8 out[OUTBOX_SPOOL_SHA256_LENGTH]);
/* Serialised form: a versioned text record whose last line is a SHA-256 of
 * everything before it, so that truncation or corruption is detected. */
GBytes *outbox_spool_record_serialize (const OutboxSpoolRecord *record);
/* @id: (nullable) the id the file name gives, which the record must carry.
 * Refuses (STORAGE_FAILED) a record that fails its checksum, lacks a field,
 * has no recipient, an unknown state or an address that does not validate.
 * A "sending" state reads back as queued. */
OutboxSpoolRecord *outbox_spool_record_parse (const char *id,
                                              const guint8 *data,
                                              gsize len,
                                              GError **error);
/* A whole record file (queue/ID.rec): two slots, each holding a
 * serialised record with a sequence number; the valid one with the higher
 * number wins, so that a record is replaced in place without ever being
 * lost to a torn write.  The older form, one serialised record, is read
 * too.  Errors as outbox_spool_record_parse(). */
OutboxSpoolRecord *outbox_spool_record_file_parse (const char *id,
                                                   const guint8 *data,
                                                   gsize len,
                                                   GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSpoolRecord, outbox_spool_record_free)

/* The spool directory ($XDG_DATA_HOME/outbox):
 *
 *   tmp/         drafts being written (O_EXCL, 0600)
 *   queue/ID.msg the message: two record slots of 4 KiB (see
 *                outbox_spool_record_file_parse), then the message data,
 *                which is written once and never changed
 *   queue/ID.rec a record file, only for a record that outgrew the slots
 *                of its ID.msg; it wins over them
 *   queue/ID.eml the data alone, in the older form (always with an ID.rec);
 *                read, delivered and removed, never written any more
 *   quarantine/  what failed validation: set aside, never deleted
 *   maildrop/    messages dropped by outbox-sendmail without a bus
 *
 * A message exists once its ID.msg with a valid slot, or its ID.rec, is in
 * queue/.  A commit writes the data and the record in tmp/ID.msg (and an
 * ID.rec after it when the record is too big for a slot), fsyncs them,
 * renames ID.msg first, ID.rec last, then fsyncs queue/: one new file per
 * message, not two.  A removal unlinks ID.msg first, so that an older
 * record in its slots never outlives a newer ID.rec.  Errors are
 * OUTBOX_ERROR_STORAGE_FAILED. */
#define OUTBOX_TYPE_SPOOL (outbox_spool_get_type ())
G_DECLARE_FINAL_TYPE (OutboxSpool, outbox_spool, OUTBOX, SPOOL, GObject)

/* Creates the directories (0700) when missing; refuses a directory owned by
 * another user or open to group or others. */
OutboxSpool *outbox_spool_open (const char *path, GError **error);
const char *outbox_spool_get_path (OutboxSpool *spool);

/* A message being submitted. */
typedef struct _OutboxSpoolDraft OutboxSpoolDraft;

OutboxSpoolDraft *outbox_spool_draft_new (OutboxSpool *spool, GError **error);
const char *outbox_spool_draft_get_id (OutboxSpoolDraft *draft);
/* (transfer none) where the message bytes go */
GOutputStream *outbox_spool_draft_get_stream (OutboxSpoolDraft *draft);
/* fsyncs the data, writes @record (its id, size and sha256 must already be
 * set), renames both into queue/ and fsyncs the directory.  Nothing stays
 * behind on failure. */
gboolean outbox_spool_draft_commit (OutboxSpoolDraft *draft,
                                    const OutboxSpoolRecord *record,
                                    GError **error);
/* The same, without blocking: the commit joins others in one flush (group
 * commit) and @callback runs once it is on disk.  The draft must stay
 * alive until then. */
void outbox_spool_draft_commit_async (OutboxSpoolDraft *draft,
                                      const OutboxSpoolRecord *record,
                                      GCancellable *cancellable,
                                      GAsyncReadyCallback callback,
                                      gpointer user_data);
gboolean outbox_spool_draft_commit_finish (OutboxSpoolDraft *draft,
                                           GAsyncResult *result,
                                           GError **error);
/* Removes whatever was not committed. */
void outbox_spool_draft_free (OutboxSpoolDraft *draft);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSpoolDraft, outbox_spool_draft_free)

/* Atomically replaces the record (tmp file, fsync, rename, directory fsync).
 * NO_SUCH_MESSAGE when the queue has no record of that id. */
gboolean outbox_spool_save (OutboxSpool *spool, const OutboxSpoolRecord *record, GError **error);
/* Removes the record first, then the data, then fsyncs the directory. */
gboolean outbox_spool_remove (OutboxSpool *spool, const char *id, GError **error);

/* Every change (commit, save, remove) reaches the disk in the order it was
 * asked for.  The asynchronous forms share one flush among all the changes
 * asked for while the previous flush ran, in a worker thread; each
 * completes only once its change is durable.  The synchronous forms first
 * finish every change asked for before them, then their own. */
void outbox_spool_save_async (OutboxSpool *spool,
                              const OutboxSpoolRecord *record,
                              GCancellable *cancellable,
                              GAsyncReadyCallback callback,
                              gpointer user_data);
gboolean outbox_spool_save_finish (OutboxSpool *spool, GAsyncResult *result, GError **error);
void outbox_spool_remove_async (OutboxSpool *spool,
                                const char *id,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean outbox_spool_remove_finish (OutboxSpool *spool, GAsyncResult *result, GError **error);
/* Writes every change asked for so far, blocking: before exit. */
void outbox_spool_flush (OutboxSpool *spool);
/* No change is waiting or being written. */
gboolean outbox_spool_is_idle (OutboxSpool *spool);
/* Reads every record; a record that does not validate, or whose data file is
 * missing or of the wrong size, is moved to quarantine/ with its data and
 * its id added to @out_quarantined.  Orphan data files are quarantined too.
 * Returns records sorted by (created, id), each compacted
 * (outbox_spool_record_compact()) as it was read. */
GPtrArray *outbox_spool_load (OutboxSpool *spool, GPtrArray **out_quarantined, GError **error);
/* The same, step by step, for a daemon that answers while it loads: each
 * next() gives up to @max more records (transfer full, compacted, in no
 * particular order) and sets aside what does not validate, as
 * outbox_spool_load() does, until is_done().  Records come from the index
 * (see outbox_spool_write_index()) where the message's
 * files are still as it says, from the files otherwise.  @known
 * (nullable) tells the ids the caller has already (submitted since the
 * load began): the loader leaves those alone, and those whose commit is
 * still being written too.  Nothing else may change a message that the
 * loader has not given out yet. */
typedef struct _OutboxSpoolLoader OutboxSpoolLoader;
typedef gboolean (*OutboxSpoolKnownFunc) (const char *id, gpointer user_data);

OutboxSpoolLoader *outbox_spool_loader_new (OutboxSpool *spool,
                                            OutboxSpoolKnownFunc known,
                                            gpointer known_data,
                                            GError **error);
GPtrArray *outbox_spool_loader_next (OutboxSpoolLoader *loader, guint max);
gboolean outbox_spool_loader_is_done (OutboxSpoolLoader *loader);
/* How many of the records given out came from the index. */
guint outbox_spool_loader_get_from_index (OutboxSpoolLoader *loader);
/* How many were read from their files. */
guint outbox_spool_loader_get_from_files (OutboxSpoolLoader *loader);
/* (transfer none) (element-type utf8) the ids set aside so far */
GPtrArray *outbox_spool_loader_get_quarantined (OutboxSpoolLoader *loader);
void outbox_spool_loader_free (OutboxSpoolLoader *loader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxSpoolLoader, outbox_spool_loader_free)

/* Writes $spool/index, blocking: for each of @ids (in that order) its
 * current record as its files hold it, which of its files exist, and their
 * sizes and change times; file fsync, rename, directory fsync.  The next
 * load reads one file instead of one per message.  The index stays
 * through later changes and a crash: a loader takes an entry only when the
 * files are still as it says, so that the files win wherever the two
 * differ, and files that changed in the clock tick the index was begun in
 * get no entry (a change within that tick might not move their stamps).
 * Asked for every change already asked for reaching the disk first: for a
 * daemon that stops, after its last change. */
gboolean outbox_spool_write_index (OutboxSpool *spool, GPtrArray *ids, GError **error);
/* The same in a worker thread, while changes go on (those show in the
 * stamps): a checkpoint, so that a start after a crash reads the files of
 * what changed since, not of every message.  @ids is copied. */
void outbox_spool_write_index_async (OutboxSpool *spool,
                                     GPtrArray *ids,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
gboolean outbox_spool_write_index_finish (OutboxSpool *spool, GAsyncResult *result, GError **error);
/* Changes asked for since an index was last begun. */
guint64 outbox_spool_get_changes_since_index (OutboxSpool *spool);

/* Reads the record of one message straight from queue/, for a question
 * about a message the loader has not reached yet; sets nothing aside.
 * NO_SUCH_MESSAGE when queue/ has no record of @id. */
OutboxSpoolRecord *outbox_spool_read (OutboxSpool *spool, const char *id, GError **error);
/* Opens a message's data for reading.  The stream fails with
 * G_IO_ERROR_INVALID_DATA at its end (instead of returning 0) when the bytes
 * read do not match the record's size and SHA-256, so that a transaction
 * over it is aborted before the final dot. */
GInputStream *outbox_spool_open_message (OutboxSpool *spool,
                                         const OutboxSpoolRecord *record,
                                         GError **error);

/* Quarantines one message (record and data, whatever exists), for example
 * after its data failed verification.  NO_SUCH_MESSAGE for an invalid id or
 * when neither file exists. */
gboolean outbox_spool_quarantine (OutboxSpool *spool, const char *id, GError **error);

/* Message ids: lowercase hex, sortable by submission time, unique. */
char *outbox_spool_new_id (void);
/* TRUE when @id is 1 to 64 characters of [0-9a-z]: safe as a file name. */
gboolean outbox_spool_id_is_valid (const char *id);

/* For tests only: makes one step of a draft commit or a save fail (EIO, or
 * ENOSPC for the write) as a failing or full disk would, until it is set
 * back to NONE.  INDEX_TICK makes an index see every file as changed in
 * the clock tick it was begun in (as a file system with a coarse clock
 * can; Linux's multigrain time stamps since 6.13 make it rare). */
typedef enum
{
  OUTBOX_SPOOL_FAULT_NONE,
  OUTBOX_SPOOL_FAULT_FSYNC_DATA,
  OUTBOX_SPOOL_FAULT_FSYNC_RECORD,
  OUTBOX_SPOOL_FAULT_WRITE_RECORD,
  OUTBOX_SPOOL_FAULT_FSYNC_DIR,
  OUTBOX_SPOOL_FAULT_INDEX_TICK,
} OutboxSpoolFault;

void outbox_spool_set_fault (OutboxSpool *spool, OutboxSpoolFault fault);

G_END_DECLS
