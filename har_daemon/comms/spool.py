"""A durable outbox for events: SQLite (stdlib sqlite3) in WAL mode, in the state directory.

Every event is written here before it is handed to MQTT and deleted only when the broker has
acknowledged it (see `har_daemon.comms.outbox`), so an event survives a broker outage, a network
outage and a crash or SIGKILL of the daemon.

Durability (fsync policy): `journal_mode=WAL` with `synchronous=FULL`. Each `append` is one
transaction whose COMMIT fsyncs the WAL before `append` returns, so a row whose `append`
returned survives SIGKILL and also power loss (on storage that honours fsync). `ack` and drops
commit the same way (a lost ack would only cause a duplicate). When the file is created, its
directory is fsynced too, so the file itself survives power loss. Cost: one fsync per batch of
events (`append_many`; ~0.25 ms on an SSD, tens to hundreds of ms on an SD card).

Bounds: more than `max_rows` rows or `max_bytes` bytes (topic + payload) drops the oldest
"update" messages first, then the oldest events; rows older than `max_age_s` are dropped (on
open, before `pending` returns, and at most every `expire_interval_s` on `append`). Every drop
is logged (`spool.dropped`, warning) and counted in `dropped` by reason.

Corruption: a file SQLite cannot read (garbage, truncated, malformed pages, a foreign schema)
is moved aside to `<name>.corrupt-<UTC timestamp>` (its WAL with it), an error is logged
(`spool.corrupt`) and a fresh spool is created, so a damaged file never causes a crash loop.
Row ids are never reused (AUTOINCREMENT; a spool re-created while running continues above the
old ids), because a row id is the delivery context of a message that may still be in flight.

Thread-safe: one connection behind a lock (the event router appends, the MQTT delivery thread
acks). One process per file: two daemons sharing a spool would send every row twice.

The file itself (schema, opening checks, moving a corrupt file aside) is `spool_file`'s job,
which rows the bounds drop is `spool_bounds`'s; the bounds' defaults are [spool]'s.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_daemon.comms.spool_bounds import (
    DROP_REASONS,
    Drop,
    enforce_bounds,
    summarize_drops,
)
from har_daemon.comms.spool_file import (
    FILENAME,
    KINDS,
    SCHEMA_VERSION,
    CorruptSpool,
    Kind,
    SpoolError,
    is_corruption,
    move_aside,
    open_spool,
)
from har_daemon.config import SpoolConfig, default_of
from har_daemon.core.logs import get_logger

log = get_logger(__name__)

__all__ = [
    "DROP_REASONS",
    "FILENAME",
    "KINDS",
    "SCHEMA_VERSION",
    "Kind",
    "Spool",
    "SpoolError",
    "SpoolRow",
]

# A spool built without bounds (tests, tools) gets [spool]'s defaults.
_DEFAULT_MAX_ROWS: int = default_of(SpoolConfig, "max_rows")
_DEFAULT_MAX_BYTES: int = default_of(SpoolConfig, "max_bytes")
_DEFAULT_MAX_AGE_S: float = default_of(SpoolConfig, "max_age")


@dataclass(frozen=True)
class Message:
    """One message to store; `build(seq)` makes its payload (for its `seq` when numbered)."""

    topic: str
    build: Callable[[int], bytes]
    qos: int = 1
    retain: bool = False
    kind: Kind = "event"
    camera: str | None = None
    at_least: int = 1


@dataclass(frozen=True)
class SpoolRow:
    """One spooled message."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    camera: str | None
    created: float


