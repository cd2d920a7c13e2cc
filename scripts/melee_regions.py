"""What the person stage misses in melees: boxes per look and crops, per detector score.

    .venv/bin/python scripts/melee_regions.py --data DATA_DIR [--model models/fight]
        [--split validation] [--scores 0.35,0.3,0.25,0.2]

Each held-out clip of `model.json`'s `--split` is sampled as `evaluate` samples it (the working
frames, the detector's looks on every `detect_every`-th frame, `regions.window_regions` with the
model's `person_region`), with the detector run once at the lowest score and its boxes kept at
each `--score`. Per label and score it prints: looks with nobody, one person, two or more, the
mean people per look; clips
whose busiest look found nobody / one person; regions per clip; clips with a group wider than its
region (the crop clips people); and the share of the boxes found at the lowest score whose
centre lies outside every region of that score (left out of the crops, false boxes included).
Then, with the model's regions and weights, the side of each clip's most alarming crop against
the frame width. It asks how often a melee's crop holds only part of the people
(docs/models-and-evaluation.md, "Melees").
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np

from har_daemon.model.meta import PersonRegion, read_meta
from har_daemon.model.person import PersonDetector
from har_daemon.model.regions import (
    crop_window,
    detection_frames,
    group_boxes,
    ring_frame,
    window_regions,
)
from har_daemon.model.registry import create_backend
from har_daemon.training.evaluate import predict_batches
from har_daemon.video.frames import extract_clip

SIDE_BINS = (1 / 4, 1 / 3, 1 / 2)


def clipped(looks: list[np.ndarray], rules: PersonRegion, frame_hw: tuple[int, int]) -> bool:
    """True when a group of people is larger than the frame's shorter side: its square crop
    cuts some of them off."""
    kept = np.concatenate([b[b[:, 4] >= rules.min_score] for b in looks])
    groups = group_boxes(kept, rules.group_gap)[: rules.max_regions]
    return any(max(g[2] - g[0], g[3] - g[1]) > min(frame_hw) for g in groups)


def left_out(boxes: np.ndarray, regions: list[tuple[int, int, int, int]]) -> float:
    """The share of `boxes` whose centre lies in no region (0 when there are none)."""
    if not len(boxes):
        return 0.0
    hit = np.zeros(len(boxes), bool)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    for x1, y1, x2, y2 in regions:
        hit |= (cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)
    return float((~hit).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the assembled fight folder")
    ap.add_argument("--model", type=Path, default=Path("models/fight"))
    ap.add_argument("--split", choices=["validation", "test"], default="validation")
    ap.add_argument("--scores", default="0.35,0.3,0.25,0.2", help="detector scores to compare")
    args = ap.parse_args()
    meta = read_meta(args.model)
    base = meta.person_region
    if base is None:
        raise SystemExit("the model is not person-centric")
    scores = sorted({float(v) for v in args.scores.split(",")} | {base.min_score}, reverse=True)
    low = min(scores)
    detector = PersonDetector(threads=1, score_threshold=low)
    backend = create_backend("auto", args.model)
    alert = meta.classes.index(meta.training["alert_threshold"]["class"])
    rows: dict[tuple[str, float], list[float]] = {}
    alarming: dict[str, list[float]] = {}
    clips = meta.training[f"{args.split}_clips"]
    for rel in clips:
        label = rel.split("/")[0]
        clip = extract_clip(
            args.data / rel, meta.sequence_length, prepare=partial(ring_frame, meta=meta)
        )
        frames = clip.frames
        hw = (int(frames.shape[1]), int(frames.shape[2]))
        looks = [
            np.asarray(detector.detect(frames[i]), np.float32).reshape(-1, 5)
            for i in detection_frames(len(frames), base)
        ]
        model_regions = window_regions(looks, hw, base)
        every = np.concatenate(looks)
        for score in scores:
            rules = base.model_copy(update={"min_score": score})
            counts = [int((b[:, 4] >= score).sum()) for b in looks]
            regions = window_regions(looks, hw, rules)
            r = rows.setdefault((label, score), [0.0] * 11)
            r[10] += sum(counts)
            r[0] += 1
            r[1] += len(counts)
            r[2] += sum(c == 0 for c in counts)
            r[3] += sum(c == 1 for c in counts)
            r[4] += sum(c >= 2 for c in counts)
            r[5] += max(counts) == 0
            r[6] += max(counts) == 1
            r[7] += len(regions)
            r[8] += clipped(looks, rules, hw)
            r[9] += left_out(every, regions)
        if model_regions:
            windows = np.stack([crop_window(frames, reg, meta.frame_size) for reg in model_regions])
            probs = predict_batches(backend, windows, meta)
            best = model_regions[int(np.argmax(probs[:, alert]))]
            alarming.setdefault(label, []).append((best[2] - best[0]) / hw[1])
        else:
            alarming.setdefault(label, []).append(0.0)

    print(
        f"{args.split} clips of {args.model} ({len(clips)}), detector looks per window: "
        f"{len(detection_frames(meta.sequence_length, base))}"
    )
    head = (
        f"{'label':<8}{'score':>6}{'clips':>6}{'looks':>6}{'0 ppl':>7}{'1 ppl':>7}{'2+ ppl':>7}"
        f"{'ppl/look':>9}{'clip 0':>7}{'clip 1':>7}{'reg/clip':>9}{'clipped':>8}{'left out':>9}"
    )
    print(head)
    for (label, score), r in sorted(rows.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        n, looks_n = r[0], r[1]
        left = f"{r[9] / n:>9.2f}"
        print(
            f"{label:<8}{score:>6.2f}{int(n):>6}{int(looks_n):>6}{r[2] / looks_n:>7.2f}"
            f"{r[3] / looks_n:>7.2f}{r[4] / looks_n:>7.2f}{r[10] / looks_n:>9.2f}"
            f"{int(r[5]):>7}{int(r[6]):>7}"
            f"{r[7] / n:>9.2f}{int(r[8]):>8}{left}"
        )
    print(f"most alarming crop's side / frame width (score {base.min_score}, the model's rules)")
    print(
        f"{'label':<8}{'clips':>6}{'none':>6}"
        + "".join(f"{'<' + f'{b:.2f}':>7}" for b in SIDE_BINS)
        + f"{'median':>8}"
    )
    for label, sides in sorted(alarming.items()):
        a = np.array(sides)
        found = a[a > 0]
        print(
            f"{label:<8}{len(a):>6}{int((a == 0).sum()):>6}"
            + "".join(f"{(found < b).mean() if len(found) else 0:>7.2f}" for b in SIDE_BINS)
            + f"{float(np.median(found)) if len(found) else 0:>8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
