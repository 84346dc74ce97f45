# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""security.md 14 and 24: one daemon owns the bus name and the spool, and a
failure is reported, never mailed back as a bounce."""

import os
import signal
import subprocess
import tempfile

import outboxtest
from outboxtest import (OutboxTestCase, make_message, process_exists,
                        run_daemon_expecting_exit, wait_until)


class SingleInstanceTest(OutboxTestCase):
    def setUp(self):
        super().setUp()
        # Each test starts from no daemon (an earlier one may be activated).
        self.outbox.stop_daemon()

    def test_second_daemon_on_the_bus_exits(self):
        first = self.outbox.start_daemon()
        status, stderr = run_daemon_expecting_exit()
        self.assertEqual(status, 1, stderr)
        self.assertIn("owned by another instance", stderr)
        self.assertIn("--replace", stderr)
        self.assertEqual(self.outbox.daemon_pid(), first)
        self.outbox.stop_daemon()

    def test_replace_takes_over(self):
        first = self.outbox.start_daemon()
        first_process = self.outbox.daemon
        outboxtest.start_daemon_with_args(self.outbox, ["--replace"])
        wait_until(lambda: self.outbox.daemon_pid() not in (None, first), 20,
                   "the new daemon to own the name")
        self.assertEqual(first_process.wait(20), 0)
        self.assertFalse(process_exists(first))
        self.outbox.stop_daemon()

    def test_daemon_on_another_bus_refuses_the_same_spool(self):
        self.outbox.start_daemon()
        with tempfile.TemporaryDirectory() as bus_dir:
            bus = subprocess.run(
                ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1",
                 f"--address=unix:tmpdir={bus_dir}"],
                capture_output=True, text=True, check=True)
            address, pid = bus.stdout.split()
            try:
                status, stderr = run_daemon_expecting_exit(
                    extra_env={"DBUS_SESSION_BUS_ADDRESS": address})
            finally:
                os.kill(int(pid), signal.SIGTERM)
        self.assertEqual(status, 1, stderr)
        self.assertIn("Another outboxd is using the spool", stderr)
        self.outbox.stop_daemon()

    def test_permanent_failure_is_not_mailed_back(self):
        sink = self.start_sink("-f", "RCPT")
        self.outbox.add_account("nobounce", "alice@example.org", sink.url())
        message_id = self.outbox.send(make_message([
            ("From", "alice@example.org"), ("To", "bob@example.org"), ("Subject", "doomed")]))
        message = self.outbox.wait_state(message_id, "failed")
        self.assertEqual(message["recipients"][0]["reply_code"], 500, message)
        # Nothing new in the queue (no bounce to the sender) and nothing at
        # the server beyond the refused transaction.
        queued = self.outbox.json("queue", "--all", "--json")["messages"]
        self.assertEqual([m["id"] for m in queued], [message_id])
        self.assertEqual(sink.messages(), [])


if __name__ == "__main__":
    outboxtest.main()
