"""Compare MoveNet files: their speed per person and how close their keypoints stay to the
first (reference) model's on held-out real crops.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python scripts/pose_model/compare_pose_models.py \\
        --crops OUT/heldout.npz models/pose/pose_model.tflite CANDIDATE.tflite [...]
        [--rounds 5] [--runs 50] [--threads N]

Crops: pose_crops.py's heldout.npz (people from clips that gave no calibration crop). Speed:
the LiteRT interpreter as the daemon's `PoseEstimator` makes it (the daemon's thread count by
default), ms of one person's set_tensor + invoke + read on those crops, the models interleaved
round by round (the machine is shared: a busy spell hits every model, not one), median of the
rounds' medians. Agreement, against the reference, per keypoint: distance between the two
(y, x) in units of the crop side (192 px = 1); |score difference|; whether both call it seen
(score >= MIN_KEYPOINT_SCORE, the fall rule's threshold); coverage (the share seen).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from har_daemon.model.backends import default_threads
from har_daemon.model.pose import MIN_KEYPOINT_SCORE, PoseEstimator
from har_daemon.tools.inference import median_ms


class Raw:
    """One pose model's raw output ([17, 3] y, x, score in 0..1 of the crop) per crop."""

    def __init__(self, path: Path, threads: int) -> None:
        PoseEstimator(path, threads=threads)  # the daemon's checks of the file
        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = self.interp.get_output_details()[0]["index"]
        self.path = path

    def run(self, crop: np.ndarray) -> np.ndarray:
        self.interp.set_tensor(self.inp, crop[None].astype(np.int32))
        self.interp.invoke()
        return self.interp.get_tensor(self.out).reshape(17, 3).copy()


def speed(models: list[Raw], crops: np.ndarray, rounds: int, runs: int) -> list[list[float]]:
    """Per model, each round's median ms per person, the models taking turns every round."""
    ms: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for i, m in enumerate(models):
            it = iter(np.resize(np.arange(len(crops)), runs + 3))
            ms[i].append(median_ms(lambda m=m, it=it: m.run(crops[next(it)]), runs))
    return ms


def agreement(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """`got` against `ref`, both [N, 17, 3] (y, x, score)."""
    dist = np.hypot(*(got[..., :2] - ref[..., :2]).transpose(2, 0, 1))
    seen_ref, seen_got = ref[..., 2] >= MIN_KEYPOINT_SCORE, got[..., 2] >= MIN_KEYPOINT_SCORE
    both = seen_ref & seen_got
    return {
        "dist_mean": float(dist[both].mean()) if both.any() else float("nan"),
        "dist_p95": float(np.percentile(dist[both], 95)) if both.any() else float("nan"),
        "dist_all_p95": float(np.percentile(dist, 95)),
        "score_mae": float(np.abs(got[..., 2] - ref[..., 2]).mean()),
        "seen_agree": float((seen_ref == seen_got).mean()),
        "coverage": float(seen_got.mean()),
        "coverage_ref": float(seen_ref.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="the reference first, then candidates")
    ap.add_argument("--crops", type=Path, required=True, help="pose_crops.py's heldout.npz")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=default_threads())
    args = ap.parse_args(argv)
    for p in [*args.models, args.crops]:
        if not p.is_file():
            print(f"compare_pose_models.py: {p} does not exist", file=sys.stderr)
            return 2
    crops = np.load(args.crops)["crops"]
    models = [Raw(p, args.threads) for p in args.models]
    ms = speed(models, crops, args.rounds, args.runs)
    outs = [np.stack([m.run(c) for c in crops]) for m in models]
    print(f"{len(crops)} held-out crops ({args.crops}); {args.threads} threads; "
          f"{args.rounds} rounds x {args.runs} runs, interleaved")  # fmt: skip
    print(f"{'model':28s} {'bytes':>9s} {'sha256':>12s} {'ms/person':>9s} {'(rounds)':24s} "
          f"{'x ref':>5s} {'dist mean':>9s} {'p95':>6s} {'p95 all':>7s} {'|dscore|':>8s} "
          f"{'seen=':>6s} {'cover':>6s}")  # fmt: skip
    ref_ms = statistics.median(ms[0])
    for m, t, out in zip(models, ms, outs, strict=True):
        a = agreement(outs[0], out)
        digest = hashlib.sha256(m.path.read_bytes()).hexdigest()[:12]
        med = statistics.median(t)
        rounds = " ".join(f"{v:.2f}" for v in t)
        print(f"{m.path.name:28s} {m.path.stat().st_size:9d} {digest:>12s} {med:9.2f} "
              f"{rounds[:24]:24s} {ref_ms / med:5.2f} {a['dist_mean']:9.4f} {a['dist_p95']:6.4f} "
              f"{a['dist_all_p95']:7.4f} {a['score_mae']:8.4f} {a['seen_agree']:6.3f} "
              f"{a['coverage']:6.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
