"""MLflow models and the model registry: log the best checkpoint as an MLflow 3 LoggedModel, register it.

A satcnn MLflow model is a ``pyfunc`` model written as *model from code* (no pickled objects), logged
as an MLflow 3 **LoggedModel** (``mlflow.search_logged_models`` finds it; the run page lists it under
"Logged models"): its source run is the fit, the metrics logged at the best checkpoint's step are
linked to it, and registered versions point at it (its ``mlflow.modelVersions`` tag lists them).
Its only artifact is the Lightning checkpoint, ``artifacts/model.ckpt`` (its record holds everything
inference needs, see :mod:`satcnn.models.checkpoint`); the record (with the weights' digest) is
copied into the MLmodel metadata. The signature names the bands: one ``(N, H, W)`` float32 tensor of
raw digital numbers per band, named after it, in the checkpoint's band order.

The logged model is named after the network and task (``deepsat_cnn-classification``), so MLflow's
UI lists it by what it is; ``runs:/<run_id>/<that name>`` resolves to it (MLflow 3 maps a run URI to
the run's logged model of that name; models logged before were named ``model``), and
``satcnn.inference.model_io.load_model("models:/NAME/1")`` finds the ``.ckpt`` in the version's
artifacts (``resolve_model_path`` alone gives its local path).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import Model, ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import Schema, TensorSpec

from satcnn.models.checkpoint import CHECKPOINT_KEY, read_checkpoint
from satcnn.tracking.client import LOCK_RETRIES, retry_locked

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"  # what satcnn before issue 24 named every logged model
CHECKPOINT_NAME = "model.ckpt"  # the checkpoint inside the MLflow model (artifacts/model.ckpt)
DEFAULT_ALIAS = "current"  # MLflow reserves "latest"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # MLflow's own link from a logged model to its versions

_MODEL_CODE = """\
import mlflow

from satcnn.tracking.pyfunc import SatcnnPyfuncModel

mlflow.models.set_model(SatcnnPyfuncModel())
"""


def model_signature(meta: dict[str, Any]) -> ModelSignature:
    """One ``(N, H, W)`` float32 input per band, named after it; classifiers take ``patch_size`` squares.

    Outputs: ``(N, classes)`` probabilities for classifiers, ``(N, outputs, H, W)`` for segmenters.
    """
    classification = meta["task"] == "classification"
    side = int(meta["patch_size"]) if classification and meta.get("patch_size") else -1
    inputs = Schema(
        [TensorSpec(np.dtype(np.float32), (-1, side, side), name=str(band)) for band in meta["bands"]]
    )
    num_out = int(meta["model"]["kwargs"].get("num_classes", len(meta.get("classes") or [])) or -1)
    shape = (-1, num_out) if classification else (-1, num_out, -1, -1)
    outputs = Schema([TensorSpec(np.dtype(np.float32), shape)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def logged_model_name(meta: dict[str, Any]) -> str:
    """The logged model's name: network and task, e.g. ``deepsat_cnn-classification``."""
    return f"{meta['model']['name']}-{meta['task']}"


# What ``Model.log`` warns that does not apply to satcnn's models: the signature (one named tensor
# per band) is given explicitly, and type hints on ``predict`` would make MLflow derive a list-typed
# one instead (see satcnn.tracking.pyfunc); an input example would only repeat the signature.
_INAPPLICABLE_WARNINGS = ("Add type hints to the `predict` method", "An input example was not provided")


@contextlib.contextmanager
def quiet_model_logging() -> Iterator[None]:
    """Hold back MLflow's inapplicable model-logging warnings (``_INAPPLICABLE_WARNINGS``).

    MLflow resets the warning filters around its ``predict`` check (``simplefilter("once")``), so
    its warnings are caught here instead and every other warning is passed on unchanged. (Its
    artifact progress bar is off for the whole ``satcnn`` command, see ``satcnn.cli``.)
    """
    with warnings.catch_warnings(record=True) as caught:
        yield
    for w in caught:
        inapplicable = any(t in str(w.message) for t in _INAPPLICABLE_WARNINGS)
        if not (issubclass(w.category, UserWarning) and inapplicable):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


