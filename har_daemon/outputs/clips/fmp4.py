"""Fragmented MP4 joined by copying bytes: no process, no demuxer, no re-encode.

The segmenter (`segments`) writes one init segment per ffmpeg run (`ftyp` + a `moov` without
samples) and media segments of `moof` + `mdat` fragments (each led by a `styp` and a `sidx`).
The init segment followed by the fragments of consecutive media segments is a valid fragmented
MP4 file, once two things are fixed here:

* `styp` and `sidx` are dropped: they type and index one segment, not the whole file (a reader
  trusting a segment's `sidx` would see only that segment);
* each fragment's decode time (`tfdt`) is moved back by the first fragment's, so the clip starts
  at 0 instead of at the ffmpeg run's age.

Pure functions over bytes; `segments.join_segments` does the reading and writing.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

_DROPPED = frozenset({b"styp", b"sidx"})
_FULLBOX_HEADER = 4  # version (1 byte) and flags (3 bytes)


class Fmp4Error(ValueError):
    """A media segment is not the fragmented MP4 the segmenter writes."""


def boxes(
    data: bytes | bytearray, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, offset, header length, size) of each box in `data[start:end]`."""
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        if end - offset < 8:
            raise Fmp4Error(f"truncated box header at byte {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if end - offset < 16:
                raise Fmp4Error(f"truncated box header at byte {offset}")
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:  # the box runs to the end
            size = end - offset
        if size < header or offset + size > end:
            raise Fmp4Error(f"box {kind!r} at byte {offset} runs past the end ({size} bytes)")
        yield kind, offset, header, size
        offset += size


def _child(data: bytearray, kind: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    for k, offset, header, size in boxes(data, start, end):
        if k == kind:
            yield offset, header, size


def rebase_fragment(moof: bytearray, bases: dict[int, int]) -> None:
    """Move each track's decode time in `moof` (one whole box) back by `bases[track]`.

    A track seen for the first time sets its base to its own decode time (it then starts at 0).
    Raises `Fmp4Error` when a fragment has no decode time or starts before the base, as a
    segment joined out of order would.
    """
    for traf, t_header, t_size in _child(moof, b"traf", 8, len(moof)):
        body, body_end = traf + t_header, traf + t_size
        tfhd = next(_child(moof, b"tfhd", body, body_end), None)
        tfdt = next(_child(moof, b"tfdt", body, body_end), None)
        if tfhd is None or tfdt is None:
            raise Fmp4Error("a fragment without tfhd or tfdt (not the segmenter's fMP4)")
        (track,) = struct.unpack_from(">I", moof, tfhd[0] + tfhd[1] + _FULLBOX_HEADER)
        at = tfdt[0] + tfdt[1]
        wide = moof[at] == 1  # version 1: a 64-bit decode time
        fmt = ">Q" if wide else ">I"
        (decode_time,) = struct.unpack_from(fmt, moof, at + _FULLBOX_HEADER)
        base = bases.setdefault(track, decode_time)
        if decode_time < base:
            raise Fmp4Error(f"track {track} goes back in time ({decode_time} < {base})")
        struct.pack_into(fmt, moof, at + _FULLBOX_HEADER, decode_time - base)


def fragments(segment: bytes, bases: dict[int, int]) -> bytes:
    """The `moof` + `mdat` boxes of one media segment, rebased on `bases` (see
    `rebase_fragment`, which updates it), without the segment's own `styp` and `sidx`."""
    parts: list[bytes] = []
    seen_moof = False
    for kind, offset, _header, size in boxes(segment):
        if kind in _DROPPED:
            continue
        if kind == b"moof":
            moof = bytearray(segment[offset : offset + size])
            rebase_fragment(moof, bases)
            parts.append(bytes(moof))
            seen_moof = True
        elif kind == b"mdat":
            parts.append(segment[offset : offset + size])
        else:
            raise Fmp4Error(f"unexpected box {kind!r} in a media segment")
    if not seen_moof:
        raise Fmp4Error("a media segment without a fragment")
    return b"".join(parts)


def check_init(init: bytes) -> None:
    """Raises `Fmp4Error` unless `init` is an init segment (`ftyp` and a fragmented `moov`)."""
    kinds = [kind for kind, *_ in boxes(init)]
    if kinds[:2] != [b"ftyp", b"moov"]:
        raise Fmp4Error(f"not an init segment: boxes {kinds}")
