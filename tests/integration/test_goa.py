#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""GNOME Online Accounts: the real goa-daemon on the test's bus, with an
"IMAP and SMTP" account (a password) and a Google account (an access
token) pointing at a private Dovecot.  `outbox account list --goa` lists
them; `outbox account add NAME --goa ADDRESS` links one with no other
setting (its address, servers and secrets come from GOA) or with explicit
overrides; a password changed in GOA is used at the next session; a
removed GOA account makes the Outbox account need attention, and its
messages wait."""

import json

import outboxtest
from outboxtest import (Dovecot, GoaDaemon, OutboxTestCase, SmtpSink, account_settings,
                        make_message, wait_until)

ADDRESS = "alice@example.org"
GMAIL = "alice.test@gmail.com"
IMAP_SMTP_ID = "account_1700000000_0"
GOOGLE_ID = "account_1700000001_0"
TOKEN = "ya29.goa-test-token-Rr55"


class GoaTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.dovecot = Dovecot(cls.sink.port, oauth2=True).start()
        cls.addClassCleanup(cls.dovecot.stop)
        cls.dovecot.introspection.valid_tokens.add(TOKEN)
        cls.goa = GoaDaemon()
        cls.goa.add_imap_smtp(IMAP_SMTP_ID, ADDRESS, Dovecot.PASSWORD,
                              imap_host=f"localhost:{cls.dovecot.ports['imap']}",
                              smtp_host=f"localhost:{cls.dovecot.ports['submission']}")
        cls.goa.add_google(GOOGLE_ID, GMAIL, TOKEN)
        cls.goa.start()
        cls.addClassCleanup(cls.goa.stop)

    def send(self, account, subject):
        count = len(self.sink.dump_files())
        message = make_message([("From", account_settings(account)["from"]),
                                ("To", "bob@example.org"), ("Subject", subject)])
        return self.outbox.send(message, account=account), count

    def assertDelivered(self, message_id, count):
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent",
                         self.outbox.show(message_id))
        self.sink.wait_messages(count + 1)

    def link(self, *extra):
        name = self.account_name()
        self.outbox.check("account", "add", name, *extra,
                          "--tls-ca-file", str(self.dovecot.ca_file))
        return name

    def test_list_shows_the_mail_accounts(self):
        listed = json.loads(self.outbox.check("account", "list", "--goa", "--json").stdout)
        by_id = {a["id"]: a for a in listed["goa_accounts"]}
        self.assertEqual(set(by_id), {IMAP_SMTP_ID, GOOGLE_ID}, listed)
        self.assertEqual(by_id[IMAP_SMTP_ID]["address"], ADDRESS)
        self.assertEqual(by_id[IMAP_SMTP_ID]["smtp"],
                         f"smtp://alice@localhost:{self.dovecot.ports['submission']}")
        self.assertEqual(by_id[IMAP_SMTP_ID]["imap"],
                         f"imap://alice@localhost:{self.dovecot.ports['imap']}")
        self.assertEqual(by_id[GOOGLE_ID]["smtp"], "smtps://alice.test%40gmail.com@smtp.gmail.com")
        text = self.outbox.check("account", "list", "--goa").stdout
        self.assertIn("outbox account add NAME --goa ADDRESS", text)

    def test_link_by_address_takes_everything_from_goa(self):
        name = self.link("--goa", ADDRESS)
        settings = account_settings(name)
        self.assertEqual(settings["goa-id"], IMAP_SMTP_ID)
        self.assertEqual(settings["from"], ADDRESS)
        self.assertEqual(settings["smtp"],
                         f"smtp://alice@localhost:{self.dovecot.ports['submission']}")
        self.assertDelivered(*self.send(name, "linked by address"))
        # No password of GOA's was copied into Outbox's keyring items or file.
        conf = (outboxtest.config_dir() / "accounts.conf").read_text()
        self.assertNotIn(Dovecot.PASSWORD, conf)

    def test_account_test_signs_in_everywhere_with_goa(self):
        name = self.link("--goa", IMAP_SMTP_ID)
        results = self.outbox.json("account", "test", name, "--json")
        for service in ("smtp", "imap"):
            self.assertEqual(results[service]["login"], "ok", results)

    def test_a_password_changed_in_goa_is_used_at_the_next_session(self):
        name = self.link("--goa", ADDRESS)
        self.assertDelivered(*self.send(name, "before the change"))
        self.goa.set_imap_smtp_password(IMAP_SMTP_ID, "changed in Settings")
        self.addCleanup(self.goa.set_imap_smtp_password, IMAP_SMTP_ID, Dovecot.PASSWORD)
        message_id, count = self.send(name, "after the change")
        settings = wait_until(lambda: account_settings(name).get("state") == "needs-attention"
                              and account_settings(name), 60, "the account to need attention")
        self.assertIn("Online Accounts", settings["state-message"])
        # Put right in GOA, the waiting message goes: nothing was lost.
        self.goa.set_imap_smtp_password(IMAP_SMTP_ID, Dovecot.PASSWORD)
        self.outbox.check("flush")
        self.assertDelivered(message_id, count)

    def test_google_token_with_the_host_overridden(self):
        submission = f"smtp://{Dovecot.USER}@localhost:{self.dovecot.ports['submission']}"
        name = self.link("--goa", GMAIL, "--smtp", submission, "--from", ADDRESS)
        settings = account_settings(name)
        self.assertEqual(settings["smtp"], submission)
        self.assertEqual(settings["goa-id"], GOOGLE_ID)
        before = self.dovecot.introspection.count(TOKEN)
        self.assertDelivered(*self.send(name, "google token"))
        self.assertGreater(self.dovecot.introspection.count(TOKEN), before)

    def test_unknown_address_is_refused_with_what_to_do(self):
        result = self.outbox.run("account", "add", self.account_name(), "--goa",
                                 "nobody@example.org")
        self.assertNotEqual(result.rc, 0, result)
        self.assertIn("outbox account list --goa", result.stderr)

    def test_removed_goa_account_needs_attention_and_mail_waits(self):
        goa = GoaDaemon()
        removable = "account_1700000002_0"
        goa.accounts = dict(self.goa.accounts)
        goa.add_imap_smtp(removable, "carol@example.org", Dovecot.PASSWORD,
                          imap_host=f"localhost:{self.dovecot.ports['imap']}",
                          smtp_host=f"localhost:{self.dovecot.ports['submission']}")
        self.goa.accounts = goa.accounts
        self.goa.stop()
        self.goa.start()
        name = self.link("--goa", removable)
        self.goa.remove(removable)
        message_id, _ = self.send(name, "after removal")
        settings = wait_until(lambda: account_settings(name).get("state") == "needs-attention"
                              and account_settings(name), 60, "the account to need attention")
        self.assertIn("removed", settings["state-message"])
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")
        status = self.outbox.check("status").stdout
        self.assertIn(f"{name} (needs-attention)", status)


if __name__ == "__main__":
    outboxtest.main()
