#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""An OAuth 2.0 token introspection endpoint (RFC 7662) for the
integration tests: what Dovecot's oauth2 passdb asks with
`introspection_mode = post`.

It listens on 127.0.0.1:PORT (or --host), prints "ready" on stdout once it
accepts connections, and answers every POST whose form body holds
`token=...` with {"active": true, "username": USER} when the token is a
line of the --tokens file (read again for every request, so that a test
can change it while the server runs) and {"active": false} otherwise.

Every request is appended to the --log file as one JSON object per line:
the time, the path, the SHA-256 of the token (never the token itself,
which is a secret) and the answer's "active".
"""

import argparse
import hashlib
import json
import signal
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def token_digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def valid_tokens(self):
        try:
            with open(self.server.tokens_path, encoding="utf-8") as tokens:
                return {line.rstrip("\n") for line in tokens if line.rstrip("\n")}
        except FileNotFoundError:
            return set()

    def record(self, **fields):
        fields = {"time": time.time(), "path": self.path, **fields}
        with open(self.server.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(fields) + "\n")

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        tokens = form.get("token", [])
        if len(tokens) != 1:
            self.record(token_sha256=None, active=False, error="no token")
            self.answer(400, {"error": "invalid_request"})
            return
        active = tokens[0] in self.valid_tokens()
        self.record(token_sha256=token_digest(tokens[0]), active=active)
        self.answer(200, {"active": True, "username": self.server.username} if active
                    else {"active": False})

    def do_GET(self):
        self.record(token_sha256=None, active=False, error="GET")
        self.answer(405, {"error": "invalid_request"})

    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", required=True, help="file of valid tokens, one a line")
    parser.add_argument("--log", required=True, help="JSON-lines log of requests")
    parser.add_argument("--username", default="alice")
    args = parser.parse_args()

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.tokens_path = args.tokens
    server.log_path = args.log
    server.username = args.username
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
