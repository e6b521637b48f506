"""``satcnn view``: a local web map of an ``infer`` run, served as ``satcnn ui`` serves MLflow.

The page (``static/index.html``, Leaflet vendored in ``static/vendor/leaflet``) asks ``/api/catalog``
for the tiles and their layers, then loads ``/tiles/<tile>/<layer>/{z}/{x}/{y}.png`` (rendered
on demand, ``satcnn.view.tiles``), ``/vectors/<tile>/<i>.geojson`` and ``/point``. Starlette
routes the requests; uvicorn serves them from a thread, on a socket bound before it starts (a
busy port is one line), while the main thread waits for SIGINT/SIGTERM/SIGHUP
(``satcnn.service.StopSignals``), then stops the server and returns 0.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from satcnn.checks import require_in_range
from satcnn.flags import option
from satcnn.service import StopSignals, bind_socket, browser_url, host_option, is_loopback
from satcnn.view.catalog import Catalog, ViewTile, load_catalog
from satcnn.view.tiles import (
    PIXEL_ZOOM_OFFSET,
    LayerKind,
    RenderedLayer,
    colour_table,
    pixel_value,
    render_tile,
)

log = logging.getLogger(__name__)

__all__ = ["ViewOptions", "build_app", "catalog_json", "serve_view"]

STATIC = Path(str(files("satcnn.view") / "static"))
TITLES: dict[str, str] = {
    "rgb": "Imagery (true colour)",
    "cir": "Imagery (colour infrared)",
    "prob": "Road probability",
    "mask": "Road mask",
    "classes": "Class map",
    "truth": "Mask against truth (true positive, false positive, miss)",
}
OUTPUT_LAYERS: dict[str, LayerKind] = {
    "prob_uint8": "prob",
    "prob_float32": "prob",
    "mask": "mask",
    "class_map": "classes",
}
PNG_HEADERS = {"Cache-Control": "max-age=3600"}


@dataclass(frozen=True)
class ViewOptions:
    """What ``satcnn view`` shows, and where.

    Args:
        path: an ``infer`` output folder (its ``manifest.json``), a pipeline output folder, or the
            STAC collection of outputs (``collection.json`` or its folder).
        host: address to listen on; anything but loopback exposes the outputs to the network.
        port: TCP port, 1-65535.
        basemap: an XYZ tile URL template shown under the layers (none by default: works offline).
    """

    path: Path = option(
        positional=True,
        type=Path,
        help="a `satcnn infer` output folder, a pipeline output folder, or the outputs' STAC collection.json",
    )
    host: str = host_option()
    port: int = option(8000, help="port (default: 8000)")
    basemap: str | None = option(
        None,
        help="background map URL template, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png "
        "(default: none, the page works offline)",
    )

    def __post_init__(self) -> None:
        require_in_range("port", self.port, 1, 65535)


def _layers(tile: ViewTile, pixel: bool = False) -> dict[str, RenderedLayer]:
    offset = tile.offset if pixel else None
    layers: dict[str, RenderedLayer] = {}
    if tile.input is not None and tile.input.count >= 3:
        layers["rgb"] = RenderedLayer(tile.input.path, "rgb", offset=offset)
        if tile.input.count >= 4:
            layers["cir"] = RenderedLayer(tile.input.path, "cir", offset=offset)
    for out in tile.outputs:
        kind = OUTPUT_LAYERS[out.tags.output] if out.tags is not None else None
        if kind is not None and kind not in layers:
            layers[kind] = RenderedLayer(out.path, kind, offset=offset)
    if tile.truth is not None and "mask" in layers:
        layers["truth"] = RenderedLayer(layers["mask"].path, "truth", tile.truth, offset)
    return layers


def catalog_json(catalog: Catalog, basemap: str | None = None) -> dict[str, Any]:
    """What the page needs: per tile, its bounds, layers (with class legends) and vectors.

    ``pixel`` true: no CRS, the bounds are in the pixel frame (see ``satcnn.view.catalog``) and the
    tiles' zoom is offset by ``zoom_offset``.
    """
    tiles = []
    for i, tile in enumerate(catalog.tiles):
        layers = []
        for key, layer in _layers(tile, catalog.pixel).items():
            entry: dict[str, Any] = {"id": key, "title": TITLES[key], "file": layer.path.name}
            if key == "classes":
                tags = next(o.tags for o in tile.outputs if o.path == layer.path)
                table = colour_table(layer.path)
                names = tags.classes if tags is not None else ()
                entry["legend"] = [
                    {
                        "value": k,
                        "name": name,
                        "colour": "#{:02x}{:02x}{:02x}".format(*table.get(k, (0, 0, 0))[:3]),
                    }
                    for k, name in enumerate(names)
                ]
            layers.append(entry)
        vectors = [{"index": j, "file": v.name} for j, v in enumerate(tile.vectors)]
        tiles.append(
            {
                "index": i,
                "name": tile.name,
                "bounds": tile.bounds,
                "layers": layers,
                "vectors": vectors,
                "scores": tile.scores,
            }
        )
    return {
        "root": str(catalog.root),
        "basemap": None if catalog.pixel else basemap,
        "pixel": catalog.pixel,
        "zoom_offset": PIXEL_ZOOM_OFFSET,
        "titles": TITLES,
        "tiles": tiles,
    }


def to_pixel_frame(tile: ViewTile) -> list[float]:
    """Shapely's affine matrix from a tile's x/y (its raster's transform) to the page's pixel frame."""
    import rasterio

    with rasterio.open(tile.outputs[0].path) as ds:
        inv = ~ds.transform  # x/y -> column/row
    return [inv.a, inv.b, -inv.d, -inv.e, inv.c + tile.offset, -inv.f]  # frame: (column + offset, -row)


def build_app(catalog: Catalog, basemap: str | None = None) -> Starlette:
    """The web app serving ``catalog`` (see the module docstring for its routes)."""
    layers = [_layers(t, catalog.pixel) for t in catalog.tiles]
    summary = catalog_json(catalog, basemap)

    def _layer(request: Request) -> RenderedLayer | None:
        i = int(request.path_params["tile"])
        return layers[i].get(request.path_params["layer"]) if 0 <= i < len(layers) else None

    async def index(_: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def api_catalog(_: Request) -> Response:
        return JSONResponse(summary)

    def tile(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        layer = _layer(request)
        if layer is None:
            return Response("no such layer", status_code=404)
        p = request.path_params
        return Response(
            render_tile(layer, p["z"], p["x"], p["y"]), media_type="image/png", headers=PNG_HEADERS
        )

    def point(request: Request) -> Response:
        try:
            lon, lat = float(request.query_params["lon"]), float(request.query_params["lat"])
        except (KeyError, ValueError):
            return JSONResponse({"error": "give lon and lat"}, status_code=400)
        found = []
        for i, tile_layers in enumerate(layers):
            values = {
                key: v
                for key, layer in tile_layers.items()
                if key != "truth" and (v := pixel_value(layer, lon, lat)) is not None
            }
            if values:
                found.append(
                    {"tile": catalog.tiles[i].name, "values": values, "classes": _class_name(i, values)}
                )
        return JSONResponse({"lon": lon, "lat": lat, "tiles": found})

    def _class_name(i: int, values: dict[str, list[float]]) -> str | None:
        legend = next(
            (lay.get("legend") for lay in summary["tiles"][i]["layers"] if lay["id"] == "classes"), None
        )
        if legend is None or "classes" not in values:
            return None
        k = int(values["classes"][0])
        return next((e["name"] for e in legend if e["value"] == k), None)

    def vector(request: Request) -> Response:
        import geopandas as gpd  # only when a page asks for vectors
        import pyogrio

        i, j = int(request.path_params["tile"]), int(request.path_params["index"])
        if not (0 <= i < len(catalog.tiles) and 0 <= j < len(catalog.tiles[i].vectors)):
            return Response("no such vector", status_code=404)
        path = catalog.tiles[i].vectors[j]
        features: list[Any] = []
        for name, _ in pyogrio.list_layers(path):  # a road graph has lines and nodes
            frame = gpd.read_file(path, layer=name)
            if not len(frame) or (frame.crs is None) != catalog.pixel:
                continue  # a vector without a CRS on a map (or one with a CRS on a pixel grid): no place
            if catalog.pixel:
                frame = frame.set_geometry(frame.geometry.affine_transform(to_pixel_frame(catalog.tiles[i])))
            else:
                frame = frame.to_crs("EPSG:4326")
            features += json.loads(frame.to_json(drop_id=True))["features"]
        return JSONResponse({"type": "FeatureCollection", "features": features})

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/catalog", api_catalog),
            Route("/point", point),
            Route("/tiles/{tile:int}/{layer:str}/{z:int}/{x:int}/{y:int}.png", tile),
            Route("/vectors/{tile:int}/{index:int}.geojson", vector),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]
    )


def serve_view(options: ViewOptions) -> int:
    """Serve the map of ``options.path`` until SIGINT/SIGTERM/SIGHUP; 0 after such a stop.

    Raises:
        ConfigError: No outputs under the path, or the port is taken.
        DataFormatError: Outputs with and without a CRS in one folder, or an unreadable manifest or output.
    """
    import uvicorn

    catalog = load_catalog(options.path)
    if catalog.pixel:
        import warnings

        from rasterio.errors import NotGeoreferencedWarning

        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)  # expected on a pixel grid
        log.info("these outputs have no CRS: the map is their pixel grid, with no location")
        if options.basemap:
            log.warning("--basemap is not shown: these outputs have no CRS, so no place on a background map")
    sock = bind_socket(options.host, options.port, who="another `satcnn view` or server")
    if not is_loopback(options.host):
        log.warning(
            "--host %s makes the map reachable from other machines, with no login: anyone who can reach "
            "port %d can read these outputs. Prefer the default 127.0.0.1 and an SSH tunnel",
            options.host,
            options.port,
        )
    config = uvicorn.Config(build_app(catalog, options.basemap), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="satcnn-view", daemon=True)
    with StopSignals().installed() as stop:
        thread.start()
        try:
            while not stop.wait(0.25):
                if server.started:
                    break
                if not thread.is_alive():
                    break
            if thread.is_alive():
                url = browser_url(options.host, options.port)
                log.info("map of %d tiles on %s (Ctrl-C to stop)", len(catalog.tiles), url)
                while not stop.wait(0.25) and thread.is_alive():
                    pass
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    if not stop.received:
        from satcnn.errors import SatcnnError

        raise SatcnnError("the map server stopped by itself; see its messages above")
    log.info("satcnn view stopped (%s)", stop.name)
    return 0
