# satcnn: `make demo` runs both pipelines on the embedded samples; `make test` runs the test suite;
# `make test-fast` runs the tests not marked slow (the inner loop).
# Both create .venv and install the pinned stack (constraints.txt) on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.satcnn-installed
PYTEST_ARGS ?=
# pytest-xdist workers (2 cores: 2); each test file runs whole on one worker (--dist loadfile)
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest --timeout=900 -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: install demo real-roads pretrained-roads pretrained-landcover test test-fast lint pytest bench bench-quick system-deps clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

## demo: both pipelines (pipelines/landcover.yaml, pipelines/roads.yaml) on the embedded samples and
## synthetic scenes: reports, maps and nested MLflow runs under outputs/demo (rerun: unchanged stages are reused)
DEMO := outputs/demo
demo: install
	@test -f $(DEMO)/scenes/images/scene_004.tif || \
		$(BIN)/python -m satcnn data synth-roads --out $(DEMO)/scenes --count 5 --size 512 --seed 0
	$(BIN)/python -m satcnn pipeline run pipelines/landcover.yaml --out $(DEMO)/landcover
	$(BIN)/python -m satcnn pipeline run pipelines/roads.yaml --out $(DEMO)/roads --set validate.scenes=$(DEMO)/scenes
	@echo "demo: reports $(DEMO)/landcover/report/report.html and $(DEMO)/roads/report/report.html;" \
		"outputs under $(DEMO); MLflow UI: $(BIN)/python -m satcnn ui (then browse http://127.0.0.1:5000)"

## real-roads: the Residual U-Net on 20 real Massachusetts Roads train tiles (MASS_EXTRA and data/samples),
## checkpoint chosen on 5 valid tiles, scored on 4 held-out valid tiles (pipelines/roads_massachusetts.yaml)
REAL := outputs/real-roads
MASS_EXTRA ?= ../shared/data/roads/massachusetts-extra
MASS := data/samples/roads/massachusetts/train_10078660_15
real-roads: install
	@test -d $(MASS_EXTRA)/train/sat || { echo "real-roads: no tiles in $(MASS_EXTRA); get them with" \
		"'$(BIN)/python -m satcnn data fetch massachusetts-roads --out DIR' and run 'make real-roads MASS_EXTRA=DIR'"; exit 1; }
	@test -f $(REAL)/scenes/images/14.tif || { \
		$(BIN)/python -m satcnn data import-roads $(MASS_EXTRA)/train --out $(REAL)/scenes && \
		$(BIN)/python -m satcnn data import-roads $(MASS_EXTRA)/valid --out $(REAL)/scenes && \
		$(BIN)/python -m satcnn data png-to-geotiff $(MASS)_sat.png $(MASS)_map.png \
			--out $(REAL)/scenes --resolution 1.46 --nodata 255; }
	$(BIN)/python -m satcnn pipeline run pipelines/roads_massachusetts.yaml --out $(REAL)/massachusetts

## pretrained-roads: pack the model `make real-roads` trained (MLflow models:/roads-resunet-massachusetts@real)
## as satcnn/pretrained/roads-massachusetts.{ckpt,json}: float32 weights (2.1 MB, outputs exactly those scored) and
## a card with its held-out scores
pretrained-roads: install
	$(BIN)/python -m satcnn models pack models:/roads-resunet-massachusetts@real --name roads-massachusetts \
		--recipe pipelines/roads_massachusetts.yaml --card pipelines/roads_massachusetts.card.yaml \
		--scores $(REAL)/massachusetts/evaluate/metrics.json

## pretrained-landcover: pack the land-cover model of `make demo` (models:/sat6-deepsat@pipeline, scores of its
## fit's test split) into outputs/pretrained; use it with SATCNN_PRETRAINED_DIR=outputs/pretrained
pretrained-landcover: install
	$(BIN)/python -m satcnn models pack models:/sat6-deepsat@pipeline --name landcover-sat6-demo \
		--recipe pipelines/landcover.yaml --out outputs/pretrained

## test: lint, type-check, then the whole test suite (slow tests included)
test: install lint pytest

lint: install
	$(BIN)/ruff check satcnn tests bench pipelines
	$(BIN)/ruff format --check satcnn tests bench pipelines
	$(BIN)/mypy satcnn
	$(BIN)/lint-imports

pytest: install system-deps
	$(PYTEST) $(PYTEST_ARGS)

## test-fast: the tests not marked slow (no lint, no end-to-end fits, servers, DDP or browser): the inner loop
test-fast: install
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

## system-deps: headless Chromium + chromedriver (the browser test) and PostgreSQL (the tracking-server
## test: tests/tracking/test_tracking_postgres.py); apt-get, as root, what is missing
system-deps:
	@missing=""; \
	{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || missing="chromium chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "system-deps: missing $$missing and cannot apt-get install them (need root):" \
		"the browser test will skip and the PostgreSQL tracking test will fail"; fi

## bench: speed and memory benchmarks: bench/results/*.json and docs/performance.md (one run; about 50 minutes on 2 idle cores, 14 of them the two Ray benches)
BENCH := PYTHONPATH=$(CURDIR) $(BIN)/python
bench: install
	$(BENCH) bench/bench_tiling.py
	$(BENCH) bench/bench_augment.py
	$(BENCH) bench/bench_precision.py --others-plain  # bf16 is emulated on CPUs without AVX512-BF16/AMX: one step
	$(BENCH) bench/bench_infer.py --size 1024 --threads 2
	$(BENCH) bench/bench_infer.py --size 4096 --threads 2 --formats channels_last --out bench/results/infer_4096.md
	$(BENCH) bench/bench_fcn.py --stride 4 --threads 2
	$(BENCH) bench/bench_export.py --threads 2
	$(BENCH) bench/bench_deepsat.py --threads 2
	$(BENCH) bench/bench_per_tile.py --tiles 4032
	$(BENCH) bench/bench_infer_core.py --sizes 4096 16384 --model pointwise --threads 1 \
		--json bench/results/infer_core.json
	$(BENCH) bench/bench_view.py
	$(BENCH) bench/bench_remote.py
	$(BENCH) bench/bench_ray.py --size 4096 8192 --workers 1 2 --repeat 2
	$(BENCH) bench/bench_ray.py --size 4096 8192 --workers 1 2 --repeat 2 --running-cluster --name ray_running
	$(BENCH) bench/report.py --benches tiling augment precision infer_1024 infer_4096 export deepsat view per_tile remote ray ray_running

## bench-quick: every bench of `make bench` at tiny sizes, in one process, into a temporary folder
## (bench/quick.py: a smoke run for CI, 24 s in a fresh-clone CI run on the idle 2-core machine; compile is left to `make bench`)
bench-quick: install
	$(BENCH) bench/quick.py

clean:
	rm -rf runs mlruns mlflow.db outputs .pytest_cache .mypy_cache .ruff_cache
