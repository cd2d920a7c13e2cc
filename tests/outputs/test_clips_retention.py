"""The clip budget's decisions, on lists of clips (no files), then once on a real directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from har_daemon.outputs.clips import retention
from har_daemon.outputs.clips.retention import ClipFile, expired, over_budget

NOW = 1_700_000_000.0


def _clips(*sizes_and_ages: tuple[int, float]) -> list[ClipFile]:
    clips = [
        ClipFile(NOW - age, size, Path(f"c{i}.mp4")) for i, (size, age) in enumerate(sizes_and_ages)
    ]
    return sorted(clips)


def test_expired_spares_keep_and_young_clips() -> None:
    clips = _clips((1, 300), (1, 200), (1, 100))
    assert [c.path.name for c in expired(clips, NOW, 150, keep=None)] == ["c0.mp4", "c1.mp4"]
    assert [c.path.name for c in expired(clips, NOW, 150, keep=Path("c0.mp4"))] == ["c1.mp4"]
    assert expired(clips, NOW, 300, keep=None) == []  # older than, not as old as


def test_over_budget_deletes_oldest_first_until_within() -> None:
    clips = _clips((400, 30), (400, 20), (400, 10))
    assert [c.path.name for c in over_budget(clips, 800, protected=())] == ["c0.mp4"]
    assert [c.path.name for c in over_budget(clips, 400, protected=())] == ["c0.mp4", "c1.mp4"]
    assert over_budget(clips, 1200, protected=()) == []


def test_over_budget_never_takes_the_newest_nor_a_protected_clip() -> None:
    clips = _clips((400, 30), (400, 20), (5000, 10))
    assert [c.path.name for c in over_budget(clips, 100, protected=())] == ["c0.mp4", "c1.mp4"]
    protected = {Path("c0.mp4")}
    assert [c.path.name for c in over_budget(clips, 100, protected=protected)] == ["c1.mp4"]
    assert over_budget(clips[-1:], 1, protected=()) == []
    assert over_budget([], 1, protected=()) == []


def test_prune_goes_on_past_a_clip_it_cannot_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clip that cannot be deleted still counts: the next oldest goes in its place."""
    paths = []
    for i, age in enumerate((300, 200, 100)):
        path = tmp_path / f"c{i}.mp4"
        path.write_bytes(b"\0" * 1000)
        os.utime(path, (NOW - age, NOW - age))
        paths.append(path)
    (tmp_path / "notes.txt").write_bytes(b"\0" * 10_000)  # not a clip: neither counted nor deleted
    real_delete = retention._delete
    monkeypatch.setattr(
        retention,
        "_delete",
        lambda clip, *a, **kw: clip.path != paths[0] and real_delete(clip, *a, **kw),
    )
    deleted = retention.prune(tmp_path, max_bytes=1500, max_age_s=86400, now=NOW, keep=None)
    assert deleted == [paths[1]]
    assert paths[0].exists() and paths[2].exists() and (tmp_path / "notes.txt").exists()
    monkeypatch.undo()
    assert retention.prune(tmp_path, max_bytes=1500, max_age_s=250, now=NOW) == [paths[0]]
