"""Benchmark the exports of ``satcnn export`` against eager PyTorch: same windows, same threads.

    .venv/bin/python bench/bench_export.py --threads 2   # writes bench/results/export.md and export.json

One run: the paper's ResUNet (filters ``(64, 128, 256, 512)``, random weights) and the DeepSat
CNN, each saved as a satcnn checkpoint and exported as ONNX, ``.pt2`` and TorchScript. Each
runtime computes the same inputs (a batch of ResUNet windows; a batch of 28 px patches) after
one warm-up call; the median of ``--repeats`` calls is reported, with its ratio to eager PyTorch
(above 1: faster than eager). The largest absolute difference to eager is reported too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from results_io import RESULTS as RESULTS_DIR
from results_io import row, write_json

from satcnn.inference import load_model
from satcnn.inference.export import FORMATS, export_model
from satcnn.models import create_model
from satcnn.models.checkpoint import CheckpointMeta, ModelSpec, save_checkpoint

RESULTS = Path(__file__).parent / "results" / "export.md"
BANDS = ["red", "green", "blue", "nir"]


def _checkpoint(folder: Path, name: str, kwargs: dict[str, object], task: str, patch: int) -> Path:
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    classes = ["building", "barren", "trees", "grassland", "road", "water"]
    meta = CheckpointMeta(
        task=task,  # type: ignore[arg-type]
        model=ModelSpec(name, kwargs),
        bands=BANDS,
        mean=[100.0, 110.0, 120.0, 130.0],
        std=[40.0, 45.0, 50.0, 55.0],
        classes=classes if task == "classification" else ["background", "road"],
        patch_size=patch,
        input_dtype="uint8",
    )
    return save_checkpoint(folder / f"{name}.ckpt", model, meta)


def _runner(fmt: str, path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    if fmt == "onnx":
        return load_model(path).module
    if fmt == "pt2":
        return torch.export.load(str(path)).module()  # type: ignore[no-any-return]
    return torch.jit.load(str(path))  # type: ignore[no-any-return]


def _median_seconds(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        fn(x)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write the Markdown table and the JSON rows."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--window", type=int, default=512, help="ResUNet window side")
    ap.add_argument("--batch", type=int, default=2, help="ResUNet windows per call")
    ap.add_argument("--patches", type=int, default=1024, help="DeepSat patches per call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--json-dir", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    cases = [
        ("resunet", {"in_channels": 4, "num_classes": 1}, "segmentation", 256, (args.batch, 4, args.window)),
        ("deepsat_cnn", {"in_channels": 4, "num_classes": 6}, "classification", 28, (args.patches, 4, 28)),
    ]
    lines = [
        f"# Exports against eager PyTorch ({args.threads} threads, median of {args.repeats} calls)",
        "",
        "| model | input | runtime | ms per call | vs eager | max abs diff |",
        "|---|---|---|---|---|---|",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, kwargs, task, patch, (n, c, side) in cases:
            ckpt = _checkpoint(Path(tmp), name, kwargs, task, patch)
            x = torch.rand((n, c, side, side), generator=g) * 255
            eager = load_model(ckpt).module
            base = _median_seconds(eager, x, args.repeats)
            with torch.inference_mode():
                want = eager(x)
            shape = "x".join(map(str, x.shape))
            lines.append(f"| {name} | {shape} | eager | {base * 1e3:.1f} | 1.00 | 0 |")
            for fmt in FORMATS:
                path = export_model(ckpt, fmt, Path(tmp) / fmt, track=False).path  # type: ignore[arg-type]
                run = _runner(fmt, path)
                secs = _median_seconds(run, x, args.repeats)
                with torch.inference_mode():
                    diff = float((run(x) - want).abs().max())
                ratio = base / secs
                lines.append(f"| {name} | {shape} | {fmt} | {secs * 1e3:.1f} | {ratio:.2f} | {diff:.1e} |")
                rows.append(row(f"{name} {shape} {fmt}", secs * 1e3, "ms", f"{name} eager", ratio))
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    write_json("export", rows, vars(args), args.json_dir)


if __name__ == "__main__":
    main()
