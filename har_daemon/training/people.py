"""Person-centric samples: each clip's windows cropped around its people, cached on disk.

Training, evaluation and the daemon cut the same windows: `offline.clip.clip_windows` with the
model's `PersonRegion` rules (20 frames evenly over the clip at working resolution, the detector
on every `detect_every`-th, one square crop per group of people). The detector is the cost, so
each clip's windows are cached under a key of the file, the crop rules and the detector file.

Which windows teach what (`training_indices`):
- a clip of the alert class (a fight) may also show bystanders walking by; only its region with
  the most motion (mean absolute change between the crop's frames) is a positive sample, the
  one most likely to hold the fight. Labelling its calm regions "fight" would teach the model
  to alarm on passers-by, the failure this model exists to fix;
- every region of any other clip is a negative: exactly the passers-by it must leave alone;
- a clip where the detector finds nobody gives no sample. The daemon would classify nothing
  there, so at test time it counts as the non-alert class (a fight nobody was found in is a
  miss), as `clip_probabilities` scores it.
A clip's score is its most alarming region's, as in the daemon, where the region with the
highest alert score speaks for the camera.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from har_daemon.core.errors import DataError, ModelError, VideoError
from har_daemon.core.logs import get_logger
from har_daemon.model.backends import default_threads
from har_daemon.model.meta import ModelMeta
from har_daemon.model.person import DETECTOR_FILE, PersonDetector
from har_daemon.model.preprocess import RESIZE_VERSION
from har_daemon.offline.clip import clip_windows
from har_daemon.runtime.people import Detector
from har_daemon.training.dataset import ClipRecord
from har_daemon.training.extraction import default_cache_dir, store_npz

CACHE_VERSION = 1
"""Bump when the windows of a clip would change for the same file and rules."""

log = get_logger(__name__)


@dataclass(frozen=True)
class PersonClip:
    """One clip's windows: (R, T, H, W, 3) uint8, one per region of people (R may be 0)."""

    record: ClipRecord
    windows: np.ndarray
    regions: np.ndarray  # (R, 4) normalised x1, y1, x2, y2
    spacing_s: float

    @property
    def motion(self) -> np.ndarray:
        return region_motion(self.windows)


@dataclass
class PersonClips:
    clips: list[PersonClip]
    skipped: list[tuple[ClipRecord, str]] = field(default_factory=list)

    def by_path(self) -> dict[Path, PersonClip]:
        return {c.record.path: c for c in self.clips}

    def subset(self, wanted: Sequence[ClipRecord]) -> list[PersonClip]:
        """The readable clips of `wanted`, in the order of `wanted`."""
        index = self.by_path()
        return [index[r.path] for r in wanted if r.path in index]

    @property
    def spacings_s(self) -> np.ndarray:
        return np.array([c.spacing_s for c in self.clips])


def region_motion(windows: np.ndarray) -> np.ndarray:
    """Mean absolute change between consecutive frames of each window, 0..1."""
    if len(windows) == 0:
        return np.zeros(0)
    diffs = np.abs(np.diff(windows.astype(np.int16), axis=1))
    return diffs.reshape(len(windows), -1).mean(axis=1) / 255.0


def training_indices(clip: PersonClip, alert_class: str) -> list[int]:
    """The windows of `clip` that are training samples (see the module's docstring)."""
    if len(clip.windows) == 0:
        return []
    if clip.record.label == alert_class:
        return [int(np.argmax(clip.motion))]
    return list(range(len(clip.windows)))


def training_samples(clips: Sequence[PersonClip], alert_class: str) -> tuple[np.ndarray, list[str]]:
    """The training windows of `clips` and their labels."""
    xs, labels = [], []
    for c in clips:
        idx = training_indices(c, alert_class)
        xs += [c.windows[i] for i in idx]
        labels += [c.record.label] * len(idx)
    if not xs:
        return np.zeros((0, 0, 0, 0, 3), np.uint8), []
    return np.stack(xs), labels


