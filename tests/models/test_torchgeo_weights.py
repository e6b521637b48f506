"""torchgeo weights as ``pretrained``: the first convolution by band meaning, their normalisation, offline.

Nothing is downloaded: a timm resnet18 with torchgeo's band layout is saved in a temporary torch
hub cache under the file name torchgeo's URL would download to, so torchgeo's own
``get_state_dict`` reads it; an unreachable proxy proves that no request leaves the machine.
"""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import pytest
import timm
import torch

from satcnn.errors import ModelError
from satcnn.models import create_model
from satcnn.models.checkpoint import CHECKPOINT_KEY, read_checkpoint
from satcnn.models.classic import ClassicClassifier
from satcnn.models.torchgeo_weights import band_meanings, check_data_bands, weights_normalization
from satcnn.tasks import ClassificationTask
from tests.factories import CONFIGS, DEBUG, SAT6_CSV, satcnn

S2 = "torchgeo:ResNet18_Weights.SENTINEL2_ALL_MOCO"
S2_RGB = "torchgeo:ResNet18_Weights.SENTINEL2_RGB_MOCO"
OLI = "torchgeo:ResNet18_Weights.LANDSAT_OLI_SR_MOCO"


def _save_in_hub(hub: Path, name: str, in_chans: int, seed: int) -> dict[str, torch.Tensor]:
    from torchgeo.models import get_weight

    url = get_weight(name.removeprefix("torchgeo:")).url
    torch.manual_seed(seed)
    state = timm.create_model("resnet18", in_chans=in_chans, num_classes=0).state_dict()
    (hub / "checkpoints").mkdir(parents=True, exist_ok=True)
    torch.save(state, hub / "checkpoints" / url.rsplit("/", 1)[-1])
    return state


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, torch.Tensor]]:
    """A torch hub cache holding stand-ins for three torchgeo weights, and no way out to the network."""
    hub = tmp_path / "torch" / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # discard port: any request fails
    monkeypatch.setenv("NO_PROXY", "")
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(hub))
    saved = {
        S2: _save_in_hub(hub, S2, 13, 0),
        S2_RGB: _save_in_hub(hub, S2_RGB, 3, 1),
        OLI: _save_in_hub(hub, OLI, 7, 2),
    }
    yield saved
    torch.hub.set_dir(old)
    urllib.request.install_opener(None)  # urllib's global opener may have cached the dead proxy


def _conv(model: ClassicClassifier) -> torch.Tensor:
    return model.backbone.conv1.weight.detach()


def test_sentinel2_filters_are_taken_by_band(offline_hub: dict[str, dict[str, torch.Tensor]]) -> None:
    src = offline_hub[S2]
    model = create_model("resnet18", in_channels=4, num_classes=6, pretrained=S2)
    assert isinstance(model, ClassicClassifier)
    conv, w = _conv(model), src["conv1.weight"]
    # Sentinel-2 bands B1..B12 with B8a: B04, B03, B02, B08 are channels 3, 2, 1, 7.
    for band, channel in enumerate([3, 2, 1, 7]):
        assert torch.equal(conv[:, band], w[:, channel]), f"band {band} from B0{channel + 1}"
    assert torch.equal(model.backbone.layer4[1].conv2.weight, src["layer4.1.conv2.weight"])
    record = model.pretrained_record
    assert record is not None and record["bands"] == ["B4", "B3", "B2", "B8"]
    assert record["mean"] == [0.0] * 4 and record["std"] == [10000.0] * 4  # torchgeo's S2 /10000


