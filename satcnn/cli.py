"""The ``satcnn`` command line: LightningCLI for fit/validate/test/predict, plus the other commands.

Expected errors (bad input files, bad settings in a file) end with one line on stderr and exit
status 1; usage errors (an unknown command or flag, a flag value that fails its check) exit with
status 2. Neither prints a traceback. docs/cli.md has the table.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from satcnn import __version__
from satcnn.errors import Interrupted, SatcnnError, UsageError, interrupt_signal, raise_on_signal

log = logging.getLogger("satcnn")

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

HELP = f"""usage: satcnn [-h] [--version] COMMAND ...

satcnn {__version__}: land cover and road mapping from 4-band satellite and aerial imagery.

commands:
  fit        train a model (LightningCLI: --config FILE.yaml [--config overlay.yaml] [--key value ...])
  validate   evaluate a checkpoint on the validation split
  test       evaluate a checkpoint on the test split
  predict    run a model over a datamodule's predict split
  infer      turn a model and GeoTIFF tiles into georeferenced masks and class maps (COGs)
  vectorize  road rasters to road networks, class maps to polygons (GeoPackage, GeoParquet)
  evaluate   score road masks, class maps and road graphs against truth (IoU, accuracy, APLS)
  data       data tools: synth-roads, png-to-geotiff, rasterize-roads, split-scene
  ui         serve the MLflow UI on the project's tracking store
  runs       tracking store housekeeping: `runs clean` marks runs left RUNNING by a killed fit KILLED
  export     a model as ONNX, torch.export (.pt2) or TorchScript, with a STAC MLM model card
  models     shipped models (`models list`; use one with --model pretrained:NAME); `models pack` makes one
  pipeline   `pipeline run pipelines/roads.yaml`: validate, fit, register, infer, evaluate, report
  view       a local web map of an infer or pipeline output folder: imagery, probability, mask, classes, roads

Run `satcnn COMMAND --help` for a command's options, and
`satcnn fit --config configs/deepsat/sat6.yaml --print_config` to see every setting.
"""


def _not_litlogger_tip(record: logging.LogRecord) -> bool:
    return "try installing [litlogger]" not in str(record.msg)


def _setup_logging() -> None:
    """One line per message on stderr, and no third-party noise that a satcnn user cannot act on."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("satcnn").setLevel(logging.INFO)
    # Lightning's package gives its "lightning" logger a handler of its own ("INFO: ...") and lets
    # it propagate, so every Lightning message was printed twice once the root has a handler.
    logging.getLogger("lightning").propagate = False
    # Lightning advertises its hosted logger at each fit; satcnn tracks with MLflow.
    tip = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_litlogger_tip not in tip.filters:
        tip.addFilter(_not_litlogger_tip)
    # satcnn passes its own argv to LightningCLI (``main(argv)`` is also the Python API), which
    # Lightning warns about whenever sys.argv holds arguments too: by design here.
    warnings.filterwarnings("ignore", r"LightningCLI's args parameter is intended", UserWarning)
    # MLflow draws a progress bar on stderr for every artifact download, a pipeline's small stage
    # outputs and each checkpoint too; set the variable to true to see them.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Lightning's own pytree helper (lightning/pytorch/utilities/_pytree.py) builds torch's
    # deprecated LeafSpec at every fit and test; nothing in satcnn uses it.
    warnings.filterwarnings("ignore", r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning)


def _write(text: str) -> None:
    """Command output for the user (stdout), as opposed to log messages (stderr)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_lightning(argv: Sequence[str]) -> Any:
    """Run LightningCLI on ``argv`` (``fit --config ...``) and return the CLI object."""
    from satcnn.lightning_cli import SatcnnCLI

    return SatcnnCLI(args=list(argv))


def _extra_commands() -> dict[str, Callable[[list[str]], int]]:
    from satcnn import commands

    return {
        "data": commands.data_main,
        "infer": commands.infer_main,
        "ui": commands.ui_main,
        "runs": commands.runs_main,
        "vectorize": commands.vectorize_main,
        "evaluate": commands.evaluate_main,
        "export": commands.export_main,
        "models": commands.models_main,
        "pipeline": commands.pipeline_main,
        "view": commands.view_main,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``satcnn`` and ``python -m satcnn``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    if not args:
        sys.stderr.write(HELP)
        return 2
    if args[0] in ("-h", "--help"):
        _write(HELP.rstrip())
        return 0
    if args[0] == "--version":
        _write(f"satcnn {__version__}")
        return 0
    command = args[0]
    handler = signal.getsignal(signal.SIGTERM)
    try:
        if command in LIGHTNING_COMMANDS:  # Lightning handles SIGTERM itself (SatcnnCLI.fit)
            run_lightning(args)
            return 0
        extra = _extra_commands()
        if command in extra:
            # SIGTERM stops a command as Ctrl-C does: cleanup runs, one line, exit status 143
            signal.signal(signal.SIGTERM, raise_on_signal)
            return extra[command](args[1:])
    except UsageError as err:
        sys.stderr.write(f"satcnn {command}: error: {err}\n")
        return 2
    except SatcnnError as err:
        log.debug("expected error", exc_info=True)
        sys.stderr.write(f"satcnn: error: {err}\n")
        return 1
    except Interrupted as stop:
        sys.stderr.write(f"satcnn: {stop}\n")
        return stop.exit_code
    except KeyboardInterrupt as stop:
        signum = interrupt_signal(stop)
        sys.stderr.write(f"satcnn: interrupted by {signal.Signals(signum).name}\n")
        return 128 + signum
    finally:
        signal.signal(signal.SIGTERM, handler)
    sys.stderr.write(f"satcnn: error: unknown command {command!r}\n\n{HELP}")
    return 2
