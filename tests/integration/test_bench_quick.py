# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""tools/bench --quick runs against this build and writes a complete JSON
report.  No figure is checked: timing belongs to tools/bench, not to the
tests."""

import json
import os
import pathlib
import subprocess
import tempfile
import unittest

import outboxtest

SOURCE_DIR = pathlib.Path(os.environ["OUTBOX_SOURCE_DIR"])
BENCH = SOURCE_DIR / "tools" / "bench"

TOP_KEYS = ("format", "date", "quick", "repetitions", "message_size", "settings",
            "machine", "git", "build", "peers", "outbox", "table", "duration_seconds")
MACHINE_KEYS = ("nproc", "memory_bytes")
GIT_KEYS = ("revision", "dirty")
SMTP_SOURCE_KEYS = ("new_connection_per_second", "one_connection_per_second",
                    "four_connections_per_second")
MSMTP_KEYS = ("messages", "per_second")
POSTFIX_KEYS = ("idle_rss_bytes", "idle_pss_bytes", "drain_per_second",
                "smtp_accepted_per_second", "smtp_end_to_end_per_second",
                "sendmail_submitted_per_second", "sendmail_end_to_end_per_second")
SUBMIT_DRAIN_KEYS = ("messages", "drain_per_second", "submit_data_sequential_per_second",
                     "submit_data_pipelined_per_second")
PER_PROCESS_KEYS = ("tool", "messages", "submitted_per_second", "end_to_end_per_second")
MEMORY_KEYS = ("idle_rss_bytes", "idle_pss_bytes", "idle_hwm_bytes")
STORM_KEYS = ("messages", "connections", "seconds_until_all_deferred")
CHUNKING_KEYS = ("message_bytes", "bdat_seconds", "bdat_cpu_seconds", "data_seconds",
                 "data_cpu_seconds")
SCALE_ENTRY_KEYS = ("queued", "rss_queued_bytes", "queue_json_median_seconds",
                    "startup_median_seconds", "startup_after_kill_first_submit_seconds",
                    "startup_after_kill_seconds", "list_plain_seconds")
ROW_KEYS = ("figure", "unit", "better", "outbox", "peer", "peer_value", "ratio")


class BenchQuickTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.output = pathlib.Path(tempfile.mkdtemp(prefix="bench-")) / "results.json"
        cls.completed = subprocess.run(
            [str(BENCH), "--quick", "--build-dir", str(outboxtest.BUILD_DIR),
             "--output", str(cls.output)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
        try:
            cls.report = json.loads(cls.output.read_text())
        except (OSError, ValueError):
            cls.report = None

    @classmethod
    def tearDownClass(cls):
        cls.output.unlink(missing_ok=True)
        cls.output.parent.rmdir()

    def section(self, *path):
        self.assertIsNotNone(self.report, f"no JSON report: {self.completed.stderr}")
        value = self.report
        for key in path:
            self.assertIn(key, value, f"no {'.'.join(path)} in the report")
            value = value[key]
        return value

    def assertFigures(self, section, keys):
        self.assertNotIn("error", section, f"this part of the bench failed: {section}")
        for key in keys:
            self.assertIn(key, section)

    def test_exits_successfully(self):
        self.assertEqual(self.completed.returncode, 0, self.completed.stderr)

    def test_prints_the_table(self):
        self.assertIn("drain 100 held", self.completed.stdout)

    def test_report_has_every_top_level_key(self):
        for key in TOP_KEYS:
            self.assertIn(key, self.section())

    def test_report_is_quick(self):
        self.assertEqual((self.section("quick"), self.section("repetitions")), (True, 1))

    def test_report_records_the_machine_and_revision(self):
        self.assertFigures(self.section("machine"), MACHINE_KEYS)
        self.assertFigures(self.section("git"), GIT_KEYS)

    def test_smtp_source_figures(self):
        self.assertFigures(self.section("peers", "smtp_source"), SMTP_SOURCE_KEYS)

    def test_msmtp_figures(self):
        self.assertFigures(self.section("peers", "msmtp"), MSMTP_KEYS)

    @unittest.skipUnless(os.geteuid() == 0, "a private Postfix instance needs root")
    def test_postfix_figures(self):
        self.assertFigures(self.section("peers", "postfix"), POSTFIX_KEYS)

    def test_outbox_submission_and_drain_figures(self):
        self.assertFigures(self.section("outbox", "submit_drain"), SUBMIT_DRAIN_KEYS)

    def test_outbox_per_process_figures(self):
        self.assertFigures(self.section("outbox", "per_process"), PER_PROCESS_KEYS)

    def test_outbox_memory_figures(self):
        self.assertFigures(self.section("outbox", "memory"), MEMORY_KEYS)
        self.assertFigures(self.section("outbox", "storm"), STORM_KEYS)

    def test_outbox_chunking_figures(self):
        self.assertFigures(self.section("outbox", "chunking"), CHUNKING_KEYS)

    def test_outbox_scale_figures_at_1000(self):
        scale = self.section("outbox", "scale")
        self.assertFigures(scale, ("sizes",))
        self.assertEqual([entry["queued"] for entry in scale["sizes"]], [1000])
        self.assertFigures(scale["sizes"][0], SCALE_ENTRY_KEYS)

    def test_table_rows_have_every_column(self):
        table = self.section("table")
        self.assertTrue(table)
        for row in table:
            self.assertEqual(sorted(row), sorted(ROW_KEYS))


if __name__ == "__main__":
    unittest.main(verbosity=2)
