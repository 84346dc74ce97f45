#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Modern sign-in through the daemon, against a private Dovecot: SCRAM
where PLAIN is not offered, a password command, and a token command whose
OAuth2 access tokens Dovecot checks against an introspection endpoint the
test serves (OAUTHBEARER and XOAUTH2).  A refused token is replaced once
and tried again; a second refusal makes the account wait with a state that
says what to do, and nothing queued is lost.  No secret reaches the log,
the spool or the configuration."""

import base64
import pathlib
import shlex
import stat
import tempfile

import outboxtest
from outboxtest import (Dovecot, OutboxTestCase, SmtpSink, account_settings, config_dir,
                        make_message, session_log_size, spool_dir, start_daemon_with_args,
                        wait_until)

SENDER = "alice@example.org"


def message(subject):
    return make_message([("From", SENDER), ("To", "bob@example.org"), ("Subject", subject)])


class SignInTest(OutboxTestCase):
    """Shared: one relay sink, and the daemon with its protocol trace on."""

    dovecot_options = {}

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.dovecot = Dovecot(cls.sink.port, **cls.dovecot_options).start()
        cls.addClassCleanup(cls.dovecot.stop)
        cls.scripts = pathlib.Path(tempfile.mkdtemp(prefix="sign-in-"))

    def setUp(self):
        super().setUp()
        self.outbox.stop_daemon()
        self.log_offset = session_log_size()
        start_daemon_with_args(self.outbox, ["--verbose"], {"G_MESSAGES_DEBUG": "all"})
        self.addCleanup(self.outbox.stop_daemon)

    def daemon_log(self):
        with open(outboxtest.SESSION_LOG, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode("utf-8", "replace")

    def submission(self):
        return f"smtp://{Dovecot.USER}@localhost:{self.dovecot.ports['submission']}"

    def add_account(self, *extra, password=None, smtp=None):
        name = self.account_name()
        args = ["account", "add", name, "--from", SENDER, "--smtp", smtp or self.submission(),
                "--tls-ca-file", str(self.dovecot.ca_file), *extra]
        if password is not None:
            args.append("--password-stdin")
        self.outbox.check(*args, input=None if password is None else password + "\n")
        return name

    def script(self, name, body):
        """An executable shell script in the test's directory: its path."""
        path = self.scripts / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(stat.S_IRWXU)
        return str(path)

    def send(self, account, subject):
        count = len(self.sink.dump_files())
        message_id = self.outbox.send(message(subject), account=account)
        return message_id, count

    def assertDelivered(self, message_id, count):
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent",
                         self.outbox.show(message_id))
        self.sink.wait_messages(count + 1)

    def assertSignedInWith(self, mechanism):
        self.assertIn(f"signing in with {mechanism}", self.daemon_log())

    def wait_account_state(self, account, state):
        return wait_until(lambda: account_settings(account).get("state") == state
                          and account_settings(account), 60, f"account {account} in {state}")

    def assertNowhere(self, secret):
        forms = {"plain": secret.encode(), "base64": base64.b64encode(secret.encode())[:-4]}
        places = {"the daemon's log": self.daemon_log().encode()}
        for top in (spool_dir(), config_dir()):
            for path in top.rglob("*"):
                if path.is_file():
                    places[str(path)] = path.read_bytes()
        for form_name, form in forms.items():
            for place, content in places.items():
                self.assertNotIn(form, content, f"the secret ({form_name}) is in {place}")


