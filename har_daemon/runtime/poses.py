"""Person tracks with their pose features: each sampled frame costs one feature set per person.

The person stage's region tracks follow groups of people for the activity model; a fall is one
person's, so here each detected person box is matched to a person track by overlap (greedy,
best first: a handful of people at a few samples per second), and the track keeps the last
`RING` feature sets and the person's upright reference (model.pose_features).

Pose is the fall's main cost after the detector, so a person standing upright whose box kept its
top and bottom (`carried_keypoints`) gets the keypoints last estimated for them, moved with the
box, instead of a new estimate: nothing about them that a fall needs has changed.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from har_daemon.model.pose_features import (
    RING,
    TOP_COVERAGE,
    UPRIGHT_DEG,
    Features,
    Observation,
    Reference,
    features,
    observe,
    update_reference,
)
from har_daemon.runtime.people import iou

MATCH_IOU = 0.3
"""Overlap a box needs with a track's last box to continue it (people move little in 0.2 s)."""
MISSED_SAMPLES = 5
"""Samples a track may go unseen (1 s at 0.2 s) before it is forgotten: a person who fell is
often missed by the detector for a frame or two."""
STILL_SHARE = 0.1
"""A box as tall as (within this share) and with its top no lower (by this share of its height)
than when the track's keypoints were estimated is still: an upright person's keypoints are
carried, not estimated. A fall lowers the top by 0.2-0.5 of the height within 0.2 s; sitting
or bending down lowers it by more than this within a look or two."""


Box = tuple[float, float, float, float]


@dataclass
class PersonTrack:
    """One person followed across samples, with their last `RING` feature sets."""

    id: int
    box: Box
    ring: deque[Features] = field(default_factory=lambda: deque(maxlen=RING))
    reference: Reference | None = None
    last: tuple[float, Observation] | None = None
    missed: int = 0
    first_t: float = 0.0
    keypoints: np.ndarray | None = None
    """The last estimated (17, 3) keypoints, and the box they were estimated in."""
    pose_box: Box | None = None


def carried_keypoints(track: PersonTrack | None, box: Box) -> np.ndarray | None:
    """The track's last estimated keypoints moved and scaled with the box, when the person was
    last seen upright and well (torso under `UPRIGHT_DEG`, `TOP_COVERAGE` of the keypoints) and
    the box is still as tall (within `STILL_SHARE`, or up to twice that taller: walking closer)
    and its top went down by less than `STILL_SHARE` of its height; None: estimate anew."""
    if track is None or track.keypoints is None or track.pose_box is None or track.last is None:
        return None
    obs = track.last[1]
    if math.isnan(obs.torso_deg) or obs.torso_deg >= UPRIGHT_DEG or obs.coverage < TOP_COVERAGE:
        return None
    x1, y1, x2, y2 = track.pose_box
    scale = (box[3] - box[1]) / max(y2 - y1, 1.0)
    if not 1 - STILL_SHARE < scale < 1 + 2 * STILL_SHARE:
        return None
    if box[1] - y1 >= STILL_SHARE * (y2 - y1):
        return None
    kp = track.keypoints.copy()  # about the box's top centre, where the head is
    kp[:, 0] = (kp[:, 0] - (x1 + x2) / 2) * scale + (box[0] + box[2]) / 2
    kp[:, 1] = (kp[:, 1] - y1) * scale + box[1]
    return kp


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _match(free: list[PersonTrack], box: Box) -> PersonTrack | None:
    """The track `box` continues: the best overlap of at least `MATCH_IOU`, else the nearest
    track whose box holds the new box's centre or the other way round (a person who falls
    turns a tall box into a wide one that overlaps it little)."""
    best = max(free, key=lambda tr: iou(tr.box, box), default=None)
    if best is not None and iou(best.box, box) >= MATCH_IOU:
        return best
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    near = [
        tr
        for tr in free
        if _inside(centre, tr.box) or _inside(((tr.box[0] + tr.box[2]) / 2,
                                               (tr.box[1] + tr.box[3]) / 2), box)
    ]  # fmt: skip
    return min(
        near,
        key=lambda tr: (
            abs((tr.box[0] + tr.box[2]) / 2 - centre[0])
            + abs((tr.box[1] + tr.box[3]) / 2 - centre[1])
        ),
        default=None,
    )


def _box(row: np.ndarray) -> Box:
    x1, y1, x2, y2 = (float(v) for v in row[:4])
    return (x1, y1, x2, y2)


@dataclass
class PoseTracks:
    """All person tracks of one camera."""

    tracks: list[PersonTrack] = field(default_factory=list)
    _next_id: int = 1

    def match(self, boxes: np.ndarray) -> list[PersonTrack | None]:
        """The track each box continues (None: a new person), as `update` will match them."""
        free = list(self.tracks)
        out: list[PersonTrack | None] = []
        for row in boxes:  # the detector's order: best score first
            track = _match(free, _box(row))
            if track is not None:
                free.remove(track)
            out.append(track)
        return out

    def keypoints(
        self, boxes: np.ndarray, estimate: Callable[[np.ndarray], np.ndarray]
    ) -> tuple[np.ndarray, list[bool]]:
        """Keypoints for every box: carried for a still, upright person (`carried_keypoints`),
        else from `estimate` (called once, with the indices of the boxes that need it); and
        which of them were estimated."""
        out = np.zeros((len(boxes), 17, 3), np.float32)
        need = []
        for i, track in enumerate(self.match(boxes)):
            kp = carried_keypoints(track, _box(boxes[i]))
            if kp is None:
                need.append(i)
            else:
                out[i] = kp
        if need:
            out[need] = estimate(np.asarray(need))
        return out, [i in need for i in range(len(boxes))]

    def update(
        self,
        t: float,
        boxes: np.ndarray,
        keypoints: Sequence[np.ndarray],
        frame_hw: tuple[int, int] | None = None,
        estimated: Sequence[bool] | None = None,
    ) -> list[PersonTrack]:
        """Add one sampled frame's people ((N, >=4) boxes, N (17, 3) keypoint sets, and for
        each whether it was estimated rather than carried: all, when not given); returns the
        track of each box, in order. Unmatched tracks age and are dropped when stale."""
        out: list[PersonTrack] = []
        for i, track in enumerate(self.match(boxes)):
            box = _box(boxes[i])
            if track is None:
                track = PersonTrack(self._next_id, box, first_t=t)
                self._next_id += 1
                self.tracks.append(track)
            if estimated is None or estimated[i]:
                track.keypoints, track.pose_box = np.asarray(keypoints[i], np.float32), box
            obs = observe(keypoints[i], boxes[i], frame_hw)
            track.ring.append(features(t, obs, track.reference, track.last))
            dt = t - track.last[0] if track.last is not None else 0.0
            track.reference = update_reference(track.reference, obs, dt)
            track.last, track.box, track.missed = (t, obs), box, 0
            out.append(track)
        matched = {id(tr) for tr in out}
        for track in self.tracks:
            if id(track) not in matched:
                track.missed += 1
        self.tracks = [tr for tr in self.tracks if tr.missed <= MISSED_SAMPLES]
        return out

    def reset(self) -> None:
        self.tracks.clear()
