"""Pretrained appearance fusion changes the daemon's fight score by its rule, on real footage.

The first 8 s of the real school-gym camera (MEVA, quiet footage: nobody fights; the fight
model alerts on people walking past each other there, docs/calibration.md) replayed through the
daemon's own path with the shipped fight model and the bundled models/fight_pretrained, with
an alert on the first window at or over 0.5 (min_windows 1), so each window's score shows.
Every scored region window carries both signals' scores, and the score the tracker got is
theirs by `pretrained_rule`: "min" never above either, "max" never below, "mean" between.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from har_daemon.offline.replay import Replay
from tests.offline.test_fight_pose_fusion import _replay, _starts, gym_clip  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


def _alarming(r: Replay) -> int:
    """Windows whose fight score (after fusion) reached the alert threshold."""
    return sum(float(w.probs[0]) >= 0.5 for w in r.windows)


@pytest.fixture(scope="module")
def off(gym_clip: Path) -> Replay:  # noqa: F811
    return _replay(gym_clip, pretrained_fusion=False)


def test_min_never_raises_the_score_and_vetoes_an_alert(gym_clip: Path, off: Replay) -> None:  # noqa: F811
    fused = _replay(gym_clip, pretrained_fusion=True, pretrained_rule="min")
    assert _starts(off), "the fight model raises something on this footage"
    signals = [w.signal for w in fused.windows]
    assert signals and all(s is not None and s.used == "pretrained" for s in signals)
    for w in fused.windows:
        s = w.signal
        assert s is not None and s.pretrained is not None
        assert w.probs[0] == pytest.approx(min(s.appearance, s.pretrained), abs=1e-6)
        assert w.probs[0] <= s.appearance + 1e-6 and w.probs.sum() == pytest.approx(1.0)
    # The pretrained head disagrees: some windows the fight model called a fight, it did not.
    vetoed = [w for w in fused.windows if w.signal.appearance >= 0.5 > w.signal.pretrained]
    assert vetoed
    # Stats count the windows it scored; overlapping windows embed each new frame once.
    scored = fused.counters["pretrained_windows"]
    regions = sum(len(w.regions) for w in fused.windows)
    assert scored == regions and len(fused.windows) <= scored
    assert 0 < fused.counters["pretrained_embedded"] < scored * 20
    assert "pretrained_windows" not in off.counters
    assert _alarming(fused) < _alarming(off)


def test_max_never_lowers_the_score_and_mean_lies_between(
    gym_clip: Path,  # noqa: F811
    off: Replay,
) -> None:
    fused = _replay(gym_clip, pretrained_fusion=True, pretrained_rule="max")
    # The same windows at the same times: fusion changes scores, not what is scored.
    assert [w.window_end for w in fused.windows] == [w.window_end for w in off.windows]
    for w in fused.windows:
        s = w.signal
        assert s is not None and s.pretrained is not None
        assert w.probs[0] == pytest.approx(max(s.appearance, s.pretrained), abs=1e-6)
    raised = [w for w in fused.windows if w.signal.pretrained > w.signal.appearance]
    assert raised, "max takes the pretrained head's score where it is the higher"
    assert _alarming(fused) >= _alarming(off)
    # Its events say which signal spoke and give both scores.
    start = next(e for e in fused.events() if e["type"] == "start")
    assert start["signal"] == "pretrained" and start["appearance_score"] >= 0
    assert 0.5 <= max(start["pretrained_score"], start["appearance_score"]) <= 1
    mean = _replay(gym_clip, pretrained_fusion=True, pretrained_rule="mean")
    for w in mean.windows:
        s = w.signal
        assert w.probs[0] == pytest.approx((s.appearance + s.pretrained) / 2, abs=1e-6)


def test_with_pose_fusion_too_each_signal_keeps_its_own_score(gym_clip: Path) -> None:  # noqa: F811
    both = _replay(gym_clip, pretrained_fusion=True, pretrained_rule="max", pose_fusion=True)
    pose = [w for w in both.windows if w.signal is not None and w.signal.used == "pose"]
    assert pose, "pose is trusted on some of the gym's windows"
    for w in both.windows:
        s = w.signal
        assert s is not None and s.pretrained is not None
        fused = max(s.appearance, s.pretrained)  # the appearance score pose fusion saw
        if s.used == "pose":  # pose_rule "min" (config.example.toml) over the fused score
            assert s.pose is not None
            assert w.probs[0] == pytest.approx(min(fused, s.pose), abs=1e-6)
        else:  # pose did not speak: the fight model and the pretrained head did
            assert s.used == "pretrained"
            assert w.probs[0] == pytest.approx(fused, abs=1e-6)
    # The appearance score in the reason is the fight model's own, as without pose fusion.
    alone = {
        w.window_end: w.signal
        for w in _replay(gym_clip, pretrained_fusion=True, pretrained_rule="max").windows
    }
    for w in pose:
        own = alone[w.window_end]
        assert own is not None and len(w.regions) == 1
        assert (w.signal.appearance, w.signal.pretrained) == (own.appearance, own.pretrained)
    start = next(e for e in both.events() if e["type"] == "start")
    assert {"appearance_score", "pose_score", "pretrained_score"} <= set(start)
