"""The options of a batch inference run: one dataclass that checks every option once.

``InferenceOptions`` is what ``satcnn infer`` parses its command line into and what
``run_inference`` takes. Its constructor checks each value (ranges, choices, the shard pair) and
raises ``OptionError`` naming the option; the runner and the engine then trust the values. What
depends on the model or the machine is checked where that is known: the window against the
model's size multiple (``satcnn.inference.windows``), the device against the hardware
(``satcnn.inference.launch.resolve_device``).

Each field is also a ``satcnn infer`` flag (``satcnn.flags``: ``--batch-size`` for ``batch_size``)
and, where marked ``stage=True``, a key of a pipeline's ``infer`` stage. The ``require_*`` rules
live in ``satcnn.checks``; they are imported here for the raster functions that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from satcnn.checks import OptionError, require_above, require_at_least, require_choice
from satcnn.flags import option
from satcnn.io.bands import BandSpec, parse_band_spec
from satcnn.io.radiometry import Rescale, parse_rescale
from satcnn.io.remote import is_href
from satcnn.io.road_mask import check_threshold
from satcnn.io.stac_read import StacSearch, parse_bbox

if TYPE_CHECKING:
    from satcnn.inference.model_io import LoadedModel

__all__ = [
    "ENGINES",
    "OUTPUT_TYPES",
    "PRECISIONS",
    "TTA",
    "TTA_KINDS",
    "EngineKind",
    "InferenceOptions",
    "OptionError",
    "OutputType",
    "Precision",
]

OutputType = Literal["prob_uint8", "prob_float32", "mask", "both"]
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)
Precision = Literal["32", "bf16-mixed", "16-mixed"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
TTA = Literal["none", "flip", "d4"]
TTA_KINDS: tuple[str, ...] = get_args(TTA)
EngineKind = Literal["local", "ray"]
ENGINES: tuple[str, ...] = get_args(EngineKind)


@dataclass(frozen=True)
class InferenceOptions:
    """Everything a batch inference run needs to know, checked on construction.

    Attributes:
        model: Checkpoint path, ``runs:/...``, ``models:/...`` or ``pretrained:<name>`` (see
            ``load_model``), or a model already loaded.
        inputs: Raster paths, folders, globs, list files, remote hrefs or STAC documents (one
            spec or several; ``None`` with ``stac``).
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
        stac: A STAC API to search for input items (``satcnn.io.stac_inputs``), with
            ``collections`` (comma-separated ids), ``bbox`` (``W,S,E,N`` degrees), ``datetime``
            (an instant or ``A/B``), ``query`` (query-extension terms), ``filter`` (CQL2) and
            ``max_items``; its items are inputs beside ``inputs``.
        asset: STAC inputs: the assets to read (default: chosen by the band names).
        resample_to: STAC inputs: the asset whose grid assets on other grids are resampled to
            (default: such items are refused, naming the assets).
        engine: ``local`` (this process) or ``ray`` (a Ray Data pipeline over a cluster, see
            ``satcnn.inference.ray_engine``); the outputs are the same.
        address: Ray engine: ``auto`` (the cluster this machine belongs to), ``ray://host:port``
            (Ray Client), ``host:port`` (a cluster's GCS) or ``local``; default (``None``): a
            local cluster that the run starts and stops itself.
        workers: Ray engine: most model actors (default: one per GPU of the cluster with
            ``gpus_per_worker``, else one per CPU left after a reader's).
        gpus_per_worker: Ray engine: GPUs per model actor (0: the actors run on CPU).
        cpus_per_reader: Ray engine: CPUs per window-reading task (reserved so that reads always
            get one).

    Raises:
        OptionError: A value is out of range or not one of its choices.
    """

    model: str | Path | LoadedModel = option(
        help="checkpoint path, runs:/<run_id>[/<path>], models:/<name>/<version|@alias>, pretrained:<name>"
    )
    inputs: str | Path | Sequence[str | Path] | None = option(
        flag="--input",
        append=True,
        stage=True,
        required=False,
        help=(
            "GeoTIFF, folder, glob (quoted), list file (.txt, one path or href a line), an "
            "https://, s3://, gs:// or az:// href (read in place), or a STAC Item, ItemCollection, "
            "Catalog or Collection (.json path or href); repeatable; required unless --stac"
        ),
    )
    output_dir: str | Path = option(flag="--output", help="output folder")
    window: int | None = option(
        None,
        type=int,
        stage=True,
        help="road models: largest window side (default 1088 on CPU, 1536 on CUDA)",
    )
    margin: int = option(32, stage=True, help="road models: context pixels per side (default 32)")
    batch_size: int | None = option(
        None, type=int, stage=True, help="road models: windows per forward pass (default 1 on CPU, 4 on CUDA)"
    )
    output_type: OutputType = option(
        "prob_uint8",
        choices=OUTPUT_TYPES,
        stage=True,
        help="road models: what to write (default prob_uint8; both = probability + <stem>_mask.tif)",
    )
    threshold: float = option(0.5, stage=True, help="road models: mask threshold (default 0.5)")
    stride: int | None = option(
        None, type=int, stage=True, help="classifiers: class-map stride (default patch size)"
    )
    block: int = option(2048, stage=True, help="classifiers: class-map block side in pixels (default 2048)")
    device: str = option("cpu", stage=True, help="torch device (default cpu)")
    precision: Precision = option(
        "32",
        choices=PRECISIONS,
        stage=True,
        help="model precision: 32, or autocast to bf16/fp16 (default 32)",
    )
    compile: bool = option(False, help="compile the model with torch.compile")
    overwrite: bool = option(False, help="recompute inputs whose outputs exist")
    keep_going: bool = option(False, help="continue after a failing input; exit 1 at the end")
    progress: bool = option(True, help="no progress bars")
    track: bool = option(True, help="do not log the run to MLflow")
    tracking_uri: str | None = option(None, help="MLflow store (default $MLFLOW_TRACKING_URI or ./mlflow.db)")
    shard_index: int | None = option(None, type=int, help="this process's shard")
    num_shards: int | None = option(None, type=int, help="number of shards")
    bands: str | Sequence[str | int] | None = option(
        None,
        stage=True,
        help="source bands in the model's order: indexes (4,3,2,5) or names (red,green,blue,nir) "
        "matched against band descriptions/colour interpretation; lifts the band content check",
    )
    rescale: str | None = option(
        None,
        stage=True,
        help="none | percentile | MIN,MAX: read a raster whose data type differs from training "
        "(default: refuse it). percentile maps each band's 2-98%% range to the training range",
    )
    allow_no_crs: bool = option(
        False,
        stage=True,
        help="accept inputs without a CRS; their outputs keep the pixel grid, without a CRS",
    )
    per_tile: bool = option(
        False,
        stage=True,
        help="classifiers: one label per tile (predictions.csv) for tiles of any size "
        "(default: tiles of the patch size only)",
    )
    tta: TTA = option(
        "none",
        choices=TTA_KINDS,
        stage=True,
        help="test-time augmentation: average probabilities over 4 flips or the 8 d4 transforms",
    )
    vector: bool = option(
        False,
        stage=True,
        help="also write road graphs (<stem>_roads.gpkg) or class polygons (<stem>_classes.gpkg)",
    )

    stac: str | None = option(
        None, help="STAC API URL to search for input items (with --collections, --bbox, ...)"
    )
    collections: str | None = option(None, help="--stac: collection ids, comma-separated")
    bbox: str | None = option(
        None, metavar="W,S,E,N", help="--stac: bounding box in degrees (west,south,east,north)"
    )
    datetime: str | None = option(None, help="--stac: date-time or interval A/B (open end: ..)")
    query: Sequence[str] | None = option(
        None, append=True, help="--stac: query-extension term, e.g. 'eo:cloud_cover<10'; repeatable"
    )
    filter: str | None = option(None, help="--stac: CQL2 filter, CQL2-text or CQL2-JSON")
    max_items: int | None = option(None, type=int, help="--stac: at most this many items")
    asset: Sequence[str] | None = option(
        None, append=True, help="STAC inputs: read these assets (default: chosen by band names); repeatable"
    )
    resample_to: str | None = option(
        None,
        metavar="ASSET",
        help="STAC inputs: resample assets on other grids to this asset's grid (default: refuse them)",
    )
    engine: EngineKind = option(
        "local", choices=ENGINES, help="local (this process) or ray (a Ray cluster; default local)"
    )
    address: str | None = option(
        None,
        help="ray engine: auto | ray://host:port | host:port | local "
        "(default: a local cluster started and stopped by the run)",
    )
    workers: int | None = option(
        None, type=int, help="ray engine: most model actors (default: one per GPU, else per spare CPU)"
    )
    gpus_per_worker: float = option(0.0, help="ray engine: GPUs per model actor (default 0: CPU)")
    cpus_per_reader: float = option(1.0, help="ray engine: CPUs per window-reading task (default 1)")

    def __post_init__(self) -> None:
        if isinstance(self.model, str | Path) and not str(self.model).strip():
            raise OptionError("model", "must name a checkpoint or an MLflow model URI, got ''")
        if (not self.input_specs and self.stac is None) or any(not str(s).strip() for s in self.input_specs):
            raise OptionError(
                "inputs",
                f"must name at least one raster, folder, glob, list or STAC document (or search with "
                f"--stac), got {self.inputs!r}",
            )
        self._check_stac()
        if not str(self.output_dir).strip():
            raise OptionError("output_dir", "must name a folder, got ''")
        require_at_least("window", self.window, 1)
        require_at_least("margin", self.margin, 0)
        require_at_least("batch_size", self.batch_size, 1)
        require_choice("output_type", self.output_type, OUTPUT_TYPES)
        check_threshold("threshold", self.threshold)
        require_choice("precision", self.precision, PRECISIONS)
        require_at_least("stride", self.stride, 1)
        require_at_least("block", self.block, 1)
        require_at_least("shard_index", self.shard_index, 0)
        require_at_least("num_shards", self.num_shards, 1)
        require_choice("tta", self.tta, TTA_KINDS)
        require_choice("engine", self.engine, ENGINES)
        require_at_least("workers", self.workers, 1)
        require_at_least("gpus_per_worker", self.gpus_per_worker, 0)
        require_above("cpus_per_reader", self.cpus_per_reader, 0)
        if self.address is not None and not self.address.strip():
            raise OptionError("address", "must be auto, local, ray://host:port or host:port, got ''")
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

    def _check_stac(self) -> None:
        search_only: dict[str, object] = {"collections": self.collections, "bbox": self.bbox}
        search_only |= {"datetime": self.datetime, "query": self.query, "filter": self.filter}
        search_only["max_items"] = self.max_items
        if self.stac is None:
            given = [k for k, v in search_only.items() if v is not None]
            if given:
                raise OptionError(given[0], "searches a STAC API: give --stac URL too")
        elif not is_href(self.stac) or not self.stac.startswith(("http://", "https://")):
            raise OptionError("stac", f"must be a STAC API's http(s):// URL, got {self.stac!r}")
        require_at_least("max_items", self.max_items, 1)
        try:
            self.stac_search  # noqa: B018 (parses and checks the bbox)
        except ValueError as err:
            raise OptionError("bbox", str(err)) from None

    @property
    def stac_search(self) -> StacSearch | None:
        """The ``--stac`` search, or ``None``."""
        if self.stac is None:
            return None
        return StacSearch(
            self.stac,
            tuple(c.strip() for c in (self.collections or "").split(",") if c.strip()),
            parse_bbox(self.bbox) if self.bbox is not None else None,
            self.datetime,
            tuple(self.query or ()),
            self.filter,
            self.max_items,
        )

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
        if self.inputs is None:
            return []
        return [self.inputs] if isinstance(self.inputs, str | Path) else list(self.inputs)

    @property
    def out_dir(self) -> Path:
        """The output folder as a path (``~`` expanded)."""
        return Path(self.output_dir).expanduser()
