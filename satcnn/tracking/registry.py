"""MLflow models and the model registry: log the best checkpoint as an MLflow model, register it, resolve it.

A satcnn MLflow model is a ``pyfunc`` model written as *model from code* (no pickled objects):
its only artifact is the Lightning checkpoint, ``artifacts/model.ckpt`` (its record holds everything
inference needs, see :mod:`satcnn.models.checkpoint`), its signature is the input tensor
``(N, C, H, W) float32`` in raw digital numbers, and the record (with the weights' digest) is
copied into the MLmodel metadata. ``satcnn.inference.model_io.load_model("models:/NAME/1")`` finds
the ``.ckpt`` in the version's artifacts (``resolve_model_path`` alone gives its local path).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import torch
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from satcnn.models.checkpoint import CHECKPOINT_KEY, read_checkpoint

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"  # artifact path of the MLflow model inside the run
CHECKPOINT_NAME = "model.ckpt"  # the checkpoint inside the MLflow model (artifacts/model.ckpt)
DEFAULT_ALIAS = "current"  # MLflow reserves "latest"

_MODEL_CODE = """\
import mlflow

from satcnn.tracking.pyfunc import SatcnnPyfuncModel

mlflow.models.set_model(SatcnnPyfuncModel())
"""


def checkpoint_metadata(ckpt_path: str | Path) -> dict[str, Any]:
    """The checkpoint's record as plain values, upgraded to the current format (digest included)."""
    return read_checkpoint(ckpt_path, "cpu").meta.to_dict()


def model_signature(meta: dict[str, Any]) -> ModelSignature:
    """Input ``(N, C, H, W)`` float32; classifiers take ``patch_size`` squares, segmenters any size."""
    channels = len(meta["bands"])
    classification = meta["task"] == "classification"
    side = int(meta["patch_size"]) if classification and meta.get("patch_size") else -1
    inputs = Schema([TensorSpec(np.dtype(np.float32), (-1, channels, side, side))])
    num_out = int(meta["model"]["kwargs"].get("num_classes", len(meta.get("classes") or [])) or -1)
    shape = (-1, num_out) if classification else (-1, num_out, -1, -1)
    outputs = Schema([TensorSpec(np.dtype(np.float32), shape)])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _mlmodel_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    return {CHECKPOINT_KEY: dict(meta), "checkpoint": f"artifacts/{CHECKPOINT_NAME}"}


def log_checkpoint_model(
    client: MlflowClient, run_id: str, ckpt_path: str | Path, artifact_path: str = MODEL_ARTIFACT
) -> str:
    """Log the checkpoint ``ckpt_path`` as the MLflow model ``runs:/<run_id>/<artifact_path>``.

    Returns:
        The model's ``runs:/`` URI.
    """
    meta = checkpoint_metadata(ckpt_path)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp) / "satcnn_model.py"
        code.write_text(_MODEL_CODE)
        out = Path(tmp) / "model"
        mlflow.pyfunc.save_model(  # type: ignore[attr-defined]
            path=str(out),
            python_model=str(code),
            artifacts={"checkpoint": str(ckpt_path)},
            signature=model_signature(meta),
            metadata=_mlmodel_metadata(meta),
            pip_requirements=[
                f"satcnn=={meta.get('satcnn_version', '0')}",
                f"torch=={torch.__version__.split('+')[0]}",
            ],
        )
        _rename_checkpoint(out)
        client.log_artifacts(run_id, str(out), artifact_path)
    uri = f"runs:/{run_id}/{artifact_path}"
    log.info("logged MLflow model %s", uri)
    return uri


def _rename_checkpoint(model_dir: Path) -> None:
    """Give the checkpoint the fixed name ``artifacts/model.ckpt`` (MLflow keeps the source's name)."""
    import yaml

    mlmodel = model_dir / "MLmodel"
    spec = yaml.safe_load(mlmodel.read_text())
    pyfunc = spec["flavors"]["python_function"]
    old = Path(pyfunc["artifacts"]["checkpoint"]["path"])
    new = old.with_name(CHECKPOINT_NAME)
    if old != new:
        (model_dir / old).rename(model_dir / new)
        pyfunc["artifacts"]["checkpoint"]["path"] = str(new)
        mlmodel.write_text(yaml.safe_dump(spec, sort_keys=False))


def register_model(
    client: MlflowClient,
    run_id: str,
    name: str,
    alias: str | None = DEFAULT_ALIAS,
    artifact_path: str = MODEL_ARTIFACT,
) -> ModelVersion:
    """Register ``runs:/<run_id>/<artifact_path>`` as a new version of ``name`` and point ``alias`` at it."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    source = client.get_run(run_id).info.artifact_uri.rstrip("/") + f"/{artifact_path}"
    version = client.create_model_version(name, source, run_id=run_id)
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    log.info("registered %s version %s%s", name, version.version, f" (@{alias})" if alias else "")
    return version
