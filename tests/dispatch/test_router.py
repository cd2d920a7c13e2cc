"""dispatch.router: outcomes in, events out, in order, numbered, off the inference thread; wall
clock payload times over a timeline that never steps; numbers that continue the spool's; the
end-to-end latency of each window."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import numpy as np

from har_daemon.comms.messenger import Messenger
from har_daemon.comms.payloads import iso_utc
from har_daemon.comms.spool import Message
from har_daemon.comms.topics import Topics
from har_daemon.core.clock import Clock
from har_daemon.dispatch.router import EventRouter, RouterSettings
from har_daemon.runtime.events import ActivityState, Transition
from har_daemon.runtime.inference import GapResult, WindowResult
from har_daemon.runtime.recognisers import ActivityResult

CLASSES = ["fight", "noFight"]


def _router(out: io.StringIO, queue_size: int = 8) -> EventRouter:
    return EventRouter(
        ["a", "b"],
        RouterSettings(
            model_name="m", classes=CLASSES, event_qos=1, publish_scores=False,
            state_interval_s=10.0, queue_size=queue_size,
        ),
        topics=Topics("har"),
        messenger=Messenger(None),
        out=out,
    )  # fmt: skip


def _tr(kind: str, at: float, occ: str = "o1") -> Transition:
    return Transition(kind, "fight", occ, 0.8, 0.9, 1.0, at, at if kind == "end" else None,
                      at - 1.0)  # fmt: skip


def _state(active: bool) -> ActivityState:
    return ActivityState("fight" if active else None, 0.8 if active else 0.0, 1.0, active, None)


def _window(camera: str, at: float, transitions: list[Transition], region=None) -> WindowResult:  # type: ignore[no-untyped-def]
    probs = np.array([0.8, 0.2])
    return WindowResult(camera, at, probs, probs, transitions, _state(bool(transitions)), region)


def test_events_are_numbered_per_camera_and_printed_in_order() -> None:
    out = io.StringIO()
    router = _router(out)
    router.handle(
        [
            _window("a", 1.0, [_tr("start", 1.0)], region=[0.1, 0.2, 0.5, 0.9]),
            _window("b", 1.0, [_tr("start", 1.0, "o2")]),
            _window("a", 2.0, []),
            GapResult("a", 3.0, [_tr("end", 3.0)], _state(False)),
        ]
    )
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(e["camera"], e["type"], e["seq"]) for e in printed] == [
        ("a", "start", 1), ("b", "start", 1), ("a", "end", 2),
    ]  # fmt: skip
    assert printed[0]["region"] == [0.1, 0.2, 0.5, 0.9]
    assert printed[2]["region"] == [0.1, 0.2, 0.5, 0.9], "an ending names the last region"
    assert "region" not in printed[1]
    assert printed[0]["has_snapshot"] is False
    assert router.events("a") == 2 and router.events("b") == 1
    assert router.states()["a"] == _state(False)


def test_events_and_state_carry_the_zones_of_the_people() -> None:
    out = io.StringIO()
    router = _router(out)
    probs = np.array([0.8, 0.2])
    start = WindowResult(
        "a", 1.0, probs, probs, [_tr("start", 1.0)], _state(True), [0.1, 0.2, 0.5, 0.9],
        zones=["porch"],
    )  # fmt: skip
    router.handle([start, _window("b", 1.0, [_tr("start", 1.0, "o2")])])
    router.handle([GapResult("a", 3.0, [_tr("end", 3.0)], _state(False))])
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert printed[0]["zones"] == ["porch"] and printed[2]["zones"] == ["porch"]
    assert "zones" not in printed[1], "a camera without zones says nothing of them"
    state = router.state_payload(ActivityState("fight", 0.8, 1.0, True, None, "a"), 1.0, 0.0)
    assert state["zones"] == ["porch"]
    idle = router.state_payload(ActivityState(None, 0.0, 1.0, False, None, "a"), 1.0, 0.0)
    assert idle["zones"] == []


def test_a_fall_carries_its_own_zones_and_its_state_those_of_the_people_down() -> None:
    out = io.StringIO()
    router = _router(out)
    probs = np.array([0.8, 0.2])
    fight = WindowResult("a", 1.0, probs, probs, [], _state(False), [0.1, 0.2, 0.5, 0.9],
                         zones=["porch"])  # fmt: skip
    fall = Transition("start", "fall", "f1", 1.0, 1.0, 1.0, 1.0, None, 0.0, "a", down_s=0.8,
                      zones=("bed",))  # fmt: skip
    state = ActivityState("fall", 1.0, 1.0, True, "f1", "a", zones=("bed",))
    router.handle([fight, ActivityResult("a", "fall", 1.0, [fall], state, [0.3, 0.4, 0.9, 1.0])])
    (printed,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert printed["activity"] == "fall" and printed["zones"] == ["bed"], printed
    assert router.state_payload(state, 1.0, 0.0)["zones"] == ["bed"]
    idle = ActivityState(None, 0.0, 1.0, False, None, "a", zones=())
    assert router.state_payload(idle, 1.0, 0.0)["zones"] == []


def test_a_full_queue_drops_scores_but_never_events() -> None:
    out = io.StringIO()
    router = _router(out, queue_size=2)  # not started: nothing drains the queue
    for i in range(5):
        router.submit(_window("a", float(i), []))
    assert router.dropped == 3 and router.queued == 2
    done = threading.Event()

    def submit_event() -> None:
        router.submit(_window("a", 9.0, [_tr("start", 9.0)]))
        done.set()

    threading.Thread(target=submit_event, daemon=True).start()
    assert not done.wait(0.3), "an event waits for room instead of being dropped"
    router.start()
    assert done.wait(5)
    assert router.drain(5)
    router.stop()
    assert [json.loads(x)["type"] for x in out.getvalue().splitlines()] == ["start"]


def test_a_failing_outcome_does_not_stop_the_router() -> None:
    out = io.StringIO()
    router = _router(out)
    router.start()
    router.submit(_window("nope", 1.0, [_tr("start", 1.0)]))  # unknown camera: fails
    router.submit(_window("a", 2.0, [_tr("start", 2.0)]))
    assert router.drain(5)
    router.stop()
    assert router.errors == 1
    assert [json.loads(x)["camera"] for x in out.getvalue().splitlines()] == ["a"]


T0 = 1_700_000_000.0


class FakeTime:
    def __init__(self) -> None:
        self.mono, self.wall = 50.0, T0


def _timed(t: float, kind: str, started: float, captured_at: float) -> WindowResult:
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
    router.handle([_timed(start, "start", start, captured_at=t.mono - 0.05)])
    t.mono += 10.0
    t.wall += 10.0 - 3600.0  # ten seconds later, and the wall clock went back an hour
    router.handle([_timed(start + 10.0, "end", start, captured_at=t.mono - 0.2)])
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


class RecordingMessenger(Messenger):
    """Our messenger with a connected client's answers: records what is published."""

    def __init__(self) -> None:
        super().__init__(None)
        self.published: list[tuple[str, Any, bool]] = []

    @property
    def enabled(self) -> bool:
        return True

    def publish(self, topic: str, payload: Any, *, retain: bool = False, qos: int = 1) -> None:
        self.published.append((topic, payload, retain))

    def on(self, topic: str) -> list[Any]:
        return [payload for t, payload, _ in self.published if t == topic]


