# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""A 50 MB message goes from `outbox send` to the server with the daemon's
memory staying flat: it streams, it never holds the message."""

import hashlib
import random
import tempfile

import outboxtest
from outboxtest import OutboxTestCase, make_message, sanitizers, vm_hwm

SENDER = "alice@example.org"
MESSAGE_SIZE = 50 * 1024 * 1024
MAX_GROWTH = 8 * 1024 * 1024
ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ .,"


def write_big_message(path):
    """Writes a message of at least MESSAGE_SIZE octets with CRLF lines of up
    to 998 octets (a few starting with a dot); returns the sha256 and size of
    its body with LF line ends (the way smtp-sink dumps it)."""
    rng = random.Random(1)
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as out:
        out.write(make_message([("From", SENDER), ("To", "bob@example.org"),
                                ("Subject", "big")], b""))
        written = out.tell()
        while written < MESSAGE_SIZE:
            length = rng.choice((76, 76, 76, 998, 0, 500))
            line = bytes(rng.choice(ALPHABET) for _ in range(8)) * (length // 8)
            line += b"x" * (length - len(line))
            if rng.random() < 0.01:
                line = b"." + line[1:]
            out.write(line + b"\r\n")
            digest.update(line + b"\n")
            size += len(line) + 1
            written += len(line) + 2
    return digest.hexdigest(), size


class BigMessageTest(OutboxTestCase):
    def test_fifty_megabytes_stream_through_flat_memory(self):
        sink = self.start_sink()
        account = self.account_name()
        self.outbox.add_account(account, SENDER, sink.url())
        # One small message first, so the baseline includes whatever a
        # delivery allocates once.
        warmup = self.outbox.send(make_message([("From", SENDER),
                                                ("To", "bob@example.org")]),
                                  account=account)
        self.assertEqual(self.outbox.wait_final(warmup)["state"], "sent")
        pid = self.outbox.daemon_pid()
        before = vm_hwm(pid)

        with tempfile.NamedTemporaryFile(suffix=".eml") as big:
            body_sha256, body_size = write_big_message(big.name)
            big.seek(0)
            message_id = self.outbox.send(big, account=account)
        state = self.outbox.wait_final(message_id, timeout=240)
        self.assertEqual(state["state"], "sent", state)
        self.assertGreaterEqual(state.get("size", 0), MESSAGE_SIZE, state)

        self.assertEqual(self.outbox.daemon_pid(), pid, "the daemon restarted")
        growth = vm_hwm(pid) - before
        # AddressSanitizer keeps freed memory in quarantine: RSS means
        # nothing there.
        if sanitizers() == "none":
            self.assertLess(growth, MAX_GROWTH,
                            f"peak RSS grew by {growth / 2**20:.1f} MiB for a 50 MB message")

        received = sink.wait_messages(2)[-1]
        self.assertEqual(received.headers("Subject"), ["big"])
        body = received.body()
        self.assertEqual(len(body), body_size)
        self.assertEqual(hashlib.sha256(body).hexdigest(), body_sha256)


if __name__ == "__main__":
    outboxtest.main()
