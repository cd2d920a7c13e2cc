"""comms.dedup: which (camera, seq) to print, and the state file that remembers it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from har_daemon.comms.dedup import WINDOW, SeqDedup, StateFile, Verdict

NEW, DUP, RESTARTED = Verdict.NEW, Verdict.DUPLICATE, Verdict.RESTARTED


def feed(dedup: SeqDedup, camera: str, seqs: list[int]) -> list[Verdict]:
    """Check each seq and record the ones to print, as the consumer does."""
    out = []
    for seq in seqs:
        verdict = dedup.check(camera, seq)
        if verdict is not DUP:
            dedup.record(camera, seq)
        out.append(verdict)
    return out


def test_duplicates_dropped_gaps_filled_cameras_apart() -> None:
    d = SeqDedup()
    assert feed(d, "har/a", [1, 2, 2, 3, 1]) == [NEW, NEW, DUP, NEW, DUP]
    assert feed(d, "har/b", [1, 2]) == [NEW, NEW]  # another camera, its own numbers
    # A gap (a share of the camera's events went to another consumer, or the spool dropped
    # some): the missing seqs are still new when they come, once.
    assert feed(d, "har/a", [7, 5, 5, 4, 6, 7]) == [NEW, NEW, DUP, NEW, NEW, DUP]
    assert d.check("har/a", 8) is NEW and d.check("har/a", 8) is NEW  # check changes nothing


def test_window_bounds_memory_and_restart_is_printed() -> None:
    d = SeqDedup(window=10)
    feed(d, "c", [1, 20])  # 11..19 missing (what lies inside the window), 2..10 forgotten
    assert d.to_json()["cameras"]["c"] == {"high": 20, "missing": list(range(11, 20))}
    assert feed(d, "c", [15, 15, 11]) == [NEW, DUP, NEW]
    # Far below the window: the camera's numbering began again (its spool was lost).
    assert feed(d, "c", [1, 2, 2]) == [RESTARTED, NEW, DUP]
    every_other = SeqDedup(window=WINDOW)
    feed(every_other, "c", list(range(1, 10 * WINDOW, 2)))
    assert len(every_other.to_json()["cameras"]["c"]["missing"]) <= WINDOW // 2


def test_least_recently_heard_cameras_go_first() -> None:
    d = SeqDedup(max_cameras=2)
    for camera, seq in (("a", 1), ("b", 1), ("a", 2), ("c", 1)):
        feed(d, camera, [seq])
    assert list(d.to_json()["cameras"]) == ["a", "c"]


def test_state_file_round_trip_and_refusals(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "events.json")
    assert state.load().to_json()["cameras"] == {}  # no file yet: a fresh state
    d = SeqDedup()
    feed(d, "har/a", [1, 2, 5])
    state.save(d)
    again = state.load()
    assert again.to_json() == d.to_json()
    assert feed(again, "har/a", [2, 4, 4]) == [DUP, NEW, DUP]
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]  # no temporary left over

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"something": "else"}))
    with pytest.raises(ValueError, match="not a har-daemon events state file"):
        StateFile(other).load()
    assert json.loads(other.read_text()) == {"something": "else"}  # never overwritten
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OSError):
            StateFile(locked / "s.json").save(d)
