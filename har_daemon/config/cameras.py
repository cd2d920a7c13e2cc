"""[capture] and [[cameras]]: what each camera reads and how a failing stream is handled.

`CaptureOptions` is the one definition of the stream-handling settings: [capture] holds the
defaults, each [[cameras]] entry inherits them (see `DaemonConfig`) and may override any, and
the capture thread reads them from the camera's `CameraConfig`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from har_daemon.config.paths import resolve_relative
from har_daemon.config.recognisers import RecogniserConfig, unique_kinds
from har_daemon.config.types import SLUG_PATTERN, CameraSource, Section, SourceKind, source_kind
from har_daemon.config.zones import MAX_POLYGONS, MaskConfig, ZoneConfig
from har_daemon.core.polygons import polygon_problem
from har_daemon.core.redact import redact_url

RtspTransport = Literal["tcp", "udp"]


class CaptureOptions(Section):
    """Options shared by [capture] (the defaults) and each [[cameras]] entry."""

    rtsp_transport: RtspTransport = Field(
        "tcp",
        title="RTSP transport",
        description="'tcp' (robust, default) or 'udp' (lower latency, drops on lossy links).",
    )
    open_timeout_s: float = Field(
        10.0,
        ge=1,
        le=300,
        title="Open timeout",
        description="Seconds a stream may take to open (connect and answer) before the attempt "
        "counts as failed and is retried.",
    )
    stall_timeout_s: float = Field(
        10.0,
        ge=1,
        le=600,
        title="Stall timeout",
        description="Seconds without a frame before a stream counts as stalled and reconnects.",
    )
    reconnect_initial_s: float = Field(
        1.0,
        ge=0.1,
        le=600,
        title="First reconnect delay",
        description="Seconds before the first reconnect attempt; doubles per failure.",
    )
    reconnect_max_s: float = Field(
        60.0,
        ge=0.1,
        le=3600,
        title="Longest reconnect delay",
        description="Cap of the doubling reconnect delay (>= reconnect_initial_s).",
    )
    reconnect_jitter: float = Field(
        0.2,
        ge=0,
        le=1,
        title="Reconnect jitter",
        description="Random +/- fraction applied to each delay, so cameras do not retry in step.",
    )
    decoder_threads: int = Field(
        0,
        ge=0,
        le=16,
        title="Decoder threads",
        description="FFmpeg threads decoding a file or stream; 0: one per CPU core (OpenCV's "
        "default). Each thread holds frames of its own: 1 saves about 2 MB per camera at "
        "640x480 and 8 MB at 1080p against 2 threads, and decodes 1080p H.264 at 4-6 ms a frame "
        "here, but on a loaded machine a camera then has fewer threads to get CPU time with.",
    )

    @field_validator("reconnect_max_s")
    @classmethod
    def _max_not_below_initial(cls, v: float, info: ValidationInfo) -> float:
        initial = info.data.get("reconnect_initial_s")
        if initial is not None and v < initial:
            raise ValueError(f"must be >= reconnect_initial_s ({initial})")
        return v


class CaptureConfig(CaptureOptions):
    """[capture]: stream-handling defaults that every camera inherits."""


class CameraConfig(CaptureOptions):
    """One [[cameras]] entry."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        title="Camera name",
        description="Unique; used in topics and logs (letters, digits, '-', '_').",
    )
    source: CameraSource = Field(
        ...,
        title="Video source",
        description="Webcam index (0), a /dev/videoN path, an rtsp:// or http(s):// URL, or a "
        "video file.",
    )
    record_source: CameraSource | None = Field(
        None,
        title="Recording source",
        description="The camera's full-resolution main stream (rtsp:// URL, or a file), when "
        "`source` is its sub-stream: event clips are cut from it by stream copy (no decoding, "
        "no re-encoding) at its own resolution; the analysis and snapshots keep to `source`.",
    )
    enabled: bool = Field(True, title="Enabled", description="false: keep it but do not open it.")
    loop: bool = Field(False, title="Loop file", description="Files only: start again at the end.")
    realtime: bool = Field(
        True,
        title="Real-time playback",
        description="Files only: read at the file's frame rate (false: as fast as possible).",
    )
    enter_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        title="Camera's enter threshold",
        description="This camera's alert threshold, overriding `har-daemon calibrate`'s "
        "(calibration.json in the state directory) and [inference] enter_threshold. Must be "
        "above [inference] exit_threshold.",
    )
    zones: list[ZoneConfig] = Field(
        default_factory=list,
        max_length=MAX_POLYGONS,
        title="Zones",
        description="[[cameras.zones]]: named areas; events carry the zones their people stand "
        "in (a person's foot point: the middle of the bottom of their box).",
    )
    masks: list[MaskConfig] = Field(
        default_factory=list,
        max_length=MAX_POLYGONS,
        title="Masks",
        description="[[cameras.masks]]: areas never analysed (no detection, motion or cut "
        "check; people standing in them are ignored).",
    )
    required_zones: dict[str, list[str]] = Field(
        default_factory=dict,
        max_length=1000,
        title="Required zones",
        description="activity = [zones]: the activity counts only for people standing in one "
        "of the zones (needs a person-centric model). Activities not listed count everywhere.",
    )

    recognisers: list[RecogniserConfig] = Field(
        default_factory=list,
        max_length=2,
        title="Recognisers",
        description='What this camera recognises, e.g. [{kind = "classifier"}, {kind = '
        '"fall"}]: each with its own events and Home Assistant sensor, on the same frames. '
        "Empty (default): the [model] classifier alone.",
    )

    @field_validator("record_source")
    @classmethod
    def _recordable(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) or (isinstance(v, str) and v.startswith("/dev/")):
            raise ValueError("a webcam cannot be recorded by copy: give a stream URL or a file")
        return v

    @model_validator(mode="after")
    def _polygons(self) -> CameraConfig:
        """Each polygon usable, zone names unique and every required zone defined; the line
        names the camera and the zone, as the file's author knows them."""
        where = f"camera {self.name!r}"
        names = [z.name for z in self.zones]
        for kind, items in (("zone", self.zones), ("mask", self.masks)):
            for item in items:
                problem = polygon_problem(item.points)
                if problem is not None:
                    raise ValueError(f"{where}, {kind} {item.name!r}: {problem}")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{where}: zone names must be unique: {', '.join(dup)}")
        for activity, zones in self.required_zones.items():
            unknown = [z for z in zones if z not in names]
            if not zones or unknown:
                what = f"unknown zone {unknown[0]!r}" if unknown else "an empty list"
                known = ", ".join(names) or "none"
                raise ValueError(f"{where}: required_zones.{activity} has {what} (zones: {known})")
        return self

    @field_validator("source", mode="after")
    @classmethod
    def _find_relative_file(cls, v: int | str) -> int | str:
        """A relative file not in the working directory (a service's is /): beside the config,
        then among the bundled files, so `models/demo/sample.mp4` plays from any folder."""
        if isinstance(v, int) or source_kind(v) != "file" or v.startswith(("file:", "/")):
            return v
        if Path(v).exists():
            return v
        found = resolve_relative(Path(v))
        return str(found) if found.exists() else v

    @field_validator("recognisers")
    @classmethod
    def _unique_recognisers(cls, v: list[RecogniserConfig]) -> list[RecogniserConfig]:
        return unique_kinds(v)

    @property
    def classifies(self) -> bool:
        """Whether the [model] classifier runs on this camera."""
        return not self.recognisers or any(r.kind == "classifier" for r in self.recognisers)

    @property
    def fall(self) -> RecogniserConfig | None:
        """The fall recogniser's settings, when this camera runs one."""
        return next((r for r in self.recognisers if r.kind == "fall"), None)

    @property
    def recogniser_activities(self) -> list[str]:
        """What the camera's recognisers other than the classifier raise (["fall"])."""
        return [r.activity for r in self.recognisers if r.activity is not None]

    @property
    def source_kind(self) -> SourceKind:
        """How the source is opened: 'webcam', 'device', 'stream' or 'file'."""
        return source_kind(self.source)

    @property
    def redacted_source(self) -> str:
        """The source with URL credentials hidden: what logs may show."""
        return redact_url(self.source) if isinstance(self.source, str) else str(self.source)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() never show a URL's credentials."""
        for key, value in super().__repr_args__():
            secret = key in ("source", "record_source") and isinstance(value, str)
            yield key, (redact_url(value) if secret else value)
