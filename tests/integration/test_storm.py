# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""A server that is down costs the account one attempt, not one per
message: 200 messages released at once for an account whose server
accepts and closes at once, answers 421 at once, or never answers.  The
test's own listener counts the connections; the daemon's log is counted
for its lines about the account; a second account on a working server is
delivered meanwhile."""

import re
import time

from gi.repository import Gio, GLib

import outboxtest
from servers.down_server import DownServer
from outboxtest import (BUS_NAME, OBJECT_PATH, QUEUE_IFACE, session_bus, EngineTestCase, SESSION_LOG, account_settings,
                        call_outbox, make_message, parse_time, session_log_size, wait_until)

MESSAGES = 200
RETRY_FIRST = 2
RETRY_MAX = 8


def submit_held(account, count):
    data = make_message([("From", EngineTestCase.SENDER), ("To", "bob@example.org"),
                         ("Subject", "storm")])
    options = {"account": GLib.Variant("s", account), "hold": GLib.Variant("b", True)}
    return [call_outbox(QUEUE_IFACE, "SubmitData",
                        GLib.Variant("(aya{sv})", (data, options)), "(s)")[0]
            for _ in range(count)]


def release(ids):
    """Releases every message at once: the calls go out together (as many
    in flight as the test bus allows a connection, 8) and are answered
    together, well within the account's first backoff."""
    bus = session_bus()
    pending = set(ids)
    waiting = list(ids)
    errors = []

    def done(connection, result, message_id):
        try:
            connection.call_finish(result)
        except GLib.Error as error:
            errors.append(error)
        pending.discard(message_id)
        send()

    def send():
        if waiting:
            message_id = waiting.pop()
            bus.call(BUS_NAME, OBJECT_PATH, QUEUE_IFACE, "Release",
                     GLib.Variant("(s)", (message_id,)), None, Gio.DBusCallFlags.NONE, 30000,
                     None, done, message_id)

    for _ in range(8):
        send()
    context = GLib.MainContext.default()
    while pending:
        context.iteration(True)
    if errors:
        raise AssertionError(f"Release failed: {errors[0]}")


def remove_with_messages(account, ids):
    left = list(ids)
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:
        still_sending = []
        for message_id in left:
            try:
                call_outbox(QUEUE_IFACE, "Cancel", GLib.Variant("(s)", (message_id,)))
            except GLib.Error as error:
                if "being sent" not in error.message:
                    raise
                still_sending.append(message_id)
        left = still_sending
        time.sleep(0.2)
    call_outbox(outboxtest.ACCOUNTS_IFACE, "Remove", GLib.Variant("(s)", (account,)))


