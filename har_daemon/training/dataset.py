"""Video datasets in the UCF50 layout: one sub-folder of clips per class.

- `scan_dataset` lists the clips with their class and *group*: clips of one group share actors,
  scene or source video (UCF50's `gNN` in `v_<Class>_gNN_cNN.avi`, or the `source` column of a
  `sources.csv` beside the class folders) and must never be split across train and test, or the
  test score measures memorised scenes instead of recognised activities.
- `group_split`, `grouped_kfold`: splits that keep groups whole; `random_split` is the founding
  paper's clip-level split, kept only to reproduce its (leaky) numbers.
- `build_arrays` extracts every clip's frames in a process pool, caching each clip on disk.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import re
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from har_daemon.core.errors import DataError, VideoError
from har_daemon.core.logs import get_logger
from har_daemon.model.preprocess import RESIZE_VERSION, Interpolation
from har_daemon.video.frames import ClipFrames, extract_clip

VIDEO_EXTENSIONS: tuple[str, ...] = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg")
SOURCES_CSV = "sources.csv"
CACHE_VERSION = 1
"""Bump when extraction changes in a way that makes cached frames stale."""

_UCF_NAME = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)$")

log = get_logger(__name__)


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
            return {
                row["clip"].strip(): row["source"].strip()
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
    `<class>/<stem>`, the clip alone. `classes` defaults to every sub-folder, sorted.
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


# --------------------------------------------------------------------------------------------
# Frame extraction with a cache


@dataclass
class ClipArrays:
    """Extracted clips: `x` uint8 (N, seq_len, h, w, 3) BGR, aligned with `labels`/`records`."""

    x: np.ndarray
    labels: list[str]
    records: list[ClipRecord]
    skipped: list[tuple[ClipRecord, str]] = field(default_factory=list)
    spacings_s: np.ndarray = field(default_factory=lambda: np.zeros(0))


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/har-daemon/clips`, or `~/.cache/har-daemon/clips`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "har-daemon" / "clips"


def cache_key(path: Path, seq_len: int, size_hw: tuple[int, int], interpolation: str) -> str:
    """Hash of what determines a clip's frames: the file (path, size, mtime) and the sampling."""
    p = Path(path).resolve()
    st = p.stat()
    blob = json.dumps(
        [
            str(p),
            st.st_size,
            st.st_mtime_ns,
            int(seq_len),
            [int(v) for v in size_hw],
            str(interpolation),
            CACHE_VERSION,
            RESIZE_VERSION,
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npz"


def _load_cached(file: Path, seq_len: int, size_hw: tuple[int, int]) -> ClipFrames | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            clip = ClipFrames(
                frames=z["frames"],
                fps=float(z["fps"]),
                frame_count=int(z["frame_count"]),
                indices=z["indices"],
                spacing_s=float(z["spacing_s"]),
            )
    except FileNotFoundError:
        return None
    except Exception:  # a damaged cache entry is re-extracted and overwritten
        return None
    if clip.frames.shape != (seq_len, *size_hw, 3) or clip.frames.dtype != np.uint8:
        return None
    return clip


def _store_cached(file: Path, clip: ClipFrames) -> None:
    """Write atomically: a half-written entry never has the final name."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    frames=clip.frames,
                    fps=np.float64(clip.fps),
                    frame_count=np.int64(clip.frame_count),
                    indices=clip.indices,
                    spacing_s=np.float64(clip.spacing_s),
                )
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:  # a read-only or full cache must not stop training
        log.warning("clip_cache_write_failed", path=str(file), error=str(e))


def _extract_one(
    path: str,
    seq_len: int,
    size_hw: tuple[int, int],
    interpolation: Interpolation,
    cache_file: str | None,
) -> tuple[ClipFrames | None, str | None]:
    """Worker: extract one clip (and cache it); a failure comes back as its reason."""
    try:
        clip = extract_clip(path, seq_len, size_hw, interpolation)
    except VideoError as e:
        return None, str(e)
    except Exception as e:  # cv2.error and friends: a bad clip must not end the run
        return None, f"{path}: {type(e).__name__}: {e}".replace("\n", " ")
    if cache_file is not None:
        _store_cached(Path(cache_file), clip)
    return clip, None


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def build_arrays(
    records: Sequence[ClipRecord],
    seq_len: int = 20,
    size_hw: tuple[int, int] = (64, 64),
    interpolation: Interpolation = "area",
    workers: int = 2,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> ClipArrays:
    """Extract every clip's `seq_len` frames (uint8, to keep memory low) in `workers` processes.

    Clips already in the cache (`cache_dir`, default `default_cache_dir()`) are loaded without
    decoding; new ones are cached. `workers=0` extracts in this process. Clips that cannot be
    read are skipped, with the reason in `skipped` and a warning in the log; `DataError` when
    none could be read.
    """
    h, w = size_hw
    cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    n = len(records)
    if n == 0:
        raise DataError("no clips to extract")
    frames_out = np.empty((n, seq_len, h, w, 3), dtype=np.uint8)
    spacings = np.zeros(n)
    ok = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}

    todo: list[tuple[int, str | None]] = []
    bar = tqdm(
        total=n,
        desc="extracting clips",
        unit="clip",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )

    def accept(i: int, clip: ClipFrames | None, reason: str | None) -> None:
        if clip is None:
            reasons[i] = reason or f"{records[i].path}: unreadable"
            log.warning("clip_skipped", path=str(records[i].path), reason=reasons[i])
        else:
            frames_out[i] = clip.frames
            spacings[i] = clip.spacing_s
            ok[i] = True
        bar.update(1)

    try:
        for i, rec in enumerate(records):
            cache_file: Path | None = None
            if use_cache:
                try:
                    key = cache_key(rec.path, seq_len, size_hw, interpolation)
                except OSError as e:
                    accept(i, None, f"{rec.path}: cannot read: {e.strerror or e}")
                    continue
                cache_file = _cache_file(cdir, key)
                cached = _load_cached(cache_file, seq_len, size_hw)
                if cached is not None:
                    accept(i, cached, None)
                    continue
            todo.append((i, str(cache_file) if cache_file is not None else None))

        if todo:
            args = [(str(records[i].path), seq_len, (h, w), interpolation, cf) for i, cf in todo]
            if workers <= 0:
                for (i, _), a in zip(todo, args, strict=True):
                    accept(i, *_extract_one(*a))
            else:
                _run_pool(workers, todo, args, accept)
    finally:
        bar.close()

    kept = np.flatnonzero(ok)
    if kept.size == 0:
        first = next(iter(reasons.values()), "")
        raise DataError(f"none of the {n} clips could be read (first error: {first})")
    x = frames_out if kept.size == n else frames_out[kept]
    kept_records = [records[i] for i in kept]
    return ClipArrays(
        x=x,
        labels=[r.label for r in kept_records],
        records=kept_records,
        skipped=[(records[i], reasons[i]) for i in sorted(reasons)],
        spacings_s=spacings[kept],
    )


def _mp_context() -> multiprocessing.context.BaseContext:
    # The parent may have TensorFlow loaded: forking it is unsafe. forkserver is cheaper than
    # spawn where the platform has it.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_pool(
    workers: int,
    todo: list[tuple[int, str | None]],
    args: list[tuple],
    accept: Callable[[int, ClipFrames | None, str | None], None],
) -> None:
    """Run `_extract_one` over `args` in a process pool.

    A worker that dies (a decoder crash) breaks the whole pool: the clips it left unfinished
    are retried in a fresh pool, and one at a time once a round finishes none, so only the
    clip that crashes is skipped.
    """
    pending = list(zip((i for i, _ in todo), args, strict=True))
    single = False
    while pending:
        n_proc = 1 if single else max(1, min(workers, len(pending)))
        batch = pending[:1] if single else pending
        rest = pending[1:] if single else []
        failed: list[tuple[int, tuple]] = []
        done = 0
        with ProcessPoolExecutor(
            max_workers=n_proc, mp_context=_mp_context(), initializer=_init_worker
        ) as pool:
            futures = {pool.submit(_extract_one, *a): (i, a) for i, a in batch}
            for fut in as_completed(futures):
                i, a = futures[fut]
                try:
                    clip, reason = fut.result()
                except BrokenProcessPool:
                    failed.append((i, a))
                    continue
                accept(i, clip, reason)
                done += 1
        if single and failed:
            i, a = failed[0]
            accept(i, None, f"{a[0]}: the decoder crashed reading this clip")
            failed = []
        pending = failed + rest
        single = single or (bool(failed) and done == 0)


def median_spacing_s(arrays: ClipArrays) -> float:
    """The median time between sampled frames over the kept clips, in seconds."""
    if len(arrays.spacings_s) == 0:
        raise DataError("no clips: cannot compute the frame spacing")
    return float(np.median(arrays.spacings_s))
