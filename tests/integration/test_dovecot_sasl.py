#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Checks the harness's private Dovecot with modern SASL: SCRAM-SHA-256 and
SCRAM-SHA-1 (GNU SASL's gsasl client over IMAP and submission with
STARTTLS; a SCRAM client written here over IMAPS and POP3S, where gsasl
has no implicit TLS nor POP3), no PLAIN on offer, and OAUTHBEARER and
XOAUTH2 checked against the harness's introspection server over IMAPS,
POP3S and submission."""

import base64
import hashlib
import hmac
import imaplib
import json
import os
import poplib
import smtplib
import ssl
import subprocess
import unittest

from outboxtest import Dovecot, SmtpSink

GSASL = "/usr/bin/gsasl"
USER = Dovecot.USER
PASSWORD = Dovecot.PASSWORD


def tls_context(dovecot):
    return ssl.create_default_context(cafile=str(dovecot.ca_file))


def gsasl(dovecot, protocol, mechanism, password=PASSWORD):
    """gsasl --imap or --smtp over STARTTLS to dovecot's "imap" or
    "submission" listener: the completed process (exit status 0 when the
    server accepted the login).  --no-cb: without it, gsasl 2.2.0 gives up
    on SCRAM-SHA-256 and -1 over TLS 1.3 and 1.2 alike right after the
    server's first "+ ", before sending anything ("mechanism error: Error
    authenticating user", exit status 1); Dovecot 2.3 has no -PLUS."""
    service = {"imap": "imap", "smtp": "submission"}[protocol]
    return subprocess.run(
        [GSASL, f"--{protocol}", "--starttls", "--no-cb", "--mechanism", mechanism,
         "--authentication-id", USER, "--password", password,
         "--x509-ca-file", str(dovecot.ca_file),
         "--connect", f"127.0.0.1:{dovecot.ports[service]}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def gsasl_failure(done):
    return f"gsasl exit status {done.returncode}; stderr:\n{done.stderr}"


class ScramClient:
    """The client side of SCRAM-SHA-256 or SCRAM-SHA-1 (RFC 5802, without
    channel binding), as a callable in imaplib's style: called with each
    decoded challenge, it returns the next response.  server_verified says
    whether the server proved that it knows the password."""

    HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-1": "sha1"}

    def __init__(self, mechanism, user=USER, password=PASSWORD):
        self.hash = self.HASHES[mechanism]
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n={user},r={self.nonce}"
        self.server_signature = None
        self.server_verified = False
        self.step = 0

    def _hmac(self, key, text):
        return hmac.new(key, text, self.hash).digest()

    def __call__(self, challenge):
        self.step += 1
        if self.step == 1:
            return ("n,," + self.first_bare).encode()
        if self.step == 2:
            server_first = challenge.decode()
            fields = dict(item.split("=", 1) for item in server_first.split(","))
            if not fields["r"].startswith(self.nonce):
                raise AssertionError(f"server nonce {fields['r']!r} does not extend ours")
            salted = hashlib.pbkdf2_hmac(self.hash, self.password,
                                         base64.b64decode(fields["s"]), int(fields["i"]))
            client_key = self._hmac(salted, b"Client Key")
            final_bare = f"c=biws,r={fields['r']}"
            auth_message = f"{self.first_bare},{server_first},{final_bare}".encode()
            signature = self._hmac(hashlib.new(self.hash, client_key).digest(), auth_message)
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            self.server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
            return f"{final_bare},p={base64.b64encode(proof).decode()}".encode()
        self.server_verified = (
            challenge == b"v=" + base64.b64encode(self.server_signature))
        return b""


class TokenClient:
    """An XOAUTH2 or OAUTHBEARER client as a callable: the initial response
    first, then (after an error challenge, which it keeps in challenges)
    the reply that ends the exchange: an empty line for XOAUTH2, ^A for
    OAUTHBEARER (RFC 7628)."""

    def __init__(self, mechanism, token, user=USER):
        self.mechanism = mechanism
        if mechanism == "XOAUTH2":
            self.initial = f"user={user}\x01auth=Bearer {token}\x01\x01"
            self.ending = ""
        else:
            self.initial = f"n,a={user},\x01auth=Bearer {token}\x01\x01"
            self.ending = "\x01"
        self.challenges = []
        self.sent_initial = False

    def __call__(self, challenge=None):
        if not self.sent_initial:
            self.sent_initial = True
            return self.initial
        self.challenges.append(json.loads(challenge))
        return self.ending


def pop3_authenticate(client, mechanism, respond, initial_response=False):
    """AUTH (RFC 5034) on a poplib client, respond being a callable as for
    imaplib: its answer to each decoded challenge goes back base64-encoded.
    Returns the final +OK line; a -ERR raises poplib.error_proto."""
    def encode(data):
        return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()

    command = f"AUTH {mechanism}"
    if initial_response:
        command += " " + (encode(respond(b"")) or "=")
    reply = client._shortcmd(command)
    while not reply.startswith(b"+OK"):
        reply = client._shortcmd(encode(respond(base64.b64decode(reply[1:].strip()))))
    return reply


class SaslTestCase(unittest.TestCase):
    """Clients of a class-wide Dovecot (cls.dovecot) relaying to smtp-sink."""

    DOVECOT_OPTIONS = {}

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.dovecot = Dovecot(cls.sink.port, **cls.DOVECOT_OPTIONS).start()
        cls.addClassCleanup(cls.dovecot.stop)

    def imaps(self, dovecot=None):
        dovecot = dovecot or self.dovecot
        client = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"],
                                   ssl_context=tls_context(dovecot))
        self.addCleanup(client.shutdown)
        return client

    def pop3s(self, dovecot=None):
        dovecot = dovecot or self.dovecot
        client = poplib.POP3_SSL("127.0.0.1", dovecot.ports["pop3s"],
                                 context=tls_context(dovecot))
        self.addCleanup(client.close)
        return client

    def submission(self, dovecot=None):
        """A client of the submission listener, after STARTTLS and EHLO."""
        dovecot = dovecot or self.dovecot
        client = smtplib.SMTP("127.0.0.1", dovecot.ports["submission"], timeout=30)
        self.addCleanup(client.close)
        client.starttls(context=tls_context(dovecot))
        client.ehlo()
        return client

    def assert_imaps_scram(self, mechanism, dovecot=None):
        scram = ScramClient(mechanism)
        status, _ = self.imaps(dovecot).authenticate(mechanism, scram)
        self.assertEqual(status, "OK", f"AUTHENTICATE {mechanism}")
        self.assertTrue(scram.server_verified, f"{mechanism}: the server's signature is wrong")

    def assert_imaps_scram_fails(self, mechanism, password, dovecot=None):
        with self.assertRaisesRegex(imaplib.IMAP4.error, "AUTHENTICATIONFAILED",
                                    msg=f"AUTHENTICATE {mechanism} with {password!r}"):
            self.imaps(dovecot).authenticate(mechanism, ScramClient(mechanism, password=password))


class ScramTest(SaslTestCase):
    """scram=True: SCRAM-SHA-256 and SCRAM-SHA-1 from hashed entries only."""

    DOVECOT_OPTIONS = {"scram": True}

    def assert_gsasl_logs_in(self, protocol, mechanism):
        done = gsasl(self.dovecot, protocol, mechanism)
        self.assertEqual(done.returncode, 0,
                         f"{mechanism} over {protocol} refused: {gsasl_failure(done)}")

    def assert_pop3s_scram(self, mechanism):
        scram = ScramClient(mechanism)
        reply = pop3_authenticate(self.pop3s(), mechanism, scram)
        self.assertTrue(reply.startswith(b"+OK"), reply)
        self.assertTrue(scram.server_verified, f"{mechanism}: the server's signature is wrong")

    def test_entries_are_scram_hashes(self):
        entries = [path.read_text() for path in sorted(self.dovecot.dir.glob("users*"))]
        self.assertEqual(sorted(entry.split(":", 1)[1].split("}")[0] + "}" for entry in entries),
                         ["{SCRAM-SHA-1}", "{SCRAM-SHA-256}"], entries)
        self.assertFalse([e for e in entries if PASSWORD in e], "a password in clear")

    def test_gsasl_imap_scram_sha_256(self):
        self.assert_gsasl_logs_in("imap", "SCRAM-SHA-256")

    def test_gsasl_imap_scram_sha_1(self):
        self.assert_gsasl_logs_in("imap", "SCRAM-SHA-1")

    def test_gsasl_submission_scram_sha_256(self):
        self.assert_gsasl_logs_in("smtp", "SCRAM-SHA-256")

    def test_gsasl_submission_scram_sha_1(self):
        self.assert_gsasl_logs_in("smtp", "SCRAM-SHA-1")

    def test_imaps_scram_sha_256(self):
        self.assert_imaps_scram("SCRAM-SHA-256")

    def test_imaps_scram_sha_1(self):
        self.assert_imaps_scram("SCRAM-SHA-1")

    def test_pop3s_scram_sha_256(self):
        self.assert_pop3s_scram("SCRAM-SHA-256")

    def test_pop3s_scram_sha_1(self):
        self.assert_pop3s_scram("SCRAM-SHA-1")

    def test_pop3_stls_scram_sha_256(self):
        client = poplib.POP3("127.0.0.1", self.dovecot.ports["pop3"], timeout=30)
        self.addCleanup(client.close)
        client.stls(context=tls_context(self.dovecot))
        scram = ScramClient("SCRAM-SHA-256")
        reply = pop3_authenticate(client, "SCRAM-SHA-256", scram)
        self.assertTrue(reply.startswith(b"+OK") and scram.server_verified, reply)

    def test_gsasl_imap_wrong_password(self):
        done = gsasl(self.dovecot, "imap", "SCRAM-SHA-256", password="wrong")
        self.assertEqual(done.returncode, 1, f"not refused: {gsasl_failure(done)}")

    def test_gsasl_submission_wrong_password(self):
        done = gsasl(self.dovecot, "smtp", "SCRAM-SHA-1", password="wrong")
        self.assertEqual(done.returncode, 1, f"not refused: {gsasl_failure(done)}")

    def test_imaps_wrong_password(self):
        self.assert_imaps_scram_fails("SCRAM-SHA-256", "wrong")

    def test_pop3s_wrong_password(self):
        with self.assertRaisesRegex(poplib.error_proto, r"-ERR \[AUTH\]"):
            pop3_authenticate(self.pop3s(), "SCRAM-SHA-1", ScramClient("SCRAM-SHA-1",
                                                                        password="wrong"))

    def test_imap_offers_scram_only(self):
        capabilities = self.imaps().capabilities
        self.assertEqual(sorted(c for c in capabilities if c.startswith("AUTH=")),
                         ["AUTH=SCRAM-SHA-1", "AUTH=SCRAM-SHA-256"], capabilities)

    def test_imap_refuses_plain(self):
        client = self.imaps()
        with self.assertRaisesRegex(imaplib.IMAP4.error, "[Uu]nsupported"):
            client.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}")

    def test_submission_offers_scram_only(self):
        client = self.submission()
        self.assertEqual(sorted(client.esmtp_features["auth"].split()),
                         ["SCRAM-SHA-1", "SCRAM-SHA-256"], client.esmtp_features)

    def test_submission_refuses_plain(self):
        with self.assertRaises(smtplib.SMTPException) as refused:
            self.submission().login(USER, PASSWORD)
        self.assertIn("No suitable authentication method", str(refused.exception))

    def test_pop3_offers_scram_only(self):
        capabilities = self.pop3s().capa()
        self.assertEqual(sorted(capabilities["SASL"]), ["SCRAM-SHA-1", "SCRAM-SHA-256"],
                         capabilities)


