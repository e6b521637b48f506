"""Plain ``nn.Module`` models, registered by name (see :func:`create_model`)."""

from satcnn.models import classic, deepsat_cnn, resunet, unet  # noqa: F401  (registers models)
from satcnn.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
