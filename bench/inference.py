"""Inference micro-benchmark: every path against the tutorial's `model.predict`, in one run.

Run by hand (never a timed test):

    .venv/bin/python bench/inference.py [--model models/demo] [--runs 50] [--threads 2]

`har-daemon bench`'s own inference figures (`har_daemon.tools.inference`), and more. Prints one
JSON object with medians in milliseconds per window:
- `predict_ms`: the tutorial's way, `model.predict` on one window (the baseline);
- `keras_compiled_ms`: the keras backend (one traced graph call);
- `fast_ms`: the faster backend (`fast_backend`, in practice litert: a fused, unrolled
  ConvLSTM under XNNPACK), one window;
- `batch8_ms_per_window`: litert on a batch of 8 windows, divided by 8;
- `speedup` = predict_ms / fast_ms, and each path's ratio to the baseline;
- `preprocess_us_1080p`: resizing one 1920x1080 frame to the model's size with the shipped
  `preprocess.resize_frame` (what training and serving use) and, for comparison, exact
  INTER_AREA and INTER_LINEAR;
- `litert_rss_mb`: resident memory of a fresh process that loads and runs only the litert
  backend (no TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from har_daemon.model.meta import read_meta  # noqa: E402
from har_daemon.tools.inference import measure_inference, median_ms  # noqa: E402

_RSS_PROBE = """
import sys, numpy as np
sys.path.insert(0, {repo!r})
from har_daemon.model.registry import create_backend
b = create_backend("litert", {model!r}, threads={threads})
x = np.random.default_rng(0).random((1, *b.meta.input_shape), dtype=np.float32)
for _ in range(5):
    b.predict(x)
assert "tensorflow" not in sys.modules and "keras" not in sys.modules
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS:")][0].split()[1]
print(int(rss) / 1024)
"""


def run(model_dir: Path, runs: int, threads: int) -> dict[str, Any]:
    """`har-daemon bench`'s inference figures, with ratios, INTER_LINEAR and a litert-only RSS."""
    figures = measure_inference(model_dir, runs, threads)
    meta = read_meta(model_dir)
    predict_ms, fast_ms = figures["predict_ms"], figures["fast_ms"]
    keras_ms, batch8_ms = figures["keras_ms"], figures["batch8_ms_per_window"]

    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    size = (meta.frame_width, meta.frame_height)
    linear_us = 1000 * median_ms(
        lambda: cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR), runs
    )

    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            _RSS_PROBE.format(repo=str(REPO), model=str(model_dir), threads=threads),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    rss = float(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else None

    return {
        "model": meta.name,
        "machine": f"{os.cpu_count()} CPU cores",
        "threads": threads,
        "runs": runs,
        "predict_ms": predict_ms,
        "keras_compiled_ms": keras_ms,
        "fast_ms": fast_ms,
        "fast_backend": figures["fast_backend"],
        "batch8_ms_per_window": batch8_ms,
        "speedup": figures["speedup"],
        "ratio_to_predict": {
            "keras_compiled": round(keras_ms / predict_ms, 3),
            "fast": round(fast_ms / predict_ms, 3),
            "litert_batch8": round(batch8_ms / predict_ms, 3),
        },
        "preprocess_us_1080p": figures["preprocess_us_1080p"],
        "preprocess_us_1080p_exact_area": figures["preprocess_us_1080p_exact_inter_area"],
        "preprocess_us_1080p_linear": round(linear_us, 1),
        "litert_rss_mb": None if rss is None else round(rss, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=REPO / "models" / "demo")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(json.dumps(run(args.model, args.runs, args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
