"""[logging], [stats] and [metrics]: how the daemon reports on itself."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from har_daemon.config.types import Seconds, Section

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
NativeStderr = Literal["capture", "inherit"]


class LoggingConfig(Section):
    """[logging]"""

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    level: LogLevel = Field(
        "info", title="Log level", description="debug, info, warning, error or critical."
    )
    json_output: bool = Field(
        True,
        alias="json",
        title="JSON logs",
        description="One JSON object per line (false: human-readable console lines).",
    )
    native_stderr: NativeStderr = Field(
        "capture",
        title="Native library output",
        description="'capture': what FFmpeg, OpenCV and LiteRT write to stderr becomes log lines "
        "(their level, URL credentials masked, repeats throttled), so stderr stays one JSON "
        "object per line; 'inherit': they write to stderr themselves, unformatted.",
    )

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        """Environment variables and habits write levels in capitals."""
        return v.lower() if isinstance(v, str) else v


class StatsConfig(Section):
    """[stats]"""

    interval: Seconds = Field(
        60.0,
        ge=0,
        le=86400,
        title="Stats interval",
        description="Seconds between published daemon statistics; 0: off.",
    )


class MetricsConfig(Section):
    """[metrics]"""

    port: int = Field(
        0, ge=0, le=65535, title="Metrics port", description="Prometheus HTTP port; 0: off."
    )
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        max_length=255,
        title="Metrics address",
        description="Address the metrics server listens on: this host only by default; "
        "'0.0.0.0' or '::' for a Prometheus elsewhere (firewall it: the figures name cameras).",
    )
    timeout_s: Seconds = Field(
        5.0,
        ge=0.5,
        le=300,
        title="Connection timeout",
        description="A connection that has not sent its request, or does not read the answer, "
        "within this is closed.",
    )
    workers: int = Field(
        4,
        ge=1,
        le=64,
        title="Request threads",
        description="Threads answering requests; waiting connections cost no thread.",
    )
    max_connections: int = Field(
        64,
        ge=1,
        le=4096,
        title="Open connections",
        description="Connections waiting for their request at once; past it the oldest is closed.",
    )
