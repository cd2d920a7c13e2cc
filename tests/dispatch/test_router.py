"""The event router: wall-clock payload times over a timeline that never steps, message numbers
that continue the spool's, and end-to-end latency per window."""

from __future__ import annotations

import io
import json

import numpy as np

from har_daemon.comms.messenger import Messenger
from har_daemon.comms.payloads import iso_utc
from har_daemon.comms.topics import Topics
from har_daemon.core.clock import Clock
from har_daemon.dispatch.router import EventRouter, RouterSettings
from har_daemon.runtime.events import ActivityState, Transition
from har_daemon.runtime.inference import WindowResult

T0 = 1_700_000_000.0


class FakeTime:
    def __init__(self) -> None:
        self.mono, self.wall = 50.0, T0


def _window(t: float, kind: str, started: float, captured_at: float) -> WindowResult:
    tr = Transition(
        kind=kind,  # type: ignore[arg-type]
        activity="fight",
        occurrence_id="occ-1",
        confidence=0.9,
        peak_confidence=0.9,
        started_at=started,
        at=t,
        ended_at=t if kind == "end" else None,
        duration_s=t - started,
        camera="cam",
        reason="below_exit" if kind == "end" else None,
    )
    active = kind != "end"
    state = ActivityState(
        "fight" if active else None, 0.9 if active else 0.0, started if active else t, active,
        "occ-1" if active else None, "cam",
    )  # fmt: skip
    probs = np.array([0.1, 0.9])
    return WindowResult("cam", t, probs, probs, [tr], state, None, captured_at)


def test_payloads_follow_a_stepped_wall_clock_and_keep_the_announced_start() -> None:
    t = FakeTime()
    clock = Clock(wall=lambda: t.wall, monotonic=lambda: t.mono)
    out = io.StringIO()
    latencies: list[tuple[str, float]] = []
    router = EventRouter(
        ["cam"],
        RouterSettings("m", ["idle", "fight"], 1, publish_scores=False, state_interval_s=5.0),
        topics=Topics("har"),
        messenger=Messenger(None),
        out=out,
        clock=clock,
        first_seqs={"cam": 41},  # the spool's: numbers continue above them
        record_latency=lambda camera, ms: latencies.append((camera, ms)),
    )
    start = clock.timeline()
    t.mono, t.wall = t.mono + 0.05, t.wall + 0.05
    router.handle([_window(start, "start", start, captured_at=t.mono - 0.05)])
    t.mono += 10.0
    t.wall += 10.0 - 3600.0  # ten seconds later, and the wall clock went back an hour
    router.handle([_window(start + 10.0, "end", start, captured_at=t.mono - 0.2)])
    first, last = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["seq"], last["seq"]) == (42, 43)
    assert first["started_at"] == first["at"] == iso_utc(T0)
    assert last["started_at"] == iso_utc(T0)  # as its start announced it
    assert last["at"] == last["ended_at"] == iso_utc(T0 + 10.0 - 3600.0)  # the wall clock now
    assert last["duration_s"] == 10.0  # measured on the timeline, not across the step
    assert [camera for camera, _ in latencies] == ["cam", "cam"]
    assert [round(ms) for _, ms in latencies] == [50, 200]
    state = router.state_payload(router.states()["cam"], clock.timeline(), clock.wall_offset())
    assert state["updated_at"] == iso_utc(t.wall)
