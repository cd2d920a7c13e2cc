"""Synthetic activity clips in the UCF50 layout, for tests and demos without UCF50.

Every class shows the same kind of object (random colour, size and shape) on the same kinds of
background; only the object's MOTION over time tells the classes apart, so a model cannot learn
them from a single frame:

- HorseRace: moves right at a steady speed, wrapping around the frame edges;
- Biking: the same, moving left;
- Swing: a pendulum's arc, swinging left and right;
- PizzaTossing: thrown up and falling back, again and again;
- Idle (not a training class by default): the object stays still.

Groups `gNN` play UCF50's "actor/scene" groups: each has its own plain background (colour,
faint gradient, sensor-noise level), shared by every class, so a split by group tests
generalisation to unseen scenes. `write_activity_video` writes one continuous video whose
activity changes, at the same speeds and periods as the training clips, so any ~2 s window
inside a segment looks like a training clip of that class.

Backgrounds depend only on the group number (`group_style`), not on the seed.

Learnability: with classes that differ only by position-independent motion, the first-order
statistics of every (time step, position) are the same for all classes, so a model must learn
temporal features before it can score; the paper's small ConvLSTM (Flatten + Dense head) does
not get there from ~160 clips in 12 epochs on CPU. `cue="color"` or `"shape"` adds an optional
single-frame cue per class for runs that need a model to learn sooner.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from har_daemon.training.dataset import PAPER_CLASSES

IDLE = "Idle"
ACTIVITIES: tuple[str, ...] = (*PAPER_CLASSES, IDLE)
"""Every activity name the generator can draw."""

# Nominal motion, in frame widths/heights and seconds; training clips vary these by +-15 %.
LINEAR_SPEED_W_PER_S = 0.3
"""HorseRace/Biking speed: 0.3 frame widths per second (0.6 widths in a 2 s clip): about 2 px
per sampled frame at 64x64, within reach of a 3x3 ConvLSTM kernel."""
SWING_PERIOD_S = 1.2
SWING_AMPLITUDE_W = 0.3
"""Horizontal half-swing of the pendulum, in frame widths."""
SWING_MAX_ANGLE_RAD = np.deg2rad(35.0)
TOSS_PERIOD_S = 1.0
TOSS_HEIGHT_H = 0.5
"""Height of each toss, in frame heights."""
SPEED_JITTER = 0.15
CLIP_SECONDS_RANGE = (1.6, 2.4)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
CLASS_SHAPES: dict[str, str] = {
    "HorseRace": "triangle",
    "Biking": "circle",
    "Swing": "square",
    "PizzaTossing": "diamond",
}
"""With `cue="shape"`, each class's object has this shape instead of a random one."""
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "HorseRace": (40, 40, 220),  # BGR: red
    "Biking": (220, 90, 30),  # blue
    "Swing": (40, 200, 40),  # green
    "PizzaTossing": (30, 220, 230),  # yellow
}
"""With `cue="color"`, each class's object has this colour (+-20 per channel)."""
Cue = Literal["motion", "shape", "color"]
CUES: tuple[str, ...] = ("motion", "shape", "color")
VIDEO_SUFFIXES: tuple[str, ...] = (".avi", ".mp4")


# --------------------------------------------------------------------------------------------
# Appearance


@dataclass(frozen=True)
class _Scene:
    background: np.ndarray  # uint8 (h, w, 3) BGR
    noise_std: float
    mean_bgr: np.ndarray  # float (3,)


def _background(style: int, size_wh: tuple[int, int]) -> _Scene:
    """The background of group `style`: its own dark colour, a faint gradient, sensor noise.

    Deliberately plain. On busy textured backgrounds the paper's small ConvLSTM (4-16 filters)
    stays at chance for dozens of epochs (measured): the scene then carries far more signal
    than the moving object. Plain scenes keep the task about motion and learnable in a few
    epochs, which is what these clips are for.
    """
    w, h = size_wh
    rng = np.random.default_rng([0x5CE7E, int(style)])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1 = rng.uniform(25, 95, 3).astype(np.float32)
    c2 = np.clip(c1 + rng.uniform(-12, 12, 3), 0, 255).astype(np.float32)
    ramp = (yy / max(h - 1, 1)) if rng.random() < 0.5 else (xx / max(w - 1, 1))
    bg = np.clip(c1 + (c2 - c1) * ramp[..., None], 0, 255).astype(np.uint8)
    return _Scene(
        background=bg,
        noise_std=float(rng.uniform(1.5, 4.0)),
        mean_bgr=bg.reshape(-1, 3).mean(axis=0),
    )


