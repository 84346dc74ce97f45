# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""What the parts of tools/bench share: the counting smtp-sink, the test
message, waiting, and process bookkeeping."""

import os
import re
import socket
import statistics
import subprocess
import threading
import time

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SENDER = "bench@example.org"
RECIPIENT = "rcpt@example.org"
MESSAGE_SIZE = 10240


class BenchError(Exception):
    """A part of the bench could not run; its figures are left out."""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout, what, interval=0.01):
    """Polls predicate until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def stop_process(process, timeout=10):
    """SIGTERM to a subprocess.Popen, SIGKILL after timeout."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def median(values):
    return statistics.median(values) if values else None


def rate(count, seconds):
    return count / seconds if seconds > 0 else None


def proc_status_bytes(pid, field):
    """A VmRSS/VmHWM-like field of /proc/PID/status, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise BenchError(f"no {field} for pid {pid}")


def cpu_seconds(pid):
    """User and system CPU time a process has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pss_bytes(pid):
    """The proportional set size of a process (shared pages divided among
    the processes sharing them), in bytes."""
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise BenchError(f"no Pss for pid {pid}")


def message(index, size=MESSAGE_SIZE, line_end=b"\r\n"):
    """The bench's test message: a header and a plain body of about size
    octets in total, distinct for each index."""
    head = (f"From: Bench <{SENDER}>\nTo: <{RECIPIENT}>\n"
            f"Subject: Bench message {index}\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\n"
            f"Message-ID: <bench-{index}-{os.getpid()}@example.org>\n\n").encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abc\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).replace(b"\n", line_end)


class Sink:
    """Postfix's smtp-sink on 127.0.0.1 that keeps no message (so that it is
    never the slow part) and counts them: with -c it prints running counters
    ("sess=N quit=N mesg=N", each ended by a carriage return) on stdout."""

    COUNTERS = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")

    def __init__(self):
        self.port = free_port()
        self.process = None
        self.count = 0
        self.sessions = 0
        self._reader = None

    def start(self):
        command = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        command += [f"127.0.0.1:{self.port}", "256"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_counters, daemon=True)
        self._reader.start()
        wait_until(lambda: self.process.poll() is not None or port_accepts(self.port),
                   10, f"smtp-sink on port {self.port}")
        if self.process.poll() is not None:
            raise BenchError(f"smtp-sink exited with {self.process.returncode}")
        return self

    def _read_counters(self):
        pending = b""
        while True:
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return
            pending += chunk
            *records, pending = pending.split(b"\r")
            for record in reversed(records):
                found = self.COUNTERS.search(record)
                if found:
                    self.sessions, self.count = int(found.group(1)), int(found.group(2))
                    break

    def wait_count(self, count, timeout):
        """Waits until the sink has received count messages in all; returns
        the monotonic time at which that was seen."""
        wait_until(lambda: self.count >= count, timeout,
                   f"{count} messages at smtp-sink (has {self.count})", interval=0.002)
        return time.monotonic()

    def settled_sessions(self):
        """The sessions seen once none has ended for half a second (at most
        three seconds): smtp-sink counts a session when it ends, and a
        client ends its sessions a moment after its last message."""
        deadline = time.monotonic() + 3
        sessions, unchanged_since = self.sessions, time.monotonic()
        while time.monotonic() - unchanged_since < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
            if self.sessions != sessions:
                sessions, unchanged_since = self.sessions, time.monotonic()
        return sessions

    def url(self):
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def stop(self):
        if self.process:
            stop_process(self.process)
            self.process.stdout.close()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def run_per_process(commands_and_inputs):
    """Runs one process per (command, input bytes), one after another, as a
    script calling sendmail in a loop does; fails on the first failure."""
    for command, data in commands_and_inputs:
        completed = subprocess.run(command, input=data, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
        if completed.returncode != 0:
            raise BenchError(f"{' '.join(command)} exited with {completed.returncode}: "
                             f"{completed.stderr.decode('utf-8', 'replace').strip()}")
