"""Road networks from rasters: known graphs recovered, seams invisible, real SpaceNet data, outputs."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.features import rasterize
from scipy.spatial import cKDTree

from satcnn.errors import ConfigError, RasterError
from satcnn.vector.apls import apls
from satcnn.vector.clean import CleanOptions
from satcnn.vector.layers import read_vector
from satcnn.vector.lines import graph_from_lines, metric_crs
from satcnn.vector.roads import extract_road_graph, vectorize_roads
from tests.factories import (
    GRAPH_ORIGIN,
    SAMPLES,
    known_graph,
    write_raster,
)

SPACENET = SAMPLES / "roads" / "spacenet3-vegas"


def network_graph(path: Path, **kwargs: object) -> nx.MultiGraph:
    lines, _ = extract_road_graph(path, **kwargs).frames()  # type: ignore[arg-type]
    return graph_from_lines(lines)


def test_rasterised_known_graph_is_recovered(tmp_path: Path) -> None:
    truth, pixel_lines = known_graph()
    mask = rasterize([(line.buffer(3), 1) for line in pixel_lines], out_shape=(600, 600), dtype="uint8")
    path = write_raster(tmp_path / "mask.tif", mask)
    got = network_graph(path)
    score = apls(truth, got)
    assert score.apls >= 0.95, score
    # Every true node has an extracted node of the same degree within 2 px, and nothing else is there.
    t_xy = np.array([(d["x"], d["y"]) for _, d in truth.nodes(data=True)])
    g_xy = np.array([(d["x"], d["y"]) for _, d in got.nodes(data=True)])
    assert len(g_xy) == len(t_xy)
    dist, idx = cKDTree(g_xy).query(t_xy)
    assert dist.max() <= 2.0, dist
    assert sorted(idx.tolist()) == list(range(len(g_xy)))  # one to one
    t_deg = [d for _, d in truth.degree]
    g_deg = [got.degree(list(got.nodes)[i]) for i in idx]
    assert t_deg == g_deg
    assert got.number_of_edges() == truth.number_of_edges()


def edge_table(net_lines: gpd.GeoDataFrame, nodes: gpd.GeoDataFrame) -> dict[tuple, float]:
    """Edges keyed by their end-node positions (rounded to 1 cm), with their lengths."""
    pos = {
        int(i): (round(p.x, 2), round(p.y, 2)) for i, p in zip(nodes["node_id"], nodes.geometry, strict=True)
    }
    out: dict[tuple, float] = {}
    for u, v, length in zip(net_lines["u"], net_lines["v"], net_lines["length_m"], strict=True):
        key = tuple(sorted([pos[int(u)], pos[int(v)]]))
        out[key] = out.get(key, 0.0) + float(length)
    return out


def test_block_wise_equals_whole_raster(tmp_path: Path) -> None:
    from satcnn.data.synth import RoadScene

    scene = RoadScene.generate(640, seed=5, resolution=0.5)
    _, mask, _ = scene.render(scene.windows(640)[0])
    assert mask.mean() > 0.03  # a real road network, crossing many seams below
    path = write_raster(tmp_path / "scene.tif", mask, res=0.5)
    whole = extract_road_graph(path, block=4096).frames()
    for block in (97, 128):
        blocks = extract_road_graph(path, block=block, halo=48).frames()
        a, b = edge_table(*whole), edge_table(*blocks)
        assert a.keys() == b.keys()
        for key, length in a.items():
            assert b[key] == pytest.approx(length, rel=0.01)
        assert len(whole[1]) == len(blocks[1])
    assert len(a) >= 10


def test_synthetic_scene_matches_its_centrelines(tmp_path: Path) -> None:
    """synth-roads writes the true centrelines; the vectorised mask scores high against them."""
    from satcnn.data.synth import synth_roads

    ((_, mask),) = synth_roads(tmp_path / "syn", count=1, size=768, seed=3, progress=False)
    centrelines = tmp_path / "syn" / "centrelines" / "scene_000.gpkg"
    truth = read_vector(centrelines)
    with rasterio.open(mask) as src:
        assert truth.crs == src.crs
        assert shapely.box(*src.bounds).buffer(1e-6).contains(truth.union_all())
    assert set(truth["kind"]) <= {"main", "local"} and (truth["width_m"] >= 4).all()
    crs = metric_crs(truth)
    lines, _ = extract_road_graph(mask).frames()
    score = apls(graph_from_lines(truth, crs), graph_from_lines(lines, crs))
    assert score.apls >= 0.95, score


def test_spacenet_mask_scores_high_against_its_centrelines() -> None:
    """The real SpaceNet 3 Vegas sample: its mask, vectorised, against its own centreline GeoJSON.

    Measured: APLS 0.996 (0.995 truth onto proposal, 0.998 proposal onto truth); 14 nodes and 11
    edges on both sides.
    """
    truth = read_vector(SPACENET / "sample_roads_for_masking.geojson")
    crs = metric_crs(truth)
    net = extract_road_graph(SPACENET / "sample_road_raster_mask.tif")
    assert net.crs.to_epsg() == 4326  # a geographic raster: lengths in metres all the same
    lines, _ = net.frames()
    t, p = graph_from_lines(truth, crs), graph_from_lines(lines, crs)
    score = apls(t, p)
    assert score.apls >= 0.98, score
    assert (p.number_of_nodes(), p.number_of_edges()) == (t.number_of_nodes(), t.number_of_edges())
    total_t = sum(d["length"] for *_, d in t.edges(data=True))
    assert lines["length_m"].sum() == pytest.approx(total_t, rel=0.03)


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_outputs_open_with_geopandas_in_the_input_crs(tmp_path: Path, suffix: str) -> None:
    _, pixel_lines = known_graph()
    mask = rasterize([(line.buffer(3), 255) for line in pixel_lines], out_shape=(600, 600), dtype="uint8")
    path = write_raster(tmp_path / "mask.tif", mask)
    report = vectorize_roads(path, tmp_path / f"roads{suffix}")
    if suffix == ".gpkg":
        assert report.files == [tmp_path / "roads.gpkg"]
        lines = gpd.read_file(report.files[0], layer="lines")
        nodes = gpd.read_file(report.files[0], layer="nodes")
    else:
        assert report.files == [tmp_path / "roads_lines.parquet", tmp_path / "roads_nodes.parquet"]
        lines, nodes = (gpd.read_parquet(f) for f in report.files)
    assert lines.crs == nodes.crs == rasterio.open(path).crs
    assert set(lines.geom_type) == {"LineString"} and set(nodes.geom_type) == {"Point"}
    assert lines["length_m"].to_numpy() == pytest.approx(lines.length.to_numpy())  # metres in UTM
    assert report.nodes == len(nodes) == 9 and report.edges == len(lines) == 8
    assert sorted(nodes["degree"]) == sorted(d for _, d in known_graph()[0].degree)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left


def test_probability_rasters_are_thresholded(tmp_path: Path) -> None:
    """A float probability: only pixels >= threshold are road; satcnn's prob_uint8 scale is honoured."""
    prob = np.zeros((200, 300), dtype=np.float32)
    prob[48:53, 20:280] = 0.9  # a road
    prob[120:125, 20:280] = 0.4  # below the default threshold
    path = write_raster(tmp_path / "prob.tif", prob)
    assert extract_road_graph(path).graph.number_of_edges() == 1
    assert extract_road_graph(path, threshold=0.3).graph.number_of_edges() == 2
    scaled = np.rint(prob * 254).astype(np.uint8)
    path8 = write_raster(tmp_path / "prob8.tif", scaled, nodata=255)
    with rasterio.open(path8, "r+") as ds:
        ds.scales = (1 / 254,)
        ds.update_tags(SATCNN_OUTPUT="prob_uint8")
    assert extract_road_graph(path8).graph.number_of_edges() == 1


