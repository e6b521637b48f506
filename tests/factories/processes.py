"""Child processes as a user starts them: ``python -m satcnn``, servers on free ports, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.factories.paths import ROOT

# The infer CLI without the Lightning/MLflow imports of the top-level CLI (faster subprocess start).
INFER = "import sys; from satcnn.inference.cli import infer_main; sys.exit(infer_main(sys.argv[1:]))"


def satcnn(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m satcnn`` as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "satcnn", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Loopback requests never go through a proxy: the environment's (or a test's) proxy settings, and
# urllib's global opener that caches them on first use, must not decide whether a local server answers.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_open(url: str | urllib.request.Request, timeout: float) -> Any:
    """``urlopen`` for a server of this machine, bypassing any proxy."""
    return LOOPBACK.open(url, timeout=timeout)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait until ``url`` answers 200; fail if ``proc`` exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            with http_open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no answer from {url} in {timeout} s")


def as_terminal_job() -> None:
    """``preexec_fn`` for a child that a test stops with Ctrl-C (SIGINT), as a terminal's job.

    A foreground job takes Ctrl-C by default, but a test run started in the background by a shell
    without job control (``make test &``, ``nohup ... &``) ignores SIGINT, and children inherit
    that; ``satcnn ui`` then rightly keeps ignoring it, as under ``nohup``. This restores the
    default, so the tests check what a user's Ctrl-C does however the run was started.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
