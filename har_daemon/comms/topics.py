"""Topic names and the rules they follow: the addressing half of the contract (pure, no I/O).

Integrators subscribe to these names, so every topic the daemon uses is spelt here once, and so
is every check of a topic or a topic filter. Camera names are checked by the config's slug
pattern; `check_topic_level` is the last line of defence for anything that becomes one level.
"""

from __future__ import annotations

import re
from collections.abc import Callable

ONLINE = "online"
"""Availability payload of a live daemon or camera (retained)."""
OFFLINE = "offline"
"""Availability payload of a daemon that is gone (its Last Will) or of a camera that is down."""
STOPPED = "stopped"
"""Availability payload of a daemon that stopped cleanly (published by itself, not the Will)."""
AVAILABILITY_VALUES = (ONLINE, STOPPED, OFFLINE)

INSTANCES = "instances"
"""The level under the prefix that holds one sub-tree per daemon instance."""

MessageCallback = Callable[[str, bytes, bool], None]
"""`callback(topic, payload, retained)` for a subscription; runs on the MQTT network thread."""

_BAD_TOPIC_LEVEL = re.compile(r"[/+#\s\x00]")


def availability(online: bool) -> str:
    return ONLINE if online else OFFLINE


def check_topic_level(name: str, what: str = "camera name") -> str:
    """`name` if it can be one MQTT topic level, else ValueError naming the problem."""
    if not name or _BAD_TOPIC_LEVEL.search(name):
        raise ValueError(
            f"{what} {name!r} cannot be an MQTT topic level (empty, or contains '/', "
            "'+', '#' or whitespace)"
        )
    return name


def check_topic_name(topic: str) -> str:
    """`topic` if it can be published to (a filter without wildcards), else ValueError."""
    check_topic_filter(topic)
    if "+" in topic or "#" in topic:
        raise ValueError(f"wildcard in topic name {topic!r}")
    return topic


def check_topic_filter(topic_filter: str) -> str:
    """`topic_filter` if it is a valid MQTT filter, else ValueError (said at `subscribe()`, not
    at some later reconnect): non-empty, no NUL, '+' and '#' only as whole levels, '#' last."""
    if not topic_filter:
        raise ValueError("empty topic filter")
    if "\0" in topic_filter:
        raise ValueError(f"NUL character in topic filter {topic_filter!r}")
    if len(topic_filter.encode()) > 65535:
        raise ValueError("topic filter longer than 65535 bytes")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if ("+" in level or "#" in level) and level not in ("+", "#"):
            raise ValueError(f"wildcard inside a topic level in {topic_filter!r}")
        if level == "#" and i != len(levels) - 1:
            raise ValueError(f"'#' not at the end of {topic_filter!r}")
    return topic_filter


def shared(group: str, topic_filter: str) -> str:
    """`$share/<group>/<filter>` (MQTT 5 shared subscription): the broker hands each message to
    one member of the group, so several consumers split the load."""
    check_topic_level(group, "share group")
    return f"$share/{group}/{check_topic_filter(topic_filter)}"


class Topics:
    """All topics under one prefix, so several instances can share a broker."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.strip("/")

    def _camera(self, camera: str, leaf: str) -> str:
        return f"{self.prefix}/{camera}/{leaf}"

    @property
    def status(self) -> str:
        """Retained availability of the prefix's only daemon (its Last Will's topic), when the
        daemon does not share the prefix (`[mqtt] shared_prefix = false`)."""
        return f"{self.prefix}/status"

    def instance_status(self, instance: str) -> str:
        """Retained availability of one of several daemons sharing the prefix (its Will)."""
        return f"{self.prefix}/{INSTANCES}/{instance}/status"

    def instance_info(self, instance: str) -> str:
        """Retained: which cameras an instance owns and where its availability is
        (`payloads.instance_payload`); published by every instance, shared prefix or not."""
        return f"{self.prefix}/{INSTANCES}/{instance}/info"

    def instance_ping(self, instance: str) -> str:
        """Liveness check of an instance: it answers what arrives here on `instance_pong`."""
        return f"{self.prefix}/{INSTANCES}/{instance}/ping"

    def instance_pong(self, instance: str) -> str:
        return f"{self.prefix}/{INSTANCES}/{instance}/pong"

    def instance_conflicts(self, instance: str) -> str:
        """Retained: the conflicting claims an instance sees (`{"conflicts": [...]}`)."""
        return f"{self.prefix}/{INSTANCES}/{instance}/conflicts"

    def is_instance_info(self, topic: str) -> bool:
        """Whether `topic` is some instance's `instance_info` topic."""
        head, _, tail = self.instance_info("\0").partition("\0")
        level = topic[len(head) : len(topic) - len(tail)]
        return topic.startswith(head) and topic.endswith(tail) and bool(level) and "/" not in level

    @property
    def instances_filters(self) -> list[str]:
        """Every instance's info and availability topic (the prefix's too)."""
        return [self.instance_info("+"), self.instance_status("+"), self.status]

    def camera_status(self, camera: str) -> str:
        return self._camera(camera, "status")

    def events(self, camera: str) -> str:
        return self._camera(camera, "events")

    def activity(self, camera: str) -> str:
        return self._camera(camera, "activity")

    def recogniser_activity(self, camera: str, activity: str) -> str:
        """Retained state of a recogniser besides the classifier (the fall's), same payload as
        `activity`: `<prefix>/<camera>/activity/<activity>`."""
        return self._camera(camera, f"activity/{check_topic_level(activity, 'activity')}")

    def scores(self, camera: str) -> str:
        return self._camera(camera, "scores")

    def set(self, camera: str) -> str:
        """Commands for one camera (`{"enabled": false}`); `set("+")` is the filter for all."""
        return self._camera(camera, "set")

    @property
    def set_all(self) -> str:
        """Commands for every camera at once."""
        return f"{self.prefix}/set"

    def enabled(self, camera: str) -> str:
        """Retained: whether the camera is enabled (`payloads.enabled_payload`)."""
        return self._camera(camera, "enabled")

    def snapshot(self, camera: str) -> str:
        return self._camera(camera, "snapshot")

    @property
    def stats(self) -> str:
        return f"{self.prefix}/stats"

    def camera_of(self, topic: str, leaf: str) -> str | None:
        """The camera level of `<prefix>/<camera>/<leaf>`, or None when `topic` is not one."""
        head, tail = f"{self.prefix}/", f"/{leaf}"
        if not (topic.startswith(head) and topic.endswith(tail)):
            return None
        camera = topic[len(head) : -len(tail)]
        return camera if camera and "/" not in camera else None