def log_lines_since(offset, needle):
    with open(SESSION_LOG, "rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if needle in line]


class StormTest(EngineTestCase):
    def states(self, ids):
        wanted = set(ids)
        messages = self.outbox.json("queue", "--all", "--json")["messages"]
        return {m["id"]: m for m in messages if m["id"] in wanted}

    def wait_round(self, ids, after=None, timeout=60):
        """The account's next attempt (Unix time) once every message is
        deferred to one and the same time, later than after."""
        def done():
            found = self.states(ids)
            if len(found) != len(ids) or any(m["state"] != "deferred" or "next_attempt" not in m
                                             for m in found.values()):
                return None
            planned = {m["next_attempt"] for m in found.values()}
            if len(planned) != 1:
                return None
            planned = parse_time(planned.pop())
            return planned if after is None or planned > after else None
        return wait_until(done, timeout, f"all {len(ids)} deferred together", interval=0.2)

    def storm(self, mode, settings):
        server = DownServer(mode)
        self.addCleanup(server.stop)
        account = self.add_engine_account(
            server.url(), settings=dict(settings, **{"retry-first": RETRY_FIRST,
                                                     "retry-max": RETRY_MAX}))
        ids = submit_held(account, MESSAGES)
        # Gone with their account, the messages never connect again: a
        # later test's listener may get the same port.
        self.addCleanup(remove_with_messages, account, ids)
        needle = f"Account {account}: could not open an SMTP session"
        offset = session_log_size()
        release(ids)
        released = time.time()
        return server, account, ids, needle, offset, released

    def check_storm(self, mode, settings=None):
        server, account, ids, needle, offset, released = self.storm(mode, settings or {})
        max_connections = 2  # the default
        took = settings_timeout(settings)  # how long a failed attempt lasts

        def lines():
            return log_lines_since(offset, needle)

        def check_connections():
            attempts = len(lines())
            self.assertLessEqual(server.connections(), max_connections * attempts,
                                 f"{server.connections()} connections in {attempts} attempts")

        # The first attempt defers every message with the account.
        self.wait_round(ids)
        check_connections()
        state = wait_until(lambda: (a := account_settings(account)).get("state") == "failing"
                           and a, 10, "the account to be failing")
        planned = {m["next_attempt"] for m in self.states(ids).values()}
        if len(planned) == 1 and len(lines()) == 1:
            self.assertEqual(parse_time(planned.pop()), state["next-attempt"], state)

        # One log line per attempt, and the account's backoff doubles from
        # retry-first to retry-max, counted from the end of the failed
        # attempt; the log's own times say when each attempt failed.
        wait_until(lambda: len(lines()) >= 4, 60, "four attempts")
        check_connections()
        times = [log_time(line) for line in lines()[:4]]
        gaps = [b - a for a, b in zip(times, times[1:])]
        # next-attempt is in whole seconds.
        for gap, backoff in zip(gaps, (RETRY_FIRST, 2 * RETRY_FIRST, RETRY_MAX)):
            self.assertGreaterEqual(gap, backoff + took - 1.1, gaps)
            self.assertLessEqual(gap, backoff + took + 1.5, gaps)
        self.wait_round(ids)

        # A flush tries the account once more, at once, with at most
        # max-connections connections, and only once.
        before, attempts = server.connections(), len(lines())
        self.outbox.check("flush")
        wait_until(lambda: len(lines()) == attempts + 1, 30, "the flush's attempt")
        self.wait_round(ids)
        time.sleep(1)
        self.assertEqual(len(lines()), attempts + 1, "a flush made more than one attempt")
        self.assertGreaterEqual(server.connections() - before, 1)
        self.assertLessEqual(server.connections() - before, max_connections)

        # So does a retry of one message, for the account resting after
        # the flush's attempt.
        before, attempts = server.connections(), len(lines())
        self.outbox.check("retry", ids[0])
        wait_until(lambda: len(lines()) == attempts + 1, 30, "the retry's attempt")
        # (Not waiting for a round: the others are deferred to the
        # account's next attempt, which the retry's failure moved.)
        self.outbox.wait_state(ids[0], "deferred", timeout=30)
        self.assertGreaterEqual(server.connections() - before, 1)
        self.assertLessEqual(server.connections() - before, max_connections)

    def test_server_that_closes_at_once(self):
        self.check_storm("close")

    def test_server_that_answers_421(self):
        self.check_storm("421")

    def test_server_that_never_answers(self):
        self.check_storm("silent", {"timeout": 2})

    def test_second_account_is_not_delayed(self):
        server, account, ids, needle, offset, released = self.storm("silent", {"timeout": 5})
        sink = self.start_sink()
        other = self.add_engine_account(sink.url(), name=f"{account}-other")
        message_id = self.submit(other)
        self.outbox.wait_state(message_id, "sent", timeout=10)
        sink.wait_messages(1)
        self.assertLess(time.time() - released, 5 + 3, "the second account waited for the first")
        self.wait_round(ids)


def log_time(line):
    """The time of day (seconds) a GLib log line carries: "... 16:23:04.936: ..."."""
    clock = re.search(r"(\d\d):(\d\d):(\d\d\.\d+):", line)
    hours, minutes, seconds = clock.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def settings_timeout(settings):
    return (settings or {}).get("timeout", 0)


if __name__ == "__main__":
    outboxtest.main()
