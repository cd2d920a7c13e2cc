"""Value types shared by the config sections: durations, sizes, paths and camera sources.

Users write `"7d"`, `"100MB"` or `"~/clips"`; the parsers turn those into the seconds, bytes and
paths the daemon uses, and report anything else as one readable error for the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

SLUG_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Names that become topic levels and file names (cameras, instances)."""
TOPIC_PATTERN = r"^[^#+/\s]+(/[^#+/\s]+)*$"
"""MQTT topic levels without wildcards, whitespace or empty levels ("har", "site/har")."""
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
"""URL schemes a camera source may use (besides file://)."""

DURATION_UNITS: Mapping[str, float] = {
    "": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
}  # fmt: skip
SIZE_UNITS: Mapping[str, float] = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "kib": 2**10, "mib": 2**20, "gib": 2**30,
}  # fmt: skip

SourceKind = Literal["webcam", "device", "stream", "file"]

_NUMBER_WITH_UNIT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")


class Section(BaseModel):
    """A config section: unknown keys are errors, so a typo never goes unnoticed."""

    model_config = ConfigDict(extra="forbid")


def default_of(section: type[BaseModel], name: str) -> Any:
    """A field's default, for code that takes the same setting as a plain argument (so the
    default is written once, here in the config)."""
    return section.model_fields[name].get_default(call_default_factory=True)


def _parse_with_units(value: Any, units: Mapping[str, float], what: str, example: str) -> Any:
    """A number with an optional unit; anything but a string is left to the field's type."""
    if not isinstance(value, str):
        return value
    m = _NUMBER_WITH_UNIT.fullmatch(value)
    if not m or m.group(2).lower() not in units:
        raise ValueError(f"expected a number or a {what} such as {example!r}, got {value!r}")
    return float(m.group(1)) * units[m.group(2).lower()]


def parse_duration(value: Any) -> Any:
    """Seconds from `"90"`, `"1.5h"`, `"7d"`, `"250ms"`; numbers pass through."""
    return _parse_with_units(value, DURATION_UNITS, "duration", "7d")


def parse_size(value: Any) -> Any:
    """Bytes from `"100MB"`, `"1.5GiB"`, `"4k"`; numbers pass through."""
    parsed = _parse_with_units(value, SIZE_UNITS, "size", "100MB")
    return int(parsed) if isinstance(parsed, float) else parsed


def expand_path(value: Any) -> Any:
    """`~` expanded, as a shell would, since configs are written by people."""
    return Path(value).expanduser() if isinstance(value, str | Path) else value


def parse_source(value: Any) -> Any:
    """A camera source: a webcam index (`0` or `"0"`), a device, a stream URL or a file."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a webcam index (0, 1, ...), a /dev/video path, a URL or a file")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a webcam index must be >= 0")
        return value
    value = value.strip()
    if value.isdigit():
        return int(value)
    if not value:
        raise ValueError("must not be empty")
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme != "file" and scheme not in STREAM_SCHEMES:
            raise ValueError(
                f"unsupported URL scheme {scheme!r} (use {', '.join(STREAM_SCHEMES)}, "
                "or a file path)"
            )
    return value


def source_kind(source: int | str) -> SourceKind:
    """How a parsed source is opened: webcam index, V4L2 device, network stream or file."""
    if isinstance(source, int):
        return "webcam"
    if source.startswith("/dev/"):
        return "device"
    if "://" in source and not source.lower().startswith("file://"):
        return "stream"
    return "file"


Seconds = Annotated[float, BeforeValidator(parse_duration)]
SizeBytes = Annotated[int, BeforeValidator(parse_size)]
ExpandedPath = Annotated[Path, BeforeValidator(expand_path)]
CameraSource = Annotated[int | str, BeforeValidator(parse_source)]
FrameWidth = Annotated[int, Field(ge=64, le=3840)]
"""Widest frame kept for snapshots and clips; wider ones are scaled down, aspect kept."""
