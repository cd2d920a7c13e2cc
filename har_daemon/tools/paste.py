"""`paste-eval`: the synthetic paste test, composites written and replayed through the daemon.

Each held-out clip of the shipped model (its `model.json` test and validation lists: clips it
never trained on) is pasted into a segment of a real quiet scene at each size (`offline.paste`),
the composite encoded as a camera sends it, and replayed as one continuous stream through the
daemon's own path (`offline.replay`, what `predict --events` runs), once per interaction-gate
setting. A fight is found when an alert overlaps the pasted interval; a pasted quiet clip is
alerted when one does; alerts elsewhere in the composite are the scene's own. The same scene
segment with nothing pasted ("scene alone") shows how often the scene itself alerts in that
interval. Every figure is synthetic: real clips and real scenes, but an artificial picture.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.config import DaemonConfig
from har_daemon.core.errors import DataError, VideoError
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.offline.matching import TruthInterval, match_events
from har_daemon.offline.paste import (
    Look,
    Placement,
    Timeline,
    blend,
    case_rng,
    degrade,
    feather_mask,
    place,
    scene_start,
    timeline,
)
from har_daemon.offline.quiet import read_quiet
from har_daemon.offline.replay import replay
from har_daemon.offline.stream_eval import alerts_from
from har_daemon.tools.media import write_video
from har_daemon.video.frames import TimedFrames, probe_video

SPLITS = ("test", "validation")


@dataclass(frozen=True)
class Scene:
    path: Path
    scene: str
    fps: float
    width: int
    height: int
    frames: int


@dataclass(frozen=True)
class HeldOut:
    index: int  # position in the sorted held-out list: the clip's seed key
    rel: str  # as model.json names it
    label: str
    path: Path


@dataclass(frozen=True)
class Options:
    fractions: tuple[float, ...]
    look: Look = field(default_factory=Look)
    repeats: int = 3
    pre_s: float = 3.0
    post_s: float = 2.0
    seed: int = 0


@dataclass(frozen=True)
class CaseResult:
    """One composite replayed under one setting."""

    clip: str
    label: str
    scene: str
    fraction: float | None  # None: the scene segment alone
    gate: str
    interval_s: tuple[float, float]
    hit: bool  # an alert overlaps the pasted interval
    tta_s: float | None
    other_alerts: int  # alerts overlapping nothing pasted: the scene's own

    def as_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "label": self.label,
            "scene": self.scene,
            "fraction": self.fraction,
            "gate": self.gate,
            "interval_s": [round(v, 3) for v in self.interval_s],
            "hit": self.hit,
            "tta_s": None if self.tta_s is None else round(self.tta_s, 3),
            "other_alerts": self.other_alerts,
        }


@dataclass
class SizeRow:
    """One size under one gate setting: the table row."""

    fraction: float | None
    fights: int = 0
    found: int = 0
    quiet: int = 0
    quiet_alerted: int = 0
    ttas: list[float] = field(default_factory=list)
    other_alerts: int = 0
    # The same, counted only where the scene segment alone raised nothing in the interval: an
    # alert there is the pasted clip's doing, not the scene's.
    silent_fights: int = 0
    silent_found: int = 0
    silent_quiet: int = 0
    silent_quiet_alerted: int = 0

    def as_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        p50, p95 = (
            (float(np.percentile(self.ttas, q)) for q in (50, 95)) if self.ttas else (None, None)
        )
        return {
            "fraction": None if self.fraction is None else round(self.fraction, 4),
            "fights": self.fights,
            "fights_found": self.found,
            "fight_recall": r(self.found / self.fights) if self.fights else None,
            "quiet": self.quiet,
            "quiet_alerted": self.quiet_alerted,
            "quiet_alerted_rate": r(self.quiet_alerted / self.quiet) if self.quiet else None,
            "tta_p50_s": r(p50),
            "tta_p95_s": r(p95),
            "other_alerts": self.other_alerts,
            "scene_silent": {
                "fights": self.silent_fights,
                "fights_found": self.silent_found,
                "quiet": self.silent_quiet,
                "quiet_alerted": self.silent_quiet_alerted,
            },
        }


def held_out_clips(meta: ModelMeta, data_dir: Path, splits: Sequence[str]) -> list[HeldOut]:
    """The model's held-out clips of its classes, sorted; those not in `data_dir` are left
    out (the caller reports how many)."""
    names: set[str] = set()
    for split in splits:
        names.update(meta.training.get(f"{split}_clips", []))
    if not names:
        raise DataError(f"model.json of {meta.name} lists no held-out {'/'.join(splits)} clips")
    out = []
    for i, rel in enumerate(sorted(names)):
        label = rel.split("/")[0]
        if label in meta.classes:
            out.append(HeldOut(i, rel, label, data_dir / rel))
    return out


def choose(clips: Sequence[HeldOut], limit: int | None, seed: int) -> list[HeldOut]:
    """At most `limit` clips per label, drawn with `seed` (all of them when None)."""
    out: list[HeldOut] = []
    for label in sorted({c.label for c in clips}):
        mine = [c for c in clips if c.label == label]
        if limit is not None and len(mine) > limit:
            pick = np.random.default_rng([seed, len(mine)]).permutation(len(mine))[:limit]
            mine = [mine[i] for i in sorted(pick)]
        out.extend(mine)
    return out


def read_scenes(quiet_dir: Path) -> list[Scene]:
    """The quiet corpus's clips with their frame counts read from the frames, not headers."""
    out = []
    for clip in read_quiet(quiet_dir):
        info = probe_video(clip.path, exact=True)
        out.append(
            Scene(clip.path, clip.scene, info.fps, info.width, info.height, info.frame_count)
        )
    return out


