"""DeepSat throughput: training patches/s and batch classification windows/s, satcnn against a bare
PyTorch loop with the same model, data and batch.

Writes a synthetic SAT-6 release (``sat-6-full.mat`` layout, random uint8 patches) and times, in one
process on CPU:

- training (forward, backward, AdamW step) of the DeepSat CNN of ``configs/deepsat/sat6.yaml``:
  ``Trainer.fit`` with ``DeepSatDataModule`` (default loader: per-patch reads, collation), the
  same with ``in_memory: true`` (the split as one uint8 tensor, whole batches), and a bare loop
  over the same uint8 tensor that gathers, casts and normalises each batch;
- batch classification of 28 px windows: ``Trainer.predict`` on the test split (both loaders)
  against a bare ``inference_mode`` loop over the same tensor.

Both sides normalise inside the model (``Normalize`` then the CNN), so the work per batch is the
same; the ratio is what satcnn's Lightning and data layers cost. No augmentation on either side.

Usage::

    .venv/bin/python bench/bench_deepsat.py [--train 20000] [--test 10000] [--batch 64] [--steps 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from results_io import RESULTS, row, write_json

from satcnn.data import DeepSatDataModule
from satcnn.data.deepsat import Split
from satcnn.tasks import ClassificationTask

MODEL_KWARGS = {"channels": [32, 64], "hidden": 128, "dropout": 0.25}  # configs/deepsat/sat6.yaml


def write_release(root: Path, n_train: int, n_test: int) -> Path:
    """A SAT-6 ``.mat`` release of random patches: images 28x28x4xN uint8, labels one-hot 6xN."""
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"{split}_x"] = rng.integers(0, 256, (28, 28, 4, n), dtype=np.uint8)
        arrays[f"{split}_y"] = np.eye(6, dtype=np.uint8)[rng.integers(0, 6, n)].T
    path = root / "sat-6-full.mat"
    scipy.io.savemat(path, arrays)
    return path


class Counter(L.Callback):
    """Patches and seconds from the start of batch ``warmup`` to the end of the loop."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = 0.0
        self.stop = 0.0
        self.patches = 0

    def _batch_start(self, batch: dict[str, Any], batch_idx: int) -> None:
        if batch_idx == self.warmup:
            self.start = time.perf_counter()
        if batch_idx >= self.warmup:
            self.patches += len(batch["label"])

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        self._batch_start(batch, batch_idx)

    def on_predict_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int, *a: Any) -> None:
        self._batch_start(batch, batch_idx)

    def on_train_batch_end(self, *args: Any) -> None:
        self.stop = time.perf_counter()

    def on_predict_batch_end(self, *args: Any) -> None:
        self.stop = time.perf_counter()

    def rate(self) -> float:
        return self.patches / (self.stop - self.start)


def _task() -> ClassificationTask:
    return ClassificationTask(model="deepsat_cnn", model_kwargs=MODEL_KWARGS, scheduler="none")


def _trainer(root: Path, counter: Counter, steps: int = -1) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        max_epochs=-1 if steps > 0 else None,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[counter],
        default_root_dir=root,
    )


def satcnn_rates(
    root: Path, release: Path, in_memory: bool, batch: int, steps: int, warmup: int
) -> tuple[float, float, ClassificationTask]:
    """Training patches/s and predict windows/s through Lightning and the DataModule."""
    dm = DeepSatDataModule(str(release), batch_size=batch, augment=False, in_memory=in_memory)
    task = _task()
    counter = Counter(warmup)
    _trainer(root, counter, steps).fit(task, datamodule=dm)
    train = counter.rate()
    counter = Counter(warmup)
    _trainer(root, counter).predict(task, datamodule=dm, return_predictions=False)
    return train, counter.rate(), task


def to_tensor(split: Split, idx: np.ndarray) -> torch.Tensor:
    """The patches ``idx`` of ``split`` as one uint8 ``(N, 4, 28, 28)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(split.images[idx]).transpose(0, 3, 1, 2)))


def bare_rates(
    task: ClassificationTask, release: Path, batch: int, steps: int, warmup: int
) -> tuple[float, float]:
    """The same model (a fresh copy of ``task``'s normaliser and CNN), data and batch, no Lightning."""
    dm = DeepSatDataModule(str(release), batch_size=batch, augment=False)
    dm.setup()
    assert dm.splits is not None
    images, labels = (
        to_tensor(dm.splits.train, dm.train_idx),
        torch.as_tensor(dm.splits.train.labels[dm.train_idx]),
    )
    fresh = _task()
    fresh.load_state_dict(task.state_dict())
    model = torch.nn.Sequential(fresh.normalize, fresh.model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    n, done, start = len(labels), 0, 0.0
    order = torch.randperm(n)
    for step in range(steps):
        if step == warmup:
            start = time.perf_counter()
        lo = (step * batch) % max(n - batch, 1)
        idx = order[lo : lo + batch]
        x, y = images[idx].float(), labels[idx]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += len(idx) if step >= warmup else 0
    train = done / (time.perf_counter() - start)
    test = to_tensor(dm.splits.test, np.arange(len(dm.splits.test)))
    model.eval()
    done = 0
    with torch.inference_mode():
        for i, lo in enumerate(range(0, len(test), batch)):
            if i == warmup:
                start = time.perf_counter()
            out = model(test[lo : lo + batch].float()).argmax(1)
            done += len(out) if i >= warmup else 0
    return train, done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20000, help="training patches in the release")
    parser.add_argument("--test", type=int, default=10000, help="test patches (classified)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200, help="training steps timed per side (+ warm-up)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = args.steps + args.warmup
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        release = write_release(root, args.train, args.test)
        train_default, pred_default, task = satcnn_rates(root, release, False, args.batch, steps, args.warmup)
        train_memory, pred_memory, _ = satcnn_rates(root, release, True, args.batch, steps, args.warmup)
        bare_train, bare_pred = bare_rates(task, release, args.batch, steps, args.warmup)
    ref_t, ref_p = "bare PyTorch training loop", "bare PyTorch inference loop"
    rows.append(row("DeepSat CNN training, bare PyTorch loop", bare_train, "patches/s"))
    for what, rate in (("default loader", train_default), ("in_memory", train_memory)):
        rows.append(
            row(f"DeepSat CNN training, Lightning, {what}", rate, "patches/s", ref_t, rate / bare_train)
        )
    rows.append(row("DeepSat CNN batch classification, bare PyTorch loop", bare_pred, "windows/s"))
    for what, rate in (("default loader", pred_default), ("in_memory", pred_memory)):
        rows.append(
            row(
                f"DeepSat CNN batch classification, Lightning predict, {what}",
                rate,
                "windows/s",
                ref_p,
                rate / bare_pred,
            )
        )
    for r in rows:
        ratio = f"  ({r['ratio']:.2f} of bare)" if r["ratio"] else ""
        print(f"{r['what']:62s} {r['value']:10.0f} {r['unit']}{ratio}")
    write_json("deepsat", rows, vars(args), args.out_dir)


if __name__ == "__main__":
    main()
