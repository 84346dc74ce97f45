# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Storage faults (security.md 20, 21, 22): a full disk fails the
submission with StorageFailed and leaves nothing half-written; a corrupt or
truncated spool file is set aside, reported, never sent and never deleted,
and the daemon starts and delivers the rest; a spool that others can reach
keeps the daemon from starting, with a message that says what to do."""

import errno
import os
import pathlib
import subprocess
import tempfile

import outboxtest
from gi.repository import GLib
from outboxtest import (QUEUE_IFACE, OutboxTestCase, RawSmtpServer, call_outbox,
                        call_outbox_with_fds, dbus_error_of, list_all_messages, make_message,
                        run_daemon_expecting_exit, session_log_size, spool_dir,
                        start_daemon_with_args, tree_digest, wait_sink_messages)

SENDER = "alice@example.org"


def message(subject, body=b"Hello.\r\n"):
    return make_message([("From", SENDER), ("To", "bob@example.org"), ("Subject", subject)],
                        body)


def submit_data(data, account, hold=False):
    options = {"account": GLib.Variant("s", account), "hold": GLib.Variant("b", hold)}
    [message_id] = call_outbox(QUEUE_IFACE, "SubmitData",
                               GLib.Variant("(aya{sv})", (data, options)), "(s)")
    return message_id


def log_since(offset):
    with open(outboxtest.SESSION_LOG, "rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def fill_file_system(path):
    """Writes path until the file system is full."""
    chunk = b"\xff" * 65536
    with open(path, "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(chunk)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
        # The last pages: whatever a smaller write still finds.
        for size in (4096, 512, 1):
            try:
                while True:
                    filler.write(chunk[:size])
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise


class FullDiskTest(OutboxTestCase):
    """The daemon runs with its spool on a 2 MiB tmpfs that the test fills."""

    def mount_tmpfs(self):
        mount_point = pathlib.Path(tempfile.mkdtemp(prefix="spool-fs-"))
        completed = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700",
                                    "outbox-test", str(mount_point)],
                                   capture_output=True, text=True)
        if completed.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {completed.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", str(mount_point)], check=True)
        return mount_point

    def setUp(self):
        super().setUp()
        self.data_home = self.mount_tmpfs()
        self.spool = self.data_home / "outbox"
        self.outbox.stop_daemon()
        start_daemon_with_args(self.outbox, extra_env={"XDG_DATA_HOME": str(self.data_home)})
        self.addCleanup(self.outbox.stop_daemon)
        self.sink = self.start_sink()
        self.account = self.account_name()
        self.outbox.add_account(self.account, SENDER, self.sink.url())

    def spool_state(self):
        return list_all_messages(), tree_digest(self.spool / "queue")

    def assertNothingHalfWritten(self, before):
        # The daemon may answer a moment before it has removed the draft
        # (it is removed when the submission is freed, and at every start).
        outboxtest.wait_until(lambda: not os.listdir(self.spool / "tmp"), 5,
                              "the failed draft to be removed from tmp/")
        self.assertEqual(self.spool_state(), before, "the queue changed")

    def test_submissions_fail_with_storage_failed_and_leave_nothing(self):
        held = [submit_data(message(f"held {i}", b"kept %d\r\n" % i), self.account, hold=True)
                for i in range(2)]
        fill_file_system(self.data_home / "filler")
        before = self.spool_state()

        big = message("big", (b"x" * 76 + b"\r\n") * 2000)
        for data in (big, message("tiny")):
            with self.subTest(size=len(data)):
                name, text = dbus_error_of(submit_data, data, self.account)
                self.assertEqual(name, "org.outbox.Outbox1.Error.StorageFailed", text)
                self.assertNothingHalfWritten(before)

        with tempfile.TemporaryFile() as file:
            file.write(big)
            file.seek(0)
            name, text = dbus_error_of(call_outbox_with_fds, QUEUE_IFACE, "Submit",
                                       GLib.Variant("(ha{sv})", (0, {})), [file.fileno()])
        self.assertEqual(name, "org.outbox.Outbox1.Error.StorageFailed", text)
        self.assertNothingHalfWritten(before)

        # With room again, what was queued before goes out intact, and a new
        # submission works.
        (self.data_home / "filler").unlink()
        for message_id in held:
            self.outbox.check("release", message_id)
        later = submit_data(message("after the disk was full"), self.account)
        for message_id in held + [later]:
            self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        bodies = sorted(m.body() for m in wait_sink_messages(self.sink, 3))
        self.assertEqual(bodies, [b"Hello.\n", b"kept 0\n", b"kept 1\n"])


class SpoolFaultTest(OutboxTestCase):
    """Faults made while the session's daemon is stopped, found when it
    starts again."""

    def setUp(self):
        super().setUp()
        self.server = RawSmtpServer().start()
        self.addCleanup(self.server.stop)
        self.account = self.account_name()
        self.outbox.add_account(self.account, SENDER, self.server.url())
        self.damaged = submit_data(message("damaged"), self.account, hold=True)
        self.intact = submit_data(message("intact"), self.account, hold=True)
        self.outbox.stop_daemon()
        self.queue = spool_dir() / "queue"

    def start_again(self):
        offset = session_log_size()
        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        return offset

    def assertQuarantinedAtStart(self, expected_files):
        offset = self.start_again()
        ids = [m["id"] for m in list_all_messages()]
        self.assertNotIn(self.damaged, ids, "the damaged message is still queued")
        self.assertIn(self.intact, ids)
        log = log_since(offset)
        self.assertIn(self.damaged, log, "the quarantine was not reported")
        self.assertIn("quarantine", log)
        quarantine = tree_digest(spool_dir() / "quarantine")
        for name, digest in expected_files.items():
            self.assertEqual(quarantine.get(name), digest, f"{name} was not kept as it was")
        self.assertFalse(any(p.name.startswith(self.damaged) for p in self.queue.iterdir()))
        self.assertIntactDelivered()

    def assertIntactDelivered(self):
        self.outbox.check("release", self.intact)
        self.assertEqual(self.outbox.wait_final(self.intact)["state"], "sent")
        [payload] = self.server.wait_payloads(1)
        self.assertIn(b"Subject: intact\r\n", payload)

    def files_of(self, message_id):
        return {name: digest for name, digest in tree_digest(self.queue).items()
                if name.startswith(message_id)}

    # A message file (ID.msg) holds two record slots of 4 KiB, then the data.
    HEAD = 8192

    def message_file(self):
        return self.queue / f"{self.damaged}.msg"

    def test_corrupt_record_is_quarantined(self):
        path = self.message_file()
        # Inside the record itself: the rest of its slot is unused.
        slot = path.read_bytes()[:self.HEAD // 2]
        used = slot.find(b"\0")
        flip_byte(path, (used if used > 0 else len(slot)) // 3)
        self.assertQuarantinedAtStart(self.files_of(self.damaged))

    def test_truncated_record_is_quarantined(self):
        path = self.message_file()
        path.write_bytes(path.read_bytes()[:self.HEAD // 4])
        self.assertQuarantinedAtStart(self.files_of(self.damaged))

    def test_empty_record_is_quarantined(self):
        path = self.message_file()
        path.write_bytes(b"\0" * self.HEAD + path.read_bytes()[self.HEAD:])
        self.assertQuarantinedAtStart(self.files_of(self.damaged))

    def test_truncated_message_is_quarantined(self):
        path = self.message_file()
        path.write_bytes(path.read_bytes()[:-20])
        self.assertQuarantinedAtStart(self.files_of(self.damaged))

    def test_record_file_without_its_message_is_quarantined(self):
        # A record that outgrew its slots lives in ID.rec (two slots of its
        # own); here its message file is gone.
        path = self.message_file()
        (self.queue / f"{self.damaged}.rec").write_bytes(path.read_bytes()[:self.HEAD])
        path.unlink()
        self.assertQuarantinedAtStart(self.files_of(self.damaged))

    def test_orphan_message_file_is_quarantined(self):
        # The older form: ID.eml with the data alone, and no ID.rec.
        path = self.message_file()
        (self.queue / f"{self.damaged}.eml").write_bytes(path.read_bytes()[self.HEAD:])
        path.unlink()
        self.assertQuarantinedAtStart(self.files_of(self.damaged))

    def test_corrupt_message_of_the_right_size_is_never_sent(self):
        path = self.message_file()
        flip_byte(path, len(path.read_bytes()) - 4)
        # Releasing rewrites the record slots; the data must stay as it is.
        damaged_data = path.read_bytes()[self.HEAD:]
        offset = self.start_again()
        self.assertIn(self.damaged, [m["id"] for m in list_all_messages()])

        self.outbox.check("release", self.damaged)
        outboxtest.wait_until(
            lambda: self.damaged not in [m["id"] for m in list_all_messages()],
            30, "the damaged message to leave the queue")
        self.assertEqual(self.server.payloads(), [], "the damaged message was sent")
        self.assertIn(self.damaged, log_since(offset))
        kept = spool_dir() / "quarantine" / f"{self.damaged}.msg"
        self.assertEqual(kept.read_bytes()[self.HEAD:], damaged_data, "the data was not kept as it was")
        self.assertIntactDelivered()


class SpoolPermissionTest(OutboxTestCase):
    def setUp(self):
        super().setUp()
        # A daemon creates the spool once; then it is stopped.
        self.outbox.check("status")
        self.outbox.stop_daemon()
        self.spool = spool_dir()
        self.addCleanup(os.chmod, self.spool, 0o700)

    def assertRefusesToStart(self, *hints):
        status, stderr = run_daemon_expecting_exit()
        self.assertNotEqual(status, 0, "outboxd started on an unsafe spool")
        self.assertIn(str(self.spool), stderr)
        for hint in hints:
            self.assertIn(hint, stderr, "the message does not say what to do")

    def test_spool_open_to_others_is_refused(self):
        for mode in (0o755, 0o750, 0o701, 0o770, 0o777):
            with self.subTest(mode=oct(mode)):
                os.chmod(self.spool, mode)
                self.assertRefusesToStart(f"chmod 700 {self.spool}")

    def test_spool_of_another_user_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("only root can give the spool to another user")
        self.addCleanup(os.chown, self.spool, os.geteuid(), os.getegid())
        os.chown(self.spool, 65534, 65534)
        self.assertRefusesToStart("chown")

    def test_private_spool_starts(self):
        # The control for the tests above.
        os.chmod(self.spool, 0o700)
        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        self.assertIsNotNone(self.outbox.daemon_pid())


if __name__ == "__main__":
    outboxtest.main()
