"""Input lists: raster paths from files, folders, globs and list files (`infer`, `evaluate`)."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from satcnn.errors import DataFormatError, InputFileNotFoundError
from satcnn.io.remote import Href, is_href
from satcnn.io.stac_inputs import StacRequest, is_stac_spec, resolve_stac

__all__ = ["LIST_SUFFIXES", "RASTER_SUFFIXES", "resolve_inputs"]

RASTER_SUFFIXES = (".tif", ".tiff")
LIST_SUFFIXES = (".txt", ".lst", ".list")
_GLOB_CHARS = set("*?[")


def _href(entry: str) -> Href:
    """A remote raster; a folder URL (``s3://bucket/folder/``) is refused: remote folders are not listed."""
    if entry.split("?", 1)[0].endswith("/"):
        raise InputFileNotFoundError(
            "is a folder URL; satcnn does not list remote folders: pass a list file of hrefs "
            "(one a line) or a STAC catalog",
            entry,
        )
    return Href(entry)


def _list_file(path: Path) -> list[Path]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DataFormatError(
            f"cannot read the list file ({err}); expected one raster path a line", path
        ) from None
    out: list[Path] = []
    missing = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.strip()
        if entry and not entry.startswith("#") and is_href(entry):
            out.append(_href(entry))  # remote: an error naming it when it is opened
        elif entry and not entry.startswith("#"):
            p = Path(entry).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
            if not out[-1].exists():
                missing.append(f"line {number}: {out[-1]}")
    if missing:  # the list is the user's request: check it whole before any work
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        raise InputFileNotFoundError(
            f"list file names rasters that do not exist: {'; '.join(missing[:3])}{more}"
            " (relative paths are read from the list file's folder)",
            path,
        )
    if not out:
        raise DataFormatError(
            "list file names no raster (it is empty or only comments); one path a line", path
        )
    return out


def _rasters(path: Path) -> list[Path]:
    return sorted(
        q
        for q in path.iterdir()
        if q.is_file() and q.suffix.lower() in RASTER_SUFFIXES and not q.name.startswith(".")
    )


def _folder(path: Path) -> list[Path]:
    tifs = _rasters(path)
    if not tifs:  # per-class folders: root/<class>/*.tif
        subs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
        tifs = [q for d in subs for q in _rasters(d)]
    if not tifs:
        raise InputFileNotFoundError(
            "folder holds no GeoTIFF (*.tif, *.tiff), nor do its sub-folders (per-class folders)", path
        )
    return tifs


def resolve_inputs(specs: Sequence[str | Path], stac: StacRequest | None = None) -> list[Path]:
    """Expand input specifications into raster paths (order kept, duplicates dropped).

    Each spec is a raster path, a folder (its ``*.tif``/``*.tiff``, sorted, without hidden
    dot-files such as ``AtomicCOGWriter``'s ``.<name>.tmp.tif`` temporaries; a folder without
    any holds per-class folders, whose rasters are taken one level down), a
    glob pattern (sorted matches), or a list file (``.txt``/``.lst``/``.list``: one path per line,
    relative to the list file; ``#`` starts a comment), or a remote href (``http(s)://``, ``s3://``,
    ``gs://``, ``az://``, also as a list file's line), kept as ``satcnn.io.remote.Href`` (a folder
    URL, ending in ``/``, is refused: remote folders are not listed). Paths
    that do not exist are kept, for the command to refuse (``infer`` refuses the run, naming
    them, before writing anything), except in a list file, which is refused whole, naming the
    list and the lines. A STAC document (``.json`` /
    ``.geojson``, or an href without a raster suffix: an Item, ItemCollection, Catalog or
    Collection) gives its items, and ``stac.search`` the items an API search finds, each as a
    ``satcnn.io.stac_inputs.StacSource`` read as ``stac`` asks (bands by meaning, ``--asset``).

    Raises:
        InputFileNotFoundError: A folder holds no GeoTIFF, a glob matches nothing, a list file
            names a raster that does not exist, or an href is a folder URL.
        DataFormatError: A list file is unreadable or names no raster; a STAC document or search
            cannot be read, holds no item, or an item lacks the bands asked for.
        ConfigError: A STAC document without ``stac`` (the command reads no STAC items).
    """
    found: list[Path] = []
    for spec in specs:
        if not isinstance(spec, Href) and is_stac_spec(spec):
            found += resolve_stac([spec], stac)
            continue
        if is_href(spec):
            found.append(_href(str(spec)))
            continue
        p = Path(spec).expanduser()
        if p.is_dir():
            found += _folder(p)
        elif p.is_file() and p.suffix.lower() in LIST_SUFFIXES:
            found += _list_file(p)
        elif not p.exists() and _GLOB_CHARS & set(str(spec)):
            matches = sorted(Path(m) for m in glob.glob(str(p)) if Path(m).is_file())
            if not matches:
                raise InputFileNotFoundError("pattern matches no file", str(spec))
            found += matches
        else:
            found.append(p)
    if stac is not None and stac.search is not None:
        found += resolve_stac([], stac)
    seen: set[Path] = set()
    unique = []
    for q in found:
        key = q if isinstance(q, Href) else Path(os.path.abspath(q))  # symlinked copies are distinct tiles
        if key not in seen:
            seen.add(key)
            unique.append(q)
    return unique
