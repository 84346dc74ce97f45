/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#if !defined(OUTBOX_INSIDE) && !defined(OUTBOX_COMPILATION)
#error "Only <outbox/outbox.h> can be included directly."
#endif

#include <glib-object.h>

#include <outbox/outbox-types.h>

G_BEGIN_DECLS

#define OUTBOX_TYPE_SUBMIT_OPTIONS (outbox_submit_options_get_type ())
OUTBOX_EXPORT
G_DECLARE_FINAL_TYPE (OutboxSubmitOptions, outbox_submit_options, OUTBOX, SUBMIT_OPTIONS, GObject)

OUTBOX_EXPORT
OutboxSubmitOptions *outbox_submit_options_new (void);

OUTBOX_EXPORT
const char *outbox_submit_options_get_account (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_account (OutboxSubmitOptions *self,
                                        const char *account);
OUTBOX_EXPORT
const char *outbox_submit_options_get_sender (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_sender (OutboxSubmitOptions *self,
                                       const char *sender);
OUTBOX_EXPORT
const char *const *outbox_submit_options_get_recipients (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_recipients (OutboxSubmitOptions *self,
                                           const char *const *recipients);
OUTBOX_EXPORT
GDateTime *outbox_submit_options_get_send_at (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_send_at (OutboxSubmitOptions *self,
                                        GDateTime *send_at);
OUTBOX_EXPORT
guint outbox_submit_options_get_delay (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_delay (OutboxSubmitOptions *self,
                                      guint seconds);
OUTBOX_EXPORT
gboolean outbox_submit_options_get_hold (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_hold (OutboxSubmitOptions *self,
                                     gboolean hold);
OUTBOX_EXPORT
gboolean outbox_submit_options_get_save_to_sent (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_save_to_sent (OutboxSubmitOptions *self,
                                             gboolean save_to_sent);
OUTBOX_EXPORT
const char *const *outbox_submit_options_get_notify (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_notify (OutboxSubmitOptions *self,
                                       const char *const *notify);
OUTBOX_EXPORT
const char *outbox_submit_options_get_ret (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_ret (OutboxSubmitOptions *self,
                                    const char *ret);
OUTBOX_EXPORT
const char *outbox_submit_options_get_envid (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_envid (OutboxSubmitOptions *self,
                                      const char *envid);
OUTBOX_EXPORT
gboolean outbox_submit_options_get_dsn_required (OutboxSubmitOptions *self);
OUTBOX_EXPORT
void outbox_submit_options_set_dsn_required (OutboxSubmitOptions *self,
                                             gboolean dsn_required);

G_END_DECLS
