"""False alerts on quiet footage, per scene: what a guard in front of each camera would get.

A folder of everyday recordings from fixed cameras (`sources.csv`: `clip` and `scene`, no
incident anywhere) is replayed clip by clip through the daemon's own path (`offline.replay`);
every alert is a false one. Figures are per scene (camera view), never per clip: cameras differ
far more than clips of one camera, and a budget of false alerts is a camera's. Durations are
the frames actually read (`Replay.duration_s`), never a container's header (CAVIAR's MPEG-1
files claim 0.17 s for 15 s of video).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_daemon.config import DaemonConfig
from har_daemon.core.errors import DataError, VideoError
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.offline.matching import AlertEvent, match_events
from har_daemon.offline.replay import Replay, replay
from har_daemon.offline.stream_eval import alerts_from

SOURCES_FILE = "sources.csv"


@dataclass(frozen=True)
class QuietClip:
    path: Path
    scene: str


@dataclass(frozen=True)
class QuietRun:
    """One clip replayed: its alerts (all false), or why it gave no window."""

    clip: QuietClip
    duration_s: float
    alerts: list[AlertEvent]
    run: Replay | None
    error: str | None = None


@dataclass(frozen=True)
class SceneFigures:
    scene: str
    clips: int
    footage_s: float
    windows: int
    false_alerts: int
    alert_s: float
    skipped: list[str]  # clips that gave no window, with why

    @property
    def false_alerts_per_hour(self) -> float | None:
        return self.false_alerts / (self.footage_s / 3600.0) if self.footage_s > 0 else None

    @property
    def alert_s_per_hour(self) -> float | None:
        return self.alert_s / (self.footage_s / 3600.0) if self.footage_s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 2)

        return {
            "scene": self.scene,
            "clips": self.clips,
            "footage_s": round(self.footage_s, 2),
            "windows": self.windows,
            "false_alerts": self.false_alerts,
            "false_alerts_per_hour": r(self.false_alerts_per_hour),
            "alert_s": round(self.alert_s, 2),
            "alert_s_per_hour": r(self.alert_s_per_hour),
            "skipped": self.skipped,
        }


def scene_key(description: str) -> str:
    """A scene's name: its description up to the first comma ("shopping-centre corridor
    (Lisbon), wide-angle ..." -> "shopping-centre corridor (Lisbon)")."""
    return description.split(",")[0].strip()


def read_quiet(folder: Path) -> list[QuietClip]:
    """The clips of `folder/sources.csv` in its order; one line naming the problem if the
    file or a clip is missing."""
    path = folder / SOURCES_FILE
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not rows or not {"clip", "scene"} <= set(rows[0]):
        raise DataError(f"{path}: needs the columns clip and scene")
    clips = [QuietClip(folder / r["clip"], scene_key(r["scene"])) for r in rows]
    missing = [c.path.name for c in clips if not c.path.is_file()]
    if missing:
        raise DataError(f"{path}: clip {missing[0]} is not in {folder}")
    return clips


def replay_quiet(
    clips: Sequence[QuietClip],
    config: DaemonConfig,
    meta: ModelMeta,
    backend: Backend,
    log: Callable[[str], None] = lambda _m: None,
) -> list[QuietRun]:
    """Each clip through the daemon's path; a clip too short for one window is kept, with
    its reason, and counts no footage (the daemon could not have alerted on it)."""
    out = []
    for clip in clips:
        try:
            run = replay(clip.path, config, meta, backend)
        except VideoError as exc:
            out.append(QuietRun(clip, 0.0, [], None, str(exc)))
            log(f"{clip.path.name}: skipped ({exc})")
            continue
        alerts = [
            AlertEvent(a.start_s, a.end_s if a.end_s is not None else run.duration_s, a.activity)
            for a in alerts_from(run.transitions)
        ]
        out.append(QuietRun(clip, run.duration_s, alerts, run))
        log(f"{clip.path.name}: {run.duration_s:.1f} s, {len(alerts)} alert(s)")
    return out


def scene_figures(runs: Sequence[QuietRun]) -> list[SceneFigures]:
    """One row per scene, in order of first appearance, then "all scenes"."""
    scenes: dict[str, list[QuietRun]] = {}
    for r in runs:
        scenes.setdefault(r.clip.scene, []).append(r)
    rows = [_figures(name, group) for name, group in scenes.items()]
    return [*rows, _figures("all scenes", list(runs))]


def _figures(scene: str, runs: Sequence[QuietRun]) -> SceneFigures:
    alerts = 0
    alert_s = 0.0
    for r in runs:
        if r.run is None:
            continue
        f = match_events([], r.alerts, max(r.duration_s, 1e-9)).overall
        alerts += f.false_alerts
        alert_s += f.quiet_alert_s
    return SceneFigures(
        scene,
        len(runs),
        sum(r.duration_s for r in runs),
        sum(len(r.run.windows) for r in runs if r.run is not None),
        alerts,
        alert_s,
        [f"{r.clip.path.name}: {r.error}" for r in runs if r.error],
    )


def format_scenes(rows: Sequence[SceneFigures]) -> str:
    """The per-scene table: false alerts and alert time per camera-hour."""

    def v(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    width = max(len(r.scene) for r in rows)
    lines = [
        f"{'scene':<{width}}  clips  footage_s  windows  false  FA/hour  alert_s  alert_s/hour"
    ]
    for r in rows:
        lines.append(
            f"{r.scene:<{width}}  {r.clips:>5}  {r.footage_s:>9.1f}  {r.windows:>7}  "
            f"{r.false_alerts:>5}  {v(r.false_alerts_per_hour):>7}  {r.alert_s:>7.1f}  "
            f"{v(r.alert_s_per_hour):>12}"
        )
    return "\n".join(lines)
