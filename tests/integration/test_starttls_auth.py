# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""smtp:// means STARTTLS, always: authentication and mail only ever travel
inside TLS, against an aiosmtpd server that records what it saw."""

import time

import outboxtest
from outboxtest import AioSmtpServer, Certificates, OutboxTestCase, make_message, replies_of

SENDER = "alice@example.org"
NOT_DELIVERED = ("failed", "deferred")


class StartTlsAuthTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.certificates = Certificates()

    def add_account(self, server, password, trust=True, host="localhost"):
        name = self.account_name()
        self.outbox.add_account(
            name, SENDER, f"smtp://{AioSmtpServer.USER}@{host}:{server.port}",
            password=password,
            tls_ca_file=str(self.certificates.ca_cert) if trust else None)
        return name

    def send(self, account):
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", "over TLS")])
        return self.outbox.send(message, account=account)

    def assertNothingReachedServer(self, server):
        self.assertEqual(server.events("auth"), [], "a password was offered")
        self.assertEqual(server.events("mail"), [], "MAIL was sent")
        self.assertEqual(server.events("message"), [], "the message was sent")

    def test_authenticates_inside_starttls(self):
        server = self.start_aiosmtpd(certificates=self.certificates, auth=True)
        account = self.add_account(server, AioSmtpServer.PASSWORD)

        state = self.outbox.wait_final(self.send(account))
        self.assertEqual(state["state"], "sent", state)

        [received] = server.wait_messages(1)
        self.assertTrue(received["tls"], received)
        self.assertTrue(received["authenticated"], received)
        self.assertEqual(received["login"], AioSmtpServer.USER)
        self.assertEqual(received["rcpt_tos"], ["bob@example.org"])
        auths = server.events("auth")
        self.assertEqual([a["success"] for a in auths], [True], auths)
        self.assertTrue(all(a["tls"] for a in auths), f"AUTH outside TLS: {auths}")
        self.assertTrue(all(m["tls"] for m in server.events("mail")),
                        "MAIL outside TLS")

    def test_wrong_password_reports_535_once(self):
        server = self.start_aiosmtpd(certificates=self.certificates, auth=True)
        account = self.add_account(server, "not the password")

        state = self.outbox.wait_state(self.send(account), NOT_DELIVERED)
        self.assertIn("535", replies_of(state), state)
        # A rejected password must not be tried again and again (a server
        # would lock the account).
        time.sleep(2)
        auths = server.events("auth")
        self.assertEqual(len(auths), 1, f"AUTH attempts: {auths}")
        self.assertFalse(auths[0]["success"])
        self.assertEqual(server.events("message"), [])

    def test_refused_password_is_followed_by_quit(self):
        # Postfix logs "lost connection after AUTH" and Exim "TLS connection
        # was non-properly terminated" for a client that just hangs up.
        server = self.start_aiosmtpd(certificates=self.certificates, auth=True)
        account = self.add_account(server, "not the password")

        state = self.outbox.wait_state(self.send(account), NOT_DELIVERED)
        self.assertIn("535", replies_of(state), state)
        outboxtest.wait_until(lambda: server.events("quit"), 10, "QUIT after the 535")
        kinds = [e["event"] for e in server.events()]
        self.assertEqual(kinds, ["auth", "quit"], server.events())
        self.assertTrue(server.events("quit")[0]["tls"], "QUIT outside TLS")

    def test_server_without_starttls_gets_nothing(self):
        # This server would even take a password in plaintext.
        server = self.start_aiosmtpd(auth=True, auth_without_tls=True)
        account = self.add_account(server, AioSmtpServer.PASSWORD)

        state = self.outbox.wait_state(self.send(account), NOT_DELIVERED)
        self.assertIn("starttls", replies_of(state).lower(), state)
        self.assertNothingReachedServer(server)

    def test_untrusted_certificate_gets_nothing(self):
        server = self.start_aiosmtpd(certificates=self.certificates, auth=True)
        account = self.add_account(server, AioSmtpServer.PASSWORD, trust=False)

        state = self.outbox.wait_state(self.send(account), NOT_DELIVERED)
        self.assertNotEqual(replies_of(state).strip(), "", f"no reason given: {state}")
        self.assertNothingReachedServer(server)

    def test_certificate_for_another_name_gets_nothing(self):
        # The certificate names localhost and 127.0.0.1 only.
        server = self.start_aiosmtpd(certificates=self.certificates, auth=True,
                                     host="127.0.0.2")
        account = self.add_account(server, AioSmtpServer.PASSWORD, host="127.0.0.2")

        self.outbox.wait_state(self.send(account), NOT_DELIVERED)
        self.assertNothingReachedServer(server)


if __name__ == "__main__":
    outboxtest.main()
