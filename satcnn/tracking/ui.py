"""``satcnn ui``: the MLflow UI on the project's tracking store, run as a well-behaved service.

- The port is checked before the server starts, and a server that dies at start because the
  port was taken meanwhile is reported the same way: one line, exit status 1.
- The server runs in its own session (see ``process_tree``): SIGINT, SIGTERM or SIGHUP to
  satcnn stops the whole tree (``mlflow server``, uvicorn and its workers) quietly, and satcnn
  then exits 0, since being stopped is how a service ends.
- MLflow's job runner (huey task-queue workers for GenAI jobs, which satcnn does not use) is
  off, unless ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` is set.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from satcnn.checks import require_at_least, require_in_range
from satcnn.errors import ConfigError, SatcnnError
from satcnn.flags import option
from satcnn.service import STOP_SIGNALS, StopSignals, browser_url, check_port_free, is_loopback
from satcnn.tracking.process_tree import ProcessTree
from satcnn.tracking.store import default_tracking_uri

log = logging.getLogger(__name__)

__all__ = ["STOP_SIGNALS", "UiOptions", "is_loopback", "serve_ui"]

JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # mlflow.environment_variables, MLflow 3
STOP_GRACE_S = 10.0  # SIGTERM first; SIGKILL what still runs after this


@dataclass(frozen=True)
class UiOptions:
    """What ``satcnn ui`` serves, and where.

    Each field is also a ``satcnn ui`` flag (``satcnn.flags``); ``store`` is ``--backend-store-uri``.

    Args:
        host: address to listen on; anything but loopback exposes the runs to the network.
        port: TCP port, 1-65535.
        store: tracking store URI; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db``.
        workers: uvicorn worker processes.
        allowed_hosts: MLflow's ``--allowed-hosts`` (Host headers accepted), comma-separated.
        cors_allowed_origins: MLflow's ``--cors-allowed-origins``, comma-separated.
    """

    host: str = option(
        "127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; others print a warning)",
    )
    port: int = option(5000, help="port (default: 5000)")
    store: str | None = option(
        None,
        flag="--backend-store-uri",
        help="tracking store (default: $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlflow.db)",
    )
    workers: int = option(1, help="server worker processes (default: 1)")
    allowed_hosts: str | None = option(
        None,
        help="Host headers the server accepts, comma-separated, wildcards allowed "
        "(MLflow's default: localhost and private addresses)",
    )
    cors_allowed_origins: str | None = option(
        None,
        help="origins allowed to make cross-site changes, comma-separated (MLflow's default: localhost)",
    )

    def __post_init__(self) -> None:
        require_in_range("port", self.port, 1, 65535)
        require_at_least("workers", self.workers, 1)

    @property
    def store_uri(self) -> str:
        """The tracking store the server reads."""
        return self.store or default_tracking_uri()

    @property
    def url(self) -> str:
        """The address to open in a browser."""
        return browser_url(self.host, self.port)


def server_command(options: UiOptions) -> list[str]:
    """The ``mlflow server`` command line for ``options``."""
    store = options.store_uri
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    cmd += ["--registry-store-uri", store, "--host", options.host, "--port", str(options.port)]
    cmd += ["--workers", str(options.workers)]
    if options.allowed_hosts:
        cmd += ["--allowed-hosts", options.allowed_hosts]
    if options.cors_allowed_origins:
        cmd += ["--cors-allowed-origins", options.cors_allowed_origins]
    return cmd


def server_env() -> dict[str, str]:
    """The server's environment: ours, with MLflow's job runner off unless asked for."""
    env = dict(os.environ)
    env.setdefault(JOB_EXECUTION_ENV, "false")
    return env


def _check(options: UiOptions) -> None:
    """Validate before starting anything: store, port, exposure."""
    store = options.store_uri
    if store.startswith(("http://", "https://")):
        raise ConfigError(f"the tracking store {store} is a server already: open it in a browser")
    check_port_free(options.host, options.port)
    if not is_loopback(options.host):
        log.warning(
            "--host %s makes the UI reachable from other machines, with no login: anyone who can "
            "reach port %d can read and delete runs. Prefer the default 127.0.0.1 and an SSH tunnel, "
            "or set --allowed-hosts and --cors-allowed-origins",
            options.host,
            options.port,
        )
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).exists():
        log.warning("no tracking store at %s yet: run `satcnn fit ...` first; serving an empty one", store)


def serve_ui(options: UiOptions) -> int:
    """Serve the MLflow UI until SIGINT/SIGTERM/SIGHUP, then stop the whole server tree.

    Returns:
        0 after a stop by signal (the normal end of a service).

    Raises:
        ConfigError: the store is a server, or the port is taken (before or during start).
        SatcnnError: the server stopped by itself.
    """
    _check(options)
    with StopSignals().installed() as stop:
        tree = ProcessTree(server_command(options), server_env(), sys.stderr.buffer)
        try:
            ready = False
            while not stop.wait(0.25):
                code = tree.poll()
                if code is not None:
                    _server_ended(tree, options, code, ready)
                tree.refresh()
                if not ready and tree.listens_on(options.port):
                    ready = True
                    tree.relay.release()
                    log.info("MLflow UI on %s for %s (Ctrl-C to stop)", options.url, options.store_uri)
        finally:
            tree.stop(STOP_GRACE_S, hurry=lambda: len(stop.received) > 1)
    log.info("MLflow UI stopped (%s)", stop.name)
    return 0


def _server_ended(tree: ProcessTree, options: UiOptions, code: int, ready: bool) -> NoReturn:
    """Turn a server that stopped by itself into one error line (its output held back is logged at DEBUG)."""
    tree.stop(STOP_GRACE_S)
    output = b"".join(tree.relay.lines).decode(errors="replace").strip()
    log.debug("mlflow server output:\n%s", output)
    if not ready:
        check_port_free(options.host, options.port)  # raises: the port was taken while it started
        last = output.splitlines()[-1] if output else "no output"
        raise SatcnnError(f"the MLflow server did not start (exit status {code}): {last}")
    raise SatcnnError(f"the MLflow server stopped by itself (exit status {code}); see its messages above")