def test_cleaning_prunes_spurs_and_bridges_aligned_gaps(tmp_path: Path) -> None:
    mask = np.zeros((200, 400), dtype=np.uint8)
    mask[98:103, 30:180] = 1  # road, then a 6 m gap in the mask (10 m between skeleton ends), ...
    mask[98:103, 186:370] = 1  # ... then the same road again
    mask[20:98, 298:303] = 1  # a long branch to the north (78 m)
    mask[103:110, 100:105] = 1  # a 7 m spur to the south
    mask[150:155, 200:260] = 1  # a parallel piece 50 m away: not in line, never bridged to the road
    path = write_raster(tmp_path / "mask.tif", mask)
    g = extract_road_graph(path, clean=CleanOptions(spur_m=10, gap_m=12, simplify_m=0.5)).graph
    # Road (bridged) with its north branch: 3 dead ends and one junction; the parallel piece: 2 ends.
    assert sorted(d for _, d in g.degree) == [1, 1, 1, 1, 1, 3]
    assert sum(d["bridged"] for *_, d in g.edges(data=True)) == 1
    no_bridge = extract_road_graph(path, clean=CleanOptions(spur_m=10, gap_m=8, simplify_m=0.5)).graph
    assert nx.number_connected_components(no_bridge) == 3  # 10 m > 8 m: not bridged
    keep_spurs = extract_road_graph(path, clean=CleanOptions(spur_m=0, gap_m=12, simplify_m=0.5)).graph
    assert sorted(d for _, d in keep_spurs.degree).count(3) == 2  # the spur's junction is back


