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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from satcnn.checks import require_at_least, require_in_range
from satcnn.errors import ConfigError, SatcnnError
from satcnn.flags import option
from satcnn.service import STOP_SIGNALS, StopSignals, browser_url, check_port_free, host_option, is_loopback
from satcnn.tracking.process_tree import ProcessTree
from satcnn.tracking.store import default_tracking_uri

log = logging.getLogger(__name__)

__all__ = ["STOP_SIGNALS", "UiOptions", "is_loopback", "serve_ui"]

JOB_EXECUTION_ENV = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"  # mlflow.environment_variables, MLflow 3
STOP_GRACE_S = 10.0  # SIGTERM first; SIGKILL what still runs after this
# MLflow 3.17's UI opens in its GenAI view (traces, agent versions) unless the browser chose
# "Model training" before (a switch it keeps in local storage) or the address asks for it; the
# experiments' ``mlflow.experimentKind`` tag (satcnn.tracking.client) is what earlier 3.x UIs read.
# So satcnn links to pages with ``workflowType=machine_learning``; MLflow's links keep it.
TRAINING_VIEW_QUERY = "workflowType=machine_learning"


def training_view_url(base: str, experiment_id: str | None = None) -> str:
    """``base``'s page of experiment ``experiment_id`` (default: the home page) in the training view."""
    page = f"experiments/{experiment_id}" if experiment_id is not None else ""
    return f"{base}/#/{page}?{TRAINING_VIEW_QUERY}"


def latest_experiment(store: str) -> str | None:
    """The experiment of the newest run in ``store`` (the page a user most likely wants), if any."""
    from mlflow import MlflowClient

    try:
        client = MlflowClient(store)
        ids = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        runs = client.search_runs(ids, max_results=1, order_by=["attributes.start_time DESC"]) if ids else []
    except Exception as err:  # only a nicer link is lost
        log.debug("could not read the newest run of %s: %s", store, err)
        return None
    return str(runs[0].info.experiment_id) if runs else None


# MLflow's start-up banner advises ``--host 0.0.0.0`` to reach the UI from elsewhere, the opposite of
# satcnn's advice (loopback and an SSH tunnel): it is not relayed, satcnn says its own (serve_ui).
MLFLOW_HOST_BANNER = b"[MLflow] Security middleware enabled with default settings"


def is_mlflow_host_banner(line: bytes) -> bool:
    """Whether ``line`` is MLflow's banner advising ``--host 0.0.0.0``."""
    return line.lstrip().startswith(MLFLOW_HOST_BANNER)


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

    host: str = host_option()
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

    def training_view(self, experiment_id: str | None = None) -> str:
        """The address of an experiment (default: the experiment list) in the model-training view."""
        return training_view_url(self.url, experiment_id)


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
    pool = ThreadPoolExecutor(1)  # looks up the page to link once the server made its store
    with StopSignals().installed() as stop:
        tree = ProcessTree(server_command(options), server_env(), sys.stderr.buffer, is_mlflow_host_banner)
        try:
            newest: Future[str | None] | None = None
            announced = False
            while not stop.wait(0.25):
                code = tree.poll()
                if code is not None:
                    _server_ended(tree, options, code, newest is not None)
                tree.refresh()
                if newest is None and tree.listens_on(options.port):
                    tree.relay.release()
                    newest = pool.submit(latest_experiment, options.store_uri)
                if newest is not None and newest.done() and not announced:
                    announced = True
                    page = options.training_view(newest.result())
                    log.info("MLflow UI on %s for %s (Ctrl-C to stop)", page, options.store_uri)
                    if is_loopback(options.host):
                        log.info(
                            "this machine only: to open it from another one, use an SSH tunnel "
                            "(ssh -L %d:127.0.0.1:%d THIS_HOST) rather than --host 0.0.0.0",
                            options.port,
                            options.port,
                        )
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
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
