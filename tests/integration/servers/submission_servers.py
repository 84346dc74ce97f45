# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""Real submission servers for the integration tests: Postfix, Exim 4 and
OpenSMTPD, each a private instance on a free port of 127.0.0.1 with all of
its state in a temp dir, relaying every message it accepts to the port of
a Postfix smtp-sink (where a test reads the bytes that arrived).

Outbox must deliver through the servers people really submit to, with their
own readings of ESMTP (AUTH only after STARTTLS, DSN, CHUNKING, 8-bit data),
not only through the tests' own aiosmtpd servers.

- PostfixSubmission: the installed Postfix from a configuration of its own
  (`postfix -c DIR start`), TLS required, SASL through a private Dovecot's
  auth socket; stopped with `postfix -c DIR stop` and by the pid in its
  master.pid.
- EximSubmission: Exim from Debian's exim4-daemon-light in the foreground
  (`exim -C FILE -bdf -oX PORT`); STARTTLS, and AUTH PLAIN and LOGIN for
  one fixed user after TLS only.
- OpenSmtpdSubmission: OpenSMTPD from Debian's opensmtpd in the foreground
  (`smtpd -d -f FILE`), plaintext only, relaying what comes from localhost:
  Debian 12's 6.8.0p2 fails every TLS handshake with OpenSSL 3 ("SSL_accept:
  missing private key"), and OpenSMTPD offers AUTH over TLS only.

Exim and OpenSMTPD are unpacked from their packages by tools/fetch-test-peers
(which tools/install-deps runs) into _peers/ of the source tree, never
installed: installing either with apt removes Postfix.  They run as users
compiled into them (Debian-exim; opensmtpd and opensmtpq) that this machine need
not have, and OpenSMTPD from directories compiled into it, so each runs in
a mount namespace of its own (`unshare -m`) in which private copies of
/etc/passwd and /etc/group, and OpenSMTPD's directories, are bind-mounted:
the host's files are never changed.

Every process a server starts carries OUTBOX_PEER_INSTANCE=<its temp dir>
in its environment (Postfix through import_environment, Exim through
keep_environment), so that stop() also ends any that outlived their
parent.  Root only: Postfix's master and unshare need it."""

import contextlib
import grp
import os
import pathlib
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile

from outboxtest import free_port, process_exists, terminate, wait_until

SOURCE_DIR = pathlib.Path(os.environ.get("OUTBOX_SOURCE_DIR")
                          or pathlib.Path(__file__).resolve().parents[3])
# Where tools/fetch-test-peers unpacks Exim and OpenSMTPD.
PEERS_DIR = pathlib.Path(os.environ.get("OUTBOX_PEERS_DIR") or SOURCE_DIR / "_peers")

POSTFIX = "/usr/sbin/postfix"
MARKER = "OUTBOX_PEER_INSTANCE"
START_TIMEOUT = 60
LOG_TAIL = 12000


def unpacked(package, relative):
    """A file of a package that tools/fetch-test-peers unpacked."""
    top = PEERS_DIR / package
    path = top / relative
    if not (top / ".unpacked").exists() or not path.exists():
        raise AssertionError(f"{path} is missing: run tools/install-deps, which unpacks "
                             f"Exim and OpenSMTPD into {PEERS_DIR}")
    return path


