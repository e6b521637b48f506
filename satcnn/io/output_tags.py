"""The tags on satcnn's raster outputs: one typed schema that writes them, reads them and judges them.

Every tag name is spelled here and nowhere else. ``satcnn infer`` writes these dataset tags:

=========================  ==================  =====================================================
tag                        field               meaning
=========================  ==================  =====================================================
``SATCNN_OUTPUT``          ``output``          ``prob_uint8``, ``prob_float32``, ``mask``, ``class_map``
``SATCNN_TTA``             ``tta``             test-time augmentation: ``none``, ``flip``, ``d4``
``SATCNN_THRESHOLD``       ``threshold``       masks: road where ``p >= threshold``
``CLASS_NAMES``            ``classes``         class maps: JSON list of class names by index
``CLASS_<i>``              ``classes``         class maps: the name of class ``i`` (written only)
``PATCH_SIZE``             ``patch_size``      class maps: the classifier's window ``P``
``STRIDE``                 ``stride``          class maps: the window stride ``S``
``ALIGN``                  ``align``           class maps: ``center`` or ``corner``
``SATCNN_SOURCE``          ``source``          file name of the input raster
``SATCNN_SOURCE_HREF``     ``source_href``     remote inputs: the href without its query
``SATCNN_SOURCE_VERSION``  ``source_version``  remote inputs: ``etag:<ETag>`` or ``last-modified:<date>``
``SATCNN_MODEL``           ``run.model``       the model URI or path as given (informative)
``SATCNN_MODEL_DIGEST``    ``run.model_digest``  SHA-256 of the model's weights
``SATCNN_PRECISION``       ``run.precision``   ``32``, ``bf16-mixed`` or ``16-mixed``
``SATCNN_MODEL_VERSION``   ``run.model_version``  registered models: ``<name>/<version>``
``SATCNN_BANDS``           ``run.bands``       the band selection (``auto``: the model's default)
``SATCNN_RESCALE``         ``run.rescale``     the radiometric rule (``strict``: none)
=========================  ==================  =====================================================

The ``run`` tags are the same on every output of a run (``satcnn infer``); outputs written by
the library functions (``predict_raster``, ``classify_raster``) have none.

Staleness: a rerun keeps an existing output only when the tags that decide its pixels match
this run's (``OutputTags.decisive``): the output type, the weights digest, the mask threshold
or the class-map stride, the TTA, the band selection, the rescale rule and the precision. The
model URI, version and source name are informative: the same weights under another path are
current, a checkpoint retrained at the same path is not. An output of a remote input (an href) is
also keyed on its source: ``SATCNN_SOURCE_HREF`` and, where the server gives one,
``SATCNN_SOURCE_VERSION`` (its ETag, else its Last-Modified) must match what the server says now,
so a changed file is inferred again and an unchanged one is not fetched. An output written before
these tags existed has none: for a remote input it is recomputed once (nothing tells whether its
source changed); for a local input they are never asked. Road vectors (``*_roads.gpkg``) carry
``SATCNN_THRESHOLD`` in their GeoPackage metadata (``VectorTags``), so a new threshold redoes them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, DatasetWriter

from satcnn.errors import DataFormatError, RasterError
from satcnn.io.raster import open_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "OUTPUT_KINDS",
    "ROAD_KINDS",
    "OutputKind",
    "OutputTags",
    "RunTags",
    "VectorTags",
    "class_names",
    "is_current",
    "read_output_tags",
    "refuse_other_kind",
    "stale_reason",
]

OutputKind = Literal["prob_uint8", "prob_float32", "mask", "class_map"]
OUTPUT_KINDS: tuple[str, ...] = get_args(OutputKind)
ROAD_KINDS: tuple[str, ...] = ("prob_uint8", "prob_float32", "mask")
"""The outputs of a road model; ``class_map`` is a classifier's."""

TagValue = str | int | float

