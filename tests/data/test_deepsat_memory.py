"""DeepSat splits held in memory (`in_memory: true`): the same batches as the default loaders, uint8
storage, augmentation as symmetries of each patch, and a fit through Lightning (on CPU)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from satcnn.data import DeepSatDataModule
from satcnn.errors import ConfigError
from satcnn.tasks import ClassificationTask
from tests.factories import SAT6_CSV


def _dm(**kw: object) -> DeepSatDataModule:
    dm = DeepSatDataModule(str(SAT6_CSV), val_fraction=0.1, seed=3, batch_size=16, **kw)  # type: ignore[arg-type]
    dm.setup("fit")
    return dm


def _symmetries(image: torch.Tensor) -> list[torch.Tensor]:
    rots = [torch.rot90(image, k, (-2, -1)) for k in range(4)]
    return rots + [r.flip(-1) for r in rots]


def test_in_memory_batches_equal_the_default_loaders() -> None:
    plain, memory = _dm(augment=False), _dm(augment=False, in_memory=True)
    for stage in ("val", "test"):
        a = list(getattr(plain, f"{stage}_dataloader")())
        b = list(getattr(memory, f"{stage}_dataloader")())
        assert [len(x["label"]) for x in a] == [len(x["label"]) for x in b]
        for x, y in zip(a, b, strict=True):
            assert y["image"].dtype == torch.float32 and y["label"].dtype == torch.int64
            torch.testing.assert_close(x["image"], y["image"], rtol=0, atol=0)
            torch.testing.assert_close(x["label"], y["label"])
    held = memory._memory["val"]
    assert held.images.dtype == torch.uint8 and held.images.shape == (20, 4, 28, 28)
    assert held.images.device == torch.device("cpu")
    # training: the same order as the default loader under the same seed, every patch once an epoch
    torch.manual_seed(0)
    a = torch.cat([x["image"] for x in plain.train_dataloader()])
    torch.manual_seed(0)
    b = torch.cat([x["image"] for x in memory.train_dataloader()])
    assert a.shape == b.shape == (180, 4, 28, 28)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_in_memory_augmentation_gives_each_patch_one_of_its_symmetries() -> None:
    plain, memory = _dm(augment=False, in_memory=True), _dm(augment=True, in_memory=True)
    torch.manual_seed(1)
    a = next(iter(plain.train_dataloader()))
    torch.manual_seed(1)
    b = next(iter(memory.train_dataloader()))
    torch.testing.assert_close(a["label"], b["label"])
    kinds = []
    for src, aug in zip(a["image"], b["image"], strict=True):
        matches = [k for k, s in enumerate(_symmetries(src)) if torch.equal(s, aug)]
        assert matches, "an augmented patch is not a symmetry of its source"
        kinds.append(matches[0])
    assert len(set(kinds)) > 1, "every patch of the batch got the same transform"


def test_in_memory_fits_through_lightning() -> None:
    dm = _dm(augment=True, in_memory=True, device="cpu")
    task = ClassificationTask(model="deepsat_cnn", model_kwargs={"channels": [4, 8], "hidden": 8})
    trainer = L.Trainer(
        max_steps=3,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    before = [p.detach().clone() for p in task.parameters()]
    trainer.fit(task, datamodule=dm)
    assert trainer.global_step == 3
    assert any(not torch.equal(p, q) for p, q in zip(before, task.parameters(), strict=True))


def test_in_memory_device_is_checked() -> None:
    with pytest.raises(ConfigError, match="not a torch device"):
        DeepSatDataModule(str(SAT6_CSV), in_memory=True, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            DeepSatDataModule(str(SAT6_CSV), in_memory=True, device="cuda")
