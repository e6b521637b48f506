"""The tasks' optimiser options: SGD momentum and the step schedule (the ResUNet paper's recipe)."""

from __future__ import annotations

import re

import pytest
import torch

from satcnn.checks import OptionError
from satcnn.tasks import ClassificationTask, SegmentationTask

TINY = {"filters": [4, 8, 16]}


def test_sgd_takes_its_momentum_and_the_step_schedule_cuts_the_rate() -> None:
    task = SegmentationTask(
        model_kwargs=TINY, optimizer="sgd", momentum=0.0, weight_decay=0.0, lr=1e-3,
        scheduler="step", lr_step_epochs=2, lr_gamma=0.1,
    )  # fmt: skip
    config = task.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.SGD) and config["lr_scheduler"]["interval"] == "epoch"
    assert opt.param_groups[0]["momentum"] == 0.0 and opt.param_groups[0]["weight_decay"] == 0.0
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5])
    # the default keeps the momentum SGD always had
    default = ClassificationTask(optimizer="sgd", scheduler="none").configure_optimizers()
    assert default.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("momentum", 1.0, "must be in [0, 1), got 1.0"),
        ("lr_step_epochs", 0, "must be >= 1, got 0"),
        ("lr_gamma", 0.0, "must be in (0, 1], got 0.0"),
    ],
)
def test_bad_values_name_the_option(option: str, value: float, problem: str) -> None:
    with pytest.raises(OptionError, match=f"^{re.escape(f'{option} {problem}')}$"):
        SegmentationTask(model_kwargs=TINY, **{option: value})  # type: ignore[arg-type]
