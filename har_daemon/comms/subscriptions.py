"""The subscription table of an MQTT client: filters, their callbacks, and the broker's grants.

Subscriptions (for control topics): `subscribe(filter, callback)` remembers the filter and sends
SUBSCRIBE at once when connected, and again after EVERY successful (re)connect: the session is
always clean (MQTT 5 clean_start / 3.1.1 clean_session), and a broker restarted without
persistence has forgotten every subscription anyway. Each incoming message goes to the callback
of every remembered filter that matches its topic (paho's `topic_matches_sub`), on paho's
network thread, as `callback(topic, payload, retained)`. `retained` is true only for a message
the broker replays from its retained store because of a (re)subscription, not for a live one
(MQTT 5 Retain As Published is off), so a retained message comes again after each reconnect.
An exception in a callback is logged (`mqtt.callback_failed`) and swallowed. Overlapping filters
are best avoided: Mosquitto then sends one copy per matching subscription, and each copy goes to
every matching callback.

Kept apart from the connection handling because it is plain bookkeeping (no sockets): which
filters to (re)send on each connect, which SUBSCRIBE a SUBACK answers (a SUBACK may even arrive
before the sender recorded its message id), which filters the broker granted on the current
connection, and which callbacks a message goes to. `lock` also guards the instant the client
marks itself connected, so a `subscribe` racing a (re)connect is sent exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from paho.mqtt.client import topic_matches_sub
from paho.mqtt.reasoncodes import ReasonCode

from har_daemon.comms.topics import MessageCallback
from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)

_EARLY_SUBACKS_MAX = 100  # never expected; keeps a runaway broker from growing the table


class SubscriptionTable:
    """Filters -> (callback, QoS), plus the per-connection SUBACK state. Thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._cond = threading.Condition(self.lock)
        self._entries: dict[str, tuple[MessageCallback, int]] = {}
        self._granted: set[str] = set()  # acknowledged by the broker on this connection
        self._sent: dict[int, list[str]] = {}  # SUBSCRIBE mid -> its filters
        self._early: dict[int, list[ReasonCode]] = {}  # SUBACKs seen before their mid was

    # -- the table (callers hold no lock) ----------------------------------------------------

    def add_locked(self, topic_filter: str, callback: MessageCallback, qos: int) -> None:
        """Remember (or replace) a filter. Hold `lock`, to read the connection state with it."""
        self._entries[topic_filter] = (callback, qos)

    def remove(self, topic_filter: str) -> bool:
        """Forget `topic_filter`; True when it was known."""
        with self.lock:
            self._granted.discard(topic_filter)
            return self._entries.pop(topic_filter, None) is not None

    def qos_by_filter(self) -> dict[str, int]:
        with self.lock:
            return {f: qos for f, (_, qos) in self._entries.items()}

    def targets(self, topic: str) -> list[tuple[str, MessageCallback]]:
        """The (filter, callback) pairs a message on `topic` goes to."""
        with self.lock:
            return [(f, cb) for f, (cb, _) in self._entries.items() if topic_matches_sub(f, topic)]

    def dispatch(self, topic: str, payload: bytes, retained: bool, throttle: LogThrottle) -> None:
        """Hand a message to every matching callback; a failing one is logged (`throttle`d:
        whoever can publish to our topics can trigger it) and swallowed."""
        targets = self.targets(topic)
        if not targets:
            log.debug("mqtt.message_unmatched", topic=topic)
        for topic_filter, callback in targets:
            try:
                callback(topic, payload, retained)
            except Exception:
                held = throttle.allow(f"mqtt.callback_failed:{topic_filter}")
                if held is not None:
                    log.exception(
                        "mqtt.callback_failed",
                        topic=topic,
                        topic_filter=topic_filter,
                        suppressed=held,
                    )

    # -- per connection ------------------------------------------------------------------------

    def new_connection_locked(self) -> list[tuple[str, int]]:
        """Forget the old connection's SUBACK state; the filters to subscribe now. Hold `lock`."""
        self._granted.clear()
        self._sent.clear()  # SUBACKs of an older connection never come
        self._early.clear()
        return [(f, qos) for f, (_, qos) in self._entries.items()]

    def connection_lost(self) -> None:
        with self._cond:
            self._granted.clear()
            self._cond.notify_all()

    def sent(self, mid: int, filters: list[str]) -> list[ReasonCode] | None:
        """Record a SUBSCRIBE; returns its SUBACK's codes if they already arrived."""
        with self.lock:
            early = self._early.pop(mid, None)
            if early is None:
                self._sent[mid] = filters
            return early

    def acknowledged(self, mid: int, codes: list[ReasonCode]) -> list[str] | None:
        """Match a SUBACK to its SUBSCRIBE; None (kept for `sent`) when it came first."""
        with self.lock:
            filters = self._sent.pop(mid, None)
            if filters is None:
                self._early[mid] = codes
                if len(self._early) > _EARLY_SUBACKS_MAX:
                    self._early.pop(next(iter(self._early)))
            return filters

    def grant(self, filters: list[str], codes: list[ReasonCode]) -> None:
        """Note which of `filters` the broker accepted (one code per filter, in order)."""
        with self._cond:
            for topic_filter, code in zip(filters, codes, strict=False):
                if not code.is_failure and topic_filter in self._entries:
                    self._granted.add(topic_filter)
            self._cond.notify_all()

    def wait_granted(
        self, topic_filter: str | None, connected: Callable[[], bool], timeout: float | None
    ) -> bool:
        """Block until `topic_filter` (None: every filter) is granted while `connected()`."""

        def done() -> bool:
            wanted = self._entries.keys() if topic_filter is None else {topic_filter}
            return connected() and all(f in self._granted for f in wanted)

        with self._cond:
            return self._cond.wait_for(done, timeout)
