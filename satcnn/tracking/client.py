"""A store several processes can share: SQLite lock retries, the busy timeout, the store-creation lock.

Every fit, inference, evaluation and pipeline writes the same local ``mlflow.db`` by default.
SQLite lets one process write at a time; these helpers make the others wait instead of failing.
No Lightning import here: inference and evaluation use them without it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_RETRIES = 8  # on top of SQLite's own 20 s busy timeout that MLflow sets per session
BUSY_TIMEOUT_MS = 20000  # what MLflow sets on its own SQLite sessions


def is_locked(err: BaseException) -> bool:
    """Whether ``err`` is SQLite's "database is locked" (raw, from SQLAlchemy or wrapped by MLflow)."""
    text = str(err).lower()
    return "database is locked" in text or "database table is locked" in text


def retry_locked(fn: Callable[..., Any], retries: int, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, retried up to ``retries`` times with jittered backoff while SQLite is locked.

    Raises:
        Exception: what ``fn`` raised, at once when it is not a lock, or after the last retry.
    """
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if attempt == retries or not is_locked(err):
                raise
            delay = min(5.0, 0.05 * 2**attempt) * (0.5 + random.random())
            log.warning(
                "MLflow store locked (%s), retry %d/%d in %.2fs", fn.__name__, attempt + 1, retries, delay
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


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
            return retry_locked(attr, self._retries, *args, **kwargs)

        return call


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


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow 3's UI picks an experiment's view from it
TRAINING_KIND = "custom_model_development"  # the runs/models view, not the GenAI traces one


def mark_training_experiment(client: Any, experiment: Any) -> None:
    """Tag ``experiment`` as model training for MLflow's UI, unless it already says what it is.

    Without the tag, MLflow 3's UI opens an experiment in its GenAI view (traces, agent versions).
    A kind set by the user (or chosen in the UI) is kept.
    """
    if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)


def get_or_create_experiment(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created if missing; another process creating it first is fine.

    The experiment is tagged as model training (:func:`mark_training_experiment`), old ones too.
    """
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            tags = {EXPERIMENT_KIND_TAG: TRAINING_KIND}
            return str(client.create_experiment(name=name, artifact_location=artifact_location, tags=tags))
        except MlflowException:
            found = client.get_experiment_by_name(name)  # lost the race to a concurrent run
            if found is None:
                raise
    mark_training_experiment(client, found)
    return str(found.experiment_id)
