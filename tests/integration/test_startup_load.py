# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Start-up with a big queue: outboxd answers while it still reads the
queue, and what it answers then is right.  SubmitData and Get (of any
message, read or not yet) are answered at once; List waits for the whole
queue and answers it whole; Cancel of a message not read yet waits and
then cancels it, and so does any Cancel that comes while a List waits.  A
SIGKILL during the load loses nothing, and the index a clean stop leaves
never brings back a message cancelled after it.

The load is made long by the size of the queue alone: tens of thousands of
held messages written straight into the spool (spoolfill.py), so that a
call made as soon as the daemon owns its name finds the load going on; the
tests check that it did (SubmitData answered before List)."""

import os
import pathlib
import re
import signal

import outboxtest
import spoolfill
from gi.repository import Gio, GLib
from outboxtest import (BUS_NAME, OBJECT_PATH, QUEUE_IFACE, Outbox, OutboxTestCase,
                        call_outbox, free_port, make_message, session_log_since,
                        session_log_size, start_daemon_with_args, wait_until)

ACCOUNT = "load"
SENDER = "alice@example.org"
FILLED = 40000
PAGE = 5000


def spool_dir():
    return os.path.join(os.environ["XDG_DATA_HOME"], "outbox")


def submit_parameters(subject):
    data = make_message([("From", SENDER), ("To", "bob@example.org"), ("Subject", subject)])
    options = {"account": GLib.Variant("s", ACCOUNT), "hold": GLib.Variant("b", True)}
    return GLib.Variant("(aya{sv})", (data, options))


class Calls:
    """Calls in flight on one connection; records the order of the answers."""

    def __init__(self):
        self.bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        self.answers = {}
        self.order = []

    def start(self, name, method, parameters):
        def done(connection, result, _):
            try:
                self.answers[name] = connection.call_finish(result).unpack()
            except GLib.Error as error:
                self.answers[name] = error
            self.order.append(name)
        self.bus.call(BUS_NAME, OBJECT_PATH, QUEUE_IFACE, method, parameters, None,
                      Gio.DBusCallFlags.NO_AUTO_START, 120000, None, done, None)

    def wait(self, *names):
        context = GLib.MainContext.default()

        def answered():
            while context.iteration(False):
                pass
            return all(n in self.answers for n in names)
        wait_until(answered, 120, f"answers to {names[:3]}", interval=0.001)

    def answer(self, name):
        value = self.answers[name]
        if isinstance(value, GLib.Error):
            raise AssertionError(f"{name} failed: {value.message}")
        return value


def list_all():
    """Every pending message, oldest first, in pages."""
    messages, after = [], None
    while True:
        options = {"limit": GLib.Variant("u", PAGE)}
        if after is not None:
            options["after"] = GLib.Variant("(xs)", (after["created"], after["id"]))
        [page] = call_outbox(QUEUE_IFACE, "List", GLib.Variant("(a{sv})", (options,)),
                             "(aa{sv})", timeout=120)
        messages += page
        if len(page) < PAGE:
            return messages
        after = page[-1]


class StartupLoadTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        outbox = Outbox()
        outbox.add_account(ACCOUNT, SENDER, f"smtp+insecure://127.0.0.1:{free_port()}")
        outbox.stop_daemon()
        cls.filled = spoolfill.fill(spool_dir(), FILLED, ACCOUNT)
        cls.cancelled = set()

    def restart(self):
        self.outbox.stop_daemon()
        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)

    def assertListed(self, listed_ids, expected, **named):
        """The listing holds exactly the expected ids; when not, says of
        each id in only one of the two what it is (one of named, or a
        filled message) and what its files and Get say now."""
        listed = set(listed_ids)
        if listed == expected:
            return
        names = {v: k for k, v in named.items()}
        queue = pathlib.Path(spool_dir()) / "queue"
        lines = []
        for side, ids in (("missing from the listing", expected - listed),
                          ("listed but not expected", listed - expected)):
            for message_id in sorted(ids):
                files = sorted(p.name for p in queue.glob(message_id + ".*"))
                try:
                    [got] = call_outbox(QUEUE_IFACE, "Get", GLib.Variant("(s)", (message_id,)))
                    now = got["state"]
                except GLib.Error as error:
                    now = error.message
                kind = names.get(message_id, "filled" if message_id in self.filled else "other")
                lines.append(f"{side}: {message_id} ({kind}; files {files}; Get: {now})")
        self.fail(f"{len(listed)} listed, {len(expected)} expected:\n" + "\n".join(lines[:20]))

    def list_and_submit(self, limit, subject, too_late):
        """A List (limit messages; 0: all) then a SubmitData, during the
        load: the SubmitData answered while the List still waits.  Returns
        the calls and the submitted id."""
        calls = Calls()
        calls.start("list", "List", GLib.Variant("(a{sv})", ({"limit": GLib.Variant("u", limit)},)))
        calls.start("submit", "SubmitData", submit_parameters(subject))
        calls.wait("submit")
        self.assertNotIn("list", calls.order, too_late)
        [submitted] = calls.answer("submit")
        return calls, submitted

    def expected_ids(self, extra=()):
        return (set(self.filled) | set(extra)) - self.cancelled

    def test_1_calls_during_the_load_are_answered_right(self):
        self.outbox.stop_daemon()
        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        calls = Calls()
        doomed = self.filled[-1]
        asked = self.filled[:-1:400]
        calls.start("list", "List", GLib.Variant("(a{sv})", ({"limit": GLib.Variant("u", 0)},)))
        calls.start("cancel", "Cancel", GLib.Variant("(s)", (doomed,)))
        calls.start("submit", "SubmitData", submit_parameters("during the load"))
        for message_id in asked:
            calls.start(f"get {message_id}", "Get", GLib.Variant("(s)", (message_id,)))
        calls.start("get unknown", "Get", GLib.Variant("(s)", ("0000000000000000000",)))
        calls.wait("list", "cancel", "submit", "get unknown", *(f"get {i}" for i in asked))

        self.assertLess(calls.order.index("submit"), calls.order.index("list"),
                        f"SubmitData was not answered before the load ended: {calls.order[:5]}")
        for message_id in asked:
            self.assertLess(calls.order.index(f"get {message_id}"), calls.order.index("list"))
            [message] = calls.answer(f"get {message_id}")
            self.assertEqual((message["id"], message["state"]), (message_id, "held"))
        self.assertIsInstance(calls.answers["get unknown"], GLib.Error)
        self.assertIn("NoSuchMessage", calls.answers["get unknown"].message)
        calls.answer("cancel")
        self.cancelled.add(doomed)
        [submitted] = calls.answer("submit")
        self.__class__.submitted = submitted

        [listed] = calls.answer("list")
        listed_ids = [m["id"] for m in listed]
        # The List was asked for before the Cancel: it waits, and is answered
        # before it too.
        self.assertLess(calls.order.index("list"), calls.order.index("cancel"))
        self.assertListed(listed_ids, self.expected_ids([submitted]) | {doomed},
                          submitted=submitted, doomed=doomed)
        self.assertEqual(len(listed_ids), len(set(listed_ids)), "a message was listed twice")
        self.assertEqual(listed_ids, [m["id"] for m in sorted(listed, key=lambda m: (m["created"], m["id"]))])
        with self.assertRaisesRegex(GLib.Error, "NoSuchMessage"):
            call_outbox(QUEUE_IFACE, "Get", GLib.Variant("(s)", (doomed,)))

    def test_1b_a_change_waits_behind_a_listing_asked_for_first(self):
        # A message submitted during the load is in memory at once, so a
        # Cancel of it need not wait for the load; but a List asked for
        # before the Cancel waits, and must not show the queue after it.
        # (CI once saw a Cancel overtake the List this way.)
        self.restart()
        calls, submitted = self.list_and_submit(0, "cancelled behind a List",
                                                "the load was over before the Cancel")
        calls.start("cancel", "Cancel", GLib.Variant("(s)", (submitted,)))
        calls.wait("list", "cancel")
        self.assertEqual(calls.order, ["submit", "list", "cancel"])
        calls.answer("cancel")
        [listed] = calls.answer("list")
        self.assertIn(submitted, [m["id"] for m in listed])
        with self.assertRaisesRegex(GLib.Error, "NoSuchMessage"):
            call_outbox(QUEUE_IFACE, "Get", GLib.Variant("(s)", (submitted,)))

    def test_2_a_kill_during_the_load_loses_nothing(self):
        # A clean stop first: this start reads the index it left.
        self.outbox.stop_daemon()
        self.outbox.start_daemon()
        calls, acknowledged = self.list_and_submit(1, "before the kill",
                                                   "the load was over before the kill")
        os.kill(self.outbox.daemon.pid, signal.SIGKILL)
        self.outbox.daemon.wait()
        self.outbox.daemon = None
        wait_until(lambda: self.outbox.daemon_pid() is None, 20, "the bus name to be released")

        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        listed = list_all()
        self.assertEqual({m["id"] for m in listed},
                         self.expected_ids([getattr(self, "submitted", None), acknowledged]) - {None})
        self.assertEqual({m["state"] for m in listed}, {"held"})

    def test_3_the_index_never_brings_back_a_cancelled_message(self):
        self.outbox.stop_daemon()  # leaves an index of the whole queue
        self.outbox.start_daemon()
        victim = self.filled[len(self.filled) // 2]
        list_all()  # loaded
        call_outbox(QUEUE_IFACE, "Cancel", GLib.Variant("(s)", (victim,)), timeout=60)
        self.cancelled.add(victim)
        os.kill(self.outbox.daemon.pid, signal.SIGKILL)
        self.outbox.daemon.wait()
        self.outbox.daemon = None
        wait_until(lambda: self.outbox.daemon_pid() is None, 20, "the bus name to be released")

        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        ids = {m["id"] for m in list_all()}
        self.assertNotIn(victim, ids, "a cancelled message came back after a kill")
        self.assertTrue(self.expected_ids() <= ids, "a message was lost")

    def test_4_a_start_after_a_kill_reads_the_checkpoint(self):
        """No clean stop, no index: the load reads every file, and writes
        an index after it (a checkpoint).  After a kill, the next start
        takes from it every message whose files did not change since, and
        reads the one that did from its files."""
        self.outbox.stop_daemon()
        index = pathlib.Path(spool_dir()) / "index"
        index.unlink()
        self.outbox.start_daemon()
        list_all()  # loaded
        wait_until(index.exists, 60, "the checkpoint index after the load")
        victim = self.filled[len(self.filled) // 3]
        call_outbox(QUEUE_IFACE, "Cancel", GLib.Variant("(s)", (victim,)), timeout=60)
        self.cancelled.add(victim)
        os.kill(self.outbox.daemon.pid, signal.SIGKILL)
        self.outbox.daemon.wait()
        self.outbox.daemon = None
        wait_until(lambda: self.outbox.daemon_pid() is None, 20, "the bus name to be released")

        log_start = session_log_size()
        start_daemon_with_args(self.outbox, extra_env={"G_MESSAGES_DEBUG": "outbox"})
        self.addCleanup(self.outbox.stop_daemon)
        ids = {m["id"] for m in list_all()}
        self.assertNotIn(victim, ids, "a cancelled message came back after a kill")
        self.assertTrue(self.expected_ids() <= ids, "a message was lost")
        loaded = re.search(r"Queue loaded: (\d+) messages, (\d+) of them from the index",
                           session_log_since(log_start))
        self.assertIsNotNone(loaded, "no load line in the log")
        total, from_index = int(loaded.group(1)), int(loaded.group(2))
        self.assertEqual(total, len(ids))
        # Only what changed after the checkpoint came from the files.
        self.assertGreaterEqual(from_index, total - 5, loaded.group(0))


if __name__ == "__main__":
    outboxtest.main()
