"""comms.dedup: which (camera, seq, content) to print, and the state file that remembers it."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from har_daemon.comms.dedup import WINDOW, SeqDedup, StateFile, Verdict, canonical, digest
from tests.infra.mounts import unwritable_dir

NEW, DUP, REUSED = Verdict.NEW, Verdict.DUPLICATE, Verdict.REUSED


def ev(seq: int, tag: str = "real") -> tuple[int, bytes]:
    return seq, json.dumps({"seq": seq, "id": f"{tag}-{seq}"}).encode()


def feed(dedup: SeqDedup, camera: str, events: list[tuple[int, bytes]]) -> list[Verdict]:
    """Check each event and record the ones to print, as the consumer does."""
    out = []
    for seq, payload in events:
        verdict = dedup.check(camera, seq, payload)
        if verdict is not DUP:
            dedup.record(camera, seq, payload)
        out.append(verdict)
    return out


def test_duplicates_dropped_gaps_filled_cameras_apart() -> None:
    d = SeqDedup()
    assert feed(d, "har/a", [ev(1), ev(2), ev(2), ev(3), ev(1)]) == [NEW, NEW, DUP, NEW, DUP]
    assert feed(d, "har/b", [ev(1), ev(2)]) == [NEW, NEW]  # another camera, its own numbers
    # A gap (a share of the camera's events went to another consumer, or the spool dropped
    # some): the missing seqs are still new when they come, once.
    assert feed(d, "har/a", [ev(7), ev(5), ev(5), ev(4), ev(6), ev(7)]) == [
        NEW, NEW, DUP, NEW, NEW, DUP,
    ]  # fmt: skip
    assert d.check("har/a", *ev(8)) is NEW and d.check("har/a", *ev(8)) is NEW  # no change


def test_a_forged_seq_hides_no_real_event() -> None:
    """Issue 21 item 5: real 1-3, forged 4-53, real 4-10: every real event is printed."""
    d = SeqDedup()
    real = [ev(s) for s in range(1, 11)]
    forged = [ev(s, "forged") for s in range(4, 54)]
    verdicts = feed(d, "har/a", real[:3] + forged + real[3:])
    assert verdicts[-7:] == [REUSED] * 7
    assert feed(d, "har/a", real) == [DUP] * 10  # their re-sends are still dropped
    # A camera whose numbering began again (its spool lost) is printed as it comes.
    assert feed(d, "har/a", [ev(1, "again"), ev(1, "again")]) == [REUSED, DUP]


def test_last_seq_is_the_one_printed_last_not_the_highest() -> None:
    """What the consumer's reorder starts from after a restart."""
    d = SeqDedup()
    assert d.last_seq("har/a") is None
    feed(d, "har/a", [ev(3), ev(9), ev(5)])
    assert d.last_seq("har/a") == 5
    feed(d, "har/a", [ev(9)])  # a duplicate changes nothing
    assert d.last_seq("har/a") == 5 and d.last_seq("har/b") is None
    d2 = SeqDedup.from_json(d.to_json())
    assert d2.last_seq("har/a") == 5


def test_window_bounds_memory() -> None:
    d = SeqDedup(window=10)
    feed(d, "c", [ev(s) for s in range(1, 31)])
    assert len(d.to_json()["cameras"]["c"]) == 10
    assert feed(d, "c", [ev(25), ev(20)]) == [DUP, NEW]  # 20 left the window: printed again
    big = SeqDedup()
    feed(big, "c", [ev(s) for s in range(1, 4 * WINDOW)])
    assert len(big.to_json()["cameras"]["c"]) == WINDOW


def test_least_recently_heard_cameras_go_first() -> None:
    d = SeqDedup(max_cameras=2)
    for camera, seq in (("a", 1), ("b", 1), ("a", 2), ("c", 1)):
        feed(d, camera, [ev(seq)])
    assert list(d.to_json()["cameras"]) == ["a", "c"]


def test_state_file_round_trip_and_refusals(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "events.json")
    assert state.load().to_json()["cameras"] == {}  # no file yet: a fresh state
    d = SeqDedup()
    feed(d, "har/a", [ev(1), ev(2), ev(5)])
    state.save(d)
    again = state.load()
    assert again.to_json() == d.to_json()
    assert feed(again, "har/a", [ev(2), ev(4), ev(4)]) == [DUP, NEW, DUP]
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]  # no temporary left over

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"something": "else"}))
    with pytest.raises(ValueError, match="not a har-daemon events state file"):
        StateFile(other).load()
    assert json.loads(other.read_text()) == {"something": "else"}  # never overwritten
    bad_seq = tmp_path / "bad.json"
    for doc in ({"version": 2, "cameras": {"a": [[1e400, digest(b"x")]]}}, {"high": 1e400}):
        bad_seq.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=f"{bad_seq} is not a har-daemon events state"):
            StateFile(bad_seq).load()
    bad_seq.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match=f"{bad_seq} is not a har-daemon events state"):
        StateFile(bad_seq).load()
    with unwritable_dir(tmp_path / "locked") as locked, pytest.raises(OSError):
        StateFile(locked / "s.json").save(d)


