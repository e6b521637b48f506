"""``resolution_mismatch``: an input's pixel size against the model card's ``resolution_m``: quiet
from 1.25x finer to 1.5x coarser."""

from __future__ import annotations

from pathlib import Path

from rasterio.crs import CRS
from rasterio.transform import from_origin

from satcnn.inference.model_io import load_model
from satcnn.inference.resolution import resolution_mismatch
from tests.factories import write_checkpoint

UTM = CRS.from_epsg(32619)


def _grid(res: float, crs: CRS | None = UTM, origin: tuple[float, float] = (300_000.0, 4_700_000.0)) -> tuple:
    return (from_origin(*origin, res, res), crs, 100, 100)


def test_within_the_ratio_either_way_is_quiet_beyond_it_is_noted() -> None:
    assert resolution_mismatch(*_grid(1.0), 1.0) is None
    assert resolution_mismatch(*_grid(1.45), 1.0) is None and resolution_mismatch(*_grid(0.82), 1.0) is None
    finer = resolution_mismatch(*_grid(0.7), 1.0)  # finer input hurts sooner (see FINER)
    assert finer is not None and finer.startswith("has a ground resolution of 0.7 m, 1.4x finer")
    coarse = resolution_mismatch(*_grid(2.0), 1.0)
    assert coarse is not None and coarse.startswith("has a ground resolution of 2 m, 2.0x coarser")
    assert "--resampling bilinear" in coarse
    feet = CRS.from_epsg(2249)  # Massachusetts State Plane in US feet: 3.28 ft is 1 m
    assert resolution_mismatch(*_grid(3.28, feet, (700_000.0, 3_000_000.0)), 1.0) is None


def test_geographic_degrees_are_metres_at_the_centre_latitude() -> None:
    deg = 1.0 / 111_320  # about 1 m of latitude
    at_equator = resolution_mismatch(*_grid(deg, CRS.from_epsg(4326), (10.0, 0.0)), 1.0)
    assert at_equator is None
    far_north = resolution_mismatch(
        *_grid(deg, CRS.from_epsg(4326), (10.0, 70.0)), 1.0
    )  # 0.34 m of longitude
    assert far_north is not None and "--dst-crs EPSG:" in far_north


def test_no_crs_or_no_card_resolution_is_never_checked(tmp_path: Path) -> None:
    assert resolution_mismatch(*_grid(0.1, None), 1.0) is None
    assert resolution_mismatch(*_grid(0.1), None) is None
    assert load_model(write_checkpoint(tmp_path / "m.ckpt")).resolution_m is None  # a checkpoint has no card
    assert load_model("pretrained:roads-massachusetts").resolution_m == 1.0