@dataclass(frozen=True)
class _Actor:
    shape: str
    color: tuple[int, int, int]
    size: float  # pixels, about 0.3 of the frame height


def _actor(
    rng: np.random.Generator, scene: _Scene, h: int, cls: str = IDLE, cue: Cue = "motion"
) -> _Actor:
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    # Bright on a dark scene: high contrast, so every class's object is equally easy to see.
    color = rng.integers(150, 256, 3)
    size = float(rng.uniform(0.28, 0.34) * h)
    jitter = rng.integers(-20, 21, 3)
    # The same draws whatever the cue: a cue changes the object's look and nothing else.
    if cue == "shape" and cls in CLASS_SHAPES:
        shape = CLASS_SHAPES[cls]
    if cue == "color" and cls in CLASS_COLORS:
        color = np.clip(np.array(CLASS_COLORS[cls]) + jitter, 0, 255)
    return _Actor(shape=shape, color=(int(color[0]), int(color[1]), int(color[2])), size=size)


def _check_cue(cue: str) -> None:
    if cue not in CUES:
        raise ValueError(f"unknown cue {cue!r}; choose from {', '.join(CUES)}")


_SHIFT = 4  # sub-pixel drawing precision: coordinates carry 4 fractional bits


def _draw(img: np.ndarray, actor: _Actor, x: float, y: float) -> None:
    s = actor.size / 2
    f = 1 << _SHIFT
    if actor.shape == "circle":
        cv2.circle(
            img, (round(x * f), round(y * f)), round(s * f), actor.color, -1, cv2.LINE_AA, _SHIFT
        )
        return
    if actor.shape == "square":
        k = s * 0.9
        pts = [(x - k, y - k), (x + k, y - k), (x + k, y + k), (x - k, y + k)]
    elif actor.shape == "triangle":
        pts = [(x, y - s), (x + s, y + s * 0.8), (x - s, y + s * 0.8)]
    else:  # diamond
        pts = [(x, y - s), (x + s, y), (x, y + s), (x - s, y)]
    poly = np.round(np.array(pts) * f).astype(np.int32)
    cv2.fillPoly(img, [poly], actor.color, cv2.LINE_AA, _SHIFT)


# --------------------------------------------------------------------------------------------
# Motion


@dataclass(frozen=True)
class _Motion:
    """Where the object is `t` seconds into an activity; sizes in pixels."""

    kind: str
    x0: float
    y0: float
    speed: float = 1.0  # multiplier on the nominal speed (and divisor of the period)
    phase: float = 0.0  # in periods, for Swing and PizzaTossing
    w: int = 160
    h: int = 120

    def position(self, t: float) -> tuple[float, float]:
        w, h = self.w, self.h
        if self.kind in _WRAPPING:
            v = LINEAR_SPEED_W_PER_S * w * self.speed * (1 if self.kind == "HorseRace" else -1)
            return (self.x0 + v * t) % w, self.y0
        if self.kind == "Swing":
            # x0 = pivot's x, y0 = lowest point of the arc.
            length = SWING_AMPLITUDE_W * w / np.sin(SWING_MAX_ANGLE_RAD)
            theta = SWING_MAX_ANGLE_RAD * np.sin(
                2 * np.pi * (t * self.speed / SWING_PERIOD_S + self.phase)
            )
            return self.x0 + length * np.sin(theta), self.y0 - length * (1 - np.cos(theta))
        if self.kind == "PizzaTossing":
            # y0 = the hand (lowest point); a parabola up and back each period.
            u = (t * self.speed / TOSS_PERIOD_S + self.phase) % 1.0
            return self.x0, self.y0 - TOSS_HEIGHT_H * h * 4 * u * (1 - u)
        if self.kind == IDLE:
            return self.x0, self.y0
        raise ValueError(f"unknown activity {self.kind!r}; known: {', '.join(ACTIVITIES)}")

    @property
    def wraps(self) -> bool:
        return self.kind in _WRAPPING


def _check_activity(name: str) -> None:
    if name not in ACTIVITIES:
        raise ValueError(f"unknown activity {name!r}; known: {', '.join(ACTIVITIES)}")


