# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Accounts.AccountChanged: a client keeps a live list of accounts without
polling.  Each change of an account is told with its state and the very
dictionary List() gives (an Add, an Update, the default moving, a
SetPassword, a refused password, a server down and up again), a removal
as "removed" with nothing else; the changes of one account within 50 ms
are one signal, and no signal carries a password."""

import base64
import time

import outboxtest
from outboxtest import (ACCOUNTS_IFACE, AccountChangedRecorder, AioSmtpServer, EngineTestCase,
                        account_settings, add_account_over_dbus, call_outbox, free_port,
                        set_password, update_account, wait_until)

# Long enough for no retry to happen on its own while a case runs.
RETRY_FIRST = 300
# Ten times the coalescing window: a second signal would have come by then.
QUIET = 0.5
# Distinctive, so that finding it in a signal means it leaked.
WRONG_PASSWORD = "wrong-Kx4Pq9-Hd2Lm7-not-it"


class AccountChangedTest(EngineTestCase):
    def setUp(self):
        super().setUp()
        self.signals = AccountChangedRecorder()
        self.addCleanup(self.signals.close)
        self.passwords = []
        # Runs before the recorder closes: every signal of the test is in.
        self.addCleanup(self.assertNoPasswordTold)

    def assertNoPasswordTold(self):
        self.signals.pump()
        told = repr(self.signals.signals)
        for password in self.passwords:
            for form in (password, base64.b64encode(password.encode()).decode()[:-4]):
                self.assertNotIn(form, told, "a password is in an AccountChanged signal")

    def set_password(self, account, password):
        self.passwords.append(password)
        set_password(account, password)

    def add(self, name, url, **settings):
        """Accounts.Add: one call; returns the settings of its signal."""
        add_account_over_dbus(name, {"from": self.SENDER, "smtp": url, **settings})
        return self.signals.wait(name, "ok")

    def assertToldOnce(self, account):
        """The signals about account after a quiet time: exactly one;
        returns its (state, settings)."""
        time.sleep(QUIET)
        told = self.signals.of(account)
        self.assertEqual(len(told), 1, f"{len(told)} AccountChanged signals for {account}: {told}")
        return told[0]

    def forget_signals(self):
        self.signals.pump()
        self.signals.signals.clear()

    def assertListed(self, account, state, settings):
        """The signal's state and settings are what List() gives now."""
        listed = account_settings(account)
        self.assertEqual(settings, listed, "the signal's settings are not List()'s")
        self.assertEqual(state, listed["state"])

    def test_add_tells_the_account_once_with_its_settings(self):
        sink = self.start_sink()
        account = self.account_name()
        self.add(account, sink.url())
        state, settings = self.assertToldOnce(account)
        self.assertEqual(state, "ok")
        self.assertEqual(settings["name"], account)
        self.assertEqual(settings["from"], self.SENDER)
        self.assertEqual(settings["smtp"], sink.url())
        self.assertIs(settings["needs-password"], False)
        self.assertListed(account, state, settings)

    def test_update_tells_the_new_value_once(self):
        sink = self.start_sink()
        account = self.account_name()
        self.assertNotEqual(self.add(account, sink.url()).get("timeout"), 17)
        self.forget_signals()
        update_account(account, {"timeout": 17})
        state, settings = self.assertToldOnce(account)
        self.assertEqual(state, "ok")
        self.assertEqual(settings["timeout"], 17)
        self.assertListed(account, state, settings)

    def test_moving_the_default_tells_both_accounts_once(self):
        sink = self.start_sink()
        first, second = self.account_name() + "-1", self.account_name() + "-2"
        self.add(first, sink.url(), default=True)
        self.add(second, sink.url())
        self.assertIs(account_settings(first)["default"], True)
        self.forget_signals()
        # One call changes the second account twice (its settings, and the
        # default coming to it) and the first once.
        update_account(second, {"default": True})
        _, settings = self.assertToldOnce(second)
        self.assertIs(settings["default"], True)
        _, settings = self.assertToldOnce(first)
        self.assertIs(settings["default"], False)

    def test_refused_password_tells_needs_password_then_set_password_ok(self):
        server = self.start_aiosmtpd(auth=True, auth_without_tls=True)
        account = self.account_name()
        self.add(account, f"smtp+insecure://{AioSmtpServer.USER}@127.0.0.1:{server.port}",
                 **{"retry-first": RETRY_FIRST})
        self.forget_signals()
        self.set_password(account, WRONG_PASSWORD)
        self.assertEqual(self.assertToldOnce(account)[0], "ok")
        message_id = self.submit(account)

        settings = self.signals.wait(account, "needs-password")
        self.assertIs(settings["needs-password"], True)
        self.assertEqual(settings["state"], "needs-password")
        self.assertIn("state-message", settings)
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")
        self.assertListed(account, "needs-password", settings)

        self.set_password(account, AioSmtpServer.PASSWORD)
        settings = self.signals.wait(account, "ok", count=2)
        self.assertIs(settings["needs-password"], False)
        self.assertNotIn("state-message", settings)
        self.assertEqual(self.outbox.wait_state(message_id, "sent", timeout=15)["state"], "sent")

    def test_sign_in_switched_off_tells_needs_attention(self):
        server = self.start_aiosmtpd(auth=True, auth_without_tls=True)
        account = self.account_name()
        self.add(account, f"smtp+insecure://{AioSmtpServer.USER}@127.0.0.1:{server.port}",
                 auth="SCRAM-SHA-256", **{"retry-first": RETRY_FIRST})
        self.forget_signals()
        self.set_password(account, AioSmtpServer.PASSWORD)
        self.assertEqual(self.assertToldOnce(account)[0], "ok")
        self.submit(account)
        settings = self.signals.wait(account, "needs-attention")
        self.assertIn("SCRAM-SHA-256", settings["state-message"])

    def test_server_down_tells_failing_then_ok_after_flush(self):
        port = free_port()
        account = self.account_name()
        self.add(account, f"smtp+insecure://127.0.0.1:{port}", **{"retry-first": RETRY_FIRST})
        message_id = self.submit(account)

        settings = self.signals.wait(account, "failing")
        self.assertEqual(settings["state"], "failing")
        self.assertIn("state-message", settings)
        self.assertIn("failing-since", settings)
        self.assertIn("next-attempt", settings)
        self.assertEqual(wait_until(lambda: (m := self.outbox.show(message_id))["state"]
                                    == "deferred" and m, 15, "the message deferred")["state"],
                         "deferred")

        self.start_sink(port=port)
        self.outbox.check("flush")
        settings = self.signals.wait(account, "ok", count=2)
        self.assertNotIn("failing-since", settings)
        self.assertNotIn("state-message", settings)
        self.assertEqual(self.outbox.wait_state(message_id, "sent", timeout=15)["state"], "sent")

    def test_remove_tells_removed_with_empty_settings(self):
        sink = self.start_sink()
        account = self.account_name()
        self.add(account + "-other", sink.url())
        self.add(account, sink.url(), default=True)
        self.forget_signals()
        self.outbox.check("account", "remove", account)
        state, settings = self.assertToldOnce(account)
        self.assertEqual((state, settings), ("removed", {}))
        # The default went to another account, which is told too.
        [accounts] = call_outbox(ACCOUNTS_IFACE, "List", reply_type="(aa{sv})")
        for other in accounts:
            if other["default"]:
                self.assertIs(self.assertToldOnce(other["name"])[1]["default"], True)


if __name__ == "__main__":
    outboxtest.main()
