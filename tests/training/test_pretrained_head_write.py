"""scripts/pretrained_head_write.py: a real run on a few fight-set clips writes a head the
daemon loads, without the clips --exclude names; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from har_daemon.model.pretrained_head import load
from tests.shared_data import REPO, SHARED_DATA, require

pytestmark = pytest.mark.slow

FIGHTS = SHARED_DATA / "surveillance-fight"
CLIPS = {"fight": ["fi001", "fi002", "fi003"], "noFight": ["nofi001", "nofi002", "nofi003"]}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = REPO / "scripts" / "pretrained_head_write.py"
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_it_writes_a_loadable_head_without_the_excluded_clips(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rows = ["clip,label,source"]
    for label, stems in CLIPS.items():
        (data / label).mkdir(parents=True)
        for i, stem in enumerate(stems):
            src = FIGHTS / label / f"{stem}.mp4"
            require(src)
            (data / label / src.name).symlink_to(src)
            rows.append(f"{stem},{label},src{i}")
    (data / "sources.csv").write_text("\n".join(rows) + "\n")
    exclude = tmp_path / "clips.csv"
    exclude.write_text(f"index,clip\n0,{data / 'noFight' / 'nofi003.mp4'}\n")

    done = _run("--write", str(tmp_path / "head"), "--data", str(data), "--exclude", str(exclude))
    assert done.returncode == 0, done.stderr[-2000:]
    raw = json.loads((tmp_path / "head" / "model.json").read_text())
    assert raw["provenance"]["clips"]["trained"] == 5
    assert raw["provenance"]["clips"]["excluded"] == 1
    assert "Akt" in raw["provenance"]["data"]["fight_set"]
    head = load(tmp_path / "head")
    assert head.coef.any()
    assert head.input_side == 128  # the model file's, as no --side was named


@pytest.mark.parametrize("bad", ["data", "exclude", "side"])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, bad: str) -> None:
    args = ["--write", str(tmp_path / "head"), "--data", str(tmp_path / "missing")]
    if bad == "exclude":
        args = ["--write", str(tmp_path / "head"), "--exclude", str(tmp_path / "none.csv")]
    if bad == "side":
        args = [*args, "--side", "100"]
    done = _run(*args)
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("pretrained_head_write:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "head").exists()
