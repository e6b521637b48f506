"""Road scenes from STAC: an ItemCollection (local or on a loopback HTTP server) trains like the folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pystac
import pytest
import torch

from satcnn.cli import main
from satcnn.data.scene_index import find_scenes
from satcnn.errors import ConfigError, DataFormatError, RasterError
from tests.factories import (
    CONFIGS,
    DEBUG,
    RGBN_NAMES,
    RangeServer,
    make_dm,
    range_server,
    satcnn,
    stac_collection,
    stac_item,
    write_scene,
    write_stac,
)

NAMES = ("scene_a", "scene_b", "scene_c")


def _items(root: Path, base: str, label_role: list[str] | None = ["labels"]) -> dict[str, Any]:  # noqa: B006
    """An ItemCollection of ``root``'s scenes, asset hrefs under ``base`` ("" = relative)."""
    items = []
    for name in sorted(p.stem for p in (root / "images").glob("*.tif")):
        item = stac_item(
            name,
            root / "images" / f"{name}.tif",
            {"image": (f"{base}images/{name}.tif", RGBN_NAMES)},
            "roads",
        )
        item.add_asset(
            "mask",
            pystac.Asset(f"{base}masks/{name}.tif", media_type=pystac.MediaType.GEOTIFF, roles=label_role),
        )
        items.append(item.to_dict(include_self_link=False, transform_hrefs=False))
    return {"type": "FeatureCollection", "features": items}


@pytest.fixture(autouse=True)
def _loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stac_scenes")
    for seed, name in enumerate(NAMES):
        write_scene(root, name, seed=seed)
    write_stac(root / "items.json", _items(root, ""))
    return root


@pytest.fixture(scope="module")
def served(scenes: Path) -> Iterator[RangeServer]:
    with range_server(scenes) as srv:
        write_stac(scenes / "remote.json", _items(scenes, f"{srv.url}/"))
        yield srv


def _batches(root: str) -> dict[str, list[dict[str, Any]]]:
    dm = make_dm(
        root, val_scenes=["scene_b"], test_scenes=["scene_c"], batch_size=4, train_samples_per_epoch=8
    )
    dm.setup()
    assert {k: sorted({dm.scenes[r.scene].name for r in v}) for k, v in dm.regions.items()} == {
        "train": ["scene_a"],
        "val": ["scene_b"],
        "test": ["scene_c"],
    }
    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader(), "test": dm.test_dataloader()}
    out = {k: [dm.on_after_batch_transfer(b, 0) for b in loader] for k, loader in loaders.items()}
    out["stats"] = [{"stats": torch.tensor(dm.band_stats())}]
    return out


def test_stac_item_collection_yields_the_folder_batches(scenes: Path, served: RangeServer) -> None:
    """Local and served ItemCollections: same windows, pixels, masks and valid pixels as the folder."""
    want = _batches(str(scenes))
    for doc in (str(scenes / "items.json"), f"{served.url}/remote.json"):
        got = _batches(doc)
        for split, batches in want.items():
            assert len(got[split]) == len(batches) > 0, (doc, split)
            for a, b in zip(got[split], batches, strict=True):
                for key, value in b.items():
                    if isinstance(value, torch.Tensor):
                        torch.testing.assert_close(a[key], value, rtol=0, atol=0, msg=f"{doc} {split} {key}")
    assert served.requests["images/scene_a.tif"] > 0 and served.requests["masks/scene_c.tif"] > 0


def test_collection_is_walked_for_its_items(scenes: Path, tmp_path: Path) -> None:
    items = [pystac.Item.from_dict(d) for d in _items(scenes, f"{scenes}/")["features"]]
    collection = stac_collection("roads", items)
    collection.add_items(items)
    collection.normalize_hrefs(str(tmp_path / "catalog"))
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    got = find_scenes(tmp_path / "catalog" / "collection.json")
    want = find_scenes(scenes)
    assert [(s.name, s.image_path, s.mask_path) for s in got] == [
        (s.name, s.image_path, s.mask_path) for s in want
    ]


def test_stac_scenes_named_by_item_id_and_unknown_ids_listed(scenes: Path) -> None:
    dm = make_dm(str(scenes / "items.json"), val_scenes=["scene_x"])
    with pytest.raises(ConfigError, match=r"val_scenes names unknown scenes \['scene_x'\].*scene_a"):
        dm.setup()


def test_label_asset_by_role_or_by_name_else_one_line_naming_item_and_keys(tmp_path: Path) -> None:
    write_scene(tmp_path, "s1")
    doc = write_stac(tmp_path / "items.json", _items(tmp_path, "", label_role=None))
    with pytest.raises(DataFormatError) as err:
        find_scenes(doc)
    assert str(err.value) == (
        f"{doc}#s1: item 's1' has no label asset (role 'labels'); its assets: image, thumbnail, mask; "
        "name one with label_asset"
    )
    [scene] = find_scenes(doc, label_asset="mask")
    assert (scene.name, scene.mask_path) == ("s1", str(tmp_path / "masks" / "s1.tif"))
    with pytest.raises(DataFormatError, match=r"item 's1' has no asset 'labels' \(label_asset\); its assets"):
        find_scenes(doc, label_asset="labels")
    with pytest.raises(ConfigError, match="is a folder"):
        find_scenes(tmp_path, label_asset="mask")


@pytest.mark.slow
def test_off_grid_label_is_one_line_exit_1_and_fit_trains_from_served_items(
    scenes: Path, served: RangeServer, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``satcnn fit --data.init_args.root <ItemCollection URL>`` trains one step; a label off the
    image grid fails at fit start with one line (exit 1)."""
    bad = workdir / "bad"
    write_scene(bad, "off", mask_res=1.0)
    doc = write_stac(bad / "items.json", _items(bad, ""))
    with pytest.raises(RasterError) as err:
        find_scenes(doc)
    message = str(err.value)
    assert "item 'off': image asset 'image'" in message and "label asset 'mask'" in message
    assert "different transforms" in message

    common = ["fit", "--config", str(CONFIGS / "roads" / "resunet.yaml"), "--config", str(DEBUG)]
    common += ["--data.init_args.patch_size", "32", "--data.init_args.val_overlap", "8"]
    common += ["--data.init_args.batch_size", "2"]
    common += ["--model.init_args.model_kwargs.filters", "[4, 8, 16, 32]", "--trainer.logger", "false"]
    assert main([*common, "--data.init_args.root", str(doc)]) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr and "item 'off': image asset 'image'" in stderr.strip().splitlines()[-1]

    args = [*common, "--data.init_args.root", f"{served.url}/remote.json", "--trainer.max_steps", "1"]
    args += ["--data.init_args.val_scenes", "[scene_b]", "--trainer.limit_val_batches", "1"]
    proc = satcnn(*args, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((workdir / "runs").rglob("*.ckpt")), proc.stderr[-3000:]
    assert served.requests["remote.json"] > 0
