# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""A catalogue of malformed calls (security.md 12, 13): across the D-Bus
API, the outbox command and outbox-sendmail, each is answered by one
specific error, and the queue, the accounts and the files of the spool and
the configuration are exactly as they were before."""

import os
import subprocess
import tempfile

import outboxtest
from gi.repository import GLib
from outboxtest import (ACCOUNTS_IFACE, BUILD_DIR, QUEUE_IFACE, Outbox, OutboxTestCase,
                        call_outbox, call_outbox_with_fds, daemon_state, dbus_error_of,
                        make_message)

ERROR = "org.outbox.Outbox1.Error."
SENDER = "alice@example.org"
MESSAGE = make_message([("From", SENDER), ("To", "bob@example.org"), ("Subject", "bad input")])
OUTBOX_SENDMAIL = BUILD_DIR / "cli" / "outbox-sendmail"

# sysexits.h
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_CONFIG = 64, 65, 67, 78


def s(value):
    return GLib.Variant("s", value)


def strings(values):
    return GLib.Variant("as", values)


def submit_data(message, options=None):
    return call_outbox(QUEUE_IFACE, "SubmitData",
                       GLib.Variant("(aya{sv})", (message, options or {})), "(s)")


def submit_options(**options):
    """SubmitData of a good message with these options (names with '_' for
    '-'), each already a GLib.Variant."""
    return lambda: submit_data(MESSAGE, {k.replace("_", "-"): v for k, v in options.items()})


def to(*recipients):
    return submit_options(recipients=strings(list(recipients)))


def submit_body(body, headers=None):
    headers = headers or [("From", SENDER), ("To", "bob@example.org"), ("Subject", "x")]
    return lambda: submit_data(make_message(headers, body))


def submit_bytes(data):
    return lambda: submit_data(data)


def queue_call(method, *args, signature="(s)"):
    return lambda: call_outbox(QUEUE_IFACE, method, GLib.Variant(signature, args))


def accounts_call(method, signature, *args):
    return lambda: call_outbox(ACCOUNTS_IFACE, method, GLib.Variant(signature, args))


def add_account(name, **settings):
    values = {k.replace("_", "-"): v if isinstance(v, GLib.Variant) else s(v)
              for k, v in settings.items()}
    return accounts_call("Add", "(sa{sv})", name, values)


def good_settings(**changes):
    settings = {"from": s(SENDER), "smtp": s("smtps://alice@mail.example.org")}
    settings.update({k.replace("_", "-"): v for k, v in changes.items()})
    return settings


def domain_of_length(length):
    """A syntactically good domain name of exactly length octets."""
    labels = []
    while length > 0:
        size = min(63, length)
        if length - size == 1:  # never leave room for a lone dot
            size -= 1
        labels.append("d" * size)
        length -= size + 1
    return ".".join(labels)


# One header field folded over many short lines: a header block over
# OUTBOX_MESSAGE_MAX_HEADER (1 MiB) although no line is long.
HUGE_HEADER = b"X-Filler: start\r\n" + (b" " + b"f" * 70 + b"\r\n") * 15500

# (test name, callable, expected D-Bus error name)
DBUS_CASES = [
    # Messages
    ("submit_empty_message", submit_bytes(b""), "InvalidMessage"),
    ("submit_message_without_header", submit_bytes(b"just a line of body\r\n"), "InvalidMessage"),
    ("submit_header_block_over_1_mib", submit_bytes(
        HUGE_HEADER + b"From: alice@example.org\r\nTo: bob@example.org\r\n\r\nbody\r\n"),
     "InvalidMessage"),
    ("submit_header_line_over_1_mib", submit_bytes(
        b"X-Long: " + b"h" * (1024 * 1024 + 10) + b"\r\n" + MESSAGE), "InvalidMessage"),
    ("submit_body_line_of_999_octets", submit_body(b"b" * 999 + b"\r\n"), "InvalidMessage"),
    ("submit_header_line_of_999_octets", submit_bytes(
        b"Subject: " + b"s" * 990 + b"\r\n" + MESSAGE), "InvalidMessage"),
    ("submit_nul_in_body", submit_body(b"before\x00after\r\n"), "InvalidMessage"),
    ("submit_nul_in_header", submit_bytes(b"Subject: a\x00b\r\n" + MESSAGE), "InvalidMessage"),
    ("submit_message_without_recipients", submit_body(
        b"body\r\n", [("From", SENDER), ("Subject", "nobody")]), "InvalidMessage"),
    ("submit_bad_address_in_to_header", submit_body(
        b"body\r\n", [("From", SENDER), ("To", "bob@exa mple.org")]), "InvalidAddress"),
    # Options
    ("option_unknown_key", submit_options(priority=s("high")), "InvalidArgs"),
    ("option_account_wrong_type", submit_options(account=GLib.Variant("u", 1)), "InvalidArgs"),
    ("option_from_wrong_type", submit_options(**{"from": strings([SENDER])}), "InvalidArgs"),
    ("option_recipients_wrong_type", submit_options(recipients=s("bob@example.org")),
     "InvalidArgs"),
    ("option_send_at_wrong_type", submit_options(send_at=s("tomorrow")), "InvalidArgs"),
    ("option_send_at_unsigned", submit_options(send_at=GLib.Variant("t", 1)), "InvalidArgs"),
    ("option_hold_wrong_type", submit_options(hold=s("yes")), "InvalidArgs"),
    ("option_save_to_sent_wrong_type", submit_options(save_to_sent=GLib.Variant("i", 1)),
     "InvalidArgs"),
    ("option_recipients_empty", to(), "InvalidArgs"),
    ("option_unknown_account", submit_options(account=s("nosuch")), "NoSuchAccount"),
    # Envelope addresses (RFC 5321 4.5.3.1)
    ("recipient_with_cr", to("bob@example.org\r"), "InvalidAddress"),
    ("recipient_with_lf", to("bob@example.org\n"), "InvalidAddress"),
    ("recipient_with_smtp_command", to("bob@example.org>\r\nRCPT TO:<eve@example.net"),
     "InvalidAddress"),
    ("recipient_with_control_character", to("bob\x01@example.org"), "InvalidAddress"),
    ("recipient_with_escape", to("bob\x1b[2J@example.org"), "InvalidAddress"),
    ("recipient_with_del", to("bob\x7f@example.org"), "InvalidAddress"),
    ("recipient_with_c1_control", to("bob\u0085@example.org"), "InvalidAddress"),
    ("recipient_with_space", to("bob smith@example.org"), "InvalidAddress"),
    ("recipient_null_path", to("<>"), "InvalidAddress"),
    ("recipient_in_angle_brackets", to("<bob@example.org>"), "InvalidAddress"),
    ("recipient_with_name", to("Bob <bob@example.org>"), "InvalidAddress"),
    ("recipient_without_at", to("bob"), "InvalidAddress"),
    ("recipient_empty", to(""), "InvalidAddress"),
    ("recipient_local_part_65", to("l" * 65 + "@example.org"), "InvalidAddress"),
    ("recipient_domain_256", to("bob@" + domain_of_length(256)), "InvalidAddress"),
    ("recipient_path_over_256", to("l" * 64 + "@" + domain_of_length(190)), "InvalidAddress"),
    ("one_bad_recipient_among_good", to("bob@example.org", "eve\n@example.org"),
     "InvalidAddress"),
    ("envelope_from_with_lf", submit_options(**{"from": s("alice@example.org\nX: y")}),
     "InvalidAddress"),
    ("envelope_from_over_long", submit_options(**{"from": s("f" * 65 + "@example.org")}),
     "InvalidAddress"),
    # Ids
    ("get_unknown_id", queue_call("Get", "ffffffffffff"), "NoSuchMessage"),
    ("get_path_as_id", queue_call("Get", "../../accounts.conf"), "NoSuchMessage"),
    ("get_empty_id", queue_call("Get", ""), "NoSuchMessage"),
    ("cancel_unknown_id", queue_call("Cancel", "ffffffffffff"), "NoSuchMessage"),
    ("hold_unknown_id", queue_call("Hold", "ffffffffffff"), "NoSuchMessage"),
    ("release_unknown_id", queue_call("Release", "ffffffffffff"), "NoSuchMessage"),
    ("retry_unknown_id", queue_call("Retry", "ffffffffffff"), "NoSuchMessage"),
    ("list_unknown_option", queue_call("List", {"pending": GLib.Variant("b", True)},
                                       signature="(a{sv})"), "InvalidArgs"),
    ("list_all_wrong_type", queue_call("List", {"all": s("yes")}, signature="(a{sv})"),
     "InvalidArgs"),
    # Accounts
    ("account_add_unknown_scheme", add_account("bad-url", **{"from": SENDER, "smtp": "ftp://h"}),
     "InvalidAccount"),
    ("account_add_url_with_path", add_account("bad-url", **{"from": SENDER,
                                                             "smtp": "smtps://h/x?y"}),
     "InvalidAccount"),
    ("account_add_url_with_password",
     add_account("pw-url", **{"from": SENDER, "smtp": "smtps://alice:hunter2@mail.example.org"}),
     "InvalidAccount"),
    ("account_add_insecure_user_remote",
     add_account("plain", **{"from": SENDER, "smtp": "smtp+insecure://alice@192.0.2.1:25"}),
     "InvalidAccount"),
    ("account_add_url_with_crlf",
     add_account("crlf", **{"from": SENDER, "smtp": "smtps://mail.example.org\r\n"}),
     "InvalidAccount"),
    ("account_add_from_with_crlf",
     add_account("crlf", **{"from": "alice@example.org\r\nBcc: eve@example.net",
                            "smtp": "smtps://mail.example.org"}), "InvalidAccount"),
    ("account_add_without_from", add_account("nofrom", smtp="smtps://mail.example.org"),
     "InvalidAccount"),
    ("account_add_bad_fingerprint", accounts_call(
        "Add", "(sa{sv})", "pin", good_settings(tls_fingerprint=s("md5:00"))), "InvalidAccount"),
    ("account_add_unknown_mechanism", accounts_call(
        "Add", "(sa{sv})", "mech", good_settings(auth=s("CRAM-MD5"))), "InvalidAccount"),
    ("account_add_unknown_setting", accounts_call(
        "Add", "(sa{sv})", "colour", good_settings(colour=s("red"))), "InvalidArgs"),
    ("account_add_setting_wrong_type", accounts_call(
        "Add", "(sa{sv})", "typed", good_settings(timeout=s("10"))), "InvalidArgs"),
    ("account_add_name_with_slash", accounts_call(
        "Add", "(sa{sv})", "../evil", good_settings()), "InvalidArgs"),
    ("account_add_empty_name", accounts_call("Add", "(sa{sv})", "", good_settings()),
     "InvalidArgs"),
    ("account_add_name_with_newline", accounts_call(
        "Add", "(sa{sv})", "a\n[account b]", good_settings()), "InvalidArgs"),
    ("account_add_duplicate_name", accounts_call("Add", "(sa{sv})", "work", good_settings()),
     "AccountExists"),
    ("account_update_unknown", accounts_call("Update", "(sa{sv})", "nosuch", {}),
     "NoSuchAccount"),
    ("account_update_wrong_type", accounts_call(
        "Update", "(sa{sv})", "work", {"retry-first": s("soon")}), "InvalidArgs"),
    ("account_update_bad_url", accounts_call(
        "Update", "(sa{sv})", "work", {"smtp": s("smtps://alice:pw@h")}), "InvalidAccount"),
    ("account_remove_unknown", accounts_call("Remove", "(s)", "nosuch"), "NoSuchAccount"),
    ("account_remove_with_messages_queued", accounts_call("Remove", "(s)", "work"),
     "InvalidState"),
    ("set_password_unknown_account", accounts_call(
        "SetPassword", "(sss)", "nosuch", "smtp", "pw"), "NoSuchAccount"),
    ("set_password_unknown_service", accounts_call(
        "SetPassword", "(sss)", "work", "ftp", "pw"), "InvalidArgs"),
    ("set_password_service_not_configured", accounts_call(
        "SetPassword", "(sss)", "work", "imap", "pw"), "InvalidArgs"),
    ("set_password_empty", accounts_call("SetPassword", "(sss)", "work", "smtp", ""),
     "InvalidArgs"),
    ("set_password_over_4096", accounts_call(
        "SetPassword", "(sss)", "work", "smtp", "p" * 4097), "InvalidArgs"),
]

# (test name, outbox arguments, standard input, expected exit status)
CLI_CASES = [
    ("cli_unknown_command", ["frobnicate"], None, EX_USAGE),
    ("cli_unknown_option", ["send", "--frobnicate"], MESSAGE, EX_USAGE),
    ("cli_unknown_account_command", ["account", "frobnicate"], None, EX_USAGE),
    ("cli_show_without_id", ["show"], None, EX_USAGE),
    ("cli_show_two_ids", ["show", "a", "b"], None, EX_USAGE),
    ("cli_hold_without_id", ["hold"], None, EX_USAGE),
    ("cli_queue_with_argument", ["queue", "extra"], None, EX_USAGE),
    ("cli_send_bad_time", ["send", "--at", "yesterday-ish", "bob@example.org"], MESSAGE,
     EX_USAGE),
    ("cli_send_missing_account", ["send", "-a", "nosuch", "bob@example.org"], MESSAGE,
     EX_CONFIG),
    ("cli_send_empty_message", ["send", "bob@example.org"], b"", EX_DATAERR),
    ("cli_send_headerless_message", ["send", "bob@example.org"], b"no header here\n",
     EX_DATAERR),
    ("cli_send_bad_recipient", ["send", "bob@exa mple.org"], MESSAGE, EX_NOUSER),
    ("cli_send_recipient_with_newline", ["send", "bob@example.org\nRCPT TO:<eve@example.net>"],
     MESSAGE, EX_NOUSER),
    ("cli_account_add_without_smtp", ["account", "add", "x", "--from", SENDER], None, EX_USAGE),
    ("cli_account_add_without_from", ["account", "add", "x", "--smtp", "smtps://h"], None,
     EX_USAGE),
    ("cli_account_remove_unknown", ["account", "remove", "nosuch"], None, EX_CONFIG),
    ("cli_cancel_unknown_id", ["cancel", "ffffffffffff"], None, 1),
]

# (test name, outbox-sendmail arguments, standard input, expected exit status)
SENDMAIL_CASES = [
    ("sendmail_unknown_flag", ["-X"], MESSAGE, EX_USAGE),
    ("sendmail_unknown_long_option", ["--frobnicate"], MESSAGE, EX_USAGE),
    ("sendmail_from_without_value", ["-f"], MESSAGE, EX_USAGE),
    ("sendmail_t_without_recipients", ["-t"], make_message([("From", SENDER)]), EX_DATAERR),
    ("sendmail_from_with_newline", ["-f", "alice@example.org\nX: y", "bob@example.org"],
     MESSAGE, EX_NOUSER),
    ("sendmail_empty_message", ["bob@example.org"], b"", EX_DATAERR),
]


class BadInputTest(OutboxTestCase):
    """Every case runs against one daemon whose spool holds a sent message
    and a held one, so that a call which changed anything shows."""

    @classmethod
    def setUpClass(cls):
        outbox = Outbox()
        cls.sink = outboxtest.SmtpSink().start()
        cls.addClassCleanup(cls.sink.stop)
        outbox.add_account("work", SENDER, cls.sink.url())
        cls.sent_id = outbox.send(MESSAGE, "bob@example.org")
        outbox.wait_state(cls.sent_id, "sent")
        result = outbox.check("send", "--hold", "carol@example.org", input=MESSAGE)
        cls.held_id = result.stdout.strip()

    def assertRefusedUnchanged(self, call, expected):
        before = daemon_state()
        name, message = dbus_error_of(call)
        self.assertEqual(name, ERROR + expected, f"wrong error: {name}: {message}")
        self.assertNotEqual(message.strip(), "", "the error says nothing")
        self.assertEqual(daemon_state(), before, "a refused call changed the daemon's state")

    def assertExitUnchanged(self, program, args, stdin, expected):
        before = daemon_state()
        completed = subprocess.run([str(program), *args], input=stdin,
                                   stdin=None if stdin is not None else subprocess.DEVNULL,
                                   capture_output=True, timeout=60)
        self.assertEqual(completed.returncode, expected,
                         f"{program.name} {args}: {completed.stderr!r}")
        self.assertNotEqual(completed.stderr.strip(), b"", "no error message")
        self.assertEqual(completed.stdout, b"", "a refused command printed an id")
        self.assertEqual(daemon_state(), before, "a refused command changed the daemon's state")

    # Cases that need the fixtures or descriptors.

    def test_hold_sent_message(self):
        self.assertRefusedUnchanged(queue_call("Hold", self.sent_id), "InvalidState")

    def test_release_message_not_held(self):
        self.assertRefusedUnchanged(queue_call("Release", self.sent_id), "InvalidState")

    def test_retry_sent_message(self):
        self.assertRefusedUnchanged(queue_call("Retry", self.sent_id), "InvalidState")

    def test_retry_held_message(self):
        self.assertRefusedUnchanged(queue_call("Retry", self.held_id), "InvalidState")

    def submit_fds(self, handle, fds):
        return lambda: call_outbox_with_fds(QUEUE_IFACE, "Submit",
                                            GLib.Variant("(ha{sv})", (handle, {})), fds, "(s)")

    def test_submit_write_only_descriptor(self):
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        self.addCleanup(os.close, write_end)
        os.write(write_end, MESSAGE)
        self.assertRefusedUnchanged(self.submit_fds(0, [write_end]), "InvalidArgs")

    def test_submit_without_descriptor(self):
        self.assertRefusedUnchanged(self.submit_fds(0, []), "InvalidArgs")

    def test_submit_handle_beyond_descriptors(self):
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        os.write(write_end, MESSAGE)
        os.close(write_end)
        self.assertRefusedUnchanged(self.submit_fds(3, [read_end]), "InvalidArgs")

    def test_submit_negative_handle(self):
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        os.close(write_end)
        self.assertRefusedUnchanged(self.submit_fds(-1, [read_end]), "InvalidArgs")

    def test_submit_directory_descriptor(self):
        directory = os.open(tempfile.gettempdir(), os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, directory)
        self.assertRefusedUnchanged(self.submit_fds(0, [directory]), "InvalidArgs")

    def test_submit_descriptor_closed_by_writer(self):
        # The writer went away without writing: an empty message.
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        os.close(write_end)
        self.assertRefusedUnchanged(self.submit_fds(0, [read_end]), "InvalidMessage")

    def test_submit_descriptor_of_headerless_file(self):
        with tempfile.TemporaryFile() as message:
            message.write(b"\r\nonly a body\r\n")
            message.seek(0)
            self.assertRefusedUnchanged(self.submit_fds(0, [message.fileno()]), "InvalidMessage")

    def test_submit_data_wrong_signature(self):
        before = daemon_state()
        name, _ = dbus_error_of(call_outbox, QUEUE_IFACE, "SubmitData",
                                GLib.Variant("(sa{sv})", ("From: a@b\r\n\r\n", {})))
        self.assertEqual(name, "org.freedesktop.DBus.Error.InvalidArgs")
        self.assertEqual(daemon_state(), before)


def _add_dbus_case(name, call, expected):
    def test(self):
        self.assertRefusedUnchanged(call, expected)
    test.__name__ = f"test_{name}"
    setattr(BadInputTest, test.__name__, test)


def _add_exit_case(name, program, args, stdin, expected, needs_program=False):
    def test(self):
        if needs_program and not program.exists():
            self.skipTest(f"{program.name} is not built")
        self.assertExitUnchanged(program, args, stdin, expected)
    test.__name__ = f"test_{name}"
    setattr(BadInputTest, test.__name__, test)


for _case in DBUS_CASES:
    _add_dbus_case(*_case)
for _name, _args, _stdin, _expected in CLI_CASES:
    _add_exit_case(_name, outboxtest.OUTBOX, _args, _stdin, _expected)
for _name, _args, _stdin, _expected in SENDMAIL_CASES:
    _add_exit_case(_name, OUTBOX_SENDMAIL, _args, _stdin, _expected, needs_program=True)


if __name__ == "__main__":
    outboxtest.main()
