"""A camera's zones and masks at run time: what the pipeline asks of them, built once per camera.

* Masks: the ring's frames have the masked pixels blanked (`blank`) before anything looks at
  them, so the person detector, the motion and scene-cut checks and the activity model never
  see those areas; a person box whose foot point lies in a mask is dropped (`unmasked`).
* Zones: the zones a window's people stand in (`zones_of`); an activity that requires zones
  (`allows`) scores 0 for people outside all of them (`gate`, the classifier's), so it can
  neither start nor continue there; a fall outside them does not start
  (`runtime.recognisers`).

The geometry is `video.zone_geometry`; the rasters are cached per frame size (a camera's working
frame size is fixed for a stream).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from har_daemon.config import CameraConfig
from har_daemon.core.polygons import Polygon
from har_daemon.model.meta import ModelMeta
from har_daemon.model.person import MEAN_BGR
from har_daemon.video.zone_geometry import foot_point, mask_raster, zones_at

BLANK_BGR = np.round(MEAN_BGR).astype(np.uint8)
"""What masked pixels become: the detector's mean colour, zero after its normalisation, so a
masked area reads as nothing at all (and, being constant, as no motion)."""


@dataclass
class ZoneStats:
    masked_boxes: int = 0  # person boxes dropped because their foot point lay in a mask
    masked_fraction: float = 0.0  # share of the analysed frame the masks cover


@dataclass
class CameraZones:
    zones: dict[str, Polygon]
    masks: list[Polygon]
    required: dict[str, frozenset[str]]
    """Activity -> the zones its people must stand in."""
    classes: tuple[str, ...] = ()
    """The classifier's classes, in the order of its scores (`gate`)."""
    stats: ZoneStats = field(default_factory=ZoneStats)
    _rasters: dict[tuple[int, int], np.ndarray | None] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cam: CameraConfig, classes: Sequence[str]) -> CameraZones | None:
        """The camera's zones, or None when it has neither zones nor masks."""
        if not (cam.zones or cam.masks):
            return None
        return cls(
            zones={z.name: z.points for z in cam.zones},
            masks=[m.points for m in cam.masks],
            required={a: frozenset(z) for a, z in cam.required_zones.items()},
            classes=tuple(classes),
        )

    # -- masks -----------------------------------------------------------------------------

    def raster(self, frame_hw: tuple[int, int]) -> np.ndarray | None:
        if frame_hw not in self._rasters:
            raster = mask_raster(self.masks, frame_hw)
            self._rasters[frame_hw] = raster
            self.stats.masked_fraction = 0.0 if raster is None else float(raster.mean())
        return self._rasters[frame_hw]

    @property
    def all_masked(self) -> bool:
        """Nothing left to analyse: detection can be skipped outright."""
        return self.stats.masked_fraction >= 0.999

    def blank(self, frame: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
        """`frame` with the masked pixels blanked; copied first when it shares memory with
        `source` (the decoded frame, which snapshots and clips still use whole)."""
        raster = self.raster((int(frame.shape[0]), int(frame.shape[1])))
        if raster is None:
            return frame
        if source is not None and np.shares_memory(frame, source):
            frame = frame.copy()
        frame[raster] = BLANK_BGR if frame.ndim == 3 else int(BLANK_BGR.mean())
        return frame

    def unmasked(self, boxes: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
        """The boxes whose person does not stand in a mask (counted in `stats`)."""
        raster = self.raster(frame_hw)
        if raster is None or not len(boxes):
            return boxes
        h, w = frame_hw
        keep = []
        for box in boxes:
            fx, fy = foot_point(box, frame_hw)
            keep.append(not raster[min(h - 1, int(fy * h)), min(w - 1, int(fx * w))])
        kept = boxes[np.asarray(keep, bool)]
        self.stats.masked_boxes += len(boxes) - len(kept)
        return kept

    # -- zones -----------------------------------------------------------------------------

    def zones_of(self, boxes: np.ndarray, frame_hw: tuple[int, int]) -> list[str]:
        """The zones any of the boxes' people stands in, in the configuration's order."""
        found: set[str] = set()
        for box in boxes:
            found.update(zones_at(self.zones, *foot_point(box, frame_hw)))
        return [name for name in self.zones if name in found]

    def allows(self, activity: str, zones: Collection[str]) -> bool:
        """Whether `activity` may be raised by people standing in `zones`: it requires none,
        or one of its required zones is among them."""
        need = self.required.get(activity)
        return need is None or not need.isdisjoint(zones)

    def gate(self, probs: np.ndarray, zones: Collection[str]) -> np.ndarray:
        """`probs` (the classifier's) with each activity `zones` do not allow set to 0."""
        blocked = [i for i, c in enumerate(self.classes) if not self.allows(c, zones)]
        if not blocked:
            return probs
        out = np.array(probs, dtype=np.float32, copy=True)
        out[blocked] = 0.0
        return out


def zone_problem(cam: CameraConfig, meta: ModelMeta) -> str | None:
    """Why the camera's required zones cannot work with this model, or None. An activity is
    the model's class or the camera's other recogniser's (`fall`)."""
    if not cam.required_zones:
        return None
    others = cam.recogniser_activities
    unknown = sorted(set(cam.required_zones) - set(meta.classes) - set(others))
    if unknown:
        also = f", and the camera's recognisers raise {', '.join(others)}" if others else ""
        return (
            f"camera {cam.name!r}: required_zones names unknown activit"
            f"{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))}; the "
            f"model's classes are {', '.join(meta.classes)}{also}"
        )
    if meta.person_region is None:
        return (
            f"camera {cam.name!r}: required_zones needs a person-centric model (one that finds "
            f"people); {meta.name} classifies whole frames"
        )
    return None
