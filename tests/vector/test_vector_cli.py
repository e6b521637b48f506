"""``satcnn vectorize`` and ``satcnn evaluate graph`` run as a user runs them: ``python -m satcnn``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from rasterio.features import rasterize

from tests.factories import CLASS_NAMES, class_map, known_graph, satcnn, to_world, write_raster


def one_error_line(stderr: str, path: Path) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith(f"satcnn: error: {path}: "), lines[0]
    return lines[0]


def test_vectorize_roads_then_evaluate(tmp_path: Path) -> None:
    _, pixel_lines = known_graph()
    mask = rasterize([(line.buffer(3), 255) for line in pixel_lines], out_shape=(600, 600), dtype="uint8")
    raster = write_raster(tmp_path / "mask.tif", mask)
    out = satcnn("vectorize", "roads", str(raster), "--out", "roads.gpkg", "--no-progress", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "9 nodes, 8 edges" in out.stdout and "wrote roads.gpkg" in out.stdout
    lines = gpd.read_file(tmp_path / "roads.gpkg", layer="lines")
    assert lines.crs == rasterio.open(raster).crs and len(lines) == 8

    centrelines = gpd.GeoDataFrame(geometry=[to_world(line) for line in pixel_lines], crs="EPSG:32633")
    centrelines.to_file(tmp_path / "truth.geojson")
    out = satcnn(
        "evaluate", "graph", "--pred", "roads.gpkg", "--truth", "truth.geojson",
        "--out", "report.json", "--csv", "report.csv", "--snap-m", "3", "--apls-interval-m", "30",
        "--apls-curved-eps", "0.02", "--apls-min-path-m", "5", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["apls"] >= 0.95 and report["junction_f1"] == 1.0
    assert (report["truth_nodes"], report["prediction_nodes"]) == (9, 9)
    with open(tmp_path / "report.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["apls"]) == report["apls"] and "settings" not in row
    apls_settings = {"snap_m": 3.0, "interval_m": 30.0, "curved_eps": 0.02, "min_path_m": 5.0}
    for key, value in apls_settings.items():  # beside the score, in both files: they move APLS
        assert report[f"apls_{key}"] == value and float(row[f"apls_{key}"]) == value
    assert f"APLS {report['apls']:.4f}" in out.stdout


def test_vectorize_bad_input_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "not_a_raster.tif"
    bogus.write_text("hello")
    out = satcnn("vectorize", "roads", str(bogus), "--out", "roads.gpkg", cwd=tmp_path)
    assert out.returncode == 1
    assert "not a readable raster" in one_error_line(out.stderr, bogus)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_raster.tif"]

    missing = tmp_path / "missing.geojson"
    out = satcnn("evaluate", "graph", "--pred", str(bogus), "--truth", str(missing), cwd=tmp_path)
    assert out.returncode == 1
    assert "not found" in one_error_line(out.stderr, missing)

    out = satcnn("vectorize", "roads", str(bogus), "--out", "x.gpkg", "--threshold", "2", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr  # usage error


def test_vectorize_classes(tmp_path: Path) -> None:
    raster = write_raster(tmp_path / "classes.tif", class_map(), nodata=255)
    out = satcnn(
        "vectorize", "classes", str(raster), "--out", "lc.parquet", "--classes", ",".join(CLASS_NAMES),
        "--min-area-m2", "10", "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    gdf = gpd.read_parquet(tmp_path / "lc_classes.parquet")
    assert set(gdf.class_name) == set(CLASS_NAMES) and gdf.crs == rasterio.open(raster).crs
    assert "wrote lc_classes.parquet" in out.stdout


def test_help_lists_vectorize_and_evaluate(tmp_path: Path) -> None:
    out = satcnn("--help", cwd=tmp_path)
    assert "\n  vectorize " in out.stdout and "\n  evaluate " in out.stdout
    out = satcnn("evaluate", "--help", cwd=tmp_path)
    assert out.returncode == 0 and "graph" in out.stdout


def test_evaluate_a_raster_against_its_own_graph(tmp_path: Path) -> None:
    """A road raster on one side is vectorised first; against its own written graph it scores 1."""
    from satcnn.evaluate import evaluate_graph
    from satcnn.vector import vectorize_roads

    _, pixel_lines = known_graph()
    mask = rasterize([(line.buffer(3), 1) for line in pixel_lines], out_shape=(600, 600), dtype="uint8")
    raster = write_raster(tmp_path / "mask.tif", mask)
    vectorize_roads(raster, tmp_path / "roads.parquet")
    report = evaluate_graph(raster, tmp_path / "roads_lines.parquet")
    assert report["apls"] == pytest.approx(1.0, abs=1e-9)  # the same graph, up to float rounding
    assert report["junction_f1"] == 1.0 and report["topo_f1"] == 1.0
    assert report["truth_edges"] == report["prediction_edges"] == 8
    assert report["crs"] == "EPSG:32633"
