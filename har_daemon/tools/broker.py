"""A real Mosquitto broker on a free loopback port, and a subscriber that records what it gets.

The tests run the daemon against it, and `har-daemon bench` measures latency through it.

    broker = MosquittoBroker(tmp_path / "broker", users={"alice": "s3cret"}, tls=True)
    broker.start()
    ...  # connect to broker.host:broker.port (plain) or broker.tls_port (TLS, CA broker.ca_cert)
    broker.stop()   # SIGTERM; broker.kill() is SIGKILL
    broker.start()  # same ports, same config: a broker outage and its end

Files in `workdir`: mosquitto.conf, mosquitto.log (the broker's log, log_type all),
mosquitto.stderr.log, passwd, acl, data/ (persistence), tls/ (CA, server and client keys).
"""

from __future__ import annotations

import os
import pwd
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from har_daemon.tools.procs import (
    LOOPBACK,
    ServiceProcess,
    free_port,
    port_accepts,
    start_process,
    tail,
    wait_until,
)
from har_daemon.tools.tls import make_tls_files, run_tool

__all__ = ["MOSQUITTO_PATHS", "Message", "MosquittoBroker", "MqttRecorder", "find_mosquitto"]

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

Message = tuple[str, bytes, bool, int]
"""(topic, payload, retain flag, qos) of a received message."""


def find_mosquitto() -> str | None:
    """`mosquitto` on PATH, else where Debian and a source build put it; None when absent."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).is_file()), None)


class MosquittoBroker(ServiceProcess):
    """One mosquitto process; ports and config stay fixed across stop()/start().

    users: username -> password, written with `mosquitto_passwd -b` into a password file.
    allow_anonymous: default True without `users`, False with them.
    acl: contents of an ACL file (mosquitto `acl_file` syntax), e.g. "user alice\\ntopic write a/#".
    persistence: keep retained messages and sessions in workdir/data across restarts (saved
        on SIGTERM and every `autosave_interval` seconds).
    tls: also listen with TLS on `tls_port` using a generated CA (`ca_cert`); with
        `tls_require_client_cert` clients must present a cert signed by it (`client_cert`,
        `client_key` are provided).
    extra_config: appended verbatim to mosquitto.conf.
    log_types: mosquitto `log_type`s (`all` logs every message; a benchmark wants less).
    executable: the mosquitto binary (default: `find_mosquitto()`).
    """

    host = LOOPBACK

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        allow_anonymous: bool | None = None,
        acl: str | None = None,
        persistence: bool = False,
        autosave_interval: int = 1800,
        tls: bool = False,
        tls_port: int | None = None,
        tls_require_client_cert: bool = False,
        extra_config: str = "",
        log_types: Sequence[str] = ("all",),
        executable: str | None = None,
    ) -> None:
        super().__init__(workdir, "mosquitto-")
        executable = executable or find_mosquitto()
        if executable is None:
            raise RuntimeError(f"mosquitto not found on PATH or in {', '.join(MOSQUITTO_PATHS)}")
        self.executable = executable
        self.port = port or free_port()
        self.users = dict(users or {})
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.acl = acl
        self.persistence = persistence
        self.autosave_interval = autosave_interval
        self.tls = tls or tls_require_client_cert
        self.tls_port = (tls_port or free_port()) if self.tls else None
        self.tls_require_client_cert = tls_require_client_cert
        self.extra_config = extra_config
        self.log_types = tuple(log_types)
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.stderr_path = self.workdir / "mosquitto.stderr.log"
        self.persistence_dir = self.workdir / "data"
        self.tls_files: dict[str, Path] = {}
        self._configured = False

    # -- files ----------------------------------------------------------------------------

    @property
    def ca_cert(self) -> Path:
        return self.tls_files["ca_cert"]

    @property
    def client_cert(self) -> Path:
        return self.tls_files["client_cert"]

    @property
    def client_key(self) -> Path:
        return self.tls_files["client_key"]

    def _configure(self) -> None:
        lines = [
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",  # as root: stay root, keep file access
            "per_listener_settings false",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"log_dest file {self.log_path}",
            *(f"log_type {t}" for t in self.log_types),
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "connection_messages true",
            f"persistence {'true' if self.persistence else 'false'}",
        ]
        if self.persistence:
            self.persistence_dir.mkdir(exist_ok=True)
            lines += [
                f"persistence_location {self.persistence_dir}/",
                f"autosave_interval {self.autosave_interval}",
            ]
        if self.users:
            passwd = self.workdir / "passwd"
            passwd.unlink(missing_ok=True)
            passwd.touch(mode=0o600)
            for user, password in self.users.items():
                run_tool([MOSQUITTO_PASSWD, "-b", str(passwd), user, password])
            lines.append(f"password_file {passwd}")
        if self.acl is not None:
            acl = self.workdir / "acl"
            acl.write_text(self.acl if self.acl.endswith("\n") else self.acl + "\n")
            lines.append(f"acl_file {acl}")
        lines.append(f"listener {self.port} {self.host}")
        if self.tls:
            self.tls_files = make_tls_files(self.workdir / "tls")
            lines += [
                f"listener {self.tls_port} {self.host}",
                f"cafile {self.tls_files['ca_cert']}",
                f"certfile {self.tls_files['server_cert']}",
                f"keyfile {self.tls_files['server_key']}",
                f"require_certificate {'true' if self.tls_require_client_cert else 'false'}",
            ]
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_path.write_text("\n".join(lines) + "\n")
        self._configured = True

    # -- process --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        """Start the broker (same ports as before) and wait until every listener accepts."""
        if self.is_running:
            return self
        if not self._configured:
            self._configure()
        self._proc = start_process(
            [self.executable, "-c", str(self.config_path)], self.stderr_path, cwd=self.workdir
        )
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self._proc.returncode}:\n"
                    f"{tail(self.stderr_path)}\n{tail(self.log_path)}"
                )
            return all(port_accepts(self.host, p) for p in ports)

        try:
            wait_until(ready, timeout, message=lambda: f"mosquitto not listening on {ports}:\n"
                       f"{tail(self.stderr_path)}\n{tail(self.log_path)}")  # fmt: skip
        except BaseException:
            self.kill()
            raise
        return self

    def restart(self, timeout: float = 10.0) -> MosquittoBroker:
        self.stop()
        return self.start(timeout)

    def log_text(self) -> str:
        """The broker's log so far (its own log file and its stderr)."""
        return tail(self.stderr_path, 10**7) + tail(self.log_path, 10**7)

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"MosquittoBroker({self.host}:{self.port}, tls_port={self.tls_port}, {state})"


