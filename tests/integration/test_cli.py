# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""The `outbox` command: exit codes (sysexits.h), JSON output, accounts and
the queue commands."""

import json
import os
import pty
import re
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


def account_entry(outbox, name):
    [entry] = [a for a in outbox.json("account", "list", "--json")["accounts"]
               if a["name"] == name]
    return entry


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

    def test_account_aliases_shown_and_removed(self):
        self.assertTrue(self.pending_account)  # stays the first, the default
        name = self.account_name()
        self.outbox.check("account", "add", name, "--from", "al@example.org",
                          "--smtp", "smtp+insecure://127.0.0.1:2525",
                          "--alias", "al.bo@example.org", "--alias", "*@al.example.net")
        shown = self.outbox.check("account", "show", name).stdout
        self.assertRegex(shown, r"(?m)^Aliases: +al\.bo@example\.org \*@al\.example\.net$")
        self.assertEqual(account_entry(self.outbox, name)["aliases"],
                         ["al.bo@example.org", "*@al.example.net"])
        self.outbox.check("account", "update", name, "--alias", "")
        self.assertNotIn("aliases", account_entry(self.outbox, name))
        self.outbox.check("account", "update", name, "--alias", "x@example.org")
        self.outbox.check("account", "update", name, "--no-aliases")
        self.assertNotIn("aliases", account_entry(self.outbox, name))

    def test_bad_alias_is_refused_with_the_form_to_use(self):
        self.assertTrue(self.pending_account)  # stays the first, the default
        name = self.account_name()
        for alias in ("sales*@example.org", "*@", "no-at-sign"):
            result = self.outbox.run("account", "add", name, "--from", "bad@example.org",
                                     "--smtp", "smtp+insecure://127.0.0.1:2525",
                                     "--alias", alias)
            self.assertExit(result, EX_CONFIG)
            self.assertIn(alias, result.stderr)
            self.assertNotIn(name, [a["name"] for a in self.outbox.json(
                "account", "list", "--json")["accounts"]])
        result = self.outbox.run("account", "add", name, "--from", "bad@example.org",
                                 "--smtp", "smtp+insecure://127.0.0.1:2525",
                                 "--alias", "a@example.org", "--no-aliases")
        self.assertExit(result, EX_USAGE)

    def test_shared_from_warns_which_account_sends(self):
        self.assertTrue(self.pending_account)  # the default is another account
        name = self.account_name()
        smtp = "smtp+insecure://127.0.0.1:2525"
        self.outbox.check("account", "add", f"{name}-a", "--from", "shared@example.org",
                          "--smtp", smtp)
        second = self.outbox.check("account", "add", f"{name}-b", "--from",
                                   "shared@example.org", "--smtp", smtp)
        self.assertIn(f"shared@example.org is also an address of account {name}-a; "
                      f"mail from it goes through account {name}-a", second.stderr)
        third = self.outbox.check("account", "add", f"{name}-c", "--from", "c@example.org",
                                  "--alias", "shared@EXAMPLE.org", "--smtp", smtp, "--default")
        self.assertIn(f"account {name}-a, {name}-b; mail from it goes through account "
                      f"{name}-c", third.stderr)
        alone = self.outbox.check("account", "add", f"{name}-d", "--from", "d@example.org",
                                  "--smtp", smtp)
        self.assertEqual(alone.stderr, "")
        # Give the default back to the account the other tests expect.
        self.outbox.check("account", "update", self.pending_account, "--default")

    def test_account_show_gives_durations_in_words(self):
        self.assertTrue(self.pending_account)  # stays the first, the default
        name = self.account_name()
        self.outbox.check("account", "add", name, "--from", "slow@example.org",
                          "--smtp", "smtp+insecure://127.0.0.1:2525", "--timeout", "120",
                          "--retry-first", "90", "--retry-max", "3600",
                          "--give-up-after", "432000")
        shown = self.outbox.check("account", "show", name).stdout
        self.assertRegex(shown, r"(?m)^Command timeout: +2 min$")
        self.assertRegex(shown, r"(?m)^First retry after: +90 s$")
        self.assertRegex(shown, r"(?m)^Longest retry delay: +1 h$")
        self.assertRegex(shown, r"(?m)^Give up after: +5 days$")

    def test_status_shows_release_versions(self):
        version = self.outbox.check("--version").stdout.split()[-1]
        self.assertRegex(version, r"^\d+\.\d+\.\d+")
        status = self.outbox.check("status").stdout
        self.assertRegex(status, rf"(?m)^Daemon version: +{re.escape(version)} \(interface 1\)$")
        self.assertRegex(status, rf"(?m)^Client version: +{re.escape(version)}$")
        document = self.outbox.json("status", "--json")
        self.assertEqual(document["daemon_version"], version)
        self.assertEqual(document["client_version"], version)
        self.assertEqual(document["version"], 1)

    def deferred_with_long_names(self):
        """A deferred message whose From, recipient and reply are all
        longer than a narrow terminal could show."""
        self.assertTrue(self.pending_account)  # stays the first, the default
        sink = self.start_sink("-r", "RCPT")
        account = self.account_name()
        sender = "a-rather-long-sender-address@long.example.org"
        self.outbox.add_account(account, sender, sink.url())
        message = make_message([("From", sender),
                                ("To", "a-rather-long-recipient-address@long.example.org"),
                                ("Subject", "wide")])
        message_id = self.outbox.send(message, account=account)
        shown = self.outbox.wait_state(message_id, ("deferred",))
        self.assertGreater(len(shown["last_reply"]), 20, shown)
        return message_id, shown["last_reply"]

    def assertWholeAndAligned(self, output, message_id, reply):
        lines = output.splitlines()
        [header] = [line for line in lines if line.startswith("ID ")]
        [row] = [line for line in lines if line.startswith(message_id)]
        self.assertTrue(row.endswith(reply), f"the reply was cut:\n{output}")
        self.assertEqual(row.index(reply), header.index("LAST REPLY"),
                         f"the table is not aligned:\n{output}")
        self.assertNotIn("\u2026", row, output)

    def test_queue_in_a_pipe_prints_whole_values(self):
        message_id, reply = self.deferred_with_long_names()
        completed = subprocess.run([str(outboxtest.OUTBOX), "queue"], capture_output=True,
                                   text=True, timeout=60, env=dict(os.environ, COLUMNS="60"))
        self.assertEqual(completed.returncode, 0, completed)
        self.assertWholeAndAligned(completed.stdout, message_id, reply)

    def test_show_gives_relative_times_in_words(self):
        message_id, _ = self.deferred_with_long_names()
        shown = self.outbox.check("show", message_id).stdout
        self.assertRegex(shown, r"(?m)^Next attempt: +\S+ \S+ \(in \d+ (s|min)\)$")
        self.assertRegex(shown, r"(?m)^Created: +\S+ \S+ \((now|\d+ s ago)\)$")

    def run_on_terminal(self, *args):
        controller, terminal = pty.openpty()
        try:
            completed = subprocess.run([str(outboxtest.OUTBOX), *args], stdout=terminal,
                                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                       timeout=60, env=dict(os.environ, COLUMNS="60"))
            os.close(terminal)
            terminal = None
            output = b""
            while True:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the terminal's other end is closed
                    break
                if not chunk:
                    break
                output += chunk
        finally:
            if terminal is not None:
                os.close(terminal)
            os.close(controller)
        self.assertEqual(completed.returncode, 0, completed)
        return output.decode("utf-8").replace("\r\n", "\n")

    def test_queue_on_a_terminal_fits_unless_wide(self):
        message_id, reply = self.deferred_with_long_names()
        narrow = self.run_on_terminal("queue")
        for line in narrow.splitlines():
            self.assertLessEqual(len(line), 60, narrow)
        self.assertIn("\u2026", narrow)
        self.assertWholeAndAligned(self.run_on_terminal("queue", "--wide"), message_id, reply)



# Every command of the table in cli/outbox.c, with the positional arguments
# it takes: (usage line's arguments, least, most; None: no limit).
COMMANDS = {
    "send": ("[RCPT…] < MESSAGE", 0, None),
    "queue": ("", 0, 0),
    "show": ("ID", 1, 1),
    "cancel": ("ID…", 1, None),
    "hold": ("ID…", 1, None),
    "release": ("ID…", 1, None),
    "retry": ("ID…", 1, None),
    "flush": ("", 0, 0),
    "status": ("", 0, 0),
    "account add": ("NAME", 1, 1),
    "account update": ("NAME", 1, 1),
    "account authorize": ("NAME", 1, 1),
    "account list": ("", 0, 0),
    "account show": ("NAME", 1, 1),
    "account remove": ("NAME", 1, 1),
    "account test": ("NAME", 1, 1),
    "account discover": ("ADDRESS", 1, 1),
}


class CommandTableTest(OutboxTestCase):
    """The one option parser every command goes through: the same --help
    and the same usage errors (exit 64) for all."""

    def listed_commands(self, *group):
        result = self.outbox.run("help", *group)
        self.assertEqual(result.rc, 0, result)
        words = re.findall(r"^  (\S+) ", result.stdout.split("Commands:\n")[1], re.M)
        return [" ".join([*group, word]) for word in words]

    def test_table_is_what_help_lists(self):
        listed = self.listed_commands() + self.listed_commands("account")
        listed = [c for c in listed if c not in ("help", "account")]
        self.assertEqual(sorted(listed), sorted(COMMANDS))

    def test_every_help_prints_its_usage_line(self):
        for command, (parameters, _, _) in COMMANDS.items():
            with self.subTest(command=command):
                for args in ([*command.split(), "--help"], ["help", *command.split()]):
                    result = self.outbox.run(*args)
                    self.assertEqual(result.rc, 0, result)
                    usage = f"Usage:\n  outbox {command} [OPTION…] {parameters}".rstrip()
                    self.assertIn(usage + "\n", result.stdout)
                    self.assertEqual(result.stderr, "")

    def assertUsageError(self, result, command, message):
        self.assertEqual(result.rc, EX_USAGE, result)
        self.assertEqual(result.stderr, f"outbox: {message}; see outbox {command} --help\n")
        self.assertEqual(result.stdout, "")

    def test_too_few_arguments_is_the_same_usage_error(self):
        for command, (parameters, least, _) in COMMANDS.items():
            if least == 0:
                continue
            with self.subTest(command=command):
                what = parameters.rstrip("…")
                self.assertUsageError(self.outbox.run(*command.split()), command,
                                      f"missing {what}")

    def test_too_many_arguments_is_the_same_usage_error(self):
        for command, (_, _, most) in COMMANDS.items():
            if most is None:
                continue
            with self.subTest(command=command):
                args = [f"arg{i}" for i in range(most + 1)]
                self.assertUsageError(self.outbox.run(*command.split(), *args), command,
                                      f"unexpected argument “arg{most}”")

    def test_unknown_option_is_the_same_usage_error(self):
        for command in COMMANDS:
            with self.subTest(command=command):
                self.assertUsageError(self.outbox.run(*command.split(), "--no-such-option"),
                                      command, "Unknown option --no-such-option")

    def test_unknown_command_is_a_usage_error(self):
        for args, hint in ((["frobnicate"], "see outbox help"),
                           (["account", "frobnicate"], "see outbox help account")):
            with self.subTest(args=args):
                result = self.outbox.run(*args)
                self.assertEqual(result.rc, EX_USAGE, result)
                self.assertEqual(result.stderr,
                                 f"outbox: unknown command “frobnicate”; {hint}\n")


if __name__ == "__main__":
    outboxtest.main()
