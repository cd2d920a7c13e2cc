"""comms.dedup: which (camera, seq) to print, and the state file that remembers it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from har_daemon.comms.dedup import WINDOW, SeqDedup, StateFile, Verdict
from tests.infra.mounts import unwritable_dir

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
    with unwritable_dir(tmp_path / "locked") as locked, pytest.raises(OSError):
        StateFile(locked / "s.json").save(d)


def test_window_edge_duplicate_inside_restart_at_the_edge() -> None:
    """With window 10 and high 20, seqs 11..19 are remembered (a re-send: dropped); 10 lies
    `window` below high, outside what is remembered: the camera's numbering began again."""
    d = SeqDedup(window=10)
    feed(d, "c", list(range(1, 21)))
    assert d.check("c", 11) is DUP
    assert d.check("c", 10) is RESTARTED
    restored = SeqDedup.from_json(d.to_json(), window=10)
    assert (restored.check("c", 11), restored.check("c", 10)) == (DUP, RESTARTED)


def test_a_state_path_that_cannot_be_read_is_an_error_not_a_fresh_state(tmp_path: Path) -> None:
    """Only a missing file is a fresh state: a folder where the file should be must not
    silently forget every camera's numbers (as root too)."""
    folder = tmp_path / "events.json"
    folder.mkdir()
    with pytest.raises(OSError):
        StateFile(folder).load()


def test_save_syncs_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash right after `save` must find the new state: its bytes synced before the rename
    makes them the file, the folder synced after it (the rename itself). Spied on `os.fsync`,
    which still syncs."""
    path = tmp_path / "events.json"
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            synced.append("folder" if os.path.samestat(st, os.stat(tmp_path)) else "other dir")
        else:
            synced.append("renamed file" if os.path.samestat(st, os.stat(path)) else "new file")
        real_fsync(fd)

    d = SeqDedup()
    feed(d, "c", [1])
    StateFile(path).save(d)  # the file exists from here on: the spy can tell old from new
    monkeypatch.setattr(os, "fsync", spy)
    feed(d, "c", [2])
    StateFile(path).save(d)
    assert synced == ["new file", "folder"]
    assert StateFile(path).load().to_json() == d.to_json()
