"""The output-tags schema: every field round-trips, malformed tags name the file, staleness per field."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
import rasterio

from satcnn.errors import DataFormatError
from satcnn.io.output_tags import OutputTags, RunTags, class_names, is_current, read_output_tags, stale_reason
from tests.factories import write_tif

RUN = RunTags(
    model="models:/roads@champion",
    model_digest="sha256:" + "ab" * 32,
    precision="bf16-mixed",
    model_version="roads/3",
    bands="4,3,2",
    rescale="percentile",
)
# every field set away from its default, so a field the schema forgets to write fails the round trip
EVERY_FIELD = OutputTags(
    output="class_map",
    tta="d4",
    threshold=0.25,
    classes=("water", "trees"),
    patch_size=28,
    stride=7,
    align="corner",
    source="tile.tif",
    source_href="https://example.com/naip/tile.tif",
    source_version='etag:"5f-3a"',
    run=RUN,
)


def write_tagged(path: Path, tags: dict[str, str]) -> Path:
    """A 4x4 uint8 GeoTIFF carrying ``tags``."""
    write_tif(path, np.zeros((1, 4, 4), np.uint8), res=1.0)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(**tags)
    return path


def test_every_field_round_trips_through_tags_and_a_file(tmp_path: Path) -> None:
    defaults = OutputTags("mask")
    assert all(getattr(EVERY_FIELD, f.name) != getattr(defaults, f.name) for f in fields(OutputTags))
    assert all(getattr(RUN, f.name) is not None for f in fields(RunTags))
    assert OutputTags.from_tags(EVERY_FIELD.to_tags()) == EVERY_FIELD
    path = write_tagged(tmp_path / "a.tif", {})
    with rasterio.open(path, "r+") as ds:
        EVERY_FIELD.write(ds)
    assert read_output_tags(path) == EVERY_FIELD
    with rasterio.open(path) as ds:
        assert read_output_tags(ds) == EVERY_FIELD
        assert class_names(ds) == ["water", "trees"]
    mask = OutputTags("mask", "flip", 0.5, source="t.tif")  # a library call: no run tags
    assert OutputTags.from_tags(mask.to_tags()) == mask


def test_tags_on_disk_are_those_satcnn_always_wrote() -> None:
    run = RunTags("m.ckpt", "sha256:00", "32", None, "auto", "strict")
    assert OutputTags("mask", "none", 0.5, source="a.tif", run=run).to_tags() == {
        "SATCNN_OUTPUT": "mask",
        "SATCNN_TTA": "none",
        "SATCNN_THRESHOLD": "0.5",
        "SATCNN_SOURCE": "a.tif",
        "SATCNN_MODEL": "m.ckpt",
        "SATCNN_MODEL_DIGEST": "sha256:00",
        "SATCNN_PRECISION": "32",
        "SATCNN_BANDS": "auto",
        "SATCNN_RESCALE": "strict",
    }
    cls = OutputTags("class_map", classes=("a", "b"), patch_size=28, stride=14, align="center")
    assert cls.to_tags() == {
        "SATCNN_OUTPUT": "class_map",
        "CLASS_NAMES": '["a", "b"]',
        "PATCH_SIZE": "28",
        "STRIDE": "14",
        "ALIGN": "center",
        "SATCNN_TTA": "none",
        "CLASS_0": "a",
        "CLASS_1": "b",
    }


def test_other_rasters_have_no_output_tags_but_may_have_class_names(tmp_path: Path) -> None:
    assert read_output_tags(write_tagged(tmp_path / "plain.tif", {"source": "x"})) is None
    named = write_tagged(tmp_path / "named.tif", {"CLASS_NAMES": '["a", "b"]'})
    assert read_output_tags(named) is None and class_names(named) == ["a", "b"]
    assert class_names(tmp_path / "plain.tif") is None


@pytest.mark.parametrize(
    ("tag", "value", "problem"),
    [
        ("SATCNN_OUTPUT", "probability", "not one of prob_uint8, prob_float32, mask, class_map"),
        ("SATCNN_THRESHOLD", "half", "not a number"),
        ("STRIDE", "7.5", "not an integer"),
        ("CLASS_NAMES", "a,b", "not a JSON list of class names"),
    ],
)
def test_malformed_tags_are_one_error_naming_the_file(
    tmp_path: Path, tag: str, value: str, problem: str
) -> None:
    tags = {**OutputTags("class_map", classes=("a",), patch_size=4, stride=4).to_tags(), tag: value}
    path = write_tagged(tmp_path / "bad.tif", tags)
    with pytest.raises(DataFormatError) as err:
        read_output_tags(path)
    assert str(err.value) == f"{path}: malformed satcnn output tag {tag}={value!r}: {problem}"


SOURCE = {"source_href": "s3://bucket/in.tif", "source_version": 'etag:"1"'}
REQUEST = {
    "prob_uint8": OutputTags("prob_uint8", "none", run=RUN, **SOURCE),
    "mask": OutputTags("mask", "none", 0.5, run=RUN, **SOURCE),
    "class_map": OutputTags("class_map", "none", stride=28, classes=("a",), patch_size=28, run=RUN, **SOURCE),
}
CHANGES = [  # (kinds the field decides, the change, the tag named in the reason)
    (("prob_uint8", "mask", "class_map"), {"tta": "flip"}, "SATCNN_TTA"),
    (("mask",), {"threshold": 0.7}, "SATCNN_THRESHOLD"),
    (("class_map",), {"stride": 14}, "STRIDE"),
    (
        ("prob_uint8", "mask", "class_map"),
        {"run": replace(RUN, model_digest="sha256:ff")},
        "SATCNN_MODEL_DIGEST",
    ),
    (("prob_uint8", "mask", "class_map"), {"run": replace(RUN, precision="32")}, "SATCNN_PRECISION"),
    (("prob_uint8", "mask", "class_map"), {"run": replace(RUN, bands="auto")}, "SATCNN_BANDS"),
    (("prob_uint8", "mask", "class_map"), {"run": replace(RUN, rescale="strict")}, "SATCNN_RESCALE"),
    (("prob_uint8", "mask", "class_map"), {"source_href": "s3://other/in.tif"}, "SATCNN_SOURCE_HREF"),
    (
        ("prob_uint8", "mask", "class_map"),
        {"source_version": "last-modified:Sat, 05 Dec 2026 01:00:00 GMT"},
        "SATCNN_SOURCE_VERSION",
    ),
]


@pytest.mark.parametrize("kind", list(REQUEST))
def test_staleness_names_each_decisive_tag_and_ignores_the_informative_ones(
    tmp_path: Path, kind: str
) -> None:
    written = REQUEST[kind]
    path = write_tagged(tmp_path / "out.tif", replace(written, source="in.tif").to_tags())
    assert stale_reason(path, written) is None and is_current([path], [written])
    for kinds, change, tag in CHANGES:
        request = replace(written, **change)
        reason = stale_reason(path, request)
        if kind in kinds:
            have = written.to_tags()[tag]
            want = dict(request.decisive())[tag]
            assert reason == f"{path} has {tag}={have!r}, this run asks for {want!r}"
            assert not is_current([path], [request])
        else:
            assert reason is None, (tag, reason)
    other_kind = replace(written, output="prob_float32" if kind != "prob_float32" else "mask")
    assert f"has SATCNN_OUTPUT={kind!r}" in (stale_reason(path, other_kind) or "")
    # the model's URI and version and the source name are informative: the same weights elsewhere
    moved = replace(
        written, source="other.tif", run=replace(RUN, model="/elsewhere.ckpt", model_version=None)
    )
    assert stale_reason(path, moved) is None


def test_numbers_compare_by_value_and_missing_or_unreadable_outputs_are_stale(tmp_path: Path) -> None:
    request = OutputTags("mask", "none", 0.5, run=RUN)
    tags = {**request.to_tags(), "SATCNN_THRESHOLD": "0.50"}
    assert stale_reason(write_tagged(tmp_path / "a.tif", tags), request) is None
    bad = write_tagged(tmp_path / "b.tif", {**tags, "SATCNN_THRESHOLD": "half"})
    assert stale_reason(bad, request) == f"{bad} has SATCNN_THRESHOLD='half', this run asks for 0.5"
    broken = tmp_path / "c.tif"
    broken.write_text("not a raster")
    assert (stale_reason(broken, request) or "").startswith(f"{broken} is unreadable")
    assert stale_reason(broken, None) is None  # a vector output follows its raster
    assert not is_current([tmp_path / "missing.tif"], [request])


def test_a_remote_source_keys_its_outputs_and_old_outputs_without_the_key_are_redone(tmp_path: Path) -> None:
    local = OutputTags("mask", "none", 0.5, run=RUN)
    old = write_tagged(tmp_path / "old.tif", local.to_tags())  # written before the source tags existed
    remote = replace(local, source_href="https://h/a.tif", source_version='etag:"2"')
    assert stale_reason(old, local) is None  # a local input: as before
    assert (
        stale_reason(old, remote) == f"{old} has SATCNN_SOURCE_HREF=None, this run asks for 'https://h/a.tif'"
    )
    unversioned = replace(remote, source_version=None)  # a server without ETag or Last-Modified
    path = write_tagged(tmp_path / "new.tif", unversioned.to_tags())
    assert "SATCNN_SOURCE_VERSION" not in unversioned.to_tags()
    assert stale_reason(path, unversioned) is None and stale_reason(path, local) is None
