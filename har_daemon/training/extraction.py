"""Every clip's frames as one array, extracted in a process pool and cached per clip on disk.

Decoding is the slow part of training and evaluation; a clip's frames are cached under a key of
what determines them (the file's path, size and mtime, and the sampling), so a second run over
the same clips decodes nothing. Clips that cannot be read are skipped with their reason.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from har_daemon.core.errors import DataError, VideoError
from har_daemon.core.logs import get_logger
from har_daemon.model.preprocess import RESIZE_VERSION, Interpolation
from har_daemon.training.dataset import ClipRecord
from har_daemon.video.frames import ClipFrames, extract_clip

CACHE_VERSION = 1
"""Bump when extraction changes in a way that makes cached frames stale."""

log = get_logger(__name__)


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


def store_npz(file: Path, compressed: bool = False, **arrays: np.ndarray) -> None:
    """Write a cache entry atomically (a half-written entry never has the final name); a
    read-only or full cache is logged and must not stop training."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as fh:
                (np.savez_compressed if compressed else np.savez)(fh, **arrays)
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        log.warning("cache_write_failed", path=str(file), error=str(e))


def _store_cached(file: Path, clip: ClipFrames) -> None:
    store_npz(
        file,
        frames=clip.frames,
        fps=np.float64(clip.fps),
        frame_count=np.int64(clip.frame_count),
        indices=clip.indices,
        spacing_s=np.float64(clip.spacing_s),
    )


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
