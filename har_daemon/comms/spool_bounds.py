"""The spool's bounds: which rows go when it is over `max_rows` or `max_bytes`, and how the
drops are summed up for the log.

Oldest "update" messages go first, then the oldest events: an update only refreshes what a
later message will say again, an event may be the only record of what happened.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, Literal

from har_daemon.comms.spool_file import Kind

DropReason = Literal["max_rows", "max_bytes", "max_age"]
DROP_REASONS: tuple[DropReason, ...] = ("max_rows", "max_bytes", "max_age")
DROP_ORDER: tuple[Kind, ...] = ("update", "event")

DroppedRow = tuple[int, str, str | None, int]
"""A dropped row as the bounds see it: id, kind, camera, size."""
Drop = tuple[DropReason, DroppedRow]

_IDS_LISTED = 20


def enforce_bounds(
    conn: sqlite3.Connection, rows: int, nbytes: int, max_rows: int, max_bytes: int
) -> tuple[list[Drop], int, int]:
    """Delete rows in `DROP_ORDER`, oldest first, until `rows` and `nbytes` are within bounds
    (inside the caller's transaction). Returns the drops and the new row and byte counts."""
    drops: list[Drop] = []
    for kind in DROP_ORDER:
        if rows <= max_rows and nbytes <= max_bytes:
            break
        cur = conn.execute(
            "SELECT id, kind, camera, size FROM outbox WHERE kind = ? ORDER BY id", (kind,)
        )
        doomed = []
        while rows > max_rows or nbytes > max_bytes:
            row = cur.fetchone()
            if row is None:
                break
            drops.append(("max_rows" if rows > max_rows else "max_bytes", row))
            doomed.append((row[0],))
            rows -= 1
            nbytes -= row[3]
        cur.close()
        conn.executemany("DELETE FROM outbox WHERE id = ?", doomed)
    return drops, rows, nbytes


def summarize_drops(drops: Iterable[Drop]) -> dict[str, dict[str, Any]]:
    """Per reason, in order of first appearance: the fields of one `spool.dropped` line (count,
    events, updates, cameras, and the ids, as a range when there are over 20)."""
    by_reason: dict[str, list[DroppedRow]] = {}
    for reason, row in drops:
        by_reason.setdefault(reason, []).append(row)
    summaries = {}
    for reason, rows in by_reason.items():
        ids = [r[0] for r in rows]
        summaries[reason] = {
            "count": len(rows),
            "events": sum(1 for r in rows if r[1] == "event"),
            "updates": sum(1 for r in rows if r[1] == "update"),
            "cameras": sorted({r[2] for r in rows if r[2] is not None}),
            "ids": ids if len(ids) <= _IDS_LISTED else f"{ids[0]}..{ids[-1]}",
        }
    return summaries
