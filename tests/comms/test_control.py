"""Control commands: payload parsing, topic matching and the handler (pure logic, no broker).

The handler against a real broker is in tests/test_mqtt_publisher.py.
"""

from __future__ import annotations

import re

import pytest

from har_daemon.comms.control import (
    LOG_BURST,
    LOG_EVERY_S,
    MAX_PAYLOAD,
    ControlCommand,
    ControlError,
    ControlHandler,
    camera_of_set_topic,
    parse_control,
)
from har_daemon.comms.topics import Topics
from har_daemon.core.logs import LogThrottle
from tests.infra.logs import capture_logs

CAMERAS = ["lobby", "yard", "set"]


@pytest.mark.parametrize(
    ("payload", "enabled"),
    [
        (b'{"enabled": true}', True),
        (b'{"enabled":false}', False),
        (b' \n{ "enabled" : false }\r\n', False),
        (b'{\t"enabled":\ttrue}', True),
    ],
)
def test_parse_accepts_exactly_an_enabled_boolean(payload: bytes, enabled: bool) -> None:
    assert parse_control(payload) == ControlCommand(enabled=enabled)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty payload"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"\xef\xbb\xbf" + b'{"enabled": true}', "not JSON"),  # UTF-8 BOM
        (b"ON", "not JSON"),
        (b"   ", "not JSON"),
        (b'{"enabled": true', "not JSON"),
        (b"true", "not a JSON object (got bool)"),
        (b'[{"enabled": true}]', "not a JSON object (got list)"),
        (b'"enabled"', "not a JSON object (got str)"),
        (b"null", "not a JSON object (got NoneType)"),
        (b"{}", "missing key 'enabled'"),
        (b'{"enable": true}', "unknown key(s) 'enable'; expected only 'enabled'"),
        (b'{"enabled": true, "camera": "lobby"}', "unknown key(s) 'camera'"),
        (b'{"enabled": "yes"}', "'enabled' must be true or false, not 'yes'"),
        (b'{"enabled": "true"}', "'enabled' must be true or false, not 'true'"),
        (b'{"enabled": 1}', "'enabled' must be true or false, not 1"),
        (b'{"enabled": 0}', "'enabled' must be true or false, not 0"),
        (b'{"enabled": null}', "'enabled' must be true or false, not None"),
        (b'{"enabled": NaN}', "'enabled' must be true or false, not nan"),
        (b'{"enabled": true, "enabled": false}', "duplicate key 'enabled'"),
        (b"[" * 2000 + b"]" * 2000, "not JSON (nested too deeply)"),
    ],
)
def test_parse_rejects_with_a_short_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ControlError, match="^" + re.escape(reason)):
        parse_control(payload)


def test_parse_size_limit_is_exact() -> None:
    padded = b'{"enabled": true}'
    at_limit = padded + b" " * (MAX_PAYLOAD - len(padded))
    assert parse_control(at_limit).enabled is True
    with pytest.raises(ControlError, match=rf"payload too large \({MAX_PAYLOAD + 1} bytes > 4096"):
        parse_control(at_limit + b" ")
    # A huge payload is refused on its size alone, and the reason stays short.
    with pytest.raises(ControlError) as err:
        parse_control(b"x" * 10_000_000)
    assert len(str(err.value)) < 80


def test_reasons_stay_short_for_long_keys_and_values() -> None:
    many = "{" + ",".join(f'"k{i}": 1' for i in range(50)) + "}"
    long_value = '{"enabled": "' + "y" * 3000 + '"}'
    long_key = '{"' + "k" * 3000 + '": true}'
    for payload in (many, long_value, long_key):
        with pytest.raises(ControlError) as err:
            parse_control(payload.encode())
        assert len(str(err.value)) < 200


def test_control_error_is_a_value_error() -> None:
    assert issubclass(ControlError, ValueError)
    with pytest.raises(AttributeError):
        ControlCommand(True).enabled = False  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("site/har/set", "*"),
        ("site/har/lobby/set", "lobby"),
        ("site/har/set/set", "set"),  # a camera may be called "set"
        ("site/har/garage/set", None),  # not configured
        ("site/har/Lobby/set", None),  # topics are case-sensitive
        ("site/har/lobby/x/set", None),
        ("site/har//set", None),
        ("site/har/lobby/enabled", None),
        ("site/har/lobby/set/x", None),
        ("site/har/lobby", None),
        ("other/lobby/set", None),
        ("site/har2/lobby/set", None),
        ("site/set", None),
        ("site/har/set ", None),
    ],
)
def test_camera_of_set_topic(topic: str, expected: str | None) -> None:
    assert camera_of_set_topic(topic, "site/har", CAMERAS) == expected
    assert camera_of_set_topic(topic, "/site/har/", CAMERAS) == expected  # prefix as in Topics


