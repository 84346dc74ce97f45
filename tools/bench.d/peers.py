# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""The peers tools/bench measures Outbox against, on the same messages and
the same counting smtp-sink: smtp-source (the ceiling: a pure load
generator), msmtp (one process per message, as mutt and scripts use it)
and Postfix relaying through a private instance."""

import os
import pathlib
import shutil
import stat
import subprocess
import tempfile
import time

import benchlib
from benchlib import BenchError

MSMTP = "/usr/bin/msmtp"
POSTFIX = "/usr/sbin/postfix"
POSTSUPER = "/usr/sbin/postsuper"
POSTQUEUE = "/usr/sbin/postqueue"
POSTFIX_SENDMAIL = "/usr/sbin/sendmail"


def smtp_source(sink, message_file, count, reps):
    """smtp-source sending count messages: a new connection per message,
    one connection reused, and four connections reused."""
    modes = {
        "new_connection": ["-s", "1"],
        "one_connection": ["-s", "1", "-d"],
        "four_connections": ["-s", "4", "-d"],
    }
    result = {"messages": count}
    for mode, flags in modes.items():
        seconds = []
        for _ in range(reps):
            target = sink.count + count
            started = time.monotonic()
            completed = subprocess.run(
                [benchlib.SMTP_SOURCE, *flags, "-m", str(count), "-F", str(message_file),
                 "-f", benchlib.SENDER, "-t", benchlib.RECIPIENT, f"127.0.0.1:{sink.port}"],
                stdin=subprocess.DEVNULL, capture_output=True)
            if completed.returncode != 0:
                raise BenchError(f"smtp-source {' '.join(flags)} exited with "
                                 f"{completed.returncode}: {completed.stderr.decode().strip()}")
            seconds.append(sink.wait_count(target, 300) - started)
        result[f"{mode}_seconds"] = seconds
        result[f"{mode}_per_second"] = benchlib.rate(count, benchlib.median(seconds))
    return result


def msmtp(sink, workdir, count, reps):
    """msmtp -t, one process per message, without TLS."""
    if not os.access(MSMTP, os.X_OK):
        raise BenchError(f"{MSMTP} is not installed (Debian package msmtp)")
    config = pathlib.Path(workdir) / "msmtprc"
    config.write_text(f"account bench\nhost 127.0.0.1\nport {sink.port}\n"
                      f"from {benchlib.SENDER}\nauth off\ntls off\n"
                      "account default : bench\n")
    config.chmod(0o600)
    seconds = []
    for rep in range(reps):
        batch = [([MSMTP, "-C", str(config), "-t"], benchlib.message(rep * count + i))
                 for i in range(count)]
        target = sink.count + count
        started = time.monotonic()
        benchlib.run_per_process(batch)
        seconds.append(sink.wait_count(target, 300) - started)
    return {"messages": count, "seconds": seconds,
            "per_second": benchlib.rate(count, benchlib.median(seconds))}


class PrivatePostfix:
    """A Postfix instance of its own: config, queue and data directories
    under a temp dir, no chroot, logging to a file, relaying everything to
    the sink.  Two smtpd listeners: one accepts mail for delivery, the
    other puts all it accepts on hold (for the drain figure).  With
    discard_listeners, two more that take messages of any size and discard
    them once queued: one offers CHUNKING (chunking_port), the other not
    (data_port), for comparing BDAT with DATA."""

    def __init__(self, sink_port, discard_listeners=False):
        self.sink_port = sink_port
        self.top = None
        self.config = None
        self.queue = None
        self.port = benchlib.free_port()
        self.hold_port = benchlib.free_port()
        self.chunking_port = benchlib.free_port() if discard_listeners else None
        self.data_port = benchlib.free_port() if discard_listeners else None
        self.started = False

    def _write_config(self):
        self.config.mkdir(mode=0o755)
        data = self.top / "data"
        data.mkdir(mode=0o755)
        shutil.chown(data, "postfix")
        (self.config / "main.cf").write_text(f"""\
