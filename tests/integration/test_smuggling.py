# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""SMTP smuggling and 8-bit data (security.md 8, 9, 11; CVE-2023-51764 and
siblings): whatever end-of-data look-alike or lone CR or LF a message holds,
the server receives the message whole, with CRLF line ends only and no
CRLF "." CRLF before the real end; NUL bytes are refused at submission; and
8-bit data or non-ASCII addresses never go to a server that did not offer
8BITMIME or SMTPUTF8."""

import re

import outboxtest
from gi.repository import GLib
from outboxtest import (QUEUE_IFACE, OutboxTestCase, RawSmtpServer, call_outbox, daemon_state,
                        dbus_error_of, make_message, normalise_line_ends, replies_of, unstuff)

SENDER = "alice@example.org"
LONE_CR_OR_LF = re.compile(rb"\r(?!\n)|(?<!\r)\n")

# Every way a body can look like the end of DATA to some server.
END_OF_DATA_VARIANTS = [
    b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\n.\r", b"\r.\r", b"\r.\n",
    b"\r\n.\r\n", b"\r\n.\r\n.\r\n", b"\r\n..\r\n", b"\r\n. \r\n", b"\n\n.\n\n",
    b"\r\r\n.\r\r\n", b"\r\n\r\n.\r\n\r\n", b"\n.\nMAIL FROM:<eve@example.net>\n",
    b"\r\n.\rRCPT TO:<eve@example.net>\r", b"\r\n.\nDATA\n",
]


def variant_bodies():
    bodies = [b"before" + variant + b"after\r\nlast line\r\n" for variant in END_OF_DATA_VARIANTS]
    # At the very start and the very end of the body.
    bodies += [b".\r\nfirst line was a dot\r\n", b".\n", b"\r.\r\n", b"ends with a dot\r\n.",
               b"ends with\r\n.\r", b"ends with\n.\n"]
    return bodies


def every_position_bodies():
    """A body with a dot line and stuffed dots, and a lone CR or a lone LF
    inserted at each position in turn."""
    base = b"ab\r\n.\r\n..c\r\nd."
    return [base[:i] + lone + base[i:] for lone in (b"\r", b"\n") for i in range(len(base) + 1)]


def expected_body(body):
    body = normalise_line_ends(body)
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def body_of(message):
    return message.split(b"\r\n\r\n", 1)[1]


class SmugglingTest(OutboxTestCase):
    def add_server_account(self, url):
        name = self.account_name()
        self.outbox.add_account(name, SENDER, url)
        return name

    def submit(self, account, body, recipients=("bob@example.org",), subject="smuggling"):
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", subject)], body)
        options = {"account": GLib.Variant("s", account),
                   "recipients": GLib.Variant("as", list(recipients))}
        [message_id] = call_outbox(QUEUE_IFACE, "SubmitData",
                                   GLib.Variant("(aya{sv})", (message, options)), "(s)")
        return message_id

    def submit_all(self, account, bodies):
        """Submits each body with its index as subject; returns the ids."""
        return [self.submit(account, body, subject=f"body {i}") for i, body in enumerate(bodies)]

    def assertDeliveredWhole(self, bodies, received_by_subject):
        for i, body in enumerate(bodies):
            with self.subTest(body=body):
                received = received_by_subject[f"body {i}"]
                self.assertIsNone(LONE_CR_OR_LF.search(received),
                                  f"a lone CR or LF reached the server: {received!r}")
                self.assertEqual(body_of(received), expected_body(body))

    def deliver_to_aiosmtpd(self, bodies):
        server = self.start_aiosmtpd()
        account = self.add_server_account(f"smtp+insecure://127.0.0.1:{server.port}")
        for message_id in self.submit_all(account, bodies):
            self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        messages = server.wait_messages(len(bodies))
        return {re.search(rb"^Subject: (.*)\r$", m["data"], re.M).group(1).decode(): m["data"]
                for m in messages}

    def deliver_to_raw_server(self, bodies):
        """Returns {subject: message} and the list of raw DATA payloads."""
        server = RawSmtpServer(extensions=["8BITMIME"]).start()
        self.addCleanup(server.stop)
        account = self.add_server_account(server.url())
        for message_id in self.submit_all(account, bodies):
            self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        payloads = server.wait_payloads(len(bodies))
        messages = [unstuff(payload) for payload in payloads]
        by_subject = {re.search(rb"^Subject: (.*)\r$", m, re.M).group(1).decode(): m
                      for m in messages}
        return by_subject, payloads

    def deliver_to_raw_chunking_server(self, bodies):
        """Returns {subject: message} as the BDAT chunks carried it; fails
        if DATA was used."""
        server = RawSmtpServer(extensions=["8BITMIME", "CHUNKING"]).start()
        self.addCleanup(server.stop)
        account = self.add_server_account(server.url())
        for message_id in self.submit_all(account, bodies):
            self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        messages = server.wait_bdat_messages(len(bodies))
        verbs = {command[:4].upper() for command in server.commands}
        self.assertNotIn(b"DATA", verbs, "DATA used although CHUNKING is offered")
        self.assertEqual(len([c for c in server.chunks if c[1]]), len(bodies))
        return {re.search(rb"^Subject: (.*)\r$", m, re.M).group(1).decode(): m for m in messages}

    def assertPayloadsSafe(self, payloads):
        for payload in payloads:
            self.assertIsNone(LONE_CR_OR_LF.search(payload),
                              f"a lone CR or LF on the wire: {payload!r}")
            self.assertEqual(payload.find(b"\r\n.\r\n"), len(payload) - 5,
                             f"an early end of data on the wire: {payload!r}")

    def test_end_of_data_variants_arrive_whole_at_aiosmtpd(self):
        bodies = variant_bodies()
        self.assertDeliveredWhole(bodies, self.deliver_to_aiosmtpd(bodies))

    def test_lone_cr_and_lf_in_every_position_arrive_as_crlf_at_aiosmtpd(self):
        bodies = every_position_bodies()
        self.assertDeliveredWhole(bodies, self.deliver_to_aiosmtpd(bodies))

    def test_end_of_data_variants_on_the_wire(self):
        bodies = variant_bodies()
        by_subject, payloads = self.deliver_to_raw_server(bodies)
        self.assertPayloadsSafe(payloads)
        self.assertDeliveredWhole(bodies, by_subject)

    def test_lone_cr_and_lf_in_every_position_on_the_wire(self):
        bodies = every_position_bodies()
        by_subject, payloads = self.deliver_to_raw_server(bodies)
        self.assertPayloadsSafe(payloads)
        self.assertDeliveredWhole(bodies, by_subject)

    # The same cases over BDAT: no dot-stuffing and no terminator, so the
    # octets the chunks carry must be the message itself, CRLF-normalised,
    # and nothing in a body may end a chunk or the message early.
    def test_end_of_data_variants_over_bdat(self):
        bodies = variant_bodies()
        self.assertDeliveredWhole(bodies, self.deliver_to_raw_chunking_server(bodies))

    def test_lone_cr_and_lf_in_every_position_over_bdat(self):
        bodies = every_position_bodies()
        self.assertDeliveredWhole(bodies, self.deliver_to_raw_chunking_server(bodies))

    def test_smtp_sink_sees_no_early_end_of_data(self):
        # Postfix takes a lone LF for a line end, as many servers do: a
        # message cut short by a look-alike would lose its last line.
        sink = self.start_sink()
        account = self.add_server_account(sink.url())
        bodies = [b"before" + variant + b"after\r\nTHE-LAST-LINE\r\n"
                  for variant in END_OF_DATA_VARIANTS]
        for message_id in self.submit_all(account, bodies):
            self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        messages = outboxtest.wait_sink_messages(sink, len(bodies))
        self.assertEqual(len(messages), len(bodies), "a message was split in two")
        for message in messages:
            self.assertTrue(message.body().endswith(b"\nTHE-LAST-LINE\n"),
                            f"cut short: {message.data!r}")

    def test_nul_bytes_are_refused_at_submission(self):
        account = self.add_server_account("smtp+insecure://127.0.0.1:9")
        for body in (b"a\r\n\x00.\r\nb\r\n", b"\x00", b"text\x00\r\n", b"\r\n\x00\r\n.\r\n"):
            with self.subTest(body=body):
                before = daemon_state()
                name, message = dbus_error_of(self.submit, account, body)
                self.assertEqual(name, "org.outbox.Outbox1.Error.InvalidMessage", message)
                self.assertIn("NUL", message)
                self.assertEqual(daemon_state(), before)

    # 8-bit data and non-ASCII addresses

    def assertFailsUnsent(self, server, body, recipient, extension):
        account = self.add_server_account(server.url())
        message_id = self.submit(account, body, recipients=(recipient,))
        state = self.outbox.wait_state(message_id, "failed")
        self.assertIn(extension, replies_of(state), f"no clear reason: {state}")
        self.assertEqual(server.mail_commands(), [], "MAIL or RCPT was sent")
        self.assertEqual(server.payloads(), [], "the message was sent")

    def test_non_ascii_recipient_without_smtputf8_is_never_sent(self):
        server = RawSmtpServer(extensions=["8BITMIME", "PIPELINING"]).start()
        self.addCleanup(server.stop)
        self.assertFailsUnsent(server, b"ascii body\r\n", "j\u00f6rg@b\u00fccher.example",
                               "SMTPUTF8")

    def test_non_ascii_recipient_with_smtputf8_goes_with_smtputf8(self):
        # The control for the test above: the same message does go where
        # SMTPUTF8 is offered, and says so in MAIL.
        server = RawSmtpServer(extensions=["8BITMIME", "SMTPUTF8"]).start()
        self.addCleanup(server.stop)
        account = self.add_server_account(server.url())
        message_id = self.submit(account, b"ascii body\r\n",
                                 recipients=("j\u00f6rg@b\u00fccher.example",))
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        [mail, rcpt] = server.mail_commands()
        self.assertIn(b"SMTPUTF8", mail.upper())
        self.assertEqual(rcpt, "RCPT TO:<j\u00f6rg@b\u00fccher.example>\r\n".encode())

    def test_non_ascii_recipient_to_aiosmtpd_without_smtputf8(self):
        server = self.start_aiosmtpd()
        account = self.add_server_account(f"smtp+insecure://127.0.0.1:{server.port}")
        message_id = self.submit(account, b"ascii body\r\n",
                                 recipients=("j\u00f6rg@b\u00fccher.example",))
        state = self.outbox.wait_state(message_id, "failed")
        self.assertIn("SMTPUTF8", replies_of(state), state)
        self.assertEqual(server.events("mail"), [], "MAIL was sent")
        self.assertEqual(server.events("message"), [])

    def test_8bit_body_without_8bitmime_is_never_sent(self):
        server = RawSmtpServer(extensions=["PIPELINING"]).start()
        self.addCleanup(server.stop)
        self.assertFailsUnsent(server, "gr\u00fc\u00dfe\r\n".encode(), "bob@example.org",
                               "8BITMIME")

    def test_8bit_header_without_8bitmime_is_never_sent(self):
        server = RawSmtpServer(extensions=["PIPELINING"]).start()
        self.addCleanup(server.stop)
        account = self.add_server_account(server.url())
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", "gr\u00fc\u00dfe")], b"ascii body\r\n")
        [message_id] = call_outbox(
            QUEUE_IFACE, "SubmitData",
            GLib.Variant("(aya{sv})", (message, {"account": GLib.Variant("s", account)})), "(s)")
        state = self.outbox.wait_state(message_id, "failed")
        self.assertIn("8BITMIME", replies_of(state), state)
        self.assertEqual(server.mail_commands(), [], "MAIL or RCPT was sent")

    def test_8bit_body_with_8bitmime_goes_as_8bitmime(self):
        server = RawSmtpServer(extensions=["8BITMIME"]).start()
        self.addCleanup(server.stop)
        account = self.add_server_account(server.url())
        message_id = self.submit(account, "gr\u00fc\u00dfe\r\n".encode())
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        [mail, _] = server.mail_commands()
        self.assertIn(b"BODY=8BITMIME", mail.upper())

    def test_8bit_body_to_smtp_sink_without_8bitmime(self):
        sink = self.start_sink("-8")
        account = self.add_server_account(sink.url())
        message_id = self.submit(account, "gr\u00fc\u00dfe\r\n".encode())
        state = self.outbox.wait_state(message_id, "failed")
        self.assertIn("8BITMIME", replies_of(state), state)
        self.assertEqual(sink.dump_files(), [], "the message reached smtp-sink")


if __name__ == "__main__":
    outboxtest.main()
