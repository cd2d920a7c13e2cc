"""A second look, turned by 90 degrees, at a person who went down and was then lost or poorly
seen: the person detector and MoveNet learned on mostly upright people and lose someone lying
across the view (GMDCSA24 actor 3), so the fall rule had one sample or none to judge.

When a tracked person's hips or box top went down fast within the rule's `look_s`, and at this
sample the detector found no box for them or their keypoints are poorly seen, the region around
their last box (model.rotated) is looked at again turned a quarter turn both ways; the better
of the two gives the track this sample's keypoints (and box, for a lost person). People walking
about never go down fast, so they cost nothing; a fall costs a few looks (`LookStats`).

`advance` is the one implementation used by the daemon's fall stage (runtime.falls), the
evaluation's extraction and its replay (scripts/fall_data.py): only the `looker` differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from har_daemon.model.pose import KEYPOINTS, MIN_SIDE_PX, posable
from har_daemon.model.pose_features import Features, coverage
from har_daemon.model.rotated import box_to_frame, keypoint_box, look_region, to_frame, turn_crop
from har_daemon.runtime.people import Detector
from har_daemon.runtime.poses import Box, PersonTrack, PoseTracks

DOWN_SPEED = 0.5
"""Standing heights per second, hips or box top, between two samples: a person going down (a
fall drops the hips 0.3-0.5 standing heights within about half a second; walking bobs them by a
few hundredths)."""
DOWN_DROP = 0.1
"""... ending at least this far (standing heights, hips or box top) below where they stood: a
small person's keypoints jitter at that speed without going anywhere."""
LOOK_MIN_PX = 80.0
"""People standing shorter than this (pixels) are not looked at again: MoveNet's keypoints
are poor below ~60 px, and a crowd of small people (a school gym) jitters into looks."""
POOR_COVERAGE = 0.65
"""A person in view with fewer keypoints seen than this share is looked at again (the shipped
rule's `min_coverage`: what a person in view needs to count)."""
LOOK_COVERAGE = 0.5
"""A lost person's second look counts only with at least this share of keypoints seen."""
LookMode = Literal["pose", "detect"]
LOOK_MODE: LookMode = "detect"
""""detect": the person detector on the turned region, then MoveNet on its best box; "pose":
MoveNet on the turned region alone. Chosen from the data (docs/pose-and-falls.md): held out
both found 10 of 16 falls, the detector's alerted 1 of 27 everyday clips against 2, at about
1.7 times the calls."""

Found = tuple[np.ndarray, np.ndarray]
"""A second look's person: an `x1, y1, x2, y2, score` box and (17, 3) keypoints, frame pixels."""
Looker = Callable[[int, Box], Found | None]
"""(track id, the box to look around) -> what a second look found there, if anyone."""


