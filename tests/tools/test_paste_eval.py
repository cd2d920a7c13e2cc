"""`paste-eval` end to end on a tiny case: one held-out fight clip and one held-out quiet clip
of the shipped model, pasted at half the frame width into a real CAVIAR corridor, each
composite replayed through the daemon's own path; what it counts is what `predict --events`
raises on the very same composite."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from har_daemon.cli import main
from har_daemon.cli.args import width_fractions
from har_daemon.model.meta import read_meta
from har_daemon.tools.paste import CaseResult, size_rows
from har_daemon.video.frames import probe_video
from tests.shared_data import FIGHT_DATA, REPO, SHARED_DATA, require

FIGHT_MODEL = REPO / "models" / "fight"
EXAMPLE = REPO / "config.example.toml"
CORRIDOR = "caviar_lisbon_corridor_EnterExitCrossingPaths1cor.mpg"
CLIPS = ("fight/fi031.mp4", "noFight/nofi004.mp4")  # in the shipped model's test split


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    require(SHARED_DATA / "quiet" / CORRIDOR)
    data = tmp_path / "data"
    for rel in CLIPS:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).symlink_to(require(FIGHT_DATA / rel))
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    (quiet / CORRIDOR).symlink_to(SHARED_DATA / "quiet" / CORRIDOR)
    with (quiet / "sources.csv").open("w", newline="") as f:
        csv.writer(f).writerows([["clip", "scene"], [CORRIDOR, "corridor, Lisbon"]])
    return data, quiet


def _overlaps(events: list[dict[str, Any]], interval: list[float], duration: float) -> bool:
    starts = {e["started_at_s"] for e in events if e["type"] == "start"}
    ends = {e["started_at_s"]: e["at_s"] for e in events if e["type"] == "end"}
    return any(s < interval[1] and interval[0] < ends.get(s, duration) for s in starts)


def test_paste_eval_counts_what_the_daemon_raises_on_each_composite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, quiet = _folders(tmp_path)
    keep = tmp_path / "composites"
    held_out = read_meta(FIGHT_MODEL).training
    base = ["--data", str(data), "--quiet", str(quiet), "--config", str(EXAMPLE)]
    argv = ["paste-eval", *base, "--model", str(FIGHT_MODEL), "--sizes", "1/2", "--split",
            "test", "--keep", str(keep), "--json"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    doc = json.loads(out[-1])
    tables = [line for line in out[:-1] if "interaction gate" in line]
    assert tables and all(line.startswith("SYNTHETIC") for line in tables)
    assert out[0].startswith("SYNTHETIC paste test")
    assert doc["synthetic"] is True
    assert doc["environment"]["opencv"] == cv2.__version__
    assert doc["clips"] == {"fight": 1, "noFight": 1}
    assert doc["missing_clips"] == len(held_out["test_clips"]) - 2

    cases = {(c["clip"], c["fraction"]): c for c in doc["cases"]}
    assert set(cases) == {(rel, f) for rel in CLIPS for f in (0.5, None)}
    for n, rel in enumerate(CLIPS):
        pasted, alone = cases[(rel, 0.5)], cases[(rel, None)]
        assert pasted["scene"] == alone["scene"] == CORRIDOR
        assert pasted["interval_s"] == alone["interval_s"]
        assert pasted["interval_s"][0] == pytest.approx(3.0)
        for case, k in ((pasted, 1), (alone, 2)):
            video = keep / f"{Path(rel).stem}-{k}.mp4"
            info = probe_video(video, exact=True)
            assert (info.width, info.height) == (384, 288)
            assert main(["predict", str(video), "--config", str(EXAMPLE), "--model",
                         str(FIGHT_MODEL), "--events", "--json"]) == 0  # fmt: skip
            events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
            assert case["hit"] == _overlaps(events, case["interval_s"], info.duration_s), (n, k)

    (gate,) = doc["variants"]
    half, scene_alone = gate["sizes"]
    assert half["fraction"] == 0.5 and scene_alone["fraction"] is None
    assert half["fights"] == 1 and half["quiet"] == 1
    assert half["fights_found"] == cases[(CLIPS[0], 0.5)]["hit"]
    assert half["quiet_alerted"] == cases[(CLIPS[1], 0.5)]["hit"]
    assert scene_alone["quiet"] == 2 and scene_alone["fights"] == 0
    fight_scene_silent = not cases[(CLIPS[0], None)]["hit"]
    assert half["scene_silent"]["fights"] == fight_scene_silent
    assert half["scene_silent"]["fights_found"] == (fight_scene_silent and half["fights_found"])


def _case(clip: str, fraction: float | None, hit: bool, tta: float | None = None) -> CaseResult:
    label = "fight" if clip.startswith("fi") else "noFight"
    return CaseResult(clip, label, "scene", fraction, "off", (3.0, 9.0), hit, tta, 0)


def test_size_rows_count_hits_per_size_and_where_the_scene_alone_was_silent() -> None:
    results = [
        _case("fi1", 0.5, True, 1.0),
        _case("fi1", None, False),
        _case("fi2", 0.5, True, 3.0),
        _case("fi2", None, True),  # the scene alerted by itself in this interval
        _case("nofi1", 0.5, True),
        _case("nofi1", None, False),
    ]
    half, alone = size_rows(results, "off", "fight")
    assert (half.fraction, half.fights, half.found, half.quiet, half.quiet_alerted) == (
        0.5, 2, 2, 1, 1,
    )  # fmt: skip
    assert half.as_dict()["tta_p50_s"] == 2.0
    assert (half.silent_fights, half.silent_found) == (1, 1)
    assert (half.silent_quiet, half.silent_quiet_alerted) == (1, 1)
    assert (alone.fraction, alone.fights, alone.quiet, alone.quiet_alerted) == (None, 0, 3, 1)
    assert size_rows(results, "<= 0 body heights", "fight")[0].fights == 0


def test_paste_eval_without_held_out_clips_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, quiet = _folders(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["paste-eval", "--data", str(empty), "--quiet", str(quiet), "--config", str(EXAMPLE),
            "--model", str(FIGHT_MODEL)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"har-daemon: error: {empty}: none of the model's held-out clips is there"]


def test_sizes_are_fractions_of_the_frame_width() -> None:
    assert width_fractions("1/2, 1/3,0.25") == pytest.approx((1 / 2, 1 / 3, 1 / 4))
    for bad in ("0", "1/0", "3/2", "half", ","):
        with pytest.raises(argparse.ArgumentTypeError):
            width_fractions(bad)


def test_a_bad_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["paste-eval", "--data", ".", "--quiet", ".", "--sizes", "1/0"])
    assert exit_.value.code == 2
    assert "'1/0': give a fraction from 0.05 to 1" in capsys.readouterr().err
