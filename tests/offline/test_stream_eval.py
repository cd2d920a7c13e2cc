"""evaluate-stream: the daemon's alerts on a real recording against annotated incidents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from har_daemon.offline.matching import AlertEvent, TruthInterval, write_truth_csv
from har_daemon.offline.stream_eval import StreamRun, alerts_from, pool
from har_daemon.runtime.events import Transition
from har_daemon.tools.media import concat_clips
from tests.daemon_helpers import daemon_env, write_config
from tests.shared_data import FALLS_DATA, FIGHT_DATA, REPO, require

FIGHT_MODEL = REPO / "models" / "fight"


def _tr(kind: str, occ: str, at: float, started: float) -> Transition:
    return Transition(kind, "fight", occ, 0.9, 0.9, started, at, at if kind == "end" else None,
                      at - started)  # fmt: skip


def test_alerts_are_occurrences_and_an_open_one_runs_to_the_end() -> None:
    transitions = [
        _tr("start", "a", 1.0, 1.0),
        _tr("update", "a", 2.0, 1.0),
        _tr("end", "a", 3.0, 1.0),
        _tr("start", "b", 5.0, 5.0),
    ]
    assert alerts_from(transitions) == [
        AlertEvent(1.0, 3.0, "fight"),
        AlertEvent(5.0, None, "fight"),
    ]


def test_streams_pool_end_to_end() -> None:
    a = StreamRun([TruthInterval(2, 4, "fight")], [AlertEvent(3, None, "fight")], 10.0)
    b = StreamRun([], [AlertEvent(1, 2, "fight")], 20.0)  # a false alert in quiet footage
    figures = pool([a, b])
    assert figures.duration_s == 30.0
    f = figures.overall
    assert (f.intervals, f.detected, f.events, f.false_alerts) == (1, 1, 2, 1)
    assert f.tta_p50_s == pytest.approx(1.0)
    assert f.false_alerts_per_hour == pytest.approx(120.0)


def _har(tmp: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", *map(str, args)],
        capture_output=True, text=True, env=daemon_env(tmp), cwd=REPO, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_evaluate_stream_on_a_real_recording(tmp_path: Path) -> None:
    clips = [
        require(FIGHT_DATA / "noFight" / "nofi001.mp4"),
        require(FIGHT_DATA / "fight" / "fi002.mp4"),
        require(FIGHT_DATA / "fight" / "fi003.mp4"),
        require(FIGHT_DATA / "noFight" / "nofi066.mp4"),
    ]
    video = tmp_path / "stream.mp4"
    spans = concat_clips(clips, video)
    truth = tmp_path / "truth.csv"
    truth.write_text(write_truth_csv([TruthInterval(spans[1][0], spans[2][1], "fight")]))
    report = tmp_path / "report"
    result = _har(tmp_path, "evaluate-stream", video, "--truth", truth, "--model", FIGHT_MODEL,
                  "--json", "--report", report)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    overall = doc["figures"]["overall"]
    assert overall["intervals"] == 1
    assert doc["cuts"] >= 2, "the joins between different scenes are cuts"
    starts = [e for e in doc["events"] if e["type"] == "start"]
    assert overall["events"] == len(starts)
    assert overall["detected"] + overall["false_alerts"] <= max(1, overall["events"]) + 1
    assert json.loads((report / "stream.json").read_text())["figures"] == doc["figures"]
    image = cv2.imread(str(report / "timeline.png"))
    assert image is not None and image.shape[1] > 600

    text = _har(tmp_path, "evaluate-stream", video, "--truth", truth, "--model", FIGHT_MODEL)
    assert "false" in text.stdout and "time to alert" in text.stdout


def test_bad_truth_files_are_one_line_errors(tmp_path: Path) -> None:
    video = require(FIGHT_DATA / "fight" / "fi002.mp4")
    missing = _har(tmp_path, "evaluate-stream", video, "--truth", tmp_path / "nope.csv")
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("start_s,end_s,activity\n1,0.5,fight\n")
    result = _har(tmp_path, "evaluate-stream", video, "--truth", bad)
    assert result.returncode == 2 and "line 2" in result.stderr and "Traceback" not in result.stderr
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("start_s,end_s,activity\n0,1,dancing\n")
    result = _har(tmp_path, "evaluate-stream", video, "--truth", unknown, "--model", FIGHT_MODEL)
    assert result.returncode == 2 and "dancing" in result.stderr and "fight" in result.stderr


@pytest.mark.slow
def test_a_camera_with_a_fall_recogniser_is_evaluated_on_falls(tmp_path: Path) -> None:
    """Truth may name what the camera's recognisers raise: a real fall found as an incident."""
    video = require(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4")
    truth = tmp_path / "truth.csv"
    truth.write_text(write_truth_csv([TruthInterval(0.3, 5.0, "fall")]))  # the authors' interval
    sections = {"model": {"path": FIGHT_MODEL}, "mqtt": {"enabled": False}}
    camera = {"name": "room", "source": 0}
    falls = [{"kind": "classifier"}, {"kind": "fall", "model": "models/fall"}]
    with_fall = write_config(tmp_path / "fall.toml", sections, [{**camera, "recognisers": falls}])
    result = _har(tmp_path, "evaluate-stream", video, "--truth", truth, "--config", with_fall,
                  "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    fall = doc["figures"]["per_activity"]["fall"]
    assert fall["intervals"] == 1 and fall["detected"] == 1 and fall["false_alerts"] == 0
    assert any(e["activity"] == "fall" and "down_s" in e for e in doc["events"])

    # Without the recogniser the camera cannot raise a fall: one line naming it, exit 2.
    plain = write_config(tmp_path / "plain.toml", sections, [camera])
    result = _har(tmp_path, "evaluate-stream", video, "--truth", truth, "--config", plain)
    assert result.returncode == 2 and "fall" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
