"""Topic names and payloads: the contract integrators subscribe to (pure, no I/O).

Changing a key here breaks dashboards and automations in the field, so the schema lives in one
place and is pinned by tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from har_daemon.runtime.events import ActivityState, Transition


def iso_utc(t: float | None) -> str | None:
    """ISO 8601, UTC, millisecond precision: `2026-11-24T10:46:00.123Z`."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Topics:
    """All topics under one prefix, so several instances can share a broker."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.strip("/")

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    def camera_status(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/status"

    def events(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/events"

    def activity(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/activity"

    def scores(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/scores"

    def set(self, camera: str) -> str:
        """Commands for one camera (`{"enabled": false}`); `set("+")` is the filter for all."""
        return f"{self.prefix}/{camera}/set"

    @property
    def set_all(self) -> str:
        """Commands for every camera at once."""
        return f"{self.prefix}/set"

    def enabled(self, camera: str) -> str:
        """Retained: whether the camera is enabled (`enabled_payload`)."""
        return f"{self.prefix}/{camera}/enabled"

    def snapshot(self, camera: str) -> str:
        return f"{self.prefix}/{camera}/snapshot"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/stats"


def event_payload(tr: Transition, camera: str, model: str, seq: int) -> dict[str, Any]:
    """`<prefix>/<camera>/events`: one start/update/end of an activity occurrence.

    `id` is the occurrence's: the same for its start, updates and end. `seq` increases by one per
    message per camera, so subscribers can spot gaps and drop duplicates.
    """
    payload: dict[str, Any] = {
        "id": tr.occurrence_id,
        "type": tr.kind,
        "camera": camera,
        "activity": tr.activity,
        "confidence": round(float(tr.confidence), 4),
        "peak_confidence": round(float(tr.peak_confidence), 4),
        "started_at": iso_utc(tr.started_at),
        "at": iso_utc(tr.at),
        "model": model,
        "seq": seq,
    }
    if tr.kind == "end":
        payload["ended_at"] = iso_utc(tr.ended_at)
        payload["duration_s"] = round(float(tr.duration_s), 3)
        payload["reason"] = tr.reason
    return payload


def activity_payload(state: ActivityState, updated_at: float) -> dict[str, Any]:
    """`<prefix>/<camera>/activity` (retained): what the camera sees now."""
    return {
        "activity": state.activity,
        "confidence": round(float(state.confidence), 4),
        "since": iso_utc(state.since),
        "updated_at": iso_utc(updated_at),
    }


def scores_payload(classes: list[str], probs: Any, smoothed: Any, t: float) -> dict[str, Any]:
    """`<prefix>/<camera>/scores`: every inference's raw and smoothed probabilities."""
    return {
        "at": iso_utc(t),
        "probabilities": {c: round(float(p), 4) for c, p in zip(classes, probs, strict=True)},
        "smoothed": {c: round(float(p), 4) for c, p in zip(classes, smoothed, strict=True)},
    }


def enabled_payload(enabled: bool) -> dict[str, Any]:
    """`<prefix>/<camera>/enabled` (retained): `{"enabled": true|false}`.

    The state a Home Assistant switch reads (`value_json.enabled`); the same shape as the
    command accepted on `<prefix>/<camera>/set`, so one template serves both.
    """
    return {"enabled": bool(enabled)}
