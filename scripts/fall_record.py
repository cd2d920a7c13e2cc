"""The fall evaluation's samples recorded through the daemon's own fall stage, per looks mode.

What the rule grid replays (scripts/evaluate_falls.py) is, per clip, the `Sample` list: at each
look (t, [(track id, ring of Features, seen now)]), exactly what `FallEvents.step` is given.
Here it comes from `runtime.recognisers.FallRecogniser` and `runtime.falls.FallStage` run on
the clip as a camera with `looks = MODE` would run them: the person stage looks every
`detect_every_s` (models/fight's spacing, scripts/fall_events.py), its detector boxes shared
with the fall stage when that looks at the same frame (`FallRecogniser.due`), a recording
`FallEvents` in the stage. So what is learned is what the daemon sees in that mode.

A stage's tracks depend on the rule only through the fields in `RECORDED_BY` (the turned
second look's `look_s`; with tracked looks `min_coverage`, which says who is followed): each
clip is recorded once per combination of their values that the grid offers, every variant fed
the same decoded frame, the models' answers on the same input shared between variants
(`_Memo`). Cached per clip and variant under fall_data.CACHE (never in the repository).

Adaptive looks depend on the rule more widely: their watch stays open while the rule has
someone down (model.fall_watch), which takes most of its thresholds. They are recorded with a
`base` rule (evaluate_falls: the grid's loosest) under the variant fields, so a replayed rule
gets at least the dense looks the daemon would make for it; a stricter replayed rule may get
more, only later than `fall_window_s + hold_s` after a way down (the watch's own trigger,
which no threshold of the rule moves, opens it for every rule alike).
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import pickle
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import get_args

import numpy as np
from fall_data import CACHE, Clip, pose_key

from har_daemon.config.recognisers import FallLooks
from har_daemon.model.fall import Change, FallEvents, FallRule
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.model.pose_features import Features
from har_daemon.runtime.falls import DETECT_SCORE, SPACING_S, FallStage, pose_min_side
from har_daemon.runtime.lying import LOOK_MODE, LookMode, RotatedLook
from har_daemon.runtime.recognisers import FallRecogniser
from har_daemon.video.frames import TimedFrames

RECORD_VERSION = 1
LOOKS: tuple[str, ...] = get_args(FallLooks)
"""The looks modes the daemon's config accepts (a new one is recorded once `recogniser` below
builds it as runtime.cameras does)."""
_DEPENDS = ("look_s", "min_coverage")
RECORDED_BY: dict[str, tuple[str, ...]] = {"own": ("look_s",), "shared": ("look_s",),
                                           "tracked": _DEPENDS, "adaptive": _DEPENDS}  # fmt: skip
"""The rule fields a mode's recorded tracks depend on (a mode not named here: `_DEPENDS`)."""

Sample = tuple[float, list[tuple[int, tuple[Features, ...], bool]]]
Variant = tuple[tuple[str, float], ...]
"""(field, value) pairs of the rule fields a recording was made with."""


def variant(looks: str, rule: FallRule) -> Variant:
    """The recording `rule` is replayed on in mode `looks`."""
    return tuple((name, float(getattr(rule, name))) for name in RECORDED_BY.get(looks, _DEPENDS))


def variants(looks: str, grid: dict[str, Sequence[float]]) -> list[Variant]:
    """Every recording a grid (FallRule field -> values offered) needs in mode `looks`."""
    names = RECORDED_BY.get(looks, _DEPENDS)
    base = FallRule()
    values = [grid.get(name, [getattr(base, name)]) for name in names]
    return [tuple(zip(names, map(float, vals), strict=True)) for vals in itertools.product(*values)]


@dataclass
class _Recorder(FallEvents):
    """The stage's FallEvents, keeping what each look gave it."""

    samples: list[Sample] = field(default_factory=list)

    def step(
        self, t: float, tracks: Iterable[tuple[int, Iterable[Features], bool]]
    ) -> list[tuple[int, Change]]:
        live = [(tid, tuple(ring), bool(seen)) for tid, ring, seen in tracks]
        self.samples.append((float(t), live))
        return super().step(t, live)


