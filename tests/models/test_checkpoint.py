"""The checkpoint contract (satcnn.models.checkpoint), the one normaliser and declared capabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning
import pytest
import torch

from satcnn.errors import ModelError
from satcnn.inference.model_io import load_model
from satcnn.models import SatcnnModel, create_model, list_models
from satcnn.models.checkpoint import (
    CHECKPOINT_KEY,
    FORMAT_VERSION,
    CheckpointMeta,
    ModelSpec,
    attach,
    read_checkpoint,
    save_checkpoint,
    weights_digest,
)
from satcnn.models.normalize import Normalize, inference_channels_last, resolve_channels_last
from satcnn.tasks import ClassificationTask, SegmentationTask

BANDS = ["red", "green", "blue", "nir"]


def _trained_task(task: Any, seed: int = 0) -> Any:
    """A task with non-trivial weights, batch-norm statistics and normalisation, in eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for m in task.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    task.normalize.set([90.0, 100.0, 110.0, 120.0], [30.0, 35.0, 40.0, 45.0])
    task.bands = list(BANDS)
    return task.eval()


def _v1_checkpoint(task: Any, path: Path) -> Path:
    """A checkpoint exactly as satcnn 0.1.0 (format 1) wrote it: no digest, hyperparameters as bools."""
    block = {
        "format_version": 1,
        "task": task.task,
        "model": {"name": task.model_name, "kwargs": task.rebuild_kwargs()},
        "bands": list(task.bands),
        "mean": task.normalize.mean.tolist(),
        "std": task.normalize.std.tolist(),
        "classes": list(task.class_names),
        "patch_size": task.patch_size,
        "input_dtype": "uint8",
        "satcnn_version": "0.1.0",
    }
    hparams = {**dict(task.hparams), "channels_last": task.task == "segmentation"}
    ckpt = {
        "epoch": 3,
        "pytorch-lightning_version": lightning.__version__,
        "state_dict": task.state_dict(),
        "hyper_parameters": hparams,
        "satcnn": block,
    }
    torch.save(ckpt, path)
    return path


def test_a_format_1_checkpoint_loads_and_is_upgraded_in_memory(tmp_path: Path) -> None:
    task = _trained_task(ClassificationTask(model="deepsat_cnn"))
    path = _v1_checkpoint(task, tmp_path / "v1.ckpt")
    ckpt = read_checkpoint(path)
    assert ckpt.meta.format_version == FORMAT_VERSION == 2
    assert ckpt.meta.weights_digest == weights_digest(task.state_dict())
    assert ckpt.meta.bands == BANDS and ckpt.meta.model == ModelSpec("deepsat_cnn", task.rebuild_kwargs())
    lm = load_model(path)
    x = torch.rand(5, 4, 28, 28) * 255
    with torch.no_grad():
        torch.testing.assert_close(lm.module(x), task(x))
    assert lm.weights_digest == ckpt.meta.weights_digest
    # Lightning's own loader goes through on_load_checkpoint, which reads format 1 as well
    again = ClassificationTask.load_from_checkpoint(path, map_location="cpu").eval()
    assert again.bands == BANDS and again.patch_size == 28
    with torch.no_grad():
        torch.testing.assert_close(again(x), task(x))


def test_a_newer_format_is_refused_with_what_to_do(tmp_path: Path) -> None:
    task = _trained_task(ClassificationTask(model="deepsat_cnn"))
    checkpoint: dict[str, Any] = {"state_dict": task.state_dict()}
    attach(checkpoint, task.checkpoint_meta())
    checkpoint[CHECKPOINT_KEY].update(format_version=FORMAT_VERSION + 1, satcnn_version="9.0.0")
    torch.save(checkpoint, tmp_path / "future.ckpt")
    newer = r"future\.ckpt: checkpoint format 3 .*newer satcnn \(9\.0\.0\).*upgrade satcnn"
    with pytest.raises(ModelError, match=newer):
        load_model(tmp_path / "future.ckpt")


def test_the_digest_names_the_weights_and_catches_changed_files(tmp_path: Path) -> None:
    meta = CheckpointMeta(
        "segmentation", ModelSpec("resunet", {"filters": [4, 8, 16, 32]}), BANDS, [0.0] * 4, [1.0] * 4
    )
    torch.manual_seed(0)
    model = create_model("resunet", filters=[4, 8, 16, 32])
    first = read_checkpoint(save_checkpoint(tmp_path / "a.ckpt", model, meta)).meta.weights_digest
    same = read_checkpoint(save_checkpoint(tmp_path / "b.ckpt", model, meta)).meta.weights_digest
    assert first == same and first is not None and first.startswith("sha256:")
    with torch.no_grad():
        model.head.bias.add_(1e-3)  # "retrained": one weight moves a little
    retrained = read_checkpoint(save_checkpoint(tmp_path / "a.ckpt", model, meta)).meta.weights_digest
    assert retrained != first
    # weights edited after satcnn wrote the file: refused, naming the file
    data = torch.load(tmp_path / "b.ckpt", weights_only=True)
    data["state_dict"]["model.head.bias"] += 1.0
    torch.save(data, tmp_path / "edited.ckpt")
    with pytest.raises(ModelError, match=r"edited\.ckpt: the weights differ from the digest recorded"):
        read_checkpoint(tmp_path / "edited.ckpt")


