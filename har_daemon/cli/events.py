"""`events`: the reference consumer; prints every event of `<prefix>/+/events` once.

The work is in `comms.subscriber` (session, acknowledgements) and `comms.dedup` (state); this
module turns the command line into settings, checks what the user controls before connecting
(host, TLS files, the state file: one line and exit 2 when wrong), prints, and stops cleanly on
SIGINT/SIGTERM with the state saved.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any, TextIO

from har_daemon.comms.connection import BrokerSettings
from har_daemon.comms.dedup import SeqDedup, StateFile
from har_daemon.comms.reorder import HOLD_S
from har_daemon.comms.subscriber import EventConsumer
from har_daemon.comms.topics import Topics, check_topic_filter, shared
from har_daemon.config import default_state_dir
from har_daemon.core.errors import ConfigError
from har_daemon.core.logs import get_logger

log = get_logger(__name__)

PASSWORD_ENV = "HAR_MQTT__PASSWORD"
USERNAME_ENV = "HAR_MQTT__USERNAME"
"""The daemon's own variables: one secret to manage, never on a command line (ps shows it)."""

FIRST_CONNECT_GRACE_S = 2.0


def human_line(camera: str, event: dict[str, Any]) -> str:
    """`<at> <prefix>/<camera> <type> <activity> <confidence> [...] seq=<n>`."""
    parts = [
        str(event.get("at", "-")),
        camera,
        str(event.get("type", "?")),
        str(event.get("activity", "?")),
        _number(event.get("confidence")),
    ]
    if event.get("type") == "end":
        parts += [
            f"peak={_number(event.get('peak_confidence'))}",
            f"duration={event.get('duration_s', '?')}s",
            f"reason={event.get('reason', '?')}",
        ]
    parts += [f"seq={event['seq']}", f"id={str(event.get('id', '?'))[:8]}"]
    return " ".join(parts)


def _number(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "?"


def _printer(out: TextIO, as_json: bool):  # type: ignore[no-untyped-def]
    def emit(camera: str, event: dict[str, Any], raw: bytes) -> None:
        # --json: the payload exactly as the daemon published it (compact JSON, one line).
        line = raw.decode() if as_json else human_line(camera, event)
        out.write(line + "\n")
        out.flush()

    return emit


def _settings(args: argparse.Namespace) -> BrokerSettings:
    username = args.username or os.environ.get(USERNAME_ENV) or None
    password = os.environ.get(PASSWORD_ENV) or None
    tls = bool(args.tls or args.tls_ca_file or args.tls_cert_file or args.tls_key_file)
    for option in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(args, option)
        if path is not None and not os.access(path, os.R_OK):
            flag = "--" + option.replace("_", "-")
            raise ConfigError(f"{flag}: cannot read {path}")
    if args.tls_key_file and not args.tls_cert_file:
        raise ConfigError("--tls-key-file needs --tls-cert-file")
    if args.tls_insecure and not tls:
        raise ConfigError("--tls-insecure only applies with --tls")
    if password is not None and username is None:
        raise ConfigError(f"{PASSWORD_ENV} is set but there is no --username")
    try:
        settings = BrokerSettings(
            args.host,
            args.port if args.port is not None else (8883 if tls else 1883),
            username=username,
            password=password,
            tls=tls,
            tls_ca_file=args.tls_ca_file,
            tls_cert_file=args.tls_cert_file,
            tls_key_file=args.tls_key_file,
            tls_insecure=args.tls_insecure,
            keepalive=args.keepalive,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        socket.getaddrinfo(settings.host, settings.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(f"--host {settings.host!r}: cannot resolve it ({exc})") from None
    return settings


def _topic_filter(args: argparse.Namespace) -> str:
    prefix = args.prefix.strip("/")
    try:
        check_topic_filter(prefix)
        topic_filter = Topics(prefix).events("+")
        return shared(args.share, topic_filter) if args.share else topic_filter
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _state(args: argparse.Namespace, client_id: str) -> tuple[StateFile, SeqDedup]:
    """The state file, loaded and written once now: an unwritable one fails here, not after
    the first event."""
    path = args.state
    if path is None:
        folder = default_state_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"events-{client_id}.json"
    state = StateFile(Path(path))
    try:
        dedup = state.load()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    if state.path.is_dir():
        raise ConfigError(f"state file {path} is a folder")
    try:
        state.save(dedup)
    except OSError as exc:
        raise ConfigError(f"cannot write state file {path}: {exc.strerror or exc}") from None
    return state, dedup


def _hold_s(args: argparse.Namespace) -> float:
    """A shared subscription's member sees gaps in every camera's seq by design: no waiting."""
    if args.reorder_s is not None:
        return float(args.reorder_s)
    return 0.0 if args.share else HOLD_S


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    topic_filter = _topic_filter(args)
    client_id = args.client_id or "-".join(
        ["har-events", socket.gethostname(), *([args.share] if args.share else [])]
    )
    state, dedup = _state(args, client_id)
    try:
        consumer = EventConsumer(
            settings,
            client_id=client_id,
            topic_filter=topic_filter,
            state=state,
            dedup=dedup,
            emit=_printer(sys.stdout, args.json),
            session_expiry_s=args.session_expiry,
            hold_s=_hold_s(args),
        )
    except (OSError, ssl.SSLError) as exc:  # TLS files that are not certificates or keys
        raise ConfigError(f"TLS: {exc}") from None

    def on_signal(signum: int, _frame: object) -> None:
        if not consumer.stopped.is_set():
            log.info("events.stopping", signal=signal.Signals(signum).name)
            consumer.stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    consumer.start()
    fatal = consumer.first_outcome(settings.connect_timeout + FIRST_CONNECT_GRACE_S)
    if fatal is None:
        while not consumer.stopped.wait(0.5):
            pass
    consumer.stop()
    if fatal is not None:
        raise ConfigError(fatal)
    return 1 if consumer.failed else 0
