"""The spool's SQLite file: its schema, the checks made when it is opened, and moving a corrupt
file aside. `Spool` (in `spool`) decides when; this module knows how.

A file is usable when SQLite can read it (`quick_check`), WAL can be enabled, and it holds
either nothing or this version's `outbox` table. Anything else raises `CorruptSpool`; a
directory or permission problem raises `SpoolError`, which no moving aside would fix.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple

FILENAME = "spool.sqlite3"
SCHEMA_VERSION = 1
Kind = Literal["event", "update"]
"""'update' messages are dropped before events when the spool is over its bounds."""
KINDS: tuple[str, ...] = typing.get_args(Kind)

_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_COLUMNS = ["id", "created", "topic", "payload", "qos", "retain", "kind", "camera", "size"]
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN {KINDS!r}),
    camera TEXT,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_id ON outbox (kind, id);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
PRAGMA user_version={SCHEMA_VERSION};
"""


class SpoolError(RuntimeError):
    """The spool cannot be used (e.g. its directory is not writable); not corruption."""


class CorruptSpool(Exception):
    """The file is not a usable spool: move it aside and start a fresh one."""


def is_corruption(err: BaseException) -> bool:
    """An SQLite error that says the file itself is damaged (not locked, not full)."""
    code = getattr(err, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


class OpenedSpool(NamedTuple):
    """A checked connection and what the file holds."""

    conn: sqlite3.Connection
    rows: int
    nbytes: int
    high_id: int
    """The highest row id the file has handed out."""


def open_spool(path: Path, min_id: int = 0) -> OpenedSpool:
    """Open or create the spool at `path`: WAL, synchronous=FULL, checked, schema in place.

    `min_id`: ids up to it were handed out before (by a file since moved aside), so new rows
    get higher ones. Raises `CorruptSpool` or `SpoolError`.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not path.exists()
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    except (OSError, sqlite3.Error) as err:
        raise SpoolError(f"cannot open spool {path}: {err}") from err
    try:
        opened = _setup(conn, path, min_id)
    except CorruptSpool:
        conn.close()
        raise
    except sqlite3.Error as err:
        conn.close()
        if is_corruption(err):
            raise CorruptSpool(str(err)) from err
        raise SpoolError(f"cannot open spool {path}: {err}") from err
    if created:
        fsync_dir(path.parent)
    return opened


def _setup(conn: sqlite3.Connection, path: Path, min_id: int) -> OpenedSpool:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise SpoolError(f"spool {path}: cannot enable WAL (journal_mode={mode})")
    conn.execute("PRAGMA synchronous=FULL")
    problems = [r[0] for r in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise CorruptSpool("; ".join(str(p) for p in problems[:5]))
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "outbox" in tables:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(outbox)")]
        if columns != _COLUMNS or version != SCHEMA_VERSION:
            raise CorruptSpool(f"not a spool of this version (user_version {version})")
    elif tables - {"sqlite_sequence"}:
        raise CorruptSpool(f"not a spool: tables {sorted(tables)}")
    conn.executescript(_SCHEMA)
    rows, size, top = conn.execute(
        "SELECT count(*), coalesce(sum(size), 0), coalesce(max(id), 0) FROM outbox"
    ).fetchone()
    seq_row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='outbox'").fetchone()
    seq = int(seq_row[0]) if seq_row else 0
    if min_id > max(int(top), seq):
        # A fresh file after a runtime recovery: never hand out an id that was in use.
        if seq_row is None:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)", (min_id,))
        else:
            conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name='outbox'", (min_id,))
    return OpenedSpool(conn, int(rows), int(size), max(min_id, int(top), seq))


def move_aside(path: Path) -> Path:
    """Rename `path` (and its WAL) to `<name>.corrupt-<UTC timestamp>`, kept for inspection;
    drop its shared-memory file. Returns the new name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    if path.exists():
        os.replace(path, target)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + "-wal"))
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    fsync_dir(path.parent)
    return target


def fsync_dir(directory: Path) -> None:
    """Make a created/renamed directory entry durable (best effort: not every FS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
