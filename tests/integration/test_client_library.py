# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""libOutbox against the real daemon: the C GTest (tests/test-client.c),
and Python (PyGObject) and GJS programs (tests/client/) on the build
tree's typelib, with Postfix's smtp-sink as the submission server: one
that takes everything, and one that refuses every RCPT with a 500.  What
the programs say they saw is checked against what reached the sink."""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import outboxtest
from outboxtest import SmtpSink, Outbox, OutboxTestCase

CLIENT_DIR = outboxtest.BUILD_DIR / "client"
TEST_CLIENT = outboxtest.BUILD_DIR / "tests" / "test-client"
PROGRAMS = pathlib.Path(os.environ["OUTBOX_SOURCE_DIR"]) / "tests" / "client"
# tools/install-deps installs it; a missing gjs fails the GJS tests.
GJS = shutil.which("gjs") or "gjs"
FIVE_MB = 5 * 1024 * 1024


def sanitizer_runtimes():
    """In a sanitizer build, libOutbox needs the sanitizer runtimes loaded
    first, which only the programs built with them (test-client) do."""
    if outboxtest.sanitizers() == "none":
        return []
    names = {"address": "libasan.so", "undefined": "libubsan.so"}
    return [subprocess.run(["cc", f"-print-file-name={names[s]}"], capture_output=True,
                           text=True, check=True).stdout.strip()
            for s in outboxtest.sanitizers().split(",") if s in names]


def client_env():
    env = dict(os.environ)
    env["GI_TYPELIB_PATH"] = str(CLIENT_DIR)
    env["LD_LIBRARY_PATH"] = str(CLIENT_DIR)
    runtimes = sanitizer_runtimes()
    if runtimes:
        env["LD_PRELOAD"] = " ".join(runtimes)
        # The interpreters keep their objects to the end by design; the
        # library's own leaks are test-client's to find.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


def subjects(sink):
    return [m.headers("Subject")[0] for m in sink.messages() if m.headers("Subject")]


class ClientLibraryTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.refusing = SmtpSink(extra_args=("-f", "RCPT")).start()
        outbox = Outbox()
        outbox.add_account("sink", "alice@example.org", cls.sink.url(), default=True)
        outbox.add_account("failing", "alice@example.org", cls.refusing.url())

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        cls.refusing.stop()
        super().tearDownClass()

    def wait_subject(self, sink, subject, count=1):
        return outboxtest.wait_until(
            lambda: sink.complete_messages() is not None and subjects(sink).count(subject) >= count,
            60, f"{subject!r} at smtp-sink")

    def run_program(self, command, stdin_line=None, before_line=None):
        """Runs a client program; returns its last JSON line.  With
        stdin_line, calls before_line() when the program says it failed,
        then sends the line."""
        process = subprocess.Popen(command, env=client_env(), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(outboxtest.terminate, process)
        lines = []
        if before_line is not None:
            first = process.stdout.readline()
            if not first:
                _, err = process.communicate(timeout=30)
                self.fail(f"{command} said nothing: {err}")
            lines.append(json.loads(first))
            before_line(lines[0])
            process.stdin.write(stdin_line)
            process.stdin.flush()
        try:
            out, err = process.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            self.fail(f"{command} did not finish: {err}\n{out}")
        self.assertEqual(process.returncode, 0, f"{command}: {err}\n{out}")
        lines += [json.loads(line) for line in out.splitlines() if line.strip()]
        return lines

    # C ------------------------------------------------------------------

    def test_c_library(self):
        before = len(self.sink.dump_files())
        result = subprocess.run([str(TEST_CLIENT), "--tap"], capture_output=True, text=True,
                                timeout=240)
        self.assertEqual(result.returncode, 0, f"{result.stdout}\n{result.stderr}")
        self.assertNotIn("not ok", result.stdout)
        self.assertIn("ok 13 /client/daemon-restart", result.stdout)

        # What the library said was sent is at the sink, whole.
        for subject in ("bytes", "big bytes", "memory stream", "pipe stream", "file",
                        "live one", "async actions", "after the restart", "across a restart"):
            self.wait_subject(self.sink, subject)
        self.assertNotIn("live two", subjects(self.sink), "a cancelled message went out")
        self.assertNotIn("errors", subjects(self.sink))
        by_subject = {m.headers("Subject")[0]: m for m in self.sink.messages()
                      if m.headers("Subject")}
        piped = by_subject["pipe stream"]
        self.assertNotIn(b"garbage line", piped.data, "the stream was not read from where it stood")
        self.assertEqual(len(piped.body().splitlines()), 200 * 1024 // 76 + 1)
        self.assertGreaterEqual(len(by_subject["big bytes"].data), 3 * 1024 * 1024)
        self.assertEqual(by_subject["bytes"].recipients, ["bob@example.org"])
        self.assertGreaterEqual(len(self.sink.dump_files()) - before, 9)
        # The refused message reached the refusing sink's RCPT only.
        self.assertEqual(self.refusing.dump_files(), [])

    # The README's examples, as printed ----------------------------------------

    def readme_block(self, language):
        readme = (PROGRAMS.parent.parent / "README.md").read_text(encoding="utf-8")
        section = readme.split("## From a program: libOutbox", 1)[1].split("\n## ", 1)[0]
        return section.split(f"```{language}\n", 1)[1].split("```", 1)[0]

    def test_readme_examples(self):
        work = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))
        (work / "message.eml").write_bytes(
            b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: README %s\r\n\r\nHi.\r\n")
        (work / "hello.py").write_text(self.readme_block("python"))
        (work / "hello.c").write_text(self.readme_block("c"))
        env = client_env()
        # The build tree's outbox-1-uninstalled.pc stands in for outbox-1.pc.
        env["PKG_CONFIG_PATH"] = str(outboxtest.BUILD_DIR / "meson-uninstalled")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "outbox-1"], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        subprocess.run(["cc", "-Wall", "-Werror", "-o", str(work / "hello"), str(work / "hello.c"),
                        *flags], env=env, check=True, cwd=work)

        python = subprocess.run(["/usr/bin/python3", "hello.py"], env=env, cwd=work,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(python.returncode, 0, python.stderr)
        c = subprocess.run([str(work / "hello")], env=env, cwd=work, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(c.returncode, 0, c.stderr)
        python_id = python.stdout.strip()
        c_id = c.stdout.strip().removeprefix("queued as ")
        for message_id in (python_id, c_id):
            self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        self.wait_subject(self.sink, "README %s", count=2)

        # An error is outboxd's sentence and a non-zero exit.
        (work / "message.eml").write_bytes(b"no header at all\r\n")
        c = subprocess.run([str(work / "hello")], env=env, cwd=work, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(c.returncode, 1)
        self.assertNotIn("GDBus", c.stderr)
        self.assertTrue(c.stderr.strip(), c)

    # The bus's errors ---------------------------------------------------------

    def test_bus_errors(self):
        """On a private bus with no service: nothing can start outboxd;
        then a stand-in without Get; then one that exits on Flush."""
        work = pathlib.Path(self.enterContext(tempfile.TemporaryDirectory()))
        config = work / "bus.conf"
        config.write_text(f"""<busconfig><type>session</type>
