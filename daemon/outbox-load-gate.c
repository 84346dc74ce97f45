/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-error.h"
#include "outbox-dbus-error.h"
#include "outbox-load-gate.h"

/* A call held back is taken off the skeleton's method dispatch before it
 * reaches the handlers, and given back to that dispatch once the queue is
 * loaded: the handlers never see the difference.  The gate sits in the
 * skeleton's vtable (outbox_load_gate_get_vtable()), not in its
 * "g-authorize-method" signal: with a handler connected to that signal,
 * GDBus emits it for every call in a worker thread of its own and only
 * then goes back to the main context, so that the gate would look at the
 * queue from another thread and calls could overtake one another there (a
 * Cancel answered before the List asked for first).  In the vtable, every
 * call passes the gate in the main context, in the order it came. */

typedef struct
{
  GDBusInterfaceSkeleton *skeleton;   /* (unowned) owns the gate */
  OutboxQueue *queue;                 /* (owned) */
  OutboxLoadGateFunc must_wait;
  GQueue held;                        /* (element-type GDBusMethodInvocation) (owned) */
  gulong loaded_handler;
  const GDBusInterfaceVTable *parent; /* (nullable) the skeleton's own dispatch */
  GDBusInterfaceVTable vtable;        /* the parent's, through the gate */
} Gate;

#define GATE_KEY "outbox-load-gate"

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

/* Takes the invocation, as a method_call function does. */
static void
dispatch (Gate *gate, GDBusMethodInvocation *invocation)
{
  gate->parent->method_call (g_dbus_method_invocation_get_connection (invocation),
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

static void
gate_method_call (GDBusConnection *connection,
                  const char *sender,
                  const char *object_path,
                  const char *interface_name,
                  const char *method_name,
                  GVariant *parameters,
                  GDBusMethodInvocation *invocation,
                  gpointer user_data)
{
  Gate *gate = g_object_get_data (user_data, GATE_KEY);

  if (!outbox_queue_is_loaded (gate->queue)
      && gate->must_wait (gate->queue, invocation, gate->held.length > 0))
    g_queue_push_tail (&gate->held, invocation);
  else
    dispatch (gate, invocation);
}

GDBusInterfaceVTable *
outbox_load_gate_get_vtable (GDBusInterfaceSkeleton *skeleton, GDBusInterfaceVTable *parent)
{
  Gate *gate = g_object_get_data (G_OBJECT (skeleton), GATE_KEY);

  if (gate == NULL)
    return parent;
  gate->parent = parent;
  gate->vtable = *parent;
  gate->vtable.method_call = gate_method_call;
  return &gate->vtable;
}

void
outbox_load_gate_attach (GDBusInterfaceSkeleton *skeleton,
                         OutboxQueue *queue,
                         OutboxLoadGateFunc must_wait)
{
  Gate *gate = g_new0 (Gate, 1);

  /* The skeleton takes its vtable when it is first exported. */
  g_return_if_fail (g_dbus_interface_skeleton_get_connection (skeleton) == NULL);
  gate->skeleton = skeleton;
  gate->queue = g_object_ref (queue);
  gate->must_wait = must_wait;
  g_queue_init (&gate->held);
  gate->loaded_handler = g_signal_connect (queue, "loaded", G_CALLBACK (on_loaded), gate);
  g_object_set_data_full (G_OBJECT (skeleton), GATE_KEY, gate, gate_free);
}
