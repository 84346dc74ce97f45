/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-tls.h"
#include "outbox-transport.h"

/* Step guards */

static void
caller_cancelled (GCancellable *caller, gpointer user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static gboolean
step_timer_fired (gpointer user_data)
{
  OutboxStepGuard *guard = user_data;

  guard->timed_out = TRUE;
  g_cancellable_cancel (guard->cancellable);
  return G_SOURCE_REMOVE;
}

OutboxStepGuard *
outbox_step_guard_new (GCancellable *caller, guint seconds)
{
  OutboxStepGuard *guard = g_new0 (OutboxStepGuard, 1);

  guard->cancellable = g_cancellable_new ();
  guard->seconds = seconds;
  if (caller != NULL)
    {
      guard->caller = g_object_ref (caller);
      guard->caller_handler = g_cancellable_connect (
          caller, G_CALLBACK (caller_cancelled), g_object_ref (guard->cancellable), g_object_unref);
    }
  if (seconds > 0)
    {
      guard->timer = g_timeout_source_new (MIN (seconds, G_MAXUINT / 1000) * 1000);
      g_source_set_callback (guard->timer, step_timer_fired, guard, NULL);
      g_source_attach (guard->timer, g_main_context_get_thread_default ());
    }
  return guard;
}

void
outbox_step_guard_free (OutboxStepGuard *guard)
{
  if (guard == NULL)
    return;

  if (guard->timer != NULL)
    {
      g_source_destroy (guard->timer);
      g_source_unref (guard->timer);
    }
  if (guard->caller != NULL)
    {
      g_cancellable_disconnect (guard->caller, guard->caller_handler);
      g_object_unref (guard->caller);
    }
  g_object_unref (guard->cancellable);
  g_free (guard);
}

gboolean
outbox_step_guard_timed_out (const OutboxStepGuard *guard, const GError *error)
{
  return guard->timed_out && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* Connect and handshake */

typedef struct
{
  OutboxStepGuard *guard; /* (owned) */
  char *host;
  guint16 port;
  GQuark timeout_domain;
  int timeout_code;
  GTlsCertificate *offered; /* (owned) (nullable) handshake */
  char *fingerprint;        /* (nullable) handshake */
} StepData;

static void
step_data_free (StepData *data)
{
  outbox_step_guard_free (data->guard);
  g_free (data->host);
  g_clear_object (&data->offered);
  g_free (data->fingerprint);
  g_free (data);
}

static GTask *
step_task_new (const char *host,
               guint16 port,
               guint seconds,
               GQuark timeout_domain,
               int timeout_code,
               GCancellable *cancellable,
               GAsyncReadyCallback callback,
               gpointer user_data,
               gpointer source_tag)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  StepData *data = g_new0 (StepData, 1);

  g_task_set_source_tag (task, source_tag);
  data->guard = outbox_step_guard_new (cancellable, seconds);
  data->host = g_strdup (host);
  data->port = port;
  data->timeout_domain = timeout_domain;
  data->timeout_code = timeout_code;
  g_task_set_task_data (task, data, (GDestroyNotify) step_data_free);
  return task;
}

/* Replaces the cancellation of a timed-out step by a timeout error. */
static void
explain_timeout (StepData *data, GError **error, const char *what)
{
  if (*error == NULL || !outbox_step_guard_timed_out (data->guard, *error))
    return;
  g_clear_error (error);
  g_set_error (error, data->timeout_domain, data->timeout_code, "%s %s:%u within %u s", what,
               data->host, data->port, data->guard->seconds);
}

static void
connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  StepData *data = g_task_get_task_data (task);
  GSocketConnection *connection;
  GError *error = NULL;

  connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  explain_timeout (data, &error, "Could not connect to");
  if (connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
}

void
outbox_transport_connect_async (const char *host,
                                guint16 port,
                                guint seconds,
                                GQuark timeout_domain,
                                int timeout_code,
                                GCancellable *cancellable,
                                GAsyncReadyCallback callback,
                                gpointer user_data)
{
  GTask *task = step_task_new (host, port, seconds, timeout_domain, timeout_code, cancellable,
                               callback, user_data, outbox_transport_connect_async);
  StepData *data = g_task_get_task_data (task);
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnectable) address = g_network_address_new (host, port);

  g_socket_client_connect_async (client, address, data->guard->cancellable, connected, task);
}

GSocketConnection *
outbox_transport_connect_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_transport_connect_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
handshake_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  StepData *data = g_task_get_task_data (task);
  GTlsConnection *tls = G_TLS_CONNECTION (source);
  GError *error = NULL;

  if (!g_tls_connection_handshake_finish (tls, result, &error))
    explain_timeout (data, &error, "No TLS handshake with");
  else
    outbox_tls_check_pin (tls, data->fingerprint, &error);
  if (error != NULL)
    {
      data->offered = outbox_tls_explain_failure (tls, &error);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, g_object_ref (tls), g_object_unref);
}

void
outbox_transport_handshake_async (GIOStream *base,
                                  const char *host,
                                  guint16 port,
                                  const char *ca_file,
                                  const char *fingerprint,
                                  guint seconds,
                                  GQuark timeout_domain,
                                  int timeout_code,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  GTask *task = step_task_new (host, port, seconds, timeout_domain, timeout_code, cancellable,
                               callback, user_data, outbox_transport_handshake_async);
  StepData *data = g_task_get_task_data (task);
  g_autoptr (GIOStream) tls = NULL;
  GError *error = NULL;

  data->fingerprint = g_strdup (fingerprint);
  tls = outbox_tls_client_new (base, host, port, ca_file, fingerprint, &error);
  if (tls == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT,
                                    data->guard->cancellable, handshake_done, task);
}

GIOStream *
outbox_transport_handshake_finish (GAsyncResult *result,
                                   GTlsCertificate **out_offered,
                                   GError **error)
{
  StepData *data;

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == outbox_transport_handshake_async, NULL);

  data = g_task_get_task_data (G_TASK (result));
  if (out_offered != NULL)
    *out_offered = data->offered != NULL ? g_object_ref (data->offered) : NULL;
  return g_task_propagate_pointer (G_TASK (result), error);
}
