"""The debug view's picture: what the analytics saw, drawn on the analysed frame (pure).

The frame is the camera's newest ring frame (masks already blanked), scaled up to at least
`MIN_WIDTH` so the labels stay legible. On it: the masks (red, hatched), the zones (blue
outlines, named), the person boxes the detector kept (green), the regions the model scored with
their track ids (yellow), the people the fall recogniser follows with their state (magenta:
"up", "down", and "FALL down N s" while their fall event is open), and a panel with each
class's smoothed score against the enter and exit thresholds and the camera's current activity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from har_daemon.config.recognisers import FALL_ACTIVITY
from har_daemon.core.polygons import Polygon, open_ring
from har_daemon.runtime.falls import TrackedPerson

MIN_WIDTH = 640
PERSON_BGR = (0, 255, 0)
REGION_BGR = (0, 255, 255)
ZONE_BGR = (255, 160, 0)
MASK_BGR = (0, 0, 220)
TEXT_BGR = (255, 255, 255)
ALERT_BGR = (0, 0, 255)
FALL_BGR = (255, 0, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Overlay:
    """Everything drawn over one frame; coordinates of boxes in the frame's pixels."""

    camera: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    regions: Sequence[tuple[Sequence[float], int, Sequence[str] | None]] = ()
    """(normalised x1, y1, x2, y2, track id, zones) of each region scored."""
    zones: Mapping[str, Polygon] = field(default_factory=dict)
    masks: Sequence[Polygon] = ()
    scores: Sequence[tuple[str, float, bool]] = ()
    """(class, smoothed score, raises events)."""
    enter_threshold: float = 1.0
    exit_threshold: float = 0.0
    activity: str | None = None
    falls: Sequence[TrackedPerson] = ()
    """The fall recogniser's people at its last look (cameras that run it)."""


def fall_people(people: Sequence[TrackedPerson]) -> list[TrackedPerson]:
    """The followed people worth drawing, fallen last (on top): those seen at the last look, and
    those not seen but down (a lying person is often missed); a track kept for a person who
    walked off or a stray low-score box only clutters the picture."""
    shown = [p for p in people if p.seen or p.down_s is not None]
    return sorted(shown, key=lambda p: (p.fallen, p.down_s is not None))


def fall_label(person: TrackedPerson) -> str:
    """A followed person's state as the fall rule sees it: up, down (not after a fall, or not
    for long enough yet), or fallen with how long they have been down; "unseen": their box is
    the last one seen (a lying person is often missed)."""
    if person.fallen:
        state = f"FALL down {person.down_s or 0.0:.1f} s"
    else:
        state = "up" if person.down_s is None else "down"
    return f"#{person.track_id} {state}" + ("" if person.seen else " unseen")


def _pixels(points: Polygon, w: int, h: int) -> np.ndarray:
    return np.round(np.asarray(open_ring(points)) * (w, h)).astype(np.int32).reshape(-1, 1, 2)


def _label(img: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    (tw, th), base = cv2.getTextSize(text, FONT, 0.5, 1)
    y = max(th + base, y)
    cv2.rectangle(img, (x, y - th - base), (x + tw + 4, y), (0, 0, 0), -1)
    cv2.putText(img, text, (x + 2, y - base), FONT, 0.5, colour, 1, cv2.LINE_AA)


def draw(frame: np.ndarray, ov: Overlay) -> np.ndarray:
    """A new BGR image: `frame` scaled and annotated with `ov`."""
    fh, fw = frame.shape[:2]
    scale = max(1.0, MIN_WIDTH / fw)
    w, h = round(fw * scale), round(fh * scale)
    img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR) if scale > 1 else frame.copy()
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    for mask in ov.masks:
        pts = _pixels(mask, w, h)
        hatch = np.zeros_like(img)
        cv2.fillPoly(hatch, [pts], MASK_BGR)
        stripes = (np.add.outer(np.arange(h), np.arange(w)) // 6) % 3 == 0
        img[(hatch.any(axis=2)) & stripes] = MASK_BGR
        cv2.polylines(img, [pts], True, MASK_BGR, 2)
    for name, zone in ov.zones.items():
        pts = _pixels(zone, w, h)
        cv2.polylines(img, [pts], True, ZONE_BGR, 2, cv2.LINE_AA)
        x, y = pts.reshape(-1, 2).min(axis=0)
        _label(img, name, int(x) + 2, int(y) + 16, ZONE_BGR)
    for region, track, zones in ov.regions:
        x1, y1, x2, y2 = (round(v * s) for v, s in zip(region, (w, h, w, h), strict=True))
        cv2.rectangle(img, (x1, y1), (x2, y2), REGION_BGR, 1)
        where = f" in {','.join(zones)}" if zones else ""
        _label(img, f"#{track}{where}", x1, y2, REGION_BGR)
    for box in np.asarray(ov.boxes, np.float32).reshape(-1, 5):
        x1, y1, x2, y2 = (round(float(v) * scale) for v in box[:4])
        cv2.rectangle(img, (x1, y1), (x2, y2), PERSON_BGR, 2)
        _label(img, f"{float(box[4]):.2f}", x1, y1, PERSON_BGR)
    for person in fall_people(ov.falls):  # over the person boxes: often the same boxes
        x1, y1, x2, y2 = (round(float(v) * scale) for v in person.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), FALL_BGR, 3 if person.fallen else 2)
        colour = ALERT_BGR if person.fallen else FALL_BGR
        _label(img, fall_label(person), x1 + 2, y1 + 20, colour)
    _panel(img, ov)
    return img


def _panel(img: np.ndarray, ov: Overlay) -> None:
    """Top-left: the camera, its activity and each class's score bar with the thresholds."""
    fallen = any(p.fallen for p in ov.falls)
    now = [a for a in (ov.activity, FALL_ACTIVITY if fallen else None) if a]
    head = f"{ov.camera}: {', '.join(now) or 'idle'}"
    _label(img, head, 4, 20, ALERT_BGR if now else TEXT_BGR)
    bar_w = 120
    for i, (name, score, alerting) in enumerate(ov.scores):
        y = 28 + i * 18
        cv2.rectangle(img, (4, y), (4 + bar_w, y + 12), (40, 40, 40), -1)
        filled = round(bar_w * min(max(score, 0.0), 1.0))
        colour = ALERT_BGR if alerting and score >= ov.enter_threshold else TEXT_BGR
        cv2.rectangle(img, (4, y), (4 + filled, y + 12), colour, -1)
        if alerting:
            for t in (ov.enter_threshold, ov.exit_threshold):
                x = 4 + round(bar_w * t)
                cv2.line(img, (x, y - 2), (x, y + 14), ALERT_BGR, 1)
        _label(img, f"{name} {score:.2f}", 8 + bar_w, y + 13, TEXT_BGR)


def encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
