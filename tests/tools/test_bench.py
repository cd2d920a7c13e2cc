"""`har-daemon bench`: its pieces and one tiny end-to-end run. No timing is asserted (figures
depend on the machine); only that every figure is produced, with sane types and values."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from har_daemon.cli.options import add_bench_options
from har_daemon.comms.payloads import iso_utc
from har_daemon.config import load_config
from har_daemon.core.paths import DEMO_MODEL_DIR, FIGHT_MODEL_DIR
from har_daemon.model.meta import read_meta
from har_daemon.tools import bench as benchmark
from har_daemon.tools import inference, streams
from har_daemon.tools.broker import MosquittoBroker, MqttRecorder, find_mosquitto
from har_daemon.tools.people import PEOPLE_CLIP
from har_daemon.tools.recording import MODES, recording_config, tree_cpu_s
from tests.shared_data import REPO

needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")

REQUIRED = {
    "predict_ms": float,
    "fast_ms": float,
    "batch8_ms_per_window": float,
    "speedup": float,
    "preprocess_us_1080p": float,
    "streams_realtime": int,
    "detect_ms": float,
    "pose_ms_per_person": float,
    "latency_p95_ms": float,
    "rss_mb": float,
    "model": str,
    "backend": str,
    "stream": dict,
    "cpu_count": int,
    "numpy": str,
    "opencv": str,
    "machine": str,
}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_bench_options(parser)
    return parser.parse_args(list(argv))


def test_arguments_default_to_the_bundled_model_and_issue_settings() -> None:
    args = parse()
    assert args.model == DEMO_MODEL_DIR
    assert (args.width, args.height, args.fps) == (640, 480, 25)
    assert args.latency_streams == 8
    assert not args.json
    args = parse("--json", "--streams-max", "2", "--seconds", "6")
    assert args.json and args.streams_max == 2 and args.seconds == 6.0
    assert args.event_s == 10.0 and parse("--recording", "--event-s", "60").event_s == 60.0
    # 0 skips a part: the stream search, the latency step, the recognisers
    skip = parse("--streams-max", "0", "--latency-streams", "0", "--recognisers-seconds", "0")
    assert (skip.streams_max, skip.latency_streams, skip.recognisers_seconds) == (0, 0, 0.0)


@pytest.mark.parametrize(
    "bad",
    [["--runs", "0"], ["--threads", "0"], ["--streams-max", "-1"], ["--seconds", "0"],
     ["--latency-streams", "two"], ["--recognisers-seconds", "-1"], ["--fps", "0"]],
)  # fmt: skip
def test_impossible_settings_are_refused_by_the_parser(
    bad: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused while parsing, so before the command imports or measures anything."""
    with pytest.raises(SystemExit):
        parse(*bad)
    assert f"argument {bad[0]}:" in capsys.readouterr().err


