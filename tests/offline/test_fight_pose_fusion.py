"""Pose fusion changes what the daemon decides, and the pose signal is what changes it.

The first 8 s of the real school-gym camera (MEVA, quiet footage: nobody fights) replayed
through the daemon's own path with the shipped fight model and models/fight_pose, with an
alert on the first window at or over 0.5 (min_windows 1), so each window's score shows in the
events. The appearance model scores a pair of people walking past each other as a fight;
where pose can see them (two people over 50 px with their keypoints seen) it vetoes that
(`pose_rule = "min"`). With the same pose stage running but never trusted (pose_min_height_px
above any person), the events are the appearance model's own: the change is the pose signal's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import pytest

from har_daemon.config import load_config
from har_daemon.model.meta import read_meta
from har_daemon.model.registry import create_backend
from har_daemon.offline.replay import Replay, replay
from tests.shared_data import REPO, SHARED_DATA, require

pytestmark = pytest.mark.slow

GYM = SHARED_DATA / "quiet" / "meva_school_gym_G330.mp4"
SECONDS = 8.0
EAGER = {  # every window at or over 0.5 starts an alert
    "alert_activities": ["fight"],
    "ignore_activities": ["noFight"],
    "enter_threshold": 0.5,
    "exit_threshold": 0.4,
    "min_windows": 1,
    "smoothing_window": 1,
}


@pytest.fixture(scope="module")
def gym_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(GYM)
    out = tmp_path_factory.mktemp("gym") / "gym.mp4"
    cap = cv2.VideoCapture(str(GYM))
    fps = cap.get(cv2.CAP_PROP_FPS)
    writer = None
    for _ in range(int(SECONDS * fps)):
        ok, frame = cap.read()
        assert ok
        if writer is None:
            size = (frame.shape[1], frame.shape[0])
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        writer.write(frame)
    cap.release()
    assert writer is not None
    writer.release()
    return out


def _replay(clip: Path, **inference: Any) -> Replay:
    config = load_config(REPO / "config.example.toml", {"inference": {**EAGER, **inference}})
    meta = read_meta(config.model.path)
    return replay(clip, config, meta, create_backend("litert", config.model.path))


def _starts(r: Replay) -> list[float]:
    return [e["at_s"] for e in r.events() if e["type"] == "start"]


def test_the_pose_signal_vetoes_an_appearance_alert(gym_clip: Path) -> None:
    off = _replay(gym_clip, pose_fusion=False)
    untrusted = _replay(gym_clip, pose_fusion=True, pose_min_height_px=2000)
    fused = _replay(gym_clip, pose_fusion=True, pose_rule="min")

    assert _starts(off), "the appearance model raises something on this footage"
    # The pose stage alone changes nothing: where pose is not trusted, appearance speaks.
    assert _starts(untrusted) == _starts(off)
    assert {w.signal.used for w in untrusted.windows if w.signal} == {"appearance"}

    # Trusted, pose vetoes a false alert (with "min" it can only take alerts away): an
    # appearance score over 0.5 that pose put under it, both scores and the reason in the
    # window.
    assert set(_starts(fused)) < set(_starts(off))
    vetoed = [
        w
        for w in fused.windows
        if w.signal is not None
        and w.signal.used == "pose"
        and w.signal.appearance >= 0.5
        and w.signal.pose is not None
        and w.signal.pose < 0.5
    ]
    assert vetoed and all(w.probs[0] == pytest.approx(w.signal.pose) for w in vetoed)
    assert all(w.signal.reliable_people >= 2 for w in vetoed)
    # Its events say which signal spoke and give both scores.
    start = next(e for e in fused.events() if e["type"] == "start")
    assert start["signal"] in ("pose", "appearance")
    assert start["appearance_score"] >= 0.5 and "pose_score" in start
