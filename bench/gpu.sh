#!/usr/bin/env bash
# The GPU table in one command: channels_last, bf16 and compile, each on and off; training
# steps/s, inference MP/s and the fraction of the GPU's bf16 peak (PEAK_TFLOPS, dense bf16:
# e.g. 989 for H100/H200 SXM, 312 for A100). Writes bench/results/gpu.json.
# Usage: PEAK_TFLOPS=989 bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "bench/gpu.sh: no CUDA GPU visible to torch (torch.cuda.is_available() is False); run it on a GPU machine" >&2
  exit 1
fi
: "${PEAK_TFLOPS:?set PEAK_TFLOPS to the GPU's dense bf16 peak in TFLOP/s (989 for H100/H200 SXM, 312 for A100)}"
"$PY" bench/bench_precision.py --device cuda --batch 32 --patch 256 --window 1024 --steps 20 --warmup 5 \
  --filters 64 128 256 512 --precisions 32 bf16-mixed --peak-tflops "$PEAK_TFLOPS" --name gpu
