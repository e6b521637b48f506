"""What every satcnn service (``satcnn ui``, ``satcnn view``) shares: its port, its exposure, its stop.

- ``check_port_free`` binds the port as the server will, so a busy port is one line before
  anything starts (``port_in_use_error``).
- ``is_loopback`` decides whether a ``--host`` exposes the service to other machines; the
  service then warns.
- ``StopSignals`` turns SIGINT, SIGTERM and SIGHUP into a flag the main thread waits on, so a
  service stops its server itself, cleanly, and exits 0: being stopped is how a service ends.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from satcnn.errors import ConfigError
from satcnn.flags import option

__all__ = [
    "STOP_SIGNALS",
    "StopSignals",
    "bind_socket",
    "browser_url",
    "check_port_free",
    "host_option",
    "is_loopback",
]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def host_option() -> Any:
    """A service's ``--host`` option field: loopback by default (the same flag for every service)."""
    return option(
        "127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; others print a warning)",
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only ever means this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0])).is_loopback for i in infos)


def port_in_use_error(host: str, port: int, who: str = "another `satcnn ui` or MLflow server") -> ConfigError:
    """The one-line error for a port another program listens on (``who``: the likely owner)."""
    return ConfigError(
        f"port {port} on {host} is in use ({who}?): stop that server or choose another port with --port"
    )


def bind_socket(host: str, port: int, who: str = "another `satcnn ui` or MLflow server") -> socket.socket:
    """A TCP socket bound to ``host:port`` as servers bind (SO_REUSEADDR), not yet listening.

    Raises:
        ConfigError: The port is in use (``port_in_use_error``), or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise port_in_use_error(host, port, who) from None
        raise ConfigError(f"cannot listen on {host} port {port}: {err.strerror or err}") from None
    return sock


def check_port_free(host: str, port: int, who: str = "another `satcnn ui` or MLflow server") -> None:
    """Bind ``host:port`` as the server will (SO_REUSEADDR, like uvicorn), or raise ConfigError."""
    bind_socket(host, port, who).close()


def browser_url(host: str, port: int) -> str:
    """The address to open in a browser for a server listening on ``host:port``."""
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host and not host.startswith("[") else host)
    return f"http://{host}:{port}"


class StopSignals:
    """Records SIGINT/SIGTERM/SIGHUP instead of dying, while in effect (main thread only)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._event = threading.Event()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s; True once a stop signal came."""
        return self._event.wait(timeout)

    @property
    def name(self) -> str:
        """The first stop signal's name (``SIGINT``...), or ``""`` before any."""
        return signal.Signals(self.received[0]).name if self.received else ""

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopSignals]:
        """Handle the stop signals while in the block; the previous handlers come back after it."""
        # A signal the caller ignores (SIGHUP under nohup, SIGINT in a background job) stays ignored.
        wanted = [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
        previous = {s: signal.signal(s, self._handle) for s in wanted}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
