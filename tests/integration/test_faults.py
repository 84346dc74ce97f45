# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""What a server's refusal, a lost connection or silence does to a
message: Postfix's smtp-sink injects a 4xx, a 5xx, a dropped connection or
a 421 at each step of the session, one account and one sink per case, all
in one daemon.

smtp-sink answers (seen on Debian 12): -r CMD gives "450 4.3.0 Error:
command failed", -f CMD "500 5.3.0 Error: command failed", -Q CMD "421
4.0.0 Server closing connection" then closes, -q CMD closes without a
word; at CONNECT the reply replaces the greeting.  -r and -f also stop
announcing PIPELINING."""

import time

import outboxtest
from outboxtest import (AioSmtpServer, EngineTestCase, account_settings, free_port,
                        set_password, spool_ids, wait_until)

# Long enough that no retry happens while a case runs, and not the default
# (60 s), to show that the account's setting is used.
RETRY_FIRST = 300
SOFT = (450, "450 4.3.0 Error: command failed")
HARD = (500, "500 5.3.0 Error: command failed")
CLOSING = (421, "421 4.0.0 Server closing connection")
NO_REPLY = (None, None)
ATTEMPT_OVER = ("deferred", "failed", "sent", "held")


def wait_attempted(outbox, message_id, timeout=20):
    """The message once its first delivery attempt is over."""
    return wait_until(lambda: (m := outbox.show(message_id))["state"] in ATTEMPT_OVER and m,
                      timeout, f"the first attempt on {message_id}", interval=0.1)


class FaultsTest(EngineTestCase):
    def attempt(self, *sink_flags, settings=None):
        """One message through a fresh account on an smtp-sink started
        with sink_flags; returns (message once attempted, its queue id,
        the time its outcome was seen, the sink)."""
        sink = self.start_sink(*sink_flags)
        account = self.add_engine_account(
            sink.url(), settings=settings or {"retry-first": RETRY_FIRST})
        message_id = self.submit(account)
        message = wait_attempted(self.outbox, message_id)
        return message, message_id, time.time(), sink

    def check_fault(self, sink_flags, state, reply, unknown_outcome=False):
        code, text = reply
        message, message_id, seen, _ = self.attempt(*sink_flags)

        self.assertEqual(message["state"], state, message)
        self.assertRecipientStates(message, {"bob@example.org": state})
        [recipient] = message["recipients"]
        if code is not None:
            self.assertEqual(recipient.get("reply_code"), code, message)
            self.assertIn(text, recipient.get("reply", ""), message)
            self.assertIn(text, message.get("last_reply", ""), message)
        else:
            self.assertTrue(recipient.get("reply"), f"no reason given: {message}")
        self.assertEqual(message.get("attempts"), 1, message)
        self.assertEqual(bool(message.get("unknown_outcome")), unknown_outcome, message)
        if state == "deferred":
            self.assertNextAttemptIn(message, RETRY_FIRST, seen)
        else:
            self.assertNotIn("next_attempt", message)
        self.assertInSpool(message_id)

    # Retry, flush, failed messages --------------------------------------

    def test_retry_after_server_fixed_delivers(self):
        message, message_id, _, sink = self.attempt("-r", "RCPT")
        self.assertEqual(message["state"], "deferred", message)
        sink.stop()
        fixed = self.start_sink(port=sink.port)

        self.outbox.check("retry", message_id)
        # Well before the next planned attempt.
        message = self.outbox.wait_state(message_id, "sent", timeout=15)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        self.assertEqual(message.get("attempts"), 2, message)
        [received] = fixed.wait_messages(1)
        self.assertEqual(received.recipients, ["bob@example.org"])

    def test_flush_delivers_deferred_message(self):
        message, message_id, _, sink = self.attempt("-r", "MAIL")
        self.assertEqual(message["state"], "deferred", message)
        sink.stop()
        fixed = self.start_sink(port=sink.port)

        self.outbox.check("flush")
        self.outbox.wait_state(message_id, "sent", timeout=15)
        fixed.wait_messages(1)

    def test_failed_message_stays_until_retried(self):
        message, message_id, _, sink = self.attempt("-f", "RCPT", settings={"retry-first": 1})
        self.assertEqual(message["state"], "failed", message)
        # Even with a one-second backoff, a failed message is not retried.
        time.sleep(3)
        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "failed", message)
        self.assertEqual(message.get("attempts"), 1, message)
        self.assertInSpool(message_id)
        sink.stop()
        fixed = self.start_sink(port=sink.port)

        self.outbox.check("retry", message_id)
        message = self.outbox.wait_state(message_id, "sent", timeout=15)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        fixed.wait_messages(1)

    def test_failed_message_stays_until_cancelled(self):
        message, message_id, _, _ = self.attempt("-f", "MAIL")
        self.assertEqual(message["state"], "failed", message)
        self.assertInSpool(message_id)

        self.outbox.check("cancel", message_id)
        self.assertNotIn(message_id, spool_ids(self.outbox))
        self.assertNotEqual(self.outbox.run("show", message_id).rc, 0)

    # Backoff -------------------------------------------------------------

    def test_backoff_doubles_up_to_retry_max(self):
        sink = self.start_sink("-r", "MAIL")
        account = self.add_engine_account(sink.url(),
                                          settings={"retry-first": 1, "retry-max": 4})
        message_id = self.submit(account)
        self.addCleanup(self.outbox.run, "cancel", message_id)
        deferrals = {}  # attempts -> (time seen deferred, message)

        def record():
            message = self.outbox.show(message_id)
            attempts = message.get("attempts", 0)
            if message["state"] == "deferred" and attempts not in deferrals:
                deferrals[attempts] = (time.time(), message)
            return len(deferrals) >= 5
        wait_until(record, 40, "five deferrals", interval=0.05)

        # Polling under load may miss a short deferral: judge each one seen by
        # its own attempt number (1 s, 2 s, then 4 s for every later one).
        def delay(attempts):
            return min(2 ** (attempts - 1), 4)
        self.assertGreaterEqual(max(deferrals), 5, deferrals)
        for attempts, (seen, message) in deferrals.items():
            self.assertNextAttemptIn(message, delay(attempts), seen, slack=1.5)
        seen_attempts = sorted(deferrals)
        for a, b in zip(seen_attempts, seen_attempts[1:]):
            if b != a + 1:
                continue
            gap = deferrals[b][0] - deferrals[a][0]
            self.assertGreaterEqual(gap, delay(a) - 0.5, f"retry {a} came early: {deferrals}")
            self.assertLessEqual(gap, delay(a) + 1.5, f"retry {a} came late: {deferrals}")
        self.assertTrue(any(b == a + 1 for a, b in zip(seen_attempts, seen_attempts[1:])),
                        f"no two consecutive deferrals seen: {seen_attempts}")

    def test_default_first_retry_after_a_minute(self):
        port = free_port()  # nothing listens there
        account = self.add_engine_account(f"smtp+insecure://127.0.0.1:{port}")
        message_id = self.submit(account)
        message = wait_attempted(self.outbox, message_id)

        self.assertEqual(message["state"], "deferred", message)
        self.assertRecipientStates(message, {"bob@example.org": "deferred"})
        self.assertTrue(message["recipients"][0].get("reply"), message)
        self.assertNextAttemptIn(message, 60, time.time())
        self.assertInSpool(message_id)

    # Silence and independence -------------------------------------------

    def test_server_that_never_answers_times_out(self):
        silent = self.start_silent()
        account = self.add_engine_account(silent.url(),
                                          settings={"timeout": 2, "retry-first": RETRY_FIRST})
        started = time.time()
        message_id = self.submit(account)
        message = wait_attempted(self.outbox, message_id, timeout=30)
        elapsed = time.time() - started

        self.assertEqual(message["state"], "deferred", message)
        self.assertRecipientStates(message, {"bob@example.org": "deferred"})
        self.assertTrue(message["recipients"][0].get("reply"), f"no reason given: {message}")
        self.assertGreaterEqual(elapsed, 1.5, f"gave up before the timeout: {message}")
        self.assertLess(elapsed, 10, f"the 2 s timeout was not applied: {message}")
        self.assertNextAttemptIn(message, RETRY_FIRST, time.time())
        self.assertInSpool(message_id)

    def test_hanging_server_does_not_delay_another_account(self):
        silent = self.start_silent()
        hanging = self.add_engine_account(silent.url(), name="hanging",
                                          settings={"timeout": 30})
        sink = self.start_sink()
        working = self.add_engine_account(sink.url(), name="working")
        hanging_id = self.submit(hanging)
        self.addCleanup(self.outbox.run, "cancel", hanging_id)
        wait_until(lambda: self.outbox.show(hanging_id)["state"] == "sending", 10,
                   "the hanging account to be sending")

        working_id = self.submit(working)
        self.outbox.wait_state(working_id, "sent", timeout=5)
        self.assertEqual(self.outbox.show(hanging_id)["state"], "sending")
        sink.wait_messages(1)

    def test_gives_up_after_give_up_after(self):
        sink = self.start_sink("-r", "MAIL")
        account = self.add_engine_account(
            sink.url(), settings={"retry-first": 1, "retry-max": 2, "give-up-after": 10})
        message_id = self.submit(account)
        message = self.outbox.wait_state(message_id, "failed", timeout=25)

        self.assertRecipientStates(message, {"bob@example.org": "failed"})
        reply = message["recipients"][0].get("reply", "")
        self.assertIn("gave up", reply, message)
        self.assertIn("450", reply, message)
        self.assertGreaterEqual(message["attempts"], 3, message)
        self.assertNotIn("next_attempt", message)
        self.assertInSpool(message_id)

    def test_max_connections_per_account(self):
        silent = self.start_silent()
        account = self.add_engine_account(silent.url(), settings={"timeout": 30})
        ids = [self.submit(account) for _ in range(3)]
        for message_id in ids:
            self.addCleanup(self.outbox.run, "cancel", message_id)

        def states():
            found = sorted(self.outbox.show(i)["state"] for i in ids)
            return found if found == ["queued", "sending", "sending"] else None
        # Two connections (the default) hang at the greeting; the third waits.
        wait_until(states, 10, "two messages sending and one queued")
        time.sleep(1)
        self.assertEqual(sorted(self.outbox.show(i)["state"] for i in ids),
                         ["queued", "sending", "sending"])

    # 535 -----------------------------------------------------------------

    def fail_authentication(self):
        server = self.start_aiosmtpd(auth=True, auth_without_tls=True)
        account = self.add_engine_account(
            f"smtp+insecure://{AioSmtpServer.USER}@127.0.0.1:{server.port}",
            password="not the password", settings={"retry-first": 1})
        message_id = self.submit(account)
        message = wait_attempted(self.outbox, message_id)
        return server, account, message_id, message

    def test_auth_535_defers_and_marks_account(self):
        server, account, message_id, message = self.fail_authentication()

        self.assertEqual(message["state"], "deferred", message)
        self.assertRecipientStates(message, {"bob@example.org": "deferred"})
        self.assertEqual(message["recipients"][0].get("reply_code"), 535, message)
        self.assertNotIn("next_attempt", message)
        self.assertIs(account_settings(account).get("needs-password"), True)
        # No retry loop against the server, even with a 1 s backoff.
        time.sleep(4)
        self.assertEqual(len(server.events("auth")), 1, server.events("auth"))
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")
        self.assertInSpool(message_id)

    def test_set_password_after_535_delivers(self):
        server, account, message_id, message = self.fail_authentication()
        self.assertEqual(message["state"], "deferred", message)

        set_password(account, AioSmtpServer.PASSWORD)
        message = self.outbox.wait_state(message_id, "sent", timeout=15)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        self.assertIs(account_settings(account).get("needs-password"), False)
        server.wait_messages(1)
        self.assertEqual([a["success"] for a in server.events("auth")], [False, True])

    def test_retry_after_535_tries_again(self):
        server, _, message_id, message = self.fail_authentication()
        self.assertEqual(message["state"], "deferred", message)

        self.outbox.check("retry", message_id)
        wait_until(lambda: len(server.events("auth")) >= 2, 15, "a second AUTH")
        message = wait_until(lambda: (m := self.outbox.show(message_id))["state"] != "sending"
                             and m.get("attempts") == 2 and m, 15, "the second attempt")
        self.assertEqual(message["state"], "deferred", message)
        self.assertNotIn("next_attempt", message)

    def test_no_usable_mechanism_is_not_a_wrong_password(self):
        server = self.start_aiosmtpd(auth=True, auth_without_tls=True)
        account = self.add_engine_account(
            f"smtp+insecure://{AioSmtpServer.USER}@127.0.0.1:{server.port}",
            password=AioSmtpServer.PASSWORD, settings={"auth": "SCRAM-SHA-256"})
        message_id = self.submit(account)
        message = wait_attempted(self.outbox, message_id)

        self.assertEqual(message["state"], "deferred", message)
        self.assertIn("this account is set to use SCRAM-SHA-256", message["last_reply"])
        self.assertIn("nothing was sent to sign in", message["last_reply"])
        self.assertNotIn("was refused", message["last_reply"])
        self.assertNotIn("set the password", message["last_reply"])
        state = account_settings(account)
        self.assertEqual(state.get("state"), "needs-attention", state)
        self.assertIs(state.get("needs-password"), False, state)
        self.assertEqual(server.events("auth"), [])


def _fault_test(sink_flags, state, reply, unknown_outcome=False):
    def test(self):
        self.check_fault(sink_flags, state, reply, unknown_outcome)
    return test


COMMANDS = {"connect": "CONNECT", "ehlo": "EHLO", "mail": "MAIL", "rcpt": "RCPT",
            "data": "DATA", "dot": "."}
for _name, _command in COMMANDS.items():
    # A client may fall back to HELO after a 5xx to EHLO (RFC 5321 4.1.4):
    # a server that refuses the greeting refuses both.
    _hard = "EHLO,HELO" if _command == "EHLO" else _command
    setattr(FaultsTest, f"test_{_name}_4xx", _fault_test(("-r", _command), "deferred", SOFT))
    # Before a message is handed over (CONNECT, EHLO) a 5xx is the
    # account's: deferred, as Postfix does with smtp_skip_5xx_greeting.
    _hard_state = "deferred" if _command in ("CONNECT", "EHLO") else "failed"
    setattr(FaultsTest, f"test_{_name}_5xx", _fault_test(("-f", _hard), _hard_state, HARD))
    setattr(FaultsTest, f"test_{_name}_421", _fault_test(("-Q", _command), "deferred", CLOSING))
    # Only a connection lost after the final dot leaves the outcome unknown.
    setattr(FaultsTest, f"test_{_name}_dropped",
            _fault_test(("-q", _command), "deferred", NO_REPLY,
                        unknown_outcome=_command == "."))


if __name__ == "__main__":
    outboxtest.main()
