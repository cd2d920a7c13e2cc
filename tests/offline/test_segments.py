"""har_daemon.offline.segments: merging windows into a non-overlapping activity timeline."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from har_daemon.offline.segments import Segment, segments_from_windows

NAMES = ["walk", "run", "fight"]


def _onehotish(labels: list[int], p: float = 0.8, k: int = 3) -> np.ndarray:
    """Rows with probability p on the given class and the rest spread evenly."""
    out = np.full((len(labels), k), (1.0 - p) / (k - 1))
    out[np.arange(len(labels)), labels] = p
    return out


def _tuples(segs: list[Segment]) -> list[tuple[float, float, str | None]]:
    return [(s.start_s, s.end_s, s.activity) for s in segs]


def test_merges_consecutive_same_argmax() -> None:
    segs = segments_from_windows([1, 2, 3, 4, 5], _onehotish([0, 0, 1, 1, 0]), NAMES)
    assert _tuples(segs) == [(1.0, 2.0, "walk"), (3.0, 4.0, "run"), (5.0, 5.0, "walk")]


def test_confidence_is_mean_of_segment_class_probability() -> None:
    probs = [
        [0.9, 0.1, 0.0],
        [0.5, 0.3, 0.2],  # walk, prob 0.5
        [0.1, 0.7, 0.2],
    ]
    segs = segments_from_windows([0.5, 1.0, 1.5], probs, NAMES)
    assert segs[0].activity == "walk"
    assert segs[0].confidence == pytest.approx((0.9 + 0.5) / 2)
    assert segs[1].activity == "run"
    assert segs[1].confidence == pytest.approx(0.7)


def test_window_span_sets_start_and_boundaries_do_not_overlap() -> None:
    # Windows 1.5 s long, one every 1 s: window i covers [t - 1.5, t].
    segs = segments_from_windows(
        [1, 2, 3, 4, 5], _onehotish([0, 0, 1, 1, 2]), NAMES, window_span_s=1.5
    )
    # first: max(0, 1 - 1.5) = 0 (clamped) .. 2
    # second: raw start 3 - 1.5 = 1.5 < previous end 2 -> starts at 2 .. 4
    # third: raw start 5 - 1.5 = 3.5 < previous end 4 -> starts at 4 .. 5
    assert _tuples(segs) == [(0.0, 2.0, "walk"), (2.0, 4.0, "run"), (4.0, 5.0, "fight")]


def test_window_span_without_overlap_leaves_gaps() -> None:
    # Windows 0.5 s long every 2 s: raw starts never reach the previous end.
    segs = segments_from_windows([2, 4, 6], _onehotish([0, 1, 1]), NAMES, window_span_s=0.5)
    assert _tuples(segs) == [(1.5, 2.0, "walk"), (3.5, 6.0, "run")]


def test_uncertain_windows_are_gaps_and_split_runs() -> None:
    probs = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.4, 0.35, 0.25],  # max 0.4 < 0.6 -> uncertain
            [0.8, 0.1, 0.1],
            [0.7, 0.2, 0.1],
        ]
    )
    segs = segments_from_windows([1, 2, 3, 4], probs, NAMES, min_confidence=0.6)
    assert _tuples(segs) == [(1.0, 1.0, "walk"), (3.0, 4.0, "walk")]
    assert segs[1].confidence == pytest.approx(0.75)

    kept = segments_from_windows(
        [1, 2, 3, 4], probs, NAMES, min_confidence=0.6, keep_uncertain=True
    )
    assert _tuples(kept) == [(1.0, 1.0, "walk"), (2.0, 2.0, None), (3.0, 4.0, "walk")]
    assert kept[1].confidence == pytest.approx(0.4)
    assert kept[1].to_dict()["activity"] is None


def test_min_confidence_is_inclusive() -> None:
    segs = segments_from_windows([1], [[0.6, 0.4, 0.0]], NAMES, min_confidence=0.6)
    assert _tuples(segs) == [(1.0, 1.0, "walk")]


def test_uncertain_gap_still_prevents_overlap() -> None:
    # walk at t=1,2; uncertain at t=3; run at t=4 with a 3 s span -> raw start 1 < walk's end 2.
    probs = np.vstack([_onehotish([0, 0]), [[0.34, 0.33, 0.33]], _onehotish([1])])
    segs = segments_from_windows([1, 2, 3, 4], probs, NAMES, min_confidence=0.5, window_span_s=3.0)
    assert _tuples(segs) == [(0.0, 2.0, "walk"), (2.0, 4.0, "run")]


def test_all_uncertain_and_empty_give_no_segments() -> None:
    assert segments_from_windows([1, 2], np.full((2, 3), 1 / 3), NAMES, min_confidence=0.5) == []
    assert segments_from_windows([], np.zeros((0, 3)), NAMES) == []
    assert segments_from_windows([], [], NAMES) == []


def test_ties_go_to_lowest_index() -> None:
    segs = segments_from_windows([1], [[0.1, 0.45, 0.45]], NAMES)
    assert segs[0].activity == "run"


def test_to_dict_rounds_and_serialises() -> None:
    seg = Segment(start_s=1.23456, end_s=2.0004, activity="fight", confidence=0.876543)
    d = seg.to_dict()
    assert d == {"start_s": 1.235, "end_s": 2.0, "activity": "fight", "confidence": 0.877}
    assert list(d) == ["start_s", "end_s", "activity", "confidence"]
    assert all(type(d[k]) is float for k in ("start_s", "end_s", "confidence"))
    assert json.loads(json.dumps(d)) == d
    assert seg.duration_s == pytest.approx(2.0004 - 1.23456)


def test_numpy_scalars_become_plain_floats() -> None:
    segs = segments_from_windows(np.array([0.5, 1.0]), _onehotish([2, 2]), NAMES)
    d = segs[0].to_dict()
    assert all(type(d[k]) is float for k in ("start_s", "end_s", "confidence"))
    json.dumps([s.to_dict() for s in segs])


@pytest.mark.parametrize(
    ("times", "probs", "kwargs", "message"),
    [
        ([1, 2], np.zeros((3, 3)), {}, "shape"),
        ([1, 2], np.zeros((2, 2)), {}, "class"),
        ([2, 1], np.zeros((2, 3)), {}, "increasing"),
        ([1, 1], np.zeros((2, 3)), {}, "increasing"),
        ([-1, 1], np.zeros((2, 3)), {}, ">= 0"),
        ([1, float("nan")], np.zeros((2, 3)), {}, "finite"),
        ([1, 2], np.zeros((2, 3)), {"window_span_s": -1.0}, "window_span_s"),
        ([1, 2], np.zeros((2, 3)), {"min_confidence": 1.5}, "min_confidence"),
        ([], np.zeros((1, 3)), {}, "zero windows"),
    ],
)
def test_invalid_input_raises(times: list, probs: np.ndarray, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        segments_from_windows(times, probs, NAMES, **kwargs)


@pytest.mark.parametrize("seed", range(50))
def test_random_timelines_are_consistent(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    stride = float(rng.uniform(0.1, 1.0))
    times = np.cumsum(np.full(n, stride)) + float(rng.uniform(0, 2))
    # Sticky labels so that runs form.
    labels = [int(rng.integers(3))]
    for _ in range(n - 1):
        labels.append(labels[-1] if rng.random() < 0.7 else int(rng.integers(3)))
    probs = rng.dirichlet(np.ones(3) * 0.5, size=n)
    for i, lab in enumerate(labels):  # make the label the argmax
        probs[i, [lab, int(np.argmax(probs[i]))]] = probs[i, [int(np.argmax(probs[i])), lab]]
    span = float(rng.uniform(0, 3))
    min_conf = float(rng.uniform(0, 0.7))

    segs = segments_from_windows(times, probs, NAMES, min_conf, span)

    for s in segs:
        assert 0.0 <= s.start_s <= s.end_s
        assert s.activity in NAMES
        assert 0.0 <= s.confidence <= 1.0
    for a, b in itertools.pairwise(segs):
        assert a.end_s <= b.start_s  # ordered, never overlapping
    # Every confident window's time lies in a segment of its argmax class (it may also touch
    # the start of the next segment, which begins exactly where this one ends).
    confident = probs.max(axis=1) >= min_conf
    for t, p, ok in zip(times, probs, confident, strict=True):
        holders = [s for s in segs if s.start_s <= t <= s.end_s]
        if ok:
            assert any(s.activity == NAMES[int(np.argmax(p))] for s in holders)
    # Number of segments equals the number of confident runs.
    runs = 0
    prev = None
    for p, ok in zip(probs, confident, strict=True):
        lab = int(np.argmax(p)) if ok else None
        if lab is not None and lab != prev:
            runs += 1
        prev = lab
    assert len(segs) == runs
