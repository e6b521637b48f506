"""Window samplers: grid coverage, per-epoch redraw, disjoint DDP shards (also under Lightning DDP)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.transform import from_origin
from torch.utils.data import DistributedSampler
from torchgeo.samplers.utils import tile_to_chips

from satcnn.data.samplers import (
    NOTHING_OWNED,
    GridWindowSampler,
    RandomWindowSampler,
    Region,
    WindowRef,
)
from satcnn.data.scenes import RoadSceneDataModule
from satcnn.io.grid import axis_windows

REGIONS = [Region(0, 0, 0, 100, 70), Region(1, 10, 5, 40, 40)]


@pytest.mark.parametrize(
    ("length", "size", "stride"), [(100, 32, 24), (64, 32, 32), (32, 32, 8), (97, 30, 29)]
)
def test_grid_offsets_cover_extent_and_end_at_edge(length: int, size: int, stride: int) -> None:
    starts = [w.start for w in axis_windows(length, size, size - stride)]
    covered = np.zeros(length, dtype=int)
    for s in starts:
        covered[s : s + size] += 1
    assert covered.min() >= 1
    assert starts[0] == 0 and starts[-1] == length - size
    assert all(b - a <= stride for a, b in itertools.pairwise(starts))
    assert len(starts) == tile_to_chips((0, 0, 1, length), (size, 1), (stride, 1))[0]


def test_random_sampler_redraws_per_epoch_and_stays_inside_regions() -> None:
    sampler = RandomWindowSampler(REGIONS, 16, num_samples=50, seed=7)
    assert isinstance(sampler, DistributedSampler) and len(sampler) == 50
    epoch0 = list(sampler)
    assert epoch0 == list(sampler)  # same epoch, same windows
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0 and len(epoch1) == 50
    for ref in epoch0 + epoch1:
        reg = REGIONS[ref.scene]
        assert reg.row_off <= ref.row_off <= reg.row_off + reg.height - 16
        assert reg.col_off <= ref.col_off <= reg.col_off + reg.width - 16
        assert ref.size == 16
    assert {ref.scene for ref in epoch0} == {0, 1}
    other_seed = RandomWindowSampler(REGIONS, 16, num_samples=50, seed=8)
    assert list(other_seed) != epoch0


@pytest.mark.parametrize("epoch", [0, 3])
def test_explicit_ranks_split_the_global_list(epoch: int) -> None:
    full = RandomWindowSampler(REGIONS, 16, num_samples=21, seed=1)
    full.set_epoch(epoch)
    shards = []
    for rank in range(2):
        s = RandomWindowSampler(REGIONS, 16, num_samples=21, num_replicas=2, rank=rank, seed=1)
        s.set_epoch(epoch)
        shards.append(list(s))
        assert len(s) == 11 == len(shards[-1])
    # rank r takes [r::2] of the same global list (padded by one window to even length)
    assert shards[0] == list(full)[0::2]
    assert shards[1][:10] == list(full)[1::2]


def test_grid_sampler_shards_pad_and_shuffle() -> None:
    grid = GridWindowSampler(REGIONS, 32, overlap=8)
    windows = list(grid)
    assert len(windows) == len(grid) == len(set(windows))
    shards = [list(GridWindowSampler(REGIONS, 32, overlap=8, num_replicas=3, rank=r)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # equal steps on every rank
    owned = [w for s in shards for w in s if w.owned != NOTHING_OWNED]
    assert sorted(owned) == sorted(windows)  # each window once; the padding repeats own nothing
    assert {w._replace(owned=None) for s in shards for w in s} == {w._replace(owned=None) for w in windows}
    shuffled = GridWindowSampler(REGIONS, 32, overlap=8, shuffle=True, seed=2)
    first = list(shuffled)
    shuffled.set_epoch(1)
    assert {w[:4] for w in first} == {w[:4] for w in windows} and [w[:4] for w in first] != [
        w[:4] for w in shuffled
    ]
    with pytest.raises(ValueError, match="does not fit"):
        GridWindowSampler(REGIONS, 41)


def _ownership(refs: list[WindowRef], regions: list[Region], size: int) -> dict[int, np.ndarray]:
    """Per scene, how many windows own each pixel (scenes as large as their regions reach)."""
    shape = {r.scene: (0, 0) for r in regions}
    for r in regions:
        h, w = shape[r.scene]
        shape[r.scene] = (max(h, r.row_off + r.height), max(w, r.col_off + r.width))
    count = {k: np.zeros(v, dtype=int) for k, v in shape.items()}
    for ref in refs:
        assert ref.owned is not None and ref.size == size
        r0, r1, c0, c1 = ref.owned
        assert 0 <= r0 <= r1 <= size and 0 <= c0 <= c1 <= size
        count[ref.scene][ref.row_off + r0 : ref.row_off + r1, ref.col_off + c0 : ref.col_off + c1] += 1
    return count


@pytest.mark.parametrize(
    ("regions", "size", "overlap"),
    [
        ([Region(0, 0, 0, 100, 70), Region(1, 10, 5, 40, 40)], 32, 8),
        ([Region(0, 0, 0, 97, 61), Region(0, 97, 0, 33, 61)], 30, 7),  # odd overlap, two bands of a scene
        ([Region(0, 0, 0, 300, 257)], 224, 32),
        ([Region(0, 0, 0, 64, 64)], 32, 0),
        ([Region(0, 0, 0, 45, 33)], 16, 15),
        ([Region(0, 3, 2, 16, 16)], 16, 4),  # a single window
    ],
)
@pytest.mark.parametrize("world", [1, 2, 5])
def test_grid_owned_pixels_tile_regions_exactly_once(
    regions: list[Region], size: int, overlap: int, world: int
) -> None:
    refs = [w for rank in range(world) for w in GridWindowSampler(regions, size, overlap, world, rank)]
    whole = list(GridWindowSampler(regions, size, overlap))
    assert len(refs) == world * math.ceil(len(whole) / world)
    count = _ownership(refs, regions, size)
    inside = {k: np.zeros(v.shape, dtype=bool) for k, v in count.items()}
    for r in regions:
        inside[r.scene][r.row_off : r.row_off + r.height, r.col_off : r.col_off + r.width] = True
    for k in count:
        assert (count[k][inside[k]] == 1).all()
        assert (count[k][~inside[k]] == 0).all()
    if len(refs) > len(whole):  # padding repeats exist and own nothing
        assert sum(w.owned == NOTHING_OWNED for w in refs) == len(refs) - len(whole)


def test_owned_spans_are_even_and_windows_centred_on_them() -> None:
    # 4 windows of 32 with overlap >= 8 on 100 px: boundaries 4 + i * 92 / 4 -> 27, 50, 73, so the
    # interior windows own 23 px each and the edge windows 4 more; windows centred, moved inside.
    windows = axis_windows(100, 32, 8)
    assert [(w.own_start, w.own_stop) for w in windows] == [(0, 27), (27, 50), (50, 73), (73, 100)]
    assert [w.start for w in windows] == [0, 22, 45, 68]
    ref = GridWindowSampler([Region(0, 0, 0, 100, 32)], 32, overlap=8).__iter__().__next__()
    assert ref.owned == (0, 27, 0, 32)
    assert RandomWindowSampler(REGIONS, 16, num_samples=4).__iter__().__next__().owned is None


# ---------------------------------------------------------------- Lightning DDP, 2 CPU processes


class BoundsRecorder(L.LightningModule):
    """Writes the bounds of every training sample it sees to ``out/rank<r>_epoch<e>.json``."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        path = Path(self.out) / f"rank{self.global_rank}_epoch{self.current_epoch}.json"
        seen = json.loads(path.read_text()) if path.exists() else []
        seen += batch["bounds"].tolist()
        path.write_text(json.dumps(seen))
        loader = self.trainer.train_dataloader
        assert loader is not None
        sampler = loader.sampler
        (Path(self.out) / f"sampler_rank{self.global_rank}.txt").write_text(type(sampler).__name__)
        return (self.weight * batch["image"].mean()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _write_scene(root: Path) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    profile = {
        "driver": "GTiff",
        "crs": CRS.from_epsg(32633),
        "transform": from_origin(500_000, 4_600_000, 1, 1),
    }
    with rasterio.open(
        root / "images" / "s.tif", "w", height=160, width=160, count=4, dtype="uint8", **profile
    ) as d:
        d.write(rng.integers(0, 255, (4, 160, 160), dtype=np.uint8))
    with rasterio.open(
        root / "masks" / "s.tif", "w", height=160, width=160, count=1, dtype="uint8", **profile
    ) as d:
        d.write((rng.random((1, 160, 160)) > 0.8).astype(np.uint8))


@pytest.mark.ddp
@pytest.mark.slow
def test_lightning_ddp_ranks_get_disjoint_samples_that_change_per_epoch(tmp_path: Path) -> None:
    _write_scene(tmp_path / "scenes")
    out = tmp_path / "seen"
    out.mkdir()
    dm = RoadSceneDataModule(
        str(tmp_path / "scenes"),
        patch_size=16,
        batch_size=4,
        train_samples_per_epoch=24,
        val_overlap=4,
        augment=False,
    )
    trainer = L.Trainer(
        strategy="ddp_spawn",
        accelerator="cpu",
        devices=2,
        max_epochs=2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )  # use_distributed_sampler stays True: the sampler must not be wrapped a second time
    trainer.fit(BoundsRecorder(str(out)), datamodule=dm)

    seen = {
        (r, e): {tuple(b) for b in json.loads((out / f"rank{r}_epoch{e}.json").read_text())}
        for r in range(2)
        for e in range(2)
    }
    for e in range(2):
        assert len(seen[0, e]) == len(seen[1, e]) == 12  # 24 per epoch split in two, not 6 + 6
        assert not seen[0, e] & seen[1, e]
    assert seen[0, 0] | seen[1, 0] != seen[0, 1] | seen[1, 1]
    assert (out / "sampler_rank0.txt").read_text() == "RandomWindowSampler"
