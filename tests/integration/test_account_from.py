# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Which account sends a message that names none: the one whose From or
alias matches the message's From, an exact address before a *@domain
wildcard, the default account among equals."""

import outboxtest
from outboxtest import OutboxTestCase, make_message


def message_from(sender, subject):
    return make_message([("From", sender), ("To", "bob@example.net"),
                         ("Subject", subject)])


class AccountFromTest(OutboxTestCase):
    def add_pair(self, prefix):
        """Two accounts, each with an smtp-sink of its own."""
        sinks = (self.start_sink(), self.start_sink())
        names = (f"{prefix}-a", f"{prefix}-b")
        for name, sink in zip(names, sinks):
            self.outbox.add_account(name, f"{name}@example.org", sink.url())
        return names, sinks

    def assertArrivesAt(self, sender, sink, other_sink, subject):
        message_id = self.outbox.send(message_from(sender, subject))
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        [received] = sink.wait_messages(1)
        self.assertEqual(received.headers("Subject"), [subject])
        self.assertEqual(other_sink.dump_files(), [],
                         f"mail from {sender} went through the wrong account too")

    def test_alias_chooses_its_account(self):
        (first, second), (first_sink, second_sink) = self.add_pair("alias")
        self.outbox.check("account", "update", second, "--alias", "boss@example.com")
        self.assertArrivesAt("Boss <boss@example.com>", second_sink, first_sink, "alias")

    def test_wildcard_alias_chooses_its_account(self):
        (first, second), (first_sink, second_sink) = self.add_pair("wildcard")
        self.outbox.check("account", "update", second, "--alias", "*@wild.example.com")
        self.assertArrivesAt("anyone@WILD.example.com", second_sink, first_sink, "wildcard")

    def test_exact_alias_beats_wildcard(self):
        (first, second), (first_sink, second_sink) = self.add_pair("exact")
        self.outbox.check("account", "update", first, "--alias", "*@exact.example.com",
                          "--default")
        self.outbox.check("account", "update", second, "--alias", "sales@exact.example.com")
        self.assertArrivesAt("sales@exact.example.com", second_sink, first_sink, "exact")

    def test_default_wins_a_shared_from(self):
        (first, second), (first_sink, second_sink) = self.add_pair("shared")
        self.outbox.check("account", "update", first, "--alias", "team@example.com")
        self.outbox.check("account", "update", second, "--alias", "team@example.com",
                          "--default")
        self.assertArrivesAt("team@example.com", second_sink, first_sink, "shared")


if __name__ == "__main__":
    outboxtest.main()
