"""A loopback HTTP server for a folder, with Range requests and cut-off downloads (``satcnn data fetch``)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class RangeHandler(SimpleHTTPRequestHandler):
    """Serves files with ``Range: bytes=N-`` (206); a path in ``cut`` is cut after that many bytes once."""

    log: list[tuple[str, str | None]]
    cut: dict[str, int]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.log.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match else 0
        if start >= len(data) and match:
            self.send_error(416)
            return
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.path in self.cut:
            body = body[: self.cut.pop(self.path)]
            self.close_connection = True
        self.wfile.write(body)


@contextmanager
def serve_folder(
    root: Path, cut: dict[str, int] | None = None
) -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """Serve ``root`` on 127.0.0.1; yields the base URL and the request log ``[(path, Range header)]``."""
    log: list[tuple[str, str | None]] = []
    handler = type("Handler", (RangeHandler,), {"log": log, "cut": dict(cut or {})})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()