class PoseModel(Protocol):
    def estimate(self, frame_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N, 17, 3) keypoints `x, y, score` in frame pixels, one set per box."""
        ...


def estimate_posable(
    pose: PoseModel, frame: np.ndarray, boxes: np.ndarray, min_side: float = MIN_SIDE_PX
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, 3) keypoints for the (N, 5) `boxes` and which of them were posed: the pose
    model's for those big enough (`model.pose.posable`), none seen (all zero) for the others,
    whom the rule's keypoints then never have down (under its `min_coverage`) and who cost no
    pose call. Their boxes still go to the tracks as before, so who matches whom does not
    change."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
    out = np.zeros((len(boxes), len(KEYPOINTS), 3), np.float32)
    big = posable(boxes, min_side)
    if big.any():
        out[big] = pose.estimate(frame, boxes[big])
    return out, big


def went_down(ring: Sequence[Features], t: float, look_s: float) -> bool:
    """Whether the track's hips or box top went down at `DOWN_SPEED` or faster between two
    samples, to at least `DOWN_DROP` below standing, the later sample at most `look_s` before
    `t`, by a person standing at least `LOOK_MIN_PX` tall."""
    pairs = zip(ring, list(ring)[1:], strict=False)
    for a, b in pairs:
        if t - b.t > look_s + 1e-6 or b.t <= a.t or b.height_px < LOOK_MIN_PX:
            continue
        dt = b.t - a.t
        hips = b.hip_drop >= DOWN_DROP and (b.hip_drop - a.hip_drop) / dt >= DOWN_SPEED
        edge = a.at_edge or b.at_edge
        top = not edge and b.top_drop >= DOWN_DROP and (b.top_drop - a.top_drop) / dt >= DOWN_SPEED
        if hips or top:  # False for nan
            return True
    return False


def should_look(
    ring: Sequence[Features], t: float, coverage_now: float | None, look_s: float
) -> bool:
    """A second look at sample `t` for a track with these features: it went down fast within
    `look_s` and is now lost (`coverage_now` None) or seen with under `POOR_COVERAGE`."""
    if look_s <= 0 or not ring:
        return False
    if coverage_now is not None and coverage_now >= POOR_COVERAGE:
        return False
    return went_down(ring, t, look_s)


def advance(
    tracks: PoseTracks,
    t: float,
    boxes: np.ndarray,
    keypoints: Sequence[np.ndarray],
    frame_hw: tuple[int, int] | None,
    look_s: float,
    looker: Looker,
) -> list[PersonTrack]:
    """`tracks.update` with this sample's boxes and keypoints, after a second look for every
    track that `should_look`: a lost person found again continues their track; a poorly seen
    one takes the second look's keypoints when more of them are seen. Returns the updated
    tracks of every box (the second looks' persons last)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
    kps = [np.asarray(k, np.float32) for k in keypoints]
    assigned: list[PersonTrack | None] = list(tracks.match(boxes))
    if look_s > 0:
        for track in list(tracks.tracks):
            i = next((j for j, a in enumerate(assigned) if a is track), None)
            cov = coverage(kps[i]) if i is not None else None
            if not should_look(track.ring, t, cov, look_s):
                continue
            found = looker(track.id, tuple(boxes[i, :4]) if i is not None else track.box)
            if found is None:
                continue
            box, kp = found
            if i is None and coverage(kp) >= LOOK_COVERAGE:
                boxes = np.concatenate([boxes, np.asarray(box, np.float32).reshape(1, 5)])
                kps.append(np.asarray(kp, np.float32))
                assigned.append(track)
            elif i is not None and cov is not None and coverage(kp) > cov:
                kps[i] = np.asarray(kp, np.float32)
    return tracks.update(t, boxes, kps, frame_hw, assigned)


@dataclass
class LookStats:
    looks: int = 0
    """Second looks (regions looked at, two turns each)."""
    calls: int = 0
    """Extra model calls they made (detector and pose)."""


@dataclass
class RotatedLook:
    """The models' second look at a region, turned both ways; the better turn wins (more
    keypoints seen, then the higher mean keypoint score)."""

    detector: Detector
    pose: PoseModel
    mode: LookMode = LOOK_MODE
    stats: LookStats = field(default_factory=LookStats)

    def look(self, frame: np.ndarray, box: Box) -> Found | None:
        region = look_region(box, (int(frame.shape[0]), int(frame.shape[1])))
        if region is None:
            return None
        self.stats.looks += 1
        best: tuple[tuple[float, float], Found] | None = None
        for clockwise in (True, False):
            img = turn_crop(frame, region, clockwise)
            if self.mode == "detect":
                found = np.asarray(self.detector.detect(img), np.float32).reshape(-1, 5)
                self.stats.calls += 1
                if not len(found):
                    continue
                turned_box = found[int(np.argmax(found[:, 4]))]
            else:
                turned_box = np.array([0, 0, img.shape[1], img.shape[0], 1.0], np.float32)
            kp_turned = self.pose.estimate(img, turned_box[None])[0]
            self.stats.calls += 1
            kp = to_frame(kp_turned, region, clockwise).astype(np.float32)
            frame_box = (
                box_to_frame(turned_box, region, clockwise)
                if self.mode == "detect"
                else keypoint_box(kp)
            )
            if frame_box is None:
                continue
            key = (coverage(kp), float(np.mean(kp[:, 2])))
            if best is None or key > best[0]:
                best = (key, (frame_box, kp))
        return best[1] if best is not None else None
