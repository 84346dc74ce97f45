# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Secrets live only in the keyring (security.md 7, 22): after a full
delivery through STARTTLS and AUTH with the protocol trace on, the password
appears, in no form AUTH would carry it, in the daemon's log, the spool,
the configuration, or any D-Bus reply, signal or command output; and the
spool and the configuration are private."""

import base64
import logging
import os
import shutil
import ssl
import stat
import subprocess

import outboxtest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from gi.repository import GLib
from outboxtest import (ACCOUNTS_IFACE, QUEUE_IFACE, AccountChangedRecorder, Certificates,
                        MessageChangedRecorder, OutboxTestCase, call_outbox, config_dir,
                        free_port, list_accounts, list_all_messages, make_message,
                        session_log_size, spool_dir, start_daemon_with_args)

SENDER = "alice@example.org"
USER = "alice"
# Distinctive, so that finding it anywhere means it leaked.
PASSWORD = "pw-Zq7Rk9-Tf3xL2-Wv8Nh4-secret"


def leaked_forms(password, user):
    """Every form in which the password could leak: as it is, in hex, and
    base64 as AUTH PLAIN and LOGIN carry it, at any alignment."""
    secret = password.encode()
    forms = {"plain": secret, "hex": secret.hex().encode(),
             "AUTH LOGIN": base64.b64encode(secret),
             "AUTH PLAIN": base64.b64encode(b"\0" + user.encode() + b"\0" + secret),
             "AUTH PLAIN with authzid": base64.b64encode(
                 user.encode() + b"\0" + user.encode() + b"\0" + secret)}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret)
        # Only the groups of four made of password octets alone.
        forms[f"base64 at offset {shift}"] = encoded[4 if shift else 0:-4]
    return forms


class Recorder:
    """What the in-process server saw of authentication."""

    def __init__(self):
        self.auths = []   # (mechanism, login, success, over TLS)
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((session.ssl is not None, bool(session.authenticated),
                              envelope.original_content))
        return "250 2.0.0 queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
              and auth_data.password == PASSWORD.encode())
        self.auths.append((mechanism, auth_data.login if isinstance(auth_data, LoginPassword)
                           else None, ok, session.ssl is not None))
        return AuthResult(success=ok, handled=False)


class SecretsTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        cls.certificates = Certificates()
        # aiosmtpd warns about its own deprecated attributes on every AUTH.
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    def setUp(self):
        super().setUp()
        self.recorder = Recorder()
        self.port = free_port()
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(str(self.certificates.cert), str(self.certificates.key))
        self.server = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                 server_hostname="localhost", tls_context=tls_context,
                                 require_starttls=True, authenticator=self.recorder.authenticate,
                                 auth_require_tls=True)
        self.server.start()
        self.addCleanup(self.server.stop)
        # Our own daemon, with every debug message and the protocol trace.
        self.outbox.stop_daemon()
        self.log_offset = session_log_size()
        start_daemon_with_args(self.outbox, ["--verbose"], {"G_MESSAGES_DEBUG": "all"})
        self.addCleanup(self.outbox.stop_daemon)
        self.signals = MessageChangedRecorder()
        self.addCleanup(self.signals.close)
        self.account_signals = AccountChangedRecorder()
        self.addCleanup(self.account_signals.close)

    def send_through(self, mechanism):
        """A full delivery over STARTTLS with AUTH mechanism; returns the
        message id."""
        account = self.account_name()
        self.outbox.add_account(account, SENDER, f"smtp://{USER}@localhost:{self.port}",
                                password=PASSWORD, tls_ca_file=str(self.certificates.ca_cert))
        outboxtest.update_account(account, {"auth": mechanism})
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", "secret test")])
        message_id = self.outbox.send(message, account=account)
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        # The delivery really used the password, inside TLS.
        self.assertEqual(self.recorder.auths, [(mechanism, USER.encode(), True, True)])
        [(tls, authenticated, _)] = self.recorder.messages
        self.assertTrue(tls and authenticated)
        return account, message_id

    def daemon_log(self):
        with open(outboxtest.SESSION_LOG, "rb") as log:
            log.seek(self.log_offset)
            return log.read()

    def dbus_replies(self, account, message_id):
        """Every reply and signal a client can get, as text."""
        replies = [list_all_messages(), list_accounts(),
                   call_outbox(QUEUE_IFACE, "Get", GLib.Variant("(s)", (message_id,)))]
        for interface in (QUEUE_IFACE, ACCOUNTS_IFACE):
            replies.append(call_outbox("org.freedesktop.DBus.Properties", "GetAll",
                                       GLib.Variant("(s)", (interface,))))
        # The signal telling the outcome, at most 50 ms after it.
        self.signals.wait_state(message_id, "sent", timeout=10)
        replies.append(self.signals.signals)
        # Those telling the account: added, its password set, updated.
        self.account_signals.wait(account, "ok")
        replies.append(self.account_signals.signals)
        return repr(replies).encode()

    def cli_outputs(self, account, message_id):
        outputs = b""
        for args in (["show", message_id, "--json"], ["queue", "--all", "--json"],
                     ["account", "list", "--json"], ["account", "show", account],
                     ["status", "--json"]):
            result = self.outbox.check(*args)
            outputs += (result.stdout + result.stderr).encode()
        return outputs

    def files_under(self, *tops):
        found = {}
        for top in tops:
            for path in top.rglob("*"):
                if path.is_file():
                    found[str(path)] = path.read_bytes()
        return found

    def assertNowhere(self, places):
        for form_name, form in leaked_forms(PASSWORD, USER).items():
            for place, content in places.items():
                self.assertNotIn(form, content, f"the password ({form_name}) is in {place}")

    def check_no_leak(self, account, message_id):
        log = self.daemon_log()
        # The controls: the trace was on and showed the AUTH exchange.
        self.assertIn(b" C: MAIL FROM:<alice@example.org>", log, "no protocol trace")
        self.assertIn(b" C: AUTH", log, "the AUTH command is not in the trace")
        places = {"the daemon's log": log,
                  "a D-Bus reply or signal": self.dbus_replies(account, message_id),
                  "the output of outbox": self.cli_outputs(account, message_id)}
        state_dirs = [spool_dir(), config_dir()]
        for variable in ("XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
            state_dirs.append(outboxtest.pathlib.Path(os.environ[variable]))
        places.update(self.files_under(*state_dirs))
        self.assertIn(str(config_dir() / "accounts.conf"), places)
        self.assertNowhere(places)

    def test_auth_plain_leaves_no_trace_of_the_password(self):
        self.check_no_leak(*self.send_through("PLAIN"))

    def test_auth_login_leaves_no_trace_of_the_password(self):
        self.check_no_leak(*self.send_through("LOGIN"))

    def test_password_is_in_the_keyring(self):
        # The control for the tests above: the secret does exist, where it
        # belongs.
        if shutil.which("secret-tool") is None:
            self.skipTest("secret-tool is not installed")
        account, _ = self.send_through("PLAIN")
        completed = subprocess.run(["secret-tool", "lookup", "account", account,
                                    "service", "smtp"], capture_output=True, text=True)
        self.assertEqual(completed.stdout, PASSWORD, completed.stderr)

    def test_spool_and_config_are_private(self):
        self.send_through("PLAIN")
        for top, file_mode in ((spool_dir(), 0o600), (config_dir(), 0o600)):
            self.assertEqual(stat.S_IMODE(top.stat().st_mode), 0o700, f"{top}")
            for path in top.rglob("*"):
                mode = stat.S_IMODE(path.lstat().st_mode)
                with self.subTest(path=str(path)):
                    self.assertEqual(path.lstat().st_uid, os.geteuid())
                    if path.is_dir():
                        self.assertEqual(mode, 0o700, f"{path} is {oct(mode)}")
                    else:
                        self.assertEqual(mode, file_mode, f"{path} is {oct(mode)}")
        self.assertTrue((config_dir() / "accounts.conf").exists())
        self.assertTrue(any((spool_dir() / "queue").iterdir()), "nothing in the spool to check")


if __name__ == "__main__":
    outboxtest.main()
