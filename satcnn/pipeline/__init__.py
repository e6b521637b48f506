"""Pipelines: declarative files (``pipelines/*.yaml``) run stage by stage as nested MLflow runs.

``satcnn pipeline run FILE`` reads a :class:`PipelineSpec` (``load_spec``) and runs it
(``run_pipeline``): validate -> fit -> register -> infer -> evaluate -> report. Names are
imported lazily, so reading and checking a file needs no MLflow import.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "STAGES": "satcnn.pipeline.spec",
    "PipelineResult": "satcnn.pipeline.runner",
    "PipelineSpec": "satcnn.pipeline.spec",
    "load_spec": "satcnn.pipeline.spec",
    "run_pipeline": "satcnn.pipeline.runner",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
