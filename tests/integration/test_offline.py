# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Offline and back: the daemon follows GIO's NetworkManager network
monitor, here fed by python-dbusmock's NetworkManager on a private system
bus.  While offline nothing connects; once back, what is due and what was
deferred for a network reason goes out at once."""

import time

import outboxtest
from outboxtest import (EngineTestCase, NetworkManagerMock, PrivateSystemBus, free_port,
                        queue_online, start_daemon_with_env, wait_until)

# Time allowed for a change of the mock to reach the daemon, and for the
# daemon to act on it.
REACTION = 5


class OfflineTest(EngineTestCase):
    @classmethod
    def setUpClass(cls):
        cls.system_bus = PrivateSystemBus().start()
        try:
            cls.network = NetworkManagerMock(cls.system_bus).start()
        except BaseException:
            cls.system_bus.stop()
            raise
        # Started here, before any `outbox` command could have it started
        # by activation without this environment.
        cls.daemon_outbox = outboxtest.Outbox()
        try:
            start_daemon_with_env(cls.daemon_outbox, {
                "DBUS_SYSTEM_BUS_ADDRESS": cls.system_bus.address,
                "GIO_USE_NETWORK_MONITOR": "networkmanager",
            })
        except BaseException:
            cls.network.stop()
            cls.system_bus.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            outboxtest.terminate(cls.daemon_outbox.daemon)
            cls.network.stop()
            cls.system_bus.stop()

    def setUp(self):
        super().setUp()
        self.assertEqual(self.outbox.daemon_pid(), self.daemon_outbox.daemon.pid,
                         "the daemon is not the one started with the mock network")
        self.go_online(True)
        self.addCleanup(self.go_online, True)

    def go_online(self, online):
        self.network.set_online(online)
        wait_until(lambda: queue_online() == online, REACTION, f"Online to become {online}")

    def status_online(self):
        return self.outbox.json("status", "--json")["online"]

    def test_offline_nothing_connects_then_online_delivers(self):
        server = self.start_scripted()
        account = self.add_engine_account(server.url())
        self.go_online(False)
        self.assertIs(self.status_online(), False)

        message_id = self.submit(account)
        self.outbox.check("flush")
        time.sleep(3)
        message = self.outbox.show(message_id)
        self.assertEqual(message["state"], "queued", message)
        self.assertFalse(message.get("attempts"), message)
        self.assertEqual(server.events("connect"), [], "connected while offline")
        self.assertInSpool(message_id)

        self.go_online(True)
        back = time.time()
        self.assertIs(self.status_online(), True)
        # No flush: coming back online is enough.
        message = self.outbox.wait_state(message_id, "sent", timeout=REACTION)
        self.assertLess(time.time() - back, REACTION)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        self.assertEqual(len(server.wait_messages(1)), 1)

    def test_network_deferred_message_goes_at_once_when_back(self):
        port = free_port()  # nothing listens there yet
        account = self.add_engine_account(f"smtp+insecure://127.0.0.1:{port}",
                                          settings={"retry-first": 300})
        message_id = self.submit(account)
        message = self.outbox.wait_state(message_id, "deferred", timeout=10)
        self.assertIn("next_attempt", message, message)

        self.go_online(False)
        server = self.start_scripted(port=port)
        time.sleep(1)
        self.assertEqual(server.events("connect"), [], "connected while offline")
        self.assertEqual(self.outbox.show(message_id)["state"], "deferred")

        self.go_online(True)
        # Long before the planned retry, without flush.
        message = self.outbox.wait_state(message_id, "sent", timeout=REACTION)
        self.assertRecipientStates(message, {"bob@example.org": "sent"})
        server.wait_messages(1)


if __name__ == "__main__":
    outboxtest.main()
