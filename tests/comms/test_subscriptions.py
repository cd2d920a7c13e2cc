"""`comms.subscriptions`: the subscription table's bookkeeping, without a broker.

The table against a real Mosquitto (SUBSCRIBE, SUBACK, reconnects) is in tests/comms/test_mqtt.py.
"""

from __future__ import annotations

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from har_daemon.comms.subscriptions import SubscriptionTable
from har_daemon.core.logs import LogThrottle
from tests.infra.logs import capture_logs

GRANTED = ReasonCode(PacketTypes.SUBACK, identifier=0)
REFUSED = ReasonCode(PacketTypes.SUBACK, identifier=0x80)


def _ignore(topic: str, payload: bytes, retained: bool) -> None:
    """A callback that accepts every message."""


def _table(*filters: str) -> SubscriptionTable:
    table = SubscriptionTable()
    with table.lock:
        for topic_filter in filters:
            table.add_locked(topic_filter, _ignore, 1)
    return table


def _online() -> bool:
    return True


def test_remove_says_whether_the_filter_was_known() -> None:
    table = _table("har/set")
    assert table.remove("har/set") is True
    assert table.remove("har/set") is False
    assert table.remove("never/added") is False
    assert table.qos_by_filter() == {}


def test_a_removed_filter_added_again_is_not_granted_until_the_broker_says_so() -> None:
    table = _table("har/set")
    table.grant(["har/set"], [GRANTED])
    assert table.wait_granted("har/set", _online, 0)
    table.remove("har/set")
    with table.lock:
        table.add_locked("har/set", _ignore, 1)
    assert not table.wait_granted("har/set", _online, 0)


def test_a_message_no_filter_matches_is_logged() -> None:
    with capture_logs() as logs:
        _table("har/set").dispatch("har/other", b"x", False, LogThrottle(60.0))
    assert [(e["event"], e["topic"]) for e in logs] == [("mqtt.message_unmatched", "har/other")]


def test_failing_callbacks_are_throttled_per_filter_with_the_count_held_back() -> None:
    now = [0.0]

    def fail(topic: str, payload: bytes, retained: bool) -> None:
        raise RuntimeError("broken")

    table = SubscriptionTable()
    with table.lock:
        table.add_locked("har/#", fail, 1)
        table.add_locked("har/+/set", fail, 1)
    throttle = LogThrottle(60.0, lambda: now[0], burst=1)
    with capture_logs() as logs:
        for _ in range(3):
            table.dispatch("har/lobby/set", b"x", False, throttle)
        now[0] = 60.0
        table.dispatch("har/lobby/set", b"x", False, throttle)
    failed = [e for e in logs if e["event"] == "mqtt.callback_failed"]
    assert [(e["topic_filter"], e["suppressed"]) for e in failed] == [
        ("har/#", 0),
        ("har/+/set", 0),
        ("har/#", 2),
        ("har/+/set", 2),
    ]


def test_a_suback_before_its_subscribe_is_kept_for_it() -> None:
    table = _table("har/set")
    assert table.acknowledged(7, [GRANTED]) is None  # its SUBSCRIBE not recorded yet
    assert table.sent(7, ["har/set"]) == [GRANTED]
    assert table.sent(8, ["har/set"]) is None
    assert table.acknowledged(8, [GRANTED]) == ["har/set"]


def test_early_subacks_are_bounded_oldest_first() -> None:
    full = SubscriptionTable()
    for mid in range(100):
        full.acknowledged(mid, [GRANTED])
    assert full.sent(0, ["a"]) == [GRANTED]  # 100 kept
    over = SubscriptionTable()
    for mid in range(101):
        over.acknowledged(mid, [GRANTED])
    assert over.sent(0, ["a"]) is None  # the oldest of 101 forgotten
    assert over.sent(1, ["a"]) == [GRANTED]


def test_grant_takes_only_successes_for_known_filters() -> None:
    table = _table("a", "b", "c")
    table.grant(["a", "b", "gone"], [GRANTED, REFUSED, GRANTED])
    assert table.wait_granted("a", _online, 0)
    assert not table.wait_granted("b", _online, 0)
    assert not table.wait_granted("gone", _online, 0)
    table.grant(["c", "a"], [GRANTED])  # a SUBACK with too few codes: the filters it covers
    assert table.wait_granted("c", _online, 0)


def test_wait_granted_for_every_filter_and_only_while_connected() -> None:
    table = _table("a", "b")
    table.grant(["a"], [GRANTED])
    assert not table.wait_granted(None, _online, 0)
    table.grant(["b"], [GRANTED])
    assert table.wait_granted(None, _online, 0)
    assert not table.wait_granted("a", lambda: False, 0)
    table.connection_lost()
    assert not table.wait_granted("a", _online, 0)
