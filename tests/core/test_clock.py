"""The daemon's clocks: frames on a timeline that never steps, payloads on the wall clock."""

from __future__ import annotations

import time

import pytest

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


def test_the_default_clocks_are_the_systems_monotonic_and_wall_clocks() -> None:
    """What production runs with (nothing injected): `monotonic` really is the monotonic
    clock (the one a wall-clock step cannot move), `wall` the system's epoch time."""
    mono_before, wall_before = time.monotonic(), time.time()
    clock = Clock()
    mono, wall, timeline = clock.monotonic(), clock.wall(), clock.timeline()
    mono_after, wall_after = time.monotonic(), time.time()
    assert mono_before <= mono <= mono_after
    assert wall_before <= wall <= wall_after
    # The timeline starts out reading like the wall clock (up to the time between reads).
    assert wall_before - 1.0 <= timeline <= wall_after + 1.0
    assert abs(clock.wall_offset()) < 1.0


def test_the_default_wall_clock_follows_a_replaced_time_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fault-injection launcher steps the wall clock by replacing `time.time`: the
    default wall clock follows it, the monotonic clock and the timeline do not."""
    clock = Clock()
    timeline = clock.timeline()
    stepped = time.time() - 3600.0
    monkeypatch.setattr(time, "time", lambda: stepped)
    assert clock.wall() == stepped
    assert clock.wall_offset() == pytest.approx(-3600.0, abs=1.0)
    assert timeline <= clock.timeline() <= timeline + 1.0
