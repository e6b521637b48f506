"""Backbones pretrained on satellite imagery, from torchgeo's weight registry, mapped by band meaning.

``pretrained="torchgeo:<Enum>.<MEMBER>"`` (e.g. ``torchgeo:ResNet18_Weights.SENTINEL2_ALL_MOCO``)
names a torchgeo weights entry (``torchgeo.models.get_weight``). Its ``meta`` gives the timm
architecture (``model``), the number of input bands (``in_chans``) and their sensor names
(``bands``). Supported: the timm architectures satcnn builds, ResNet-18/50/152 (``model: resnet18``
...) and ViT (``model: timm``, ``backbone: vit_small_patch16_224``, ``input_size: 224``, the size
its position embedding was trained for); torchgeo's Swin weights are torchvision models and are
refused. The file is fetched by torchgeo's own ``weights.get_state_dict(progress=True)``,
which downloads once into torch hub's cache (``$TORCH_HOME/hub/checkpoints``) and reads it from
there afterwards. Offline machines: copy the file there (the error names the path).

First convolution, by band meaning: each of the model's bands (``bands``, by default satcnn's
``red, green, blue, nir``) takes the weights' filter of the band with that common name, e.g.
Sentinel-2 B04, B03, B02, B08; Landsat TM/ETM+ B3, B2, B1, B4; Landsat OLI B4, B3, B2, B5; NAIP
R, G, B, N (:data:`COMMON_NAMES`). Filters are copied as they are, not rescaled. A band the
weights lack starts as the **mean of the filters taken** for the other bands (the rule of
:mod:`satcnn.models.adapt` for RGB weights), said in one log line.

Normalisation: the weights were trained on inputs normalised by their ``transforms`` (e.g.
Sentinel-2 digital numbers divided by 10000). :func:`weights_normalization` composes the
``Normalize`` steps into one per-band mean and std, in the weights' units; they are recorded in
the checkpoint (``CheckpointMeta.pretrained``). With ``pretrained_normalization="weights"`` the
task normalises with them instead of the training split's statistics, so a model fine-tuned on
data in the weights' units (Sentinel-2 L1C DN for ``SENTINEL2_*``) sees what it was pretrained
on; the checkpoint's ``mean``/``std`` then hold them and inference reproduces them. The default
``"data"`` standardises each band by the training split, right for data in other units (8-bit
DeepSat patches are not Sentinel-2 DN).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Final

import torch

from satcnn.errors import ModelError
from satcnn.io.bands import canonical_band_name

log = logging.getLogger(__name__)

__all__ = [
    "COMMON_NAMES",
    "PREFIX",
    "TorchgeoWeights",
    "band_meanings",
    "check_data_bands",
    "is_torchgeo",
    "resolve_weights",
    "select_bands",
    "weights_normalization",
]

PREFIX: Final = "torchgeo:"
_LIST_HINT = (
    'list valid names with: python -c "import torchgeo.models as m; '
    '[print(w) for n in m.list_models() for w in m.get_model_weights(n)]"'
)

# Sensor family (matched in the weights' member name) -> sensor band number -> common name.
_S2: Final = {
    "b1": "coastal",
    "b2": "blue",
    "b3": "green",
    "b4": "red",
    "b5": "rededge1",
    "b6": "rededge2",
    "b7": "rededge3",
    "b8": "nir",
    "b8a": "nir08",
    "b9": "watervapour",
    "b10": "cirrus",
    "b11": "swir16",
    "b12": "swir22",
}
_TM_ETM: Final = {"b1": "blue", "b2": "green", "b3": "red", "b4": "nir", "b5": "swir16", "b7": "swir22"}
_OLI: Final = {
    "b1": "coastal",
    "b2": "blue",
    "b3": "green",
    "b4": "red",
    "b5": "nir",
    "b6": "swir16",
    "b7": "swir22",
}
COMMON_NAMES: Final[dict[str, dict[str, str]]] = {
    "SENTINEL2": _S2,
    "LANDSAT_TM": _TM_ETM,
    "LANDSAT_ETM": _TM_ETM,
    "LANDSAT_OLI": _OLI,
    "LANDSAT": _OLI,  # Satlas Landsat 8/9
}
"""Common band names of each sensor family, keyed by the start of the weights' member name."""


def is_torchgeo(pretrained: str | None) -> bool:
    """Whether ``pretrained`` names torchgeo weights (``torchgeo:...``) rather than a local file."""
    return isinstance(pretrained, str) and pretrained.startswith(PREFIX)