def _clip_frames(path: Path, max_width: int) -> tuple[list[np.ndarray], float]:
    """The clip's frames, shrunk to at most `max_width` (a pasted clip is never wider)."""
    frames: list[np.ndarray] = []
    timed = TimedFrames(path)
    for _, frame in timed:
        h, w = frame.shape[:2]
        if w > max_width:
            frame = cv2.resize(
                frame, (max_width, round(h * max_width / w)), interpolation=cv2.INTER_AREA
            )
        frames.append(frame)
    if not frames:
        raise VideoError(f"{path}: no frame decoded")
    return frames, timed.fps


def _composite(
    scene: Scene,
    start: int,
    plan: Timeline,
    patches: dict[int, np.ndarray] | None,
    at: Placement | None,
    mask: np.ndarray | None,
) -> Iterator[np.ndarray]:
    """The scene's frames from `start`, the patches laid over them where the plan says."""
    k = -start
    for _, frame in TimedFrames(scene.path):
        if k >= plan.total:
            return
        if k >= 0:
            i = plan.clip_frame(k)
            if i is not None and patches is not None and at is not None and mask is not None:
                frame = blend(frame, patches[i], at, mask)
            yield frame
        k += 1
    if k < plan.total:
        raise VideoError(f"{scene.path}: ended after {k} frames, {plan.total} needed")