def _mlmodel_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    return {CHECKPOINT_KEY: dict(meta), "checkpoint": f"artifacts/{CHECKPOINT_NAME}"}


@contextlib.contextmanager
def use_tracking_uri(tracking_uri: str | None) -> Iterator[None]:
    """Point MLflow's fluent API at ``tracking_uri`` for the block (its model logging reads the global)."""
    if tracking_uri is None:
        yield
        return
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def log_checkpoint_model(
    client: MlflowClient,
    run_id: str,
    ckpt_path: str | Path,
    name: str | None = None,
    tracking_uri: str | None = None,
) -> ModelInfo:
    """Log the checkpoint ``ckpt_path`` as the LoggedModel ``name`` of run ``run_id``.

    The model is created through ``client`` (so in the run's experiment, whatever MLflow's globals
    say) and filled by ``mlflow.models.Model.log`` (the code path of ``mlflow.pyfunc.log_model``).
    It is recorded as an output of the run at the step its checkpoint's epoch ended on, and the
    metrics of that step (not the system metrics, whose steps count samples) are linked to it.

    Args:
        client: Client of the run's store.
        run_id: The run that trained the model.
        ckpt_path: A satcnn checkpoint.
        name: Name of the logged model (``runs:/<run_id>/<name>`` resolves to it); default
            :func:`logged_model_name`.
        tracking_uri: The store's URI (default: MLflow's current one).

    Returns:
        The ``ModelInfo``: ``model_id``, ``model_uri`` (``models:/<model_id>``), ``signature``.
    """
    from mlflow.entities import LoggedModelOutput

    ckpt = read_checkpoint(ckpt_path, "cpu")
    meta = ckpt.meta.to_dict()
    name = name or logged_model_name(meta)
    step = epoch_end_step(client, run_id, ckpt.raw.get("epoch"), int(ckpt.raw.get("global_step") or 0))
    experiment_id = client.get_run(run_id).info.experiment_id
    model = client.create_logged_model(
        experiment_id,
        name=name,
        source_run_id=run_id,
        tags={"satcnn.weights_digest": str(meta.get("weights_digest")), "satcnn.task": meta["task"]},
        params={
            "model": meta["model"]["name"],
            "bands": ",".join(meta["bands"]),
            "classes": ",".join(meta.get("classes") or []),
            "patch_size": str(meta.get("patch_size")),
        },
        model_type=f"satcnn-{meta['task']}",
    )
    with tempfile.TemporaryDirectory() as tmp, use_tracking_uri(tracking_uri), quiet_model_logging():
        code = Path(tmp) / "satcnn_model.py"
        code.write_text(_MODEL_CODE)
        checkpoint = Path(tmp) / CHECKPOINT_NAME  # MLflow keeps the source's file name
        try:
            os.link(ckpt_path, checkpoint)
        except OSError:
            shutil.copyfile(ckpt_path, checkpoint)
        # No run_id here: Model.log would link every metric logged at ``step``, system metrics too.
        # Model.log opens MLflow's own store client, outside the run's RetryingClient: retry it
        # too while another process holds the SQLite write lock (tests/tracking/test_tracking_concurrency.py)
        info = retry_locked(
            Model.log,
            LOCK_RETRIES,
            None,  # artifact_path: deprecated for ``name``
            name=name,
            flavor=mlflow.pyfunc,
            model_id=model.model_id,
            python_model=str(code),
            artifacts={"checkpoint": str(checkpoint)},
            signature=model_signature(meta),
            metadata=_mlmodel_metadata(meta),
            pip_requirements=[
                f"satcnn=={meta.get('satcnn_version', '0')}",
                f"torch=={torch.__version__.split('+')[0]}",
            ],
        )
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step)])
    link_metrics(client, run_id, model.model_id, step=step)
    log.info("logged MLflow model %s (%s, run %s, step %d)", info.model_uri, name, run_id, step)
    return info