class ScramSchemeTest(SaslTestCase):
    """How Dovecot 2.3 matches a SCRAM mechanism to the stored scheme."""

    DOVECOT_OPTIONS = {"scram": True, "password_schemes": ("SCRAM-SHA-256",)}

    def test_sha_256_entry_alone_refuses_sha_1(self):
        self.assert_imaps_scram("SCRAM-SHA-256")
        self.assert_imaps_scram_fails("SCRAM-SHA-1", PASSWORD)
        self.assertIn("Requested SCRAM-SHA-1 scheme, but we have only SCRAM-SHA-256",
                      self.dovecot.log())

    def test_plain_entry_serves_both_without_offering_plain(self):
        dovecot = Dovecot(scram=True, password_schemes=("PLAIN",)).start()
        self.addCleanup(dovecot.stop)
        self.assertEqual(sorted(c for c in self.imaps(dovecot).capabilities
                                if c.startswith("AUTH=")),
                         ["AUTH=SCRAM-SHA-1", "AUTH=SCRAM-SHA-256"])
        self.assert_imaps_scram("SCRAM-SHA-256", dovecot)
        self.assert_imaps_scram("SCRAM-SHA-1", dovecot)


class OAuth2Test(SaslTestCase):
    """oauth2=True (with scram=True): tokens checked by introspection."""

    DOVECOT_OPTIONS = {"scram": True, "oauth2": True}
    # What Dovecot 2.3.19 challenges with when introspection refuses a token.
    XOAUTH2_ERROR = {"status": "401", "schemes": "bearer", "scope": "mail"}
    OAUTHBEARER_ERROR = {"status": "invalid_token"}

    def token(self, valid):
        """A token of this test's own, made valid when asked."""
        token = f"{'good' if valid else 'bad'}-{self.id().rsplit('.', 1)[1]}"
        if valid:
            self.dovecot.introspection.valid_tokens.add(token)
            self.addCleanup(self.dovecot.introspection.valid_tokens.discard, token)
        return token

    def assert_presented_once(self, token, active):
        requests = self.dovecot.introspection.requests(token)
        self.assertEqual([r["active"] for r in requests], [active],
                         f"introspection requests for {token}: {requests}")

    def assert_error_challenge(self, client, mechanism):
        expected = self.XOAUTH2_ERROR if mechanism == "XOAUTH2" else self.OAUTHBEARER_ERROR
        self.assertEqual(client.challenges, [expected], f"{mechanism} error challenge")

    # IMAP

    def imaps_token_login(self, mechanism, valid):
        token = self.token(valid)
        client = TokenClient(mechanism, token)
        if valid:
            status, _ = self.imaps().authenticate(mechanism, client)
            self.assertEqual(status, "OK", f"AUTHENTICATE {mechanism}")
        else:
            with self.assertRaisesRegex(imaplib.IMAP4.error, r"\[AUTHENTICATIONFAILED\]"):
                self.imaps().authenticate(mechanism, client)
            self.assert_error_challenge(client, mechanism)
        self.assert_presented_once(token, valid)

    def test_imaps_xoauth2_valid_token(self):
        self.imaps_token_login("XOAUTH2", True)

    def test_imaps_oauthbearer_valid_token(self):
        self.imaps_token_login("OAUTHBEARER", True)

    def test_imaps_xoauth2_invalid_token(self):
        self.imaps_token_login("XOAUTH2", False)

    def test_imaps_oauthbearer_invalid_token(self):
        self.imaps_token_login("OAUTHBEARER", False)

    # SMTP submission

    def submission_token_login(self, mechanism, valid):
        token = self.token(valid)
        client = TokenClient(mechanism, token)
        if valid:
            code, _ = self.submission().auth(mechanism, client)
            self.assertEqual(code, 235, f"AUTH {mechanism}")
        else:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as refused:
                self.submission().auth(mechanism, client)
            self.assertEqual((refused.exception.smtp_code, refused.exception.smtp_error),
                             (535, b"5.7.8 Authentication failed."))
            self.assert_error_challenge(client, mechanism)
        self.assert_presented_once(token, valid)

    def test_submission_xoauth2_valid_token(self):
        self.submission_token_login("XOAUTH2", True)

    def test_submission_oauthbearer_valid_token(self):
        self.submission_token_login("OAUTHBEARER", True)

    def test_submission_xoauth2_invalid_token(self):
        self.submission_token_login("XOAUTH2", False)

    def test_submission_oauthbearer_invalid_token(self):
        self.submission_token_login("OAUTHBEARER", False)

    # POP3

    def pop3s_token_login(self, mechanism, valid):
        token = self.token(valid)
        client = TokenClient(mechanism, token)
        if valid:
            reply = pop3_authenticate(self.pop3s(), mechanism, client, initial_response=True)
            self.assertTrue(reply.startswith(b"+OK"), reply)
        else:
            with self.assertRaisesRegex(poplib.error_proto, r"-ERR \[AUTH\] Authentication failed"):
                pop3_authenticate(self.pop3s(), mechanism, client, initial_response=True)
            self.assert_error_challenge(client, mechanism)
        self.assert_presented_once(token, valid)

    def test_pop3s_xoauth2_valid_token(self):
        self.pop3s_token_login("XOAUTH2", True)

    def test_pop3s_oauthbearer_valid_token(self):
        self.pop3s_token_login("OAUTHBEARER", True)

    def test_pop3s_xoauth2_invalid_token(self):
        self.pop3s_token_login("XOAUTH2", False)

    def test_pop3s_oauthbearer_invalid_token(self):
        self.pop3s_token_login("OAUTHBEARER", False)

    # Around the tokens

    def test_token_refused_then_made_valid(self):
        token = self.token(False)
        with self.assertRaises(imaplib.IMAP4.error):
            self.imaps().authenticate("XOAUTH2", TokenClient("XOAUTH2", token))
        self.dovecot.introspection.valid_tokens.add(token)
        self.addCleanup(self.dovecot.introspection.valid_tokens.discard, token)
        status, _ = self.imaps().authenticate("XOAUTH2", TokenClient("XOAUTH2", token))
        self.assertEqual(status, "OK", "a token once refused stays refused: a cache?")
        self.assertEqual([r["active"] for r in self.dovecot.introspection.requests(token)],
                         [False, True])

    def test_password_is_not_a_token(self):
        with self.assertRaises(imaplib.IMAP4.error):
            self.imaps().authenticate("XOAUTH2", TokenClient("XOAUTH2", PASSWORD))
        self.assertEqual(self.dovecot.introspection.count(PASSWORD), 1)

    def test_scram_beside_tokens(self):
        self.assert_imaps_scram("SCRAM-SHA-256")
        self.assert_imaps_scram("SCRAM-SHA-1")

    def test_mechanisms_offered(self):
        expected = ["OAUTHBEARER", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2"]
        imap = sorted(c[5:] for c in self.imaps().capabilities if c.startswith("AUTH="))
        smtp = sorted(self.submission().esmtp_features["auth"].split())
        pop3 = sorted(self.pop3s().capa()["SASL"])
        self.assertEqual({"imap": imap, "submission": smtp, "pop3": pop3},
                         {"imap": expected, "submission": expected, "pop3": expected})

    def test_introspection_log_has_no_token(self):
        token = self.token(True)
        self.imaps().authenticate("OAUTHBEARER", TokenClient("OAUTHBEARER", token))
        self.assertNotIn(token, self.dovecot.introspection.log.read_text())
        self.assertNotIn(token, self.dovecot.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
