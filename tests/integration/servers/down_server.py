# SPDX-License-Identifier: LGPL-2.1-or-later
# SPDX-FileCopyrightText: The Outbox authors
"""A server that is down, for the storm test and the bench's storm figure:
a listener on 127.0.0.1 that counts the connections it accepts.  "close"
closes each at once, "421" says 421 and closes, "silent" keeps it open
without a word."""

import socket
import threading
import time


class DownServer:
    MODES = ("close", "421", "silent")

    def __init__(self, mode="close"):
        if mode not in self.MODES:
            raise ValueError(f"DownServer mode {mode!r}: one of {self.MODES}")
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []  # monotonic times
        self.held = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted.append(time.monotonic())
            if self.mode == "silent":
                self.held.append(conn)
                continue
            if self.mode == "421":
                conn.sendall(b"421 4.3.2 Service not available, try later\r\n")
            conn.close()

    def connections(self):
        with self.lock:
            return len(self.accepted)

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()

    def url(self):
        return f"smtp+insecure://127.0.0.1:{self.port}"
