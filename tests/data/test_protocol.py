"""The DataModule protocol: what a task needs from its data, checked once at ``fit`` start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import yaml

from satcnn.data import DeepSatDataModule, RoadSceneDataModule
from satcnn.data.protocol import (
    BandPercentiles,
    RasterBands,
    TaskData,
    has_band_percentiles,
    has_data_root,
    has_raster_bands,
    missing_members,
    require_class_data,
    require_task_data,
)
from satcnn.errors import ConfigError
from tests.factories import SAT6_CSV, satcnn


class LacksStats(L.LightningDataModule):
    """A classification DataModule without ``band_stats()`` and ``classes`` (run by ``satcnn fit``)."""

    def __init__(self) -> None:
        super().__init__()
        self.bands = ["red", "green", "blue", "nir"]
        self.in_channels = 4
        self.patch_size = 28


class Complete:
    """Every member of ``TaskData``, with properties that must not be called by the check."""

    bands = ("red", "green", "blue", "nir")
    in_channels = 4

    @property
    def patch_size(self) -> int:
        raise RuntimeError("the check called a property")

    def band_stats(self) -> tuple[list[float], list[float]]:
        return [0.0] * 4, [1.0] * 4


def test_both_datamodules_provide_the_protocol(tmp_path: Path) -> None:
    deepsat = DeepSatDataModule(str(SAT6_CSV))
    assert require_class_data(deepsat) is deepsat
    assert vars(deepsat)["splits"] is None  # the check read no data (``classes`` would have)
    assert has_data_root(deepsat) and not has_raster_bands(deepsat) and not has_band_percentiles(deepsat)

    scenes = RoadSceneDataModule(str(tmp_path), patch_size=32, val_overlap=8)  # no scene needed
    assert require_task_data(scenes) is scenes and require_class_data(scenes) is scenes
    assert has_data_root(scenes) and has_raster_bands(scenes) and has_band_percentiles(scenes)


def test_missing_members_are_all_named() -> None:
    assert missing_members(object(), TaskData) == ["bands", "in_channels", "patch_size", "band_stats()"]
    assert missing_members(Complete(), TaskData) == []
    assert missing_members(Complete(), BandPercentiles) == ["band_percentiles()"]
    with pytest.raises(ConfigError) as err:
        require_class_data(object())
    assert str(err.value) == (
        "the DataModule object lacks bands, in_channels, patch_size, band_stats(), classes "
        "(see satcnn.data.protocol: ClassData)"
    )


def test_an_optional_capability_is_all_or_nothing() -> None:
    partial: Any = Complete()
    partial.input_dtype = "uint16"
    with pytest.raises(ConfigError, match=r"lacks band_sources, band_colorinterp .*RasterBands") as err:
        require_task_data(partial)
    assert "TaskData" not in str(err.value)  # nothing required is missing
    partial.band_sources, partial.band_colorinterp = [3, 2, 1, 4], ["red", "green", "blue", "undefined"]
    assert require_task_data(partial) is partial and has_raster_bands(partial)
    assert missing_members(partial, RasterBands) == []


def test_fit_with_a_datamodule_that_lacks_members_fails_at_start(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"class_path": "satcnn.tasks.ClassificationTask"},
                "data": {"class_path": "tests.data.test_protocol.LacksStats"},
                "trainer": {"accelerator": "cpu", "max_epochs": 1},
            }
        )
    )
    out = satcnn("fit", "--config", str(config), cwd=tmp_path, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("satcnn: error:")]
    assert errors == [
        "satcnn: error: the DataModule LacksStats lacks band_stats(), classes "
        "(see satcnn.data.protocol: ClassData)"
    ], out.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlruns").exists()  # before any run
