# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Outbox delivering through real submission servers, each a private
instance on loopback relaying to Postfix's smtp-sink
(servers/submission_servers.py): Postfix with TLS required and SASL by a
private Dovecot, Exim 4 with STARTTLS and AUTH, and OpenSMTPD in plaintext
from localhost.

Through each, a plain message and one of about 1 MB with lines that start
with "." and an 8-bit body must end `sent` in Outbox and reach the sink
with their bodies intact; Postfix's and Exim's logs must show that the
session used STARTTLS and AUTH.  The EHLO keywords each offers are checked
too, and printed.  A message that asks for delivery status notifications
(RET, ENVID, NOTIFY, ORCPT) must reach the sink with them, relayed by
each server from what Outbox asked.

Where the server offers CHUNKING (Postfix, Exim, Dovecot's submission
service), the daemon's protocol trace must show the messages going as
BDAT chunks, none refused by the server, and no DATA; where it does
not (OpenSMTPD), DATA and no BDAT.  Dovecot's submission service, relaying
to the sink as well, gets the same plain and big messages."""

import contextlib
import json
import re
import uuid

import outboxtest
from outboxtest import (Certificates, OutboxTestCase, make_message, session_log_size,
                        start_daemon_with_args, start_dovecot)
from servers.submission_servers import EximSubmission, OpenSmtpdSubmission, PostfixSubmission

SENDER = "alice@example.org"
# The EHLO keywords Outbox acts on; `outbox account test` lists the others
# as ignored.
KNOWN_KEYWORDS = {"PIPELINING", "8BITMIME", "SMTPUTF8", "STARTTLS", "ENHANCEDSTATUSCODES",
                  "CHUNKING", "DSN", "SIZE", "AUTH"}
RECIPIENT = "bob@example.org"
# The sanitizer build's outboxd is slow, and 1 MB goes through two hops.
TIMEOUT = 240


def big_8bit_body():
    """About 1 MB of CRLF lines, many starting with ".", with UTF-8 text."""
    lines = [b".", b"..", b". a dot and a space", b"...three"]
    for number in range(15500):
        text = f"{'.' if number % 3 == 0 else ''}{number:05d} Grüße aus Köln, ça va, naïve "
        lines.append(text.encode() + b"\xe2\x9c\x93 " + b"x" * (number % 41))
    return b"\r\n".join(lines) + b"\r\n"


def first_difference(expected, received):
    """Where two byte strings part, for a failure message."""
    if expected == received:
        return "identical"
    at = next((i for i, (a, b) in enumerate(zip(expected, received)) if a != b),
              min(len(expected), len(received)))
    return (f"{len(expected)} bytes expected, {len(received)} received; first difference "
            f"at {at}: expected {expected[max(0, at - 40):at + 40]!r}, "
            f"received {received[max(0, at - 40):at + 40]!r}")


@contextlib.contextmanager
def showing_log(server):
    """Adds the end of the server's log to any failure inside."""
    try:
        yield
    except AssertionError as error:
        raise AssertionError(f"{error}\n{server.describe()}") from None


class TracedDaemon:
    """Runs the test's own daemon with the protocol trace on."""

    def setUp(self):
        super().setUp()
        self.outbox.stop_daemon()
        self.log_offset = session_log_size()
        start_daemon_with_args(self.outbox, ["--verbose"], {"G_MESSAGES_DEBUG": "all"})
        self.addCleanup(self.outbox.stop_daemon)

    def client_trace(self, port):
        """The trace of the sessions with 127.0.0.1:port or localhost:port:
        [(direction, line)], direction "C" or "S"."""
        with open(outboxtest.SESSION_LOG, "rb") as log:
            log.seek(self.log_offset)
            text = log.read().decode("utf-8", "replace")
        return re.findall(rf"smtp (?:127\.0\.0\.1|localhost):{port} ([CS]): (.*)$", text,
                          re.MULTILINE)

    def assertSentWithBdat(self, port, messages, chunking=True):
        """The trace shows each message going in BDAT chunks, none refused
        (chunking), or with DATA and no BDAT."""
        trace = self.client_trace(port)
        commands = [line for direction, line in trace if direction == "C"]
        bdat = [line for line in commands if line.startswith("BDAT ")]
        data = [line for line in commands if line == "DATA"]
        if not chunking:
            self.assertEqual(bdat, [], "BDAT sent to a server that does not offer CHUNKING")
            self.assertEqual(len(data), messages, commands)
            return
        self.assertEqual(data, [], f"DATA sent to a server that offers CHUNKING: {commands}")
        self.assertEqual(len([line for line in bdat if line.endswith(" LAST")]), messages, bdat)
        # Lanes may run side by side, their traces interleaved: no reply
        # can be paired with its command, but none may be a refusal.
        refusals = [line for direction, line in trace if direction == "S" and line[:1] in "45"]
        self.assertEqual(refusals, [], trace)
        print(f"BDAT commands to port {port}: {bdat}")


