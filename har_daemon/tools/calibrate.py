"""Calibrating a camera's threshold on its normal footage, and checking that it holds.

`calibrate_camera` replays recordings of one camera through the daemon's path once, keeps each
window's smoothed scores (`training.alert_policy.record`) and feeds them to the daemon's
tracker at every candidate threshold (`resimulate`): the scores do not depend on the
threshold, so one replay serves them all. `split_check` measures what calibration is worth on
footage it never saw: each scene's quiet footage is cut in time, the first part calibrates,
the rest is counted before and after; `recall_at` says how many incidents of a held-out fight
stream the calibrated thresholds still find.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from har_daemon.config import DaemonConfig
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.offline.matching import EventFigures
from har_daemon.offline.quiet import QuietRun
from har_daemon.offline.replay import replay
from har_daemon.offline.stream_eval import StreamRun, pool
from har_daemon.runtime.calibration import (
    Calibration,
    allowed_alerts,
    candidates,
    choose_threshold,
)
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.training.alert_policy import Recording, record, resimulate


def alerts_at(recordings: Sequence[Recording], config: DaemonConfig, threshold: float) -> int:
    """False alerts the daemon's tracker raises on quiet `recordings` at `threshold`."""
    return sum(len(resimulate(rec, _policy(rec, config, threshold))) for rec in recordings)


def _policy(rec: Recording, config: DaemonConfig, threshold: float) -> DecisionPolicy:
    """The daemon's policy for the recording's model, at the camera's `threshold`."""
    return DecisionPolicy.from_config(config.inference, rec.background).with_enter_threshold(
        threshold
    )


def calibrate(
    recordings: Sequence[Recording],
    config: DaemonConfig,
    budget_per_day: float,
    sources: Sequence[str],
) -> Calibration:
    """The lowest threshold, from [inference]'s up, within the budget on `recordings`."""
    footage = sum(rec.duration_s for rec in recordings)
    floor = config.inference.enter_threshold
    threshold, alerts, ok = choose_threshold(
        lambda t: alerts_at(recordings, config, t),
        candidates(floor),
        allowed_alerts(budget_per_day, footage),
    )
    return Calibration(
        enter_threshold=threshold,
        budget_per_day=budget_per_day,
        footage_s=round(footage, 2),
        alerts_on_footage=alerts,
        alerts_before=alerts_at(recordings, config, floor),
        within_budget=ok,
        sources=tuple(sources),
        calibrated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )


def calibrate_camera(
    videos: Sequence[Path],
    config: DaemonConfig,
    meta: ModelMeta,
    backend: Backend,
    budget_per_day: float,
) -> Calibration:
    """Replay the camera's `videos` (normal footage, no incident) and calibrate on them."""
    recordings = [record(replay(v, config, meta, backend), []) for v in videos]
    return calibrate(recordings, config, budget_per_day, [str(v) for v in videos])


# -- checking it on footage calibration never saw ---------------------------------------------


def cut(rec: Recording, start_s: float, end_s: float, span_s: float) -> Recording:
    """The part of `rec` between `start_s` and `end_s`: the windows whose frames all lie in it,
    the tracker told to finish at its end."""
    keep = (rec.times - span_s >= start_s - 1e-6) & (rec.times <= end_s + 1e-6)
    finishes = rec.finishes[(rec.finishes >= start_s) & (rec.finishes < end_s)]
    return replace(
        rec,
        times=rec.times[keep],
        smoothed=rec.smoothed[keep],
        finishes=np.append(finishes, end_s),
        duration_s=end_s - start_s,
    )


def split_scene(
    runs: Sequence[QuietRun], fraction: float, span_s: float
) -> tuple[list[Recording], list[Recording]]:
    """A scene's footage, its clips one after the other, cut at `fraction` of its length:
    (the part before, the part after); a clip across the cut is cut too."""
    total = sum(r.duration_s for r in runs if r.run is not None)
    at = fraction * total
    before: list[Recording] = []
    after: list[Recording] = []
    offset = 0.0
    for r in runs:
        if r.run is None:
            continue
        rec = record(r.run, [])
        local = at - offset
        if local >= r.duration_s:
            before.append(rec)
        elif local <= 0:
            after.append(rec)
        else:
            before.append(cut(rec, 0.0, local, span_s))
            after.append(cut(rec, local, r.duration_s, span_s))
        offset += r.duration_s
    return before, after


@dataclass(frozen=True)
class SceneCheck:
    scene: str
    calibration: Calibration
    rest_s: float
    rest_alerts_before: int
    rest_alerts_after: int

    def as_dict(self) -> dict[str, Any]:
        hours = self.rest_s / 3600.0
        return {
            "scene": self.scene,
            "calibrated_on_s": self.calibration.footage_s,
            "enter_threshold": self.calibration.enter_threshold,
            "within_budget": self.calibration.within_budget,
            "measured_on_s": round(self.rest_s, 2),
            "false_alerts_before": self.rest_alerts_before,
            "false_alerts_after": self.rest_alerts_after,
            "per_hour_before": round(self.rest_alerts_before / hours, 1) if hours else None,
            "per_hour_after": round(self.rest_alerts_after / hours, 1) if hours else None,
        }


def split_check(
    runs: Sequence[QuietRun],
    config: DaemonConfig,
    budget_per_day: float,
    fraction: float,
    span_s: float,
) -> list[SceneCheck]:
    """Per scene: calibrate on its first `fraction`, count false alerts on the rest at the
    configured threshold and at the calibrated one."""
    scenes: dict[str, list[QuietRun]] = {}
    for r in runs:
        scenes.setdefault(r.clip.scene, []).append(r)
    out = []
    for scene, group in scenes.items():
        first, rest = split_scene(group, fraction, span_s)
        if not first or not rest:
            continue
        cal = calibrate(first, config, budget_per_day, [str(r.clip.path) for r in group])
        out.append(
            SceneCheck(
                scene,
                cal,
                sum(rec.duration_s for rec in rest),
                alerts_at(rest, config, config.inference.enter_threshold),
                alerts_at(rest, config, cal.enter_threshold),
            )
        )
    return out


def recall_at(streams: Sequence[Recording], config: DaemonConfig, threshold: float) -> EventFigures:
    """Incident streams' pooled figures with the camera's threshold at `threshold`."""
    runs = [
        StreamRun(rec.truth, resimulate(rec, _policy(rec, config, threshold)), rec.duration_s)
        for rec in streams
    ]
    return pool(runs)
