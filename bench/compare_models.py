"""Compare the classifiers satcnn ships on 4-band 28 px patches and write ``docs/models.md``.

For each model (the DeepSat CNN, LeNet-5, AlexNet, VGG-11, Inception v3, ResNet-18, Xception and
SE-ResNet-18, built by ``satcnn.models.create_model`` with 4 input bands and 6 classes):

- parameters;
- FLOPs per patch: ``torch.utils.flop_counter.FlopCounterMode`` on one 4 x 28 x 28 patch, so the
  resize to the backbone's input side (64, or 75 for Inception) is counted, as is every
  convolution and matrix product (a multiply-add is 2 FLOPs);
- CPU patches/s: inference forward in batches of 64 (``inference_mode``, eval mode);
- accuracy on the embedded SAT-6 sample rows (``data/samples/sat6-sample``: 180 training patches
  after holding out 20, 200 test patches) after the same short training for every model:
  ``Trainer.fit`` of ``ClassificationTask`` with the same epochs, batch, AdamW learning rate and
  seed, then ``Trainer.test`` on the last weights. This is seconds of training on a few hundred
  patches: it compares how fast each network starts to learn here, not what it reaches on SAT-6.

Usage::

    .venv/bin/python bench/compare_models.py [--epochs 10] [--out docs/models.md]
    .venv/bin/python bench/compare_models.py --quick --out /tmp/models.md   # 2 models, 1 epoch
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from satcnn.data import DeepSatDataModule
from satcnn.models import create_model
from satcnn.tasks import ClassificationTask

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples" / "sat6-sample" / "kaggle-csv"
DEEPSAT_KWARGS = {"channels": [32, 64], "hidden": 128, "dropout": 0.25}  # configs/deepsat/sat6.yaml

# (what the table calls it, registry name, model kwargs)
MODELS: list[tuple[str, str, dict[str, Any]]] = [
    ("DeepSat CNN", "deepsat_cnn", DEEPSAT_KWARGS),
    ("LeNet-5", "lenet", {}),
    ("AlexNet", "alexnet", {}),
    ("VGG-11", "vgg11", {}),
    ("Inception v3", "inception_v3", {}),
    ("ResNet-18", "resnet18", {}),
    ("Xception", "xception", {}),
    ("SE-ResNet-18", "seresnet18", {}),
]
QUICK = ("deepsat_cnn", "lenet")


def majority_share() -> float:
    """The test rows' most common class share: what predicting one class scores (one-hot rows)."""
    rows = np.loadtxt(SAMPLES / "test_y_200.csv", delimiter=",", ndmin=2)
    return float(rows.sum(axis=0).max() / len(rows))


MAJORITY = majority_share()
COLUMNS = [
    "model",
    "name",
    "input side",
    "parameters",
    "MFLOPs / patch",
    "CPU patches/s",
    "training s",
    "test accuracy",
]


@dataclass
class Result:
    """One row of the table."""

    label: str
    name: str
    input_side: int
    parameters: int
    flops: int
    patches_per_s: float
    train_s: float
    accuracy: float

    def cells(self) -> list[str]:
        return [
            self.label,
            f"`{self.name}`",
            str(self.input_side),
            f"{self.parameters:,}",
            f"{self.flops / 1e6:,.2f}",
            f"{self.patches_per_s:,.0f}",
            f"{self.train_s:.1f}",
            f"{self.accuracy:.3f}",
        ]


