"""Land-cover polygons from class maps: exact regions, seams dissolved, names, simplification, area."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from satcnn.errors import ConfigError, RasterError
from satcnn.vector.classes import class_polygons, vectorize_classes
from tests.factories import CLASS_NAMES, class_map, write_raster


def test_block_wise_polygons_equal_whole_raster(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "classes.tif", class_map(), nodata=255)
    whole = class_polygons(path, block=4096)
    for block in (16, 37):
        parts = class_polygons(path, block=block)
        assert len(parts) == len(whole)
        for cls in range(4):
            a = whole[whole.class_id == cls].geometry.values
            b = parts[parts.class_id == cls].geometry.values
            assert len(a) == len(b)
            assert shapely.union_all(a).symmetric_difference(shapely.union_all(b)).area == 0
            assert sorted(shapely.area(a)) == sorted(shapely.area(b))  # the same pieces, not merged ones


def test_polygons_are_exact_and_carry_names(tmp_path: Path) -> None:
    cmap = class_map()
    path = write_raster(tmp_path / "classes.tif", cmap, res=2.0, nodata=255)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(CLASS_NAMES=json.dumps(CLASS_NAMES))
    report = vectorize_classes(path, tmp_path / "lc.gpkg")
    gdf = gpd.read_file(report.files[0], layer="classes")
    assert gdf.crs == rasterio.open(path).crs
    assert set(gdf.class_name) == set(CLASS_NAMES)
    for cls, name in enumerate(CLASS_NAMES):
        sub = gdf[gdf.class_id == cls]
        assert (sub.class_name == name).all()
        assert sub.area.sum() == pytest.approx(4.0 * np.count_nonzero(cmap == cls))  # 2 m pixels
        assert sub.area_m2.sum() == pytest.approx(report.area_m2[name])
    assert gdf.area.sum() == pytest.approx(4.0 * np.count_nonzero(cmap != 255))  # nodata: no polygon
    trees = gdf[gdf.class_name == "trees"]
    assert any(len(p.interiors) for p in trees.geometry)  # the ring has its hole


def test_names_option_simplify_and_min_area(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "classes.tif", class_map(), nodata=255)
    full = gpd.read_parquet(vectorize_classes(path, tmp_path / "a.parquet", classes=CLASS_NAMES).files[0])
    assert full.class_name.tolist()[:1] == ["water"]
    big = gpd.read_parquet(
        vectorize_classes(path, tmp_path / "b.parquet", classes=CLASS_NAMES, min_area_m2=1000).files[0]
    )
    assert (big.area_m2 >= 1000).all() and len(full) - len(big) == 3  # the pond and two road pieces
    assert (full.area_m2 < 1000).sum() == 3 and full.area_m2.min() == 4.0
    simple = gpd.read_parquet(vectorize_classes(path, tmp_path / "c.parquet", simplify_m=3).files[0])
    vertices = shapely.get_num_coordinates(simple.geometry.values).sum()
    assert vertices < shapely.get_num_coordinates(full.geometry.values).sum()
    # A coverage stays a coverage: no overlaps between the simplified polygons.
    assert shapely.union_all(simple.geometry.values).area == pytest.approx(simple.area.sum(), rel=1e-9)


def test_bad_class_inputs(tmp_path: Path) -> None:
    floats = write_raster(tmp_path / "f.tif", np.zeros((20, 20), dtype=np.float32))
    with pytest.raises(RasterError, match="integer class map"):
        vectorize_classes(floats, tmp_path / "x.gpkg")
    path = write_raster(tmp_path / "c.tif", class_map(), nodata=255)
    with pytest.raises(ConfigError, match=r"class values \[2, 3\] have no name"):
        vectorize_classes(path, tmp_path / "x.gpkg", classes=["water", "trees"])
    assert not (tmp_path / "x.gpkg").exists()
