"""Event-level evaluation of a recording: the daemon's alerts on it against annotated truth.

`evaluate_stream` replays the file through the daemon's path (`offline.replay`) and matches its
alerting events to the truth intervals (`offline.matching`): event recall and precision, false
alerts per hour, time to alert, quiet time spent in alert. Several streams (a cross-validation's
folds) pool into one set of figures by laying them end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_daemon.config import DaemonConfig
from har_daemon.core.errors import DataError
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.offline.matching import (
    AlertEvent,
    EventFigures,
    TruthInterval,
    match_events,
    read_truth_csv,
)
from har_daemon.offline.replay import Replay, replay
from har_daemon.runtime.events import Transition


@dataclass(frozen=True)
class StreamRun:
    """One recording's truth, the daemon's alerts on it, and how long it is."""

    truth: list[TruthInterval]
    alerts: list[AlertEvent]
    duration_s: float


@dataclass(frozen=True)
class StreamEvaluation:
    video: Path
    run: Replay
    stream: StreamRun
    figures: EventFigures


def read_truth(path: Path) -> list[TruthInterval]:
    """TRUTH.csv (`start_s,end_s,activity`); a bad file is one line naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read truth file {path}: {exc}") from None
    try:
        return read_truth_csv(text)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None


TRUTH_END_SLACK_S = 0.5
"""How far past a video's end a truth row may end: annotators round times up, headers round
frame counts. More than this is a row for another video, whose span would count as quiet time."""


def check_truth_span(
    truth: Sequence[TruthInterval], duration_s: float, path: Path, video: Path
) -> None:
    """Refuse a truth row that ends after the video does (one line naming it)."""
    for row, iv in enumerate(truth, start=1):
        if iv.end_s > duration_s + TRUTH_END_SLACK_S:
            raise DataError(
                f"{path}: row {row} ({iv.start_s:g},{iv.end_s:g},{iv.activity}) ends after the "
                f"end of {video}, which is {duration_s:.2f} s long"
            )


def alerts_from(transitions: Sequence[Transition]) -> list[AlertEvent]:
    """Each occurrence's start and end (None: still open when the recording ended)."""
    open_at: dict[str, tuple[float, str]] = {}
    alerts: list[AlertEvent] = []
    for tr in transitions:
        if tr.kind == "start":
            open_at[tr.occurrence_id] = (tr.started_at, tr.activity)
        elif tr.kind == "end" and tr.occurrence_id in open_at:
            start, activity = open_at.pop(tr.occurrence_id)
            alerts.append(AlertEvent(start, tr.ended_at or tr.at, activity))
    alerts += [AlertEvent(start, None, activity) for start, activity in open_at.values()]
    return sorted(alerts, key=lambda a: a.start_s)


def check_activities(truth: Sequence[TruthInterval], activities: Sequence[str], path: Path) -> None:
    """`activities`: what the replayed camera can raise (`offline.replay.replay_activities`)."""
    unknown = sorted({iv.activity for iv in truth} - set(activities))
    if unknown:
        raise DataError(
            f"{path}: activit{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
            f"not among what the camera raises: the model's classes and its recognisers' "
            f"activities ({', '.join(activities)})"
        )


def decision_settings(config: DaemonConfig) -> dict[str, Any]:
    """The settings that decide a stream's alerts, as reported beside its figures."""
    inf = config.inference
    return {
        "stride": config.model.stride,
        "smoothing": inf.smoothing,
        "smoothing_window": inf.smoothing_window,
        "enter_threshold": inf.enter_threshold,
        "exit_threshold": inf.exit_threshold,
        "min_windows": inf.min_windows,
    }


def evaluate_stream(
    video: Path,
    truth: list[TruthInterval],
    config: DaemonConfig,
    meta: ModelMeta,
    backend: Backend,
) -> StreamEvaluation:
    run = replay(video, config, meta, backend)
    duration = max(run.duration_s, max((iv.end_s for iv in truth), default=0.0))
    stream = StreamRun(truth, alerts_from(run.transitions), duration)
    return StreamEvaluation(video, run, stream, match_events(truth, stream.alerts, duration))


def pool(streams: Sequence[StreamRun]) -> EventFigures:
    """One set of figures over several recordings, as if played one after the other."""
    truth: list[TruthInterval] = []
    alerts: list[AlertEvent] = []
    offset = 0.0
    for s in streams:
        truth += [
            TruthInterval(iv.start_s + offset, iv.end_s + offset, iv.activity) for iv in s.truth
        ]
        alerts += [
            AlertEvent(
                a.start_s + offset,
                (a.end_s if a.end_s is not None else s.duration_s) + offset,
                a.activity,
            )
            for a in s.alerts
        ]
        offset += s.duration_s
    return match_events(truth, alerts, offset)
