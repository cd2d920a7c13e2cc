"""service.housekeeping and core.logs.LogThrottle: periodic jobs and throttled lines, on a
clock the test moves."""

from __future__ import annotations

from har_daemon.core.logs import LogThrottle
from har_daemon.service.housekeeping import Housekeeping


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_jobs_run_when_due_without_catch_up_bursts() -> None:
    clock = Clock()
    hk = Housekeeping(clock)
    runs: list[str] = []
    hk.every("tick", 1.0, lambda: runs.append("tick"))
    hk.every("stats", 5.0, lambda: runs.append("stats"), first_in_s=0.0)
    assert hk.run_due() == 1 and runs == ["stats"]
    clock.now += 1.0
    hk.run_due()
    assert runs == ["stats", "tick"]
    clock.now += 30.0  # a long stall: each job runs once, not 30 times
    hk.run_due()
    assert runs.count("tick") == 2 and runs.count("stats") == 2


def test_once_jobs_run_once_and_failures_do_not_stop_the_others() -> None:
    clock = Clock()
    hk = Housekeeping(clock)
    runs: list[str] = []
    hk.once("cleanup", 2.0, lambda: runs.append("cleanup"))
    hk.every("broken", 1.0, lambda: 1 / 0)
    hk.every("ok", 1.0, lambda: runs.append("ok"))
    for _ in range(4):
        clock.now += 1.0
        hk.run_due()
    assert runs.count("cleanup") == 1 and runs.count("ok") == 4
    assert hk.failures == 4 and "cleanup" not in hk.names


def test_log_throttle_counts_what_it_held_back() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.allow("x") == 0
    assert [throttle.allow("x") for _ in range(3)] == [None, None, None]
    assert throttle.allow("y") == 0  # keys are independent
    clock.now += 10.0
    assert throttle.allow("x") == 3
