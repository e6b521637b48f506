#!/usr/bin/env bash
# The GPU table in one command: channels_last, bf16 and compile, each on and off; training
# steps/s, inference MP/s and the fraction of the GPU's bf16 peak (PEAK_TFLOPS, dense bf16:
# e.g. 989 for H100/H200 SXM, 312 for A100). Writes bench/results/gpu.json (and ray_gpu.json: the Ray engine on 1 and N GPUs).
# Usage: PEAK_TFLOPS=989 bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "bench/gpu.sh: no CUDA GPU visible to torch (torch.cuda.is_available() is False); run it on a GPU machine" >&2
  exit 1
fi
: "${PEAK_TFLOPS:?set PEAK_TFLOPS to the dense bf16 peak of the GPU in TFLOP/s (989 for H100/H200 SXM, 312 for A100)}"
"$PY" bench/bench_precision.py --device cuda --batch 32 --patch 256 --window 1024 --steps 20 --warmup 5 \
  --filters 64 128 256 512 --precisions 32 bf16-mixed --peak-tflops "$PEAK_TFLOPS" --name gpu
# One process against --engine ray on 1 and on every GPU (one model actor per GPU; a local Ray cluster
# started once): bench/results/ray_gpu.json.
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
WORKERS=1
if [ "$NGPU" -gt 1 ]; then WORKERS="1 $NGPU"; fi
"$PY" bench/bench_ray.py --size 8192 16384 --filters 64 128 256 512 --device cuda --gpus-per-worker 1 \
  --workers $WORKERS --running-cluster --name ray_gpu
