"""Event-level figures: matching alert events to ground-truth intervals (pure: no I/O).

Security staff see alerts, not clip accuracy: what they feel is whether an incident raised an
alert, how long it took, how often an alert fires while nothing is happening and how much of the
quiet time the screen shows one. `match_events` computes those figures from a video's
ground-truth intervals and the alert events the daemon raised on it.

Rules
-----
* Times are seconds from the start of the video. Truth intervals and events are **closed-open**,
  ``[start_s, end_s)``. An event matches a truth interval when both carry the same activity and
  they share time of positive length: ``event.start_s < truth.end_s and truth.start_s <
  event.end_s``. Intervals that only touch (one ends where the other begins) do not match.
  A zero-length event (``start_s == end_s``: the alert opened and closed on one window) is the
  instant ``start_s``; it matches an interval containing it (``truth.start_s <= start_s <
  truth.end_s``) and adds no alert time.
* An event with ``end_s=None`` was still open when the video ended: it ends at ``duration_s``.
* One match per interval: an interval is detected once, whatever the number of events that
  overlap it. Every event overlapping some interval of its activity is a *matched* (true) alert
  for precision; an interval's *first* event is the overlapping event with the earliest start
  (ties: the earlier one in the input list), and matched events that are the first event of no
  interval are ``duplicate_alerts`` (the alert fragmented, or re-fired).
* An event overlapping two truth intervals detects both (and is the first of both if nothing
  started earlier).
* Time to alert of a detected interval = ``max(0, first_event.start_s - interval.start_s)``: an
  alert already open when the interval begins counts as 0 s. Reported as p50, p95 and max over
  the detected intervals with ``numpy.percentile(method="linear")`` (numpy's default, Hyndman &
  Fan type 7: p50 of [1, 3] is 2); ``None`` when nothing was detected.
* ``false_alerts`` = events overlapping no truth interval of their activity;
  ``false_alerts_per_hour`` = false_alerts / (duration_s / 3600).
* ``recall`` = detected intervals / intervals (``None`` with no intervals); ``precision`` =
  matched events / events (``None`` with no events).
* ``quiet_alert_fraction`` = time in alert (union of the events) outside the union of the truth
  intervals, divided by the quiet time (``duration_s`` minus that union); ``None`` when there is
  no quiet time. Per activity, both unions are taken over that activity only. **Overall** it is
  activity-blind: time any alert is shown while no truth interval of any activity is under way,
  over the time with none under way. So a wrong-activity alert during an incident counts as a
  false alert, but not as alerting in the quiet, overall (nothing was quiet).
* Overall counts are sums over activities; overall recall, precision, false alerts per hour and
  time-to-alert percentiles pool all activities. ``per_activity`` has one entry for each
  activity found in the truth or in the events, in sorted order.

Validation (ValueError naming the item): times must be finite and >= 0; a truth interval needs
``end_s > start_s`` (a zero-length interval holds nothing to detect) and must end within the
video (an annotation past the end means the wrong video or the wrong duration); an event needs
``end_s >= start_s`` and must start within the video (``start_s <= duration_s``), but its end is
**clipped** to ``duration_s``: the daemon stamps an end when it notices it, a window late or at
shutdown, and container durations are rounded, so an end a little past the video is expected.
Truth intervals of one activity may overlap (two concurrent incidents are two intervals).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ActivityFigures",
    "AlertEvent",
    "EventFigures",
    "TruthInterval",
    "match_events",
    "read_truth_csv",
    "write_truth_csv",
]

TRUTH_CSV_HEADER = ("start_s", "end_s", "activity")
_SECONDS_PER_HOUR = 3600.0
_TIME_DECIMALS = 3
_RATIO_DECIMALS = 4


_REAL = (int, float, np.integer, np.floating)


def _is_real(value: object) -> bool:
    return isinstance(value, _REAL) and not isinstance(value, bool)


def _check_time(value: float, name: str) -> float:
    if not _is_real(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _check_activity(activity: str) -> None:
    if not isinstance(activity, str) or not activity.strip():
        raise ValueError(f"activity must be a non-empty string, got {activity!r}")


@dataclass(frozen=True, slots=True)
class TruthInterval:
    """An annotated occurrence of an activity, ``[start_s, end_s)``, seconds from video start."""

    start_s: float
    end_s: float
    activity: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_s", _check_time(self.start_s, "TruthInterval start_s"))
        object.__setattr__(self, "end_s", _check_time(self.end_s, "TruthInterval end_s"))
        if self.end_s <= self.start_s:
            raise ValueError(
                f"TruthInterval end_s ({self.end_s}) must be greater than start_s "
                f"({self.start_s}): a zero-length or reversed interval holds nothing to detect"
            )
        _check_activity(self.activity)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert the daemon raised, ``[start_s, end_s)``; ``end_s=None``: open at video end."""

    start_s: float
    end_s: float | None
    activity: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "start_s", _check_time(self.start_s, "AlertEvent start_s"))
        if self.end_s is not None:
            object.__setattr__(self, "end_s", _check_time(self.end_s, "AlertEvent end_s"))
            if self.end_s < self.start_s:
                raise ValueError(
                    f"AlertEvent end_s ({self.end_s}) is before start_s ({self.start_s})"
                )
        _check_activity(self.activity)


