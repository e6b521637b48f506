"""MLflow tracking defaults: the local SQLite store, config logging, checkpoints and figures.

Every ``fit`` is one MLflow run. Without ``MLFLOW_TRACKING_URI`` the store is
``mlflow.db`` (SQLite) in the working directory and artifacts go to ``mlruns/``; no server
is needed. Everything here logs from rank 0 only.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from satcnn.models.checkpoint import RUN_KEY, read_checkpoint
from satcnn.tracking.store import DEFAULT_STORE, default_tracking_uri  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

BEST_CHECKPOINT_ARTIFACT = "checkpoints/best.ckpt"
LAST_CHECKPOINT_ARTIFACT = "checkpoints/last.ckpt"
PARAM_VALUE_LIMIT = 6000  # MLflow's limit on a parameter value
LOCK_RETRIES = 8  # on top of SQLite's own 20 s busy timeout that MLflow sets per session


def _rank() -> int:
    """This process's global rank as Lightning knows it (set from the launcher's environment)."""
    return int(getattr(rank_zero_only, "rank", 0))


def _is_locked(err: BaseException) -> bool:
    """Whether ``err`` is SQLite's "database is locked" (raw, from SQLAlchemy or wrapped by MLflow)."""
    text = str(err).lower()
    return "database is locked" in text or "database table is locked" in text


class RetryingClient:
    """An ``MlflowClient`` proxy whose calls retry with jittered backoff while SQLite reports a lock.

    MLflow sets ``busy_timeout`` on each SQLite session, but a write transaction that began as a
    read fails at once with "database is locked" when another process holds the write lock, so
    several runs writing one ``mlflow.db`` would otherwise lose metric batches.
    """

    def __init__(self, client: Any, retries: int = LOCK_RETRIES) -> None:
        self._client = client
        self._retries = retries

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return _retry_locked(attr, self._retries, *args, **kwargs)

        return call


