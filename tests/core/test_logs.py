"""LogThrottle: a burst per window per key, counts of what was held back, bounded keys."""

from __future__ import annotations

from har_daemon.core.logs import OVERFLOW_KEY, LogThrottle, report_suppressed
from tests.infra.logs import capture_logs


def test_a_burst_per_window_then_the_count_of_what_was_held_back() -> None:
    now = [0.0]
    throttle = LogThrottle(10.0, lambda: now[0], burst=3)
    assert [throttle.allow("k") for _ in range(5)] == [0, 0, 0, None, None]
    assert throttle.allow("other") == 0  # keys are independent
    now[0] = 10.0
    assert throttle.allow("k") == 2  # the first line of the next window says what it missed
    assert throttle.allow("k") == 0


def test_one_line_per_window_by_default() -> None:
    now = [0.0]
    throttle = LogThrottle(1.0, lambda: now[0])
    assert throttle.allow("k") == 0 and throttle.allow("k") is None
    now[0] = 0.99
    assert throttle.allow("k") is None
    now[0] = 1.0
    assert throttle.allow("k") == 2


def test_keys_are_bounded() -> None:
    throttle = LogThrottle(60.0, lambda: 0.0, max_keys=4)
    allowed = [throttle.allow(f"junk-{i}") for i in range(1000)]
    assert allowed[:5] == [0, 0, 0, 0, 0]  # the fifth key is the shared overflow key
    assert all(a is None for a in allowed[5:])
    assert throttle.take_held() == {OVERFLOW_KEY: 995}


def test_counts_no_later_line_reported_are_logged() -> None:
    throttle = LogThrottle(60.0, lambda: 0.0)
    for _ in range(7):
        throttle.allow("control.rejected")
    with capture_logs() as logs:
        assert report_suppressed() >= 6
    assert {"event": "log.suppressed", "key": "control.rejected", "suppressed": 6} in [
        {k: e[k] for k in ("event", "key", "suppressed")} for e in logs
    ]
    assert throttle.take_held() == {}
    assert throttle.allow("control.rejected") is None  # still muted: the count went out already
