"""One tiny tracked fit shared by the tests that only read back what it recorded."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import pytest

from tests.factories.fits import TrackedFit


@pytest.fixture
def tracked_fit(shared_fit: TrackedFit, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrackedFit]:
    """The shared fit (``shared_fit``, tests/conftest.py), the test working in its folder.

    A fit leaves MLflow's process-wide tracking URI at its store, and MLflow resolves a run's logged
    model (``runs:/<id>/model``) there; a later fit elsewhere moves it, so it is set back here, to
    what the test would see right after running the fit itself.
    """
    monkeypatch.chdir(shared_fit.workdir)
    mlflow.set_tracking_uri(f"sqlite:///{shared_fit.workdir / 'mlflow.db'}")
    yield shared_fit
