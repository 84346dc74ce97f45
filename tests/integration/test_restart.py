# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Messages queued while the server is away survive a daemon restart and
are delivered exactly once after it."""

import time

import outboxtest
from outboxtest import OutboxTestCase, free_port, make_message

SENDER = "alice@example.org"
PENDING = ("queued", "deferred")
COUNT = 3


class RestartTest(OutboxTestCase):
    def test_pending_messages_survive_restart_and_go_once(self):
        port = free_port()  # nothing listens there yet
        account = self.account_name()
        self.outbox.add_account(account, SENDER, f"smtp+insecure://127.0.0.1:{port}")
        ids = []
        for number in range(COUNT):
            message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                    ("Message-ID", f"<restart.{number}@example.org>"),
                                    ("Subject", f"restart {number}")])
            ids.append(self.outbox.send(message, account=account))
        self.assertEqual(len(set(ids)), COUNT, f"ids not unique: {ids}")
        for message_id in ids:
            self.outbox.wait_state(message_id, PENDING)

        first_pid = self.outbox.daemon_pid()
        self.assertIsNotNone(first_pid, "no daemon on the bus")
        self.outbox.stop_daemon()

        sink = self.start_sink(port=port)
        self.assertNotEqual(self.outbox.start_daemon(), first_pid)
        self.addCleanup(self.outbox.stop_daemon)
        for message_id in ids:
            self.assertIn(self.outbox.show(message_id)["state"], PENDING + ("sending", "sent"))
        self.outbox.check("flush")

        for message_id in ids:
            state = self.outbox.wait_final(message_id)
            self.assertEqual(state["state"], "sent", state)
        sink.wait_messages(COUNT)
        # Give a duplicate delivery the time to show up.
        time.sleep(1)
        received = sorted(m.headers("Message-ID")[0] for m in sink.messages())
        self.assertEqual(received, [f"<restart.{n}@example.org>" for n in range(COUNT)])


if __name__ == "__main__":
    outboxtest.main()
