"""Resize candidates for 1080p -> 64x64: speed against soundness, in one run.

Run by hand (never a timed test):

    .venv/bin/python bench/resize.py [--runs 200] [--threads 1] [--model DIR [--clips 24]]

For each candidate it prints the median microseconds per frame at 1920x1080, 1280x720, 854x480
and 320x240; the mean/p99/max absolute difference (grey levels) to exact INTER_AREA on real
frames from ../shared/data/surveillance-fight (read, never copied), per size; the largest
difference to exact area on aliasing gratings; with --model, how far a model's probabilities
move against exact-area input (mean/max, and top-class flips). One JSON object
per candidate on stdout, then a Markdown table on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from har_daemon.model.preprocess import resize_frame  # noqa: E402

FIGHT = REPO.parent / "shared" / "data" / "surveillance-fight"
TARGET = (64, 64)
SIZES = {"1080p": (1080, 1920), "720p": (720, 1280), "480p": (480, 854), "240p": (240, 320)}

Resize = Callable[[np.ndarray, tuple[int, int]], np.ndarray]


def exact_area(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def linear(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)


def _halve(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    frame = frame[: h - h % 2, : w - w % 2]
    return cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def halving(min_factor: float) -> Resize:
    """2x2 box halvings while the result stays >= min_factor x target, then INTER_AREA."""

    def fn(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        h, w = hw
        while frame.shape[0] // 2 >= min_factor * h and frame.shape[1] // 2 >= min_factor * w:
            frame = _halve(frame)
        return exact_area(frame, hw)

    return fn


def integer_step(min_factor: float) -> Resize:
    """One integer-factor INTER_AREA step (OpenCV's fast path) to >= min_factor x target."""

    def fn(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        h, w = hw
        ky = max(1, int(frame.shape[0] // (min_factor * h)))
        kx = max(1, int(frame.shape[1] // (min_factor * w)))
        if kx > 1 or ky > 1:
            H, W = frame.shape[0] // ky, frame.shape[1] // kx
            frame = cv2.resize(frame[: H * ky, : W * kx], (W, H), interpolation=cv2.INTER_AREA)
        return exact_area(frame, hw)

    return fn


def pyr_down(min_factor: float) -> Resize:
    """cv2.pyrDown (5x5 Gaussian, then /2) while >= min_factor x target, then INTER_AREA."""

    def fn(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
        h, w = hw
        while frame.shape[0] // 2 >= min_factor * h and frame.shape[1] // 2 >= min_factor * w:
            frame = cv2.pyrDown(frame)
        return exact_area(frame, hw)

    return fn


CANDIDATES: dict[str, Resize] = {
    "INTER_AREA (exact)": exact_area,
    "INTER_LINEAR": linear,
    "halvings to >=2x, AREA": halving(2),
    "halvings to >=4x, AREA": halving(4),
    "halvings to >=1x, AREA": halving(1),
    "integer step to >=2x, AREA": integer_step(2),
    "integer step to >=1x, AREA": integer_step(1),
    "pyrDown to >=2x, AREA": pyr_down(2),
    "shipped resize_frame('area')": lambda f, hw: resize_frame(f, hw, "area"),
}


def median_us(fn: Callable[[], object], runs: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def real_frames(per_video: int) -> dict[str, list[np.ndarray]]:
    """Frames of the CCTV videos grouped by native size, plus 320x240 made by exact area."""
    out: dict[str, list[np.ndarray]] = {k: [] for k in SIZES}
    by_size = {v: k for k, v in SIZES.items()}
    for video in sorted(FIGHT.glob("*/*.mp4")):
        cap = cv2.VideoCapture(str(video))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        key = by_size.get(size)
        if key is None or len(out[key]) >= 40:
            cap.release()
            continue
        for i in np.linspace(0, max(0, n - 1), per_video).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
            ok, frame = cap.read()
            if ok:
                out[key].append(frame)
        cap.release()
    out["240p"] = [exact_area(f, (240, 320)) for f in out["720p"][:20]]
    return out


def gratings(h: int, w: int) -> dict[str, np.ndarray]:
    """Worst cases for aliasing; exact area turns each into (nearly) flat grey, INTER_LINEAR
    into moire: bars 2 px on / 2 px off (both directions), a 1-px checkerboard, a zone plate."""
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) ** 2 + (xx - w / 2) ** 2).astype(np.float64)
    images = {
        "bars4_v": (xx % 4 < 2) * 255,
        "bars4_h": (yy % 4 < 2) * 255,
        "checker1": (yy + xx) % 2 * 255,
        "zoneplate": 127.5 + 127.5 * np.cos(np.pi * r2 / max(h, w)),
    }
    return {k: np.repeat(v.astype(np.uint8)[..., None], 3, axis=2) for k, v in images.items()}


def model_check(model_dir: Path, clips: int) -> dict[str, dict[str, float]]:
    """How much a model's top-class probability moves when fed each candidate instead of exact
    area: windows of `clips` 720p/1080p CCTV videos, 20 frames spread over each clip."""
    from har_daemon.model.keras.store import load_model_dir
    from har_daemon.model.preprocess import to_model_input
    from har_daemon.video.frames import sample_indices

    loaded = load_model_dir(model_dir)
    hw = loaded.meta.frame_size
    probs: dict[str, list[np.ndarray]] = {name: [] for name in CANDIDATES}
    for video in sorted(FIGHT.glob("*/*.mp4")):
        if len(probs["INTER_AREA (exact)"]) >= clips:
            break
        cap = cv2.VideoCapture(str(video))
        if cap.get(cv2.CAP_PROP_FRAME_HEIGHT) < 700:
            cap.release()
            continue
        wanted = set(sample_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 20).tolist())
        window: list[np.ndarray] = []
        pos = 0
        while len(window) < 20 and cap.grab():
            if pos in wanted:
                window.append(cap.retrieve()[1])
            pos += 1
        cap.release()
        window += [window[-1]] * (20 - len(window))
        for name, fn in CANDIDATES.items():
            x = to_model_input(np.stack([fn(f, hw) for f in window]), loaded.meta.color_order)
            probs[name].append(loaded.predict(x[None])[0])
    exact = np.array(probs["INTER_AREA (exact)"])
    out = {}
    for name, p in probs.items():
        d = np.abs(np.array(p) - exact).max(axis=1)
        flips = int((np.array(p).argmax(axis=1) != exact.argmax(axis=1)).sum())
        out[name] = {"max": float(d.max()), "mean": float(d.mean()), "flips": flips}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (default: as is)")
    p.add_argument("--frames-per-video", type=int, default=4)
    p.add_argument("--model", type=Path, help="also compare a model's outputs (Keras model dir)")
    p.add_argument("--clips", type=int, default=24, help="clips for --model")
    args = p.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    rng = np.random.default_rng(0)
    frames = real_frames(args.frames_per_video) if FIGHT.is_dir() else {}
    grates = gratings(1080, 1920)
    model = model_check(args.model, args.clips) if args.model else {}
    rows = []
    for name, fn in CANDIDATES.items():
        row: dict[str, object] = {"candidate": name}
        for key, (h, w) in SIZES.items():
            src = frames[key][0] if frames.get(key) else rng.integers(0, 256, (h, w, 3), np.uint8)
            us = median_us(lambda fn=fn, src=src: fn(src, TARGET), args.runs)
            row[f"us_{key}"] = round(us, 1)
        for key in SIZES:
            if not frames.get(key):
                continue
            d = np.concatenate(
                [
                    np.abs(fn(f, TARGET).astype(np.int16) - exact_area(f, TARGET)).ravel()
                    for f in frames[key]
                ]
            )
            row[f"err_{key}"] = (
                f"{d.mean():.2f}/{np.percentile(d, 99):.0f}/{d.max()} ({len(frames[key])} frames)"
            )
        for gname, img in grates.items():
            out = fn(img, TARGET).astype(np.int16)
            row[f"{gname}_max_abs_vs_area"] = int(np.abs(out - exact_area(img, TARGET)).max())
        if name in model:
            m = model[name]
            row["model_dp"] = f"{m['mean']:.4f}/{m['max']:.4f}, {m['flips']} flips"
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |", file=sys.stderr)
    print("|" + "---|" * len(keys), file=sys.stderr)
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
