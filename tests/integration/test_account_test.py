#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Accounts.Test and `outbox account test` against a private Dovecot
(imap, imaps, pop3, pop3s and submission): every server is checked on its
own, with its certificate, its offers, the login and the server's own
words when the login fails."""

import datetime
import hashlib
import json
import pathlib
import re
import ssl
import subprocess

from outboxtest import (ACCOUNTS_IFACE, Dovecot, GLib, OutboxTestCase, SmtpSink, call_outbox,
                        free_port, main, parse_time, set_password, update_account)

SERVICES = ("smtp", "imap", "pop3")


def certificate_facts(path):
    """(subject, issuer, not-after as Unix time, "sha256:HEX:..") of a PEM
    certificate, as certtool reads it."""
    info = subprocess.run(["certtool", "-i", "--infile", str(path)], check=True,
                          capture_output=True, text=True).stdout
    subject = re.search(r"^\s*Subject: (.*)$", info, re.M).group(1).strip()
    issuer = re.search(r"^\s*Issuer: (.*)$", info, re.M).group(1).strip()
    not_after = re.search(r"^\s*Not After: (.*)$", info, re.M).group(1).strip()
    expiry = datetime.datetime.strptime(not_after, "%a %b %d %H:%M:%S UTC %Y")
    expiry = expiry.replace(tzinfo=datetime.timezone.utc).timestamp()
    der = ssl.PEM_cert_to_DER_cert(pathlib.Path(path).read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = "sha256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    return subject, issuer, int(expiry), fingerprint


def account_test(name):
    """Accounts.Test(name) over D-Bus: {service: {key: value}}."""
    [results] = call_outbox(ACCOUNTS_IFACE, "Test", GLib.Variant("(s)", (name,)), "(a{sv})",
                            timeout=120)
    return results


class AccountTestTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.dovecot = Dovecot(cls.sink.port).start()
        cls.addClassCleanup(cls.dovecot.stop)
        cls.server_cert = certificate_facts(cls.dovecot.certificates.cert)
        cls.ca_subject = certificate_facts(cls.dovecot.ca_file)[0]

    def submission_url(self):
        """Dovecot's submission service by its host name (STARTTLS)."""
        return f"smtp://alice@localhost:{self.dovecot.ports['submission']}"

    def add_account(self, smtp=None, imap=None, pop3=None, trusted=True,
                    password=Dovecot.PASSWORD):
        """A fresh account (Dovecot's imaps and pop3s unless told otherwise)
        with one password for all its servers; returns its name."""
        name = self.account_name()
        args = ["account", "add", name, "--from", "alice@example.org",
                "--smtp", smtp or self.submission_url(),
                "--imap", imap or self.dovecot.url("imaps"),
                "--pop3", pop3 or self.dovecot.url("pop3s"),
                "--password-stdin"]
        if trusted:
            args += ["--tls-ca-file", str(self.dovecot.ca_file)]
        self.outbox.check(*args, input=password + "\n")
        return name

    def account_test_json(self, name):
        """`outbox account test NAME --json`: (exit status, parsed output)."""
        result = self.outbox.run("account", "test", name, "--json")
        self.assertIn(result.rc, (0, 1), result)
        try:
            return result.rc, json.loads(result.stdout)
        except ValueError as error:
            self.fail(f"account test --json printed no JSON ({error}): {result!r}")

    def assertServerOk(self, check, url, tls):
        self.assertEqual(check.get("url"), url, check)
        self.assertIs(check.get("ok"), True, check)
        self.assertIs(check.get("reached"), True, check)
        self.assertEqual(check.get("login"), "ok", check)
        self.assertEqual(check.get("tls"), tls, check)
        self.assertNotIn("error", check)

    def assertLoginFailed(self, check, server_words):
        self.assertIs(check.get("ok"), False, check)
        self.assertIs(check.get("reached"), True, check)
        self.assertEqual(check.get("login"), "failed", check)
        self.assertIn(server_words, check.get("server_reply", ""), check)
        self.assertIn(server_words, check.get("error", ""), check)

    def assertNotReached(self, check, url):
        self.assertEqual(check.get("url"), url, check)
        self.assertIs(check.get("ok"), False, check)
        self.assertIs(check.get("reached"), False, check)
        self.assertEqual(check.get("login"), "not reached", check)
        self.assertRegex(check.get("error", ""), r"(?i)refused", check)

    # The right password

    def test_right_password_every_server_ok(self):
        name = self.add_account()
        results = account_test(name)
        self.assertEqual(sorted(results), sorted(SERVICES), results)
        self.assertServerOk(results["smtp"], self.submission_url(), "STARTTLS")
        self.assertServerOk(results["imap"], self.dovecot.url("imaps"), "implicit TLS")
        self.assertServerOk(results["pop3"], self.dovecot.url("pop3s"), "implicit TLS")

    def test_right_password_reports_the_certificate(self):
        subject, issuer, not_after, fingerprint = self.server_cert
        self.assertEqual(issuer, self.ca_subject)
        results = account_test(self.add_account())
        for service in SERVICES:
            with self.subTest(service=service):
                check = results[service]
                self.assertEqual(check.get("tls-subject"), subject, check)
                self.assertEqual(check.get("tls-issuer"), issuer, check)
                self.assertEqual(check.get("tls-not-after"), not_after, check)
                self.assertEqual(check.get("tls-fingerprint"), fingerprint, check)

    def test_right_password_reports_capabilities(self):
        results = account_test(self.add_account())
        # One thing each protocol's server must offer here.
        expected = {"smtp": r"^AUTH\b.*PLAIN", "imap": r"(?i)^IMAP4rev1$",
                    "pop3": r"^(USER|SASL\b.*PLAIN)"}
        for service in SERVICES:
            with self.subTest(service=service):
                capabilities = results[service].get("capabilities", [])
                self.assertTrue(any(re.search(expected[service], c) for c in capabilities),
                                results[service])

    def test_right_password_server_reply(self):
        results = account_test(self.add_account())
        self.assertRegex(results["smtp"].get("server-reply", ""), r"^235 ", results["smtp"])
        self.assertRegex(results["imap"].get("server-reply", ""), r"^OK\b", results["imap"])
        self.assertRegex(results["pop3"].get("server-reply", ""), r"^\+OK\b", results["pop3"])

    def test_cli_exits_0_and_names_every_server(self):
        name = self.add_account()
        result = self.outbox.run("account", "test", name)
        self.assertEqual(result.rc, 0, result)
        for url in (self.submission_url(), self.dovecot.url("imaps"), self.dovecot.url("pop3s")):
            self.assertIn(url, result.stdout)
        self.assertIn("CN=Outbox test CA", result.stdout)

    def test_cli_json(self):
        name = self.add_account()
        rc, results = self.account_test_json(name)
        self.assertEqual(rc, 0, results)
        self.assertEqual(sorted(results), sorted(SERVICES), results)
        subject, issuer, not_after, fingerprint = self.server_cert
        for service in SERVICES:
            with self.subTest(service=service):
                check = results[service]
                self.assertIs(check.get("ok"), True, check)
                self.assertEqual(check.get("login"), "ok", check)
                self.assertEqual(check.get("tls_subject"), subject, check)
                self.assertEqual(check.get("tls_issuer"), issuer, check)
                self.assertEqual(check.get("tls_fingerprint"), fingerprint, check)
                self.assertEqual(parse_time(check.get("tls_not_after", "")), not_after, check)
                self.assertTrue(check.get("server_reply"), check)
                self.assertTrue(check.get("capabilities"), check)

    # A wrong password for one server: that server fails, with its words

    def check_wrong_password(self, service, server_words):
        name = self.add_account()
        set_password(name, "not-" + Dovecot.PASSWORD, service)
        rc, results = self.account_test_json(name)
        self.assertEqual(rc, 1, results)
        self.assertEqual(sorted(results), sorted(SERVICES), results)
        self.assertLoginFailed(results[service], server_words)
        for other in SERVICES:
            if other != service:
                self.assertIs(results[other].get("ok"), True, results[other])
                self.assertEqual(results[other].get("login"), "ok", results[other])

    def test_wrong_smtp_password(self):
        self.check_wrong_password("smtp", "535")

    def test_wrong_imap_password(self):
        self.check_wrong_password("imap", "[AUTHENTICATIONFAILED]")

    def test_wrong_pop3_password(self):
        self.check_wrong_password("pop3", "-ERR [AUTH]")

    def test_wrong_password_everywhere(self):
        name = self.add_account(password="not-" + Dovecot.PASSWORD)
        rc, results = self.account_test_json(name)
        self.assertEqual(rc, 1, results)
        self.assertLoginFailed(results["smtp"], "535")
        self.assertLoginFailed(results["imap"], "[AUTHENTICATIONFAILED]")
        self.assertLoginFailed(results["pop3"], "-ERR [AUTH]")

    # A server that is down: reported as such, the others still checked

    def check_down(self, service):
        down = {"smtp": f"smtp://alice@localhost:{free_port()}",
                "imap": f"imaps://alice@127.0.0.1:{free_port()}",
                "pop3": f"pop3s://alice@127.0.0.1:{free_port()}"}[service]
        name = self.add_account(**{service: down})
        rc, results = self.account_test_json(name)
        self.assertEqual(rc, 1, results)
        self.assertNotReached(results[service], down)
        for other in SERVICES:
            if other != service:
                self.assertIs(results[other].get("ok"), True, results[other])
                self.assertEqual(results[other].get("login"), "ok", results[other])

    def test_smtp_down_others_checked(self):
        self.check_down("smtp")

    def test_imap_down_others_checked(self):
        self.check_down("imap")

    def test_pop3_down_others_checked(self):
        self.check_down("pop3")

    def test_stopped_dovecot(self):
        stopped = Dovecot(self.sink.port, certificates=self.dovecot.certificates).start()
        stopped.stop()
        name = self.add_account(imap=stopped.url("imap"), pop3=stopped.url("pop3"))
        results = account_test(name)
        self.assertNotReached(results["imap"], stopped.url("imap"))
        self.assertNotReached(results["pop3"], stopped.url("pop3"))
        self.assertServerOk(results["smtp"], self.submission_url(), "STARTTLS")

    # STARTTLS and certificates

    def test_starttls_imap_and_stls_pop3(self):
        name = self.add_account(imap=self.dovecot.url("imap"), pop3=self.dovecot.url("pop3"))
        results = account_test(name)
        self.assertServerOk(results["imap"], self.dovecot.url("imap"), "STARTTLS")
        self.assertServerOk(results["pop3"], self.dovecot.url("pop3"), "STARTTLS")
        subject, issuer, _, _ = self.server_cert
        for service in ("imap", "pop3"):
            self.assertEqual(results[service].get("tls-subject"), subject, results[service])
            self.assertEqual(results[service].get("tls-issuer"), issuer, results[service])
        # After STARTTLS the capabilities are asked again: a login is offered.
        self.assertNotIn("LOGINDISABLED", results["imap"].get("capabilities", []))
        self.assertNotIn("STARTTLS", results["imap"].get("capabilities", []))

    def check_untrusted(self, service, url):
        name = self.add_account(**{service: url}, trusted=False)
        rc, results = self.account_test_json(name)
        self.assertEqual(rc, 1, results)
        check = results[service]
        self.assertIs(check.get("ok"), False, check)
        self.assertEqual(check.get("login"), "not reached", check)
        self.assertRegex(check.get("error", ""), r"(?i)certificate|TLS", check)

    def test_untrusted_certificate_imaps(self):
        self.check_untrusted("imap", self.dovecot.url("imaps"))

    def test_untrusted_certificate_imap_starttls(self):
        self.check_untrusted("imap", self.dovecot.url("imap"))

    def test_untrusted_certificate_pop3s(self):
        self.check_untrusted("pop3", self.dovecot.url("pop3s"))

    def test_untrusted_certificate_submission(self):
        self.check_untrusted("smtp", self.submission_url())

    def test_untrusted_certificate_is_described(self):
        # What the user needs to decide whether to trust or pin it.
        subject, issuer, _, fingerprint = self.server_cert
        name = self.add_account(trusted=False)
        results = account_test(name)
        for service in SERVICES:
            with self.subTest(service=service):
                check = results[service]
                self.assertIs(check.get("reached"), True, check)
                self.assertEqual(check.get("tls-subject"), subject, check)
                self.assertEqual(check.get("tls-issuer"), issuer, check)
                self.assertEqual(check.get("tls-fingerprint"), fingerprint, check)

    def test_pinned_fingerprint_without_ca(self):
        fingerprint = self.server_cert[3]
        name = self.add_account(trusted=False)
        update_account(name, {"tls-fingerprint": fingerprint})
        results = account_test(name)
        for service in SERVICES:
            with self.subTest(service=service):
                self.assertIs(results[service].get("ok"), True, results[service])
                self.assertEqual(results[service].get("tls-fingerprint"), fingerprint)

    def test_wrong_pin_fails_before_login(self):
        wrong = "sha256:" + ":".join(["00"] * 32)
        name = self.add_account(trusted=False)
        update_account(name, {"tls-fingerprint": wrong})
        results = account_test(name)
        for service in SERVICES:
            with self.subTest(service=service):
                check = results[service]
                self.assertIs(check.get("ok"), False, check)
                self.assertEqual(check.get("login"), "not reached", check)


if __name__ == "__main__":
    main()
