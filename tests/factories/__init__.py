"""Shared builders for the tests: paths, rasters, scenes, checkpoints, models, graphs, processes.

Tests import these from here, never from another test module (``tests/test_layout.py``).
"""

from tests.factories.checkpoints import CLASSES, pan_road_checkpoint, write_checkpoint
from tests.factories.fault_proxy import FaultProxy, fault_proxy
from tests.factories.graphs import (
    CLASS_NAMES,
    GRAPH_ORIGIN,
    KNOWN_EDGES,
    KNOWN_NODES,
    class_map,
    known_graph,
    to_world,
    write_raster,
)
from tests.factories.models import patch_classifier, scaled, seg_model
from tests.factories.paths import (
    CONFIGS,
    DEBUG,
    MASS_EXTRA,
    NAIP,
    ROOT,
    SAMPLES,
    SAT6,
    SAT6_CSV,
    SAT6_TIFS,
    SHARED,
    VEGAS,
)
from tests.factories.processes import INFER, as_terminal_job, free_port, http_open, satcnn, wait_http
from tests.factories.range_server import RangeServer, range_server, write_cog
from tests.factories.rasters import ORIGIN, RGBA, UTM, crop, noise_bands, road_bands, write_tif
from tests.factories.s3_server import gdal_s3_env, put_files, s3_server
from tests.factories.scenes import SCENE_ORIGIN, make_dm, set_nodata, window_of, write_scene
from tests.factories.stac import (
    RGBN_NAMES,
    S2_KEYS,
    split_bands,
    stac_api,
    stac_collection,
    stac_item,
    write_stac,
)

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "CONFIGS",
    "DEBUG",
    "GRAPH_ORIGIN",
    "INFER",
    "KNOWN_EDGES",
    "KNOWN_NODES",
    "MASS_EXTRA",
    "NAIP",
    "ORIGIN",
    "RGBA",
    "RGBN_NAMES",
    "ROOT",
    "S2_KEYS",
    "SAMPLES",
    "SAT6",
    "SAT6_CSV",
    "SAT6_TIFS",
    "SCENE_ORIGIN",
    "SHARED",
    "UTM",
    "VEGAS",
    "FaultProxy",
    "RangeServer",
    "as_terminal_job",
    "class_map",
    "crop",
    "fault_proxy",
    "free_port",
    "gdal_s3_env",
    "http_open",
    "known_graph",
    "make_dm",
    "noise_bands",
    "pan_road_checkpoint",
    "patch_classifier",
    "put_files",
    "range_server",
    "road_bands",
    "s3_server",
    "satcnn",
    "scaled",
    "seg_model",
    "set_nodata",
    "split_bands",
    "stac_api",
    "stac_collection",
    "stac_item",
    "to_world",
    "wait_http",
    "window_of",
    "write_checkpoint",
    "write_cog",
    "write_raster",
    "write_scene",
    "write_stac",
    "write_tif",
]
