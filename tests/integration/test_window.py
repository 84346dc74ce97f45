# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""outbox-window on a private X server (Xvfb) and a private accessibility
bus, driven the way a screen reader would: through AT-SPI (pyatspi).  Two
smtp-sinks: one that takes everything and one that refuses every RCPT, on
a port that a taking sink takes over later.  The window shows a failed, a
held and an undo-send message; it writes a screenshot of itself (the
OUTBOX_WINDOW_SCREENSHOT mechanism) into the build tree's artifacts, and
into docs/outbox-window.png too when OUTBOX_UPDATE_SCREENSHOT=1.  Then the
failed row's Retry button, found by its accessible name, is pressed and
the message goes out; and ActivateAction("show-message") over D-Bus, as a
notification does, selects that message's row."""

import os
import pathlib
import shutil
import struct
import subprocess
import time

import outboxtest
from outboxtest import SmtpSink, OutboxTestCase, wait_until

import pyatspi

WINDOW = outboxtest.BUILD_DIR / "window" / "outbox-window"
ARTIFACTS = outboxtest.BUILD_DIR / "tests" / "artifacts"
SOURCE_DIR = pathlib.Path(os.environ["OUTBOX_SOURCE_DIR"])
APP_ID = "org.outbox.Outbox"
APP_PATH = "/org/outbox/Outbox"


