"""ClipRecorder: real MP4s written from real decoded video, read back with OpenCV."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.outputs.clips import PARTIAL_DIR, ClipRecorder, ClipsError, clip_filename
from har_daemon.runtime.history import FrameHistory
from tests.infra.logs import capture_logs
from tests.infra.media import make_test_video
from tests.infra.mounts import unwritable_dir
from tests.infra.procs import wait_until

T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def source_frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """8 s of a moving test pattern at 10 fps, 320x240, decoded."""
    video = make_test_video(
        tmp_path_factory.mktemp("src") / "pattern.mp4", 8.0, fps=10, size=(320, 240)
    )
    frames, _ = _read_clip(video)
    assert len(frames) == 80
    return frames


def _recorder(directory: Path, history: FrameHistory | None, **kw: float) -> ClipRecorder:
    options = {
        "fps": 10.0,
        "pre_roll_s": 1.0,
        "post_roll_s": 1.0,
        "max_clip_s": 60.0,
        "max_bytes": 10**9,
        "max_age_s": 7 * 86400.0,
    }
    options.update(kw)
    return ClipRecorder(directory, history=history, **options)  # type: ignore[arg-type]


class _Camera:
    """Feeds frames the way the daemon does: into the history, then to the recorder."""

    def __init__(self, recorder: ClipRecorder, history: FrameHistory, name: str = "cam") -> None:
        self.recorder, self.history, self.name = recorder, history, name

    def feed(self, frames: list[np.ndarray], start: int, stop: int, fps: float = 10.0) -> None:
        for i in range(start, stop):
            t = T0 + i / fps
            stored = self.history.push(frames[i % len(frames)], t)
            self.recorder.add_frame(self.name, stored, t)


def _read_clip(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot open {path}"
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames, fps


def _partials(directory: Path) -> list[Path]:
    return list((directory / PARTIAL_DIR).iterdir())


def test_clip_has_pre_roll_event_and_post_roll(tmp_path: Path, source_frames: list) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path / "clips", history)
    cam = _Camera(recorder, history)
    cam.feed(source_frames, 0, 20)  # 2 s before the event is recognised
    path = recorder.start("abcdef1234", "cam", "walking", T0 + 2.0)
    assert path.name == "cam-20231114T221322Z-walking-abcdef12.mp4"
    assert path.parent == tmp_path / "clips"
    cam.feed(source_frames, 20, 40)
    assert recorder.end("abcdef1234", T0 + 4.0) == path
    recorder.wait_idle()
    assert not path.exists()  # the post-roll is still to come
    assert recorder.recording == ["abcdef1234"]
    cam.feed(source_frames, 40, 60)
    assert recorder.recording == []
    assert recorder.wait_idle()
    assert path.exists() and not _partials(tmp_path / "clips")
    frames, fps = _read_clip(path)
    # 1 s pre-roll + 2 s event + 1 s post-roll at 10 fps: frames 10..50 of the source.
    assert abs(len(frames) - 41) <= 2
    assert fps == pytest.approx(10.0)
    assert frames[0].shape == (240, 320, 3)
    # It is the right footage: the clip starts with the pre-roll frame from the history.
    assert np.abs(frames[0].astype(int) - source_frames[10]).mean() < 8
    assert (
        np.abs(frames[0].astype(int) - source_frames[0]).mean()
        > 2 * np.abs(frames[0].astype(int) - source_frames[10]).mean()
    )
    assert np.abs(frames[-1].astype(int) - source_frames[50]).mean() < 8
    recorder.close_all()


def test_frames_are_placed_by_time_whatever_rate_they_come_at(
    tmp_path: Path, source_frames: list
) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path, history, pre_roll_s=0.0, post_roll_s=0.0)
    cam = _Camera(recorder, history)
    recorder.start("fast", "cam", "running", T0)
    cam.feed(source_frames, 0, 75, fps=25.0)  # 3 s at 25 fps into a 10 fps clip
    recorder.end("fast", T0 + 3.0)
    recorder.close_all()
    fast, _ = _read_clip(tmp_path / clip_filename("cam", T0, "running", "fast"))
    assert abs(len(fast) - 31) <= 2

    recorder = _recorder(tmp_path, history, pre_roll_s=0.0, post_roll_s=0.0)
    recorder.start("slow", "cam", "running", T0 + 100)
    for i in range(7):  # 3 s at 2 fps: missing frames repeat, so the clip still lasts 3 s
        t = T0 + 100 + i * 0.5
        recorder.add_frame("cam", history.push(source_frames[i], t), t)
    recorder.end("slow", T0 + 103.0)
    recorder.close_all()
    slow, _ = _read_clip(tmp_path / clip_filename("cam", T0 + 100, "running", "slow"))
    assert abs(len(slow) - 31) <= 2


def test_resolution_change_mid_clip_keeps_the_first_size(
    tmp_path: Path, source_frames: list
) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path, history, pre_roll_s=0.5, post_roll_s=0.5)
    cam = _Camera(recorder, history)
    cam.feed(source_frames, 0, 10)
    path = recorder.start("resize", "cam", "fall", T0 + 1.0)
    cam.feed(source_frames, 10, 20)
    # The camera reconnects at 640x360 (another aspect, too).
    bigger = [cv2.resize(f, (640, 360)) for f in source_frames]
    cam.feed(bigger, 20, 30)
    recorder.end("resize", T0 + 3.0)
    cam.feed(bigger, 30, 40)
    recorder.close_all()
    frames, _ = _read_clip(path)
    assert abs(len(frames) - 31) <= 2  # 0.5 + 2.0 + 0.5 s
    assert {f.shape for f in frames} == {(240, 320, 3)}
    assert np.abs(frames[-1].astype(int) - source_frames[35]).mean() < 10


def test_max_width_and_odd_sizes(tmp_path: Path, source_frames: list) -> None:
    history = FrameHistory(10.0, 1280)
    recorder = _recorder(tmp_path, history, pre_roll_s=0.0, post_roll_s=0.0, max_width=161)
    path = recorder.start("small", "cam", "sit", T0)
    for i in range(10):
        t = T0 + i / 10
        recorder.add_frame("cam", history.push(source_frames[i], t), t)
    recorder.end("small", T0 + 0.9)
    recorder.close_all()
    frames, _ = _read_clip(path)
    assert frames and frames[0].shape == (120, 160, 3)  # 161x121 made even for the encoder


def test_max_clip_s_closes_a_clip_whose_event_goes_on(tmp_path: Path, source_frames: list) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path, history, pre_roll_s=0.5, max_clip_s=2.0)
    cam = _Camera(recorder, history)
    cam.feed(source_frames, 0, 10)
    path = recorder.start("long", "cam", "dancing", T0 + 1.0)
    cam.feed(source_frames, 10, 60)  # the event runs 4 s past its start
    assert recorder.recording == []
    recorder.wait_idle()
    frames, _ = _read_clip(path)
    assert abs(len(frames) - 21) <= 2  # 2 s from the first pre-roll frame
    assert recorder.end("long", T0 + 6.0) == path  # the end event still gets the path
    assert recorder.end("unknown", T0 + 6.0) is None
    recorder.close_all()


def test_tick_closes_a_clip_whose_camera_went_quiet(tmp_path: Path, source_frames: list) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path, history)
    cam = _Camera(recorder, history)
    cam.feed(source_frames, 0, 20)
    path = recorder.start("quiet", "cam", "walking", T0 + 1.5)
    recorder.end("quiet", T0 + 2.0)  # camera offline: no post-roll frames will come
    recorder.tick(T0 + 2.5)
    assert recorder.recording == ["quiet"]  # still waiting for post-roll frames
    recorder.tick(T0 + 4.5)
    assert recorder.recording == []
    recorder.wait_idle()
    frames, _ = _read_clip(path)
    assert abs(len(frames) - 15) <= 2  # T0+0.5 .. T0+1.9
    recorder.close_all()


def test_close_all_finishes_open_clips_and_leaves_no_partial_files(
    tmp_path: Path, source_frames: list
) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path, history)
    cam = _Camera(recorder, history)
    cam2 = _Camera(recorder, history, name="yard")
    cam.feed(source_frames, 0, 20)
    first = recorder.start("e1", "cam", "walking", T0 + 1.5)
    second = recorder.start("e2", "cam", "running", T0 + 1.8)  # overlapping, same camera
    other = recorder.start("e3", "yard", "sitting", T0 + 1.8)
    assert recorder.start("e1", "cam", "walking", T0 + 1.5) == first
    cam.feed(source_frames, 20, 30)
    cam2.feed(source_frames, 20, 30)
    recorder.close_all()
    assert not _partials(tmp_path)
    for path in (first, second, other):
        frames, _ = _read_clip(path)
        assert len(frames) >= 10
    # After shutdown nothing more is recorded, and nothing fails.
    recorder.add_frame("cam", source_frames[0], T0 + 10)
    late = recorder.start("e4", "cam", "walking", T0 + 10)
    assert not late.exists()


def test_a_clip_without_frames_leaves_no_file(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, FrameHistory(10.0, 640))
    path = recorder.start("empty", "cam", "walking", T0)
    recorder.close_all()
    assert not path.exists() and not _partials(tmp_path)
    assert recorder.stats.clips_failed == 1


def _fake_clip(directory: Path, name: str, size: int, age_s: float) -> Path:
    path = directory / name
    path.write_bytes(b"\0" * size)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_start_up_prunes_by_budget_and_age_and_removes_partials(tmp_path: Path) -> None:
    (tmp_path / PARTIAL_DIR).mkdir()
    crashed = tmp_path / PARTIAL_DIR / "cam-crashed.mp4"
    crashed.write_bytes(b"half a clip")
    old = _fake_clip(tmp_path, "old.mp4", 1000, 10 * 86400)
    a = _fake_clip(tmp_path, "a.mp4", 4000, 3000)
    b = _fake_clip(tmp_path, "b.mp4", 4000, 2000)
    c = _fake_clip(tmp_path, "c.mp4", 4000, 1000)
    notes = _fake_clip(tmp_path, "notes.txt", 50_000, 1000)  # not a clip: never touched
    with capture_logs() as logs:
        recorder = _recorder(tmp_path, None, max_bytes=9000, max_age_s=86400.0)
    recorder.close_all()
    assert not crashed.exists()
    assert not old.exists() and not a.exists()
    assert b.exists() and c.exists() and notes.exists()
    deletions = [e for e in logs if e["event"] == "clips.deleted"]
    assert [(Path(e["path"]).name, e["reason"]) for e in deletions] == [
        ("old.mp4", "age"),
        ("a.mp4", "budget"),
    ]
    assert any(e["event"] == "clips.partial_removed" for e in logs)


def test_each_saved_clip_prunes_the_oldest(tmp_path: Path, source_frames: list) -> None:
    history = FrameHistory(10.0, 640)
    olds = [_fake_clip(tmp_path, f"old{i}.mp4", 100_000, 5000 - i) for i in range(3)]
    budget = 250_000
    recorder = _recorder(tmp_path, history, pre_roll_s=0.0, post_roll_s=0.0, max_bytes=budget)
    # 300 kB was over budget, so the oldest went at start-up: 200 kB left.
    assert not olds[0].exists() and olds[1].exists() and olds[2].exists()
    cam = _Camera(recorder, history)
    path = recorder.start("new", "cam", "walking", T0)
    cam.feed(source_frames, 0, 30)
    recorder.end("new", T0 + 2.9)
    recorder.close_all()
    assert path.stat().st_size > 60_000  # so the new clip pushed the directory over budget
    assert not olds[1].exists()  # oldest first
    remaining = list(tmp_path.glob("*.mp4"))
    assert path in remaining
    assert sum(p.stat().st_size for p in remaining) <= budget or remaining == [path]


def test_the_newest_clip_is_kept_even_over_budget(tmp_path: Path) -> None:
    big = _fake_clip(tmp_path, "big.mp4", 5000, 10)
    recorder = _recorder(tmp_path, None, max_bytes=1000)
    recorder.close_all()
    assert big.exists()


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ClipsError, match="clip directory .*file/clips is not writable"):
        _recorder(blocker / "clips", None)
    with (
        unwritable_dir(tmp_path / "locked") as locked,
        pytest.raises(ClipsError, match="not writable"),
    ):
        _recorder(locked, None)


def test_filenames_are_sanitised() -> None:
    name = clip_filename("front door/../x", T0, "fall down!", "ab/cd-ef12-3456")
    assert name == "front_door_x-20231114T221320Z-fall_down-ab_cd-ef.mp4"
    assert clip_filename("..", T0, "", "") == "x-20231114T221320Z-x-x.mp4"


# -- codec -------------------------------------------------------------------------------------


def _probe(path: Path) -> tuple[str, int]:
    """Codec name and frame count, as ffprobe (not OpenCV) reads the file."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
            "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path),
        ],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    codec, frames = out.split(",")
    return codec, int(frames)