class _Memo:
    """One model shared by the variants of one frame: the same input gives the same answer
    once (the frame's crops and regions repeat across variants until their tracks differ)."""

    def __init__(self, detector: PersonDetector, pose: PoseEstimator) -> None:
        self.detector, self.pose = detector, pose
        self.frame: np.ndarray | None = None
        self.seen: dict[tuple, np.ndarray] = {}
        self.calls = 0

    def new_frame(self, frame: np.ndarray) -> None:
        self.frame, self.seen = frame, {}

    def _img(self, img: np.ndarray) -> tuple:
        if img is self.frame:
            return ("frame",)
        return (img.shape, zlib.crc32(np.ascontiguousarray(img).data))

    def _get(self, key: tuple, run: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self.seen:
            self.calls += 1
            self.seen[key] = run()
        return self.seen[key]

    def detect(self, img: np.ndarray) -> np.ndarray:
        return self._get(("d", *self._img(img)), lambda: self.detector.detect(img))

    def estimate(self, img: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        b = np.ascontiguousarray(boxes, np.float32)
        key = ("p", *self._img(img), b.shape, b.tobytes())
        return self._get(key, lambda: self.pose.estimate(img, b))


def recogniser(looks: str, rule: FallRule, models: _Memo, look_mode: LookMode) -> FallRecogniser:
    """A camera's fall recogniser in mode `looks`, built as runtime.cameras builds it (a
    camera with the classifier's person stage), its events recorded."""
    if looks not in ("own", "shared", "tracked", "adaptive"):
        raise ValueError(f"looks {looks!r}: scripts/fall_record.py cannot build it yet")
    stage = FallStage(
        models, models, rule, events=_Recorder(rule), tracked=looks == "tracked",
        adaptive=looks == "adaptive", min_side_px=pose_min_side(looks),
        again=RotatedLook(models, models, look_mode),
    )  # fmt: skip
    return FallRecogniser("eval", stage, 1.0, shared=looks == "shared")


def samples_of(rec: FallRecogniser) -> list[Sample]:
    """What a recogniser of `recogniser` gave its events, look by look."""
    assert isinstance(rec.stage.events, _Recorder)
    return rec.stage.events.samples


def record(
    path: Path, looks: str, rules: Sequence[FallRule], models: _Memo, detect_every_s: float,
    look_mode: LookMode = LOOK_MODE,
) -> tuple[list[FallRecogniser], float]:  # fmt: skip
    """One recogniser per rule run on the file in mode `looks` (one decode; `samples_of`
    each), and the file's duration."""
    recs = [recogniser(looks, rule, models, look_mode) for rule in rules]
    detected, frames = None, TimedFrames(path)
    for t, frame in frames:
        models.new_frame(frame)
        people = detected is None or t - detected >= detect_every_s - 1e-6
        detected = t if people else detected
        for rec in recs:
            if rec.due(t, people):
                rec.look(frame, t, models.detect(frame) if people else None)
    return recs, frames.duration_s


def _key(
    clip: Clip, looks: str, var: Variant, detect_every_s: float, look_mode: str, base: FallRule
) -> Path:
    st = clip.path.stat()
    raw = f"{clip.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{looks}|{var}|{detect_every_s}"
    raw += f"|{SPACING_S}|{DETECT_SCORE}|{look_mode}|{RECORD_VERSION}{pose_key()}"
    raw += "" if base == FallRule() else f"|{base}"
    raw += f"|min side {pose_min_side(looks)}" if pose_min_side(looks) else ""
    digest = hashlib.sha1(raw.encode()).hexdigest()[:16]
    return CACHE / f"{clip.path.stem}-rec-{looks}-{digest}.pkl"


_MODELS: list[_Memo] = []


def _worker_models() -> _Memo:
    if not _MODELS:
        detector = PersonDetector(threads=1, score_threshold=DETECT_SCORE)
        _MODELS.append(_Memo(detector, PoseEstimator(threads=1)))
    return _MODELS[0]


def record_clip(
    job: tuple[Clip, str, list[Variant], float, str, FallRule],
) -> tuple[dict[Variant, list[Sample]], float, int]:
    """One clip's recordings (from the cache where there), its duration, the model calls."""
    clip, looks, vars_, detect_every_s, look_mode, base = job
    got: dict[Variant, list[Sample]] = {}
    duration = 0.0
    for var in vars_:
        cached = _key(clip, looks, var, detect_every_s, look_mode, base)
        if cached.is_file():
            got[var], duration = pickle.loads(cached.read_bytes())
    todo = [var for var in vars_ if var not in got]
    if not todo:
        return got, duration, 0
    models = _worker_models()
    before = models.calls
    rules = [replace(base, **dict(var)) for var in todo]
    recs, duration = record(clip.path, looks, rules, models, detect_every_s, look_mode)  # type: ignore[arg-type]
    CACHE.mkdir(parents=True, exist_ok=True)
    for var, rec in zip(todo, recs, strict=True):
        got[var] = s = samples_of(rec)
        path = _key(clip, looks, var, detect_every_s, look_mode, base)
        path.write_bytes(pickle.dumps((s, duration), protocol=pickle.HIGHEST_PROTOCOL))
    return got, duration, models.calls - before


def record_all(
    items: list[Clip], looks: str, vars_: list[Variant], detect_every_s: float,
    look_mode: str = LOOK_MODE, jobs: int = 2, progress=print, base: FallRule | None = None,
) -> tuple[dict[Variant, dict[Path, list[Sample]]], dict[Path, float]]:  # fmt: skip
    """Every clip's recordings by variant, and the clips' durations (`jobs` processes); the
    variants' other fields are `base`'s (FallRule's defaults without it)."""
    by_var: dict[Variant, dict[Path, list[Sample]]] = {v: {} for v in vars_}
    dur: dict[Path, float] = {}
    work = [(c, looks, vars_, detect_every_s, look_mode, base or FallRule()) for c in items]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(max(1, min(jobs, 2))) as pool:
        for i, (clip, (got, duration, calls)) in enumerate(
            zip(items, pool.imap(record_clip, work), strict=True)
        ):
            for var, s in got.items():
                by_var[var][clip.path] = s
            dur[clip.path] = duration
            progress(f"[{i + 1}/{len(items)}] {looks} {clip.group} {clip.path.name}: "
                     f"{len(vars_)} recordings, {calls} model calls")  # fmt: skip
    return by_var, dur
