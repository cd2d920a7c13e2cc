"""A whole clip as the model's windows, sampled exactly as training samples its clips.

Training, `evaluate`, `predict --clip` and the person-centric dataset all call `clip_windows`:
a whole-frame model gets the clip's `sequence_length` evenly spaced frames resized; a
person-centric one gets them at working resolution, the detector's look at every
`detect_every`-th, and one cropped window per region of people (none when nobody is there).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from har_daemon.model.meta import ModelMeta
from har_daemon.model.regions import (
    Region,
    crop_window,
    detection_frames,
    normalised,
    ring_frame,
    window_regions,
)
from har_daemon.runtime.people import Detector
from har_daemon.video.frames import extract_clip


@dataclass(frozen=True)
class ClipWindows:
    windows: np.ndarray
    """(R, T, H, W, 3) uint8: one window per region (one for a whole-frame model; R = 0 when
    a person-centric model found nobody)."""
    regions: list[list[float]]
    """Each window's region, normalised (empty for a whole-frame model)."""
    spacing_s: float


@dataclass(frozen=True)
class PersonFrames:
    """A clip's sampled frames at working resolution and the regions of people found on them:
    what a person-centric model's windows are cut from (other crops of the same regions, e.g.
    for another model's input size, are cut from these too)."""

    frames: np.ndarray  # (T, h, w, 3) uint8, working resolution
    regions: list[Region]  # working-frame pixels, largest first
    spacing_s: float


def person_frames(video: Path, meta: ModelMeta, detector: Detector) -> PersonFrames:
    """The clip's `sequence_length` frames evenly over it and its regions of people, as a
    person-centric model (`meta.person_region`) sees them."""
    rules = meta.person_region
    if rules is None:
        raise ValueError("person frames need a model with input_region 'person'")
    clip = extract_clip(video, meta.sequence_length, prepare=partial(ring_frame, meta=meta))
    frames = clip.frames
    frame_hw = (int(frames.shape[1]), int(frames.shape[2]))
    looks = [detector.detect(frames[i]) for i in detection_frames(len(frames), rules)]
    return PersonFrames(frames, window_regions(looks, frame_hw, rules), clip.spacing_s)


def clip_windows(video: Path, meta: ModelMeta, detector: Detector | None = None) -> ClipWindows:
    if meta.person_region is None:
        clip = extract_clip(video, meta.sequence_length, meta.frame_size, meta.resize_interpolation)
        return ClipWindows(clip.frames[None], [], clip.spacing_s)
    if detector is None:
        raise ValueError("a person-centric model's windows need the person detector")
    seen = person_frames(video, meta, detector)
    frames, regions = seen.frames, seen.regions
    frame_hw = (int(frames.shape[1]), int(frames.shape[2]))
    if not regions:
        empty = np.zeros((0, len(frames), *meta.frame_size, 3), np.uint8)
        return ClipWindows(empty, [], seen.spacing_s)
    windows = np.stack(
        [crop_window(frames, r, meta.frame_size, meta.resize_interpolation) for r in regions]
    )
    return ClipWindows(windows, [normalised(r, frame_hw) for r in regions], seen.spacing_s)
