"""comms.availability without a broker: which claims touch us, what they say, what the board
keeps, what the ping responder answers and the conflict state published (its pure parts)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from har_daemon.comms.availability import (
    MAX_NONCE,
    Claim,
    InstanceBoard,
    InstanceIdentity,
    InstancePresence,
    PingResponder,
)
from tests.comms.availability_helpers import T, me
from tests.infra.logs import capture_logs


def info(ident: InstanceIdentity) -> bytes:
    return json.dumps(ident.info()).encode()


def claim_of(ident: InstanceIdentity) -> Claim:
    parsed = Claim.parse(info(ident))
    assert parsed is not None
    return parsed


def test_a_claim_parses_what_an_instance_publishes() -> None:
    assert claim_of(me("b", ("yard", "lobby"))) == Claim(
        instance="b",
        client_id="client-b",
        host="host-b",
        status_topic="site/instances/b/status",
        cameras=frozenset({"yard", "lobby"}),
    )
    doc = json.loads(info(me("b")))
    del doc["host"]  # optional: an unknown host
    parsed = Claim.parse(json.dumps(doc).encode())
    assert parsed is not None and parsed.host == "?"
    assert parsed.describe() == "instance 'b' (client client-b on ?)"


@pytest.mark.parametrize(
    "payload",
    [b"", b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"instance": "b"}'],
)
def test_what_is_not_a_claim_is_none(payload: bytes) -> None:
    assert Claim.parse(payload) is None


def test_a_claim_without_a_required_field_is_none() -> None:
    doc = json.loads(info(me("b")))
    for key in ("instance", "client_id", "status_topic", "cameras"):
        broken = {k: v for k, v in doc.items() if k != key}
        assert Claim.parse(json.dumps(broken).encode()) is None, key
    assert Claim.parse(json.dumps({**doc, "cameras": 5}).encode()) is None


def test_which_claims_touch_us() -> None:
    ours = me("a", ("lobby", "yard"))
    assert ours.touched_by(claim_of(me("b", ("yard",))))  # one camera in common
    assert not ours.touched_by(claim_of(me("b", ("street",))))
    # Same availability topic, no camera in common: two unshared instances of one prefix.
    alone = me("a", ("lobby",), shared=False)
    assert alone.touched_by(claim_of(me("b", ("street",), shared=False)))
    # An earlier run of ourselves (same client id) is not another instance.
    assert not ours.touched_by(claim_of(me("a", ("lobby",))))


def test_problems_name_each_camera_and_the_availability_topic() -> None:
    ours = me("a", ("lobby", "yard", "gate"), shared=False)
    other = claim_of(me("b", ("yard", "lobby", "street"), shared=False))
    who = "live instance 'b' (client client-b on host-b)"
    assert ours.problems(other) == [
        f"camera 'lobby' is already published under prefix 'site' by {who}",
        f"camera 'yard' is already published under prefix 'site' by {who}",
        f"availability topic 'site/status' is in use by {who}: give each instance sharing "
        "prefix 'site' its own [mqtt] instance and set [mqtt] shared_prefix = true",
    ]
    assert me("a", ("gate",)).problems(claim_of(me("b", ("yard",)))) == []


def test_the_board_keeps_a_claim_until_it_is_deleted_or_moves_away() -> None:
    changes: list[int] = []
    board = InstanceBoard(me("a", ("yard",)), on_change=lambda: changes.append(1))
    b = me("b", ("yard",))
    board(b.info_topic, info(b), True)
    board(b.status_topic, b"online", True)
    assert [c.instance for c in board.live_claims()] == ["b"] and len(changes) == 2
    board(b.status_topic, b"online", True)  # the same again is a message about a kept claim
    assert len(changes) == 3
    moved = me("b", ("street",))  # b now claims another camera: forgotten, a change
    board(moved.info_topic, info(moved), True)
    assert board.live_claims() == [] and len(changes) == 4
    board(moved.info_topic, info(moved), True)  # still nothing of ours: no change
    board(b.status_topic, b"offline", True)  # availability of nothing kept: no change
    assert len(changes) == 4
    InstanceBoard(me("a", ("yard",)))(b.info_topic, info(b), True)  # on_change is optional


@pytest.mark.parametrize(
    ("payload", "live"),
    [
        (b"online", True),
        (b" online\n", True),  # written by hand with a trailing newline
        (b"offline", False),
        (b"stopped", False),
        (b"online" + b" " * 10, True),  # 16 bytes: still read
        (b"online" + b" " * 11, False),  # 17 bytes: none of the availability words
        (b"", False),
    ],
)
def test_what_availability_counts_as_online(payload: bytes, live: bool) -> None:
    board = InstanceBoard(me("a", ("yard",)))
    b = me("b", ("yard",))
    board(b.info_topic, info(b), True)
    board(b.status_topic, payload, True)
    assert bool(board.live_claims()) is live


def test_the_board_keeps_the_claims_it_has_when_full() -> None:
    board = InstanceBoard(me("a", ("yard",)), max_claims=2)
    others = [me(f"o{i}", ("yard",)) for i in range(3)]
    with capture_logs() as logs:
        for other in others:
            board(other.info_topic, info(other), True)
            board(other.status_topic, b"online", True)
    assert sorted(board.conflicts()) == ["o0", "o1"]
    assert [e["kept"] for e in logs if e["event"] == "availability.too_many_claims"] == [2]
    again = me("o1", ("yard", "lobby"))  # a kept claim may still change when the board is full
    board(again.info_topic, info(again), True)
    assert [c.cameras for c in board.live_claims() if c.instance == "o1"] == [
        frozenset({"yard", "lobby"})
    ]


def test_the_oldest_unclaimed_availability_is_forgotten_first() -> None:
    board = InstanceBoard(me("a", ("yard",)), max_status=3)
    b = me("b", ("yard",))
    board(b.status_topic, b"online", True)  # the oldest topic, but b's claim comes next
    board(b.info_topic, info(b), True)
    for i in range(10):
        board(T.instance_status(f"x{i}"), b"online", True)
    assert list(board._status) == [
        "site/instances/x8/status",
        "site/instances/b/status",
        "site/instances/x9/status",
    ]
    assert [c.instance for c in board.live_claims()] == ["b"]


def test_conflicts_list_every_problem_per_instance() -> None:
    board = InstanceBoard(me("a", ("yard", "lobby"), shared=False))
    for other in (me("b", ("yard", "lobby"), shared=False), me("c", ("yard",))):
        board(other.info_topic, info(other), True)
        board(other.status_topic, b"online", True)
    found = board.conflicts()
    assert sorted(found) == ["b", "c"]
    assert len(found["b"]) == 3 and len(found["c"]) == 1


def test_the_ping_responder_echoes_fresh_short_nonces_only() -> None:
    sent: list[tuple[str, bytes]] = []
    responder = PingResponder(me("a"), lambda topic, payload: sent.append((topic, payload)))
    assert responder.topic == "site/instances/a/ping"
    responder(responder.topic, b"n1", False)
    responder(responder.topic, b"x" * MAX_NONCE, False)  # the longest answered
    responder(responder.topic, b"x" * (MAX_NONCE + 1), False)
    responder(responder.topic, b"", False)
    responder(responder.topic, b"old", True)  # a retained ping is no one asking now
    assert sent == [("site/instances/a/pong", b"n1"), ("site/instances/a/pong", b"x" * 64)]
    for i in range(20):  # a flood: the burst of 10 a second, then nothing
        responder(responder.topic, f"f{i}".encode(), False)
    assert len(sent) == 10


def test_subscriptions_are_the_boards_filters_and_our_ping() -> None:
    presence = InstancePresence(me("a"))
    subs = presence.subscriptions(lambda t, p: None)
    assert [f for f, _ in subs] == [*T.instances_filters, "site/instances/a/ping"]
    assert all(cb is presence.board for _, cb in subs[:-1])
    assert presence.status_topic == "site/instances/a/status"


def test_the_conflict_state_is_published_when_it_changes_and_deleted_when_none() -> None:
    presence = InstancePresence(me("a", ("yard",)))
    published: list[tuple[str, Any, bool]] = []

    def publish(topic: str, payload: Any, retain: bool = False) -> None:
        published.append((topic, payload, retain))

    state = "site/instances/a/conflicts"
    presence.announce(publish)
    assert published == [
        ("site/instances/a/info", me("a", ("yard",)).info(), True),
        (state, b"", True),
    ]
    b = me("b", ("yard",))
    with capture_logs() as logs:
        presence.board(b.info_topic, info(b), True)
        presence.board(b.status_topic, b"online", True)
        presence.board(b.status_topic, b"online", True)
    problem = me("a", ("yard",)).problems(claim_of(b))
    assert [e["problem"] for e in logs if e["event"] == "availability.conflict"] == problem
    published.clear()
    presence.publish_state(publish)
    presence.publish_state(publish)  # unchanged: not again
    assert published == [(state, {"conflicts": problem}, True)]
    presence.announce(publish)  # a reconnect publishes the state again
    assert published[-1] == (state, {"conflicts": problem}, True) and len(published) == 3
    presence.board(b.status_topic, b"stopped", True)
    presence.publish_state(publish)
    assert published[-1] == (state, b"", True) and len(published) == 4


def test_an_availability_that_comes_before_its_claim_counts() -> None:
    """Retained messages arrive in any order: "online" first, then the info, is a conflict."""
    presence = InstancePresence(me("a", ("yard",)))
    b = me("b", ("yard",))
    with capture_logs() as logs:
        presence.board(b.status_topic, b"online", True)
        presence.board(b.info_topic, info(b), True)
    assert [e["event"] for e in logs] == ["availability.conflict"]


def test_conflicts_are_logged_three_at_a_time_then_held() -> None:
    """A flood of claims on many cameras logs the first three problems (throttled, with the
    count held back), not one line per camera."""
    cameras = tuple(f"cam{i}" for i in range(5))
    presence = InstancePresence(me("a", cameras))
    b = me("b", cameras)
    with capture_logs() as logs:
        presence.board(b.info_topic, info(b), True)
        presence.board(b.status_topic, b"online", True)
    logged = [e for e in logs if e["event"] == "availability.conflict"]
    assert [(e["problem"][:14], e["suppressed"]) for e in logged] == [
        ("camera 'cam0' ", 0), ("camera 'cam1' ", 0), ("camera 'cam2' ", 0),
    ]  # fmt: skip


def test_a_full_board_says_how_many_it_keeps() -> None:
    board = InstanceBoard(me("a", ("yard",)), max_claims=1)
    with capture_logs() as logs:
        for other in (me("b", ("yard",)), me("c", ("yard",))):
            board(other.info_topic, info(other), True)
    full = [e for e in logs if e["event"] == "availability.too_many_claims"]
    assert [(e["kept"], e["suppressed"]) for e in full] == [(1, 0)]


def test_an_undecodable_availability_is_not_online_and_raises_nothing() -> None:
    board = InstanceBoard(me("a", ("yard",)))
    b = me("b", ("yard",))
    board(b.info_topic, info(b), True)
    board(b.status_topic, b"\xffonline", True)  # on paho's thread: must not raise
    assert board.live_claims() == []


def test_the_ping_responder_answers_any_nonce_from_one_byte_and_again_a_second_later() -> None:
    sent: list[bytes] = []
    responder = PingResponder(me("a"), lambda topic, payload: sent.append(payload))
    for i in range(12):
        responder(responder.topic, bytes([65 + i]), False)
    assert sent == [bytes([65 + i]) for i in range(10)]
    time.sleep(1.05)  # the limit is per second: a later check is answered (later is fine)
    responder(responder.topic, b"again", False)
    assert sent[-1] == b"again"


def test_an_instance_name_that_is_no_topic_level_is_named() -> None:
    with pytest.raises(ValueError, match=r"^instance name 'a/b' cannot be an MQTT topic level"):
        me("a/b")
