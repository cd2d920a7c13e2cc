"""The event router: one thread that turns window outcomes into messages, off the hot path.

The inference thread hands every outcome (`WindowResult`, `GapResult`) to `submit` and goes
back to inferring. Everything slow happens here instead: snapshot encoding, clip bookkeeping,
numbering and storing events in the spool, publishing and printing. Whatever queued up while
one batch was handled is handled as the next batch, its events numbered and stored in one
transaction: a slow disk delays events (one fsync per batch, not per event), never windows.
An event is printed only once it is stored, so a printed event is never lost.

The queue is bounded. Outcomes that carry transitions are never dropped: when the queue is full
`submit` waits for room (events are rare; a full queue means this thread is stuck, which the
daemon's supervisor notices). Outcomes without transitions (scores, state refreshes) are
dropped and counted instead, since the next window brings fresher ones. An exception while
handling one outcome is logged (throttled) and counted; the thread goes on with the next.

Times: outcomes carry frame times (the `Clock` timeline, which never steps); payloads show wall
time, converted here when they are built. An occurrence keeps the `started_at` its start
announced even if the wall clock steps before it ends. Each window's end-to-end latency, from
the capture of its newest frame to its messages handed to MQTT, goes to `record_latency`.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, TextIO

from har_daemon.comms.messenger import Messenger
from har_daemon.comms.outbox import Outbox
from har_daemon.comms.payloads import (
    activity_payload,
    encode_json,
    event_payload,
    scores_payload,
)
from har_daemon.comms.spool import Message
from har_daemon.comms.topics import Topics
from har_daemon.core.clock import Clock
from har_daemon.core.logs import LogThrottle, get_logger
from har_daemon.dispatch.snapshot import EventSnapshots
from har_daemon.outputs.clips import ClipRecorder
from har_daemon.runtime.events import ActivityState, Transition
from har_daemon.runtime.inference import GapResult, WindowResult
from har_daemon.runtime.recognisers import ActivityResult

log = get_logger(__name__)

RECENT_EVENTS = 20
"""Events (with their snapshots) kept in memory for the debug view's index page."""

Outcome = WindowResult | GapResult | ActivityResult
"""A classifier's window or gap, or another recogniser's look (a fall's, keyed by activity)."""


@dataclass
class _CameraEvents:
    events: int = 0
    state: ActivityState | None = None
    state_published_at: float | None = None  # monotonic
    state_activity: str | None = None


@dataclass(frozen=True)
class RouterSettings:
    model_name: str
    classes: Sequence[str]
    event_qos: int
    publish_scores: bool
    state_interval_s: float
    queue_size: int = 1024
    batch_max: int = 64


