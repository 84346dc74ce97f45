# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Shared harness of the integration tests.

Every test runs inside outbox-test-env (a private session bus, private XDG
directories and an unlocked, empty keyring) with OUTBOX_BUILD_DIR naming the
build tree.  The harness drives the real `outbox` command and the real
outboxd against real peers: Postfix's smtp-sink, aiosmtpd servers
(servers/recording_smtpd.py), a private Dovecot and the OAuth 2.0
introspection endpoint its oauth2 passdb asks (servers/oauth2_introspection.py),
and private Postfix, Exim and OpenSMTPD submission servers
(servers/submission_servers.py).
"""

import base64
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

PYTHON = "/usr/bin/python3"
SMTP_SINK = "/usr/sbin/smtp-sink"
HERE = pathlib.Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
BUS_NAME = "org.outbox.Outbox1"

# Every state the daemon will not leave by itself once there.
FINAL_STATES = ("sent", "failed")


def _require_test_session():
    if "OUTBOX_BUILD_DIR" not in os.environ:
        sys.exit("OUTBOX_BUILD_DIR is not set: run the tests with meson test")
    # Set by outbox-test-env only: without it the tests would talk to the
    # user's real daemon, accounts and keyring.
    if "OUTBOX_TEST_ENV_SESSION" not in os.environ:
        sys.exit("not inside outbox-test-env: refusing to touch the real session")


_require_test_session()
BUILD_DIR = pathlib.Path(os.environ["OUTBOX_BUILD_DIR"])
OUTBOXD = BUILD_DIR / "daemon" / "outboxd"
OUTBOX = BUILD_DIR / "cli" / "outbox"


def sanitizers():
    """The sanitizers the build uses ("none" when none)."""
    options = json.loads((BUILD_DIR / "meson-info" / "intro-buildoptions.json").read_text())
    return next((o["value"] for o in options if o["name"] == "b_sanitize"), "none")


# What the session bus and the services it activates write to stderr
# (see outbox-test-env); a daemon started by a test writes there too.
SESSION_LOG = pathlib.Path(os.environ["OUTBOX_TEST_SESSION_LOG"])
# GLib criticals are programming errors; the rest are sanitizer reports.
PROBLEM = re.compile(r"-CRITICAL \*\*|runtime error:|ERROR: \w+Sanitizer|==\d+==ERROR")


def session_log_size():
    try:
        return SESSION_LOG.stat().st_size
    except FileNotFoundError:
        return 0


def session_log_since(offset):
    """What the session log got after offset (see session_log_size())."""
    try:
        with open(SESSION_LOG, "rb") as log:
            log.seek(offset)
            return log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def problems_logged_since(offset):
    """The session log from the first problem after offset on, or ""."""
    text = session_log_since(offset)
    found = PROBLEM.search(text)
    if not found:
        return ""
    start = text.rfind("\n", 0, found.start()) + 1
    return text[start:start + 6000]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count):
    """count different free ports: each stays bound until all are chosen,
    so that the kernel cannot hand the same one out twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls predicate until it returns something true; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def process_exists(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # A zombie has exited already; only its parent has not reaped it.
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def terminate(process, timeout=10):
    """Stops a subprocess.Popen: SIGTERM, then SIGKILL after timeout."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def vm_hwm(pid):
    """The peak resident set size of a process, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def make_message(headers, body=b"Hello.\r\n"):
    """A message from (name, value) pairs and a body, with CRLF lines."""
    head = b"".join(f"{name}: {value}\r\n".encode() for name, value in headers)
    return head + b"\r\n" + body


class SinkMessage:
    def __init__(self, sender, recipients, data, path, mail_args="", rcpt_args=()):
        self.sender = sender
        self.recipients = recipients
        self.data = data  # LF line ends: smtp-sink writes lines, not bytes
        self.path = path
        # The parameters after the address: "SIZE=10 RET=HDRS", and one
        # such string per recipient, in the order of recipients.
        self.mail_args = mail_args
        self.rcpt_args = list(rcpt_args)

    def rcpt_args_of(self, address):
        return self.rcpt_args[self.recipients.index(address)]

    def header_block(self):
        return self.data.split(b"\n\n", 1)[0]

    def headers(self, name):
        """The values of every header field called name (unfolded)."""
        values = []
        unfolded = self.header_block().replace(b"\n ", b" ").replace(b"\n\t", b" ")
        prefix = name.lower().encode() + b":"
        for line in unfolded.split(b"\n"):
            if line.lower().startswith(prefix):
                values.append(line[len(prefix):].strip().decode("utf-8", "replace"))
        return values

    def body(self):
        return self.data.split(b"\n\n", 1)[1]


def _address_of(args):
    """'<a@b> SIZE=10' -> 'a@b'"""
    return _split_args(args)[0]


def _split_args(args):
    """'<a@b> SIZE=10 RET=HDRS' -> ('a@b', 'SIZE=10 RET=HDRS')"""
    first, _, rest = (args or "").partition(" ")
    address = first[1:-1] if first.startswith("<") and first.endswith(">") else first
    return address, rest


def parse_sink_dump(path):
    """Reads one smtp-sink -d file: its X- records, its three-line Received
    header, the message as received (dot-unstuffed, one line per line) and an
    empty line that smtp-sink appends."""
    raw = pathlib.Path(path).read_bytes()
    sender, recipients, mail_args, rcpt_args = None, [], "", []
    position = 0
    while True:
        end = raw.index(b"\n", position)
        line = raw[position:end].decode("utf-8", "replace")
        position = end + 1
        if line.startswith("X-Mail-Args: "):
            sender, mail_args = _split_args(line[len("X-Mail-Args: "):])
        elif line.startswith("X-Rcpt-Args: "):
            address, args = _split_args(line[len("X-Rcpt-Args: "):])
            recipients.append(address)
            rcpt_args.append(args)
        elif line.startswith("Received: "):
            break
    for _ in range(2):
        position = raw.index(b"\n", position) + 1
    data = raw[position:]
    if data.endswith(b"\n\n"):
        data = data[:-1]
    return SinkMessage(sender, recipients, data, path, mail_args, rcpt_args)


class SmtpSink:
    """Postfix's smtp-sink on 127.0.0.1, dumping every transaction to a file.

    extra_args are smtp-sink fault flags (-r, -f, -q, -Q, -w, -p, ...)."""

    def __init__(self, port=None, extra_args=()):
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.process = None
        self.dump_dir = None

    def start(self):
        self.dump_dir = tempfile.mkdtemp(prefix="sink-")
        # As root smtp-sink runs as nobody, which must write the dumps.
        os.chmod(self.dump_dir, 0o777)
        command = [SMTP_SINK]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        command += ["-d", os.path.join(self.dump_dir, "msg.")]
        command += self.extra_args + [f"127.0.0.1:{self.port}", "100"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        wait_until(lambda: self.process.poll() is not None or port_accepts(self.port),
                   10, f"smtp-sink on port {self.port}")
        if self.process.poll() is not None:
            raise AssertionError(f"smtp-sink exited with {self.process.returncode}")
        return self

    def stop(self):
        if self.process:
            terminate(self.process)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, user=None):
        userinfo = f"{user}@" if user else ""
        return f"smtp+insecure://{userinfo}127.0.0.1:{self.port}"

    def dump_files(self):
        paths = [p for p in pathlib.Path(self.dump_dir).iterdir()]
        return sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def messages(self):
        return [parse_sink_dump(path) for path in self.dump_files()]

    def complete_messages(self):
        """The messages, or None while smtp-sink is still writing one of
        its dump files (a dump appears before its last line)."""
        try:
            return self.messages()
        except ValueError:
            return None

    def wait_messages(self, count, timeout=30):
        return wait_until(lambda: len(self.dump_files()) >= count and self.complete_messages(),
                          timeout, f"{count} message(s) at smtp-sink")


class Certificates:
    """A CA and a certificate for localhost / 127.0.0.1 signed by it, made
    with certtool in a fresh directory."""

    def __init__(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="certs-"))
        self.ca_cert = self.dir / "ca.pem"
        self.cert = self.dir / "server.pem"
        self.key = self.dir / "server.key"
        self._make()

    def _certtool(self, *args):
        subprocess.run(["certtool", *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _make(self):
        ca_key = self.dir / "ca.key"
        ca_template = self.dir / "ca.cfg"
        ca_template.write_text('cn = "Outbox test CA"\nca\ncert_signing_key\n'
                               "expiration_days = 2\n")
        server_template = self.dir / "server.cfg"
        server_template.write_text('cn = "localhost"\ndns_name = "localhost"\n'
                                   'ip_address = "127.0.0.1"\ntls_www_server\n'
                                   "signing_key\nencryption_key\n"
                                   "expiration_days = 2\n")
        self._certtool("--generate-privkey", "--key-type=ecdsa",
                       "--outfile", str(ca_key))
        self._certtool("--generate-self-signed", "--load-privkey", str(ca_key),
                       "--template", str(ca_template), "--outfile", str(self.ca_cert))
        self._certtool("--generate-privkey", "--key-type=ecdsa",
                       "--outfile", str(self.key))
        self._certtool("--generate-certificate", "--load-privkey", str(self.key),
                       "--load-ca-certificate", str(self.ca_cert),
                       "--load-ca-privkey", str(ca_key),
                       "--template", str(server_template), "--outfile", str(self.cert))


class AioSmtpServer:
    """servers/recording_smtpd.py in a subprocess.

    certificates: offer and require STARTTLS with them.  auth: accept AUTH
    PLAIN/LOGIN for USER/PASSWORD (over TLS only unless auth_without_tls),
    and answer other credentials with auth_refusal when given."""

    USER = "alice"
    PASSWORD = "s3cret"

    def __init__(self, certificates=None, auth=False, auth_without_tls=False,
                 host="127.0.0.1", auth_refusal=None):
        self.host = host
        self.auth_refusal = auth_refusal
        self.port = free_port()
        self.certificates = certificates
        self.auth = auth
        self.auth_without_tls = auth_without_tls
        self.process = None
        self.log = None

    def start(self):
        self.log = pathlib.Path(tempfile.mkstemp(prefix="smtpd-", suffix=".jsonl")[1])
        command = [PYTHON, str(SERVERS_DIR / "recording_smtpd.py"),
                   "--host", self.host, "--port", str(self.port),
                   "--log", str(self.log)]
        if self.certificates:
            command += ["--cert", str(self.certificates.cert),
                        "--key", str(self.certificates.key)]
        if self.auth:
            command.append("--auth")
        if self.auth_without_tls:
            command.append("--auth-without-tls")
        if self.auth_refusal:
            command += ["--auth-refusal", self.auth_refusal]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            terminate(self.process)
            raise AssertionError(f"recording_smtpd.py did not start: {line!r}")
        return self

    def stop(self):
        if self.process:
            terminate(self.process)
            self.process.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def events(self, kind=None):
        records = [json.loads(line) for line in
                   self.log.read_text(encoding="utf-8").splitlines() if line]
        return [r for r in records if kind is None or r["event"] == kind]

    def messages(self):
        messages = self.events("message")
        for message in messages:
            message["data"] = base64.b64decode(message["data"])
        return messages

    def wait_messages(self, count, timeout=30):
        return wait_until(lambda: len(self.events("message")) >= count and self.messages(),
                          timeout, f"{count} message(s) at the aiosmtpd server")


class Result:
    def __init__(self, args, completed):
        self.args = args
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr

    def __repr__(self):
        return (f"outbox {' '.join(self.args)}: exit {self.rc}\n"
                f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}")


class Outbox:
    """The `outbox` command and the daemon behind it."""

    def __init__(self):
        self.daemon = None  # an outboxd we started ourselves

    def run(self, *args, input=None, stdin=None, timeout=120):
        args = [str(a) for a in args]
        if isinstance(input, str):
            input = input.encode()
        if input is None and stdin is None:
            stdin = subprocess.DEVNULL
        completed = subprocess.run([str(OUTBOX), *args], input=input, stdin=stdin,
                                   capture_output=True, timeout=timeout)
        completed.stdout = completed.stdout.decode("utf-8", "replace")
        completed.stderr = completed.stderr.decode("utf-8", "replace")
        return Result(args, completed)

    def check(self, *args, **kwargs):
        """Runs a command that must succeed; returns its Result."""
        result = self.run(*args, **kwargs)
        if result.rc != 0:
            raise AssertionError(f"command failed: {result!r}")
        return result

    def json(self, *args):
        result = self.check(*args)
        try:
            return json.loads(result.stdout)
        except ValueError as error:
            raise AssertionError(f"not JSON ({error}): {result!r}") from None

    def add_account(self, name, address, smtp, password=None, tls_ca_file=None,
                    default=False):
        args = ["account", "add", name, "--from", address, "--smtp", smtp]
        if tls_ca_file:
            args += ["--tls-ca-file", tls_ca_file]
        if default:
            args.append("--default")
        if password is not None:
            args.append("--password-stdin")
        return self.check(*args, input=None if password is None else password + "\n")

    def send(self, message, *recipients, account=None, sender=None):
        """Submits message (bytes, or an open file) and returns its id."""
        args = ["send"]
        if account:
            args += ["-a", account]
        if sender:
            args += ["-f", sender]
        args += list(recipients)
        if isinstance(message, bytes):
            result = self.check(*args, input=message)
        else:
            result = self.check(*args, stdin=message)
        message_id = result.stdout.strip()
        if not message_id or len(message_id.split()) != 1:
            raise AssertionError(f"outbox send printed no single id: {result!r}")
        return message_id

    def show(self, message_id):
        return self.json("show", message_id, "--json")

    def wait_state(self, message_id, states, timeout=60):
        """Polls `outbox show ID --json` until the state is one of states;
        fails at once when it reaches another final state."""
        if isinstance(states, str):
            states = (states,)
        seen = {}

        def reached():
            message = seen["message"] = self.show(message_id)
            if message.get("state") in FINAL_STATES and message["state"] not in states:
                raise AssertionError(f"message {message_id} ended {message['state']} "
                                     f"instead of {states}: {message}")
            return message.get("state") in states and message
        try:
            return wait_until(reached, timeout, f"message {message_id} in {states}",
                              interval=0.2)
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {seen.get('message')}") from None

    def wait_final(self, message_id, timeout=60):
        return self.wait_state(message_id, FINAL_STATES, timeout)

    def daemon_pid(self):
        """The pid of whoever owns the bus name, or None."""
        completed = subprocess.run(
            ["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
             "--object-path", "/org/freedesktop/DBus",
             "--method", "org.freedesktop.DBus.GetConnectionUnixProcessID", BUS_NAME],
            capture_output=True, text=True)
        if completed.returncode != 0:
            return None
        # "(uint32 1234,)"
        return int(completed.stdout.strip("()\n,").split()[1])

    def start_daemon(self, wrapper=(), env=None):
        """Starts outboxd directly (not by bus activation) and waits for it
        to own its bus name.  wrapper: a command to run it under, such as
        valgrind (it then gets far longer to start); env: its environment
        (default: the test's)."""
        with open(SESSION_LOG, "ab") as log:
            self.daemon = subprocess.Popen([*wrapper, str(OUTBOXD)], stdin=subprocess.DEVNULL,
                                           stderr=log, env=env)
        wait_until(lambda: self.daemon.poll() is not None or self.daemon_pid(),
                   180 if wrapper else 20, "outboxd to own its bus name")
        if self.daemon.poll() is not None:
            raise AssertionError(f"outboxd exited with {self.daemon.returncode}")
        return self.daemon.pid

    def stop_daemon(self, timeout=20):
        """Sends SIGTERM to the running daemon (activated or ours), waits for
        it to exit and returns its exit status when known."""
        pid = self.daemon_pid()
        if pid is None:
            return None
        os.kill(pid, signal.SIGTERM)
        status = None
        if self.daemon is not None and self.daemon.pid == pid:
            status = self.daemon.wait(timeout)
            self.daemon = None
        else:
            wait_until(lambda: not process_exists(pid), timeout, f"outboxd {pid} to exit")
        wait_until(lambda: self.daemon_pid() is None, timeout, "the bus name to be released")
        return status


def replies_of(message):
    """Every server reply a message dictionary mentions, as one string."""
    replies = [message.get("last_reply") or ""]
    replies += [r.get("reply") or "" for r in message.get("recipients", [])]
    replies += [str(r.get("reply_code") or "") for r in message.get("recipients", [])]
    return "\n".join(replies)


class OutboxTestCase(unittest.TestCase):
    """Gives each test self.outbox and stops what the test started.  Fails
    a test during which a sanitizer reported something, and stops the
    daemon after the last test so that its exit is checked too."""

    @classmethod
    def tearDownClass(cls):
        offset = session_log_size()
        Outbox().stop_daemon()
        # Leak reports come at exit.
        problems = problems_logged_since(offset)
        if problems:
            raise AssertionError(f"the daemon logged problems on exit:\n{problems}")

    def setUp(self):
        self.outbox = Outbox()
        self.addCleanup(self.assertNoProblemsLoggedSince, session_log_size())

    def assertNoProblemsLoggedSince(self, offset):
        problems = problems_logged_since(offset)
        if problems:
            self.fail(f"the daemon logged criticals or sanitizer reports:\n{problems}")

    def start_sink(self, *extra_args, port=None):
        sink = SmtpSink(port=port, extra_args=extra_args).start()
        self.addCleanup(sink.stop)
        return sink

    def start_aiosmtpd(self, **kwargs):
        server = AioSmtpServer(**kwargs).start()
        self.addCleanup(server.stop)
        return server

    def account_name(self):
        """A fresh account name for this test."""
        return self.id().rsplit(".", 1)[-1].replace("test_", "").replace("_", "-")[:60]

    def assertRecipientStates(self, message, expected):
        states = {r["address"]: r["state"] for r in message.get("recipients", [])}
        self.assertEqual(states, expected, f"recipient states of {message}")


def main():
    unittest.main(verbosity=2)


# Delivery engine: account settings, times, scripted servers, private buses
# and D-Bus mocks.

import datetime  # noqa: E402

from gi.repository import Gio, GLib  # noqa: E402

OBJECT_PATH = "/org/outbox/Outbox1"
QUEUE_IFACE = "org.outbox.Outbox1.Queue"
ACCOUNTS_IFACE = "org.outbox.Outbox1.Accounts"
MOCK_IFACE = "org.freedesktop.DBus.Mock"


def session_bus():
    return Gio.bus_get_sync(Gio.BusType.SESSION, None)


def _setting_variant(value):
    if isinstance(value, bool):
        return GLib.Variant("b", value)
    if isinstance(value, int):
        return GLib.Variant("u", value)
    return GLib.Variant("s", value)


def call_outbox(interface, method, parameters=None, reply_type=None, timeout=30):
    """Calls a method of the daemon on the session bus; returns the
    unpacked reply."""
    reply = session_bus().call_sync(
        BUS_NAME, OBJECT_PATH, interface, method, parameters,
        GLib.VariantType(reply_type) if reply_type else None,
        Gio.DBusCallFlags.NONE, timeout * 1000, None)
    return reply.unpack() if reply is not None else None


def update_account(name, settings):
    """Accounts.Update(name, settings): ints go as u, bools as b, strings
    as s, e.g. {"timeout": 2, "retry-first": 1}."""
    values = {key: _setting_variant(value) for key, value in settings.items()}
    call_outbox(ACCOUNTS_IFACE, "Update", GLib.Variant("(sa{sv})", (name, values)))


def add_account_over_dbus(name, settings):
    """Accounts.Add(name, settings), one call, with the types of
    update_account()."""
    values = {key: _setting_variant(value) for key, value in settings.items()}
    call_outbox(ACCOUNTS_IFACE, "Add", GLib.Variant("(sa{sv})", (name, values)))


def set_password(name, secret, service="smtp"):
    call_outbox(ACCOUNTS_IFACE, "SetPassword",
                GLib.Variant("(sss)", (name, service, secret)))


def account_settings(name):
    """The account's dictionary from Accounts.List()."""
    [accounts] = call_outbox(ACCOUNTS_IFACE, "List", reply_type="(aa{sv})")
    for account in accounts:
        if account.get("name") == name:
            return account
    raise AssertionError(f"no account {name} in {accounts}")


def queue_online():
    """The Online property of the daemon's Queue interface."""
    [value] = call_outbox("org.freedesktop.DBus.Properties", "Get",
                          GLib.Variant("(ss)", (QUEUE_IFACE, "Online")), "(v)")
    return value


def parse_time(text):
    """An ISO 8601 time of `outbox ... --json` as Unix time."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def spool_ids(outbox):
    """The ids of every message in the spool, sent ones included."""
    return [m["id"] for m in outbox.json("queue", "--all", "--json")["messages"]]


class SilentServer:
    """A listening socket on 127.0.0.1 that never accepts nor speaks: the
    kernel completes the TCP handshake, then nothing ever comes."""

    def __init__(self):
        self.sock = None
        self.port = None

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        return self

    def stop(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def url(self):
        return f"smtp+insecure://127.0.0.1:{self.port}"


class ScriptedSmtpServer:
    """servers/scripted_smtpd.py in a subprocess.

    rcpt: {address: [reply, reply, ...]}, the Nth RCPT for address (over
    all sessions) gets the Nth reply, the last one repeating.
    drop_after_dot: drop the connection without a reply after the final
    dot of that many first messages.
    max_rcpt: recipients taken per transaction, the next ones get 452.
    dsn: offer DSN (RFC 3461) and take its parameters; rcpt_dsn_reply:
    offer it, and answer every RCPT with NOTIFY= or ORCPT= with this.
    chunking: offer CHUNKING (RFC 3030) and take BDAT; bdat_replies:
    {N: reply} for the Nth chunk of each transaction; bdat_refused: offer
    CHUNKING and answer every BDAT with 502."""

    def __init__(self, rcpt=None, drop_after_dot=0, port=None, max_rcpt=0, dsn=False,
                 rcpt_dsn_reply=None, chunking=False, bdat_replies=None, bdat_refused=False):
        self.port = port or free_port()
        self.chunking = chunking
        self.bdat_replies = bdat_replies or {}
        self.bdat_refused = bdat_refused
        self.max_rcpt = max_rcpt
        self.dsn = dsn
        self.rcpt_dsn_reply = rcpt_dsn_reply
        self.rcpt = rcpt or {}
        self.drop_after_dot = drop_after_dot
        self.process = None
        self.log = None

    def start(self):
        self.log = pathlib.Path(tempfile.mkstemp(prefix="scripted-", suffix=".jsonl")[1])
        command = [PYTHON, str(SERVERS_DIR / "scripted_smtpd.py"),
                   "--port", str(self.port), "--log", str(self.log),
                   "--drop-after-dot", str(self.drop_after_dot),
                   "--max-rcpt", str(self.max_rcpt)]
        for address, replies in self.rcpt.items():
            command += ["--rcpt", f"{address}={';'.join(replies)}"]
        if self.dsn:
            command.append("--dsn")
        if self.rcpt_dsn_reply:
            command += ["--rcpt-dsn-reply", self.rcpt_dsn_reply]
        if self.chunking:
            command.append("--chunking")
        for number, reply in self.bdat_replies.items():
            command += ["--bdat-reply", f"{number}={reply}"]
        if self.bdat_refused:
            command.append("--bdat-refused")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            terminate(self.process)
            raise AssertionError(f"scripted_smtpd.py did not start: {line!r}")
        return self

    def stop(self):
        if self.process:
            terminate(self.process)
            self.process.stdout.close()
            self.process = None

    def url(self):
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def events(self, kind=None):
        records = [json.loads(line) for line in
                   self.log.read_text(encoding="utf-8").splitlines() if line]
        return [r for r in records if kind is None or r["event"] == kind]

    def messages(self):
        messages = self.events("message")
        for message in messages:
            message["data"] = base64.b64decode(message["data"])
        return messages

    def wait_messages(self, count, timeout=30):
        return wait_until(lambda: len(self.events("message")) >= count and self.messages(),
                          timeout, f"{count} message(s) at the scripted server")


def start_daemon_with_env(outbox, extra_env):
    """Like Outbox.start_daemon, with extra_env added to the daemon's
    environment; outbox.stop_daemon() stops it."""
    env = dict(os.environ, **extra_env)
    with open(SESSION_LOG, "ab") as log:
        outbox.daemon = subprocess.Popen([str(OUTBOXD)], stdin=subprocess.DEVNULL,
                                         stderr=log, env=env)
    wait_until(lambda: outbox.daemon.poll() is not None or outbox.daemon_pid(),
               20, "outboxd to own its bus name")
    if outbox.daemon.poll() is not None:
        raise AssertionError(f"outboxd exited with {outbox.daemon.returncode}")
    return outbox.daemon.pid


def _connect_to_bus(address):
    return Gio.DBusConnection.new_for_address_sync(
        address,
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION,
        None, None)


def _name_has_owner(connection, name):
    reply = connection.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus", "NameHasOwner",
                                 GLib.Variant("(s)", (name,)), GLib.VariantType("(b)"),
                                 Gio.DBusCallFlags.NONE, 5000, None)
    return reply.unpack()[0]


class PrivateSystemBus:
    """A dbus-daemon of type system, private to the test, that lets anyone
    own and call anything.  self.address goes into DBUS_SYSTEM_BUS_ADDRESS."""

    def __init__(self):
        self.dir = None
        self.address = None
        self.pid = None

    def start(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="system-bus-"))
        config = self.dir / "system.conf"
        config.write_text(
            '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"\n'
            ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n'
            "<busconfig>\n"
            "  <type>system</type>\n"
            f"  <listen>unix:tmpdir={self.dir}</listen>\n"
            "  <auth>EXTERNAL</auth>\n"
            '  <policy context="default">\n'
            '    <allow send_destination="*" eavesdrop="true"/>\n'
            '    <allow eavesdrop="true"/>\n'
            '    <allow own="*"/>\n'
            "  </policy>\n"
            "</busconfig>\n")
        completed = subprocess.run(
            ["dbus-daemon", f"--config-file={config}", "--fork",
             "--print-address=1", "--print-pid=1"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
        lines = completed.stdout.split()
        if completed.returncode != 0 or len(lines) != 2:
            raise AssertionError(f"dbus-daemon did not start: {completed!r}")
        self.address, self.pid = lines[0], int(lines[1])
        return self

    def stop(self):
        if self.pid and process_exists(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            wait_until(lambda: not process_exists(self.pid), 10, "the system bus to exit")
        self.pid = None

    def connect(self):
        return _connect_to_bus(self.address)


class DBusMock:
    """python-dbusmock serving a template on the session bus, or on the
    private system bus system_bus when given; parameters (a dict) go to the
    template.  Without a template, an object of interface at object_path,
    whose methods the test adds (see add_method())."""

    def __init__(self, template, bus_name, object_path, system_bus=None, parameters=None,
                 interface=None):
        self.template = template
        self.bus_name = bus_name
        self.object_path = object_path
        self.system_bus = system_bus
        self.parameters = parameters
        self.interface = interface
        self.process = None
        self.connection = None

    def _mock_args(self):
        if not self.template:
            return [self.bus_name, self.object_path, self.interface]
        args = ["--template", self.template]
        if self.parameters:
            args += ["--parameters", json.dumps(self.parameters)]
        return args

    def start(self):
        env = dict(os.environ)
        if self.system_bus:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.system_bus.address
            self.connection = self.system_bus.connect()
        else:
            self.connection = session_bus()
        bus_flag = "--system" if self.system_bus else "--session"
        self.process = subprocess.Popen(
            [PYTHON, "-m", "dbusmock", bus_flag, *self._mock_args()],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
        wait_until(lambda: self.process.poll() is not None
                   or _name_has_owner(self.connection, self.bus_name),
                   20, f"dbusmock to serve {self.bus_name}")
        if self.process.poll() is not None:
            raise AssertionError(f"dbusmock exited with {self.process.returncode}")
        return self

    def stop(self):
        if self.process:
            terminate(self.process)
            self.process = None

    def call_mock(self, method, parameters=None, reply_type=None):
        reply = self.connection.call_sync(
            self.bus_name, self.object_path, MOCK_IFACE, method, parameters,
            GLib.VariantType(reply_type) if reply_type else None,
            Gio.DBusCallFlags.NONE, 10000, None)
        return reply.unpack() if reply is not None else None

    def add_method(self, name, in_signature, out_signature="", code=""):
        self.call_mock("AddMethod", GLib.Variant("(sssss)", (self.interface, name, in_signature,
                                                             out_signature, code)))

    def calls_of(self, method):
        """The arguments of every call of method so far, unpacked."""
        [calls] = self.call_mock("GetMethodCalls", GLib.Variant("(s)", (method,)),
                                 reply_type="(a(tav))")
        return [args for _, args in calls]

    def emit(self, name, signature, *args):
        """Emits the signal name of the mock's interface, args of signature."""
        packed = GLib.Variant(f"({signature})", args)
        values = [packed.get_child_value(i) for i in range(packed.n_children())]
        self.call_mock("EmitSignal", GLib.Variant("(sssav)", ("", name, signature, values)))


class NetworkManagerMock(DBusMock):
    """dbusmock's networkmanager template, which GIO's NetworkManager
    network monitor follows (GIO_USE_NETWORK_MONITOR=networkmanager)."""

    CONNECTIVITY_NONE, CONNECTIVITY_FULL = 1, 4
    STATE_DISCONNECTED, STATE_CONNECTED_GLOBAL = 20, 70

    def __init__(self, system_bus):
        super().__init__("networkmanager", "org.freedesktop.NetworkManager",
                         "/org/freedesktop/NetworkManager", system_bus)

    def set_online(self, online):
        if online:
            self.call_mock("SetGlobalConnectionState",
                           GLib.Variant("(u)", (self.STATE_CONNECTED_GLOBAL,)))
            self.call_mock("SetConnectivity", GLib.Variant("(u)", (self.CONNECTIVITY_FULL,)))
        else:
            self.call_mock("SetConnectivity", GLib.Variant("(u)", (self.CONNECTIVITY_NONE,)))
            self.call_mock("SetGlobalConnectionState",
                           GLib.Variant("(u)", (self.STATE_DISCONNECTED,)))


class NotificationMock(DBusMock):
    """dbusmock's notification_daemon template on the session bus; it
    records every Notify call.  capabilities: what GetCapabilities answers
    (default: the template's, which has no "actions")."""

    def __init__(self, capabilities=None):
        super().__init__("notification_daemon", "org.freedesktop.Notifications",
                         "/org/freedesktop/Notifications",
                         parameters={"capabilities": " ".join(capabilities)}
                         if capabilities else None,
                         interface="org.freedesktop.Notifications")

    def notifications(self):
        """Every Notify call so far, as dictionaries."""
        [calls] = self.call_mock("GetCalls", reply_type="(a(tsav))")
        fields = ("app_name", "replaces_id", "app_icon", "summary", "body",
                  "actions", "hints", "expire_timeout")
        return [dict(zip(fields, args)) for _, method, args in calls if method == "Notify"]

    def clear(self):
        self.call_mock("ClearCalls")


class WindowMock(DBusMock):
    """Stands in for the Outbox window, a D-Bus activatable GApplication:
    org.freedesktop.Application on /org/outbox/Outbox of org.outbox.Outbox,
    recording every ActivateAction call."""

    def __init__(self):
        super().__init__(None, "org.outbox.Outbox", "/org/outbox/Outbox",
                         interface="org.freedesktop.Application")

    def start(self):
        super().start()
        self.add_method("ActivateAction", "sava{sv}")
        return self

    def activations(self):
        """The (action, parameter, platform_data) of every ActivateAction."""
        return [tuple(args) for args in self.calls_of("ActivateAction")]


class MessageChangedRecorder:
    """Records every MessageChanged signal of the daemon on the session
    bus.  Signals are dispatched by the default main context, which the
    wait methods iterate."""

    def __init__(self):
        self.signals = []  # (id, state, details)
        self.connection = session_bus()
        self.subscription = self.connection.signal_subscribe(
            BUS_NAME, QUEUE_IFACE, "MessageChanged", OBJECT_PATH, None,
            Gio.DBusSignalFlags.NONE, self._on_signal)

    def _on_signal(self, connection, sender, path, interface, name, parameters):
        self.signals.append(parameters.unpack())

    def pump(self):
        context = GLib.MainContext.default()
        while context.iteration(False):
            pass

    def states_of(self, message_id):
        self.pump()
        return [state for id_, state, _ in self.signals if id_ == message_id]

    def details_of(self, message_id):
        self.pump()
        return [details for id_, _, details in self.signals if id_ == message_id]

    def wait_state(self, message_id, state, timeout=30):
        return wait_until(lambda: state in self.states_of(message_id), timeout,
                          f"MessageChanged {state} for {message_id}")

    def close(self):
        self.connection.signal_unsubscribe(self.subscription)


class AccountChangedRecorder:
    """Records every AccountChanged signal of the daemon on the session
    bus, as (name, state, settings); the wait methods iterate the default
    main context, which dispatches them."""

    def __init__(self):
        self.signals = []
        self.connection = session_bus()
        self.subscription = self.connection.signal_subscribe(
            BUS_NAME, ACCOUNTS_IFACE, "AccountChanged", OBJECT_PATH, None,
            Gio.DBusSignalFlags.NONE, self._on_signal)

    def _on_signal(self, connection, sender, path, interface, name, parameters):
        self.signals.append(parameters.unpack())

    def pump(self):
        context = GLib.MainContext.default()
        while context.iteration(False):
            pass

    def of(self, account):
        """The (state, settings) of every signal about account so far."""
        self.pump()
        return [(state, settings) for name, state, settings in self.signals if name == account]

    def wait(self, account, state, timeout=30, count=1):
        """The settings of the count-th signal telling account in state."""
        def found():
            told = [settings for told_state, settings in self.of(account) if told_state == state]
            # In a list: the settings of "removed" are empty, which is false.
            return [told[count - 1]] if len(told) >= count else None
        try:
            [settings] = wait_until(found, timeout, f"AccountChanged {state} for {account}")
        except AssertionError as error:
            raise AssertionError(f"{error}; told: {self.of(account)}") from None
        return settings

    def close(self):
        self.connection.signal_unsubscribe(self.subscription)


class EngineTestCase(OutboxTestCase):
    """OutboxTestCase with the delivery-engine helpers."""

    SENDER = "alice@example.org"

    def start_scripted(self, **kwargs):
        server = ScriptedSmtpServer(**kwargs).start()
        self.addCleanup(server.stop)
        return server

    def start_silent(self):
        server = SilentServer().start()
        self.addCleanup(server.stop)
        return server

    def add_engine_account(self, url, name=None, settings=None, password=None):
        """A fresh account for url with the given Accounts.Update settings;
        returns its name."""
        name = name or self.account_name()
        self.outbox.add_account(name, self.SENDER, url, password=password)
        if settings:
            update_account(name, settings)
        return name

    def submit(self, account, *extra_args, recipients=("bob@example.org",),
               subject=None, message_id=None):
        """Sends a small message through account; extra_args go to
        `outbox send` (--at, --hold); returns the queue id."""
        headers = [("From", self.SENDER), ("To", ", ".join(recipients)),
                   ("Subject", subject or self.id().rsplit(".", 1)[-1])]
        if message_id:
            headers.append(("Message-ID", message_id))
        result = self.outbox.check("send", "-a", account, *extra_args,
                                   input=make_message(headers))
        queue_id = result.stdout.strip()
        if not queue_id or len(queue_id.split()) != 1:
            raise AssertionError(f"outbox send printed no single id: {result!r}")
        return queue_id

    def assertInSpool(self, message_id):
        self.assertIn(message_id, spool_ids(self.outbox),
                      f"message {message_id} is no longer in the spool")

    def assertNextAttemptIn(self, message, seconds, since, slack=3):
        """next_attempt is about `seconds` after the Unix time `since`."""
        self.assertIn("next_attempt", message, f"no next attempt time: {message}")
        delay = parse_time(message["next_attempt"]) - since
        self.assertGreaterEqual(delay, seconds - slack, f"next attempt too early: {message}")
        self.assertLessEqual(delay, seconds + slack, f"next attempt too late: {message}")


# outbox-sendmail and its maildrop.
OUTBOX_SENDMAIL = BUILD_DIR / "cli" / "outbox-sendmail"


def maildrop_dir():
    return pathlib.Path(os.environ["XDG_DATA_HOME"]) / "outbox" / "maildrop"


def maildrop_files(subdir=None):
    """The names of the regular files in the maildrop (or one of its
    subdirectories), sorted."""
    directory = maildrop_dir() / subdir if subdir else maildrop_dir()
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.is_file())


def environment_without_bus():
    """The environment of a cron job: no session bus to be found."""
    env = dict(os.environ)
    for name in ("DBUS_SESSION_BUS_ADDRESS", "DBUS_STARTER_ADDRESS", "DBUS_STARTER_BUS_TYPE",
                 "DISPLAY"):
        env.pop(name, None)
    return env


def sendmail(*args, input=None, stdin=None, env=None, program=OUTBOX_SENDMAIL, timeout=120):
    """Runs outbox-sendmail; returns a Result."""
    args = [str(a) for a in args]
    if isinstance(input, str):
        input = input.encode()
    if input is None and stdin is None:
        stdin = subprocess.DEVNULL
    completed = subprocess.run([str(program), *args], input=input, stdin=stdin, env=env,
                               capture_output=True, timeout=timeout)
    completed.stdout = completed.stdout.decode("utf-8", "replace")
    completed.stderr = completed.stderr.decode("utf-8", "replace")
    return Result([str(program), *args], completed)


# A private Dovecot: IMAP, POP3 and submission for one user, with a Sent
# folder kept in maildirs the tests can read.

import collections.abc  # noqa: E402
import grp  # noqa: E402
import hashlib  # noqa: E402
import pwd  # noqa: E402
import ssl  # noqa: E402

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
DOVECOT_DH = pathlib.Path("/usr/share/dovecot/dh.pem")


class MaildirMessage(SinkMessage):
    """One file of a maildir folder: the message as stored (LF line ends)
    and its flags, the letters after ":2," in the file name ("S" is
    \\Seen, "R" \\Answered, "F" \\Flagged...)."""

    def __init__(self, path):
        path = pathlib.Path(path)
        super().__init__(None, [], path.read_bytes(), path)
        _, separator, flags = path.name.rpartition(":2,")
        self.flags = flags if separator else ""
        self.is_new = path.parent.name == "new"

    @property
    def seen(self):
        return "S" in self.flags


class TokenSet(collections.abc.MutableSet):
    """The tokens an IntrospectionServer takes as active: a set whose every
    change is written to its file at once (the server reads the file
    again for each request)."""

    def __init__(self, path):
        self.path = path
        self._tokens = set()
        self._save()

    def _save(self):
        partial = self.path.with_suffix(".new")
        partial.write_text("".join(f"{t}\n" for t in sorted(self._tokens)), encoding="utf-8")
        partial.replace(self.path)

    def __contains__(self, token):
        return token in self._tokens

    def __iter__(self):
        return iter(set(self._tokens))

    def __len__(self):
        return len(self._tokens)

    def add(self, token):
        if "\n" in token or not token:
            raise ValueError("a token is one non-empty line")
        self._tokens.add(token)
        self._save()

    def discard(self, token):
        self._tokens.discard(token)
        self._save()


def token_digest(token):
    """How IntrospectionServer's log names a token (never in clear)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class IntrospectionServer:
    """servers/oauth2_introspection.py in a subprocess: the OAuth 2.0
    token introspection endpoint that Dovecot's oauth2 passdb POSTs
    `token=...` to, at url.  Tokens in valid_tokens (a set the test
    changes at will) are active for username; every other one is not.
    requests() is what it was asked, oldest first."""

    def __init__(self, username="alice", port=None):
        self.port = port or free_port()
        self.username = username
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="introspection-"))
        self.valid_tokens = TokenSet(self.dir / "tokens")
        self.log = self.dir / "requests.jsonl"
        self.log.touch()
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/introspect"

    def start(self):
        command = [PYTHON, str(SERVERS_DIR / "oauth2_introspection.py"),
                   "--port", str(self.port), "--tokens", str(self.valid_tokens.path),
                   "--log", str(self.log), "--username", self.username]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            terminate(self.process)
            self.process.stdout.close()
            self.process = None
            raise AssertionError(f"oauth2_introspection.py did not start: {line!r}")
        return self

    def stop(self):
        if self.process:
            terminate(self.process)
            self.process.stdout.close()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def requests(self, token=None):
        """The requests seen (dicts with "time", "path", "token_sha256",
        "active"), only those that presented token when given."""
        records = [json.loads(line) for line in
                   self.log.read_text(encoding="utf-8").splitlines() if line]
        if token is None:
            return records
        return [r for r in records if r["token_sha256"] == token_digest(token)]

    def count(self, token):
        """How many times token was presented."""
        return len(self.requests(token))


class Dovecot:
    """Dovecot from its Debian packages, on 127.0.0.1 only, run from a
    config of its own in a temp dir: imap and pop3 (STARTTLS/STLS offered),
    imaps and pop3s, and submission relaying to 127.0.0.1:relay_port (an
    SmtpSink's port; nothing listens there when None).

    One user, USER / PASSWORD, whose mail lives in maildirs under
    mail_dir.  The TLS certificate is for localhost and 127.0.0.1, signed by
    the CA in ca_file.  With sent_folder=False the account has no Sent
    folder (a copy to Sent must then fail).  stop() then start() restarts
    the same server: same ports, same mail.

    SASL: by default PLAIN and LOGIN against a {PLAIN} entry.  With
    scram=True the mechanisms are SCRAM-SHA-256 and SCRAM-SHA-1 only (no
    PLAIN nor LOGIN is offered).  password_schemes says how USER's password
    is stored: one passwd-file passdb per scheme, in that order, each entry
    made by `doveadm pw -s SCHEME` ("PLAIN" is the password in clear).  The
    default with scram is ("SCRAM-SHA-256", "SCRAM-SHA-1"): Dovecot 2.3
    derives a SCRAM mechanism's keys only from an entry of that very scheme
    or from a plaintext one ("Requested SCRAM-SHA-1 scheme, but we have only
    SCRAM-SHA-256" in the log, and the next passdb is asked), so a
    SCRAM-SHA-256 entry alone refuses SCRAM-SHA-1; ("PLAIN",) lets both
    in too.  With oauth2=True OAUTHBEARER and XOAUTH2 are offered too,
    checked by an oauth2 passdb against introspection (an
    IntrospectionServer that start() starts and stop() stops): add a token
    to introspection.valid_tokens to make it valid for USER.  The auth
    cache is off, so a changed token or password counts at once.  A failed
    login is answered after auth_failure_delay (2 s), but without the
    growing per-IP penalty of a real server unless auth_penalty=True.

    auth_socket_user: the auth service also listens for auth clients at
    auth_socket (a unix socket in the server's directory that only this
    user may use), as Postfix's smtpd_sasl_type = dovecot expects."""

    USER = "alice"
    PASSWORD = "pw-Dv3c0t-9Kq2-secret"
    # service name -> (login service, implicit TLS, URL scheme)
    LISTENERS = {
        "imap": ("imap-login", False, "imap"),
        "imaps": ("imap-login", True, "imaps"),
        "pop3": ("pop3-login", False, "pop3"),
        "pop3s": ("pop3-login", True, "pop3s"),
        "submission": ("submission-login", False, "smtp"),
    }
    GREETINGS = {"imap": b"* OK", "imaps": b"* OK", "pop3": b"+OK", "pop3s": b"+OK",
                 "submission": b"220 "}

    SCRAM_MECHANISMS = ("scram-sha-256", "scram-sha-1")
    OAUTH2_MECHANISMS = ("oauthbearer", "xoauth2")

    def __init__(self, relay_port=None, certificates=None, sent_folder=True,
                 scram=False, password_schemes=None, oauth2=False, auth_penalty=False,
                 auth_socket_user=None):
        # Every listener on a port of its own, and none on the relay's.
        *ports, spare, introspection_port = free_ports(len(self.LISTENERS) + 2)
        self.relay_port = relay_port or spare
        self.certificates = certificates or Certificates()
        self.sent_folder = sent_folder
        self.scram = scram
        self.auth_penalty = auth_penalty
        self.auth_socket_user = auth_socket_user
        if password_schemes is None:
            password_schemes = ("SCRAM-SHA-256", "SCRAM-SHA-1") if scram else ("PLAIN",)
        if not password_schemes or not set(password_schemes) <= {
                "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"}:
            raise ValueError(f"password_schemes {password_schemes!r}")
        self.password_schemes = tuple(password_schemes)
        self.introspection = (IntrospectionServer(self.USER, introspection_port)
                              if oauth2 else None)
        self.ports = dict(zip(self.LISTENERS, ports))
        self.dir = None
        self.mail_dir = None
        self.config = None
        self.process = None

    @property
    def ca_file(self):
        return self.certificates.ca_cert

    @property
    def auth_socket(self):
        """The auth-client socket for auth_socket_user (None without one,
        or before the first start())."""
        if self.auth_socket_user is None or self.dir is None:
            return None
        return self.dir / "auth-client"

    def url(self, service, user=USER):
        """The Outbox server URL of a service ("imaps", "submission"...)."""
        userinfo = f"{user}@" if user else ""
        scheme = self.LISTENERS[service][2]
        return f"{scheme}://{userinfo}127.0.0.1:{self.ports[service]}"

    def _accounts(self):
        """(login user, internal user, internal group, mail user, mail
        group): as root the Debian users; otherwise all are the caller's."""
        if os.geteuid() == 0:
            return "dovenull", "dovecot", "dovecot", "nobody", "nogroup"
        me = pwd.getpwuid(os.geteuid()).pw_name
        group = grp.getgrgid(os.getegid()).gr_name
        return me, me, group, me, group

    def _listener_blocks(self):
        lines = []
        # Only root may chroot; as another user the services run unconfined.
        unconfined = ["  chroot ="] if os.geteuid() != 0 else []
        anvil = list(unconfined)
        if not self.auth_penalty:
            # The auth process finds no penalty socket under base_dir and
            # then keeps no penalty: without this, every failed login from
            # 127.0.0.1 delays the next one's answer by 2 s more (up to
            # 15 s, forgotten after 29 s), on top of auth_failure_delay.
            anvil += ["  unix_listener anvil-auth-penalty {",
                      "    path = anvil-auth-penalty-unused", "  }"]
        if anvil:
            lines += ["service anvil {"] + anvil + ["}"]
        if self.auth_socket_user is not None:
            lines += ["service auth {", f"  unix_listener {self.auth_socket} {{",
                      "    mode = 0600", f"    user = {self.auth_socket_user}", "  }", "}"]
        for login in ("imap-login", "pop3-login", "submission-login"):
            lines.append(f"service {login} {{")
            lines += unconfined
            for name, (service, implicit_tls, _) in self.LISTENERS.items():
                if service != login:
                    continue
                lines.append(f"  inet_listener {name} {{")
                lines.append(f"    port = {self.ports[name]}")
                if implicit_tls:
                    lines.append("    ssl = yes")
                lines.append("  }")
            lines.append("}")
        return lines

    def _namespace_block(self):
        lines = ["namespace inbox {", "  inbox = yes"]
        if self.sent_folder:
            lines += ["  mailbox Sent {", "    special_use = \\Sent",
                      "    auto = subscribe", "  }"]
        return lines + ["}"]

    @property
    def mechanisms(self):
        """The SASL mechanisms offered, as auth_mechanisms names them."""
        mechanisms = list(self.SCRAM_MECHANISMS if self.scram else ("plain", "login"))
        if self.introspection:
            mechanisms += self.OAUTH2_MECHANISMS
        return mechanisms

    def _users_file(self, scheme):
        """The passwd-file that holds USER's password in scheme."""
        first = scheme == self.password_schemes[0]
        return self.dir / ("users" if first else f"users-{scheme.lower()}")

    def _passdb_blocks(self):
        lines = []
        password_filter = []
        if self.introspection:
            # Each passdb only for its own mechanisms: a token is checked by
            # introspection alone, never as a password ("none": lookups
            # that authenticate nobody, such as doveadm's, still find USER).
            lines += ["passdb {", "  driver = oauth2",
                      f"  mechanisms = {' '.join(self.OAUTH2_MECHANISMS)}",
                      f"  args = {self.dir / 'oauth2.conf'}", "}"]
            others = [m for m in self.mechanisms if m not in self.OAUTH2_MECHANISMS]
            password_filter = [f"  mechanisms = {' '.join(others)} none"]
        for scheme in self.password_schemes:
            lines += ["passdb {", "  driver = passwd-file",
                      f"  args = scheme=PLAIN {self._users_file(scheme)}",
                      *password_filter, "}"]
        return lines

    def _oauth2_config_text(self):
        return "\n".join([
            "introspection_mode = post",
            f"introspection_url = {self.introspection.url}",
            "username_attribute = username",
            "active_attribute = active",
            "active_value = true",
        ]) + "\n"

    def _password_entry(self, scheme):
        """USER's password in scheme, with its {SCHEME} prefix."""
        if scheme == "PLAIN":
            return f"{{PLAIN}}{self.PASSWORD}"
        # -O: no config file needed, neither the system's nor this one.
        made = subprocess.run([DOVEADM, "-O", "pw", "-s", scheme, "-p", self.PASSWORD],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        entry = made.stdout.strip()
        if made.returncode != 0 or not entry.startswith(f"{{{scheme}}}"):
            raise AssertionError(f"doveadm pw -s {scheme} failed "
                                 f"(exit status {made.returncode}): {made.stderr}")
        return entry

    def _config_text(self):
        login_user, internal_user, internal_group, mail_user, mail_group = self._accounts()
        lines = [
            "# A private instance for Outbox's tests; every block opens and",
            "# closes on lines of its own.",
            f"base_dir = {self.dir / 'run'}",
            f"state_dir = {self.dir / 'state'}",
            f"log_path = {self.dir / 'dovecot.log'}",
            "listen = 127.0.0.1",
            "protocols = imap pop3 submission",
            f"default_login_user = {login_user}",
            f"default_internal_user = {internal_user}",
            f"default_internal_group = {internal_group}",
            f"auth_mechanisms = {' '.join(self.mechanisms)}",
            "auth_verbose = yes",
            # No cache: a token refused once and then made valid (or a
            # password changed) is looked up again.
            "auth_cache_size = 0",
            # Without statistics: a process started while the master stops
            # would wait 5 s for the stats service, then fail.
            "stats_writer_socket_path =",
            "ssl = yes",
            f"ssl_cert = <{self.certificates.cert}",
            f"ssl_key = <{self.certificates.key}",
            f"mail_location = maildir:{self.mail_dir}/%u",
            "hostname = localhost",
            "submission_relay_host = 127.0.0.1",
            f"submission_relay_port = {self.relay_port}",
            *self._passdb_blocks(),
            "userdb {",
            "  driver = static",
            f"  args = uid={mail_user} gid={mail_group} home={self.mail_dir}/%u",
            "}",
        ]
        if DOVECOT_DH.exists():
            lines.insert(lines.index("ssl = yes") + 1, f"ssl_dh = <{DOVECOT_DH}")
        lines += self._namespace_block() + self._listener_blocks()
        return "\n".join(lines) + "\n"

    def _prepare(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="dovecot-"))
        # The auth process (internal user) reads the users file and the mail
        # processes (mail user) write under mail/: both must get in.
        self.dir.chmod(0o755)
        self.mail_dir = self.dir / "mail"
        self.mail_dir.mkdir()
        self.mail_dir.chmod(0o777)
        for scheme in self.password_schemes:
            users_file = self._users_file(scheme)
            users_file.write_text(f"{self.USER}:{self._password_entry(scheme)}\n")
            users_file.chmod(0o644)
        if self.introspection:
            oauth2_config = self.dir / "oauth2.conf"
            oauth2_config.write_text(self._oauth2_config_text())
            oauth2_config.chmod(0o644)
        self.config = self.dir / "dovecot.conf"
        self.config.write_text(self._config_text())

    def start(self):
        if not os.path.exists(DOVECOT):
            raise AssertionError(f"{DOVECOT} is missing: run tools/install-deps")
        if self.dir is None:
            self._prepare()
        if self.introspection and self.introspection.process is None:
            self.introspection.start()
        with open(self.dir / "output", "ab") as output:
            self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.config)],
                                            stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT)
        wait_until(lambda: self.process.poll() is not None or self._ready(),
                   30, f"dovecot on ports {sorted(self.ports.values())}")
        if self.process.poll() is not None or "Fatal:" in self.log():
            status = terminate(self.process)
            self.process = None
            if self.introspection:
                self.introspection.stop()
            raise AssertionError(f"dovecot did not start (exit status {status}):\n"
                                 f"{self.output()}{self.log()}")
        return self

    def _greets(self, service):
        try:
            with socket.create_connection(("127.0.0.1", self.ports[service]), timeout=5) as sock:
                if self.LISTENERS[service][1]:
                    context = ssl.create_default_context(cafile=str(self.ca_file))
                    with context.wrap_socket(sock, server_hostname="localhost") as tls:
                        return tls.recv(512).startswith(self.GREETINGS[service])
                return sock.recv(512).startswith(self.GREETINGS[service])
        except OSError:
            return False

    def _ready(self):
        """The master said that it started, and every listener greets (over
        TLS where it is implicit).  A connection that was only opened and
        closed would leave a login process starting, and a master stopped
        then waits 6 s for it."""
        if " starting up for " not in self.log():
            return False
        return all(self._greets(service) for service in self.GREETINGS)

    def _children(self):
        """The pids of the master's child processes."""
        pids = []
        for entry in pathlib.Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
            except OSError:
                continue
            if stat and int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                pids.append(int(entry.name))
        return pids

    def stop(self):
        """SIGTERM to the master (SIGKILL if it lingers), then waits until
        its children are gone and no port is open any more, so that start()
        can bind them again."""
        if self.process is not None:
            children = self._children()
            terminate(self.process)
            self.process = None
            wait_until(lambda: not any(process_exists(pid) for pid in children),
                       10, "dovecot's processes to exit")
            wait_until(lambda: not any(port_accepts(p) for p in self.ports.values()),
                       10, "dovecot's ports to close")
        if self.introspection:
            self.introspection.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def output(self):
        """What dovecot wrote to stdout and stderr (config errors)."""
        path = self.dir / "output" if self.dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def log(self):
        path = self.dir / "dovecot.log" if self.dir else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def folder_dir(self, folder=None):
        """The maildir of a folder of USER ("Sent"; None for INBOX)."""
        home = self.mail_dir / self.USER
        return home / f".{folder}" if folder else home

    def messages(self, folder="Sent"):
        """The messages in a folder (cur and new), oldest file first."""
        paths = []
        for sub in ("cur", "new"):
            directory = self.folder_dir(folder) / sub
            if directory.is_dir():
                paths += [p for p in directory.iterdir() if p.is_file()]
        paths.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [MaildirMessage(p) for p in paths]

    def sent_messages(self):
        return self.messages("Sent")

    def wait_messages(self, count, folder="Sent", timeout=30):
        return wait_until(lambda: len(self.messages(folder)) >= count and self.messages(folder),
                          timeout, f"{count} message(s) in {folder}")


