"""The Ray cluster of a run: joining or starting it, and sharing its CPUs and GPUs between stages.

Reading must always get a CPU: Ray Data's actors hold their CPUs for the whole run, so model
actors that take every CPU leave none for the read tasks and the job never ends (two 1-CPU
actors on a 2-CPU machine). ``plan_resources`` gives the actors together at most the CPUs left
after one reader's.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from satcnn.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["INSTALL_HINT", "Resources", "check_reachable", "connect", "plan_resources", "require_ray"]

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'satcnn[ray]'"


def require_ray() -> ModuleType:
    """The ``ray`` module, with Ray Data.

    Raises:
        ConfigError: Ray (or Ray Data) is not installed; the message says how to install it.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail at once when nothing answers at the cluster ``address`` names (``host:port`` or
    ``ray://host:port``; for ``auto``, the ``RAY_ADDRESS`` that Ray joins when it is set);
    ``None`` and ``local`` start a cluster, and ``auto`` without ``RAY_ADDRESS`` is left to Ray.

    Ray itself retries an address where nothing listens for about 14 minutes (20 tries of its
    GCS client, each waiting about 40 s), printing warnings as it goes.

    Raises:
        ConfigError: The address is not ``host:port``, or its port does not accept a connection.
    """
    if address == "auto":
        address = os.environ.get("RAY_ADDRESS") or "auto"
    if address is None or address in ("local", "auto"):
        return
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r} is not auto, local, host:port or ray://host:port")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {reason} (is it running?)") from None


@contextmanager
def connect(address: str | None) -> Iterator[ModuleType]:
    """Ray, connected to the cluster at ``address`` for the block; a cluster it starts is stopped after.

    ``None`` or ``local`` start a cluster on this machine (Ray's ``local``: a ``ray.init()``
    without an address would join the cluster of ``RAY_ADDRESS`` or of the machine's last ``ray
    start``, and only disconnect from it after); ``auto``, ``host:port`` (a cluster's GCS) and
    ``ray://host:port`` (Ray Client) join a running one. A process already connected
    (``ray.init`` called before) keeps its connection. Ray's own warnings (that token
    authentication is on, at every start) are not shown: its errors are, and its logs are in the
    session's folder (``/tmp/ray/session_latest/logs``).

    Raises:
        ConfigError: Ray is missing, or the cluster cannot be reached.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    local = address in (None, "local")
    try:
        if local:
            ray.init(
                address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r}: {_first_line(err)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@dataclass(frozen=True)
class Resources:
    """How a run shares the cluster.

    Attributes:
        workers: Most model actors.
        actor_cpus: CPUs each model actor holds.
        actor_gpus: GPUs each model actor holds.
        reader_cpus: CPUs each read task holds.
    """

    workers: int
    actor_cpus: float
    actor_gpus: float
    reader_cpus: float


def plan_resources(
    cluster: dict[str, Any], workers: int | None, gpus_per_worker: float, cpus_per_reader: float
) -> Resources:
    """Share ``cluster`` (``ray.cluster_resources()``) so that a reader always finds its CPUs.

    The actors together hold at most the CPUs left after one reader's, at most one each.

    Raises:
        ConfigError: The cluster has fewer CPUs than a reader and an actor need, or fewer GPUs
            than one actor.
    """
    cpus, gpus = float(cluster.get("CPU", 0)), float(cluster.get("GPU", 0))
    spare = cpus - cpus_per_reader
    if spare <= 0:
        raise ConfigError(
            f"the Ray cluster has {cpus:g} CPUs: a reader takes {cpus_per_reader:g} (--cpus-per-reader) "
            "and the model actors need more; add CPUs or lower --cpus-per-reader"
        )
    if gpus_per_worker > 0:
        if gpus < gpus_per_worker:
            raise ConfigError(
                f"the Ray cluster has {gpus:g} GPUs; --gpus-per-worker {gpus_per_worker:g} needs more"
            )
        default = int(gpus // gpus_per_worker)
    else:
        default = max(1, int(spare))
    n = workers or default
    return Resources(n, min(1.0, spare / n), gpus_per_worker, cpus_per_reader)