def _one_clip(recorder: ClipRecorder, frames: list[np.ndarray], history: FrameHistory) -> Path:
    cam = _Camera(recorder, history)
    cam.feed(frames, 0, 10)
    path = recorder.start("feedbeef00", "cam", "fight", T0 + 1.0)
    cam.feed(frames, 10, 30)
    recorder.end("feedbeef00", T0 + 3.0)
    cam.feed(frames, 30, 45)
    assert recorder.wait_idle(30)
    recorder.close_all()
    return path


def test_h264_clips_play_in_browsers_with_the_index_first(
    tmp_path: Path, source_frames: list
) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path / "h264", history, codec="h264")  # type: ignore[arg-type]
    assert recorder.codec == "h264"
    with capture_logs() as logs:
        path = _one_clip(recorder, source_frames, history)
    codec, count = _probe(path)
    assert codec == "h264"
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while loading
    saved = [e for e in logs if e["event"] == "clips.saved"]
    assert saved and saved[0]["codec"] == "h264"
    assert not _partials(tmp_path / "h264")

    history2 = FrameHistory(10.0, 640)
    plain = _recorder(tmp_path / "mp4v", history2, codec="mp4v")  # type: ignore[arg-type]
    mp4v_path = _one_clip(plain, source_frames, history2)
    assert _probe(mp4v_path) == ("mpeg4", count)  # the same frames, only the codec differs
    frames, fps = _read_clip(path)
    ref, _ = _read_clip(mp4v_path)
    assert fps == pytest.approx(10.0) and len(frames) == len(ref)
    assert np.abs(frames[5].astype(int) - ref[5]).mean() < 6


