"""Headless Chromium for the browser tests (``satcnn ui``, ``satcnn view``): one set-up, one skip rule.

``SATCNN_CHROMIUM`` / ``SATCNN_CHROMEDRIVER`` point at other binaries (Debian's by default).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SATCNN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SATCNN_CHROMEDRIVER", "/usr/bin/chromedriver")


def in_ci() -> bool:
    """Whether this runs under CI (GitHub, GitLab and most others set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser() -> None:
    """Skip (fail under CI) unless Chromium and chromedriver are there."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        reason = f"{' and '.join(missing)} missing: run `make system-deps` (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"CI is set, and the browser test cannot run: {reason}", pytrace=False)
        pytest.skip(reason)


def chromium(profile: Path, window: str = "1400,900") -> Any:
    """A headless Chromium driven by selenium, offline, with its own profile and the console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={window}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
