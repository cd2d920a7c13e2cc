"""The durable spool on a real SQLite file: order, durability across SIGKILL, bounds, corruption,
threads."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from har_daemon.comms.spool import FILENAME, Message, Spool, SpoolError
from har_daemon.comms.spool_bounds import summarize_drops
from har_daemon.config import SpoolConfig
from tests.infra.logs import capture_logs
from tests.shared_data import REPO as ROOT


def kinds_and_payloads(spool: Spool) -> list[tuple[str, bytes]]:
    return [(r.kind, r.payload) for r in spool.pending(10_000)]


def test_append_pending_ack_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as spool:
        ids = [
            spool.append("har/a/events", b'{"seq":1}', 1, False, "event", "a"),
            spool.append("har/b/events", b'{"seq":1}', 2, True, "update", "b"),
            spool.append("har/a/events", b'{"seq":2}', 1, False, "event", "a"),
        ]
        assert ids == sorted(ids) and len(set(ids)) == 3
        rows = spool.pending(10)
        assert [r.id for r in rows] == ids
        assert (rows[1].topic, rows[1].payload, rows[1].qos, rows[1].retain) == (
            "har/b/events",
            b'{"seq":1}',
            2,
            True,
        )
        assert (rows[1].kind, rows[1].camera) == ("update", "b")
        assert spool.depth == 3
        assert spool.bytes == 3 * (len("har/a/events") + len(b'{"seq":1}'))
        assert [r.id for r in spool.pending(1)] == ids[:1]
        assert [r.id for r in spool.pending(10, after_id=ids[0])] == ids[1:]
        assert spool.ack(ids[0]) is True
        assert spool.ack(ids[0]) is False  # already gone: a duplicate PUBACK is harmless
        assert spool.ack_many(ids[1:]) == 2
        assert spool.depth == 0 and spool.bytes == 0 and spool.pending(10) == []
        last = ids[-1]
    # Row ids are never reused, even after the newest row was acknowledged and the file reopened:
    # a late acknowledgement for an old id must not delete a new row.
    with Spool(tmp_path / "s.db") as spool:
        assert spool.append("t", b"x") > last


def test_directory_path_and_config(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        assert spool.path == tmp_path / FILENAME
    state = tmp_path / "state" / "har-daemon"
    cfg = SpoolConfig(path=state, max_rows=10, max_bytes=2_000_000, max_age=3600)
    with Spool.from_config(cfg) as spool:
        assert spool.path == state / FILENAME and state.is_dir()
        assert (spool.max_rows, spool.max_bytes, spool.max_age_s) == (10, 2_000_000, 3600.0)


def test_wal_with_full_sync(tmp_path: Path) -> None:
    """The fsync policy: WAL, and every commit synced (survives power loss, not just a crash)."""
    with Spool(tmp_path / "s.db") as spool:
        assert spool.durability == {"journal_mode": "WAL", "synchronous": "FULL"}
        spool.append("t", b"x")
        # WAL is a property of the file: any reader sees it.
        other = sqlite3.connect(tmp_path / "s.db")
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.close()


_WRITER = """
import sys
from har_daemon.core.logs import configure_logging
from har_daemon.comms.spool import Spool
configure_logging("warning")  # logs go to stderr; stdout carries only the returned row ids
spool = Spool(sys.argv[1])
i = 0
while True:
    i += 1
    row_id = spool.append("har/cam/events", b"payload-%d" % i, 1, False, "event", "cam")
    print(row_id, i, flush=True)
