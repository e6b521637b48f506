"""The ``pyfunc`` side of a satcnn MLflow model (loaded by MLflow from the model's code file).

Kept apart from :mod:`satcnn.tracking.registry` so that importing tracking does not define a
``PythonModel`` subclass (MLflow warns about its untyped ``predict`` at class definition).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mlflow.pyfunc import PythonModel

from satcnn.models.checkpoint import build_model, read_checkpoint


class SatcnnPyfuncModel(PythonModel):  # type: ignore[misc]
    """``pyfunc`` wrapper: raw digital numbers in, softmax/sigmoid probabilities out.

    The input is what the signature names: one ``(N, H, W)`` float32 array per band, keyed by band
    name (stacked here in the checkpoint's band order); a plain ``(N, C, H, W)`` array is accepted
    when MLflow passes one through without a signature.
    """

    def load_context(self, context: Any) -> None:
        module, meta = build_model(read_checkpoint(context.artifacts["checkpoint"], "cpu"))
        self.meta = meta.to_dict()
        self.module = module  # normalises raw digital numbers itself

    # No type hints on predict: MLflow would derive a (list-typed) signature from them.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        if isinstance(model_input, dict):  # one named tensor per band
            model_input = np.stack([np.asarray(model_input[b]) for b in self.meta["bands"]], axis=1)
        x = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.inference_mode():
            out = self.module(x)
        probs = out.softmax(dim=1) if out.shape[1] > 1 else out.sigmoid()
        return probs.numpy()
