#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Owns org.outbox.Outbox1 on the session bus with a Queue interface of
one method, Flush, which exits without answering: what a client meets when
an outboxd of another release, or one that dies mid-call, answers.  Says
"ready" once it owns the name."""

import os

from gi.repository import Gio, GLib

XML = """<node><interface name="org.outbox.Outbox1.Queue">
<method name="Flush"/></interface></node>"""


def on_call(connection, sender, path, interface, method, parameters, invocation):
    os._exit(0)


def main():
    bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    info = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    bus.register_object("/org/outbox/Outbox1", info, on_call, None, None)
    loop = GLib.MainLoop()

    def acquired(*args):
        print("ready", flush=True)
    Gio.bus_own_name_on_connection(bus, "org.outbox.Outbox1", Gio.BusNameOwnerFlags.NONE,
                                   acquired, lambda *a: loop.quit())
    loop.run()


if __name__ == "__main__":
    main()
