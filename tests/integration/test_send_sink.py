# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Accounts and plain submissions, checked at Postfix's smtp-sink and at an
aiosmtpd server that records the exact bytes it received."""

import os
import pathlib
import re

import gi

gi.require_version("Secret", "1")
from gi.repository import Secret  # noqa: E402

import outboxtest  # noqa: E402
from outboxtest import OutboxTestCase, make_message  # noqa: E402

SENDER = "alice@example.org"
PASSWORD = "correct horse battery staple"


def secret_items(account):
    """The Secret Service items with attribute account=ACCOUNT, whatever
    their schema, as dicts of attributes plus "schema" and "secret"."""
    service = Secret.Service.get_sync(Secret.ServiceFlags.OPEN_SESSION, None)
    flags = (Secret.SearchFlags.ALL | Secret.SearchFlags.UNLOCK
             | Secret.SearchFlags.LOAD_SECRETS)
    items = []
    for item in service.search_sync(None, {"account": account}, flags, None):
        fields = dict(item.get_attributes())
        fields["schema"] = item.get_schema_name()
        fields["secret"] = item.get_secret().get_text()
        items.append(fields)
    return items


def has_crlf_lines_only(data):
    return b"\r\n" in data and re.search(rb"(?<!\r)\n|\r(?!\n)", data) is None


class SendToSinkTest(OutboxTestCase):
    def add_sink_account(self, sink, password=None):
        # smtp-sink answers AUTH with 250, not 235: an account that sends
        # through it has no user and no password.
        name = self.account_name()
        self.outbox.add_account(name, SENDER, sink.url("alice" if password else None),
                                password=password)
        return name

    def test_password_goes_to_keyring_not_config(self):
        sink = self.start_sink()
        name = self.add_sink_account(sink, password=PASSWORD)

        items = secret_items(name)
        self.assertEqual(len(items), 1, f"keyring items of {name}: {items}")
        self.assertEqual(items[0].get("schema"), "org.outbox.Password")
        self.assertEqual(items[0].get("secret"), PASSWORD)
        self.assertEqual(items[0].get("service"), "smtp")
        self.assertEqual(items[0].get("user"), "alice")
        self.assertEqual(items[0].get("host"), "127.0.0.1")

        config = pathlib.Path(os.environ["XDG_CONFIG_HOME"]) / "outbox" / "accounts.conf"
        text = config.read_text()
        self.assertIn(name, text)
        self.assertNotIn(PASSWORD, text)
        self.assertEqual(config.stat().st_mode & 0o077, 0, "accounts.conf readable by others")

        listing = self.outbox.check("account", "list", "--json").stdout
        self.assertNotIn(PASSWORD, listing)
        self.assertNotIn(PASSWORD, self.outbox.check("account", "show", name).stdout)

    def test_recipients_from_headers_and_bcc_removed(self):
        sink = self.start_sink()
        name = self.add_sink_account(sink)
        message = make_message([("From", f"Alice <{SENDER}>"),
                                ("To", "Bob <bob@example.org>, carol@example.org"),
                                ("Cc", "dave@example.net"),
                                ("Bcc", "eve@example.com"),
                                ("Subject", "headers")])

        message_id = self.outbox.send(message, account=name)
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)

        [received] = sink.wait_messages(1)
        self.assertEqual(received.sender, SENDER)
        self.assertEqual(sorted(received.recipients),
                         ["bob@example.org", "carol@example.org",
                          "dave@example.net", "eve@example.com"])
        self.assertEqual(received.headers("Bcc"), [], "Bcc header was sent")
        self.assertEqual(len(received.headers("Date")), 1, "no single Date added")
        self.assertEqual(len(received.headers("Message-ID")), 1, "no single Message-ID added")
        self.assertRegex(received.headers("Message-ID")[0], r"^<[^<>@\s]+@[^<>@\s]+>$")
        self.assertEqual(received.headers("To"), ["Bob <bob@example.org>, carol@example.org"])
        self.assertEqual(received.body(), b"Hello.\n")
        self.assertRecipientStates(state, {"bob@example.org": "sent",
                                           "carol@example.org": "sent",
                                           "dave@example.net": "sent",
                                           "eve@example.com": "sent"})

    def test_explicit_recipients_and_sender_keep_message_as_is(self):
        sink = self.start_sink()
        name = self.add_sink_account(sink)
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Bcc", "eve@example.com"),
                                ("Message-ID", "<fixed.1@example.org>"),
                                ("Date", "Mon, 02 Jan 2023 10:00:00 +0000"),
                                ("Subject", "explicit")])

        message_id = self.outbox.send(message, "frank@example.net", account=name,
                                      sender="bounces@example.org")
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)

        [received] = sink.wait_messages(1)
        self.assertEqual(received.sender, "bounces@example.org")
        self.assertEqual(received.recipients, ["frank@example.net"])
        self.assertEqual(received.headers("Bcc"), ["eve@example.com"])
        self.assertEqual(received.headers("Message-ID"), ["<fixed.1@example.org>"])
        self.assertEqual(received.headers("Date"), ["Mon, 02 Jan 2023 10:00:00 +0000"])
        # With or without the angle brackets: both name the same message.
        self.assertEqual(state.get("message_id", "").strip("<>"), "fixed.1@example.org", state)

    def test_bytes_on_the_wire_are_crlf_and_dot_stuffed(self):
        server = self.start_aiosmtpd()
        name = self.account_name()
        self.outbox.add_account(name, SENDER, f"smtp+insecure://127.0.0.1:{server.port}")
        body = (b".leading dot\r\n"
                b"..two dots\r\n"
                b".\r\n"
                b"bare line feed\n"
                b"after it\r\n"
                b"last line\r\n")
        message = make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", "wire")], body)

        message_id = self.outbox.send(message, account=name)
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)

        [received] = server.wait_messages(1)
        data = received["data"]
        self.assertTrue(has_crlf_lines_only(data), f"lines not all CRLF: {data!r}")
        self.assertTrue(data.endswith(b"\r\n\r\n" + body.replace(b"feed\n", b"feed\r\n")),
                        f"body changed on the way: {data!r}")
        self.assertEqual(received["mail_from"], SENDER)
        self.assertEqual(received["rcpt_tos"], ["bob@example.org"])
        self.assertEqual(len(server.events("message")), 1,
                         "a lone dot ended the message early")


if __name__ == "__main__":
    outboxtest.main()
