"""The daemon's configuration: a TOML file, overridden by `HAR_<SECTION>__<FIELD>` variables.

Precedence, highest first: `overrides` passed to `load_config` (the CLI's flags), environment
variables (`HAR_MQTT__HOST=broker`, `HAR_MQTT__PORT=8883`; a whole section or list as JSON, e.g.
`HAR_INFERENCE__ALERT_ACTIVITIES='["fight"]'`), the TOML file, the defaults below.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
option. `load_config` turns every problem into one `ConfigError` whose message has one line per
bad field (`mqtt.port: ...`), which the CLI prints before exiting with status 2.

Capture/reconnect settings live in `[capture]`; each `[[cameras]]` entry inherits them and may
override any of them. Relative paths are taken from the working directory, except the default
model directory, which is the bundled `models/demo` beside the package.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from har_daemon.core.errors import ConfigError
from har_daemon.core.paths import DEMO_MODEL_DIR, bundled
from har_daemon.runtime.events import TrackerConfig
from har_daemon.runtime.smoothing import Smoother

ENV_PREFIX = "HAR_"
ENV_NESTED_DELIMITER = "__"

SLUG_PATTERN = r"^[A-Za-z0-9_-]+$"
# MQTT topic levels without wildcards, whitespace or empty levels ("har", "site/har").
TOPIC_PATTERN = r"^[^#+/\s]+(/[^#+/\s]+)*$"
STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")


def default_state_dir() -> Path:
    """$STATE_DIRECTORY (set by systemd's StateDirectory=), else $XDG_STATE_HOME/har-daemon,
    else ~/.local/state/har-daemon."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "har-daemon"
    return Path.home() / ".local" / "state" / "har-daemon"


def redact_url(source: str) -> str:
    """Hide the password in a URL's user info (rtsp://user:pw@cam/ -> rtsp://user:***@cam/)."""
    try:
        parts = urlsplit(source)
    except ValueError:
        return source
    if parts.password is None:
        return source
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


# -- value parsers -------------------------------------------------------------------------------

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE_UNITS = {
    "": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "kib": 2**10, "mib": 2**20, "gib": 2**30,
}  # fmt: skip


def _parse_with_units(value: Any, units: Mapping[str, float], what: str, example: str) -> Any:
    if not isinstance(value, str):
        return value
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
    if not m or m.group(2).lower() not in units:
        raise ValueError(f"expected a number or a {what} such as {example!r}, got {value!r}")
    return float(m.group(1)) * units[m.group(2).lower()]


def _parse_duration(value: Any) -> Any:
    return _parse_with_units(value, {"": 1, **_DURATION_UNITS}, "duration", "7d")


def _parse_size(value: Any) -> Any:
    parsed = _parse_with_units(value, _SIZE_UNITS, "size", "100MB")
    return int(parsed) if isinstance(parsed, float) else parsed


def _expand_path(value: Any) -> Any:
    return Path(value).expanduser() if isinstance(value, str | Path) else value


def _parse_source(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a webcam index (0, 1, ...), a /dev/video path, a URL or a file")
    if isinstance(value, str):
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
    elif value < 0:
        raise ValueError("a webcam index must be >= 0")
    return value


Seconds = Annotated[float, BeforeValidator(_parse_duration)]
SizeBytes = Annotated[int, BeforeValidator(_parse_size)]
ExpandedPath = Annotated[Path, BeforeValidator(_expand_path)]
CameraSource = Annotated[int | str, BeforeValidator(_parse_source)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- sections ------------------------------------------------------------------------------------


class ModelConfig(_Section):
    """[model]: which classifier to run and how often."""

    @field_validator("path", mode="after")
    @classmethod
    def _resolve_relative(cls, v: Path) -> Path:
        """A service's working directory is rarely where its config or models live."""
        if v.is_absolute():
            return v
        toml_file = _TOML_FILE.get()
        bases = [toml_file.parent] if toml_file is not None else []
        for candidate in [*(base / v for base in bases), bundled(v)]:
            if candidate.exists():
                return candidate
        return v

    path: ExpandedPath = Field(
        default_factory=lambda: DEMO_MODEL_DIR,
        title="Model directory",
        description="Directory holding model.json and the model file. Default: the bundled "
        "demo model (models/demo beside the package). A relative path is looked up beside the "
        "config file, then among the bundled models (so 'models/fight' works from any "
        "directory).",
    )
    backend: Literal["keras", "litert"] = Field(
        "keras",
        title="Inference backend",
        description="'keras' (TensorFlow) or 'litert' (the directory's .tflite export; needs "
        "the [litert] extra).",
    )
    frame_spacing_s: float | None = Field(
        None,
        gt=0,
        le=60,
        title="Frame spacing override",
        description="Seconds between sampled frames. Default (unset): the spacing recorded in "
        "model.json, which matches training.",
    )
    stride: int = Field(
        5,
        ge=1,
        le=1000,
        title="Window stride",
        description="Classify a camera's window every N newly sampled frames.",
    )
    batch_max: int = Field(
        8,
        ge=1,
        le=256,
        title="Largest batch",
        description="Most windows (across cameras) classified in one model call.",
    )


class MqttConfig(_Section):
    """[mqtt]: where events go."""

    enabled: bool = Field(
        True,
        title="Publish over MQTT",
        description="When false (or the broker is unreachable at start) the daemon keeps "
        "running and prints events.",
    )
    host: str = Field(
        "localhost", min_length=1, max_length=253, title="Broker host", description="Hostname/IP."
    )
    port: int = Field(1883, ge=1, le=65535, title="Broker port", description="8883 for TLS.")
    username: str | None = Field(
        None, min_length=1, max_length=256, title="User name", description="Broker login."
    )
    password: SecretStr | None = Field(
        None,
        title="Password",
        description="Broker password (needs username). Prefer HAR_MQTT__PASSWORD over the file; "
        "it is never logged.",
    )
    topic_prefix: str = Field(
        "har",
        max_length=100,
        pattern=TOPIC_PATTERN,
        title="Topic prefix",
        description="First topic level(s): <prefix>/status, <prefix>/<camera>/events, ...; give "
        "each instance its own prefix to keep their topics apart. No '+', '#', spaces or empty "
        "levels.",
    )
    instance: str = Field(
        "default",
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        title="Instance name",
        description="Names this daemon in the derived client id, so several instances on one "
        "host never kick each other off the broker (letters, digits, '-', '_').",
    )
    client_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        title="Client id",
        description="MQTT client id. Default: har-daemon-<hostname>-<instance>.",
    )
    keepalive: int = Field(
        60, ge=5, le=3600, title="Keepalive", description="Seconds between MQTT pings."
    )
    qos: int = Field(1, ge=0, le=2, title="Event QoS", description="QoS of event messages.")
    publish_scores: bool = Field(
        False,
        title="Publish scores",
        description="Also publish every window's smoothed class scores.",
    )
    tls: bool = Field(False, title="Use TLS", description="Connect with TLS.")
    tls_ca_file: ExpandedPath | None = Field(
        None,
        title="CA certificate",
        description="PEM file of the CA that signed the broker's certificate. Default: the "
        "system's CAs.",
    )
    tls_cert_file: ExpandedPath | None = Field(
        None, title="Client certificate", description="PEM client certificate (mutual TLS)."
    )
    tls_key_file: ExpandedPath | None = Field(
        None,
        title="Client key",
        description="PEM key of tls_cert_file (when not inside that file).",
    )
    tls_insecure: bool = Field(
        False,
        title="Skip hostname check",
        description="Do not check the broker's hostname against its certificate (testing only).",
    )

    @field_validator("password")
    @classmethod
    def _password_needs_user(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if v is not None and info.data.get("username") is None and "username" in info.data:
            raise ValueError("a password needs a username")
        return v

    @field_validator("tls_ca_file", "tls_cert_file", "tls_key_file")
    @classmethod
    def _tls_file(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is None:
            return v
        if info.data.get("tls") is False:
            raise ValueError("set, but tls = false; set tls = true to use it")
        if not v.is_file():
            raise ValueError(f"file not found: {v}")
        return v

    @field_validator("tls_insecure")
    @classmethod
    def _insecure_needs_tls(cls, v: bool, info: ValidationInfo) -> bool:
        if v and info.data.get("tls") is False:
            raise ValueError("only applies with tls = true")
        return v

    @field_validator("tls_key_file")
    @classmethod
    def _key_needs_cert(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if v is not None and "tls_cert_file" in info.data and info.data["tls_cert_file"] is None:
            raise ValueError("needs tls_cert_file")
        return v

    @property
    def effective_client_id(self) -> str:
        return self.client_id or f"har-daemon-{socket.gethostname()}-{self.instance}"


_STALL_TIMEOUT_S = 10.0
_RECONNECT_INITIAL_S = 1.0
_RECONNECT_MAX_S = 60.0
_RECONNECT_JITTER = 0.2


class _CaptureOptions(_Section):
    """Options shared by [capture] (the defaults) and each [[cameras]] entry."""

    rtsp_transport: Literal["tcp", "udp"] = Field(
        "tcp",
        title="RTSP transport",
        description="'tcp' (robust, default) or 'udp' (lower latency, drops on lossy links).",
    )
    stall_timeout_s: float = Field(
        _STALL_TIMEOUT_S,
        ge=1,
        le=600,
        title="Stall timeout",
        description="Seconds without a frame before a stream counts as stalled and reconnects.",
    )
    reconnect_initial_s: float = Field(
        _RECONNECT_INITIAL_S,
        ge=0.1,
        le=600,
        title="First reconnect delay",
        description="Seconds before the first reconnect attempt; doubles per failure.",
    )
    reconnect_max_s: float = Field(
        _RECONNECT_MAX_S,
        ge=0.1,
        le=3600,
        title="Longest reconnect delay",
        description="Cap of the doubling reconnect delay (>= reconnect_initial_s).",
    )
    reconnect_jitter: float = Field(
        _RECONNECT_JITTER,
        ge=0,
        le=1,
        title="Reconnect jitter",
        description="Random +/- fraction applied to each delay, so cameras do not retry in step.",
    )

    @field_validator("reconnect_max_s")
    @classmethod
    def _max_not_below_initial(cls, v: float, info: ValidationInfo) -> float:
        initial = info.data.get("reconnect_initial_s")
        if initial is not None and v < initial:
            raise ValueError(f"must be >= reconnect_initial_s ({initial})")
        return v


class CaptureConfig(_CaptureOptions):
    """[capture]: stream-handling defaults that every camera inherits."""


class CameraConfig(_CaptureOptions):
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
    enabled: bool = Field(True, title="Enabled", description="false: keep it but do not open it.")
    loop: bool = Field(False, title="Loop file", description="Files only: start again at the end.")
    realtime: bool = Field(
        True,
        title="Real-time playback",
        description="Files only: read at the file's frame rate (false: as fast as possible).",
    )

    @property
    def source_kind(self) -> Literal["webcam", "device", "stream", "file"]:
        src = self.source
        if isinstance(src, int):
            return "webcam"
        if src.startswith("/dev/"):
            return "device"
        if "://" in src and not src.lower().startswith("file://"):
            return "stream"
        return "file"

    @property
    def redacted_source(self) -> str:
        """The source with any URL password hidden: what logs may show."""
        return redact_url(self.source) if isinstance(self.source, str) else str(self.source)

    def __repr_args__(self):
        for key, value in super().__repr_args__():
            yield key, (redact_url(value) if key == "source" and isinstance(value, str) else value)


class InferenceConfig(_Section):
    """[inference]: smoothing and the event state machine."""

    smoothing: Literal["mean", "ema"] = Field(
        "mean",
        title="Smoothing",
        description="'mean' of the last smoothing_window windows, or 'ema' (exponential).",
    )
    smoothing_window: int = Field(
        3, ge=1, le=100, title="Smoothing window", description="Windows averaged by 'mean'."
    )
    ema_alpha: float = Field(
        0.5,
        gt=0,
        le=1,
        title="EMA weight",
        description="Weight of the newest window in 'ema' (1 = no smoothing).",
    )
    enter_threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        title="Enter threshold",
        description="Smoothed score an activity must reach (as the top class) to start.",
    )
    exit_threshold: float = Field(
        0.4,
        ge=0,
        lt=1,
        title="Exit threshold",
        description="An active activity ends when its smoothed score falls below this "
        "(< enter_threshold).",
    )
    min_windows: int = Field(
        2,
        ge=1,
        le=100,
        title="Windows to start",
        description="Consecutive windows at or above enter_threshold before an activity starts.",
    )
    update_interval_s: Seconds = Field(
        10.0,
        ge=0,
        le=86400,
        title="Update interval",
        description="Least seconds between 'update' events while active (0: every window).",
    )
    alert_activities: list[str] = Field(
        default_factory=list,
        title="Alerting activities",
        description="Classes that raise events; empty: all. Others only show in the state.",
    )
    ignore_activities: list[str] = Field(
        default_factory=list,
        title="Ignored classes",
        description="Background classes (e.g. NonViolence) that never become an activity.",
    )
    motion_gating: bool = Field(
        False,
        title="Motion gating",
        description="Skip classifying windows without motion (saves compute on still scenes).",
    )
    motion_threshold: float = Field(
        0.02,
        ge=0,
        le=1,
        title="Motion threshold",
        description="Mean absolute change between sampled frames, as a fraction of full "
        "scale, below which a window counts as still.",
    )

    @field_validator("exit_threshold")
    @classmethod
    def _exit_below_enter(cls, v: float, info: ValidationInfo) -> float:
        enter = info.data.get("enter_threshold")
        if enter is not None and v >= enter:
            raise ValueError(f"must be lower than enter_threshold ({enter})")
        return v

    @field_validator("alert_activities", "ignore_activities")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(not name.strip() for name in v):
            raise ValueError("activity names must not be empty")
        if len(set(v)) != len(v):
            raise ValueError("activity names must be unique")
        return v

    @field_validator("ignore_activities")
    @classmethod
    def _not_both(cls, v: list[str], info: ValidationInfo) -> list[str]:
        both = sorted(set(v) & set(info.data.get("alert_activities") or ()))
        if both:
            raise ValueError(f"also in alert_activities: {', '.join(both)}")
        return v

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(
            enter_threshold=self.enter_threshold,
            exit_threshold=self.exit_threshold,
            min_windows=self.min_windows,
            update_interval_s=self.update_interval_s,
            alert_activities=frozenset(self.alert_activities) or None,
            ignore_activities=frozenset(self.ignore_activities),
        )

    def make_smoother(self) -> Smoother:
        return Smoother(self.smoothing, window=self.smoothing_window, alpha=self.ema_alpha)


class SpoolConfig(_Section):
    """[spool]: events kept on disk while the broker is unreachable."""

    path: ExpandedPath = Field(
        default_factory=default_state_dir,
        title="Spool directory",
        description="Default: $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/har-daemon, else "
        "~/.local/state/har-daemon.",
    )
    max_rows: int = Field(
        100_000, ge=1, le=100_000_000, title="Most events", description="Oldest dropped first."
    )
    max_bytes: SizeBytes = Field(
        100_000_000,
        ge=1_000_000,
        le=1_000_000_000_000,
        title="Largest size",
        description="Bytes, or a size such as '100MB' or '1GiB'.",
    )
    max_age: Seconds = Field(
        7 * 86400.0,
        ge=60,
        le=366 * 86400,
        title="Oldest event",
        description="Seconds, or a duration such as '12h' or '7d'; older events are dropped.",
    )


class LoggingConfig(_Section):
    """[logging]"""

    level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", title="Log level", description="debug, info, warning, error or critical."
    )
    json_output: bool = Field(
        True,
        alias="json",
        title="JSON logs",
        description="One JSON object per line (false: human-readable console lines).",
    )

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class HomeAssistantConfig(_Section):
    """[homeassistant]: MQTT discovery."""

    enabled: bool = Field(
        False, title="Discovery", description="Announce each camera's sensors to Home Assistant."
    )
    discovery_prefix: str = Field(
        "homeassistant",
        max_length=100,
        pattern=TOPIC_PATTERN,
        title="Discovery prefix",
        description="Home Assistant's MQTT discovery prefix.",
    )


class SnapshotsConfig(_Section):
    """[snapshots]"""

    enabled: bool = Field(
        False, title="Snapshots", description="Publish a JPEG of the frame that started an event."
    )
    max_width: int = Field(
        640,
        ge=64,
        le=3840,
        title="Snapshot width",
        description="Frames wider than this are scaled down (aspect kept) before encoding.",
    )
    quality: int = Field(
        85, ge=10, le=100, title="JPEG quality", description="JPEG quality, 10 (small) to 100."
    )
    overlay: bool = Field(
        True,
        title="Overlay",
        description="Draw the time, camera, activity and confidence onto the snapshot.",
    )


class ClipsConfig(_Section):
    """[clips]"""

    enabled: bool = Field(False, title="Clips", description="Save a video clip of each event.")
    path: ExpandedPath = Field(
        default_factory=lambda: default_state_dir() / "clips",
        title="Clip directory",
        description="Default: 'clips' in the state directory (see [spool] path).",
    )
    pre_roll_s: Seconds = Field(
        5.0,
        ge=0,
        le=60,
        title="Pre-roll",
        description="Seconds of video before the event's start included in its clip.",
    )
    post_roll_s: Seconds = Field(
        2.0,
        ge=0,
        le=60,
        title="Post-roll",
        description="Seconds of video after the event's end included in its clip.",
    )
    max_clip_s: Seconds = Field(
        120.0,
        ge=1,
        le=3600,
        title="Longest clip",
        description="A clip is closed after this long even if the activity goes on.",
    )
    fps: float = Field(
        10.0,
        ge=1,
        le=30,
        title="Clip frame rate",
        description="Frames per second kept for clips (at most the camera's own rate).",
    )
    max_width: int = Field(
        640,
        ge=64,
        le=3840,
        title="Clip width",
        description="Frames wider than this are scaled down (aspect kept) before writing.",
    )
    codec: Literal["auto", "h264", "mp4v"] = Field(
        "auto",
        title="Clip codec",
        description=(
            "'h264' (plays in browsers and Home Assistant) needs ffmpeg with libx264 on PATH; "
            "'mp4v' is MPEG-4 Part 2, written by OpenCV itself; 'auto' uses h264 when it can."
        ),
    )
    max_bytes: SizeBytes = Field(
        10**9,
        ge=10**6,
        title="Disk budget",
        description="Oldest clips are deleted when the directory grows past this (e.g. '2GB').",
    )
    max_age: Seconds = Field(
        7 * 86400.0,
        ge=60,
        title="Clip age limit",
        description="Clips older than this are deleted (e.g. '7d').",
    )


class StatsConfig(_Section):
    """[stats]"""

    interval: Seconds = Field(
        60.0,
        ge=0,
        le=86400,
        title="Stats interval",
        description="Seconds between published daemon statistics; 0: off.",
    )


class MetricsConfig(_Section):
    """[metrics]"""

    port: int = Field(
        0, ge=0, le=65535, title="Metrics port", description="Prometheus HTTP port; 0: off."
    )
    host: str = Field(
        "0.0.0.0",
        min_length=1,
        max_length=255,
        title="Metrics address",
        description="Address the metrics server listens on ('127.0.0.1': this host only).",
    )


# -- the whole file ------------------------------------------------------------------------------

_TOML_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "har_toml_file", default=None
)


class DaemonConfig(BaseSettings):
    """The whole configuration. Build it with `load_config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        validate_default=True,
    )

    model: ModelConfig = Field(default_factory=ModelConfig, title="Model")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, title="MQTT")
    capture: CaptureConfig = Field(
        default_factory=CaptureConfig,
        title="Capture defaults",
        description="Stream handling that every camera inherits unless it sets its own.",
    )
    cameras: list[CameraConfig] = Field(
        default_factory=list,
        title="Cameras",
        description="[[cameras]] entries; none: the CLI's default source is used.",
    )
    inference: InferenceConfig = Field(default_factory=InferenceConfig, title="Inference")
    spool: SpoolConfig = Field(default_factory=SpoolConfig, title="Spool")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, title="Logging")
    homeassistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, title="Home Assistant"
    )
    snapshots: SnapshotsConfig = Field(default_factory=SnapshotsConfig, title="Snapshots")
    clips: ClipsConfig = Field(default_factory=ClipsConfig, title="Clips")
    stats: StatsConfig = Field(default_factory=StatsConfig, title="Statistics")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, title="Metrics")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _TOML_FILE.get()
        if toml_file is None:
            return init_settings, env_settings
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @model_validator(mode="before")
    @classmethod
    def _cameras_inherit_capture(cls, data: Any) -> Any:
        """Fill each camera's unset capture options from [capture]."""
        if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
            return data
        try:
            capture = CaptureConfig.model_validate(data.get("capture") or {})
        except ValidationError:
            return data  # reported under capture.*; cameras keep their own defaults
        inherited = capture.model_dump()  # exactly the options a camera may override
        data = dict(data)
        data["cameras"] = [
            {**inherited, **cam} if isinstance(cam, dict) else cam for cam in data["cameras"]
        ]
        return data

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        seen: dict[str, int] = {}
        for i, cam in enumerate(cameras):
            key = cam.name.lower()  # names become topic levels and file names
            if key in seen:
                first = cameras[seen[key]].name
                same = "" if first == cam.name else f" (same as {first!r}, ignoring case)"
                raise ValueError(
                    f"duplicate camera name {cam.name!r}{same} in cameras[{seen[key]}] and "
                    f"cameras[{i}]"
                )
            seen[key] = i
        return cameras

    @property
    def enabled_cameras(self) -> list[CameraConfig]:
        return [cam for cam in self.cameras if cam.enabled]

    def redacted_dict(self) -> dict[str, Any]:
        """JSON-ready dump safe to log: secrets as '**********', URL passwords as '***'."""
        data = self.model_dump(mode="json")
        for cam, raw in zip(data["cameras"], self.cameras, strict=True):
            cam["source"] = raw.redacted_source if isinstance(raw.source, str) else raw.source
        return data


# -- loading and error messages ------------------------------------------------------------------


def _format_loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation such as `list[X]`, `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap_model(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def _model_at(loc: Iterable[int | str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = DaemonConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return None
        model = _unwrap_model(model.model_fields[part].annotation)
    return model


def _option_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _env_origin(loc: tuple[int | str, ...], env: Mapping[str, str]) -> str | None:
    names = []
    for part in loc:
        if isinstance(part, int):
            break
        names.append(part)
    upper_env = {k.upper() for k in env}
    for i in range(len(names), 0, -1):
        var = ENV_PREFIX + ENV_NESTED_DELIMITER.join(names[:i]).upper()
        if var in upper_env:
            return var
    return None


def _in_overrides(loc: tuple[int | str, ...], overrides: Mapping[str, Any] | None) -> bool:
    node: Any = overrides
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
        if not isinstance(node, Mapping | list):
            return True  # a scalar override covers everything below it
    return True


_SECRET_FIELDS = {"password"}


def _shown_input(loc: tuple[int | str, ...], value: Any) -> str | None:
    if loc and loc[-1] in _SECRET_FIELDS:
        return None
    if isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str) and len(value) <= 80:
        return repr(redact_url(value))
    return None


def describe_errors(
    exc: ValidationError,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """One line per problem: `section.field: message`, naming an environment variable or an
    override when the bad value came from one."""
    env = os.environ if env is None else env
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        shown = None
        if kind == "extra_forbidden":
            parent = _model_at(loc[:-1])
            msg = "unknown section" if len(loc) == 1 else "unknown option"
            if parent is not None:
                names = _option_names(parent)
                close = difflib.get_close_matches(str(loc[-1]), names, n=1)
                msg += f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(names)})"
        elif kind == "missing":
            msg = "required, but not set"
        elif kind == "list_type" and loc == ("cameras",):
            msg += "; write each camera as a [[cameras]] table"
        elif kind == "model_type":
            msg = "expected a table of options"
        else:
            shown = _shown_input(loc, err.get("input"))
        line = f"{_format_loc(loc)}: {msg}"
        if shown is not None and kind not in ("value_error", "assertion_error"):
            line += f" (got {shown})"
        if overrides and _in_overrides(loc, overrides):
            line += " (from a command-line override)"
        else:
            var = _env_origin(loc, env)
            if var is not None:
                line += f" (from environment variable {var})"
        lines.append(line)
    return lines


def load_config(path: Path | str | None, overrides: dict[str, Any] | None = None) -> DaemonConfig:
    """Read `path` (TOML; None: defaults only), apply HAR_* variables and `overrides`.

    Raises `ConfigError` for a missing or unreadable file, a TOML syntax error (its message
    names the file and line) or invalid values (one line per bad field).
    """
    toml_path = None
    if path is not None:
        toml_path = Path(path).expanduser()
        if not toml_path.exists():
            raise ConfigError(f"config file {toml_path} not found")
        if not toml_path.is_file():
            raise ConfigError(f"config path {toml_path} is not a file")
    where = f" in {toml_path}" if toml_path is not None else ""
    token = _TOML_FILE.set(toml_path)
    try:
        return DaemonConfig(**(overrides or {}))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{toml_path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{toml_path}: not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {toml_path}: {exc.strerror or exc}") from None
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration{where}: {exc}") from None
    except ValidationError as exc:
        lines = describe_errors(exc, overrides)
        header = f"invalid configuration{where} ({len(lines)} problem{'s' * (len(lines) > 1)}):"
        raise ConfigError("\n".join([header, *lines])) from None
    finally:
        _TOML_FILE.reset(token)
