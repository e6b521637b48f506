"""The pipeline report's tables: numbers formatted by kind, tables that fit the page (issue 24)."""

from __future__ import annotations

import math
import re

from satcnn.pipeline.report import markdown_to_html, metrics_table, per_tile_tables

ROW = {
    "prediction": "/data/out/roads/scene_002_prob.tif",
    "truth": "/data/scenes/labels/scene_002.tif",
    "iou": 0.41234,
    "f1": 1.0,
    "precision": math.nan,
    "recall": 0.5,
    "relaxed_precision": 0.61,
    "relaxed_recall": 0.7,
    "breakeven": 0.65,
    "true_positives": 1200,
    "false_positives": 300.0,
    "false_negatives": 97,
    "true_negatives": 2700,
    "pixels": 4297.0,
    "road_pixels": 1297,
}


def test_counts_are_integers_and_scores_have_three_decimals() -> None:
    lines = metrics_table({"iou": 0.41234, "pixels": 4297.0, "f1": 1.0, "precision": math.nan})
    assert "| pixels | 4297 |" in lines  # was 4297.0000
    assert "| iou | 0.412 |" in lines and "| f1 | 1.000 |" in lines and "| precision | n/a |" in lines
    per_class = metrics_table({"precision/road": 0.25, "support/road": 12.0, "support/trees": 3.0})
    assert "| road | 0.250 | 12 |" in per_class


def test_per_tile_rows_split_into_tables_that_fit() -> None:
    text = "\n".join(per_tile_tables([ROW, {**ROW, "prediction": "/x/scene_003_prob.tif"}]))
    assert not re.search(r"\d\.\d{4}", text) and "4297 |" in text and "1.000" in text
    assert "/data/" not in text and "scene_002_prob.tif" in text  # file names, not paths
    headers = [line for line in text.splitlines() if line.startswith("| prediction")]
    assert len(headers) == 2 and all(h.count("|") - 1 <= 9 for h in headers)  # scores, then counts
    assert "true_positives" in headers[1] and "iou" in headers[0]
    html = markdown_to_html(text, "report")
    assert "overflow-x:auto" in html  # a table wider than the page scrolls inside itself