def epoch_end_step(client: MlflowClient, run_id: str, epoch: int | None, default: int) -> int:
    """The step the run's metrics of ``epoch`` were logged at (Lightning logs ``epoch`` beside them)."""
    if epoch is None:
        return default
    steps = [m.step for m in client.get_metric_history(run_id, "epoch") if int(m.value) == int(epoch)]
    return max(steps) if steps else default


def _dataset_inputs(run: Any) -> dict[str, Any]:
    """The run's dataset inputs by context (``training``, ``evaluation``)."""
    found = {}
    for item in run.inputs.dataset_inputs if run.inputs else []:
        for tag in item.tags:
            if tag.key == "mlflow.data.context":
                found[tag.value] = item.dataset
    return found


def link_metrics(
    client: MlflowClient, run_id: str, model_id: str, step: int | None = None, prefix: str = ""
) -> int:
    """Link run metrics to the logged model ``model_id``; returns how many were linked.

    Args:
        client: Client of the run's store.
        run_id: The run.
        model_id: The logged model.
        step: Link the values logged at this step; None: each metric's latest value.
        prefix: Only metrics whose key starts with it. System metrics are never linked.

    ``train_*`` values are tied to the run's ``training`` dataset input and ``val_*``/``test_*``
    values to its ``evaluation`` one, so the model page shows, e.g., ``test_acc`` on
    ``kaggle-csv:val+test``.
    """
    from mlflow.entities import Metric

    run = client.get_run(run_id)
    datasets = _dataset_inputs(run)
    metrics = []
    for key in sorted(k for k in run.data.metrics if k.startswith(prefix) and not k.startswith("system/")):
        history = client.get_metric_history(run_id, key)
        chosen = [m for m in history if step is None or m.step == step]
        if not chosen:
            continue
        last = max(chosen, key=lambda m: (m.step, m.timestamp))
        split = key.split("_", 1)[0]
        data = datasets.get({"train": "training", "val": "evaluation", "test": "evaluation"}.get(split, ""))
        metrics.append(
            Metric(
                key,
                last.value,
                last.timestamp,
                last.step,
                model_id=model_id,
                dataset_name=data.name if data else None,
                dataset_digest=data.digest if data else None,
                run_id=run_id,
            )
        )
    for start in range(0, len(metrics), 1000):  # MLflow's batch limit
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    return len(metrics)


def find_logged_model(client: MlflowClient, run_id: str, name: str | None = None) -> Any | None:
    """The newest LoggedModel whose source run is ``run_id`` (named ``name``, if given), or None."""
    experiment_id = client.get_run(run_id).info.experiment_id
    query = f"source_run_id = '{run_id}'" + (f" AND name = '{name}'" if name else "")
    models = client.search_logged_models(
        [experiment_id],
        filter_string=query,
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
    )
    return models[0] if models else None


def register_model(
    client: MlflowClient,
    run_id: str,
    name: str,
    alias: str | None = DEFAULT_ALIAS,
    artifact_path: str | None = None,
) -> ModelVersion:
    """Register the run's logged model as a new version of ``name``; point ``alias`` at it.

        The version's source is the logged model's artifact location and it carries the model's id;
        the logged model's ``mlflow.modelVersions`` tag gains the version (as ``mlflow.register_model``
        does, but through ``client``, so no global tracking or registry URI is read). A run logged
        before satcnn used logged models has its model under the run's artifacts (``artifact_path``,
    default ``model``); that is the source then. ``artifact_path`` also picks a logged model by name.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    logged = find_logged_model(client, run_id, artifact_path)
    if logged is None:
        folder = artifact_path or MODEL_ARTIFACT
        source = client.get_run(run_id).info.artifact_uri.rstrip("/") + f"/{folder}"
        version = client.create_model_version(name, source, run_id=run_id)
    else:
        version = client.create_model_version(
            name, logged.artifact_location, run_id=run_id, model_id=logged.model_id
        )
        linked = json.loads(logged.tags.get(MODEL_VERSIONS_TAG) or "[]")
        linked.append({"name": name, "version": str(version.version)})
        client.set_logged_model_tags(logged.model_id, {MODEL_VERSIONS_TAG: json.dumps(linked)})
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    log.info("registered %s version %s%s", name, version.version, f" (@{alias})" if alias else "")
    return version
