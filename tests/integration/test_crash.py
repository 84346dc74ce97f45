# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""The crash test (security.md 19-21): the daemon is killed with SIGKILL at
random moments and restarted each time.

Delivery: N held messages, some with two recipients, are released to
Postfix's smtp-sink and the daemon is killed K times while it drains them.
Every message must reach the sink intact at least once; a message may come
twice only across a kill (never twice within one daemon lifetime, never
again after the daemon said it was sent); in the end every message and
recipient is sent and nothing is quarantined.  A kill may cost one extra
copy per lane (max-connections): the message whose 250 came in but was not
yet on disk.  The test runs once with one lane, where that is the issue's
"no more duplicates than kills", and once with two (the default).

Submission: eight clients submit all the time while the daemon is killed
and restarted K times.  Every submission that was acknowledged must be in
the queue afterwards under its Message-ID and reach the sink intact;
calls that failed because the daemon died count for nothing.

OUTBOX_CRASH_MESSAGES, OUTBOX_CRASH_KILLS and OUTBOX_CRASH_SEED override
the sizes and the random seed (printed, so that a failure can be replayed).
The figures go to stderr."""

import collections
import hashlib
import os
import random
import re
import signal
import sys
import threading
import time

import outboxtest
from gi.repository import Gio, GLib
from outboxtest import (BUS_NAME, OBJECT_PATH, QUEUE_IFACE, EngineTestCase, sanitizers,
                        session_bus, spool_dir, wait_until)

SENDER = "alice@example.org"
CLIENTS = 8  # submissions in flight at once
# How a call fails when the daemon dies under it or is not running.
DAEMON_GONE = {"org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.ServiceUnknown",
               "org.freedesktop.DBus.Error.NameHasNoOwner"}
BODY_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789 ,-"
BODY_LINE = re.compile(rb"^crash-body sha256=([0-9a-f]{64}) lines=(\d+)$")


def setting(name, default):
    return int(os.environ.get(name, default))


# Both parts take about 30 s, with AddressSanitizer too.
MESSAGES = setting("OUTBOX_CRASH_MESSAGES", 500)
KILLS = setting("OUTBOX_CRASH_KILLS", 10)
# Generous: a healthy drain takes a fraction of it.
DRAIN_TIMEOUT = 60 + MESSAGES // 10
SEED = setting("OUTBOX_CRASH_SEED", int.from_bytes(os.urandom(4), "big"))


def report(text):
    print(f"crash: {text}", file=sys.stderr, flush=True)


def dbus_call(method, parameters=None, reply_type=None, timeout=30):
    """A Queue method call that never starts a daemon by bus activation:
    only the test starts daemons, so that it knows which one it kills."""
    reply = session_bus().call_sync(
        BUS_NAME, OBJECT_PATH, QUEUE_IFACE, method, parameters,
        GLib.VariantType(reply_type) if reply_type else None,
        Gio.DBusCallFlags.NO_AUTO_START, timeout * 1000, None)
    return reply.unpack() if reply is not None else None


def list_queue():
    [messages] = dbus_call("List", GLib.Variant("(a{sv})", ({"all": GLib.Variant("b", True)},)),
                           "(aa{sv})")
    return messages


def make_body(rng, large):
    """Body lines whose first line carries the SHA-256 and count of the
    others, so that any copy can be checked on its own.  Some lines start
    with a dot (dot-stuffing); a large body keeps a transaction in DATA
    long enough to be killed there."""
    count = rng.randint(400, 900) if large else rng.randint(1, 40)
    lines = []
    for _ in range(count):
        line = "".join(rng.choices(BODY_CHARACTERS, k=rng.randint(0, 76)))
        if rng.random() < 0.05:
            line = "." + line
        lines.append(line.encode())
    digest = hashlib.sha256(b"\n".join(lines)).hexdigest()
    return [f"crash-body sha256={digest} lines={count}".encode()] + lines


def make_crash_message(run, number, recipients, rng):
    """(Message-ID without angle brackets, as the daemon reports it; the
    message; its body as the sink writes it)."""
    body = make_body(rng, large=number % 25 == 7)
    message_id = f"crash.{run}.{number}@example.org"
    head = [f"From: {SENDER}", f"To: {', '.join(recipients)}", f"Subject: crash {number}",
            f"Message-ID: <{message_id}>", "Date: Thu, 01 Jan 2026 00:00:00 +0000"]
    data = ("\r\n".join(head) + "\r\n\r\n").encode() + b"\r\n".join(body) + b"\r\n"
    return message_id, data, b"\n".join(body) + b"\n"


def message_id_of(sink_message):
    values = sink_message.headers("Message-ID")
    return values[0].strip("<>") if values else None


def body_damage(sink_message):
    """Why a received body fails its own checksum, or None.  The sink
    writes LF line ends."""
    body = sink_message.body()
    if not body.endswith(b"\n"):
        return "the body does not end with a line end"
    first, _, rest = body[:-1].partition(b"\n")
    found = BODY_LINE.match(first)
    if not found:
        return f"no checksum line: {first[:100]!r}"
    lines = rest.split(b"\n")
    if len(lines) != int(found.group(2)):
        return f"{len(lines)} lines instead of {int(found.group(2))}"
    if hashlib.sha256(rest).hexdigest() != found.group(1).decode():
        return "the checksum does not match"
    return None


def recipients_for(number):
    # Every third message has two recipients: per-recipient records.
    if number % 3 == 0:
        return (f"bob{number}@example.org", f"carol{number}@example.net")
    return (f"bob{number}@example.org",)


def quarantined():
    """The names of the files the spool set aside."""
    directory = spool_dir() / "quarantine"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def daemon_warnings_since(offset, limit=40):
    """The daemon's warnings and criticals in the session log since offset
    (a killed daemon's last words, quarantined files)."""
    with open(outboxtest.SESSION_LOG, "rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", "replace")
    lines = [line for line in text.splitlines() if "WARNING" in line or "CRITICAL" in line]
    return lines[:limit]


def submit_data(data, account, hold=False):
    options = {"account": GLib.Variant("s", account), "hold": GLib.Variant("b", hold)}
    [queue_id] = dbus_call("SubmitData", GLib.Variant("(aya{sv})", (data, options)), "(s)")
    return queue_id


def release(queue_id):
    dbus_call("Release", GLib.Variant("(s)", (queue_id,)))


def run_in_parallel(function, items, workers=CLIENTS):
    """function(item) for every item, workers at a time (blocking D-Bus
    calls release the interpreter lock); returns the results in order and
    raises the first exception of a worker."""
    results = [None] * len(items)
    errors = []
    position = iter(range(len(items)))
    lock = threading.Lock()

    def work():
        while not errors:
            with lock:
                index = next(position, None)
            if index is None:
                return
            try:
                results[index] = function(items[index])
            except Exception as error:  # noqa: BLE001 - raised again below
                errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class SentRecorder:
    """Every recipient that a MessageChanged signal of the daemon reports
    as sent, gathered by a main loop in a thread of its own, so that a kill
    need not wait for a List of the whole queue."""

    def __init__(self):
        self.sent = set()  # {(Message-ID, recipient)}
        self.lock = threading.Lock()
        self.context = GLib.MainContext.new()
        self.loop = GLib.MainLoop.new(self.context, False)
        subscribed = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(subscribed,))
        self.thread.start()
        subscribed.wait()

    def _run(self, subscribed):
        # Signals go to the thread-default context of the subscriber.
        self.context.push_thread_default()
        connection = session_bus()
        # Any sender: the well-known name changes hands at every restart.
        subscription = connection.signal_subscribe(
            None, QUEUE_IFACE, "MessageChanged", OBJECT_PATH, None,
            Gio.DBusSignalFlags.NONE, self._on_signal)
        subscribed.set()
        self.loop.run()
        connection.signal_unsubscribe(subscription)
        self.context.pop_thread_default()

    def _on_signal(self, connection, sender, path, interface, name, parameters):
        _, _, details = parameters.unpack()
        sent = {(details.get("message-id"), recipient["address"])
                for recipient in details.get("recipients", [])
                if recipient.get("state") == "sent"}
        with self.lock:
            self.sent |= sent

    def snapshot(self):
        with self.lock:
            return set(self.sent)

    def stop(self):
        self.loop.quit()
        self.thread.join()


