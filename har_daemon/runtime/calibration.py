"""Per-camera alert thresholds for a false-alert budget (`har-daemon calibrate`).

Cameras differ more than any training set covers: a threshold that keeps one scene quiet lets
another alert every minute. Calibration watches a camera's normal footage through the daemon's
own path, and picks the lowest enter threshold (never below the configured one) at which the
camera's tracker would have raised no more false alerts than the budget allows on that footage.
The choice lives in `calibration.json` in the state directory, one entry per camera; the daemon
reads it at start, and a camera's own `enter_threshold` in the config beats it.

Footage shorter than a day cannot show a rate of one alert per day: the budget then allows none
on the footage, and the more footage, the more the threshold can be trusted (`footage_s`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from har_daemon.config import DaemonConfig
from har_daemon.core.errors import ConfigError
from har_daemon.core.files import write_atomic

CALIBRATION_FILE = "calibration.json"
STEP = 0.01
"""Resolution of the calibrated threshold."""
DAY_S = 86400.0


@dataclass(frozen=True)
class Calibration:
    """One camera's calibrated threshold and the evidence behind it."""

    enter_threshold: float
    budget_per_day: float
    footage_s: float
    alerts_on_footage: int  # false alerts the footage raises at the threshold
    alerts_before: int  # ... and at the configured threshold
    within_budget: bool
    sources: tuple[str, ...]
    calibrated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sources": list(self.sources)}


def candidates(floor: float) -> list[float]:
    """Thresholds from `floor` up to 1 in `STEP`s (the floor itself first)."""
    above = np.round(np.arange(math.ceil(floor / STEP) * STEP, 1.0 + STEP / 2, STEP), 4)
    return sorted({round(floor, 4), *(float(t) for t in above if t > floor)})


def allowed_alerts(budget_per_day: float, footage_s: float) -> int:
    """False alerts the budget allows on `footage_s` seconds of footage."""
    return math.floor(budget_per_day * footage_s / DAY_S + 1e-9)


def choose_threshold(
    alerts_at: Callable[[float], int], thresholds: Sequence[float], allowed: int
) -> tuple[float, int, bool]:
    """The lowest of `thresholds` (ascending) whose alerts stay within `allowed`: (threshold,
    its alerts, True); none does: the highest, its alerts, False."""
    if not thresholds:
        raise ValueError("no thresholds to choose from")
    n = 0
    for t in thresholds:
        n = alerts_at(t)
        if n <= allowed:
            return t, n, True
    return thresholds[-1], n, False


def calibration_path(config: DaemonConfig) -> Path:
    """Where the daemon keeps it: the state directory (the spool's folder)."""
    return Path(config.spool.path) / CALIBRATION_FILE


def read_calibrations(path: Path) -> dict[str, Calibration]:
    """The file's cameras; none when it does not exist; ConfigError (one line) when it is not
    a calibration file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read calibration file: {exc}") from None
    try:
        return {
            name: Calibration(**{**entry, "sources": tuple(entry["sources"])})
            for name, entry in doc["cameras"].items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a har-daemon calibration file ({exc!r})") from None


def write_calibration(path: Path, camera: str, calibration: Calibration) -> None:
    """Add or replace one camera's entry, atomically (the others are kept)."""
    cameras = read_calibrations(path)
    cameras[camera] = calibration
    doc = {"cameras": {name: c.as_dict() for name, c in sorted(cameras.items())}}
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())


def camera_thresholds(
    config: DaemonConfig, calibrations: Mapping[str, Calibration]
) -> dict[str, float]:
    """Each configured camera's enter threshold: its own in the config, else its calibrated
    one, else [inference]'s."""
    inf = config.inference
    out = {}
    for cam in config.cameras:
        calibrated = calibrations.get(cam.name)
        if cam.enter_threshold is not None:
            out[cam.name] = cam.enter_threshold
        elif calibrated is not None and calibrated.enter_threshold > inf.exit_threshold:
            out[cam.name] = calibrated.enter_threshold
        else:  # uncalibrated, or calibrated under an exit threshold raised since
            out[cam.name] = inf.enter_threshold
    return out
