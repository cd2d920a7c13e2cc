"""Argument types and option groups shared by several commands (no heavy imports)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ALL_CLASSES = "all"


def classes_arg(value: str) -> list[str] | str:
    if value.strip().lower() == ALL_CLASSES:
        return ALL_CLASSES
    names = [c.strip() for c in value.split(",") if c.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError("give at least two class names, comma-separated")
    return names


def _whole(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None


def positive_int(value: str) -> int:
    n = _whole(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def non_negative_int(value: str) -> int:
    """A count where 0 means "skip this part"."""
    n = _whole(value)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return n


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None


def positive_float(value: str) -> float:
    x = _number(value)
    if not x > 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return x


def non_negative_float(value: str) -> float:
    """Seconds where 0 means "none" or "skip this part"."""
    x = _number(value)
    if not x >= 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return x


def hold_seconds(value: str) -> float:
    """0 to 60 s: how long the events consumer waits for a missing `seq`."""
    try:
        f = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 <= f <= 60:
        raise argparse.ArgumentTypeError(f"must be between 0 and 60 seconds, got {value}")
    return f


def fraction(value: str) -> float:
    x = positive_float(value)
    if x >= 1:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return x


def probability(value: str) -> float:
    """0 to 1 inclusive: how often a random transform is applied."""
    x = _number(value)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return x


def folds(value: str) -> int:
    n = positive_int(value)
    if n < 2:
        raise argparse.ArgumentTypeError(f"{value}: cross-validation needs at least 2 folds")
    return n


def add_training_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--augment",
        action="store_true",
        help="augment training clips (flip, crop, brightness/contrast, frame timing)",
    )
    p.add_argument(
        "--augment-distant",
        type=probability,
        default=0.0,
        metavar="P",
        help="with --augment: with probability P shrink a clip to 30-80%% of its side, JPEG "
        "re-encode it (quality 25-70) and scale it back, as a person far from a camera looks "
        "(default 0: off)",
    )
    p.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        default="none",
        help="balanced: weigh each class n / (k * count) in the training loss (default none)",
    )
    p.add_argument(
        "--alert-class",
        help="two-class models: choose this class's probability threshold on the validation "
        "set (max F1) and report test metrics at it as well as at argmax",
    )
    p.add_argument(
        "--input",
        choices=["frames", "frame-diff"],
        default="frames",
        help="frames: the paper's scaled frames; frame-diff: the change between consecutive "
        "frames, which removes the static background (recorded in model.json, applied when "
        "serving)",
    )


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--cache-dir", type=Path, help="where extracted frames are cached")


BUDGET_PERIODS = {"hour": 1 / 24, "day": 1.0, "week": 7.0}


def budget_arg(value: str) -> float:
    """A false-alert budget ("1/day", "0.5/day", "2/week", "1/hour"), as alerts per day."""
    count, _, period = value.strip().lower().partition("/")
    try:
        n = float(count)
    except ValueError:
        n = -1.0
    if period not in BUDGET_PERIODS or not 0 <= n < 1e6:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give alerts per hour, day or week, e.g. 1/day"
        )
    return n / BUDGET_PERIODS[period]


def gate_arg(value: str) -> list[float | None]:
    """Interaction gate settings to compare: "off" or a distance in body heights, e.g. off,1,2."""
    out: list[float | None] = []
    for item in (v.strip().lower() for v in value.split(",") if v.strip()):
        if item == "off":
            out.append(None)
            continue
        try:
            d = float(item)
        except ValueError:
            d = -1.0
        if not 0 <= d <= 20:
            raise argparse.ArgumentTypeError(f"{item!r}: give off or a distance from 0 to 20")
        out.append(d)
    if not out:
        raise argparse.ArgumentTypeError("give at least one setting, e.g. off,1,2")
    return out


def width_fractions(value: str) -> tuple[float, ...]:
    """Pasted widths as fractions of the frame width, e.g. "1/2,1/3,1/4" or "0.4"."""
    out = []
    for item in (v.strip() for v in value.split(",") if v.strip()):
        num, _, den = item.partition("/")
        try:
            f = float(num) / float(den or 1)
        except (ValueError, ZeroDivisionError):
            f = -1.0
        if not 0.05 <= f <= 1:
            raise argparse.ArgumentTypeError(f"{item!r}: give a fraction from 0.05 to 1, e.g. 1/3")
        out.append(f)
    if not out:
        raise argparse.ArgumentTypeError("give at least one fraction, e.g. 1/2,1/3,1/4")
    return tuple(out)
