"""The topic and payload contract integrators script against."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from har_daemon.comms.payloads import (
    activity_payload,
    enabled_payload,
    encode_json,
    event_payload,
    instance_payload,
    iso_utc,
    scores_payload,
)
from har_daemon.comms.topics import Topics
from har_daemon.runtime.events import ActivityState, Signal, Transition

T0 = datetime(2026, 11, 18, 9, 46, 40, 250000, tzinfo=UTC).timestamp()
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _transition(kind: str, **kw: object) -> Transition:
    fields: dict = {
        "kind": kind,
        "activity": "fight",
        "occurrence_id": "6f1c1f4e-0000-4000-8000-000000000001",
        "confidence": 0.91234,
        "peak_confidence": 0.95,
        "started_at": T0,
        "at": T0 + 4.25,
        "ended_at": None,
        "duration_s": 0.0,
    }
    fields.update(kw)
    return Transition(**fields)


def test_topics_under_prefix() -> None:
    t = Topics("site/har/")
    assert t.status == "site/har/status"
    assert t.camera_status("lobby") == "site/har/lobby/status"
    assert t.events("lobby") == "site/har/lobby/events"
    assert t.activity("lobby") == "site/har/lobby/activity"
    assert t.scores("lobby") == "site/har/lobby/scores"
    assert t.set("lobby") == "site/har/lobby/set"
    assert t.set("+") == "site/har/+/set"
    assert t.set_all == "site/har/set"
    assert t.enabled("lobby") == "site/har/lobby/enabled"
    assert t.snapshot("lobby") == "site/har/lobby/snapshot"
    assert t.stats == "site/har/stats"


def test_enabled_payload_is_exactly_the_switch_state() -> None:
    # Home Assistant switch templates read value_json.enabled: a JSON boolean, nothing else.
    assert enabled_payload(True) == {"enabled": True}
    assert enabled_payload(False) == {"enabled": False}
    assert json.dumps(enabled_payload(False), separators=(",", ":")) == '{"enabled":false}'
    assert enabled_payload(1)["enabled"] is True  # type: ignore[arg-type]  # JSON true, not 1


def test_iso_utc_has_milliseconds_and_z() -> None:
    assert iso_utc(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(T0) == "2026-11-18T09:46:40.250Z"
    assert iso_utc(None) is None


def test_start_event_schema() -> None:
    p = event_payload(_transition("start"), "lobby", "fight-convlstm", 7)
    assert set(p) == {
        "id", "type", "camera", "activity", "confidence", "peak_confidence", "started_at", "at",
        "model", "seq",
    }  # fmt: skip
    assert p["type"] == "start"
    assert p["id"] == "6f1c1f4e-0000-4000-8000-000000000001"
    assert p["confidence"] == 0.9123
    assert p["seq"] == 7
    assert ISO_MS.match(p["started_at"])
    assert "ended_at" not in p and "duration_s" not in p


def test_a_fused_fight_says_which_signal_raised_it() -> None:
    tr = _transition("start", signal=Signal("pose", 0.93456, 0.12345, 3))
    p = event_payload(tr, "lobby", "m", 1)
    assert p["signal"] == "pose"
    assert (p["appearance_score"], p["pose_score"], p["reliable_people"]) == (0.9346, 0.1235, 3)
    unseen = event_payload(
        _transition("start", signal=Signal("appearance", 0.8, None, 0)), "l", "m", 2
    )
    assert unseen["signal"] == "appearance" and unseen["pose_score"] is None
    assert json.loads(json.dumps(p)) == p


def test_end_event_carries_end_time_and_duration() -> None:
    tr = _transition(
        "end", ended_at=T0 + 10.5, duration_s=10.5, reason="below_exit", confidence=0.2
    )
    p = event_payload(tr, "lobby", "m", 9)
    assert p["type"] == "end"
    assert ISO_MS.match(p["ended_at"])
    assert p["ended_at"] == "2026-11-18T09:46:50.750Z"
    assert p["duration_s"] == 10.5
    assert p["reason"] == "below_exit"


def test_activity_state_payload() -> None:
    state = ActivityState("fight", 0.876543, T0 - 0.25, True, "x", "lobby")
    p = activity_payload(state, T0 + 0.75)
    assert p == {
        "activity": "fight",
        "confidence": 0.8765,
        "since": "2026-11-18T09:46:40.000Z",
        "updated_at": "2026-11-18T09:46:41.000Z",
    }
    idle = activity_payload(ActivityState(None, 0.0, None, False, None), T0)
    assert idle["activity"] is None and idle["since"] is None


def test_scores_payload_names_every_class() -> None:
    p = scores_payload(["a", "b"], [0.25, 0.75], [0.5, 0.5], 0.0)
    assert p["probabilities"] == {"a": 0.25, "b": 0.75}
    assert p["smoothed"] == {"a": 0.5, "b": 0.5}


def test_encode_json_is_compact_utf8_and_refuses_nan() -> None:
    assert (
        encode_json({"camera": "café", "seq": [1, 2]}) == '{"camera":"café","seq":[1,2]}'.encode()
    )
    assert encode_json(b'{"x":1}') == b'{"x":1}'
    assert encode_json(bytearray(b"ab")) == b"ab" and encode_json(memoryview(b"cd")) == b"cd"
    assert encode_json("é") == "é".encode()
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            encode_json({"confidence": bad})


def test_event_fields_are_rounded_to_their_published_precision() -> None:
    tr = _transition(
        "end",
        peak_confidence=0.956789,
        ended_at=T0 + 10.5,
        duration_s=10.123456,
        reason="below_exit",
        down_s=12.3456,
    )
    p = event_payload(tr, "lobby", "m", 3)
    assert p["peak_confidence"] == 0.9568
    assert p["at"] == "2026-11-18T09:46:44.500Z"
    assert p["duration_s"] == 10.123
    assert p["down_s"] == 12.3
    assert "down_s" not in event_payload(_transition("start"), "lobby", "m", 4)


def test_scores_payload_time_rounding_and_matching_lengths() -> None:
    p = scores_payload(["a", "b"], [0.123456, 0.876544], [0.333333, 0.666667], T0)
    assert p == {
        "at": "2026-11-18T09:46:40.250Z",
        "probabilities": {"a": 0.1235, "b": 0.8765},
        "smoothed": {"a": 0.3333, "b": 0.6667},
    }
    # A model whose output does not match its class list is an error, never a silent cut.
    with pytest.raises(ValueError):
        scores_payload(["a", "b"], [0.5, 0.5, 0.0], [0.5, 0.5], T0)
    with pytest.raises(ValueError):
        scores_payload(["a", "b"], [0.5, 0.5], [1.0], T0)


def test_instance_payload_schema() -> None:
    p = instance_payload(
        instance="site-a",
        client_id="har-site-a",
        host="box1",
        status_topic="har/instances/site-a/status",
        cameras=["yard", "lobby"],
        version="1.2.3",
        started_at=T0,
    )
    assert p == {
        "instance": "site-a",
        "client_id": "har-site-a",
        "host": "box1",
        "status_topic": "har/instances/site-a/status",
        "cameras": ["lobby", "yard"],
        "version": "1.2.3",
        "started_at": "2026-11-18T09:46:40.250Z",
    }