def test_without_ffmpeg_auto_falls_back_to_mp4v_and_h264_is_a_clear_error(
    tmp_path: Path, source_frames: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a host without ffmpeg
    with pytest.raises(ClipsError, match="codec 'h264' needs ffmpeg with libx264 on PATH"):
        _recorder(tmp_path / "a", None, codec="h264")  # type: ignore[arg-type]
    history = FrameHistory(10.0, 640)
    with capture_logs() as logs:
        recorder = _recorder(tmp_path / "b", history, codec="auto")  # type: ignore[arg-type]
        assert recorder.codec == "mp4v"
        path = _one_clip(recorder, source_frames, history)
    assert [e["event"] for e in logs].count("clips.h264_unavailable") == 1
    monkeypatch.undo()
    assert _probe(path)[0] == "mpeg4"


def test_a_failed_reencode_keeps_the_clip(tmp_path: Path, source_frames: list) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path / "clips", history, codec="h264")  # type: ignore[arg-type]
    name = clip_filename("cam", T0 + 1.0, "fight", "feedbeef00")
    # ffmpeg cannot write its output where a directory stands: a real encoder failure.
    (tmp_path / "clips" / PARTIAL_DIR / (Path(name).stem + ".h264.mp4")).mkdir()
    with capture_logs() as logs:
        path = _one_clip(recorder, source_frames, history)
    assert path.name == name and path.is_file()
    assert _probe(path)[0] == "mpeg4"
    assert recorder.stats.transcode_failed == 1 and recorder.stats.clips_saved == 1
    failed = [e for e in logs if e["event"] == "clips.transcode_failed"]
    assert failed and failed[0]["kept"] == "mp4v" and failed[0]["reason"]


