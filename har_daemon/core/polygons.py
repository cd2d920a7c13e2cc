"""Zones and masks as polygons in normalised coordinates: their validity (pure Python).

A polygon is a list of (x, y) points, each a fraction of the frame's width and height, so one
drawing fits the sub-stream, the working frame and the main stream alike. The ring is closed
implicitly (the last point joins the first); a repeated first point at the end is accepted and
dropped. Validity is checked once, when the configuration is read (`polygon_problem`; the
configuration imports neither numpy nor OpenCV, so this is plain arithmetic on a few points);
the runtime asks where points lie and which pixels a mask covers (`video.zone_geometry`, with
OpenCV).
"""

from __future__ import annotations

from collections.abc import Sequence

Point = tuple[float, float]
Polygon = Sequence[Point]

MIN_AREA = 1e-4
"""Smallest polygon area, as a fraction of the frame (0.01 %): below it, a zone or mask is a
line or a point, most likely a typo."""


def open_ring(points: Polygon) -> list[Point]:
    """The points without a repeated closing point."""
    pts = [(float(x), float(y)) for x, y in points]
    if len(pts) > 1 and pts[0] == pts[-1]:
        pts.pop()
    return pts


def area(points: Polygon) -> float:
    """Unsigned area (shoelace formula) in the points' units."""
    pts = open_ring(points)
    n = len(pts)
    twice = sum(pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n))
    return abs(twice) / 2 if n >= 3 else 0.0


def _segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool:
    """True when segments p1-p2 and q1-q2 properly cross (touching ends do not count)."""

    def orient(a: Point, b: Point, c: Point) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


def self_intersects(points: Polygon) -> bool:
    """True when two non-adjacent edges cross (a bow tie): its inside would be ambiguous."""
    pts = open_ring(points)
    n = len(pts)
    edges = [(pts[i], pts[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # adjacent through the closing edge
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def polygon_problem(points: Polygon) -> str | None:
    """Why `points` is not a usable polygon, or None when it is."""
    pts = open_ring(points)
    if len(pts) < 3:
        return f"needs at least 3 distinct points, got {len(pts)}"
    outside = [(x, y) for x, y in pts if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0)]
    if outside:
        x, y = outside[0]
        return f"point ({x:g}, {y:g}) is outside the frame: coordinates are fractions in [0, 1]"
    if self_intersects(pts):
        return "crosses itself: list the points in order around the area"
    if area(pts) < MIN_AREA:
        return f"has no area (under {MIN_AREA:g} of the frame): the points are on a line"
    return None
