"""A real HTTP server on loopback that honours Range requests, for remote reads, downloads and benches.

It serves a folder, counts requests and bytes per file, and can inject faults (``http_faults``):
the first N requests of a file answer 503, have their connection dropped or stall, each response
waits ``latency`` seconds; and its own: all requests of a file after the first N answer 503, or a
response is cut short.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.factories.http_faults import Fault, Faults, act_out, answer_empty, serve

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class RangeServer(Faults):
    """What the server saw, and the faults it injects per file name (see ``Faults``).

    Attributes:
        root: The folder served.
        url: ``http://127.0.0.1:PORT``.
        fail_after: Per file name, how many requests succeed before all later ones answer 503.
        cut_once: Per file name, a body length after which its next response is cut (connection
            closed): an interrupted download.
        log: Every request as ``(file name, Range header or None)``.
        requests: Requests per file name (GET and HEAD).
        heads: HEAD requests per file name (``requests - heads``: the GETs).
        sent: Body bytes sent per file name.
    """

    root: Path
    url: str = ""
    fail_after: dict[str, int] = field(default_factory=dict)
    cut_once: dict[str, int] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    heads: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Forget the counts."""
        with self.lock:
            self.reset_unlocked()

    def reset_unlocked(self) -> None:
        """Forget the counts (the caller holds ``lock``)."""
        self.requests.clear()
        self.heads.clear()
        self.sent.clear()


def _handler(state: RangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, body: bool) -> None:
            name = self.path.split("?", 1)[0].lstrip("/")
            if name == "-/stats":  # the counts, for a bench in another process
                self._stats()
                return
            with state.lock:
                state.requests[name] += 1
                state.heads[name] += not body
                state.log.append((name, self.headers.get("Range")))
                cut = state.cut_once.pop(name, None) if body else None
                fault = state.take(name)
                if fault is None and state.requests[name] > state.fail_after.get(name, 1 << 62):
                    fault = Fault.FAIL
            if act_out(self, state, fault):
                return
            path = state.root / name
            if not path.is_file():
                answer_empty(self, 404)
                return
            total = path.stat().st_size
            start, end, status = 0, total - 1, 200
            m = _RANGE.match(self.headers.get("Range", ""))
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), end) if m.group(2) else end
                else:  # a suffix: the last N bytes
                    start = max(total - int(m.group(2)), 0)
                status = 206
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read(max(end + 1 - start, 0)) if body else b""
            self.send_response(status)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "image/tiff")
            self.send_header("Content-Length", str(max(end + 1 - start, 0)))
            self.send_header("ETag", f'"{path.stat().st_mtime_ns:x}-{total:x}"')
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{total}")
            self.end_headers()
            if cut is not None:  # an interrupted download: part of the body, then the connection ends
                chunk = chunk[:cut]
                self.close_connection = True
            if body:
                self.wfile.write(chunk)
                with state.lock:
                    state.sent[name] += len(chunk)

        def _stats(self) -> None:
            with state.lock:
                data = json.dumps({"requests": state.requests, "sent": state.sent}).encode()
                state.reset_unlocked()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def range_server(root: Path) -> Iterator[RangeServer]:
    """Serve ``root`` on a free loopback port for the ``with`` body (a thread per request)."""
    state = RangeServer(root=root)
    with serve(_handler(state)) as url:
        state.url = url
        yield state


def write_cog(src: Path, dst: Path, blocksize: int = 128) -> Path:
    """``src`` rewritten as a tiled COG (GDAL's COG driver) at ``dst``."""
    from rasterio.shutil import copy

    copy(src, dst, driver="COG", blocksize=blocksize)
    return dst


def main() -> None:
    """``python -m tests.factories.range_server ROOT PORT [--latency S]``: serve until killed.

    ``GET /-/stats`` answers the counts since the last such request (JSON) and resets them.
    """
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("port", type=int)
    ap.add_argument("--latency", type=float, default=0.0)
    args = ap.parse_args()
    state = RangeServer(root=args.root, url=f"http://127.0.0.1:{args.port}", latency=args.latency)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(state))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
