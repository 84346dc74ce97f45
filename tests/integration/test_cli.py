# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""The `outbox` command: exit codes (sysexits.h), JSON output, accounts and
the queue commands."""

import json
import subprocess

import outboxtest
from outboxtest import Outbox, OutboxTestCase, free_port, make_message

EX_USAGE = 64
EX_DATAERR = 65
EX_NOUSER = 67
EX_UNAVAILABLE = 69
EX_CONFIG = 78

SENDER = "alice@example.org"
MESSAGE = make_message([("From", SENDER), ("To", "bob@example.org"),
                        ("Subject", "cli")])


class CliTest(OutboxTestCase):
    pending_account_added = False

    @property
    def pending_account(self):
        """An account whose server never answers: its messages stay pending.
        Added on first use, so it is the first account of the session."""
        if not CliTest.pending_account_added:
            Outbox().add_account("pending", SENDER,
                                 f"smtp+insecure://127.0.0.1:{free_port()}")
            CliTest.pending_account_added = True
        return "pending"

    def assertExit(self, result, code):
        self.assertEqual(result.rc, code, result)
        self.assertNotEqual(result.stderr.strip(), "", f"no explanation: {result!r}")

    def test_unknown_option_is_usage_error(self):
        self.assertExit(self.outbox.run("send", "--no-such-option"), EX_USAGE)

    def test_unknown_command_is_usage_error(self):
        self.assertExit(self.outbox.run("frobnicate"), EX_USAGE)

    def test_unknown_account_is_config_error(self):
        result = self.outbox.run("send", "-a", "no-such-account", "bob@example.org",
                                 input=MESSAGE)
        self.assertExit(result, EX_CONFIG)
        self.assertIn("no-such-account", result.stderr)

    def test_empty_message_is_data_error(self):
        result = self.outbox.run("send", "-a", self.pending_account, "bob@example.org",
                                 input=b"")
        self.assertExit(result, EX_DATAERR)

    def test_invalid_recipient_is_nouser(self):
        result = self.outbox.run("send", "-a", self.pending_account, "a b@c",
                                 input=MESSAGE)
        self.assertExit(result, EX_NOUSER)

    def test_account_list_json(self):
        first_account = self.pending_account
        name = self.account_name()
        self.outbox.add_account(name, "list@example.org", "smtp+insecure://127.0.0.1:2525")
        accounts = self.outbox.json("account", "list", "--json")["accounts"]
        [entry] = [a for a in accounts if a["name"] == name]
        self.assertEqual(entry["from"], "list@example.org")
        self.assertEqual(entry["smtp"], "smtp+insecure://127.0.0.1:2525")
        self.assertIs(entry["default"], False, "a later account became the default")
        defaults = [a["name"] for a in accounts if a["default"]]
        self.assertEqual(defaults, [first_account], "the first account is not the default")

    def test_account_show_and_remove(self):
        name = self.account_name()
        self.outbox.add_account(name, "gone@example.org", "smtp+insecure://127.0.0.1:2525")
        self.assertIn("gone@example.org", self.outbox.check("account", "show", name).stdout)
        self.outbox.check("account", "remove", name)
        accounts = self.outbox.json("account", "list", "--json")["accounts"]
        self.assertNotIn(name, [a["name"] for a in accounts])
        self.assertNotEqual(self.outbox.run("account", "show", name).rc, 0)

    def test_queue_json_lists_sent_message_with_all(self):
        sink = self.start_sink()
        account = self.account_name()
        self.outbox.add_account(account, SENDER, sink.url())
        message_id = self.outbox.send(MESSAGE, account=account)
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")

        pending = self.outbox.json("queue", "--json")["messages"]
        self.assertNotIn(message_id, [m["id"] for m in pending])
        everything = self.outbox.json("queue", "--all", "--json")["messages"]
        [entry] = [m for m in everything if m["id"] == message_id]
        self.assertEqual(entry["state"], "sent")
        self.assertEqual(entry.get("account"), account, entry)

    def test_show_json_describes_message(self):
        message_id = self.outbox.send(MESSAGE, account=self.pending_account)
        shown = self.outbox.show(message_id)
        self.assertEqual(shown["id"], message_id)
        self.assertIn(shown["state"], ("queued", "sending", "deferred"))
        self.assertEqual([r["address"] for r in shown["recipients"]], ["bob@example.org"])
        # Date and Message-ID were added.
        self.assertGreater(shown["size"], len(MESSAGE), shown)
        self.assertRegex(shown.get("message_id", ""), r"^<?[^<>@\s]+@[^<>@\s]+>?$", shown)

    def test_show_unknown_id_names_it(self):
        result = self.outbox.run("show", "nosuchid0123", "--json")
        self.assertNotEqual(result.rc, 0, result)
        self.assertIn("nosuchid0123", result.stderr)

    def test_cancel_removes_pending_message(self):
        message_id = self.outbox.send(MESSAGE, account=self.pending_account)
        self.outbox.wait_state(message_id, ("queued", "deferred"))
        self.outbox.check("cancel", message_id)
        self.assertNotEqual(self.outbox.run("show", message_id, "--json").rc, 0)
        everything = self.outbox.json("queue", "--all", "--json")["messages"]
        self.assertNotIn(message_id, [m["id"] for m in everything])

    def test_queue_json_prints_nothing_without_a_daemon(self):
        # A session bus of its own, where no outboxd can be started: the
        # listing fails at its first call, and no half document is printed.
        completed = subprocess.run(["dbus-run-session", "--", str(outboxtest.OUTBOX),
                                    "queue", "--json"], capture_output=True, text=True,
                                   timeout=60)
        self.assertEqual(completed.returncode, EX_UNAVAILABLE, completed)
        self.assertEqual(completed.stdout, "", completed)
        self.assertIn("not running", completed.stderr)

    def test_queue_json_lists_pending_message(self):
        message_id = self.outbox.send(MESSAGE, account=self.pending_account)
        document = json.loads(self.outbox.check("queue", "--json").stdout)
        [entry] = [m for m in document["messages"] if m["id"] == message_id]
        self.assertIn(entry["state"], ("queued", "sending", "deferred"))


if __name__ == "__main__":
    outboxtest.main()
