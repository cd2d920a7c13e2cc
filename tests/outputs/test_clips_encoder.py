"""ClipWriter's frame placement and clip sizes, on a fake sink (no encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.outputs.clips.encoder import CODECS, ClipWriter, clip_size, resolve_codec


class _Sink:
    def __init__(self) -> None:
        self.frames: list[int] = []  # each written frame's marker value
        self.released = False

    def write(self, image: np.ndarray, /) -> None:
        self.frames.append(int(image[0, 0, 0]))

    def release(self) -> None:
        self.released = True


def _frame(marker: int, size: tuple[int, int] = (4, 2)) -> np.ndarray:
    return np.full((size[1], size[0], 3), marker, dtype=np.uint8)


def test_frames_are_placed_by_time() -> None:
    sink = _Sink()
    writer = ClipWriter(sink, (4, 2), fps=10.0)
    assert writer.add(_frame(1), 0.0)
    assert not writer.add(_frame(2), 0.04)  # same slot as the previous frame: skipped
    assert writer.add(_frame(3), 0.1)
    assert writer.add(_frame(4), 0.4)  # a gap: the previous frame fills slots 2 and 3
    assert sink.frames == [1, 3, 3, 3, 4] and writer.written == 5
    writer.release()
    assert sink.released


def test_frames_of_another_size_or_grey_are_converted() -> None:
    sink = _Sink()
    writer = ClipWriter(sink, (4, 2), fps=10.0)
    assert writer.add(np.full((2, 4), 7, dtype=np.uint8), 0.0)  # grey
    assert writer.add(_frame(9, size=(8, 4)), 0.1)  # the camera came back larger
    assert sink.frames == [7, 9]


@pytest.mark.parametrize(
    ("width", "height", "max_width", "size"),
    [
        (640, 480, None, (640, 480)),
        (1920, 1080, 640, (640, 360)),
        (641, 481, None, (640, 480)),  # even sizes
        (1, 1, None, (2, 2)),
        (3840, 10, 640, (640, 2)),
    ],
)
def test_clip_size(width: int, height: int, max_width: int | None, size: tuple[int, int]) -> None:
    assert clip_size(width, height, max_width) == size


def test_codecs_come_from_the_config() -> None:
    assert CODECS == ("auto", "h264", "mp4v")
    assert resolve_codec("mp4v") is None
    with pytest.raises(ValueError, match="codec must be one of"):
        resolve_codec("vp9")
