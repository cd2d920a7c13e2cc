"""A recording through the daemon's own path, to see on a file exactly what it would raise live.

Nothing here re-implements the daemon: the file is read by the daemon's capture code (sampled
at the model's spacing, resized or kept at working resolution, cut detection restarting the
ring), and each sampled frame runs the daemon's inference step (person stage, crops, batching,
smoothing, the activity tracker, and the camera's other recognisers: a fall recogniser raises
its `fall` events here as live) at once, synchronously, as the daemon does with a file read as
fast as possible. Frames are stamped with their position in the file, so every time below is
seconds from the start of the video.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from har_daemon.config import CameraConfig, DaemonConfig
from har_daemon.core.errors import ConfigError, VideoError
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.runtime.cameras import build_cameras
from har_daemon.runtime.capture import check_file_source
from har_daemon.runtime.events import Transition
from har_daemon.runtime.inference import GapResult, InferenceScheduler, WindowResult
from har_daemon.runtime.recognisers import ActivityResult
from har_daemon.runtime.stats import collect_raw
from har_daemon.runtime.zones import zone_problem

REPLAY_CAMERA = "replay"


@dataclass
class Replay:
    """What the daemon would have done with one file."""

    classes: list[str]
    background: list[str] = field(default_factory=list)  # the model's background classes
    windows: list[WindowResult] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    duration_s: float = 0.0
    frames_read: int = 0
    cuts: int = 0
    no_person_windows: int = 0
    window_span_s: float = 0.0
    finishes: list[float] = field(default_factory=list)  # where the tracker was told to finish
    zones: list[list[str] | None] = field(default_factory=list)  # per transition, with zones
    counters: dict[str, Any] = field(default_factory=dict)
    """The camera's stats at the end, as the daemon publishes them (plain numbers)."""

    def events(self) -> list[dict[str, Any]]:
        """The events the daemon would publish (without ids and sequence numbers)."""
        return [
            {**transition_dict(tr), **({"zones": z} if z is not None else {})}
            for tr, z in zip(self.transitions, self.zones, strict=True)
        ]


def transition_dict(tr: Transition) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": tr.kind,
        "activity": tr.activity,
        "at_s": round(tr.at, 3),
        "started_at_s": round(tr.started_at, 3),
        "confidence": round(float(tr.confidence), 4),
        "peak_confidence": round(float(tr.peak_confidence), 4),
    }
    if tr.kind == "end":
        out["duration_s"] = round(tr.duration_s, 3)
        out["reason"] = tr.reason
    if tr.signal is not None:
        out.update(tr.signal.fields())
    if tr.down_s is not None:  # a fall: "down for N s", as the daemon's payload says it
        out["down_s"] = round(float(tr.down_s), 1)
    return out


def chosen_camera(config: DaemonConfig, camera: str | None = None) -> CameraConfig | None:
    """The configuration's camera named `camera` (default: the first; None without cameras),
    whose drawing and recognisers a replay takes."""
    named = {c.name: c for c in config.cameras}
    if camera is not None and camera not in named:
        known = ", ".join(named) or "none"
        raise ConfigError(f"--camera: no camera {camera!r} in the configuration (cameras: {known})")
    if not config.cameras:
        return None
    return named[camera] if camera is not None else config.cameras[0]


def replay_camera(
    video: Path, config: DaemonConfig, meta: ModelMeta, camera: str | None = None
) -> CameraConfig:
    """The file as a camera: with the zones, masks and recognisers of the configuration's camera
    named `camera` (default: the first), so a recording of that camera replays as it runs."""
    drawing: dict[str, Any] = {}
    first = chosen_camera(config, camera)
    if first is not None:
        problem = zone_problem(first, meta)
        if problem is not None:
            raise ConfigError(f"cameras: {problem}")
        drawing = first.model_dump(
            include={"zones", "masks", "required_zones", "recognisers"}, exclude_unset=True
        )
    return CameraConfig(name=REPLAY_CAMERA, source=str(video), realtime=False, **drawing)


def replay_activities(
    config: DaemonConfig, meta: ModelMeta, camera: str | None = None
) -> list[str]:
    """What the replayed camera can raise: the model's classes, then its other recognisers'
    activities (`fall`), so truth may name them."""
    chosen = chosen_camera(config, camera)
    others = chosen.recogniser_activities if chosen is not None else []
    return list(meta.classes) + [a for a in others if a not in meta.classes]


def replay(
    video: Path,
    config: DaemonConfig,
    meta: ModelMeta,
    backend: Backend,
    *,
    on_window: Callable[[WindowResult], None] | None = None,
    camera: str | None = None,
) -> Replay:
    """Run `video` through the daemon's capture and inference code with `config`'s settings.

    `camera`: whose zones and masks apply (`replay_camera`). Raises VideoError (one line) for
    a file that cannot be read.
    """
    check_file_source(str(video), frame_size=True)
    spacing = config.model.frame_spacing_s or meta.frame_spacing_s
    out = Replay(
        classes=list(meta.classes),
        background=list(meta.background_classes),
        window_span_s=meta.sequence_length * spacing,
    )

    def on_result(result: WindowResult) -> None:
        out.windows.append(result)
        out.transitions.extend(result.transitions)
        out.zones.extend([result.zones] * len(result.transitions))
        if on_window is not None:
            on_window(result)

    def on_gap(gap: GapResult) -> None:
        out.finishes.append(gap.at)
        out.transitions.extend(gap.transitions)
        out.zones.extend([None] * len(gap.transitions))

    def on_activity(result: ActivityResult) -> None:  # a fall recogniser's
        out.transitions.extend(result.transitions)
        out.zones.extend(
            [None if tr.zones is None else list(tr.zones) for tr in result.transitions]
        )

    scheduler: InferenceScheduler | None = None

    def step(_camera: str) -> None:
        assert scheduler is not None
        scheduler.run_once()

    source = replay_camera(video, config, meta, camera)
    (camera,) = build_cameras(
        config,
        meta,
        [source],
        on_sampled=step,
        on_status=lambda _camera, _online: None,
        keep_frames=False,
        frame_clock=lambda: 0.0,
    ).values()
    scheduler = InferenceScheduler(
        backend,
        meta,
        [camera.pipeline],
        on_result,
        batch_max=config.model.batch_max,
        motion_gating=config.inference.motion_gating,
        motion_threshold=config.inference.motion_threshold,
        gap_sink=on_gap,
        activity_sink=on_activity,
        frame_clock=camera.capture.frame_clock,  # the file's own clock, as its frames' times
    )
    camera.capture.run_inline()  # in this thread: capture -> step -> inference, frame by frame
    stats = camera.capture.stats
    if stats.open_failures and not stats.frames_read:
        raise VideoError(f"{video}: cannot be decoded")
    if stats.frames_sampled < meta.sequence_length and not stats.cuts:
        need_s = (meta.sequence_length - 1) * spacing
        raise VideoError(
            f"{video}: too short for one window: {stats.frames_sampled} frames sampled every "
            f"{spacing:g} s, the model needs {meta.sequence_length} (about {need_s:.1f} s)"
        )
    scheduler.run_once()
    scheduler.finish(camera.pipeline)
    out.frames_read = stats.frames_read
    out.cuts = stats.cuts
    out.duration_s = stats.frames_read / camera.capture.fps if camera.capture.fps else 0.0
    if camera.pipeline.people is not None:
        out.no_person_windows = camera.pipeline.people.stats.no_person_windows
    raw = collect_raw({camera.name: camera}, scheduler, events=lambda _c: 0, uptime_s=0, now=0)
    out.counters = dict(raw["cameras"][camera.name])
    return out
