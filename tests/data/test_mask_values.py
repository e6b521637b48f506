"""Road masks with values other than 0, 1 and 255 are refused before training, or warned about (issue 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satcnn.data import RoadSceneDataModule
from satcnn.data.mask_values import check_mask_values, mask_values
from satcnn.errors import RasterError
from tests.factories import write_scene


def _recode(mask_path: Path, values: dict[int, int]) -> None:
    import rasterio

    with rasterio.open(mask_path, "r+") as ds:
        a = ds.read(1)
        out = a.copy()
        for old, new in values.items():
            out[a == old] = new
        out[:5, :5] = 7
        ds.write(out, 1)


def test_class_coded_mask_is_refused_unless_allowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_scene(tmp_path, "a")  # a 0/255 mask: accepted as it is
    mask = tmp_path / "masks" / "a.tif"
    check_mask_values([mask])
    _recode(mask, {255: 3})
    assert mask_values(mask) == [0, 3, 7]
    with pytest.raises(RasterError, match=r"masks/a\.tif: mask holds values 3, 7 besides 0, 1 and 255"):
        RoadSceneDataModule(str(tmp_path), patch_size=32, val_overlap=8).setup("fit")
    with caplog.at_level("WARNING", logger="satcnn"):
        dm = RoadSceneDataModule(str(tmp_path), patch_size=32, val_overlap=8, allow_other_mask_values=True)
        dm.setup("fit")
    assert "a.tif: mask values 3, 7 are read as road" in caplog.text
    batch = next(iter(dm.train_dataloader()))
    assert set(np.unique(batch["mask"].numpy())) <= {0.0, 1.0}  # every non-zero value is road
