"""The live debug view on the HTTP port: what each camera's analytics see, for installers.

Routes (GET/HEAD), answered by `DebugView` from the metrics server's thread per request:

* `/`: the index page: each camera (online, enabled, its activity, its live stream) and the
  recent events with their snapshots.
* `/cameras.json`: the same as data (and the cameras' `debug_encodes` count, and on cameras that
  run the fall recogniser its people as the view draws them: `fall_people`).
* `/cameras/<name>/latest.jpg`: the newest analysed frame, annotated (`service.debug_draw`).
* `/cameras/<name>/stream.mjpeg`: the same as a multipart MJPEG stream, each new analysed frame
  (at most `stream_fps` a second) while the viewer stays.
* `/events/<id>/snapshot.jpg`: the snapshot of a recent event's start.

Nothing runs for the view while nobody asks: pictures are read, drawn and encoded in the
request's thread, on request, and each encode is counted in the camera's `debug_encodes`.
Clients not on this host are refused unless `allow_remote`; with a `token` every request must
carry it (`Authorization: Bearer <token>` or `?token=<token>`).
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import parse_qs, quote

import numpy as np

from har_daemon.config import DebugViewConfig
from har_daemon.runtime.camera import Camera
from har_daemon.service.debug_draw import Overlay, draw, encode_jpeg, fall_label, fall_people

StartResponse = Callable[..., Any]


class EventSource(Protocol):
    def recent_events(self) -> list[tuple[dict[str, Any], bytes | None]]:
        """The newest events, oldest first, each with its start's snapshot JPEG (or None)."""
        ...


BOUNDARY = "harframe"
IDLE_POLL_S = 0.05


