"""What training sees of a set of clips: samples to learn from, and one score per clip.

A whole-frame model has one window per clip, so samples and clips coincide. A person-centric
model has one window per region of people, of which only some teach (`training.people`), and a
clip's score is its most alarming region's. Training, cross-validation and evaluation go through
this one interface, so the figures of both kinds of model mean the same thing: per clip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from har_daemon.model.meta import ModelMeta
from har_daemon.training.dataset import ClipRecord
from har_daemon.training.extraction import ClipArrays, build_arrays, median_spacing_s
from har_daemon.training.people import (
    PersonClips,
    build_person_clips,
    clip_probabilities,
    describe,
    training_samples,
)

Predict = Callable[[np.ndarray], np.ndarray]
"""uint8 windows (N, T, H, W, 3) -> probabilities (N, classes)."""


class ClipData(Protocol):
    skipped: list[tuple[ClipRecord, str]]
    spacing_s: float

    def samples(self, wanted: Sequence[ClipRecord]) -> tuple[np.ndarray, list[str]]:
        """Training windows of the readable clips of `wanted`, and their labels."""
        ...

    def readable(self, wanted: Sequence[ClipRecord]) -> list[ClipRecord]:
        """The clips of `wanted` that could be read, in the order `clip_probs` scores them."""
        ...

    def clip_probs(self, predict: Predict, wanted: Sequence[ClipRecord]) -> np.ndarray:
        """One probability vector per readable clip of `wanted`."""
        ...

    def summary(self, wanted: Sequence[ClipRecord]) -> dict[str, Any]:
        """What model.json records about these clips' windows."""
        ...

    def picture(self, record: ClipRecord) -> np.ndarray | None:
        """The middle frame of the clip's first window (None: no window)."""
        ...


@dataclass
class FrameData:
    arrays: ClipArrays

    @property
    def skipped(self) -> list[tuple[ClipRecord, str]]:
        return self.arrays.skipped

    @property
    def spacing_s(self) -> float:
        return median_spacing_s(self.arrays)

    def _index(self, wanted: Sequence[ClipRecord]) -> list[int]:
        keep = {r.path for r in wanted}
        return [i for i, r in enumerate(self.arrays.records) if r.path in keep]

    def samples(self, wanted: Sequence[ClipRecord]) -> tuple[np.ndarray, list[str]]:
        idx = self._index(wanted)
        return self.arrays.x[idx], [self.arrays.labels[i] for i in idx]

    def readable(self, wanted: Sequence[ClipRecord]) -> list[ClipRecord]:
        return [self.arrays.records[i] for i in self._index(wanted)]

    def clip_probs(self, predict: Predict, wanted: Sequence[ClipRecord]) -> np.ndarray:
        return predict(self.samples(wanted)[0])

    def summary(self, wanted: Sequence[ClipRecord]) -> dict[str, Any]:
        return {"clips": len(self._index(wanted))}

    def picture(self, record: ClipRecord) -> np.ndarray | None:
        x = self.samples([record])[0]
        return x[0][len(x[0]) // 2] if len(x) else None


@dataclass
class PersonData:
    clips: PersonClips
    classes: list[str]
    alert_class: str

    @property
    def skipped(self) -> list[tuple[ClipRecord, str]]:
        return self.clips.skipped

    @property
    def spacing_s(self) -> float:
        return float(np.median(self.clips.spacings_s))

    def samples(self, wanted: Sequence[ClipRecord]) -> tuple[np.ndarray, list[str]]:
        return training_samples(self.clips.subset(wanted), self.alert_class)

    def readable(self, wanted: Sequence[ClipRecord]) -> list[ClipRecord]:
        return [c.record for c in self.clips.subset(wanted)]

    def clip_probs(self, predict: Predict, wanted: Sequence[ClipRecord]) -> np.ndarray:
        return clip_probabilities(
            predict, self.clips.subset(wanted), self.classes, self.alert_class
        )

    def summary(self, wanted: Sequence[ClipRecord]) -> dict[str, Any]:
        return describe(self.clips.subset(wanted), self.alert_class)

    def picture(self, record: ClipRecord) -> np.ndarray | None:
        clip = self.clips.subset([record])
        if not clip or len(clip[0].windows) == 0:
            return None
        return clip[0].windows[0][len(clip[0].windows[0]) // 2]


def load_clip_data(
    records: Sequence[ClipRecord],
    meta: ModelMeta,
    *,
    alert_class: str | None,
    workers: int = 2,
    cache_dir: Path | None = None,
) -> ClipData:
    """The clips' windows as `meta` cuts them (whole frames, or crops around people)."""
    if meta.person_region is None:
        arrays = build_arrays(
            records,
            seq_len=meta.sequence_length,
            size_hw=meta.frame_size,
            interpolation=meta.resize_interpolation,
            workers=workers,
            cache_dir=cache_dir,
        )
        return FrameData(arrays)
    if alert_class is None:
        raise ValueError("person-centric clips need the alert class")
    person_cache = Path(cache_dir) / "person-windows" if cache_dir is not None else None
    clips = build_person_clips(records, meta, cache_dir=person_cache)
    return PersonData(clips, list(meta.classes), alert_class)
