#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""An SMTP server that answers each recipient as a script says, for the
delivery-engine tests, built on aiosmtpd.

It listens on 127.0.0.1:PORT, prints "ready" on stdout once it accepts
connections, and appends one JSON object per line to the --log file for
every connection ("connect"), RCPT command ("rcpt", with the reply given),
received message ("message", data in base64 exactly as received after
dot-unstuffing) and connection dropped on purpose ("dropped").

--rcpt 'ADDRESS=REPLY;REPLY...' answers the Nth RCPT TO for ADDRESS, over
all sessions, with the Nth reply of the list (the last one repeats);
addresses without a script get "250 2.1.5 OK".  --drop-after-dot N closes
the connection without a reply after the final dot of each of the first N
messages (after logging them): the client cannot know whether the server
took the message.

Every MAIL command is logged ("mail", with its arguments after "FROM:"
as received) and every "rcpt" event carries the arguments of its RCPT
after "TO:".  --dsn offers DSN (RFC 3461) in EHLO and takes RET=, ENVID=,
NOTIFY= and ORCPT=; with --rcpt-dsn-reply REPLY it offers DSN and then
answers every RCPT that carries NOTIFY= or ORCPT= with REPLY (a server
that advertises what it does not do).  Without --dsn, EHLO offers no DSN
and aiosmtpd refuses those parameters with 555.

--chunking offers CHUNKING (RFC 3030) and takes BDAT: each chunk is
logged ("bdat", with its size, whether it is the LAST and the reply
given) and the message of the chunks goes to the log at BDAT LAST like a
DATA one (--drop-after-dot drops the connection instead of answering BDAT
LAST).  --bdat-reply 'N=REPLY' answers the Nth chunk of every transaction
with REPLY (a refusal ends the transaction: later chunks get 503);
--bdat-refused offers CHUNKING and answers every BDAT with 502, after
reading its octets.
"""

import argparse
import asyncio
import base64
import json
import logging
import signal
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, path):
        self.log = open(path, "a", encoding="utf-8")

    def write(self, event, **fields):
        self.log.write(json.dumps(dict(event=event, **fields)) + "\n")
        self.log.flush()


class ScriptedHandler:
    keywords = ()

    def __init__(self, recorder, rcpt_scripts, drops, max_rcpt=0):
        self.recorder = recorder
        self.max_rcpt = max_rcpt
        self.rcpt_scripts = rcpt_scripts
        self.rcpt_counts = {}
        self.drops_left = drops

    def reply_for(self, address):
        script = self.rcpt_scripts.get(address.lower())
        if not script:
            return "250 2.1.5 OK"
        count = self.rcpt_counts.get(address.lower(), 0)
        self.rcpt_counts[address.lower()] = count + 1
        return script[min(count, len(script) - 1)]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.max_rcpt and len(envelope.rcpt_tos) >= self.max_rcpt:
            reply = "452 4.5.3 Too many recipients"
        else:
            reply = self.reply_for(address)
        self.recorder.write("rcpt", address=address, reply=reply, args=server.rcpt_args)
        if reply.startswith("2"):
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return reply

    async def handle_DATA(self, server, session, envelope):
        self.recorder.write(
            "message",
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            data=base64.b64encode(envelope.original_content).decode("ascii"),
        )
        if self.drops_left > 0:
            self.drops_left -= 1
            self.recorder.write("dropped")
            server.transport.abort()
        return "250 2.0.0 OK queued"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + [f"250-{k}" for k in self.keywords] + [responses[-1]]


class DsnHandler(ScriptedHandler):
    """Offers DSN; rcpt_dsn_reply (nullable) answers a RCPT with DSN
    parameters."""

    keywords = ("DSN",)

    def __init__(self, *args, rcpt_dsn_reply=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rcpt_dsn_reply = rcpt_dsn_reply


DSN_MAIL_PARAMETERS = ("RET=", "ENVID=")
DSN_RCPT_PARAMETERS = ("NOTIFY=", "ORCPT=")


def without_parameters(arg, prefixes):
    """arg without the parameters that start with one of prefixes, and
    whether it had any."""
    words = arg.split(" ")
    kept = [word for word in words if not word.upper().startswith(prefixes)]
    return " ".join(kept), len(kept) != len(words)


def arguments_after(keyword, arg):
    """What follows "FROM:" or "TO:" in a MAIL or RCPT argument."""
    return arg[len(keyword):].lstrip() if arg.upper().startswith(keyword) else arg


class RecordingSMTP(SMTP):
    rcpt_args = None
    # Set by serve(): how BDAT is answered.
    bdat_replies = {}
    bdat_refused = False

    def _set_post_data_state(self):
        super()._set_post_data_state()
        self.chunks = []
        self.chunk_refused = False

    async def smtp_BDAT(self, arg):
        """RFC 3030: the chunk's octets are read whatever the answer."""
        words = (arg or "").split()
        if "CHUNKING" not in self.event_handler.keywords or not words or not words[0].isdigit():
            await self.push("500 5.5.1 Error: command not recognized")
            return
        last = len(words) > 1 and words[1].upper() == "LAST"
        octets = await self._reader.readexactly(int(words[0]))
        self.chunks.append(octets)
        reply = self.bdat_reply(len(self.chunks), last)
        self.event_handler.recorder.write("bdat", size=len(octets), last=last, reply=reply)
        if reply is None:
            self.envelope.original_content = self.envelope.content = b"".join(self.chunks)
            reply = await self._call_handler_hook("DATA")
            self._set_post_data_state()
        elif not reply.startswith("2"):
            self.chunk_refused = True
        await self.push(reply)

    def bdat_reply(self, number, last):
        """The reply to the numberth chunk; None: take the message."""
        if self.bdat_refused:
            return "502 5.5.1 Error: BDAT not implemented"
        if self.chunk_refused or not self.envelope.rcpt_tos:
            return "503 5.5.1 Error: no transaction"
        if number in self.bdat_replies:
            return self.bdat_replies[number]
        return None if last else "250 2.0.0 chunk OK"

    def connection_made(self, transport):
        self.event_handler.recorder.write("connect")
        super().connection_made(transport)

    @property
    def offers_dsn(self):
        return isinstance(self.event_handler, DsnHandler)

    async def smtp_MAIL(self, arg):
        if arg is not None:
            self.event_handler.recorder.write("mail", args=arguments_after("FROM:", arg))
            if self.offers_dsn:
                arg, _ = without_parameters(arg, DSN_MAIL_PARAMETERS)
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self.rcpt_args = arguments_after("TO:", arg) if arg is not None else None
        if arg is not None and self.offers_dsn:
            arg, had_dsn = without_parameters(arg, DSN_RCPT_PARAMETERS)
            reply = self.event_handler.rcpt_dsn_reply
            if had_dsn and reply:
                self.event_handler.recorder.write("rcpt", address=self._getaddr(
                    arguments_after("TO:", arg))[0], reply=reply, args=self.rcpt_args)
                await self.push(reply)
                return
        await super().smtp_RCPT(arg)