class DebugView:
    def __init__(
        self,
        config: DebugViewConfig,
        cameras: Callable[[], Mapping[str, Camera]],
        events: Callable[[], EventSource | None],
        classes: Sequence[str],
    ) -> None:
        """`cameras` and `events` are asked at each request (the daemon builds them after the
        HTTP server starts)."""
        self.config = config
        self.cameras = cameras
        self.events = events
        self.classes = list(classes)
        self._count_lock = threading.Lock()
        self._closed = threading.Event()

    def recent(self) -> list[tuple[dict[str, Any], bytes | None]]:
        source = self.events()
        return source.recent_events() if source is not None else []

    def close(self) -> None:
        """End the open streams (shutdown)."""
        self._closed.set()

    # -- WSGI --------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes] | None:
        path = environ.get("PATH_INFO") or "/"
        parts = [p for p in path.split("/") if p]
        if not (path in ("/", "/cameras.json") or parts[:1] in (["cameras"], ["events"])):
            return None
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _text(start, "405 Method Not Allowed", "method not allowed")
        refused = self._refused(environ)
        if refused is not None:
            return _text(start, *refused)
        token = self._token_query(environ)
        if path == "/":
            return _send(start, "text/html; charset=utf-8", self._index(token).encode())
        if path == "/cameras.json":
            return _send(start, "application/json", json.dumps(self._state()).encode())
        if len(parts) == 3 and parts[0] == "events" and parts[2] == "snapshot.jpg":
            jpeg = next((j for ev, j in self.recent() if ev.get("id") == parts[1] and j), None)
            return _send(start, "image/jpeg", jpeg) if jpeg else _not_found(start)
        camera = self.cameras().get(parts[1]) if len(parts) == 3 else None
        if camera is None or parts[0] != "cameras":
            return _not_found(start)
        if parts[2] == "latest.jpg":
            jpeg = self.picture(camera)
            return _send(start, "image/jpeg", jpeg) if jpeg else _not_found(start, "no frame yet")
        if parts[2] == "stream.mjpeg":
            start(
                "200 OK",
                [
                    ("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}"),
                    ("Cache-Control", "no-store"),
                ],
            )
            return self._stream(camera)
        return _not_found(start)

    def _refused(self, environ: dict[str, Any]) -> tuple[str, str] | None:
        if not self.config.allow_remote and not _is_loopback(environ.get("REMOTE_ADDR", "")):
            return "403 Forbidden", "the debug view answers this host only (allow_remote)"
        if self.config.token is None:
            return None
        expected = self.config.token.get_secret_value()
        auth = environ.get("HTTP_AUTHORIZATION", "")
        given = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        given = given or parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return "401 Unauthorized", "a valid token is required"
        return None

    def _token_query(self, environ: dict[str, Any]) -> str:
        """`?token=...` for the page's own links when the page was opened with one."""
        token = parse_qs(environ.get("QUERY_STRING", "")).get("token", [""])[0]
        return f"?token={quote(token)}" if token else ""

    # -- pictures ----------------------------------------------------------------------------

    def overlay(self, camera: Camera) -> Overlay:
        p = camera.pipeline
        result, tracker = p.last_result, p.tracker
        scores = []
        if result is not None:
            scores = [
                (c, float(s), tracker.config.alerts(c))
                for c, s in zip(self.classes, np.asarray(result.smoothed), strict=False)
            ]
        return Overlay(
            camera=camera.name,
            boxes=p.people.last_boxes if p.people is not None else np.zeros((0, 5), np.float32),
            regions=result.regions if result is not None else (),
            zones=p.zones.zones if p.zones is not None else {},
            masks=p.zones.masks if p.zones is not None else (),
            scores=scores,
            enter_threshold=tracker.config.enter_threshold,
            exit_threshold=tracker.config.exit_threshold,
            activity=tracker.state.activity,
            falls=p.falls.people if p.falls is not None else (),
        )

    def picture(self, camera: Camera) -> bytes | None:
        """The camera's newest analysed frame, annotated, as JPEG; None before any frame."""
        latest = camera.pipeline.ring.latest()
        if latest is None:
            return None
        jpeg = encode_jpeg(draw(latest[0], self.overlay(camera)), self.config.jpeg_quality)
        with self._count_lock:
            camera.pipeline.stats.debug_encodes += 1
        return jpeg

    def _stream(self, camera: Camera) -> Iterator[bytes]:
        ring = camera.pipeline.ring
        sent = -1
        spacing = 1.0 / self.config.stream_fps
        while not self._closed.is_set():
            if ring.count == sent:
                self._closed.wait(IDLE_POLL_S)
                continue
            sent = ring.count
            jpeg = self.picture(camera)
            if jpeg is None:
                self._closed.wait(IDLE_POLL_S)
                continue
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
            yield head.encode() + jpeg + b"\r\n"
            self._closed.wait(spacing)

    # -- the index ---------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        cams = {}
        for name, cam in self.cameras().items():
            state = cam.pipeline.tracker.state
            cams[name] = {
                "online": cam.online,
                "enabled": cam.pipeline.enabled,
                "activity": state.activity,
                "confidence": round(float(state.confidence), 4),
                "zones": list(cam.pipeline.zones.zones) if cam.pipeline.zones else [],
                "debug_encodes": cam.pipeline.stats.debug_encodes,
            }
            if cam.pipeline.falls is not None:
                cams[name]["fall_people"] = [
                    {"box": [round(v, 1) for v in p.box], "label": fall_label(p)}
                    for p in fall_people(cam.pipeline.falls.people)
                ]
        events = [ev for ev, _ in self.recent()]
        return {"cameras": cams, "events": events[::-1], "at": time.time()}

    def _index(self, token: str) -> str:
        state = self._state()
        jpegs = {ev.get("id") for ev, j in self.recent() if j}
        cards = []
        for name, cam in state["cameras"].items():
            n = html.escape(name)
            status = "online" if cam["online"] else "offline"
            activity = html.escape(cam["activity"] or "idle")
            cards.append(
                f'<section class="cam"><h2>{n} <small>{status}, '
                f"{'enabled' if cam['enabled'] else 'paused'}, {activity}</small></h2>"
                f'<img class="stream" alt="{n} live" src="/cameras/{quote(name)}/stream.mjpeg'
                f'{token}"></section>'
            )
        rows = []
        for ev in state["events"]:
            ev_id = str(ev.get("id", ""))
            snap = (
                f'<img class="snap" alt="snapshot" src="/events/{quote(ev_id)}/snapshot.jpg'
                f'{token}">'
                if ev_id in jpegs
                else ""
            )
            cells = [ev.get(k) for k in ("at", "camera", "type", "activity", "confidence")]
            cells.append(", ".join(ev.get("zones") or []))
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + f"<td>{snap}"
                "</td></tr>"
            )
        return PAGE.format(
            cameras="\n".join(cards) or "<p>no camera</p>",
            events="\n".join(rows) or '<tr><td colspan="7">no event yet</td></tr>',
        )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>har-daemon debug view</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #111; color: #eee; }}
.cam {{ display: inline-block; vertical-align: top; margin: 0 1em 1em 0; }}
.stream {{ max-width: 100%; border: 1px solid #444; }}
.snap {{ height: 72px; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 8px; border-bottom: 1px solid #333; }}
</style></head><body>
<h1>har-daemon: live debug view</h1>
{cameras}
<h2>Recent events</h2>
<table><tr><th>at</th><th>camera</th><th>type</th><th>activity</th><th>confidence</th>
<th>zones</th><th>snapshot</th></tr>
{events}
</table></body></html>
"""


def _is_loopback(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def _send(start: StartResponse, content_type: str, body: bytes) -> list[bytes]:
    start(
        "200 OK",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]


def _text(start: StartResponse, status: str, text: str) -> list[bytes]:
    body = (text + "\n").encode()
    start(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _not_found(start: StartResponse, why: str = "not found") -> list[bytes]:
    return _text(start, "404 Not Found", why)


def debug_view_for(
    config: DebugViewConfig,
    cameras: Callable[[], Mapping[str, Camera]],
    events: Callable[[], EventSource | None],
    classes: Sequence[str],
) -> DebugView | None:
    """The daemon's view, or None when it is off."""
    return DebugView(config, cameras, events, classes) if config.enabled else None
