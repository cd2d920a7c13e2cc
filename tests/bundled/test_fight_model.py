"""The shipped fight model (models/fight) on real CCTV footage, through the real daemon.

The clips live in ../shared/data (never committed); these tests skip, naming the folder, only
where it is absent. The model directory itself is committed and always checked.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from har_daemon.model.meta import read_meta
from tests.daemon_helpers import EXAMPLE, FIGHT_MODEL, DaemonPool, fight_config
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until
from tests.shared_data import FIGHT_DATA, require


def test_shipped_fight_model_directory_is_complete() -> None:
    meta = read_meta(FIGHT_MODEL)
    assert meta.classes == ["fight", "noFight"]
    assert meta.input_region == "person" and meta.person_region is not None
    assert meta.tflite_file and (FIGHT_MODEL / meta.tflite_file).is_file()
    assert (FIGHT_MODEL / meta.model_file).is_file()
    assert 0.05 < meta.frame_spacing_s < 0.5  # measured from 2-3 s clips at 20 frames
    cv = meta.evaluation["cross_validation"]
    assert cv["folds"] == len(cv["accuracy"]["per_fold"]) >= 5
    assert cv["grouped_by"] == "source video"
    assert cv["options"]["input_region"] == "person"
    assert {"whole-frame lrcn", "person convlstm"} <= set(meta.evaluation["compared"])
    events = meta.evaluation["event_level"]["cross_validation"]
    assert len(events["per_fold"]) == cv["folds"]
    for key in ("false_alerts", "false_alerts_per_quiet_hour", "recall", "tta_p95_s"):
        assert key in events["pooled"]
    assert meta.training["alert_policy"]["rule"].startswith("within the false-alert budget")
    assert meta.provenance["licence"] == "MIT"
    for cited in ("Akt", "GMDCSA24", "ASSIST-IoT", "NanoDet"):
        assert cited in json.dumps(meta.provenance), cited
    assert meta.training["test_clips"], "held-out clips must be recorded for the stream test"


def test_config_example_serves_the_fight_model_with_its_chosen_settings() -> None:
    from har_daemon.config import load_config

    cfg = load_config(EXAMPLE)
    assert cfg.model.path == FIGHT_MODEL
    assert cfg.inference.alert_activities == ["fight"]
    assert cfg.inference.ignore_activities == ["noFight"]
    chosen = read_meta(FIGHT_MODEL).training["alert_policy"]["config"]
    inf = cfg.inference
    assert (inf.smoothing, inf.smoothing_window) == ("mean", chosen["smoothing_window"])
    assert inf.enter_threshold == chosen["enter_threshold"]
    assert inf.min_windows == chosen["min_windows"]
    assert cfg.model.stride == chosen.get("stride", cfg.model.stride)


def test_both_backends_give_the_same_figures_on_real_held_out_clips(tmp_path: Path) -> None:
    """`evaluate --backend keras` and `--backend litert` (the file the daemon serves) agree on
    real clips, person crops included."""
    require(FIGHT_DATA)
    from har_daemon.training.evaluate import evaluate

    meta = read_meta(FIGHT_MODEL)
    names = [
        Path(c) for c in meta.training["test_clips"] if Path(c).name.startswith(("fi", "nofi"))
    ]
    data = tmp_path / "data"
    for n in names[:5] + names[-5:]:  # both classes
        (data / n.parent.name).mkdir(parents=True, exist_ok=True)
        (data / n.parent.name / n.name).symlink_to(FIGHT_DATA / n.parent.name / n.name)
    keras_run = evaluate(FIGHT_MODEL, data, tmp_path / "k", backend="keras", workers=0)
    litert_run = evaluate(FIGHT_MODEL, data, tmp_path / "l", backend="litert", workers=0)
    assert keras_run["n_samples"] == litert_run["n_samples"] == 10
    for key in ("accuracy", "per_class", "confusion_matrix"):
        assert keras_run[key] == litert_run[key], key
    rows = [(tmp_path / d / "predictions.csv").read_text().splitlines()[1:] for d in ("k", "l")]
    for a, b in zip(*rows, strict=True):
        fa, fb = a.split(","), b.split(",")
        assert fa[:3] == fb[:3]  # clip, true, predicted
        assert abs(float(fa[4]) - float(fb[4])) <= 2e-4  # the fight probability


def _held_out_clips(meta: Any) -> tuple[list[Path], list[list[Path]]]:
    """Held-out fight-set clips (never trained or validated on) that the model gets right
    alone: quiet clips, and runs of consecutive fight clips of one source video.

    Clip-level accuracy is measured by cross-validation; this test is about what the daemon's
    streaming machinery (sampling, person stage, ring, cuts, smoothing, hysteresis) makes of a
    real stream, so it builds the stream from clips whose label the model agrees with.
    """
    from har_daemon.model.registry import create_backend
    from har_daemon.training.dataset import ClipRecord, _read_sources
    from har_daemon.training.evaluate import predict_batches
    from har_daemon.training.people import build_person_clips, clip_probabilities

    backend = create_backend("litert", FIGHT_MODEL)
    sources = _read_sources(FIGHT_DATA / "sources.csv")
    names = [Path(c) for c in meta.training["test_clips"]]
    records = [
        ClipRecord(FIGHT_DATA / n.parent.name / n.name, n.parent.name, sources[n.stem])
        for n in names
        if n.name.startswith(("fi", "nofi"))  # the fight set's clips, wherever it lies
    ]
    clips = build_person_clips(records, meta, progress=False).clips
    probs = clip_probabilities(
        lambda x: predict_batches(backend, x, meta), clips, meta.classes, "fight"
    )
    right = [
        c.record
        for c, p in zip(clips, probs, strict=True)
        if (p[0] >= 0.5) == (c.record.label == "fight")
    ]
    quiet = [r.path for r in right if r.label == "noFight"]
    runs: list[list[ClipRecord]] = []
    for r in sorted((r for r in right if r.label == "fight"), key=lambda r: r.path.name):
        if runs and runs[-1][-1].group == r.group:
            runs[-1].append(r)
        else:
            runs.append([r])
    return quiet, [[r.path for r in run] for run in runs]


def _iso(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_daemon_raises_fight_for_the_fight_stretch_only(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    from har_daemon.offline.streams import StreamClip, Stretch, build_stream

    require(FIGHT_DATA)
    meta = read_meta(FIGHT_MODEL)
    quiet, runs = _held_out_clips(meta)
    longest = max(runs, key=len)
    assert len(quiet) >= 4 and len(longest) >= 2, (quiet, runs)

    def stretch(paths: list[Path], incident: str | None) -> Stretch:
        return Stretch(tuple(StreamClip(p, incident or "noFight", "s") for p in paths), incident)

    plan = [stretch(quiet[:2], None), stretch(longest[:3], "fight"), stretch(quiet[2:4], None)]
    built = build_stream(plan, tmp_path / "stream.mp4")
    ((fight_start, fight_end, _),) = [(t.start_s, t.end_s, t.activity) for t in built.truth]
    total = built.duration_s

    config = fight_config(
        tmp_path / "har.toml",
        mosquitto,
        cameras=[{"name": "hall", "source": built.video, "realtime": False}],
    )
    pool = DaemonPool(tmp_path)
    with MqttRecorder(mosquitto, "har/#") as rec:
        try:
            daemon = pool.start(config)
            assert daemon.wait(timeout=120) == 0, daemon.describe()
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
        {
            "truth": [fight_start, fight_end, total],
            "events": [
                (e["type"], e["activity"], _iso(e["at"]) - t0, e.get("region")) for e in events
            ],
        }
    )
    assert starts and {e["activity"] for e in starts} == {"fight"}, report
    # A window ends at its newest frame: a start before the fight stretch began, or after its
    # frames left the window, is a false alarm. (A scene cut between two clips of the stretch
    # may end the occurrence and start another; both must lie inside.)
    window_s = meta.sequence_length * meta.frame_spacing_s
    for start in starts:
        started = _iso(start["started_at"]) - t0
        assert fight_start - 0.2 < started < fight_end + 0.2, report
        assert start.get("region"), report  # the person-centric event names its region
    ends = [e for e in events if e["type"] == "end"]
    assert [e["id"] for e in ends] == [e["id"] for e in starts], report
    for end in ends:
        ended = _iso(end["ended_at"]) - t0
        assert fight_start + 1.0 < ended < min(total, fight_end + window_s) + 2.0, report
    assert [json.loads(p) for p in published] == events
