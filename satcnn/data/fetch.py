"""``satcnn data fetch``: download a public dataset from its own published location, resumably.

Massachusetts Roads (V. Mnih, PhD thesis, University of Toronto, 2013) is published at
:data:`MASS_ROADS_URL`: each split (``train``, ``valid``, ``test``) has ``sat/`` (RGB ``.tiff``)
and ``map/`` (label ``.tif``) folders, each with an ``index.html`` that links every file. Files go
to ``out/raw/<split>/{sat,map}/`` (a ``.part`` file grows and is resumed with an HTTP Range request
after a cut), are checked (the size the server announced, a TIFF/PNG/JPEG signature, then GDAL
opens them during the import) and are imported as scenes with :func:`satcnn.data.mnih.import_tree`
into ``out/<split>/{images,masks}``.

SAT-4 and SAT-6 (DeepSat) have no key-free download: :data:`KEYED` says where to get them.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlparse

from tqdm import tqdm

from satcnn.data.mnih import ImportedSplit, import_tree
from satcnn.errors import SatcnnError

__all__ = [
    "DATASETS",
    "KEYED",
    "MASS_ROADS_SPLITS",
    "MASS_ROADS_URL",
    "FetchError",
    "download",
    "fetch_massachusetts_roads",
    "list_files",
]

log = logging.getLogger(__name__)

# The dataset's own published location (Mnih 2013); the one place the URL is written.
MASS_ROADS_URL = "https://www.cs.toronto.edu/~vmnih/data/mass_roads/"
# Pairs per split in the official release (1500 x 1500 px, 1 m).
MASS_ROADS_SPLITS = {"train": 1108, "valid": 14, "test": 49}
KEYED = {
    "sat-4": "SAT-4 has no key-free download: get it from Kaggle "
    "(https://www.kaggle.com/datasets/crawford/deepsat-sat4, login needed) or the authors' page "
    "https://csc.lsu.edu/~saikat/deepsat/",
    "sat-6": "SAT-6 has no key-free download: get it from Kaggle "
    "(https://www.kaggle.com/datasets/crawford/deepsat-sat6, login needed) or the authors' page "
    "https://csc.lsu.edu/~saikat/deepsat/",
}
DATASETS = ("massachusetts-roads", *KEYED)
_SIGNATURES = (b"II*\x00", b"MM\x00*", b"\x89PNG", b"\xff\xd8\xff")
_CHUNK = 1 << 20
_LINK = re.compile(r'href\s*=\s*["\']([^"\']+\.(?:tiff?|png|jpe?g))["\']', re.IGNORECASE)


class FetchError(SatcnnError):
    """A download failed (HTTP error, cut connection, wrong size or type); one line naming the URL."""


def _open(request: urllib.request.Request | str, url: str) -> http.client.HTTPResponse:
    try:
        return urllib.request.urlopen(request, timeout=60)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"{url}: cannot connect ({reason})") from None


def list_files(index_url: str) -> list[tuple[str, str]]:
    """``(name, url)`` of the rasters an ``index.html`` links, resolved next to the index.

    Links are reduced to their file name so that a mirror (``--base-url``) serves every file.
    """
    with _open(index_url, index_url) as resp:
        text = resp.read().decode("utf-8", "replace")
    names = sorted({PurePosixPath(urlparse(href).path).name for href in _LINK.findall(text)})
    if not names:
        raise FetchError(f"{index_url}: lists no .tif/.tiff/.png/.jpg files")
    return [(name, urljoin(index_url, name)) for name in names]


def download(url: str, dest: Path, bar: tqdm | None = None) -> bool:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming a partial file; False if already there.

    Raises:
        FetchError: HTTP error, a cut connection (the ``.part`` file stays for the next run), a
            size other than announced or a file that is not a TIFF, PNG or JPEG.
    """
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = _open(urllib.request.Request(url, headers=headers), url)
    except FetchError as exc:
        if have and " 416 " in str(exc):  # the part file is already whole
            resp = None
        else:
            raise
    total: int | None = have
    if resp is not None:
        with resp:
            if resp.status == 206:
                match = re.search(r"/(\d+)$", resp.headers.get("Content-Range", ""))
                total = int(match.group(1)) if match else None
                mode = "ab"
            else:
                length = resp.headers.get("Content-Length")
                total, have, mode = (int(length) if length else None), 0, "wb"
            with part.open(mode) as fh:
                try:
                    while chunk := resp.read(_CHUNK):
                        fh.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
                except (http.client.IncompleteRead, OSError):
                    pass  # the size check below names the cut
    size = part.stat().st_size
    if total is not None and size != total:
        raise FetchError(
            f"{url}: download cut after {size} of {total} bytes; run the command again to resume"
        )
    with part.open("rb") as fh:
        head = fh.read(4)
    if not head.startswith(_SIGNATURES):
        part.unlink()
        raise FetchError(f"{url}: not a TIFF, PNG or JPEG file (starts with {head!r})")
    os.replace(part, dest)
    return True


def fetch_massachusetts_roads(
    out: str | Path,
    splits: list[str],
    base_url: str = MASS_ROADS_URL,
    threshold: int = 128,
    resolution: float = 1.0,
) -> list[ImportedSplit]:
    """Download ``splits`` of Massachusetts Roads into ``out/raw`` and import them into ``out/<split>``.

    Raises:
        FetchError: a download failed (see :func:`download`).
        DataFormatError: a downloaded pair is bad (see :func:`satcnn.data.mnih.import_roads`).
    """
    root = Path(out)
    base = base_url if base_url.endswith("/") else base_url + "/"
    for split in splits:
        for kind in ("sat", "map"):
            files = list_files(urljoin(base, f"{split}/{kind}/index.html"))
            with tqdm(
                desc=f"{split}/{kind} ({len(files)} files)", unit="B", unit_scale=True, disable=None
            ) as bar:
                for name, url in files:
                    download(url, root / "raw" / split / kind / name, bar)
    return [
        s for split in splits for s in import_tree(root / "raw" / split, root / split, threshold, resolution)
    ]
