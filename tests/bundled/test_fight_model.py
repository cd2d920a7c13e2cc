"""The shipped fight model (models/fight) on real CCTV footage, through the real daemon.

The clips live in ../shared/data (never committed); these tests skip, naming the folder, only
where it is absent. The model directory itself is committed and always checked.
"""

from __future__ import annotations

import json
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from har_daemon.model.meta import read_meta
from tests.daemon_helpers import REPO, DaemonPool, write_config
from tests.infra.media import concat_clips
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until
from tests.shared_data import FIGHT_DATA, require

FIGHT_MODEL = REPO / "models" / "fight"
EXAMPLE = REPO / "config.example.toml"


def test_shipped_fight_model_directory_is_complete() -> None:
    meta = read_meta(FIGHT_MODEL)
    assert meta.classes == ["fight", "noFight"]
    assert meta.tflite_file and (FIGHT_MODEL / meta.tflite_file).is_file()
    assert (FIGHT_MODEL / meta.model_file).is_file()
    assert 0.05 < meta.frame_spacing_s < 0.5  # measured from 2-3 s clips at 20 frames
    cv = meta.evaluation["cross_validation"]
    assert cv["folds"] == len(cv["accuracy"]["per_fold"]) >= 5
    assert cv["grouped_by"] == "source video"
    assert meta.provenance["licence"] == "MIT"
    assert "Akt" in meta.provenance["citation"]
    assert meta.training["test_clips"], "held-out clips must be recorded for the stream test"


def test_config_example_serves_the_fight_model() -> None:
    from har_daemon.config import load_config

    cfg = load_config(EXAMPLE)
    assert cfg.model.path == FIGHT_MODEL
    assert cfg.inference.alert_activities == ["fight"]
    assert cfg.inference.ignore_activities == ["noFight"]


def _held_out_clips(meta: Any) -> dict[str, list[Path]]:
    """Held-out clips (never trained or validated on) that the model classifies right alone.

    Clip-level accuracy is measured by cross-validation; this test is about what the daemon's
    streaming machinery (sampling, ring, smoothing, hysteresis) makes of a real stream, so it
    builds the stream from clips whose clip-level label the model agrees with.
    """
    from har_daemon.model.preprocess import to_model_input
    from har_daemon.model.registry import create_backend
    from har_daemon.video.frames import extract_clip

    backend = create_backend("litert", FIGHT_MODEL)
    out: dict[str, list[Path]] = {"fight": [], "noFight": []}
    for rel in meta.training["test_clips"]:
        path = FIGHT_DATA / rel
        label = rel.split("/")[0]
        clip = extract_clip(path, meta.sequence_length, meta.frame_size, meta.resize_interpolation)
        x = to_model_input(clip.frames[None], meta.color_order, meta.input_scale,
                           meta.input_transform)  # fmt: skip
        probs = backend.predict(x)[0]
        if meta.classes[int(np.argmax(probs))] == label:
            out[label].append(path)
    return out


def _iso(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_daemon_raises_fight_for_the_fight_stretch_only(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    require(FIGHT_DATA)
    meta = read_meta(FIGHT_MODEL)
    clips = _held_out_clips(meta)
    assert len(clips["fight"]) >= 3 and len(clips["noFight"]) >= 4, clips
    quiet_a, fights, quiet_b = clips["noFight"][:2], clips["fight"][:3], clips["noFight"][2:4]
    video = tmp_path / "stream.mp4"
    spans = concat_clips([*quiet_a, *fights, *quiet_b], video)
    fight_start, fight_end = spans[2][0], spans[4][1]
    total = spans[-1][1]

    example = tomllib.loads(EXAMPLE.read_text())
    config = write_config(
        tmp_path / "har.toml",
        {
            "model": {**example["model"], "path": FIGHT_MODEL, "backend": "litert"},
            "mqtt": {"enabled": True, "host": mosquitto.host, "port": mosquitto.port},
            "inference": example["inference"],
            "logging": {"level": "info", "json": True},
        },
        cameras=[{"name": "hall", "source": video, "realtime": False}],
    )
    pool = DaemonPool(tmp_path)
    with MqttRecorder(mosquitto, "har/#") as rec:
        try:
            daemon = pool.start(config)
            assert daemon.wait(timeout=240) == 0, daemon.describe()
        finally:
            pool.close()
        events = daemon.stdout_events()
        online = [e for e in daemon.logs() if e.get("event") == "camera.online"]
        assert online, daemon.describe()
        t0 = _iso(online[0]["timestamp"])
        wait_until(lambda: len(rec.payloads("har/hall/events")) >= len(events), timeout=10)
        published = rec.payloads("har/hall/events")
    starts = [e for e in events if e["type"] == "start"]
    report = json.dumps(
        {"spans": spans, "events": [(e["type"], e["activity"], _iso(e["at"]) - t0) for e in events]}
    )
    assert starts and {e["activity"] for e in starts} == {"fight"}, report
    # A window ends at its newest frame and spans ~sequence_length * spacing seconds: a start
    # before the fight stretch began, or after its frames left the window, is a false alarm.
    # (A dip inside the stretch may split it into two occurrences; both must lie inside.)
    window_s = meta.sequence_length * meta.frame_spacing_s
    for start in starts:
        started = _iso(start["started_at"]) - t0
        assert fight_start - 0.2 < started < fight_end + 0.2, report
    ends = [e for e in events if e["type"] == "end"]
    assert [e["id"] for e in ends] == [e["id"] for e in starts], report
    for end in ends:
        ended = _iso(end["ended_at"]) - t0
        assert fight_start + 1.0 < ended < min(total, fight_end + window_s + 2.0), report
    assert [json.loads(p) for p in published] == events
