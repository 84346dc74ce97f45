# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Undo send: a message with a delay (the account's send-delay, or the
Submit option `delay`) is scheduled for submission time + delay; Cancel
within that window removes it before any connection is made, and one not
cancelled reaches the server after the delay, not before."""

import os
import tempfile
import time

from gi.repository import GLib

import outboxtest
from outboxtest import (QUEUE_IFACE, EngineTestCase, call_outbox_with_fds, dbus_error_of,
                        make_message, parse_time, sendmail, update_account)

DELAY = 5
EX_USAGE = 64


class UndoSendTest(EngineTestCase):
    def message(self, sender=EngineTestCase.SENDER):
        return make_message([("From", sender), ("To", "bob@example.org"),
                             ("Subject", self.id().rsplit(".", 1)[-1])])

    def submit_dbus(self, options):
        """Queue.Submit of a small message with options (which name the
        account: every test's account has the same address); returns the id."""
        with tempfile.TemporaryFile() as file:
            file.write(self.message())
            file.seek(0)
            [message_id] = call_outbox_with_fds(
                QUEUE_IFACE, "Submit", GLib.Variant("(ha{sv})", (0, options)),
                [file.fileno()], "(s)")
        return message_id

    def assertScheduledFor(self, message_id, submitted, delay):
        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "scheduled", message)
        send_at = parse_time(message["send_at"])
        self.assertGreaterEqual(send_at, int(submitted) + delay, message)
        return send_at

    def assertCancelUndoes(self, sink, message_id):
        time.sleep(1)
        self.assertEqual(self.outbox.show(message_id)["state"], "scheduled")
        self.outbox.check("cancel", message_id)
        self.assertNotEqual(self.outbox.run("show", message_id, "--json").rc, 0)
        # Past the delay, with room: nothing reached the server.
        time.sleep(DELAY + 2)
        self.assertEqual(sink.dump_files(), [], "a cancelled message was sent")
        self.assertNotIn(message_id, outboxtest.spool_ids(self.outbox))

    def assertArrivesAfter(self, sink, message_id, send_at):
        message = self.outbox.wait_state(message_id, "sent", timeout=DELAY + 30)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        sink.wait_messages(1)
        [dump] = sink.dump_files()
        # A lower bound only: the sink's file was written at delivery.
        self.assertGreaterEqual(os.stat(dump).st_mtime, send_at - 0.01, "sent before its time")

    def test_account_send_delay_cancelled_is_never_sent(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url(), settings={"send-delay": DELAY})
        submitted = time.time()
        result = self.outbox.check("send", "-a", account, input=self.message())
        message_id = result.stdout.strip()
        self.assertEqual(result.stdout, message_id + "\n", result)
        self.assertRegex(result.stderr,
                         rf"^Sending in [0-9] s; outbox cancel {message_id} undoes it\n$")
        self.assertScheduledFor(message_id, submitted, DELAY)
        self.assertCancelUndoes(sink, message_id)

    def test_account_send_delay_not_cancelled_arrives_after_it(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url(), settings={"send-delay": DELAY})
        submitted = time.time()
        message_id = self.submit(account)
        send_at = self.assertScheduledFor(message_id, submitted, DELAY)
        self.assertArrivesAfter(sink, message_id, send_at)

    def test_send_delay_shown_and_zero_means_at_once(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        self.outbox.check("account", "update", account, "--send-delay", "10")
        self.assertEqual(outboxtest.account_settings(account).get("send-delay"), 10)
        self.assertIn("10 s", self.outbox.check("account", "show", account).stdout)
        # --delay 0 sends at once whatever the account says.
        result = self.outbox.check("send", "-a", account, "--delay", "0", input=self.message())
        self.assertEqual(result.stderr, "", result)
        self.outbox.wait_state(result.stdout.strip(), "sent", timeout=30)

    def test_submit_option_delay(self):
        sink = self.start_sink()
        account = GLib.Variant("s", self.add_engine_account(sink.url()))
        submitted = time.time()
        cancelled = self.submit_dbus({"account": account, "delay": GLib.Variant("u", DELAY)})
        kept = self.submit_dbus({"account": account, "delay": GLib.Variant("u", DELAY)})
        send_at = self.assertScheduledFor(kept, submitted, DELAY)
        self.assertScheduledFor(cancelled, submitted, DELAY)
        self.outbox.check("cancel", cancelled)
        self.assertArrivesAfter(sink, kept, send_at)
        time.sleep(1)
        self.assertEqual(len(sink.messages()), 1, "the cancelled one was sent too")

    def test_cli_delay_on_account_without_send_delay(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        submitted = time.time()
        result = self.outbox.check("send", "-a", account, "--delay", str(DELAY),
                                   input=self.message())
        message_id = result.stdout.strip()
        self.assertIn(f"outbox cancel {message_id} undoes it", result.stderr)
        self.assertScheduledFor(message_id, submitted, DELAY)
        # The queue and show say how long is left.
        self.assertRegex(self.outbox.check("queue").stdout,
                         rf"{message_id} .*scheduled, in [0-9] s")
        self.assertRegex(self.outbox.check("show", message_id).stdout,
                         r"Send at: +[-0-9]+ [:0-9]+ \(in [0-9] s\)")
        self.assertCancelUndoes(sink, message_id)

    def test_hold_wins_over_send_delay(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url(), settings={"send-delay": DELAY})
        result = self.outbox.check("send", "-a", account, "--hold", input=self.message())
        self.assertEqual(result.stderr, "", result)
        self.assertEqual(self.outbox.show(result.stdout.strip())["state"], "held")

    def test_sendmail_gets_the_account_send_delay(self):
        sink = self.start_sink()
        # An address of its own: outbox-sendmail picks the account by From.
        account = self.account_name()
        sender = f"{account}@example.org"
        self.outbox.add_account(account, sender, sink.url())
        update_account(account, {"send-delay": DELAY})
        before = set(outboxtest.spool_ids(self.outbox))
        submitted = time.time()
        result = sendmail("-t", "-oi", input=self.message(sender))
        self.assertEqual(result.rc, 0, result)
        [message_id] = set(outboxtest.spool_ids(self.outbox)) - before
        message = self.outbox.show(message_id)
        self.assertEqual(message["account"], account, message)
        send_at = self.assertScheduledFor(message_id, submitted, DELAY)
        self.assertArrivesAfter(sink, message_id, send_at)

    def test_bad_values_refused(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        account_option = GLib.Variant("s", account)
        before = outboxtest.spool_ids(self.outbox)
        for args, words in ((["--delay", "-1"], "0 to 86400"),
                            (["--delay", "999999"], "0 to 86400"),
                            (["--delay", "5", "--at", "+1h"], "--delay and --at")):
            result = self.outbox.run("send", "-a", account, *args, input=self.message())
            self.assertEqual(result.rc, EX_USAGE, result)
            self.assertIn(words, result.stderr, result)
            self.assertEqual(result.stdout, "", result)
        result = self.outbox.run("account", "update", account, "--send-delay", "999999")
        self.assertNotEqual(result.rc, 0, result)
        self.assertIn("send-delay", result.stderr, result)
        self.assertIn("between 1 and 86400, or 0 for its default (0)", result.stderr, result)

        for options, words in (({"delay": GLib.Variant("u", 86401)}, "at most 86400"),
                               ({"delay": GLib.Variant("u", 5),
                                 "send-at": GLib.Variant("x", int(time.time()) + 60)},
                                "exclude each other"),
                               ({"delay": GLib.Variant("i", 5)}, "delay")):
            options["account"] = account_option
            name, text = dbus_error_of(self.submit_dbus, options)
            self.assertTrue(name.endswith(".InvalidArgs"), f"{name}: {text}")
            self.assertIn(words, text)
        self.assertEqual(outboxtest.spool_ids(self.outbox), before, "a refused one was queued")
        self.assertEqual(sink.dump_files(), [])


if __name__ == "__main__":
    outboxtest.main()
