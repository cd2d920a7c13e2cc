"""Operator commands over MQTT: enable or disable cameras (pure parsing and dispatch, no I/O).

Topics (under the daemon's prefix):
- `<prefix>/<camera>/set`: one camera; `<prefix>/set`: every configured camera.
- Payload: exactly `{"enabled": true}` or `{"enabled": false}` (UTF-8 JSON, at most
  `MAX_PAYLOAD` bytes). Anything else is rejected with a short reason in the log, never applied.
The daemon answers with the retained state on `<prefix>/<camera>/enabled` (same JSON shape,
`messages.enabled_payload`), which is what a Home Assistant switch reads.

`ControlHandler` plugs into `MqttClient.subscribe` (it is a `(topic, payload, retained)`
callback) and calls `apply(camera, enabled)` for each camera a valid command names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from har_daemon.comms.topics import Topics
from har_daemon.core.logs import LogThrottle, get_logger

MAX_PAYLOAD = 4096
"""Bytes; a command is about 20. Bigger payloads are refused before decoding."""

ALL_CAMERAS: Literal["*"] = "*"
_PREVIEW = 64
LOG_EVERY_S = 60.0
LOG_BURST = 10
"""Lines of one kind (applied, rejected, ...) logged per `LOG_EVERY_S`; the rest are counted."""


class ControlError(ValueError):
    """A control payload that is not a valid command; `str(err)` is the short reason."""


@dataclass(frozen=True)
class ControlCommand:
    """What a valid `set` payload asks for."""

    enabled: bool


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of duplicate keys; `{"enabled": true, "enabled": false}` is ambiguous.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ControlError(f"duplicate key {_short(key)}")
        seen[key] = value
    return seen


def _short(value: Any, limit: int = 32) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_control(payload: bytes) -> ControlCommand:
    """The command in `payload`, or ControlError saying why it is not one.

    Strict on purpose: a boolean must be a JSON boolean (not "yes", "ON" or 1) and no other key
    may appear, so a typo ("enable") is reported instead of silently doing nothing.
    """
    data = bytes(payload)
    if not data:
        raise ControlError("empty payload")
    if len(data) > MAX_PAYLOAD:
        raise ControlError(f"payload too large ({len(data)} bytes > {MAX_PAYLOAD})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ControlError("not UTF-8") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise ControlError(f"not JSON ({err.msg} at char {err.pos})") from None
    except RecursionError:
        raise ControlError("not JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise ControlError(f"not a JSON object (got {type(value).__name__})")
    unknown = sorted(set(value) - {"enabled"})
    if unknown:
        names = ", ".join(_short(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ControlError(f"unknown key(s) {names}; expected only 'enabled'")
    if "enabled" not in value:
        raise ControlError("missing key 'enabled'")
    enabled = value["enabled"]
    if not isinstance(enabled, bool):
        raise ControlError(f"'enabled' must be true or false, not {_short(enabled)}")
    return ControlCommand(enabled=enabled)


def camera_of_set_topic(
    topic: str, prefix: str, cameras: Collection[str]
) -> str | Literal["*"] | None:
    """Which camera(s) the command topic `topic` addresses.

    `"*"` for `<prefix>/set` (every camera), a camera's name for `<prefix>/<camera>/set` when
    that camera is in `cameras` (exact, case-sensitive, as in its other topics), else None.
    """
    topics = Topics(prefix)
    if topic == topics.set_all:
        return ALL_CAMERAS
    camera = topics.camera_of(topic, "set")
    return camera if camera in cameras else None


def _preview(payload: bytes) -> str:
    text = payload[:_PREVIEW].decode("utf-8", "backslashreplace")
    return text + "..." if len(payload) > _PREVIEW else text


class ControlHandler:
    """The `(topic, payload, retained)` callback for the `set` topics.

    Each valid command calls `apply(camera, enabled)` once per camera it addresses (in
    configuration order for `<prefix>/set`) and logs `control.applied`; an invalid one, or one
    for an unknown camera, logs `control.rejected` with the topic, the reason and the payload's
    size and first bytes (never more). An exception from `apply` is logged
    (`control.apply_failed`) and does not stop the other cameras of an all-cameras command.

    Retained commands are ignored (`control.retained_ignored`): commands are events, state is
    the daemon's retained `<prefix>/<camera>/enabled`. A command published with retain=true
    stays on the broker, and the broker replays it after every (re)subscription, i.e. after
    every daemon restart and broker reconnect. Applying it each time would silently undo
    whatever was changed since (another command, the other topic, a restart with a different
    config) at some random later moment. Live messages arrive with retained=false even when
    published with retain=true, so such a command still works once, when it is sent. To clear
    one from the broker, publish an empty retained payload to the same topic.

    Anyone allowed to publish on the broker can send these, so every line is rate-limited per
    kind (`LOG_BURST` per `LOG_EVERY_S`); the next line let through carries `suppressed`, the
    count of lines held back since the last one.

    Called on paho's network thread: `apply` should only record the wish (e.g. set a flag the
    camera's worker reads), not open or close streams itself.
    """

    def __init__(
        self,
        topics: Topics,
        cameras: Iterable[str],
        apply: Callable[[str, bool], None],
        logger: Any = None,
        throttle: LogThrottle | None = None,
    ) -> None:
        self.topics = topics
        self.cameras = list(dict.fromkeys(cameras))
        self.apply = apply
        self.log = logger if logger is not None else get_logger(__name__)
        self.throttle = throttle or LogThrottle(LOG_EVERY_S, burst=LOG_BURST)

    def subscriptions(self) -> list[str]:
        """The topic filters to subscribe this handler to: `<prefix>/set`, `<prefix>/+/set`.

        The wildcard (rather than one filter per camera) lets a command for a misspelt camera
        be logged as rejected instead of vanishing unseen.
        """
        return [self.topics.set_all, self.topics.set("+")]

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        """Handle one message on a `set` topic (see the class docstring)."""
        target = camera_of_set_topic(topic, self.topics.prefix, self.cameras)
        if not payload:
            # How MQTT clears a retained message: every subscriber sees it; not a command.
            self._log("debug", "control.cleared", topic=topic)
            return
        if retained:
            self._log(
                "warning",
                "control.retained_ignored",
                topic=topic,
                payload_bytes=len(payload),
                hint="commands are not retained; publish an empty retained message to clear it",
            )
            return
        if target is None:
            self._reject(topic, payload, "unknown camera")
            return
        try:
            command = parse_control(payload)
        except ControlError as err:
            self._reject(topic, payload, str(err))
            return
        cameras = self.cameras if target == ALL_CAMERAS else [target]
        applied: list[str] = []
        for camera in cameras:
            try:
                self.apply(camera, command.enabled)
            except Exception:
                self._log("exception", "control.apply_failed", topic=topic, camera=camera)
            else:
                applied.append(camera)
        self._log("info", "control.applied", topic=topic, enabled=command.enabled, cameras=applied)

    def _reject(self, topic: str, payload: bytes, reason: str) -> None:
        self._log(
            "warning",
            "control.rejected",
            topic=topic,
            reason=reason,
            payload_bytes=len(payload),
            payload_preview=_preview(payload),
        )

    def _log(self, level: str, event: str, **fields: Any) -> None:
        held = self.throttle.allow(event)
        if held is None:
            return
        if held:
            fields["suppressed"] = held
        getattr(self.log, level)(event, **fields)
