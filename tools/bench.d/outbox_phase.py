# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""One Outbox part of tools/bench, run inside tests/outbox-test-env (a
private session bus, XDG directories and keyring, so the user's session is
never touched): starts outboxd from the build, adds an account pointing at
its own counting smtp-sink, measures, and writes its figures as JSON.

    outbox_phase.py PHASE BUILD_DIR SETTINGS_JSON RESULT_FILE
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from gi.repository import Gio, GLib

import benchlib
import peers
from benchlib import BenchError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "integration"))
from servers.down_server import DownServer  # noqa: E402

BUS_NAME = "org.outbox.Outbox1"
OBJECT_PATH = "/org/outbox/Outbox1"
QUEUE_IFACE = "org.outbox.Outbox1.Queue"
ACCOUNT = "bench"
# Calls in flight at once when submitting or releasing "as fast as possible".
WINDOW = 64
# Messages per List call (a big queue does not fit in one bus message).
LIST_PAGE = 5000


class Outbox:
    """outboxd started by us (so that we know its pid) and its clients."""

    def __init__(self, build_dir):
        self.build_dir = pathlib.Path(build_dir)
        self.outboxd = self.build_dir / "daemon" / "outboxd"
        self.cli = self.build_dir / "cli" / "outbox"
        self.sendmail = self.build_dir / "cli" / "outbox-sendmail"
        self.bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        self.daemon = None
        self.log = open(os.environ.get("OUTBOX_TEST_SESSION_LOG", os.devnull), "ab")

    def call(self, method, parameters=None, reply_type=None, timeout=120):
        return self.bus.call_sync(BUS_NAME, OBJECT_PATH, QUEUE_IFACE, method, parameters,
                                  GLib.VariantType(reply_type) if reply_type else None,
                                  Gio.DBusCallFlags.NO_AUTO_START, timeout * 1000, None)

    def list_count(self, serialized=True):
        """How many pending messages the listing returns, in pages as a big
        queue needs, or None when nobody answers; the replies are counted,
        not unpacked.  ListSerialized (what outbox queue uses) by default;
        List when not serialized, whose a{sv} the bus takes apart value by
        value at both ends."""
        count, after = 0, None
        while True:
            options = {"limit": GLib.Variant("u", LIST_PAGE)}
            if after is not None:
                options["after"] = after
            parameters = GLib.Variant("(a{sv})", (options,))
            try:
                if serialized:
                    reply = self.call("ListSerialized", parameters, "(ay)")
                    page = GLib.Variant.new_from_bytes(
                        GLib.VariantType("aa{sv}"),
                        reply.get_child_value(0).get_data_as_bytes(), False)
                else:
                    page = self.call("List", parameters, "(aa{sv})").get_child_value(0)
            except GLib.Error:
                return None
            count += page.n_children()
            if page.n_children() < LIST_PAGE:
                return count
            last = page.get_child_value(page.n_children() - 1)
            after = GLib.Variant("(xs)", (last.lookup_value("created", None).get_int64(),
                                          last.lookup_value("id", None).get_string()))

    def start(self, expect=0, timeout=600):
        """Starts outboxd and returns the seconds until List() answers with
        every one of the expect messages queued."""
        started = time.monotonic()
        self.daemon = subprocess.Popen([str(self.outboxd)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=self.log)

        def answered():
            if self.daemon.poll() is not None:
                raise BenchError(f"outboxd exited with {self.daemon.returncode}")
            count = self.list_count()
            return count is not None and count >= expect
        benchlib.wait_until(answered, timeout, "outboxd to answer List", interval=0.002)
        return time.monotonic() - started

    def start_until_submit(self, expect, timeout=600):
        """Starts outboxd, SubmitData (a held message) as soon as its name is
        there, then List in pages until all of expect + 1 messages come:
        returns the seconds until each of the two answers."""
        started = time.monotonic()
        self.daemon = subprocess.Popen([str(self.outboxd)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=self.log)
        parameters = self.submit_parameters(benchlib.message(expect), hold=True)

        def submitted():
            if self.daemon.poll() is not None:
                raise BenchError(f"outboxd exited with {self.daemon.returncode}")
            try:
                self.call("SubmitData", parameters, "(s)")
            except GLib.Error as error:
                if "ServiceUnknown" in error.message or "NameHasNoOwner" in error.message:
                    return False
                raise
            return True
        benchlib.wait_until(submitted, timeout, "outboxd to answer SubmitData", interval=0.002)
        first_answer = time.monotonic() - started
        count = self.list_count()
        if count != expect + 1:
            raise BenchError(f"List gave {count} messages after start-up, not {expect + 1}")
        return first_answer, time.monotonic() - started

    def kill(self):
        """SIGKILL: what a crash or an OOM kill leaves."""
        if self.daemon:
            self.daemon.kill()
            self.daemon.wait()
            self.daemon = None

    def stop(self):
        if self.daemon:
            status = benchlib.stop_process(self.daemon, timeout=60)
            self.daemon = None
            if status != 0:
                raise BenchError(f"outboxd exited with {status} when stopped")

    def cpu(self):
        return benchlib.cpu_seconds(self.daemon.pid)

    def memory(self, field="VmRSS"):
        return benchlib.proc_status_bytes(self.daemon.pid, field)

    def run_cli(self, *args, data=None):
        completed = subprocess.run([str(self.cli), *map(str, args)], input=data,
                                   capture_output=True)
        if completed.returncode != 0:
            raise BenchError(f"outbox {' '.join(map(str, args))} exited with "
                             f"{completed.returncode}: {completed.stderr.decode().strip()}")
        return completed.stdout

    def add_account(self, sink):
        self.run_cli("account", "add", ACCOUNT, "--from", benchlib.SENDER,
                     "--smtp", sink.url(), "--default")

    def submit_parameters(self, data, hold):
        options = {"account": GLib.Variant("s", ACCOUNT)}
        if hold:
            options["hold"] = GLib.Variant("b", True)
        return GLib.Variant.new_tuple(
            GLib.Variant.new_from_bytes(GLib.VariantType("ay"), GLib.Bytes.new(data), True),
            GLib.Variant("a{sv}", options))

    def submit_data_sequential(self, messages, hold):
        """SubmitData one call after the other; returns the ids."""
        return [self.call("SubmitData", self.submit_parameters(data, hold), "(s)").unpack()[0]
                for data in messages]

    def pipelined(self, method, parameter_list):
        """Calls method once per parameters with up to WINDOW calls in
        flight on one connection; returns the replies in order."""
        replies = [None] * len(parameter_list)
        errors = []
        in_flight = 0
        context = GLib.MainContext.default()

        def done(connection, result, index):
            nonlocal in_flight
            in_flight -= 1
            try:
                replies[index] = connection.call_finish(result)
            except GLib.Error as error:
                errors.append(error.message)

        for index, parameters in enumerate(parameter_list):
            while in_flight >= WINDOW:
                context.iteration(True)
            in_flight += 1
            self.bus.call(BUS_NAME, OBJECT_PATH, QUEUE_IFACE, method, parameters, None,
                          Gio.DBusCallFlags.NO_AUTO_START, 600000, None, done, index)
        while in_flight:
            context.iteration(True)
        if errors:
            raise BenchError(f"{len(errors)} {method} call(s) failed, first: {errors[0]}")
        return replies

    def submit_data_pipelined(self, messages, hold):
        replies = self.pipelined("SubmitData",
                                 [self.submit_parameters(data, hold) for data in messages])
        return [reply.unpack()[0] for reply in replies]

    def release(self, ids):
        self.pipelined("Release", [GLib.Variant("(s)", (message_id,)) for message_id in ids])

    def submit_fd(self, path, timeout, account=ACCOUNT):
        with open(path, "rb") as message:
            fds = Gio.UnixFDList.new_from_array([os.dup(message.fileno())])
            options = {"account": GLib.Variant("s", account)}
            reply, _ = self.bus.call_with_unix_fd_list_sync(
                BUS_NAME, OBJECT_PATH, QUEUE_IFACE, "Submit",
                GLib.Variant("(ha{sv})", (0, options)), GLib.VariantType("(s)"),
                Gio.DBusCallFlags.NO_AUTO_START, timeout * 1000, fds, None)
        return reply.unpack()[0]

    def wait_list_empty(self, timeout):
        benchlib.wait_until(lambda: self.list_count() == 0, timeout,
                            "the queue to empty", interval=0.05)


def messages(first, count):
    return [benchlib.message(first + i) for i in range(count)]


def timed(action):
    started = time.monotonic()
    action()
    return time.monotonic() - started


def phase_submit_drain(outbox, sink, settings, result):
    """(a) drain and (b) D-Bus submission, in a fresh spool: SubmitData one
    call after the other, held; release them all at once and time until
    the sink has them; then SubmitData with calls in flight, held, and let
    those go too (not timed).  The daemon's CPU time and the sink's SMTP
    sessions during each step tell where the time went."""
    count = settings["messages"]
    result["messages"] = count
    batch = messages(0, count)
    started, cpu = time.monotonic(), outbox.cpu()
    ids = outbox.submit_data_sequential(batch, hold=True)
    result["submit_data_sequential_seconds"] = [time.monotonic() - started]
    result["submit_data_sequential_cpu_seconds"] = [outbox.cpu() - cpu]

    target, sessions = sink.count + count, sink.sessions
    started, cpu = time.monotonic(), outbox.cpu()
    outbox.release(ids)
    result["release_calls_seconds"] = [time.monotonic() - started]
    result["drain_seconds"] = [sink.wait_count(target, 600) - started]
    result["drain_cpu_seconds"] = [outbox.cpu() - cpu]
    outbox.wait_list_empty(120)
    result["drain_until_list_empty_seconds"] = [time.monotonic() - started]
    result["drain_smtp_sessions"] = [sink.settled_sessions() - sessions]

    batch = messages(count, count)
    started, cpu = time.monotonic(), outbox.cpu()
    ids = outbox.submit_data_pipelined(batch, hold=True)
    result["submit_data_pipelined_seconds"] = [time.monotonic() - started]
    result["submit_data_pipelined_cpu_seconds"] = [outbox.cpu() - cpu]
    result["submit_data_pipelined_window"] = WINDOW
    target = sink.count + count
    outbox.release(ids)
    sink.wait_count(target, 600)


def phase_per_process(outbox, sink, settings, result):
    """(b) one process per message: outbox-sendmail when the build has it,
    else `outbox send`; timed until the last process returned (queued)
    and until the sink has every message (at sink)."""
    count = settings["per_process"]
    if outbox.sendmail.exists():
        tool, command = "outbox-sendmail", [str(outbox.sendmail), "-t", "-i"]
    else:
        tool, command = "outbox send", [str(outbox.cli), "send"]
    result.update({"tool": tool, "messages": count})
    batch = [(command, data) for data in messages(0, count)]
    target = sink.count + count
    started, cpu = time.monotonic(), outbox.cpu()
    benchlib.run_per_process(batch)
    result["submitted_seconds"] = [time.monotonic() - started]
    result["end_to_end_seconds"] = [sink.wait_count(target, 600) - started]
    result["daemon_cpu_seconds"] = [outbox.cpu() - cpu]


def write_big_message(path, size):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abc\r\n"
    chunk = line * (1024 * 1024 // len(line))
    with open(path, "wb") as out:
        out.write(f"From: {benchlib.SENDER}\r\nTo: {benchlib.RECIPIENT}\r\n"
                  "Subject: Big bench message\r\n\r\n".encode())
        written = 0
        while written < size:
            out.write(chunk)
            written += len(chunk)
    return os.path.getsize(path)


def phase_memory(outbox, sink, settings, result):
    """(d) RSS of an idle daemon with one account, and the growth of its
    peak RSS (VmHWM) while a big message passes through Submit(fd) to the
    sink."""
    time.sleep(1)
    result.update({"idle_rss_bytes": outbox.memory(), "idle_hwm_bytes": outbox.memory("VmHWM"),
                   "idle_pss_bytes": benchlib.pss_bytes(outbox.daemon.pid)})
    if not settings.get("big_message"):
        return
    path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "big-message.eml"
    size = write_big_message(path, settings["big_message"])
    hwm_before = outbox.memory("VmHWM")
    target = sink.count + 1
    started = time.monotonic()
    outbox.submit_fd(path, timeout=900)
    submitted = time.monotonic() - started
    delivered = sink.wait_count(target, 900) - started
    path.unlink()
    hwm_after = outbox.memory("VmHWM")
    result.update({
        "big_message_bytes": size,
        "big_message_submit_seconds": submitted,
        "big_message_delivered_seconds": delivered,
        "big_message_hwm_before_bytes": hwm_before,
        "big_message_hwm_after_bytes": hwm_after,
        "big_message_hwm_growth_bytes": hwm_after - hwm_before,
    })


def time_queue_json(outbox, expect, reps):
    seconds = []
    for _ in range(reps):
        started = time.monotonic()
        output = outbox.run_cli("queue", "--json")
        seconds.append(time.monotonic() - started)
    listed = len(json.loads(output)["messages"])
    if listed != expect:
        raise BenchError(f"outbox queue --json listed {listed} messages, not {expect}")
    return seconds


def submit_held_until(outbox, queued, size, deadline, rates):
    """Adds held messages in batches of 1,000 (SubmitData, calls in
    flight) until size are queued or the deadline passed; returns how
    many are queued.  rates gets (queued, messages/s) for each batch."""
    while queued < size and time.monotonic() < deadline:
        step = min(1000, size - queued)
        batch = messages(queued, step)
        seconds = timed(lambda: outbox.submit_data_pipelined(batch, hold=True))
        queued += step
        rates.append([queued, benchlib.rate(step, seconds)])
    return queued


def phase_scale(outbox, sink, settings, result):
    """(e) and the queued part of (d): held messages are added as fast as
    one client can (SubmitData in flight) up to each size; at each size,
    the daemon's RSS, `outbox queue --json`, start-up (after a clean
    stop, then once after a SIGKILL) until a SubmitData is answered and
    until ListSerialized has given every message, and then List (the
    a{sv} form) of every message.  Submitting stops at a time budget: a size
    not reached by then is measured at the count reached."""
    reps, queued = settings["reps"], 0
    deadline = time.monotonic() + settings["scale_budget_seconds"]
    result["sizes"] = []
    result["submit_rates"] = rates = []
    result["budget_seconds"] = settings["scale_budget_seconds"]
    for size in settings["scale"]:
        queued = submit_held_until(outbox, queued, size, deadline, rates)
        entry = {"target": size, "queued": queued,
                 "rss_after_submitting_bytes": outbox.memory(),
                 "queue_json_seconds": time_queue_json(outbox, queued, reps),
                 "startup_seconds": [], "startup_first_submit_seconds": [],
                 "rss_after_startup_bytes": []}
        # Each start-up adds the message it submits.
        for _ in range(reps):
            outbox.stop()
            first_answer, full_list = outbox.start_until_submit(expect=queued)
            queued += 1
            entry["startup_first_submit_seconds"].append(first_answer)
            entry["startup_seconds"].append(full_list)
            entry["rss_after_startup_bytes"].append(outbox.memory())
        # A kill leaves the index of the last clean stop (or checkpoint):
        # what changed since is read from its files.
        outbox.kill()
        first_answer, full_list = outbox.start_until_submit(expect=queued)
        queued += 1
        entry["startup_after_kill_first_submit_seconds"] = first_answer
        entry["startup_after_kill_seconds"] = full_list
        # The same listing through List, the queue loaded.
        started = time.monotonic()
        listed = outbox.list_count(serialized=False)
        entry["list_plain_seconds"] = time.monotonic() - started
        if listed != queued:
            raise BenchError(f"List gave {listed} messages, not {queued}")
        entry["queue_json_median_seconds"] = benchlib.median(entry["queue_json_seconds"])
        entry["startup_median_seconds"] = benchlib.median(entry["startup_seconds"])
        entry["startup_first_submit_median_seconds"] = benchlib.median(
            entry["startup_first_submit_seconds"])
        entry["rss_queued_bytes"] = max(entry["rss_after_startup_bytes"]
                                        + [entry["rss_after_submitting_bytes"]])
        result["sizes"].append(entry)
        if queued < size:
            result["not_reached"] = (
                f"{size:,} queued not reached within the {settings['scale_budget_seconds']} s "
                f"budget: {queued:,} queued, the last batch at "
                f"{rates[-1][1]:.0f} messages/s")
            break


def phase_storm(outbox, sink, settings, result):
    """(f) The storm: storm_messages held messages of an account whose
    server is down, released at once; how many connections one attempt of
    the account makes, and how long until all are deferred."""
    server = DownServer()
    try:
        outbox.run_cli("account", "add", "down", "--from", benchlib.SENDER,
                       "--smtp", f"smtp+insecure://127.0.0.1:{server.port}")
        # No second attempt while the figure is taken.
        outbox.run_cli("account", "update", "down", "--retry-first", "3600")
        count = settings["storm_messages"]
        options = {"account": GLib.Variant("s", "down"), "hold": GLib.Variant("b", True)}
        parameters = [GLib.Variant("(aya{sv})", (message, options))
                      for message in messages(0, count)]
        ids = [reply.unpack()[0] for reply in outbox.pipelined("SubmitData", parameters)]
        started = time.monotonic()
        outbox.release(ids)

        def all_deferred():
            replies = outbox.pipelined("Get", [GLib.Variant("(s)", (i,)) for i in ids])
            return all(r.unpack()[0].get("state") == "deferred" for r in replies)
        benchlib.wait_until(all_deferred, 120, f"all {count} deferred", interval=0.1)
        result.update({"messages": count, "connections": server.connections(),
                       "seconds_until_all_deferred": round(time.monotonic() - started, 3)})
    finally:
        server.stop()


def phase_chunking(outbox, sink, settings, result):
    """(g) One big message sent with BDAT (CHUNKING) and one with DATA to
    the same private Postfix, whose two listeners differ only in offering
    CHUNKING, and discard what they queued: the time from Submit to sent
    and outboxd's CPU seconds for each (the spool copy included, the same
    for both)."""
    size = settings.get("chunking_message")
    if not size:
        return
    path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "chunking-message.eml"
    size = write_big_message(path, size)
    result["message_bytes"] = size
    with peers.PrivatePostfix(sink.port, discard_listeners=True) as postfix:
        postfix.start()
        try:
            for name, port in (("bdat", postfix.chunking_port), ("data", postfix.data_port)):
                outbox.run_cli("account", "add", name, "--from", benchlib.SENDER,
                               "--smtp", f"smtp+insecure://127.0.0.1:{port}")
                cpu = outbox.cpu()
                started = time.monotonic()
                message_id = outbox.submit_fd(path, timeout=900, account=name)

                def final():
                    [message] = outbox.call("Get", GLib.Variant("(s)", (message_id,)),
                                            "(a{sv})").unpack()
                    return message["state"] in ("sent", "failed") and message
                message = benchlib.wait_until(final, 1800, f"the {name} message to be sent",
                                              interval=0.05)
                if message["state"] != "sent":
                    raise BenchError(f"the {name} message failed: {message.get('last-reply')}")
                result[f"{name}_seconds"] = round(time.monotonic() - started, 3)
                result[f"{name}_cpu_seconds"] = round(outbox.cpu() - cpu, 3)
        finally:
            path.unlink()


PHASES = {
    "chunking": phase_chunking,
    "storm": phase_storm,
    "submit-drain": phase_submit_drain,
    "per-process": phase_per_process,
    "memory": phase_memory,
    "scale": phase_scale,
}


def stop_on_sigterm(signum, frame):
    raise BenchError("stopped by SIGTERM")


def main():
    phase, build_dir, settings, result_file = sys.argv[1:5]
    settings = json.loads(settings)
    if "OUTBOX_TEST_ENV_SESSION" not in os.environ:
        sys.exit("outbox_phase.py: not inside outbox-test-env: refusing to touch the real session")
    # What was measured before a stop is still written out.
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    outbox = Outbox(build_dir)
    result = {}
    try:
        with benchlib.Sink() as sink:
            outbox.start()
            outbox.add_account(sink)
            PHASES[phase](outbox, sink, settings, result)
            outbox.stop()
    except (BenchError, GLib.Error, OSError, ValueError) as error:
        result["error"] = str(error)
    finally:
        if outbox.daemon:
            benchlib.stop_process(outbox.daemon)
        pathlib.Path(result_file).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
