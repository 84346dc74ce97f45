/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#include "config.h"

#include "outbox-error.h"
#include "outbox-helper.h"

char *
outbox_helper_path (const char *name, GError **error)
{
  g_autoptr (GError) link_error = NULL;
  g_autofree char *self = g_file_read_link ("/proc/self/exe", &link_error);
  g_autofree char *dir = NULL;

  if (self == NULL)
    {
      g_set_error (error, OUTBOX_ERROR, OUTBOX_ERROR_FAILED, "Cannot find %s: %s", name,
                   link_error->message);
      return NULL;
    }
  dir = g_path_get_dirname (self);
  return g_build_filename (dir, name, NULL);
}
