"""The commands beside LightningCLI's: ``data``, ``infer``, ``vectorize``, ``evaluate`` and ``ui``.

Thin: parse, then call the library.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def ui_main(argv: list[str]) -> int:
    """``satcnn ui [--host 127.0.0.1] [--port 5000]``: serve the MLflow UI on the project's store.

    Runs ``mlflow server`` (one worker) on the tracking store until Ctrl-C, then stops it cleanly.
    """
    import signal

    from satcnn.tracking.store import default_tracking_uri

    parser = argparse.ArgumentParser(prog="satcnn ui", description=ui_main.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default: 5000)")
    parser.add_argument(
        "--backend-store-uri",
        default=None,
        help="tracking store (default: $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlflow.db)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default: 1)")
    args = parser.parse_args(argv)
    store = args.backend_store_uri or default_tracking_uri()
    if store.startswith(("http://", "https://")):
        from satcnn.errors import ConfigError

        raise ConfigError(f"the tracking store {store} is a server already: open it in a browser")
    if store.startswith("sqlite:///") and not Path(store.removeprefix("sqlite:///")).exists():
        log.warning("no tracking store at %s yet: run `satcnn fit ...` first; serving an empty one", store)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store]
    cmd += ["--registry-store-uri", store]
    cmd += ["--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    log.info("MLflow UI on http://%s:%d for %s (Ctrl-C to stop)", args.host, args.port, store)
    proc = subprocess.Popen(cmd)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The server got the same SIGINT (same process group); give it time to shut down.
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return 0


def vectorize_main(argv: list[str]) -> int:
    """``satcnn vectorize roads|classes ...``: road networks and land-cover polygons from rasters."""
    from satcnn.vector.cli import vectorize_main as run

    return run(argv)


def evaluate_main(argv: list[str]) -> int:
    """``satcnn evaluate graph ...``: score a road graph (APLS, junction and TOPO precision/recall)."""
    from satcnn.evaluate.cli import evaluate_main as run

    return run(argv)


def data_main(argv: list[str]) -> int:
    """``satcnn data synth-roads|png-to-geotiff|rasterize-roads ...``: data preparation tools."""
    parser = argparse.ArgumentParser(prog="satcnn data", description="Data preparation tools.")
    sub = parser.add_subparsers(dest="tool", required=True)
    synth = sub.add_parser(
        "synth-roads",
        help="write synthetic 4-band road scenes, masks and centrelines (DIR/images/*.tif, DIR/masks/*.tif, "
        "DIR/centrelines/*.gpkg)",
    )
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--count", type=int, default=4, help="number of scenes (default 4)")
    synth.add_argument(
        "--size", type=int, default=1024, help="scene width and height in pixels (default 1024)"
    )
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--resolution", type=float, default=None, help="metres per pixel (default: 0.5-1 m)")
    png = sub.add_parser(
        "png-to-geotiff",
        help="convert a non-georeferenced image/mask PNG pair (e.g. Massachusetts Roads) to GeoTIFFs",
    )
    png.add_argument("image", help="image PNG")
    png.add_argument("mask", help="road mask PNG")
    png.add_argument("--out", required=True, help="output folder (gets images/ and masks/)")
    png.add_argument("--resolution", type=float, default=1.0, help="pixel size to record (default 1.0)")
    rast = sub.add_parser(
        "rasterize-roads",
        help="buffer road centrelines (GeoJSON/GeoPackage) and burn them onto a raster grid",
    )
    rast.add_argument("vectors", help="centrelines file")
    rast.add_argument("like", help="raster whose grid the mask takes")
    rast.add_argument("--out", required=True, help="mask GeoTIFF to write")
    rast.add_argument("--width", type=float, required=True, help="road width in metres")
    args = parser.parse_args(argv)
    if args.tool == "synth-roads":
        from satcnn.data.synth import synth_roads

        pairs = synth_roads(args.out, args.count, args.size, args.seed, resolution=args.resolution)
        sys.stdout.write(f"wrote {len(pairs)} scenes to {args.out}/images and {args.out}/masks\n")
    elif args.tool == "png-to-geotiff":
        from satcnn.data.convert import png_pair_to_geotiff

        image, mask = png_pair_to_geotiff(args.image, args.mask, args.out, resolution=args.resolution)
        sys.stdout.write(f"wrote {image} and {mask}\n")
    else:
        from satcnn.data.labels import rasterize_centerlines

        rasterize_centerlines(args.vectors, args.like, args.width, out=args.out)
        sys.stdout.write(f"wrote {args.out}\n")
    return 0


def infer_main(argv: list[str]) -> int:
    """``satcnn infer --model M --input I --output DIR``: georeferenced masks and class maps."""
    from satcnn.inference.cli import infer_main as run

    return run(argv)
