# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""What the desktop reads about outbox-window: the desktop file passes
desktop-file-validate, the AppStream metainfo passes appstreamcli validate
--no-net (as built, and with a screenshot URL, which a release build gets
from -Draw_url_base), the D-Bus activation file starts the window as a
service, and the committed screenshot and icons are where the metainfo and
the desktop file say."""

import configparser
import os
import pathlib
import re
import subprocess
import tempfile
import unittest

import outboxtest

SOURCE_DIR = pathlib.Path(os.environ["OUTBOX_SOURCE_DIR"])
DATA = SOURCE_DIR / "data"
APP_ID = "org.outbox.Outbox"
DESKTOP_FILE = DATA / f"{APP_ID}.desktop"
BUILT_METAINFO = outboxtest.BUILD_DIR / "data" / f"{APP_ID}.metainfo.xml"
SERVICE_FILE = outboxtest.BUILD_DIR / "data" / f"{APP_ID}.service"
# Only for this check: what a forge's raw file URL looks like.
SAMPLE_BASE = "https://example.org/outbox/raw/main"


def run(*command):
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def screenshots_block(base):
    return "\n".join([
        "  <screenshots>",
        '    <screenshot type="default">',
        "      <caption>A failed, a held and a scheduled message</caption>",
        f"      <image>{base}/docs/outbox-window.png</image>",
        "    </screenshot>",
        "  </screenshots>"])


class WindowDataTest(unittest.TestCase):
    def assertValid(self, result, what):
        self.assertEqual(result.returncode, 0, f"{what}:\n{result.stdout}{result.stderr}")

    def test_desktop_file_validates(self):
        result = run("desktop-file-validate", str(DESKTOP_FILE))
        self.assertValid(result, "desktop-file-validate")
        self.assertEqual(result.stdout + result.stderr, "", "desktop-file-validate had remarks")

    def test_desktop_file_is_dbus_activatable(self):
        entry = configparser.ConfigParser(interpolation=None)
        entry.optionxform = str
        entry.read(DESKTOP_FILE, encoding="utf-8")
        desktop = entry["Desktop Entry"]
        self.assertEqual(desktop["DBusActivatable"], "true")
        self.assertEqual(desktop["Icon"], APP_ID)
        self.assertTrue((DATA / "icons/hicolor/scalable/apps" / f"{APP_ID}.svg").is_file())
        self.assertTrue((DATA / "icons/hicolor/symbolic/apps" / f"{APP_ID}-symbolic.svg").is_file())

    def test_service_file_starts_the_window_as_a_service(self):
        service = configparser.ConfigParser(interpolation=None)
        service.optionxform = str
        service.read(SERVICE_FILE, encoding="utf-8")
        self.assertEqual(service["D-BUS Service"]["Name"], APP_ID)
        self.assertRegex(service["D-BUS Service"]["Exec"],
                         r"^/\S*/outbox-window --gapplication-service$")

    def test_metainfo_as_built_validates(self):
        self.assertValid(run("appstreamcli", "validate", "--no-net", str(BUILT_METAINFO)),
                         "appstreamcli validate")

    def test_metainfo_with_screenshot_validates(self):
        template = (DATA / f"{APP_ID}.metainfo.xml.in").read_text(encoding="utf-8")
        self.assertIn("@SCREENSHOTS@", template)
        with tempfile.TemporaryDirectory() as work:
            path = pathlib.Path(work) / f"{APP_ID}.metainfo.xml"
            path.write_text(template.replace("@SCREENSHOTS@", screenshots_block(SAMPLE_BASE)),
                            encoding="utf-8")
            self.assertValid(run("appstreamcli", "validate", "--no-net", str(path)),
                             "appstreamcli validate with a screenshot")

    def test_metainfo_names_the_launchable_and_the_committed_screenshot(self):
        template = (DATA / f"{APP_ID}.metainfo.xml.in").read_text(encoding="utf-8")
        self.assertIn(f'<launchable type="desktop-id">{APP_ID}.desktop</launchable>', template)
        self.assertIn("<content_rating", template)
        self.assertRegex(template, r"<release version=\"[0-9.]+\" date=")
        meson = (DATA / "meson.build").read_text(encoding="utf-8")
        [image] = re.findall(r"'/(docs/[^']+\.png)</image>'", meson)
        png = SOURCE_DIR / image
        self.assertTrue(png.is_file(), f"{image} is not committed")
        self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    unittest.main(verbosity=2)