class ScramTest(SignInTest):
    dovecot_options = {"scram": True}

    def test_scram_sha_256_is_chosen_when_plain_is_not_offered(self):
        account = self.add_account(password=Dovecot.PASSWORD)
        self.assertDelivered(*self.send(account, "scram"))
        self.assertSignedInWith("SCRAM-SHA-256")
        self.assertNowhere(Dovecot.PASSWORD)

    def test_pinned_scram_sha_1(self):
        account = self.add_account("--auth", "SCRAM-SHA-1", password=Dovecot.PASSWORD)
        self.assertDelivered(*self.send(account, "scram-sha-1"))
        self.assertSignedInWith("SCRAM-SHA-1")

    def test_pinned_plain_that_the_server_does_not_offer_says_so(self):
        account = self.add_account("--auth", "PLAIN", password=Dovecot.PASSWORD)
        message_id, _ = self.send(account, "plain pinned")
        # Nothing was refused: the account needs its settings looked at,
        # not a new password.
        settings = self.wait_account_state(account, "needs-attention")
        self.assertIn("nothing was sent to sign in", settings["state-message"])
        self.assertIn("SCRAM-SHA-256", settings["state-message"])
        self.assertIn("PLAIN", settings["state-message"])
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")

    def test_wrong_password_waits_then_goes_with_the_right_one(self):
        account = self.add_account(password="not the password")
        message_id, count = self.send(account, "wrong then right")
        settings = self.wait_account_state(account, "needs-password")
        self.assertIn("outbox account add", settings["state-message"])
        status = self.outbox.json("status", "--json")
        self.assertIn(account, [a["name"] for a in status["accounts_needing_attention"]])
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")
        outboxtest.set_password(account, Dovecot.PASSWORD)
        self.assertDelivered(message_id, count)
        self.assertEqual(account_settings(account)["state"], "ok")

    def test_password_command(self):
        # As with pass(1): the password lives in a file of the user's, and
        # the command prints it.
        vault = self.scripts / "vault"
        vault.write_text(Dovecot.PASSWORD + "\nsecond line, not part of it\n")
        account = self.add_account("--password-command", f"cat {shlex.quote(str(vault))}")
        self.assertDelivered(*self.send(account, "password command"))
        self.assertEqual(account_settings(account)["password-command"], ["cat", str(vault)])
        self.assertNowhere(Dovecot.PASSWORD)

    def test_sent_copy_and_account_test_over_imap_and_pop3(self):
        account = self.add_account("--imap", self.dovecot.url("imaps"),
                                   "--pop3", self.dovecot.url("pop3s"),
                                   password=Dovecot.PASSWORD)
        outboxtest.set_password(account, Dovecot.PASSWORD, "imap")
        outboxtest.set_password(account, Dovecot.PASSWORD, "pop3")
        message_id, count = self.send(account, "scram with a copy")
        self.assertDelivered(message_id, count)
        copied = wait_until(lambda: self.outbox.show(message_id).get("sent_copy") == "saved"
                            and self.outbox.show(message_id), 60, "the Sent copy")
        self.assertEqual(copied["sent_copy"], "saved")
        results = self.outbox.json("account", "test", account, "--json")
        for service in ("smtp", "imap", "pop3"):
            self.assertEqual(results[service]["login"], "ok", results)
        for protocol in ("imap", "pop3"):
            self.assertIn(f"{protocol} 127.0.0.1:", self.daemon_log())
        self.assertEqual(self.daemon_log().count("signing in with SCRAM-SHA-256"), 5,
                         "SMTP, the IMAP copy, and the three servers of the test")

    def test_failing_password_command_defers_with_its_words(self):
        command = self.script("locked", "echo 'the vault is locked' >&2\nexit 3\n")
        account = self.add_account("--password-command", command)
        message_id, _ = self.send(account, "locked vault")
        message = self.outbox.wait_state(message_id, "deferred")
        self.assertIn("exit status 3", message["last_reply"])
        self.assertIn("the vault is locked", message["last_reply"])
        # Retried with backoff, not blocked: the vault may open by then.
        settings = account_settings(account)
        self.assertEqual(settings["state"], "failing")
        self.assertIn("the vault is locked", settings["state-message"])
        self.assertIn("next_attempt", message)


