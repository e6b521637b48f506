"""One tiny tracked fit shared by the tests that only read back what it recorded."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import pytest

from tests.factories.fits import TrackedFit, tracked_sat6_fit


@pytest.fixture(scope="session")
def _tracked_fit(tmp_path_factory: pytest.TempPathFactory) -> TrackedFit:
    return tracked_sat6_fit(
        tmp_path_factory.mktemp("tracked-fit"), tmp_path_factory.mktemp("tracked-fit-cache")
    )


@pytest.fixture
def tracked_fit(_tracked_fit: TrackedFit, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrackedFit]:
    """The shared fit (``tests.factories.fits.tracked_sat6_fit``), the test working in its folder.

    A fit leaves MLflow's process-wide tracking URI at its store, and MLflow resolves a run's logged
    model (``runs:/<id>/model``) there; a later fit elsewhere moves it, so it is set back here, to
    what the test would see right after running the fit itself.
    """
    monkeypatch.chdir(_tracked_fit.workdir)
    mlflow.set_tracking_uri(f"sqlite:///{_tracked_fit.workdir / 'mlflow.db'}")
    yield _tracked_fit
