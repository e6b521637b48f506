"""Model registry: ``create_model(name, **kwargs)`` builds a registered model by name.

A model is saved as its registry name and keyword arguments, so it can be rebuilt from a
checkpoint without the training config (:mod:`satcnn.models.checkpoint`). Every registered model
is a :class:`~satcnn.models.base.SatcnnModel`, which declares what it can do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from satcnn.errors import ModelError
from satcnn.models.base import SatcnnModel

_REGISTRY: dict[str, Callable[..., SatcnnModel]] = {}

F = TypeVar("F", bound=Callable[..., SatcnnModel])


def register_model(name: str) -> Callable[[F], F]:
    """Register a model class or factory under ``name``."""

    def wrap(fn: F) -> F:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs: Any) -> SatcnnModel:
    """Build the model registered as ``name`` with ``kwargs``.

    Raises:
        ModelError: the name is unknown (the message lists the valid names) or the
            arguments do not fit the model.
        TypeError: the registered factory built something other than a ``SatcnnModel`` (a bug:
            every model declares its capabilities, see :mod:`satcnn.models.base`).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; valid names: {', '.join(list_models())}") from None
    try:
        model = factory(**kwargs)
    except TypeError as err:
        raise ModelError(f"model {name!r} does not accept these arguments {sorted(kwargs)}: {err}") from None
    if not isinstance(model, SatcnnModel):
        raise TypeError(f"model {name!r} built a {type(model).__name__}, not a SatcnnModel")
    return model
