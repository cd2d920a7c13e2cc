"""A camera's zones and masks: named polygons in normalised coordinates.

Zones say where people are (events carry them; an activity may require one: the camera's
`required_zones`); masks are areas never analysed (a screen, a road, a tree). The polygons are
checked when the configuration is read (`core.polygons.polygon_problem`), by the camera, so the
one-line error names the camera and the zone.
"""

from __future__ import annotations

from pydantic import Field

from har_daemon.config.types import SLUG_PATTERN, Section

MAX_POINTS = 100
MAX_POLYGONS = 32

PolygonPoints = list[tuple[float, float]]


class ZoneConfig(Section):
    """One [[cameras.zones]] entry."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        title="Zone name",
        description="Unique per camera; shown in events and Home Assistant (letters, digits, "
        "'-', '_').",
    )
    points: PolygonPoints = Field(
        ...,
        min_length=3,
        max_length=MAX_POINTS,
        title="Polygon",
        description="[x, y] points in order around the area, as fractions of the frame's width "
        "and height (0..1, top left 0,0). At least 3; the last joins the first.",
    )


class MaskConfig(Section):
    """One [[cameras.masks]] entry."""

    name: str = Field(
        "mask",
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        title="Mask name",
        description="A label for logs and the debug view.",
    )
    points: PolygonPoints = Field(
        ...,
        min_length=3,
        max_length=MAX_POINTS,
        title="Polygon",
        description="[x, y] points in order around the area never analysed, as fractions of "
        "the frame (0..1). People standing in it are ignored; its pixels are blanked before "
        "detection, motion and scene-cut checks.",
    )
