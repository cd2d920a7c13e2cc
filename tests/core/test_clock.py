"""The daemon's clocks: frames on a timeline that never steps, payloads on the wall clock."""

from __future__ import annotations

from har_daemon.core.clock import Clock


class FakeTime:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_700_000_000.0

    def advance(self, s: float) -> None:
        self.mono += s
        self.wall += s


def test_the_timeline_reads_like_the_wall_clock_until_it_steps() -> None:
    t = FakeTime()
    clock = Clock(wall=lambda: t.wall, monotonic=lambda: t.mono)
    assert clock.timeline() == t.wall and clock.wall_offset() == 0.0
    t.advance(5.0)
    assert clock.timeline() == t.wall and clock.monotonic() == 1005.0
    t.wall -= 3600.0  # NTP steps the wall clock back an hour
    t.advance(2.0)
    assert clock.timeline() == t.wall + 3600.0  # frames keep their pace
    assert clock.wall_offset() == -3600.0  # payloads show the corrected time
    assert clock.timeline() + clock.wall_offset() == clock.wall()
