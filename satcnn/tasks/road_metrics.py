"""Metrics for binary road segmentation: IoU, F1 and relaxed precision / recall (Mnih 2013).

All metrics take road **probabilities** ``(N, 1, H, W)`` or ``(N, H, W)`` in [0, 1] and
targets of the same shape in {0, 1}, and optionally ``valid`` of the same shape: only its
non-zero pixels are counted (the pixels each overlapping evaluation window owns). A pixel is
predicted road when its probability is strictly above the threshold (torchmetrics' convention).

Relaxed precision and recall forgive small misregistrations of road centre lines: a
predicted road pixel counts as correct if a true road pixel lies within ``rho`` pixels
(Euclidean distance, ``dy**2 + dx**2 <= rho**2``), and a true road pixel counts as found if
a predicted road pixel lies within ``rho``. Mnih (2013) and Zhang et al. (2017) use
``rho = 3`` and report the breakeven point of the relaxed precision-recall curve.

torchmetrics has no relaxed variant, so :class:`RelaxedPrecisionRecall` is written here.
It runs on the metric's device (a disk max filter built from ``max_pool2d``) and keeps
only integer counts per threshold, summed across processes under DDP.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

from satcnn.checks import require_at_least

logger = logging.getLogger(__name__)


def _owned(valid: Tensor, like: Tensor) -> Tensor:
    """``valid`` (N, 1, H, W) or (N, H, W), non-zero = counted, as a bool mask shaped like ``like``."""
    if valid.ndim == 4 and valid.shape[1] == 1:
        valid = valid[:, 0]
    if valid.shape != like.shape:
        raise ValueError(f"valid {tuple(valid.shape)} does not match preds {tuple(like.shape)}")
    return valid != 0


def _as_nhw(preds: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Bring ``preds`` and ``target`` to (N, H, W), accepting (N, 1, H, W) for either."""
    out = []
    for name, x in (("preds", preds), ("target", target)):
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3:
            raise ValueError(
                f"road metrics expect {name} of shape (N, 1, H, W) or (N, H, W), got {tuple(x.shape)}"
            )
        out.append(x)
    if out[0].shape != out[1].shape:
        raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} do not match")
    return out[0], out[1]