class Lifetimes:
    """What the sink received during each daemon lifetime, and what the
    daemon had said was sent before each kill."""

    def __init__(self, sink, recorder):
        self.sink = sink
        self.recorder = recorder
        self.files_at_kill = []  # dump file names present after kill k
        self.sent_before_kill = []  # {(Message-ID, recipient)} sent before kill k

    def dump_count(self):
        return len(os.listdir(self.sink.dump_dir))

    def record_sent(self):
        """Called just before a kill: every recipient the daemon reported
        as sent must never be sent to again."""
        self.sent_before_kill.append(self.recorder.snapshot())

    def record_kill(self):
        """Called once the daemon is dead: waits until the sink has
        finished (or dropped) the transactions that were under way."""
        previous = None
        while True:
            names = set(os.listdir(self.sink.dump_dir))
            if names == previous:
                break
            previous = names
            time.sleep(0.1)
        self.files_at_kill.append(names)

    def lifetime_of(self, path):
        for kill, names in enumerate(self.files_at_kill):
            if path.name in names:
                return kill
        return len(self.files_at_kill)

    def receipts(self):
        """What the sink holds: the messages, the lifetimes in which each
        recipient got each message, {(Message-ID, recipient): [lifetime]},
        and the lifetimes of each message's copies, {Message-ID: [lifetime]}."""
        messages = self.sink.messages()
        by_recipient, copies = {}, {}
        for message in messages:
            lifetime = self.lifetime_of(message.path)
            message_id = message_id_of(message)
            copies.setdefault(message_id, []).append(lifetime)
            for recipient in message.recipients:
                by_recipient.setdefault((message_id, recipient), []).append(lifetime)
        return messages, by_recipient, copies

    def extra_copies_per_kill(self, copies):
        """How many messages went out again after each kill: every copy but
        the last counts against the lifetime it was made in."""
        per_kill = [0] * (len(self.files_at_kill) + 1)
        for lifetimes in copies.values():
            for lifetime in sorted(lifetimes)[:-1]:
                per_kill[lifetime] += 1
        return per_kill


