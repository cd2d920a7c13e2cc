"""`har-daemon predict`: what a model sees in a recorded video, window by window.

The window slides the way the live daemon's does: frames sampled at the model's trained
spacing, a prediction every `stride` sampled frames, so a recording reproduces what the daemon
would have reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.core.errors import VideoError
from har_daemon.model.keras.store import LoadedModel
from har_daemon.model.preprocess import resize_frame, to_model_input
from har_daemon.offline.segments import segments_from_windows
from har_daemon.training.evaluate import predict_batches
from har_daemon.video.frames import extract_clip, probe_video
from har_daemon.video.sampling import FrameSampler


@dataclass
class WindowPredictions:
    times_s: np.ndarray  # time of each window's last frame
    probs: np.ndarray  # (n_windows, n_classes)
    sampled_frames: int
    fps: float


def _sampled_frames(video: Path, loaded: LoadedModel) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode once; convert and resize only the frames the sampler takes."""
    info = probe_video(video)
    meta = loaded.meta
    cap = cv2.VideoCapture(str(video))
    sampler = FrameSampler(meta.frame_spacing_s)
    frames: list[np.ndarray] = []
    times: list[float] = []
    index = 0
    try:
        while cap.grab():
            t = index / info.fps
            index += 1
            if not sampler.offer(t):
                continue
            ok, frame = cap.retrieve()
            if not ok or frame is None:
                continue
            frames.append(resize_frame(frame, meta.frame_size, meta.resize_interpolation))
            times.append(t)
    finally:
        cap.release()
    if len(frames) < meta.sequence_length:
        need_s = (meta.sequence_length - 1) * meta.frame_spacing_s
        raise VideoError(
            f"{video}: too short for one window: {len(frames)} frames sampled every "
            f"{meta.frame_spacing_s:g} s, the model needs {meta.sequence_length} "
            f"(about {need_s:.1f} s of video)"
        )
    return np.stack(frames), np.asarray(times), info.fps


def predict_windows(
    loaded: LoadedModel, video: Path, stride: int = 5, batch_size: int = 8
) -> WindowPredictions:
    frames, times, fps = _sampled_frames(video, loaded)
    seq = loaded.meta.sequence_length
    ends = np.arange(seq - 1, len(frames), stride)
    windows = np.lib.stride_tricks.sliding_window_view(frames, seq, axis=0)
    # sliding_window_view puts the window axis last: (n, H, W, 3, seq) -> (n, seq, H, W, 3)
    chosen = np.moveaxis(windows[ends - (seq - 1)], -1, 1)
    probs = predict_batches(loaded, chosen, loaded.meta, batch_size)
    return WindowPredictions(times_s=times[ends], probs=probs, sampled_frames=len(frames), fps=fps)


def predict_video(
    loaded: LoadedModel, video: Path, stride: int = 5, min_confidence: float = 0.5
) -> dict[str, Any]:
    """The `--json` document: every window's probabilities and the merged timeline."""
    meta = loaded.meta
    wp = predict_windows(loaded, video, stride)
    span = (meta.sequence_length - 1) * meta.frame_spacing_s
    segments = segments_from_windows(
        wp.times_s, wp.probs, meta.classes, min_confidence=min_confidence, window_span_s=span
    )
    return {
        "model": meta.name,
        "video": str(video),
        "frame_spacing_s": meta.frame_spacing_s,
        "stride": stride,
        "windows": [
            {
                "t_s": round(float(t), 3),
                "probabilities": {
                    c: round(float(v), 4) for c, v in zip(meta.classes, p, strict=True)
                },
            }
            for t, p in zip(wp.times_s, wp.probs, strict=True)
        ],
        "segments": [s.to_dict() for s in segments],
    }


def classify_clip(loaded: LoadedModel, video: Path) -> dict[str, Any]:
    """The whole file as one clip, sampled exactly as training samples its clips."""
    meta = loaded.meta
    clip = extract_clip(video, meta.sequence_length, meta.frame_size, meta.resize_interpolation)
    probs = loaded.predict(
        to_model_input(clip.frames, meta.color_order, meta.input_scale, meta.input_transform)
    )[0]
    return {
        "activity": meta.classes[int(np.argmax(probs))],
        "probabilities": _probabilities(meta.classes, probs),
    }


def _probabilities(classes: list[str], probs: np.ndarray) -> dict[str, float]:
    return {c: round(float(v), 4) for c, v in zip(classes, probs, strict=True)}


def format_timeline(doc: dict[str, Any]) -> str:
    lines = [f"{doc['video']}  (model {doc['model']}, {len(doc['windows'])} windows)"]
    if not doc["segments"]:
        lines.append("  no confident activity")
    for seg in doc["segments"]:
        lines.append(
            f"  {_clock(seg['start_s'])} - {_clock(seg['end_s'])}  "
            f"{seg['activity'] or '(uncertain)':<20} {seg['confidence']:.2f}"
        )
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m):02d}:{s:04.1f}"


def write_annotated(video: Path, out: Path, doc: dict[str, Any], classes: list[str]) -> Path:
    """Re-encode the video with the label known at each moment drawn on it."""
    info = probe_video(video)
    times = np.array([w["t_s"] for w in doc["windows"]])
    tops = [max(w["probabilities"].items(), key=lambda kv: kv[1]) for w in doc["windows"]]
    cap = cv2.VideoCapture(str(video))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(out), cv2.VideoWriter_fourcc(*"mp4v"), info.fps, (info.width, info.height)
    )
    if not writer.isOpened():
        cap.release()
        raise VideoError(f"cannot write annotated video {out}")
    index = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = index / info.fps
            index += 1
            k = int(np.searchsorted(times, t + 1e-9, side="right")) - 1
            text = "warming up" if k < 0 else f"{tops[k][0]} {tops[k][1]:.2f}"
            _draw_label(frame, text)
            writer.write(frame)
    finally:
        cap.release()
        writer.release()
    return out


def _draw_label(frame: np.ndarray, text: str) -> None:
    scale = max(0.4, frame.shape[0] / 480)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(frame, (0, 0), (w + 10, h + base + 10), (0, 0, 0), -1)
    cv2.putText(
        frame,
        text,
        (5, h + 5),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
