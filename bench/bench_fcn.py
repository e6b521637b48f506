"""Class maps fully convolutionally vs window by window, on the real NAIP sample tile.

    .venv/bin/python bench/bench_fcn.py [--stride 4] [--threads 2]   # writes bench/results/fcn.md

The DeepSat CNN (random weights; speed and agreement do not depend on training) classifies every
28x28 window at ``stride`` over the 934x723 4-band NAIP tile, once with its dense layers turned into
convolutions (``as_fully_convolutional``) and once by cutting and classifying each window
(``SlidingPatchClassifier``), in one run. Reports seconds, windows per second, the speed-up and
the share of windows given the same class.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import rasterio
import torch

from satcnn.inference.model_io import SlidingPatchClassifier
from satcnn.models import Normalize, NormalizedModel, create_model

ROOT = Path(__file__).resolve().parents[1]
TILE = ROOT / "data" / "samples" / "naip" / "m_4709963_se_14_1_20200831.tif"
RESULTS = Path(__file__).parent / "results" / "fcn.md"


def timed(fn: torch.nn.Module, x: torch.Tensor, repeat: int = 3) -> tuple[float, torch.Tensor]:
    """Best wall time of ``repeat`` calls, and the output."""
    best, out = float("inf"), None
    with torch.inference_mode():
        for _ in range(repeat):
            start = time.perf_counter()
            out = fn(x)
            best = min(best, time.perf_counter() - start)
    assert out is not None
    return best, out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=4, help="window stride in pixels (a multiple of 4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with rasterio.open(TILE) as src:
        x = torch.from_numpy(src.read().astype("float32"))[None]
    model = create_model("deepsat_cnn", in_channels=4, num_classes=6).eval()
    mean, std = x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()
    fcn = NormalizedModel(model.as_fully_convolutional(), Normalize.from_stats(mean, std)).eval()
    step = args.stride // model.output_stride
    windows = NormalizedModel(SlidingPatchClassifier(model, 28, args.stride), Normalize.from_stats(mean, std))
    windows.eval()
    t_fcn, dense = timed(fcn, x)
    dense = dense[:, :, ::step, ::step]
    t_win, sliding = timed(windows, x, repeat=1)
    # the network sees 26 of a window's 28 px, so the FCN also scores windows that overhang the edge
    dense = dense[:, :, : sliding.shape[2], : sliding.shape[3]]
    n = sliding.shape[2] * sliding.shape[3]
    same = (dense.argmax(1) == sliding.argmax(1)).float().mean().item()
    max_diff = (dense - sliding).abs().max().item()
    lines = [
        "# Class maps: fully convolutional vs window by window",
        "",
        f"`bench/bench_fcn.py --stride {args.stride} --threads {args.threads}`: DeepSat CNN, every 28x28 "
        f"window at stride {args.stride} of the real NAIP tile ({x.shape[3]}x{x.shape[2]}, 4 bands): "
        f"{n:,} windows, CPU, one run.",
        "",
        "| method | seconds | windows/s |",
        "|---|---:|---:|",
        f"| fully convolutional (dense layers as convolutions) | {t_fcn:.2f} | {n / t_fcn:,.0f} |",
        f"| window by window (unfold, batches of 1024) | {t_win:.2f} | {n / t_win:,.0f} |",
        "",
        f"Speed-up **{t_win / t_fcn:.1f}x**; same class for {100 * same:.2f}% of the windows "
        f"(largest logit difference {max_diff:.1e}).",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