class CrashTest(EngineTestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(self.report_daemon_warnings, outboxtest.session_log_size())
        self.rng = random.Random(f"{SEED}/{self.id()}")
        # The account's max-connections: messages in flight at once.
        self.lanes = 2 if self._testMethodName.endswith("_two_lanes") else 1
        report(f"{self.id()}: seed {SEED} (replay with OUTBOX_CRASH_SEED={SEED}), "
               f"{MESSAGES} messages, {KILLS} kills, sanitizers {sanitizers()}")
        # Only daemons this test starts itself: it kills them by pid.
        self.outbox.stop_daemon()
        self.start_our_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        self.sink = self.start_sink()
        self.recorder = SentRecorder()
        self.addCleanup(self.recorder.stop)
        self.account = self.add_engine_account(self.sink.url(),
                                               settings={"max-connections": self.lanes,
                                                         "retry-first": 1})
        self.started = time.monotonic()
        self.kills = 0
        self.daemon_up = threading.Event()
        self.daemon_up.set()

    def report_daemon_warnings(self, offset):
        for line in daemon_warnings_since(offset):
            report(f"daemon: {line}")

    def start_our_daemon(self):
        self.pid = self.outbox.start_daemon()

    def kill_points(self):
        """When to kill: sorted random points of the work, over all of it
        but its end.  A point the work has passed by the restart is a kill
        while the daemon starts."""
        return sorted(self.rng.randint(1, MESSAGES * 95 // 100) for _ in range(KILLS))

    def kill_and_restart(self, lifetimes, progress):
        """SIGKILL, then a new daemon; daemon_up is clear in between."""
        lifetimes.record_sent()
        self.daemon_up.clear()
        os.kill(self.pid, signal.SIGKILL)
        self.outbox.daemon.wait()
        wait_until(lambda: self.outbox.daemon_pid() is None, 20,
                   "the bus name to be released after the kill")
        self.kills += 1
        lifetimes.record_kill()
        restart = time.monotonic()
        self.start_our_daemon()
        self.daemon_up.set()
        report(f"kill {self.kills} at {progress()}; restarted in "
               f"{time.monotonic() - restart:.2f} s")

    def wait_all_final(self, run, count):
        """This run's messages in the queue, once at least count of them
        are there and all are sent or failed."""
        seen = {}

        def done():
            messages = [m for m in list_queue()
                        if m.get("message-id", "").startswith(f"crash.{run}.")]
            seen["states"] = collections.Counter(m.get("state") for m in messages)
            finals = [m for m in messages if m.get("state") in outboxtest.FINAL_STATES]
            return len(messages) >= count and len(finals) == len(messages) and messages
        try:
            return wait_until(done, DRAIN_TIMEOUT, f"{count} messages in a final state",
                              interval=0.2)
        except AssertionError as error:
            states = dict(seen["states"])
            raise AssertionError(f"{error} (seed {SEED}); states: {states}") from None

    def assertAllSent(self, messages):
        for message in messages:
            self.assertEqual(message.get("state"), "sent", message)
            for recipient in message.get("recipients", []):
                self.assertEqual(recipient.get("state"), "sent", message)

    def assertReceiptsConsistent(self, lifetimes, messages, by_recipient, copies):
        """No copy is damaged; no recipient gets a message twice within one
        lifetime, nor again after the daemon reported it sent; each kill
        costs at most one extra copy per lane."""
        for message in messages:
            self.assertIsNone(body_damage(message),
                              f"damaged message at the sink: {message.path} (seed {SEED})")
        for (message_id, recipient), when in by_recipient.items():
            self.assertEqual(len(when), len(set(when)),
                             f"{message_id} went to {recipient} twice within one daemon "
                             f"lifetime (lifetimes {when}; seed {SEED})")
            for kill, sent in enumerate(lifetimes.sent_before_kill):
                if (message_id, recipient) in sent:
                    self.assertLessEqual(max(when), kill,
                                         f"{message_id} went to {recipient} again after the "
                                         f"daemon reported it sent before kill {kill + 1} "
                                         f"(lifetimes {when}; seed {SEED})")
        for kill, extra in enumerate(lifetimes.extra_copies_per_kill(copies)):
            self.assertLessEqual(extra, self.lanes,
                                 f"{extra} messages went out again after kill {kill + 1}, "
                                 f"with {self.lanes} lanes (seed {SEED})")

    def test_kills_during_delivery(self):
        self.kill_during_delivery()

    def test_kills_during_delivery_two_lanes(self):
        self.kill_during_delivery()

    def kill_during_delivery(self):
        run = f"d{self.lanes}-{SEED}"
        expected = {}
        submissions = []
        for number in range(MESSAGES):
            message_id, data, body = make_crash_message(run, number, recipients_for(number),
                                                        self.rng)
            expected[message_id] = (recipients_for(number), body)
            submissions.append(data)
        queue_ids = run_in_parallel(lambda data: submit_data(data, self.account, hold=True),
                                    submissions)
        self.assertEqual(len(set(queue_ids)), MESSAGES, "queue ids not unique")
        queued = time.monotonic()

        lifetimes = Lifetimes(self.sink, self.recorder)
        # The drain starts once every message is released, not during the
        # releases: the sink is stopped meanwhile.
        self.sink.process.send_signal(signal.SIGSTOP)
        try:
            run_in_parallel(release, queue_ids)
        finally:
            self.sink.process.send_signal(signal.SIGCONT)
        for point in self.kill_points():
            wait_until(lambda: lifetimes.dump_count() >= point, DRAIN_TIMEOUT,
                       f"{point} messages at the sink (seed {SEED})", interval=0.005)
            time.sleep(self.rng.uniform(0, 0.05))
            self.kill_and_restart(lifetimes,
                                  lambda: f"{lifetimes.dump_count()} copies at the sink")

        final = self.wait_all_final(run, MESSAGES)
        time.sleep(0.5)  # time for a wrong extra copy to arrive
        drained = time.monotonic()
        messages, by_recipient, copies = lifetimes.receipts()
        duplicates = sum(lifetimes.extra_copies_per_kill(copies))
        lost = sorted(set(expected) - set(copies))
        lanes = f"{self.lanes} lane{'s' if self.lanes > 1 else ''}"
        report(f"delivery ({lanes}): messages={MESSAGES} kills={self.kills} duplicates={duplicates} "
               f"lost={len(lost)} set-aside={len(quarantined())} "
               f"queueing={queued - self.started:.1f}s drain={drained - queued:.1f}s")

        self.assertEqual(lost, [], f"messages never delivered (seed {SEED})")
        self.assertEqual(sorted(copies), sorted(expected), "unknown messages at the sink")
        self.assertReceiptsConsistent(lifetimes, messages, by_recipient, copies)
        for message in messages:
            recipients, body = expected[message_id_of(message)]
            self.assertEqual(sorted(message.recipients), sorted(recipients), message.path)
            self.assertEqual(message.body(), body, f"{message.path} is not what was queued")
        self.assertEqual(sorted(m["id"] for m in final), sorted(queue_ids))
        self.assertAllSent(final)
        self.assertEqual(quarantined(), [], "the spool set files aside after the kills")

    def test_kills_during_submission(self):
        run = f"s{SEED}"
        acknowledged = {}  # Message-ID -> queue id
        sent_data = {}  # Message-ID -> body
        refused = collections.Counter()  # D-Bus error name -> calls
        lock = threading.Lock()
        stop = threading.Event()
        numbers = iter(range(10 ** 9))

        def client(rng):
            while not stop.is_set():
                with lock:
                    if len(acknowledged) >= MESSAGES:
                        return
                    number = next(numbers)
                message_id, data, body = make_crash_message(run, number, recipients_for(number),
                                                            rng)
                with lock:
                    sent_data[message_id] = body
                try:
                    queue_id = submit_data(data, self.account)
                except GLib.Error as error:
                    with lock:
                        refused[Gio.DBusError.get_remote_error(error) or error.message] += 1
                    self.daemon_up.wait()
                    continue
                with lock:
                    acknowledged[message_id] = queue_id

        clients = [threading.Thread(target=client, args=(random.Random(self.rng.random()),))
                   for _ in range(CLIENTS)]
        lifetimes = Lifetimes(self.sink, self.recorder)
        for thread in clients:
            thread.start()
        try:
            for point in self.kill_points():
                wait_until(lambda: len(acknowledged) >= point, DRAIN_TIMEOUT,
                           f"{point} acknowledged submissions (seed {SEED})", interval=0.002)
                time.sleep(self.rng.uniform(0, 0.05))
                self.kill_and_restart(lifetimes, lambda: f"{len(acknowledged)} acknowledged")
            wait_until(lambda: len(acknowledged) >= MESSAGES, DRAIN_TIMEOUT,
                       f"{MESSAGES} acknowledged submissions (seed {SEED})")
        finally:
            stop.set()
            self.daemon_up.set()
            for thread in clients:
                thread.join()

        final = self.wait_all_final(run, 1)
        time.sleep(0.5)  # time for a wrong extra copy to arrive
        drained = time.monotonic()
        by_message_id = {m.get("message-id"): m for m in final}
        lost = sorted(set(acknowledged) - set(by_message_id))
        messages, by_recipient, copies = lifetimes.receipts()
        duplicates = sum(lifetimes.extra_copies_per_kill(copies))
        undelivered = sorted(set(acknowledged) - set(copies))
        # A kill between the two renames of a commit leaves a message file
        # without its record, which the next start sets aside: never one
        # that was acknowledged.
        set_aside = quarantined()
        report(f"submission: acknowledged={len(acknowledged)} refused={sum(refused.values())} "
               f"queued={len(final)} kills={self.kills} duplicates={duplicates} "
               f"lost={len(set(lost) | set(undelivered))} set-aside={len(set_aside)} "
               f"seconds={drained - self.started:.1f}")
        if set_aside:
            report(f"submission: set aside: {set_aside}")

        self.assertLessEqual(set(refused), DAEMON_GONE,
                             f"submissions refused for another reason than a dead daemon: "
                             f"{dict(refused)}")
        self.assertEqual(lost, [], f"acknowledged submissions missing from the queue "
                                   f"(seed {SEED})")
        self.assertEqual(undelivered, [], f"acknowledged submissions never delivered "
                                          f"(seed {SEED})")
        for message_id, queue_id in acknowledged.items():
            self.assertEqual(by_message_id[message_id]["id"], queue_id,
                             f"{message_id} was acknowledged under another id")
        self.assertAllSent(final)
        acknowledged_ids = set(acknowledged.values())
        self.assertEqual([name for name in set_aside if name.split(".")[0] in acknowledged_ids],
                         [], f"acknowledged submissions set aside (seed {SEED})")
        self.assertEqual(sorted(set(copies) - set(sent_data)), [], "unknown messages at the sink")
        self.assertReceiptsConsistent(lifetimes, messages, by_recipient, copies)
        for message in messages:
            self.assertEqual(message.body(), sent_data[message_id_of(message)],
                             f"{message.path} is not what was submitted")


if __name__ == "__main__":
    outboxtest.main()
