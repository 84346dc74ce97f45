# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""outbox-window on a private X server (Xvfb) and a private accessibility
bus, driven the way a screen reader would: through AT-SPI (pyatspi).  Two
smtp-sinks: one that takes everything and one that refuses every RCPT, on
a port that a taking sink takes over later; and an aiosmtpd server that
refuses the password the account was given.  The window shows a failed, a
held, an undo-send and a deferred message, and the account's bar, once
started as D-Bus activation starts it (--gapplication-service) and asked
to show the failed message, as a notification does; it writes a screenshot of itself (the
OUTBOX_WINDOW_SCREENSHOT mechanism) into the build tree's artifacts, and
into docs/outbox-window.png too when OUTBOX_UPDATE_SCREENSHOT=1.  Then the
failed row's Retry button, found by its accessible name, is pressed and
the message goes out; and ActivateAction("show-message") over D-Bus, as a
notification does, selects that message's row; and the account bar's
Enter Password… opens a dialog whose entry takes the password typed
through the X server, after which the account is fine and its message sent."""

import os
import pathlib
import re
import shutil
import struct
import subprocess
import time

import outboxtest
from outboxtest import AioSmtpServer, SmtpSink, OutboxTestCase, wait_until

import pyatspi
from gi.repository import GLib

WINDOW = outboxtest.BUILD_DIR / "window" / "outbox-window"
ARTIFACTS = outboxtest.BUILD_DIR / "tests" / "artifacts"
SOURCE_DIR = pathlib.Path(os.environ["OUTBOX_SOURCE_DIR"])
APP_ID = "org.outbox.Outbox"
APP_PATH = "/org/outbox/Outbox"
LOCKED = "locked"
# The undo-send time: counted in seconds, and long enough for the tests
# before the one that cancels the message.
UNDO_DELAY = 110


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


def activate_action(name, parameters):
    """org.freedesktop.Application.ActivateAction on the window's application."""
    subprocess.run(["gdbus", "call", "--session", "--dest", APP_ID, "--object-path", APP_PATH,
                    "--method", "org.freedesktop.Application.ActivateAction",
                    name, parameters, "{}"],
                   check=True, capture_output=True, timeout=30)


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
        cls.undo_id = outbox.check("send", "--delay", str(UNDO_DELAY), "dave@example.org",
                                   input=message("second thoughts", "dave@example.org")
                                   ).stdout.strip()
        cls.lock_account(outbox)
        cls.window = cls.start_window()

    @classmethod
    def lock_account(cls, outbox):
        """An account whose server refuses its password: its message is
        deferred and the account needs the right password."""
        cls.auth_server = AioSmtpServer(auth=True, auth_without_tls=True).start()
        outbox.add_account(LOCKED, "alice@example.org",
                           f"smtp+insecure://{AioSmtpServer.USER}@127.0.0.1:{cls.auth_server.port}",
                           password="not-the-password")
        # Long enough that only the new password sends it within the test.
        outboxtest.update_account(LOCKED, {"retry-first": 300})
        cls.locked_id = outbox.send(message("minutes of the meeting", "erin@example.org"),
                                    "erin@example.org", account=LOCKED)
        wait_until(lambda: outboxtest.account_settings(LOCKED).get("needs-password"), 30,
                   f"account {LOCKED} to need its password")

    @classmethod
    def start_window(cls):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        cls.screenshot = ARTIFACTS / "outbox-window.png"
        cls.screenshot.unlink(missing_ok=True)
        env = dict(os.environ, DISPLAY=cls.display, GDK_BACKEND="x11", GTK_A11Y="atspi",
                   # No GL on Xvfb: the cairo renderer draws the same everywhere,
                   # and Mesa is not even loaded.
                   GSK_RENDERER="cairo", GDK_DEBUG="gl-disable", OUTBOX_WINDOW_SCREENSHOT=str(cls.screenshot),
                   LANG="C.UTF-8")
        env.pop("WAYLAND_DISPLAY", None)
        # In a sanitizer build: the font caches GTK never frees, and whole
        # stacks, so that the suppressions match them and only them.
        env["LSAN_OPTIONS"] = f"suppressions={SOURCE_DIR / 'tests' / 'lsan-window.supp'}"
        env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                     "fast_unwind_on_malloc=0"]))
        # As D-Bus activation starts it (see org.outbox.Outbox.service), and
        # then asked what a failure notification asks: show that message.
        with open(outboxtest.SESSION_LOG, "ab") as log:
            process = subprocess.Popen([str(WINDOW), "--gapplication-service"], env=env,
                                       stdin=subprocess.DEVNULL, stderr=log)
        wait_until(lambda: process.poll() is not None or name_has_owner(APP_ID), 30,
                   f"outbox-window to own {APP_ID}")
        if process.poll() is not None:
            raise AssertionError(f"outbox-window exited with {process.returncode}")
        activate_action("show-message", f"[<'{cls.failed_id}'>]")
        return process

    @classmethod
    def tearDownClass(cls):
        for process in (cls.window, cls.a11y, cls.xvfb):
            outboxtest.terminate(process)
        cls.auth_server.stop()
        cls.sink.stop()
        cls.refusing.stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if not self.id().endswith("quits_cleanly"):
            self.assertIsNone(self.window.poll(), "outbox-window exited")

    def wait_tree(self, predicate, timeout, what):
        """wait_until for a predicate over the accessible tree, which may
        lose a node while it is read (a row going away): then it asks again."""
        def tolerant():
            try:
                return predicate()
            except GLib.GError:
                return None
        return wait_until(tolerant, timeout, what, interval=0.3)

    def wait_label(self, text, timeout=30):
        """The accessible of the label that says text, once the window shows it."""
        def found():
            app = find_app()
            if app is None:
                return None
            return next((node for node in descendants(app)
                         if node.getRole() == pyatspi.ROLE_LABEL and node.name == text), None)
        return self.wait_tree(found, timeout, f"a label “{text}” in outbox-window")

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

    def countdown(self, row):
        """The seconds an undo-send row says are left."""
        texts = [node.name for node in descendants(row) if "Cancel to undo" in (node.name or "")]
        self.assertEqual(len(texts), 1, f"no undo countdown in the row: {texts}")
        found = re.search(r"Sending in (\d+) s — Cancel to undo$", texts[0])
        self.assertIsNotNone(found, texts[0])
        return int(found.group(1))

    def bar_button(self, name):
        """The button of the action bar (not of a row) that says name."""
        buttons = [node for node in descendants(find_app())
                   if node.getRole() == pyatspi.ROLE_PUSH_BUTTON and node.name == name
                   and ancestor_with_role(node, pyatspi.ROLE_LIST_ITEM) is None]
        self.assertEqual(len(buttons), 1, f"{len(buttons)} {name} buttons outside the rows")
        return buttons[0]

    def dialog_open(self):
        return any(node.getRole() == pyatspi.ROLE_DIALOG for node in find_app())

    def test_1_screenshot(self):
        # Started as a service, the window came up for show-message.
        self.assertTrue(self.row_of("quarterly report").getState().contains(pyatspi.STATE_SELECTED),
                        "show-message did not select the failed message")
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
        first = self.countdown(undo)
        # It counts down every second, in place.
        self.wait_tree(lambda: self.countdown(self.row_of("second thoughts")) < first, 5,
                   "the undo countdown to go down")
        deferred = self.row_of("minutes of the meeting")
        texts = [node.name for node in descendants(deferred) if node.getRole() == pyatspi.ROLE_LABEL]
        self.assertIn("Deferred", texts)
        # An account waiting for its password has no next attempt set.
        if self.outbox.show(self.locked_id).get("next_attempt"):
            self.assertTrue(any("next attempt in" in t for t in texts), f"no next attempt in {texts}")
        else:
            self.assertFalse(any("next attempt" in t for t in texts), texts)
        self.button_in(deferred, "Send Now")

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
        self.wait_tree(lambda: any(node.name == "Sent"
                               for node in descendants(self.row_of("quarterly report"))),
                   30, "the row to say Sent")

    def test_4_show_message_selects_the_row(self):
        row = self.row_of("draft on hold")
        self.assertFalse(row.getState().contains(pyatspi.STATE_SELECTED))
        # What a failure notification's Show button does.
        self.activate_action("show-message", f"[<'{self.held_id}'>]")
        self.wait_tree(lambda: self.row_of("draft on hold").getState().contains(pyatspi.STATE_SELECTED),
                   10, "the held message's row to be selected")
        failed_row = self.row_of("quarterly report")
        self.assertFalse(failed_row.getState().contains(pyatspi.STATE_SELECTED),
                         "the message shown first is still selected")

    def test_5_account_bar_takes_the_password(self):
        sentence = outboxtest.account_settings(LOCKED)["state-message"]
        self.wait_label(f"{LOCKED}: {sentence}")
        app = find_app()
        [button] = [node for node in descendants(app) if node.getRole() == pyatspi.ROLE_PUSH_BUTTON
                    and node.name == "Enter Password…"]
        self.assertTrue(button.queryAction().doAction(0), "Enter Password… refused its action")
        self.wait_label(f"Password for {LOCKED}")
        [entry] = self.wait_tree(lambda: [node for node in descendants(find_app())
                                      if node.getRole() == pyatspi.ROLE_PASSWORD_TEXT],
                             10, "the password entry")
        # Typed as a person would: the dialog opens with the focus in the
        # entry, the keys go through the X server (XTest, by the AT-SPI
        # registry).
        self.wait_tree(lambda: entry.getState().contains(pyatspi.STATE_FOCUSED), 10,
                   "the password entry to have the focus")
        pyatspi.Registry.generateKeyboardEvent(0, AioSmtpServer.PASSWORD, pyatspi.KEY_STRING)
        # The entry shows as many bullets as it has characters.
        self.wait_tree(lambda: entry.queryText().characterCount == len(AioSmtpServer.PASSWORD),
                       10, "the password to be typed into the entry")
        # AdwMessageDialog 1.2 has each response button twice (wide and
        # narrow layouts, only one of them on screen and working) and
        # names it "Save Save" (label and description).
        saves = [node for node in descendants(find_app())
                 if node.getRole() == pyatspi.ROLE_PUSH_BUTTON and node.name in ("Save", "Save Save")]
        self.assertEqual(len(saves), 2, "not two Save buttons in the password dialog")
        for save in saves:
            if self.dialog_open():
                save.queryAction().doAction(0)
                time.sleep(1)
        self.assertFalse(self.dialog_open(), "Save did not close the password dialog")
        wait_until(lambda: not outboxtest.account_settings(LOCKED).get("needs-password"), 30,
                   f"account {LOCKED} to have its password")
        self.outbox.wait_state(self.locked_id, "sent", timeout=30)
        # The bar goes with the problem.
        self.wait_tree(lambda: not any(node.name == f"{LOCKED}: {sentence}"
                                   for node in descendants(find_app())),
                   10, "the account's bar to go")

    def test_6_selection_actions(self):
        # test_4 selected the held message: the bar acts on the selection.
        self.activate_action("show-message", f"[<'{self.held_id}'>]")
        self.wait_label("1 selected")
        self.assertTrue(self.bar_button("Release").queryAction().doAction(0))
        self.outbox.wait_state(self.held_id, "sent", timeout=30)
        self.assertIn("draft on hold", [m.headers("Subject")[0] for m in self.sink.wait_messages(1)])
        # What the daemon refuses comes back as a toast, in its words.
        self.activate_action("show-message", f"[<'{self.failed_id}'>]")
        self.wait_tree(lambda: self.row_of("quarterly report").getState().contains(
            pyatspi.STATE_SELECTED), 10, "the sent message's row to be selected")
        self.assertTrue(self.bar_button("Hold").queryAction().doAction(0))
        self.wait_tree(lambda: any("nothing to hold" in (node.name or "")
                               for node in descendants(find_app())
                               if node.getRole() == pyatspi.ROLE_LABEL),
                   10, "a toast saying the daemon's refusal")

    def test_7_cancel_undoes_and_the_queue_empties(self):
        row = self.row_of("second thoughts")
        self.assertTrue(self.button_in(row, "Cancel").queryAction().doAction(0))
        wait_until(lambda: self.outbox.run("show", self.undo_id).rc != 0, 10,
                   "the cancelled message to leave the queue")
        # Everything else went in the tests before: nothing waits.
        self.wait_label("Nothing waiting")
        self.wait_label("All mail is sent")
        self.assertNotIn("second thoughts",
                         [m.headers("Subject")[0] for m in self.sink.complete_messages() or []])

    def test_8_quits_cleanly(self):
        """app.quit over D-Bus: the window exits 0 (in a sanitizer build,
        after LeakSanitizer's check at exit)."""
        self.activate_action("quit", "[]")
        self.assertEqual(self.window.wait(60), 0, "outbox-window did not exit cleanly")

    def activate_action(self, name, parameters):
        activate_action(name, parameters)


if __name__ == "__main__":
    outboxtest.main()