def _round(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(float(value), decimals)


@dataclass(frozen=True, slots=True)
class ActivityFigures:
    """What operators feel about one activity's alerts (or all of them, pooled)."""

    intervals: int
    detected: int
    events: int
    matched_events: int
    false_alerts: int
    duplicate_alerts: int
    recall: float | None
    precision: float | None
    false_alerts_per_hour: float
    quiet_s: float
    """Time with no truth interval under way (duration minus the truth union)."""
    quiet_alert_s: float
    """Time in alert during that quiet time."""
    quiet_alert_fraction: float | None
    tta_p50_s: float | None
    tta_p95_s: float | None
    tta_max_s: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: seconds and per-hour rates to 3 decimals, ratios to 4."""
        t, r = _TIME_DECIMALS, _RATIO_DECIMALS
        return {
            "intervals": self.intervals,
            "detected": self.detected,
            "events": self.events,
            "matched_events": self.matched_events,
            "false_alerts": self.false_alerts,
            "duplicate_alerts": self.duplicate_alerts,
            "recall": _round(self.recall, r),
            "precision": _round(self.precision, r),
            "false_alerts_per_hour": _round(self.false_alerts_per_hour, t),
            "quiet_s": _round(self.quiet_s, t),
            "quiet_alert_s": _round(self.quiet_alert_s, t),
            "quiet_alert_fraction": _round(self.quiet_alert_fraction, r),
            "tta_p50_s": _round(self.tta_p50_s, t),
            "tta_p95_s": _round(self.tta_p95_s, t),
            "tta_max_s": _round(self.tta_max_s, t),
        }


@dataclass(frozen=True, slots=True)
class EventFigures:
    """Figures of one video: pooled over activities (`overall`) and per activity."""

    duration_s: float
    overall: ActivityFigures
    per_activity: dict[str, ActivityFigures] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (see `ActivityFigures.as_dict` for the rounding)."""
        return {
            "duration_s": round(self.duration_s, _TIME_DECIMALS),
            "overall": self.overall.as_dict(),
            "per_activity": {name: f.as_dict() for name, f in self.per_activity.items()},
        }


# ---- interval arithmetic ------------------------------------------------------------------


def _union(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Disjoint sorted spans covering the same time; zero-length spans cover none."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _length(union: Sequence[tuple[float, float]]) -> float:
    return float(sum(end - start for start, end in union))


def _intersection_length(
    a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]
) -> float:
    """Shared time of two outputs of `_union` (two-pointer sweep)."""
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return total


def _quiet(
    truth: Sequence[tuple[float, float]], events: Sequence[tuple[float, float]], duration_s: float
) -> tuple[float, float, float | None]:
    """(quiet time, alert time within it, fraction)."""
    truth_u, event_u = _union(truth), _union(events)
    quiet_s = max(0.0, duration_s - _length(truth_u))
    alert_s = max(0.0, _length(event_u) - _intersection_length(event_u, truth_u))
    return quiet_s, alert_s, (alert_s / quiet_s if quiet_s > 0 else None)


# ---- matching -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Matched:
    intervals: int
    detected: int
    events: int
    matched_events: int
    duplicate_alerts: int
    ttas: list[float]


def _match_one_activity(truth: np.ndarray, events: np.ndarray) -> _Matched:
    """Match (n, 2) truth spans with (m, 2) event spans of one activity (see module rules)."""
    n, m = len(truth), len(events)
    if n == 0 or m == 0:
        return _Matched(n, 0, m, 0, 0, [])
    ts, te = truth[:, 0:1], truth[:, 1:2]
    es, ee = events[:, 0], events[:, 1]
    instant = ee == es
    overlap = (es < te) & ((ts < ee) | (instant & (ts <= es)))  # (n, m)
    detected = overlap.any(axis=1)
    matched = overlap.any(axis=0)
    # Events by start, then by input order: the first True in each row is that interval's
    # first event.
    order = np.lexsort((np.arange(m), es))
    first = order[np.argmax(overlap[:, order], axis=1)][detected]
    ttas = np.maximum(0.0, es[first] - truth[detected, 0])
    return _Matched(
        intervals=n,
        detected=int(detected.sum()),
        events=m,
        matched_events=int(matched.sum()),
        duplicate_alerts=int(matched.sum()) - len(set(first.tolist())),
        ttas=[float(x) for x in ttas],
    )


def _figures(
    matched: _Matched, quiet: tuple[float, float, float | None], duration_s: float
) -> ActivityFigures:
    ttas = np.asarray(matched.ttas, dtype=np.float64)
    p50 = p95 = tta_max = None
    if ttas.size:
        p50, p95 = (float(x) for x in np.percentile(ttas, [50, 95], method="linear"))
        tta_max = float(ttas.max())
    false_alerts = matched.events - matched.matched_events
    return ActivityFigures(
        intervals=matched.intervals,
        detected=matched.detected,
        events=matched.events,
        matched_events=matched.matched_events,
        false_alerts=false_alerts,
        duplicate_alerts=matched.duplicate_alerts,
        recall=matched.detected / matched.intervals if matched.intervals else None,
        precision=matched.matched_events / matched.events if matched.events else None,
        false_alerts_per_hour=false_alerts * _SECONDS_PER_HOUR / duration_s,
        quiet_s=quiet[0],
        quiet_alert_s=quiet[1],
        quiet_alert_fraction=quiet[2],
        tta_p50_s=p50,
        tta_p95_s=p95,
        tta_max_s=tta_max,
    )


def _validated(
    truth: Sequence[TruthInterval], events: Sequence[AlertEvent], duration_s: float
) -> tuple[float, list[tuple[float, float, str]], list[tuple[float, float, str]]]:
    if not _is_real(duration_s):
        raise ValueError(f"duration_s must be a number, got {duration_s!r}")
    duration_s = float(duration_s)
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"duration_s must be finite and > 0, got {duration_s}")
    spans_t: list[tuple[float, float, str]] = []
    for i, t in enumerate(truth):
        if not isinstance(t, TruthInterval):
            raise ValueError(f"truth[{i}] is not a TruthInterval: {t!r}")
        if t.end_s > duration_s:
            raise ValueError(
                f"truth[{i}] ({t.activity} {t.start_s}-{t.end_s} s) ends after the video "
                f"(duration_s={duration_s})"
            )
        spans_t.append((t.start_s, t.end_s, t.activity))
    spans_e: list[tuple[float, float, str]] = []
    for i, e in enumerate(events):
        if not isinstance(e, AlertEvent):
            raise ValueError(f"events[{i}] is not an AlertEvent: {e!r}")
        if e.start_s > duration_s:
            raise ValueError(
                f"events[{i}] ({e.activity}) starts at {e.start_s} s, after the video "
                f"(duration_s={duration_s})"
            )
        end = duration_s if e.end_s is None else min(e.end_s, duration_s)
        spans_e.append((e.start_s, end, e.activity))
    return duration_s, spans_t, spans_e


