"""The training and evaluation data of a fit, logged as MLflow dataset inputs of its run.

Each fit logs two inputs (rank 0, at fit start): the training split with context ``training`` and
the validation and test splits with context ``evaluation`` (``satcnn test`` alone logs the latter).
Both are MLflow ``MetaDataset`` records: the source is the datamodule's ``root`` (file or folder,
:class:`~satcnn.data.protocol.DataRoot`),
and the digest names the data by content and split:

* the data files' **content** (sha256 over every file under ``root``, path and bytes) when they
  hold at most :data:`CONTENT_DIGEST_LIMIT` bytes, else their **file list** (relative path, size
  and modification time of each), so a 100 GB scene folder is not read twice per fit;
* the datamodule's split-defining arguments (its ``hparams`` without ``root`` and loader settings
  such as ``batch_size`` and ``num_workers``): seed, validation fraction, named scenes, limits;
* the split's name.

Input tags say which digest it is (``satcnn.digest_kind``: ``content`` or ``file-list``) and how
many files and bytes it covers. Logging data inputs never fails a fit: a store error is a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from satcnn.data.protocol import has_data_root, trainer_datamodule
from satcnn.io.remote import is_href
from satcnn.tracking.logger import mlflow_logger

log = logging.getLogger(__name__)

__all__ = ["CONTENT_DIGEST_LIMIT", "DataFingerprint", "MLflowDatasetsCallback", "fingerprint"]

CONTENT_DIGEST_LIMIT = 1 << 30  # bytes of data files hashed by content; above, the file list
DIGEST_CHARS = 32  # MLflow stores dataset digests in 36 characters
CONTEXT_TAG = "mlflow.data.context"
LOADER_ARGS = frozenset({"batch_size", "num_workers", "cache"})  # do not change which samples a split holds
SPLITS: dict[str, tuple[str, str]] = {  # context -> (splits, dataset name suffix)
    "training": ("train", "train"),
    "evaluation": ("val,test", "val+test"),
}


@dataclass(frozen=True)
class DataFingerprint:
    """What a digest of the data files covered.

    Attributes:
        digest: sha256 hex of the files' content or of their list.
        kind: ``content`` or ``file-list``.
        files: Number of files.
        size: Their total size in bytes.
    """

    digest: str
    kind: Literal["content", "file-list"]
    files: int
    size: int


def _data_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file())


def fingerprint(root: str | Path, limit: int = CONTENT_DIGEST_LIMIT) -> DataFingerprint:
    """Digest of the files at ``root`` (a file or a folder): by content up to ``limit`` bytes, else by list.

    Raises:
        OSError: ``root`` or a file below it cannot be read.
    """
    base = Path(root)
    files = _data_files(base)
    stats = [f.stat() for f in files]
    size = sum(s.st_size for s in stats)
    kind: Literal["content", "file-list"] = "content" if size <= limit else "file-list"
    h = hashlib.sha256()
    for path, stat in zip(files, stats, strict=True):
        rel = path.name if path == base else path.relative_to(base).as_posix()
        h.update(rel.encode() + b"\0")
        if kind == "content":
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        else:
            h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        h.update(b"\0")
    return DataFingerprint(h.hexdigest(), kind, len(files), size)


def _split_args(datamodule: L.LightningDataModule) -> dict[str, Any]:
    """The datamodule's arguments that decide which samples each split holds."""
    hparams = dict(datamodule.hparams)
    return {k: v for k, v in sorted(hparams.items()) if k not in LOADER_ARGS}


def dataset_inputs(datamodule: L.LightningDataModule, contexts: list[str]) -> list[Any]:
    """One ``DatasetInput`` per context (``training``, ``evaluation``), or none without a ``root``
    (:class:`~satcnn.data.protocol.DataRoot`)."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import Dataset, DatasetInput, InputTag

    args = _split_args(datamodule)
    args.pop("root", None)  # the files' digest names the data, wherever it lies
    root = datamodule.root if has_data_root(datamodule) else None
    if not root:
        log.info("%s has no root: no dataset inputs logged", type(datamodule).__name__)
        return []
    if is_href(root):
        log.info("data root %s is a URL: no dataset inputs logged", root)
        return []
    path = Path(str(root)).expanduser().resolve()
    files = fingerprint(path)
    with warnings.catch_warnings():  # MLflow registers two local-file sources; either is right
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(path))
    inputs = []
    for context in contexts:
        splits, suffix = SPLITS[context]
        key = json.dumps({"files": files.digest, "args": args, "splits": splits}, sort_keys=True, default=str)
        dataset = MetaDataset(  # type: ignore[abstract]  # MetaDataset defines no profile: None
            source,
            name=f"{path.stem or path.name}:{suffix}",
            digest=hashlib.sha256(key.encode()).hexdigest()[:DIGEST_CHARS],
        )
        tags = {
            CONTEXT_TAG: context,
            "satcnn.splits": splits,
            "satcnn.digest_kind": files.kind,
            "satcnn.files": str(files.files),
            "satcnn.bytes": str(files.size),
            "satcnn.datamodule": type(datamodule).__name__,
        }
        record = dataset.to_dict()
        entity = Dataset(record["name"], record["digest"], record["source_type"], record["source"])
        inputs.append(DatasetInput(entity, [InputTag(k, v) for k, v in tags.items()]))
    return inputs


class MLflowDatasetsCallback(L.Callback):
    """Log the fit's training and evaluation data as dataset inputs of its MLflow run (rank 0)."""

    def __init__(self) -> None:
        self._logged: set[tuple[str, str]] = set()  # (run id, context)

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, ["training", "evaluation"])

    @rank_zero_only
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log(trainer, ["evaluation"])

    def _log(self, trainer: L.Trainer, contexts: list[str]) -> None:
        from mlflow.exceptions import MlflowException

        logger = mlflow_logger(trainer)
        datamodule = trainer_datamodule(trainer)
        if logger is None or logger.run_id is None or datamodule is None:
            return
        run_id = logger.run_id
        todo = [c for c in contexts if (run_id, c) not in self._logged]
        if not todo:
            return
        try:
            inputs = dataset_inputs(datamodule, todo)
            if inputs:
                logger.experiment.log_inputs(run_id, datasets=inputs)
        except (MlflowException, OSError) as err:
            log.warning("could not log the data as MLflow dataset inputs of run %s: %s", run_id, err)
            return
        self._logged.update((run_id, c) for c in todo)
        for item in inputs:
            log.info("logged dataset %s (%s)", item.dataset.name, item.dataset.digest)