_OUTPUT = "SATCNN_OUTPUT"
_TTA = "SATCNN_TTA"
_THRESHOLD = "SATCNN_THRESHOLD"
_CLASS_NAMES = "CLASS_NAMES"
_PATCH_SIZE = "PATCH_SIZE"
_STRIDE = "STRIDE"
_ALIGN = "ALIGN"
_SOURCE = "SATCNN_SOURCE"
_SOURCE_HREF = "SATCNN_SOURCE_HREF"
_SOURCE_VERSION = "SATCNN_SOURCE_VERSION"
_RUN_TAGS = {  # RunTags field -> tag, in the order they are written
    "model": "SATCNN_MODEL",
    "model_digest": "SATCNN_MODEL_DIGEST",
    "precision": "SATCNN_PRECISION",
    "model_version": "SATCNN_MODEL_VERSION",
    "bands": "SATCNN_BANDS",
    "rescale": "SATCNN_RESCALE",
}


@dataclass(frozen=True)
class RunTags:
    """The tags every output of one ``satcnn infer`` run shares: what model made it, and how.

    Attributes:
        model: ``SATCNN_MODEL``: the model URI or path as given (informative).
        model_digest: ``SATCNN_MODEL_DIGEST``: SHA-256 of the weights (decides staleness).
        precision: ``SATCNN_PRECISION``: ``32``, ``bf16-mixed`` or ``16-mixed`` (decides).
        model_version: ``SATCNN_MODEL_VERSION``: ``<name>/<version>`` of a registered model.
        bands: ``SATCNN_BANDS``: the band selection, ``auto`` for the model's own (decides).
        rescale: ``SATCNN_RESCALE``: the radiometric rule, ``strict`` for none (decides).
    """

    model: str | None = None
    model_digest: str | None = None
    precision: str | None = None
    model_version: str | None = None
    bands: str | None = None
    rescale: str | None = None


