"""The options of a batch inference run: one dataclass that checks every option once.

``InferenceOptions`` is what ``satcnn infer`` parses its command line into and what
``run_inference`` takes. Its constructor checks each value (ranges, choices, the shard pair) and
raises ``OptionError`` naming the option; the runner and the engine then trust the values. What
depends on the model or the machine is checked where that is known: the window against the
model's size multiple (``satcnn.inference.windows``), the device against the hardware
(``satcnn.inference.launch.resolve_device``).

The small ``require_*`` rules are also the argument checks of the public raster functions
(``predict_raster``, ``classify_raster``), so each rule is written once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from satcnn.errors import ConfigError
from satcnn.io.bands import BandSpec, parse_band_spec
from satcnn.io.radiometry import Rescale, parse_rescale
from satcnn.io.road_mask import threshold_problem

if TYPE_CHECKING:
    from satcnn.inference.model_io import LoadedModel

__all__ = [
    "OUTPUT_TYPES",
    "PRECISIONS",
    "TTA",
    "TTA_KINDS",
    "InferenceOptions",
    "OptionError",
    "OutputType",
    "Precision",
    "require_at_least",
    "require_choice",
    "require_probability",
]

OutputType = Literal["prob_uint8", "prob_float32", "mask", "both"]
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)
Precision = Literal["32", "bf16-mixed", "16-mixed"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
TTA = Literal["none", "flip", "d4"]
TTA_KINDS: tuple[str, ...] = get_args(TTA)


class OptionError(ConfigError):
    """An option has an invalid value.

    Attributes:
        option: The option's name (an ``InferenceOptions`` field or a function argument).
        problem: What is wrong with the value, e.g. ``must be >= 1, got 0``.
    """

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option} {problem}")


def require_at_least(option: str, value: int | None, low: int) -> None:
    """Raise ``OptionError`` unless ``value`` is ``None`` or an integer ``>= low``."""
    if value is not None and value < low:
        raise OptionError(option, f"must be >= {low}, got {value}")


def require_probability(option: str, value: float) -> None:
    """Raise ``OptionError`` unless ``0 <= value <= 1``."""
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise OptionError(option, f"must be in [0, 1], got {value}")


def require_choice(option: str, value: str, choices: Sequence[str]) -> None:
    """Raise ``OptionError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise OptionError(option, f"must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class InferenceOptions:
    """Everything a batch inference run needs to know, checked on construction.

    Attributes:
        model: Checkpoint path, ``runs:/...`` or ``models:/...`` URI (see ``load_model``), or a
            model already loaded.
        inputs: Raster paths, folders, globs or list files (one spec or several).
        output_dir: Output folder (created if needed).
        window: Road models: largest window side (default ``inference.windows.default_window``:
            1088 on CPU, 1536 on CUDA, at least the patch, rounded up to the ``size_multiple``).
        margin: Road models: context pixels on each side of a window's core.
        batch_size: Road models: windows per forward pass (default
            ``inference.windows.default_batch_size``: 1 on CPU, 4 on CUDA).
        output_type: Road models: ``prob_uint8``, ``prob_float32``, ``mask`` or ``both`` (the
            probability at ``<stem>.tif`` and the mask at ``<stem>_mask.tif``).
        threshold: Road models: the mask's threshold, in [0, 1]: road where ``p >= threshold``
            (``satcnn.io.road_mask``).
        stride: Classifiers: class-map stride in input pixels (default: the patch size).
        block: Classifiers: block side in input pixels.
        precision: ``32`` (float32), ``bf16-mixed`` or ``16-mixed`` (``torch.autocast`` to
            bfloat16 / float16 around the model; outputs are float32), as Lightning's
            ``trainer.precision``.
        compile: Compile the model with ``torch.compile`` (in place: its weights and digest do
            not change); pays off on large rasters and on GPUs.
        device: Torch device; plain ``cuda`` under torchrun means ``cuda:<LOCAL_RANK>``.
        overwrite: Recompute inputs whose outputs exist and are current (default: skip them).
        keep_going: Record a failing input and go on; otherwise stop at the first failure.
        progress: Show progress bars.
        track: Log the run to MLflow (experiment ``satcnn-inference``).
        tracking_uri: MLflow store (default ``default_tracking_uri()``).
        shard_index: This process's shard; with ``num_shards``, or both ``None`` to take them from
            the launcher's environment (see ``shard_from_env``).
        num_shards: Number of shards.
        bands: The source bands the model reads, in its order: 1-based indexes (``"4,3,2,5"``) or
            names matched against band descriptions and colour interpretation
            (``"red,green,blue,nir"``); lifts the band content check. Default: the model's band
            names where the raster describes them, else the training files' bands
            (``satcnn.inference.input_rule``).
        rescale: ``none``, ``percentile`` or ``MIN,MAX``: how to read a raster whose data type
            differs from the training data's (``satcnn.io.radiometry``). Default (``None``):
            strict, such a raster is refused.
        allow_no_crs: Accept inputs without a CRS (as training's ``allow_no_crs``): their outputs
            are written on the input's pixel grid without a CRS, after one warning. Otherwise
            such an input is an error naming the file and this option.
        per_tile: Classifiers: one label per tile for every tile (``predictions.csv``), whatever
            its size; by default only tiles of the model's patch size get one, and larger tiles
            get class maps (see ``satcnn.inference.per_tile``).
        tta: Test-time augmentation: ``none``, ``flip`` (4 flips) or ``d4`` (the 8 dihedral
            transforms); probabilities are averaged per window (see ``satcnn.inference.tta``).
        vector: Also vectorise each output: road graphs (``<stem>_roads.gpkg``) or class
            polygons (``<stem>_classes.gpkg``), see ``satcnn.vector``.

    Raises:
        OptionError: A value is out of range or not one of its choices.
    """

    model: str | Path | LoadedModel
    inputs: str | Path | Sequence[str | Path]
    output_dir: str | Path
    window: int | None = None
    margin: int = 32
    batch_size: int | None = None
    output_type: OutputType = "prob_uint8"
    threshold: float = 0.5
    stride: int | None = None
    block: int = 2048
    device: str = "cpu"
    precision: Precision = "32"
    compile: bool = False
    overwrite: bool = False
    keep_going: bool = False
    progress: bool = True
    track: bool = True
    tracking_uri: str | None = None
    shard_index: int | None = None
    num_shards: int | None = None
    bands: str | Sequence[str | int] | None = None
    rescale: str | None = None
    allow_no_crs: bool = False
    per_tile: bool = False
    tta: TTA = "none"
    vector: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.model, str | Path) and not str(self.model).strip():
            raise OptionError("model", "must name a checkpoint or an MLflow model URI, got ''")
        if not self.input_specs or any(not str(s).strip() for s in self.input_specs):
            raise OptionError(
                "inputs", f"must name at least one raster, folder, glob or list, got {self.inputs!r}"
            )
        if not str(self.output_dir).strip():
            raise OptionError("output_dir", "must name a folder, got ''")
        require_at_least("window", self.window, 1)
        require_at_least("margin", self.margin, 0)
        require_at_least("batch_size", self.batch_size, 1)
        require_choice("output_type", self.output_type, OUTPUT_TYPES)
        if problem := threshold_problem(self.threshold):
            raise OptionError("threshold", problem)
        require_choice("precision", self.precision, PRECISIONS)
        require_at_least("stride", self.stride, 1)
        require_at_least("block", self.block, 1)
        require_at_least("shard_index", self.shard_index, 0)
        require_at_least("num_shards", self.num_shards, 1)
        require_choice("tta", self.tta, TTA_KINDS)
        if (self.shard_index is None) != (self.num_shards is None):
            given, other = (
                ("shard_index", "num_shards") if self.num_shards is None else ("num_shards", "shard_index")
            )
            raise OptionError(given, f"must be given together with {other}")
        if (
            self.shard_index is not None
            and self.num_shards is not None
            and self.shard_index >= self.num_shards
        ):
            raise OptionError(
                "shard_index", f"must be less than num_shards {self.num_shards}, got {self.shard_index}"
            )
        try:
            parse_band_spec(self.bands)
        except ValueError as err:
            raise OptionError("bands", str(err)) from None
        try:
            self.rescale_rule  # noqa: B018 (parses and checks)
        except ValueError as err:
            raise OptionError("rescale", str(err)) from None

    @property
    def band_spec(self) -> BandSpec | None:
        """``bands`` as 1-based indexes or names (``None``: the default selection)."""
        return parse_band_spec(self.bands)

    @property
    def rescale_rule(self) -> Rescale | None:
        """``rescale`` parsed: ``"none"``, ``"percentile"``, ``(MIN, MAX)``, or ``None`` (strict)."""
        return None if self.rescale is None else parse_rescale(self.rescale)

    @property
    def input_specs(self) -> list[str | Path]:
        """The input specifications as a list."""
        return [self.inputs] if isinstance(self.inputs, str | Path) else list(self.inputs)

    @property
    def out_dir(self) -> Path:
        """The output folder as a path (``~`` expanded)."""
        return Path(self.output_dir).expanduser()