def marked_processes(value):
    """The pids of the processes whose environment has MARKER=value."""
    needle = f"{MARKER}={value}".encode()
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environment.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def end_processes(pids, timeout=10):
    """SIGTERM to each pid, SIGKILL to those still there after timeout."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        try:
            wait_until(lambda: not any(process_exists(p) for p in pids), timeout,
                       f"processes {pids} to exit")
            return
        except AssertionError:
            if sig == signal.SIGKILL:
                raise


def write_private_accounts(directory, names):
    """Copies of /etc/passwd and /etc/group in directory, with a user and a
    group of each name in names that the host lacks, on a number that the
    host uses for neither; returns {name: (uid, gid)}."""
    passwd = pathlib.Path("/etc/passwd").read_text()
    group = pathlib.Path("/etc/group").read_text()
    passwd += "" if passwd.endswith("\n") else "\n"
    group += "" if group.endswith("\n") else "\n"
    used = {p.pw_uid for p in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    free = (n for n in range(64999, 60000, -1) if n not in used)
    ids = {}
    for name in names:
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            gid = next(free)
            group += f"{name}:x:{gid}:\n"
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            uid = next(free)
            passwd += f"{name}:x:{uid}:{gid}::/nonexistent:/usr/sbin/nologin\n"
        ids[name] = (uid, gid)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "passwd").write_text(passwd)
    (directory / "group").write_text(group)
    for name in ("passwd", "group"):
        (directory / name).chmod(0o644)
    return ids


# Bind-mounts each SOURCE TARGET pair before "--", then becomes the command
# after it (so that the command keeps the pid of unshare).
_BIND_AND_EXEC = ('while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 71; shift 2; done; '
                  'shift; exec "$@"')


def in_private_mounts(binds, command):
    """The command line that runs command in a mount namespace of its own,
    with each (source, target) of binds bind-mounted there."""
    pairs = [str(path) for pair in binds for path in pair]
    return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", _BIND_AND_EXEC,
            "sh", *pairs, "--", *[str(arg) for arg in command]]


def read_text(path):
    try:
        return pathlib.Path(path).read_text(errors="replace")
    except OSError:
        return ""


class SubmissionServer:
    """What the three servers share.  A subclass sets NAME, and USER and
    PASSWORD where it takes AUTH; it provides start(), _stop_server(),
    log_path and log()."""

    NAME = None
    USER = None
    PASSWORD = None

    def __init__(self, relay_port):
        self.relay_port = relay_port
        self.port = free_port()
        self.dir = None
        self.process = None

    ca_file = None  # the CA of its certificate, where it offers STARTTLS

    def url(self):
        """The account's server URL: STARTTLS with the user where it takes
        AUTH, plaintext otherwise."""
        if self.USER:
            return f"smtp://{self.USER}@127.0.0.1:{self.port}"
        return f"smtp+insecure://127.0.0.1:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _make_dir(self):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{self.NAME.lower()}-"))
        # Its unprivileged processes must get to what lies inside.
        self.dir.chmod(0o755)

    def _environment(self):
        return dict(os.environ, **{MARKER: str(self.dir)})

    def _popen(self, command):
        """Starts the server in the foreground, writing to dir/output."""
        with open(self.dir / "output", "ab") as output:
            self.process = subprocess.Popen([str(arg) for arg in command],
                                            stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, env=self._environment())

    def output(self):
        """What the server and its starter wrote to stdout and stderr."""
        return read_text(self.dir / "output") if self.dir else ""

    def describe(self):
        """The end of the server's log, for failure messages."""
        text = self.log()
        if len(text) > LOG_TAIL:
            text = "[...]\n" + text[-LOG_TAIL:]
        return f"--- {self.NAME} log ({self.log_path}) ---\n{text}--- end of {self.NAME} log ---"

    def greets(self):
        """Whether the port answers a connection with a 220 greeting."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                with sock.makefile("rb") as reader:
                    greeting = reader.readline()
                    if not greeting.startswith(b"220 "):
                        return False
                    sock.sendall(b"QUIT\r\n")
                    reader.readline()
                    return True
        except OSError:
            return False

    def _wait_ready(self, running):
        """Waits until the port greets; stops the server and fails with its
        log when it exits or stays silent."""
        try:
            wait_until(lambda: not running() or self.greets(), START_TIMEOUT,
                       f"{self.NAME} to greet on port {self.port}", interval=0.2)
            if not running():
                raise AssertionError(f"{self.NAME} exited before it greeted on port {self.port}")
        except AssertionError as error:
            self.stop()
            raise AssertionError(f"{error}\n{self.describe()}") from None

    def stop(self):
        """Stops the server, then whatever it started that is still there."""
        if self.dir is None:
            return
        self._stop_server()
        end_processes(marked_processes(self.dir))

    def _stop_server(self):
        if self.process is not None:
            terminate(self.process)
            self.process = None

    def ehlo_keywords(self, starttls=True):
        """The EHLO keywords offered (upper case); after STARTTLS and a
        second EHLO when STARTTLS is offered and starttls is true."""
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test",
                          timeout=30) as client:
            client.ehlo()
            if starttls and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context(cafile=str(self.ca_file)))
                client.ehlo()
            return {keyword.upper() for keyword in client.esmtp_features}


class PostfixSubmission(SubmissionServer):
    """The installed Postfix as a private submission server: an instance
    of its own (`postfix -c DIR`, own queue and data directories, Debian's
    postfix user and postdrop group), smtpd on 127.0.0.1:port with TLS
    required (certs' certificate) and SASL through the auth socket of
    dovecot (a Dovecot made with auth_socket_user="postfix" and started),
    relaying authenticated clients' mail to [127.0.0.1]:relay_port without
    DNS.  USER and PASSWORD are the Dovecot user's."""

    NAME = "Postfix"

    def __init__(self, relay_port, certs, dovecot):
        super().__init__(relay_port)
        self.certs = certs
        self.dovecot = dovecot
        self.USER = dovecot.USER
        self.PASSWORD = dovecot.PASSWORD
        self.config_dir = None
        self.master_pid = None

    @property
    def ca_file(self):
        return self.certs.ca_cert

    @property
    def log_path(self):
        return self.dir / "postfix.log" if self.dir else None

    @property
    def queue_dir(self):
        return self.dir / "queue"

    def log(self):
        return self.output() + read_text(self.log_path) if self.dir else ""

    def _main_cf(self):
        parameters = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.dir / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            # The daemons keep the marker that stop() looks for, and the
            # test session's, by which outbox-test-env ends strays.
            "import_environment": ("MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C "
                                   f"POSTLOG_SERVICE POSTLOG_HOSTNAME {MARKER} "
                                   "OUTBOX_TEST_ENV_SESSION"),
            "myhostname": "postfix.test",
            "mydomain": "test",
            "mydestination": "",
            "local_recipient_maps": "",
            "local_transport": "error:5.1.1 no local delivery here",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "append_dot_mydomain": "no",
            "readme_directory": "no",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.1/32",
            # No DNS: the relay is an address, looked up by nothing.
            "relayhost": f"[127.0.0.1]:{self.relay_port}",
            "smtp_host_lookup": "native",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtp_tls_security_level": "none",
            # Fast retries, should the sink not answer at once.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "5s",
            "message_size_limit": "52428800",
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_cert_file": self.certs.cert,
            "smtpd_tls_key_file": self.certs.key,
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_loglevel": "1",
            "smtpd_tls_received_header": "yes",
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": self.dovecot.auth_socket,
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions": "",
        }
        lines = ["# A private instance for Outbox's tests (submission_servers.py)."]
        lines += [f"{name} = {value}" for name, value in parameters.items()]
        return "\n".join(lines) + "\n"

    def _master_cf(self):
        # Debian's services, none chrooted (the paths are outside the
        # queue directory), with smtpd on the test's port only.
        services = [
            (f"127.0.0.1:{self.port}", "inet", "n", "-", "smtpd"),
            ("pickup", "unix", "n", "60", "1 pickup"),
            ("cleanup", "unix", "n", "-", "0 cleanup"),
            ("qmgr", "unix", "n", "300", "1 qmgr"),
            ("tlsmgr", "unix", "-", "1000?", "1 tlsmgr"),
            ("rewrite", "unix", "-", "-", "- trivial-rewrite"),
            ("bounce", "unix", "-", "-", "0 bounce"),
            ("defer", "unix", "-", "-", "0 bounce"),
            ("trace", "unix", "-", "-", "0 bounce"),
            ("verify", "unix", "-", "-", "1 verify"),
            ("flush", "unix", "n", "1000?", "0 flush"),
            ("proxymap", "unix", "-", "-", "- proxymap"),
            ("smtp", "unix", "-", "-", "- smtp"),
            ("relay", "unix", "-", "-", "- smtp"),
            ("showq", "unix", "n", "-", "- showq"),
            ("error", "unix", "-", "-", "- error"),
            ("retry", "unix", "-", "-", "- error"),
            ("discard", "unix", "-", "-", "- discard"),
            ("anvil", "unix", "-", "-", "1 anvil"),
            ("scache", "unix", "-", "-", "1 scache"),
            ("postlog", "unix-dgram", "n", "-", "1 postlogd"),
        ]
        lines = []
        for name, kind, private, wakeup, rest in services:
            if kind == "inet":
                lines.append(f"{name} inet n - n - - {rest}")
            else:
                lines.append(f"{name} {kind} {private} - n {wakeup} {rest}")
        return "\n".join(lines) + "\n"

    def _postfix(self, *args):
        completed = subprocess.run([POSTFIX, "-c", str(self.config_dir), *args],
                                   stdin=subprocess.DEVNULL, capture_output=True,
                                   env=self._environment(), timeout=120)
        with open(self.dir / "output", "ab") as output:
            output.write(completed.stdout + completed.stderr)
        return completed.returncode

    def _read_master_pid(self):
        text = read_text(self.queue_dir / "pid" / "master.pid").strip()
        return int(text) if text.isdigit() else None

    def start(self):
        if self.dovecot.auth_socket is None or self.dovecot.process is None:
            raise ValueError("PostfixSubmission needs a started Dovecot made with "
                             "auth_socket_user='postfix'")
        self._make_dir()
        self.config_dir = self.dir / "config"
        self.config_dir.mkdir()
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.config_dir / "master.cf").write_text(self._master_cf())
        self.queue_dir.mkdir(mode=0o755)
        status = self._postfix("start")
        self.master_pid = self._read_master_pid()
        if status != 0 or self.master_pid is None:
            self.stop()
            raise AssertionError(f"postfix -c {self.config_dir} start failed "
                                 f"(exit status {status})\n{self.describe()}")
        self._wait_ready(lambda: process_exists(self.master_pid))
        return self

    def _stop_server(self):
        if self.master_pid is None:
            return
        self._postfix("stop")
        try:
            wait_until(lambda: not process_exists(self.master_pid), 20,
                       f"Postfix's master {self.master_pid} to exit")
        except AssertionError:
            end_processes([self.master_pid])
        self.master_pid = None

    def session_of(self, message_id):
        """What the log says of the submission of the message with that
        Message-ID: {"queue_id", "client", "sasl_method", "sasl_username",
        "tls" (protocol and cipher of the smtpd process's last TLS session
        before it, or None), "relayed" (the relay's status=sent line, or
        None)}; None when the message is not in the log."""
        log = read_text(self.log_path)
        found = re.search(r"postfix/cleanup\[\d+\]: (\w+): message-id=" + re.escape(message_id),
                          log)
        if not found:
            return None
        queue_id = found.group(1)
        client = re.search(r"postfix/smtpd\[(\d+)\]: " + queue_id +
                           r": client=(\S+?)(?:, sasl_method=(\w+))?(?:, sasl_username=(\S+))?$",
                           log, re.MULTILINE)
        tls = None
        if client:
            before = log[:client.start()]
            sessions = re.findall(r"postfix/smtpd\[" + client.group(1) +
                                  r"\]: \w+ TLS connection established from \S+: "
                                  r"(\S+) with cipher (\S+)", before)
            tls = " ".join(sessions[-1]) if sessions else None
        relayed = re.search(rf"^.*{queue_id}: to=<[^>]*>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                            rf"{self.relay_port},.* status=sent .*$", log, re.MULTILINE)
        return {"queue_id": queue_id,
                "client": client.group(2) if client else None,
                "sasl_method": client.group(3) if client else None,
                "sasl_username": client.group(4) if client else None,
                "tls": tls,
                "relayed": relayed.group(0) if relayed else None}


class EximSubmission(SubmissionServer):
    """Exim 4 (exim4-daemon-light, unpacked) as a private submission server
    on 127.0.0.1:port: STARTTLS with certs' certificate, AUTH PLAIN and
    LOGIN for USER / PASSWORD offered inside TLS only, mail taken only from
    an authenticated client over TLS, CHUNKING and DSN offered, its own
    spool, and a manualroute router sending everything to
    127.0.0.1:relay_port."""

    NAME = "Exim"
    USER = "alice"
    PASSWORD = "Exim-test-pw-4u7Q"
    EXIM_USER = "Debian-exim"  # compiled in (EXIM_USER=ref:Debian-exim)

    def __init__(self, relay_port, certs):
        super().__init__(relay_port)
        self.certs = certs

    @property
    def ca_file(self):
        return self.certs.ca_cert

    @property
    def log_path(self):
        return self.dir / "log" / "mainlog" if self.dir else None

    def log(self):
        if not self.dir:
            return ""
        return (self.output() + read_text(self.dir / "log" / "paniclog")
                + read_text(self.log_path))

    def _config_text(self):
        credentials = {"plain": ("$auth2", "$auth3"), "login": ("$auth1", "$auth2")}
        prompts = {"plain": ":", "login": "Username:: : Password::"}
        authenticators = []
        for name, (user, password) in credentials.items():
            authenticators += [
                f"{name}:",
                "  driver = plaintext",
                f"  public_name = {name.upper()}",
                f"  server_prompts = {prompts[name]}",
                "  server_condition = ${if and{{eq{" + user + "}{" + self.USER + "}}"
                "{eq{" + password + "}{" + self.PASSWORD + "}}}}",
                f"  server_set_id = {user}",
                # Never a password in the clear.
                "  server_advertise_condition = ${if def:tls_in_cipher}",
            ]
        return "\n".join([
            "# A private instance for Outbox's tests (submission_servers.py).",
            f"exim_path = {self.dir / 'exim4'}",
            f"spool_directory = {self.dir / 'spool'}",
            f"log_file_path = {self.dir / 'log'}/%slog",
            "primary_hostname = exim.test",
            "local_interfaces = 127.0.0.1",
            f"keep_environment = {MARKER} : OUTBOX_TEST_ENV_SESSION",
            # No DNS and no ident: the only client is 127.0.0.1.
            "host_lookup =",
            "rfc1413_hosts =",
            "rfc1413_query_timeout = 0s",
            "tls_advertise_hosts = *",
            f"tls_certificate = {self.dir / 'tls' / 'server.pem'}",
            f"tls_privatekey = {self.dir / 'tls' / 'server.key'}",
            "chunking_advertise_hosts = *",
            "dsn_advertise_hosts = *",
            "message_size_limit = 50M",
            "acl_smtp_mail = acl_check_mail",
            "acl_smtp_rcpt = acl_check_rcpt",
            "log_selector = +smtp_connection +received_recipients +outgoing_port",
            "",
            "begin acl",
            "acl_check_mail:",
            "  deny    message = authentication required",
            "          !authenticated = *",
            "  accept",
            "acl_check_rcpt:",
            "  accept  authenticated = *",
            "          encrypted = *",
            "  deny    message = relay not permitted",
            "",
            "begin routers",
            "sink:",
            "  driver = manualroute",
            f"  route_list = * 127.0.0.1::{self.relay_port}",
            "  transport = remote_smtp",
            # 127.0.0.1 is this host: send there all the same.
            "  self = send",
            "",
            "begin transports",
            "remote_smtp:",
            "  driver = smtp",
            "  allow_localhost",
            "",
            "begin retry",
            "*  *  F,1h,5s",
            "",
            "begin authenticators",
            *authenticators,
        ]) + "\n"

    def start(self):
        binary = unpacked("exim", "usr/sbin/exim4")
        self._make_dir()
        ids = write_private_accounts(self.dir / "etc", [self.EXIM_USER])
        uid, gid = ids[self.EXIM_USER]
        # Exim runs again from exim_path, as Debian-exim, for each delivery.
        shutil.copy(binary, self.dir / "exim4")
        for name in ("spool", "log", "tls"):
            (self.dir / name).mkdir(mode=0o750)
            os.chown(self.dir / name, uid, gid)
        for source, name in ((self.certs.cert, "server.pem"), (self.certs.key, "server.key")):
            target = self.dir / "tls" / name
            shutil.copy(source, target)
            os.chown(target, uid, gid)
            target.chmod(0o600)
        config = self.dir / "exim.conf"
        config.write_text(self._config_text())
        config.chmod(0o644)
        etc = self.dir / "etc"
        self._popen(in_private_mounts(
            [(etc / "passwd", "/etc/passwd"), (etc / "group", "/etc/group")],
            [self.dir / "exim4", "-C", config, "-bdf", "-oX", self.port]))
        self._wait_ready(lambda: self.process.poll() is None)
        return self

    def session_of(self, message_id):
        """What the main log says of the message with that Message-ID:
        {"exim_id", "protocol" (P=), "tls" (X=), "auth" (A=), "relayed"
        (its => line to the relay, or None), "completed"}; None when the
        message is not in the log."""
        log = read_text(self.log_path)
        bare = re.escape(message_id.strip("<>"))
        found = re.search(rf"^\S+ \S+ (\S+) <= .* id=<?{bare}>?(?: |$).*$", log, re.MULTILINE)
        if not found:
            return None
        line, exim_id = found.group(0), found.group(1)

        def field(name):
            value = re.search(rf" {name}=(\S+)", line)
            return value.group(1) if value else None
        relayed = re.search(rf"^.* {re.escape(exim_id)} => .* \[127\.0\.0\.1\]:{self.relay_port}"
                            r"(?: .*)?$", log, re.MULTILINE)
        return {"exim_id": exim_id, "protocol": field("P"), "tls": field("X"),
                "auth": field("A"), "relayed": relayed.group(0) if relayed else None,
                "completed": f" {exim_id} Completed" in log}


class OpenSmtpdSubmission(SubmissionServer):
    """OpenSMTPD (opensmtpd, unpacked) as a private submission server on
    127.0.0.1:port, plaintext only and without AUTH (see the module's
    docstring), relaying what comes from localhost to 127.0.0.1:relay_port.
    Its queue and the other directories compiled into it are private
    directories bind-mounted in its own mount namespace."""

    NAME = "OpenSMTPD"

    @property
    def log_path(self):
        return self.dir / "output" if self.dir else None

    def log(self):
        return self.output()

    def _config_text(self):
        return "\n".join([
            "# A private instance for Outbox's tests (submission_servers.py).",
            f"listen on 127.0.0.1 port {self.port} hostname opensmtpd.test",
            f'action "sink" relay host smtp://127.0.0.1:{self.relay_port}',
            'match from local for any action "sink"',
        ]) + "\n"

    def _private_directories(self):
        """(private directory, where it is mounted) for each directory
        compiled into smtpd: its queue /var/spool/smtpd, its chroot
        /var/lib/opensmtpd/empty and /run (/var/run) for its control
        socket; each is mounted on the nearest directory the host has,
        which smtpd alone then sees, empty but for its own."""
        root = self.dir / "root"
        spool, lib, run = root / "spool", root / "lib", root / "run"
        for directory in (spool, lib / "opensmtpd" / "empty", run):
            directory.mkdir(mode=0o755, parents=True)
        (spool / "smtpd").mkdir(mode=0o711)
        return [(spool, "/var/spool"), (lib, "/var/lib"), (run, "/run")]

    def start(self):
        binary = unpacked("opensmtpd", "usr/sbin/smtpd")
        self._make_dir()
        write_private_accounts(self.dir / "etc", ["opensmtpd", "opensmtpq"])
        config = self.dir / "smtpd.conf"
        config.write_text(self._config_text())
        config.chmod(0o644)
        etc = self.dir / "etc"
        binds = [(etc / "passwd", "/etc/passwd"), (etc / "group", "/etc/group")]
        self._popen(in_private_mounts(binds + self._private_directories(),
                                      [binary, "-d", "-f", config]))
        self._wait_ready(lambda: self.process.poll() is None)
        return self

    def messages(self):
        """What the log says of each message taken (its log names no
        Message-ID): [{"msgid", "size" (of the data), "proto" ("ESMTP" after
        EHLO, "SMTP" after HELO), "delivery" (the "mta delivery" line of its
        envelope, or None)}]."""
        log = self.log()
        messages = []
        for found in re.finditer(r" smtp message msgid=(\w+) size=(\d+) nrcpt=\d+ "
                                 r"proto=(\w+)", log):
            msgid = found.group(1)
            delivery = re.search(rf"^.* mta delivery evpid={msgid}\w* .*$", log, re.MULTILINE)
            messages.append({"msgid": msgid, "size": int(found.group(2)),
                             "proto": found.group(3),
                             "delivery": delivery.group(0) if delivery else None})
        return messages

    def connected_to_relay(self):
        """Whether its log shows a connection to 127.0.0.1:relay_port."""
        return f" mta connecting address=smtp://127.0.0.1:{self.relay_port} " in self.log()
