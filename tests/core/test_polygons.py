"""Zone and mask geometry: validity (core.polygons), point in polygon and the mask raster
(video.zone_geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.core.polygons import MIN_AREA, area, open_ring, polygon_problem, self_intersects
from har_daemon.video.zone_geometry import contains, foot_point, mask_raster, zones_at

SQUARE = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]


def test_closing_point_is_dropped() -> None:
    assert open_ring([*SQUARE, SQUARE[0]]) == SQUARE
    assert polygon_problem([*SQUARE, SQUARE[0]]) is None


def test_area_is_a_fraction_of_the_frame() -> None:
    assert area(SQUARE) == pytest.approx(0.25)
    assert area(SQUARE[::-1]) == pytest.approx(0.25)  # either winding


@pytest.mark.parametrize(
    ("points", "words"),
    [
        ([(0, 0), (1, 0)], "at least 3"),
        ([(0, 0), (1, 0), (0, 0)], "at least 3"),  # a closed two-point ring
        ([(0, 0), (1.2, 0), (0, 1)], "outside the frame"),
        ([(0, -0.1), (1, 0), (0, 1)], "outside the frame"),
        ([(0, 0), (1, 0), (0.5, 1.5)], "outside the frame"),
        ([(0, 0), (0.5, 0.5), (1, 1)], "no area"),
        ([(0.1, 0.1), (0.1001, 0.1), (0.1, 0.1001)], "no area"),
        ([(0, 0), (1, 1), (1, 0), (0, 1)], "crosses itself"),  # a bow tie
    ],
)
def test_bad_polygons_say_why(points: list[tuple[float, float]], words: str) -> None:
    problem = polygon_problem(points)
    assert problem is not None and words in problem


def test_open_ring_drops_only_a_repeated_closing_point() -> None:
    p = (0.5, 0.5)
    assert open_ring([p]) == [p]  # one point is not its own closing point
    assert open_ring([p, p]) == [p]
    assert polygon_problem([p]) == "needs at least 3 distinct points, got 1"


def test_area_of_a_triangle_and_of_fewer_points() -> None:
    assert area([(0, 0), (1, 0), (0, 1)]) == pytest.approx(0.5)
    assert area([(0.2, 0.2), (0.8, 0.6)]) == 0.0
    assert area([(0.2, 0.2)]) == 0.0 and area([]) == 0.0


def test_a_polygon_of_exactly_the_least_area_is_accepted() -> None:
    tiny = [(0, 0), (0.01, 0), (0.01, 0.01), (0, 0.01)]
    assert area(tiny) == MIN_AREA and polygon_problem(tiny) is None


BOW_TIE = [(0.1, 0.2), (0.9, 0.8), (0.9, 0.2), (0.1, 0.8)]
NOTCHED = [(0.1, 0.1), (0.9, 0.1), (0.9, 0.9), (0.6, 0.9), (0.5, 0.1), (0.4, 0.9), (0.1, 0.9)]
"""A square with a notch cut from the top whose tip touches the bottom edge: touching is not
crossing."""


def _orders(points: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """The same polygon listed from each of its points, in either winding."""
    turns = [points[k:] + points[:k] for k in range(len(points))]
    return turns + [t[::-1] for t in turns]


@pytest.mark.parametrize("points", _orders(BOW_TIE))
def test_a_bow_tie_crosses_itself_whichever_point_the_list_starts_at(
    points: list[tuple[float, float]],
) -> None:
    assert self_intersects(points)
    problem = polygon_problem(points)
    assert problem is not None and problem.startswith("crosses itself")


@pytest.mark.parametrize("points", _orders(NOTCHED))
def test_a_vertex_touching_another_edge_is_not_a_crossing(
    points: list[tuple[float, float]],
) -> None:
    assert not self_intersects(points) and polygon_problem(points) is None


def test_concave_polygon_is_valid_and_not_self_intersecting() -> None:
    l_shape = [(0, 0), (0.5, 0), (0.5, 0.5), (1, 0.5), (1, 1), (0, 1)]
    assert polygon_problem(l_shape) is None and not self_intersects(l_shape)
    assert contains(l_shape, 0.25, 0.75) and not contains(l_shape, 0.75, 0.25)


def test_contains_counts_the_edge_as_inside() -> None:
    assert contains(SQUARE, 0.5, 0.5)
    assert contains(SQUARE, 0.25, 0.5)
    assert not contains(SQUARE, 0.1, 0.5)


def test_zones_at_keeps_the_configured_order() -> None:
    zones = {"b": SQUARE, "a": [(0, 0), (1, 0), (1, 1), (0, 1)], "c": [(0, 0), (0.1, 0), (0, 0.1)]}
    assert zones_at(zones, 0.5, 0.5) == ["b", "a"]
    assert zones_at(zones, 0.9, 0.9) == ["a"]


def test_mask_raster_covers_the_polygon_only() -> None:
    raster = mask_raster([SQUARE], (100, 200))
    assert raster is not None and raster.shape == (100, 200) and raster.dtype == bool
    assert raster[50, 100] and not raster[10, 10] and not raster[90, 190]
    assert raster.mean() == pytest.approx(0.25, abs=0.02)
    assert mask_raster([], (10, 10)) is None


def test_foot_point_is_the_bottom_middle() -> None:
    assert foot_point(np.array([10, 20, 30, 80, 0.9]), (100, 200)) == (0.1, 0.8)
