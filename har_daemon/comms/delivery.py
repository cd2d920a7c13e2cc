"""What became of each published message: acknowledged, refused by the broker, or dropped.

Delivery tracking (for a durable spool built on top): every publish returns a `Delivery` with
paho's message id (`mid`) and the caller's `context` (e.g. a spool row id); when the broker
acknowledges it (QoS 1: PUBACK; QoS 2: PUBCOMP; QoS 0: once written to the socket) the Delivery
completes (`wait()` returns) and `on_delivered(delivery)` is called from the publisher's own
"mqtt-delivered" thread (not paho's, whose locks are held while it reports an acknowledgement).
The mid -> Delivery mapping is race-free even when the PUBACK arrives before `publish` returns.
A PUBACK with a failure reason code (MQTT 5, >= 0x80) completes the Delivery with
`accepted == False`: the broker will not deliver that message, and retrying it will not help.

What paho does with a publish while there is no connection (no socket):
- QoS 0: dropped; rc MQTT_ERR_NO_CONN; no acknowledgement ever. The Delivery comes back already
  completed with `dropped == True`.
- QoS 1/2: rc MQTT_ERR_NO_CONN, but paho keeps the message in its in-memory queue and sends it
  after the next successful CONNACK (same mid); `on_delivered` fires on its PUBACK. It is lost if
  the process exits first, hence the spool. Messages in flight when a connection drops are sent
  again (DUP) after reconnecting, so delivery is at-least-once: subscribers may see duplicates.
- With `max_queued_messages` > 0 and that many QoS > 0 messages unacknowledged, a new publish is
  refused at once (rc MQTT_ERR_QUEUE_SIZE, `dropped == True`).
While a connection attempt is under way (socket open, CONNACK pending) paho writes the message
to the socket; if the broker then refuses the connection, QoS 1/2 messages stay queued as above.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from har_daemon.core.logs import get_logger

log = get_logger(__name__)

_EARLY_ACKS_MAX = 1000  # never expected; keeps a misbehaving broker from growing the table


@dataclass(eq=False)
class Delivery:
    """One published message and what became of it.

    `rc` is paho's answer at submission: MQTT_ERR_SUCCESS (0) when written to the socket or
    queued behind the in-flight window, MQTT_ERR_NO_CONN (4) when there was no connection
    (QoS 0: dropped; QoS > 0: held in memory until reconnected), MQTT_ERR_QUEUE_SIZE (15) when
    refused because paho's queue is full.
    """

    mid: int
    topic: str
    qos: int
    retain: bool
    context: Any = None
    rc: int = 0
    reason_code: int | None = None
    reason: str | None = None
    submitted_at: float = field(default_factory=time.time)
    completed_at: float | None = None
    _event: threading.Event = field(default_factory=threading.Event, repr=False)
    _dropped: bool = field(default=False, repr=False)
    _notify: bool = field(default=True, repr=False)

    @property
    def done(self) -> bool:
        """True once acknowledged (or dropped)."""
        return self._event.is_set()

    @property
    def acknowledged(self) -> bool:
        """The broker acknowledged it (QoS 1 PUBACK / QoS 2 PUBCOMP; QoS 0: written)."""
        return self._event.is_set() and not self._dropped

    @property
    def accepted(self) -> bool:
        """Acknowledged with a success reason code (< 0x80): the broker took the message."""
        return self.acknowledged and (self.reason_code or 0) < 0x80

    @property
    def dropped(self) -> bool:
        """Never sent and never will be (QoS 0 without a connection, or paho's queue full)."""
        return self._dropped

    def wait(self, timeout: float | None = None) -> bool:
        """Block until acknowledged or dropped; True when acknowledged within `timeout`."""
        self._event.wait(timeout)
        return self.acknowledged

    def _complete(self, reason_code: int, reason: str) -> None:
        self.reason_code = reason_code
        self.reason = reason
        self.completed_at = time.time()
        self._event.set()

    def _drop(self, reason: str) -> None:
        self._dropped = True
        self.reason = reason
        self.completed_at = time.time()
        self._event.set()


class DeliveryTracker:
    """Matches acknowledgements to Deliveries by mid and hands them to the `on_delivered` hook.

    paho reports an acknowledgement on its network thread with its locks held, sometimes
    before `publish` has even returned the mid, so acknowledgements that come first are kept
    until their Delivery is registered, and the hook runs on a thread of its own
    ("mqtt-delivered") where it may take locks and publish.
    """

    def __init__(self, hook: Callable[[Delivery], Callable[[Delivery], None] | None]) -> None:
        self._hook = hook  # looked up per delivery: the owner may rewire its hook at any time
        self._lock = threading.Lock()
        self._pending: dict[int, Delivery] = {}
        self._early: dict[int, tuple[int, str]] = {}
        self._queue: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._progress = time.monotonic()  # last acknowledgement, connect, or first pending

    @property
    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def stalled_s(self) -> float:
        """Seconds without an acknowledgement handled while something was pending (0 when
        nothing is): grows when paho's network thread stops turning or the broker stops
        answering."""
        with self._lock:
            return time.monotonic() - self._progress if self._pending else 0.0

    def connection_up(self) -> None:
        """What was pending while disconnected is only now sent: count from here."""
        with self._lock:
            self._progress = time.monotonic()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-delivered", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Hand over the acknowledgements received so far, then end the thread."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submitted(self, delivery: Delivery, dropped: str | None) -> Delivery:
        """Register a fresh publish; `dropped` names why paho refused it outright."""
        with self._lock:
            early = self._early.pop(delivery.mid, None)
            if early is None:
                if dropped is not None:
                    delivery._drop(dropped)
                    return delivery
                if not self._pending:
                    self._progress = time.monotonic()
                self._pending[delivery.mid] = delivery
        if early is not None:
            self._finish(delivery, *early)
        return delivery

    def acknowledged(self, mid: int, reason_code: int, reason: str) -> None:
        with self._lock:
            self._progress = time.monotonic()
            delivery = self._pending.pop(mid, None)
            if delivery is None:
                # The acknowledgement came before `submitted` registered the mid.
                self._early[mid] = (reason_code, reason)
                if len(self._early) > _EARLY_ACKS_MAX:
                    self._early.pop(next(iter(self._early)))
                return
        self._finish(delivery, reason_code, reason)

    def connection_lost(self) -> None:
        """QoS 0 messages not yet written when the socket closed are gone (paho clears its
        packet queue on reconnect); QoS 1/2 ones stay pending and are sent again."""
        with self._lock:
            lost = [d for d in self._pending.values() if d.qos == 0]
            for d in lost:
                del self._pending[d.mid]
        for d in lost:
            d._drop("connection lost before it was written")

    def _finish(self, delivery: Delivery, reason_code: int, reason: str) -> None:
        delivery._complete(reason_code, reason)
        if reason_code >= 0x80:
            log.warning(
                "mqtt.publish_refused",
                topic=delivery.topic,
                mid=delivery.mid,
                reason=reason,
                reason_code=reason_code,
            )
        if delivery._notify:
            self._queue.put(delivery)

    def _run(self) -> None:
        while (delivery := self._queue.get()) is not None:
            hook = self._hook(delivery)
            if hook is None:
                continue
            try:
                hook(delivery)
            except Exception:
                log.exception("mqtt.on_delivered_failed", mid=delivery.mid)
