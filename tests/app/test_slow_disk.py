"""A slow disk delays events, never windows: the inference thread does no disk work.

The real daemon runs under strace with every fsync/fdatasync delayed by 200 ms (what an SD card
or a busy NAS does to the spool's transactions), at 4 looping cameras with chatty thresholds,
against a real broker. Every window must still be scored on time (no stale window) and every
event the daemon printed must reach a subscriber.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.daemon_helpers import DaemonPool, daemon_config
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CAMERAS = ("cam1", "cam2", "cam3", "cam4")
DELAY_US = 200_000
RUN_S = 30.0
CHATTY = {"enter_threshold": 0.3, "exit_threshold": 0.05, "min_windows": 1}
STRACE = [
    "strace",
    "-f",
    "--seccomp-bpf",
    "-qq",
    "-e",
    "trace=fsync,fdatasync",
    "-e",
    f"inject=fsync:delay_exit={DELAY_US}",
    "-e",
    f"inject=fdatasync:delay_exit={DELAY_US}",
]


def _tracee(strace_pid: int) -> int:
    """The daemon: strace's only child."""
    children = Path(f"/proc/{strace_pid}/task/{strace_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_slow_fsync_costs_no_window_and_no_event(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [
            {"name": name, "source": videos["change"], "loop": True, "realtime": True}
            for name in CAMERAS
        ],
        inference={**CHATTY, "update_interval_s": 1.0},
    )
    trace_log = tmp_path / "strace.log"
    with MqttRecorder(mosquitto, "har/+/events") as rec:
        d = daemons.start(cfg, wrapper=[*STRACE, "-o", str(trace_log), "--"])
        daemon_pid = 0
        try:
            wait_until(lambda: d.stdout_path.stat().st_size > 0, 60, message=d.describe)
            daemon_pid = _tracee(d.pid)
            time.sleep(RUN_S)
            os.kill(daemon_pid, signal.SIGTERM)
            assert d.wait(timeout=60) == 0, d.describe()
        finally:
            if daemon_pid and Path(f"/proc/{daemon_pid}").exists():
                os.kill(daemon_pid, signal.SIGKILL)
        printed = d.stdout_events()
        wanted = {(e["camera"], e["seq"]) for e in printed}
        got: set[tuple[str, int]] = set()

        def all_arrived() -> bool:
            for name in CAMERAS:
                got.update((name, json.loads(p)["seq"]) for p in rec.payloads(f"har/{name}/events"))
            return wanted <= got

        wait_until(all_arrived, 30, message=lambda: f"missing {sorted(wanted - got)[:10]}")

    delayed = trace_log.read_text().count("(DELAYED)")
    assert delayed > 20, "the fsync delay was not applied"
    stopped = next(e for e in d.logs() if e["event"] == "daemon.stopped")
    per_camera = {name: stopped["cameras"][name] for name in CAMERAS}
    print(
        f"{delayed} fsyncs delayed by {DELAY_US / 1000:.0f} ms; {len(printed)} events; "
        + ", ".join(
            f"{n}: {c['windows']} windows, {c['stale_windows']} stale"
            for n, c in per_camera.items()
        )
    )
    assert len(printed) >= 4 * len(CAMERAS), "too few events to exercise the spool"
    for name, cam in per_camera.items():
        assert cam["windows"] >= 40, (name, cam)
        assert cam["stale_windows"] == 0, (name, cam)
