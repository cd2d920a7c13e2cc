"""Where a broker is and how to log in: one place that turns settings into a paho client.

The daemon's publisher (`comms.mqtt`), its start-up look at the other instances
(`comms.availability`) and the `events` subscriber (`comms.subscriber`) all connect the same
way, so credentials, TLS and the protocol choice are applied here once.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from har_daemon.config import MqttConfig
from har_daemon.config.comms import MAX_PACKET_SIZE

PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}

AUTH_REFUSALS = frozenset({0x85, 0x86, 0x87, 0x8C})
"""CONNACK reasons (MQTT 5) that retrying cannot fix: client id not valid, bad user name or
password, not authorized, bad authentication method."""


@dataclass(frozen=True)
class BrokerSettings:
    """A broker's address and credentials. TLS is on when `tls` is true or any `tls_*_file`
    is given; without `tls_ca_file` the system CAs are used. `tls_insecure` skips the hostname
    check (never the chain check). The password is kept out of `repr`. `max_packet_size`: the
    largest packet we accept (`connect_kwargs`, `oversize`)."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca_file: str | os.PathLike[str] | None = None
    tls_cert_file: str | os.PathLike[str] | None = None
    tls_key_file: str | os.PathLike[str] | None = None
    tls_insecure: bool = False
    protocol: str = "5"
    keepalive: int = 60
    connect_timeout: float = 5.0
    max_packet_size: int = MAX_PACKET_SIZE

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, not {self.protocol!r}")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        if not 1 <= int(self.port) <= 65535:
            raise ValueError(f"port {self.port} is not between 1 and 65535")

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls or self.tls_ca_file or self.tls_cert_file or self.tls_key_file)

    @property
    def mqtt5(self) -> bool:
        return self.protocol == "5"

    def connect_kwargs(self, clean_start: bool = True, **props: int) -> dict[str, Any]:
        """`connect`/`connect_async` keyword arguments: on MQTT 5 the CONNECT carries Maximum
        Packet Size, so the broker drops (never sends) a larger message, a retained one too,
        before it costs us memory; `props` are more CONNECT properties."""
        if not self.mqtt5:
            return {}
        properties = Properties(PacketTypes.CONNECT)
        properties.MaximumPacketSize = self.max_packet_size
        for name, value in props.items():
            setattr(properties, name, value)
        return {"clean_start": clean_start, "properties": properties}

    def oversize(self, payload_len: int) -> bool:
        """Whether a received payload is over the limit (a 3.1.1 broker cannot be told)."""
        return payload_len > self.max_packet_size


class ReasonedClient(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed at the socket level
    (paho's on_connect_fail does not say; TLS verification errors are only visible here)."""

    last_connect_error: BaseException | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            rc = super().reconnect()
        except OSError as err:
            self.last_connect_error = err
            raise
        self.last_connect_error = None
        return rc


def new_client(settings: BrokerSettings, client_id: str) -> ReasonedClient:
    """A paho 2.x client (callback API 2) with the settings' credentials and TLS applied.

    Raises OSError (ssl.SSLError, FileNotFoundError) when a TLS file cannot be loaded. MQTT 5
    sets clean_start per connect; 3.1.1 always starts a clean session here.
    """
    proto = PROTOCOLS[settings.protocol]
    client = ReasonedClient(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=proto,
        clean_session=True if proto != MQTTProtocolVersion.MQTTv5 else None,
        reconnect_on_failure=True,
    )
    client.connect_timeout = settings.connect_timeout
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.uses_tls:
        client.tls_set(
            ca_certs=str(settings.tls_ca_file) if settings.tls_ca_file else None,
            certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
            keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        client.tls_insecure_set(settings.tls_insecure)
    return client


def describe_error(err: BaseException | None) -> str:
    """`Type: message` for a log line, or "unknown"."""
    return f"{type(err).__name__}: {err}" if err is not None else "unknown"


def client_options(config: MqttConfig) -> dict[str, Any]:
    """`MqttClient` keyword arguments for the [mqtt] section: the one mapping of it."""
    return {
        "host": config.host,
        "port": config.port,
        "client_id": config.effective_client_id,
        "keepalive": config.keepalive,
        "username": config.username,
        "password": config.password.get_secret_value() if config.password else None,
        "tls": config.tls,
        "tls_ca_file": config.tls_ca_file,
        "tls_cert_file": config.tls_cert_file,
        "tls_key_file": config.tls_key_file,
        "tls_insecure": config.tls_insecure,
        "topic_prefix": config.topic_prefix,
        "qos": config.qos,
        "max_packet_size": config.max_packet_size,
        "ack_stall_s": config.ack_stall_s,
    }
