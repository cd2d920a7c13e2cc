"""`DaemonConfig`: every section, read from a TOML file overridden by `HAR_` variables.

Precedence, highest first: keyword arguments (the CLI's overrides), environment variables
(`HAR_MQTT__HOST=broker`; a whole section or list as JSON, e.g.
`HAR_INFERENCE__ALERT_ACTIVITIES='["fight"]'`), the TOML file named by `LOADING_FILE`, the
defaults. Build it with `load_config`, which sets that file and turns errors into one message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from har_daemon.config.cameras import CameraConfig, CaptureConfig
from har_daemon.config.comms import HomeAssistantConfig, MqttConfig, SpoolConfig
from har_daemon.config.debug_view import DebugViewConfig
from har_daemon.config.inference import InferenceConfig, ModelConfig
from har_daemon.config.outputs import CLIPS_SUBDIR, ClipsConfig, SnapshotsConfig
from har_daemon.config.paths import LOADING_FILE, default_state_dir
from har_daemon.config.service import LoggingConfig, MetricsConfig, StatsConfig
from har_daemon.core.redact import redact_url

ENV_PREFIX = "HAR_"
ENV_NESTED_DELIMITER = "__"
MAX_CAMERAS = 256


class DaemonConfig(BaseSettings):
    """The whole configuration. Build it with `load_config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        validate_default=True,
    )

    model: ModelConfig = Field(
        default_factory=ModelConfig,
        title="Model",
        description="Which classifier runs, on which backend, how often.",
    )
    mqtt: MqttConfig = Field(
        default_factory=MqttConfig, title="MQTT", description="The broker events are sent to."
    )
    capture: CaptureConfig = Field(
        default_factory=CaptureConfig,
        title="Capture defaults",
        description="Stream handling that every camera inherits unless it sets its own.",
    )
    cameras: list[CameraConfig] = Field(
        default_factory=list,
        max_length=MAX_CAMERAS,
        title="Cameras",
        description="[[cameras]] entries; none: the CLI's default source is used.",
    )
    inference: InferenceConfig = Field(
        default_factory=InferenceConfig,
        title="Inference",
        description="Smoothing of the scores and the rules that start and end events.",
    )
    spool: SpoolConfig = Field(
        default_factory=SpoolConfig,
        title="Spool",
        description="Events kept on disk until the broker acknowledges them.",
    )
    logging: LoggingConfig = Field(
        default_factory=LoggingConfig, title="Logging", description="Log level and format."
    )
    homeassistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig,
        title="Home Assistant",
        description="MQTT discovery of each camera's sensors.",
    )
    snapshots: SnapshotsConfig = Field(
        default_factory=SnapshotsConfig,
        title="Snapshots",
        description="A JPEG of the frame that started each event.",
    )
    clips: ClipsConfig = Field(
        default_factory=ClipsConfig,
        title="Clips",
        description="A video clip of each event, and the disk they may use.",
    )
    stats: StatsConfig = Field(
        default_factory=StatsConfig,
        title="Statistics",
        description="The daemon's periodic statistics message.",
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,
        title="Metrics",
        description="The Prometheus endpoint.",
    )
    debug_view: DebugViewConfig = Field(
        default_factory=DebugViewConfig,
        title="Debug view",
        description="Live pictures with boxes, zones and scores, on the metrics port.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides, then the environment, then the file being loaded (no .env, no secrets
        directory: one place per setting is enough to debug)."""
        toml_file = LOADING_FILE.get()
        if toml_file is None:
            return init_settings, env_settings
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )

    @model_validator(mode="before")
    @classmethod
    def _clips_beside_spool(cls, data: Any) -> Any:
        """Without a `[clips] path`, clips go in `clips` inside `[spool] path`."""
        if not isinstance(data, dict):
            return data
        clips, spool = data.get("clips") or {}, data.get("spool") or {}
        if not isinstance(clips, dict) or clips.get("path") is not None:
            return data
        spool_path = spool.get("path") if isinstance(spool, dict) else None
        base = Path(str(spool_path)) if spool_path is not None else default_state_dir()
        return {**data, "clips": {**clips, "path": base / CLIPS_SUBDIR}}

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
        """Names become topic levels and file names, where case may not tell them apart."""
        seen: dict[str, int] = {}
        for i, cam in enumerate(cameras):
            key = cam.name.lower()
            if key in seen:
                first = cameras[seen[key]].name
                same = "" if first == cam.name else f" (same as {first!r}, ignoring case)"
                raise ValueError(
                    f"duplicate camera name {cam.name!r}{same} in cameras[{seen[key]}] and "
                    f"cameras[{i}]"
                )
            seen[key] = i
        return cameras

    @model_validator(mode="after")
    def _camera_thresholds_above_exit(self) -> DaemonConfig:
        """A camera's own enter threshold needs the same hysteresis gap as [inference]'s."""
        exit_at = self.inference.exit_threshold
        for i, cam in enumerate(self.cameras):
            if cam.enter_threshold is not None and cam.enter_threshold <= exit_at:
                raise ValueError(
                    f"cameras[{i}] ({cam.name}): enter_threshold {cam.enter_threshold} must be "
                    f"above [inference] exit_threshold ({exit_at})"
                )
        return self

    @model_validator(mode="after")
    def _debug_view_needs_http(self) -> DaemonConfig:
        if self.debug_view.enabled and not self.metrics.port:
            raise ValueError("debug_view: enabled needs an HTTP port: set [metrics] port")
        return self

    @property
    def enabled_cameras(self) -> list[CameraConfig]:
        return [cam for cam in self.cameras if cam.enabled]

    def redacted_dict(self) -> dict[str, Any]:
        """JSON-ready dump safe to log: secrets as '**********', URL credentials as '***'."""
        data = self.model_dump(mode="json")
        for cam, raw in zip(data["cameras"], self.cameras, strict=True):
            cam["source"] = raw.redacted_source if isinstance(raw.source, str) else raw.source
            if isinstance(raw.record_source, str):
                cam["record_source"] = redact_url(raw.record_source)
        return data
