"""What the test HTTP servers share: the faults they inject, and serving on a loopback port.

``Faults`` holds per-key counts of faults (a key is what the server names a request by: a path or a
file name); ``Faults.take`` says which one a request gets and counts it down, and ``act_out`` does
it on the request. ``RangeServer`` and ``FaultProxy`` both inherit ``Faults``, so tests set
``srv.fail_first[key] = 2`` on either.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Fault(Enum):
    """What a request gets instead of a plain answer."""

    RESET = "reset"  # the connection closed unanswered
    FAIL = "fail"  # a 503
    STALL = "stall"  # the answer after ``stall`` seconds


@dataclass(kw_only=True)
class Faults:
    """The faults a server injects (change them between runs), per key.

    Attributes:
        fail_first: Per key, how many of its next requests answer 503.
        reset_first: Per key, how many of its next requests get the connection closed unanswered.
        stall_first: Per key, how many of its next requests wait ``stall`` seconds before answering.
        stall: Seconds a stalled request waits (longer than the client's timeout).
        latency: Seconds every answer waits.
        lock: Held while the counts (and the server's own records) change.
    """

    fail_first: dict[str, int] = field(default_factory=dict)
    reset_first: dict[str, int] = field(default_factory=dict)
    stall_first: dict[str, int] = field(default_factory=dict)
    stall: float = 3.0
    latency: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> Fault | None:
        """The fault due for a request of ``key``, counted (the caller holds ``lock``).

        One fault a request: a reset first, else a 503, else a stall; only that one is counted.
        """
        for fault, counts in (
            (Fault.RESET, self.reset_first),
            (Fault.FAIL, self.fail_first),
            (Fault.STALL, self.stall_first),
        ):
            left = counts.get(key, 0)
            if left:
                counts[key] = left - 1
                return fault
        return None


def answer_empty(handler: BaseHTTPRequestHandler, status: int) -> None:
    """Answer ``status`` with an empty body."""
    handler.send_response(status)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def act_out(handler: BaseHTTPRequestHandler, faults: Faults, fault: Fault | None) -> bool:
    """Do ``fault`` on ``handler``'s request; whether that answered it (the caller then stops).

    A reset closes the connection without a status line; otherwise the request waits ``latency``
    seconds (plus ``stall`` for a stall), and a failure answers 503. A stalled or fault-free
    request is left to the caller to answer.
    """
    if fault is Fault.RESET:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return True
    pause = faults.latency + (faults.stall if fault is Fault.STALL else 0.0)
    if pause:
        time.sleep(pause)
    if fault is Fault.FAIL:
        answer_empty(handler, 503)
        return True
    return False


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port (a thread per request) for the body; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
