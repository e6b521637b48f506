#!/usr/bin/env bash
# Roads end to end, chained by artifact paths and MLflow URIs:
#   synthetic scenes -> fit ResUNet (tracked in MLflow) -> infer road probability COGs on held-out scenes.
# Usage: pipelines/roads_demo.sh [WORKDIR]   (about 10 CPU minutes on 2 cores; minutes on a GPU)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$repo/.venv/bin/python}
work=${1:-$repo/outputs/roads-demo}
mkdir -p "$work" && cd "$work"

# 1. scenes: images/<name>.tif + masks/<name>.tif, 4-band uint8, UTM, 0.5-1 m
# (files are written atomically in order, so the last scene's pair means an uninterrupted run)
if [ ! -f scenes/images/scene_005.tif ] || [ ! -f scenes/masks/scene_005.tif ]; then
  "$py" -m satcnn data synth-roads --out scenes --count 6 --size 768 --seed 0
fi

# 2. fit: scene_005 held out for validation and test; the run id comes back on stdout
"$py" -m satcnn fit --config "$repo/configs/roads/resunet.yaml" \
  --data.init_args.root scenes --data.init_args.val_scenes '[scene_005]' --data.init_args.test_scenes '[scene_005]' \
  --data.init_args.patch_size 96 --data.init_args.num_workers 0 --data.init_args.train_samples_per_epoch 256 \
  --model.init_args.model_kwargs.filters '[16, 32, 64, 128]' --model.init_args.lr 0.003 \
  --trainer.max_epochs 10 --trainer.enable_progress_bar false --test_after_fit true | tee fit.log
run_id=$(sed -n 's/^mlflow run id: //p' fit.log | tail -n 1)
if [ -z "$run_id" ]; then
  echo "roads_demo: no 'mlflow run id: ...' line in $work/fit.log; was the fit tracked? see that log" >&2
  exit 1
fi

# 3. infer from the MLflow run: probability and mask COGs on the held-out scene's grid
"$py" -m satcnn infer --model "runs:/$run_id" --input scenes/images/scene_005.tif --output predictions \
  --output-type both
echo "outputs: $work/predictions (open in QGIS next to scenes/images/scene_005.tif); runs: python -m satcnn ui"