class DeliveryThroughServer(TracedDaemon):
    """One test, run against the server that a subclass starts."""

    OFFERS_CHUNKING = True

    # Keywords that must be offered, and keywords that must not be (after
    # STARTTLS where it is offered): what this server version was seen to
    # offer of what Outbox uses or will use.
    EXPECTED_KEYWORDS = set()
    ABSENT_KEYWORDS = set()

    def start_server(self, sink):
        raise NotImplementedError

    def check_sessions(self, server, message_ids):
        """Waits until the server's log says that it relayed the messages,
        and checks what it says of their submission."""
        for message_id in message_ids:
            self.check_session(server, message_id)

    def check_session(self, server, message_id):
        raise NotImplementedError

    def logged_session(self, server, message_id, done_key, what):
        """What the server's log says of the session that submitted
        message_id, once it logs done_key for it."""
        outboxtest.wait_until(lambda: (server.session_of(message_id) or {}).get(done_key),
                              TIMEOUT, f"{server.NAME} to log that {message_id} was {what}")
        session = server.session_of(message_id)
        print(f"{server.NAME} took {message_id}: {session}")
        return session

    def check_keywords(self, server):
        plain = server.ehlo_keywords(starttls=False)
        keywords = server.ehlo_keywords()
        print(f"{server.NAME} EHLO keywords: before TLS {sorted(plain)}, "
              f"after {sorted(keywords)}")
        self.assertEqual(self.EXPECTED_KEYWORDS - keywords, set(), "keywords missing")
        self.assertEqual(self.ABSENT_KEYWORDS & keywords, set(), "keywords not expected")
        if server.USER:
            self.assertIn("STARTTLS", plain)
            self.assertNotIn("AUTH", plain, "AUTH offered outside TLS")
            self.assertNotIn("STARTTLS", keywords, "STARTTLS offered inside TLS")
        else:
            self.assertEqual(plain, keywords)
        return keywords

    def check_account_test(self, account, keywords):
        """`outbox account test` shows the keywords Outbox ignores."""
        result = json.loads(self.outbox.check("account", "test", account, "--json").stdout)
        smtp = result["smtp"] if "smtp" in result else result
        ignored = set(smtp.get("ignored", []))
        print(f"{account}: outbox account test says ignored {sorted(ignored)}")
        self.assertEqual(ignored, keywords - KNOWN_KEYWORDS, smtp)

    def messages(self, server):
        """{Message-ID: (message, body)}: a plain one and a big 8-bit one."""
        tag = f"{server.NAME.lower()}.{uuid.uuid4().hex[:12]}"
        plain_body = f"Hello through {server.NAME}.\r\n".encode()
        big_body = big_8bit_body()
        plain_id, big_id = f"<plain.{tag}@example.org>", f"<big.{tag}@example.org>"
        return {
            plain_id: (make_message([("From", SENDER), ("To", RECIPIENT),
                                     ("Subject", f"plain through {server.NAME}"),
                                     ("Message-ID", plain_id)], plain_body), plain_body),
            big_id: (make_message([("From", SENDER), ("To", RECIPIENT),
                                   ("Subject", f"1 MB through {server.NAME}"),
                                   ("Message-ID", big_id), ("MIME-Version", "1.0"),
                                   ("Content-Type", "text/plain; charset=utf-8"),
                                   ("Content-Transfer-Encoding", "8bit")], big_body), big_body),
        }

    def test_plain_and_big_8bit_messages_arrive_intact(self):
        sink = self.start_sink()
        server = self.start_server(sink)
        with showing_log(server):
            keywords = self.check_keywords(server)
            account = f"via-{server.NAME.lower()}"
            self.outbox.add_account(account, SENDER, server.url(), password=server.PASSWORD,
                                    tls_ca_file=str(server.ca_file) if server.ca_file else None)
            self.check_account_test(account, keywords)
            messages = self.messages(server)
            queue_ids = [self.outbox.send(message, account=account)
                         for message, _ in messages.values()]
            for queue_id in queue_ids:
                state = self.outbox.wait_final(queue_id, timeout=TIMEOUT)
                self.assertEqual(state["state"], "sent", state)
            # Each server logs a delivery after the sink's 250, which
            # smtp-sink sends once it has closed the dump file: a dump read
            # before then may be a shorter message.
            self.check_sessions(server, list(messages))
            self.assertSentWithBdat(server.port, len(messages), self.OFFERS_CHUNKING)

            received = {m.headers("Message-ID")[0]: m
                        for m in sink.wait_messages(len(messages), timeout=TIMEOUT)}
            self.assertEqual(set(received), set(messages), "the sink got other messages")
            for message_id, (_, body) in messages.items():
                arrived = received[message_id]
                self.assertEqual(arrived.sender, SENDER)
                self.assertEqual(arrived.recipients, [RECIPIENT])
                # smtp-sink writes the lines it got with LF line ends.
                expected = body.replace(b"\r\n", b"\n")
                self.assertTrue(arrived.body() == expected,
                                f"{message_id}: {first_difference(expected, arrived.body())}")

    def test_dsn_parameters_reach_the_next_hop(self):
        # Outbox asks the server for notifications (RFC 3461); a server
        # that offers DSN relays what was asked to the next hop, the sink,
        # which shows it.
        sink = self.start_sink()
        server = self.start_server(sink)
        with showing_log(server):
            account = f"dsn-{server.NAME.lower()}"
            self.outbox.add_account(account, SENDER, server.url(), password=server.PASSWORD,
                                    tls_ca_file=str(server.ca_file) if server.ca_file else None)
            envid = f"{server.NAME}+{uuid.uuid4().hex[:8]}"
            message_id = f"<dsn.{uuid.uuid4().hex[:12]}@example.org>"
            message = make_message([("From", SENDER), ("To", RECIPIENT),
                                    ("Subject", f"DSN through {server.NAME}"),
                                    ("Message-ID", message_id)])
            queue_id = self.outbox.check("send", "-a", account, "--notify", "success,failure",
                                         "--ret", "hdrs", "--envid", envid,
                                         input=message).stdout.strip()
            state = self.outbox.wait_final(queue_id, timeout=TIMEOUT)
            self.assertEqual(state["state"], "sent", state)
            self.assertNotIn("dsn_not_offered", state, "the server offers DSN")
            self.check_sessions(server, [message_id])
            [arrived] = sink.wait_messages(1, timeout=TIMEOUT)
            mail_args = arrived.mail_args.split()
            rcpt_args = arrived.rcpt_args_of(RECIPIENT).split()
            print(f"{server.NAME} relayed MAIL {mail_args}, RCPT {rcpt_args}")
            self.assertIn("RET=HDRS", mail_args)
            # xtext: "+" is "+2B".
            self.assertIn(f"ENVID={envid.replace('+', '+2B')}", mail_args)
            self.assertIn("NOTIFY=SUCCESS,FAILURE", rcpt_args)
            self.assertIn(f"ORCPT=rfc822;{RECIPIENT}", rcpt_args)


