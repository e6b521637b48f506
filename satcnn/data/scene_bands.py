"""Which image bands a scene DataModule reads: its ``bands`` resolved against each scene.

``bands`` lists the model's bands in order, as 1-based indexes (``[3, 2, 1, 4]`` or
``"3,2,1,4"``) or as names. Names are matched against each image's band descriptions, then its
colour interpretation (case-insensitive, with aliases: :mod:`satcnn.io.bands`), so BGRN files
with descriptions feed an RGBN model in RGBN order. When a scene's bands do not all carry the
names, the names only label the image's first bands, as before band selection existed: the
image must then have exactly that many bands, or more where every extra band is alpha.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from satcnn.data.scene_index import SceneInfo
from satcnn.errors import ConfigError, RasterError
from satcnn.io.bands import BandSelection, match_band_names, parse_band_spec, select_bands
from satcnn.io.raster import open_dataset
from satcnn.io.reader import accepts_bands

logger = logging.getLogger(__name__)

__all__ = ["SceneBands", "resolve_scene_bands"]


@dataclasses.dataclass(frozen=True)
class SceneBands:
    """Scenes with their ``band_indexes`` set, and what the checkpoint records of the first.

    Attributes:
        scenes: The scenes, each with the 1-based bands it feeds the model.
        names: Band names, in the model's order (the spec's names, or the first scene's labels).
        sources: The first scene's source indexes.
        colorinterp: The first scene's colour interpretation of those bands.
    """

    scenes: list[SceneInfo]
    names: list[str]
    sources: list[int]
    colorinterp: list[str]


def _positional(scene: SceneInfo, names: Sequence[str]) -> tuple[int, ...]:
    if not accepts_bands(scene.colorinterp, len(names)):
        raise ConfigError(
            f"bands lists {len(names)} names {list(names)} but {scene.image_path} has {scene.count} "
            "bands that do not all carry these names; name bands by description or colour "
            "interpretation, select them by index (e.g. bands: [1, 2, 3, 4]), or give one name per "
            "band (bands beyond them must be alpha)"
        )
    return tuple(range(1, len(names) + 1))


def resolve_scene_bands(scenes: Sequence[SceneInfo], bands: Sequence[str | int] | str) -> SceneBands:
    """Resolve ``bands`` against every scene (see the module docstring).

    Raises:
        ConfigError: an invalid spec, or names that neither match nor fit the band count.
        RasterError: an index beyond a scene's bands.
    """
    try:
        spec = parse_band_spec(bands)
    except ValueError as err:
        raise ConfigError(f"bands {err}") from None
    assert spec is not None
    resolved: list[SceneInfo] = []
    first: BandSelection | None = None
    for scene in scenes:
        with open_dataset(scene.image_path) as ds:
            if all(isinstance(s, int) for s in spec):
                sel = select_bands(ds, spec, scene.image_path)
            else:
                names = [str(s) for s in spec]
                matched = match_band_names(ds, names)
                if matched is None:
                    logger.debug("%s: bands %s label its first bands", scene.image_path, names)
                sel = BandSelection.of(ds, matched or _positional(scene, names))
        if first is None:
            first = sel
        resolved.append(dataclasses.replace(scene, band_indexes=sel.indexes))
    if first is None:
        raise RasterError("no scenes to read bands from")
    names = list(first.names) if all(isinstance(s, int) for s in spec) else [str(s) for s in spec]
    return SceneBands(resolved, names, list(first.indexes), list(first.colorinterp))
