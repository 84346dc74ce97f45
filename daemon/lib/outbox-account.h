/* SPDX-License-Identifier: LGPL-2.1-or-later
 * SPDX-FileCopyrightText: The Outbox authors */
#pragma once

#include <gio/gio.h>

#include "outbox-oauth2-provider.h"
#include "outbox-smtp-dsn.h"
#include "outbox-smtp-session.h"
#include "outbox-url.h"

G_BEGIN_DECLS

/* One account as written in accounts.conf (a GKeyFile group
 * "[account NAME]").  No secret is ever part of it. */
typedef struct
{
  char *name;                 /* (owned) [A-Za-z0-9._-]{1,64} */
  char *from;                 /* (owned) the account's address */
  char **aliases;             /* (nullable) (owned) more From addresses, or *@domain */
  OutboxServerUrl *smtp;      /* (owned) */
  OutboxServerUrl *imap;      /* (nullable) (owned) */
  OutboxServerUrl *pop3;      /* (nullable) (owned) */
  char *tls_ca_file;          /* (nullable) (owned) */
  char *tls_fingerprint;      /* (nullable) (owned) */
  char *auth;                 /* (nullable) (owned) a SASL mechanism, upper case */
  char **password_command;    /* (nullable) (owned) argv: prints the password */
  char **token_command;       /* (nullable) (owned) argv: prints an OAuth2 access token */
  char *oauth2;               /* (nullable) (owned) "google", "microsoft" or "custom" */
  char *oauth2_auth_url;      /* (nullable) (owned) overrides the provider's */
  char *oauth2_token_url;     /* (nullable) (owned) */
  char *oauth2_device_url;    /* (nullable) (owned) */
  char *oauth2_scope;         /* (nullable) (owned) */
  char *client_id;            /* (nullable) (owned) the OAuth2 client (not a secret) */
  char *goa_id;               /* (nullable) (owned) the linked GNOME Online Accounts account */
  gboolean is_default;
  gboolean save_to_sent;       /* copy sent mail to the IMAP Sent folder (TRUE;
                                * only where an IMAP server is set) */
  char *sent_folder;           /* (nullable) (owned) when no \Sent is marked */
  gboolean pop_before_smtp;    /* log in to POP3 before each SMTP session */
  guint timeout;               /* 0: RFC 5321 timeouts; else a cap in seconds */
  guint retry_first;           /* seconds before the first retry (60) */
  guint retry_max;             /* the backoff doubles up to this (3600) */
  guint give_up_after;         /* seconds of deferral before failing (5 days) */
  guint max_connections;       /* SMTP connections at once (2) */
  guint max_recipients;        /* RCPTs per transaction (0: no limit of our own) */
  guint send_delay;            /* seconds a message submitted without delay, send-at
                                * or hold waits, so that Cancel undoes it (0) */
  OutboxDsnNotify dsn_notify;  /* what a message asks when its Submit gives no notify */
  gboolean dsn_required;       /* a message that asks for DSN waits for a server that
                                * offers it, unless it says otherwise */
  OutboxSmtpTimeouts timeouts; /* derived from timeout */
} OutboxAccountConfig;

/* The longest send-delay and Submit delay: a day. */
#define OUTBOX_SEND_DELAY_MAX 86400

OutboxAccountConfig *outbox_account_config_copy (const OutboxAccountConfig *account);
void outbox_account_config_free (OutboxAccountConfig *account);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxAccountConfig, outbox_account_config_free)

/* Whether a message sent through @account is copied to its Sent folder;
 * @per_message is the Submit option (-1: the account decides). */
gboolean outbox_account_config_wants_sent_copy (const OutboxAccountConfig *account, int per_message);

/* (transfer full) The endpoints and client of an account with an "oauth2"
 * setting; fails with OUTBOX_ERROR_INVALID_ACCOUNT saying what is missing. */
OutboxOAuth2Settings *outbox_account_get_oauth2_settings (const OutboxAccountConfig *account,
                                                          GError **error);

/* Settings as a{sv} (the keys documented in org.outbox.Outbox1.Accounts). */
GVariant *outbox_account_config_to_variant (const OutboxAccountConfig *account);
gboolean outbox_account_name_is_valid (const char *name);

/* The accounts file.  Every change is written atomically (g_file_set_contents
 * with mode 0600) before the call returns; a failed write leaves the store as
 * it was.  Errors: OUTBOX_ERROR_INVALID_ACCOUNT (bad settings, saying
 * which), OUTBOX_ERROR_NO_SUCH_ACCOUNT, OUTBOX_ERROR_ACCOUNT_EXISTS,
 * OUTBOX_ERROR_STORAGE_FAILED. */
typedef struct _OutboxAccountStore OutboxAccountStore;

OutboxAccountStore *outbox_account_store_load (const char *path, GError **error);
void outbox_account_store_free (OutboxAccountStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (OutboxAccountStore, outbox_account_store_free)

/* (transfer none) sorted by name */
GPtrArray *outbox_account_store_list (OutboxAccountStore *store);
/* (transfer none) (nullable) */
const OutboxAccountConfig *outbox_account_store_lookup (OutboxAccountStore *store, const char *name);
const OutboxAccountConfig *outbox_account_store_get_default (OutboxAccountStore *store);
/* The account that sends for @address: its From or one of its aliases equals
 * @address (local part exact, domain in any case), else an alias "*@DOMAIN"
 * covers it.  An exact match beats a wildcard; among equals the default
 * account wins, then the first by name.  NULL when none matches. */
const OutboxAccountConfig *outbox_account_store_find_by_address (OutboxAccountStore *store,
                                                           const char *address);
gboolean outbox_account_store_add (OutboxAccountStore *store,
                                   const char *name,
                                   GVariant *settings,
                                   GError **error);
gboolean outbox_account_store_update (OutboxAccountStore *store,
                                      const char *name,
                                      GVariant *settings,
                                      GError **error);
gboolean outbox_account_store_remove (OutboxAccountStore *store, const char *name, GError **error);

G_END_DECLS
