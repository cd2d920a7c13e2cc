"""What a measurement ran on: the machine and the versions that decide the figures.

Figures move with the decoder and the interpreter (a fresh install resolves the newest OpenCV
and LiteRT), so every JSON document of a benchmark or an evaluation carries this beside them.
"""

from __future__ import annotations

import contextlib
import os
import platform
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon import __version__

__all__ = ["machine_info"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "machine": f"{_cpu_model()} ({platform.machine()}), {platform.system()}",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "har_daemon": __version__,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with contextlib.suppress(PackageNotFoundError):
        info["ai_edge_litert"] = version("ai-edge-litert")
    return info
