"""Each fold's held-out clips as one test stream, scored by that fold's model alone.

Cross-validation tests every clip once, by a model that never saw its source video; the same
holds here at the event level: fold i's stream holds only fold i's test clips (or validation
clips, to choose the alert settings) and only fold i's model replays it. The pooled figures
(`offline.stream_eval.pool`) then cover all the quiet footage and every incident exactly once.

Quiet clips that `training.assemble` cut into pieces go into the stream whole (their original
recording, once): every piece of a recording is in one source group, so the whole recording is
held out by the same fold, and longer quiet footage is what a camera shows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from har_daemon.config import DaemonConfig
from har_daemon.core.errors import DataError
from har_daemon.model.meta import read_meta
from har_daemon.model.registry import create_backend
from har_daemon.offline.matching import EventFigures
from har_daemon.offline.replay import replay
from har_daemon.offline.stream_eval import (
    StreamRun,
    decision_settings,
    evaluate_stream,
    pool,
    read_truth,
)
from har_daemon.offline.streams import (
    BuiltStream,
    Join,
    StreamClip,
    build_stream,
    plan_stream,
    read_manifest,
)
from har_daemon.training.alert_policy import (
    Outcome,
    Recording,
    Setting,
    choose,
    evaluate_settings,
    record,
)
from har_daemon.training.assemble import read_origins
from har_daemon.training.dataset import scan_dataset

Split = Literal["test", "validation"]
STREAM_FILE = "stream.mp4"


@dataclass(frozen=True)
class FoldClips:
    fold: int
    model_dir: Path
    clips: list[StreamClip]


def stream_clips(relative: Sequence[str], data_dir: Path) -> list[StreamClip]:
    """The clips named relative to `data_dir`, labelled and grouped as `scan_dataset` does;
    pieces of one recording become that recording, once."""
    records = {}
    for r in scan_dataset(data_dir):  # named relative to the folder, or (older runs) absolute
        records[Path(os.path.relpath(r.path, data_dir)).as_posix()] = r
        records[os.path.abspath(r.path)] = r
    origins = read_origins(data_dir)
    out: list[StreamClip] = []
    seen: set[Path] = set()
    for rel in relative:
        rec = records.get(rel)
        if rec is None:
            raise DataError(f"{data_dir}: clip {rel} is not in the dataset")
        path = rec.path
        origin = origins.get(rec.path.stem)
        if origin is not None and origin[1] is not None:
            path = origin[0]
        if path in seen:
            continue
        seen.add(path)
        out.append(StreamClip(path, rec.label, rec.group))
    return out


def folds_from_cv(cv_dir: Path, data_dir: Path, split: Split) -> list[FoldClips]:
    """The folds of a `har-daemon cv` report: each one's held-out clips and model."""
    path = Path(cv_dir) / "cv.json"
    try:
        cv = json.loads(path.read_text())
        docs = cv["folds"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a cross-validation report ({exc})") from None
    key = "test_clips" if split == "test" else "validation_clips"
    out = []
    for d in docs:
        if key not in d:
            raise DataError(f"{path}: fold {d.get('fold')} lists no {key.replace('_', ' ')}")
        out.append(FoldClips(int(d["fold"]), Path(cv_dir) / d["model_dir"], []))
        out[-1].clips.extend(stream_clips(d[key], data_dir))
    return out


def folds_from_model(model_dir: Path, data_dir: Path, split: Split) -> list[FoldClips]:
    """One model's held-out clips (its test or validation split) as a single fold."""
    meta = read_meta(model_dir)
    key = "test_clips" if split == "test" else "validation_clips"
    clips = meta.training.get(key)
    if not clips:
        raise DataError(f"{model_dir}: model.json lists no {key.replace('_', ' ')}")
    return [FoldClips(1, Path(model_dir), stream_clips(clips, data_dir))]


def build_fold_streams(
    folds: Sequence[FoldClips],
    out: Path,
    alert: str,
    *,
    join: Join = "source",
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    seed: int = 0,
    log: Callable[[str], None] = lambda _m: None,
) -> list[BuiltStream]:
    """`out/fold_<i>/stream.mp4` with its TRUTH.csv and clips.csv; a stream already there with
    the same clips in the same order is kept."""
    built = []
    for f in folds:
        video = Path(out) / f"fold_{f.fold}" / STREAM_FILE
        plan = plan_stream(f.clips, alert, join=join, seed=seed + f.fold)
        wanted = [str(c.path) for s in plan for c in s.clips]
        manifest = video.parent / "clips.csv"
        if video.is_file() and manifest.is_file():
            placed = read_manifest(manifest)
            if [str(p.clip.path) for p in placed] == wanted:
                truth = read_truth(video.parent / "TRUTH.csv")
                duration = placed[-1].end_s if placed else 0.0
                built.append(BuiltStream(video, truth, placed, duration, fps, size))
                log(f"fold {f.fold}: kept {video}")
                continue
        built.append(build_stream(plan, video, size=size, fps=fps))
        log(f"fold {f.fold}: {len(wanted)} clips, {built[-1].duration_s:.0f} s -> {video}")
    return built


@dataclass(frozen=True)
class FoldResult:
    fold: int
    stream: BuiltStream
    run: StreamRun
    figures: EventFigures
    cuts: int
    no_person_windows: int
    setting: dict[str, Any]
    windows_per_incident: list[int]  # windows ending inside each truth interval: what it had
    quiet_windows: int  # windows ending outside every truth interval


def evaluate_folds(
    folds: Sequence[FoldClips],
    streams: Sequence[BuiltStream],
    configs: Sequence[DaemonConfig],
    backend: str,
) -> list[FoldResult]:
    """Each fold's stream replayed by its own model, with its own settings."""
    out = []
    for f, s, config in zip(folds, streams, configs, strict=True):
        loaded = create_backend(backend, f.model_dir)
        result = evaluate_stream(s.video, s.truth, config, loaded.meta, loaded)
        setting = decision_settings(config)
        ends = [w.window_end for w in result.run.windows]
        per_incident = [sum(t.start_s <= e < t.end_s for e in ends) for t in s.truth]
        out.append(
            FoldResult(
                f.fold,
                s,
                result.stream,
                result.figures,
                result.run.cuts,
                result.run.no_person_windows,
                setting,
                per_incident,
                len(ends) - sum(per_incident),
            )
        )
    return out


def pooled(results: Sequence[FoldResult]) -> EventFigures:
    return pool([r.run for r in results])


def record_folds(
    folds: Sequence[FoldClips],
    streams: Sequence[BuiltStream],
    base: DaemonConfig,
    backend: str,
    smoothing_windows: Sequence[int],
) -> dict[int, dict[int, Recording]]:
    """fold -> smoothing window -> what its replay fed the tracker (one replay each)."""
    out: dict[int, dict[int, Recording]] = {}
    for f, s in zip(folds, streams, strict=True):
        loaded = create_backend(backend, f.model_dir)
        meta = loaded.meta
        out[f.fold] = {}
        for w in smoothing_windows:
            config = Setting(w, 0.5, 1, 0.4).config(base)
            run = replay(s.video, config, meta, loaded)
            out[f.fold][w] = record(run, s.truth)
    return out


def sweep(
    recordings: dict[int, dict[int, Recording]],
    settings: Sequence[Setting],
    base: DaemonConfig,
    budget_per_hour: float,
) -> dict[str, Any]:
    """Per fold: every setting's figures and the chosen one; and one choice over all folds."""
    windows = sorted({s.smoothing_window for s in settings})
    doc: dict[str, Any] = {"budget_false_alerts_per_quiet_hour": budget_per_hour, "folds": {}}
    for fold, by_window in recordings.items():
        outcomes = evaluate_settings({w: [by_window[w]] for w in windows}, settings, base)
        doc["folds"][str(fold)] = _choice(outcomes, budget_per_hour)
    everyone = {w: [by_window[w] for by_window in recordings.values()] for w in windows}
    doc["pooled"] = _choice(evaluate_settings(everyone, settings, base), budget_per_hour)
    return doc


def _choice(outcomes: Sequence[Outcome], budget: float) -> dict[str, Any]:
    best = choose(outcomes, budget)
    return {
        "chosen": best.as_dict(),
        "within_budget": best.false_alerts_per_quiet_hour <= budget + 1e-9,
        "settings": [o.as_dict() for o in outcomes],
    }