def test_dead_ends_near_the_edge_reach_it(tmp_path: Path) -> None:
    mask = np.zeros((100, 200), dtype=np.uint8)
    mask[45:54, :] = 1  # a 9 px road across the raster: its skeleton stops ~4 px short of each edge
    path = write_raster(tmp_path / "mask.tif", mask)
    ((_, _, xy),) = extract_road_graph(path).graph.edges(data="xy")
    assert sorted([xy[0][0], xy[-1][0]]) == pytest.approx([0.0, 200.0])
    short = extract_road_graph(path, clean=CleanOptions(gap_m=2)).graph
    ((_, _, xy),) = short.edges(data="xy")
    assert min(xy[0][0], xy[-1][0]) > 2


def test_bad_settings_and_inputs_are_rejected_before_output(tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(
        rgb, "w", driver="GTiff", count=3, width=32, height=32, dtype="uint8", crs="EPSG:32633",
        transform=Affine(1, 0, GRAPH_ORIGIN[0], 0, -1, GRAPH_ORIGIN[1]),
    ) as dst:  # fmt: skip
        dst.write(np.zeros((3, 32, 32), dtype=np.uint8))
    with pytest.raises(RasterError, match="expected 1 band"):
        vectorize_roads(rgb, tmp_path / "out.gpkg")
    with pytest.raises(ConfigError, match="must end in"):
        vectorize_roads(rgb, tmp_path / "out.shp")
    with pytest.raises(ConfigError, match="threshold"):
        vectorize_roads(rgb, tmp_path / "out.gpkg", threshold=1.5)
    assert not list(tmp_path.glob("out*"))


def test_pruning_two_short_spurs_of_a_three_way_junction_keeps_one() -> None:
    """Removing the first spur dissolves the junction; the second, listed in the same pass, stays."""
    from satcnn.vector.clean import prune_spurs
    from satcnn.vector.graph import Metric

    xy = {0: (10.0, 10.0), 1: (10.0, 13.0), 2: (13.0, 10.0), 3: (10.0, 60.0)}
    graph = nx.MultiGraph()
    for node, point in xy.items():
        graph.add_node(node, xy=np.array(point))
    for tip in (1, 2, 3):
        graph.add_edge(0, tip, xy=np.array([xy[0], xy[tip]]), start=0, bridged=False)
    prune_spurs(graph, Metric(np.eye(2)), spur_m=5.0)
    assert graph.number_of_edges() == 1 and 0 not in graph and 3 in graph
    assert len({1, 2} & set(graph.nodes)) == 1