def test_without_tensorflow_the_keras_baseline_is_null_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A daemon-only install: litert and preprocessing are timed, the Keras figures are not."""
    monkeypatch.setattr(inference, "has_tensorflow", lambda: False)
    figures = inference.measure_inference(DEMO_MODEL_DIR, 2, 1)
    assert figures["keras_baseline"] == inference.KERAS_SKIPPED
    assert "TensorFlow is not installed" in figures["keras_baseline"]
    assert "pip install 'har-daemon[train]'" in figures["keras_baseline"]
    assert figures["predict_ms"] is None and figures["keras_ms"] is None
    assert figures["speedup"] is None
    assert figures["fast_backend"] == "litert" and figures["fast_ms"] > 0
    assert figures["batch8_ms_per_window"] > 0 and figures["preprocess_us_1080p"] > 0
    assert "bench: Keras baseline skipped" in capsys.readouterr().err
    benchmark.print_table({"model_name": "demo", "machine": "here", "cpu_count": 2, **figures})
    said = [line for line in capsys.readouterr().out.splitlines() if "Keras baseline" in line]
    assert said == [
        f"  Keras baseline (model.predict, keras backend, speedup) {figures['keras_baseline']}"
    ]


def test_a_missing_recording_clip_is_one_line_and_exit_2(tmp_path: Path) -> None:
    args = parse("--recording")
    assert args.recording_clip is None and args.recording_rounds == 1  # walking clip, one round
    clip = tmp_path / "no-fights-here.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "har_daemon", "bench", "--recording", "--recording-model",
         "fight", "--recording-clip", str(clip), "--workdir", str(tmp_path / "w")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    errors = [x for x in result.stderr.splitlines() if x.startswith("har-daemon: error:")]
    assert errors == [f"har-daemon: error: --recording-clip {clip}: no such video file"]
    assert "Traceback" not in result.stderr and not (tmp_path / "w" / "off.toml").exists()


def test_stream_counts_double_to_eight_then_step_by_four() -> None:
    assert streams.stream_counts(0) == []
    assert streams.stream_counts(2) == [1, 2]
    assert streams.stream_counts(10) == [1, 2, 4, 8, 10]
    assert streams.stream_counts(24) == [1, 2, 4, 8, 12, 16, 20, 24]


def test_generated_config_is_accepted_by_the_daemon_loader(tmp_path: Path) -> None:
    video = tmp_path / "a clip.mp4"
    path = streams.write_config(
        tmp_path / "c.toml", 3, video, DEMO_MODEL_DIR, 1883, tmp_path / "state"
    )
    config = load_config(path)
    assert config.model.backend == "litert"
    assert config.mqtt.publish_scores and config.mqtt.port == 1883
    assert config.stats.interval == 1
    assert [c.name for c in config.cameras] == ["cam01", "cam02", "cam03"]
    assert all(c.realtime and c.source_kind == "file" for c in config.cameras)
    assert config.cameras[0].source == str(video)
    off = streams.write_config(
        tmp_path / "d.toml", 1, video, DEMO_MODEL_DIR, None, tmp_path / "state"
    )
    assert not load_config(off).mqtt.enabled


def _stats_line(t: float, read: int, sampled: int, stale: int = 0, windows: int = 0) -> str:
    cams = {
        "cam01": {
            "frames_read": read,
            "frames_sampled": sampled,
            "windows": windows,
            "stale_windows": stale,
        }
    }
    return json.dumps({"event": "stats", "timestamp": iso_utc(t), "cameras": cams})


def test_judge_passes_on_schedule_and_names_each_failure(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    log = tmp_path / "daemon.log"
    expected = 1 / 0.1

    def judge(lines: list[str]) -> streams.StepResult:
        log.write_text("\n".join(lines) + "\n")
        result = streams.StepResult(streams=1, ok=False)
        streams.judge(result, log, t0, t0 + 10, 25.0, expected, 0.03)
        return result

    ok = judge([_stats_line(t0, 100, 40), _stats_line(t0 + 10, 350, 140, windows=20)])
    assert ok.ok, ok.reason
    assert ok.cameras["cam01"] == {"read_fps": 25.0, "sampled_fps": 10.0, "stale_windows": 0}
    slow = judge([_stats_line(t0, 100, 40), _stats_line(t0 + 10, 300, 120)])
    assert not slow.ok and "read 20.00 fps" in slow.reason and "sampled 8.00/s" in slow.reason
    stale = judge([_stats_line(t0, 100, 40), _stats_line(t0 + 10, 350, 140, stale=3)])
    assert not stale.ok and "3 stale windows" in stale.reason
    empty = judge([_stats_line(t0 + 9, 100, 40)])
    assert not empty.ok and "too few stats lines" in empty.reason


@needs_mosquitto
def test_recorded_scores_give_latency_from_at(tmp_path: Path) -> None:
    with (
        MosquittoBroker(tmp_path / "broker") as broker,
        MqttRecorder(broker, f"{streams.TOPIC_PREFIX}/#") as rec,
    ):
        pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        begin = time.time()
        payload = json.dumps({"at": iso_utc(begin - 0.25), "probabilities": {}})
        pub.publish(f"{streams.TOPIC_PREFIX}/cam01/scores", payload).wait_for_publish(5)
        pub.publish(f"{streams.TOPIC_PREFIX}/cam01/events", payload).wait_for_publish(5)
        rec.wait_for(f"{streams.TOPIC_PREFIX}/cam01/events", timeout=5)
        pub.loop_stop()
        pub.disconnect()
    latencies = streams.scores_latencies_ms(rec, begin - 1, time.time() + 1)
    assert len(latencies) == 1  # scores only
    assert 250 <= latencies[0] < 5000


def test_without_a_broker_latency_is_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "find_mosquitto", lambda: None)
    args = parse("--streams-max", "1", "--latency-streams", "1", "--seconds", "3")
    args.warmup = 2.5
    out = streams.measure_streams(args, read_meta(DEMO_MODEL_DIR), tmp_path)
    assert "mosquitto not found" in out["latency_note"]
    assert out["latency_p95_ms"] is None
    assert out["streams_realtime"] in (0, 1)
    assert out["steps"][0]["scores_messages"] == 0
    assert out["rss_mb"] > 0


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """The whole command with tiny settings, run once, as a user runs it (no HAR_ variables, no
    TF_CPP_MIN_LOG_LEVEL): the smoke test reads its figures, the stderr test its stderr."""
    workdir = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    # One stream per stage: the search's step 1 is also the latency step, so each of the four
    # stages (frame model, person stage, fight pose stage, pretrained fusion) runs its daemon once.
    cmd = [sys.executable, "-m", "har_daemon", "bench", "--json", "--streams-max", "1",
           "--seconds", "6", "--warmup", "3", "--latency-streams", "1", "--runs", "5",
           "--recognisers-seconds", "4", "--workdir", str(workdir)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    return proc, workdir


@needs_mosquitto
def test_bench_json_smoke(
    smoke_run: tuple[subprocess.CompletedProcess, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """One JSON line on stdout, every figure present."""
    proc, tmp_path = smoke_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    for key, kind in REQUIRED.items():
        assert isinstance(result.get(key), kind if kind is not float else (int, float)), key
    assert result["backend"] == "litert" and result["fast_backend"] == "litert"
    assert result["keras_baseline"] == "measured"  # TensorFlow is installed here
    assert result["predict_ms"] > 0 and result["fast_ms"] > 0 and result["speedup"] > 0
    assert result["speedup"] == pytest.approx(result["predict_ms"] / result["fast_ms"], rel=0.02)
    assert result["batch8_ms_per_window"] > 0 and result["preprocess_us_1080p"] > 0
    assert result["streams_realtime"] == 1, result["steps"]
    assert result["latency_streams"] == 1
    assert 0 < result["latency_p95_ms"] < 10_000
    assert 20 < result["rss_mb"] < 4000
    assert result["cpu_count"] == os.cpu_count()
    # Fight + fall on one camera against fight alone (on the real clip, where it is here).
    if PEOPLE_CLIP.is_file():
        assert result["recognisers_model"] == "fight-person-lrcn"
        assert 0 < result["fight_cpu_ms_per_s"] < result["fight_fall_cpu_ms_per_s"]
        assert result["fight_fall_ratio"] > 1 and result["fall_looks"] > 0
        # tracked looks: the detector's boxes only at the person stage's looks (every one of
        # them), people followed from their keypoints at the looks between
        tracked = result["fall_looks_tracked_mode"]
        shared = result["fall_looks_tracked_sharing_detection"]
        assert shared == result["fall_looks_shared_mode"] > 0
        # pose calls only on the boxes big enough to pose (model.pose.posable)
        assert result["fall_pose_calls_shared_mode"] > 0
        assert result["fall_boxes_unposed_shared_mode"] >= 0
        assert tracked == shared + result["fall_looks_tracked_following"] > shared
        # adaptive looks: the person stage's looks, tracked ones only while a watch is open
        adaptive = result["fall_looks_adaptive_mode"]
        assert adaptive == shared + result["fall_looks_adaptive_following"]
        assert result["fight_fall_adaptive_ratio"] > 1
        # the pretrained appearance fusion: context crops embedded on the same windows
        assert result["pretrained_embedded"] > 0 and result["fight_pretrained_ratio"] > 1
        # the person stage's memory at --latency-streams, beside the frame model's
        assert 20 < result["rss_mb_people"] < 4000
        # the fight pose stage: the bundled fight model (the demo has no fight class) with
        # pose_fusion on, and its daemon really looked (stats of the one-stream step)
        assert result["pose_model"] == "fight-person-lrcn"
        assert 20 < result["rss_mb_pose"] < 4000
        assert [s["streams"] for s in result["pose_steps"]][:1] == [1]
        assert "pose_fusion = true" in (tmp_path / "pose" / "streams-1.toml").read_text()
        looks = [
            e["cameras"]["cam01"].get("pose_looks", 0)
            for e in streams._log_events(tmp_path / "pose" / "daemon-1.log")
            if e.get("event") == "stats"
        ]
        assert max(looks) > 0
        # the pretrained fusion's daemon: the same fight model, its embeddings really taken
        assert result["pretrained_model"] == "fight-person-lrcn"
        assert 20 < result["rss_mb_pretrained"] < 4000
        assert [s["streams"] for s in result["pretrained_steps"]][:1] == [1]
        config = (tmp_path / "pretrained" / "streams-1.toml").read_text()
        assert "pretrained_fusion = true" in config and "pose_fusion" not in config
        embedded = [
            e["cameras"]["cam01"].get("pretrained_embedded", 0)
            for e in streams._log_events(tmp_path / "pretrained" / "daemon-1.log")
            if e.get("event") == "stats"
        ]
        assert max(embedded) > 0
    else:
        assert "not found" in result["recognisers_note"]
    assert result["stream"]["width"] == 640 and result["stream"]["fps"] == 25
    steps = result["steps"]
    assert [s["streams"] for s in steps][:1] == [1]
    first = steps[0]
    assert first["ok"], first["reason"]
    assert first["stale_windows"] == 0 and first["scores_messages"] > 0
    assert first["read_fps_min"] > 20 and first["sampled_fps_min"] > 8
    # The daemon left its logs, config and the generated clip in the work folder.
    assert (tmp_path / "stream.mp4").stat().st_size > 0
    assert '"daemon.stopped"' in (tmp_path / "daemon-1.log").read_text()
    # The readable form prints the same figures.
    benchmark.print_table(result)
    text = capsys.readouterr().out
    assert "model.predict" in text and "latency p95 at 1 streams" in text
    assert "fight + fall / fight alone" in text
    if PEOPLE_CLIP.is_file():
        assert "with the person stage on" in text
        assert "streams with the fight pose stage on (fight-person-lrcn)" in text


def test_recording_configs_are_accepted_by_the_daemon_loader(tmp_path: Path) -> None:
    """`bench --recording`'s four runs: clips off, by copy of the main stream, re-encoded."""
    main, sub = tmp_path / "main.mp4", tmp_path / "sub.mp4"
    for f in (main, sub):
        f.write_bytes(b"")
    loaded = {
        m: load_config(recording_config(tmp_path / f"{m}.toml", m, main, sub, tmp_path / m))
        for m in MODES
    }
    cams = {m: c.cameras[0] for m, c in loaded.items()}
    assert not loaded["off"].clips.enabled and all(loaded[m].clips.enabled for m in MODES[1:])
    assert cams["copy"].record_source == str(main) and cams["copy"].source == str(sub)
    assert cams["reencode"].record_source is None and cams["reencode_main"].source == str(main)
    fight = load_config(recording_config(tmp_path / "f.toml", "copy", main, sub, tmp_path, "fight"))
    assert fight.model.path == FIGHT_MODEL_DIR and fight.cameras[0].record_source == str(main)
    assert loaded["copy"].model.path == DEMO_MODEL_DIR


def test_tree_cpu_counts_this_process() -> None:
    before = tree_cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert tree_cpu_s(os.getpid()) > before


def test_bench_stderr_has_no_gpu_noise_without_a_gpu(
    smoke_run: tuple[subprocess.CompletedProcess, Path],
) -> None:
    """TensorFlow's start-up notes (cuda drivers, cuInit) are held back: only bench's progress."""
    proc, _ = smoke_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cuda" not in proc.stderr.lower() and "cuInit" not in proc.stderr, proc.stderr
    assert "bench: timing the litert backend" in proc.stderr
