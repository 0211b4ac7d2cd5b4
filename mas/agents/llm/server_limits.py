"""Limits that keep `mas serve` answering under misbehaving clients: a bounded number
of connection threads, and a total deadline on reading a request or writing an answer.

The standard library's `ThreadingHTTPServer` starts one thread per connection without a
bound, and its socket time-out bounds each silent gap, not the whole transfer: a client
that sends one byte just inside every time-out holds its thread for as long as it likes.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from typing import Any

BACKLOG = 256  # listen queue (socketserver's default of 5 resets clients in bursts of ~32)


class BoundedListener(ThreadingHTTPServer):
    """A threading server with at most `max_connections` handler threads: the accept loop
    waits for a free slot (new connections queue in the backlog meanwhile)."""

    request_queue_size = BACKLOG
    daemon_threads = True

    def __init__(self, address: Any, handler: Any, max_connections: int) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max_connections)
        self.stopping = threading.Event()
        self.active = 0  # connections being served now (for tests and monitoring)
        self.peak = 0
        self._count_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self.slots.acquire(timeout=0.2):
            if self.stopping.is_set():
                self.shutdown_request(request)
                return
        with self._count_lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._count_lock:
            self.active -= 1
        self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # a client that hung up or went silent: no traceback
            return
        super().handle_error(request, client_address)


@contextlib.contextmanager
def cut_after(handler: Any, seconds: float) -> Iterator[threading.Timer]:
    """Run the block; if it still runs after `seconds`, shut the handler's connection down,
    so the read or write it is blocked in fails at once and its thread is free. Yields the
    timer, which the block may cancel early (when the slow part is over)."""

    def cut() -> None:
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield timer
    finally:
        timer.cancel()
