"""Plain ``nn.Module`` models, registered by name (see :func:`create_model`).

Every model is a :class:`SatcnnModel` (declared capabilities); :mod:`satcnn.models.checkpoint`
is the checkpoint contract and :mod:`satcnn.models.normalize` the one normaliser.
"""

from satcnn.models import classic, deepsat_cnn, resunet, unet  # noqa: F401  (registers models)
from satcnn.models.base import SatcnnModel
from satcnn.models.normalize import Normalize, NormalizedModel
from satcnn.models.registry import create_model, list_models, register_model

__all__ = ["Normalize", "NormalizedModel", "SatcnnModel", "create_model", "list_models", "register_model"]