def _retry_locked(fn: Callable[..., Any], retries: int, *args: Any, **kwargs: Any) -> Any:
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if attempt == retries or not _is_locked(err):
                raise
            delay = min(5.0, 0.05 * 2**attempt) * (0.5 + random.random())
            log.warning(
                "MLflow store locked (%s), retry %d/%d in %.2fs", fn.__name__, attempt + 1, retries, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


BUSY_TIMEOUT_MS = 20000  # what MLflow sets on its own SQLite sessions


@functools.cache
def sqlite_busy_timeout() -> None:
    """Give every SQLite connection SQLAlchemy opens in this process MLflow's 20 s lock timeout.

    MLflow sets ``busy_timeout`` per session, but its store setup connects without one, so a
    fit starting while another process writes ``mlflow.db`` failed after sqlite3's default 5 s.
    Installed once per process; other databases are untouched.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    event.listen(Engine, "connect", on_connect)


class SatcnnMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger with satcnn's defaults (local SQLite store, no server).

    Args:
        experiment_name: MLflow experiment.
        run_name: name of the run (MLflow picks one when empty).
        tracking_uri: store; default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///<cwd>/mlflow.db``.
        tags: run tags.
        artifact_location: artifact root of a new experiment (default ``<cwd>/mlruns/<id>``).
        run_id: continue this run instead of starting one (resuming).
    """

    def __init__(
        self,
        experiment_name: str = "satcnn",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        tags: dict[str, Any] | None = None,
        artifact_location: str | None = None,
        run_id: str | None = None,
    ) -> None:
        tracking_uri = tracking_uri or default_tracking_uri()
        tags = {**(tags or {}), **process_tags()}
        # MLflow creates a new SQLite store's schema on first use, which is not safe against
        # several processes starting at once: serialise that step with a lock file.
        # The store's setup (engine, schema check) connects outside MLflow's sessions, with sqlite3's
        # default 5 s lock timeout: wait as long as the sessions do, and retry a lock held longer.
        sqlite_busy_timeout()
        with store_init_lock(tracking_uri):
            _retry_locked(
                super().__init__,
                LOCK_RETRIES,
                experiment_name=experiment_name,
                run_name=run_name,
                tracking_uri=tracking_uri,
                tags=tags,
                log_model=False,  # the best and last checkpoints are logged by MLflowArtifactsCallback
                artifact_location=artifact_location,
                run_id=run_id,
            )
        self._mlflow_client = cast(Any, RetryingClient(self._mlflow_client))
        self._killed = False

    def mark_killed(self) -> None:
        """End the run as KILLED (not FAILED) when it is finalized: a signal stopped the fit."""
        self._killed = True

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        """End the run: FINISHED, FAILED, or KILLED after :meth:`mark_killed`."""
        super().finalize("KILLED" if self._killed and status == "failed" else status)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The MLflow client (rank 0), after creating the experiment safely against concurrent runs."""
        if not self._initialized and self._experiment_id is None and self._run_id is None:
            self._experiment_id = get_or_create_experiment(
                self._mlflow_client, self._experiment_name, self._artifact_location
            )
        return MLFlowLogger.experiment.fget(self)  # type: ignore[attr-defined]

    def resume(self, run_id: str) -> None:
        """Continue the MLflow run ``run_id`` (from a checkpoint) instead of starting a new one.

        Must be called before the trainer first touches the logger; marks the run RUNNING again.
        """
        if self._initialized and self._run_id != run_id:
            raise RuntimeError(f"the logger already started run {self._run_id}; cannot resume {run_id}")
        self._run_id = run_id
        self._initialized = False
        if _rank() == 0:
            client = self.experiment
            if client.get_run(run_id).info.status == "RUNNING":
                # Only a process that died without ending its run (SIGKILL, out of memory) leaves it so.
                client.set_terminated(run_id, "KILLED")
                log.warning(
                    "MLflow run %s was left RUNNING by a process killed hard; marked it KILLED", run_id
                )
            client.update_run(run_id, status="RUNNING")
            for key, value in process_tags().items():
                client.set_tag(run_id, key, value)
            log.info("continuing MLflow run %s", run_id)


PID_TAG = "satcnn.pid"
HOST_TAG = "satcnn.host"


def process_tags() -> dict[str, str]:
    """Tags naming the process that runs a fit, so a run it left RUNNING can be found later."""
    import socket

    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


@contextlib.contextmanager
def store_init_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<db>-init.lock`` beside a local SQLite store (no-op otherwise)."""
    if not tracking_uri.startswith("sqlite:///") or os.name != "posix":
        yield
        return
    import fcntl

    db = Path(tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}-init.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def get_or_create_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created if missing; another process creating it first is fine."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name=name, artifact_location=artifact_location))
    except MlflowException:
        found = client.get_experiment_by_name(name)  # lost the race to a concurrent run
        if found is None:
            raise
        return str(found.experiment_id)


def mlflow_logger(trainer: L.Trainer) -> MLFlowLogger | None:
    """The trainer's MLflow logger, if it has one."""
    return next((lg for lg in trainer.loggers if isinstance(lg, MLFlowLogger)), None)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; lists and scalars become strings."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:PARAM_VALUE_LIMIT]
    return flat


def log_params(logger: MLFlowLogger, params: Mapping[str, str]) -> None:
    """Log params in batches of 100 (MLflow's limit), skipping keys the run already has."""
    from mlflow.entities import Param

    client = logger.experiment
    run_id = logger.run_id
    assert run_id is not None
    existing = client.get_run(run_id).data.params
    fresh = [Param(k, v) for k, v in params.items() if k not in existing]
    for start in range(0, len(fresh), 100):
        client.log_batch(run_id, params=fresh[start : start + 100])


class MLflowSaveConfigCallback(SaveConfigCallback):
    """Log the fully resolved CLI config to MLflow: as ``config.yaml`` and as flat params (rank 0 only)."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = mlflow_logger(trainer)
        # In DDP the other ranks have no run (run_id is None there): only rank 0 logs.
        if logger is None or not trainer.is_global_zero or _rank() != 0:
            return
        run_id = logger.run_id
        if run_id is None:
            return
        text = self.parser.dump(self.config, skip_none=False)
        logger.experiment.log_text(run_id, text, "config.yaml")
        config = self.config.as_dict()
        config.pop("config", None)
        log_params(logger, flatten(config))


class MLflowArtifactsCallback(L.Callback):
    """Tie checkpoints to their run; at the end of fit log checkpoints, the MLflow model and figures.

    Every checkpoint records its run (``checkpoint[RUN_KEY]``) so that resuming from it
    continues the same run. At the end of fit, rank 0 logs ``checkpoints/best.ckpt`` and
    ``checkpoints/last.ckpt``, the best checkpoint as the MLflow 3 logged model ``model`` (see
    :mod:`satcnn.tracking.registry`), learning-rate and loss curves and the task's figures.

    Args:
        log_model: log the best checkpoint as an MLflow model at the end of fit.
    """

    def __init__(self, log_model: bool = True) -> None:
        self.log_model = log_model
        self.model_uri: str | None = None  # models:/<model_id> of the logged model
        self.model_id: str | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or _rank() != 0:
            return
        run_id = logger.run_id
        if run_id is not None:
            checkpoint[RUN_KEY] = {
                "run_id": run_id,
                "experiment_id": logger.experiment_id,
                "tracking_uri": logger._tracking_uri,
            }

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or logger.run_id is None:
            return
        client, run_id = logger.experiment, logger.run_id
        ckpt = trainer.checkpoint_callback
        if isinstance(ckpt, ModelCheckpoint):
            for path, artifact in (
                (ckpt.best_model_path, BEST_CHECKPOINT_ARTIFACT),
                (ckpt.last_model_path, LAST_CHECKPOINT_ARTIFACT),
            ):
                if path and Path(path).exists():
                    _log_file_as(client, run_id, path, artifact)
            best = ckpt.best_model_path or ckpt.last_model_path
            if ckpt.best_model_path:
                client.set_tag(run_id, "satcnn.best_checkpoint", str(Path(ckpt.best_model_path).resolve()))
            if self.log_model and best and Path(best).exists():
                from satcnn.tracking.registry import log_checkpoint_model

                info = log_checkpoint_model(client, run_id, best, tracking_uri=logger._tracking_uri)
                self.model_uri, self.model_id = info.model_uri, info.model_id
        self._log_curves(client, run_id)
        self._log_figures(trainer, pl_module, "val")

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = mlflow_logger(trainer)
        if self.model_id and logger is not None and logger.run_id is not None:
            # ``--test_after_fit`` tests the best checkpoint, which is the logged model
            from satcnn.tracking.registry import link_metrics

            link_metrics(logger.experiment, logger.run_id, self.model_id, prefix="test_")
        self._log_figures(trainer, pl_module, "test")

    @staticmethod
    def _log_curves(client: Any, run_id: str) -> None:
        """Learning-rate and loss curves from the run's metric history (the whole run, resumes included)."""
        from satcnn.tasks import figures

        keys = sorted(client.get_run(run_id).data.metrics)
        groups = {
            "learning_rate": [k for k in keys if k.startswith("lr-")],
            "loss": [k for k in keys if k.endswith("_loss") and not k.startswith("test_")],
        }
        for name, metrics in groups.items():
            histories = {k: client.get_metric_history(run_id, k) for k in metrics}
            histories = {k: h for k, h in histories.items() if h}
            if not histories:
                continue
            fig = _curves_figure(histories, name.replace("_", " "))
            client.log_figure(run_id, fig, f"figures/{name}.png")
            figures.close(fig)

    @staticmethod
    def _log_figures(trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        logger = mlflow_logger(trainer)
        if logger is None or logger.run_id is None:
            return
        from satcnn.tasks import figures

        for name, fig in figures.task_figures(pl_module, stage).items():
            logger.experiment.log_figure(logger.run_id, fig, f"figures/{name}.png")
            figures.close(fig)


def _curves_figure(histories: Mapping[str, list[Any]], ylabel: str) -> Any:
    """One line per metric against the global step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    for key, history in histories.items():
        points = sorted((m.step, m.value) for m in history)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if ylabel.startswith("learning"):
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def checkpoint_run_id(ckpt_path: str | Path) -> str | None:
    """The MLflow run a satcnn checkpoint was written by, if it records one.

    Raises:
        ModelError: the file is not a readable satcnn checkpoint (never unpickles objects).
    """
    run_id = read_checkpoint(ckpt_path, "cpu").run_info.get("run_id")
    return str(run_id) if run_id else None


def _log_file_as(client: Any, run_id: str, path: str, artifact: str) -> None:
    """Log ``path`` under the artifact path ``artifact`` (a file name of our choosing)."""
    folder, name = os.path.split(artifact)
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / name
        try:
            os.link(path, link)
        except OSError:
            import shutil

            shutil.copyfile(path, link)
        client.log_artifact(run_id, str(link), folder or None)
