"""Remote hrefs: how an ``http(s)://``, ``s3://``, ``gs://`` or ``az://`` raster is opened, in one place.

Everything above ``io`` sees an href as a path (``Href``, a ``Path`` whose ``str`` is the URL and
whose name is the URL path's last segment, so outputs are named after it). Rasters are read in
place through GDAL's virtual file systems (rasterio maps ``https://`` to ``/vsicurl/``, ``s3://`` to
``/vsis3/``, ``gs://`` to ``/vsigs/``, ``az://`` to ``/vsiaz/``), under the configuration that
reading COGs over the network needs (``GDAL_DEFAULTS``). A variable of the same name set in the
user's environment wins over satcnn's value.

URL signing (e.g. short-lived SAS tokens) goes through a hook: ``SATCNN_HREF_SIGNER=module:function``
names a function ``str -> str`` that is called on each href just before it is opened.

Resuming: ``source_version`` asks the server, with one request through GDAL (so the endpoint,
credentials, signing and retries are those of the read; a HEAD over HTTP, a GET of the first
16 KB on object storage), for the href's ``ETag`` (else its ``Last-Modified``); outputs are
tagged with it and with ``source_key`` (the href without its query), so a rerun keeps an output
only while its source is unchanged.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import rasterio

from satcnn.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "GDAL_DEFAULTS",
    "REMOTE_SCHEMES",
    "SIGNER_ENV",
    "Href",
    "as_path",
    "gdal_env",
    "is_href",
    "signed",
    "source_key",
    "source_version",
    "vsi_path",
]

REMOTE_SCHEMES = ("http", "https", "s3", "gs", "az")
SIGNER_ENV = "SATCNN_HREF_SIGNER"

#: GDAL configuration for reading COGs in place; each yields to the variable in ``os.environ``.
GDAL_DEFAULTS: dict[str, str] = {
    # no directory listing on open (no sidecar probes: one HEAD/GET instead of several)
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.vrt",
    # the COG header (IFDs and tile index) in the first request
    "GDAL_INGESTED_BYTES_AT_OPEN": "65536",
    # one request for the adjacent tiles a window needs
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    # a per-file cache of fetched bytes, so overlapping windows do not fetch a tile twice
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 * 2**20),
    # retries with a growing delay on 429 and 5xx answers, reset connections and timeouts
    # (GDAL_HTTP_RETRY_CODES, GDAL >= 3.10, narrows or widens the statuses)
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "1",
    # a stalled transfer is a timeout (then retried): under 1 KB/s for 30 s
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1000",
    "GDAL_HTTP_LOW_SPEED_TIME": "30",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "20",
}


def is_href(spec: object) -> bool:
    """Whether ``spec`` is a remote href (``http(s)://``, ``s3://``, ``gs://``, ``az://``)."""
    if isinstance(spec, Href):
        return True
    text = str(spec)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in REMOTE_SCHEMES


class Href(PosixPath):
    """A remote raster as the pipeline's paths see it.

    ``str()`` (and ``os.fspath``) give the href itself; ``name``/``stem``/``suffix`` come from the
    URL's path (its query, e.g. a signature, is not part of the name). It is never looked up on the
    local disk: ``exists()`` and ``is_file()`` are true, ``is_dir()`` false; opening it is
    ``satcnn.io.raster.opened_raster``'s work.
    """

    href: str

    def __new__(cls, href: str, *more: Any) -> Href:
        if more or not is_href(href):  # a derived path (parent, with_suffix): a plain one
            return PosixPath(href, *more)  # type: ignore[return-value]
        u = urlsplit(href)
        segments = [unquote(s) for s in u.path.split("/") if s]
        self = super().__new__(cls, "/", f"{u.scheme}:", u.netloc or "-", *segments)
        self.href = href
        return self

    def __str__(self) -> str:
        return getattr(self, "href", super().__str__())

    def __fspath__(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Href({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Href, (str(self),))

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Href) and str(other) == str(self)

    def exists(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def is_file(self, *args: Any, **kwargs: Any) -> bool:
        return True

    def is_dir(self, *args: Any, **kwargs: Any) -> bool:
        return False


def as_path(spec: str | os.PathLike[str]) -> Path:
    """``spec`` as the pipeline's path: an ``Href`` (kept as it is) for a remote href, else a ``Path``."""
    if isinstance(spec, Href):  # a subclass (a STAC item) keeps what it carries
        return spec
    return Href(str(spec)) if is_href(spec) else Path(spec)


def _signer() -> Callable[[str], str] | None:
    target = os.environ.get(SIGNER_ENV, "").strip()
    if not target:
        return None
    module, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(
            f"{SIGNER_ENV}={target}: cannot load the signer ({err}); expected module:function"
        ) from None
    if not callable(fn):
        raise ConfigError(
            f"{SIGNER_ENV}={target}: not a function; expected module:function taking and returning an href"
        )
    return fn  # type: ignore[no-any-return]


def signed(href: str) -> str:
    """``href`` as it is fetched: passed through the ``SATCNN_HREF_SIGNER`` hook when one is set.

    Raises:
        ConfigError: The hook cannot be loaded or does not return an href.
    """
    fn = _signer()
    if fn is None:
        return href
    out = fn(href)
    if not isinstance(out, str) or not is_href(out):
        raise ConfigError(f"{SIGNER_ENV} returned {out!r} for {href}; expected an http(s)/s3/gs/az href")
    return out


def gdal_options() -> dict[str, str]:
    """``GDAL_DEFAULTS`` less the variables the user set in the environment (theirs win)."""
    return {k: v for k, v in GDAL_DEFAULTS.items() if k not in os.environ}


@contextmanager
def gdal_env() -> Iterator[None]:
    """A rasterio environment with satcnn's remote-reading configuration (``gdal_options``)."""
    with rasterio.Env(**gdal_options()):
        yield


_VSI_PREFIX = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}


def vsi_path(href: str) -> str:
    """The GDAL virtual file system path of ``href`` (``/vsicurl/https://...``, ``/vsis3/bucket/key``)."""
    scheme, _, rest = href.partition("://")
    prefix = _VSI_PREFIX[scheme.lower()]
    return prefix + href if prefix == "/vsicurl/" else prefix + rest


def source_key(src: str | os.PathLike[str]) -> str | None:
    """The identity of a remote source in output tags: the href without its query and fragment
    (a signature or token changes from run to run); ``None`` for a local file (also a STAC item
    read from a local document: its ``str`` is that document's path)."""
    if not is_href(str(src)):
        return None
    u = urlsplit(str(src))
    return f"{u.scheme}://{u.netloc}{u.path}"


@functools.cache
def _gdal() -> Any | None:
    """GDAL's C library as rasterio loaded it (its extension modules link it), or ``None``."""
    spec = importlib.util.find_spec("rasterio._base")
    try:
        lib = ctypes.CDLL(spec.origin if spec and spec.origin else "libgdal.so")
        lib.VSIGetFileMetadata.restype = ctypes.POINTER(ctypes.c_char_p)
        lib.VSIGetFileMetadata.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
        lib.CSLDestroy.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    except (OSError, AttributeError):
        return None
    return lib


def _headers(href: str) -> dict[str, str]:
    """The response headers of a HEAD of ``href`` through GDAL (empty when it fails)."""
    lib = _gdal()
    if lib is None:
        logger.debug("GDAL's VSIGetFileMetadata is not reachable: %s is keyed on its href only", href)
        return {}
    # /vsis3/, /vsigs/ and /vsiaz/ ask with a GET of the first bytes instead of a HEAD: the fewest
    with gdal_env(), rasterio.Env(GDAL_INGESTED_BYTES_AT_OPEN="1024"):
        found = lib.VSIGetFileMetadata(vsi_path(signed(href)).encode(), b"HEADERS", None)
    headers: dict[str, str] = {}
    i = 0
    while found and found[i]:
        key, _, value = found[i].decode(errors="replace").partition("=")
        headers[key.strip().lower()] = value.strip()
        i += 1
    if found:
        lib.CSLDestroy(found)
    return headers


def source_version(src: str | os.PathLike[str]) -> str | None:
    """What the server says identifies this version of ``src``: ``etag:<ETag>``, else
    ``last-modified:<date>``; ``None`` for a local file, a server that gives neither, or a request
    that fails (a rerun then keys an existing output on the href alone and keeps it; without one,
    the read names the problem).

    One request through GDAL's virtual file system: a HEAD for ``http(s)://``; for ``s3://``,
    ``gs://`` and ``az://`` GDAL asks with a GET of the first 16 KB (its download chunk) instead.

    Raises:
        ConfigError: The ``SATCNN_HREF_SIGNER`` hook cannot be loaded.
    """
    if not is_href(str(src)):
        return None
    headers = _headers(str(src))
    if headers.get("etag"):
        return f"etag:{headers['etag']}"
    if headers.get("last-modified"):
        return f"last-modified:{headers['last-modified']}"
    return None
