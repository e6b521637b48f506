"""Batch inference on a Ray cluster: ``satcnn infer --engine ray`` (see ``run.RayEngine``).

Ray is optional (``pip install 'satcnn[ray]'``) and imported only when a run starts; without
it, ``--engine ray`` stops with one line saying how to install it. The outputs, tags, manifest
and vectors are those of the local runner: everything but the computing of the tiles is shared
(``satcnn.inference.runner.run_inference`` with an ``Engine``).
"""

from __future__ import annotations

from satcnn.inference.ray_engine.cluster import INSTALL_HINT, require_ray
from satcnn.inference.ray_engine.run import RayEngine

__all__ = ["INSTALL_HINT", "RayEngine", "require_ray"]
