"""The soak benchmark in a short setting: the broker bounced under load, nothing lost."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.shared_data import REPO

pytestmark = pytest.mark.slow

SOAK = REPO / "bench" / "soak.py"


def test_short_soak_loses_nothing(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec and spec.loader
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    result = soak.run(seconds=20, bounce_every=4, down_s=1.0, workdir=tmp_path)
    print(result)
    assert result["exit_code"] == 0
    assert result["bounces"] >= 3
    assert result["windows"] >= 200
    assert result["events_produced"] >= 10
    assert result["lost"] == 0, result
    assert result["events_delivered"] == result["events_produced"]
