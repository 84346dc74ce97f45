# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""`meson install` into a DESTDIR puts every file where the man pages say:
outboxd and outbox-discover-helper in libexecdir (outbox-oauth2-helper too,
which the daemon does not run yet), outbox and outbox-sendmail in bindir,
the D-Bus activation file and the systemd user unit pointing at outboxd,
the man pages, the bash completion, and libOutbox: the library, its
headers, outbox-1.pc, Outbox-1.gir, the typelib and the API reference;
outbox-window with its D-Bus activation file, desktop file, icons and
metainfo."""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import outboxtest
from outboxtest import BUILD_DIR

BUS_NAME = "org.outbox.Outbox1"
BASH_COMPLETION = pathlib.Path("/usr/share/bash-completion/bash_completion")
MAN_PAGES = [("man1", "outbox.1"), ("man8", "outboxd.8"), ("man8", "outbox-sendmail.8"),
             ("man5", "outbox-accounts.conf.5")]


def build_options():
    options = json.loads((BUILD_DIR / "meson-info" / "intro-buildoptions.json").read_text())
    return {o["name"]: o["value"] for o in options}


def under(prefix, directory):
    """A meson directory option (relative to prefix, or absolute)."""
    return pathlib.Path(prefix) / directory


def read_ini(path):
    """A .service file as {key: value} (keys of every section)."""
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.destdir = pathlib.Path(tempfile.mkdtemp(prefix="install-"))
        completed = subprocess.run(["meson", "install", "-C", str(BUILD_DIR), "--no-rebuild",
                                    "--destdir", str(cls.destdir)],
                                   capture_output=True, text=True, timeout=300)
        if completed.returncode != 0:
            raise AssertionError(f"meson install failed:\n{completed.stdout}{completed.stderr}")
        cls.options = build_options()
        cls.prefix = pathlib.Path(cls.options["prefix"])
        cls.libexecdir = under(cls.prefix, cls.options["libexecdir"])
        cls.bindir = under(cls.prefix, cls.options["bindir"])
        cls.mandir = under(cls.prefix, cls.options["mandir"])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, ignore_errors=True)

    def installed(self, path):
        """The file that should be at path on the target system."""
        return self.destdir / pathlib.Path(path).relative_to("/")

    def find_installed(self, name):
        found = [p for p in self.destdir.rglob(name) if p.is_file()]
        self.assertEqual(len(found), 1, f"{name} installed {len(found)} times: {found}")
        return found[0]

    def target_path(self, installed):
        return pathlib.Path("/") / installed.relative_to(self.destdir)

    def assertExecutable(self, path):
        installed = self.installed(path)
        self.assertTrue(installed.is_file(), f"{path} is not installed")
        self.assertTrue(os.access(installed, os.X_OK), f"{path} is not executable")

    def test_outboxd_is_in_libexecdir(self):
        self.assertExecutable(self.libexecdir / "outboxd")
        self.assertFalse(self.installed(self.bindir / "outboxd").exists(),
                         "outboxd is on PATH")

    def test_discover_helper_is_beside_outboxd(self):
        # outboxd runs it from the directory of its own executable.
        self.assertExecutable(self.libexecdir / "outbox-discover-helper")
        self.assertFalse(self.installed(self.bindir / "outbox-discover-helper").exists(),
                         "outbox-discover-helper is on PATH")

    def test_oauth2_helper_is_beside_outboxd(self):
        # Likewise: outboxd refreshes OAuth2 tokens through it.
        self.assertExecutable(self.libexecdir / "outbox-oauth2-helper")
        self.assertFalse(self.installed(self.bindir / "outbox-oauth2-helper").exists(),
                         "outbox-oauth2-helper is on PATH")

    def test_commands_are_in_bindir(self):
        self.assertExecutable(self.bindir / "outbox")
        self.assertExecutable(self.bindir / "outbox-sendmail")

    def test_sendmail_links_are_off_by_default(self):
        if self.options.get("sendmail_links"):
            self.skipTest("built with -Dsendmail_links=true")
        self.assertEqual(list(self.destdir.rglob("sendmail")), [])
        self.assertEqual(list(self.destdir.rglob("mailq")), [])

    def test_dbus_activation_file(self):
        service = self.find_installed(f"{BUS_NAME}.service")
        self.assertEqual(service.parent.name, "services")
        self.assertEqual(service.parent.parent.name, "dbus-1")
        values = read_ini(service)
        self.assertEqual(values.get("Name"), BUS_NAME)
        self.assertEqual(values.get("Exec"), str(self.libexecdir / "outboxd"))
        self.assertEqual(values.get("SystemdService"), "outboxd.service")

    def test_window(self):
        """outbox-window in bindir, D-Bus activatable beside the daemon,
        with its desktop file, icons and metainfo in datadir."""
        self.assertExecutable(self.bindir / "outbox-window")
        service = self.find_installed("org.outbox.Outbox.service")
        daemon_service = self.find_installed(f"{BUS_NAME}.service")
        self.assertEqual(service.parent, daemon_service.parent)
        values = read_ini(service)
        self.assertEqual(values.get("Name"), "org.outbox.Outbox")
        self.assertEqual(values.get("Exec"),
                         f"{self.bindir / 'outbox-window'} --gapplication-service")
        datadir = self.installed(under(self.prefix, self.options["datadir"]))
        for path in ("applications/org.outbox.Outbox.desktop",
                     "metainfo/org.outbox.Outbox.metainfo.xml",
                     "icons/hicolor/scalable/apps/org.outbox.Outbox.svg",
                     "icons/hicolor/symbolic/apps/org.outbox.Outbox-symbolic.svg"):
            self.assertTrue((datadir / path).is_file(), f"{path} is not installed")

    def test_systemd_user_unit(self):
        unit = self.find_installed("outboxd.service")
        self.assertEqual(self.target_path(unit).parent.parts[-2:], ("systemd", "user"))
        values = read_ini(unit)
        self.assertEqual(values.get("Type"), "dbus")
        self.assertEqual(values.get("BusName"), BUS_NAME)
        self.assertEqual(values.get("ExecStart"), str(self.libexecdir / "outboxd"))

    def test_man_pages(self):
        for section, name in MAN_PAGES:
            page = self.installed(self.mandir / section / name)
            self.assertTrue(page.is_file(), f"{section}/{name} is not installed")
            self.assertIn(".TH", page.read_text(), f"{name} is not a man page")

    def man_text(self, section, name):
        """A page's roff source without the zero-width escapes scdoc puts
        after periods."""
        return self.installed(self.mandir / section / name).read_text().replace("\\&", "")

    def test_man_pages_name_the_installed_files(self):
        outboxd = self.man_text("man8", "outboxd.8")
        for word in ("libexec", "outbox-discover-helper", "systemd/user/outboxd.service",
                     f"dbus-1/services/{BUS_NAME}.service", "outbox/accounts.conf"):
            self.assertIn(word, outboxd)
        self.assertIn("outbox/maildrop/", self.man_text("man8", "outbox-sendmail.8"))

    def test_bash_completion(self):
        [completion] = [p for p in self.destdir.rglob("completions/outbox")]
        self.assertEqual(self.target_path(completion).parent.parts[-2:],
                         ("bash-completion", "completions"))
        if not BASH_COMPLETION.exists():
            self.skipTest("bash-completion is not installed")
        script = (f"source {BASH_COMPLETION}; source {completion}; "
                  "COMP_WORDS=(outbox acc); COMP_CWORD=1; COMP_LINE='outbox acc'; "
                  "COMP_POINT=${#COMP_LINE}; _outbox; echo \"${COMPREPLY[*]}\"")
        completed = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
        self.assertEqual(completed.stdout.split(), ["account"], completed.stderr)

    def test_installed_sendmail_runs(self):
        completed = subprocess.run([str(self.installed(self.bindir / "outbox-sendmail")),
                                    "--version"], capture_output=True, text=True)
        self.assertEqual(completed.returncode, 0, completed.stderr)
        self.assertIn("outbox-sendmail", completed.stdout)


    def test_client_library(self):
        libdir = under(self.prefix, self.options["libdir"])
        includedir = under(self.prefix, self.options["includedir"])
        datadir = under(self.prefix, self.options["datadir"])
        library = self.installed(libdir / "liboutbox-1.so.0")
        self.assertTrue(library.exists(), "liboutbox-1.so.0 is not installed")
        for header in ("outbox.h", "outbox-client.h", "outbox-message.h", "outbox-account.h",
                       "outbox-enums.h"):
            self.assertTrue(self.installed(includedir / "outbox-1" / "outbox" / header).is_file(),
                            f"{header} is not installed")
        pc = self.find_installed("outbox-1.pc").read_text()
        self.assertIn("Name: outbox-1", pc)
        self.assertIn("-I${includedir}/outbox-1", pc)
        gir = self.find_installed("Outbox-1.gir").read_text()
        # (a sanitizer build lists the sanitizer runtimes first)
        self.assertRegex(gir, r'shared-library="([^"]*,)?liboutbox-1\.so\.0"')
        self.assertIn('<class name="Client"', gir)
        self.find_installed("Outbox-1.typelib")
        reference = self.installed(datadir / "doc" / "outbox-1")
        self.assertTrue((reference / "class.Client.html").is_file(), "no API reference")
        self.assertIn("submit_bytes_sync",
                      (reference / "method.Client.submit_bytes_sync.html").read_text())


if __name__ == "__main__":
    outboxtest.main()
