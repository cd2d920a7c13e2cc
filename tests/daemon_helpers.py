"""Running `har-daemon run` as a real subprocess for the integration tests in test_daemon.py.

The daemon is started exactly as a user or systemd would (`python -m har_daemon run --config
F`), with its stdout (event JSON lines) and stderr (JSON logs) in files so a failing assertion
can show them. Every process started here is SIGKILLed at teardown by `DaemonPool.close`, and
gets PR_SET_PDEATHSIG from tests.infra.procs, so a failed test never leaves a daemon behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import start_process, stop_process, tail, wait_until
from tests.shared_data import REPO

DEMO_MODEL = REPO / "models" / "demo"
FIGHT_MODEL = REPO / "models" / "fight"
EXAMPLE = REPO / "config.example.toml"
ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
EVENT_KEYS = {
    "id", "type", "camera", "activity", "confidence", "peak_confidence", "started_at", "at",
    "model", "seq",
}  # fmt: skip
# Thresholds low enough that the demo model's top class always becomes an activity: for tests
# about delivery, shutdown and the features around events, not about classification.
# Alerts on the first window over 0.3; the interaction gate off, so a person-centric model
# alerts on one person as readily as on two (the tests that need the gate set it).
EAGER = {
    "enter_threshold": 0.3,
    "exit_threshold": 0.05,
    "min_windows": 1,
    "interaction_gate": False,
}
START_KEYS = EVENT_KEYS | {"has_snapshot"}
END_KEYS = EVENT_KEYS | {"ended_at", "duration_s", "reason"}  # and "clip" with [clips]


# -- config files ----------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):  # an inline table
        items = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(items) + " }"
    raise TypeError(f"no TOML for {value!r}")


def write_config(
    path: Path,
    sections: Mapping[str, Mapping[str, Any]],
    cameras: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write a TOML config: `sections` as [name] tables, `cameras` as [[cameras]] entries."""
    lines: list[str] = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in options.items()]
        lines.append("")
    for cam in cameras:
        lines.append("[[cameras]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in cam.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def daemon_config(
    path: Path,
    broker: MosquittoBroker | None,
    cameras: Sequence[Mapping[str, Any]],
    *,
    mqtt: Mapping[str, Any] | None = None,
    inference: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """A config for the bundled demo model on the LiteRT backend (no TensorFlow: fast start).

    `extra`: more sections as they are ([snapshots], [clips], [stats], ...)."""
    mqtt_section: dict[str, Any] = {"enabled": broker is not None, "keepalive": 10}
    if broker is not None:
        mqtt_section.update(host=broker.host, port=broker.port)
    mqtt_section.update(mqtt or {})
    sections: dict[str, Mapping[str, Any]] = {
        "model": {"path": DEMO_MODEL, "backend": "litert", **(model or {})},
        "mqtt": mqtt_section,
        "logging": {"level": "info", "json": True},
    }
    if inference:
        sections["inference"] = inference
    sections.update(extra or {})
    return write_config(path, sections, cameras)


def fight_config(
    path: Path,
    broker: MosquittoBroker,
    cameras: Sequence[Mapping[str, Any]],
    *,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """A config for the shipped fight model with config.example.toml's model and inference
    settings: what a user starts from. `extra`: more sections as they are."""
    example = tomllib.loads(EXAMPLE.read_text())
    sections: dict[str, Mapping[str, Any]] = {
        "model": {**example["model"], "path": FIGHT_MODEL, "backend": "litert"},
        "mqtt": {"enabled": True, "host": broker.host, "port": broker.port},
        "inference": example["inference"],
        "logging": {"level": "info", "json": True},
        **(extra or {}),
    }
    return write_config(path, sections, cameras)


# -- the daemon process ------------------------------------------------------------------------


def daemon_env(tmp: Path) -> dict[str, str]:
    """The test's environment without HAR_* overrides a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HAR_")}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONUNBUFFERED="1",
        XDG_STATE_HOME=str(tmp / "state"),
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


class DaemonProcess:
    """One `har-daemon run --config F` child; stdout and stderr go to files in `workdir`."""

    def __init__(
        self,
        config: Path,
        workdir: Path,
        args: Sequence[str] = (),
        wrapper: Sequence[str] = (),
    ) -> None:
        """`wrapper`: a command the daemon runs under (e.g. strace ... --); its child is then
        the daemon, and `pid` stays the wrapper's."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.stdout_path = workdir / "daemon.stdout"
        self.stderr_path = workdir / "daemon.stderr"
        self.started = time.monotonic()
        with open(self.stdout_path, "wb") as out:
            self.proc: subprocess.Popen = start_process(
                [
                    *wrapper,
                    sys.executable,
                    "-m",
                    "har_daemon",
                    "run",
                    "--config",
                    str(config),
                    *args,
                ],
                self.stderr_path,
                env=daemon_env(workdir),
                cwd=REPO,
                stdout=out.fileno(),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Exit status, waiting at most `timeout` s (TimeoutExpired otherwise)."""
        return self.proc.wait(timeout=timeout)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        stop_process(self.proc, kill=True)

    def stdout_events(self) -> list[dict[str, Any]]:
        """The JSON lines printed on stdout (the daemon's events)."""
        text = self.stdout_path.read_text()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines on stderr (native libraries' own lines skipped)."""
        out = []
        for line in self.stderr_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out

    def describe(self) -> str:
        """For assertion messages: what the daemon said."""
        return (
            f"daemon pid {self.pid} rc {self.proc.poll()}\n--- stdout\n"
            f"{tail(self.stdout_path)}\n--- stderr\n{tail(self.stderr_path, 6000)}"
        )


class DaemonPool:
    """Starts daemons and SIGKILLs whatever still runs at `close()` (fixture teardown)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.daemons: list[DaemonProcess] = []

    def start(
        self, config: Path, args: Sequence[str] = (), wrapper: Sequence[str] = ()
    ) -> DaemonProcess:
        d = DaemonProcess(config, self.workdir / f"daemon-{len(self.daemons)}", args, wrapper)
        self.daemons.append(d)
        return d

    def close(self) -> None:
        for d in self.daemons:
            d.kill()


# -- MQTT observations ---------------------------------------------------------------------------


def messages(rec: MqttRecorder, topic: str) -> list[bytes]:
    return rec.payloads(topic)


def json_messages(rec: MqttRecorder, topic: str) -> list[dict[str, Any]]:
    return [json.loads(p) for p in rec.payloads(topic)]


def count(rec: MqttRecorder) -> int:
    """Index for `wait_for(..., after=)`: what has arrived so far."""
    with rec._cond:
        return len(rec.messages)


def wait_for_json(
    rec: MqttRecorder,
    topic: str,
    predicate: Any = None,
    timeout: float = 10.0,
    after: int = 0,
    daemon: DaemonProcess | None = None,
) -> dict[str, Any]:
    """The first JSON message on `topic` at index >= `after` for which `predicate` holds."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        with rec._cond:
            msgs = rec.messages[after:]
        for t, payload, _, _ in msgs:
            if t == topic:
                doc = json.loads(payload)
                if predicate is None or predicate(doc):
                    found.append(doc)
                    return True
        return False

    wait_until(
        seen,
        timeout,
        message=lambda: (
            f"no matching {topic!r} within {timeout}s"
            + (f"\n{daemon.describe()}" if daemon is not None else "")
        ),
    )
    return found[0]


def parse_iso(text: str) -> float:
    """Epoch seconds of an ISO 8601 UTC time ending in Z."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def check_event_schema(
    events: Sequence[Mapping[str, Any]], camera: str, classes: Sequence[str], model: str
) -> None:
    """Every event follows messages.event_payload; seq counts 1, 2, 3... per camera; each
    occurrence opens with `start` and closes with one `end` under one id, one at a time."""
    open_id: str | None = None
    open_start: Mapping[str, Any] | None = None
    seen_ids: set[str] = set()
    for i, ev in enumerate(events):
        assert ev["seq"] == i + 1, f"seq gap or reorder at {i}: {ev}"
        keys = set(ev) - {"clip"} if ev["type"] == "end" else set(ev)
        expected = {"start": START_KEYS, "update": EVENT_KEYS, "end": END_KEYS}[ev["type"]]
        assert keys == expected, ev
        assert ev["type"] in ("start", "update", "end"), ev
        assert str(uuid.UUID(ev["id"])) == ev["id"], ev
        assert ev["camera"] == camera and ev["model"] == model, ev
        assert ev["activity"] in classes, ev
        assert 0.0 <= ev["confidence"] <= 1.0 and 0.0 <= ev["peak_confidence"] <= 1.0, ev
        assert ev["peak_confidence"] >= ev["confidence"], ev
        for key in ("started_at", "at") + (("ended_at",) if ev["type"] == "end" else ()):
            assert isinstance(ev[key], str) and ISO_MS_Z.match(ev[key]), (key, ev)
        assert ev["at"] >= ev["started_at"], ev  # same format: string order is time order
        if ev["type"] == "start":
            assert open_id is None, f"start while {open_id} is still open: {ev}"
            assert ev["id"] not in seen_ids, f"id reused: {ev}"
            assert ev["at"] == ev["started_at"], ev
            open_id, open_start = ev["id"], ev
            seen_ids.add(ev["id"])
            continue
        assert open_start is not None and ev["id"] == open_id, f"{ev['type']} without start: {ev}"
        assert ev["activity"] == open_start["activity"], ev
        assert ev["started_at"] == open_start["started_at"], ev
        if ev["type"] == "end":
            assert ev["ended_at"] == ev["at"] and ev["ended_at"] >= ev["started_at"], ev
            assert ev["reason"] in ("below_exit", "takeover", "finish"), ev
            assert isinstance(ev["duration_s"], float | int) and ev["duration_s"] >= 0, ev
            span = parse_iso(ev["ended_at"]) - parse_iso(ev["started_at"])
            assert abs(ev["duration_s"] - span) <= 0.002, ev
            open_id = open_start = None


def proc_counts(pid: int) -> tuple[int, int]:
    """(threads, open file descriptors) of a live process, from /proc."""
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def broker_lines(broker: MosquittoBroker, fragment: str) -> list[str]:
    return [line for line in broker.log_text().splitlines() if fragment in line]
