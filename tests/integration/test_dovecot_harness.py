#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Checks the harness's private Dovecot with Python's own clients: logins
over every listener, a copy in Sent with its flags, relaying through
submission to smtp-sink, and a restart that keeps the mail."""

import imaplib
import poplib
import smtplib
import ssl
import unittest

from outboxtest import Dovecot, SmtpSink, make_message, port_accepts


def tls_context(dovecot):
    return ssl.create_default_context(cafile=str(dovecot.ca_file))


def message(message_id):
    return make_message([("From", "alice@example.org"), ("To", "bob@example.org"),
                         ("Subject", "harness"), ("Message-ID", message_id)])


class DovecotHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.dovecot = Dovecot(cls.sink.port).start()
        cls.addClassCleanup(cls.dovecot.stop)

    def imaps(self):
        client = imaplib.IMAP4_SSL("127.0.0.1", self.dovecot.ports["imaps"],
                                   ssl_context=tls_context(self.dovecot))
        self.addCleanup(client.shutdown)
        return client

    def test_imaps_append_to_sent(self):
        client = self.imaps()
        client.login(Dovecot.USER, Dovecot.PASSWORD)
        status, _ = client.append("Sent", "(\\Seen)", None, message("<append@example.org>"))
        self.assertEqual(status, "OK")
        stored = [m for m in self.dovecot.sent_messages()
                  if m.headers("Message-ID") == ["<append@example.org>"]]
        self.assertEqual(len(stored), 1, self.dovecot.sent_messages())
        self.assertTrue(stored[0].seen, f"flags {stored[0].flags!r}")

    def test_sent_is_special_use(self):
        client = self.imaps()
        client.login(Dovecot.USER, Dovecot.PASSWORD)
        _, listing = client.list()
        self.assertTrue(any(b"\\Sent" in line and line.endswith(b"Sent") for line in listing),
                        listing)

    def test_imaps_wrong_password(self):
        client = self.imaps()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED"):
            client.login(Dovecot.USER, "wrong")

    def test_imap_starttls(self):
        client = imaplib.IMAP4("127.0.0.1", self.dovecot.ports["imap"])
        self.addCleanup(client.shutdown)
        self.assertIn("STARTTLS", client.capabilities)
        client.starttls(ssl_context=tls_context(self.dovecot))
        self.assertEqual(client.login(Dovecot.USER, Dovecot.PASSWORD)[0], "OK")

    def test_pop3s_login_and_stat(self):
        client = poplib.POP3_SSL("127.0.0.1", self.dovecot.ports["pop3s"],
                                 context=tls_context(self.dovecot))
        self.addCleanup(client.close)
        self.assertIn("PLAIN", client.capa()["SASL"])
        client.user(Dovecot.USER)
        client.pass_(Dovecot.PASSWORD)
        messages, _ = client.stat()
        self.assertEqual(messages, len(self.dovecot.messages(None)))
        client.quit()

    def test_pop3_stls(self):
        client = poplib.POP3("127.0.0.1", self.dovecot.ports["pop3"])
        self.addCleanup(client.close)
        self.assertIn("STLS", client.capa())
        client.stls(context=tls_context(self.dovecot))
        self.assertNotIn("STLS", client.capa())
        client.user(Dovecot.USER)
        self.assertTrue(client.pass_(Dovecot.PASSWORD).startswith(b"+OK"))

    def test_pop3s_wrong_password(self):
        client = poplib.POP3_SSL("127.0.0.1", self.dovecot.ports["pop3s"],
                                 context=tls_context(self.dovecot))
        self.addCleanup(client.close)
        client.user(Dovecot.USER)
        with self.assertRaisesRegex(poplib.error_proto, r"-ERR \[AUTH\]"):
            client.pass_("wrong")

    def test_submission_relays_to_sink(self):
        before = len(self.sink.dump_files())
        with smtplib.SMTP("127.0.0.1", self.dovecot.ports["submission"], timeout=30) as client:
            client.starttls(context=tls_context(self.dovecot))
            client.login(Dovecot.USER, Dovecot.PASSWORD)
            client.sendmail("alice@example.org", ["bob@example.org"],
                            message("<relayed@example.org>"))
        received = self.sink.wait_messages(before + 1)
        self.assertIn(["<relayed@example.org>"], [m.headers("Message-ID") for m in received])

    def test_urls(self):
        self.assertEqual(self.dovecot.url("submission"),
                         f"smtp://alice@127.0.0.1:{self.dovecot.ports['submission']}")
        self.assertEqual(self.dovecot.url("pop3s", user=None),
                         f"pop3s://127.0.0.1:{self.dovecot.ports['pop3s']}")


class DovecotLifecycleTest(unittest.TestCase):
    def test_restart_keeps_mail(self):
        dovecot = Dovecot().start()
        self.addCleanup(dovecot.stop)
        client = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"],
                                   ssl_context=tls_context(dovecot))
        client.login(Dovecot.USER, Dovecot.PASSWORD)
        client.append("Sent", "()", None, message("<kept@example.org>"))
        client.logout()
        dovecot.stop()
        dovecot.start()
        self.assertEqual([m.headers("Message-ID") for m in dovecot.sent_messages()],
                         [["<kept@example.org>"]])
        self.assertFalse(dovecot.sent_messages()[0].seen)

    def test_without_sent_folder(self):
        dovecot = Dovecot(sent_folder=False).start()
        self.addCleanup(dovecot.stop)
        client = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"],
                                   ssl_context=tls_context(dovecot))
        self.addCleanup(client.shutdown)
        client.login(Dovecot.USER, Dovecot.PASSWORD)
        _, listing = client.list()
        self.assertFalse(any(b"Sent" in line for line in listing), listing)
        status, _ = client.append("Sent", "(\\Seen)", None, message("<nowhere@example.org>"))
        self.assertEqual(status, "NO")

    def test_stop_closes_ports(self):
        dovecot = Dovecot().start()
        dovecot.stop()
        self.assertFalse([p for p in dovecot.ports.values() if port_accepts(p)])
        self.assertNotIn("Fatal", dovecot.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
