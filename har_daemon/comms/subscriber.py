"""The reference consumer of the daemon's events (`har-daemon events`): the delivery contract
from the subscriber's side.

- A persistent MQTT 5 session (clean_start false, a session expiry): while the consumer is away
  (restart, network, broker restart with persistence) the broker queues its QoS 1 events.
- QoS 1 subscription to `<prefix>/+/events`, optionally as a member of a shared subscription
  (`$share/<group>/...`): the broker hands each event to one member of the group.
- Duplicates dropped by (camera, seq, content digest) with a state file (`comms.dedup`): a
  forged seq hides no real event.
- In `seq` order per camera: an event ahead of the next expected `seq` waits up to `hold_s`
  for the ones before it (`comms.reorder`: brokers reorder across reconnects).
- Manual acknowledgements: an event is acknowledged only once it was printed and the state file
  saved (a held event later than the ones after it: MQTT asks for PUBACKs in arrival order,
  but never acknowledging unprinted is the side that loses nothing; Mosquitto accepts it).
  When printing or saving fails the event is not acknowledged (the broker sends it again
  next session) and the consumer stops (`failed`), so nothing is ever acknowledged unprinted.

The camera key is the event topic without its `/events` leaf (`<prefix>/<camera>`), which is
unique on a broker even when several sites' prefixes are bridged into it.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import MQTTMessage

from har_daemon.comms.connection import AUTH_REFUSALS, BrokerSettings, describe_error, new_client
from har_daemon.comms.dedup import SeqDedup, StateFile, Verdict, canonical
from har_daemon.comms.reorder import HOLD_S, Reorder
from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)

Emit = Callable[[str, dict[str, Any], bytes], None]
"""`emit(camera_key, event, raw_payload)`: print one event (raises OSError when it cannot)."""

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 5.0
"""A consumer is one client: retrying every few seconds costs the broker nothing."""
RELEASE_TICK_S = 0.1
"""How often held events whose wait ran out are looked for."""


@dataclass(frozen=True)
class _Pending:
    """An event checked against the dedup, not yet printed or acknowledged."""

    mid: int
    qos: int
    seq: int
    doc: dict[str, Any]
    payload: bytes
    content: bytes
    reused: bool


def parse_event(topic: str, payload: bytes) -> tuple[str, dict[str, Any], int] | None:
    """(camera key, event, seq) of an event message, None when it is not one."""
    if not topic.endswith("/events"):
        return None
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    seq = doc.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        return None
    return topic[: -len("/events")], doc, seq


class EventConsumer:
    """Subscribes, drops duplicates, prints through `emit`, acknowledges; see the module doc.

    `start()` returns at once; `first_outcome()` says whether the first connection failed in a
    way retrying cannot fix (a bad host, TLS verification, credentials). `stop()` disconnects
    and saves the state (unless `failed`).
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        client_id: str,
        topic_filter: str,
        state: StateFile,
        dedup: SeqDedup,
        emit: Emit,
        session_expiry_s: int,
        hold_s: float = HOLD_S,
    ) -> None:
        if not settings.mqtt5:
            raise ValueError("a persistent session with expiry needs MQTT 5")
        self.settings = settings
        self.client_id = client_id
        self.topic_filter = topic_filter
        self.state = state
        self.dedup = dedup
        self.emit = emit
        self.session_expiry_s = int(session_expiry_s)
        self.printed = 0
        self.duplicates = 0
        self.malformed = 0
        self.reordered = 0
        self._reorder: Reorder[_Pending] = Reorder(hold_s)
        self._lock = threading.Lock()  # the network thread and the release thread print
        self.failed: str | None = None
        self._first = threading.Event()
        self._fatal: str | None = None
        self._connected_once = False
        self._stopped = threading.Event()
        self._stopping = False
        self._throttle = LogThrottle()
        client = new_client(settings, client_id)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)  # type: ignore[arg-type]
        client.manual_ack_set(True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        log.info(
            "events.starting",
            host=self.settings.host,
            port=self.settings.port,
            client_id=self.client_id,
            topic_filter=self.topic_filter,
            username=self.settings.username,
            tls=self.settings.uses_tls,
            session_expiry_s=self.session_expiry_s,
        )
        self._client.connect_async(
            self.settings.host,
            self.settings.port,
            self.settings.keepalive,
            **self.settings.connect_kwargs(
                clean_start=False, SessionExpiryInterval=self.session_expiry_s
            ),
        )
        self._client.loop_start()
        threading.Thread(target=self._release_loop, name="events-release", daemon=True).start()

    def first_outcome(self, timeout: float) -> str | None:
        """Wait up to `timeout` s for the first attempt; the reason when it cannot succeed."""
        self._first.wait(timeout)
        return self._fatal

    @property
    def stopped(self) -> threading.Event:
        """Set when the consumer gave up (`failed`) or a fatal first connection."""
        return self._stopped

    def stop(self) -> None:
        self._stopping = True
        with self._lock:  # what still waits for a gap is printed (and acknowledged) now
            if self.failed is None:
                self._guarded(lambda: self._print_all(self._reorder.flush()), "held events")
        self._client.disconnect()
        self._client.loop_stop()
        if self.failed is None and self._fatal is None:
            try:
                self.state.save(self.dedup)
            except OSError as exc:
                log.error("events.state_not_saved", path=str(self.state.path), error=str(exc))
        log.info(
            "events.stopped",
            printed=self.printed,
            duplicates=self.duplicates,
            malformed=self.malformed,
            reordered=self.reordered,
            failed=self.failed,
        )

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _give_up(self, reason: str) -> None:
        self._fatal = reason
        self._first.set()
        self._stopped.set()

    def _on_connect(self, client, _userdata, flags, reason_code, _props) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.warning("events.connect_refused", reason=str(reason_code))
            if not self._connected_once and int(reason_code.value) in AUTH_REFUSALS:
                self._give_up(f"the broker refused the connection: {reason_code}")
            self._first.set()
            return
        self._connected_once = True
        self._first.set()
        log.info("events.connected", session_present=bool(flags.session_present))
        client.subscribe(self.topic_filter, qos=1)

    def _on_connect_fail(self, client, _userdata) -> None:  # type: ignore[no-untyped-def]
        err = getattr(client, "last_connect_error", None)
        log.warning(
            "events.connect_failed",
            host=self.settings.host,
            port=self.settings.port,
            error=describe_error(err),
        )
        if not self._connected_once and isinstance(err, socket.gaierror | ssl.SSLError):
            self._give_up(f"cannot connect to {self.settings.host}:{self.settings.port}: {err}")
        self._first.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _props) -> None:  # type: ignore[no-untyped-def]
        if not self._stopping:
            log.warning("events.disconnected", reason=str(reason_code))

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _props) -> None:  # type: ignore[no-untyped-def]
        code = reason_codes[0]
        if code.is_failure:
            log.error("events.subscribe_refused", topic_filter=self.topic_filter, reason=str(code))
        else:
            log.info("events.subscribed", topic_filter=self.topic_filter, qos=int(code.value))

    def _on_message(self, client, _userdata, message: MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        with self._lock:
            if self.failed is not None:
                return  # not acknowledged: the broker keeps it for the next session
            self._guarded(lambda: self._handle(message), message.topic)

    def _release_loop(self) -> None:
        while not self._stopped.wait(RELEASE_TICK_S) and not self._stopping:
            with self._lock:
                if self.failed is None:
                    self._guarded(self._release_due, "held events")

    def _release_due(self) -> None:
        self._print_all(self._reorder.due(time.monotonic()))

    def _guarded(self, work: Callable[[], None], what: str) -> None:
        """Run `work`; a failure to print or record stops the consumer, unacknowledged."""
        try:
            work()
        except Exception as exc:  # an unprinted or unrecorded event must stay unacknowledged
            self.failed = describe_error(exc)
            log.error("events.failed", error=self.failed, topic=what)
            self._stopped.set()

    def _handle(self, message: MQTTMessage) -> None:
        payload = bytes(message.payload)
        parsed = parse_event(message.topic, payload)
        if parsed is None:
            self.malformed += 1
            held = self._throttle.allow("malformed")
            if held is not None:
                log.warning(
                    "events.malformed", topic=message.topic, held_back=held, bytes=len(payload)
                )
            self._client.ack(message.mid, message.qos)
            return
        camera, doc, seq = parsed
        content = canonical(doc)
        waiting = self._reorder.get(camera, seq)
        verdict = self.dedup.check(camera, seq, content)
        if verdict is Verdict.DUPLICATE or (waiting is not None and waiting.content == content):
            self.duplicates += 1
            log.debug("events.duplicate", camera=camera, seq=seq)
            self._client.ack(message.mid, message.qos)
            return
        item = _Pending(
            message.mid, message.qos, seq, doc, payload, content, verdict is Verdict.REUSED
        )
        self._reorder.know(camera, self.dedup.last_seq(camera))
        if waiting is not None:  # other content under a held seq: printed as it comes
            ready = [item]
        else:
            ready = self._reorder.offer(camera, seq, item, time.monotonic())
        if not ready:
            self.reordered += 1
            log.debug("events.held", camera=camera, seq=seq)
        self._print_all((camera, x) for x in ready)

    def _print_all(self, items: Iterable[tuple[str, _Pending]]) -> None:
        for camera, item in items:
            if item.reused and (held := self._throttle.allow("reused")) is not None:
                log.warning("events.seq_reused", camera=camera, seq=item.seq, held_back=held)
            self.emit(camera, item.doc, item.payload)
            self.dedup.record(camera, item.seq, item.content)
            self.state.save(self.dedup)
            self.printed += 1
            self._client.ack(item.mid, item.qos)
