# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""outbox-oauth2-helper end to end, against a token endpoint on loopback.

The library behind it is unit-tested in tests/test-oauth2.c; here the
helper's protocol (JSON on standard input, one JSON object on standard
output, exit 0, 1 or 64), what it sends to the token endpoint, and that
no secret shows on its output other than a rotated refresh token."""

import http.server
import json
import subprocess
import threading
import time
import unittest
import urllib.parse

import outboxtest
from outboxtest import BUILD_DIR, PROBLEM

HELPER = BUILD_DIR / "daemon" / "outbox-oauth2-helper"
EXIT_USAGE = 64

CLIENT_ID = "client-7.apps.example"
CLIENT_SECRET = "client-secret-&=+ 42"
REFRESH_TOKEN = "1//old-refresh-token+/="
ACCESS_TOKEN = "ya29.new-access-token"
ROTATED = "1//rotated-refresh-token"


class TokenServer:
    """Answers each POST with the next scripted (status, JSON object) and
    records the form it was sent."""

    def __init__(self):
        self.answers = []
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode("ascii")
                server.requests.append({
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "form": urllib.parse.parse_qs(body, keep_blank_values=True,
                                                  strict_parsing=True),
                })
                status, answer = server.answers.pop(0) if server.answers else (500, {})
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path="/token"):
        return f"http://127.0.0.1:{self.port}{path}"


def run_helper(request, args=("--verbose", "refresh")):
    """Runs the helper with request (a dict, or raw text) on standard input."""
    text = request if isinstance(request, str) else json.dumps(request)
    return subprocess.run([str(HELPER), *args], input=text, capture_output=True, text=True,
                          timeout=90)


class OAuth2HelperTest(unittest.TestCase):
    def setUp(self):
        self.server = TokenServer()
        self.addCleanup(self.server.stop)

    def request(self, **extra):
        request = {"token_url": self.server.url(), "client_id": CLIENT_ID,
                   "refresh_token": REFRESH_TOKEN}
        request.update(extra)
        return request

    def assertClean(self, result, allowed=()):
        """Nothing secret on the helper's output but what is allowed, and no
        sanitizer report or critical on its standard error."""
        self.assertIsNone(PROBLEM.search(result.stderr), result.stderr)
        secrets = {REFRESH_TOKEN, CLIENT_SECRET, ACCESS_TOKEN, ROTATED} - set(allowed)
        for secret in secrets:
            self.assertNotIn(secret, result.stdout)
            self.assertNotIn(secret, result.stderr)
            self.assertNotIn(urllib.parse.quote(secret, safe=""), result.stderr)

    def output(self, result, status):
        self.assertEqual(result.returncode, status, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 1, result.stdout)
        return json.loads(lines[0])

    def test_refresh_with_rotation(self):
        self.server.answers.append((200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer",
                                          "expires_in": 3600, "refresh_token": ROTATED}))
        before = int(time.time())
        result = run_helper(self.request(client_secret=CLIENT_SECRET, scope="mail offline"))

        output = self.output(result, 0)
        self.assertEqual(set(output), {"access_token", "expires_at", "refresh_token"})
        self.assertEqual(output["access_token"], ACCESS_TOKEN)
        self.assertEqual(output["refresh_token"], ROTATED)
        self.assertGreaterEqual(output["expires_at"], before + 3600)
        self.assertLessEqual(output["expires_at"], int(time.time()) + 3600)
        self.assertClean(result, allowed={ACCESS_TOKEN, ROTATED})

        [request] = self.server.requests
        self.assertEqual(request["path"], "/token")
        self.assertEqual(request["content_type"], "application/x-www-form-urlencoded")
        self.assertEqual(request["form"], {
            "grant_type": ["refresh_token"],
            "refresh_token": [REFRESH_TOKEN],
            "client_id": [CLIENT_ID],
            "client_secret": [CLIENT_SECRET],
            "scope": ["mail offline"],
        })

    def test_refresh_without_rotation(self):
        self.server.answers.append((200, {"access_token": ACCESS_TOKEN, "token_type": "bearer",
                                          "scope": "https://mail.google.com/"}))
        result = run_helper(self.request())

        output = self.output(result, 0)
        self.assertEqual(output, {"access_token": ACCESS_TOKEN, "expires_at": 0,
                                  "scope": "https://mail.google.com/"})
        self.assertClean(result, allowed={ACCESS_TOKEN})
        [request] = self.server.requests
        self.assertNotIn("client_secret", request["form"])
        self.assertNotIn("scope", request["form"])

    def test_invalid_grant(self):
        self.server.answers.append((400, {"error": "invalid_grant",
                                          "error_description": "Token has been expired or revoked."}))
        result = run_helper(self.request(client_secret=CLIENT_SECRET))

        output = self.output(result, 1)
        self.assertEqual(output["error"], "invalid_grant")
        self.assertIn("authorized again", output["message"])
        self.assertIn("Token has been expired or revoked.", output["message"])
        self.assertClean(result)

    def test_bearer_only(self):
        self.server.answers.append((200, {"access_token": ACCESS_TOKEN, "token_type": "mac"}))
        result = run_helper(self.request())

        self.assertEqual(self.output(result, 1)["error"], "protocol")
        self.assertClean(result)

    def test_plain_http_refused_off_loopback(self):
        result = run_helper(self.request(token_url="http://oauth2.example.org/token"))

        output = self.output(result, 1)
        self.assertEqual(output["error"], "bad_url")
        self.assertIn("https", output["message"])
        self.assertIn("loopback", output["message"])
        self.assertEqual(self.server.requests, [])
        self.assertClean(result)

    def test_unreachable(self):
        port = outboxtest.free_port()
        result = run_helper(self.request(token_url=f"http://127.0.0.1:{port}/token"))

        self.assertEqual(self.output(result, 1)["error"], "network")
        self.assertClean(result)

    def test_usage(self):
        for args in ((), ("refresh", "extra"), ("exchange",), ("--no-such-option", "refresh")):
            with self.subTest(args=args):
                result = run_helper(self.request(), args=args)
                self.assertEqual(result.returncode, EXIT_USAGE)
                self.assertEqual(result.stdout, "")

    def test_bad_input(self):
        inputs = (
            "",
            "not json",
            "[]",
            json.dumps({"token_url": self.server.url(), "client_id": CLIENT_ID}),
            json.dumps(self.request(refresh_token="")),
            json.dumps(self.request(client_secret=5)),
            json.dumps(self.request(refreshtoken="typo")),
            json.dumps(self.request(padding="x" * 70000)),
        )
        for text in inputs:
            with self.subTest(text=text[:80]):
                result = run_helper(text)
                self.assertEqual(result.returncode, EXIT_USAGE, result.stderr)
                self.assertEqual(result.stdout, "")
                self.assertClean(result)
        self.assertEqual(self.server.requests, [])


if __name__ == "__main__":
    outboxtest.main()