class EventRouter(threading.Thread):
    def __init__(
        self,
        cameras: Iterable[str],
        settings: RouterSettings,
        *,
        topics: Topics,
        messenger: Messenger,
        outbox: Outbox | None = None,
        snapshots: EventSnapshots | None = None,
        clips: ClipRecorder | None = None,
        out: TextIO | None = None,
        clock: Clock | None = None,
        first_seqs: Mapping[str, int] | None = None,
        record_latency: Callable[[str, float], None] | None = None,
    ) -> None:
        """`first_seqs`: each camera's last message number so far (the spool's), so numbers
        given while the spool fails never repeat one; `record_latency(camera, ms)`."""
        super().__init__(name="event-router", daemon=True)
        self.settings = settings
        self.topics = topics
        self.messenger = messenger
        self.outbox = outbox
        self.snapshots = snapshots
        self.clips = clips
        self.out = out
        self._clock = clock = clock or Clock()
        self._record_latency = record_latency
        self._cameras = {name: _CameraEvents() for name in cameras}
        self._others: dict[tuple[str, str], _CameraEvents] = {}  # (camera, activity): falls
        self._queue: queue.Queue[Outcome | None] = queue.Queue(settings.queue_size)
        self._state_lock = threading.Lock()
        self._throttle = LogThrottle(30.0, clock.monotonic)
        self._last_seq: dict[str, int] = dict(first_seqs or {})
        self._started_wall: dict[str, float] = {}  # open occurrence id -> its announced start
        self._regions: dict[str, list[float]] = {}
        self._zones: dict[str, list[str]] = {}
        self._jpegs: dict[str, bytes] = {}  # a start's snapshot until its event is sent
        # The newest events (payload, the start's snapshot) for the debug view's index page.
        self.recent: deque[tuple[dict[str, Any], bytes | None]] = deque(maxlen=RECENT_EVENTS)
        self.dropped = 0
        self.errors = 0

    # -- the inference side ----------------------------------------------------------------

    def submit(self, outcome: Outcome) -> None:
        """Queue an outcome; waits only when it carries transitions and the queue is full."""
        if not outcome.transitions:
            try:
                self._queue.put_nowait(outcome)
            except queue.Full:
                self.dropped += 1
            return
        while True:
            try:
                self._queue.put(outcome, timeout=1.0)
                return
            except queue.Full:
                if not self.is_alive():
                    self.dropped += 1
                    log.error("router.dead", camera=outcome.camera, lost=len(outcome.transitions))
                    return

    # -- lifecycle ---------------------------------------------------------------------------

    def drain(self, timeout: float) -> bool:
        """Wait until everything submitted so far is handled; False on timeout."""
        q = self._queue
        with q.all_tasks_done:
            return q.all_tasks_done.wait_for(lambda: q.unfinished_tasks == 0, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Handle what is queued, then end the thread."""
        if self.is_alive():
            self._queue.put(None)
            self.join(timeout)

    def run(self) -> None:
        running = True
        while running:
            batch = [self._queue.get()]
            while len(batch) < self.settings.batch_max:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                running = False
            outcomes = [o for o in batch if o is not None]
            try:
                self.handle(outcomes)
            except Exception:
                self.errors += 1
                held = self._throttle.allow("router.failed")
                if held is not None:
                    log.exception("router.failed", outcomes=len(outcomes), suppressed=held)
            finally:
                for _ in batch:
                    self._queue.task_done()

    # -- state -------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def events(self, camera: str) -> int:
        """Event messages sent for `camera` so far."""
        return self._cameras[camera].events

    def states(self) -> dict[str, ActivityState | None]:
        """The last activity state seen per camera (re-published after a reconnect)."""
        with self._state_lock:
            return {name: cam.state for name, cam in self._cameras.items()}

    def republish_recognisers(self, at: float, offset: float) -> None:
        """The other recognisers' last states (retained), after a reconnect."""
        with self._state_lock:
            states = {key: other.state for key, other in self._others.items()}
        for (camera, activity), state in states.items():
            if state is not None:
                self.messenger.publish(
                    self.topics.recogniser_activity(camera, activity),
                    self.state_payload(state, at, offset),
                    retain=True,
                )

    # -- handling (this thread) --------------------------------------------------------------

    def handle(self, outcomes: Sequence[Outcome]) -> None:
        """Everything queued at once: the events of all of them are stored in one spool
        transaction (one fsync), then each camera's retained state follows. An outcome that
        fails on its own (a snapshot, a clip, a bug) is logged and skipped; the others go on."""
        offset = self._clock.wall_offset()
        pending: list[tuple[str, Transition, dict[str, Any]]] = []
        handled: list[Outcome] = []
        for outcome in outcomes:
            try:
                pending += self._prepare(outcome, offset)
                handled.append(outcome)
            except Exception:
                self._failed(outcome)
        if pending:
            self._send_events(pending, offset)
        for outcome in handled:
            at = outcome.window_end if isinstance(outcome, WindowResult) else outcome.at
            activity = outcome.activity if isinstance(outcome, ActivityResult) else None
            try:
                self._state(
                    outcome.camera,
                    outcome.state,
                    at,
                    offset,
                    force=bool(outcome.transitions),
                    activity=activity,
                )
            except Exception:
                self._failed(outcome)
        if self._record_latency is not None:
            now = self._clock.monotonic()
            for outcome in handled:
                if isinstance(outcome, WindowResult) and outcome.captured_at is not None:
                    self._record_latency(outcome.camera, (now - outcome.captured_at) * 1000.0)

    def _prepare(
        self, outcome: Outcome, offset: float
    ) -> list[tuple[str, Transition, dict[str, Any]]]:
        if outcome.camera not in self._cameras:
            raise KeyError(f"unknown camera {outcome.camera!r}")
        self._note(outcome, offset)
        region = self._region(outcome)
        model = {"model": outcome.model} if isinstance(outcome, ActivityResult) else {}
        return [
            (outcome.camera, tr, {**self._extras(outcome.camera, tr, region, offset), **model})
            for tr in outcome.transitions
        ]

    def _failed(self, outcome: Outcome) -> None:
        self.errors += 1
        held = self._throttle.allow("router.outcome_failed")
        if held is not None:
            log.exception("router.outcome_failed", camera=outcome.camera, suppressed=held)

    def recent_events(self) -> list[tuple[dict[str, Any], bytes | None]]:
        """The newest events, oldest first, with each start's snapshot (any thread)."""
        return list(self.recent)  # one C-level copy: safe against the router's appends

    def state_payload(self, state: ActivityState, at: float, offset: float) -> dict[str, Any]:
        """The retained activity payload of `state` at frame time `at`, in wall time (`offset`:
        `Clock.wall_offset`); an ongoing occurrence shows the start it announced."""
        since = self._started_wall.get(state.occurrence_id or "")
        if since is None and state.since is not None:
            since = state.since + offset
        payload = activity_payload(replace(state, since=since), at + offset)
        if state.zones is not None:  # a fall recogniser's: where its people lie
            payload["zones"] = list(state.zones)
        elif state.camera in self._zones and state.activity in (None, *self.settings.classes):
            # Home Assistant's zone sensors read these (the classifier's zones)
            payload["zones"] = self._zones[state.camera] if state.activity else []
        return payload

    def _wall(self, tr: Transition, offset: float) -> Transition:
        """`tr` with wall-clock times, for its payload; see the module docstring."""
        started = self._started_wall.get(tr.occurrence_id, tr.started_at + offset)
        if tr.kind == "end":
            self._started_wall.pop(tr.occurrence_id, None)
        else:
            self._started_wall[tr.occurrence_id] = started
        ended = None if tr.ended_at is None else tr.ended_at + offset
        return replace(tr, started_at=started, at=tr.at + offset, ended_at=ended)

    def _note(self, outcome: Outcome, offset: float) -> None:
        """Snapshot bookkeeping and scores: what a window says besides its transitions."""
        camera = outcome.camera
        if isinstance(outcome, ActivityResult):
            return
        if isinstance(outcome, GapResult):
            if self.snapshots is not None:
                self.snapshots.forget(camera)
            return
        if self.snapshots is not None:
            self.snapshots.note_window(camera, outcome.window_end, outcome.probs)
        if self.settings.publish_scores:
            classes = list(self.settings.classes)
            self.messenger.publish(
                self.topics.scores(camera),
                scores_payload(
                    classes, outcome.probs, outcome.smoothed, outcome.window_end + offset
                ),
                qos=0,
            )

    def _region(self, outcome: Outcome) -> list[float] | None:
        """Where the people of a person-centric model's event are (the last region seen, for
        an ending without a window)."""
        key = outcome.camera
        if isinstance(outcome, ActivityResult):
            key = f"{outcome.camera}/{outcome.activity}"
            if outcome.region is not None:
                self._regions[key] = outcome.region
        elif isinstance(outcome, WindowResult) and outcome.region is not None:
            self._regions[key] = outcome.region
            if outcome.zones is not None:
                self._zones[outcome.camera] = outcome.zones
        return self._regions.get(key)

    def _extras(
        self, camera: str, tr: Transition, region: list[float] | None, offset: float
    ) -> dict[str, Any]:
        """The snapshot of a start and the clip of an end, done before the event is sent."""
        extras: dict[str, Any] = {} if region is None else {"region": region}
        if tr.zones is not None:  # a fall's: where the person lay when it started
            extras["zones"] = list(tr.zones)
        elif camera in self._zones and tr.activity in self.settings.classes:
            # cameras with zones: where the classifier's event's people stood
            extras["zones"] = self._zones[camera]
        if tr.kind == "start":
            if self.clips is not None:
                self.clips.start(tr.occurrence_id, camera, tr.activity, tr.started_at)
            extras["has_snapshot"] = self._snapshot(camera, tr, region, offset)
        elif tr.kind == "end" and self.clips is not None:
            clip = self.clips.end(tr.occurrence_id, tr.ended_at or tr.at)
            extras["clip"] = str(clip) if clip is not None else None
        return extras

    def _send_events(
        self, pending: list[tuple[str, Transition, dict[str, Any]]], offset: float
    ) -> None:
        """Number, store and publish events; print and log each once it is stored."""
        next_seq = dict(self._last_seq)
        messages = []
        for camera, tr, extras in pending:
            next_seq[camera] = next_seq.get(camera, 0) + 1
            messages.append(
                Message(
                    topic=self.topics.events(camera),
                    build=partial(self._payload, camera, self._wall(tr, offset), extras),
                    qos=self.settings.event_qos,
                    kind="update" if tr.kind == "update" else "event",
                    camera=camera,
                    at_least=next_seq[camera],
                )
            )
        if self.outbox is not None:
            sent = self.outbox.send_numbered(messages)
        else:
            sent = [(m.at_least, m.build(m.at_least)) for m in messages]
        for (camera, tr, _), (seq, data) in zip(pending, sent, strict=True):
            self._last_seq[camera] = max(self._last_seq.get(camera, 0), seq)
            self._cameras[camera].events += 1
            log.info(
                "event",
                camera=camera,
                type=tr.kind,
                activity=tr.activity,
                id=tr.occurrence_id,
                confidence=round(float(tr.confidence), 4),
                seq=seq,
            )
            if self.out is not None:
                self.out.write(data.decode() + "\n")
            self.recent.append((json.loads(data), self._jpegs.pop(tr.occurrence_id, None)))
        if self.out is not None:
            self.out.flush()

    def _payload(self, camera: str, tr: Transition, extras: dict[str, Any], seq: int) -> bytes:
        payload = event_payload(tr, camera, self.settings.model_name, seq)
        payload.update(extras)
        return encode_json(payload)

    def _snapshot(
        self, camera: str, tr: Transition, region: list[float] | None, offset: float
    ) -> bool:
        """Publish the start's picture (retained); True when a subscriber can get one."""
        if self.snapshots is None:
            return False
        try:
            jpeg = self.snapshots.jpeg(camera, tr, region, wall_offset=offset)
        except (ValueError, OSError) as exc:
            log.warning("snapshot.failed", camera=camera, error=str(exc))
            return False
        if jpeg is None:
            return False
        self._jpegs[tr.occurrence_id] = jpeg
        self.messenger.publish(self.topics.snapshot(camera), jpeg, retain=True)
        return self.messenger.enabled

    def _state(
        self,
        camera: str,
        state: ActivityState,
        at: float,
        offset: float,
        *,
        force: bool,
        activity: str | None = None,
    ) -> None:
        """The retained activity topic (of the classifier, or of the recogniser of `activity`):
        on every change, else every `state_interval_s`."""
        if activity is None:
            cam, topic = self._cameras[camera], self.topics.activity(camera)
        else:
            with self._state_lock:
                cam = self._others.setdefault((camera, activity), _CameraEvents())
            topic = self.topics.recogniser_activity(camera, activity)
        now = self._clock.monotonic()
        with self._state_lock:
            cam.state = state
        due = (
            force
            or cam.state_published_at is None
            or state.activity != cam.state_activity
            or now - cam.state_published_at >= self.settings.state_interval_s
        )
        if due:
            cam.state_published_at = now
            cam.state_activity = state.activity
            self.messenger.publish(topic, self.state_payload(state, at, offset), retain=True)
