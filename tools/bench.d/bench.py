# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""tools/bench: measures Outbox against its peers in one run, prints a
table and writes every figure as JSON.  Run through tools/bench, which
builds the optimised Outbox first."""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib
import peers
from benchlib import BenchError

HERE = pathlib.Path(__file__).resolve().parent
SOURCE_DIR = HERE.parent.parent
TEST_ENV = SOURCE_DIR / "tests" / "outbox-test-env"
MIB = 1024 * 1024

FULL = {"messages": 2000, "per_process": 500, "msmtp": 200,
        "scale": [1000, 10000, 100000], "scale_budget_seconds": 360,
        "big_message": 1024 * MIB, "storm_messages": 200, "chunking_message": 1024 * MIB}
QUICK = {"messages": 100, "per_process": 50, "msmtp": 20,
         "scale": [1000], "scale_budget_seconds": 60, "big_message": 0,
         "storm_messages": 200, "chunking_message": 8 * MIB}
# Targets of issue 7 where no peer does the same thing.
TARGET_IDLE_RSS = 8 * MIB
TARGET_BIG_MESSAGE_GROWTH = 4 * MIB
TARGET_QUEUED_RSS = 64 * MIB
TARGET_SUBMIT_PER_SECOND = 1000


def parse_arguments():
    parser = argparse.ArgumentParser(prog="tools/bench", description=__doc__)
    parser.add_argument("--build-dir", required=True, type=pathlib.Path,
                        help="the Outbox build to measure")
    parser.add_argument("--quick", action="store_true",
                        help="100 messages, one repetition, no 100,000 queue nor 1 GB message")
    parser.add_argument("--reps", type=int, help="repetitions of each figure (3; 1 with --quick)")
    parser.add_argument("--output", type=pathlib.Path,
                        help="the JSON file (default: bench-results.json in the build dir)")
    arguments = parser.parse_args()
    if arguments.reps is None:
        arguments.reps = 1 if arguments.quick else 3
    if arguments.reps < 1:
        parser.error("--reps must be at least 1")
    arguments.build_dir = arguments.build_dir.resolve()
    if arguments.output is None:
        arguments.output = arguments.build_dir / "bench-results.json"
    return arguments


def machine():
    memory = None
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    cpu = None
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "memory_bytes": memory, "cpu": cpu,
            "kernel": platform.release(), "load_average_at_start": os.getloadavg()[0]}


def git_revision():
    def git(*args):
        completed = subprocess.run(["git", "-C", str(SOURCE_DIR), *args],
                                   capture_output=True, text=True)
        return completed.stdout.strip() if completed.returncode == 0 else None
    if shutil.which("git") is None:
        return {"revision": None, "dirty": None}
    revision = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"revision": revision, "dirty": None if status is None else bool(status)}


def build_type(build_dir):
    try:
        options = json.loads((build_dir / "meson-info" / "intro-buildoptions.json").read_text())
    except (OSError, ValueError):
        return None
    return next((o["value"] for o in options if o["name"] == "buildtype"), None)


def outbox_phase(phase, build_dir, settings, workdir, tag=""):
    """Runs one part of outbox_phase.py in its own outbox-test-env session;
    returns its figures, with "error" when it failed."""
    result_file = pathlib.Path(workdir) / f"{phase}{tag}.json"
    env = dict(os.environ, OUTBOX_TEST_SERVICES_DIR=str(build_dir / "tests" / "services"),
               OUTBOX_BUILD_DIR=str(build_dir), PYTHONDONTWRITEBYTECODE="1")
    command = [str(TEST_ENV), sys.executable, str(HERE / "outbox_phase.py"), phase,
               str(build_dir), json.dumps(settings), str(result_file)]
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    timed_out = False
    try:
        _, stderr = process.communicate(timeout=1800)
    except subprocess.TimeoutExpired:
        # outbox-test-env passes SIGTERM on: the phase writes what it has.
        benchlib.stop_process(process, timeout=60)
        _, stderr = process.communicate()
        timed_out = True
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        result = {"error": f"{phase} wrote no result (exit {process.returncode}): "
                           f"{stderr.decode('utf-8', 'replace').strip()[-2000:]}"}
    if timed_out:
        result["error"] = f"{phase} stopped after 30 minutes; {result.get('error', '')}"
    return result


def merge_repetitions(repetitions):
    """One result from the results of several sessions: the lists of
    seconds joined, the rates computed again from their medians."""
    merged = {}
    for result in repetitions:
        for key, value in result.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            else:
                merged.setdefault(key, value)
    count = merged.get("messages")
    for key, value in list(merged.items()):
        if (key.endswith("_seconds") and not key.endswith("_cpu_seconds")
                and isinstance(value, list) and count):
            merged[key[:-len("_seconds")] + "_per_second"] = benchlib.rate(
                count, benchlib.median(value))
    return merged


def repeated_phase(phase, build_dir, settings, workdir, reps):
    """Each repetition in a fresh session, so that none inherits the spool
    (and the sent messages) of the one before."""
    repetitions = []
    for rep in range(reps):
        result = outbox_phase(phase, build_dir, settings, pathlib.Path(workdir), f"{rep}")
        repetitions.append(result)
        if "error" in result:
            break
    return merge_repetitions(repetitions)


def guarded(what, action):
    """Runs a part of the bench; a part that fails is recorded, not fatal."""
    print(f"bench: {what}...", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        result = action()
    except (BenchError, OSError, subprocess.SubprocessError) as error:
        result = {"error": str(error)}
    if "error" in result:
        print(f"bench: {what} failed: {result['error']}", file=sys.stderr, flush=True)
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    return result


def measure(arguments, settings, workdir):
    reps = arguments.reps
    message_file = pathlib.Path(workdir) / "message.eml"
    # smtp-source -F appends CRLF to every line itself.
    message_file.write_bytes(benchlib.message(0, line_end=b"\n"))
    phase_settings = dict(settings, reps=reps)
    results = {"peers": {}, "outbox": {}}
    with benchlib.Sink() as sink:
        results["peers"]["smtp_source"] = guarded("smtp-source", lambda: peers.smtp_source(
            sink, message_file, settings["messages"], reps))
        results["peers"]["msmtp"] = guarded("msmtp", lambda: peers.msmtp(
            sink, workdir, settings["msmtp"], reps))
        results["peers"]["postfix"] = guarded("Postfix", lambda: peers.postfix(
            sink, message_file, settings["messages"], settings["per_process"], reps))
    for key, phase, what in (("submit_drain", "submit-drain", "Outbox submission and drain"),
                             ("per_process", "per-process", "Outbox one process per message")):
        results["outbox"][key] = guarded(what, lambda phase=phase: repeated_phase(
            phase, arguments.build_dir, phase_settings, workdir, reps))
    for key, phase, what in (("memory", "memory", "Outbox memory"),
                             ("storm", "storm", "Outbox with a server down"),
                             ("chunking", "chunking", "Outbox with BDAT and with DATA"),
                             ("scale", "scale", "Outbox queue sizes")):
        results["outbox"][key] = guarded(what, lambda phase=phase: outbox_phase(
            phase, arguments.build_dir, phase_settings, workdir))
    return results


def figure(results, *path):
    value = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def rows(results, settings):
    """(figure, unit, better, Outbox value, peer, peer value) for the table."""
    def peer(*path):
        return figure(results["peers"], *path)

    def outbox(*path):
        return figure(results["outbox"], *path)

    drain = outbox("submit_drain", "drain_per_second")
    count = settings["messages"]
    table = [
        (f"drain {count} held", "msg/s", "higher", drain,
         "smtp-source, one connection", peer("smtp_source", "one_connection_per_second")),
        (f"drain {count} held", "msg/s", "higher", drain,
         "smtp-source, connection per msg", peer("smtp_source", "new_connection_per_second")),
        (f"drain {count} held", "msg/s", "higher", drain,
         "smtp-source, 4 connections", peer("smtp_source", "four_connections_per_second")),
        (f"drain {count} held", "msg/s", "higher", drain,
         "msmtp, process per msg", peer("msmtp", "per_second")),
        (f"drain {count} held", "msg/s", "higher", drain,
         "Postfix, drain of its hold queue", peer("postfix", "drain_per_second")),
        (f"drain {count} held", "msg/s", "higher", drain,
         "Postfix, smtp-source in to sink", peer("postfix", "smtp_end_to_end_per_second")),
    ]
    for mode, label in (("sequential", "one call at a time"),
                        ("pipelined", "64 calls in flight")):
        value = outbox("submit_drain", f"submit_data_{mode}_per_second")
        table += [
            (f"SubmitData, {label}", "msg/s", "higher", value,
             "Postfix smtpd, accepted", peer("postfix", "smtp_accepted_per_second")),
            (f"SubmitData, {label}", "msg/s", "higher", value,
             "issue 7 target", TARGET_SUBMIT_PER_SECOND),
        ]
    tool = outbox("per_process", "tool") or "outbox send"
    submitted = outbox("per_process", "submitted_per_second")
    end_to_end = outbox("per_process", "end_to_end_per_second")
    table += [
        (f"{tool}, process per msg, queued", "msg/s", "higher", submitted,
         "Postfix sendmail, queued", peer("postfix", "sendmail_submitted_per_second")),
        (f"{tool}, process per msg, at sink", "msg/s", "higher", end_to_end,
         "Postfix sendmail, at sink", peer("postfix", "sendmail_end_to_end_per_second")),
        (f"{tool}, process per msg, at sink", "msg/s", "higher", end_to_end,
         "msmtp, process per msg", peer("msmtp", "per_second")),
        ("PSS idle", "MiB", "lower", mib(outbox("memory", "idle_pss_bytes")),
         "Postfix idle, all processes", mib(peer("postfix", "idle_pss_bytes"))),
        ("RSS idle", "MiB", "lower", mib(outbox("memory", "idle_rss_bytes")),
         "issue 7 target", mib(TARGET_IDLE_RSS)),
    ]
    if settings["big_message"]:
        table.append((f"RSS growth, {settings['big_message'] // MIB} MiB message", "MiB",
                      "lower", mib(outbox("memory", "big_message_hwm_growth_bytes")),
                      "issue 7 target", mib(TARGET_BIG_MESSAGE_GROWTH)))
    storm = outbox("storm", "messages")
    if storm:
        table.append((f"connections for one attempt, {storm} due, server down", "connections", "lower",
                      outbox("storm", "connections"), "one per message (before issue 16)",
                      storm))
    chunked = outbox("chunking", "message_bytes")
    if chunked:
        label = f"{chunked / MIB:,.0f} MiB message to Postfix, Submit to sent"
        table.append((f"{label}, BDAT", "s", "lower", outbox("chunking", "bdat_seconds"),
                      "same with DATA", outbox("chunking", "data_seconds")))
        table.append((f"{label}, BDAT, outboxd CPU", "s", "lower",
                      outbox("chunking", "bdat_cpu_seconds"), "same with DATA",
                      outbox("chunking", "data_cpu_seconds")))
    sizes = outbox("scale", "sizes") or []
    for entry in sizes:
        table.append((f"RSS, {queued_label(entry)}", "MiB", "lower",
                      mib(entry["rss_queued_bytes"]), "issue 7 target (100,000 queued)",
                      mib(TARGET_QUEUED_RSS)))
    rates = outbox("scale", "submit_rates") or []
    if len(rates) > 1:
        table.append((f"SubmitData, 64 in flight, {rates[-1][0]:,} queued", "msg/s", "higher",
                      rates[-1][1], f"same, {rates[0][0]:,} queued", rates[0][1]))
    if sizes:
        first = sizes[0]
        for key, label in (("queue_json_median_seconds", "outbox queue --json"),
                           ("startup_first_submit_median_seconds",
                            "start-up until SubmitData answered"),
                           ("startup_median_seconds",
                            "start-up until the whole queue is listed (ListSerialized)"),
                           ("startup_after_kill_seconds",
                            "start-up after a SIGKILL until the whole queue is listed"),
                           ("list_plain_seconds", "List (a{sv}) of the whole queue, loaded")):
            for entry in sizes:
                if key not in entry:
                    continue
                later = entry is not first
                linear = first[key] * entry["queued"] / first["queued"]
                table.append((f"{label}, {queued_label(entry)}", "s", "lower", entry[key],
                              f"linear from {first['queued']:,}" if later else None,
                              linear if later else None))
    return [{"figure": name, "unit": unit, "better": better, "outbox": value,
             "peer": peer_name, "peer_value": peer_value,
             "ratio": value / peer_value if value is not None and peer_value else None}
            for name, unit, better, value, peer_name, peer_value in table]


def queued_label(entry):
    label = f"{entry['queued']:,} queued"
    if entry["queued"] < entry["target"]:
        label += f" (of {entry['target']:,}: out of time)"
    return label


def mib(value):
    return value / MIB if value is not None else None


def format_value(value):
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.3f}"


def print_table(table):
    headers = ("figure", "Outbox", "peer", "peer value", "ratio")
    lines = [(f"{row['figure']} ({row['unit']}, {row['better']} is better)",
              format_value(row["outbox"]), row["peer"] or "-",
              format_value(row["peer_value"]),
              f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-")
             for row in table]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(cell.ljust(w) if i in (0, 2) else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths))))


def main():
    arguments = parse_arguments()
    settings = QUICK if arguments.quick else FULL
    started = time.monotonic()
    machine_at_start = machine()
    workdir = tempfile.mkdtemp(prefix="outbox-bench-")
    # smtp-sink runs as nobody and Postfix's programs as postfix: they
    # only need to traverse it.
    os.chmod(workdir, 0o711)
    # Every spool and queue of the run lives below workdir and is deleted
    # only at the end.  On ext4 without a journal, creating a file skips,
    # one by one, the inodes freed in the last 12 hours that are still
    # cached; deleting a spool of thousands of messages between repetitions
    # made every file creation of the next one slower (for Outbox and
    # Postfix alike), and the order of the phases would have decided the
    # figures.
    kept = pathlib.Path(workdir) / "kept"
    kept.mkdir()
    os.environ["TMPDIR"] = workdir
    os.environ["OUTBOX_TEST_ENV_KEEP_IN"] = str(kept)
    try:
        results = measure(arguments, settings, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = {
        "format": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": arguments.quick,
        "repetitions": arguments.reps,
        "message_size": benchlib.MESSAGE_SIZE,
        "settings": settings,
        "machine": dict(machine_at_start, load_average_at_end=os.getloadavg()[0]),
        "git": git_revision(),
        "build": {"dir": str(arguments.build_dir), "buildtype": build_type(arguments.build_dir)},
        **results,
    }
    report["table"] = rows(results, settings)
    report["duration_seconds"] = round(time.monotonic() - started, 1)
    print_table(report["table"])
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {arguments.output} ({report['duration_seconds']} s)")


if __name__ == "__main__":
    main()
