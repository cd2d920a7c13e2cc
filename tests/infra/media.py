"""The tests' generated videos live in `har_daemon.tools.media`, with the bench's streams."""

from har_daemon.tools.media import concat_clips, make_test_video

__all__ = ["concat_clips", "make_test_video"]
