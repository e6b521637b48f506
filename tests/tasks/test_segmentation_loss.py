"""The segmentation loss counts only valid pixels: nodata and masked pixels give no loss and no gradient."""

from __future__ import annotations

import pytest
import torch

from satcnn.errors import ConfigError
from satcnn.tasks.segmentation import SegmentationTask, soft_dice_loss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn((3, 1, 8, 8), generator=g)
    mask = (torch.rand((3, 1, 8, 8), generator=g) > 0.7).float()
    valid = torch.ones((3, 1, 8, 8))
    valid[0, :, :4] = 0
    valid[2] = 0  # a window with no valid pixel at all
    return logits, mask, valid


@pytest.mark.parametrize(
    ("loss", "pos_weight"),
    [("bce", None), ("bce", 3.0), ("bce_dice", None), ("bce_dice", 3.0), ("mse", None)],
)
def test_invalid_pixels_give_no_loss_and_no_gradient(loss: str, pos_weight: float | None) -> None:
    task = SegmentationTask(model_kwargs={"filters": [4, 8, 16, 32]}, loss=loss, pos_weight=pos_weight)  # type: ignore[arg-type]
    logits, mask, valid = _batch()
    logits.requires_grad_(True)
    value = task.loss(logits, mask, valid)
    value.backward()
    assert logits.grad is not None
    assert (logits.grad[valid == 0] == 0).all() and (logits.grad[valid == 1] != 0).any()

    # Anything at invalid pixels (the fill, a wrong label) leaves the loss unchanged.
    other_logits = torch.where(valid == 0, torch.full_like(logits, 9.0), logits.detach())
    other_mask = torch.where(valid == 0, 1 - mask, mask)
    assert torch.allclose(task.loss(other_logits, other_mask, valid), value.detach())

    # It equals the plain loss over the valid pixels alone (here: the valid rows of window 0, window 1).
    keep_logits = torch.cat(
        [logits.detach()[0:1, :, 4:].reshape(1, 1, -1), logits.detach()[1:2].reshape(1, 1, -1)], 2
    )
    keep_mask = torch.cat([mask[0:1, :, 4:].reshape(1, 1, -1), mask[1:2].reshape(1, 1, -1)], 2)
    assert torch.allclose(task.loss(keep_logits, keep_mask), value.detach(), atol=1e-6)

    # All valid: the same as no mask.
    assert torch.allclose(
        task.loss(logits.detach(), mask, torch.ones_like(mask)), task.loss(logits.detach(), mask)
    )


def test_mse_is_the_squared_error_of_the_probability() -> None:
    task = SegmentationTask(model_kwargs={"filters": [4, 8, 16, 32]}, loss="mse")
    logits, mask, _ = _batch()
    expected = torch.nn.functional.mse_loss(torch.sigmoid(logits), mask)
    assert torch.allclose(task.loss(logits, mask), expected)
    assert torch.allclose(task.loss(logits, mask, torch.ones_like(mask)), expected)
    with pytest.raises(ConfigError, match="pos_weight weights BCE; it has no effect with loss: mse"):
        SegmentationTask(model_kwargs={"filters": [4, 8, 16, 32]}, loss="mse", pos_weight=2.0)


@pytest.mark.parametrize("loss", ["bce_dice", "mse"])
def test_no_valid_pixel_gives_zero_not_nan(loss: str) -> None:
    task = SegmentationTask(model_kwargs={"filters": [4, 8, 16, 32]}, loss=loss)  # type: ignore[arg-type]
    logits, mask, _ = _batch()
    logits.requires_grad_(True)
    value = task.loss(logits, mask, torch.zeros_like(mask))
    value.backward()
    assert float(value.detach()) == 0.0 and logits.grad is not None and (logits.grad == 0).all()
    assert float(soft_dice_loss(logits.detach(), mask, valid=torch.zeros_like(mask))) == 0.0


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
def test_training_step_masks_the_loss_with_the_batch_valid() -> None:
    task = SegmentationTask(model_kwargs={"filters": [4, 8, 16, 32]}, channels_last=False)
    g = torch.Generator().manual_seed(1)
    image = torch.rand((2, 4, 32, 32), generator=g) * 255
    mask = (torch.rand((2, 1, 32, 32), generator=g) > 0.5).float()
    valid = torch.ones_like(mask)
    valid[:, :, :16] = 0
    relabelled = torch.where(valid == 0, 1 - mask, mask)  # labels change only where invalid
    with torch.no_grad():
        loss = task.training_step({"image": image, "mask": mask, "valid": valid}, 0)
        same = task.training_step({"image": image, "mask": relabelled, "valid": valid}, 0)
        unmasked = task.training_step({"image": image, "mask": relabelled}, 0)
    assert torch.allclose(loss, same) and not torch.allclose(loss, unmasked)
