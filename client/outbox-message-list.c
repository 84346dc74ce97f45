/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-client-private.h"

/* The live list of messages: a GSequence kept in the daemon's listing
 * order (created, then id), and a table from id to the message's place in
 * it.  Rows are objects that change in place: a message is inserted once
 * and removed once, never replaced. */
struct _OutboxMessageList
{
  GObject parent_instance;

  GSequence *messages;   /* OutboxMessage, owned */
  GHashTable *by_id;     /* id (owned by the message) -> GSequenceIter */
};

static void outbox_message_list_model_init (GListModelInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (OutboxMessageList, _outbox_message_list, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_LIST_MODEL, outbox_message_list_model_init))

static GType
outbox_message_list_get_item_type (GListModel *model)
{
  return OUTBOX_TYPE_MESSAGE;
}

static guint
outbox_message_list_get_n_items (GListModel *model)
{
  OutboxMessageList *self = OUTBOX_MESSAGE_LIST (model);

  return g_sequence_get_length (self->messages);
}

static gpointer
outbox_message_list_get_item (GListModel *model, guint position)
{
  OutboxMessageList *self = OUTBOX_MESSAGE_LIST (model);
  GSequenceIter *iter = g_sequence_get_iter_at_pos (self->messages, position);

  if (g_sequence_iter_is_end (iter))
    return NULL;
  return g_object_ref (g_sequence_get (iter));
}

static void
outbox_message_list_model_init (GListModelInterface *iface)
{
  iface->get_item_type = outbox_message_list_get_item_type;
  iface->get_n_items = outbox_message_list_get_n_items;
  iface->get_item = outbox_message_list_get_item;
}

static void
outbox_message_list_finalize (GObject *object)
{
  OutboxMessageList *self = OUTBOX_MESSAGE_LIST (object);

  g_hash_table_unref (self->by_id);
  g_sequence_free (self->messages);
  G_OBJECT_CLASS (_outbox_message_list_parent_class)->finalize (object);
}

static void
_outbox_message_list_class_init (OutboxMessageListClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = outbox_message_list_finalize;
}

static void
_outbox_message_list_init (OutboxMessageList *self)
{
  self->messages = g_sequence_new (g_object_unref);
  self->by_id = g_hash_table_new (g_str_hash, g_str_equal);
}

OutboxMessageList *
_outbox_message_list_new (void)
{
  return g_object_new (OUTBOX_TYPE_MESSAGE_LIST, NULL);
}

OutboxMessage *
_outbox_message_list_lookup (OutboxMessageList *self, const char *id)
{
  GSequenceIter *iter = g_hash_table_lookup (self->by_id, id);

  return iter != NULL ? g_sequence_get (iter) : NULL;
}

static int
compare_messages (gconstpointer a, gconstpointer b, gpointer user_data)
{
  OutboxMessage *first = (OutboxMessage *) a;
  OutboxMessage *second = (OutboxMessage *) b;
  gint64 created_a = _outbox_message_get_created_unix (first);
  gint64 created_b = _outbox_message_get_created_unix (second);

  if (created_a != created_b)
    return created_a < created_b ? -1 : 1;
  return strcmp (outbox_message_get_id (first), outbox_message_get_id (second));
}

/* Adds a message that is not in the list yet. */
void
_outbox_message_list_add (OutboxMessageList *self, OutboxMessage *message)
{
  GSequenceIter *iter;

  g_return_if_fail (_outbox_message_list_lookup (self, outbox_message_get_id (message)) == NULL);

  iter = g_sequence_insert_sorted (self->messages, g_object_ref (message), compare_messages, NULL);
  g_hash_table_insert (self->by_id, (gpointer) outbox_message_get_id (message), iter);
  g_list_model_items_changed (G_LIST_MODEL (self), g_sequence_iter_get_position (iter), 0, 1);
}

void
_outbox_message_list_remove (OutboxMessageList *self, const char *id)
{
  GSequenceIter *iter = g_hash_table_lookup (self->by_id, id);
  guint position;

  if (iter == NULL)
    return;
  position = g_sequence_iter_get_position (iter);
  g_hash_table_remove (self->by_id, id);
  g_sequence_remove (iter);
  g_list_model_items_changed (G_LIST_MODEL (self), position, 1, 0);
}

/* (element-type utf8) (transfer full) */
GPtrArray *
_outbox_message_list_dup_ids (OutboxMessageList *self)
{
  GPtrArray *ids = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer id;

  g_hash_table_iter_init (&iter, self->by_id);
  while (g_hash_table_iter_next (&iter, &id, NULL))
    g_ptr_array_add (ids, g_strdup (id));
  return ids;
}