def resolve_weights(name: str) -> Any:
    """The torchgeo weights entry for ``torchgeo:<Enum>.<MEMBER>`` (or ``<Enum>.<MEMBER>``).

    Raises:
        ModelError: torchgeo is not installed or has no such weights (the message says how to list them).
    """
    key = name.removeprefix(PREFIX)
    try:
        from torchgeo.models import get_weight
    except ImportError as err:
        raise ModelError(f"pretrained {name!r} needs torchgeo ({err}); pip install torchgeo") from None
    try:
        return get_weight(key)
    except ValueError:
        raise ModelError(f"unknown torchgeo weights {key!r} (pretrained {name!r}); {_LIST_HINT}") from None


def _key(band: str) -> str:
    """``SR_B04`` -> ``b4``; ``B8A`` -> ``b8a``; other names through :func:`canonical_band_name`."""
    b = band.lower().removeprefix("sr_")
    if len(b) > 1 and b[0] == "b" and b[1].isdigit():
        return "b" + b[1:].lstrip("0")
    return canonical_band_name(band)


def band_meanings(member: str, bands: Sequence[str]) -> list[str]:
    """Common name of each of the weights' ``bands`` (``red``, ``nir``...), by the sensor in ``member``.

    Names already common (``R``, ``G``, ``B``, ``N``, ``red``) pass through
    :func:`~satcnn.io.bands.canonical_band_name`; unknown ones stay as they are (lower-cased).
    """
    table = next((t for fam, t in COMMON_NAMES.items() if member.startswith(fam)), {})
    meanings = []
    for band in bands:
        key = _key(band)
        name = table.get(key, key)
        meanings.append({"n": "nir"}.get(name, name))
    return meanings


def weights_normalization(transforms: Any, in_chans: int) -> tuple[list[float], list[float]] | None:
    """One per-band ``(mean, std)`` equal to the ``Normalize`` steps of ``transforms``, in order.

    ``(x - m1) / s1`` then ``(. - m2) / s2`` is ``(x - (m1 + m2 s1)) / (s1 s2)``; resizes and
    crops are skipped (satcnn resizes patches itself). None when there is no ``Normalize``.
    """
    steps = [t for t in (transforms if isinstance(transforms, torch.nn.Sequential) else []) if _is_norm(t)]
    if not steps:
        return None
    mean, std = [0.0] * in_chans, [1.0] * in_chans
    for step in steps:
        m, s = _per_band(step.mean, in_chans), _per_band(step.std, in_chans)
        mean = [a + b * c for a, b, c in zip(mean, m, std, strict=True)]
        std = [a * b for a, b in zip(std, s, strict=True)]
    return mean, std


def _is_norm(module: Any) -> bool:
    return type(module).__name__ == "Normalize" and hasattr(module, "mean") and hasattr(module, "std")


def _per_band(values: Any, n: int) -> list[float]:
    vals = [float(v) for v in torch.as_tensor(values).flatten().tolist()]
    return vals * n if len(vals) == 1 else vals[:n] + [vals[-1]] * (n - len(vals))


def select_bands(source: Sequence[str], wanted: Sequence[str]) -> list[int | None]:
    """Index in ``source`` (common names) of each ``wanted`` band (canonical names), None if absent."""
    src = [canonical_band_name(b) for b in source]
    return [src.index(canonical_band_name(w)) if canonical_band_name(w) in src else None for w in wanted]


def check_data_bands(record: dict[str, Any] | None, data_bands: Sequence[str]) -> None:
    """Raise ModelError if the data's named bands are not the ones the first convolution was mapped for.

    ``record`` is a model's ``pretrained_record`` (None or empty: nothing to check). Data bands
    named only by position (``band1``...) cannot be checked; the mapping then assumes the
    model's ``bands`` order, which one log line says.
    """
    if not record or "input_bands" not in record:
        return
    want = list(record["input_bands"])
    got = [canonical_band_name(b) for b in data_bands]
    if got == want:
        return
    if all(re.fullmatch(r"band\d+", b) for b in got):
        log.info("%s: the data's bands are unnamed; taken as %s", record.get("source"), ", ".join(want))
        return
    raise ModelError(
        f"the first convolution of {record.get('source')} was mapped for bands {want}, but the data gives "
        f"{list(data_bands)}; set model.init_args.model_kwargs.bands: [{', '.join(got)}]"
    )


