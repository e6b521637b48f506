"""``satcnn evaluate``: score predictions against the truth and write a JSON (+ CSV) report.

One subcommand per kind of prediction; each is a module here with a ``evaluate_*`` function and
a subparser in :mod:`satcnn.evaluate.cli`:

* ``roads`` (:mod:`satcnn.evaluate.masks`): road probability/mask rasters against truth masks or
  buffered centrelines: IoU, F1, relaxed precision/recall and their breakeven, per tile and overall.
* ``classes`` (:mod:`satcnn.evaluate.class_maps`): class maps against label rasters or labelled
  patch folders: accuracy, per-class precision/recall/F1, confusion matrix.
* ``graph`` (:mod:`satcnn.evaluate.graph`): a road graph (or a road raster, vectorised first)
  against centrelines or another graph: APLS, junction and TOPO precision/recall.

``roads`` and ``classes`` return an :class:`EvaluationResult` and write ``metrics.json``,
``metrics.csv`` and PNG figures; :func:`log_evaluation` logs one as an MLflow run tagged with the
inference and training runs it scores. This package sits above :mod:`satcnn.tracking`,
:mod:`satcnn.tasks` and :mod:`satcnn.vector` in the layers.
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