_WRAPPING = ("HorseRace", "Biking")  # cross the frame and come back in on the other side
_START_AREA: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    # Where an activity starts, in fractions of (width, height); phase 0 of Swing is the bottom
    # of the arc under the pivot, of PizzaTossing the pizza in the hand.
    "HorseRace": ((0.0, 1.0), (0.25, 0.75)),
    "Biking": ((0.0, 1.0), (0.25, 0.75)),
    IDLE: ((0.0, 1.0), (0.25, 0.75)),
    "Swing": ((0.35, 0.65), (0.5, 0.75)),
    "PizzaTossing": ((0.2, 0.8), (0.7, 0.8)),
}


def _random_motion(kind: str, rng: np.random.Generator, w: int, h: int) -> _Motion:
    """A training clip's motion: random start, speed within +-SPEED_JITTER of nominal."""
    speed = float(rng.uniform(1 - SPEED_JITTER, 1 + SPEED_JITTER))
    phase = float(rng.random())
    (x_lo, x_hi), (y_lo, y_hi) = _START_AREA[kind]
    x0, y0 = rng.uniform(x_lo, x_hi) * w, rng.uniform(y_lo, y_hi) * h
    return _Motion(kind, float(x0), float(y0), speed, phase, w, h)


def _continuing_motion(kind: str, x: float, y: float, w: int, h: int) -> _Motion:
    """A segment's motion at nominal speed, starting (about) where the object is now."""
    if kind not in _START_AREA or kind == IDLE:
        return _Motion(IDLE, x, y, w=w, h=h)
    (x_lo, x_hi), (y_lo, y_hi) = _START_AREA[kind]
    x0 = x % w if kind in _WRAPPING else float(np.clip(x, x_lo * w, x_hi * w))
    return _Motion(kind, x0, float(np.clip(y, y_lo * h, y_hi * h)), w=w, h=h)


# --------------------------------------------------------------------------------------------
# Rendering and writing


def _render(
    scene: _Scene,
    actor: _Actor,
    motion: _Motion,
    times: np.ndarray,
    rng: np.random.Generator,
    noise_bank: np.ndarray,
) -> list[np.ndarray]:
    w = scene.background.shape[1]
    frames = []
    for t in times:
        img = scene.background.copy()
        x, y = motion.position(float(t))
        _draw(img, actor, x, y)
        if motion.wraps:  # the part that has left one edge shows at the other
            if x < actor.size:
                _draw(img, actor, x + w, y)
            elif x > w - actor.size:
                _draw(img, actor, x - w, y)
        noisy = img.astype(np.int16) + noise_bank[int(rng.integers(len(noise_bank)))]
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


def _noise_bank(rng: np.random.Generator, scene: _Scene, n: int = 6) -> np.ndarray:
    h, w = scene.background.shape[:2]
    noise = rng.standard_normal((n, h, w, 3), dtype=np.float32) * scene.noise_std
    return np.round(noise).astype(np.int16)


