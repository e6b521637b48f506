"""Peak memory of one inference batch of the paper ResUNet on CPU, per window side and batch size.

Each case runs in its own subprocess, so its peak RSS (``ru_maxrss``) is that case's only: the
process builds the ResUNet (filters 64-512, 4 bands, random weights), then runs one forward of a
``batch`` x 4 x ``window`` x ``window`` input under ``torch.inference_mode`` as the runner does.
Reported: RSS after building (base), peak RSS, their difference (what the forward needs) and
seconds. This sizes ``inference.windows.CPU_WINDOW``.

Usage::

    .venv/bin/python bench/bench_window_memory.py [--cases 1152x1 1536x1 1152x2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def one(window: int, batch: int, threads: int) -> dict[str, Any]:
    """Measure one case in this process."""
    import psutil
    import torch

    from satcnn.models import create_model

    torch.set_num_threads(threads)
    model = create_model("resunet", in_channels=4, num_classes=1, filters=[64, 128, 256, 512]).eval()
    x = torch.rand(batch, 4, window, window) * 255
    base = psutil.Process().memory_info().rss / 2**20
    t = time.perf_counter()
    with torch.inference_mode():
        model(x)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "window": window,
        "batch": batch,
        "rss_base_mb": round(base),
        "rss_peak_mb": round(peak),
        "forward_mb": round(peak - base),
        "forward_mb_per_window_mp": round((peak - base) / (batch * window * window / 1e6)),
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["1152x1", "1536x1", "1152x2"], help="WINDOWxBATCH")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help="(internal) measure this case here and print JSON")
    parser.add_argument("--json", type=Path, default=RESULTS / "window_memory.json")
    args = parser.parse_args(argv)
    if args.one:
        window, batch = (int(v) for v in args.one.split("x"))
        print(json.dumps(one(window, batch, args.threads)))
        return
    rows = []
    for case in args.cases:
        cmd = [sys.executable, __file__, "--one", case, "--threads", str(args.threads)]
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