class _OwnedPixels:
    """Road metrics on probabilities at ``threshold``, optionally restricted to ``valid`` pixels."""

    def __init__(self, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(threshold=threshold, **kwargs)  # type: ignore[call-arg]

    def update(self, preds: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Accumulate a batch of probabilities and targets, (N, 1, H, W) or (N, H, W).

        ``valid`` (same layout, non-zero = counted) restricts the update to those pixels.
        """
        preds, target = _as_nhw(preds, target)
        if valid is not None:
            keep = _owned(valid, preds)
            if not keep.any():  # e.g. a batch of DDP padding repeats: nothing to count
                return
            preds, target = preds[keep], target[keep]
        super().update(preds, target)  # type: ignore[misc]


class RoadIoU(_OwnedPixels, BinaryJaccardIndex):
    """Intersection over union of the road class at ``threshold`` (torchmetrics' BinaryJaccardIndex).

    Args:
        threshold: probability above which a pixel is road.
        **kwargs: passed to :class:`torchmetrics.classification.BinaryJaccardIndex`.
    """


class RoadF1(_OwnedPixels, BinaryF1Score):
    """F1 score (Dice) of the road class at ``threshold`` (torchmetrics' BinaryF1Score).

    Args:
        threshold: probability above which a pixel is road.
        **kwargs: passed to :class:`torchmetrics.classification.BinaryF1Score`.
    """


def disk_max_filter(x: Tensor, rho: int) -> Tensor:
    """Maximum of ``x`` (N, H, W) over a Euclidean disk of radius ``rho`` around each pixel.

    On a binary mask this is a dilation by the disk; on probabilities, thresholding the
    result equals dilating the thresholded mask, so one filter serves every threshold.
    The disk is split into rows: a horizontal ``max_pool2d`` per row half-width, then
    vertical shifts. Outside the image counts as ``-inf``.
    """
    require_at_least("rho", rho, 0)
    if rho == 0:
        return x
    h = x.shape[-2]
    x4 = x.unsqueeze(1)
    rows: dict[int, Tensor] = {}
    out: Tensor | None = None
    for dy in range(-rho, rho + 1):
        w = math.isqrt(rho * rho - dy * dy)
        if w not in rows:
            row = x4 if w == 0 else F.max_pool2d(x4, (1, 2 * w + 1), stride=1, padding=(0, w))
            rows[w] = F.pad(row, (0, 0, rho, rho), value=float("-inf"))
        shifted = rows[w][..., rho + dy : rho + dy + h, :]
        out = shifted if out is None else torch.maximum(out, shifted)
    assert out is not None
    return out[:, 0]


def _counts_above(values: Tensor, thresholds: Tensor) -> Tensor:
    """For each threshold t, how many ``values`` are > t (int64, shape (T,))."""
    # bucketize (right=False) gives the number of thresholds strictly below each value.
    idx = torch.bucketize(values, thresholds)
    bins = torch.bincount(idx, minlength=thresholds.numel() + 1)
    return bins.flip(0).cumsum(0).flip(0)[1:]


class RelaxedPrecisionRecall(Metric):
    """Relaxed precision and recall with slack ``rho``, and their breakeven point.

    ``compute()`` returns a dict of scalar tensors:

    - ``relaxed_precision``: predicted road pixels within ``rho`` of a true road pixel,
      over all predicted road pixels, at ``threshold`` (0 if nothing is predicted).
    - ``relaxed_recall``: true road pixels within ``rho`` of a predicted road pixel, over
      all true road pixels, at ``threshold`` (NaN if there is no true road).
    - ``breakeven``: the value where relaxed precision equals relaxed recall, linearly
      interpolated between the two thresholds where their difference first changes sign,
      going up from the lowest threshold. Thresholds with no predicted or no true road are
      skipped; NaN if the difference never changes sign.

    Args:
        rho: slack in pixels (Euclidean); 3 as in Mnih (2013) and Zhang et al. (2017).
        thresholds: number of evenly spaced thresholds in [0, 1], or the thresholds
            themselves (each in [0, 1]). ``threshold`` is always added.
        threshold: the threshold at which precision and recall are reported.
        validate_args: check shapes and that preds lie in [0, 1] and target in {0, 1}.
        **kwargs: passed to :class:`torchmetrics.Metric`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    thresholds: Tensor
    pred_count: Tensor
    pred_hit: Tensor
    target_count: Tensor
    target_hit: Tensor

    def __init__(
        self,
        rho: int = 3,
        thresholds: int | Sequence[float] = 101,
        threshold: float = 0.5,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require_at_least("rho", rho, 0, "pixels", whole=True)
        values = (
            torch.linspace(0.0, 1.0, thresholds).tolist()
            if isinstance(thresholds, int)
            else [float(t) for t in thresholds]
        )
        values.append(float(threshold))
        if not all(0.0 <= t <= 1.0 for t in values):
            raise ValueError(f"thresholds must lie in [0, 1], got {sorted(set(values))}")
        self.rho = int(rho)
        self.validate_args = validate_args
        t = torch.tensor(values, dtype=torch.float32).unique()  # sorted
        self.register_buffer("thresholds", t, persistent=False)
        self._report_index = int((t == torch.tensor(threshold, dtype=torch.float32)).nonzero()[0, 0])
        n = t.numel()
        zeros = torch.zeros(n, dtype=torch.long)
        self.add_state("pred_count", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("pred_hit", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("target_hit", default=zeros.clone(), dist_reduce_fx="sum")
        self.add_state("target_count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Accumulate a batch of probabilities and targets, (N, 1, H, W) or (N, H, W).

        ``valid`` (same layout, non-zero = counted) restricts the counts to those pixels; the
        ``rho`` neighbourhoods are still taken over the whole window, so a counted pixel near an
        uncounted edge strip sees the roads there (as it would on the whole scene).
        """
        preds, target = _as_nhw(preds, target)
        keep = None if valid is None else _owned(valid, preds)
        if self.validate_args:
            if not preds.is_floating_point() or preds.min() < 0 or preds.max() > 1:
                raise ValueError(
                    "RelaxedPrecisionRecall expects probabilities in [0, 1]; apply sigmoid to logits"
                )
            if ((target != 0) & (target != 1)).any():
                raise ValueError("RelaxedPrecisionRecall expects target values in {0, 1}")
        p = preds.float()
        road = target != 0
        thresholds = self.thresholds.to(device=p.device, dtype=p.dtype)
        near_road = disk_max_filter(road.float(), self.rho) > 0
        p_near = disk_max_filter(p, self.rho)
        if keep is not None:
            near_road = near_road & keep
            road = road & keep
        self.pred_count += _counts_above(p.flatten() if keep is None else p[keep], thresholds)
        self.pred_hit += _counts_above(p[near_road], thresholds)
        self.target_hit += _counts_above(p_near[road], thresholds)
        self.target_count += road.sum()

    def curve(self) -> tuple[Tensor, Tensor, Tensor]:
        """Relaxed precision and recall at every threshold: ``(thresholds, precision, recall)``.

        Precision is NaN where nothing is predicted; recall is NaN when there is no true road.
        """
        precision = self.pred_hit / self.pred_count.clamp(min=1)
        precision = torch.where(self.pred_count > 0, precision, torch.nan)
        recall = self.target_hit / self.target_count.clamp(min=1)
        recall = torch.where(self.target_count > 0, recall, torch.nan)
        return self.thresholds.to(precision.device), precision, recall

    def compute(self) -> dict[str, Tensor]:
        """``{"relaxed_precision", "relaxed_recall", "breakeven"}`` as scalar tensors."""
        _, precision, recall = self.curve()
        i = self._report_index
        p_at = torch.nan_to_num(precision[i], nan=0.0)
        return {
            "relaxed_precision": p_at,
            "relaxed_recall": recall[i],
            "breakeven": torch.tensor(
                _breakeven(precision.tolist(), recall.tolist()), device=precision.device
            ),
        }


def _breakeven(precision: Sequence[float], recall: Sequence[float]) -> float:
    """Where precision - recall first changes sign (thresholds ascending), interpolated linearly."""
    points = [(p, r) for p, r in zip(precision, recall, strict=True) if not (math.isnan(p) or math.isnan(r))]
    for (p0, r0), (p1, r1) in itertools.pairwise(points):
        d0, d1 = p0 - r0, p1 - r1
        if d0 == 0:
            return p0
        if d0 * d1 < 0:
            alpha = d0 / (d0 - d1)
            return p0 + alpha * (p1 - p0)
    if points and points[-1][0] == points[-1][1]:
        return points[-1][0]
    logger.debug("relaxed precision and recall never cross over the thresholds; breakeven is NaN")
    return math.nan
