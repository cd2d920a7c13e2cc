"""Joining fragmented MP4 by bytes (`outputs.clips.fmp4`), on segments built box by box."""

from __future__ import annotations

import struct

import pytest

from har_daemon.outputs.clips.fmp4 import Fmp4Error, boxes, check_init, fragments


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, body: bytes) -> bytes:
    return _box(kind, bytes([version, 0, 0, 0]), body)


def _segment(decode_time: int, *, track: int = 1, wide: bool = False, media: bytes = b"x") -> bytes:
    """A media segment as ffmpeg's HLS muxer writes one: styp, sidx, moof, mdat."""
    tfdt = _full(b"tfdt", 1 if wide else 0, struct.pack(">Q" if wide else ">I", decode_time))
    traf = _box(b"traf", _full(b"tfhd", 0, struct.pack(">I", track)), tfdt, _full(b"trun", 0, b""))
    moof = _box(b"moof", _full(b"mfhd", 0, struct.pack(">I", 1)), traf)
    return _box(b"styp", b"msdh") + _full(b"sidx", 0, b"\0" * 20) + moof + _box(b"mdat", media)


def _decode_times(data: bytes) -> list[int]:
    times = []
    for kind, offset, _header, size in boxes(data):
        if kind == b"moof":
            moof = data[offset : offset + size]
            at = moof.index(b"tfdt") + 4
            fmt = ">Q" if moof[at] == 1 else ">I"
            times.append(struct.unpack_from(fmt, moof, at + 4)[0])
    return times


def test_fragments_drop_the_segment_boxes_and_start_at_zero() -> None:
    bases: dict[int, int] = {}
    first = fragments(_segment(90_000, media=b"first"), bases)
    second = fragments(_segment(270_000, wide=True, media=b"second"), bases)
    joined = first + second
    assert [k for k, *_ in boxes(joined)] == [b"moof", b"mdat", b"moof", b"mdat"]
    assert _decode_times(joined) == [0, 180_000]
    assert joined.endswith(_box(b"mdat", b"second")) and _box(b"mdat", b"first") in joined
    assert bases == {1: 90_000}


def test_each_track_starts_at_its_own_first_decode_time() -> None:
    bases: dict[int, int] = {}
    fragments(_segment(1000, track=1), bases)
    assert _decode_times(fragments(_segment(50, track=2), bases)) == [0]
    assert bases == {1: 1000, 2: 50}


def test_a_segment_out_of_order_is_refused() -> None:
    bases: dict[int, int] = {}
    fragments(_segment(500), bases)
    with pytest.raises(Fmp4Error, match="back in time"):
        fragments(_segment(499), bases)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_segment(0, media=b"12345")[:-2], "runs past the end"),
        (_segment(0) + b"\0\0", "truncated box header"),
        (_box(b"styp", b"msdh") + _box(b"mdat", b"x"), "without a fragment"),
        (_box(b"moov", b"") + _segment(0), "unexpected box"),
        (_box(b"moof", _box(b"traf", _full(b"trun", 0, b""))), "without tfhd or tfdt"),
    ],
)
def test_broken_segments_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(Fmp4Error, match=message):
        fragments(data, {})


def test_an_init_segment_is_ftyp_then_moov() -> None:
    check_init(_box(b"ftyp", b"iso5") + _box(b"moov", _box(b"mvhd", b"")))
    with pytest.raises(Fmp4Error, match="not an init segment"):
        check_init(_segment(0))
