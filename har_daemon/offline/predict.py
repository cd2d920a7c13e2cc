"""`har-daemon predict`: on a recording, the events the daemon would raise live, and why.

The timeline is the replay's events (`offline.replay`: the daemon's own capture, inference,
smoothing and activity tracker with the configuration's thresholds), so what a user checks on
a file is what the daemon does on a camera. `--clip` classifies the file as one training clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.config import DaemonConfig
from har_daemon.core.errors import VideoError
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.model.preprocess import to_model_input
from har_daemon.offline.clip import clip_windows
from har_daemon.offline.replay import Replay, replay
from har_daemon.outputs.snapshots import draw_box
from har_daemon.runtime.people import Detector
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.video.frames import probe_video


def _scores(classes: list[str], values: Any) -> dict[str, float]:
    return {c: round(float(v), 4) for c, v in zip(classes, values, strict=True)}


def predict_document(
    video: Path, config: DaemonConfig, meta: ModelMeta, backend: Backend
) -> dict[str, Any]:
    """The `--json` document: settings, every window's scores, and the events."""
    run = replay(video, config, meta, backend)
    return document(video, config, meta, run)


def document(video: Path, config: DaemonConfig, meta: ModelMeta, run: Replay) -> dict[str, Any]:
    classes = list(meta.classes)
    policy = DecisionPolicy.for_model(config.inference, meta)
    return {
        "model": meta.name,
        "video": str(video),
        "duration_s": round(run.duration_s, 3),
        "frame_spacing_s": config.model.frame_spacing_s or meta.frame_spacing_s,
        "stride": config.model.stride,
        "input_region": meta.input_region,
        "alerting": policy.alerting(classes),
        "cuts": run.cuts,
        "no_person_windows": run.no_person_windows,
        "windows": [
            {
                "t_s": round(w.window_end, 3),
                "probabilities": _scores(classes, w.probs),
                "smoothed": _scores(classes, w.smoothed),
                **({"region": w.region} if w.region is not None else {}),
            }
            for w in run.windows
        ],
        "events": run.events(),
    }


def occurrences(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start/end pairs of the events: one row per alert."""
    rows: list[dict[str, Any]] = []
    for ev in events:
        if ev["type"] == "start":
            rows.append(
                {
                    "activity": ev["activity"],
                    "start_s": ev["at_s"],
                    "end_s": None,
                    "peak": ev["peak_confidence"],
                }
            )
        elif rows and rows[-1]["end_s"] is None:
            rows[-1]["peak"] = max(rows[-1]["peak"], ev["peak_confidence"])
            if ev["type"] == "end":
                rows[-1]["end_s"] = ev["at_s"]
    return rows


def format_timeline(doc: dict[str, Any]) -> str:
    rows = occurrences(doc["events"])
    lines = [
        f"{doc['video']}  (model {doc['model']}, {len(doc['windows'])} windows, "
        f"{doc['duration_s']:.1f} s, {len(rows)} alert{'s' * (len(rows) != 1)})"
    ]
    if not rows:
        lines.append("  no alert")
    for row in rows:
        end = _clock(row["end_s"]) if row["end_s"] is not None else "  end  "
        lines.append(
            f"  {_clock(row['start_s'])} - {end}  {row['activity']:<20} peak {row['peak']:.2f}"
        )
    return "\n".join(lines)


def format_event(ev: dict[str, Any]) -> str:
    return f"{_clock(ev['at_s'])}  {ev['type']:<6} {ev['activity']:<20} {ev['confidence']:.2f}"


def _clock(seconds: float) -> str:
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m):02d}:{s:04.1f}"


def classify_clip(
    video: Path,
    meta: ModelMeta,
    backend: Backend,
    detector: Detector | None = None,
    alert_classes: list[str] | None = None,
) -> dict[str, Any]:
    """The whole file as one clip, sampled exactly as training samples its clips; for a
    person-centric model, every region's scores and the most alarming region's verdict."""
    clip = clip_windows(video, meta, detector)
    if not len(clip.windows):
        return {"activity": None, "probabilities": None, "regions": []}
    x = to_model_input(clip.windows, meta.color_order, meta.input_scale, meta.input_transform)
    probs = backend.predict(x)
    classes = list(meta.classes)
    # The most alarming region speaks for the clip, as in the daemon and in training.
    alerting = [i for i, c in enumerate(classes) if c in (alert_classes or classes)]
    best = int(np.argmax(probs[:, alerting].max(axis=1))) if len(probs) > 1 else 0
    out: dict[str, Any] = {
        "activity": classes[int(np.argmax(probs[best]))],
        "probabilities": _scores(classes, probs[best]),
    }
    if clip.regions:
        out["regions"] = [
            {"region": r, "probabilities": _scores(classes, p)}
            for r, p in zip(clip.regions, probs, strict=True)
        ]
    return out


def write_annotated(video: Path, out: Path, doc: dict[str, Any]) -> Path:
    """Re-encode the video with what the daemon knows at each moment drawn on it: the open
    alert (or the top smoothed class) and the region it concerns."""
    info = probe_video(video)
    times = np.array([w["t_s"] for w in doc["windows"]])
    alerts = occurrences(doc["events"])
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
            _draw_label(frame, _label_at(t, k, doc, alerts))
            if k >= 0 and "region" in doc["windows"][k]:
                draw_box(frame, doc["windows"][k]["region"])
            writer.write(frame)
    finally:
        cap.release()
        writer.release()
    return out


def _label_at(t: float, k: int, doc: dict[str, Any], alerts: list[dict[str, Any]]) -> str:
    for row in alerts:
        if row["start_s"] <= t and (row["end_s"] is None or t < row["end_s"]):
            return f"ALERT {row['activity']}"
    if k < 0:
        return "warming up"
    name, score = max(doc["windows"][k]["smoothed"].items(), key=lambda kv: kv[1])
    return f"{name} {score:.2f}"


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
