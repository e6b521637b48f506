"""``satcnn fit`` usage errors: one line naming the option, exit status 2, the usage only with ``--help``."""

from __future__ import annotations

import pytest
from jsonargparse import ArgumentParser

from satcnn.lightning_parser import one_line_error
from tests.factories import CONFIGS, satcnn


@pytest.mark.slow  # one `python -m satcnn fit` (imports Lightning): ~8 s
def test_misspelt_fit_option_is_one_line() -> None:
    out = satcnn("fit", "--config", str(CONFIGS / "deepsat" / "sat6.yaml"), "--trainer.max_epocs", "1")
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("satcnn")]
    assert out.returncode == 2, out.stderr[-2000:]
    problem = "unknown option --trainer.max_epocs; did you mean --trainer.max_epochs? (all options: --help)"
    assert lines == [f"satcnn fit: error: {problem}"], out.stderr[-2000:]
    assert "usage:" not in out.stderr and "Traceback" not in out.stderr


def test_wrong_type_is_one_line() -> None:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--trainer.max_epochs", type=int | None)
    with pytest.raises(Exception) as raised:
        parser.parse_args(["--trainer.max_epochs", "abc"])
    line = one_line_error(str(raised.value), parser)
    assert line == "option --trainer.max_epochs: expected int or null, got 'abc' (all options: --help)"
