"""Person tracks with their pose features: each sampled frame costs one feature set per person.

The person stage's region tracks follow groups of people for the activity model; a fall is one
person's, so here each detected person box is matched to a person track by overlap (greedy,
best first: a handful of people at a few samples per second), and the track keeps the last
`RING` feature sets and the person's upright reference (model.pose_features).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from har_daemon.model.fight_pose_features import Pose
from har_daemon.model.pose_features import (
    RING,
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


Box = tuple[float, float, float, float]


@dataclass
class PersonTrack:
    """One person followed across samples, with their last `RING` feature sets."""

    id: int
    box: Box
    ring: deque[Features] = field(default_factory=lambda: deque(maxlen=RING))
    poses: deque[Pose] = field(default_factory=lambda: deque(maxlen=RING))
    """The keypoints behind `ring`, for the fight's pose features (model.fight_pose_features)."""
    reference: Reference | None = None
    last: tuple[float, Observation] | None = None
    missed: int = 0
    first_t: float = 0.0


def box_centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def inside_box(point: tuple[float, float], box: Box) -> bool:
    """Edges included."""
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _match(free: list[PersonTrack], box: Box) -> PersonTrack | None:
    """The track `box` continues: the best overlap of at least `MATCH_IOU`, else the nearest
    track whose box holds the new box's centre or the other way round (a person who falls
    turns a tall box into a wide one that overlaps it little)."""
    best = max(free, key=lambda tr: iou(tr.box, box), default=None)
    if best is not None and iou(best.box, box) >= MATCH_IOU:
        return best
    centre = box_centre(box)
    near = [tr for tr in free if inside_box(centre, tr.box) or inside_box(box_centre(tr.box), box)]
    return min(
        near,
        key=lambda tr: sum(abs(a - b) for a, b in zip(box_centre(tr.box), centre, strict=True)),
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
        """The track each box would continue (None: a new person), without changing any."""
        free = list(self.tracks)
        out: list[PersonTrack | None] = []
        for i in range(len(boxes)):  # the detector's order: best score first
            track = _match(free, _box(boxes[i]))
            if track is not None:
                free.remove(track)
            out.append(track)
        return out

    def update(
        self,
        t: float,
        boxes: np.ndarray,
        keypoints: Sequence[np.ndarray],
        frame_hw: tuple[int, int] | None = None,
        assigned: Sequence[PersonTrack | None] | None = None,
    ) -> list[PersonTrack]:
        """Add one sampled frame's people ((N, >=4) boxes, N (17, 3) keypoint sets); returns
        the track of each box, in order. `assigned`: the tracks the boxes continue, when the
        caller matched them (`match`, plus a second look's person: runtime.lying). Unmatched
        tracks age and are dropped when stale."""
        assigned = self.match(boxes) if assigned is None else assigned
        free = list(self.tracks)
        out: list[PersonTrack] = []
        for i in range(len(boxes)):
            box = _box(boxes[i])
            track = assigned[i]
            if track is not None:
                free.remove(track)
            else:
                track = PersonTrack(self._next_id, box, first_t=t)
                self._next_id += 1
                self.tracks.append(track)
            obs = observe(keypoints[i], boxes[i], frame_hw)
            feats = features(t, obs, track.reference, track.last)
            track.ring.append(feats)
            track.poses.append(Pose(t, np.asarray(keypoints[i], np.float32), feats.height_px, box))
            dt = t - track.last[0] if track.last is not None else 0.0
            track.reference = update_reference(track.reference, obs, dt)
            track.last, track.box, track.missed = (t, obs), box, 0
            out.append(track)
        for track in free:
            track.missed += 1
        self.tracks = [tr for tr in self.tracks if tr.missed <= MISSED_SAMPLES]
        return out

    def reset(self) -> None:
        self.tracks.clear()