class PostfixTest(DeliveryThroughServer, OutboxTestCase):
    EXPECTED_KEYWORDS = {"AUTH", "DSN", "CHUNKING", "8BITMIME", "PIPELINING", "SIZE",
                         "SMTPUTF8", "ENHANCEDSTATUSCODES"}

    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates()

    def start_server(self, sink):
        dovecot = start_dovecot(self, certificates=self.certs, auth_socket_user="postfix")
        server = PostfixSubmission(sink.port, self.certs, dovecot).start()
        self.addCleanup(server.stop)
        return server

    def check_session(self, server, message_id):
        session = self.logged_session(server, message_id, "relayed", "relayed")
        self.assertEqual(session["sasl_method"], "PLAIN", session)
        self.assertEqual(session["sasl_username"], server.USER, session)
        self.assertIsNotNone(session["tls"], f"no TLS before the submission: {session}")
        self.assertRegex(session["tls"], r"^TLSv1\.[23] ", session)


class EximTest(DeliveryThroughServer, OutboxTestCase):
    EXPECTED_KEYWORDS = {"AUTH", "DSN", "CHUNKING", "8BITMIME", "PIPELINING", "SIZE",
                         "SMTPUTF8", "PIPECONNECT"}
    ABSENT_KEYWORDS = {"ENHANCEDSTATUSCODES"}

    @classmethod
    def setUpClass(cls):
        cls.certs = Certificates()

    def start_server(self, sink):
        server = EximSubmission(sink.port, self.certs).start()
        self.addCleanup(server.stop)
        return server

    def check_session(self, server, message_id):
        session = self.logged_session(server, message_id, "completed", "completed")
        self.assertEqual(session["protocol"], "esmtpsa", session)
        self.assertRegex(session["tls"] or "", r"^TLS1\.[23]:", session)
        self.assertEqual(session["auth"], f"plain:{server.USER}", session)
        self.assertIsNotNone(session["relayed"], session)


