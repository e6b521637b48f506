"""What a satcnn task needs from its DataModule, declared once as typed protocols.

A task (:class:`~satcnn.tasks.base.SatcnnTask`) reads its input layout and normalisation from the
DataModule at ``fit`` start and writes them into the checkpoint, so the checkpoint alone serves
inference. Any ``LightningDataModule`` works if it provides:

* :class:`TaskData`, **required** by every task: ``bands``, ``in_channels``, ``patch_size``
  (``None`` where patches have no fixed side) and ``band_stats()``;
* :class:`ClassData`, **required** by the classification task: ``TaskData`` and ``classes``.

and, **optionally**, each capability as a whole (declaring part of one is an error):

* :class:`RasterBands`: ``input_dtype``, ``band_sources``, ``band_colorinterp`` (otherwise the
  checkpoint records ``uint8`` and no source bands);
* :class:`BandPercentiles`: ``band_percentiles()`` (otherwise inference's ``--rescale`` has no
  training percentiles);
* :class:`DataRoot`: ``root`` (otherwise the fit logs no MLflow dataset inputs).

:func:`require_task_data` and :func:`require_class_data` check a DataModule once, when the task
first sees it, and raise one :class:`~satcnn.errors.ConfigError` line that names the class and
every missing member. They look members up without calling properties, so checking reads no data.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeGuard

from satcnn.errors import ConfigError

if TYPE_CHECKING:
    import lightning as L

__all__ = [
    "BandPercentiles",
    "ClassData",
    "DataRoot",
    "RasterBands",
    "TaskData",
    "has_band_percentiles",
    "has_data_root",
    "has_raster_bands",
    "missing_members",
    "require_class_data",
    "require_task_data",
    "trainer_datamodule",
]


class TaskData(Protocol):
    """What every satcnn task needs from its DataModule (required)."""

    @property
    def bands(self) -> Sequence[str]:
        """The model's input bands in order, as the checkpoint records them."""

    @property
    def in_channels(self) -> int:
        """Number of input bands (``len(bands)``); must equal the model's ``in_channels``."""

    @property
    def patch_size(self) -> int | None:
        """Side of the square training patches in pixels, or ``None`` where it varies.

        A side must be a multiple of the model's ``size_multiple``; it is recorded in the checkpoint.
        """

    def band_stats(self) -> tuple[Sequence[float], Sequence[float]]:
        """Per-band mean and standard deviation of the training split, in raw units.

        The task normalises with them (inside ``forward``) and stores them in the checkpoint.
        """


class ClassData(TaskData, Protocol):
    """What the classification task needs from its DataModule (required there)."""

    @property
    def classes(self) -> Sequence[str]:
        """Class names in label order; their count must equal the model's ``num_classes``."""


class RasterBands(Protocol):
    """How the model's bands come from the source rasters (optional, all or nothing)."""

    @property
    def input_dtype(self) -> str:
        """Data type of the image files, e.g. ``"uint16"`` (default ``"uint8"``)."""

    @property
    def band_sources(self) -> Sequence[int]:
        """1-based index of each model band in the files (empty: the first ``in_channels`` bands)."""

    @property
    def band_colorinterp(self) -> Sequence[str]:
        """Colour interpretation of each source band (``"red"``, ``"undefined"``...)."""


class BandPercentiles(Protocol):
    """Training percentiles for inference's ``--rescale`` (optional)."""

    def band_percentiles(self) -> Sequence[Sequence[float]]:
        """Per band, the 1st, 2nd, 98th and 99th percentiles of the training pixels (raw units)."""


class DataRoot(Protocol):
    """Where the data lies, for the fit's MLflow dataset inputs (optional)."""

    @property
    def root(self) -> str:
        """The file or folder the DataModule reads; its content or file list names the data."""


OPTIONAL: tuple[type, ...] = (RasterBands, BandPercentiles, DataRoot)


def protocol_members(protocol: type) -> list[str]:
    """The public members ``protocol`` declares, its protocol bases' first, in declaration order."""
    names: list[str] = []
    for base in reversed(protocol.__mro__):
        if Protocol not in base.__bases__:
            continue
        for name in [*vars(base).get("__annotations__", {}), *vars(base)]:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return names


def missing_members(obj: object, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` lacks (methods shown as ``name()``).

    Members are looked up statically (``inspect.getattr_static``): no property is called.
    """
    missing = []
    for name in protocol_members(protocol):
        try:
            inspect.getattr_static(obj, name)
        except AttributeError:
            missing.append(f"{name}()" if callable(getattr(protocol, name)) else name)
    return missing


def _require(dm: object, protocol: type) -> None:
    missing = missing_members(dm, protocol)
    names = [protocol.__name__] if missing else []
    for capability in OPTIONAL:
        lacks = missing_members(dm, capability)
        if lacks and len(lacks) < len(protocol_members(capability)):  # declared in part
            missing += lacks
            names.append(f"{capability.__name__}, which is all or nothing")
    if missing:
        raise ConfigError(
            f"the DataModule {type(dm).__name__} lacks {', '.join(missing)} "
            f"(see satcnn.data.protocol: {'; '.join(names)})"
        )


def require_task_data(dm: object) -> TaskData:
    """``dm`` as :class:`TaskData`, checked.

    Raises:
        ConfigError: ``dm`` lacks a member of ``TaskData``, or declares part of an optional
            capability (:class:`RasterBands`, :class:`BandPercentiles`, :class:`DataRoot`).
    """
    _require(dm, TaskData)
    return dm  # type: ignore[return-value]  # checked member by member above


def require_class_data(dm: object) -> ClassData:
    """``dm`` as :class:`ClassData`, checked as :func:`require_task_data` does.

    Raises:
        ConfigError: ``dm`` lacks a member of ``ClassData`` or declares part of a capability.
    """
    _require(dm, ClassData)
    return dm  # type: ignore[return-value]  # checked member by member above


def has_raster_bands(dm: object) -> TypeGuard[RasterBands]:
    """Whether ``dm`` says how its bands come from the source rasters."""
    return not missing_members(dm, RasterBands)


def has_band_percentiles(dm: object) -> TypeGuard[BandPercentiles]:
    """Whether ``dm`` gives training percentiles."""
    return not missing_members(dm, BandPercentiles)


def has_data_root(dm: object) -> TypeGuard[DataRoot]:
    """Whether ``dm`` names the file or folder it reads."""
    return not missing_members(dm, DataRoot)


def trainer_datamodule(trainer: L.Trainer) -> L.LightningDataModule | None:
    """The DataModule a trainer runs with, or ``None`` (Lightning sets it without declaring it)."""
    return getattr(trainer, "datamodule", None)  # type: ignore[no-any-return]
