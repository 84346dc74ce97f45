# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Accounts.Discover and `outbox account discover` through the real daemon.

The sources themselves (SRV, autoconfig, the XML parser) are unit-tested in
tests/test-discover.c; here the daemon's wiring: a local ISP file is found,
nothing found is a clear error, a bad address is refused, and the CLI
proposes the command to add the account."""

import json
import os
import pathlib

from gi.repository import GLib

import outboxtest
from outboxtest import ACCOUNTS_IFACE, OutboxTestCase, call_outbox, dbus_error_of

ISP_FILE = """<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="provider.test">
    <domain>provider.test</domain>
    <incomingServer type="imap">
      <hostname>imap.provider.test</hostname><port>993</port>
      <socketType>SSL</socketType><username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.provider.test</hostname><port>587</port>
      <socketType>STARTTLS</socketType><username>%EMAILLOCALPART%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"""


def isp_dir():
    data = pathlib.Path(os.environ["XDG_DATA_HOME"])
    # The spool lives in data/outbox too: keep it private, as the daemon wants.
    (data / "outbox").mkdir(mode=0o700, exist_ok=True)
    (data / "outbox" / "isp").mkdir(mode=0o700, exist_ok=True)
    return data / "outbox" / "isp"


class DiscoverTest(OutboxTestCase):
    @classmethod
    def setUpClass(cls):
        (isp_dir() / "provider.test.xml").write_text(ISP_FILE)

    def discover(self, address):
        [settings] = call_outbox(ACCOUNTS_IFACE, "Discover", GLib.Variant("(s)", (address,)),
                                 reply_type="(a{sv})", timeout=120)
        return settings

    def test_local_isp_file_is_proposed(self):
        settings = self.discover("ann@provider.test")
        self.assertEqual(settings["source"], "isp-file")
        self.assertEqual(settings["smtp"], "smtp://ann@smtp.provider.test:587")
        self.assertEqual(settings["imap"], "imaps://ann%40provider.test@imap.provider.test:993")
        self.assertNotIn("pop3", settings)

    def test_nothing_found_says_what_to_do(self):
        name, message = dbus_error_of(self.discover, "ann@unknown-provider.test")
        self.assertEqual(name, "org.outbox.Outbox1.Error.Failed")
        self.assertIn("unknown-provider.test", message)
        self.assertIn("--smtp", message)

    def test_bad_address_refused(self):
        name, _ = dbus_error_of(self.discover, "not an address")
        self.assertEqual(name, "org.outbox.Outbox1.Error.InvalidAddress")

    def test_cli_proposes_the_account(self):
        result = self.outbox.run("account", "discover", "ann@provider.test")
        self.assertEqual(result.rc, 0, result.stderr)
        self.assertIn("isp-file", result.stdout)
        self.assertIn("outbox account add NAME --from ann@provider.test "
                      "--smtp smtp://ann@smtp.provider.test:587", result.stdout)
        as_json = json.loads(self.outbox.check("account", "discover", "--json",
                                               "ann@provider.test").stdout)
        self.assertEqual(as_json["source"], "isp-file")
        self.assertEqual(as_json["smtp"], "smtp://ann@smtp.provider.test:587")

    def test_cli_nothing_found_exits_non_zero(self):
        result = self.outbox.run("account", "discover", "ann@unknown-provider.test")
        self.assertNotEqual(result.rc, 0)
        self.assertIn("No settings found", result.stderr)


if __name__ == "__main__":
    outboxtest.main()
