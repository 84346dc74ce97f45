# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""CHUNKING (RFC 3030) against hostile and odd servers (servers/
scripted_smtpd.py): a message goes in BDAT chunks where CHUNKING is
offered and arrives intact; a refused middle chunk fails the accepted
recipients with the server's reply and sends no chunk after it; a
connection lost after BDAT LAST is an unknown outcome, resent with the
same Message-ID; a server that offers CHUNKING and refuses BDAT gets the
message with DATA on the same connection."""

import outboxtest
from outboxtest import EngineTestCase, make_message

RECIPIENT = "bob@example.org"
REFUSED = "554 5.6.0 message content refused"
RETRY_FIRST = 2


def big_body():
    """About 700 KB: three chunks of the session's 256 KiB, lines with dots."""
    lines = [f"{'.' if n % 5 == 0 else ''}line {n:06d} {'x' * (n % 50)}".encode()
             for n in range(20000)]
    return b"\r\n".join(lines) + b"\r\n"


class ChunkingTest(EngineTestCase):
    def send_big(self, account, message_id):
        message = make_message([("From", self.SENDER), ("To", RECIPIENT), ("Subject", "big"),
                                ("Message-ID", message_id)], big_body())
        return message, self.outbox.send(message, account=account)

    def assertArrivedAsSent(self, server, message, count=1):
        arrived = server.wait_messages(count)
        for received in arrived:
            # Outbox adds nothing to a message that has Date, From and
            # Message-ID; compare the bodies, where the dots are.
            self.assertEqual(received["data"].split(b"\r\n\r\n", 1)[1],
                             message.split(b"\r\n\r\n", 1)[1])
        return arrived

    def test_message_goes_in_bdat_chunks_and_arrives_intact(self):
        server = self.start_scripted(chunking=True)
        account = self.add_engine_account(server.url())
        message, queue_id = self.send_big(account, "<chunks@example.org>")
        self.assertEqual(self.outbox.wait_final(queue_id)["state"], "sent")
        self.assertArrivedAsSent(server, message)
        chunks = server.events("bdat")
        self.assertGreaterEqual(len(chunks), 3, chunks)
        self.assertEqual([c["last"] for c in chunks], [False] * (len(chunks) - 1) + [True])

    def test_refused_middle_chunk_fails_the_recipient_and_stops(self):
        server = self.start_scripted(chunking=True, bdat_replies={2: REFUSED})
        account = self.add_engine_account(server.url())
        _, queue_id = self.send_big(account, "<refused.chunk@example.org>")
        final = self.outbox.wait_final(queue_id)
        self.assertEqual(final["state"], "failed", final)
        self.assertRecipientStates(final, {RECIPIENT: "failed"})
        [recipient] = final["recipients"]
        self.assertEqual(recipient.get("reply_code"), 554, final)
        self.assertEqual(recipient.get("reply"), REFUSED, final)
        chunks = server.events("bdat")
        self.assertEqual(len(chunks), 2, f"a chunk after the refused one: {chunks}")
        self.assertEqual(server.events("message"), [])

    def test_connection_lost_after_bdat_last_resends_same_message_id(self):
        server = self.start_scripted(chunking=True, drop_after_dot=1)
        account = self.add_engine_account(server.url(), settings={"retry-first": RETRY_FIRST})
        message, queue_id = self.send_big(account, "<lost.after.last@example.org>")
        first = self.outbox.wait_state(queue_id, "deferred", timeout=20)
        self.assertIs(first.get("unknown_outcome"), True, first)
        self.assertRecipientStates(first, {RECIPIENT: "deferred"})
        self.assertEqual(len(server.events("dropped")), 1)
        self.assertTrue(server.events("bdat")[-1]["last"])

        final = self.outbox.wait_state(queue_id, "sent", timeout=20)
        self.assertRecipientStates(final, {RECIPIENT: "sent"})
        first_copy, second_copy = self.assertArrivedAsSent(server, message, count=2)
        self.assertEqual(first_copy["data"], second_copy["data"])

    def test_bdat_refused_sends_with_data_on_the_same_connection(self):
        server = self.start_scripted(bdat_refused=True)
        account = self.add_engine_account(server.url())
        message, queue_id = self.send_big(account, "<bdat.refused@example.org>")
        self.assertEqual(self.outbox.wait_final(queue_id)["state"], "sent")
        self.assertArrivedAsSent(server, message)
        [chunk] = server.events("bdat")
        self.assertTrue(chunk["reply"].startswith("502"), chunk)
        self.assertEqual(len(server.events("connect")), 1, "DATA went on another connection")


if __name__ == "__main__":
    outboxtest.main()
