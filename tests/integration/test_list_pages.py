# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Queue.List in pages: "limit" and "after" walk the queue oldest first
without a gap or a repeat, also when the message a page ended with is gone;
`outbox queue --json` pages by itself, so that a queue bigger than one bus
message can carry is still listed whole."""

import json

import outboxtest
from gi.repository import GLib
from outboxtest import (QUEUE_IFACE, Outbox, OutboxTestCase, call_outbox, free_port,
                        make_message)

SENDER = "alice@example.org"


def submit_held(count, account):
    ids = []
    for number in range(count):
        data = make_message([("From", SENDER), ("To", "bob@example.org"),
                             ("Subject", f"page {number}")])
        options = {"account": GLib.Variant("s", account), "hold": GLib.Variant("b", True)}
        [message_id] = call_outbox(QUEUE_IFACE, "SubmitData",
                                   GLib.Variant("(aya{sv})", (data, options)), "(s)")
        ids.append(message_id)
    return ids


def list_page(limit, after=None):
    options = {"limit": GLib.Variant("u", limit)}
    if after is not None:
        options["after"] = GLib.Variant("(xs)", (after["created"], after["id"]))
    [messages] = call_outbox(QUEUE_IFACE, "List", GLib.Variant("(a{sv})", (options,)),
                             "(aa{sv})")
    return messages


class ListPagesTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        Outbox().add_account("pages", SENDER, f"smtp+insecure://127.0.0.1:{free_port()}")

    def walk(self, limit):
        seen, page = [], list_page(limit)
        while page:
            self.assertLessEqual(len(page), limit)
            seen += page
            page = list_page(limit, after=page[-1])
        return seen

    def test_pages_cover_the_queue_once_in_order(self):
        ids = submit_held(7, "pages")
        everything = [m["id"] for m in list_page(0)]
        walked = [m["id"] for m in self.walk(3)]
        self.assertEqual(walked, everything)
        self.assertEqual(len(walked), len(set(walked)))
        for message_id in ids:
            self.assertIn(message_id, walked)

    def test_page_resumes_after_a_removed_message(self):
        submit_held(4, "pages")
        first = list_page(2)
        everything = [m["id"] for m in list_page(0)]
        self.outbox.check("cancel", first[-1]["id"])
        rest = [m["id"] for m in list_page(0, after=first[-1])]
        self.assertEqual(rest, everything[everything.index(first[-1]["id"]) + 1:])

    def test_cli_lists_more_than_one_page(self):
        # The command asks for 2,000 at a time.
        submit_held(2100, "pages")
        document = json.loads(self.outbox.check("queue", "--json").stdout)
        listed = [m["id"] for m in document["messages"]]
        self.assertEqual(listed, [m["id"] for m in list_page(0)])
        self.assertGreaterEqual(len(listed), 2100)
        self.assertEqual(len(listed), len(set(listed)))

    def test_limit_of_wrong_type_is_refused(self):
        with self.assertRaises(GLib.Error) as raised:
            call_outbox(QUEUE_IFACE, "List",
                        GLib.Variant("(a{sv})", ({"limit": GLib.Variant("s", "3")},)))
        self.assertIn("InvalidArgs", raised.exception.message)
        self.assertIn("limit", raised.exception.message)


if __name__ == "__main__":
    outboxtest.main()