def flops_per_patch(model: torch.nn.Module) -> int:
    """FLOPs of one forward pass on a single 4 x 28 x 28 patch (eval mode)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 4, 28, 28))
    return int(counter.get_total_flops())


def patches_per_s(model: torch.nn.Module, batch: int, batches: int) -> float:
    """Inference forward throughput on random raw patches (one warm-up batch)."""
    model.eval()
    x = torch.randint(0, 256, (batch, 4, 28, 28)).float()
    with torch.inference_mode():
        model(x)
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
    return batch * batches / (time.perf_counter() - start)


def train_and_test(name: str, kwargs: dict[str, Any], epochs: int, root: Path) -> tuple[float, float]:
    """Seconds of ``Trainer.fit`` and the test accuracy after it, on the embedded samples."""
    L.seed_everything(0, verbose=False)
    dm = DeepSatDataModule(str(SAMPLES), batch_size=32, augment=True, cache=str(root / "cache"))
    task = ClassificationTask(model=name, model_kwargs=kwargs, num_classes=6, lr=1e-3, scheduler="none")
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    seconds = time.perf_counter() - start
    metrics = trainer.test(task, datamodule=dm, verbose=False)[0]
    return seconds, float(metrics["test_acc"])


def measure(label: str, name: str, kwargs: dict[str, Any], args: argparse.Namespace) -> Result:
    model = create_model(name, in_channels=4, num_classes=6, **kwargs)
    side = int(getattr(model, "input_size", None) or model.patch_size or 28)
    result = Result(
        label=label,
        name=name,
        input_side=side,
        parameters=sum(p.numel() for p in model.parameters()),
        flops=flops_per_patch(model),
        patches_per_s=patches_per_s(model, args.batch, args.batches),
        train_s=0.0,
        accuracy=0.0,
    )
    result.train_s, result.accuracy = train_and_test(name, kwargs, args.epochs, args.work)
    logging.getLogger(__name__).info("%s: %s", name, result)
    print(" | ".join(result.cells()), flush=True)
    return result


def render(results: list[Result], args: argparse.Namespace) -> str:
    """The Markdown page."""
    lines = [
        "# Classifiers on 4-band patches",
        "",
        "Generated by `bench/compare_models.py`; do not edit by hand. Every model takes 4 bands",
        "(R, G, B, NIR) and 6 classes (SAT-6). ImageNet networks resize the 28 px patch to their",
        "*input side* inside `forward` (see `satcnn/models/classic.py`); their FLOPs include that.",
        "",
        "- FLOPs: `torch.utils.flop_counter.FlopCounterMode`, one patch, a multiply-add is 2 FLOPs.",
        f"- CPU patches/s: inference forward, batches of {args.batch}, {args.threads} threads.",
        f"- Training: `Trainer.fit` of `ClassificationTask`, {args.epochs} epochs on the 180 training",
        "  rows of `data/samples/sat6-sample` (20 held out), batch 32, AdamW lr 0.001, flips and",
        "  rotations, seed 0; accuracy on the 200 test rows with the last weights. This is seconds",
        "  of training on a few hundred patches: it shows how fast each network starts to learn",
        "  here, not what it reaches on the full SAT-6 (predicting the majority class scores 0.33).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(COLUMNS) - 2)) + "|",
    ]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in results]
    behind = [r.label for r in results if r.accuracy < MAJORITY]
    if behind:
        lines += [
            "",
            f"Below the majority-class score ({MAJORITY:.3f}) after this training: {', '.join(behind)}. "
            "Such a network has collapsed to one or two classes and needs more epochs or another learning "
            "rate here; it is listed as measured, not tuned.",
        ]
    lines += [
        "",
        f"Machine: {platform.node()} ({platform.machine()}), {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}; one run, shared with other jobs, so compare within the table.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "models.md")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64, help="patches per batch in the throughput test")
    parser.add_argument("--batches", type=int, default=10, help="batches timed per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", nargs="+", help="registry names (default: all eight)")
    parser.add_argument("--quick", action="store_true", help="the DeepSat CNN and LeNet, 1 epoch, 2 batches")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.epochs, args.batches = args.models or list(QUICK), 1, 2
    torch.set_num_threads(args.threads)
    chosen = [m for m in MODELS if args.models is None or m[1] in args.models]
    if not chosen:
        raise SystemExit(f"compare_models: none of {args.models} is one of {[m[1] for m in MODELS]}")
    with tempfile.TemporaryDirectory() as work:  # Lightning's root dir and the CSV cache
        args.work = Path(work)
        results = []
        for label, name, kwargs in chosen:  # the page after each model, so a long run keeps its rows
            results.append(measure(label, name, kwargs, args))
            args.out.write_text(render(results, args))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
