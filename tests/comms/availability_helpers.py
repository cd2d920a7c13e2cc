"""The instance identity both availability test modules start from (one definition)."""

from __future__ import annotations

from har_daemon.comms.availability import InstanceIdentity
from har_daemon.comms.topics import Topics

T = Topics("site")


def me(
    instance: str = "a", cameras: tuple[str, ...] = ("lobby",), shared: bool = True
) -> InstanceIdentity:
    return InstanceIdentity(
        topics=T,
        instance=instance,
        client_id=f"client-{instance}",
        cameras=cameras,
        shared=shared,
        version="0.1.0",
        started_at=1_800_000_000.0,
        host="host-" + instance,
    )
