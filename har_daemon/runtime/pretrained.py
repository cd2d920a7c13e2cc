"""A camera's pretrained appearance signal for fights, fused with the fight model's score.

The fight model (the person LRCN) alerts on brisk motion in quiet scenes; the frozen ImageNet
MobileNetV2 with a logistic head (model.pretrained_head) was as good on the fight set and far
quieter on the quiet corpus (docs/calibration.md sections 7 and 8). Each region window the
fight model scores is also embedded: the region's context square (`CONTEXT` times its side,
which the ring keeps: `regions.KEPT_MARGIN` is wider) of each of the window's frames, and the
head's P(fight) is fused with the fight model's by `pretrained_rule`.

The encoder runs at the head's `input_side`. Windows overlap (a new one every stride), so
embeddings are cached per camera by frame time and context box (only the frames that miss the
cache are cropped), and a box that overlaps a cached one of the same frame by `REUSE_IOU`
reuses its embedding: a region moves a little with its people from one window to the next,
and exact boxes missed the cache on most frames (on a looped walking clip the tolerance took
the embeddings per second of video from about 27 to the new frames' few). The cache forgets
frames older than the window being scored and holds at most `CACHE_MAX`.
Runs on the inference thread (the encoder is not thread-safe: one for all cameras there).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from har_daemon.config.inference import PretrainedRule
from har_daemon.model.meta import PersonRegion
from har_daemon.model.pretrained_head import PretrainedHead, context_box
from har_daemon.model.regions import Region
from har_daemon.runtime.crop_ring import KeptFrames
from har_daemon.runtime.events import Signal
from har_daemon.runtime.fight_pose import combine, fused
from har_daemon.runtime.people import iou

CACHE_MAX = 1024
"""Embeddings a camera keeps at most (5 MB): 20 frames of up to 51 regions."""
REUSE_IOU = 0.8
"""A context box this close to a cached one of the same frame reuses its embedding."""


class Encoder(Protocol):
    input_side: int

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, D) embeddings of N BGR uint8 pictures."""
        ...


@dataclass
class PretrainedStage:
    head: PretrainedHead
    encoder: Encoder
    rules: PersonRegion
    """The fight model's person-region rules (the context square's rounding)."""
    fight_index: int
    rule: PretrainedRule = "mean"
    windows: int = 0
    """Region windows the pretrained head scored."""
    embedded: int = 0
    """Context crops embedded (cache misses)."""
    _cache: dict[float, list[tuple[Region, np.ndarray]]] = field(default_factory=dict)
    """Per frame time, the context boxes embedded in that frame and their embeddings."""

    def __post_init__(self) -> None:
        if self.encoder.input_side != self.head.input_side:
            raise ValueError(
                f"the encoder runs at {self.encoder.input_side} px, the head was trained at "
                f"{self.head.input_side} px"
            )

    def _cached(self, t: float, box: Region) -> np.ndarray | None:
        overlap, best = max(
            ((iou(b, box), e) for b, e in self._cache.get(t, ())),
            key=lambda c: c[0],
            default=(0.0, None),
        )
        return best if overlap >= REUSE_IOU else None

    def _forget(self, oldest: float) -> None:
        self._cache = {t: v for t, v in self._cache.items() if t >= oldest}
        while sum(len(v) for v in self._cache.values()) > CACHE_MAX:  # oldest frame first
            del self._cache[min(self._cache)]

    def score(self, kept: KeptFrames, region: Region) -> float:
        """The head's P(fight) of `region` over the window in `kept`."""
        times = [float(t) for t in kept.times[: kept.n]]
        self._forget(times[0])
        box = context_box(region, kept.frame_hw, self.rules)
        embeddings = [self._cached(t, box) for t in times]
        todo = [i for i, e in enumerate(embeddings) if e is None]
        if todo:
            side = self.encoder.input_side
            got = self.encoder.embed(list(kept.crop(box, (side, side), "area", todo)))
            for i, e in zip(todo, got, strict=True):
                embeddings[i] = e
                self._cache.setdefault(times[i], []).append((box, e))
            self.embedded += len(todo)
        return self.head.score(np.stack(embeddings))

    def signal(self, prob: np.ndarray, pretrained: float) -> tuple[np.ndarray, Signal]:
        """The region's scores with the fight score fused, and why."""
        own = float(prob[self.fight_index])
        self.windows += 1
        out = fused(prob, self.fight_index, combine(self.rule, own, pretrained))
        return out, Signal("pretrained", own, None, 0, pretrained)

    @staticmethod
    def with_pose(pose: Signal, own: Signal) -> Signal:
        """The pose stage's reason for a window whose appearance score was fused first: the
        fight model's own score and the pretrained head's, as they were; where pose did not
        speak, the fused pair did ("pretrained")."""
        used = "pose" if pose.used == "pose" else own.used
        return replace(pose, used=used, appearance=own.appearance, pretrained=own.pretrained)

    def reset(self) -> None:
        self._cache.clear()
