"""Event snapshots: a JPEG of the frame that best shows the activity, with an optional caption.

A snapshot published with an event lets a person judge it at a glance (a phone notification
shows the image), so it is the frame of the window that scored highest for the event's class,
not merely the last frame, and the caption says when, where and what was recognised.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np

from har_daemon.runtime.history import fit_width


def snapshot_lines(t: float, camera: str, activity: str, confidence: float) -> list[str]:
    """The usual caption: local time, camera, activity and confidence as a percentage."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t)).strip()
    return [stamp, camera, f"{activity} {confidence * 100:.0f}%"]


def _ascii(text: str) -> str:
    # OpenCV's Hershey fonts draw ASCII only; anything else would come out as '?' anyway.
    return text.encode("ascii", "replace").decode("ascii")


def draw_overlay(frame: np.ndarray, lines: list[str]) -> None:
    """Draw `lines` top-left on `frame` in place: white text on a translucent dark box,
    readable on any scene; the text scales with the frame width."""
    lines = [_ascii(line) for line in lines if line]
    if not lines:
        return
    height, width = frame.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, width / 1000.0)
    thickness = max(1, round(scale * 2))
    sizes = [cv2.getTextSize(line, font, scale, thickness) for line in lines]
    line_h = max(h + base for (_, h), base in sizes) + max(2, round(4 * scale))
    pad = max(3, round(6 * scale))
    box_w = min(width, max(w for (w, _), _ in sizes) + 2 * pad)
    box_h = min(height, line_h * len(lines) + 2 * pad)
    roi = frame[:box_h, :box_w]
    # Darken rather than blacken, so the scene under the caption stays faintly visible.
    roi[:] = (roi.astype(np.uint16) * 3 // 10).astype(np.uint8)
    for i, line in enumerate(lines):
        (_, text_h), _ = sizes[i]
        y = pad + i * line_h + text_h
        cv2.putText(frame, line, (pad, y), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def draw_box(frame: np.ndarray, box: list[float]) -> None:
    """Outline `box` (fractions of the frame) in place: a dark line under a bright one, so it
    shows on any scene."""
    h, w = frame.shape[:2]
    p1 = (round(box[0] * w), round(box[1] * h))
    p2 = (round(box[2] * w) - 1, round(box[3] * h) - 1)
    thickness = max(1, round(w / 320))
    cv2.rectangle(frame, p1, p2, (0, 0, 0), thickness + 2)
    cv2.rectangle(frame, p1, p2, (0, 215, 255), thickness)


def encode_snapshot(
    frame_bgr: np.ndarray,
    *,
    max_width: int,
    quality: int,
    overlay_lines: list[str] | None = None,
    box: list[float] | None = None,
) -> bytes:
    """A JPEG of `frame_bgr`, scaled down to `max_width` (aspect kept) and captioned, with the
    event's region (`box`: x1, y1, x2, y2 as fractions of the frame) outlined.

    The caller's frame is never modified (it usually lives in a `FrameHistory`).
    """
    if frame_bgr.ndim == 2:
        frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.size == 0:
        raise ValueError(f"expected a BGR frame, got shape {frame_bgr.shape}")
    image = fit_width(frame_bgr, max_width)  # always a copy
    if box is not None:
        draw_box(image, box)
    if overlay_lines:
        draw_overlay(image, overlay_lines)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class BestWindow:
    """The recent windows of one camera, to find the one that scored highest for a class.

    An event starts only after several windows agreed (smoothing, `min_windows`); the best
    picture of it is the window that scored highest among those, so the daemon asks `best()`
    on an event start and takes `FrameHistory.nearest()` of the returned window end.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self._windows: deque[tuple[float, np.ndarray]] = deque(maxlen=size)

    def add(self, window_end: float, probs: np.ndarray) -> None:
        """Remember one window's per-class probabilities (raw, not smoothed: smoothing lags)."""
        self._windows.append((window_end, np.asarray(probs, dtype=np.float32).copy()))

    def best(self, activity_index: int) -> float | None:
        """Window end of the highest-scoring remembered window for the class; the latest wins a
        tie (its frame is likelier still in the history). None when nothing is remembered."""
        best_t: float | None = None
        best_p = -np.inf
        for t, probs in self._windows:
            if activity_index < len(probs) and probs[activity_index] >= best_p:
                best_t, best_p = t, float(probs[activity_index])
        return best_t

    def clear(self) -> None:
        """Forget all windows: called on a stream gap, like the smoother."""
        self._windows.clear()

    def __len__(self) -> int:
        return len(self._windows)
