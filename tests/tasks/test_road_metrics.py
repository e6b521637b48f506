"""Road metrics: IoU, F1 and relaxed precision / recall with slack rho (Mnih 2013)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from satcnn.tasks.road_metrics import RelaxedPrecisionRecall, RoadF1, RoadIoU, disk_max_filter


def vertical_line(col: int, value: float = 1.0, size: int = 16) -> torch.Tensor:
    x = torch.zeros(1, 1, size, size)
    x[..., col] = value
    return x


def point(row: int, col: int, value: float = 1.0, size: int = 16) -> torch.Tensor:
    x = torch.zeros(1, 1, size, size)
    x[0, 0, row, col] = value
    return x


@pytest.mark.parametrize(("shift", "expected"), [(0, 1.0), (2, 1.0), (3, 1.0), (4, 0.0), (5, 0.0)])
def test_shifted_line_relaxed_vs_iou(shift: int, expected: float) -> None:
    target = vertical_line(6)
    preds = vertical_line(6 + shift, value=0.9)
    relaxed = RelaxedPrecisionRecall(rho=3)
    relaxed.update(preds, target)
    out = relaxed.compute()
    assert out["relaxed_precision"].item() == expected
    assert out["relaxed_recall"].item() == expected
    iou = RoadIoU()
    iou.update(preds, target)
    assert iou.compute().item() == (1.0 if shift == 0 else 0.0)


@pytest.mark.parametrize(("dy", "dx", "within"), [(2, 2, True), (3, 0, True), (3, 1, False), (3, 3, False)])
def test_slack_is_a_euclidean_disk(dy: int, dx: int, within: bool) -> None:
    # (2, 2) is 2.83 px away and (3, 1) is 3.16 px: a square window would accept both.
    relaxed = RelaxedPrecisionRecall(rho=3, thresholds=[0.5])
    relaxed.update(point(8 + dy, 8 + dx, 0.9), point(8, 8))
    assert relaxed.compute()["relaxed_precision"].item() == float(within)


def test_disk_max_filter_shape_and_borders() -> None:
    x = torch.zeros(1, 9, 9)
    x[0, 4, 4] = 1.0
    disk = disk_max_filter(x, 3)
    yy, xx = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    assert torch.equal(disk[0] > 0, (yy - 4) ** 2 + (xx - 4) ** 2 <= 9)
    assert torch.equal(disk_max_filter(x, 0), x)
    # At the border the disk is cut, not wrapped around.
    corner = torch.zeros(1, 9, 9)
    corner[0, 0, 0] = 0.7
    out = disk_max_filter(corner, 2)
    assert out[0, 8, 8] == 0 and out[0, 0, 8] == 0
    assert out.max() == pytest.approx(0.7) and int((out > 0).sum()) == 6


def test_breakeven_on_a_hand_computed_curve() -> None:
    # Six isolated true road pixels, each with a prediction one pixel below it (inside
    # rho = 1), with probabilities 0.9, 0.9, 0.6, 0.6, 0.3, 0.3; and six false positives at
    # 0.3 five rows away. At t = 0.2: P = 6/12, R = 6/6. At 0.5: P = 4/4, R = 4/6.
    # At 0.8: P = 2/2, R = 2/6. P - R goes -1/2 -> +1/3, so alpha = 0.5 / (0.5 + 1/3) = 0.6
    # and breakeven = 0.5 + 0.6 * 0.5 = 0.8 (= 1 - 0.6 / 3 on the recall side).
    target = torch.zeros(1, 1, 8, 40)
    preds = torch.zeros(1, 1, 8, 40)
    for k, p in enumerate([0.9, 0.9, 0.6, 0.6, 0.3, 0.3]):
        target[0, 0, 2, 2 + 5 * k] = 1
        preds[0, 0, 3, 2 + 5 * k] = p
    preds[0, 0, 7, 2:8] = 0.3
    metric = RelaxedPrecisionRecall(rho=1, thresholds=[0.2, 0.5, 0.8])
    metric.update(preds, target)
    thresholds, precision, recall = metric.curve()
    torch.testing.assert_close(thresholds, torch.tensor([0.2, 0.5, 0.8]))
    torch.testing.assert_close(precision, torch.tensor([0.5, 1.0, 1.0]))
    torch.testing.assert_close(recall, torch.tensor([1.0, 4 / 6, 2 / 6]))
    out = metric.compute()
    assert out["breakeven"].item() == pytest.approx(0.8)
    assert out["relaxed_precision"].item() == pytest.approx(1.0)
    assert out["relaxed_recall"].item() == pytest.approx(4 / 6)
    # With no slack the predictions one pixel off count for nothing.
    strict = RelaxedPrecisionRecall(rho=0, thresholds=[0.2, 0.5, 0.8])
    strict.update(preds, target)
    assert strict.compute()["relaxed_recall"].item() == 0.0


def test_undefined_cases() -> None:
    metric = RelaxedPrecisionRecall(thresholds=5)
    assert metric.thresholds.numel() == 5 and 0.5 in metric.thresholds.tolist()
    metric.update(torch.zeros(1, 1, 8, 8), vertical_line(3, size=8))
    out = metric.compute()
    assert out["relaxed_precision"].item() == 0.0  # nothing predicted
    assert out["relaxed_recall"].item() == 0.0
    no_road = RelaxedPrecisionRecall()
    no_road.update(torch.rand(1, 8, 8), torch.zeros(1, 8, 8))
    result = no_road.compute()
    assert math.isnan(result["relaxed_recall"].item()) and math.isnan(result["breakeven"].item())


def test_two_updates_equal_one_on_the_concatenation() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.zeros(4, 1, 24, 24)
    target[:, :, 5] = 1
    target[:, :, :, 11] = 1
    target[2:] = target[2:].roll(3, dims=-1)
    # Noisy but informative predictions, so that the curve has a breakeven.
    preds = (0.5 * target + 0.6 * torch.rand(4, 1, 24, 24, generator=gen)).clamp(max=1)
    metrics: list[Callable[[], Any]] = [lambda: RelaxedPrecisionRecall(rho=3, thresholds=21), RoadIoU, RoadF1]
    for make in metrics:
        split, whole = make(), make()
        split.update(preds[:2], target[:2])
        split.update(preds[2:], target[2:])
        whole.update(preds, target)
        a, b = split.compute(), whole.compute()
        if isinstance(a, dict):
            assert split.pred_count.sum() > 0 and split.target_hit.sum() > 0
            for key in a:
                torch.testing.assert_close(a[key], b[key])
            assert torch.equal(split.pred_hit, whole.pred_hit)
        else:
            torch.testing.assert_close(a, b)


def test_iou_and_f1_accept_both_layouts() -> None:
    target = vertical_line(4, size=8)
    target[..., 5] = 1  # 16 road pixels
    preds = vertical_line(4, 0.8, size=8)  # 8 of them found, no false positives
    preds[..., 6] = 0.5  # not above the threshold
    iou, f1 = RoadIoU(), RoadF1()
    iou.update(preds, target[:, 0])
    f1.update(preds[:, 0], target)
    assert iou.compute().item() == pytest.approx(8 / 16)
    assert f1.compute().item() == pytest.approx(2 * 8 / (8 + 16))


def test_invalid_inputs() -> None:
    metric = RelaxedPrecisionRecall()
    with pytest.raises(ValueError, match="probabilities"):
        metric.update(torch.randn(1, 1, 8, 8) * 5, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="target values"):
        metric.update(torch.rand(1, 1, 8, 8), torch.full((1, 1, 8, 8), 255.0))
    with pytest.raises(ValueError, match="do not match"):
        metric.update(torch.rand(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        RoadIoU().update(torch.rand(1, 2, 8, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="rho"):
        RelaxedPrecisionRecall(rho=-1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RelaxedPrecisionRecall(thresholds=[0.2, 1.5])


def test_valid_mask_counts_owned_pixels_with_full_window_slack() -> None:
    # 8x8, rho=1. Road: columns 2 and 6. Owned: columns 0-5.
    target = vertical_line(2, size=8) + vertical_line(6, size=8)
    preds = torch.zeros(1, 1, 8, 8)
    preds[0, 0, :4, 3] = 0.9  # owned, next to road column 2
    preds[0, 0, :, 5] = 0.9  # owned, next to road column 6, which is not owned
    preds[0, 0, 7, 0] = 0.9  # owned false positive (2 px from the road)
    preds[0, 0, 4:, 7] = 0.9  # not owned
    valid = torch.zeros(1, 1, 8, 8)
    valid[..., :6] = 1
    metric = RelaxedPrecisionRecall(rho=1, thresholds=[0.5])
    metric.update(preds, target, valid=valid)
    # Owned predictions: 4 + 8 + 1 = 13, of which 12 lie within 1 px of a road (column 6 counts
    # as road for the slack even though it is not owned). Owned road: column 2 (8 px), of which
    # rows 0-3 have a prediction within 1 px.
    assert metric.pred_count.tolist() == [13] and metric.pred_hit.tolist() == [12]
    assert metric.target_count.item() == 8 and metric.target_hit.tolist() == [4]
    result = metric.compute()
    assert result["relaxed_precision"].item() == pytest.approx(12 / 13)
    assert result["relaxed_recall"].item() == pytest.approx(4 / 8)
    unrestricted = RelaxedPrecisionRecall(rho=1, thresholds=[0.5])
    unrestricted.update(preds, target)
    assert unrestricted.pred_count.tolist() == [17] and unrestricted.target_count.item() == 16
    # IoU / F1 on owned pixels: predicted 13, road 8, both 0 (no exact hit) -> IoU 0; shift one
    # prediction onto the road to get a non-trivial value.
    preds[0, 0, 0, 2] = 0.9  # 14 predicted, 1 on road, union 14 + 8 - 1 = 21
    iou, f1 = RoadIoU(), RoadF1()
    iou.update(preds, target, valid=valid)
    f1.update(preds[:, 0], target, valid=valid[:, 0])
    assert iou.compute().item() == pytest.approx(1 / 21)
    assert f1.compute().item() == pytest.approx(2 * 1 / (14 + 8))


def test_padding_copy_with_empty_valid_adds_nothing() -> None:
    gen = torch.Generator().manual_seed(1)
    target = (torch.rand(2, 1, 12, 12, generator=gen) > 0.7).float()
    preds = torch.rand(2, 1, 12, 12, generator=gen)
    valid = torch.ones(2, 1, 12, 12)
    doubled = (torch.cat([preds, preds[:1]]), torch.cat([target, target[:1]]))
    valid_doubled = torch.cat([valid, torch.zeros(1, 1, 12, 12)])
    makers: list[Callable[[], Any]] = [lambda: RelaxedPrecisionRecall(rho=2, thresholds=11), RoadIoU, RoadF1]
    for make in makers:
        once, padded, empty = make(), make(), make()
        once.update(preds, target)
        padded.update(*doubled, valid=valid_doubled)
        empty.update(preds, target, valid=torch.zeros_like(valid))
        a, b = once.compute(), padded.compute()
        if isinstance(a, dict):
            for key in a:
                torch.testing.assert_close(a[key], b[key])
            assert empty.pred_count.sum() == 0 and empty.target_count == 0
        else:
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="valid"):
        RoadIoU().update(preds, target, valid=torch.ones(2, 1, 12, 11))
