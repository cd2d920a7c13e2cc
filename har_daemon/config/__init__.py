"""The daemon's configuration: a TOML file, overridden by `HAR_<SECTION>__<FIELD>` variables.

Precedence, highest first: `overrides` passed to `load_config` (the CLI's flags), environment
variables (`HAR_MQTT__HOST=broker`, `HAR_MQTT__PORT=8883`; a whole section or list as JSON, e.g.
`HAR_INFERENCE__ALERT_ACTIVITIES='["fight"]'`), the TOML file, the defaults of each section.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
option. `load_config` turns every problem into one `ConfigError` whose message has one line per
bad field (`mqtt.port: ...`), which the CLI prints before exiting with status 2.

Capture/reconnect settings live in `[capture]`; each `[[cameras]]` entry inherits them and may
override any of them. Relative paths are taken from the working directory, except the model
directory, which is looked up beside the config file and then among the bundled models.

Plain validated data: this package imports only `har_daemon.core`; the daemon builds its
runtime objects from these values.

Modules: `types` (durations, sizes, paths, sources), `paths` (state directory, model lookup),
one module per group of sections (`inference`, `cameras`, `comms`, `outputs`, `service`),
`settings` (`DaemonConfig` and its sources), `errors` (one line per bad field), `loader`.
"""

from __future__ import annotations

from har_daemon.config.cameras import CameraConfig, CaptureConfig, CaptureOptions, RtspTransport
from har_daemon.config.comms import HomeAssistantConfig, MqttConfig, SpoolConfig
from har_daemon.config.debug_view import DebugViewConfig
from har_daemon.config.errors import describe_errors
from har_daemon.config.inference import Backend, InferenceConfig, ModelConfig, SmoothingMethod
from har_daemon.config.loader import load_config
from har_daemon.config.outputs import ClipCodec, ClipsConfig, SnapshotsConfig
from har_daemon.config.paths import default_state_dir
from har_daemon.config.service import LoggingConfig, LogLevel, MetricsConfig, StatsConfig
from har_daemon.config.settings import ENV_NESTED_DELIMITER, ENV_PREFIX, DaemonConfig
from har_daemon.config.types import (
    SLUG_PATTERN,
    STREAM_SCHEMES,
    TOPIC_PATTERN,
    CameraSource,
    ExpandedPath,
    FrameWidth,
    Seconds,
    SizeBytes,
    SourceKind,
    default_of,
)

__all__ = [
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "SLUG_PATTERN",
    "STREAM_SCHEMES",
    "TOPIC_PATTERN",
    "Backend",
    "CameraConfig",
    "CameraSource",
    "CaptureConfig",
    "CaptureOptions",
    "ClipCodec",
    "ClipsConfig",
    "DaemonConfig",
    "DebugViewConfig",
    "ExpandedPath",
    "FrameWidth",
    "HomeAssistantConfig",
    "InferenceConfig",
    "LogLevel",
    "LoggingConfig",
    "MetricsConfig",
    "ModelConfig",
    "MqttConfig",
    "RtspTransport",
    "Seconds",
    "SizeBytes",
    "SmoothingMethod",
    "SnapshotsConfig",
    "SourceKind",
    "SpoolConfig",
    "StatsConfig",
    "default_of",
    "default_state_dir",
    "describe_errors",
    "load_config",
]
