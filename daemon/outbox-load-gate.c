/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-error.h"
#include "outbox-dbus-error.h"
#include "outbox-load-gate.h"

/* A call held back is taken off the skeleton's dispatch in its
 * "g-authorize-method" signal, which lets a handler keep the invocation
 * and answer it later, and is given back to the skeleton's own method
 * dispatch once the queue is loaded: the handlers never see the
 * difference. */

typedef struct
{
  GDBusInterfaceSkeleton *skeleton; /* (unowned) owns the gate */
  OutboxQueue *queue;               /* (owned) */
  OutboxLoadGateFunc must_wait;
  GQueue held;                      /* (element-type GDBusMethodInvocation) (owned) */
  gulong loaded_handler;
} Gate;

static void
refuse_held (GDBusMethodInvocation *invocation)
{
  outbox_dbus_return_error (invocation,
                            g_error_new (OUTBOX_ERROR, OUTBOX_ERROR_STORAGE_FAILED,
                                         "outboxd stopped before the queue was loaded; try again"));
}

static void
gate_free (gpointer data)
{
  Gate *gate = data;

  GDBusMethodInvocation *invocation;

  g_clear_signal_handler (&gate->loaded_handler, gate->queue);
  while ((invocation = g_queue_pop_head (&gate->held)) != NULL)
    refuse_held (invocation);
  g_object_unref (gate->queue);
  g_free (gate);
}

static void
dispatch (Gate *gate, GDBusMethodInvocation *invocation)
{
  GDBusInterfaceVTable *vtable = g_dbus_interface_skeleton_get_vtable (gate->skeleton);

  /* The reference held is the one the dispatch hands to the handler. */
  vtable->method_call (g_dbus_method_invocation_get_connection (invocation),
                       g_dbus_method_invocation_get_sender (invocation),
                       g_dbus_method_invocation_get_object_path (invocation),
                       g_dbus_method_invocation_get_interface_name (invocation),
                       g_dbus_method_invocation_get_method_name (invocation),
                       g_dbus_method_invocation_get_parameters (invocation),
                       invocation, gate->skeleton);
}

static void
on_loaded (OutboxQueue *queue, gpointer user_data)
{
  Gate *gate = user_data;
  GDBusMethodInvocation *invocation;

  if (gate->held.length > 0)
    g_info ("Answering %u call(s) that waited for the queue to load", gate->held.length);
  while ((invocation = g_queue_pop_head (&gate->held)) != NULL)
    dispatch (gate, invocation);
}

static gboolean
on_authorize_method (GDBusInterfaceSkeleton *skeleton,
                     GDBusMethodInvocation *invocation,
                     gpointer user_data)
{
  Gate *gate = user_data;

  if (outbox_queue_is_loaded (gate->queue)
      || !gate->must_wait (gate->queue, invocation, gate->held.length > 0))
    return TRUE;
  g_queue_push_tail (&gate->held, g_object_ref (invocation));
  return FALSE;
}

void
outbox_load_gate_attach (GDBusInterfaceSkeleton *skeleton,
                         OutboxQueue *queue,
                         OutboxLoadGateFunc must_wait)
{
  Gate *gate = g_new0 (Gate, 1);

  gate->skeleton = skeleton;
  gate->queue = g_object_ref (queue);
  gate->must_wait = must_wait;
  g_queue_init (&gate->held);
  gate->loaded_handler = g_signal_connect (queue, "loaded", G_CALLBACK (on_loaded), gate);
  g_signal_connect (skeleton, "g-authorize-method", G_CALLBACK (on_authorize_method), gate);
  g_object_set_data_full (G_OBJECT (skeleton), "outbox-load-gate", gate, gate_free);
}