class Recorder:
    """A real `apply` function: records what it was asked, optionally failing for one camera."""

    def __init__(self, fail_for: str | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.fail_for = fail_for

    def __call__(self, camera: str, enabled: bool) -> None:
        if camera == self.fail_for:
            raise RuntimeError(f"cannot switch {camera}")
        self.calls.append((camera, enabled))


def _handler(apply: Recorder) -> ControlHandler:
    return ControlHandler(Topics("har"), ["lobby", "yard", "lobby"], apply)


def test_handler_subscribes_to_both_set_topics() -> None:
    handler = _handler(Recorder())
    assert handler.subscriptions() == ["har/set", "har/+/set"]
    assert handler.cameras == ["lobby", "yard"]  # duplicates dropped, order kept


def test_handler_applies_one_camera_and_all_cameras() -> None:
    apply = Recorder()
    handler = _handler(apply)
    with capture_logs() as logs:
        handler("har/yard/set", b'{"enabled": false}', False)
        handler("har/set", b'{"enabled": true}', False)
    assert apply.calls == [("yard", False), ("lobby", True), ("yard", True)]
    applied = [e for e in logs if e["event"] == "control.applied"]
    assert [(e["topic"], e["enabled"], e["cameras"]) for e in applied] == [
        ("har/yard/set", False, ["yard"]),
        ("har/set", True, ["lobby", "yard"]),
    ]
    assert not [e for e in logs if e["event"] == "control.rejected"]


def test_handler_rejects_garbage_and_unknown_cameras_without_applying() -> None:
    apply = Recorder()
    handler = _handler(apply)
    big = b'{"enabled": "' + b"A" * 100_000 + b'"}'
    with capture_logs() as logs:
        handler("har/lobby/set", b"yes", False)
        handler("har/lobby/set", b'{"enabled": 1}', False)
        handler("har/garage/set", b'{"enabled": false}', False)
        handler("har/lobby/set", big, False)
        handler("har/lobby/set", b"", False)
    assert apply.calls == []
    rejected = [e for e in logs if e["event"] == "control.rejected"]
    assert [(e["topic"], e["reason"]) for e in rejected] == [
        ("har/lobby/set", "not JSON (Expecting value at char 0)"),
        ("har/lobby/set", "'enabled' must be true or false, not 1"),
        ("har/garage/set", "unknown camera"),
        ("har/lobby/set", f"payload too large ({len(big)} bytes > {MAX_PAYLOAD})"),
    ]
    # An empty payload is how MQTT clears a retained message: not a command, not an error.
    assert [e["topic"] for e in logs if e["event"] == "control.cleared"] == ["har/lobby/set"]
    assert all(e["log_level"] == "warning" for e in rejected)
    # Never the whole payload in the log: its size and a short preview only.
    huge = rejected[3]
    assert huge["payload_bytes"] == len(big)
    assert len(huge["payload_preview"]) <= 70 and huge["payload_preview"].endswith("...")
    assert len(repr(logs)) < 5000


def test_handler_ignores_retained_commands() -> None:
    apply = Recorder()
    handler = _handler(apply)
    with capture_logs() as logs:
        handler("har/lobby/set", b'{"enabled": false}', True)
        handler("har/set", b'{"enabled": false}', True)
        handler("har/lobby/set", b"garbage", True)
    assert apply.calls == []
    ignored = [e for e in logs if e["event"] == "control.retained_ignored"]
    assert [e["topic"] for e in ignored] == ["har/lobby/set", "har/set", "har/lobby/set"]
    assert not [e for e in logs if e["event"] in ("control.applied", "control.rejected")]


def test_apply_failure_for_one_camera_does_not_stop_the_others() -> None:
    apply = Recorder(fail_for="lobby")
    handler = _handler(apply)
    with capture_logs() as logs:
        handler("har/set", b'{"enabled": false}', False)
    assert apply.calls == [("yard", False)]
    failed = [e for e in logs if e["event"] == "control.apply_failed"]
    assert [e["camera"] for e in failed] == ["lobby"]
    applied = next(e for e in logs if e["event"] == "control.applied")
    assert applied["cameras"] == ["yard"]


def test_handler_uses_the_given_logger() -> None:
    events: list[tuple[str, dict]] = []

    class ListLogger:
        def warning(self, event: str, **kw: object) -> None:
            events.append((event, kw))

        info = exception = warning

    handler = ControlHandler(Topics("har"), ["lobby"], Recorder(), logger=ListLogger())
    handler("har/lobby/set", b"{}", False)
    assert events == [
        (
            "control.rejected",
            {
                "topic": "har/lobby/set",
                "reason": "missing key 'enabled'",
                "payload_bytes": 2,
                "payload_preview": "{}",
            },
        )
    ]


def test_a_flood_of_junk_gives_a_burst_of_lines_and_the_count_of_the_rest() -> None:
    now = [0.0]
    apply = Recorder()
    handler = ControlHandler(
        Topics("har"), ["lobby"], apply, throttle=LogThrottle(60.0, lambda: now[0], burst=10)
    )
    with capture_logs() as logs:
        for i in range(20_000):
            handler("har/lobby/set" if i % 2 else "har/nobody/set", b"junk", False)
        handler("har/lobby/set", b'{"enabled": false}', False)  # an operator's is still logged
        now[0] = 60.0
        handler("har/lobby/set", b"junk", False)
    rejected = [e for e in logs if e["event"] == "control.rejected"]
    assert len(rejected) == 11
    assert "suppressed" not in rejected[0] and rejected[-1]["suppressed"] == 20_000 - 10
    assert [e["event"] for e in logs].count("control.applied") == 1
    assert apply.calls == [("lobby", False)]


def test_reason_shortens_a_value_past_32_characters_to_exactly_32() -> None:
    # repr of 30 letters is 32 characters: shown whole; one more letter and it is cut to 29 + "...".
    with pytest.raises(ControlError) as whole:
        parse_control(b'{"enabled": "' + b"y" * 30 + b'"}')
    assert str(whole.value) == "'enabled' must be true or false, not '" + "y" * 30 + "'"
    with pytest.raises(ControlError) as cut:
        parse_control(b'{"enabled": "' + b"y" * 31 + b'"}')
    assert str(cut.value) == "'enabled' must be true or false, not '" + "y" * 28 + "..."


def test_unknown_keys_named_up_to_five_then_an_ellipsis() -> None:
    five = b'{"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}'
    with pytest.raises(ControlError) as err:
        parse_control(five)
    assert str(err.value) == "unknown key(s) 'a', 'b', 'c', 'd', 'e'; expected only 'enabled'"
    with pytest.raises(ControlError) as err:
        parse_control(five[:-1] + b', "f": 1}')
    assert str(err.value) == (
        "unknown key(s) 'a', 'b', 'c', 'd', 'e', ...; expected only 'enabled'"
    )


def test_preview_escapes_bytes_that_are_not_utf8_and_marks_only_a_longer_payload() -> None:
    apply = Recorder()
    handler = _handler(apply)
    exact = b"\xff" + b"x" * 63  # exactly the 64 bytes a preview shows
    with capture_logs() as logs:
        handler("har/lobby/set", exact, False)
        handler("har/lobby/set", exact + b"x", False)
    previews = [e["payload_preview"] for e in logs if e["event"] == "control.rejected"]
    assert previews == ["\\xff" + "x" * 63, "\\xff" + "x" * 63 + "..."]


def test_a_retained_command_is_logged_with_its_size_and_how_to_clear_it() -> None:
    with capture_logs() as logs:
        _handler(Recorder())("har/lobby/set", b'{"enabled": false}', True)
    (ignored,) = logs
    assert ignored["payload_bytes"] == 18
    assert ignored["hint"] == (
        "commands are not retained; publish an empty retained message to clear it"
    )


def test_apply_failure_is_logged_with_its_topic() -> None:
    with capture_logs() as logs:
        _handler(Recorder(fail_for="yard"))("har/yard/set", b'{"enabled": true}', False)
    failed = [e for e in logs if e["event"] == "control.apply_failed"]
    assert [(e["topic"], e["camera"]) for e in failed] == [("har/yard/set", "yard")]


def test_default_throttle_lets_a_burst_through_per_minute() -> None:
    throttle = _handler(Recorder()).throttle
    assert (throttle.every_s, throttle.burst) == (LOG_EVERY_S, LOG_BURST) == (60.0, 10)
