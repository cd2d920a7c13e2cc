"""A camera's person stage: when to look for people, where they were, which region is which.

Runs on the inference thread, the detector's only caller. The detector looks at the newest
sampled frame every `detect_every` frames (every 0.5 s at the usual 0.1 s spacing and 5: the
window's regions are the union of four looks, so one missed detection does not lose a person),
and not at all while the picture is still and the last look found nobody: an empty, static
scene costs neither detection nor inference. A window's regions come from the people found
during its span (`model.regions`); each region is matched to the region tracks of the previous
windows by overlap, so the smoothing of its scores follows the same group of people.

Region tracking here is a greedy overlap match between at most a handful of square regions at
2 Hz. norfair (numpy < 2) and supervision (matplotlib, av, pillow, requests, scipy into the
daemon's install) were considered and did not fit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from har_daemon.model.meta import PersonRegion
from har_daemon.model.regions import Region, close_pair, inside, kept_area, window_regions
from har_daemon.runtime.smoothing import Smoother
from har_daemon.runtime.zones import CameraZones

STILL = 0.01
"""Mean absolute change (fraction of full scale) of a 32x32 grey thumbnail below which the
picture counts as unchanged since the last look."""
MATCH_IOU = 0.2
"""Overlap a region needs with a track's last region to continue it."""
MISSED_WINDOWS = 2
"""Windows a track may go without a region before it is forgotten."""


class Detector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """(N, 5) person boxes `x1, y1, x2, y2, score` in the frame's pixels."""
        ...


def _thumb(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.int16)


def iou(a: Region, b: Region) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class RegionTrack:
    """One group of people followed across windows, with its own score smoothing."""

    id: int
    region: Region
    smoother: Smoother
    missed: int = 0


@dataclass
class PeopleStats:
    detections: int = 0
    detections_skipped: int = 0  # still picture, nobody there at the last look
    detections_masked: int = 0  # skipped: the masks cover the whole picture
    no_person_windows: int = 0
    gated_windows: int = 0  # region windows the interaction gate kept from alerting


@dataclass
class PeopleStage:
    detector: Detector
    rules: PersonRegion
    new_smoother: Callable[[], Smoother]
    span_s: float
    """Seconds one window covers: how long a look stays relevant."""
    zones: CameraZones | None = None
    interaction_gap: float | None = None
    """The interaction gate (body heights; None: off): a region's window may raise a fight
    only when two people in it were this close on one look."""
    stats: PeopleStats = field(default_factory=PeopleStats)
    last_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    kept_area: Region | None = None
    """Where the people of the last window span were, with a margin (`regions.kept_area`): the
    part of the coming frames the camera's ring keeps at full resolution."""
    _looks: deque[tuple[float, np.ndarray]] = field(default_factory=deque)
    _last_count: int | None = None
    _last_thumb: np.ndarray | None = None
    _last_found: bool = False
    _tracks: list[RegionTrack] = field(default_factory=list)
    _next_id: int = 1

    # -- looking -----------------------------------------------------------------------------

    def due(self, count: int) -> bool:
        """True when the ring's newest frame (push number `count`) should be looked at."""
        return self._last_count is None or count - self._last_count >= self.rules.detect_every

    def look(self, frame: np.ndarray, t: float, count: int) -> np.ndarray:
        """Detect people on `frame` (the ring's newest), unless the picture is still and the
        last look found nobody; returns the boxes (the fall stage shares them)."""
        self._last_count = count
        thumb = _thumb(frame)
        still = (
            self._last_thumb is not None
            and float(np.abs(thumb - self._last_thumb).mean()) / 255.0 < STILL
        )
        masks = self.zones
        frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
        if masks is not None and masks.raster(frame_hw) is not None and masks.all_masked:
            self.stats.detections_masked += 1
            boxes = np.zeros((0, 5), np.float32)
        elif still and not self._last_found:
            self.stats.detections_skipped += 1
            boxes = np.zeros((0, 5), np.float32)
        else:
            boxes = np.asarray(self.detector.detect(frame), np.float32).reshape(-1, 5)
            self.stats.detections += 1
            self._last_thumb = thumb
            if masks is not None:
                boxes = masks.unmasked(boxes, frame_hw)
        self._last_found = bool(len(boxes))
        self.last_boxes = boxes  # one reference swap: the debug view reads it from its thread
        self._looks.append((t, boxes))
        while self._looks and self._looks[0][0] < t - 2 * self.span_s:
            self._looks.popleft()
        self.kept_area = kept_area(frame_hw, self.regions(t - self.span_s, t, frame_hw))
        return boxes

    def reset(self) -> None:
        """A stream gap: people seen before it say nothing about the picture after it."""
        self._looks.clear()
        self._tracks.clear()
        self.last_boxes = np.zeros((0, 5), np.float32)
        self.kept_area = None
        self._last_count = None
        self._last_thumb = None
        self._last_found = False

    # -- a window's regions ------------------------------------------------------------------

    def regions(self, t_first: float, t_last: float, frame_hw: tuple[int, int]) -> list[Region]:
        """The regions of the window whose frames span [t_first, t_last]."""
        looks = [boxes for t, boxes in self._looks if t_first - 1e-6 <= t <= t_last + 1e-6]
        return window_regions(looks, frame_hw, self.rules)

    def interacting(self, t_first: float, t_last: float, region: Region) -> bool:
        """Whether the window's looks show two people close together in `region` (always
        true with the gate off)."""
        if self.interaction_gap is None:
            return True
        for t, boxes in self._looks:
            if t_first - 1e-6 <= t <= t_last + 1e-6:
                people = inside(boxes[boxes[:, 4] >= self.rules.min_score], region)
                if close_pair(people, self.interaction_gap):
                    return True
        self.stats.gated_windows += 1
        return False

    def boxes(self, t_first: float, t_last: float) -> np.ndarray:
        """Every person box of the looks within [t_first, t_last] (N, 5)."""
        looks = [b for t, b in self._looks if t_first - 1e-6 <= t <= t_last + 1e-6]
        return np.concatenate(looks) if looks else np.zeros((0, 5), np.float32)

    def zones_in(
        self, region: Region, t_first: float, t_last: float, frame_hw: tuple[int, int]
    ) -> list[str] | None:
        """The zones the people of `region` stood in during the window; None without zones."""
        if self.zones is None or not self.zones.zones:
            return None
        boxes = self.boxes(t_first, t_last)
        people = inside(boxes[boxes[:, 4] >= self.rules.min_score], region)
        return self.zones.zones_of(people, frame_hw)

    def tracks_for(self, regions: Sequence[Region]) -> list[RegionTrack]:
        """The track of each region (new ones for regions that continue none); tracks without
        a region for `MISSED_WINDOWS` windows are forgotten."""
        free = list(self._tracks)
        out: list[RegionTrack] = []
        for region in regions:
            best = max(free, key=lambda tr: iou(tr.region, region), default=None)
            if best is not None and iou(best.region, region) >= MATCH_IOU:
                free.remove(best)
                best.region, best.missed = region, 0
                out.append(best)
            else:
                track = RegionTrack(self._next_id, region, self.new_smoother())
                self._next_id += 1
                self._tracks.append(track)
                out.append(track)
        for track in free:
            track.missed += 1
        self._tracks = [tr for tr in self._tracks if tr.missed < MISSED_WINDOWS]
        return out
