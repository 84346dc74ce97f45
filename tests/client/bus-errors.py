#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""The bus's own errors in libOutbox's domain, on a private bus that
tests/integration/test_client_library.py starts without any service:

  bus-errors.py unavailable     nothing owns org.outbox.Outbox1 and nothing
                                can start it: DAEMON_UNAVAILABLE
  bus-errors.py incompatible    a stand-in owns the name and has no Get:
                                INCOMPATIBLE_DAEMON
  bus-errors.py no-reply        the stand-in exits on Flush: NO_REPLY

Prints the error's code name and message as JSON."""

import json
import sys

import gi
gi.require_version("Outbox", "1")
from gi.repository import GLib, Outbox  # noqa: E402


def main():
    client = Outbox.Client.new_sync(None)
    try:
        if sys.argv[1] == "no-reply":
            client.flush_sync(None)
        else:
            client.lookup_message_sync("some-id", None)
    except GLib.Error as error:
        print(json.dumps({"domain": error.domain,
                          "code": Outbox.ClientError(error.code).value_nick,
                          "message": error.message}))
        return
    sys.exit("the call did not fail")


if __name__ == "__main__":
    main()
