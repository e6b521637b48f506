"""Precision, compile and channels_last, each on and off: training steps/s and inference MP/s.

Model: ResUNet 16-128 (``--filters``), batch 8 of 128 px patches for training (forward, BCE,
backward, AdamW: what a ``fit`` step does besides data) and of ``--window`` px windows for
inference (``torch.inference_mode``). Precision runs the model under ``torch.autocast``, as
Lightning's ``trainer.precision`` and ``satcnn infer --precision`` do; compile is the tasks'
``compile`` option (``nn.Module.compile``, inductor). On CUDA it also reports achieved TFLOP/s
(FLOPs counted by ``torch.utils.flop_counter``) as a fraction of ``--peak-tflops``.

Usage::

    .venv/bin/python bench/bench_precision.py [--device cpu] [--steps 10] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from results_io import RESULTS, row, write_json
from torch.utils.flop_counter import FlopCounterMode

from satcnn.inference.device import autocast
from satcnn.models import create_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model(args: argparse.Namespace, channels_last: bool, compile_model: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("resunet", in_channels=4, num_classes=1, filters=args.filters).to(args.device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile_model:
        model.compile()
    return model


def _input(args: argparse.Namespace, size: int, channels_last: bool) -> torch.Tensor:
    x = torch.randn(args.batch, 4, size, size, device=args.device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _timed(fn: Any, device: torch.device, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / steps


def train_step_s(args: argparse.Namespace, precision: str, cl: bool, comp: bool) -> tuple[float, float]:
    """Seconds per training step and FLOPs per step."""
    model = _model(args, cl, comp).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = (
        _input(args, args.patch, cl),
        (torch.rand(args.batch, 1, args.patch, args.patch, device=args.device) > 0.9),
    )

    def step() -> None:
        with autocast(args.device, precision):
            loss = F.binary_cross_entropy_with_logits(model(x).float(), y.float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter, autocast(args.device, precision):
        F.binary_cross_entropy_with_logits(_model(args, cl, False)(x).float(), y.float()).backward()
    return _timed(step, args.device, args.steps, args.warmup), float(counter.get_total_flops())


def infer_mp_s(args: argparse.Namespace, precision: str, cl: bool, comp: bool) -> tuple[float, float]:
    """Model-only megapixels/s and FLOPs per batch."""
    model = _model(args, cl, comp).eval()
    x = _input(args, args.window, cl)

    def forward() -> None:
        with torch.inference_mode(), autocast(args.device, precision):
            model(x)

    with FlopCounterMode(display=False) as counter, torch.inference_mode(), autocast(args.device, precision):
        model(x)
    s = _timed(forward, args.device, args.steps, args.warmup)
    return args.batch * args.window**2 / s / 1e6, float(counter.get_total_flops()) / s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--filters", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (compilation happens here)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed"])
    parser.add_argument(
        "--compile", choices=["both", "off"], default="both", help="also time compiled models"
    )
    parser.add_argument(
        "--others-plain",
        action="store_true",
        help="time precisions after the first only with channels_last and compile off, "
        "for --other-steps steps (1 warm-up)",
    )
    parser.add_argument("--other-steps", type=int, default=1)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's bf16 dense peak")
    parser.add_argument("--name", default="precision", help="results file name")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    compiles = (False, True) if args.compile == "both" else (False,)
    base_train = base_infer = 0.0
    configs = list(itertools.product(args.precisions, (False, True), compiles))
    if args.others_plain:  # e.g. bf16 on a CPU without native bf16: emulated, minutes a step
        configs = [c for c in configs if c[0] == args.precisions[0] or not (c[1] or c[2])]
    full = (args.steps, args.warmup)
    for precision, cl, comp in configs:
        if args.others_plain:
            args.steps, args.warmup = full if precision == args.precisions[0] else (args.other_steps, 1)
        label = (
            f"precision {precision}, channels_last {'on' if cl else 'off'}, compile {'on' if comp else 'off'}"
        )
        step, flops = train_step_s(args, precision, cl, comp)
        mps, flop_s = infer_mp_s(args, precision, cl, comp)
        base_train, base_infer = base_train or 1 / step, base_infer or mps
        ref = "precision 32, channels_last off, compile off"
        rows.append(row(f"train steps/s, {label}", 1 / step, "steps/s", ref, 1 / step / base_train))
        rows.append(row(f"inference model MP/s, {label}", mps, "MP/s", ref, mps / base_infer))
        line = f"{label}: {1 / step:.2f} steps/s, {mps:.3f} MP/s"
        if args.peak_tflops:
            frac = flops / step / 1e12 / args.peak_tflops
            rows.append(row(f"train fraction of bf16 peak, {label}", frac, "of peak"))
            rows.append(
                row(f"inference fraction of bf16 peak, {label}", flop_s / 1e12 / args.peak_tflops, "of peak")
            )
            line += f", train {frac:.1%} of peak"
        print(line, flush=True)
    write_json(args.name, rows, vars(args) | {"device": str(args.device)}, args.out_dir)


if __name__ == "__main__":
    main()
