"""How a run joins or starts its Ray cluster (``satcnn.inference.ray_engine.cluster.connect``).

``ray.init`` is recorded, not run: what is checked is the address satcnn gives it, whose meaning
is Ray's (``local``: start a cluster; no address: join ``RAY_ADDRESS`` or the machine's last
``ray start`` when there is one). Runs on a real cluster are in ``test_ray_engine.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from satcnn.inference.ray_engine.cluster import connect, require_ray


@pytest.mark.parametrize(("address", "given"), [(None, "local"), ("local", "local"), ("auto", "auto")])
def test_the_default_and_local_start_a_cluster_whatever_ray_would_join(
    address: str | None, given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = require_ray()
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    with connect(address):
        pass
    assert [c.get("address") for c in calls] == [given]
