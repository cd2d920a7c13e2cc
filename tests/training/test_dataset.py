"""Dataset scanning, leak-free splits, and cached parallel frame extraction."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import structlog

from har_daemon.core.errors import DataError
from har_daemon.training import extraction
from har_daemon.training.dataset import (
    ClipRecord,
    group_split,
    grouped_kfold,
    random_split,
    scan_dataset,
)
from har_daemon.training.extraction import build_arrays, median_spacing_s
from har_daemon.training.synth import generate_dataset
from tests.shared_data import FIGHT_DATA, require

# --- scanning (file contents are never read: empty files do) ---------------------------------


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_scan_parses_ucf50_groups(tmp_path: Path) -> None:
    for cls in ("Swing", "Biking"):
        for g, c in itertools.product((1, 8), (1, 2)):
            _touch(tmp_path / cls / f"v_{cls}_g{g:02d}_c{c:02d}.avi")
    _touch(tmp_path / "Biking" / "readme.txt")  # not a video: ignored
    _touch(tmp_path / "Biking" / "v_Biking_g08_c03.MP4")  # suffix case does not matter
    recs = scan_dataset(tmp_path)
    assert [r.label for r in recs] == ["Biking"] * 5 + ["Swing"] * 4  # sorted folders
    assert [r.path.name for r in recs[:5]] == [
        "v_Biking_g01_c01.avi",
        "v_Biking_g01_c02.avi",
        "v_Biking_g08_c01.avi",
        "v_Biking_g08_c02.avi",
        "v_Biking_g08_c03.MP4",
    ]
    assert [r.group for r in recs[:5]] == ["g01", "g01", "g08", "g08", "g08"]
    assert scan_dataset(tmp_path) == recs  # deterministic
    # Requested classes come back in the requested order.
    assert next(r.label for r in scan_dataset(tmp_path, ["Swing", "Biking"])) == "Swing"
    assert {r.label for r in scan_dataset(tmp_path, ["Swing"])} == {"Swing"}


def test_scan_takes_groups_from_sources_csv(tmp_path: Path) -> None:
    for name in ("fi001", "fi002", "fi003"):
        _touch(tmp_path / "fight" / f"{name}.mp4")
    for name in ("nofi001", "nofi002"):
        _touch(tmp_path / "noFight" / f"{name}.mp4")
    (tmp_path / "sources.csv").write_text(
        "clip,label,source\nfi001,fight,yt00\nfi002,fight,yt00\nfi003,fight,yt07\n"
        "nofi001,noFight,yt07\n"
    )
    groups = {r.path.stem: r.group for r in scan_dataset(tmp_path)}
    # nofi002 is not listed: it is its own group.
    assert groups == {
        "fi001": "yt00",
        "fi002": "yt00",
        "fi003": "yt07",
        "nofi001": "yt07",
        "nofi002": "noFight/nofi002",
    }


def test_scan_without_group_information_makes_each_clip_a_group(tmp_path: Path) -> None:
    _touch(tmp_path / "a" / "clip1.mkv")
    _touch(tmp_path / "b" / "clip1.webm")
    recs = scan_dataset(tmp_path)
    assert [(r.label, r.group) for r in recs] == [("a", "a/clip1"), ("b", "b/clip1")]


def test_scan_real_surveillance_set() -> None:
    root = require(FIGHT_DATA)
    recs = scan_dataset(root)
    assert Counter(r.label for r in recs) == {"fight": 124, "noFight": 118}
    assert all(r.group.startswith(("yt", "ds-")) for r in recs)
    train, test = group_split(recs, 0.2, seed=0)
    assert not {r.group for r in train} & {r.group for r in test}
    assert {r.label for r in test} == {"fight", "noFight"}
    assert 0.15 <= len(test) / len(recs) <= 0.25


def test_scan_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found") as err:
        scan_dataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)
    with pytest.raises(DataError, match="no class folders"):
        scan_dataset(tmp_path)
    _touch(tmp_path / "Swing" / "v_Swing_g01_c01.avi")
    (tmp_path / "Biking").mkdir()
    with pytest.raises(DataError, match=r"'HorseRace' not found; available: Biking, Swing"):
        scan_dataset(tmp_path, ["Swing", "HorseRace"])
    with pytest.raises(DataError, match=r"Biking: no video clips"):
        scan_dataset(tmp_path)
    (tmp_path / "Biking").rmdir()
    (tmp_path / "sources.csv").write_text("name,where\nx,y\n")
    with pytest.raises(DataError, match="sources.csv: header"):
        scan_dataset(tmp_path)


# --- splits -----------------------------------------------------------------------------------


def _ucf_like(n_groups: int = 6, classes: int = 4, seed: int = 0) -> list[ClipRecord]:
    """Every group has every class, with 2 to 6 clips each (UCF50-like)."""
    rng = np.random.default_rng(seed)
    recs = []
    for c in range(classes):
        for g in range(1, n_groups + 1):
            for k in range(int(rng.integers(2, 7))):
                recs.append(
                    ClipRecord(Path(f"C{c}/v_C{c}_g{g:02d}_c{k:02d}.avi"), f"C{c}", f"g{g:02d}")
                )
    return recs


def _source_like(seed: int = 0) -> list[ClipRecord]:
    """Sources mostly of one class, of very different sizes, some shared (surveillance-like)."""
    rng = np.random.default_rng(seed)
    recs = []
    for s in range(25):
        size = int(rng.integers(1, 15))
        labels = ["fight", "noFight"] if s % 7 == 0 else [["fight", "noFight"][s % 2]]
        for k in range(size):
            label = labels[k % len(labels)]
            recs.append(ClipRecord(Path(f"{label}/s{s}_{k}.mp4"), label, f"src{s:02d}"))
    return recs


def _check_split(recs: list[ClipRecord], train: list[ClipRecord], test: list[ClipRecord]) -> None:
    assert sorted(train + test) == sorted(recs)
    assert not set(train) & set(test)
    assert not {r.group for r in train} & {r.group for r in test}, "a group straddles the split"
    for label in {r.label for r in recs}:
        groups = {r.group for r in recs if r.label == label}
        assert any(r.label == label for r in train), f"{label} missing from train"
        if len(groups) >= 2:
            assert any(r.label == label for r in test), f"{label} missing from test"


@pytest.mark.parametrize("seed", range(40))
def test_group_split_never_puts_a_group_on_both_sides(seed: int) -> None:
    for recs in (_ucf_like(seed=seed), _ucf_like(n_groups=10, seed=seed), _source_like(seed)):
        train, test = group_split(recs, 0.2, seed=seed)
        _check_split(recs, train, test)
        biggest = max(Counter(r.group for r in recs).values()) / len(recs)
        assert abs(len(test) / len(recs) - 0.2) <= max(biggest, 0.05) + 1e-9
        assert (train, test) == group_split(recs, 0.2, seed=seed)  # deterministic


def test_group_split_depends_on_the_seed_and_keeps_order() -> None:
    recs = _ucf_like(n_groups=10)
    tests = {tuple(sorted({r.group for r in group_split(recs, 0.2, seed=s)[1]})) for s in range(10)}
    assert len(tests) > 1
    train, test = group_split(recs, 0.2, seed=3)
    assert train == [r for r in recs if r in set(train)]
    assert test == [r for r in recs if r in set(test)]


def test_group_split_refuses_a_single_group() -> None:
    recs = [ClipRecord(Path(f"{c}/{i}.avi"), c, "g01") for c in "ab" for i in range(3)]
    with pytest.raises(DataError, match="by group"):
        group_split(recs)
    with pytest.raises(ValueError):
        group_split(_ucf_like(), test_fraction=1.5)


@pytest.mark.parametrize("seed", range(5))
def test_random_split_is_stratified_by_class(seed: int) -> None:
    recs = _ucf_like(seed=seed)
    train, test = random_split(recs, 0.25, seed=seed)
    assert sorted(train + test) == sorted(recs) and not set(train) & set(test)
    for label, n in Counter(r.label for r in recs).items():
        k = sum(r.label == label for r in test)
        assert k == round(n * 0.25)
    assert (train, test) == random_split(recs, 0.25, seed=seed)


@pytest.mark.parametrize(("k", "seed"), [(2, 0), (3, 1), (5, 2), (6, 3)])
def test_grouped_kfold_covers_every_clip_once(k: int, seed: int) -> None:
    for recs in (_ucf_like(seed=seed), _source_like(seed)):
        folds = grouped_kfold(recs, k, seed=seed)
        assert len(folds) == k
        seen = Counter(r for _, test in folds for r in test)
        assert set(seen) == set(recs) and set(seen.values()) == {1}
        for train, test in folds:
            assert test, "an empty fold"
            assert sorted(train + test) == sorted(recs)
            assert not {r.group for r in train} & {r.group for r in test}
        assert folds == grouped_kfold(recs, k, seed=seed)


def test_grouped_kfold_balances_classes_when_groups_allow() -> None:
    # 6 groups with every class: 3 folds of exactly 2 groups, each with a third of every class.
    recs = [
        ClipRecord(Path(f"{c}/v_{c}_g{g:02d}_c{i:02d}.avi"), c, f"g{g:02d}")
        for c in ("A", "B", "C")
        for g in range(1, 7)
        for i in range(3)
    ]
    for _, test in grouped_kfold(recs, 3, seed=0):
        assert Counter(r.label for r in test) == {"A": 6, "B": 6, "C": 6}
    with pytest.raises(DataError, match="need at least 7"):
        grouped_kfold(recs, 7)


# --- frame extraction ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, classes=("HorseRace", "Biking"), groups=2, clips_per_group=2)
    return root


def _with_bad_clips(root: Path, tmp_path: Path) -> list[ClipRecord]:
    recs = scan_dataset(root)
    bad = tmp_path / "bad"
    corrupt = bad / "v_Biking_g09_c01.avi"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"\x00garbage" * 1000)
    short = bad / "v_Biking_g09_c02.avi"
    generate_dataset(
        tmp_path / "short", classes=("Biking",), groups=1, clips_per_group=1, seconds=0.5
    )
    (tmp_path / "short" / "Biking" / "v_Biking_g01_c01.avi").rename(short)
    return [*recs, ClipRecord(corrupt, "Biking", "g09"), ClipRecord(short, "Biking", "g09")]


class _CountingExtract:
    """Spy on the real extract_clip: counts the decodes that actually happen."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.real = extraction.extract_clip

    def __call__(self, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(Path(path).name)
        return self.real(path, *args, **kwargs)


def test_build_arrays_skips_bad_clips_and_caches_good_ones(
    small_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recs = _with_bad_clips(small_set, tmp_path)
    cache = tmp_path / "cache"
    spy = _CountingExtract()
    monkeypatch.setattr(extraction, "extract_clip", spy)

    with structlog.testing.capture_logs() as logs:
        arrays = build_arrays(recs, workers=0, cache_dir=cache, progress=False)
    assert arrays.x.shape == (8, 20, 64, 64, 3) and arrays.x.dtype == np.uint8
    assert arrays.records == recs[:8]
    assert arrays.labels == [r.label for r in recs[:8]]
    assert [r.path.name for r, _ in arrays.skipped] == [
        "v_Biking_g09_c01.avi",
        "v_Biking_g09_c02.avi",
    ]
    assert "cannot open as a video" in arrays.skipped[0][1]
    assert "clip too short" in arrays.skipped[1][1]
    assert [e["path"] for e in logs if e["event"] == "clip_skipped"] == [
        str(r.path) for r, _ in arrays.skipped
    ]
    assert len(spy.calls) == 10
    assert len(list(cache.rglob("*.npz"))) == 8  # only good clips are cached
    assert not list(cache.rglob(".tmp-*"))  # no leftovers from the atomic writes
    assert np.all((arrays.spacings_s > 0.07) & (arrays.spacings_s < 0.13))
    assert median_spacing_s(arrays) == pytest.approx(float(np.median(arrays.spacings_s)))

    # Second run: good clips come from the cache, only the bad ones are tried again.
    spy.calls.clear()
    again = build_arrays(recs, workers=0, cache_dir=cache, progress=False)
    assert sorted(spy.calls) == ["v_Biking_g09_c01.avi", "v_Biking_g09_c02.avi"]
    np.testing.assert_array_equal(again.x, arrays.x)
    np.testing.assert_array_equal(again.spacings_s, arrays.spacings_s)

    # A changed file and a damaged cache entry are both extracted again.
    changed = recs[0].path
    changed.touch()
    some_entry = sorted(cache.rglob("*.npz"))[0]
    some_entry.write_bytes(b"not an npz")
    spy.calls.clear()
    third = build_arrays(recs[:8], workers=0, cache_dir=cache, progress=False)
    assert changed.name in spy.calls and 1 <= len(spy.calls) <= 2
    np.testing.assert_array_equal(third.x, arrays.x)


def test_build_arrays_in_worker_processes_matches_in_process(
    small_set: Path, tmp_path: Path
) -> None:
    recs = _with_bad_clips(small_set, tmp_path)
    serial = build_arrays(recs, workers=0, cache_dir=tmp_path / "c1", progress=False)
    pooled = build_arrays(recs, workers=2, cache_dir=tmp_path / "c2", progress=False)
    np.testing.assert_array_equal(pooled.x, serial.x)
    assert pooled.records == serial.records
    assert [r for r, _ in pooled.skipped] == [r for r, _ in serial.skipped]
    assert len(list((tmp_path / "c2").rglob("*.npz"))) == 8  # workers write the cache


def test_build_arrays_without_any_readable_clip_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "x" / "a.avi"
    bad.parent.mkdir()
    bad.write_bytes(b"nope")
    recs = [ClipRecord(bad, "x", "x/a")]
    with pytest.raises(DataError, match="none of the 1 clips could be read"):
        build_arrays(recs, workers=0, cache_dir=tmp_path / "c", progress=False)


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert extraction.default_cache_dir() == tmp_path / "har-daemon" / "clips"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert extraction.default_cache_dir() == Path.home() / ".cache" / "har-daemon" / "clips"
