# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Each recipient has its own outcome: one accepted recipient is never
sent the message twice, a 450 is retried alone, a 550 fails that
recipient only with the server's own words; and a connection lost after
the final dot leads to a resend with the same Message-ID (servers/
scripted_smtpd.py)."""

import time

import outboxtest
from outboxtest import EngineTestCase

GOOD = "good@example.org"
LATER = "later@example.org"
BAD = "bad@example.org"
BUSY = "450 4.2.1 <later@example.org>: mailbox busy, try again"
NO_SUCH_USER = "550 5.1.1 <bad@example.org>: Recipient address rejected: no such user"
RETRY_FIRST = 2


class PartialTest(EngineTestCase):
    def test_partial_recipients(self):
        server = self.start_scripted(rcpt={LATER: [BUSY, "250 2.1.5 OK"],
                                           BAD: [NO_SUCH_USER]})
        account = self.add_engine_account(server.url(), settings={"retry-first": RETRY_FIRST})
        message_id = self.submit(account, recipients=(GOOD, LATER, BAD))

        first = self.outbox.wait_state(message_id, ("deferred", "failed"), timeout=20)
        first_seen = time.time()
        self.assertEqual(first["state"], "deferred", first)
        self.assertRecipientStates(first, {GOOD: "sent", LATER: "deferred", BAD: "failed"})
        replies = {r["address"]: r for r in first["recipients"]}
        self.assertEqual(replies[LATER].get("reply_code"), 450, first)
        self.assertIn(BUSY, replies[LATER].get("reply", ""), first)
        self.assertEqual(replies[BAD].get("reply_code"), 550, first)
        self.assertEqual(replies[BAD].get("reply"), NO_SUCH_USER, first)
        self.assertNextAttemptIn(first, RETRY_FIRST, first_seen, slack=1.5)
        self.assertInSpool(message_id)

        # The retry comes by itself after the account's backoff.
        final = self.outbox.wait_state(message_id, ("failed", "sent"), timeout=20)
        self.assertEqual(final["state"], "failed", final)
        self.assertRecipientStates(final, {GOOD: "sent", LATER: "sent", BAD: "failed"})
        replies = {r["address"]: r for r in final["recipients"]}
        self.assertEqual(replies[BAD].get("reply"), NO_SUCH_USER, final)
        self.assertEqual(final.get("attempts"), 2, final)
        self.assertNotIn("next_attempt", final)
        self.assertInSpool(message_id)

        # Give a third, wrong attempt the time to show up.
        time.sleep(RETRY_FIRST + 1)
        messages = server.messages()
        self.assertEqual([m["rcpt_tos"] for m in messages], [[GOOD], [LATER]])
        self.assertEqual(messages[0]["data"], messages[1]["data"])
        rcpts = [r["address"] for r in server.events("rcpt")]
        self.assertEqual(rcpts.count(GOOD), 1, f"the accepted recipient was tried again: {rcpts}")
        self.assertEqual(rcpts.count(LATER), 2, rcpts)
        self.assertEqual(rcpts.count(BAD), 1, f"the refused recipient was tried again: {rcpts}")

    # Recipient limits ----------------------------------------------------

    def check_split(self, server, account, batches):
        recipients = tuple(f"r{n}@example.org" for n in range(8))
        message_id = self.submit(account, recipients=recipients)
        message = self.outbox.wait_final(message_id, timeout=30)

        self.assertEqual(message["state"], "sent", message)
        self.assertRecipientStates(message, {r: "sent" for r in recipients})
        self.assertEqual(message.get("attempts"), 1, message)
        messages = server.wait_messages(len(batches))
        self.assertEqual([m["rcpt_tos"] for m in messages], batches)
        self.assertEqual(len({m["data"] for m in messages}), 1, "the transactions differ")
        self.assertEqual(len(server.events("connect")), 1, "not one connection")
        return message

    def test_server_taking_three_recipients_per_transaction(self):
        # RFC 5321 4.5.3.1.10: the 452s are for the next transaction, at
        # once on the same connection, not after a backoff.
        server = self.start_scripted(max_rcpt=3)
        account = self.add_engine_account(server.url(), settings={"retry-first": 300})
        r = [f"r{n}@example.org" for n in range(8)]
        self.check_split(server, account, [r[0:3], r[3:6], r[6:8]])
        refused = [e for e in server.events("rcpt") if e["reply"].startswith("452")]
        self.assertEqual(len(refused), 5 + 2, refused)

    def test_max_recipients_splits_before_the_server_refuses(self):
        server = self.start_scripted()
        account = self.add_engine_account(server.url())
        self.outbox.check("account", "update", account, "--max-recipients", "3")
        shown = self.outbox.check("account", "show", account).stdout
        self.assertRegex(shown, r"Recipients per transaction:\s+3")
        r = [f"r{n}@example.org" for n in range(8)]
        self.check_split(server, account, [r[0:3], r[3:6], r[6:8]])
        self.assertEqual([e["reply"][:3] for e in server.events("rcpt")], ["250"] * 8)

    def test_connection_lost_after_final_dot_resends_same_message_id(self):
        server = self.start_scripted(drop_after_dot=1)
        account = self.add_engine_account(server.url(), settings={"retry-first": RETRY_FIRST})
        message_id = self.submit(account, message_id="<lost.after.dot@example.org>")

        first = self.outbox.wait_state(message_id, "deferred", timeout=20)
        first_seen = time.time()
        self.assertIs(first.get("unknown_outcome"), True, first)
        self.assertRecipientStates(first, {"bob@example.org": "deferred"})
        self.assertNextAttemptIn(first, RETRY_FIRST, first_seen, slack=1.5)
        self.assertInSpool(message_id)
        self.assertEqual(len(server.events("dropped")), 1)

        final = self.outbox.wait_state(message_id, "sent", timeout=20)
        self.assertRecipientStates(final, {"bob@example.org": "sent"})
        first_copy, second_copy = server.wait_messages(2)
        time.sleep(1)
        self.assertEqual(len(server.messages()), 2, "sent more than once after the resend")
        ids = [self.message_id_of(m["data"]) for m in (first_copy, second_copy)]
        self.assertEqual(ids, ["<lost.after.dot@example.org>"] * 2)
        self.assertEqual(first_copy["data"], second_copy["data"])

    @staticmethod
    def message_id_of(data):
        head = data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                return line.split(b":", 1)[1].strip().decode()
        return None


if __name__ == "__main__":
    outboxtest.main()
