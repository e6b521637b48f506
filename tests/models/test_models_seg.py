"""Segmentation models: ResUNet (Zhang et al. 2017) and the plain U-Net baseline."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from satcnn.errors import ModelError
from satcnn.models import create_model, list_models
from satcnn.models.resunet import ResidualUnit, ResUNet
from satcnn.models.unet import UNet

# Small filters keep the CPU tests fast; the full-size network is only built, not run.
TINY = (4, 8, 16, 32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered() -> None:
    assert {"resunet", "unet"} <= set(list_models())
    assert isinstance(create_model("resunet", in_channels=3), ResUNet)
    assert isinstance(create_model("unet", base_filters=4, depth=2), UNet)


@pytest.mark.parametrize(("in_channels", "expected"), [(3, 8_219_585), (4, 8_220_225)])
def test_resunet_parameter_count(in_channels: int, expected: int) -> None:
    model = ResUNet(in_channels=in_channels)
    assert n_params(model) == expected
    # Without the projection shortcuts it is the paper's 7.8M.
    shortcut = sum(p.numel() for k, p in model.named_parameters() if ".shortcut." in k)
    assert round((expected - shortcut) / 1e6, 1) == 7.8


def test_resunet_structure_follows_the_paper() -> None:
    model = ResUNet(in_channels=4)
    enc = model.encoder.units
    dec = model.decoder.units
    assert [u.conv1.out_channels for u in enc] == [64, 128, 256, 512]
    assert [u.conv1.stride for u in enc] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert [u.conv1.in_channels for u in dec] == [512 + 256, 256 + 128, 128 + 64]
    assert [u.conv2.out_channels for u in dec] == [256, 128, 64]
    # Only the very first unit starts with a plain conv.
    assert isinstance(enc[0].pre, nn.Identity)
    assert all(isinstance(u.pre[0], nn.BatchNorm2d) for u in [*enc[1:], *dec])
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.head.kernel_size == (1, 1) and model.head.out_channels == 1
    assert ResUNet.size_multiple == 8 and model.size_multiple == 8


@pytest.mark.parametrize("in_channels", [1, 3, 4])
def test_resunet_output_shape(in_channels: int) -> None:
    torch.manual_seed(0)
    model = ResUNet(in_channels=in_channels, num_classes=2, filters=TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 24, 40))
    assert out.shape == (2, 2, 24, 40)
    assert torch.isfinite(out).all()
    # Logits, not probabilities: shifting the head's bias shifts the output one for one.
    with torch.no_grad():
        model.head.bias += 5.0
        shifted = model(torch.zeros(2, in_channels, 24, 40))
        model.head.bias -= 10.0
        lowered = model(torch.zeros(2, in_channels, 24, 40))
    torch.testing.assert_close(shifted - lowered, torch.full_like(shifted, 10.0))


def test_resunet_size_error_proposes_padding() -> None:
    model = ResUNet(filters=TINY)
    with pytest.raises(ModelError, match=r"225x300 is not a multiple of 8; pad to 232x304"):
        model(torch.zeros(1, 4, 225, 300))
    with pytest.raises(ModelError, match=r"\(N, C, H, W\)"):
        model(torch.zeros(4, 32, 32))


def test_resunet_gradients_flow_to_every_parameter() -> None:
    torch.manual_seed(0)
    model = ResUNet(in_channels=4, filters=TINY)
    x = torch.randn(2, 4, 16, 16)
    target = (torch.rand(2, 1, 16, 16) > 0.5).float()
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), target)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_residual_unit_keeps_its_input_intact() -> None:
    # The in-place ReLU of the pre-activation must not overwrite the shortcut's input.
    unit = ResidualUnit(3, 5).eval()
    x = torch.randn(1, 3, 8, 8)
    x_before = x.clone()
    unit(x)
    assert torch.equal(x, x_before)


def test_resunet_channels_last_matches_contiguous() -> None:
    torch.manual_seed(0)
    model = ResUNet(filters=TINY).eval()
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        ref = model(x)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.to(memory_format=torch.channels_last))
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_resunet_rejects_bad_arguments() -> None:
    with pytest.raises(ModelError, match="filter"):
        ResUNet(filters=(64,))
    with pytest.raises(ModelError, match="does not accept"):
        create_model("resunet", depth=3)


@pytest.mark.parametrize("in_channels", [1, 4])
def test_unet_output_shape_and_size_error(in_channels: int) -> None:
    torch.manual_seed(0)
    model = UNet(in_channels=in_channels, num_classes=3, base_filters=4, depth=3).eval()
    assert model.size_multiple == 8
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, 16, 24))
    assert out.shape == (2, 3, 16, 24)
    with pytest.raises(ModelError, match=r"20x24 is not a multiple of 8; pad to 24x24"):
        model(torch.zeros(1, in_channels, 20, 24))


def test_unet_default_parameter_count_and_gradients() -> None:
    assert UNet.size_multiple == 16
    assert n_params(UNet(in_channels=4)) == 31_038_209
    torch.manual_seed(0)
    model = UNet(base_filters=4, depth=2)
    model(torch.randn(2, 4, 8, 8)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