def _array(spans: Sequence[tuple[float, float, str]]) -> np.ndarray:
    return np.array([(s, e) for s, e, _ in spans], dtype=np.float64).reshape(-1, 2)


def match_events(
    truth: Sequence[TruthInterval], events: Sequence[AlertEvent], duration_s: float
) -> EventFigures:
    """Match one video's alert events to its truth intervals (rules in the module docstring).

    Raises ValueError naming the offending item on invalid input.
    """
    duration_s, spans_t, spans_e = _validated(truth, events, duration_s)
    activities = sorted({a for *_, a in spans_t} | {a for *_, a in spans_e})
    per_activity: dict[str, ActivityFigures] = {}
    matches: list[_Matched] = []
    for activity in activities:
        t_a = [s for s in spans_t if s[2] == activity]
        e_a = [s for s in spans_e if s[2] == activity]
        matched = _match_one_activity(_array(t_a), _array(e_a))
        quiet = _quiet([s[:2] for s in t_a], [s[:2] for s in e_a], duration_s)
        per_activity[activity] = _figures(matched, quiet, duration_s)
        matches.append(matched)
    pooled = _Matched(
        intervals=sum(m.intervals for m in matches),
        detected=sum(m.detected for m in matches),
        events=sum(m.events for m in matches),
        matched_events=sum(m.matched_events for m in matches),
        duplicate_alerts=sum(m.duplicate_alerts for m in matches),
        ttas=[x for m in matches for x in m.ttas],
    )
    overall_quiet = _quiet([s[:2] for s in spans_t], [s[:2] for s in spans_e], duration_s)
    return EventFigures(
        duration_s=duration_s,
        overall=_figures(pooled, overall_quiet, duration_s),
        per_activity=per_activity,
    )