def parse_rcpt_scripts(values):
    scripts = {}
    for value in values:
        address, _, replies = value.partition("=")
        scripts[address.lower()] = replies.split(";")
    return scripts


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--rcpt", action="append", default=[])
    parser.add_argument("--drop-after-dot", type=int, default=0)
    parser.add_argument("--max-rcpt", type=int, default=0)
    parser.add_argument("--dsn", action="store_true")
    parser.add_argument("--rcpt-dsn-reply")
    parser.add_argument("--chunking", action="store_true")
    parser.add_argument("--bdat-reply", action="append", default=[])
    parser.add_argument("--bdat-refused", action="store_true")
    return parser.parse_args()


async def serve(args):
    handler_args = (Recorder(args.log), parse_rcpt_scripts(args.rcpt), args.drop_after_dot,
                    args.max_rcpt)
    if args.dsn or args.rcpt_dsn_reply:
        handler = DsnHandler(*handler_args, rcpt_dsn_reply=args.rcpt_dsn_reply)
    else:
        handler = ScriptedHandler(*handler_args)
    if args.chunking or args.bdat_refused:
        handler.keywords = handler.keywords + ("CHUNKING",)
    RecordingSMTP.bdat_refused = args.bdat_refused
    RecordingSMTP.bdat_replies = {int(n): reply for n, _, reply in
                                  (value.partition("=") for value in args.bdat_reply)}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: RecordingSMTP(handler, hostname="localhost", data_size_limit=None),
        host="127.0.0.1", port=args.port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    # aiosmtpd logs every connection it loses, which this server causes on
    # purpose: what matters is in the --log file.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    asyncio.run(serve(parse_args()))
    sys.exit(0)
