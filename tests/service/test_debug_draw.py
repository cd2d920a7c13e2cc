"""The debug view's picture (service.debug_draw, pure): the fall recogniser's people drawn in
their own colour with their state, and the view's overlay taking them from the camera."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from har_daemon.runtime.falls import TrackedPerson
from har_daemon.service.debug_draw import (
    FALL_BGR,
    REGION_BGR,
    Overlay,
    draw,
    fall_label,
    fall_people,
)
from har_daemon.service.debug_view import DebugView

FRAME = np.full((240, 320, 3), 60, np.uint8)  # drawn at twice the size (MIN_WIDTH 640)
LYING = (40.0, 150.0, 200.0, 210.0)


def test_a_person_down_is_boxed_in_the_fall_colour_where_they_lie() -> None:
    fallen = TrackedPerson(3, LYING, 2.4, True, fallen=True)
    plain = draw(FRAME, Overlay("room"))
    drawn = draw(FRAME, Overlay("room", falls=[fallen]))
    left_edge = (round((150 + 210) / 2 * 2), 40 * 2)  # (row, column) on the box's left side
    assert tuple(drawn[left_edge]) == FALL_BGR and tuple(plain[left_edge]) != FALL_BGR
    assert FALL_BGR != REGION_BGR  # told apart from the fight's regions
    away = (10, 600)
    assert tuple(drawn[away]) == tuple(plain[away]), "nothing drawn away from the person"


def test_the_state_reads_up_down_or_fallen_with_how_long() -> None:
    assert fall_label(TrackedPerson(1, LYING, None, True)) == "#1 up"
    assert fall_label(TrackedPerson(2, LYING, 0.4, True)) == "#2 down"
    assert fall_label(TrackedPerson(3, LYING, 3.46, True, fallen=True)) == "#3 FALL down 3.5 s"
    assert fall_label(TrackedPerson(4, LYING, 5.0, False, fallen=True)) == (
        "#4 FALL down 5.0 s unseen"
    )


def test_people_not_seen_are_drawn_only_while_down_and_the_fallen_on_top() -> None:
    fallen = TrackedPerson(1, LYING, 2.0, False, fallen=True)
    walked_off = TrackedPerson(2, (250.0, 20.0, 300.0, 120.0), None, False)
    standing = TrackedPerson(3, LYING, None, True)
    assert fall_people([fallen, walked_off, standing]) == [standing, fallen]
    drawn = draw(FRAME, Overlay("room", falls=[walked_off]))
    assert tuple(drawn[140, 500]) != FALL_BGR  # its left edge (column 250 x 2) is not drawn


def test_the_view_draws_the_people_of_the_cameras_fall_recogniser() -> None:
    people = (TrackedPerson(3, LYING, 2.4, True, fallen=True),)
    tracker = SimpleNamespace(
        config=SimpleNamespace(enter_threshold=0.7, exit_threshold=0.3),
        state=SimpleNamespace(activity=None),
    )
    pipeline = SimpleNamespace(
        last_result=None, tracker=tracker, people=None, zones=None,
        falls=SimpleNamespace(people=people),
    )  # fmt: skip
    view = DebugView(None, lambda: {}, lambda: None, ["fight"])  # type: ignore[arg-type]
    overlay = view.overlay(SimpleNamespace(name="room", pipeline=pipeline))  # type: ignore[arg-type]
    assert overlay.falls == people
    pipeline.falls = None
    assert view.overlay(SimpleNamespace(name="room", pipeline=pipeline)).falls == ()  # type: ignore[arg-type]
