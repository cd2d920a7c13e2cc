"""Turn per-window predictions over a video into a timeline of activity segments (pure).

`har-daemon predict VIDEO` slides the model's window over the video and gets, for each window,
``t_s`` (the time of the window's **last** frame, seconds) and the class probabilities.
`segments_from_windows` merges runs of consecutive windows that agree into `Segment`s.

Rules (also in the function's docstring):

* A window's label is the argmax of its probabilities; if its max probability is below
  ``min_confidence`` it is *uncertain* (label ``None``). Ties go to the lowest class index
  (``numpy.argmax``).
* Consecutive windows (in list order) with the same label form one run. An uncertain window
  breaks a run: ``A A ? A`` gives two ``A`` segments with a gap between them.
* Uncertain runs produce no segment (they are gaps in the timeline) unless
  ``keep_uncertain=True``, in which case they become segments with ``activity=None``.
* ``end_s`` = time of the run's last window. ``start_s`` = time of its first window minus
  ``window_span_s`` (the first window covers ``[t - window_span_s, t]``), clamped at 0 **and at
  the previous segment's end_s**. With overlapping windows (stride < span) the raw start would
  fall inside the previous segment; clamping places the boundary at the previous segment's last
  window time, i.e. the earlier segment keeps every instant its own windows vouched for and the
  later one starts where it ends. Segments are therefore ordered and never overlap
  (``seg[i].end_s <= seg[i+1].start_s``); they touch when windows overlap and leave gaps when
  there is a stride gap or uncertain windows in between.
* ``confidence`` = mean, over the run's windows, of the probability of the segment's class
  (for an uncertain segment: the mean of each window's max probability).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Segment", "segments_from_windows"]


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of video given one activity. Times in seconds from the start of the video."""

    start_s: float
    end_s: float
    activity: str | None  # None = uncertain (only with keep_uncertain=True)
    confidence: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """{"start_s", "end_s", "activity", "confidence"}, floats rounded to 3 decimals."""
        return {
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "activity": self.activity,
            "confidence": round(float(self.confidence), 3),
        }


def segments_from_windows(
    times_s: Sequence[float] | np.ndarray,
    probs: Sequence[Sequence[float]] | np.ndarray,
    class_names: Sequence[str],
    min_confidence: float = 0.0,
    window_span_s: float = 0.0,
    *,
    keep_uncertain: bool = False,
) -> list[Segment]:
    """Merge consecutive windows with the same argmax class into non-overlapping segments.

    Args:
        times_s: per window, the time of its last frame (seconds); strictly increasing.
        probs: shape (n_windows, n_classes) class probabilities, one row per window.
        class_names: names indexed by class; ``len(class_names) == n_classes``.
        min_confidence: windows whose max probability is below this are uncertain (``None``).
        window_span_s: how much video one window covers before its last frame; a segment's
            start is its first window's ``t_s - window_span_s``. 0 means "start at the first
            window's time".
        keep_uncertain: emit runs of uncertain windows as ``Segment(activity=None)`` instead of
            leaving them out as gaps.

    Boundaries: ``start_s = max(0, t_first - window_span_s, previous_segment.end_s)`` and
    ``end_s = t_last``, so segments never overlap (see the module docstring for why).
    ``confidence`` is the mean probability of the segment's class over its windows.

    Raises ValueError on mismatched shapes, non-finite values, negative or non-increasing
    times, negative ``window_span_s`` or a ``min_confidence`` outside [0, 1].
    """
    names = [str(n) for n in class_names]
    t = np.asarray(times_s, dtype=np.float64).reshape(-1)
    p = np.asarray(probs, dtype=np.float64)
    if t.size == 0:
        if p.size != 0:
            raise ValueError("probs given for zero windows")
        return []
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ValueError(
            f"probs must have shape (n_windows={t.shape[0]}, n_classes), got {p.shape}"
        )
    if p.shape[1] != len(names):
        raise ValueError(f"probs has {p.shape[1]} classes but class_names has {len(names)}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("times_s and probs must be finite")
    if np.any(t < 0):
        raise ValueError("times_s must be >= 0")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise ValueError("times_s must be strictly increasing")
    if not math.isfinite(window_span_s) or window_span_s < 0:
        raise ValueError(f"window_span_s must be >= 0, got {window_span_s}")
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")

    best = np.argmax(p, axis=1)
    best_p = p[np.arange(p.shape[0]), best]
    labels: list[int | None] = [
        int(c) if bp >= min_confidence else None for c, bp in zip(best, best_p, strict=True)
    ]

    segments: list[Segment] = []
    prev_end = 0.0
    i = 0
    n = len(labels)
    while i < n:
        j = i
        while j + 1 < n and labels[j + 1] == labels[i]:
            j += 1
        label = labels[i]
        if label is not None or keep_uncertain:
            conf = float(np.mean(best_p[i : j + 1] if label is None else p[i : j + 1, label]))
            start = max(0.0, float(t[i]) - float(window_span_s), prev_end)
            end = float(t[j])
            segments.append(
                Segment(
                    start_s=start,
                    end_s=end,
                    activity=None if label is None else names[label],
                    confidence=conf,
                )
            )
            prev_end = end
        i = j + 1
    return segments