def _write_frames(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    """Write BGR frames: MJPG in .avi, mp4v (or H.264 through ffmpeg) in .mp4."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unsupported suffix; use one of {', '.join(VIDEO_SUFFIXES)}")
    h, w = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = "MJPG" if suffix == ".avi" else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
    if writer.isOpened():
        try:
            for f in frames:
                writer.write(f)
        finally:
            writer.release()
        return
    writer.release()
    if suffix == ".mp4" and shutil.which("ffmpeg"):
        _write_mp4_with_ffmpeg(path, frames, fps)
        return
    raise RuntimeError(f"{path}: OpenCV cannot write {fourcc} video here")


def _write_mp4_with_ffmpeg(path: Path, frames: Sequence[np.ndarray], fps: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        avi = Path(tmp) / "frames.avi"
        _write_frames(avi, frames, fps)
        cmd = [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(avi),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-r",
            str(fps),
            str(path),
        ]
        subprocess.run(cmd, check=True, capture_output=True)


def _rng(seed: int, *parts: object) -> np.random.Generator:
    words = [int(seed) & 0xFFFFFFFF]
    for p in parts:
        words.append(zlib.crc32(str(p).encode()) if isinstance(p, str) else int(p))
    return np.random.default_rng(words)


def clip_name(cls: str, group: int, clip: int, suffix: str = ".avi") -> str:
    """UCF50's file name: `v_<Class>_gNN_cNN.avi` (groups and clips numbered from 1)."""
    return f"v_{cls}_g{group:02d}_c{clip:02d}{suffix}"


def generate_dataset(
    out_dir: str | os.PathLike[str],
    classes: Sequence[str] = PAPER_CLASSES,
    groups: int = 4,
    clips_per_group: int = 3,
    size_wh: tuple[int, int] = (160, 120),
    fps: float = 25,
    seconds: float = 2.0,
    seed: int = 0,
    cue: Cue = "motion",
) -> list[Path]:
    """Write `out_dir/<Class>/v_<Class>_gNN_cNN.avi` for every class, group and clip.

    Group gNN uses background style NN for every class. Each clip gets its own object and its
    own start, speed (+-15 %) and duration (`seconds` * 0.8 to 1.2, i.e. 1.6-2.4 s by default).
    Deterministic for a seed. Returns the written paths, sorted.

    `cue` "motion" (default): classes differ only by motion. "shape" / "color" also give each
    class's object a fixed shape (`CLASS_SHAPES`) / colour (`CLASS_COLORS`): a single-frame
    cue that models pick up sooner than motion (the paper's ConvLSTM learns no position-free
    motion from ~160 clips in 12 epochs). Everything else about a clip is the same.
    """
    _check_cue(cue)
    for c in classes:
        _check_activity(c)
    if groups < 1 or clips_per_group < 1:
        raise ValueError("groups and clips_per_group must be >= 1")
    w, h = size_wh
    out = Path(out_dir)
    lo, hi = (seconds * CLIP_SECONDS_RANGE[0] / 2.0, seconds * CLIP_SECONDS_RANGE[1] / 2.0)
    paths: list[Path] = []
    for g in range(1, groups + 1):
        scene = _background(g, size_wh)
        for cls in classes:
            for c in range(1, clips_per_group + 1):
                rng = _rng(seed, cls, g, c)
                actor = _actor(rng, scene, h, cls, cue)
                motion = _random_motion(cls, rng, w, h)
                n = max(2, round(rng.uniform(lo, hi) * fps))
                times = np.arange(n) / fps
                frames = _render(scene, actor, motion, times, rng, _noise_bank(rng, scene))
                path = out / cls / clip_name(cls, g, c)
                _write_frames(path, frames, fps)
                paths.append(path)
    return sorted(paths)


def write_activity_video(
    path: str | os.PathLike[str],
    segments: Sequence[tuple[str, float]],
    fps: float = 25,
    size_wh: tuple[int, int] = (160, 120),
    seed: int = 0,
    group_style: int = 0,
    cue: Cue = "motion",
) -> Path:
    """One continuous video whose activity changes: e.g. `[("Biking", 6.0), ("Idle", 3.0)]`.

    One object (chosen by `seed`) on background `group_style` (the background of training
    group gNN for NN = group_style; 0 is a style no default training set uses) moves at the
    nominal speeds and periods of the training clips, each segment starting where the object
    is. Written as MJPG .avi or .mp4 (mp4v, or H.264 via ffmpeg) by the path's suffix.
    With `cue` "shape" or "color" the object takes each segment's class shape or colour, as
    in `generate_dataset` with that cue (Idle keeps the look it had). Returns the path.
    """
    _check_cue(cue)
    if not segments:
        raise ValueError("segments must not be empty")
    for name, seconds in segments:
        _check_activity(name)
        if seconds <= 0:
            raise ValueError(f"segment {name!r} has a non-positive duration {seconds}")
    w, h = size_wh
    p = Path(path)
    if p.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{p}: unsupported suffix; use one of {', '.join(VIDEO_SUFFIXES)}")
    scene = _background(group_style, size_wh)
    rng = _rng(seed, "activity-video", group_style)
    actor = _actor(rng, scene, h)
    noise = _noise_bank(rng, scene)
    look_rng = _rng(seed, "activity-video-looks", group_style)
    x, y = float(rng.uniform(0.3, 0.7) * w), 0.5 * h
    frames: list[np.ndarray] = []
    start_frame = 0
    elapsed = 0.0
    for name, seconds in segments:
        elapsed += seconds
        end_frame = round(elapsed * fps)
        n = end_frame - start_frame
        start_frame = end_frame
        if n <= 0:
            continue
        if cue != "motion" and name != IDLE:
            look = _actor(look_rng, scene, h, name, cue)
            actor = (
                replace(actor, shape=look.shape)
                if cue == "shape"
                else replace(actor, color=look.color)
            )
        motion = _continuing_motion(name, x, y, w, h)
        times = np.arange(n) / fps
        frames.extend(_render(scene, actor, motion, times, rng, noise))
        x, y = motion.position(n / fps)
    _write_frames(p, frames, fps)
    return p