def test_landsat_oli_and_a_missing_nir(
    offline_hub: dict[str, dict[str, torch.Tensor]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "satcnn")
    oli = _conv(create_model("resnet18", in_channels=4, num_classes=6, pretrained=OLI))
    w = offline_hub[OLI]["conv1.weight"]  # SR_B1..SR_B7: red B4, green B3, blue B2, nir B5
    assert all(torch.equal(oli[:, i], w[:, c]) for i, c in enumerate([3, 2, 1, 4]))
    rgb = _conv(create_model("resnet18", in_channels=4, num_classes=6, pretrained=S2_RGB))
    w = offline_hub[S2_RGB]["conv1.weight"]  # B4, B3, B2: no NIR
    assert torch.equal(rgb[:, :3], w)
    assert torch.allclose(rgb[:, 3], w.mean(1))
    lines = [r.getMessage() for r in caplog.records if "no nir band" in r.getMessage()]
    assert len(lines) == 1 and "mean of the filters taken" in lines[0]


def test_weights_normalization_is_recorded_and_used(offline_hub: dict[str, dict[str, torch.Tensor]]) -> None:
    task = ClassificationTask(
        model="resnet18",
        model_kwargs={"pretrained": S2, "pretrained_normalization": "weights"},
        num_classes=6,
    )
    assert task.model.input_stats == ([0.0] * 4, [10000.0] * 4)
    checkpoint: dict[str, object] = {"state_dict": task.state_dict()}
    task.on_save_checkpoint(checkpoint)
    meta = checkpoint[CHECKPOINT_KEY]
    assert isinstance(meta, dict)
    assert meta["pretrained"]["source"] == S2 and meta["pretrained"]["normalization"] == "weights"
    assert meta["model"]["kwargs"]["pretrained"] is None, "inference rebuilds without downloading"


def test_normalize_steps_compose() -> None:
    import torchvision.transforms.v2 as T

    seq = torch.nn.Sequential(T.Normalize([3, 2], [85, 101]), T.Normalize([0], [1 / 255]))
    mean, std = weights_normalization(seq, 2) or ([], [])
    x = torch.tensor([[[50.0]], [[70.0]]])
    assert torch.allclose(
        seq(x.clone()), (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    )
    assert band_meanings("LANDSAT_TM_TOA_MOCO", ["B1", "B3", "B4"]) == ["blue", "red", "nir"]
    assert band_meanings("SENTINEL2_SI_RGB_SATLAS", ["B04", "B8A"]) == ["red", "nir08"]


def test_wrong_architecture_is_one_line(offline_hub: dict[str, dict[str, torch.Tensor]]) -> None:
    with pytest.raises(ModelError, match=r"are for a 'resnet50' backbone, not 'resnet18'; set model: timm"):
        create_model("resnet18", pretrained="torchgeo:ResNet50_Weights.SENTINEL2_ALL_MOCO")
    with pytest.raises(ModelError, match=r"not a timm backbone satcnn builds; choose ResNet or ViT"):
        create_model("resnet18", pretrained="torchgeo:Swin_V2_B_Weights.NAIP_RGB_MI_SATLAS")
    for name in ("lenet", "deepsat_cnn"):
        with pytest.raises(
            ModelError, match=r"cannot start from torchgeo weights .* give a local weights file"
        ):
            create_model(name, pretrained=S2)


@pytest.mark.slow
def test_unknown_weights_name_exits_1_with_one_line(
    offline_hub: dict[str, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    res = satcnn(
        "fit",
        "--config",
        str(CONFIGS / "deepsat" / "sat6_resnet18_transfer.yaml"),
        "--data.init_args.root",
        str(SAT6_CSV),
        "--model.init_args.model_kwargs.pretrained",
        "torchgeo:ResNet18_Weights.SENTINEL2_NOPE",
        cwd=tmp_path,
    )
    assert res.returncode == 1, res.stderr[-2000:]
    # The line is the model's ModelError; LightningCLI's traceback around it is issue 24's item 4.
    lines = [ln for ln in res.stderr.splitlines() if "unknown torchgeo weights 'ResNet18" in ln]
    assert lines and "get_model_weights" in lines[0]


def test_unknown_weights_name_is_one_line() -> None:
    with pytest.raises(ModelError) as err:
        create_model("resnet18", pretrained="torchgeo:ResNet18_Weights.SENTINEL2_NOPE")
    assert len(str(err.value).splitlines()) == 1 and "get_model_weights" in str(err.value)


@pytest.mark.slow
def test_fit_from_torchgeo_weights_through_the_cli(
    offline_hub: dict[str, dict[str, torch.Tensor]], tmp_path: Path
) -> None:
    """The shipped config fits offline; the checkpoint keeps the B04/B03/B02/B08 filters and the source."""
    config = CONFIGS / "deepsat" / "torchgeo" / "sat6_resnet18_sentinel2.yaml"
    res = satcnn(
        "fit",
        "--config",
        str(config),
        "--config",
        str(DEBUG),
        "--data.init_args.root",
        str(SAT6_CSV),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "first convolution by band: red=B4, green=B3, blue=B2, nir=B8" in res.stderr
    ckpt = read_checkpoint(sorted((tmp_path / "runs").rglob("*.ckpt"))[0])
    conv = ckpt.state_dict["model.backbone.conv1.weight"]
    w = offline_hub[S2]["conv1.weight"]
    assert all(torch.equal(conv[:, i], w[:, c]) for i, c in enumerate([3, 2, 1, 7])), "frozen stem kept"
    assert ckpt.meta.pretrained["source"] == S2 and ckpt.meta.pretrained["bands"] == ["B4", "B3", "B2", "B8"]
    assert ckpt.meta.pretrained["normalization"] == "data" and ckpt.meta.std != [10000.0] * 4
    assert ckpt.meta.model.kwargs["pretrained"] is None


def test_data_bands_must_be_the_mapped_ones(offline_hub: dict[str, dict[str, torch.Tensor]]) -> None:
    model = create_model("resnet18", in_channels=4, num_classes=6, pretrained=S2)
    record = model.pretrained_record
    check_data_bands(record, ["Red", "green", "blue", "NIR"])
    check_data_bands(record, ["band1", "band2", "band3", "band4"])  # unnamed: taken as mapped
    with pytest.raises(
        ModelError, match=r"set model.init_args.model_kwargs.bands: \[nir, red, green, blue\]"
    ):
        check_data_bands(record, ["nir", "red", "green", "blue"])
    nrgb = create_model("resnet18", in_channels=4, pretrained=S2, bands=["nir", "red", "green", "blue"])
    assert torch.equal(_conv(nrgb)[:, 0], offline_hub[S2]["conv1.weight"][:, 7])


def test_weights_not_cached_offline_name_the_file_to_copy(
    offline_hub: dict[str, dict[str, torch.Tensor]],
) -> None:
    """No network (the proxy is unreachable): one line with the URL and where to put the file."""
    with pytest.raises(ModelError) as err:
        create_model("resnet18", pretrained="torchgeo:ResNet18_Weights.LANDSAT_TM_TOA_MOCO")
    message = str(err.value)
    assert len(message.splitlines()) == 1 and "could not fetch torchgeo weights" in message
    assert f"{torch.hub.get_dir()}/checkpoints/resnet18_landsat_tm_toa_moco-1c691b4f.pth" in message
