# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Failure reports: a permanent failure and a refused password raise a
desktop notification (python-dbusmock's notification daemon records them),
a success does not; every change of a message is told by a MessageChanged
signal carrying its state and the server's reply, the changes of one message
within 50 ms by one signal."""

import time

import outboxtest
from outboxtest import (AioSmtpServer, EngineTestCase, MessageChangedRecorder,
                        NotificationMock, wait_until)

APP_NAME = "Outbox"


class NotifyTest(EngineTestCase):
    @classmethod
    def setUpClass(cls):
        cls.notifications = NotificationMock().start()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.notifications.stop()

    def setUp(self):
        super().setUp()
        self.notifications.clear()

    def wait_notification(self, timeout=10):
        return wait_until(self.notifications.notifications, timeout, "a notification")

    def test_permanent_failure_notifies(self):
        sink = self.start_sink("-f", "RCPT")
        account = self.add_engine_account(sink.url())
        message_id = self.submit(account, subject="doomed report")
        message = self.outbox.wait_final(message_id)
        self.assertEqual(message["state"], "failed", message)

        [notification] = self.wait_notification()
        self.assertEqual(notification["app_name"], APP_NAME, notification)
        text = notification["summary"] + "\n" + notification["body"]
        self.assertTrue(notification["summary"], notification)
        self.assertTrue("bob@example.org" in text or "doomed report" in text,
                        f"the notification does not say which message: {notification}")

    def test_refused_password_notifies(self):
        server = self.start_aiosmtpd(auth=True, auth_without_tls=True)
        account = self.add_engine_account(
            f"smtp+insecure://{AioSmtpServer.USER}@127.0.0.1:{server.port}",
            password="not the password")
        message_id = self.submit(account)
        self.outbox.wait_state(message_id, "deferred")

        [notification] = self.wait_notification()
        self.assertEqual(notification["app_name"], APP_NAME, notification)
        text = notification["summary"] + "\n" + notification["body"]
        self.assertIn(account, text, f"the notification does not name the account: {notification}")
        # About an account, not one message: no actions, and no bounce.
        self.assertEqual(notification["actions"], [], notification)
        self.assertEqual(notification["hints"].get("desktop-entry"), "org.outbox.Outbox",
                         notification)
        self.assertNotIn("category", notification["hints"], notification)

    def test_success_does_not_notify(self):
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        message_id = self.submit(account)
        self.outbox.wait_state(message_id, "sent")
        sink.wait_messages(1)
        time.sleep(1)
        self.assertEqual(self.notifications.notifications(), [])

    def assertLifecycle(self, states, lifecycle):
        """The signals told the states of lifecycle in order, the last one
        included; a state that lasted less than the 50 ms in which one
        message's changes are told together may be missing."""
        self.assertTrue(states, "no MessageChanged signal")
        self.assertEqual(states[-1], lifecycle[-1], states)
        self.assertEqual(len(states), len(set(states)), f"a state told twice: {states}")
        self.assertEqual(states, [state for state in lifecycle if state in states], states)

    def test_message_changed_tells_a_lasting_state(self):
        # A server that never greets: the message stays "sending", and the
        # signal saying so comes without any later change to push it out.
        silent = self.start_silent()
        account = self.add_engine_account(silent.url(), settings={"timeout": 30})
        recorder = MessageChangedRecorder()
        self.addCleanup(recorder.close)
        message_id = self.submit(account)
        self.addCleanup(self.outbox.run, "cancel", message_id)

        recorder.wait_state(message_id, "sending", timeout=10)
        self.assertLifecycle(recorder.states_of(message_id), ["queued", "sending"])
        self.assertEqual(recorder.details_of(message_id)[-1].get("state"), "sending")

    def test_message_changed_sequence_when_sent(self):
        recorder = MessageChangedRecorder()
        self.addCleanup(recorder.close)
        sink = self.start_sink()
        account = self.add_engine_account(sink.url())
        message_id = self.submit(account)

        recorder.wait_state(message_id, "sent")
        self.assertLifecycle(recorder.states_of(message_id), ["queued", "sending", "sent"])
        last = recorder.details_of(message_id)[-1]
        self.assertEqual(last.get("id"), message_id, last)
        self.assertEqual(last.get("state"), "sent", last)
        [recipient] = last.get("recipients", [])
        self.assertEqual(recipient.get("state"), "sent", last)
        self.assertEqual(recipient.get("reply-code"), 250, last)

    def test_message_changed_carries_server_reply_when_deferred(self):
        recorder = MessageChangedRecorder()
        self.addCleanup(recorder.close)
        sink = self.start_sink("-r", "RCPT")
        account = self.add_engine_account(sink.url(), settings={"retry-first": 300})
        message_id = self.submit(account)

        recorder.wait_state(message_id, "deferred")
        self.assertLifecycle(recorder.states_of(message_id), ["queued", "sending", "deferred"])
        last = recorder.details_of(message_id)[-1]
        self.assertIn("next-attempt", last, last)
        [recipient] = last.get("recipients", [])
        self.assertEqual(recipient.get("state"), "deferred", last)
        self.assertEqual(recipient.get("reply-code"), 450, last)
        self.assertIn("450 4.3.0 Error: command failed", recipient.get("reply", ""), last)
        self.assertEqual(self.notifications.notifications(), [],
                         "a temporary failure raised a notification")


if __name__ == "__main__":
    outboxtest.main()