@dataclass(frozen=True)
class OutputTags:
    """What a satcnn raster output is and what made it (the module docstring lists the tags).

    Attributes:
        output: ``SATCNN_OUTPUT``: the encoding (see ``satcnn.inference.segment``) or ``class_map``.
        tta: ``SATCNN_TTA``: ``none``, ``flip`` or ``d4``.
        threshold: ``SATCNN_THRESHOLD``: masks only, road where ``p >= threshold``.
        classes: ``CLASS_NAMES`` (and ``CLASS_<i>``): class maps only, names by class index.
        patch_size: ``PATCH_SIZE``: class maps only, the classifier's window.
        stride: ``STRIDE``: class maps only, the stride between windows.
        align: ``ALIGN``: class maps only, ``center`` or ``corner``.
        source: ``SATCNN_SOURCE``: the input's file name.
        source_href: ``SATCNN_SOURCE_HREF``: a remote input's href without its query (decides).
        source_version: ``SATCNN_SOURCE_VERSION``: a remote input's ``etag:<ETag>`` or
            ``last-modified:<date>`` when it was read (decides).
        run: The run's tags (``satcnn infer``); ``None`` for library calls.
    """

    output: OutputKind
    tta: str = "none"
    threshold: float | None = None
    classes: tuple[str, ...] = ()
    patch_size: int | None = None
    stride: int | None = None
    align: str | None = None
    source: str | None = None
    source_href: str | None = None
    source_version: str | None = None
    run: RunTags | None = None

    def to_tags(self) -> dict[str, str]:
        """The dataset tags, as strings, in the order satcnn writes them."""
        tags: dict[str, TagValue | None] = {_OUTPUT: self.output}
        if self.output == "class_map":
            tags |= {
                _CLASS_NAMES: json.dumps(list(self.classes)),
                _PATCH_SIZE: self.patch_size,
                _STRIDE: self.stride,
                _ALIGN: self.align,
            }
        tags[_TTA] = self.tta
        if self.output == "class_map":
            tags |= {f"CLASS_{i}": name for i, name in enumerate(self.classes)}
        tags |= {
            _THRESHOLD: self.threshold,
            _SOURCE: self.source,
            _SOURCE_HREF: self.source_href,
            _SOURCE_VERSION: self.source_version,
        }
        if self.run is not None:
            tags |= {tag: getattr(self.run, name) for name, tag in _RUN_TAGS.items()}
        return {k: str(v) for k, v in tags.items() if v is not None}

    def write(self, ds: DatasetWriter) -> None:
        """Write the tags onto an open dataset (other tags stay)."""
        ds.update_tags(**self.to_tags())

    def decisive(self) -> list[tuple[str, TagValue]]:
        """The tags an existing output must carry to answer this request, in the order compared.

        The output type, the weights digest, the class-map stride, the TTA, the mask threshold,
        the band selection, the rescale rule and the precision (those that are set); for a remote
        input, its href and version.
        """
        run = self.run or RunTags()
        pairs: list[tuple[str, TagValue | None]] = [
            (_OUTPUT, self.output),
            (_RUN_TAGS["model_digest"], run.model_digest),
            (_STRIDE, self.stride if self.output == "class_map" else None),
            (_TTA, self.tta),
            (_THRESHOLD, self.threshold if self.output == "mask" else None),
            (_RUN_TAGS["bands"], run.bands),
            (_RUN_TAGS["rescale"], run.rescale),
            (_RUN_TAGS["precision"], run.precision),
            (_SOURCE_HREF, self.source_href),
            (_SOURCE_VERSION, self.source_version),
        ]
        return [(k, v) for k, v in pairs if v is not None]

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], path: str | Path | None = None) -> OutputTags | None:
        """Parse a dataset's tags; ``None`` when they are not a satcnn output's (no ``SATCNN_OUTPUT``).

        Raises:
            DataFormatError: A satcnn output's tag is malformed, naming ``path`` and the tag.
        """
        output = tags.get(_OUTPUT)
        if output is None:
            return None
        if output not in OUTPUT_KINDS:
            raise _malformed(path, _OUTPUT, output, f"not one of {', '.join(OUTPUT_KINDS)}")
        run_values = {name: tags.get(tag) for name, tag in _RUN_TAGS.items()}
        return cls(
            output=output,  # type: ignore[arg-type]  # checked against OUTPUT_KINDS
            tta=tags.get(_TTA, "none"),
            threshold=_float(tags, _THRESHOLD, path),
            classes=tuple(_class_list(tags, path) or ()),
            patch_size=_int(tags, _PATCH_SIZE, path),
            stride=_int(tags, _STRIDE, path),
            align=tags.get(_ALIGN),
            source=tags.get(_SOURCE),
            source_href=tags.get(_SOURCE_HREF),
            source_version=tags.get(_SOURCE_VERSION),
            run=RunTags(**run_values) if any(v is not None for v in run_values.values()) else None,
        )


@dataclass(frozen=True)
class VectorTags:
    """The metadata of a road-vector output (GeoPackage dataset metadata): what decides its lines.

    Attributes:
        threshold: ``SATCNN_THRESHOLD``: road where ``p >= threshold`` when the lines were traced.
    """

    threshold: float

    def to_tags(self) -> dict[str, str]:
        """The metadata entries, as strings."""
        return {_THRESHOLD: str(self.threshold)}

    def decisive(self) -> list[tuple[str, TagValue]]:
        """The entries an existing vector output must carry to answer this request."""
        return [(_THRESHOLD, self.threshold)]


def _malformed(path: str | Path | None, tag: str, value: str, problem: str) -> DataFormatError:
    return DataFormatError(f"malformed satcnn output tag {tag}={value!r}: {problem}", path)


def _float(tags: Mapping[str, str], tag: str, path: str | Path | None) -> float | None:
    raw = tags.get(tag)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise _malformed(path, tag, raw, "not a number") from None


def _int(tags: Mapping[str, str], tag: str, path: str | Path | None) -> int | None:
    raw = tags.get(tag)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _malformed(path, tag, raw, "not an integer") from None


def _class_list(tags: Mapping[str, str], path: str | Path | None) -> list[str] | None:
    raw = tags.get(_CLASS_NAMES)
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list):
        raise _malformed(path, _CLASS_NAMES, raw, "not a JSON list of class names")
    return [str(n) for n in names]