class RecordingOutbox:
    """Stands for comms.outbox.Outbox: keeps the messages the router spools, numbers them as
    the spool would (each camera's `at_least`)."""

    def __init__(self) -> None:
        self.spooled: list[Message] = []

    def send_numbered(self, messages: list[Message]) -> list[tuple[int, bytes]]:
        self.spooled += messages
        return [(m.at_least, m.build(m.at_least)) for m in messages]


class RecordingSnapshots:
    """Stands for dispatch.snapshot.EventSnapshots: the "picture" of a start names the window
    ends it would have chosen from."""

    def __init__(self) -> None:
        self.windows: dict[str, list[float]] = {}

    def note_window(self, camera: str, window_end: float, probs: np.ndarray) -> None:
        self.windows.setdefault(camera, []).append(window_end)

    def forget(self, camera: str) -> None:
        self.windows[camera] = []

    def jpeg(
        self, camera: str, tr: Transition, region: list[float] | None, wall_offset: float = 0.0
    ) -> bytes | None:
        seen = self.windows.get(camera)
        return json.dumps(seen).encode() if seen else None


def _recording_router(
    t: FakeTime, **kwargs: Any
) -> tuple[EventRouter, RecordingMessenger, io.StringIO]:
    messenger, out = RecordingMessenger(), io.StringIO()
    router = EventRouter(
        ["a", "b"],
        RouterSettings("m", CLASSES, 1, publish_scores=False, state_interval_s=10.0),
        topics=Topics("har"),
        messenger=messenger,
        out=out,
        clock=Clock(wall=lambda: t.wall, monotonic=lambda: t.mono),
        **kwargs,
    )
    return router, messenger, out


