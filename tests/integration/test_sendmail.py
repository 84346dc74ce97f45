# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""outbox-sendmail: flags, exit codes, the SMTP dialogue of -bs, and the
maildrop that keeps a message when no session bus answers."""

import os
import shutil
import time

import outboxtest
from outboxtest import (OutboxTestCase, environment_without_bus, free_port, make_message,
                        maildrop_dir, maildrop_files, sendmail, wait_sink_messages)

EX_USAGE = 64
IGNORED_FLAGS = ["-i", "-oi", "-odb", "-odi", "-oem", "-om", "-oee", "-bm", "-Am", "-Ac"]


class SendmailTest(OutboxTestCase):
    # Every test has its own account and address: the daemon chooses the
    # account whose address is the message's From.
    def add_sink_account(self, default=False):
        sink = self.start_sink()
        self.outbox.add_account(self.account_name(), self.sender, sink.url(), default=default)
        return sink

    def add_pending_account(self):
        """An account whose server never answers: its messages stay queued."""
        account = self.account_name()
        self.outbox.add_account(account, self.sender,
                                f"smtp+insecure://127.0.0.1:{free_port()}")
        return account

    @property
    def sender(self):
        return f"{self.account_name()}@example.org"

    def queued_subjects(self):
        messages = self.outbox.json("queue", "--all", "--json")["messages"]
        return [m.get("subject") for m in messages]

    def check_sendmail(self, *args, **kwargs):
        result = sendmail(*args, **kwargs)
        self.assertEqual(result.rc, 0, result)
        return result

    def test_t_takes_recipients_from_headers_and_removes_bcc(self):
        sink = self.add_sink_account()
        message = make_message([("From", self.sender), ("To", "to@example.org"),
                                ("Cc", "Carl <cc@example.org>"),
                                ("Bcc", "hidden@example.org"), ("Subject", "minus t")])
        self.check_sendmail("-t", "-oi", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(sorted(received.recipients),
                         ["cc@example.org", "hidden@example.org", "to@example.org"])
        self.assertEqual(received.headers("Bcc"), [])
        self.assertNotIn(b"hidden@example.org", received.data)

    def test_t_adds_argument_recipients(self):
        sink = self.add_sink_account()
        message = make_message([("From", self.sender), ("To", "to@example.org"),
                                ("Subject", "minus t plus")])
        self.check_sendmail("-t", "extra@example.org", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(sorted(received.recipients), ["extra@example.org", "to@example.org"])

    def test_arguments_alone_are_the_envelope(self):
        sink = self.add_sink_account()
        message = make_message([("From", self.sender), ("To", "to@example.org"),
                                ("Subject", "arguments")])
        self.check_sendmail("--", "only@example.org", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.recipients, ["only@example.org"])

    def test_f_sets_the_envelope_sender(self):
        sink = self.add_sink_account()
        message = make_message([("From", self.sender), ("To", "to@example.org"),
                                ("Subject", "envelope sender")])
        self.check_sendmail("-f", "bounces@example.org", "to@example.org", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.sender, "bounces@example.org")
        self.assertEqual(received.headers("From"), [self.sender])

    def test_F_and_f_add_a_from_when_missing(self):
        sink = self.add_sink_account()
        message = make_message([("To", "to@example.org"), ("Subject", "no from")])
        self.check_sendmail("-F", "Ann Example", "-f", self.sender, "to@example.org",
                            input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.headers("From"), [f"Ann Example <{self.sender}>"])
        self.assertEqual(received.sender, self.sender)

    def test_F_alone_names_the_account_address(self):
        sink = self.add_sink_account(default=True)
        message = make_message([("To", "to@example.org"), ("Subject", "name only")])
        self.check_sendmail("-FAnn Example", "to@example.org", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.headers("From"), [f"Ann Example <{self.sender}>"])

    def test_existing_from_is_kept(self):
        sink = self.add_sink_account()
        message = make_message([("From", f"Own <{self.sender}>"), ("To", "to@example.org"),
                                ("Subject", "own from")])
        self.check_sendmail("-F", "Other Name", "to@example.org", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.headers("From"), [f"Own <{self.sender}>"])

    def test_ignored_legacy_flags_are_accepted(self):
        sink = self.add_sink_account()
        for flag in IGNORED_FLAGS:
            message = make_message([("From", self.sender), ("To", "to@example.org"),
                                    ("Subject", f"flag {flag}")])
            self.check_sendmail(flag, "to@example.org", input=message)
        received = wait_sink_messages(sink, len(IGNORED_FLAGS))
        self.assertEqual(sorted(m.headers("Subject")[0] for m in received),
                         sorted(f"flag {flag}" for flag in IGNORED_FLAGS))

    def test_unknown_flag_is_a_usage_error(self):
        result = sendmail("-X", "to@example.org", input=b"Subject: x\r\n\r\nx\r\n")
        self.assertEqual(result.rc, EX_USAGE, result)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result)
        self.assertIn("-X", result.stderr)

    def test_dsn_flags_as_mutt_gives_them(self):
        # mutt with dsn_notify and dsn_return set: -oi -N LIST -R RET -- RCPT
        sink = self.add_sink_account()
        message = make_message([("From", self.sender), ("To", "mutt@example.org"),
                                ("Subject", "dsn from mutt")])
        self.check_sendmail("-oi", "-N", "failure,delay", "-R", "hdrs", "-V", "mutt-1",
                            "--", "mutt@example.org", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.mail_args, "RET=HDRS ENVID=mutt-1")
        self.assertEqual(received.rcpt_args_of("mutt@example.org"),
                         "NOTIFY=FAILURE,DELAY ORCPT=rfc822;mutt@example.org")

    def test_dsn_flags_attached_and_with_t(self):
        sink = self.add_sink_account()
        message = make_message([("From", self.sender), ("To", "to@example.org"),
                                ("Subject", "attached")])
        self.check_sendmail("-t", "-Nnever", "-Rfull", input=message)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.mail_args, "RET=FULL")
        self.assertEqual(received.rcpt_args_of("to@example.org"),
                         "NOTIFY=NEVER ORCPT=rfc822;to@example.org")

    def test_bad_dsn_values_are_usage_errors(self):
        message = make_message([("From", self.sender), ("To", "to@example.org"),
                                ("Subject", "bad dsn")])
        cases = [
            (["-N", "bogus", "to@example.org"],
             "-N: “bogus” is not a condition to notify of: give never, or one or more of "
             "success, failure and delay"),
            (["-N", "never,success", "to@example.org"],
             "-N: never cannot go with success, failure or delay"),
            (["-R", "headers", "to@example.org"],
             "-R: “headers” is not what a notification can return: give full (the whole "
             "message) or hdrs"),
            (["-V", "x" * 101, "to@example.org"],
             "-V: the envelope ID is 101 characters; give 1 to 100"),
            (["to@example.org", "-N"], "option -N needs a value"),
        ]
        for args, says in cases:
            with self.subTest(args=args[:2]):
                result = sendmail(*args, input=message)
                self.assertEqual(result.rc, EX_USAGE, result)
                self.assertEqual(len(result.stderr.strip().splitlines()), 1, result)
                self.assertIn(says, result.stderr)

    def test_maildrop_keeps_dsn_flags(self):
        sink = self.add_sink_account()
        self.outbox.stop_daemon()
        message = make_message([("From", self.sender), ("To", "cron@example.org"),
                                ("Subject", "dsn from cron")])
        result = sendmail("-t", "-N", "success", "-R", "hdrs", "-V", "nightly 3",
                          input=message, env=environment_without_bus())
        self.assertEqual(result.rc, 0, result)
        [name] = maildrop_files()
        envelope = (maildrop_dir() / name).read_bytes().split(b"\n\n", 1)[0]
        self.assertIn(b"\nnotify success\nret hdrs\nenvid nightly%203", envelope)

        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.mail_args, "RET=HDRS ENVID=nightly+203")
        self.assertEqual(received.rcpt_args_of("cron@example.org"),
                         "NOTIFY=SUCCESS ORCPT=rfc822;cron@example.org")

    def test_no_recipient_is_a_usage_error(self):
        result = sendmail(input=make_message([("From", self.sender), ("Subject", "nobody")]))
        self.assertEqual(result.rc, EX_USAGE, result)

    def test_bp_lists_the_queue(self):
        account = self.add_pending_account()
        message = make_message([("From", self.sender), ("To", "listed@example.org"),
                                ("Subject", "listed")])
        message_id = self.outbox.send(message, account=account)
        wide = dict(os.environ, COLUMNS="400")
        result = self.check_sendmail("-bp", env=wide)
        self.assertIn(message_id, result.stdout)
        self.assertIn("listed@example.org", result.stdout)
        self.assertEqual(result.stdout.splitlines()[0].split(),
                         ["ID", "SIZE", "AGE", "STATE", "FROM", "RECIPIENTS", "LAST", "REPLY"])

    def test_bs_takes_two_messages_in_one_session(self):
        sink = self.add_sink_account()
        dialogue = ("EHLO client.example.org\r\n"
                    f"MAIL FROM:<{self.sender}>\r\n"
                    "RCPT TO:<one@example.org>\r\n"
                    "DATA\r\n"
                    f"From: {self.sender}\r\nTo: one@example.org\r\nSubject: first\r\n\r\n"
                    "..starts with a dot\r\n.\r\n"
                    f"MAIL FROM:<{self.sender}> BODY=8BITMIME\r\n"
                    "RCPT TO:<two@example.org>\r\n"
                    "RCPT TO:<three@example.org>\r\n"
                    "DATA\r\n"
                    f"From: {self.sender}\r\nTo: two@example.org\r\nSubject: second\r\n\r\n"
                    "second body\r\n.\r\n"
                    "QUIT\r\n")
        result = self.check_sendmail("-bs", input=dialogue)
        codes = [line[:3] for line in result.stdout.split("\r\n") if line and line[3] == " "]
        self.assertEqual(codes, ["220", "250", "250", "250", "354", "250",
                                 "250", "250", "250", "354", "250", "221"], result.stdout)
        received = sorted(wait_sink_messages(sink, 2), key=lambda m: m.headers("Subject")[0])
        self.assertEqual(received[0].recipients, ["one@example.org"])
        self.assertIn(b"\n.starts with a dot\n", received[0].data)
        self.assertEqual(sorted(received[1].recipients), ["three@example.org", "two@example.org"])

    def test_bs_offers_and_takes_dsn(self):
        sink = self.add_sink_account()
        dialogue = ("EHLO client.example.org\r\n"
                    f"MAIL FROM:<{self.sender}> RET=HDRS ENVID=job+2B7\r\n"
                    "RCPT TO:<one@example.org> NOTIFY=SUCCESS,FAILURE "
                    "ORCPT=rfc822;one@example.org\r\n"
                    "RCPT TO:<two@example.org> NOTIFY=NEVER\r\n"
                    "RCPT TO:<three@example.org> NOTIFY=FAILURE,SUCCESS\r\n"
                    "RCPT TO:<four@example.org> NOTIFY=SOMETIMES\r\n"
                    "RCPT TO:<five@example.org> ORCPT=rfc822\r\n"
                    "DATA\r\n"
                    f"From: {self.sender}\r\nTo: one@example.org\r\nSubject: dsn\r\n\r\n"
                    "body\r\n.\r\n"
                    f"MAIL FROM:<{self.sender}> ENVID=caf\u00e9\r\n"
                    "QUIT\r\n")
        result = self.check_sendmail("-bs", input=dialogue)
        lines = [line for line in result.stdout.split("\r\n") if line]
        self.assertIn("250-DSN", lines)
        codes = [line[:3] for line in lines if line[3] == " "]
        self.assertEqual(codes, ["220", "250", "250", "250", "452", "250", "501", "501",
                                 "354", "250", "501", "221"], result.stdout)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(sorted(received.recipients), ["one@example.org", "three@example.org"])
        self.assertEqual(received.mail_args, "RET=HDRS ENVID=job+2B7")
        self.assertEqual(received.rcpt_args_of("three@example.org"),
                         "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;three@example.org")

    def test_bs_removes_bcc_and_still_delivers_to_it(self):
        sink = self.add_sink_account()
        dialogue = ("EHLO client.example.org\r\n"
                    f"MAIL FROM:<{self.sender}>\r\n"
                    "RCPT TO:<seen@example.org>\r\n"
                    "RCPT TO:<hidden@example.org>\r\n"
                    "RCPT TO:<folded@example.org>\r\n"
                    "DATA\r\n"
                    f"From: {self.sender}\r\nTo: seen@example.org\r\n"
                    "bcc: hidden@example.org,\r\n\tfolded@example.org\r\n"
                    "Subject: blind\r\n\r\n"
                    "Bcc: a body line that only looks like a field\r\n.\r\n"
                    "QUIT\r\n")
        result = self.check_sendmail("-bs", input=dialogue)
        self.assertIn("250 2.0.0 Ok: queued as", result.stdout)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(sorted(received.recipients),
                         ["folded@example.org", "hidden@example.org", "seen@example.org"])
        self.assertEqual(received.headers("Bcc"), [])
        self.assertNotIn(b"hidden@example.org", received.header_block())
        self.assertNotIn(b"folded@example.org", received.header_block())
        self.assertEqual(received.headers("Subject"), ["blind"])
        self.assertEqual(received.body(), b"Bcc: a body line that only looks like a field\n")

    def test_bs_refuses_commands_out_of_order(self):
        dialogue = ("MAIL FROM:<alice@example.org>\r\n"
                    "HELO client\r\n"
                    "RCPT TO:<one@example.org>\r\n"
                    "DATA\r\n"
                    "MAIL FROM:<not an address>\r\n"
                    "FROB\r\n"
                    "QUIT\r\n")
        result = self.check_sendmail("-bs", input=dialogue)
        codes = [line[:3] for line in result.stdout.split("\r\n") if line]
        self.assertEqual(codes, ["220", "503", "250", "503", "503", "553", "500", "221"],
                         result.stdout)

    def test_cron_without_bus_drops_then_delivers_once(self):
        sink = self.add_sink_account()
        self.outbox.stop_daemon()
        message = make_message([("From", self.sender), ("To", "cron@example.org"),
                                ("Subject", "from cron")])
        result = sendmail("-t", input=message, env=environment_without_bus())
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(len(maildrop_files()), 1, "the message is not in the maildrop")
        self.assertIsNone(self.outbox.daemon_pid(), "outbox-sendmail started the daemon")

        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.recipients, ["cron@example.org"])
        time.sleep(1)
        self.assertEqual(len(sink.messages()), 1, "delivered more than once")
        self.assertEqual(maildrop_files() + maildrop_files("claimed"), [])

    def test_maildrop_taken_while_running(self):
        sink = self.add_sink_account()
        self.outbox.check("status")  # the daemon runs
        message = make_message([("From", self.sender), ("To", "late@example.org"),
                                ("Subject", "while running")])
        result = sendmail("-t", input=message, env=environment_without_bus())
        self.assertEqual(result.rc, 0, result)
        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.recipients, ["late@example.org"])

    def test_invalid_maildrop_file_is_rejected_with_reason(self):
        self.outbox.check("status")
        name = f"{time.time_ns()}.bad"
        draft = maildrop_dir() / "tmp" / name
        draft.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft.write_bytes(b"not a maildrop file\n\nSubject: x\n\nx\n")
        os.rename(draft, maildrop_dir() / name)
        outboxtest.wait_until(lambda: name in maildrop_files("rejected"), 20,
                              "the file to be rejected")
        reason = (maildrop_dir() / "rejected" / f"{name}.error").read_text()
        self.assertIn("Not an Outbox maildrop file", reason)
        self.assertNotIn(name, maildrop_files())

    def test_claimed_file_already_queued_is_not_queued_again(self):
        self.add_pending_account()
        self.outbox.stop_daemon()
        message = make_message([("From", self.sender), ("To", "once@example.org"),
                                ("Subject", "crash once")])
        result = sendmail("-t", input=message, env=environment_without_bus())
        self.assertEqual(result.rc, 0, result)
        [name] = maildrop_files()
        saved = maildrop_dir().parent / f"saved-{name}"
        shutil.copyfile(maildrop_dir() / name, saved)

        self.outbox.start_daemon()
        outboxtest.wait_until(lambda: "crash once" in self.queued_subjects(), 20,
                              "the maildrop file to be queued")
        self.outbox.stop_daemon()
        # The state a crash leaves between the commit to the spool and the
        # removal of the claimed file.
        os.rename(saved, maildrop_dir() / "claimed" / name)

        self.outbox.start_daemon()
        self.addCleanup(self.outbox.stop_daemon)
        outboxtest.wait_until(lambda: not maildrop_files("claimed"), 20,
                              "the claimed file to be removed")
        self.assertEqual(self.queued_subjects().count("crash once"), 1)


if __name__ == "__main__":
    outboxtest.main()
