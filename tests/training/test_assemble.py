"""Assembling one training folder from several: links, pieces of long clips, merged groups."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from har_daemon.core.errors import DataError
from har_daemon.tools.media import make_test_video
from har_daemon.training.assemble import (
    plan_entries,
    read_origins,
    segment_starts,
    write_dataset,
)
from har_daemon.training.dataset import grouped_kfold, scan_dataset
from har_daemon.video.frames import probe_video


def test_segment_starts_fit_whole_pieces_spread_over_the_clip() -> None:
    assert segment_starts(1.9, 2.0) == []  # shorter than one piece: nothing
    assert segment_starts(2.0, 2.0) == [0.0]
    assert segment_starts(5.5, 2.0) == [0.0, 2.0]  # the 1.5 s rest is dropped
    assert segment_starts(16.0, 2.0, max_pieces=3) == [0.0, 8.0, 14.0]  # first, middle, last
    assert segment_starts(16.0, 2.0, max_pieces=100) == [2.0 * i for i in range(8)]
    with pytest.raises(ValueError):
        segment_starts(4.0, 0.0)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fight-like set (short clips, stems in sources.csv) and a falls-like one (long clips,
    paths in sources.csv), as the shared data has them."""
    root = tmp_path_factory.mktemp("sources")
    fight = root / "fight-set"
    for name, label in (("fi1", "fight"), ("fi2", "fight"), ("no1", "noFight"), ("no2", "noFight")):
        make_test_video(fight / label / f"{name}.mp4", 1.0, fps=10, size=(64, 48))
    (fight / "sources.csv").write_text(
        "clip,label,source\nfi1,fight,ytA\nfi2,fight,ytB\nno1,noFight,ytA\nno2,noFight,ytC\n"
    )
    falls = root / "falls-set"
    make_test_video(falls / "adl" / "walk.mp4", 5.0, fps=10, size=(64, 48))
    make_test_video(falls / "adl" / "sit.mp4", 1.5, fps=10, size=(64, 48))
    (falls / "sources.csv").write_text(
        "clip,label,source\nadl/walk.mp4,adl,actor1\nadl/sit.mp4,adl,actor2\n"
    )
    return fight, falls


def test_sources_csv_may_name_clips_by_path(sources: tuple[Path, Path]) -> None:
    _, falls = sources
    assert {r.path.name: r.group for r in scan_dataset(falls)} == {
        "sit.mp4": "actor2",
        "walk.mp4": "actor1",
    }


def test_assembled_folder_links_short_clips_cuts_long_ones_and_keeps_groups(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    fight, falls = sources
    entries = plan_entries(fight, classes=["fight", "noFight"])
    entries += plan_entries(falls, label="noFight", prefix="falls-", segment_s=2.0)
    out = tmp_path / "assembled"
    write_dataset(out, entries)

    records = scan_dataset(out, ["fight", "noFight"])
    names = {r.path.name: r for r in records}
    assert set(names) == {
        "fi1.mp4",
        "fi2.mp4",
        "no1.mp4",
        "no2.mp4",
        "falls-sit.mp4",  # 1.5 s: kept whole, a link
        "falls-walk-p00.mp4",  # 5 s: two 2 s pieces
        "falls-walk-p01.mp4",
    }
    assert names["fi1.mp4"].path.is_symlink()
    assert names["fi1.mp4"].path.resolve() == (fight / "fight" / "fi1.mp4").resolve()
    assert names["falls-sit.mp4"].path.is_symlink()
    piece = names["falls-walk-p01.mp4"].path
    assert not piece.is_symlink()
    assert probe_video(piece, exact=True).frame_count == 20  # 2 s at 10 fps, frame-accurate
    # Every clip keeps its source group; both pieces of one recording share it.
    assert {n: r.group for n, r in names.items()} == {
        "fi1.mp4": "ytA",
        "fi2.mp4": "ytB",
        "no1.mp4": "ytA",
        "no2.mp4": "ytC",
        "falls-sit.mp4": "actor2",
        "falls-walk-p00.mp4": "actor1",
        "falls-walk-p01.mp4": "actor1",
    }
    for train, test in grouped_kfold(records, k=2):
        assert not {r.group for r in train} & {r.group for r in test}
    origins = read_origins(out)
    assert origins["falls-walk-p01"] == ((falls / "adl" / "walk.mp4").resolve(), 2.0, 4.0)
    assert origins["fi1"][1:] == (None, None)
    with (out / "sources.csv").open() as f:
        assert next(csv.reader(f)) == ["clip", "label", "source", "origin", "start_s", "end_s"]


def test_assembly_refuses_a_git_checkout_and_a_non_empty_folder(
    sources: tuple[Path, Path], tmp_path: Path
) -> None:
    fight, _ = sources
    entries = plan_entries(fight, classes=["fight", "noFight"])
    checkout = tmp_path / "repo"
    (checkout / ".git").mkdir(parents=True)
    with pytest.raises(DataError, match="git checkout"):
        write_dataset(checkout / "data", entries)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    with pytest.raises(DataError, match="not empty"):
        write_dataset(busy, entries)
    with pytest.raises(DataError, match="same name"):
        write_dataset(tmp_path / "twice", entries + entries)
