#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""outbox account authorize end to end: the test is the OAuth2 provider
(an authorization server on loopback) and the browser, the CLI talks to
both and hands the refresh token to the daemon, and the daemon signs in to
a private Dovecot with the access tokens it trades that refresh token for.

The authorization code grant with PKCE and a loopback redirect (RFC 6749,
7636, 8252), the device grant (RFC 8628), a forged state and a refusal,
refreshes with rotation, a revoked grant that makes the account wait for a
new authorization, and the client secret of --client-secret-stdin.  No
token or secret shows on the CLI's output, in the daemon's log or in the
configuration."""

import base64
import hashlib
import http.server
import json
import queue
import secrets
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import outboxtest
from outboxtest import (OUTBOX, Dovecot, OutboxTestCase, SmtpSink, account_settings,
                        config_dir, make_message, session_log_size, spool_dir,
                        start_daemon_with_args, wait_until)

SENDER = "alice@example.org"
CLIENT_ID = "test-client"
SCOPE = "mail"
EXIT_USAGE = 64
EXIT_CONFIG = 78

# What the browser is given to fetch: never through a proxy of the
# environment's.
BROWSER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pkce_challenge(verifier):
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_loopback_redirect(uri):
    parsed = urllib.parse.urlsplit(uri)
    return (parsed.scheme == "http" and parsed.hostname == "127.0.0.1"
            and parsed.port is not None and parsed.path == "/")


class AuthorizationServer:
    """The provider: /authorize (answered with the redirect a browser
    would be sent), /token (authorization_code, refresh_token and
    device_code grants) and /device, all on one loopback port.  What it
    finds wrong in a request goes to problems and gets a 400."""

    def __init__(self, introspection):
        self.introspection = introspection
        self.lock = threading.Lock()
        # What the test tells it.
        self.client_secret = None   # required in each token request when set
        self.alter_state = False    # send the browser back with another state
        self.deny = False           # answer error=access_denied
        self.expires_in = 3600
        self.rotate = False         # replace the refresh token on each refresh
        # What it saw and gave.
        self.problems = []
        self.codes = {}             # code -> what /authorize was asked
        self.exchanges = []         # one dict per authorization_code grant
        self.refreshes = []         # the refresh token of each refresh_token grant
        self.client_secrets = []    # the client_secret of each token request
        self.refresh_tokens = set() # the valid ones
        self.access_tokens = []     # every one issued, in order
        self.refreshed_access_tokens = []
        self.devices = {}           # device_code -> {"user_code", "approved"}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.handle(self, "GET")

            def do_POST(self):
                server.handle(self, "POST")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    # Requests

    def handle(self, request, method):
        parsed = urllib.parse.urlsplit(request.path)
        routes = {("GET", "/authorize"): self.authorize, ("POST", "/token"): self.token,
                  ("POST", "/device"): self.device}
        route = routes.get((method, parsed.path))
        if route is None:
            return self.reply_json(request, 404, {"error": "not_found"})
        if method == "POST":
            length = int(request.headers.get("Content-Length", "0"))
            body = request.rfile.read(length).decode("ascii")
            form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        else:
            form = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        with self.lock:
            route(request, form)

    def problem(self, request, text):
        self.problems.append(text)
        self.reply_json(request, 400, {"error": "invalid_request", "error_description": text})

    def reply_json(self, request, status, answer):
        data = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Cache-Control", "no-store")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def redirect(self, request, redirect_uri, params):
        location = f"{redirect_uri}?{urllib.parse.urlencode(params)}"
        request.send_response(302)
        request.send_header("Location", location)
        request.send_header("Content-Length", "0")
        request.end_headers()

    def authorize(self, request, query):
        expected = {"response_type": "code", "client_id": CLIENT_ID,
                    "code_challenge_method": "S256", "scope": SCOPE}
        for key, value in expected.items():
            if query.get(key) != value:
                return self.problem(request, f"/authorize: {key} is {query.get(key)!r}")
        if not is_loopback_redirect(query.get("redirect_uri", "")):
            return self.problem(request, f"/authorize: redirect_uri {query.get('redirect_uri')!r}")
        if not query.get("state") or len(query.get("code_challenge", "")) != 43:
            return self.problem(request, f"/authorize: no state or challenge in {sorted(query)}")
        state = "forged-" + query["state"] if self.alter_state else query["state"]
        if self.deny:
            return self.redirect(request, query["redirect_uri"],
                                 {"error": "access_denied", "state": state})
        code = "code-" + secrets.token_urlsafe(16)
        self.codes[code] = dict(query)
        self.redirect(request, query["redirect_uri"], {"code": code, "state": state})

    def check_client(self, request, form):
        self.client_secrets.append(form.get("client_secret"))
        if form.get("client_id") != CLIENT_ID:
            self.problem(request, f"/token: client_id {form.get('client_id')!r}")
            return False
        if self.client_secret is not None and form.get("client_secret") != self.client_secret:
            self.reply_json(request, 401, {"error": "invalid_client"})
            return False
        return True

    def token(self, request, form):
        grants = {"authorization_code": self.exchange,
                  "refresh_token": self.refresh,
                  "urn:ietf:params:oauth:grant-type:device_code": self.poll_device}
        grant = grants.get(form.get("grant_type"))
        if grant is None:
            return self.problem(request, f"/token: grant_type {form.get('grant_type')!r}")
        if self.check_client(request, form):
            grant(request, form)

    def exchange(self, request, form):
        asked = self.codes.pop(form.get("code"), None)
        if asked is None:
            return self.reply_json(request, 400, {"error": "invalid_grant"})
        verifier = form.get("code_verifier", "")
        exchange = {"pkce_verified": pkce_challenge(verifier) == asked["code_challenge"],
                    "redirect_uri_matches": form.get("redirect_uri") == asked["redirect_uri"]}
        self.exchanges.append(exchange)
        if not exchange["pkce_verified"]:
            return self.reply_json(request, 400, {"error": "invalid_grant",
                                                  "error_description": "PKCE verification failed"})
        if not exchange["redirect_uri_matches"]:
            return self.problem(request, "/token: redirect_uri differs from the authorization's")
        self.issue(request, with_refresh_token=True)

    def refresh(self, request, form):
        token = form.get("refresh_token")
        self.refreshes.append(token)
        if token not in self.refresh_tokens:
            return self.reply_json(request, 400, {"error": "invalid_grant"})
        if self.rotate:
            self.refresh_tokens.discard(token)
        self.issue(request, with_refresh_token=self.rotate, refreshed=True)

    def poll_device(self, request, form):
        device = self.devices.get(form.get("device_code"))
        if device is None:
            return self.reply_json(request, 400, {"error": "invalid_grant"})
        if not device["approved"]:
            return self.reply_json(request, 400, {"error": "authorization_pending"})
        del self.devices[form["device_code"]]
        self.issue(request, with_refresh_token=True)

    def device(self, request, form):
        if form.get("client_id") != CLIENT_ID or form.get("scope") != SCOPE:
            return self.problem(request, f"/device: {form}")
        device_code = "device-" + secrets.token_urlsafe(16)
        user_code = "WDJB-" + secrets.token_hex(2).upper()
        self.devices[device_code] = {"user_code": user_code, "approved": False}
        self.reply_json(request, 200, {
            "device_code": device_code, "user_code": user_code,
            "verification_uri": self.url("/activate"),
            "verification_uri_complete": self.url(f"/activate?user_code={user_code}"),
            "expires_in": 300, "interval": 1})

    def issue(self, request, with_refresh_token, refreshed=False):
        access_token = "at-" + secrets.token_urlsafe(24)
        self.introspection.valid_tokens.add(access_token)
        self.access_tokens.append(access_token)
        if refreshed:
            self.refreshed_access_tokens.append(access_token)
        answer = {"access_token": access_token, "token_type": "Bearer",
                  "expires_in": self.expires_in}
        if with_refresh_token:
            answer["refresh_token"] = "rt-" + secrets.token_urlsafe(24)
            self.refresh_tokens.add(answer["refresh_token"])
        self.reply_json(request, 200, answer)

    # What the test does as the user

    def approve(self, user_code):
        with self.lock:
            for device in self.devices.values():
                if device["user_code"] == user_code:
                    device["approved"] = True
                    return
        raise AssertionError(f"no device waits for the user code {user_code!r}")

    def revoke_all(self):
        with self.lock:
            self.refresh_tokens.clear()

    def issued_refresh_tokens(self):
        with self.lock:
            return set(self.refresh_tokens)


class AuthorizeRun:
    """outbox account authorize NAME [ARGS] in the background, its output
    read as it comes."""

    def __init__(self, name, *args):
        self.process = subprocess.Popen([str(OUTBOX), "account", "authorize", name, *args],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.stdout = []
        self.stderr = []
        self.readers = [threading.Thread(target=self._read, args=(self.process.stdout,
                                                                   self.stdout, True)),
                        threading.Thread(target=self._read, args=(self.process.stderr,
                                                                   self.stderr, False))]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, into, announce):
        for line in stream:
            into.append(line)
            if announce:
                self.lines.put(line)
        if announce:
            self.lines.put(None)

    def wait_line(self, predicate, what, timeout=30):
        """The first line of standard output that predicate accepts."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout} s: {self.output()}") from None
            if line is None:
                self.finish()
                raise AssertionError(f"the CLI ended without {what}: {self.output()}")
            if predicate(line):
                return line

    def finish(self, timeout=60):
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the CLI did not end within {timeout} s: {self.output()}")
        for reader in self.readers:
            reader.join()
        self.process.stdout.close()
        self.process.stderr.close()
        return self.process.returncode

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def output(self):
        return (f"exit {self.process.returncode}, stdout {''.join(self.stdout)!r}, "
                f"stderr {''.join(self.stderr)!r}")


