"""Test streams from labelled clips: their order, their truth, and the joined video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.core.errors import DataError
from har_daemon.offline.matching import TruthInterval
from har_daemon.offline.stream_eval import read_truth
from har_daemon.offline.streams import (
    StreamClip,
    Stretch,
    build_stream,
    plan_stream,
    read_manifest,
)
from har_daemon.tools.media import make_test_video
from har_daemon.video.frames import probe_video


def _c(name: str, label: str, source: str) -> StreamClip:
    return StreamClip(Path(f"/data/{label}/{name}.mp4"), label, source)


FIGHTS = [_c("fi1", "fight", "a"), _c("fi2", "fight", "a"), _c("fi3", "fight", "b")]
QUIET = [_c(f"q{i}", "noFight", "z") for i in range(5)]


def test_quiet_surrounds_every_incident_and_same_source_incidents_join() -> None:
    plan = plan_stream(QUIET + FIGHTS, "fight", join="source", seed=1)
    kinds = [s.activity for s in plan]
    assert kinds == [None, "fight", None, "fight", None]
    assert [[c.path.stem for c in s.clips] for s in plan if s.activity] == [["fi1", "fi2"], ["fi3"]]
    used = [c for s in plan for c in s.clips]
    assert sorted(c.path.stem for c in used) == sorted(c.path.stem for c in QUIET + FIGHTS)
    assert sorted(len(s.clips) for s in plan if s.activity is None) == [1, 2, 2]  # shared evenly


def test_without_joining_each_incident_clip_stands_alone_and_the_order_is_seeded() -> None:
    plan = plan_stream(FIGHTS + QUIET, "fight", join="none", seed=1)
    assert [len(s.clips) for s in plan if s.activity] == [1, 1, 1]
    assert plan == plan_stream(FIGHTS + QUIET, "fight", join="none", seed=1)
    assert plan == plan_stream(QUIET[::-1] + FIGHTS[::-1], "fight", join="none", seed=1)
    orders = {
        tuple(c.path.stem for s in plan_stream(QUIET, "fight", seed=k) for c in s.clips)
        for k in range(5)
    }
    assert len(orders) > 1  # the seed shuffles the quiet clips
    assert [s.activity for s in plan_stream(FIGHTS, "fight")] == ["fight", "fight"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[StreamClip]:
    d = tmp_path_factory.mktemp("clips")
    return [
        StreamClip(make_test_video(d / "q1.mp4", 1.0, fps=10, size=(160, 120)), "noFight", "x"),
        StreamClip(make_test_video(d / "f1.mp4", 1.2, fps=30, size=(320, 180)), "fight", "y"),
        StreamClip(make_test_video(d / "f2.mp4", 0.8, fps=15, size=(320, 180)), "fight", "y"),
        StreamClip(make_test_video(d / "q2.mp4", 0.6, fps=25, size=(320, 180)), "noFight", "x"),
    ]


def test_a_built_stream_places_each_clip_by_its_frames_and_writes_its_truth(
    clips: list[StreamClip], tmp_path: Path
) -> None:
    q1, f1, f2, q2 = clips
    plan = [Stretch((q1,), None), Stretch((f1, f2), "fight"), Stretch((q2,), None)]
    built = build_stream(plan, tmp_path / "s" / "stream.mp4", size=(160, 90), fps=20)

    spans = [(p.start_s, p.end_s) for p in built.clips]
    assert np.allclose(spans, [(0.0, 1.0), (1.0, 2.2), (2.2, 3.0), (3.0, 3.6)], atol=0.051)
    assert built.truth == [TruthInterval(spans[1][0], spans[2][1], "fight")]
    assert read_truth(tmp_path / "s" / "TRUTH.csv") == built.truth
    info = probe_video(built.video, exact=True)
    assert (info.width, info.height) == (160, 90)
    assert info.frame_count == round(built.duration_s * 20)
    assert built.duration_s == pytest.approx(spans[-1][1])
    back = read_manifest(tmp_path / "s" / "clips.csv")
    assert [(p.clip, p.stretch) for p in back] == [(p.clip, p.stretch) for p in built.clips]

    # The 4:3 clip is letterboxed, not stretched: black bars beside it, none beside the 16:9.
    cap = cv2.VideoCapture(str(built.video))
    ok, first = cap.read()
    for _ in range(int(spans[1][0] * 20) + 2):
        ok, later = cap.read()
    cap.release()
    assert ok
    assert first[:, :8].max() < 30 and first[:, 40:120].std() > 10
    assert later[:, :8].std() > 10


def test_an_empty_stream_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no clips"):
        build_stream([], tmp_path / "x.mp4")
    bad = tmp_path / "clips.csv"
    bad.write_text("nonsense\n1\n")
    with pytest.raises(DataError, match="not a stream manifest"):
        read_manifest(bad)


def test_frames_of_a_stream_follow_its_clips(clips: list[StreamClip], tmp_path: Path) -> None:
    """A stream of one clip is that clip at the stream's rate: the pattern's mean brightness
    per frame follows the original's."""
    q1 = clips[0]
    built = build_stream([Stretch((q1,), None)], tmp_path / "one.mp4", size=(160, 120), fps=10)
    cap_a, cap_b = cv2.VideoCapture(str(q1.path)), cv2.VideoCapture(str(built.video))
    means = []
    while True:
        ok_a, a = cap_a.read()
        ok_b, b = cap_b.read()
        if not (ok_a and ok_b):
            break
        means.append((float(a.mean()), float(b.mean())))
    assert len(means) == 10
    original, joined = np.array(means).T
    assert np.allclose(original, joined, atol=3.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cv", "{tmp}/nowhere"], "not a cross-validation report"),
        ([], "give --cv CV_DIR"),
        (["--model", "{tmp}/nomodel"], "does not exist"),
        (["--cv", "{tmp}", "--alert-class", ""], "give --alert-class"),
        (["--size", "641x360", "--cv", "{tmp}"], "even sides"),
    ],
)
def test_streams_user_mistakes_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    for label in ("fight", "noFight"):
        (data / label).mkdir(parents=True)
        (data / label / "a.mp4").write_bytes(b"")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--alert-class" not in argv:
        argv += ["--alert-class", "fight"]
    result = subprocess.run(
        [sys.executable, "-m", "har_daemon", "streams", "--data", str(data),
         "--out", str(tmp_path / "out"), *argv],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert message in lines[-1], result.stderr
    if "--size" not in argv:  # argparse's own errors come after its usage lines
        assert len(lines) == 1, result.stderr