def start_dovecot(test, relay_port=None, **kwargs):
    """A running Dovecot that test's cleanup stops."""
    dovecot = Dovecot(relay_port, **kwargs).start()
    test.addCleanup(dovecot.stop)
    return dovecot


def wait_sink_messages(sink, count, timeout=30):
    """SmtpSink.wait_messages, tolerating a dump file that smtp-sink is
    still writing."""
    def complete():
        try:
            return len(sink.dump_files()) >= count and sink.messages()
        except ValueError:
            return None
    return wait_until(complete, timeout, f"{count} message(s) at smtp-sink")


# Security suite: D-Bus calls that must fail, snapshots of everything a
# failed call must leave alone, a daemon started with arguments, and a raw
# SMTP server that records the exact bytes on the wire.

import threading  # noqa: E402


def spool_dir():
    return pathlib.Path(os.environ["XDG_DATA_HOME"]) / "outbox"


def config_dir():
    return pathlib.Path(os.environ["XDG_CONFIG_HOME"]) / "outbox"


def tree_digest(top):
    """{relative path: SHA-256 of the content} of every file under top."""
    top = pathlib.Path(top)
    if not top.exists():
        return {}
    return {str(path.relative_to(top)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(top.rglob("*")) if path.is_file()}


def list_all_messages():
    """Queue.List({'all': True}): every message in the spool."""
    [messages] = call_outbox(QUEUE_IFACE, "List",
                             GLib.Variant("(a{sv})", ({"all": GLib.Variant("b", True)},)),
                             "(aa{sv})")
    return messages


def list_accounts():
    [accounts] = call_outbox(ACCOUNTS_IFACE, "List", reply_type="(aa{sv})")
    return accounts


def daemon_state():
    """What a refused call must leave unchanged: the queue and the accounts
    as the daemon reports them, and the files of the spool and config."""
    return {"queue": list_all_messages(), "accounts": list_accounts(),
            "spool": tree_digest(spool_dir()), "config": tree_digest(config_dir())}


def call_outbox_with_fds(interface, method, parameters, fds, reply_type=None, timeout=30):
    """Like call_outbox, passing the descriptors fds along (the handle
    values in parameters index into them)."""
    fd_list = Gio.UnixFDList.new()
    for fd in fds:
        fd_list.append(fd)
    reply, _ = session_bus().call_with_unix_fd_list_sync(
        BUS_NAME, OBJECT_PATH, interface, method, parameters,
        GLib.VariantType(reply_type) if reply_type else None,
        Gio.DBusCallFlags.NONE, timeout * 1000, fd_list, None)
    return reply.unpack()


def dbus_error_of(function, *args, **kwargs):
    """Calls function, which must fail with a D-Bus error; returns the
    error's (name, message)."""
    try:
        result = function(*args, **kwargs)
    except GLib.Error as error:
        name = Gio.DBusError.get_remote_error(error)
        Gio.DBusError.strip_remote_error(error)
        return name, error.message
    raise AssertionError(f"the call succeeded ({result!r}) where an error was expected")


def start_daemon_with_args(outbox, args=(), extra_env=None):
    """Starts outboxd with command-line args and extra_env; returns its pid.
    Its stderr and its stdout (where GLib writes debug and info messages)
    go to the session log.  outbox.stop_daemon() stops it."""
    env = dict(os.environ, **(extra_env or {}))
    with open(SESSION_LOG, "ab") as log:
        outbox.daemon = subprocess.Popen([str(OUTBOXD), *args], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env)
    wait_until(lambda: outbox.daemon.poll() is not None or outbox.daemon_pid(),
               20, "outboxd to own its bus name")
    if outbox.daemon.poll() is not None:
        raise AssertionError(f"outboxd exited with {outbox.daemon.returncode}")
    return outbox.daemon.pid


def run_daemon_expecting_exit(args=(), extra_env=None, timeout=20):
    """Runs outboxd that is expected to refuse to start; returns
    (exit status, what it wrote to stderr).  Fails if it keeps running."""
    env = dict(os.environ, **(extra_env or {}))
    try:
        completed = subprocess.run([str(OUTBOXD), *args], stdin=subprocess.DEVNULL,
                                   capture_output=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"outboxd kept running for {timeout} s") from None
    with open(SESSION_LOG, "ab") as log:
        log.write(completed.stderr)
    return completed.returncode, completed.stderr.decode("utf-8", "replace")


class RawSmtpServer:
    """A minimal ESMTP server in a thread of the test, on 127.0.0.1, that
    keeps the exact bytes it receives: every command line (self.commands,
    with its line end) and every DATA payload between the 354 and the
    CRLF "." CRLF that ended it, dot-stuffing included (self.data).

    extensions: the EHLO keywords to offer (for example ["8BITMIME"]);
    nothing else is offered.  Every MAIL, RCPT and DATA gets a 2xx/354.
    With "CHUNKING" among them it takes BDAT (RFC 3030) too: every chunk's
    size goes to self.chunks ((size, last) pairs) and the octets of the
    chunks of one message, joined, to self.bdat_messages at BDAT LAST."""

    def __init__(self, extensions=()):
        self.extensions = list(extensions)
        self.commands = []
        self.data = []
        self.chunks = []
        self.bdat_messages = []
        self.lock = threading.Lock()
        self.sock = None
        self.port = None
        self.threads = []
        self.stopping = False

    def start(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._spawn(self._accept_loop)
        return self

    def stop(self):
        self.stopping = True
        for thread in self.threads:
            thread.join(10)
        if self.sock:
            self.sock.close()
            self.sock = None

    def url(self):
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                connection, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._spawn(self._serve, connection)

    def _ehlo_reply(self):
        lines = ["raw.test"] + self.extensions
        return "".join(f"250{'-' if i < len(lines) - 1 else ' '}{line}\r\n"
                       for i, line in enumerate(lines)).encode()

    def _serve(self, connection):
        connection.settimeout(60)
        buffer = b""

        def read_exactly(size):
            nonlocal buffer
            while len(buffer) < size:
                received = connection.recv(65536)
                if not received:
                    return None
                buffer += received
            chunk, buffer = buffer[:size], buffer[size:]
            return chunk

        message_chunks = []

        def read_until(terminator, start=0):
            nonlocal buffer
            while True:
                end = buffer.find(terminator, start)
                if end >= 0:
                    chunk = buffer[:end + len(terminator)]
                    buffer = buffer[end + len(terminator):]
                    return chunk
                received = connection.recv(65536)
                if not received:
                    return None
                buffer += received

        with connection:
            connection.sendall(b"220 raw.test ESMTP\r\n")
            while True:
                line = read_until(b"\r\n")
                if line is None:
                    return
                with self.lock:
                    self.commands.append(line)
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    connection.sendall(self._ehlo_reply())
                elif verb == b"DATA":
                    connection.sendall(b"354 go ahead\r\n")
                    # The payload may end at once (".\r\n" first) or with
                    # CRLF "." CRLF; search from before the buffer's start.
                    buffer = b"\r\n" + buffer
                    payload = read_until(b"\r\n.\r\n")
                    if payload is None:
                        return
                    with self.lock:
                        self.data.append(payload[2:])
                    connection.sendall(b"250 2.0.0 queued\r\n")
                elif verb == b"BDAT" and "CHUNKING" in self.extensions:
                    words = line.split()
                    last = len(words) == 3 and words[2].upper() == b"LAST"
                    octets = read_exactly(int(words[1]))
                    if octets is None:
                        return
                    message_chunks.append(octets)
                    with self.lock:
                        self.chunks.append((len(octets), last))
                        if last:
                            self.bdat_messages.append(b"".join(message_chunks))
                    if last:
                        message_chunks = []
                    connection.sendall(b"250 2.0.0 chunk OK\r\n")
                elif verb == b"QUIT":
                    connection.sendall(b"221 2.0.0 bye\r\n")
                    return
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    connection.sendall(b"250 2.0.0 OK\r\n")
                else:
                    connection.sendall(b"502 5.5.2 not implemented\r\n")

    def mail_commands(self):
        with self.lock:
            return [c for c in self.commands if c[:5].upper() in (b"MAIL ", b"RCPT ")]

    def payloads(self):
        with self.lock:
            return list(self.data)

    def wait_bdat_messages(self, count, timeout=30):
        return wait_until(lambda: len(self.bdat_messages) >= count and list(self.bdat_messages),
                          timeout, f"{count} message(s) in BDAT chunks at the raw server")

    def wait_payloads(self, count, timeout=30):
        return wait_until(lambda: len(self.payloads()) >= count and self.payloads(),
                          timeout, f"{count} DATA payload(s) at the raw server")


def unstuff(payload):
    """The message a DATA payload (with its final CRLF "." CRLF) carries."""
    assert payload.endswith(b"\r\n.\r\n") or payload == b".\r\n", payload[-10:]
    body = payload[:-3]
    lines = body.split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def normalise_line_ends(data):
    """What Outbox promises to make of lone CR and lone LF: CRLF."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", data)


class GoaDaemon:
    """The real goa-daemon (package gnome-online-accounts) on the test's
    private session bus, reading accounts from the test's
    $XDG_CONFIG_HOME/goa-1.0/accounts.conf, with their credentials in the
    test's unlocked gnome-keyring.

    add_imap_smtp() and add_google() describe accounts before start();
    remove(id) removes one through GOA's own D-Bus API, as Settings does;
    set_imap_smtp_password() changes what GOA stores.  Start the servers an
    imap_smtp account names first: goa-daemon probes them about a second
    after it starts and marks the account as needing attention when they do
    not answer."""

    BUS_NAME = "org.gnome.OnlineAccounts"
    BINARY = "/usr/libexec/goa-daemon"

    def __init__(self):
        self.accounts = {}  # id -> {key: value}
        self.process = None
        self.config = pathlib.Path(os.environ["XDG_CONFIG_HOME"]) / "goa-1.0" / "accounts.conf"

    @staticmethod
    def _store_secret(identity, secret_variant_text):
        subprocess.run(["secret-tool", "store", f"--label=GOA {identity}", "xdg:schema",
                        "org.gnome.OnlineAccounts", "goa-identity", identity],
                       input=secret_variant_text.encode(), check=True)

    def add_imap_smtp(self, account_id, address, password, imap_host, smtp_host,
                      use_tls=True):
        """An "IMAP and SMTP" account whose servers do STARTTLS (use_tls)
        and take USER/password; hosts are "host:port"."""
        user = address.split("@")[0]
        self.accounts[account_id] = {
            "Provider": "imap_smtp", "Identity": address, "PresentationIdentity": address,
            "Enabled": "true", "MailEnabled": "true", "EmailAddress": address, "Name": "Test",
            "ImapHost": imap_host, "ImapUserName": user, "ImapUseSsl": "false",
            "ImapUseTls": str(use_tls).lower(), "ImapAcceptSslErrors": "true",
            "SmtpHost": smtp_host, "SmtpUseAuth": "true", "SmtpUserName": user,
            "SmtpAuthLogin": "false", "SmtpAuthPlain": "true", "SmtpUseSsl": "false",
            "SmtpUseTls": str(use_tls).lower(), "SmtpAcceptSslErrors": "true",
        }
        self.set_imap_smtp_password(account_id, password)

    def set_imap_smtp_password(self, account_id, password):
        quoted = GLib.Variant("s", password).print_(False)
        self._store_secret(f"imap_smtp:gen0:{account_id}",
                           f"{{'imap-password': <{quoted}>, 'smtp-password': <{quoted}>}}")

    def add_google(self, account_id, address, access_token):
        """A Google account with an access token and no refresh token: GOA
        hands the token out as it is and never reaches for Google."""
        self.accounts[account_id] = {
            "Provider": "google", "Identity": address, "PresentationIdentity": address,
            "Enabled": "true", "MailEnabled": "true",
        }
        quoted = GLib.Variant("s", access_token).print_(False)
        self._store_secret(f"google:gen11:{account_id}", f"{{'access_token': <{quoted}>}}")

    def _write_config(self):
        self.config.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for account_id, keys in self.accounts.items():
            lines.append(f"[Account {account_id}]")
            lines += [f"{key}={value}" for key, value in keys.items()]
            lines.append("")
        self.config.write_text("\n".join(lines))

    def _owner(self):
        try:
            [owner] = session_bus().call_sync(
                "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                "GetNameOwner", GLib.Variant("(s)", (self.BUS_NAME,)), GLib.VariantType("(s)"),
                Gio.DBusCallFlags.NONE, 5000, None).unpack()
            return owner
        except GLib.Error:
            return None

    def start(self):
        self._write_config()
        with open(SESSION_LOG, "ab") as log:
            self.process = subprocess.Popen([self.BINARY, "--replace"], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log)
        wait_until(lambda: self.process.poll() is not None or self._owner(), 20,
                   "goa-daemon to own its bus name")
        if self.process.poll() is not None:
            raise AssertionError(f"goa-daemon exited with {self.process.returncode}")
        wait_until(lambda: set(self.account_ids()) >= set(self.accounts), 20,
                   "goa-daemon to show the accounts")
        return self

    def stop(self):
        if self.process is not None:
            terminate(self.process)
            self.process = None

    def _objects(self):
        [objects] = session_bus().call_sync(
            self.BUS_NAME, "/org/gnome/OnlineAccounts", "org.freedesktop.DBus.ObjectManager",
            "GetManagedObjects", None, GLib.VariantType("(a{oa{sa{sv}}})"),
            Gio.DBusCallFlags.NONE, 10000, None).unpack()
        return objects

    def account_ids(self):
        return [ifaces["org.gnome.OnlineAccounts.Account"]["Id"]
                for ifaces in self._objects().values()
                if "org.gnome.OnlineAccounts.Account" in ifaces]

    def account_property(self, account_id, name):
        for ifaces in self._objects().values():
            account = ifaces.get("org.gnome.OnlineAccounts.Account")
            if account is not None and account["Id"] == account_id:
                return account.get(name)
        raise KeyError(account_id)

    def remove(self, account_id):
        for path, ifaces in self._objects().items():
            account = ifaces.get("org.gnome.OnlineAccounts.Account")
            if account is not None and account["Id"] == account_id:
                session_bus().call_sync(self.BUS_NAME, path, "org.gnome.OnlineAccounts.Account",
                                        "Remove", None, None, Gio.DBusCallFlags.NONE, 10000, None)
                wait_until(lambda: account_id not in self.account_ids(), 10,
                           f"GOA to drop {account_id}")
                return
        raise KeyError(account_id)
