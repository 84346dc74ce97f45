# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Real programs that call sendmail (mutt, git send-email, bsd-mailx) hand
their mail to outbox-sendmail; what reaches Postfix's smtp-sink is checked:
envelope, headers, and no Bcc."""

import os
import pathlib
import shutil
import subprocess
import tempfile

import outboxtest
from outboxtest import OUTBOX_SENDMAIL, OutboxTestCase, wait_sink_messages

MUTT = shutil.which("mutt")
GIT = shutil.which("git")
MAILX = "/usr/bin/bsd-mailx"


def git_send_email_available():
    if GIT is None:
        return False
    completed = subprocess.run([GIT, "send-email", "--help"], capture_output=True)
    return b"send-email" in completed.stdout + completed.stderr and completed.returncode == 0


class SendmailClientsTest(OutboxTestCase):
    def setUp(self):
        super().setUp()
        self.sender = f"{self.account_name()}@example.org"
        self.sink = self.start_sink()
        # The default account, for clients that write no From.
        self.outbox.add_account(self.account_name(), self.sender, self.sink.url(), default=True)
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="client-"))
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)

    def run_client(self, command, **kwargs):
        completed = subprocess.run(command, capture_output=True, timeout=120, **kwargs)
        self.assertEqual(completed.returncode, 0,
                         f"{command[0]} failed: {completed.stderr.decode(errors='replace')}")
        return completed

    def test_mutt_batch_mode(self):
        if MUTT is None:
            self.skipTest("mutt is not installed (tools/install-deps installs it)")
        muttrc = self.work / "muttrc"
        muttrc.write_text(f'set sendmail="{OUTBOX_SENDMAIL}"\n'
                          f'set from="Alice Mutt <{self.sender}>"\n'
                          "set use_from=yes\nset record=\"\"\nset copy=no\n"
                          "set charset=utf-8\nset send_charset=utf-8\n")
        self.run_client([MUTT, "-n", "-F", str(muttrc), "-s", "from mutt",
                         "-b", "hidden@example.org", "to@example.org"],
                        input=b"Sent by mutt.\n")
        [received] = wait_sink_messages(self.sink, 1)
        self.assertEqual(sorted(received.recipients), ["hidden@example.org", "to@example.org"])
        self.assertEqual(received.sender, self.sender)
        self.assertEqual(received.headers("Subject"), ["from mutt"])
        self.assertEqual(received.headers("From"), [f"Alice Mutt <{self.sender}>"])
        self.assertEqual(received.headers("Bcc"), [])
        self.assertNotIn(b"hidden@example.org", received.data)
        self.assertIn(b"Sent by mutt.", received.body())

    def make_patch(self):
        repo = self.work / "repo"
        env = dict(os.environ, GIT_AUTHOR_NAME="Alice Git", GIT_AUTHOR_EMAIL=self.sender,
                   GIT_COMMITTER_NAME="Alice Git", GIT_COMMITTER_EMAIL=self.sender)
        self.run_client([GIT, "init", "-q", str(repo)], env=env)
        (repo / "README").write_text("hello\n")
        self.run_client([GIT, "-C", str(repo), "add", "README"], env=env)
        self.run_client([GIT, "-C", str(repo), "commit", "-q", "-m", "Add a README"], env=env)
        self.run_client([GIT, "-C", str(repo), "format-patch", "-q", "-1", "-o",
                         str(self.work / "patches")], env=env)
        [patch] = sorted((self.work / "patches").iterdir())
        return repo, env, patch

    def test_git_send_email(self):
        if not git_send_email_available():
            self.skipTest("git send-email is not installed (package git-email)")
        repo, env, patch = self.make_patch()
        self.run_client([GIT, "-C", str(repo), "send-email", "--quiet",
                         f"--sendmail-cmd={OUTBOX_SENDMAIL}", f"--from=Alice Git <{self.sender}>",
                         "--to=list@example.org", "--bcc=hidden@example.org",
                         "--confirm=never", "--suppress-cc=all", str(patch)], env=env)
        [received] = wait_sink_messages(self.sink, 1)
        self.assertEqual(sorted(received.recipients), ["hidden@example.org", "list@example.org"])
        self.assertEqual(received.headers("Subject"), ["[PATCH] Add a README"])
        self.assertEqual(received.headers("Bcc"), [])
        self.assertNotIn(b"hidden@example.org", received.data)
        self.assertIn(b"+hello", received.body())

    def test_bsd_mailx(self):
        if not os.access(MAILX, os.X_OK):
            self.skipTest("bsd-mailx is not installed (tools/install-deps installs it)")
        mailrc = self.work / "mailrc"
        mailrc.write_text(f"set sendmail={OUTBOX_SENDMAIL}\n")
        env = dict(os.environ, MAILRC=str(mailrc))
        self.run_client([MAILX, "-s", "from mailx", "-b", "hidden@example.org",
                         "to@example.org"], input=b"Sent by mailx.\n", env=env)
        [received] = wait_sink_messages(self.sink, 1)
        self.assertEqual(sorted(received.recipients), ["hidden@example.org", "to@example.org"])
        self.assertEqual(received.headers("Subject"), ["from mailx"])
        self.assertEqual(received.headers("From"), [self.sender])
        self.assertEqual(received.headers("Bcc"), [])
        self.assertNotIn(b"hidden@example.org", received.data)


if __name__ == "__main__":
    outboxtest.main()
