"""Video datasets in the UCF50 layout: one sub-folder of clips per class.

- `scan_dataset` lists the clips with their class and *group*: clips of one group share actors,
  scene or source video (UCF50's `gNN` in `v_<Class>_gNN_cNN.avi`, or the `source` column of a
  `sources.csv` beside the class folders) and must never be split across train and test, or the
  test score measures memorised scenes instead of recognised activities.
- `group_split`, `grouped_kfold`: splits that keep groups whole; `random_split` is the founding
  paper's clip-level split, kept only to reproduce its (leaky) numbers.

Extracting the clips' frames (with a cache) is `training.extraction`.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_daemon.core.errors import DataError

PAPER_CLASSES: tuple[str, ...] = ("HorseRace", "Biking", "Swing", "PizzaTossing")
"""The founding paper's four UCF50 classes: the default training set and the synthetic data's."""
VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg")
SOURCES_CSV = "sources.csv"

_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")


@dataclass(frozen=True, order=True)
class ClipRecord:
    """One clip: its file, its class (folder name) and its group (clips that must stay together)."""

    path: Path
    label: str
    group: str


# --------------------------------------------------------------------------------------------
# Scanning


def ucf_group(stem: str) -> str | None:
    """`"g08"` for `v_HorseRace_g08_c02`, None for a name not in UCF50's pattern."""
    m = _UCF_NAME.match(stem)
    return f"g{m.group('group')}" if m else None


def _read_sources(csv_path: Path) -> dict[str, str]:
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"clip", "source"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(
                    f"{csv_path}: header must be 'clip,label,source'; missing "
                    f"{', '.join(sorted(missing))}"
                )
            # A clip is named by its stem (`fi001`) or its path (`adl/s1_adl_10.mp4`).
            return {
                Path(row["clip"].strip()).stem: row["source"].strip()
                for row in reader
                if row.get("clip") and row.get("source")
            }
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{csv_path}: cannot read: {e}") from e


def scan_dataset(
    root: str | os.PathLike[str], classes: Sequence[str] | None = None
) -> list[ClipRecord]:
    """List the clips of a UCF50-layout dataset, sorted by class (in `classes` order) and name.

    A clip's group is UCF50's `gNN` when its name is `v_<Class>_gNN_cNN.*`; else the `source`
    of its stem in `root/sources.csv` (header `clip,label,source`) when present; else
    `<class>/<stem>`, the clip alone. `sources.csv` may name a clip by its stem or by its path
    (`adl/s1_adl_10.mp4`, as falls/ does). `classes` defaults to every sub-folder, sorted.
    """
    r = Path(root)
    if not r.exists():
        raise DataError(f"{r}: dataset folder not found")
    if not r.is_dir():
        raise DataError(f"{r}: not a folder (expected one sub-folder of videos per class)")
    available = sorted(
        p.name for p in r.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )
    if not available:
        raise DataError(f"{r}: no class folders (expected one sub-folder of videos per class)")
    if classes is None:
        wanted = available
    else:
        wanted = list(classes)
        if not wanted:
            raise DataError(f"{r}: no classes requested")
        dupes = sorted(c for c, n in Counter(wanted).items() if n > 1)
        if dupes:
            raise DataError(f"{r}: class listed twice: {', '.join(dupes)}")
        for c in wanted:
            if not (r / c).is_dir():
                raise DataError(
                    f"{r}: class folder '{c}' not found; available: {', '.join(available)}"
                )
    sources_path = r / SOURCES_CSV
    sources = _read_sources(sources_path) if sources_path.is_file() else {}

    records: list[ClipRecord] = []
    for c in wanted:
        clips = sorted(
            p
            for p in (r / c).iterdir()
            if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith(".")
        )
        if not clips:
            raise DataError(
                f"{r / c}: no video clips in class '{c}' (looked for {', '.join(VIDEO_EXTENSIONS)})"
            )
        for p in clips:
            group = ucf_group(p.stem) or sources.get(p.stem) or f"{c}/{p.stem}"
            records.append(ClipRecord(path=p, label=c, group=group))
    return records


def class_names(records: Iterable[ClipRecord]) -> list[str]:
    """The classes of `records` in first-seen order (scan order: the `classes` argument's)."""
    return list(dict.fromkeys(rec.label for rec in records))


# --------------------------------------------------------------------------------------------
# Splits


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")


def _in_order(records: Sequence[ClipRecord], chosen: set[int]) -> list[ClipRecord]:
    return [rec for i, rec in enumerate(records) if i in chosen]