def test_retained_state_is_refreshed_every_interval_and_on_changes() -> None:
    t = FakeTime()
    router, messenger, _ = _recording_router(t)
    published_at = []
    for mono in (50.0, 55.0, 59.9, 60.0, 65.0, 69.9, 70.0):
        t.mono = mono
        before = len(messenger.on("har/a/activity"))
        router.handle([_window("a", mono, [])])
        if len(messenger.on("har/a/activity")) > before:
            published_at.append(mono)
    assert published_at == [50.0, 60.0, 70.0], "first, then every state_interval_s (10 s)"
    t.mono = 71.0
    router.handle([_window("a", 71.0, [_tr("start", 71.0)])])  # a change: at once
    t.mono = 72.0
    router.handle([_window("a", 72.0, [_tr("update", 72.0)])])  # same activity, yet an event
    t.mono = 73.0
    router.handle([GapResult("a", 73.0, [_tr("end", 73.0)], _state(False))])
    states = messenger.on("har/a/activity")
    assert len(states) == 6 and [s["activity"] for s in states[-3:]] == ["fight", "fight", None]
    assert all(retain for topic, _, retain in messenger.published if topic == "har/a/activity")


def test_updates_are_spooled_as_updates_and_starts_and_ends_as_events() -> None:
    outbox = RecordingOutbox()
    router, _, out = _recording_router(FakeTime(), outbox=outbox)  # type: ignore[arg-type]
    router.handle(
        [
            _window("a", 1.0, [_tr("start", 1.0)]),
            _window("a", 2.0, [_tr("update", 2.0)]),
            GapResult("a", 3.0, [_tr("end", 3.0)], _state(False)),
        ]
    )
    assert [(m.kind, m.camera, m.at_least, m.topic) for m in outbox.spooled] == [
        ("event", "a", 1, "har/a/events"),
        ("update", "a", 2, "har/a/events"),
        ("event", "a", 3, "har/a/events"),
    ]
    assert [json.loads(x)["type"] for x in out.getvalue().splitlines()] == [
        "start", "update", "end",
    ]  # fmt: skip


def test_a_gap_forgets_the_windows_a_snapshot_is_chosen_from() -> None:
    snapshots = RecordingSnapshots()
    router, messenger, out = _recording_router(FakeTime(), snapshots=snapshots)  # type: ignore[arg-type]
    router.handle([_window("a", 1.0, []), _window("b", 1.0, [])])
    router.handle([GapResult("a", 2.0, [], _state(False))])
    router.handle([_window("a", 3.0, [_tr("start", 3.0)]), _window("b", 3.0, [_tr("start", 3.0)])])
    assert [json.loads(p) for p in messenger.on("har/a/snapshot")] == [[3.0]], "not from before"
    assert [json.loads(p) for p in messenger.on("har/b/snapshot")] == [[1.0, 3.0]]
    assert [json.loads(x)["has_snapshot"] for x in out.getvalue().splitlines()] == [True, True]
    # Without a broker connection nobody can fetch the picture: the event says so.
    offline = EventRouter(
        ["a"],
        RouterSettings("m", CLASSES, 1, publish_scores=False, state_interval_s=10.0),
        topics=Topics("har"),
        messenger=Messenger(None),
        snapshots=snapshots,  # type: ignore[arg-type]
        out=(printed := io.StringIO()),
    )
    offline.handle([_window("a", 4.0, [_tr("start", 4.0)])])
    assert json.loads(printed.getvalue())["has_snapshot"] is False
