"""`comms.reorder`: a camera's events back in `seq` order, a gap waited for a bounded time."""

from __future__ import annotations

import pytest

from har_daemon.comms.reorder import Reorder


def test_in_order_events_pass_at_once() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 4)
    assert r.offer("cam", 5, "e5", 0.0) == ["e5"]
    assert r.offer("cam", 6, "e6", 0.0) == ["e6"]
    assert r.held() == 0


def test_an_event_ahead_waits_for_the_gap_and_the_gap_frees_it() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 7)
    assert r.offer("cam", 31, "e31", 0.0) == []
    assert r.offer("cam", 9, "e9", 0.1) == []  # still one short: 8 missing
    assert r.get("cam", 31) == "e31" and r.get("cam", 9) == "e9"
    assert r.offer("cam", 8, "e8", 0.2) == ["e8", "e9"]  # 31 still waits for 10..30
    assert r.held() == 1
    out = []
    for seq in range(10, 31):
        out += r.offer("cam", seq, f"e{seq}", 0.3)
    assert out == [f"e{s}" for s in range(10, 32)]  # 30 frees 31
    assert r.held() == 0 and r.get("cam", 31) is None


def test_a_gap_that_never_fills_is_given_up_after_hold_s() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 1)
    assert r.offer("cam", 3, "e3", 10.0) == []
    assert r.offer("cam", 4, "e4", 10.5) == []
    assert r.due(11.99) == []  # not before the oldest hold's deadline
    assert r.due(12.0) == [("cam", "e3"), ("cam", "e4")]
    assert r.offer("cam", 5, "e5", 12.1) == ["e5"]  # printing goes on from 4
    assert r.offer("cam", 2, "e2", 12.2) == ["e2"]  # the late one is printed, never dropped


def test_giving_up_stops_at_the_next_gap_whose_wait_has_not_run_out() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 1)
    r.offer("cam", 3, "e3", 0.0)
    r.offer("cam", 6, "e6", 1.5)
    assert r.due(2.0) == [("cam", "e3")]  # 4 and 5 may still come for 6
    assert r.offer("cam", 4, "e4", 2.5) == ["e4"]
    assert r.due(3.49) == []
    assert r.due(3.5) == [("cam", "e6")]


def test_an_older_seq_or_a_new_numbering_is_never_held() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 50)
    assert r.offer("cam", 1, "restart", 0.0) == ["restart"]  # the daemon lost its spool
    assert r.offer("cam", 2, "next", 0.0) == ["next"]
    assert r.offer("cam", 2, "again", 0.0) == ["again"]  # same seq: the dedup's business


def test_a_cameras_first_event_is_released_and_cameras_are_independent() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("a", None)
    assert r.offer("a", 40, "a40", 0.0) == ["a40"]  # nothing known: nothing to wait for
    r.know("b", 3)
    assert r.offer("b", 5, "b5", 0.0) == []
    assert r.offer("a", 41, "a41", 0.0) == ["a41"]
    r.know("b", 99)  # what is known is not overwritten by a later `know`
    assert r.offer("b", 4, "b4", 0.1) == ["b4", "b5"]


def test_a_second_copy_of_a_held_seq_keeps_the_first() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 1)
    r.offer("cam", 3, "first", 0.0)
    r.offer("cam", 3, "second", 1.9)
    assert r.due(2.0) == [("cam", "first")]  # the first copy's deadline, once


def test_hold_zero_never_holds_and_flush_empties_in_order() -> None:
    assert Reorder[str](0.0).offer("cam", 9, "e9", 0.0) == ["e9"]
    r: Reorder[str] = Reorder(5.0)
    r.know("a", 1)
    r.know("b", 1)
    r.offer("a", 5, "a5", 0.0)
    r.offer("a", 3, "a3", 0.0)
    r.offer("b", 4, "b4", 0.0)
    assert r.flush() == [("a", "a3"), ("a", "a5"), ("b", "b4")]
    assert r.held() == 0 and r.offer("a", 6, "a6", 0.0) == ["a6"]
    with pytest.raises(ValueError):
        Reorder(-1.0)


def test_a_negative_hold_is_refused_with_its_reason() -> None:
    with pytest.raises(ValueError, match=r"^hold_s must be >= 0$"):
        Reorder(-0.5)


def test_get_for_a_camera_never_seen_is_none() -> None:
    r: Reorder[str] = Reorder(2.0)
    assert r.get("nobody", 1) is None


def test_hold_zero_never_waits_even_for_a_known_camera_and_a_short_hold_does() -> None:
    r: Reorder[str] = Reorder(0.0)
    r.know("cam", 1)
    assert r.offer("cam", 9, "e9", 0.0) == ["e9"] and r.held() == 0
    short: Reorder[str] = Reorder(0.5)
    short.know("cam", 1)
    assert short.offer("cam", 9, "e9", 0.0) == []
    assert short.due(0.5) == [("cam", "e9")]


def test_after_a_flush_numbering_goes_on_from_the_last_flushed() -> None:
    r: Reorder[str] = Reorder(2.0)
    r.know("cam", 1)
    r.offer("cam", 3, "e3", 0.0)
    assert r.flush() == [("cam", "e3")]
    assert r.offer("cam", 5, "e5", 0.1) == []  # 4 is missing after 3: waited for
    assert r.offer("cam", 4, "e4", 0.2) == ["e4", "e5"]
