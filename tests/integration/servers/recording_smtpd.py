#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""An SMTP server for the integration tests, built on aiosmtpd.

It listens on 127.0.0.1:PORT (or --host), prints "ready" on stdout once it
accepts connections, and appends one JSON object per line to the --log file
for every AUTH attempt, MAIL command, received message and QUIT, with the TLS and
authentication state of the session at that moment.  Message bytes are
kept exactly as received after dot-unstuffing (base64 in "data").

With --cert/--key it offers STARTTLS and requires it before MAIL; with
--auth it accepts AUTH PLAIN and LOGIN for alice / s3cret, over TLS only
unless --auth-without-tls is given (a server that would take a password in
plaintext, to prove the client never offers one).
"""

import argparse
import asyncio
import base64
import json
import logging
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER = b"alice"
PASSWORD = b"s3cret"


class Recorder:
    def __init__(self, path):
        self.log = open(path, "a", encoding="utf-8")

    def write(self, event, session, **fields):
        record = {
            "event": event,
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "login": session.auth_data.login.decode("utf-8", "replace")
            if isinstance(session.auth_data, LoginPassword) else None,
        }
        record.update(fields)
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()


class RecordingHandler:
    def __init__(self, recorder):
        self.recorder = recorder

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.recorder.write("mail", session, address=address,
                            options=mail_options)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.recorder.write(
            "message", session,
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            data=base64.b64encode(envelope.original_content).decode("ascii"),
        )
        return "250 OK queued"

    async def handle_QUIT(self, server, session, envelope):
        self.recorder.write("quit", session)
        return "221 Bye"


class Authenticator:
    def __init__(self, recorder, refusal=None):
        self.recorder = recorder
        self.refusal = refusal

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == USER and auth_data.password == PASSWORD)
        login = auth_data.login.decode("utf-8", "replace") \
            if isinstance(auth_data, LoginPassword) else None
        self.recorder.write("auth", session, mechanism=mechanism,
                            user=login, success=ok)
        return AuthResult(success=ok, handled=False,
                          message=None if ok else self.refusal,
                          auth_data=auth_data if ok else None)


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth", action="store_true")
    parser.add_argument("--auth-without-tls", action="store_true")
    # What a refused AUTH is answered, such as Microsoft 365's
    # "535 5.7.139 Authentication unsuccessful, ..." (default: aiosmtpd's 535 5.7.8).
    parser.add_argument("--auth-refusal")
    return parser.parse_args()


def make_factory(args, recorder):
    tls_context = None
    if args.cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.cert, args.key)
    handler = RecordingHandler(recorder)
    authenticator = Authenticator(recorder, args.auth_refusal) if args.auth else None

    def factory():
        return SMTP(handler,
                    hostname="localhost",
                    data_size_limit=None,
                    tls_context=tls_context,
                    require_starttls=tls_context is not None,
                    authenticator=authenticator,
                    auth_require_tls=not args.auth_without_tls)
    return factory


async def serve(args):
    recorder = Recorder(args.log)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make_factory(args, recorder),
                                      host=args.host, port=args.port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    # aiosmtpd warns about its own deprecated attributes on every AUTH and
    # prints a traceback whenever a client rejects the certificate, which
    # some tests make it do on purpose: what matters is in the --log file.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    asyncio.run(serve(parse_args()))
    sys.exit(0)