# ---- truth CSV ----------------------------------------------------------------------------


def read_truth_csv(text: str) -> list[TruthInterval]:
    """Parse ``start_s,end_s,activity`` rows after that header line, in file order.

    Takes the text, not a path, so callers choose how to read files (and tests need none).
    Blank lines are skipped; a leading byte-order mark (Excel) is ignored; fields are stripped.
    Raises ValueError naming the 1-based line number of the first bad line.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    header_seen = False
    out: list[TruthInterval] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValueError(f"line {reader.line_num}: malformed CSV ({exc})") from None
        line = reader.line_num
        fields = [f.strip() for f in row]
        if not any(fields):
            continue
        if not header_seen:
            if tuple(fields) != TRUTH_CSV_HEADER:
                raise ValueError(
                    f"line {line}: expected the header {','.join(TRUTH_CSV_HEADER)!r}, "
                    f"got {','.join(row)!r}"
                )
            header_seen = True
            continue
        if len(fields) != len(TRUTH_CSV_HEADER):
            raise ValueError(
                f"line {line}: expected 3 fields (start_s,end_s,activity), got {len(fields)}: "
                f"{','.join(row)!r}"
            )
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            raise ValueError(
                f"line {line}: start_s and end_s must be numbers, got {fields[0]!r}, {fields[1]!r}"
            ) from None
        try:
            out.append(TruthInterval(start, end, fields[2]))
        except ValueError as exc:
            raise ValueError(f"line {line}: {exc}") from None
    if not header_seen:
        raise ValueError(f"truth CSV is empty: expected the header {','.join(TRUTH_CSV_HEADER)!r}")
    return out


def write_truth_csv(intervals: Iterable[TruthInterval]) -> str:
    """The text `read_truth_csv` reads back to the same intervals (floats written by repr)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TRUTH_CSV_HEADER)
    for t in intervals:
        writer.writerow((repr(t.start_s), repr(t.end_s), t.activity))
    return buf.getvalue()
