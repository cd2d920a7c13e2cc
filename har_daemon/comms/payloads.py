"""Payloads: the message half of the contract integrators subscribe to (pure, no I/O).

Changing a key here breaks dashboards and automations in the field, so the schema lives in one
place and is pinned by tests; `encode_json` is the one way any of it becomes bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from har_daemon.runtime.events import ActivityState, Transition


def encode_json(payload: Mapping[str, Any] | bytes | str) -> bytes:
    """Compact UTF-8 JSON for a mapping; bytes and text pass through as they are.

    NaN and infinities are refused (ValueError): they are not JSON, and a dashboard's parser
    would drop the whole message.
    """
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def iso_utc(t: float | None) -> str | None:
    """ISO 8601, UTC, millisecond precision: `2026-11-24T10:46:00.123Z`."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    if tr.down_s is not None:  # a fall: "down for N s"
        payload["down_s"] = round(float(tr.down_s), 1)
    if tr.signal is not None:  # a fused fight: which signal spoke, and both scores
        payload.update(tr.signal.fields())
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


def instance_payload(
    *,
    instance: str,
    client_id: str,
    host: str,
    status_topic: str,
    cameras: list[str],
    version: str,
    started_at: float,
) -> dict[str, Any]:
    """`<prefix>/instances/<instance>/info` (retained): what one daemon instance owns.

    `status_topic` is where its availability lives (`<prefix>/status` or
    `<prefix>/instances/<instance>/status`); its cameras' topics are valid while that says
    "online". Another instance starting on the prefix reads this to refuse a duplicate camera.
    """
    return {
        "instance": instance,
        "client_id": client_id,
        "host": host,
        "status_topic": status_topic,
        "cameras": sorted(cameras),
        "version": version,
        "started_at": iso_utc(started_at),
    }
