#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""A Python program on libOutbox through GObject Introspection (run by
tests/integration/test_client_library.py with GI_TYPELIB_PATH and
LD_LIBRARY_PATH naming the build tree).

  watch.py send SIZE           submit a SIZE-octet message as a stream and
                               watch it in the live list until it is sent
  watch.py retry ACCOUNT       submit through ACCOUNT, wait for "failed",
                               say so on stdout, wait for a line on stdin,
                               then retry and watch it until it is sent

Prints one JSON document: the id, the states the message object went
through, and what the list did."""

import json
import sys

import gi
gi.require_version("Outbox", "1")
from gi.repository import Gio, GLib, Outbox  # noqa: E402

TIMEOUT = 60


def message_text(size, subject):
    head = (f"From: alice@example.org\r\nTo: bob@example.org\r\n"
            f"Subject: {subject}\r\n\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    body = line * (max(size - len(head), 0) // len(line) + 1)
    return head + body[:max(size - len(head), 0) - 2] + b"\r\n"


def wait(loop, predicate, what):
    if predicate():
        return
    deadline = GLib.get_monotonic_time() + TIMEOUT * 1000000

    def check():
        if predicate() or GLib.get_monotonic_time() > deadline:
            loop.quit()
            return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE
    GLib.timeout_add(20, check)
    loop.run()
    if not predicate():
        sys.exit(f"timed out waiting for {what}")


def main():
    mode, argument = sys.argv[1], sys.argv[2]
    loop = GLib.MainLoop()
    client = Outbox.Client.new_sync(None)
    messages = client.load_messages_sync(None)
    rows_added = []
    messages.connect("items-changed",
                     lambda model, position, removed, added: rows_added.append(added))

    options = None
    if mode == "send":
        text = message_text(int(argument), "from Python")
    else:
        text = message_text(2000, "retried from Python")
        options = Outbox.SubmitOptions(account=argument)
    stream = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes(text))
    message_id = client.submit_stream_sync(stream, options, None)

    wait(loop, lambda: client.get_message(message_id) is not None, "the new row")
    message = client.get_message(message_id)
    states = [message.props.state.value_nick]
    message.connect("notify::state",
                    lambda m, pspec: states.append(m.props.state.value_nick))
    position = [i for i in range(messages.get_n_items())
                if messages.get_item(i).props.id == message_id]

    if mode == "retry":
        wait(loop, lambda: message.props.state == Outbox.MessageState.FAILED, "failed")
        print(json.dumps({"failed": message_id, "last_reply": message.props.last_reply}),
              flush=True)
        sys.stdin.readline()
        message.retry_sync(None)

    wait(loop, lambda: message.props.state == Outbox.MessageState.SENT, "sent")
    same_object = client.get_message(message_id) is message and \
        messages.get_item(position[0]) is message
    print(json.dumps({
        "id": message_id,
        "states": states,
        "size": message.props.size,
        "attempts": message.props.attempts,
        "subject": message.props.subject,
        "recipients": list(message.props.recipients),
        "rows_added": sum(rows_added),
        "position_is_last": position == [messages.get_n_items() - 1],
        "same_object": same_object,
        "created": message.props.created.to_unix(),
    }), flush=True)


if __name__ == "__main__":
    main()