class PasteRun:
    """Writes each composite once and replays it under every setting."""

    def __init__(
        self,
        scenes: Sequence[Scene],
        configs: Sequence[tuple[str, DaemonConfig]],
        meta: ModelMeta,
        backend: Backend,
        options: Options,
        work: Path,
        log: Callable[[str], None] = lambda _m: None,
        keep: bool = False,
    ) -> None:
        self.scenes = list(scenes)
        self.configs = list(configs)
        self.meta = meta
        self.backend = backend
        self.options = options
        self.work = work
        self.log = log
        self.keep = keep
        self.alert = self._alert_class()

    def _alert_class(self) -> str:
        inf = self.configs[0][1].inference
        alerting = [c for c in inf.alert_activities if c in self.meta.classes]
        if not alerting:
            raise DataError(f"no [inference] alert_activities among {self.meta.classes}")
        return alerting[0]

    def clip(self, clip: HeldOut, with_scene_alone: bool = True) -> list[CaseResult]:
        """Every size of one clip (and the scene segment alone), under every setting."""
        o = self.options
        frames, fps = _clip_frames(clip.path, max(s.width for s in self.scenes))
        need_s = o.pre_s + o.post_s + o.repeats * len(frames) / fps + 0.5
        fits = [s for s in self.scenes if s.frames / s.fps >= need_s]
        if not fits:
            raise DataError(f"no quiet scene is {need_s:.1f} s long, as {clip.rel} needs")
        rng = case_rng(o.seed, clip.index)
        scene = fits[int(rng.integers(len(fits)))]
        plan = timeline(
            len(frames), fps, scene.fps, repeats=o.repeats, pre_s=o.pre_s, post_s=o.post_s
        )
        start = scene_start(scene.frames, plan.total, rng)
        h, w = frames[0].shape[:2]
        out: list[CaseResult] = []
        sizes: list[float | None] = [*o.fractions, *([None] if with_scene_alone else [])]
        for n, fraction in enumerate(sizes, start=1):
            video = self.work / f"{Path(clip.rel).stem}-{n}.mp4"
            if fraction is None:
                stream = _composite(scene, start, plan, None, None, None)
            else:
                at = place(
                    (scene.width, scene.height), (w, h), fraction, case_rng(o.seed, clip.index, n)
                )
                patches = {
                    i: degrade(frames[i], at.width, at.height, o.look) for i in set(plan.indices)
                }
                mask = feather_mask(at.width, at.height, o.look.feather_px)
                stream = _composite(scene, start, plan, patches, at, mask)
            write_video(video, stream, scene.fps, (scene.width, scene.height))
            for gate, config in self.configs:
                out.append(self._judge(clip, scene, fraction, gate, config, video, plan))
            if not self.keep:
                video.unlink()
        return out

    def _judge(
        self,
        clip: HeldOut,
        scene: Scene,
        fraction: float | None,
        gate: str,
        config: DaemonConfig,
        video: Path,
        plan: Timeline,
    ) -> CaseResult:
        run = replay(video, config, self.meta, self.backend)
        duration = max(run.duration_s, plan.interval_s[1])
        alerts = [a for a in alerts_from(run.transitions) if a.activity == self.alert]
        start_s, end_s = plan.interval_s
        figures = match_events([TruthInterval(start_s, end_s, self.alert)], alerts, duration)
        f = figures.overall
        return CaseResult(
            clip.rel,
            clip.label,
            scene.path.name,
            fraction,
            gate,
            plan.interval_s,
            f.detected > 0,
            f.tta_p50_s,
            f.false_alerts,
        )


def run_paste(
    clips: Sequence[HeldOut],
    scenes: Sequence[Scene],
    configs: Sequence[tuple[str, DaemonConfig]],
    meta: ModelMeta,
    backend: Backend,
    options: Options,
    log: Callable[[str], None] = lambda _m: None,
    keep: Path | None = None,
) -> list[CaseResult]:
    """Every clip at every size under every setting (composites in a temporary folder, or
    kept in `keep` to look at)."""
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="har-paste-") as tmp:
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
        work = keep if keep is not None else Path(tmp)
        runner = PasteRun(scenes, configs, meta, backend, options, work, log, keep is not None)
        for n, clip in enumerate(clips, start=1):
            mine = runner.clip(clip)
            results.extend(mine)
            hits = sum(r.hit for r in mine if r.fraction is not None)
            log(f"[{n}/{len(clips)}] {clip.rel} in {mine[0].scene}: {hits} pasted hit(s)")
    return results


def size_rows(results: Sequence[CaseResult], gate: str, alert: str) -> list[SizeRow]:
    """One row per size (largest first), then the scene alone (every segment counted as
    quiet: nothing is pasted in it), for one gate setting."""
    mine = [r for r in results if r.gate == gate]
    keys = sorted({r.fraction for r in mine if r.fraction is not None}, reverse=True)
    rows = {k: SizeRow(k) for k in [*keys, None]}
    scene_alone = {r.clip: r.hit for r in mine if r.fraction is None}
    for r in mine:
        row = rows[r.fraction]
        row.other_alerts += r.other_alerts
        silent = not scene_alone.get(r.clip, True)
        if r.label == alert and r.fraction is not None:
            row.fights += 1
            row.found += r.hit
            row.silent_fights += silent
            row.silent_found += silent and r.hit
            if r.tta_s is not None:
                row.ttas.append(r.tta_s)
        else:
            row.quiet += 1
            row.quiet_alerted += r.hit
            row.silent_quiet += silent
            row.silent_quiet_alerted += silent and r.hit
    return list(rows.values())
