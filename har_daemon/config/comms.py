"""[mqtt], [homeassistant] and [spool]: where events go, and where they wait meanwhile."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from har_daemon.config.paths import default_state_dir
from har_daemon.config.types import (
    SLUG_PATTERN,
    TOPIC_PATTERN,
    ExpandedPath,
    Seconds,
    Section,
    SizeBytes,
)

MAX_PACKET_SIZE = 256 * 1024
"""Default largest MQTT packet a client of ours accepts: every message the daemon reads (commands,
claims, Home Assistant's status) is under 1 KiB, so a bigger one can only be junk."""


class MqttConfig(Section):
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
        max_length=1024,
        title="Password",
        description="Broker password (needs username). Prefer HAR_MQTT__PASSWORD over the file; "
        "it is never logged.",
    )
    topic_prefix: str = Field(
        "har",
        max_length=100,
        pattern=TOPIC_PATTERN,
        title="Topic prefix",
        description="First topic level(s): <prefix>/status, <prefix>/<camera>/events, ...; "
        "several instances may share one (see shared_prefix). No '+', '#', spaces or empty "
        "levels.",
    )
    instance: str = Field(
        "default",
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        title="Instance name",
        description="Names this daemon in the derived client id and in "
        "<prefix>/instances/<instance>/..., so several instances never kick each other off the "
        "broker (letters, digits, '-', '_'; unique among the instances of a prefix).",
    )
    shared_prefix: bool = Field(
        False,
        title="Shared prefix",
        description="true when several instances publish under topic_prefix (distinct "
        "cameras): this one's availability (and Last Will) is then "
        "<prefix>/instances/<instance>/status instead of <prefix>/status.",
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
    max_packet_size: SizeBytes = Field(
        MAX_PACKET_SIZE,
        ge=1024,
        le=268_435_455,
        title="Largest incoming packet",
        description="Bytes, or a size such as '256KiB'. Told to the broker (MQTT 5 Maximum "
        "Packet Size: it never sends us more) and checked on every message (3.1.1): a "
        "larger message is dropped with a throttled mqtt.oversize line, never decoded.",
    )
    ack_stall_s: Seconds = Field(
        30.0,
        ge=1,
        le=3600,
        title="Acknowledgement stall",
        description="Seconds, or a duration: while connected with messages in flight and no "
        "acknowledgement handled for this long, /healthz says unhealthy (a stalled MQTT "
        "loop or broker).",
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
        """A TLS file without tls = true would be silently unused."""
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
        """Unique per host and instance, so two daemons never take each other's session."""
        return self.client_id or f"har-daemon-{socket.gethostname()}-{self.instance}"


class HomeAssistantConfig(Section):
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
    reannounce_interval_s: float = Field(
        5.0,
        ge=1,
        le=600,
        title="Re-announce interval",
        description="Seconds: when Home Assistant says 'online' (it restarted) the configs are "
        "announced again, at most once per interval; more 'online' messages meanwhile are "
        "folded into the next announcement, so a flood costs nothing.",
    )


class SpoolConfig(Section):
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