compatibility_level = 3.6
config_directory = {self.config}
queue_directory = {self.queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.localdomain
mydomain = localdomain
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:{self.sink_port}
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = {self.top}
maillog_file = {self.top}/maillog
biff = no
message_size_limit = 0
""")
        services = [
            ("pickup", "unix", "n", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "300", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "1", "verify"),
            ("flush", "unix", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "-", "proxymap"),
            ("proxywrite", "unix", "-", "-", "1", "proxymap"),
            ("smtp", "unix", "-", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "-", "smtp"),
            ("showq", "unix", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "-", "error"),
            ("retry", "unix", "-", "-", "-", "error"),
            ("discard", "unix", "-", "-", "-", "discard"),
            ("anvil", "unix", "-", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "1", "postlogd"),
        ]
        lines = [f"127.0.0.1:{self.port} inet n - n - - smtpd",
                 f"127.0.0.1:{self.hold_port} inet n - n - - smtpd",
                 "  -o smtpd_client_restrictions=check_client_access,static:HOLD"]
        if self.chunking_port:
            lines += [f"127.0.0.1:{self.chunking_port} inet n - n - - smtpd",
                      "  -o content_filter=discard:",
                      f"127.0.0.1:{self.data_port} inet n - n - - smtpd",
                      "  -o content_filter=discard:",
                      "  -o smtpd_discard_ehlo_keywords=chunking"]
        lines += [f"{name} {kind} {private} - n {wakeup} {limit} {command}"
                  for name, kind, private, wakeup, limit, command in services]
        (self.config / "master.cf").write_text("\n".join(lines) + "\n")

    def _postfix(self, *args):
        completed = subprocess.run([POSTFIX, "-c", str(self.config), *args],
                                   stdin=subprocess.DEVNULL, capture_output=True)
        if completed.returncode != 0:
            raise BenchError(f"postfix {' '.join(args)} exited with {completed.returncode}"
                             f" (see {self.top}/maillog): {self.maillog_tail()}; "
                             f"{completed.stderr.decode().strip()}")

    def maillog_tail(self):
        try:
            return " | ".join((self.top / "maillog").read_text().splitlines()[-3:])
        except OSError:
            return "no maillog"

    def start(self):
        if os.geteuid() != 0:
            raise BenchError("a private Postfix instance needs root (postfix start)")
        if not os.access(POSTFIX, os.X_OK):
            raise BenchError(f"{POSTFIX} is not installed (Debian package postfix)")
        self.top = pathlib.Path(tempfile.mkdtemp(prefix="bench-postfix-"))
        # Its unix sockets (queue/private/NAME) must fit in sun_path's 108
        # octets, which a TMPDIR deep inside test sessions does not leave.
        if len(str(self.top / "queue" / "private" / "proxywrite")) >= 100:
            self.top.rmdir()
            self.top = pathlib.Path(tempfile.mkdtemp(prefix="bench-postfix-", dir="/tmp"))
        # Postfix's daemons run as postfix and its sendmail as postdrop:
        # they must reach the queue below it, through every folder above.
        self.top.chmod(0o755)
        for folder in self.top.parents:
            if not folder.stat().st_mode & stat.S_IXOTH:
                raise BenchError(f"Postfix's own users cannot enter {folder} (mode "
                                 f"{stat.S_IMODE(folder.stat().st_mode):o}): "
                                 f"chmod o+x {folder}, or give another TMPDIR")
        self.config = self.top / "config"
        self.queue = self.top / "queue"
        self._write_config()
        self.queue.mkdir(mode=0o755)
        self._postfix("start")
        self.started = True
        benchlib.wait_until(lambda: benchlib.port_accepts(self.port)
                            and benchlib.port_accepts(self.hold_port), 20, "Postfix's smtpd")
        return self

    def master_pid(self):
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self):
        """The master and its live children."""
        master = self.master_pid()
        pids = [master]
        for stat_file in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master and fields[0] != "Z":
                pids.append(int(stat_file.parent.name))
        return pids

    def memory(self):
        """The summed RSS and PSS of all its processes."""
        rss = pss = 0
        for pid in self.pids():
            try:
                rss += benchlib.proc_status_bytes(pid, "VmRSS")
                pss += benchlib.pss_bytes(pid)
            except (OSError, BenchError):
                continue
        return rss, pss

    def stop(self):
        if self.started:
            master = self.master_pid()
            try:
                self._postfix("stop")
            except BenchError:
                pass
            if master:
                try:
                    benchlib.wait_until(lambda: not pathlib.Path(f"/proc/{master}").exists()
                                        or open(f"/proc/{master}/stat").read().rsplit(")", 1)[1]
                                        .split()[0] == "Z", 20, "Postfix's master to exit")
                except BenchError:
                    os.kill(master, 9)
            self.started = False
        # Within tools/bench, the run deletes it at its end (see bench.py).
        if self.top and not os.environ.get("OUTBOX_TEST_ENV_KEEP_IN"):
            shutil.rmtree(self.top, ignore_errors=True)
        self.top = None

    def hold_count(self):
        return sum(1 for _ in (self.queue / "hold").iterdir())

    def send_smtp(self, port, message_file, count):
        completed = subprocess.run(
            [benchlib.SMTP_SOURCE, "-s", "1", "-d", "-m", str(count), "-F", str(message_file),
             "-f", benchlib.SENDER, "-t", benchlib.RECIPIENT, f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, capture_output=True)
        if completed.returncode != 0:
            raise BenchError(f"smtp-source into Postfix exited with {completed.returncode}: "
                             f"{completed.stderr.decode().strip()}")

    def release_all(self):
        for command in ([POSTSUPER, "-c", str(self.config), "-H", "ALL"],
                        [POSTQUEUE, "-c", str(self.config), "-f"]):
            completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True)
            if completed.returncode != 0:
                raise BenchError(f"{command[0]} exited with {completed.returncode}: "
                                 f"{completed.stderr.decode().strip()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def postfix(sink, message_file, count, per_process, reps):
    """Postfix relaying to the sink: drain of count held messages (smtp-
    source into the holding smtpd, then postsuper -H ALL and postqueue -f),
    count messages from smtp-source over one connection until accepted and
    until at the sink, and its sendmail one process per message."""
    with PrivatePostfix(sink.port) as instance:
        instance.start()
        time.sleep(1)
        rss, pss = instance.memory()
        result = {"messages": count, "idle_rss_bytes": rss, "idle_pss_bytes": pss,
                  "idle_processes": len(instance.pids()),
                  "drain_seconds": [], "smtp_accepted_seconds": [],
                  "smtp_end_to_end_seconds": [], "sendmail_messages": per_process,
                  "sendmail_submitted_seconds": [], "sendmail_end_to_end_seconds": []}
        for rep in range(reps):
            instance.send_smtp(instance.hold_port, message_file, count)
            benchlib.wait_until(lambda: instance.hold_count() >= count, 120,
                                f"{count} messages on hold in Postfix")
            target = sink.count + count
            started = time.monotonic()
            instance.release_all()
            result["drain_seconds"].append(sink.wait_count(target, 600) - started)

            target = sink.count + count
            started = time.monotonic()
            instance.send_smtp(instance.port, message_file, count)
            result["smtp_accepted_seconds"].append(time.monotonic() - started)
            result["smtp_end_to_end_seconds"].append(sink.wait_count(target, 600) - started)

            batch = [([POSTFIX_SENDMAIL, "-C", str(instance.config), "-t", "-i"],
                      benchlib.message(rep * per_process + i)) for i in range(per_process)]
            target = sink.count + per_process
            started = time.monotonic()
            benchlib.run_per_process(batch)
            result["sendmail_submitted_seconds"].append(time.monotonic() - started)
            result["sendmail_end_to_end_seconds"].append(sink.wait_count(target, 600) - started)
        for name, number in (("drain", count), ("smtp_accepted", count),
                             ("smtp_end_to_end", count), ("sendmail_submitted", per_process),
                             ("sendmail_end_to_end", per_process)):
            result[f"{name}_per_second"] = benchlib.rate(
                number, benchlib.median(result[f"{name}_seconds"]))
        return result
