# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Actions of a failure notification: to a notification server that offers
"actions" (python-dbusmock's notification daemon, told so), the notification
about a message that failed carries Retry and Show.  ActionInvoked "retry"
retries the message as Queue.Retry does; "show" and "default" ask the Outbox
window (org.outbox.Outbox, a dbusmock object here) to show it, and when no
window answers the daemon says so in its log.  An id the daemon did not
send, or one the server closed, does nothing; a server without "actions"
gets none.  Each test has a notification server of its own, which the
daemon asks for its capabilities as it appears."""

import time

import outboxtest
from outboxtest import (EngineTestCase, NotificationMock, WindowMock, session_log_since,
                        session_log_size, wait_until)

RECIPIENT = "bob@example.org"
REFUSED = "550 5.1.1 No such user here"
ACTIONS = ["retry", "Retry", "show", "Show", "default", "Show"]
# The mock numbers the notifications it shows from 1.
FIRST_ID = 1


class NotifyActionsTest(EngineTestCase):
    def start_notifications(self, capabilities=("body", "actions")):
        notifications = NotificationMock(capabilities).start()
        self.addCleanup(notifications.stop)
        return notifications

    def start_window(self):
        window = WindowMock().start()
        self.addCleanup(window.stop)
        return window

    def fail_message(self, notifications, later_replies=()):
        """A message whose recipient a server refuses with 550: its id and
        the one notification about it.  later_replies: what the server
        answers to the recipient's next RCPTs (default: 550 again)."""
        server = self.start_scripted(rcpt={RECIPIENT: [REFUSED, *later_replies]})
        account = self.add_engine_account(server.url())
        # The daemon runs by now, and asks each new server once.
        wait_until(lambda: notifications.calls_of("GetCapabilities"), 10,
                   "the daemon to ask the notification server for its capabilities")
        message_id = self.submit(account, subject="doomed report")
        message = self.outbox.wait_final(message_id)
        self.assertEqual(message["state"], "failed", message)
        [notification] = wait_until(notifications.notifications, 10, "a notification")
        return message_id, notification

    def wait_log(self, offset, text):
        return wait_until(lambda: text in session_log_since(offset), 10,
                          f"the daemon to log “{text}”")

    def assertNotRetried(self, message_id):
        message = self.outbox.show(message_id)
        self.assertEqual((message["state"], message["attempts"]), ("failed", 1), message)

    def test_failure_carries_actions_and_hints(self):
        notifications = self.start_notifications()
        message_id, notification = self.fail_message(notifications)

        self.assertEqual(notification["actions"], ACTIONS, notification)
        hints = notification["hints"]
        self.assertEqual(hints.get("desktop-entry"), "org.outbox.Outbox", notification)
        self.assertEqual(hints.get("category"), "email.bounced", notification)
        self.assertIn(message_id, notification["body"], notification)

    def test_server_without_actions_gets_none(self):
        notifications = self.start_notifications(capabilities=None)
        _, notification = self.fail_message(notifications)

        self.assertEqual(notification["actions"], [], notification)
        self.assertEqual(notification["hints"].get("category"), "email.bounced", notification)

    def test_retry_action_retries_the_message(self):
        notifications = self.start_notifications()
        message_id, _ = self.fail_message(notifications, later_replies=["250 2.1.5 OK"])
        self.assertNotRetried(message_id)

        notifications.emit("ActionInvoked", "us", FIRST_ID, "retry")
        message = self.outbox.wait_state(message_id, "sent", timeout=30)
        self.assertEqual(message["attempts"], 2, message)

    def test_retry_that_fails_again_notifies_again(self):
        notifications = self.start_notifications()
        message_id, _ = self.fail_message(notifications)

        notifications.emit("ActionInvoked", "us", FIRST_ID, "retry")

        def failed_again():
            message = self.outbox.show(message_id)
            return message["attempts"] == 2 and message["state"] == "failed" and message

        message = wait_until(failed_again, 30, f"a second attempt of {message_id} to fail")
        self.assertIn(REFUSED, message["recipients"][0]["reply"], message)
        wait_until(lambda: len(notifications.notifications()) == 2, 10,
                   "the notification of the second failure")
        self.assertEqual(notifications.notifications()[1]["actions"], ACTIONS)

    def test_show_action_asks_the_window(self):
        notifications = self.start_notifications()
        window = self.start_window()
        message_id, _ = self.fail_message(notifications)

        notifications.emit("ActionInvoked", "us", FIRST_ID, "show")
        [activation] = wait_until(window.activations, 10, "ActivateAction on the window")
        self.assertEqual(activation, ("show-message", [message_id], {}))
        self.assertNotRetried(message_id)

    def test_default_action_shows_too(self):
        notifications = self.start_notifications()
        window = self.start_window()
        message_id, _ = self.fail_message(notifications)

        notifications.emit("ActionInvoked", "us", FIRST_ID, "default")
        [activation] = wait_until(window.activations, 10, "ActivateAction on the window")
        self.assertEqual(activation, ("show-message", [message_id], {}))

    def test_unknown_notification_does_nothing(self):
        notifications = self.start_notifications()
        window = self.start_window()
        message_id, _ = self.fail_message(notifications)

        notifications.emit("ActionInvoked", "us", FIRST_ID + 41, "retry")
        notifications.emit("ActionInvoked", "us", FIRST_ID + 41, "show")
        # Signals of one sender arrive in order: once this one is answered,
        # the two before it were handled.
        notifications.emit("ActionInvoked", "us", FIRST_ID, "show")
        wait_until(window.activations, 10, "ActivateAction on the window")
        time.sleep(1)
        self.assertEqual(window.activations(), [("show-message", [message_id], {})])
        self.assertNotRetried(message_id)

    def test_closed_notification_is_forgotten(self):
        notifications = self.start_notifications()
        window = self.start_window()
        message_id, _ = self.fail_message(notifications)

        # Reason 2: dismissed by the user.
        notifications.emit("NotificationClosed", "uu", FIRST_ID, 2)
        notifications.emit("ActionInvoked", "us", FIRST_ID, "show")
        notifications.emit("ActionInvoked", "us", FIRST_ID, "retry")
        time.sleep(1.5)
        self.assertEqual(window.activations(), [])
        self.assertNotRetried(message_id)

    def test_show_without_window_is_logged(self):
        notifications = self.start_notifications()
        message_id, _ = self.fail_message(notifications)
        offset = session_log_size()

        notifications.emit("ActionInvoked", "us", FIRST_ID, "show")
        self.wait_log(offset, f"Cannot show message {message_id}: the Outbox window")
        self.assertNotRetried(message_id)

    def test_retry_of_a_cancelled_message_is_logged(self):
        notifications = self.start_notifications()
        message_id, _ = self.fail_message(notifications)
        self.outbox.check("cancel", message_id)
        offset = session_log_size()

        notifications.emit("ActionInvoked", "us", FIRST_ID, "retry")
        self.wait_log(offset, f"Message {message_id} not retried")
        self.assertNotEqual(self.outbox.run("show", message_id).rc, 0,
                            "the cancelled message came back")


if __name__ == "__main__":
    outboxtest.main()
