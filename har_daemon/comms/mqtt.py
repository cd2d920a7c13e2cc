"""The daemon's MQTT edge: one paho-mqtt 2.x client that publishes, reconnects and says so.

Presence: the broker holds the availability topic (`status_topic`, by default `<prefix>/status`;
see `comms.availability` for the per-instance one) retained. The Last Will is "offline" (QoS 1,
retained), published by the broker when the connection dies without a DISCONNECT (crash, kill -9,
network loss beyond 1.5 x keepalive). Every successful (re)connect publishes "online" (retained,
QoS 1) and then calls `on_connected`, where the daemon re-publishes its retained per-camera
states. `stop()` publishes "stopped" itself (a clean stop, told apart from a crash), waits a
bounded time for its PUBACK, and disconnects cleanly (a clean DISCONNECT makes the broker
discard the Will).

Protocol: MQTT 5 by default, "3.1.1" on request. MQTT 5 is chosen because its PUBACK carries a
reason code (a broker that refuses a message, e.g. "Not authorized" by an ACL, says so, where
3.1.1 acknowledges it silently), its CONNACK reasons are specific ("Bad user name or password",
"Not authorized"...), and its CONNECT tells the broker our Maximum Packet Size. Mosquitto >= 1.6,
EMQX, HiveMQ and the Home Assistant add-on speak it; "3.1.1" is there for older brokers.

Deliveries (`har_daemon.comms.delivery`) and subscriptions (`har_daemon.comms.subscriptions`)
are tracked in their own modules, whose docstrings say what paho does with each.

Connection: `start()` uses `connect_async` + `loop_start`, so it returns at once and the daemon
runs even while the broker is down; paho's network thread retries with exponential backoff
between `reconnect_min_delay` and `reconnect_max_delay` seconds. Each failed attempt is logged
once: `mqtt.connect_failed` (TCP/TLS level, with the error) or `mqtt.connect_refused` (the
broker's CONNACK, with `reason` and `reason_code`). The password is never logged. Credentials and
TLS are applied by `comms.connection`, shared with every other client of the package.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from har_daemon.comms.connection import BrokerSettings, describe_error, new_client
from har_daemon.comms.delivery import Delivery, DeliveryTracker
from har_daemon.comms.payloads import encode_json
from har_daemon.comms.subscriptions import SubscriptionTable
from har_daemon.comms.topics import (
    OFFLINE,
    ONLINE,
    STOPPED,
    MessageCallback,
    check_topic_filter,
    check_topic_name,
)
from har_daemon.config.comms import MAX_PACKET_SIZE
from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)


class MqttClient:
    """Publishes the daemon's messages under `topic_prefix` and keeps its availability right.

    Parameters are plain values (the daemon maps its config onto them); the connection ones
    become `settings` (`comms.connection.BrokerSettings`, which says how TLS is chosen).
    `password` is a str (e.g. `SecretStr.get_secret_value()`) and is only handed to paho.
    `status_topic`: the full availability topic carrying the Will (default `<prefix>/status`).

    Hooks; an exception in one is logged and swallowed. None may call `stop()`.
    - `on_connected()`: after each successful (re)connect, once "online" has been published and
      before paho re-sends what it queued during the outage; called from paho's network thread
      (keep it short; it may call `publish*`).
    - `on_disconnected(reason: str)`: when an established connection ends (not on stop());
      network thread.
    - `on_delivered(delivery)`: when a publish made through `publish*` is acknowledged, in
      acknowledgement order, from a dedicated "mqtt-delivered" thread, so it may take locks and
      call `publish*` freely. Not called for the publisher's own "online"/"offline" messages,
      nor for dropped ones (those come back from `publish*` already `dropped`). `stop()` waits
      for the acknowledgements received so far to be handed over.
    Subscriptions (`subscribe`) are restored after each (re)connect, before `on_connected`.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        client_id: str,
        keepalive: int = 60,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        tls_ca_file: str | os.PathLike[str] | None = None,
        tls_cert_file: str | os.PathLike[str] | None = None,
        tls_key_file: str | os.PathLike[str] | None = None,
        tls_insecure: bool = False,
        topic_prefix: str = "har",
        status_topic: str | None = None,
        qos: int = 1,
        protocol: str = "5",
        reconnect_min_delay: float = 1.0,
        reconnect_max_delay: float = 60.0,
        connect_timeout: float = 5.0,
        max_queued_messages: int = 0,
        max_packet_size: int = MAX_PACKET_SIZE,
        ack_stall_s: float = 30.0,
        on_connected: Callable[[], None] | None = None,
        on_disconnected: Callable[[str], None] | None = None,
        on_delivered: Callable[[Delivery], None] | None = None,
    ) -> None:
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if not 0 < reconnect_min_delay <= reconnect_max_delay:
            raise ValueError("need 0 < reconnect_min_delay <= reconnect_max_delay")
        self.settings = BrokerSettings(
            host,
            int(port),
            username=username,
            password=password,
            tls=tls,
            tls_ca_file=tls_ca_file,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            tls_insecure=tls_insecure,
            protocol=protocol,
            keepalive=int(keepalive),
            connect_timeout=connect_timeout,
            max_packet_size=int(max_packet_size),
        )
        self.ack_stall_s = ack_stall_s
        self.host = host
        self.port = int(port)
        self.client_id = client_id
        self.keepalive = int(keepalive)
        self.username = username
        self.topic_prefix = topic_prefix.strip("/")
        self._status_topic = status_topic or self.topic("status")
        check_topic_name(self._status_topic)
        self.qos = qos
        self.protocol = protocol
        self.tls = self.settings.uses_tls
        self.on_connected = on_connected
        self.on_disconnected = on_disconnected
        self.on_delivered = on_delivered
        self.connect_count = 0

        self._deliveries = DeliveryTracker(lambda d: self.on_delivered)
        self._connected = threading.Event()
        self._started = False
        self._stopping = False
        self._subs = SubscriptionTable()
        # Whoever can publish to our topics can trigger these lines: a few per minute at most.
        self._throttle = LogThrottle(60.0, burst=3)

        # MQTT 5 sets clean_start in connect_async (start()); 3.1.1 always starts clean.
        client = new_client(self.settings, client_id)
        client.reconnect_delay_set(reconnect_min_delay, reconnect_max_delay)  # type: ignore[arg-type]
        client.max_queued_messages_set(max_queued_messages)
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_log = self._on_log
        self._client = client

    # -- topics -----------------------------------------------------------------------------

    @property
    def status_topic(self) -> str:
        """The availability topic: "online", "stopped" (clean stop), "offline" (Last Will)."""
        return self._status_topic

    def topic(self, suffix: str) -> str:
        """`<prefix>/<suffix>`."""
        if not (suffix := suffix.strip("/")):
            raise ValueError("empty topic suffix")
        return f"{self.topic_prefix}/{suffix}" if self.topic_prefix else suffix

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """Connected and CONNACK accepted (False while connecting or refused)."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Block until connected; True when connected within `timeout` seconds."""
        return self._connected.wait(timeout)

    @property
    def pending_count(self) -> int:
        """Messages submitted and not yet acknowledged (in flight or held by paho), including
        the publisher's own "online"/"offline"."""
        return self._deliveries.pending_count

    def start(self) -> None:
        """Begin connecting in the background; returns at once, broker reachable or not."""
        if self._started:
            return
        self._started, self._stopping = True, False
        log.info(
            "mqtt.starting",
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            username=self.username,
            tls=self.tls,
            protocol=self.protocol,
        )
        self._deliveries.start()
        opts = self.settings.connect_kwargs()
        self._client.connect_async(self.host, self.port, self.keepalive, **opts)
        self._client.loop_start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Publish "stopped" (retained) and wait up to `timeout` s for its PUBACK; disconnect.

        Returns True when "stopped" was acknowledged. When it was not (no connection, or no
        PUBACK in time) on MQTT 5 the DISCONNECT asks the broker to publish the Will instead
        (reason 0x04): "offline", since a clean stop could not be confirmed. Must not be called
        from a hook.
        """
        if not self._started:
            return False
        self._stopping = True
        acknowledged = False
        if self.is_connected:
            delivery = self._publish(self.status_topic, STOPPED.encode(), 1, True, None, False)
            acknowledged = delivery.wait(timeout)
        if self.protocol == "5" and not acknowledged:
            self._client.disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
            )
        else:
            self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._deliveries.stop(timeout)
        self._started = False
        log.info(
            "mqtt.stopped",
            stopped_acknowledged=acknowledged,
            unacknowledged=self.pending_count,
        )
        return acknowledged

    # -- subscribing --------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, callback: MessageCallback, qos: int = 1) -> None:
        """Deliver messages matching `topic_filter` (full topic, no prefix added) to
        `callback(topic, payload, retained)` on paho's network thread, now and after every
        reconnect. Subscribing to a filter again replaces its callback and QoS.

        Sent at once when connected, else at the next connect. A refusal in the SUBACK is
        logged as `mqtt.subscribe_refused` (Mosquitto 2.0 grants every filter and applies its
        ACL to each message instead). Callbacks should be quick: while one runs, no other
        message, acknowledgement or keepalive is processed.
        """
        check_topic_filter(topic_filter)
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if not callable(callback):
            raise TypeError("callback must be callable")
        with self._subs.lock:
            self._subs.add_locked(topic_filter, callback, qos)
            send_now = self._connected.is_set()
        log.info("mqtt.subscription_added", topic_filter=topic_filter, qos=qos, sent=send_now)
        if send_now:
            self._send_subscribe([(topic_filter, qos)])

    def unsubscribe(self, topic_filter: str) -> None:
        """Forget `topic_filter` (no-op when unknown); sent to the broker when connected.

        Its callback gets no more messages from here on, even ones already on the way.
        """
        send_now = self._subs.remove(topic_filter) and self._connected.is_set()
        if send_now:
            rc, _ = self._client.unsubscribe(topic_filter)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.debug("mqtt.unsubscribe_not_sent", topic_filter=topic_filter, rc=int(rc))

    def wait_subscribed(
        self, topic_filter: str | None = None, timeout: float | None = None
    ) -> bool:
        """Block until the broker has acknowledged `topic_filter` (default: every remembered
        filter) on the current connection; True when it did within `timeout` seconds.

        After it returns True, messages published to matching topics reach the callback. False
        while disconnected, and for a filter the broker refused or that is not subscribed.
        """

        return self._subs.wait_granted(topic_filter, self._connected.is_set, timeout)

    @property
    def subscriptions(self) -> dict[str, int]:
        """The remembered topic filters and their QoS."""
        return self._subs.qos_by_filter()

    def _send_subscribe(self, filters: list[tuple[str, int]]) -> None:
        """One SUBSCRIBE for `filters`; remembers its mid to name them in the SUBACK's log."""
        if not filters:
            return
        rc, mid = self._client.subscribe(filters)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            # The connection just dropped: the next connect subscribes again.
            log.debug("mqtt.subscribe_not_sent", topic_filters=[f for f, _ in filters], rc=int(rc))
            return
        names = [f for f, _ in filters]
        early = self._subs.sent(mid, names)
        if early is not None:
            self._suback(names, early)

    def _suback(self, filters: list[str], reason_codes: list[ReasonCode]) -> None:
        """Record and log the broker's answer (one reason code per filter, in order)."""
        pairs = list(zip(filters, reason_codes, strict=False))
        self._subs.grant(filters, reason_codes)
        for topic_filter, code in pairs:
            if code.is_failure:
                log.warning(
                    "mqtt.subscribe_refused",
                    topic_filter=topic_filter,
                    reason=str(code),
                    reason_code=int(code.value),
                )
            else:
                log.debug("mqtt.subscribed", topic_filter=topic_filter, granted_qos=int(code.value))

    # -- publishing ---------------------------------------------------------------------------

    def publish_json(
        self,
        topic_suffix: str,
        payload: Mapping[str, Any],
        qos: int | None = None,
        retain: bool = False,
        context: Any = None,
    ) -> Delivery:
        """Publish `payload` as compact UTF-8 JSON to `<prefix>/<topic_suffix>`.

        NaN/inf are refused (ValueError): they are not JSON.
        """
        return self.publish(self.topic(topic_suffix), encode_json(payload), qos, retain, context)

    def publish_text(
        self,
        topic_suffix: str,
        text: str,
        qos: int | None = None,
        retain: bool = False,
        context: Any = None,
    ) -> Delivery:
        """Publish UTF-8 `text` to `<prefix>/<topic_suffix>`."""
        return self.publish(self.topic(topic_suffix), text, qos, retain, context)

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int | None = None,
        retain: bool = False,
        context: Any = None,
    ) -> Delivery:
        """Publish to the full `topic` (no prefix added). `qos` defaults to the publisher's.

        Works before start() and while disconnected; see the module docstring for what paho
        does then. `context` is returned on the Delivery (e.g. a spool row id).
        """
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        return self._publish(topic, data, self.qos if qos is None else qos, retain, context)

    def _publish(
        self, topic: str, data: bytes, qos: int, retain: bool, context: Any, notify: bool = True
    ) -> Delivery:
        info = self._client.publish(topic, data, qos=qos, retain=retain)
        delivery = Delivery(info.mid, topic, qos, retain, context, rc=int(info.rc), _notify=notify)
        dropped = info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE or (
            qos == 0 and info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS
        )
        return self._deliveries.submitted(delivery, mqtt.error_string(info.rc) if dropped else None)

    def stall_reason(self) -> str | None:
        """Why MQTT is stuck, for /healthz: connected with messages in flight and no
        acknowledgement handled for `ack_stall_s` (paho's network thread busy, or the broker)."""
        if not self.is_connected or (stalled := self._deliveries.stalled_s()) <= self.ack_stall_s:
            return None
        return (
            f"MQTT: {self.pending_count} messages in flight and no acknowledgement handled for "
            f"{stalled:.0f}s (limit {self.ack_stall_s:g}s)"
        )

    # -- paho callbacks (network thread) --------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning(
                "mqtt.connect_refused",
                host=self.host,
                port=self.port,
                client_id=self.client_id,
                username=self.username,
                reason=str(reason_code),
                reason_code=int(reason_code.value),
            )
            return
        self.connect_count += 1
        log.info(
            "mqtt.connected",
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            session_present=bool(flags.session_present),
            reconnect=self.connect_count > 1,
        )
        self._deliveries.connection_up()
        # "online" is submitted (pending until its PUBACK) before anyone sees is_connected.
        self._publish(self.status_topic, ONLINE.encode(), 1, True, None, False)
        with self._subs.lock:
            self._connected.set()
            filters = self._subs.new_connection_locked()
        self._send_subscribe(filters)
        hook = self.on_connected
        if hook is not None:
            try:
                hook()
            except Exception:
                log.exception("mqtt.on_connected_failed")

    def _on_connect_fail(self, client, userdata) -> None:
        log.warning(
            "mqtt.connect_failed",
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            error=describe_error(getattr(client, "last_connect_error", None)),
        )

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subs.connection_lost()
        # QoS 0 messages not yet written when the socket closed are gone (paho clears its
        # packet queue on reconnect); QoS 1/2 ones stay pending and are sent again.
        self._deliveries.connection_lost()
        if self._stopping:
            return
        if not was_connected:
            # The end of a refused attempt (already logged as connect_refused) or a failed
            # TLS/TCP handshake: nothing was up.
            return
        reason = str(reason_code)
        log.warning(
            "mqtt.disconnected",
            host=self.host,
            port=self.port,
            reason=reason,
            reason_code=int(reason_code.value),
        )
        hook = self.on_disconnected
        if hook is not None:
            try:
                hook(reason)
            except Exception:
                log.exception("mqtt.on_disconnected_failed")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._deliveries.acknowledged(mid, int(reason_code.value), str(reason_code))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # None: the SUBACK came before _send_subscribe (another thread) recorded the mid.
        filters = self._subs.acknowledged(mid, list(reason_codes))
        if filters is not None:
            self._suback(filters, list(reason_codes))

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        size = len(message.payload)
        if self.settings.oversize(size):  # a 3.1.1 broker, or one ignoring Maximum Packet Size
            self._warn("mqtt.oversize", topic=repr(message._topic[:200]), bytes=size)
            return
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._warn("mqtt.bad_topic", topic=repr(message._topic[:200]))
            return
        self._subs.dispatch(topic, bytes(message.payload), bool(message.retain), self._throttle)

    def _warn(self, event: str, **fields: Any) -> None:
        held = self._throttle.allow(event)
        if held is not None:
            log.warning(event, suppressed=held, **fields)

    def _on_log(self, client, userdata, level, buf) -> None:
        if level not in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            return
        if buf.startswith("Client is not connected"):
            # paho's loop noticing the socket is gone after a failed attempt, already logged.
            log.debug("mqtt.paho", message=buf)
        else:
            log.warning("mqtt.paho", message=buf)