class MqttRecorder:
    """A real paho subscriber that records what it receives, for assertions.

        with MqttRecorder(broker, "har/#") as rec:
            msg = rec.wait_for("har/status", b"online")

    Retained messages arrive first on subscribe (with `retain` set). `messages` holds
    (topic, payload bytes, retain flag, qos) tuples in arrival order; `timed()` pairs each with
    the wall-clock time it arrived.
    """

    def __init__(
        self,
        broker: MosquittoBroker,
        *topics: str,
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
    ) -> None:
        self.broker = broker
        self.topics = topics or ("#",)
        self.messages: list[Message] = []
        self._arrived: list[float] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"recorder-{os.getpid()}-{id(self):x}",
            protocol=mqtt.MQTTv5,
        )
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        arrived = time.time()
        with self._cond:
            self.messages.append(
                (message.topic, bytes(message.payload), bool(message.retain), message.qos)
            )
            self._arrived.append(arrived)
            self._cond.notify_all()

    def start(self, timeout: float = 10.0) -> MqttRecorder:
        self._client.connect(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"recorder could not subscribe to {self.topics} on {self.broker}")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def timed(self) -> list[tuple[float, Message]]:
        """(arrival time in epoch seconds, message) for every message so far."""
        with self._cond:
            return list(zip(self._arrived, self.messages, strict=True))

    def payloads(self, topic: str) -> list[bytes]:
        with self._cond:
            return [p for t, p, _, _ in self.messages if t == topic]

    def wait_for(
        self,
        topic: str,
        payload: bytes | str | None = None,
        timeout: float = 10.0,
        *,
        after: int = 0,
    ) -> Message:
        """The first message on `topic` (with `payload`, if given) at index >= `after`."""
        want = payload.encode() if isinstance(payload, str) else payload
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for msg in self.messages[after:]:
                    if msg[0] == topic and (want is None or msg[1] == want):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"no {topic!r} {want!r} within {timeout}s; got {self.messages[after:]}"
                    )
                self._cond.wait(left)

    def __enter__(self) -> MqttRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
