"""Classic classifiers (LeNet, timm/torchvision backbones) and transfer learning from local weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from satcnn.errors import ModelError
from satcnn.models import create_model, list_models
from satcnn.models.adapt import adapt_input_conv
from satcnn.models.checkpoint import CHECKPOINT_KEY, attach, weights_of
from satcnn.models.classic import ALIASES, ClassicClassifier
from tests.factories import CONFIGS, SAT6_CSV

CLASSIC = ["lenet", *ALIASES]
LIGHT = ["lenet", "resnet18", "seresnet18"]  # a real CPU forward in the quick tests
BODY = ["lenet", "timm"]  # registry names whose weights live on the model itself or under .backbone


def _first_conv(model: nn.Module) -> nn.Conv2d:
    net = model.backbone if isinstance(model, ClassicClassifier) else model
    conv = net.get_submodule(model.first_conv)  # type: ignore[arg-type]
    assert isinstance(conv, nn.Conv2d)
    return conv


def _classic(name: str, **kwargs: object) -> ClassicClassifier:
    model = create_model(name, **kwargs)
    assert isinstance(model, ClassicClassifier)
    return model


def test_every_classic_name_is_registered() -> None:
    assert set(CLASSIC) | {"timm"} <= set(list_models())


@pytest.mark.parametrize("name", CLASSIC)
def test_every_classic_name_builds_for_four_bands(name: str) -> None:
    """Shapes and 4-band stems of every model, on the meta device (no memory, no compute)."""
    with torch.device("meta"):
        model = create_model(name, in_channels=4, num_classes=6).eval()
        logits = model(torch.empty(2, 4, 28, 28))
    assert logits.shape == (2, 6)
    assert _first_conv(model).in_channels == 4


@pytest.mark.parametrize("name", LIGHT)
def test_light_models_classify_patches(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_channels=4, num_classes=6).eval()
    x = torch.rand(2, 4, 28, 28)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 6) and torch.isfinite(logits).all()
    assert not torch.allclose(logits[0], logits[1]), "different patches, different logits"


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CLASSIC if n not in LIGHT])
def test_heavy_models_classify_patches(name: str) -> None:
    model = create_model(name, in_channels=4, num_classes=6).eval()
    with torch.no_grad():
        logits = model(torch.rand(2, 4, 28, 28))
    assert logits.shape == (2, 6) and torch.isfinite(logits).all()


def test_patches_are_resized_to_what_the_backbone_needs() -> None:
    with torch.device("meta"):
        assert _classic("resnet18").input_size == 64
        assert _classic("inception_v3").input_size == 75
        assert _classic("resnet18", patch_size=96).input_size == 96
        model = create_model("timm", backbone="inception_v4", in_channels=4, num_classes=3).eval()
        assert model(torch.empty(1, 4, 28, 28)).shape == (1, 3)


def test_unknown_backbone_and_bad_arguments_are_model_errors() -> None:
    with pytest.raises(ModelError, match="unknown timm backbone 'resnet19'"):
        create_model("timm", backbone="resnet19")
    with pytest.raises(ModelError, match="backbone"):
        create_model("resnet18", backbone="vgg11")
    with pytest.raises(ModelError, match="too small"):
        create_model("lenet", patch_size=12)


def test_lenet_fully_convolutional_form_matches_patches() -> None:
    torch.manual_seed(0)
    model = create_model("lenet", in_channels=4, num_classes=6).eval()
    fcn = model.as_fully_convolutional()  # type: ignore[operator]
    x = torch.rand(1, 4, 28 + 4 * 3, 28 + 4 * 2)
    with torch.no_grad():
        dense = fcn(x)
        assert dense.shape == (1, 6, 4, 3)
        for i in range(4):
            for j in range(3):
                window = x[:, :, 4 * i : 4 * i + 28, 4 * j : 4 * j + 28]
                np.testing.assert_allclose(dense[0, :, i, j], model(window)[0], rtol=1e-4, atol=1e-5)


# -- band adaptation ----------------------------------------------------------------------------------
def test_adapt_input_conv_rules() -> None:
    w = torch.randn(8, 3, 3, 3)
    torch.testing.assert_close(adapt_input_conv(w, 3), w)
    four = adapt_input_conv(w, 4)
    torch.testing.assert_close(four[:, :3], w * 0.75)
    torch.testing.assert_close(four[:, 3], w.mean(dim=1) * 0.75)
    five = adapt_input_conv(w, 5)
    torch.testing.assert_close(five[:, 4], w.mean(dim=1) * 0.6)
    torch.testing.assert_close(adapt_input_conv(w, 1), w.sum(dim=1, keepdim=True))
    torch.testing.assert_close(adapt_input_conv(w, 2), w[:, :2] * 1.5)


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_rgb_weights_load_into_four_band_resnet(suffix: str, tmp_path: Path) -> None:
    """The NIR rule on the stem, every other layer as saved, a fresh head for other classes."""
    torch.manual_seed(1)
    rgb = _classic("resnet18", in_channels=3, num_classes=10).backbone
    src = {k: v.clone() for k, v in rgb.state_dict().items()}  # timm keys: conv1.weight, fc.weight...
    weights = _save(src, tmp_path / f"resnet18_rgb{suffix}")

    torch.manual_seed(2)
    fresh = _classic("resnet18", in_channels=4, num_classes=6).backbone.state_dict()
    torch.manual_seed(2)
    got = _classic("resnet18", in_channels=4, num_classes=6, pretrained=str(weights)).backbone.state_dict()

    stem = got["conv1.weight"]
    assert stem.shape == (64, 4, 7, 7)
    torch.testing.assert_close(stem[:, :3], src["conv1.weight"] * 0.75)
    torch.testing.assert_close(stem[:, 3], src["conv1.weight"].mean(dim=1) * 0.75)
    for key in ("fc.weight", "fc.bias"):  # re-initialised, exactly as a model built without weights
        assert got[key].shape[0] == 6
        torch.testing.assert_close(got[key], fresh[key])
    others = [k for k in got if k not in ("conv1.weight", "fc.weight", "fc.bias")]
    assert len(others) > 100
    for key in others:
        torch.testing.assert_close(got[key], src[key], msg=key)
    assert not torch.equal(got["layer1.0.conv1.weight"], fresh["layer1.0.conv1.weight"])


def test_matching_head_is_kept(tmp_path: Path) -> None:
    src = create_model("lenet", in_channels=4, num_classes=6).state_dict()
    model = create_model("lenet", in_channels=4, num_classes=6, pretrained=str(_save(src, tmp_path / "l.pt")))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, src[key], msg=key)


def test_missing_weights_file_is_a_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "resnet18.pth"
    with pytest.raises(ModelError, match=r"resnet18\.pth: pretrained weights file not found"):
        create_model("resnet18", pretrained=str(missing))


def test_weights_of_another_architecture_name_keys(tmp_path: Path) -> None:
    with torch.device("meta"):
        src = _classic("resnet18", in_channels=3, num_classes=6).backbone.state_dict()
    weights = _save({k: torch.zeros(v.shape) for k, v in src.items()}, tmp_path / "resnet18.pth")
    with pytest.raises(
        ModelError, match=r"resnet18\.pth: .*ResNet.*32 of .*missing \(e\.g\. layer1\.0\.se\."
    ) as err:
        create_model("seresnet18", pretrained=str(weights))
    assert "same backbone" in str(err.value)
    deepsat = _save(create_model("deepsat_cnn").state_dict(), tmp_path / "deepsat.pth")
    with pytest.raises(ModelError, match=r"deepsat\.pth: .*LeNet.*missing \(e\.g\. .*hidden\.0\.weight"):
        create_model("lenet", pretrained=str(deepsat))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    torch.save({"weights": Path("x")}, bad)
    with pytest.raises(ModelError, match=r"bad\.pth: refused"):
        create_model("lenet", pretrained=str(bad))


def test_satcnn_checkpoint_source_and_frozen_backbone(tmp_path: Path) -> None:
    """A 6-class resnet18 task checkpoint fine-tunes a 4-class model with only its head training."""
    from satcnn.tasks import ClassificationTask

    task = ClassificationTask(model="resnet18", in_channels=4, num_classes=6)
    ckpt = tmp_path / "sat6.ckpt"
    checkpoint = {"state_dict": task.state_dict()}
    attach(checkpoint, task.checkpoint_meta())
    torch.save(checkpoint, ckpt)

    model = _classic("resnet18", in_channels=4, num_classes=4, pretrained=str(ckpt), freeze_backbone=True)
    src = task.model.get_submodule("backbone").state_dict()
    got = model.backbone.state_dict()
    assert all(torch.equal(got[k], src[k]) for k in got if not k.startswith("fc."))
    assert got["fc.weight"].shape == (4, 512)

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.fc.weight", "backbone.fc.bias"}
    model.train()
    assert model.training and model.backbone.get_submodule("fc").training
    assert not model.backbone.get_submodule("bn1").training, "frozen batch norm keeps its statistics"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)  # as the task builds it
    torch.nn.functional.cross_entropy(model(torch.rand(4, 4, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"backbone.fc.weight", "backbone.fc.bias"}


@pytest.mark.slow
def test_fit_lenet_through_the_cli_then_transfer(workdir: Path) -> None:
    """The sat6_lenet config trains (debug overlay), and its checkpoint seeds a 4-class LeNet."""
    from satcnn.cli import main

    args = [
        "fit",
        "--config",
        str(CONFIGS / "deepsat" / "sat6_lenet.yaml"),
        "--config",
        str(CONFIGS / "trainer" / "debug.yaml"),
        "--data.init_args.root",
        str(SAT6_CSV),
    ]
    assert main(args) == 0
    ckpts = sorted(workdir.rglob("last.ckpt"))
    assert ckpts, "fit leaves a checkpoint"
    ckpt = torch.load(ckpts[0], map_location="cpu", weights_only=True)
    assert ckpt[CHECKPOINT_KEY]["model"]["name"] == "lenet"

    sat4 = create_model("lenet", in_channels=4, num_classes=4, pretrained=str(ckpts[0]))
    got = sat4.state_dict()
    for key in ("features.0.weight", "features.3.bias", "hidden.0.weight", "hidden.1.weight"):
        torch.testing.assert_close(got[key], weights_of(ckpt["state_dict"])[key])
    assert got["classifier.weight"].shape == (4, 84)


def test_checkpoint_of_a_transfer_learnt_model_loads_without_the_source_weights(tmp_path: Path) -> None:
    """The source weights file is needed to start training, not to use the result."""
    from satcnn.inference import load_model
    from satcnn.tasks import ClassificationTask

    src = create_model("lenet", in_channels=4, num_classes=6).state_dict()
    weights = _save(src, tmp_path / "lenet.pt")
    task = ClassificationTask(model="lenet", model_kwargs={"pretrained": str(weights)})
    checkpoint = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint[CHECKPOINT_KEY]["model"]["kwargs"]["pretrained"] is None
    torch.save(checkpoint, tmp_path / "model.ckpt")
    weights.unlink()
    loaded = load_model(str(tmp_path / "model.ckpt"))
    rebuilt = loaded.module.model.state_dict()
    for key, value in task.model.state_dict().items():
        torch.testing.assert_close(rebuilt[key], value)
