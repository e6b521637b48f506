"""STAC inputs (satcnn.io.stac_*): items, item collections, walked catalogs and API searches, read from
real loopback servers (rustac's STAC API, the Range-honouring HTTP server), not mocked clients."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.enums import Resampling

from satcnn.checks import OptionError
from satcnn.errors import DataFormatError, RasterError
from satcnn.inference.options import InferenceOptions
from satcnn.io.inputs import resolve_inputs
from satcnn.io.raster import open_dataset
from satcnn.io.stac_inputs import StacRequest, StacSearch, StacSource
from tests.factories import (
    INFER,
    NAIP,
    RGBN_NAMES,
    ROOT,
    S2_KEYS,
    crop,
    free_port,
    range_server,
    satcnn,
    split_bands,
    stac_api,
    stac_collection,
    stac_item,
    write_checkpoint,
    write_cog,
    write_stac,
)

RGBN = StacRequest(RGBN_NAMES)


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.05")


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A folder to serve: ``naip.tif`` (an 84 x 112 four-band COG of the NAIP sample) and
    ``s2/B0*.tif``, its bands as single-band COGs."""
    root = tmp_path / "served"
    root.mkdir()
    cog = write_cog(crop(NAIP, tmp_path / "tile.tif", 84, 112), root / "naip.tif")
    split_bands(cog, root / "s2")
    return root


def _naip(served: Path, href: str, item_id: str = "naip-a") -> pystac.Item:
    """A NAIP-style item: one four-band asset."""
    return stac_item(item_id, served / "naip.tif", {"image": (href, RGBN_NAMES)}, "naip")


def _s2(served: Path, base: str) -> pystac.Item:
    """A Sentinel-2-style item: one asset per band, ``<base>/s2/B0*.tif``."""
    assets = {S2_KEYS[n]: (f"{base}/s2/{S2_KEYS[n]}.tif", (n,)) for n in RGBN_NAMES}
    return stac_item("s2-b", served / "naip.tif", assets, "s2")


def _infer(*args: str) -> subprocess.CompletedProcess[str]:
    """``satcnn infer`` through its own entry point (no Lightning import: a faster start)."""
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", INFER, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_items_read_by_band_name_multi_band_as_is_per_band_stacked(tmp_path: Path, served: Path) -> None:
    with rasterio.open(served / "naip.tif") as ds:
        want = ds.read()
    with range_server(served) as srv:
        # the NAIP-style asset lists its bands out of the model's order: read through a VRT, reordered
        shuffled = _naip(served, f"{srv.url}/naip.tif", "shuffled")
        shuffled.assets["image"].extra_fields["eo:bands"] = [
            {"name": f"b{i}", "common_name": n} for i, n in enumerate(("nir", "red", "green", "blue"))
        ]
        docs = {
            "naip": _naip(served, f"{srv.url}/naip.tif"),
            "s2": _s2(served, srv.url),
            "shuffled": shuffled,
        }
        paths = [write_stac(tmp_path / f"{k}.json", v) for k, v in docs.items()]
        naip, s2, reordered = resolve_inputs(paths, RGBN)
        assert isinstance(naip, StacSource) and [p.stem for p in (naip, s2)] == ["naip-a", "s2-b"]
        assert str(naip) == str(paths[0]) and naip.plan.as_is and not s2.plan.as_is
        with open_dataset(naip) as ds:
            np.testing.assert_array_equal(ds.read(), want)
        with open_dataset(s2) as ds:  # four single-band COGs, one virtual stack, same pixels
            assert ds.descriptions == RGBN_NAMES and ds.nodatavals == (0.0,) * 4
            np.testing.assert_array_equal(ds.read(), want)
        with open_dataset(reordered) as ds:
            np.testing.assert_array_equal(ds.read(), want[[1, 2, 3, 0]])

        # --asset: only the named assets; --bands by index: the one asset read as it is
        [nir] = resolve_inputs([paths[1]], StacRequest(("nir",), assets=("B08",)))
        [whole] = resolve_inputs([paths[0]], StacRequest(None))
        assert nir.plan.assets == ("B08",) and whole.plan.as_is
        with pytest.raises(
            DataFormatError, match=r"s2\.json: --bands by index needs one asset; the item has 4"
        ):
            resolve_inputs([paths[1]], StacRequest(None))


