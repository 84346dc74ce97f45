#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Certificate pinning against the real daemon (security promise 4): a
server whose certificate neither the system nor --tls-ca-file trusts gets
mail only when the account pins that certificate's SHA-256, over implicit
TLS and over STARTTLS; a wrong pin gets nothing, says why, and is never
remembered, and a pin that once matched does not let another certificate
through."""

import hashlib
import json
import logging
import pathlib
import re
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import outboxtest
from outboxtest import AioSmtpServer, Certificates, OutboxTestCase, free_port, make_message

SENDER = "alice@example.org"
NOT_DELIVERED = ("deferred", "failed")
# Long enough that no retry comes by itself while a case runs.
RETRY_FIRST = 3600


def fingerprint_hex(certificate_path):
    """The SHA-256 of a PEM certificate's DER encoding, in lower-case hex."""
    der = ssl.PEM_cert_to_DER_cert(pathlib.Path(certificate_path).read_text(encoding="ascii"))
    return hashlib.sha256(der).hexdigest()


def pin(certificates, colons=False):
    digest = fingerprint_hex(certificates.cert)
    if colons:
        digest = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)).upper()
    return f"sha256:{digest}"


def names_pin_mismatch(text):
    """Whether a reply or error says the certificate did not match the pin."""
    return re.search(r"pin", text, re.I) is not None and \
        re.search(r"does not match|mismatch", text, re.I) is not None


class ImplicitTlsServer:
    """aiosmtpd behind implicit TLS (smtps), in a thread of the test; it
    records every AUTH attempt and message.  AUTH is offered from the start:
    the whole connection is TLS."""

    def __init__(self, certificates, port=None):
        self.certificates = certificates
        self.port = port or free_port()
        self.auths = []
        self.messages = []
        self.lock = threading.Lock()
        self.controller = None

    def start(self):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.certificates.cert), str(self.certificates.key))
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     ssl_context=context, authenticator=self._authenticate,
                                     auth_require_tls=False)
        self.controller.start()
        return self

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == AioSmtpServer.USER.encode()
              and auth_data.password == AioSmtpServer.PASSWORD.encode())
        with self.lock:
            self.auths.append({"mechanism": mechanism, "success": ok})
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append({"authenticated": bool(session.authenticated),
                                  "rcpt_tos": list(envelope.rcpt_tos),
                                  "data": envelope.original_content})
        return "250 OK queued"

    def auth_events(self):
        with self.lock:
            return list(self.auths)

    def received(self):
        with self.lock:
            return list(self.messages)

    def wait_messages(self, count, timeout=30):
        return outboxtest.wait_until(lambda: len(self.received()) >= count and self.received(),
                                     timeout, f"{count} message(s) at the smtps server")


class PinningTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        # Two unrelated certificates for localhost, from two CAs nobody
        # trusts: the pin alone can make either acceptable.
        cls.certificates = Certificates()
        cls.other_certificates = Certificates()
        # aiosmtpd prints a traceback whenever a client refuses the
        # certificate, which these tests make the daemon do on purpose.
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    def start_smtps(self, certificates, port=None):
        server = ImplicitTlsServer(certificates, port=port).start()
        self.addCleanup(server.stop)
        return server

    def start_starttls(self, certificates, port=None):
        server = AioSmtpServer(certificates=certificates, auth=True)
        if port is not None:
            server.port = port
        server.start()
        self.addCleanup(server.stop)
        return server

    def add_account(self, url, fingerprint):
        name = self.account_name()
        self.outbox.check("account", "add", name, "--from", SENDER, "--smtp", url,
                          "--tls-fingerprint", fingerprint,
                          "--retry-first", str(RETRY_FIRST), "--password-stdin",
                          input=AioSmtpServer.PASSWORD + "\n")
        return name

    def smtps_url(self, server):
        return f"smtps://{AioSmtpServer.USER}@localhost:{server.port}"

    def starttls_url(self, server):
        return f"smtp://{AioSmtpServer.USER}@localhost:{server.port}"

    def send(self, account, subject="pinned"):
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", subject)])
        return self.outbox.send(message, account=account)

    def assertRefusedForPin(self, message_id):
        """The message is not delivered, and its last reply names the
        mismatch between the certificate and the pin."""
        state = self.outbox.wait_state(message_id, NOT_DELIVERED)
        self.assertTrue(names_pin_mismatch(state.get("last_reply") or ""),
                        f"the reason does not name the pin mismatch: {state}")
        return state

    def assertStarttlsServerGotNothing(self, server):
        self.assertEqual(server.events("auth"), [], "a password was offered")
        self.assertEqual(server.events("mail"), [], "MAIL was sent")
        self.assertEqual(server.events("message"), [], "the message was sent")

    def assertSmtpsServerGotNothing(self, server):
        self.assertEqual(server.auth_events(), [], "a password was offered")
        self.assertEqual(server.received(), [], "the message was sent")

    # a) the right pin -------------------------------------------------------

    def test_right_pin_delivers_over_smtps(self):
        server = self.start_smtps(self.certificates)
        account = self.add_account(self.smtps_url(server), pin(self.certificates))

        state = self.outbox.wait_final(self.send(account))
        self.assertEqual(state["state"], "sent", state)
        [received] = server.wait_messages(1)
        self.assertTrue(received["authenticated"], received)
        self.assertIn(b"Subject: pinned", received["data"])
        self.assertEqual([a["success"] for a in server.auth_events()], [True])

    def test_right_pin_delivers_over_starttls(self):
        server = self.start_starttls(self.certificates)
        account = self.add_account(self.starttls_url(server), pin(self.certificates))

        state = self.outbox.wait_final(self.send(account))
        self.assertEqual(state["state"], "sent", state)
        [received] = server.wait_messages(1)
        self.assertTrue(received["tls"], received)
        self.assertTrue(received["authenticated"], received)

    def test_pin_with_colons_in_upper_case_delivers(self):
        server = self.start_starttls(self.certificates)
        account = self.add_account(self.starttls_url(server),
                                   pin(self.certificates, colons=True))

        state = self.outbox.wait_final(self.send(account))
        self.assertEqual(state["state"], "sent", state)
        server.wait_messages(1)

    # b) a wrong pin ----------------------------------------------------------

    def test_wrong_pin_gets_nothing_over_smtps(self):
        server = self.start_smtps(self.certificates)
        account = self.add_account(self.smtps_url(server), pin(self.other_certificates))

        self.assertRefusedForPin(self.send(account))
        self.assertSmtpsServerGotNothing(server)

    def test_wrong_pin_gets_nothing_over_starttls(self):
        server = self.start_starttls(self.certificates)
        account = self.add_account(self.starttls_url(server), pin(self.other_certificates))

        self.assertRefusedForPin(self.send(account))
        self.assertStarttlsServerGotNothing(server)

    def test_account_test_reports_pin_mismatch(self):
        server = self.start_starttls(self.certificates)
        account = self.add_account(self.starttls_url(server), pin(self.other_certificates))

        result = self.outbox.run("account", "test", account, "--json")
        self.assertEqual(result.rc, 1, result)
        smtp = json.loads(result.stdout)["smtp"]
        self.assertFalse(smtp["ok"], smtp)
        self.assertTrue(names_pin_mismatch(smtp.get("error", "")), smtp)
        self.assertStarttlsServerGotNothing(server)

    # c) a wrong pin is never remembered, a right one never stretched --------

    def test_fixed_pin_delivers_the_deferred_message(self):
        server = self.start_starttls(self.certificates)
        account = self.add_account(self.starttls_url(server), pin(self.other_certificates))
        message_id = self.send(account)
        self.assertRefusedForPin(message_id)

        self.outbox.check("account", "update", account,
                          "--tls-fingerprint", pin(self.certificates))
        self.outbox.check("retry", message_id)
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)
        [received] = server.wait_messages(1)
        self.assertTrue(received["authenticated"], received)

    def test_wrong_pin_refused_again_on_retry(self):
        server = self.start_smtps(self.certificates)
        account = self.add_account(self.smtps_url(server), pin(self.other_certificates))
        message_id = self.send(account)
        first = self.assertRefusedForPin(message_id)

        self.outbox.check("retry", message_id)
        outboxtest.wait_until(
            lambda: self.outbox.show(message_id).get("attempts", 0) > first.get("attempts", 0),
            30, "a second attempt")
        self.assertRefusedForPin(message_id)
        self.assertSmtpsServerGotNothing(server)

    def test_changed_certificate_refused_after_a_right_pin(self):
        server = self.start_starttls(self.certificates)
        account = self.add_account(self.starttls_url(server), pin(self.certificates))
        state = self.outbox.wait_final(self.send(account, "first"))
        self.assertEqual(state["state"], "sent", state)
        server.wait_messages(1)

        server.stop()
        replaced = self.start_starttls(self.other_certificates, port=server.port)
        self.assertRefusedForPin(self.send(account, "second"))
        self.assertStarttlsServerGotNothing(replaced)

    def test_changed_certificate_refused_after_a_right_pin_over_smtps(self):
        server = self.start_smtps(self.certificates)
        account = self.add_account(self.smtps_url(server), pin(self.certificates))
        state = self.outbox.wait_final(self.send(account, "first"))
        self.assertEqual(state["state"], "sent", state)
        server.wait_messages(1)

        server.stop()
        replaced = self.start_smtps(self.other_certificates, port=server.port)
        self.assertRefusedForPin(self.send(account, "second"))
        self.assertSmtpsServerGotNothing(replaced)


if __name__ == "__main__":
    outboxtest.main()