class Spool:
    """A bounded, durable, thread-safe FIFO of messages waiting for a broker acknowledgement.

    `path` is the database file, or an existing directory (then `spool.sqlite3` in it).
    `clock` gives wall-clock seconds (row age survives restarts, so not monotonic time).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_rows: int = _DEFAULT_MAX_ROWS,
        max_bytes: int = _DEFAULT_MAX_BYTES,
        max_age_s: float = _DEFAULT_MAX_AGE_S,
        *,
        clock: Callable[[], float] = time.time,
        expire_interval_s: float = 10.0,
    ) -> None:
        if max_rows < 1 or max_bytes < 1 or max_age_s <= 0:
            raise ValueError("max_rows, max_bytes and max_age_s must be positive")
        p = Path(path).expanduser()
        self.path = p / FILENAME if p.is_dir() else p
        self.max_rows = int(max_rows)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.expire_interval_s = float(expire_interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._rows = 0
        self._bytes = 0
        self._high_id = 0  # highest id this object has seen; a re-created file continues above it
        self._next_expire = 0.0
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self.appended = 0
        self.acked = 0
        self.corrupt_moved_to: Path | None = None
        """Where a corrupt file was moved by the last recovery (None: never)."""
        with self._lock:
            self._open()
            self._expire_locked(force=True)
        log.info(
            "spool.opened",
            path=str(self.path),
            depth=self._rows,
            bytes=self._bytes,
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
            max_age_s=self.max_age_s,
            **self.durability,
        )

    @classmethod
    def from_config(cls, config: SpoolConfig) -> Spool:
        """From a `[spool]` section (`SpoolConfig`): `spool.sqlite3` in its `path` directory."""
        directory = Path(config.path).expanduser()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(directory / FILENAME, config.max_rows, config.max_bytes, config.max_age)

    # -- opening and recovery ---------------------------------------------------------------

    def _open(self) -> None:
        """Open (or create) the file; a corrupt one is moved aside and replaced, once."""
        try:
            self._connect()
        except CorruptSpool as err:
            self._move_aside(str(err))
            try:
                self._connect()
            except (CorruptSpool, sqlite3.Error) as err2:
                raise SpoolError(f"cannot create a fresh spool at {self.path}: {err2}") from err2

    def _connect(self) -> None:
        self._conn, self._rows, self._bytes, self._high_id = open_spool(self.path, self._high_id)

    def _move_aside(self, why: str) -> None:
        target = move_aside(self.path)
        self.corrupt_moved_to = target
        self._rows = self._bytes = 0
        log.error(
            "spool.corrupt",
            path=str(self.path),
            moved_to=str(target),
            error=why,
            action="moved the unreadable file aside (kept for inspection) and started an "
            "empty spool; events only in that file will not be sent",
        )

    def _recover_locked(self, err: BaseException) -> None:
        """Corruption found while running: move the file aside and continue with a fresh one."""
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        self._move_aside(str(err))
        self._open()

    def _run(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run `op` in a transaction (lock held); on corruption recover once and retry."""
        for attempt in (0, 1):
            conn = self._conn
            if conn is None:
                raise SpoolError("spool is closed")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = op(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result
            except sqlite3.DatabaseError as err:
                if attempt == 0 and is_corruption(err):
                    self._recover_locked(err)
                    continue
                raise
        raise AssertionError("unreachable")

    # -- the outbox ---------------------------------------------------------------------------

    def append(
        self,
        topic: str,
        payload: bytes,
        qos: int = 1,
        retain: bool = False,
        kind: Kind = "event",
        camera: str | None = None,
    ) -> int:
        """Store one message; durable (fsynced) when this returns. Returns its row id.

        May drop older rows (or this one, if it alone is over the bounds) to stay within them.
        """
        message = Message(topic, lambda _seq: bytes(payload), qos, retain, kind, camera)
        return self.append_many([message], numbered=False)[0][0]

    def append_many(
        self, messages: Sequence[Message], *, numbered: bool = True
    ) -> list[tuple[int, int, bytes]]:
        """Store `messages` in ONE transaction (one fsync for all: a slow disk then costs per
        batch, not per event); returns (row id, seq, payload) for each, in order.

        With `numbered`, each message gets its camera's next message number (`seq`) in the
        same transaction, and its payload is built for that number: numbers continue across
        restarts and never exceed what is stored, so events replayed from an earlier run never
        carry the same `seq` as new ones and a subscriber may drop duplicates by (camera,
        seq). A message's `at_least` lifts its camera's counter (numbers handed out while the
        spool was failing must not be given again).
        """
        for m in messages:
            if m.kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}, not {m.kind!r}")
            if numbered and m.camera is None:
                raise ValueError("a numbered message needs its camera")
        now = self._clock()

        def op(
            conn: sqlite3.Connection,
        ) -> tuple[list[tuple[int, int, bytes]], list[Drop], int, int]:
            stored: list[tuple[int, int, bytes]] = []
            rows, nbytes = self._rows, self._bytes
            for m in messages:
                seq = self._bump_counter(conn, str(m.camera), m.at_least) if numbered else 0
                data = bytes(m.build(seq))
                size = len(m.topic.encode()) + len(data)
                cur = conn.execute(
                    "INSERT INTO outbox (created, topic, payload, qos, retain, kind, camera, size)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (now, m.topic, data, int(m.qos), int(bool(m.retain)), m.kind, m.camera, size),
                )
                stored.append((int(cur.lastrowid or 0), seq, data))
                rows, nbytes = rows + 1, nbytes + size
            drops, rows, nbytes = enforce_bounds(conn, rows, nbytes, self.max_rows, self.max_bytes)
            return stored, drops, rows, nbytes

        with self._lock:
            stored, drops, self._rows, self._bytes = self._run(op)
            if stored:
                self._high_id = max(self._high_id, stored[-1][0])
            self.appended += len(stored)
            self._report(drops)
            if now >= self._next_expire:
                try:
                    self._expire_locked()
                except sqlite3.Error as err:  # the rows are stored; ageing out can wait
                    log.warning("spool.expire_failed", path=str(self.path), error=str(err))
        return stored

    @staticmethod
    def _bump_counter(conn: sqlite3.Connection, camera: str, at_least: int) -> int:
        name = f"seq:{camera}"
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = max(value + 1, excluded.value)",
            (name, max(1, at_least)),
        )
        return int(conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()[0])

    def _expire_locked(self, force: bool = False) -> int:
        now = self._clock()
        if not force and now < self._next_expire:
            return 0
        self._next_expire = now + min(self.expire_interval_s, self.max_age_s)
        cutoff = now - self.max_age_s

        def op(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "DELETE FROM outbox WHERE created < ? RETURNING id, kind, camera, size", (cutoff,)
            ).fetchall()

        rows = sorted(self._run(op))
        self._rows -= len(rows)
        self._bytes -= sum(r[3] for r in rows)
        self._report([("max_age", row) for row in rows])
        return len(rows)

    def _report(self, drops: list[Drop]) -> None:
        """Count and log drops: one warning per reason per operation, naming every row id."""
        for reason, summary in summarize_drops(drops).items():
            self._dropped[reason] += summary["count"]
            log.warning(
                "spool.dropped",
                reason=reason,
                **summary,
                depth=self._rows,
                bytes=self._bytes,
                max_rows=self.max_rows,
                max_bytes=self.max_bytes,
                max_age_s=self.max_age_s,
            )

    def pending(self, limit: int = 100, after_id: int = 0) -> list[SpoolRow]:
        """Up to `limit` rows with id > `after_id`, oldest first (expired rows dropped first)."""
        with self._lock:
            try:
                self._expire_locked()
            except sqlite3.Error as err:  # a full disk: what is stored can still be sent
                log.warning("spool.expire_failed", path=str(self.path), error=str(err))

            def op(conn: sqlite3.Connection) -> list[Any]:
                return conn.execute(
                    "SELECT id, topic, payload, qos, retain, kind, camera, created FROM outbox"
                    " WHERE id > ? ORDER BY id LIMIT ?",
                    (int(after_id), int(limit)),
                ).fetchall()

            rows = self._run(op)
        return [SpoolRow(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows]

    def ack(self, row_id: int) -> bool:
        """Delete a delivered row; False when it was not there (already acked or dropped)."""
        return self.ack_many([row_id]) == 1

    def ack_many(self, row_ids: Iterable[int]) -> int:
        """Delete delivered rows in one transaction; returns how many were there."""
        ids = [(int(i),) for i in row_ids]
        if not ids:
            return 0

        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            count = size = 0
            for (row_id,) in ids:
                row = conn.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING size", (row_id,)
                ).fetchone()
                if row is not None:
                    count += 1
                    size += row[0]
            return count, size

        with self._lock:
            count, size = self._run(op)
            self._rows -= count
            self._bytes -= size
            self.acked += count
        return count

    def expire(self) -> int:
        """Drop rows older than `max_age_s` now; returns how many."""
        with self._lock:
            return self._expire_locked(force=True)

    # -- state ----------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Rows waiting for an acknowledgement."""
        return self._rows

    @property
    def bytes(self) -> int:
        """Their size: topic + payload bytes (SQLite's own overhead not counted)."""
        return self._bytes

    @property
    def last_id(self) -> int:
        """The highest row id handed out so far (0: none); new rows get higher ones."""
        return self._high_id

    @property
    def durability(self) -> dict[str, str]:
        """The connection's journal mode and synchronous level, as SQLite reports them."""
        levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        with self._lock:
            if self._conn is None:
                raise SpoolError("spool is closed")
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = self._conn.execute("PRAGMA synchronous").fetchone()[0]
        return {"journal_mode": str(mode).upper(), "synchronous": levels.get(sync, str(sync))}

    def last_seqs(self) -> dict[str, int]:
        """Each camera's highest message number (`seq`) handed out so far, this run or before:
        numbers given while the spool fails must continue above them."""
        with self._lock:
            if self._conn is None:
                return {}
            rows = self._conn.execute(
                "SELECT name, value FROM counters WHERE name LIKE 'seq:%'"
            ).fetchall()
        return {str(name).removeprefix("seq:"): int(value) for name, value in rows}

    @property
    def dropped(self) -> dict[str, int]:
        """Rows dropped so far, by reason: max_rows, max_bytes, max_age."""
        with self._lock:
            return dict(self._dropped)

    def oldest_age_s(self) -> float | None:
        """Age of the oldest row in seconds (None: empty)."""
        with self._lock:
            if self._conn is None:
                return None
            row = self._conn.execute("SELECT min(created) FROM outbox").fetchone()
        return None if row[0] is None else max(0.0, self._clock() - row[0])

    def stats(self) -> dict[str, Any]:
        """For logs and the daemon's statistics."""
        return {
            "depth": self.depth,
            "bytes": self.bytes,
            "appended": self.appended,
            "acked": self.acked,
            "dropped": self.dropped,
        }

    def close(self) -> None:
        """Checkpoint and close (idempotent); rows stay for the next start."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as err:
                    log.warning("spool.checkpoint_failed", path=str(self.path), error=str(err))
                conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Spool({str(self.path)!r}, depth={self._rows}, bytes={self._bytes})"