"""


def test_every_returned_append_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    returned: dict[int, int] = {}
    try:
        while len(returned) < 400:
            row_id, i = lines.get(timeout=20).split()
            returned[int(row_id)] = int(i)
        proc.send_signal(signal.SIGKILL)  # mid-stream: it is appending as fast as it can
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    while not lines.empty():  # printed before the kill landed: returned, so must be there too
        line = lines.get()
        if line.endswith("\n"):
            row_id, i = line.split()
            returned[int(row_id)] = int(i)
    assert proc.returncode == -signal.SIGKILL
    with Spool(path) as spool:
        assert spool.corrupt_moved_to is None
        rows = {r.id: r.payload for r in spool.pending(100_000)}
    missing = [row_id for row_id in returned if row_id not in rows]
    assert missing == []
    for row_id, i in returned.items():
        assert rows[row_id] == b"payload-%d" % i


def test_over_max_rows_drops_oldest_updates_then_oldest_events(tmp_path: Path) -> None:
    with capture_logs() as logs, Spool(tmp_path / "s.db", max_rows=4) as spool:
        spool.append("t", b"e1", kind="event", camera="a")
        spool.append("t", b"u1", kind="update", camera="a")
        spool.append("t", b"e2", kind="event", camera="b")
        spool.append("t", b"u2", kind="update", camera="b")
        spool.append("t", b"e3", kind="event", camera="a")  # 5 rows: u1 goes
        assert kinds_and_payloads(spool) == [
            ("event", b"e1"),
            ("event", b"e2"),
            ("update", b"u2"),
            ("event", b"e3"),
        ]
        spool.append("t", b"e4", kind="event", camera="a")  # u2 goes
        spool.append("t", b"e5", kind="event", camera="a")  # no updates left: e1 goes
        assert [p for _, p in kinds_and_payloads(spool)] == [b"e2", b"e3", b"e4", b"e5"]
        assert spool.depth == 4
        assert spool.dropped == {"max_rows": 3, "max_bytes": 0, "max_age": 0}
    drops = [e for e in logs if e["event"] == "spool.dropped"]
    assert [(d["reason"], d["updates"], d["events"], d["count"]) for d in drops] == [
        ("max_rows", 1, 0, 1),
        ("max_rows", 1, 0, 1),
        ("max_rows", 0, 1, 1),
    ]
    assert all(d["log_level"] == "warning" for d in drops)
    assert drops[0]["ids"] == [2] and drops[2]["cameras"] == ["a"]


def test_drop_summaries_one_per_reason() -> None:
    drops = [
        ("max_rows", (1, "update", "a", 10)),
        ("max_age", (2, "event", None, 10)),
        ("max_rows", (3, "event", "b", 10)),
        ("max_rows", (4, "event", "a", 10)),
    ]
    assert summarize_drops(drops) == {
        "max_rows": {
            "count": 3,
            "events": 2,
            "updates": 1,
            "cameras": ["a", "b"],
            "ids": [1, 3, 4],
        },
        "max_age": {"count": 1, "events": 1, "updates": 0, "cameras": [], "ids": [2]},
    }
    many = [("max_age", (i, "event", "a", 1)) for i in range(5, 27)]
    assert summarize_drops(many)["max_age"]["ids"] == "5..26"
    assert summarize_drops([]) == {}


def test_default_bounds_are_the_configs(tmp_path: Path) -> None:
    defaults = SpoolConfig(path=tmp_path)
    with Spool(tmp_path) as spool:
        assert (spool.max_rows, spool.max_bytes, spool.max_age_s) == (
            defaults.max_rows,
            defaults.max_bytes,
            defaults.max_age,
        )


def test_over_max_bytes_drops_updates_first(tmp_path: Path) -> None:
    # Each row is len("t") + 99 = 100 bytes.
    with Spool(tmp_path / "s.db", max_bytes=450) as spool:
        for name in (b"e1", b"u1", b"u2", b"e2"):
            kind = "update" if name.startswith(b"u") else "event"
            spool.append("t", name.ljust(99, b"."), kind=kind)
        assert spool.bytes == 400
        spool.append("t", b"e3".ljust(99, b"."), kind="event")  # 500 > 450: u1 goes
        spool.append("t", b"big".ljust(199, b"."), kind="event")  # 600: u2, then e1 go
        assert [p[:3].rstrip(b".") for _, p in kinds_and_payloads(spool)] == [
            b"e2",
            b"e3",
            b"big",
        ]
        assert spool.bytes == 400 and spool.depth == 3
        assert spool.dropped["max_bytes"] == 3
        # One message larger than the whole budget cannot be kept: it goes, counted.
        spool.append("t", b"x" * 1000, kind="event")
        assert spool.bytes <= 450
        assert all(len(p) < 1000 for _, p in kinds_and_payloads(spool))


def test_rows_older_than_max_age_dropped(tmp_path: Path) -> None:
    now = [1_000_000.0]
    path = tmp_path / "s.db"
    with capture_logs() as logs:
        spool = Spool(path, max_age_s=60, clock=lambda: now[0], expire_interval_s=5)
        spool.append("t", b"old", kind="update")
        now[0] += 30
        spool.append("t", b"mid", kind="event")
        now[0] += 40  # "old" is 70 s old, "mid" 40 s
        assert [p for _, p in kinds_and_payloads(spool)] == [b"mid"]
        assert spool.dropped["max_age"] == 1 and spool.depth == 1
        spool.close()
        # Ageing out also happens on open (e.g. after a long power-off).
        now[0] += 3600
        spool = Spool(path, max_age_s=60, clock=lambda: now[0])
        assert spool.depth == 0 and spool.dropped["max_age"] == 1
        spool.close()
    aged = [e for e in logs if e["event"] == "spool.dropped" and e["reason"] == "max_age"]
    assert [(e["count"], e["updates"], e["events"]) for e in aged] == [(1, 1, 0), (1, 0, 1)]


def _assert_moved_aside(path: Path, logs: list[dict[str, Any]], spool: Spool) -> None:
    moved = spool.corrupt_moved_to
    assert moved is not None and moved.exists()
    assert moved.parent == path.parent and moved.name.startswith(f"{path.name}.corrupt-")
    errors = [e for e in logs if e["event"] == "spool.corrupt"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    assert errors[0]["moved_to"] == str(moved) and errors[0]["path"] == str(path)
    # The fresh spool works, and opening it again finds nothing wrong: no crash loop.
    row_id = spool.append("t", b"after")
    spool.close()
    with capture_logs() as again, Spool(path) as reopened:
        assert [r.id for r in reopened.pending(10)] == [row_id]
        assert reopened.corrupt_moved_to is None
    assert not [e for e in again if e["event"] == "spool.corrupt"]


def test_garbage_file_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    with capture_logs() as logs:
        spool = Spool(tmp_path)
    assert spool.corrupt_moved_to is not None
    assert spool.corrupt_moved_to.read_bytes() == garbage  # kept for inspection
    assert spool.depth == 0
    _assert_moved_aside(path, logs, spool)


def test_truncated_file_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    with Spool(path) as spool:
        for i in range(1500):
            spool.append("har/cam/events", b"%d" % i + os.urandom(200))
    size = path.stat().st_size
    assert size > 100_000
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with capture_logs() as logs:
        spool = Spool(path)
    assert spool.depth == 0
    _assert_moved_aside(path, logs, spool)


def test_foreign_database_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / FILENAME
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE something_else (x)")
    other.commit()
    other.close()
    with capture_logs() as logs:
        spool = Spool(path)
    _assert_moved_aside(path, logs, spool)


def test_unusable_directory_is_an_error_not_a_move(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(SpoolError):
        Spool(blocker / FILENAME)
    assert blocker.read_text().startswith("a file")


def test_concurrent_appends_and_acks(tmp_path: Path) -> None:
    """Inference threads append while the delivery thread acknowledges: nothing lost or
    double-counted."""
    spool = Spool(tmp_path / "s.db")
    writers, per_writer = 4, 150
    appended: list[list[int]] = [[] for _ in range(writers)]
    acked: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(per_writer):
                kind = "update" if i % 3 == 0 else "event"
                appended[n].append(spool.append(f"har/c{n}/events", b"%d" % i, kind=kind))
        except BaseException as err:
            errors.append(err)

    def ack() -> None:
        try:
            cursor = 0
            while True:
                finished = done.is_set()
                rows = spool.pending(25, after_id=cursor)
                for row in rows:
                    cursor = row.id
                    if row.id % 2 == 0:
                        assert spool.ack(row.id)
                        acked.append(row.id)
                if not rows and finished:
                    return
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    acker = threading.Thread(target=ack)
    for t in threads:
        t.start()
    acker.start()
    for t in threads:
        t.join(60)
    done.set()
    acker.join(60)
    assert errors == []
    all_ids = [i for ids in appended for i in ids]
    assert len(all_ids) == len(set(all_ids)) == writers * per_writer
    for ids in appended:
        assert ids == sorted(ids)  # each thread's rows are in its append order
    remaining = {r.id for r in spool.pending(10_000)}
    assert remaining == set(all_ids) - set(acked)
    assert spool.depth == len(remaining) and spool.acked == len(acked)
    expected_bytes = spool.bytes
    spool.close()
    with Spool(tmp_path / "s.db") as reopened:  # the counters match what is on disk
        assert (reopened.depth, reopened.bytes) == (len(remaining), expected_bytes)


def _numbered(camera: str, at_least: int = 1) -> Message:
    return Message(
        f"har/{camera}/events",
        lambda seq: f'{{"seq":{seq}}}'.encode(),
        1,
        False,
        "event",
        camera,
        at_least,
    )


def test_sequence_numbers_continue_across_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    stored = spool.append_many([_numbered("lobby"), _numbered("lobby"), _numbered("yard")])
    assert [seq for _, seq, _ in stored] == [1, 2, 1]
    assert [data for _, _, data in stored] == [b'{"seq":1}', b'{"seq":2}', b'{"seq":1}']
    assert [r.payload for r in spool.pending(10)] == [data for _, _, data in stored]
    spool.close()
    reopened = Spool(tmp_path)
    assert [s for _, s, _ in reopened.append_many([_numbered("lobby"), _numbered("yard")])] == [
        3,
        2,
    ]
    reopened.close()


def test_last_numbers_survive_a_restart_for_a_router_on_a_full_disk(tmp_path: Path) -> None:
    """A daemon restarted onto a full disk numbers in memory: it starts from these."""
    with Spool(tmp_path) as spool:
        spool.append_many([_numbered("lobby"), _numbered("lobby"), _numbered("yard")])
    with Spool(tmp_path) as reopened:
        assert reopened.last_seqs() == {"lobby": 2, "yard": 1}


def test_numbers_handed_out_elsewhere_are_never_reused(tmp_path: Path) -> None:
    """While the spool failed the router numbered events in memory (up to 7, say): the
    spool's next number for that camera must be above them."""
    with Spool(tmp_path) as spool:
        spool.append_many([_numbered("lobby")])
        ((_, seq, _),) = spool.append_many([_numbered("lobby", at_least=8)])
        assert seq == 8
        ((_, seq, _),) = spool.append_many([_numbered("lobby", at_least=2)])
        assert seq == 9


def test_a_batch_is_one_transaction(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        before = spool.appended
        bad = Message("har/x/events", lambda seq: 1 / 0, camera="x")  # type: ignore[arg-type]
        with pytest.raises(ZeroDivisionError):
            spool.append_many([_numbered("x"), bad])
        assert spool.depth == 0 and spool.appended == before
        ((_, seq, _),) = spool.append_many([_numbered("x")])
        assert seq == 1, "the failed batch's number was rolled back with it"
