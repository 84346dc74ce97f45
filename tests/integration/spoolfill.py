# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Writes held messages straight into a spool's queue/, in the form the
spool itself writes (daemon/lib/outbox-spool.c: a message file of two 4 KiB
record slots, then the data), so that a test or a benchmark gets a queue of
100,000 in seconds instead of submitting each.  Nothing is fsynced: the
files are for a daemon that is started afterwards, not for a crash."""

import hashlib
import os
import random
import time

SLOT = 4096


def message_data(number, sender, recipient):
    return (f"From: {sender}\r\nTo: {recipient}\r\nSubject: filled {number}\r\n"
            f"Message-ID: <fill-{number}@outbox.test>\r\n\r\nHello {number}.\r\n").encode()


def record_text(message_id, account, sender, recipient, created, data, number):
    fields = [
        ("id", message_id), ("account", account), ("from", sender), ("state", "held"),
        ("created", created), ("send-at", 0), ("next-attempt", 0), ("first-failure", 0),
        ("finished", 0), ("attempts", 0), ("size", len(data)),
        ("data-sha256", hashlib.sha256(data).hexdigest()),
        ("message-id", f"<fill-{number}@outbox.test>"), ("subject", f"filled {number}"),
        ("eightbit", 0), ("smtputf8", 0), ("unknown-outcome", 0), ("save-to-sent", -1),
        ("network-deferred", 0), ("sent-copy-attempts", 0), ("sent-copy-next", 0),
    ]
    body = "outbox-record 1\n" + "".join(f"{key} {value}\n" for key, value in fields)
    body += f"recipient queued 0 {recipient}\n"
    body = body.encode()
    return body + b"sha256 " + hashlib.sha256(body).hexdigest().encode() + b"\n"


def fill(spool, count, account, sender="alice@example.org", recipient="bob@example.org"):
    """Adds count held messages to the spool directory (created as the
    daemon would); returns their ids, oldest first."""
    queue = os.path.join(spool, "queue")
    os.makedirs(queue, mode=0o700, exist_ok=True)
    os.chmod(spool, 0o700)
    base = time.time_ns() // 1000 - count
    created = int(time.time()) - 1
    ids = []
    for number in range(count):
        message_id = f"{base + number:013x}{random.getrandbits(24):06x}"
        data = message_data(number, sender, recipient)
        record = record_text(message_id, account, sender, recipient, created, data, number)
        head = f"outbox-slot 1 {len(record)}\n".encode() + record
        path = os.path.join(queue, message_id + ".msg")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, head.ljust(2 * SLOT, b"\0") + data)
        finally:
            os.close(fd)
        ids.append(message_id)
    return ids