def browse(url):
    """Fetches url as a browser would, following the provider's redirect to
    the CLI's loopback server: (status, page)."""
    try:
        with BROWSER.open(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def stored_secret(account, service):
    """What the Secret Service holds for the account's service, or None."""
    completed = subprocess.run(["secret-tool", "lookup", "account", account, "service", service],
                               capture_output=True, text=True, timeout=30)
    return completed.stdout if completed.returncode == 0 and completed.stdout else None


class AuthorizeTest(OutboxTestCase):
    """One relay sink and one Dovecot for all; for each test the daemon
    with its protocol trace on, and a fresh authorization server."""

    @classmethod
    def setUpClass(cls):
        cls.sink = SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        cls.dovecot = Dovecot(cls.sink.port, oauth2=True).start()
        cls.addClassCleanup(cls.dovecot.stop)

    def setUp(self):
        super().setUp()
        self.outbox.stop_daemon()
        self.log_offset = session_log_size()
        start_daemon_with_args(self.outbox, ["--verbose"], {"G_MESSAGES_DEBUG": "all"})
        self.addCleanup(self.outbox.stop_daemon)
        self.server = AuthorizationServer(self.dovecot.introspection)
        self.addCleanup(self.server.stop)
        self.runs = []
        self.addCleanup(self.stop_runs)

    def stop_runs(self):
        for run in self.runs:
            run.stop()

    def daemon_log(self):
        with open(outboxtest.SESSION_LOG, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode("utf-8", "replace")

    def add_account(self, *extra, client_secret=None):
        name = self.account_name()
        args = ["account", "add", name, "--from", SENDER,
                "--smtp", f"smtp://{Dovecot.USER}@localhost:{self.dovecot.ports['submission']}",
                "--tls-ca-file", str(self.dovecot.ca_file),
                "--oauth2", "custom", "--client-id", CLIENT_ID,
                "--oauth2-auth-url", self.server.url("/authorize"),
                "--oauth2-token-url", self.server.url("/token"),
                "--oauth2-device-url", self.server.url("/device"),
                "--oauth2-scope", SCOPE, *extra]
        if client_secret is not None:
            args.append("--client-secret-stdin")
        self.outbox.check(*args, input=None if client_secret is None else client_secret + "\n")
        return name

    def start_authorize(self, name, *args):
        run = AuthorizeRun(name, *args)
        self.runs.append(run)
        return run

    def authorize_in_browser(self, name):
        """Runs authorize --no-browser and plays the browser: the run, its
        exit status and the page the browser was shown."""
        run = self.start_authorize(name, "--no-browser")
        line = run.wait_line(lambda l: l.startswith("  http"), "URL line")
        status, page = browse(line.strip())
        return run, run.finish(), (status, page)

    def authorize(self, name):
        run, rc, (status, page) = self.authorize_in_browser(name)
        self.assertEqual(rc, 0, f"authorize failed: {run.output()}")
        self.assertEqual(status, 200, f"the browser was shown {status}: {page}")
        self.assertIn("close this window", page)
        self.assertEqual(self.server.problems, [], "the authorization server found problems")
        return run

    def send(self, account, subject):
        count = len(self.sink.dump_files())
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", subject)])
        return self.outbox.send(message, account=account), count

    def assertDelivered(self, message_id, count):
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent",
                         self.outbox.show(message_id))
        self.sink.wait_messages(count + 1)

    def assertNothingStored(self, name):
        self.assertIsNone(stored_secret(name, "oauth2"), "a refresh token was stored")

    def assertNowhere(self, secret, *runs):
        places = {"the daemon's log": self.daemon_log()}
        for i, run in enumerate(runs):
            places[f"the CLI's standard output (run {i})"] = "".join(run.stdout)
            places[f"the CLI's standard error (run {i})"] = "".join(run.stderr)
        for top in (spool_dir(), config_dir()):
            for path in top.rglob("*"):
                if path.is_file():
                    places[str(path)] = path.read_bytes().decode("utf-8", "replace")
        for place, content in places.items():
            self.assertNotIn(secret, content, f"a secret is in {place}")

    # The authorization code grant

    def test_authorize_end_to_end(self):
        name = self.add_account()
        run = self.authorize(name)
        self.assertIn(f"Account {name} is authorized", "".join(run.stdout))
        self.assertEqual(self.server.exchanges, [{"pkce_verified": True,
                                                  "redirect_uri_matches": True}])
        [refresh_token] = self.server.issued_refresh_tokens()
        self.assertEqual(stored_secret(name, "oauth2"), refresh_token,
                         "the keyring does not hold the refresh token given")
        self.assertNowhere(refresh_token, run)
        self.assertNowhere(self.server.access_tokens[0], run)

        # The daemon trades the refresh token for an access token of its
        # own and signs in with it.
        self.assertDelivered(*self.send(name, "authorized"))
        self.assertEqual(self.server.refreshes, [refresh_token],
                         "the daemon did not refresh with the stored token")
        [access_token] = self.server.refreshed_access_tokens
        self.assertGreaterEqual(self.dovecot.introspection.count(access_token), 1,
                                "Dovecot never saw the refreshed access token")
        self.assertNowhere(refresh_token, run)
        self.assertNowhere(access_token, run)

    def test_a_wrong_state_is_refused(self):
        name = self.add_account()
        self.server.alter_state = True
        run, rc, (status, page) = self.authorize_in_browser(name)
        self.assertNotEqual(rc, 0, f"a forged state was taken: {run.output()}")
        self.assertIn("did not carry this request's state; someone may have tried to slip in "
                      f"their own; run outbox account authorize {name} again",
                      "".join(run.stderr))
        self.assertEqual(status, 400, f"the browser was shown {status}: {page}")
        self.assertEqual(self.server.exchanges, [], "the code was exchanged anyway")
        self.assertNothingStored(name)

    def test_access_denied_is_reported(self):
        name = self.add_account()
        self.server.deny = True
        run, rc, _ = self.authorize_in_browser(name)
        self.assertNotEqual(rc, 0, f"a refusal ended well: {run.output()}")
        self.assertIn("refused (access_denied)", "".join(run.stderr))
        self.assertIn(f"outbox account authorize {name}", "".join(run.stderr))
        self.assertNothingStored(name)

    def test_refresh_before_expiry_and_rotation(self):
        # The daemon refreshes a token within 120 s of its end: with 2 s,
        # every session refreshes.
        self.server.expires_in = 2
        self.server.rotate = True
        name = self.add_account()
        self.authorize(name)
        [first] = self.server.issued_refresh_tokens()
        self.assertDelivered(*self.send(name, "first"))
        self.assertDelivered(*self.send(name, "second"))
        refreshes = self.server.refreshes
        self.assertGreaterEqual(len(refreshes), 2, "not every session refreshed")
        self.assertEqual(refreshes[0], first)
        self.assertEqual(len(set(refreshes)), len(refreshes),
                         "a refresh token was used again instead of the rotated one")
        [current] = self.server.issued_refresh_tokens()
        wait_until(lambda: stored_secret(name, "oauth2") == current, 10,
                   "the rotated refresh token in the keyring")
        self.assertNowhere(current)

    def test_a_revoked_grant_waits_for_a_new_authorization(self):
        name = self.add_account()
        self.authorize(name)
        self.server.revoke_all()
        message_id, count = self.send(name, "revoked")
        settings = wait_until(
            lambda: (account_settings(name).get("state") == "needs-authorization"
                     and account_settings(name)), 60, f"account {name} in needs-authorization")
        self.assertIn(f"outbox account authorize {name}", settings.get("state-message", ""))
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")

        self.authorize(name)
        self.outbox.check("flush")
        self.assertDelivered(message_id, count)

    # The device grant

    def test_device_grant_end_to_end(self):
        name = self.add_account()
        run = self.start_authorize(name, "--device")
        prefix = f"To authorize account {name}, visit {self.server.url('/activate')} "
        line = run.wait_line(lambda l: l.startswith(prefix), "the device instructions")
        user_code = line.rsplit(" ", 1)[1].strip()
        self.server.approve(user_code)
        self.assertEqual(run.finish(), 0, f"authorize --device failed: {run.output()}")
        [refresh_token] = self.server.issued_refresh_tokens()
        self.assertEqual(stored_secret(name, "oauth2"), refresh_token)
        self.assertNowhere(refresh_token, run)
        self.assertDelivered(*self.send(name, "device"))

    def test_device_grant_is_refused_for_google(self):
        name = self.account_name()
        self.outbox.check("account", "add", name, "--from", SENDER,
                          "--smtp", "smtps://me%40gmail.com@smtp.gmail.com",
                          "--oauth2", "google", "--client-id", "1234-abc.apps.googleusercontent.com")
        result = self.outbox.run("account", "authorize", name, "--device")
        self.assertEqual(result.rc, EXIT_USAGE, result)
        self.assertIn("Google does not allow the device flow", result.stderr)
        self.assertIn("without --device", result.stderr)

    # Settings and secrets

    def test_client_secret_stdin_reaches_the_token_endpoint(self):
        client_secret = "client-secret-" + secrets.token_urlsafe(12)
        name = self.add_account(client_secret=client_secret)
        self.assertEqual(stored_secret(name, "oauth2-client"), client_secret,
                         "--client-secret-stdin did not store the client secret")
        self.server.client_secret = client_secret
        run = self.authorize(name)
        self.assertEqual(self.server.client_secrets, [client_secret],
                         "the code exchange did not carry the client secret")
        self.assertNowhere(client_secret, run)

    def test_client_secret_stdin_excludes_password_stdin(self):
        result = self.outbox.run("account", "add", self.account_name(), "--from", SENDER,
                                 "--smtp", "smtp://alice@localhost:25", "--password-stdin",
                                 "--client-secret-stdin", input="secret\n")
        self.assertEqual(result.rc, EXIT_USAGE, result)
        self.assertIn("exclude each other", result.stderr)

    def test_an_account_without_oauth2_is_refused(self):
        name = self.account_name()
        self.outbox.check("account", "add", name, "--from", SENDER,
                          "--smtp", "smtp://alice@localhost:25")
        result = self.outbox.run("account", "authorize", name)
        self.assertEqual(result.rc, EXIT_CONFIG, result)
        self.assertIn(f"Account {name} does not sign in with OAuth2; set it up with outbox "
                      f"account update {name} --oauth2 google|microsoft --client-id ID",
                      result.stderr)

    def test_an_unknown_account_is_refused(self):
        result = self.outbox.run("account", "authorize", "no-such-account")
        self.assertEqual(result.rc, EXIT_CONFIG, result)
        self.assertIn("no account named no-such-account", result.stderr)


if __name__ == "__main__":
    outboxtest.main()
