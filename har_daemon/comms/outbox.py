"""At-least-once event delivery: every event goes to the durable spool first, then to MQTT.

`Outbox.send()` appends the message to the `Spool` (fsynced) and only then publishes it
(QoS >= 1, `context` = row id). The row is deleted when the broker's PUBACK (PUBCOMP for QoS 2)
accepts it. So an event survives a broker outage, a network outage and a daemon crash: after a
restart the rows still in the spool are sent again. Duplicates are possible (a PUBACK lost in an
outage, a crash between PUBACK and the delete); loss is not, within the spool's bounds.
Subscribers drop duplicates by the payload's `seq` (per camera) or `id`.

Order. Rows are handed to paho strictly in row-id order (= `send` order), each at most once per
process, tracked by a cursor: everything at or below it is acknowledged or in paho's hands.
paho keeps every unacknowledged QoS > 0 message in memory and re-sends it (DUP) after each
reconnect, in its original order, right after the `on_connected` hook returns. The rows still
in flight when a connection dropped are therefore left to paho (re-publishing them would only
add duplicates); what the spool replays is everything after the cursor: rows appended while
disconnected, and at start-up everything a previous process left behind. A reconnect raises a
barrier: no row newer than the cursor goes out until paho's re-sent ones are acknowledged, so a
replayed or new event can never overtake an older one that paho is still re-sending. New sends
that arrive while a replay is under way queue behind it (they are only appended to the spool;
the replay picks them up in order). Once the spool is caught up, `send` publishes directly.

Hand-over to paho only happens under this object's lock while it knows the connection is up,
and the disconnect hook takes the same lock; paho's network thread calls that hook before it
reconnects, so no publish can slip in between the loss of a connection and paho's reset of its
queue for the next one (a publish written before the next CONNACK would overtake the re-sends).

Only events go through here; retained status/state messages are published directly by the
daemon (it re-publishes them on every reconnect) and are not spooled. A refused message (MQTT 5
PUBACK reason >= 0x80, e.g. "Not authorized") is logged and stays in the spool: it is tried again
after a restart (or ages out), since re-sending it now would be refused again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from har_daemon.comms.delivery import Delivery
from har_daemon.comms.mqtt import MqttClient
from har_daemon.comms.payloads import encode_json
from har_daemon.comms.spool import Kind, Message, Spool
from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


class Outbox:
    """Spool-first, in-order, at-least-once publishing of events over an `MqttClient`.

    Create it before `publisher.start()`: it chains itself into the publisher's
    `on_connected`, `on_disconnected` and `on_delivered` hooks (hooks already set keep being
    called). `window` bounds how many spooled rows are handed to paho at once (the rest wait
    on disk, not in memory). `barrier_timeout_s`: a safety valve; if paho's re-sent messages
    are still unacknowledged that long after a reconnect, newer rows go out anyway (logged).
    """

    def __init__(
        self,
        publisher: MqttClient,
        spool: Spool,
        *,
        window: int = 100,
        retry_s: float = 1.0,
        barrier_timeout_s: float = 60.0,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.publisher = publisher
        self.spool = spool
        self.window = int(window)
        self.retry_s = float(retry_s)
        self.barrier_timeout_s = float(barrier_timeout_s)

        self._cond = threading.Condition(threading.Lock())
        self._inflight: dict[int, Delivery] = {}  # row id -> Delivery, in paho's hands
        self._barrier: set[int] = set()  # rows paho re-sends after the latest reconnect
        self._barrier_since = 0.0
        self._cursor = 0  # every row id <= cursor is acknowledged, dropped or in flight
        self._tail = spool.last_id  # highest row id appended (or found at start-up)
        self._connected = False
        self._closing = False
        self._retry_at = 0.0
        self._replay_started: float | None = None
        self._replay_sent = 0
        self._thread: threading.Thread | None = None
        self._throttle = LogThrottle(30.0)

        self.sent = 0
        self.acknowledged = 0
        self.refused = 0
        self.unspooled = 0
        self.replays = 0

        self._prev_connected = publisher.on_connected
        self._prev_disconnected = publisher.on_disconnected
        self._prev_delivered = publisher.on_delivered
        publisher.on_connected = self._on_connected
        publisher.on_disconnected = self._on_disconnected
        publisher.on_delivered = self._on_delivered

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the replay thread ("spool-replay"); rows left by an earlier run go out once
        connected."""
        if self._thread is not None:
            return
        with self._cond:
            self._closing = False
            if self.publisher.is_connected and not self._connected:
                self._connected = True  # started late: nothing of ours is in paho's queue yet
            if self.spool.depth:
                log.info("spool.pending_at_start", depth=self.spool.depth, bytes=self.spool.bytes)
        self._thread = threading.Thread(target=self._run, name="spool-replay", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the replay thread and unhook from the publisher. Rows not yet acknowledged stay
        in the spool for the next start. Call after `publisher.stop()`; the spool is the
        caller's to close."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        p = self.publisher
        if p.on_connected == self._on_connected:
            p.on_connected = self._prev_connected
        if p.on_disconnected == self._on_disconnected:
            p.on_disconnected = self._prev_disconnected
        if p.on_delivered == self._on_delivered:
            p.on_delivered = self._prev_delivered
        log.info("spool.closed", **self.stats())

    def flush(self, timeout: float) -> bool:
        """Wait until every spooled row has been handed over and acknowledged (True) or
        `timeout` s passed (False). Refused rows count as done here."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._cursor < self._tail or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    # -- sending --------------------------------------------------------------------------------

    def send(
        self,
        topic: str,
        payload: Mapping[str, Any] | bytes | str,
        qos: int = 1,
        retain: bool = False,
        kind: Kind = "event",
        camera: str | None = None,
    ) -> int | None:
        """Spool one message (durably), then publish it unless older rows must go first.

        `topic` is the full topic. `qos` 0 is raised to 1: only an acknowledgement can release
        a row. `kind`: "update" rows are dropped before "event" rows when the spool is full.
        Returns the row id; None when the spool failed (then it is published unspooled, best
        effort, and an error is logged).
        """
        data = encode_json(payload)
        message = Message(topic, lambda _seq: data, qos, retain, kind, camera)
        return self._send([message], numbered=False)[0][0]

    def send_numbered(self, messages: Sequence[Message]) -> list[tuple[int, bytes]]:
        """Spool `messages` in one transaction, each numbered with its camera's next `seq`,
        then publish them in order; returns (seq, payload) for each.

        When the spool fails (a full disk), each gets `at_least` as its number and is
        published unspooled (counted, logged): events go on, without the crash guarantee.
        """
        return [(seq, data) for _, seq, data in self._send(messages, numbered=True)]

    def _send(
        self, messages: Sequence[Message], *, numbered: bool
    ) -> list[tuple[int | None, int, bytes]]:
        with self._cond:
            caught_up = self._cursor >= self._tail
            try:
                stored = self.spool.append_many(messages, numbered=numbered)
            except Exception as err:
                return self._send_unspooled_locked(messages, err)
            for message, (row_id, _, data) in zip(messages, stored, strict=True):
                self._tail = max(self._tail, row_id)
                if caught_up and self._may_submit_locked():
                    caught_up = self._submit_locked(
                        row_id, message.topic, data, max(1, message.qos), message.retain
                    )
                else:
                    caught_up = False
            self._cond.notify_all()
        return [(row_id, seq, data) for row_id, seq, data in stored]

    def _send_unspooled_locked(
        self, messages: Sequence[Message], err: Exception
    ) -> list[tuple[int | None, int, bytes]]:
        self.unspooled += len(messages)
        held = self._throttle.allow("spool.append_failed")
        if held is not None:
            log.error(
                "spool.append_failed",
                messages=len(messages),
                error=_describe(err),
                action="published without the spool; lost if the daemon dies before "
                "the broker has them",
                suppressed=held,
            )
        out: list[tuple[int | None, int, bytes]] = []
        for m in messages:
            data = bytes(m.build(m.at_least))
            self.publisher.publish(m.topic, data, max(1, m.qos), m.retain)
            out.append((None, m.at_least, data))
        return out

    def _may_submit_locked(self) -> bool:
        if not self._connected or self._closing or len(self._inflight) >= self.window:
            return False
        if self._barrier:
            if time.monotonic() - self._barrier_since < self.barrier_timeout_s:
                return False
            log.warning(
                "spool.barrier_timeout",
                waiting=sorted(self._barrier),
                seconds=self.barrier_timeout_s,
                action="sending newer events now; order may not hold for these",
            )
            self._barrier.clear()
        return time.monotonic() >= self._retry_at

    def _submit_locked(self, row_id: int, topic: str, data: bytes, qos: int, retain: bool) -> bool:
        """Hand one row to paho; False (cursor unchanged) when paho refused to queue it."""
        delivery = self.publisher.publish(topic, data, qos, retain, context=row_id)
        if delivery.dropped:
            self._retry_at = time.monotonic() + self.retry_s
            log.warning("spool.publish_deferred", row_id=row_id, reason=delivery.reason)
            self._cond.notify_all()
            return False
        self._inflight[row_id] = delivery
        self._cursor = row_id
        self.sent += 1
        return True

    def _replay_batch_locked(self) -> None:
        """Hand the next rows after the cursor to paho, oldest first."""
        tail = self._tail
        rows = self.spool.pending(self.window - len(self._inflight), after_id=self._cursor)
        if not rows:
            self._cursor = max(self._cursor, tail)  # the rest was dropped or acknowledged
        for row in rows:
            if not self._submit_locked(row.id, row.topic, row.payload, row.qos, row.retain):
                break
            if self._replay_started is not None:
                self._replay_sent += 1
        self._check_replay_done_locked()

    def _check_replay_done_locked(self) -> None:
        if self._replay_started is None or self._cursor < self._tail or self._inflight:
            return
        log.info(
            "spool.replayed",
            count=self._replay_sent,
            seconds=round(time.monotonic() - self._replay_started, 3),
            depth=self.spool.depth,
        )
        self._replay_started = None

    def _run(self) -> None:
        with self._cond:
            while not self._closing:
                if self._cursor < self._tail and self._may_submit_locked():
                    try:
                        self._replay_batch_locked()
                    except Exception as err:  # a full or failing disk: try again later
                        held = self._throttle.allow("spool.replay_failed")
                        if held is not None:
                            log.error("spool.replay_failed", error=_describe(err), suppressed=held)
                        self._retry_at = time.monotonic() + self.retry_s
                    continue
                self._cond.wait(self.retry_s)

    # -- publisher hooks ------------------------------------------------------------------------

    def _on_connected(self) -> None:
        with self._cond:
            self._connected = True
            # paho re-sends these right after this hook returns; newer rows wait for them.
            self._barrier = set(self._inflight)
            self._barrier_since = time.monotonic()
            if self._cursor < self._tail or self._inflight:
                self.replays += 1
                self._replay_started = time.monotonic()
                self._replay_sent = 0
                log.info(
                    "spool.replay",
                    depth=self.spool.depth,
                    resent_by_paho=len(self._inflight),
                )
            self._cond.notify_all()
        if self._prev_connected is not None:
            self._prev_connected()

    def _on_disconnected(self, reason: str) -> None:
        # Taking the lock waits for a hand-over in progress; paho reconnects only after this.
        with self._cond:
            self._connected = False
            self._cond.notify_all()
        if self._prev_disconnected is not None:
            self._prev_disconnected(reason)

    def _on_delivered(self, delivery: Delivery) -> None:
        row_id = delivery.context
        with self._cond:
            ours = isinstance(row_id, int) and self._inflight.get(row_id) is delivery
        if not ours:
            if self._prev_delivered is not None:
                self._prev_delivered(delivery)
            return
        accepted = delivery.accepted
        if accepted:
            try:
                self.spool.ack(row_id)
            except Exception as err:  # a duplicate after a restart, not a loss
                held = self._throttle.allow("spool.ack_failed")
                if held is not None:
                    log.error(
                        "spool.ack_failed", row_id=row_id, error=_describe(err), suppressed=held
                    )
        else:
            log.warning(
                "spool.publish_refused",
                row_id=row_id,
                topic=delivery.topic,
                reason=delivery.reason,
                reason_code=delivery.reason_code,
                action="kept in the spool; tried again after a restart",
            )
        with self._cond:
            del self._inflight[row_id]
            self._barrier.discard(row_id)
            if accepted:
                self.acknowledged += 1
            else:
                self.refused += 1
            self._check_replay_done_locked()
            self._cond.notify_all()

    # -- state ----------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Rows handed to paho and not yet acknowledged."""
        with self._cond:
            return len(self._inflight)

    @property
    def caught_up(self) -> bool:
        """Every spooled row has been handed to paho."""
        with self._cond:
            return self._cursor >= self._tail

    def stats(self) -> dict[str, Any]:
        """For the daemon's statistics and logs."""
        with self._cond:
            state = {
                "in_flight": len(self._inflight),
                "sent": self.sent,
                "acknowledged": self.acknowledged,
                "refused": self.refused,
                "unspooled": self.unspooled,
                "replays": self.replays,
            }
        return {**self.spool.stats(), **state}
