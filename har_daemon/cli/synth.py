"""`synth-data`: OpenCV and NumPy only, so it runs on a daemon-only install (no [train] extra)."""

from __future__ import annotations

import argparse

from har_daemon.cli.args import ALL_CLASSES
from har_daemon.training.dataset import PAPER_CLASSES
from har_daemon.training.synth import generate_dataset


def synth_data(args: argparse.Namespace) -> int:
    classes = PAPER_CLASSES if args.classes in (None, ALL_CLASSES) else tuple(args.classes)
    paths = generate_dataset(
        args.out,
        classes=classes,
        groups=args.groups,
        clips_per_group=args.clips_per_group,
        seed=args.seed,
    )
    print(f"wrote {len(paths)} clips of {len(classes)} classes to {args.out}")
    return 0