def clip_probabilities(
    predict: Callable[[np.ndarray], np.ndarray],
    clips: Sequence[PersonClip],
    classes: Sequence[str],
    alert_class: str,
) -> np.ndarray:
    """(N, classes) per clip: its most alarming region's probabilities; a clip with nobody
    in it is certain of the other class (two-class models), as the daemon raises nothing."""
    a = list(classes).index(alert_class)
    counts = [len(c.windows) for c in clips]
    stacked = [c.windows for c in clips if len(c.windows)]
    probs = predict(np.concatenate(stacked)) if stacked else np.zeros((0, len(classes)))
    out = np.zeros((len(clips), len(classes)), np.float32)
    start = 0
    for i, n in enumerate(counts):
        if n == 0:
            out[i, 1 - a] = 1.0
            continue
        mine = probs[start : start + n]
        out[i] = mine[int(np.argmax(mine[:, a]))]
        start += n
    return out


def _detector_id() -> list[object]:
    try:
        st = Path(DETECTOR_FILE).stat()
    except OSError as e:
        raise ModelError(f"person detector {DETECTOR_FILE}: {e.strerror or e}") from None
    return [Path(DETECTOR_FILE).name, st.st_size, st.st_mtime_ns]


def cache_key(path: Path, meta: ModelMeta, detector_id: list[object] | None = None) -> str:
    """Hash of what determines a clip's windows: the file, the sampling and crop rules, and
    the detector."""
    detector_id = detector_id if detector_id is not None else _detector_id()
    p = Path(path).resolve()
    st = p.stat()
    rules = meta.person_region.model_dump() if meta.person_region else None
    blob = json.dumps(
        [
            str(p),
            st.st_size,
            st.st_mtime_ns,
            meta.sequence_length,
            list(meta.frame_size),
            meta.resize_interpolation,
            rules,
            detector_id,
            CACHE_VERSION,
            RESIZE_VERSION,
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def default_person_cache() -> Path:
    return default_cache_dir().parent / "person-windows"


def _load(file: Path, record: ClipRecord) -> PersonClip | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            return PersonClip(record, z["windows"], z["regions"], float(z["spacing_s"]))
    except FileNotFoundError:
        return None
    except Exception:  # a damaged entry is extracted again
        return None


def _store(file: Path, clip: PersonClip) -> None:
    store_npz(
        file,
        compressed=True,
        windows=clip.windows,
        regions=clip.regions,
        spacing_s=np.float64(clip.spacing_s),
    )


def build_person_clips(
    records: Sequence[ClipRecord],
    meta: ModelMeta,
    *,
    cache_dir: Path | None = None,
    detector: Detector | None = None,
    progress: bool = True,
) -> PersonClips:
    """Every clip's person windows (cached); unreadable clips are skipped with their reason."""
    if meta.person_region is None:
        raise ValueError("person windows need a model with input_region 'person'")
    cdir = Path(cache_dir) if cache_dir is not None else default_person_cache()
    out = PersonClips([])
    detector_id = _detector_id()
    for rec in tqdm(
        records, desc="person windows", unit="clip", file=sys.stderr, disable=not progress
    ):
        try:
            file = cdir / (key := cache_key(rec.path, meta, detector_id))[:2] / f"{key}.npz"
        except OSError as e:
            out.skipped.append((rec, f"{rec.path}: cannot read: {e.strerror or e}"))
            continue
        clip = _load(file, rec)
        if clip is None:
            if detector is None:
                rules = meta.person_region
                detector = PersonDetector(
                    threads=default_threads(), score_threshold=rules.min_score
                )
            try:
                cw = clip_windows(rec.path, meta, detector)
            except VideoError as e:
                out.skipped.append((rec, str(e)))
                log.warning("clip_skipped", path=str(rec.path), reason=str(e))
                continue
            regions = np.array(cw.regions, np.float32).reshape(-1, 4)
            clip = PersonClip(rec, cw.windows, regions, cw.spacing_s)
            _store(file, clip)
        out.clips.append(clip)
    if not out.clips:
        first = out.skipped[0][1] if out.skipped else ""
        raise DataError(f"none of the {len(records)} clips could be read (first error: {first})")
    return out


def describe(clips: Sequence[PersonClip], alert_class: str) -> dict[str, object]:
    """What model.json records about the person windows of a set of clips."""
    no_person = [c for c in clips if len(c.windows) == 0]
    return {
        "clips": len(clips),
        "windows": int(sum(len(c.windows) for c in clips)),
        "no_person_clips": {
            label: sum(1 for c in no_person if c.record.label == label)
            for label in sorted({c.record.label for c in clips})
        },
        "alert_clips_with_several_regions": sum(
            1 for c in clips if c.record.label == alert_class and len(c.windows) > 1
        ),
    }