def _tags_of(src: str | Path | DatasetReader) -> tuple[dict[str, str], str | Path]:
    if isinstance(src, str | Path):
        with open_dataset(src) as ds:  # an href: signed, under satcnn's GDAL configuration
            return ds.tags(), src
    return src.tags(), src.name


def read_output_tags(src: str | Path | DatasetReader) -> OutputTags | None:
    """The satcnn output tags of a raster (a path or an open dataset), or ``None`` for other rasters.

    Raises:
        DataFormatError: The raster is a satcnn output (``SATCNN_OUTPUT``) with a malformed tag.
        rasterio.errors.RasterioError, RasterError: ``src`` is a path (an href) that cannot be opened.
    """
    tags, path = _tags_of(src)
    return OutputTags.from_tags(tags, path)


def class_names(src: str | Path | DatasetReader) -> list[str] | None:
    """The ``CLASS_NAMES`` tag of a class map (satcnn's or any raster carrying it), or ``None``.

    Raises:
        DataFormatError: The tag is not a JSON list, naming the file.
    """
    tags, path = _tags_of(src)
    return _class_list(tags, path)


def refuse_other_kind(path: str | Path, kinds: Sequence[str], command: str, instead: str) -> None:
    """Refuse a satcnn output whose ``SATCNN_OUTPUT`` is not one of ``kinds`` (untagged rasters pass).

    Args:
        path: The raster.
        kinds: The output kinds ``command`` takes.
        command: The command, for the message (``satcnn vectorize roads``).
        instead: What to run on this file instead, for the message.

    Raises:
        DataFormatError: The file is a satcnn output of another kind, naming it.
    """
    try:
        tags = read_output_tags(path)
    except (RasterioError, RasterError):
        return  # unreadable: the command's own open names the problem
    if tags is not None and tags.output not in kinds:
        raise DataFormatError(
            f"is a satcnn {tags.output} output ({_OUTPUT}={tags.output}); {command} takes "
            f"{' or '.join(kinds)} outputs; {instead}",
            path,
        )


def _file_tags(path: Path) -> dict[str, str]:
    """A raster's dataset tags, or a GeoPackage's dataset metadata (vector outputs)."""
    if path.suffix.lower() == ".gpkg":
        import pyogrio

        return dict(pyogrio.read_info(path).get("dataset_metadata") or {})
    with rasterio.open(path) as ds:
        return ds.tags()


def stale_reason(path: Path, expected: OutputTags | VectorTags | None) -> str | None:
    """Why the existing output ``path`` does not answer the request ``expected``, or None.

    Each decisive tag (``OutputTags.decisive``) is compared with the file's: numbers by value
    (``0.5`` and ``0.50`` match), the rest as text. A malformed or missing tag is a reason, not an
    error. An output that expects nothing (``None``: class polygons derived from a class map)
    answers any request; road vectors (``VectorTags``) must carry the threshold that traced them.
    """
    if expected is None:
        return None
    try:
        tags = _file_tags(path)
    except Exception as err:  # rasterio's and pyogrio's error families
        return f"{path} is unreadable ({err})"
    for key, want in expected.decisive():
        have = tags.get(key)
        if isinstance(want, int | float) and not isinstance(want, bool):
            try:
                same = have is not None and float(have) == float(want)
            except ValueError:
                same = False
        else:
            same = have == str(want)
        if not same:
            return f"{path} has {key}={have!r}, this run asks for {want!r}"
    return None


def is_current(outs: Sequence[Path], expected: Sequence[OutputTags | VectorTags | None]) -> bool:
    """Whether every output exists and answers this run's request (a rerun may keep them)."""
    if not all(o.exists() for o in outs):
        return False
    reason = next((r for o, e in zip(outs, expected, strict=True) if (r := stale_reason(o, e))), None)
    if reason:
        logger.info("recomputing: %s", reason)
    return reason is None