def test_asset_hrefs_are_signed_by_the_hook_as_they_are_opened(
    tmp_path: Path, served: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with range_server(served) as srv:
        (tmp_path / "signer.py").write_text(
            f"def sign(href):\n    return href.replace('https://blob.invalid', {srv.url!r}) + '?sig=1'\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("SATCNN_HREF_SIGNER", "signer:sign")
        doc = write_stac(tmp_path / "s2.json", _s2(served, "https://blob.invalid"))
        [src] = resolve_inputs([doc], RGBN)
        with open_dataset(src) as ds, rasterio.open(served / "naip.tif") as local:
            np.testing.assert_array_equal(ds.read(), local.read())
        assert (
            srv.requests["s2/B08.tif"] >= 1
        )  # the unsigned host does not exist: only signed hrefs were read


def test_search_options_are_checked_and_an_unreachable_api_is_named() -> None:
    with pytest.raises(OptionError, match="inputs"):
        InferenceOptions("m.ckpt", None, "out")
    with pytest.raises(OptionError, match="give --stac URL too"):
        InferenceOptions("m.ckpt", "a.tif", "out", collections="naip")
    with pytest.raises(OptionError, match="four numbers west,south,east,north"):
        InferenceOptions("m.ckpt", None, "out", stac="https://api.example/stac", bbox="1,2,3")
    options = InferenceOptions(
        "m.ckpt", None, "out", stac="https://x/stac", collections="a, b", bbox="-99.2,47,-99,47.1"
    )
    assert options.stac_search == StacSearch("https://x/stac", ("a", "b"), (-99.2, 47.0, -99.0, 47.1))
    dead = f"http://127.0.0.1:{free_port()}/stac"  # nothing listens there
    with pytest.raises(DataFormatError, match=rf"^{dead}: STAC API search failed"):
        resolve_inputs([], StacRequest(RGBN_NAMES, search=StacSearch(dead, ("naip",))))


def test_catalog_walked_item_collection_and_bad_documents(tmp_path: Path, served: Path) -> None:
    def items() -> list[pystac.Item]:
        return [_naip(served, str(served / "naip.tif")), _s2(served, str(served))]

    cat = pystac.Catalog("root", "two collections of one item")
    for it in items():
        coll = stac_collection(it.collection_id or "", [it])
        coll.add_item(it)
        cat.add_child(coll)
    cat.normalize_hrefs(str(tmp_path / "catalog"))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    walked = resolve_inputs([tmp_path / "catalog" / "catalog.json"], RGBN)
    assert sorted(p.stem for p in walked) == ["naip-a", "s2-b"]
    assert all(Path(str(p)).is_file() for p in walked)  # each item's own JSON file
    with rasterio.open(served / "naip.tif") as ds:
        want = ds.read()
    for p in walked:  # relative asset hrefs resolved against the item's file
        with open_dataset(p) as ds:
            np.testing.assert_array_equal(ds.read(), want)

    saved = write_stac(
        tmp_path / "search.geojson", pystac.ItemCollection(items()).to_dict(transform_hrefs=False)
    )
    assert [p.name for p in resolve_inputs([saved], RGBN)] == ["naip-a.tif", "s2-b.tif"]
    assert str(resolve_inputs([saved], RGBN)[1]) == f"{saved}#s2-b"

    (tmp_path / "bad.json").write_text('{"type": "Feature", ')
    with pytest.raises(DataFormatError, match=r"bad\.json: is not valid JSON"):
        resolve_inputs([tmp_path / "bad.json"], RGBN)
    rgb = stac_item("red-only", served / "naip.tif", {"B04": ("B04.tif", ("red",))}, "s2")
    with pytest.raises(DataFormatError, match=r"rgb\.json: no asset has a band 'nir'.*assets: B04 \(red\)"):
        resolve_inputs([write_stac(tmp_path / "rgb.json", rgb)], StacRequest(("red", "nir")))


@pytest.mark.slow
def test_mixed_grids_refused_naming_the_assets_unless_resampled(tmp_path: Path, served: Path) -> None:
    coarse = served / "s2" / "B08.tif"  # nir at half the resolution (a 20 m band beside 10 m ones)
    with rasterio.open(coarse) as ds:
        data = ds.read(out_shape=(1, 42, 56), resampling=Resampling.average)
        profile = {**ds.profile, "height": 42, "width": 56, "transform": ds.transform * ds.transform.scale(2)}
    (served / "s2" / "B08.tif").unlink()
    with rasterio.open(tmp_path / "b08.tif", "w", **profile) as dst:
        dst.write(data)
    write_cog(tmp_path / "b08.tif", coarse)
    with range_server(served) as srv:
        doc = write_stac(tmp_path / "s2.json", _s2(served, srv.url))
        [src] = resolve_inputs([doc], RGBN)
        with (
            pytest.raises(
                RasterError,
                match=r"assets on different grids \(B04: 112 x 84 px.*B08: 56 x 42 px.*--resample-to",
            ),
            open_dataset(src),
        ):
            pass
        [src] = resolve_inputs([doc], StacRequest(RGBN_NAMES, resample_to="B04"))
        with open_dataset(src) as ds, rasterio.open(served / "s2" / "B04.tif") as red:
            assert (ds.shape, ds.transform) == (red.shape, red.transform)
            np.testing.assert_array_equal(ds.read(1), red.read(1))
            assert ds.read(4).std() > 0

        ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
        proc = _infer(
            "--model",
            str(ckpt),
            "--input",
            str(doc),
            "--output",
            str(tmp_path / "out"),
            "--no-track",
            "--no-progress",
        )
    assert proc.returncode == 1, proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("satcnn: error:")]
    assert f"{doc}: assets on different grids" in line and "B08" in line and "B04" in line
    assert "Traceback" not in proc.stderr and not list((tmp_path / "out").glob("*.tif"))


@pytest.mark.slow
def test_search_then_infer_gives_the_pixels_of_the_local_file(tmp_path: Path, served: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "sat6.ckpt")
    common = ["--model", str(ckpt), "--stride", "14", "--no-track", "--no-progress"]
    local = satcnn("infer", *common, "--input", str(served / "naip.tif"), "--output", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr
    with range_server(served) as srv:
        items = [
            _naip(served, f"{srv.url}/naip.tif"),
            _s2(served, srv.url),
        ]
        docs = [write_stac(tmp_path / f"{i.id}.json", i) for i in items]
        docs += [
            write_stac(tmp_path / f"{i.collection_id}.c.json", stac_collection(i.collection_id or "", [i]))
            for i in items
        ]
        with stac_api(docs[2:] + docs[:2]) as api:
            w, s, e, n = items[0].bbox or []
            search = [
                "--stac",
                api,
                "--collections",
                "naip,s2",
                f"--bbox={w - 0.01},{s - 0.01},{e + 0.01},{n + 0.01}",
            ]
            search += ["--datetime", "2020-08-01/2020-09-30", "--max-items", "5"]
            out = tmp_path / "stac"
            proc = satcnn("infer", *common, *search, "--output", str(out))
            assert proc.returncode == 0, proc.stderr
            nowhere = _infer(
                *common, "--stac", api, "--collections", "naip", "--bbox=0,0,1,1", "--output", str(out)
            )
    assert (
        nowhere.returncode == 1 and f"satcnn: error: {api}: STAC API search found no item" in nowhere.stderr
    )
    with rasterio.open(tmp_path / "local" / "naip.tif") as ref:
        want = ref.read()
    for name in ("naip-a", "s2-b"):  # multi-band as it is, per-band assets stacked: the same pixels
        with rasterio.open(out / f"{name}.tif") as got:
            np.testing.assert_array_equal(got.read(), want)
    manifest = json.loads((out / "manifest.json").read_text())
    entries = {Path(e["outputs"][0]).stem: e["stac_item"] for e in manifest["outputs"]}
    assert entries == {
        "naip-a": f"{api}/collections/naip/items/naip-a",
        "s2-b": f"{api}/collections/s2/items/s2-b",
    }