<listen>unix:dir={work}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>""")
        bus = subprocess.Popen(["dbus-daemon", f"--config-file={config}", "--nofork",
                                "--print-address"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(outboxtest.terminate, bus)
        env = client_env()
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()

        def error_of(case):
            result = subprocess.run(["/usr/bin/python3", str(PROGRAMS / "bus-errors.py"), case],
                                    env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 0, result.stderr)
            error = json.loads(result.stdout)
            self.assertEqual(error["domain"], "outbox-client-error-quark", error)
            self.assertNotIn("GDBus.Error", error["message"])
            return error

        unavailable = error_of("unavailable")
        self.assertEqual(unavailable["code"], "daemon-unavailable", unavailable)
        self.assertIn("outboxd is not available", unavailable["message"])

        stand_in = subprocess.Popen(["/usr/bin/python3", str(PROGRAMS / "stand-in.py")], env=env,
                                    stdout=subprocess.PIPE, text=True)
        self.addCleanup(outboxtest.terminate, stand_in)
        self.assertEqual(stand_in.stdout.readline().strip(), "ready")
        incompatible = error_of("incompatible")
        self.assertEqual(incompatible["code"], "incompatible-daemon", incompatible)
        no_reply = error_of("no-reply")
        self.assertEqual(no_reply["code"], "no-reply", no_reply)
        self.assertIn("whether it did what was asked is not known", no_reply["message"])

    # Python and GJS ---------------------------------------------------------

    def check_sent(self, report, subject, size):
        self.assertEqual(report["states"][-1], "sent", report)
        self.assertTrue(report["same_object"], report)
        self.assertGreaterEqual(report["size"], size)
        self.assertEqual(report["subject"], subject)
        message = self.wait_subject(self.sink, subject) and \
            [m for m in self.sink.messages() if m.headers("Subject") == [subject]][-1]
        self.assertGreaterEqual(len(message.data), size - 100000)

    def test_python_stream_of_5_mb(self):
        [report] = self.run_program(["/usr/bin/python3", str(PROGRAMS / "watch.py"),
                                     "send", str(FIVE_MB)])
        self.check_sent(report, "from Python", FIVE_MB)
        self.assertEqual(report["recipients"], ["bob@example.org"])
        self.assertTrue(report["position_is_last"], report)
        self.assertGreaterEqual(report["rows_added"], 1)
        self.assertEqual(self.outbox.show(report["id"])["state"], "sent")

    def test_gjs_stream_of_5_mb(self):
        [report] = self.run_program([GJS, "-m", str(PROGRAMS / "watch.js"), "send", str(FIVE_MB)])
        self.check_sent(report, "from GJS", FIVE_MB - 200)
        self.assertEqual(self.outbox.show(report["id"])["state"], "sent")

    def retry_through_flaky_server(self, command, subject):
        """A server that refuses, then is replaced by one that takes: the
        program sees "failed", retries, and sees "sent"."""
        refusing = self.start_sink("-f", "RCPT")
        name = self.account_name()
        self.outbox.add_account(name, "alice@example.org", refusing.url())
        taking = []

        def replace_server(failed):
            self.assertIn("500", failed["last_reply"], failed)
            self.assertEqual(self.outbox.show(failed["failed"])["state"], "failed")
            refusing.stop()
            taking.append(self.start_sink(port=refusing.port))

        failed, report = self.run_program(command + [name], stdin_line="go\n",
                                          before_line=replace_server)
        self.assertEqual(failed["failed"], report["id"])
        self.assertEqual(report["attempts"], 2, report)
        self.assertIn("failed", report["states"], report)
        self.assertEqual(report["states"][-1], "sent", report)
        taking[0].wait_messages(1)
        self.assertEqual(subjects(taking[0]), [subject])

    def test_python_retry(self):
        self.retry_through_flaky_server(
            ["/usr/bin/python3", str(PROGRAMS / "watch.py"), "retry"], "retried from Python")

    def test_gjs_retry(self):
        self.retry_through_flaky_server([GJS, "-m", str(PROGRAMS / "watch.js"), "retry"],
                                        "from GJS")


if __name__ == "__main__":
    outboxtest.main()
