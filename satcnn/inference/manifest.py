"""The records a batch run leaves beside its outputs: ``manifest.json``, ``class_fractions.csv``
and the STAC catalogue of the outputs (``collection.json``, ``satcnn.io.stac_collection``).

All are written atomically. With shards, each rank writes ``manifest.rank<r>.json`` and
``class_fractions.rank<r>.csv``; the CSV merges this run's rows over the earlier rows of other
tiles, so a rerun without shards (everything skipped) writes the full table.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import rasterio
import torch

from satcnn import __version__
from satcnn.inference.model_card import card_path
from satcnn.inference.model_io import LoadedModel
from satcnn.inference.report import InferenceReport, TileResult
from satcnn.io.atomic import write_text_atomic
from satcnn.io.stac_collection import write_output_collection
from satcnn.io.stac_inputs import source_item
from satcnn.io.stac_outputs import Provenance
from satcnn.models.pretrained import PREFIX, find_pretrained, is_pretrained_ref

logger = logging.getLogger(__name__)

__all__ = ["record_names", "write_fractions", "write_manifest", "write_stac"]


def record_names(shard: tuple[int, int]) -> tuple[str, str]:
    """File names of the manifest and the class fractions of a shard ``(index, count)``."""
    suffix = f".rank{shard[0]}" if shard[1] > 1 else ""
    return f"manifest{suffix}.json", f"class_fractions{suffix}.csv"


def write_fractions(path: Path, classes: list[str], results: list[TileResult]) -> None:
    """Write ``path`` with this run's rows merged over the earlier rows of other tiles."""
    header = ["tile", "input", *classes]
    rows: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames == header:
                rows = {r["tile"]: r for r in reader}
            else:
                logger.warning("%s has other columns (%s); its rows are replaced", path, reader.fieldnames)
    for r in results:
        if r.class_fractions is not None:
            rows[r.input.stem] = {
                "tile": r.input.stem,
                "input": str(r.input),
                **{c: f"{r.class_fractions[c]:.6f}" for c in classes},
            }
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow(rows[key])
    write_text_atomic(path, buf.getvalue())


def _versions() -> dict[str, str]:
    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {
        "satcnn": __version__,
        "torch": torch.__version__,
        "rasterio": rasterio.__version__,
        "mlflow": v("mlflow"),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def _entry(result: TileResult) -> dict[str, Any]:
    """A result's manifest entry; an input read from a STAC item adds ``stac_item``, its href."""
    entry = asdict(result)
    item = source_item(result.input)
    if item is not None:
        entry["stac_item"] = item
    return entry


def write_manifest(
    path: Path,
    report: InferenceReport,
    lm: LoadedModel,
    digest: str,
    inputs: list[Path],
    params: dict[str, Any],
) -> None:
    """Write the run's manifest: model (with its weights digest), inputs, outputs, parameters, versions."""
    index, count = report.shard
    manifest = {
        "model": {
            "uri": lm.uri,
            "path": lm.path,
            "digest": digest,
            "source_run_id": lm.source_run_id,
            "registered": lm.registered or None,
            "meta": lm.meta,
        },
        "inputs": [str(p) for p in inputs],
        "outputs": [_entry(r) for r in report.results],
        "parameters": params,
        "shard": {"index": index, "count": count},
        "versions": _versions(),
        "timings": {
            "seconds": report.seconds,
            "tiles": len(report.done),
            "tiles_skipped": len(report.skipped),
            "megapixels": report.megapixels,
            "megapixels_per_s": report.megapixels_per_s,
        },
        "failures": [{"input": str(r.input), "error": r.error} for r in report.failures],
    }
    write_text_atomic(path, json.dumps(_jsonable(manifest), indent=2) + "\n")


def write_stac(
    report: InferenceReport, lm: LoadedModel, tracking_uri: str | None, out_dir: Path
) -> Path | None:
    """Write or update the STAC catalogue of ``out_dir``'s outputs; its ``collection.json``, or None.

    Sharded runs write none (the ranks would race on one file): a rerun without shards, which
    recomputes nothing, writes it.
    """
    if report.shard[1] > 1:
        logger.info("a sharded run writes no STAC catalogue: rerun without shards to write collection.json")
        return None
    card = card_path(lm.path)
    shipped = find_pretrained(lm.uri.removeprefix(PREFIX)).card_path if is_pretrained_ref(lm.uri) else None
    if tracking_uri is None and report.mlflow_run_id:
        from satcnn.tracking.store import default_tracking_uri

        tracking_uri = default_tracking_uri()
    prov = Provenance(
        model_uri=lm.uri,
        model_path=lm.path,
        model_digest=lm.weights_digest,
        model_card=card if card.is_file() else None,
        model_href=shipped,
        mlflow_run_id=report.mlflow_run_id,
        tracking_uri=tracking_uri,
    )
    outputs = [(str(r.input), r.outputs) for r in report.results if r.status != "failed" and r.outputs]
    return write_output_collection(out_dir, outputs, prov)