def _groups(records: Sequence[ClipRecord]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        groups[rec.group].append(i)
    return dict(groups)


def group_split(
    records: Sequence[ClipRecord], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """Split by group: no group on both sides, about `test_fraction` of each class in test.

    Every class with at least two groups appears in test, and every class keeps at least one
    group in train. Deterministic for a seed; both lists keep the input order. Raises
    `DataError` when no split by group is possible (e.g. a single group).
    """
    _check_fraction(test_fraction)
    if not records:
        raise DataError("cannot split an empty dataset")
    classes = class_names(records)
    cidx = {c: k for k, c in enumerate(classes)}
    groups = _groups(records)
    names = sorted(groups)
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]

    counts = {
        g: np.bincount([cidx[records[i].label] for i in idx], minlength=len(classes))
        for g, idx in groups.items()
    }
    total = np.sum(list(counts.values()), axis=0).astype(float)
    target = total * test_fraction
    groups_per_class = np.sum([(c > 0) for c in counts.values()], axis=0)

    test_counts = np.zeros(len(classes))
    test_groups_per_class = np.zeros(len(classes), dtype=int)
    in_test: set[str] = set()

    def cost(tc: np.ndarray) -> float:
        return float(np.sum(np.abs(tc - target) / np.maximum(total, 1)))

    def allowed(g: str) -> bool:  # train must keep every class
        has = counts[g] > 0
        return bool(np.all(test_groups_per_class[has] + 1 < groups_per_class[has]))

    def add(g: str) -> None:
        nonlocal test_counts
        in_test.add(g)
        test_counts = test_counts + counts[g]
        test_groups_per_class[counts[g] > 0] += 1

    # 1. Cover: every class with >= 2 groups gets one test group, rarest classes first.
    for k in sorted(range(len(classes)), key=lambda k: (groups_per_class[k], k)):
        if groups_per_class[k] < 2 or test_counts[k] > 0:
            continue
        candidates = [g for g in order if g not in in_test and counts[g][k] > 0 and allowed(g)]
        if candidates:
            add(min(candidates, key=lambda g: cost(test_counts + counts[g])))
    # 2. Fill: add groups (in seeded random order) while that brings each class nearer target.
    improved = True
    while improved:
        improved = False
        for g in order:
            if g in in_test or not allowed(g):
                continue
            if cost(test_counts + counts[g]) < cost(test_counts) - 1e-12:
                add(g)
                improved = True

    test_idx = {i for g in in_test for i in groups[g]}
    if not test_idx or len(test_idx) == len(records):
        raise DataError(
            f"cannot split {len(records)} clips in {len(groups)} group(s) by group: "
            "every class needs clips from at least two groups"
        )
    train_idx = set(range(len(records))) - test_idx
    return _in_order(records, train_idx), _in_order(records, test_idx)


def random_split(
    records: Sequence[ClipRecord], test_fraction: float = 0.2, seed: int = 0
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """The founding paper's split: clips shuffled within each class, ignoring groups.

    Leaks actors and scenes (and, for cut videos, near-identical clips) across the split, so
    its test accuracy is optimistic; kept to reproduce the paper. Every class with >= 2 clips
    has at least one clip on each side. Deterministic for a seed; input order kept.
    """
    _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        by_class[rec.label].append(i)
    test_idx: set[int] = set()
    for c in class_names(records):
        idx = by_class[c]
        n = len(idx)
        k = round(n * test_fraction)
        k = min(max(k, 1), n - 1) if n >= 2 else 0
        test_idx.update(idx[j] for j in rng.permutation(n)[:k])
    train_idx = set(range(len(records))) - test_idx
    return _in_order(records, train_idx), _in_order(records, test_idx)


def grouped_kfold(
    records: Sequence[ClipRecord], k: int = 5, seed: int = 0
) -> list[tuple[list[ClipRecord], list[ClipRecord]]]:
    """`k` (train, test) folds: each clip in exactly one test fold, groups never split.

    Groups go, largest first (seeded order among equals), to the fold where they best keep
    every class near 1/k of its clips in each fold. Raises `DataError` with fewer than `k`
    groups.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2, got {k}")
    groups = _groups(records)
    if len(groups) < k:
        raise DataError(f"cannot make {k} folds from {len(groups)} group(s): need at least {k}")
    classes = class_names(records)
    cidx = {c: j for j, c in enumerate(classes)}
    counts = {
        g: np.bincount([cidx[records[i].label] for i in idx], minlength=len(classes))
        for g, idx in groups.items()
    }
    total = np.sum(list(counts.values()), axis=0).astype(float)
    share = total / k
    weight = 1.0 / np.maximum(total, 1)

    names = sorted(groups)
    rng = np.random.default_rng(seed)
    tiebreak = {g: r for g, r in zip(names, rng.permutation(len(names)), strict=True)}
    order = sorted(names, key=lambda g: (-len(groups[g]), tiebreak[g]))

    fold_counts = np.zeros((k, len(classes)))
    fold_sizes = np.zeros(k, dtype=int)
    fold_groups: list[list[str]] = [[] for _ in range(k)]
    for g in order:
        empty = [f for f in range(k) if fold_sizes[f] == 0]
        candidates = empty or list(range(k))

        def delta(f: int, g: str = g) -> tuple[float, int, int]:
            after = fold_counts[f] + counts[g]
            change = np.sum(weight * ((after - share) ** 2 - (fold_counts[f] - share) ** 2))
            return (float(change), int(fold_sizes[f]), f)

        best = min(candidates, key=delta)
        fold_counts[best] += counts[g]
        fold_sizes[best] += len(groups[g])
        fold_groups[best].append(g)

    folds = []
    everyone = set(range(len(records)))
    for f in range(k):
        test_idx = {i for g in fold_groups[f] for i in groups[g]}
        folds.append((_in_order(records, everyone - test_idx), _in_order(records, test_idx)))
    return folds