def start_xvfb():
    """Xvfb on a display it picks itself; returns (process, ":N")."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                                "1280x800x24", "-nolisten", "tcp"],
                               pass_fds=(write_end,), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    if not number:
        outboxtest.terminate(process)
        raise AssertionError(f"Xvfb did not start (exit status {process.poll()})")
    return process, f":{number}"


def start_accessibility_bus(display):
    """The accessibility bus of the test session: the launcher registers
    org.a11y.Bus on the private session bus, where GTK and pyatspi ask."""
    env = dict(os.environ, DISPLAY=display)
    process = subprocess.Popen(["/usr/libexec/at-spi-bus-launcher", "--launch-immediately"],
                               env=env, stdin=subprocess.DEVNULL)
    wait_until(lambda: name_has_owner("org.a11y.Bus"), 10, "the accessibility bus")
    return process


def name_has_owner(name):
    result = subprocess.run(
        ["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
         "--object-path", "/org/freedesktop/DBus",
         "--method", "org.freedesktop.DBus.NameHasOwner", name],
        capture_output=True, text=True)
    return "true" in result.stdout


def message(subject, to):
    return outboxtest.make_message([("From", "alice@example.org"), ("To", to),
                                    ("Subject", subject)])


def png_size(path):
    data = pathlib.Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG")
    return struct.unpack(">II", data[16:24])


def descendants(accessible):
    """Every accessible under accessible, depth first."""
    stack = [accessible]
    while stack:
        node = stack.pop()
        yield node
        try:
            stack.extend(child for child in node if child is not None)
        except Exception:  # a row recycled while we walk
            continue


def find_app():
    desktop = pyatspi.Registry.getDesktop(0)
    for app in desktop:
        if app is not None and app.name in ("outbox-window", "Outbox"):
            return app
    return None


def ancestor_with_role(node, role):
    while node is not None and node.getRole() != role:
        node = node.parent
    return node


class WindowTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.xvfb, cls.display = start_xvfb()
        cls.a11y = start_accessibility_bus(cls.display)
        cls.sink = SmtpSink().start()
        cls.refusing = SmtpSink(extra_args=("-f", "RCPT")).start()
        outbox = outboxtest.Outbox()
        outbox.add_account("sink", "alice@example.org", cls.sink.url(), default=True)
        outbox.add_account("failing", "alice@example.org", cls.refusing.url())
        cls.failed_id = outbox.send(message("quarterly report", "bob@example.org"),
                                    "bob@example.org", account="failing")
        outbox.wait_state(cls.failed_id, "failed")
        cls.held_id = outbox.check("send", "--hold", "carol@example.org",
                                   input=message("draft on hold", "carol@example.org")
                                   ).stdout.strip()
        cls.undo_id = outbox.check("send", "--delay", "600", "dave@example.org",
                                   input=message("second thoughts", "dave@example.org")
                                   ).stdout.strip()
        cls.window = cls.start_window()

    @classmethod
    def start_window(cls):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.screenshot = ARTIFACTS / "outbox-window.png"
        cls.screenshot.unlink(missing_ok=True)
        env = dict(os.environ, DISPLAY=cls.display, GDK_BACKEND="x11", GTK_A11Y="atspi",
                   # no GL on Xvfb: the software renderer draws the same everywhere
                   GSK_RENDERER="cairo", OUTBOX_WINDOW_SCREENSHOT=str(cls.screenshot),
                   LANG="C.UTF-8")
        env.pop("WAYLAND_DISPLAY", None)
        with open(outboxtest.SESSION_LOG, "ab") as log:
            return subprocess.Popen([str(WINDOW)], env=env, stdin=subprocess.DEVNULL,
                                    stderr=log)

    @classmethod
    def tearDownClass(cls):
        for process in (cls.window, cls.a11y, cls.xvfb):
            outboxtest.terminate(process)
        cls.sink.stop()
        cls.refusing.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.window.poll(), "outbox-window exited")

    def wait_label(self, text, timeout=30):
        """The accessible of the label that says text, once the window shows it."""
        def found():
            app = find_app()
            if app is None:
                return None
            return next((node for node in descendants(app)
                         if node.getRole() == pyatspi.ROLE_LABEL and node.name == text), None)
        return wait_until(found, timeout, f"a label “{text}” in outbox-window", interval=0.3)

    def row_of(self, subject):
        row = ancestor_with_role(self.wait_label(subject), pyatspi.ROLE_LIST_ITEM)
        self.assertIsNotNone(row, f"the label “{subject}” is in no list item")
        return row

    def button_in(self, row, name):
        buttons = [node for node in descendants(row)
                   if node.getRole() == pyatspi.ROLE_PUSH_BUTTON and node.name == name]
        everything = [(node.getRoleName(), node.name) for node in descendants(row)]
        self.assertEqual(len(buttons), 1, f"{len(buttons)} {name} buttons in the row: {everything}")
        return buttons[0]

    def test_1_screenshot(self):
        wait_until(self.screenshot.exists, 30, f"the screenshot {self.screenshot}")
        width, height = png_size(self.screenshot)
        self.assertGreaterEqual((width, height), (900, 500), "the screenshot is too small")
        if os.environ.get("OUTBOX_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(self.screenshot, SOURCE_DIR / "docs" / "outbox-window.png")

    def test_2_rows_say_state_and_countdown(self):
        failed = self.row_of("quarterly report")
        texts = [node.name for node in descendants(failed) if node.getRole() == pyatspi.ROLE_LABEL]
        self.assertIn("Failed", texts)
        self.assertTrue(any("bob@example.org" in t for t in texts), texts)
        # smtp-sink's refusal, as the server said it
        self.assertTrue(any(t.startswith("5") for t in texts), f"no server reply in {texts}")
        held = self.row_of("draft on hold")
        self.button_in(held, "Release")
        undo = self.row_of("second thoughts")
        self.button_in(undo, "Cancel")
        countdown = [node.name for node in descendants(undo)
                     if "Cancel to undo" in (node.name or "")]
        self.assertEqual(len(countdown), 1, f"no undo countdown in the row: {countdown}")
        self.assertRegex(countdown[0], r"Sending in (9|10) min — Cancel to undo")

    def test_3_retry_button_sends_the_failed_message(self):
        before = self.outbox.show(self.failed_id)
        self.assertEqual(before["state"], "failed", before)
        # The same port now takes the message.
        port = self.refusing.port
        self.refusing.stop()
        taking = self.start_sink(port=port)
        retry = self.button_in(self.row_of("quarterly report"), "Retry")
        self.assertTrue(retry.queryAction().doAction(0), "Retry refused its action")
        # The press reaches the daemon asynchronously: first the message
        # leaves "failed" (or has one more attempt), then it is sent.
        wait_until(lambda: (lambda m: m["state"] != "failed" or m["attempts"] > before["attempts"])(
            self.outbox.show(self.failed_id)), 30, "the Retry press to reach the daemon",
            interval=0.2)
        after = self.outbox.wait_state(self.failed_id, "sent")
        self.assertGreater(after["attempts"], before["attempts"], after)
        [message] = taking.wait_messages(1)
        self.assertEqual(message.recipients, ["bob@example.org"])
        # The row follows the message in place: it now says Sent.
        wait_until(lambda: any(node.name == "Sent"
                               for node in descendants(self.row_of("quarterly report"))),
                   30, "the row to say Sent")

    def test_4_show_message_selects_the_row(self):
        row = self.row_of("draft on hold")
        self.assertFalse(row.getState().contains(pyatspi.STATE_SELECTED))
        subprocess.run(["gdbus", "call", "--session", "--dest", APP_ID, "--object-path", APP_PATH,
                        "--method", "org.freedesktop.Application.ActivateAction",
                        "show-message", f"[<'{self.held_id}'>]", "{}"],
                       check=True, capture_output=True, timeout=30)
        wait_until(lambda: self.row_of("draft on hold").getState().contains(pyatspi.STATE_SELECTED),
                   10, "the held message's row to be selected")
        failed_row = self.row_of("quarterly report")
        self.assertFalse(failed_row.getState().contains(pyatspi.STATE_SELECTED))


if __name__ == "__main__":
    outboxtest.main()