class TorchgeoWeights:
    """One torchgeo weights entry as satcnn uses it: its state dict with the first convolution by band.

    Args:
        name: ``torchgeo:<Enum>.<MEMBER>``.
        bands: The model's bands, in input order (common names: ``red``, ``green``, ``blue``, ``nir``).
    """

    def __init__(self, name: str, bands: Sequence[str]) -> None:
        self.name = name
        self.weights = resolve_weights(name)
        meta = dict(self.weights.meta)
        self.architecture = str(meta.get("model", ""))
        self.source_bands = [str(b) for b in meta.get("bands") or []]
        self.in_chans = int(meta.get("in_chans") or len(self.source_bands))
        if len(self.source_bands) != self.in_chans:
            raise ModelError(
                f"torchgeo weights {name!r} list {len(self.source_bands)} bands for {self.in_chans} input "
                "channels; satcnn cannot map their first convolution by band"
            )
        self.meanings = band_meanings(self.weights.name, self.source_bands)
        self.bands = [canonical_band_name(b) for b in bands]
        self.index = select_bands(self.meanings, self.bands)
        if all(i is None for i in self.index):
            raise ModelError(
                f"torchgeo weights {name!r} hold bands {self.source_bands} ({', '.join(self.meanings)}), "
                f"none of the model's bands {self.bands}; "
                "choose weights for this sensor or set model_kwargs.bands"
            )
        self.normalization = weights_normalization(self.weights.transforms, self.in_chans)

    def check_architecture(self, backbone: str) -> None:
        """Raise ModelError unless the weights are for timm ``backbone``."""
        import timm

        if not timm.is_model(self.architecture):
            raise ModelError(
                f"torchgeo weights {self.name!r} are for {self.architecture!r}, not a timm backbone "
                "satcnn builds; choose ResNet or ViT weights (ResNet18_Weights, ViTSmall16_Weights, ...)"
            )
        if self.architecture != backbone:
            raise ModelError(
                f"torchgeo weights {self.name!r} are for a {self.architecture!r} backbone, not {backbone!r}; "
                f"set model: timm and model_kwargs.backbone: {self.architecture}"
            )

    def state_dict(self, first_conv: str) -> dict[str, torch.Tensor]:
        """The weights (downloaded once by torchgeo), ``first_conv`` taken by band meaning.

        Raises:
            ModelError: the file cannot be fetched or read, or has no such convolution.
        """
        from torch.hub import get_dir

        try:
            state = dict(self.weights.get_state_dict(progress=True))
        except (OSError, RuntimeError) as err:
            file = str(self.weights.url).rsplit("/", 1)[-1]
            raise ModelError(
                f"could not fetch torchgeo weights {self.name!r} ({' '.join(str(err).split())[:160]}); "
                f"without internet, copy {self.weights.url} to {get_dir()}/checkpoints/{file}"
            ) from None
        key = f"{first_conv}.weight"
        conv = state.get(key)
        if conv is None or conv.ndim != 4 or conv.shape[1] != self.in_chans:
            raise ModelError(f"torchgeo weights {self.name!r} have no {self.in_chans}-band {key}")
        state[key] = self._by_band(conv)
        return state

    def _by_band(self, conv: torch.Tensor) -> torch.Tensor:
        taken = [conv[:, i] for i in self.index if i is not None]
        fill = torch.stack(taken, 1).mean(1)
        missing = [b for b, i in zip(self.bands, self.index, strict=True) if i is None]
        pairs = [
            f"{b}={self.source_bands[i]}"
            for b, i in zip(self.bands, self.index, strict=True)
            if i is not None
        ]
        log.info("%s: first convolution by band: %s", self.name, ", ".join(pairs))
        if missing:
            log.info(
                "%s: the weights have no %s band; %s starts as the mean of the filters taken for the others",
                self.name,
                "/".join(missing),
                "/".join(missing),
            )
        return torch.stack([conv[:, i] if i is not None else fill for i in self.index], 1).contiguous()

    def record(self, normalization: str) -> dict[str, Any]:
        """What the checkpoint keeps: the weights' name, band map and normalisation (their units)."""
        mean, std = self.model_normalization() or ([], [])
        return {
            "source": self.name,
            "input_bands": list(self.bands),
            "architecture": self.architecture,
            "bands": [self.source_bands[i] if i is not None else None for i in self.index],
            "mean": mean,
            "std": std,
            "normalization": normalization,
        }

    def model_normalization(self) -> tuple[list[float], list[float]] | None:
        """The weights' normalisation for the model's bands (a missing band: the mean of the others)."""
        if self.normalization is None:
            return None
        m, s = self.normalization
        taken = [i for i in self.index if i is not None]
        fill_m = sum(m[i] for i in taken) / len(taken)
        fill_s = sum(s[i] for i in taken) / len(taken)
        return (
            [m[i] if i is not None else fill_m for i in self.index],
            [s[i] if i is not None else fill_s for i in self.index],
        )
