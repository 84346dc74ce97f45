# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Delivery status notifications (RFC 3461) end to end: what outbox send,
the Submit options and an account's dsn-notify ask for reaches Postfix's
smtp-sink (which offers DSN and dumps the MAIL and RCPT arguments it got);
a scripted server that offers no DSN gets the message without, and the
message says so, unless DSN is required: then it waits, saying what to do."""

from gi.repository import GLib

import outboxtest
from outboxtest import (EngineTestCase, ScriptedSmtpServer, call_outbox, dbus_error_of,
                        make_message, wait_sink_messages)

EX_USAGE = 64
NOTIFY_WORDS = "give never, or one or more of success, failure and delay"


class DsnTest(EngineTestCase):
    def message(self, to="bob@example.org"):
        return make_message([("From", self.SENDER), ("To", to),
                             ("Subject", self.id().rsplit(".", 1)[-1])])

    def sink_account(self):
        sink = self.start_sink()
        return self.add_engine_account(sink.url()), sink

    def scripted_account(self, dsn=False, settings=None, **kwargs):
        server = self.start_scripted(dsn=dsn, **kwargs)
        account = self.add_engine_account(server.url(), settings=settings or {"retry-first": 300})
        return account, server

    def send(self, account, *args, to="bob@example.org"):
        result = self.outbox.check("send", "-a", account, *args, input=self.message(to))
        return result.stdout.strip()

    def test_sink_gets_ret_envid_notify_and_orcpt(self):
        account, sink = self.sink_account()
        message_id = self.send(account, "--notify", "success,failure", "--ret", "hdrs",
                               "--envid", "Q42.batch", to="bob+dsn@example.org")
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)

        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.mail_args, "RET=HDRS ENVID=Q42.batch")
        self.assertEqual(received.rcpt_args_of("bob+dsn@example.org"),
                         "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bdsn@example.org")
        self.assertEqual(state.get("notify"), ["success", "failure"], state)
        self.assertEqual(state.get("ret"), "hdrs", state)
        self.assertEqual(state.get("envid"), "Q42.batch", state)
        self.assertNotIn("dsn_not_offered", state)
        self.assertNotIn("dsn_required", state)

        shown = self.outbox.check("show", message_id).stdout
        self.assertRegex(shown, r"Notify: +success, failure\n")
        self.assertRegex(shown, r"Return: +hdrs\n")
        self.assertRegex(shown, r"Envelope ID: +Q42.batch\n")
        self.assertRegex(shown, r"DSN: +asked of the server, which offers it\n")

    def test_envid_goes_xtext_encoded(self):
        account, sink = self.sink_account()
        message_id = self.send(account, "--notify", "never", "--envid", "batch=7 +x")
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")

        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.mail_args, "ENVID=batch+3D7+20+2Bx")
        self.assertEqual(received.rcpt_args_of("bob@example.org"),
                         "NOTIFY=NEVER ORCPT=rfc822;bob@example.org")
        self.assertEqual(self.outbox.show(message_id).get("envid"), "batch=7 +x")

    def test_no_dsn_asked_no_parameters(self):
        account, sink = self.sink_account()
        message_id = self.send(account)
        state = self.outbox.wait_final(message_id)

        [received] = wait_sink_messages(sink, 1)
        self.assertEqual(received.mail_args, "")
        self.assertEqual(received.rcpt_args_of("bob@example.org"), "")
        for key in ("notify", "ret", "envid", "dsn_required", "dsn_not_offered"):
            self.assertNotIn(key, state)
        self.assertNotIn("DSN", self.outbox.check("show", message_id).stdout)

    def test_account_default_notify_applies(self):
        account, sink = self.sink_account()
        self.outbox.check("account", "update", account, "--dsn-notify", "failure,delay")
        shown = self.outbox.check("account", "show", account).stdout
        self.assertRegex(shown, r"DSN notify: +failure, delay\n")
        self.assertRegex(shown, r"DSN required: +no\n")

        by_default = self.send(account)
        overridden = self.send(account, "--notify", "never", to="carol@example.org")
        self.assertEqual(self.outbox.wait_final(by_default)["state"], "sent")
        self.assertEqual(self.outbox.wait_final(overridden)["state"], "sent")

        received = wait_sink_messages(sink, 2)
        args = {m.recipients[0]: m.rcpt_args[0] for m in received}
        self.assertEqual(args["bob@example.org"],
                         "NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@example.org")
        self.assertEqual(args["carol@example.org"],
                         "NOTIFY=NEVER ORCPT=rfc822;carol@example.org")
        # The message records what it asked.
        self.assertEqual(self.outbox.show(by_default).get("notify"), ["failure", "delay"])

        self.outbox.check("account", "update", account, "--dsn-notify", "")
        self.assertNotIn("DSN notify", self.outbox.check("account", "show", account).stdout)

    def test_not_offered_sends_without_and_says_so(self):
        account, server = self.scripted_account()
        message_id = self.send(account, "--notify", "failure", "--ret", "full", "--envid", "e1")
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)

        [mail] = server.events("mail")
        self.assertEqual(mail["args"], f"<{self.SENDER}>")
        [rcpt] = server.events("rcpt")
        self.assertEqual(rcpt["args"], "<bob@example.org>")
        self.assertIs(state.get("dsn_not_offered"), True, state)
        self.assertEqual(state.get("notify"), ["failure"], state)
        shown = self.outbox.check("show", message_id).stdout
        self.assertRegex(shown, r"DSN: +the server does not offer it: sent without NOTIFY, "
                                r"RET and ENVID\n")

    def test_required_waits_then_retry_without_sends(self):
        account, server = self.scripted_account()
        self.outbox.check("account", "update", account, "--dsn-required")
        message_id = self.send(account, "--notify", "failure")
        state = self.outbox.wait_state(message_id, "deferred")

        self.assertIn("127.0.0.1 does not offer DSN", state.get("last_reply", ""), state)
        self.assertIn(f"account {account} asks for dsn-required", state["last_reply"])
        self.assertIn(f"outbox account update {account} --no-dsn-required, then outbox retry "
                      f"{message_id}", state["last_reply"])
        self.assertRecipientStates(state, {"bob@example.org": "deferred"})
        self.assertIn("does not offer DSN", state["recipients"][0].get("reply", ""))
        self.assertEqual(server.events("mail"), [], "something was sent")
        self.assertNotIn("dsn_not_offered", state)

        self.outbox.check("account", "update", account, "--no-dsn-required")
        self.outbox.check("retry", message_id)
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)
        self.assertEqual(len(server.wait_messages(1)), 1)
        self.assertIs(state.get("dsn_not_offered"), True, state)

    def test_required_by_the_message_says_so(self):
        account, server = self.scripted_account()
        message_id = self.send(account, "--notify", "success", "--dsn-required")
        state = self.outbox.wait_state(message_id, "deferred")

        self.assertIs(state.get("dsn_required"), True, state)
        self.assertIn("the message asks for dsn-required", state.get("last_reply", ""), state)
        self.assertIn(f"outbox cancel {message_id}", state["last_reply"])
        self.assertEqual(server.events("mail"), [])
        self.assertRegex(self.outbox.check("show", message_id).stdout, r"DSN required: +yes\n")

    def test_not_required_by_the_message_overrides_the_account(self):
        account, server = self.scripted_account(settings={"retry-first": 300,
                                                          "dsn-required": True})
        message_id = self.send(account, "--notify", "failure", "--no-dsn-required")
        state = self.outbox.wait_final(message_id)
        self.assertEqual(state["state"], "sent", state)
        self.assertIs(state.get("dsn_required"), False, state)
        self.assertIs(state.get("dsn_not_offered"), True, state)

    def test_offered_goes_with_the_parameters(self):
        account, server = self.scripted_account(dsn=True)
        message_id = self.send(account, "--notify", "delay", "--ret", "full")
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")

        [mail] = server.events("mail")
        self.assertEqual(mail["args"], f"<{self.SENDER}> RET=FULL")
        [rcpt] = server.events("rcpt")
        self.assertEqual(rcpt["args"], "<bob@example.org> NOTIFY=DELAY ORCPT=rfc822;bob@example.org")

    def test_server_that_offers_dsn_and_refuses_notify(self):
        account, server = self.scripted_account(
            rcpt_dsn_reply="555 5.5.4 Unsupported option: NOTIFY")
        message_id = self.send(account, "--notify", "failure")
        state = self.outbox.wait_final(message_id)

        self.assertEqual(state["state"], "failed", state)
        [recipient] = state["recipients"]
        self.assertEqual(recipient.get("reply_code"), 555, state)
        self.assertIn("Unsupported option: NOTIFY", recipient.get("reply", ""))
        self.assertEqual(server.events("message"), [])
        # The next message, asking nothing of DSN, goes through.
        plain = self.send(account)
        self.assertEqual(self.outbox.wait_final(plain)["state"], "sent")

    def test_cli_refuses_bad_values(self):
        account, _ = self.sink_account()
        cases = [
            (["--notify", "bogus"], f"--notify: “bogus” is not a condition to notify of: "
                                    f"{NOTIFY_WORDS}"),
            (["--notify", "never,failure"], "never cannot go with success, failure or delay"),
            (["--ret", "headers"], "--ret: “headers” is not what a notification can return: "
                                   "give full (the whole message) or hdrs"),
            (["--envid", "x" * 101], "--envid: the envelope ID is 101 characters; give 1 to 100"),
            (["--dsn-required", "--no-dsn-required"], "exclude each other"),
        ]
        for args, says in cases:
            with self.subTest(args=args[:2]):
                result = self.outbox.run("send", "-a", account, *args, input=self.message())
                self.assertEqual(result.rc, EX_USAGE, result)
                self.assertIn(says, result.stderr)
        result = self.outbox.run("account", "update", account, "--dsn-notify", "always")
        self.assertEqual(result.rc, EX_USAGE, result)
        self.assertIn(f"--dsn-notify: “always” is not a condition to notify of: {NOTIFY_WORDS}",
                      result.stderr)

    def test_submit_refuses_bad_options(self):
        account, _ = self.sink_account()
        cases = [
            ({"notify": GLib.Variant("as", ["bogus"])},
             f"Option “notify”: “bogus” is not a condition to notify of: {NOTIFY_WORDS}"),
            ({"notify": GLib.Variant("as", [])}, "Option “notify”: no condition to notify of"),
            ({"notify": GLib.Variant("s", "failure")}, "Option “notify” must be of type “as”"),
            ({"ret": GLib.Variant("s", "headers")}, "Option “ret”: “headers” is not what"),
            ({"envid": GLib.Variant("s", "caf\u00e9")},
             "Option “envid”: the envelope ID holds a character that is not printable ASCII"),
            ({"envid": GLib.Variant("s", "+" * 34)},
             "Option “envid”: the envelope ID is 102 characters once xtext-encoded"),
        ]
        for options, says in cases:
            with self.subTest(options=list(options)):
                options = dict(options, account=GLib.Variant("s", account))
                name, text = dbus_error_of(
                    call_outbox, outboxtest.QUEUE_IFACE, "SubmitData",
                    GLib.Variant("(aya{sv})", (self.message(), options)), "(s)")
                self.assertEqual(name, "org.outbox.Outbox1.Error.InvalidArgs", text)
                self.assertIn(says, text)

    def test_submit_options_reach_get(self):
        server = ScriptedSmtpServer(dsn=True).start()
        self.addCleanup(server.stop)
        account = self.add_engine_account(server.url())
        options = {"account": GLib.Variant("s", account),
                   "notify": GLib.Variant("as", ["DELAY", "success"]),
                   "ret": GLib.Variant("s", "FULL"),
                   "envid": GLib.Variant("s", "over D-Bus"),
                   "dsn-required": GLib.Variant("b", True)}
        [message_id] = call_outbox(outboxtest.QUEUE_IFACE, "SubmitData",
                                   GLib.Variant("(aya{sv})", (self.message(), options)), "(s)")
        self.assertEqual(self.outbox.wait_final(message_id)["state"], "sent")
        [details] = call_outbox(outboxtest.QUEUE_IFACE, "Get", GLib.Variant("(s)", (message_id,)),
                                "(a{sv})")
        self.assertEqual(details["notify"], ["success", "delay"])
        self.assertEqual(details["ret"], "full")
        self.assertEqual(details["envid"], "over D-Bus")
        self.assertIs(details["dsn-required"], True)
        self.assertNotIn("dsn-not-offered", details)
        [mail] = server.events("mail")
        self.assertEqual(mail["args"], f"<{self.SENDER}> RET=FULL ENVID=over+20D-Bus")

    def test_queue_json_writes_notify_as_show_does(self):
        account, _ = self.scripted_account()
        self.outbox.check("account", "update", account, "--dsn-required")
        message_id = self.send(account, "--notify", "success,delay")
        self.outbox.wait_state(message_id, "deferred")

        # The listing is written straight from the pages, show through
        # json-glib: the same layout, one level deeper in the listing.
        listing = self.outbox.check("queue", "--json").stdout
        shown = self.outbox.check("show", message_id, "--json").stdout
        self.assertIn('\n      "notify" : [\n        "success",\n        "delay"\n      ],\n',
                      listing)
        self.assertIn('\n  "notify" : [\n    "success",\n    "delay"\n  ],\n', shown)


if __name__ == "__main__":
    outboxtest.main()
