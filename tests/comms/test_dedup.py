"""comms.dedup: which (camera, seq) to print, and the state file that remembers it."""

from __future__ import annotations

import json
import os
import re
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


def test_limits_are_checked_and_high_is_reported() -> None:
    for window, max_cameras in ((0, 5), (5, 0)):
        with pytest.raises(ValueError, match="^window and max_cameras must be >= 1$"):
            SeqDedup(window=window, max_cameras=max_cameras)
    d = SeqDedup(window=1, max_cameras=1)  # the smallest allowed
    assert d.high("c") is None
    feed(d, "c", [3, 7])
    assert d.high("c") == 7 and d.high("other") is None
    assert d.to_json() == {"version": 1, "window": 1, "cameras": {"c": {"high": 7, "missing": []}}}


def test_gaps_that_fall_out_of_the_window_are_forgotten() -> None:
    d = SeqDedup(window=10)
    feed(d, "c", [1, 11])  # 2..10 missing
    feed(d, "c", [20])  # 10 is now `window` below high: outside, forgotten
    assert d.to_json()["cameras"]["c"]["missing"] == list(range(12, 20))
    assert d.check("c", 10) is RESTARTED


def test_a_loaded_state_keeps_only_gaps_inside_its_window() -> None:
    doc = {
        "version": 1,
        "cameras": {"c": {"high": 20, "missing": [10, 11, 20, 25]}, "d": {"high": 4}},
    }
    d = SeqDedup.from_json(doc, window=10, max_cameras=2)
    assert d.to_json()["cameras"] == {
        "c": {"high": 20, "missing": [11]},
        "d": {"high": 4, "missing": []},  # no "missing": no gaps
    }
    feed(d, "e", [1])  # a third camera: the least recently heard goes
    assert list(d.to_json()["cameras"]) == ["d", "e"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([1, 2], 'no "version": 1'),
        ({"version": 2, "cameras": {}}, 'no "version": 1'),
        ({"version": 1}, "no 'cameras' object"),
        ({"version": 1, "cameras": {"c": {"missing": []}}}, "bad camera entry: 'high'"),
    ],
)
def test_what_is_not_a_state_says_why(doc: object, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        SeqDedup.from_json(doc)


def test_save_writes_a_hidden_temporary_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary lies in the state's own folder (a rename is atomic only within one file
    system), named after the state so a leftover says what it was."""
    path = tmp_path / "events.json"
    renamed: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renamed.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    StateFile(path).save(SeqDedup())
    [(src, dst)] = renamed
    assert dst == path and src.parent == tmp_path and src.name.startswith(".events.json.")


def test_a_failed_save_leaves_no_temporary_and_raises_its_error(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.mkdir()  # the rename over it fails (as root too)
    (path / "keep").write_text("x")
    with pytest.raises(OSError):
        StateFile(path).save(SeqDedup())
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]
