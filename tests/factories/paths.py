"""The repository's folders and sample files that tests read."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples"
SAT6_CSV = SAMPLES / "sat6-sample" / "kaggle-csv"
SAT6_TIFS = SAMPLES / "sat6-sample" / "tif-patches"
CONFIGS = ROOT / "configs"
DEBUG = str(CONFIGS / "trainer" / "debug.yaml")
SAT6 = str(CONFIGS / "deepsat" / "sat6.yaml")
NAIP = SAMPLES / "naip" / "m_4709963_se_14_1_20200831.tif"
VEGAS = SAMPLES / "roads" / "spacenet3-vegas" / "road_mask_input.tif"
# The project's shared data (real tiles kept out of git) sits beside the clone; CI has it there.
# SATCNN_SHARED points elsewhere (a worktree away from the clone's parent).
SHARED = Path(os.environ.get("SATCNN_SHARED", str(ROOT.parent / "shared")))
MASS_EXTRA = SHARED / "data" / "roads" / "massachusetts-extra"
