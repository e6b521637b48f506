"""A fault-injecting HTTP reverse proxy on loopback, in front of a real server (moto's S3, a Range server).

Clients talk to the proxy as if it were the server (``AWS_S3_ENDPOINT`` or an href's host): each
request is forwarded as it came (method, path, headers such as ``Host`` and the S3 signature,
body) and the answer is relayed, unless a fault is due for its path: a 503, a connection closed
unanswered, or a stall longer than the client's timeout. Every request is logged.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.factories.http_faults import Fault, Faults, act_out, serve

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}


@dataclass
class FaultProxy(Faults):
    """What the proxy saw, and the faults it injects per path (``/bucket/key``; see ``Faults``).

    Attributes:
        upstream: ``http://host:port`` of the real server.
        url: ``http://127.0.0.1:PORT`` of the proxy.
        log: Every request as ``(method, path, Range header or None, status)``; the status is 0 for a
            reset, -1 for a stalled request (answered after the stall, if the client still waits).
    """

    upstream: str
    url: str = ""
    log: list[tuple[str, str, str | None, int]] = field(default_factory=list)

    def requests(self, path: str, method: str | None = None) -> list[tuple[str, str, str | None, int]]:
        """The logged requests for ``path`` (of ``method`` when given)."""
        with self.lock:
            return [r for r in self.log if r[1] == path and method in (None, r[0])]


def _handler(state: FaultProxy) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(state.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _forward(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with state.lock:
                fault = state.take(path)
            if fault in (Fault.RESET, Fault.FAIL):
                self._log(path, 0 if fault is Fault.RESET else 503)
            if act_out(self, state, fault):
                return
            conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            finally:
                conn.close()
            self._log(path, -1 if fault is Fault.STALL else answer.status)
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in _HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            length_header = answer.getheader("Content-Length")
            self.send_header("Content-Length", length_header if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stall)
                    self.close_connection = True

        def _log(self, path: str, status: int) -> None:
            with state.lock:
                state.log.append((self.command, path, self.headers.get("Range"), status))

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A proxy in front of ``upstream`` (``http://host:port``) on a free loopback port, for the body."""
    state = FaultProxy(upstream=upstream.rstrip("/"))
    with serve(_handler(state)) as url:
        state.url = url
        yield state
