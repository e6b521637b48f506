"""Pipelines: declarative files (``pipelines/*.yaml``) run stage by stage as nested MLflow runs.

``satcnn pipeline run FILE`` reads a :class:`PipelineSpec` (``load_spec``) and runs it
(``run_pipeline``): validate -> fit -> register -> infer -> evaluate -> report. Names are
imported lazily, so reading and checking a file needs no MLflow import.
"""

from __future__ import annotations

import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(
    __name__,
    submod_attrs={
        "runner": ["PipelineResult", "run_pipeline"],
        "spec": ["PipelineSpec", "STAGES", "load_spec"],
    },
)
