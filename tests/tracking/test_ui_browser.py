"""``satcnn ui`` serves the MLflow UI: headless Chromium finds the experiment, the run and its metrics.

Without Chromium the test skips on a workstation, but fails where ``CI`` is set, so that a CI
image without a browser cannot stay green. ``SATCNN_CHROMIUM`` / ``SATCNN_CHROMEDRIVER`` point
at other binaries.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from satcnn.cli import main
from tests.factories import CONFIGS, ROOT, SAT6_CSV, as_terminal_job, free_port, http_open, wait_http
from tests.factories.browser import chromium, require_browser

SCREENSHOT = ROOT / "test-artifacts" / "mlflow-ui.png"
README_IMAGE = ROOT / "docs" / "img" / "mlflow-ui.png"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _printed_url(log: Path, timeout: float = 30) -> str:
    """The address ``satcnn ui`` tells the user to open (it logs it once the server listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"MLflow UI on (\S+) for", log.read_text())
        if found:
            return found.group(1)
        time.sleep(0.25)
    raise AssertionError(f"`satcnn ui` printed no address:\n{log.read_text()[-3000:]}")


def test_ui_shows_the_run(workdir: Path) -> None:
    require_browser()  # before the slow part
    fit = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
    fit += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    assert main(fit) == 0
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("deepsat-sat6")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = workdir / "ui.log"  # a file, not a pipe: the server logs every request
    server = subprocess.Popen(
        [sys.executable, "-m", "satcnn", "ui", "--port", str(port)],
        cwd=workdir,
        env=env,
        stderr=log.open("w"),
        preexec_fn=as_terminal_job,  # Ctrl-C stops it, as in a terminal
    )
    driver = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", server)
        start_url = _printed_url(log)
        driver = chromium(workdir / "chromium-profile")
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        def page_shows(*texts: str) -> str:
            try:
                WebDriverWait(driver, 60).until(
                    lambda d: all(t in d.find_element("tag name", "body").text for t in texts)
                )
            except TimeoutException:
                SCREENSHOT.parent.mkdir(exist_ok=True)
                driver.save_screenshot(str(SCREENSHOT.with_name("mlflow-ui-failed.png")))
                text = driver.find_element("tag name", "body").text
                raise AssertionError(f"{texts} not on {driver.current_url}:\n{text[:2000]}") from None
            return str(driver.find_element("tag name", "body").text)

        run_name = run.info.run_name
        # issue 24: the first page a new user sees, the address `satcnn ui` prints, is the newest
        # run's experiment in MLflow's model-training view (runs and models), not its GenAI one
        # (a traces overview, "Detect issues", the model under "Agent versions")
        assert f"/experiments/{experiment.experiment_id}?" in start_url, start_url
        driver.get(start_url)
        body = page_shows("deepsat-sat6", "Runs", "Models", run_name)
        assert "Agent versions" not in body and "Detect Issues" not in body, body[:2000]
        driver.get(f"{base}/#/experiments/{experiment.experiment_id}/runs")
        page_shows("deepsat-sat6", run_name)
        driver.get(f"{base}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}")
        body = page_shows(run_name, "val_acc")
        assert run_name in body and "val_acc" in body
        time.sleep(1)  # let charts settle for the screenshot
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 10_000
        if not README_IMAGE.exists():  # the README's picture is taken once, then kept
            README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SCREENSHOT, README_IMAGE)
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert code == 0  # Ctrl-C is a clean stop
    # issue 24: MLflow's banner advising --host 0.0.0.0 is replaced by satcnn's advice
    err = log.read_text()
    assert "Security middleware enabled with default settings" not in err
    assert "use an SSH tunnel (ssh -L" in err, err[-3000:]
    with pytest.raises(OSError):
        http_open(f"{base}/health", timeout=2)


def test_ui_run_page_shows_logged_model_and_datasets(workdir: Path) -> None:
    """The run page lists the fit's MLflow 3 logged model (linked to its page) and its datasets."""
    require_browser()  # before the slow part
    fit = ["fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--config"]
    fit += [str(CONFIGS / "trainer" / "debug.yaml"), "--data.init_args.root", str(SAT6_CSV)]
    assert main([*fit, "--system_metrics", "false"]) == 0
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("deepsat-sat6")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    (model,) = client.search_logged_models([experiment.experiment_id])

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "satcnn", "ui", "--port", str(port)],
        cwd=workdir,
        env=env,
        preexec_fn=as_terminal_job,  # Ctrl-C stops it, as in a terminal
    )
    driver = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", server)
        driver = chromium(workdir / "chromium-profile")
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        driver.get(f"{base}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}")
        # "Datasets" beside the run lists the training data; "Logged models (1)" links the model
        texts = ("Datasets", "kaggle-csv:train", "Logged models (1)")
        model_link = f"a[href*='{model.model_id}']"

        def shown(d: Any) -> bool:
            d.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # render lazy sections
            body = d.find_element("tag name", "body").text
            return all(t in body for t in texts) and bool(d.find_elements("css selector", model_link))

        try:
            WebDriverWait(driver, 120).until(shown)
        except TimeoutException:
            SCREENSHOT.parent.mkdir(exist_ok=True)
            driver.save_screenshot(str(SCREENSHOT.with_name("mlflow-ui-run-failed.png")))
            text = driver.find_element("tag name", "body").text
            where = driver.current_url
            raise AssertionError(f"{texts} or {model_link} not on {where}:\n{text[-4000:]}") from None
        (link,) = {e.text for e in driver.find_elements("css selector", model_link) if e.text} or {""}
        assert link == model.name  # the logged model, by name, linking to its page
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT.with_name("mlflow-ui-run-model.png")))
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