class AuthSwitchedOffTest(OutboxTestCase):
    """Microsoft 365 answers 535 5.7.139 when the tenant turned SMTP AUTH
    (or password sign-in) off: that is no wrong password, and says so."""

    def test_535_5_7_139_needs_attention_with_what_to_do(self):
        server = self.start_aiosmtpd(
            auth=True, auth_without_tls=True,
            auth_refusal="535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                         "disabled for the Tenant.")
        account = self.account_name()
        self.outbox.add_account(account, SENDER,
                                f"smtp+insecure://alice@127.0.0.1:{server.port}",
                                password="any password")
        message_id = self.outbox.send(message("tenant says no"), account=account)
        settings = wait_until(lambda: account_settings(account).get("state") == "needs-attention"
                              and account_settings(account), 30, "the account to need attention")
        self.assertIn("turned this way of signing in off", settings["state-message"])
        self.assertIn("--oauth2 microsoft", settings["state-message"])
        self.assertIn("5.7.139", settings["state-message"])
        self.assertNotIn("refused the credentials", settings["state-message"])
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")
        self.assertEqual(len(server.events("auth")), 1, server.events("auth"))


class AccountFailingTest(OutboxTestCase):
    """A server that cannot be reached makes the account "failing", with
    since when, the next attempt and the last error, until a session opens."""

    def test_failing_then_ok(self):
        port = outboxtest.free_port()
        account = self.account_name()
        self.outbox.add_account(account, SENDER, f"smtp+insecure://127.0.0.1:{port}")
        outboxtest.update_account(account, {"retry-first": 1, "retry-max": 1})
        message_id = self.outbox.send(message("nobody listens"), account=account)
        settings = wait_until(lambda: account_settings(account).get("state") == "failing"
                              and account_settings(account), 30, "the account to be failing")
        self.assertIn("Could not connect", settings["state-message"])
        self.assertIn("failing-since", settings)
        status = self.outbox.json("status", "--json")
        [entry] = [a for a in status["accounts_needing_attention"] if a["name"] == account]
        self.assertEqual(entry["state"], "failing")
        self.assertIn("failing_since", entry)
        self.assertIn("failing since", self.outbox.check("status").stdout)
        sink = self.start_sink(port=port)
        self.outbox.check("flush")
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        sink.wait_messages(1)
        wait_until(lambda: account_settings(account).get("state") == "ok", 10,
                   "the account to be ok again")


class OAuth2TokenTest(SignInTest):
    dovecot_options = {"oauth2": True}

    def token_command(self, *tokens):
        """A command that prints tokens[0] the first time, tokens[1] the
        second, and so on (the last one from then on)."""
        counter = self.scripts / f"{self.account_name()}.count"
        counter.write_text("0")
        cases = "\n".join(f"  {i}) echo {shlex.quote(t)} ;;" for i, t in enumerate(tokens))
        body = (f"n=$(cat {counter}); echo $((n + 1)) > {counter}\n"
                f"case $n in\n{cases}\n  *) echo {shlex.quote(tokens[-1])} ;;\nesac\n")
        return self.script(f"{self.account_name()}.sh", body)

    def test_oauthbearer_with_a_token_command(self):
        token = "tok-oauthbearer-Hx81"
        self.dovecot.introspection.valid_tokens.add(token)
        account = self.add_account("--token-command", self.token_command(token))
        self.assertDelivered(*self.send(account, "oauthbearer"))
        self.assertSignedInWith("OAUTHBEARER")
        self.assertGreaterEqual(self.dovecot.introspection.count(token), 1)
        self.assertNowhere(token)

    def test_pinned_xoauth2(self):
        token = "tok-xoauth2-Lk22"
        self.dovecot.introspection.valid_tokens.add(token)
        account = self.add_account("--token-command", self.token_command(token),
                                   "--auth", "XOAUTH2")
        self.assertDelivered(*self.send(account, "xoauth2"))
        self.assertSignedInWith("XOAUTH2")
        self.assertNowhere(token)

    def test_a_refused_token_is_replaced_once(self):
        stale, fresh = "tok-stale-Qq09", "tok-fresh-Qq10"
        self.dovecot.introspection.valid_tokens.add(fresh)
        account = self.add_account("--token-command", self.token_command(stale, fresh))
        self.assertDelivered(*self.send(account, "stale then fresh"))
        self.assertEqual(self.dovecot.introspection.count(stale), 1)
        self.assertEqual(self.dovecot.introspection.count(fresh), 1)
        self.assertIn("trying once more with a new one", self.daemon_log())

    def test_a_token_refused_twice_waits_for_authorization(self):
        bad = "tok-revoked-Zz77"
        account = self.add_account("--token-command", self.token_command(bad))
        message_id, count = self.send(account, "revoked")
        settings = self.wait_account_state(account, "needs-authorization")
        self.assertIn("token command", settings["state-message"])
        # Tried twice, then no loop: the same two attempts a while later.
        self.assertEqual(self.dovecot.introspection.count(bad), 2)
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")
        text = self.outbox.check("status").stdout
        self.assertIn(f"{account} (needs-authorization)", text)
        # Made good, the message goes: nothing was lost.
        self.dovecot.introspection.valid_tokens.add(bad)
        self.outbox.check("flush")
        self.assertDelivered(message_id, count)
        self.assertEqual(self.dovecot.introspection.count(bad), 3)

    def test_tokens_for_imap_and_pop3(self):
        token = "tok-all-three-Mm31"
        self.dovecot.introspection.valid_tokens.add(token)
        account = self.add_account("--token-command", self.token_command(token),
                                   "--imap", self.dovecot.url("imaps"),
                                   "--pop3", self.dovecot.url("pop3s"))
        message_id, count = self.send(account, "token with a copy")
        self.assertDelivered(message_id, count)
        wait_until(lambda: self.outbox.show(message_id).get("sent_copy") == "saved", 60,
                   "the Sent copy")
        results = self.outbox.json("account", "test", account, "--json")
        for service in ("smtp", "imap", "pop3"):
            self.assertEqual(results[service]["login"], "ok", results)
        self.assertNowhere(token)

    def test_a_password_is_never_offered_as_a_token(self):
        # An OAuth2 account's token never goes through PLAIN or SCRAM, and
        # a password account never through OAUTHBEARER.
        account = self.add_account("--auth", "OAUTHBEARER", password=Dovecot.PASSWORD)
        self.send(account, "password as token")
        settings = self.wait_account_state(account, "needs-attention")
        self.assertIn("OAUTHBEARER", settings["state-message"])
        self.assertEqual(self.dovecot.introspection.count(Dovecot.PASSWORD), 0)


if __name__ == "__main__":
    outboxtest.main()