class OpenSmtpdTest(DeliveryThroughServer, OutboxTestCase):
    OFFERS_CHUNKING = False
    EXPECTED_KEYWORDS = {"DSN", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES"}
    # 6.8.0p2 offers neither; STARTTLS and AUTH are not configured.
    ABSENT_KEYWORDS = {"CHUNKING", "PIPELINING", "SMTPUTF8", "STARTTLS", "AUTH"}

    def start_server(self, sink):
        server = OpenSmtpdSubmission(sink.port).start()
        self.addCleanup(server.stop)
        return server

    def check_sessions(self, server, message_ids):
        # Its log names no Message-ID: it must have taken as many messages
        # as were sent, each in an EHLO session, and relayed each.
        outboxtest.wait_until(lambda: len([m for m in server.messages() if m["delivery"]])
                              >= len(message_ids), TIMEOUT,
                              f"OpenSMTPD to log {len(message_ids)} deliveries")
        messages = server.messages()
        print(f"OpenSMTPD took: {messages}")
        self.assertEqual(len(messages), len(message_ids), messages)
        for message in messages:
            self.assertEqual(message["proto"], "ESMTP", message)
            self.assertIn('result="Ok"', message["delivery"], message)
        self.assertTrue(server.connected_to_relay(), "no connection to the sink's port")


class DovecotSubmissionTest(TracedDaemon, OutboxTestCase):
    """Dovecot's submission service (STARTTLS, AUTH, CHUNKING) relaying to
    the sink."""

    def test_big_8bit_message_goes_in_bdat_chunks_and_arrives_intact(self):
        sink = self.start_sink()
        dovecot = start_dovecot(self, relay_port=sink.port)
        url = dovecot.url("submission")
        self.outbox.add_account("via-dovecot", SENDER, url, password=dovecot.PASSWORD,
                                tls_ca_file=str(dovecot.ca_file))
        message_id = f"<big.dovecot.{uuid.uuid4().hex[:12]}@example.org>"
        body = big_8bit_body()
        message = make_message([("From", SENDER), ("To", RECIPIENT),
                                ("Subject", "1 MB through Dovecot"), ("Message-ID", message_id),
                                ("MIME-Version", "1.0"),
                                ("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Transfer-Encoding", "8bit")], body)
        queue_id = self.outbox.send(message, account="via-dovecot")
        state = self.outbox.wait_final(queue_id, timeout=TIMEOUT)
        self.assertEqual(state["state"], "sent", state)
        [arrived] = sink.wait_messages(1, timeout=TIMEOUT)
        self.assertEqual(arrived.headers("Message-ID")[0], message_id)
        expected = body.replace(b"\r\n", b"\n")
        self.assertTrue(arrived.body() == expected, first_difference(expected, arrived.body()))
        self.assertSentWithBdat(dovecot.ports["submission"], 1)


if __name__ == "__main__":
    outboxtest.main()
