"""What the fault-injection tests (test_faults*.py) check on every run of the real daemon."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.daemon_helpers import DaemonProcess, daemon_env
from tests.infra.mosquitto import MqttRecorder
from tests.infra.procs import wait_until
from tests.shared_data import REPO

CHATTY = {"enter_threshold": 0.3, "exit_threshold": 0.05, "min_windows": 1}
LAUNCH = [sys.executable, "-m", "tests.app.fault_launch"]
"""A `DaemonPool.start` wrapper: the daemon with a fault injected (see fault_launch)."""
SECRETS = ("S3cr3tPw", "T0kenXyz", "Us3rInfoPw")


def json_lines(d: DaemonProcess) -> list[dict[str, Any]]:
    """Every line of the daemon's stderr, each one JSON object; no raw line, no traceback."""
    out = []
    for line in d.stderr_path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line on stderr: {line!r}\n{d.describe()}") from None
        assert isinstance(doc, dict), line
        out.append(doc)
    return out


def no_exceptions(logs: Sequence[dict[str, Any]]) -> None:
    failed = [e for e in logs if "exception" in e]
    assert not failed, failed[:2]


def events_of(logs: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def wait_events(d: DaemonProcess, n: int, timeout: float) -> list[dict[str, Any]]:
    found: list[list[dict[str, Any]]] = []

    def enough() -> bool:
        assert d.alive(), d.describe()
        found[:] = [d.stdout_events()]
        return len(found[0]) >= n

    wait_until(enough, timeout, message=lambda: f"fewer than {n} events\n{d.describe()}")
    return found[0]


def wait_log(d: DaemonProcess, event: str, timeout: float) -> dict[str, Any]:
    def seen() -> dict[str, Any] | None:
        return next((e for e in d.logs() if e["event"] == event), None)

    wait_until(lambda: seen() is not None, timeout, message=lambda: f"no {event}\n{d.describe()}")
    found = seen()
    assert found is not None
    return found


def stop(d: DaemonProcess) -> int:
    d.signal(signal.SIGTERM)
    return d.wait(timeout=30)


def keys(events: Sequence[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {(e["id"], e["type"], e["seq"]) for e in events}


def all_delivered(produced: Sequence[dict[str, Any]], received: Callable[[], list]) -> None:
    """Every event the daemon printed arrives (waiting a little for the last ones)."""
    missing: set = set()

    def arrived() -> bool:
        missing.clear()
        missing.update(keys(produced) - keys(received()))
        return not missing

    wait_until(arrived, 20, message=lambda: f"lost {len(missing)} of {len(produced)}")


def recorded_events(rec: MqttRecorder) -> list[dict[str, Any]]:
    with rec._cond:
        msgs = list(rec.messages)
    return [json.loads(p) for t, p, _, _ in msgs if t.endswith("/events")]


def http_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def stats_lines(logs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return events_of(logs, "stats")


def rss_range(logs: Sequence[dict[str, Any]], growth_mb: float = 40.0) -> tuple[float, float]:
    """The daemon's RSS over its `stats` lines (`[stats] interval = 1`); it must stay flat."""
    rss = [s["rss_mb"] for s in stats_lines(logs)]
    assert rss, "no stats lines"
    assert max(rss) - min(rss) < growth_mb, rss
    return min(rss), max(rss)


def check_config(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", "check-config", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=daemon_env(config.parent),
        cwd=REPO,
        timeout=60,
        check=False,
    )


def one_error_line(text: str, *fragments: str) -> str:
    """stderr of a refused start: JSON log lines, then exactly one plain line naming why."""
    lines = text.splitlines()
    plain = [line for line in lines if not line.startswith("{")]
    assert len(plain) == 1 and lines[-1] == plain[0], text[-3000:]
    assert plain[0].startswith("har-daemon: error: "), plain
    for fragment in fragments:
        assert fragment in plain[0], (fragment, plain[0])
    for line in lines[:-1]:
        json.loads(line)
    assert "Traceback" not in text
    return plain[0]


def looping(name: str, video: Path, **over: Any) -> dict[str, Any]:
    return {"name": name, "source": str(video), "loop": True, "realtime": True, **over}
