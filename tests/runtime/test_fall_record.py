"""scripts/fall_record.py: the fall evaluation's samples recorded through the daemon's stage."""

from __future__ import annotations

import itertools
import math
import sys

import pytest

from har_daemon.model.fall import FallRule
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.runtime.falls import DETECT_SCORE
from tests.shared_data import FALLS_DATA, REPO, require

CLIP = FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_13.mp4"
PERSON_STAGE_S = 0.5175


@pytest.fixture(scope="module")
def scripts():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import fall_data
        import fall_record

        yield fall_data, fall_record
    finally:
        sys.path.remove(str(REPO / "scripts"))


@pytest.fixture(scope="module")
def models(scripts):
    detector = PersonDetector(score_threshold=DETECT_SCORE)
    return scripts[1]._Memo(detector, PoseEstimator())


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5)


def test_own_looks_through_the_stage_record_what_the_cached_path_replays(
    scripts, models, tmp_path, monkeypatch
):
    fall_data, fall_record = scripts
    monkeypatch.setattr(fall_data, "CACHE", tmp_path)
    clip = fall_data.Clip(require(CLIP), "fall", "gmdcsa24/actor1", None)
    seen = fall_data.extract(clip, models.detector, models.pose)
    old = [(t, [(tr.id, tuple(tr.ring), tr.id in now) for tr in tracks])
           for t, tracks, now in fall_data.track_steps(seen)]  # fmt: skip
    [rec], duration = fall_record.record(CLIP, "own", [FallRule()], models, PERSON_STAGE_S)
    new = fall_record.samples_of(rec)
    assert rec.stage.followed == 0
    assert abs(len(new) - len(old)) <= 1 and duration == pytest.approx(seen.duration_s)
    # the cache samples on a fixed 0.2 s grid, the stage 0.2 s after its last look: on a
    # clip whose frames are not exactly 1/30 s apart they part after a while (a frame later)
    same = [(a, b) for a, b in zip(old, new, strict=False) if abs(a[0] - b[0]) < 1e-5]
    assert len(same) >= 12 and same == list(zip(old, new, strict=False))[: len(same)]
    for (_, live_old), (_, live_new) in same:
        assert [(i, s) for i, _, s in live_new] == [(i, s) for i, _, s in live_old]
        for (_, ring_old, _), (_, ring_new, _) in zip(live_old, live_new, strict=True):
            a, b = ring_old[-1], ring_new[-1]
            assert all(_same(getattr(a, k), getattr(b, k)) for k in ("hip_drop", "torso_deg"))
            assert (a.coverage, a.at_edge) == (b.coverage, b.at_edge)
    assert all(b[0] - a[0] >= 0.2 - 1e-6 for a, b in itertools.pairwise(new))


def test_tracked_looks_record_people_followed_between_the_person_stages_looks(scripts, models):
    _, fall_record = scripts
    rules = [FallRule(min_coverage=0.3), FallRule(min_coverage=0.65)]
    recs, _ = fall_record.record(require(CLIP), "tracked", rules, models, PERSON_STAGE_S)
    loose, strict = (fall_record.samples_of(rec) for rec in recs)
    for rec, samples in zip(recs, (loose, strict), strict=True):
        detector_looks = rec.stats.looks - rec.stats.tracked_looks
        assert rec.stats.looks == len(samples) and rec.stats.tracked_looks > detector_looks
        assert rec.stage.followed > 0  # people followed from their keypoints, no detector
        assert sum(any(s for _, _, s in live) for _, live in samples) > detector_looks
    # who counts as seen at a followed look depends on the rule's min_coverage
    assert recs[0].stage.followed > recs[1].stage.followed
    assert fall_record.variant("tracked", rules[0]) == (("look_s", 0.0), ("min_coverage", 0.3))
    assert fall_record.variant("own", rules[0]) == (("look_s", 0.0),)


def test_adaptive_looks_record_dense_looks_only_around_the_fall(scripts, models):
    _, fall_record = scripts
    [rec], _ = fall_record.record(require(CLIP), "adaptive", [FallRule()], models, PERSON_STAGE_S)
    samples = fall_record.samples_of(rec)
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    # the person stage's looks ~0.52 s apart, and 0.2 s apart only while the watch is open
    assert any(g > 0.45 for g in gaps) and any(g < 0.25 for g in gaps)
    assert 0 < rec.stats.tracked_looks < rec.stats.looks
    assert fall_record.variant("adaptive", FallRule(min_coverage=0.3)) == (
        ("look_s", 0.0),
        ("min_coverage", 0.3),
    )


def test_adaptive_recordings_take_the_grids_loosest_rule(scripts):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import evaluate_falls
    finally:
        sys.path.remove(str(REPO / "scripts"))
    grid = {"torso_deg": [30.0, 55.0], "low_height": [0.45, 0.6], "hold_s": [0.4, 0.8]}
    rule = evaluate_falls.loosest(grid)
    assert (rule.torso_deg, rule.low_height, rule.hold_s) == (30.0, 0.6, 0.8)
    assert rule.hip_drop == FallRule().hip_drop  # a field the grid does not offer: the default


def test_cached_recordings_are_keyed_by_the_pose_model_file(scripts, monkeypatch, tmp_path):
    """A recording made with another MoveNet (a quantised one, scripts/pose_model/) is never
    read back for this one: both caches' keys change with the pose model file's bytes."""
    fall_data, fall_record = scripts
    clip = fall_data.Clip(require(CLIP), "fall", "gmdcsa24/actor1", None)
    model = tmp_path / "pose_model.tflite"
    monkeypatch.setattr(fall_data, "POSE_FILE", model)
    keys = []
    for content in (b"float16 weights", b"int8 weights", b"float16 weights"):
        model.write_bytes(content)
        fall_data.pose_key.cache_clear()
        own = fall_record._key(clip, "own", (("look_s", 0.0),), PERSON_STAGE_S, "pose", FallRule())
        keys.append((fall_data._key(clip.path), own))
    fall_data.pose_key.cache_clear()
    assert keys[0] == keys[2]
    assert keys[0][0] != keys[1][0] and keys[0][1] != keys[1][1]
