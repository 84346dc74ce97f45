# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Send later and hold: a scheduled message goes out at its time, not
before, also when the daemon was stopped over that time; a held message
goes out only once released."""

import time

import outboxtest
from outboxtest import EngineTestCase, free_port, parse_time, wait_until

DELAY = 3


class ScheduleTest(EngineTestCase):
    def test_send_at_not_before_and_sent_after(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        submitted = time.time()
        message_id = self.submit(account, "--at", f"+{DELAY}s")

        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "scheduled", message)
        self.assertIn("send_at", message, message)
        send_at = parse_time(message["send_at"])
        self.assertGreaterEqual(send_at, int(submitted) + DELAY - 1, message)
        self.assertLessEqual(send_at, submitted + DELAY + 1, message)
        self.assertInSpool(message_id)

        wait_until(lambda: time.time() >= send_at - 0.5, DELAY + 2, "just before send-at")
        self.assertEqual(sink.dump_files(), [], "sent before its time")
        self.assertEqual(self.outbox.show(message_id)["state"], "scheduled")

        message = self.outbox.wait_state(message_id, "sent", timeout=DELAY + 10)
        received = time.time()
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        sink.wait_messages(1)
        self.assertGreaterEqual(received, send_at, "sent before its time")
        self.assertLess(received - send_at, 5, "sent late")
        time.sleep(1)
        self.assertEqual(len(sink.messages()), 1, "sent more than once")

    def test_send_at_across_daemon_restart(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        message_id = self.submit(account, "--at", f"+{DELAY}s")
        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "scheduled", message)
        send_at = parse_time(message["send_at"])

        self.outbox.stop_daemon()
        # Any `outbox` command would start the daemon by activation: wait
        # without one until the time has passed.
        time.sleep(max(0, send_at - time.time()) + 1.5)
        self.assertEqual(sink.dump_files(), [], "sent while the daemon was stopped")
        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)

        # No flush: the daemon sees by itself that the time has come.
        message = self.outbox.wait_state(message_id, "sent", timeout=10)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        sink.wait_messages(1)
        time.sleep(1)
        self.assertEqual(len(sink.messages()), 1, "sent more than once")

    def test_hold_then_release(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        message_id = self.submit(account, "--hold")

        self.assertEqual(self.outbox.show(message_id)["state"], "held")
        self.outbox.check("flush")
        time.sleep(2)
        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "held", message)
        self.assertEqual(sink.dump_files(), [], "a held message was sent")
        self.assertInSpool(message_id)

        self.outbox.check("release", message_id)
        message = self.outbox.wait_state(message_id, "sent", timeout=10)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        sink.wait_messages(1)

    def test_hold_pending_message_on_unreachable_server(self):
        port = free_port()  # nothing listens there yet
        account = self.add_engine_account(f"smtp+insecure://127.0.0.1:{port}",
                                          settings={"retry-first": 1})
        message_id = self.submit(account)
        self.outbox.wait_state(message_id, ("queued", "deferred"), timeout=10)

        self.outbox.check("hold", message_id)
        self.assertEqual(self.outbox.show(message_id)["state"], "held")
        sink = self.start_sink(port=port)
        self.outbox.check("flush")
        # Longer than the backoff: a held message is never retried.
        time.sleep(3)
        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "held", message)
        self.assertEqual(sink.dump_files(), [], "a held message was sent")
        self.assertInSpool(message_id)

        self.outbox.check("release", message_id)
        message = self.outbox.wait_state(message_id, "sent", timeout=10)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        sink.wait_messages(1)


if __name__ == "__main__":
    outboxtest.main()