def test_a_stop_re_encodes_what_it_can_and_loses_no_clip(
    tmp_path: Path, source_frames: list
) -> None:
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path / "clips", history, codec="h264")  # type: ignore[arg-type]
    cam = _Camera(recorder, history)
    cam.feed(source_frames, 0, 10)
    first = recorder.start("cafe000001", "cam", "fight", T0 + 1.0)
    cam.feed(source_frames, 10, 40)
    recorder.close_all()  # the event is still going on: shutdown, with time to re-encode
    assert first.is_file() and not _partials(tmp_path / "clips")
    assert _probe(first)[0] == "h264"

    # No time left: the clip is kept as written instead of waiting for the encoder.
    history = FrameHistory(10.0, 640)
    recorder = _recorder(tmp_path / "clips2", history, codec="h264")  # type: ignore[arg-type]
    cam = _Camera(recorder, history)
    cam.feed(source_frames, 0, 10)
    second = recorder.start("cafe000002", "cam", "fight", T0 + 1.0)
    cam.feed(source_frames, 10, 40)
    with capture_logs() as logs:
        started = time.monotonic()
        recorder.close_all(timeout=0.01)
        assert time.monotonic() - started < 1.0
        wait_until(second.is_file, timeout=10, message="the clip was lost at shutdown")
        time.sleep(0.2)
    assert not _partials(tmp_path / "clips2")
    assert _probe(second)[0] == "mpeg4"
    saved = [e for e in logs if e["event"] == "clips.saved"]
    assert saved and saved[0]["codec"] == "mp4v"
