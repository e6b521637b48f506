"""Pipelines: declarative files (``pipelines/*.yaml``) run stage by stage as nested MLflow runs.

``satcnn pipeline run FILE`` reads a :class:`PipelineSpec` (``load_spec``) and runs it
(``run_pipeline``): validate -> fit -> register -> infer -> evaluate -> report.
"""

from satcnn.pipeline.runner import PipelineResult, run_pipeline
from satcnn.pipeline.spec import STAGES, PipelineSpec, load_spec

__all__ = ["STAGES", "PipelineResult", "PipelineSpec", "load_spec", "run_pipeline"]
