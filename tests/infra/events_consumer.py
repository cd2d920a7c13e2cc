"""`har-daemon events` as a real subprocess, for the tests of the reference consumer.

Started as a user would (`python -m har_daemon events --host ... --json`), stdout (one event per
line) and stderr (JSON logs) in files; killed at teardown like every tracked child process.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.daemon_helpers import daemon_env
from tests.infra.mosquitto import MosquittoBroker
from tests.infra.procs import start_process, stop_process, tail, wait_until
from tests.shared_data import REPO


class EventsConsumer:
    """One `har-daemon events` process with a fixed client id and state file."""

    def __init__(
        self,
        broker: MosquittoBroker,
        workdir: Path,
        client_id: str,
        args: Sequence[str] = ("--json",),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`env`: more environment (e.g. HAR_MQTT__PASSWORD for `--username`)."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.client_id = client_id
        self.state = workdir / f"{client_id}.state.json"
        self.stdout_path = workdir / f"{client_id}.stdout"
        self.stderr_path = workdir / f"{client_id}.stderr"
        self.args = list(args)
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self, timeout: float = 20.0) -> EventsConsumer:
        """Start and wait until it has subscribed (its `events.subscribed` log line)."""
        cmd = [
            sys.executable, "-m", "har_daemon", "events",
            "--host", self.broker.host, "--port", str(self.broker.port),
            "--client-id", self.client_id, "--state", str(self.state), *self.args,
        ]  # fmt: skip
        self.runs += 1
        with open(self.stdout_path, "ab") as out:
            self.proc = start_process(
                cmd,
                self.stderr_path,
                env={**daemon_env(self.stdout_path.parent), **self.env},
                cwd=REPO,
                stdout=out.fileno(),
            )
        wait_until(
            lambda: self._subscribed() >= self.runs,
            timeout,
            message=lambda: f"consumer never subscribed\n{self.describe()}",
        )
        return self

    def _subscribed(self) -> int:
        return sum(1 for e in self.logs() if e.get("event") == "events.subscribed")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        stop_process(self.proc)
        return rc

    def kill(self) -> None:
        stop_process(self.proc, kill=True)

    def lines(self) -> list[str]:
        return [line for line in self.stdout_path.read_text().splitlines() if line.strip()]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in tail(self.stderr_path, 10**7).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    out.append(json.loads(line))
        return out

    def describe(self) -> str:
        rc = self.proc.poll() if self.proc is not None else None
        return (
            f"consumer {self.client_id} rc {rc}\n--- stdout\n{tail(self.stdout_path)}\n"
            f"--- stderr\n{tail(self.stderr_path, 6000)}"
        )
