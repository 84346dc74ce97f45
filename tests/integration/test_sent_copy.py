#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Copies of sent mail in the IMAP Sent folder, and POP-before-SMTP,
against a private Dovecot whose submission service relays to smtp-sink.

A copy is made after the message is marked sent: whatever happens to the
copy (no Sent folder, IMAP down, login refused, given up), the message
reaches the sink exactly once."""

import imaplib
import socket
import ssl
import threading
import time

from outboxtest import (Dovecot, MessageChangedRecorder, OutboxTestCase, make_message, main,
                        replies_of, set_password, update_account, wait_sink_messages,
                        wait_until)

SENDER = "alice@example.org"
# Copies are retried after 1 s, then every 2 s.
FAST_RETRY = {"retry-first": 1, "retry-max": 2}


class SlowProxy:
    """Forwards each connection to 127.0.0.1:port after holding it for
    delay seconds, so that what goes through it cannot finish sooner."""

    def __init__(self, port, delay):
        self.target, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        time.sleep(self.delay)
        try:
            server = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        self.sockets.append(server)
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        for s in self.sockets:
            s.close()


class SentCopyTestCase(OutboxTestCase):
    def start_dovecot(self, sink, sent_folder=True, start=True):
        """A Dovecot relaying to sink, stopped by the cleanup (start=False:
        configured, ports chosen, not running)."""
        dovecot = Dovecot(sink.port, sent_folder=sent_folder)
        self.addCleanup(dovecot.stop)
        return dovecot.start() if start else dovecot

    def add_account(self, dovecot, smtp=None, imap="imaps", pop3=None, settings=None,
                    name=None):
        """A fresh account on dovecot (submission and imaps unless told
        otherwise) with its password for every server; returns its name."""
        name = name or self.account_name()
        args = ["account", "add", name, "--from", SENDER,
                "--smtp", smtp or dovecot.url("submission"),
                "--tls-ca-file", str(dovecot.ca_file)]
        if imap:
            args += ["--imap", imap if "://" in imap else dovecot.url(imap)]
        if pop3:
            args += ["--pop3", dovecot.url(pop3)]
        self.outbox.check(*args)
        # A given smtp URL is the sink's, which takes no login.
        logins = {"smtp": smtp is None, "imap": bool(imap), "pop3": bool(pop3)}
        for service in (service for service, login in logins.items() if login):
            set_password(name, Dovecot.PASSWORD, service)
        if settings:
            update_account(name, settings)
        return name

    def submit(self, account, message_id, *extra_args):
        """Sends a small message with that Message-ID; returns its queue id."""
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", self.id().rsplit(".", 1)[-1]),
                                ("Message-ID", message_id)],
                               body=b"Filed in Sent.\r\n")
        result = self.outbox.check("send", "-a", account, *extra_args, input=message)
        queue_id = result.stdout.strip()
        self.assertEqual(len(queue_id.split()), 1, result)
        return queue_id

    def wait_copy(self, queue_id, state, timeout=30, attempts=0):
        """Polls `outbox show` until the copy is in state (after at least
        `attempts` copy attempts); returns the message."""
        seen = {}

        def reached():
            message = seen["message"] = self.outbox.show(queue_id)
            return (message.get("sent_copy") == state
                    and message.get("sent_copy_attempts", 0) >= attempts and message)
        try:
            return wait_until(reached, timeout, f"copy of {queue_id} {state}", interval=0.2)
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {seen.get('message')}") from None

    def assertDeliveredOnce(self, sink, message_id):
        ids = [m.headers("Message-ID") for m in wait_sink_messages(sink, 1)]
        self.assertEqual(ids, [[message_id]], "what the sink received")

    def assertFiledOnce(self, dovecot, message_id, folder="Sent"):
        copies = [m for m in dovecot.messages(folder) if m.headers("Message-ID") == [message_id]]
        every_id = [m.headers("Message-ID") for m in dovecot.messages(folder)]
        self.assertEqual(len(copies), 1, f"Message-IDs in {folder}: {every_id}")
        self.assertTrue(copies[0].seen, f"flags of the copy: {copies[0].flags!r}")
        return copies[0]

    def imap_client(self, dovecot):
        context = ssl.create_default_context(cafile=str(dovecot.ca_file))
        client = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"], ssl_context=context)
        self.addCleanup(client.shutdown)
        client.login(Dovecot.USER, Dovecot.PASSWORD)
        return client


class SentCopyTest(SentCopyTestCase):
    def test_copy_lands_in_sent_with_seen(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        queue_id = self.submit(self.add_account(dovecot), "<filed@example.org>")
        message = self.wait_copy(queue_id, "saved")
        self.assertEqual(message["state"], "sent", message)
        self.assertNotIn("sent_copy_reply", message)
        self.assertNotIn("sent_copy_next", message)
        self.assertDeliveredOnce(sink, "<filed@example.org>")
        copy = self.assertFiledOnce(dovecot, "<filed@example.org>")
        self.assertEqual(copy.body(), b"Filed in Sent.\n")
        self.assertEqual(copy.headers("Subject"), ["test_copy_lands_in_sent_with_seen"])

    def test_pending_in_the_write_that_marks_sent(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        # MessageChanged tells a message's changes of 50 ms at once: the
        # copy must take longer than that for "sent" to be told before
        # "saved".
        proxy = SlowProxy(dovecot.ports["imaps"], 1.0)
        self.addCleanup(proxy.close)
        recorder = MessageChangedRecorder()
        self.addCleanup(recorder.close)
        account = self.add_account(dovecot, imap=f"imaps://{Dovecot.USER}@127.0.0.1:{proxy.port}")
        queue_id = self.submit(account, "<first-write@example.org>")
        self.wait_copy(queue_id, "saved")
        recorder.wait_state(queue_id, "sent")
        sent = [details for id_, state, details in recorder.signals
                if id_ == queue_id and state == "sent"]
        self.assertEqual(sent[0].get("sent-copy"), "pending", sent[0])

    def test_no_save_to_sent_option(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        account = self.add_account(dovecot)
        uncopied = self.submit(account, "<not-filed@example.org>", "--no-save-to-sent")
        message = self.outbox.wait_state(uncopied, "sent")
        # A later copy through the same account shows that the daemon had
        # its chance to file the first one.
        copied = self.submit(account, "<filed-after@example.org>")
        self.wait_copy(copied, "saved")
        self.assertNotIn("sent_copy", self.outbox.show(uncopied), message)
        self.assertEqual([m.headers("Message-ID") for m in dovecot.sent_messages()],
                         [["<filed-after@example.org>"]])
        self.assertEqual(len(wait_sink_messages(sink, 2)), 2)

    def test_account_save_to_sent_false(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        account = self.add_account(dovecot, settings={"save-to-sent": False})
        uncopied = self.submit(account, "<account-off@example.org>")
        message = self.outbox.wait_state(uncopied, "sent")
        self.assertNotIn("sent_copy", message)
        copying = self.add_account(dovecot, name=account + "-copying")
        copied = self.submit(copying, "<other@example.org>")
        self.wait_copy(copied, "saved")
        self.assertNotIn("sent_copy", self.outbox.show(uncopied))
        self.assertEqual([m.headers("Message-ID") for m in dovecot.sent_messages()],
                         [["<other@example.org>"]])

    def test_sent_folder_setting_when_none_is_marked(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink, sent_folder=False)
        self.assertEqual(self.imap_client(dovecot).create('"Sent Items"')[0], "OK")
        account = self.add_account(dovecot, settings={"sent-folder": "Sent Items"})
        queue_id = self.submit(account, "<sent-items@example.org>")
        self.wait_copy(queue_id, "saved")
        self.assertFiledOnce(dovecot, "<sent-items@example.org>", folder="Sent Items")


class SentCopyFailureTest(SentCopyTestCase):
    def test_missing_sent_folder_retried_then_saved(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink, sent_folder=False)
        account = self.add_account(dovecot, settings=FAST_RETRY)
        queue_id = self.submit(account, "<no-folder@example.org>")
        message = self.wait_copy(queue_id, "pending", attempts=2)
        self.assertEqual(message["state"], "sent", message)
        self.assertIn("Sent", message.get("sent_copy_reply", ""), message)
        self.assertIn("127.0.0.1", message.get("sent_copy_reply", ""), message)
        self.assertIn("sent_copy_next", message)
        self.assertDeliveredOnce(sink, "<no-folder@example.org>")
        self.assertEqual(self.imap_client(dovecot).create("Sent")[0], "OK")
        message = self.wait_copy(queue_id, "saved")
        self.assertNotIn("sent_copy_reply", message)
        self.assertFiledOnce(dovecot, "<no-folder@example.org>")
        self.assertDeliveredOnce(sink, "<no-folder@example.org>")

    def test_missing_sent_folder_then_sent_folder_setting(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink, sent_folder=False)
        account = self.add_account(dovecot, settings=FAST_RETRY)
        queue_id = self.submit(account, "<to-inbox@example.org>")
        self.wait_copy(queue_id, "pending", attempts=1)
        update_account(account, {"sent-folder": "INBOX"})
        self.wait_copy(queue_id, "saved")
        self.assertFiledOnce(dovecot, "<to-inbox@example.org>", folder=None)
        self.assertDeliveredOnce(sink, "<to-inbox@example.org>")

    def test_imap_down_at_copy_time(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink, start=False)
        # Delivered straight to the sink: only IMAP is missing.
        account = self.add_account(dovecot, smtp=sink.url(), settings=FAST_RETRY)
        queue_id = self.submit(account, "<imap-down@example.org>")
        message = self.wait_copy(queue_id, "pending", attempts=2)
        self.assertRegex(message.get("sent_copy_reply", ""), r"(?i)refused", message)
        self.assertDeliveredOnce(sink, "<imap-down@example.org>")
        dovecot.start()
        self.wait_copy(queue_id, "saved")
        self.assertFiledOnce(dovecot, "<imap-down@example.org>")
        self.assertDeliveredOnce(sink, "<imap-down@example.org>")

    def test_imap_login_refused_then_password_fixed(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        account = self.add_account(dovecot, settings=FAST_RETRY)
        set_password(account, "not-" + Dovecot.PASSWORD, "imap")
        queue_id = self.submit(account, "<imap-login@example.org>")
        message = self.wait_copy(queue_id, "pending", attempts=1)
        self.assertIn("[AUTHENTICATIONFAILED]", message.get("sent_copy_reply", ""), message)
        set_password(account, Dovecot.PASSWORD, "imap")
        self.wait_copy(queue_id, "saved")
        self.assertFiledOnce(dovecot, "<imap-login@example.org>")
        self.assertDeliveredOnce(sink, "<imap-login@example.org>")

    def test_give_up_then_retry(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink, start=False)
        account = self.add_account(dovecot, smtp=sink.url(),
                                   settings=dict(FAST_RETRY, **{"give-up-after": 10}))
        queue_id = self.submit(account, "<given-up@example.org>")
        message = self.wait_copy(queue_id, "failed", timeout=40)
        self.assertEqual(message["state"], "sent", message)
        self.assertTrue(message.get("sent_copy_reply"), message)
        self.assertNotIn("sent_copy_next", message)
        dovecot.start()
        self.outbox.check("retry", queue_id)
        self.wait_copy(queue_id, "saved")
        self.assertFiledOnce(dovecot, "<given-up@example.org>")
        self.assertDeliveredOnce(sink, "<given-up@example.org>")

    def test_retry_of_a_saved_copy_sends_nothing(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        queue_id = self.submit(self.add_account(dovecot), "<saved-once@example.org>")
        self.wait_copy(queue_id, "saved")
        result = self.outbox.run("retry", queue_id)
        self.assertNotEqual(result.rc, 0, result)
        self.assertEqual(self.outbox.show(queue_id).get("sent_copy"), "saved")
        self.assertFiledOnce(dovecot, "<saved-once@example.org>")
        self.assertDeliveredOnce(sink, "<saved-once@example.org>")


def login_lines(log):
    """("pop3"|"submission"|"imap", line) for each successful login of
    USER in a Dovecot log, in log order."""
    logins = []
    for line in log.splitlines():
        for service in ("pop3", "submission", "imap"):
            if f" {service}-login: Info: Login: user=<{Dovecot.USER}>" in line:
                logins.append((service, line))
    return logins


class PopBeforeSmtpTest(SentCopyTestCase):
    def test_pop3_login_before_each_smtp_session(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        account = self.add_account(dovecot, imap=None, pop3="pop3s",
                                   settings={"pop-before-smtp": True})
        for number in (1, 2):
            queue_id = self.submit(account, f"<pop-first-{number}@example.org>")
            self.outbox.wait_state(queue_id, "sent")
        self.assertEqual(len(wait_sink_messages(sink, 2)), 2)
        services = [service for service, _ in login_lines(dovecot.log())]
        self.assertIn("submission", services, dovecot.log())
        for index, service in enumerate(services):
            if service == "submission":
                self.assertEqual(services[index - 1] if index else None, "pop3",
                                 f"logins in order: {services}")

    def test_pop3_over_stls(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        account = self.add_account(dovecot, imap=None, pop3="pop3",
                                   settings={"pop-before-smtp": True})
        queue_id = self.submit(account, "<pop-stls@example.org>")
        self.outbox.wait_state(queue_id, "sent")
        self.assertDeliveredOnce(sink, "<pop-stls@example.org>")
        self.assertEqual([service for service, _ in login_lines(dovecot.log())][:2],
                         ["pop3", "submission"])

    def test_pop3_login_refused_defers(self):
        sink = self.start_sink()
        dovecot = self.start_dovecot(sink)
        account = self.add_account(dovecot, imap=None, pop3="pop3s",
                                   settings={"pop-before-smtp": True})
        set_password(account, "not-" + Dovecot.PASSWORD, "pop3")
        queue_id = self.submit(account, "<pop-refused@example.org>")
        message = self.outbox.wait_state(queue_id, "deferred")
        self.assertIn("POP-before-SMTP", replies_of(message), message)
        self.assertIn("-ERR [AUTH]", replies_of(message), message)
        self.assertEqual(sink.dump_files(), [])
        self.assertNotIn("submission", [s for s, _ in login_lines(dovecot.log())])


if __name__ == "__main__":
    main()
