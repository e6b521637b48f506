"""satcnn: land cover and road mapping from 4-band satellite and aerial imagery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("satcnn")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
