#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""outboxd under valgrind's memcheck through a life of real work: three
ways to submit, deliveries to smtp-sink and over STARTTLS with AUTH to
aiosmtpd, a 4xx deferral and its retry, a refused certificate, hold,
release and cancel, the queue listed, an account tested, and a SIGTERM at
the end.  No invalid read or write and no byte definitely lost may show,
in the daemon's code or anywhere else outside the suppressions of
tests/valgrind.supp (GLib's own lifetime allocations only).

Not registered in a sanitizer build: valgrind and ASan cannot share a
process."""

import os
import pathlib
import re
import shutil
import tempfile

import outboxtest
from outboxtest import (ACCOUNTS_IFACE, QUEUE_IFACE, AioSmtpServer, Certificates, GLib,
                        OutboxTestCase, ScriptedSmtpServer, call_outbox, make_message,
                        sanitizers, sendmail)

SUPPRESSIONS = outboxtest.HERE.parent / "valgrind.supp"
# memcheck's status when it found an error or a definite leak.
MEMCHECK_FAILED = 99
# Everything runs twenty to fifty times slower under memcheck.
SLOW = 180
# A deferred message must wait for a command, not for the clock.
RETRY_FIRST = 3600
# A pin no certificate of this test has.
WRONG_PIN = "sha256:" + "00" * 32


def address(account):
    """Each account has its own address: outbox-sendmail picks the account
    by the From of the message."""
    return f"{account}@example.org"


def memcheck_command(log_file):
    return ["valgrind", "--tool=memcheck", "--leak-check=full",
            "--errors-for-leak-kinds=definite", f"--error-exitcode={MEMCHECK_FAILED}",
            f"--suppressions={SUPPRESSIONS}", "--num-callers=40", f"--log-file={log_file}"]


def memcheck_findings(log):
    """Every error report of a memcheck log, and every definite leak with
    its stack: one string per finding."""
    findings = []
    current = None
    for line in log.splitlines():
        text = re.sub(r"^==\d+== ?", "", line)
        starts = (re.match(r"(Invalid (read|write|free)|Mismatched free|"
                           r"Conditional jump|Use of uninitialised|Syscall param|"
                           r"Source and destination overlap)", text)
                  or re.search(r"are definitely lost in loss record", text))
        if starts:
            current = [text]
            findings.append(current)
        elif current is not None and text.strip():
            current.append(text)
        else:
            current = None
    return ["\n".join(finding) for finding in findings]


class ValgrindDaemonTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.certificates = Certificates()

    def setUp(self):
        super().setUp()
        if shutil.which("valgrind") is None:
            self.skipTest("valgrind is not installed")
        if sanitizers() != "none":
            self.skipTest("valgrind cannot run a sanitized build")
        self.log_dir = pathlib.Path(tempfile.mkdtemp(prefix="valgrind-"))
        self.log_file = self.log_dir / "outboxd.memcheck"

    # The daemon --------------------------------------------------------------

    def start_daemon_under_memcheck(self):
        env = dict(os.environ, G_SLICE="always-malloc", G_DEBUG="gc-friendly")
        pid = self.outbox.start_daemon(wrapper=memcheck_command(self.log_file), env=env)
        self.addCleanup(self.outbox.stop_daemon, timeout=SLOW)
        return pid

    def stop_daemon_and_read_log(self, pid):
        self.assertEqual(self.outbox.daemon_pid(), pid,
                         "the daemon under memcheck is no longer the one on the bus")
        status = self.outbox.stop_daemon(timeout=SLOW)
        log = self.log_file.read_text(encoding="utf-8", errors="replace")
        return status, log

    # The work ----------------------------------------------------------------

    def add_accounts(self, sink, tls_server, flaky):
        self.outbox.add_account("sink", address("sink"), sink.url(), default=True)
        self.outbox.add_account("tls", address("tls"),
                                f"smtp://{AioSmtpServer.USER}@localhost:{tls_server.port}",
                                password=AioSmtpServer.PASSWORD,
                                tls_ca_file=str(self.certificates.ca_cert))
        self.outbox.add_account("flaky", address("flaky"), flaky.url())
        self.outbox.check("account", "update", "flaky", "--retry-first", str(RETRY_FIRST))
        self.outbox.check("account", "add", "pinned", "--from", address("pinned"),
                          "--smtp", f"smtp://{AioSmtpServer.USER}@localhost:{tls_server.port}",
                          "--tls-fingerprint", WRONG_PIN, "--retry-first", str(RETRY_FIRST),
                          "--password-stdin", input=AioSmtpServer.PASSWORD + "\n")

    def message(self, account, subject, to="bob@example.org"):
        return make_message([("From", address(account)), ("To", to), ("Subject", subject)])

    def send(self, account, subject, to="bob@example.org"):
        return self.outbox.send(self.message(account, subject, to), account=account)

    def submit_data(self, account, subject, hold=False):
        options = {"account": GLib.Variant("s", account), "hold": GLib.Variant("b", hold)}
        [message_id] = call_outbox(QUEUE_IFACE, "SubmitData",
                                   GLib.Variant("(aya{sv})",
                                                (self.message(account, subject), options)),
                                   "(s)", timeout=SLOW)
        return message_id

    def assertSent(self, message_id):
        state = self.outbox.wait_final(message_id, timeout=SLOW)
        self.assertEqual(state["state"], "sent", state)

    def deliver_to_sink(self, sink):
        self.assertSent(self.send("sink", "by outbox send"))
        self.assertSent(self.submit_data("sink", "by SubmitData"))
        result = sendmail("-t", "-oi", input=self.message("sink", "by outbox-sendmail"),
                          timeout=SLOW)
        self.assertEqual(result.rc, 0, result)
        messages = sink.wait_messages(3, timeout=SLOW)
        subjects = sorted(m.headers("Subject")[0] for m in messages)
        self.assertEqual(subjects, ["by SubmitData", "by outbox send", "by outbox-sendmail"])

    def deliver_over_starttls(self, tls_server):
        self.assertSent(self.send("tls", "over STARTTLS"))
        [received] = tls_server.wait_messages(1, timeout=SLOW)
        self.assertTrue(received["tls"] and received["authenticated"], received)

    def defer_and_retry(self, flaky):
        message_id = self.send("flaky", "deferred once", to="later@example.org")
        state = self.outbox.wait_state(message_id, "deferred", timeout=SLOW)
        self.assertIn("450", outboxtest.replies_of(state), state)
        self.outbox.check("retry", message_id)
        self.assertSent(message_id)
        flaky.wait_messages(1, timeout=SLOW)

    def hold_release_cancel(self):
        # A certificate that does not match the pin: deferred, then held,
        # released and cancelled.
        refused = self.send("pinned", "wrong pin")
        self.outbox.wait_state(refused, "deferred", timeout=SLOW)
        self.outbox.check("hold", refused)
        self.outbox.wait_state(refused, "held", timeout=SLOW)
        self.outbox.check("release", refused)
        self.outbox.wait_state(refused, "deferred", timeout=SLOW)
        self.outbox.check("cancel", refused)
        ids = [m["id"] for m in self.outbox.json("queue", "--all", "--json")["messages"]]
        self.assertNotIn(refused, ids)
        # Submitted on hold, then let go.
        held = self.submit_data("sink", "held first", hold=True)
        self.outbox.wait_state(held, "held", timeout=SLOW)
        self.outbox.check("release", held)
        self.assertSent(held)

    def inspect(self):
        queue = self.outbox.json("queue", "--json")
        self.assertEqual(queue["messages"], [], queue)
        everything = self.outbox.json("queue", "--all", "--json")
        self.assertGreaterEqual(len(everything["messages"]), 6, everything)
        self.outbox.json("status", "--json")
        [results] = call_outbox(ACCOUNTS_IFACE, "Test", GLib.Variant("(s)", ("tls",)),
                                "(a{sv})", timeout=SLOW)
        self.assertTrue(results["smtp"]["ok"], results)

    # The test ----------------------------------------------------------------

    def test_daemon_work_under_memcheck(self):
        sink = self.start_sink()
        tls_server = self.start_aiosmtpd(certificates=self.certificates, auth=True)
        flaky = ScriptedSmtpServer(rcpt={"later@example.org": ["450 4.2.0 try later",
                                                               "250 2.1.5 OK"]}).start()
        self.addCleanup(flaky.stop)
        pid = self.start_daemon_under_memcheck()

        self.add_accounts(sink, tls_server, flaky)
        self.deliver_to_sink(sink)
        self.deliver_over_starttls(tls_server)
        self.defer_and_retry(flaky)
        self.hold_release_cancel()
        self.inspect()

        status, log = self.stop_daemon_and_read_log(pid)
        findings = "\n\n".join(memcheck_findings(log))
        self.assertNotEqual(status, MEMCHECK_FAILED, f"memcheck found errors:\n{findings}")
        self.assertEqual(status, 0, f"outboxd exited with {status}")
        self.assertIn("ERROR SUMMARY: 0 errors", log, findings or log[-4000:])
        lost = re.search(r"definitely lost: ([\d,]+) bytes", log)
        if lost:
            self.assertEqual(lost.group(1), "0", findings)
        self.assertEqual(findings, "", findings)


if __name__ == "__main__":
    outboxtest.main()
