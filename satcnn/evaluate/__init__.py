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

from __future__ import annotations

import lazy_loader as lazy

# Imported lazily: an input error (a missing file, misaligned rasters) is reported before torch,
# torchmetrics or geopandas load.
__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "class_maps": ["evaluate_classes"],
        "graph": ["evaluate_graph", "load_graph", "write_report"],
        "masks": ["evaluate_roads"],
        "result": ["EvaluationResult"],
        "tracking": ["log_evaluation"],
    },
)