def test_a_state_path_that_cannot_be_read_is_an_error_not_a_fresh_state(tmp_path: Path) -> None:
    """Only a missing file is a fresh state: a folder where the file should be must not
    silently forget every camera's events (as root too)."""
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
    feed(d, "c", [ev(1)])
    StateFile(path).save(d)  # the file exists from here on: the spy can tell old from new
    monkeypatch.setattr(os, "fsync", spy)
    feed(d, "c", [ev(2)])
    StateFile(path).save(d)
    assert synced == ["new file", "folder"]
    assert StateFile(path).load().to_json() == d.to_json()


def test_version_1_state_is_migrated(tmp_path: Path) -> None:
    old = tmp_path / "v1.json"
    old.write_text(json.dumps({"version": 1, "window": 1000, "cameras": {"har/a": {"high": 9}}}))
    state = StateFile(old)
    d = state.load()
    assert feed(d, "har/a", [ev(10)]) == [NEW]
    state.save(d)
    assert json.loads(old.read_text())["version"] == 2


def test_content_is_compared_as_json_not_bytes() -> None:
    """A relay that re-encodes an event (spaces, key order) does not make a re-send new."""
    d = SeqDedup()
    doc = {"seq": 1, "id": "x", "confidence": 0.5}
    assert feed(d, "c", [(1, canonical(doc))]) == [NEW]
    spaced = json.loads(json.dumps(dict(reversed(doc.items())), indent=2))
    assert d.check("c", 1, canonical(spaced)) is DUP


def test_canonical_is_one_fixed_encoding() -> None:
    """The digests a state file keeps were taken of this encoding: a daemon upgraded between a
    send and its re-send must compute the same one (sorted keys, no spaces, UTF-8 as is)."""
    doc = {"b": [1, 2], "a": "café"}
    assert canonical(doc) == '{"a":"café","b":[1,2]}'.encode()
    assert canonical({"a": 1}) != canonical({"a": 2})


def test_limits_are_checked() -> None:
    for window, max_cameras in ((0, 5), (5, 0)):
        with pytest.raises(ValueError, match="^window and max_cameras must be >= 1$"):
            SeqDedup(window=window, max_cameras=max_cameras)
    d = SeqDedup(window=1, max_cameras=1)  # the smallest allowed
    assert feed(d, "c", [ev(1), ev(1), ev(2), ev(1)]) == [NEW, DUP, NEW, NEW]
    feed(d, "other", [ev(1)])
    assert d.to_json() == {"version": 2, "window": 1, "cameras": {"other": [[1, digest(ev(1)[1])]]}}


def test_a_loaded_state_keeps_its_limits() -> None:
    dig = digest(b"x")
    doc = {
        "version": 2,
        "cameras": {"a": [[1, dig]], "b": [[1, dig]], "c": [[s, dig] for s in (1, 2, 3)]},
    }
    d = SeqDedup.from_json(doc, window=2, max_cameras=2)
    assert d.to_json()["cameras"] == {"b": [[1, dig]], "c": [[2, dig], [3, dig]]}
    d.record("e", 1, b"x")  # a third camera: the least recently heard goes
    assert list(d.to_json()["cameras"]) == ["c", "e"]


def test_a_version_1_state_keeps_every_camera() -> None:
    doc = {"version": 1, "cameras": {"a": {"high": 9}, "b": {"high": 4}, "c": {"high": 1}}}
    assert SeqDedup.from_json(doc).to_json()["cameras"] == {"a": [], "b": [], "c": []}


LONG = list(range(30))


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([1, 2], 'no "version": 2'),
        ({"version": 3, "cameras": {}}, 'no "version": 2'),
        ({"version": 2}, "no 'cameras' object"),
        ({"version": 2, "cameras": {"a": {"1": "x"}}}, "bad camera entry 'a': not a list"),
        ({"version": 2, "cameras": {"a": [5]}}, "bad camera entry 'a': 5"),
        (
            {"version": 2, "cameras": {"a": [[1, "0" * 16, 2]]}},
            f"bad camera entry 'a': {[1, '0' * 16, 2]}",
        ),
        ({"version": 2, "cameras": {"a": ["ab"]}}, "bad camera entry 'a': ab"),
        ({"version": 2, "cameras": {"a": [LONG]}}, f"bad camera entry 'a': {str(LONG)[:40]}"),
        ({"version": 2, "cameras": {"a": [[True, "0" * 16]]}}, "bad seq in camera entry 'a': True"),
        ({"version": 2, "cameras": {"a": [["1", "0" * 16]]}}, "bad seq in camera entry 'a': 1"),
        (
            {"version": 2, "cameras": {"a": [[1e300 * 1e300, "0" * 16]]}},
            "bad seq in camera entry 'a': inf",
        ),
        (
            {"version": 2, "cameras": {"a": [["9" * 60, "0" * 16]]}},
            f"bad seq in camera entry 'a': {'9' * 40}",
        ),
        ({"version": 2, "cameras": {"a": [[1, "0" * 15]]}}, "bad digest in camera entry 'a'"),
        ({"version": 2, "cameras": {"a": [[1, 5]]}}, "bad digest in camera entry 'a'"),
    ],
)
def test_what_is_not_a_state_says_why(doc: object, reason: str) -> None:
    """Each refusal is a ValueError naming the camera and the bad entry (never a TypeError, which
    would end the subscriber with a traceback)."""
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
    with pytest.raises(IsADirectoryError):
        StateFile(path).save(SeqDedup())
    assert [p.name for p in tmp_path.iterdir()] == ["events.json"]
