"""Vectors from rasters: road networks (graphs) and land-cover polygons, and graph metrics.

A sibling of :mod:`satcnn.data`: it imports only :mod:`satcnn.io` and :mod:`satcnn.errors`.
"""

from satcnn.vector.apls import APLSResult, apls
from satcnn.vector.classes import ClassesReport, vectorize_classes
from satcnn.vector.clean import CleanOptions
from satcnn.vector.lines import graph_from_lines, metric_crs
from satcnn.vector.roads import RoadNetwork, VectorizeReport, extract_road_graph, vectorize_roads
from satcnn.vector.topo import PRF, junction_metric, topo_metric

__all__ = [
    "PRF",
    "APLSResult",
    "ClassesReport",
    "CleanOptions",
    "RoadNetwork",
    "VectorizeReport",
    "apls",
    "extract_road_graph",
    "graph_from_lines",
    "junction_metric",
    "metric_crs",
    "topo_metric",
    "vectorize_classes",
    "vectorize_roads",
]
