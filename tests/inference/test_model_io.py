"""load_model: rebuild a satcnn model from a checkpoint (contract in docs/architecture.md), safely."""

from __future__ import annotations

import pathlib
from pathlib import Path
from typing import Any

import pytest
import torch

from satcnn.errors import ModelError
from satcnn.inference.model_io import SlidingPatchClassifier, load_model, source_run_from_path
from satcnn.models import create_model
from satcnn.models.checkpoint import CHECKPOINT_KEY, weights_of
from tests.factories import CLASSES, write_checkpoint


def test_loads_contract_checkpoint_and_normalises(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    lm = load_model(ckpt)
    assert lm.task == "classification" and lm.classes == CLASSES and lm.patch_size == 28
    assert lm.input_dtype == "uint8" and lm.bands == ["red", "green", "blue", "nir"]
    assert lm.path == ckpt.resolve() and lm.source_run_id is None and not lm.module.training
    # the wrapper takes raw DN: equal to the bare model on normalised input, with the stored weights
    raw = torch.rand(3, 4, 28, 28) * 255
    ref = create_model("deepsat_cnn", in_channels=4, num_classes=6).eval()
    sd = torch.load(ckpt, weights_only=True)["state_dict"]
    ref.load_state_dict(weights_of(sd))
    mean = torch.tensor([100.0, 110, 120, 130])[:, None, None]
    std = torch.tensor([40.0, 45, 50, 55])[:, None, None]
    with torch.no_grad():
        torch.testing.assert_close(lm.module(raw), ref((raw - mean) / std))
        # and its fully convolutional form keeps the normalisation
        fcn = lm.module.as_fully_convolutional()
        torch.testing.assert_close(fcn(raw)[:, :, 0, 0], ref((raw - mean) / std), atol=1e-4, rtol=1e-4)


def test_sliding_patch_classifier_matches_per_patch(tmp_path: Path) -> None:
    lm = load_model(write_checkpoint(tmp_path / "m.ckpt"))
    x = torch.rand(1, 4, 60, 50) * 255
    dense = SlidingPatchClassifier(lm.module, 28, 8, chunk=3)
    with torch.no_grad():
        out = dense(x)
        assert out.shape == (1, 6, (60 - 28) // 8 + 1, (50 - 28) // 8 + 1)
        torch.testing.assert_close(out[0, :, 2, 1], lm.module(x[:, :, 16:44, 8:36])[0])


def test_source_run_from_checkpoint_path(tmp_path: Path) -> None:
    run_id = "0123456789abcdef0123456789abcdef"
    ckpt = write_checkpoint(tmp_path / "runs" / "1" / run_id / "checkpoints" / "best-001-4.ckpt")
    assert load_model(ckpt).source_run_id == run_id
    assert source_run_from_path(tmp_path / "x" / "checkpoints" / "a.ckpt") is None
    # a folder holding one checkpoint is accepted
    assert load_model(ckpt.parent).path == ckpt.resolve()


def test_pickled_object_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (pathlib.Path.touch, (marker,))

    ckpt = tmp_path / "evil.ckpt"
    good = torch.load(write_checkpoint(tmp_path / "good.ckpt"), weights_only=True)
    torch.save({**good, "callbacks": Payload()}, ckpt)
    with pytest.raises(ModelError, match=r"evil\.ckpt: refused to load.*Unsupported global"):
        load_model(ckpt)
    assert not marker.exists()
    torch.load(ckpt, weights_only=False)  # the payload is live: a full unpickle runs it
    assert marker.exists()


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope\.ckpt: model checkpoint not found"):
        load_model(tmp_path / "nope.ckpt")
    torch.save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "plain.ckpt")
    with pytest.raises(ModelError, match=r"plain\.ckpt: not a satcnn checkpoint"):
        load_model(tmp_path / "plain.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelError, match=r"junk\.ckpt: not a readable PyTorch checkpoint"):
        load_model(tmp_path / "junk.ckpt")


def test_unknown_model_and_mismatched_weights(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    data = torch.load(ckpt, weights_only=True)
    data[CHECKPOINT_KEY]["model"]["name"] = "no_such_net"
    torch.save(data, tmp_path / "unknown.ckpt")
    with pytest.raises(ModelError, match=r"unknown\.ckpt: cannot rebuild.*no_such_net.*deepsat_cnn"):
        load_model(tmp_path / "unknown.ckpt")
    data[CHECKPOINT_KEY]["model"] = {"name": "deepsat_cnn", "kwargs": {"in_channels": 4, "num_classes": 4}}
    torch.save(data, tmp_path / "other.ckpt")
    with pytest.raises(
        ModelError, match=r"other\.ckpt: weights do not match model 'deepsat_cnn'.*size mismatch"
    ):
        load_model(tmp_path / "other.ckpt")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_on_a_cpu_machine_is_a_device_error_not_a_bad_checkpoint(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "m.ckpt")
    with pytest.raises(ModelError, match="cannot move the model to device 'cuda'"):
        load_model(ckpt, device="cuda")


def test_sliding_patch_classifier_strips_match_one_unfold(tmp_path: Path) -> None:
    lm = load_model(write_checkpoint(tmp_path / "m.ckpt"))
    x = torch.rand(2, 4, 37, 33) * 255
    with torch.no_grad():
        whole = SlidingPatchClassifier(lm.module, 28, 1, chunk=10**6)(x)  # one strip
        tiny = SlidingPatchClassifier(lm.module, 28, 1, chunk=5)(x)  # one output row per strip
        mid = SlidingPatchClassifier(lm.module, 28, 1, chunk=40)(x)  # two rows, uneven last strip
        assert whole.shape == (2, 6, 10, 6)
        torch.testing.assert_close(tiny, whole)
        torch.testing.assert_close(mid, whole)
        torch.testing.assert_close(whole[1, :, 7, 4], lm.module(x[1:, :, 7:35, 4:32])[0])
