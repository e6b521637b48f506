"""``satcnn evaluate``: score predictions against the truth and write a JSON (+ CSV) report.

One subcommand per kind of prediction; each is a module here with a ``evaluate_*`` function and
a subparser in :mod:`satcnn.evaluate.cli`:

* ``graph`` (:mod:`satcnn.evaluate.graph`): a road graph (or a road raster, vectorised first)
  against centrelines or another graph: APLS, junction and TOPO precision/recall.

Raster metrics (mask IoU/F1, class-map accuracy) and MLflow logging are planned as further
subcommands (``mask``, ``classes``) and a shared ``--mlflow`` option, without changing ``graph``.
This package sits above :mod:`satcnn.vector` (and later :mod:`satcnn.tracking`) in the layers.
"""

from satcnn.evaluate.class_maps import evaluate_classes
from satcnn.evaluate.graph import evaluate_graph, load_graph, write_report
from satcnn.evaluate.masks import evaluate_roads
from satcnn.evaluate.result import EvaluationResult
from satcnn.evaluate.tracking import log_evaluation

__all__ = [
    "EvaluationResult",
    "evaluate_classes",
    "evaluate_graph",
    "evaluate_roads",
    "load_graph",
    "log_evaluation",
    "write_report",
]