@pytest.mark.parametrize("kind", ["classification", "segmentation"])
def test_training_and_inference_normalise_with_the_same_module(tmp_path: Path, kind: str) -> None:
    if kind == "classification":
        task = _trained_task(ClassificationTask(model="lenet"))
        x = torch.rand(3, 4, 28, 28) * 255
    else:
        task = _trained_task(SegmentationTask(model="resunet", model_kwargs={"filters": [4, 8, 16, 32]}))
        x = torch.rand(2, 4, 32, 32) * 255
    checkpoint: dict[str, Any] = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "m.ckpt")
    lm = load_model(tmp_path / "m.ckpt")
    assert type(lm.module.normalize) is type(task.normalize) is Normalize
    # the inference module's state dict is the task's, minus what is not the model
    want = {k: v for k, v in task.state_dict().items() if k.startswith(("model.", "normalize."))}
    got = lm.module.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    with torch.no_grad():
        torch.testing.assert_close(lm.module(x), task(x))


def _built(name: str) -> SatcnnModel:
    kwargs = {"backbone": "resnet18"} if name == "timm" else {}
    with torch.device("meta"):  # shapes only: no memory for the big ImageNet backbones
        return create_model(name, in_channels=4, num_classes=3, **kwargs)


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_declares_its_capabilities(name: str) -> None:
    model = _built(name)
    assert isinstance(model, SatcnnModel)
    assert isinstance(model.size_multiple, int) and model.size_multiple >= 1
    assert isinstance(model.output_stride, int) and model.output_stride >= 1
    assert isinstance(model.fully_convolutional, bool)
    dense = name in ("resunet", "unet")
    assert (model.patch_size is None) == dense
    if model.fully_convolutional:  # (the dense form copies weights: build those for real)
        real = model if dense else create_model(name, in_channels=4, num_classes=3)
        assert isinstance(real.as_fully_convolutional(), torch.nn.Module)
    else:
        with pytest.raises(ModelError, match="no fully convolutional form"):
            model.as_fully_convolutional()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resunet", {"filters": [4, 8, 16, 32]}),
        ("resunet", {"filters": [4, 8, 16]}),
        ("unet", {"base_filters": 4, "depth": 2}),
        ("unet", {"base_filters": 4, "depth": 4}),
    ],
)
def test_size_multiple_is_honest(name: str, kwargs: dict[str, Any]) -> None:
    model = create_model(name, in_channels=4, num_classes=1, **kwargs).eval()
    m = model.size_multiple
    assert m > 1 and model.output_stride == 1
    with torch.no_grad():
        assert model(torch.rand(1, 4, 2 * m, 3 * m)).shape == (1, 1, 2 * m, 3 * m)
        with pytest.raises(ModelError, match=f"is not a multiple of {m}"):
            model(torch.rand(1, 4, 2 * m + m // 2, 3 * m))


@pytest.mark.parametrize("name", ["deepsat_cnn", "lenet"])
def test_output_stride_is_the_stride_of_the_fully_convolutional_form(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=4, num_classes=3).eval()
    s, p = model.output_stride, model.patch_size
    assert p is not None and model.fully_convolutional
    x = torch.rand(1, 4, p + 2 * s, p + s)
    with torch.no_grad():
        dense = model.as_fully_convolutional()(x)
        assert dense.shape == (1, 3, 3, 2)
        window = x[:, :, 2 * s : 2 * s + p, s : s + p]
        torch.testing.assert_close(dense[0, :, 2, 1], model(window)[0], atol=1e-4, rtol=1e-4)


def test_channels_last_auto_trains_contiguous_on_cpu_and_infers_segmentation_channels_last(
    tmp_path: Path,
) -> None:
    assert resolve_channels_last("auto", "cuda") and not resolve_channels_last("auto", "cpu")
    assert resolve_channels_last(True, "cpu") and not resolve_channels_last(False, "cuda")
    assert inference_channels_last("auto", "cpu", "segmentation")
    assert not inference_channels_last("auto", "cpu", "classification")
    assert not inference_channels_last(False, "cpu", "segmentation")
    task = _trained_task(SegmentationTask(model="resunet", model_kwargs={"filters": [4, 8, 16, 32]}))
    assert task.hparams["channels_last"] == "auto" and not task.channels_last  # training on the CPU
    checkpoint: dict[str, Any] = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "m.ckpt")
    contiguous = load_model(tmp_path / "m.ckpt", channels_last=False)
    forced = load_model(tmp_path / "m.ckpt")  # auto: channels-last for a segmentation model on the CPU
    assert not contiguous.module.channels_last and forced.module.channels_last
    weight = forced.module.model.encoder.units[0].conv1.weight
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    x = torch.rand(1, 4, 32, 32) * 255
    with torch.no_grad():
        torch.testing.assert_close(forced.module(x), contiguous.module(x), rtol=1e-4, atol=1e-5)


def test_an_export_given_as_a_checkpoint_is_named_as_one(tmp_path: Path) -> None:
    """``fit --ckpt_path`` and friends name a .pt2 or TorchScript file for what it is, not 'damaged'."""
    conv, x = torch.nn.Conv2d(1, 1, 1), torch.zeros(1, 1, 4, 4)
    torch.export.save(torch.export.export(conv, (x,)), tmp_path / "m.bin")
    with pytest.raises(ModelError, match=r"m\.bin: is a torch\.export \(\.pt2\) export, not a checkpoint"):
        read_checkpoint(tmp_path / "m.bin")
    with pytest.warns(FutureWarning):  # torch.jit is deprecated, and still what users have
        torch.jit.save(torch.jit.trace(conv, x), tmp_path / "s.pt")
    with pytest.raises(ModelError, match=r"s\.pt: is a TorchScript export, not a checkpoint"):
        read_checkpoint(tmp_path / "s.pt")
