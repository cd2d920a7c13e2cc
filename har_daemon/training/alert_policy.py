"""The daemon's event settings chosen for a false-alert budget, on validation streams.

A clip-level threshold says nothing about alerts: what a guard sees depends on the smoothing,
the enter threshold and `min_windows` applied to a stream of overlapping windows. So the
settings are chosen where they act, at the event level: validation clips (held out of training,
never the test clips) joined into streams (`offline.streams`), replayed through the daemon's
own path (`offline.replay`), and the alerts matched to the incidents (`offline.matching`). The
rule is a budget, not maximum recall: among the settings whose false alerts per hour of quiet
validation footage stay within the budget (0 by default: none at all), the one that finds the
most incidents, then the fastest (time to alert p95), then the most cautious (highest enter
threshold, most windows).

One replay per smoothing setting is enough for every threshold: the windows' smoothed scores
(each region smoothed on its own track, the most alarming region speaking for the camera) do not
depend on the thresholds, so `resimulate` feeds them to the daemon's `ActivityTracker` for each
threshold setting, and the tracker is told to finish exactly where the daemon's was (a window
with nobody in it, the end of the file), so the re-run raises the daemon's alerts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from har_daemon.config import DaemonConfig
from har_daemon.offline.matching import AlertEvent, EventFigures, TruthInterval
from har_daemon.offline.replay import Replay
from har_daemon.offline.stream_eval import StreamRun, alerts_from, pool
from har_daemon.runtime.policy import DecisionPolicy

ENTER_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
MIN_WINDOWS: tuple[int, ...] = (1, 2, 3)
SMOOTHING_WINDOWS: tuple[int, ...] = (1, 2, 3)


@dataclass(frozen=True, order=True)
class Setting:
    """One choice of the [inference] settings that turn window scores into events."""

    smoothing_window: int
    enter_threshold: float
    min_windows: int
    exit_threshold: float

    def config(self, base: DaemonConfig) -> DaemonConfig:
        """`base` with these settings (mean smoothing)."""
        inference = base.inference.model_copy(
            update={"smoothing": "mean", **asdict(self)}, deep=True
        )
        return base.model_copy(update={"inference": inference})

    def as_dict(self) -> dict[str, Any]:
        return {"smoothing": "mean", **asdict(self)}


def grid(
    smoothing_windows: Sequence[int] = SMOOTHING_WINDOWS,
    enter_thresholds: Sequence[float] = ENTER_THRESHOLDS,
    min_windows: Sequence[int] = MIN_WINDOWS,
    exit_threshold: float = 0.4,
) -> list[Setting]:
    """Every combination; the exit threshold stays below the enter threshold."""
    return [
        Setting(w, e, m, min(exit_threshold, round(e - 0.1, 3)))
        for w, e, m in itertools.product(smoothing_windows, enter_thresholds, min_windows)
    ]


@dataclass(frozen=True)
class Recording:
    """What a replay fed to the camera's tracker: each window's time and smoothed scores."""

    times: np.ndarray
    smoothed: np.ndarray  # (windows, classes)
    classes: list[str]
    background: list[str]
    finishes: np.ndarray  # times the daemon's tracker was told to finish
    duration_s: float
    truth: list[TruthInterval]


def record(run: Replay, truth: Sequence[TruthInterval]) -> Recording:
    times = np.array([w.window_end for w in run.windows], np.float64)
    smoothed = np.array([w.smoothed for w in run.windows], np.float64).reshape(
        len(times), len(run.classes)
    )
    finishes = np.array(run.finishes, np.float64)
    duration = max(run.duration_s, max((iv.end_s for iv in truth), default=0.0))
    return Recording(
        times, smoothed, list(run.classes), list(run.background), finishes, duration, list(truth)
    )


def resimulate(rec: Recording, policy: DecisionPolicy) -> list[AlertEvent]:
    """The alerts the daemon's tracker raises on `rec` under `policy`'s thresholds."""
    tracker = policy.tracker(rec.classes)
    transitions = []
    # Windows and finishes in time order; a finish at a window's time (the file ended right
    # after it) comes after it.
    steps = [(float(t), 0, i) for i, t in enumerate(rec.times)]
    steps += [(float(t), 1, -1) for t in rec.finishes]
    for t, finish, i in sorted(steps):
        transitions += tracker.finish(t) if finish else tracker.step(rec.smoothed[i], now=t)
    return alerts_from(transitions)


@dataclass(frozen=True)
class Outcome:
    setting: Setting
    figures: EventFigures
    quiet_s: float

    @property
    def false_alerts_per_quiet_hour(self) -> float:
        f = self.figures.overall
        return f.false_alerts / (self.quiet_s / 3600.0) if self.quiet_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.setting.as_dict(),
            "figures": self.figures.overall.as_dict(),
            "false_alerts_per_quiet_hour": round(self.false_alerts_per_quiet_hour, 3),
        }


def evaluate_settings(
    recordings: dict[int, Sequence[Recording]],
    settings: Sequence[Setting],
    base: DaemonConfig,
) -> list[Outcome]:
    """Each setting's pooled figures over `recordings` (by smoothing window: one replay each)."""
    out = []
    for s in settings:
        inference = s.config(base).inference
        runs = [
            StreamRun(
                rec.truth,
                resimulate(rec, DecisionPolicy.from_config(inference, rec.background)),
                rec.duration_s,
            )
            for rec in recordings[s.smoothing_window]
        ]
        figures = pool(runs)
        out.append(Outcome(s, figures, figures.overall.quiet_s))
    return out


def choose(outcomes: Sequence[Outcome], budget_per_hour: float = 0.0) -> Outcome:
    """Within the false-alert budget: most incidents found, then the lowest time-to-alert p95,
    then the most cautious setting. With none within budget, the one with the fewest false
    alerts (the budget is then reported as missed)."""
    if not outcomes:
        raise ValueError("no settings to choose from")

    def caution(o: Outcome) -> tuple[float, ...]:
        s = o.setting
        return (-s.enter_threshold, -s.min_windows, -s.smoothing_window)

    within = [o for o in outcomes if o.false_alerts_per_quiet_hour <= budget_per_hour + 1e-9]
    if not within:
        return min(outcomes, key=lambda o: (o.figures.overall.false_alerts, *caution(o)))

    def key(o: Outcome) -> tuple[float, ...]:
        f = o.figures.overall
        p95 = f.tta_p95_s if f.tta_p95_s is not None else math.inf
        return (-(f.recall or 0.0), p95, *caution(o))

    return min(within, key=key)
