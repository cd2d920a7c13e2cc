"""Prometheus `/metrics` and a `/healthz` probe over HTTP, served from a daemon thread.

Each scrape asks the daemon for its latest statistics (`get_stats`, a `StatsPayload` from
`har_daemon.runtime.stats`) and its health (`get_health`) and turns them into metrics; nothing
is kept between scrapes, and the collector lives in a registry of its own so several servers (tests)
never share state through prometheus_client's global registry.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from har_daemon.config import MetricsConfig
from har_daemon.config.types import default_of
from har_daemon.core.logs import get_logger
from har_daemon.service.wsgi import BoundedWsgiServer, address_family

__all__ = ["METRIC_NAMES", "HarCollector", "MetricsServer", "MetricsServerError", "check_port"]

log = get_logger(__name__)

StatsFn = Callable[[], dict[str, Any]]
HealthFn = Callable[[], tuple[bool, list[str]]]
CameraHealthFn = Callable[[], dict[str, list[str]]]
"""Each camera's reasons for being unhealthy (empty: healthy)."""
Routes = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes] | None]
"""A WSGI app for more paths, returning None (before start_response) for one it does not serve."""

# per-camera counters: raw key -> (metric name without _total, help)
_CAMERA_COUNTERS = {
    "frames_read": ("har_camera_frames_read", "Frames read from the source."),
    "frames_sampled": ("har_camera_frames_sampled", "Frames kept at the model's frame spacing."),
    "windows": ("har_camera_windows", "Windows scored by the model."),
    "stale_windows": ("har_camera_stale_windows", "Windows dropped because inference lagged."),
    "motion_skipped": ("har_camera_motion_skipped", "Windows skipped by motion gating."),
    "reconnects": ("har_camera_reconnects", "Reconnections after the source was lost."),
    "cuts": ("har_camera_cuts", "Abrupt picture changes that restarted the window."),
    "failures": ("har_camera_failures", "Capture faults: exceptions, unusable frames."),
    "detections": ("har_camera_person_detections", "Frames the person detector looked at."),
    "no_person_windows": ("har_camera_no_person_windows", "Windows skipped: nobody there."),
    "gated_windows": (
        "har_camera_gated_windows",
        "Region windows kept from alerting by the interaction gate (nobody close together).",
    ),
    "events": ("har_camera_events", "Activity events published."),
    "fall_looks": ("har_camera_fall_looks", "Looks of the fall recogniser (pose per person)."),
    "fall_looks_shared": (
        "har_camera_fall_looks_shared",
        "Fall looks that took the person stage's boxes (no detector call of their own).",
    ),
    "fall_looks_tracked": (
        "har_camera_fall_looks_tracked",
        "Fall looks that followed people from their last keypoints (no detector call; "
        "looks tracked, or adaptive while watching).",
    ),
    "fall_turned_looks": (
        "har_camera_fall_turned_looks",
        "Turned second looks at people lost or poorly seen right after going down.",
    ),
    "fall_turned_calls": (
        "har_camera_fall_turned_calls",
        "Detector and pose calls made by the fall's turned second looks.",
    ),
    "fall_outside_zones": (
        "har_camera_fall_outside_zones",
        "Falls that did not start: the person lay outside the zones required_zones names.",
    ),
    "pose_looks": ("har_camera_pose_looks", "Looks of the fight pose stage of its own."),
    "pose_windows": (
        "har_camera_pose_windows",
        "Region windows whose fight score the pose model gave (pose fusion).",
    ),
    "pretrained_windows": (
        "har_camera_pretrained_windows",
        "Region windows the pretrained appearance head scored (pretrained fusion).",
    ),
    "pretrained_embedded": (
        "har_camera_pretrained_embedded",
        "Context crops the pretrained appearance encoder embedded (cache misses).",
    ),
}
# per-camera gauges: raw key -> (metric name, help)
_CAMERA_GAUGES = {
    "online": ("har_camera_online", "1 while the source is connected."),
    "enabled": ("har_camera_enabled", "1 unless paused by control."),
    "finished": ("har_camera_finished", "1 once a file source has ended."),
    "capture_fps": ("har_camera_capture_fps", "Frames read per second."),
    "sampled_fps": ("har_camera_sampled_fps", "Frames kept for the model per second."),
    "inference_fps": ("har_camera_inference_fps", "Windows scored per second."),
    "last_frame_age_s": ("har_camera_last_frame_age_seconds", "Seconds since the last frame."),
    "enter_threshold": (
        "har_camera_enter_threshold",
        "The camera's alert threshold: its config's, its calibration's, or [inference]'s.",
    ),
}
# latency name -> (help, {raw key: quantile})
_LATENCIES = {
    "har_camera_inference_latency_seconds": (
        "Capture of a window's newest frame to its results handed to MQTT, by quantile.",
        {"latency_ms_p50": "0.5", "latency_ms_p95": "0.95"},
    ),
    "har_camera_model_latency_seconds": (
        "The model call of recent windows alone, by quantile.",
        {"model_ms_p50": "0.5", "model_ms_p95": "0.95"},
    ),
}
_CAMERA_HEALTHY = "har_camera_healthy"
# spool stats: key -> (metric name, help, is_counter)
_SPOOL = {
    "depth": ("har_spool_depth", "Messages waiting in the spool.", False),
    "bytes": ("har_spool_bytes", "Bytes of payload waiting in the spool.", False),
    "in_flight": ("har_spool_in_flight", "Messages sent and not yet acknowledged.", False),
    "appended": ("har_spool_appended", "Messages written to the spool.", True),
    "dropped": ("har_spool_dropped", "Messages dropped because the spool was full.", True),
}

METRIC_NAMES: tuple[str, ...] = (
    "har_up",
    "har_healthy",
    "har_uptime_seconds",
    "har_process_rss_bytes",
    "har_inference_alive",
    "har_inference_batches_total",
    "har_inference_errors_total",
    "har_inference_last_age_seconds",
    *(m if not c else f"{m}_total" for m, _, c in _SPOOL.values()),
    *(f"{m}_total" for m, _ in _CAMERA_COUNTERS.values()),
    *(m for m, _ in _CAMERA_GAUGES.values()),
    *_LATENCIES,
    _CAMERA_HEALTHY,
)
"""Every metric name that can appear in the exposition (counters with their _total)."""


class MetricsServerError(OSError):
    """The metrics endpoint cannot listen (port taken, address not local, no permission)."""


class HarCollector(Collector):
    """Turns the latest stats and health into metrics at each scrape."""

    def __init__(
        self,
        get_stats: StatsFn,
        get_health: HealthFn,
        get_camera_health: CameraHealthFn | None = None,
    ) -> None:
        self.get_stats = get_stats
        self.get_health = get_health
        self.get_camera_health = get_camera_health

    def collect(self) -> Iterable[Any]:
        try:
            families = list(_stats_metrics(self.get_stats()))
        except Exception:  # a scrape must never take the daemon down, nor print a traceback
            log.exception("metrics.stats_failed")
            families = None
        yield _gauge(
            "har_up", "1 when the daemon's statistics could be read.", families is not None
        )
        healthy, _ = _safe_health(self.get_health)
        yield _gauge("har_healthy", "1 when /healthz reports healthy.", healthy)
        yield from families or ()
        cameras = _safe_camera_health(self.get_camera_health)
        if cameras:
            family = GaugeMetricFamily(
                _CAMERA_HEALTHY, "1 when /healthz reports the camera healthy.", labels=["camera"]
            )
            for name, reasons in sorted(cameras.items()):
                family.add_metric([name], float(not reasons))
            yield family


def _gauge(name: str, doc: str, value: float | bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _stats_metrics(stats: dict[str, Any]) -> Iterator[Any]:
    if "uptime_s" in stats:
        yield _gauge("har_uptime_seconds", "Seconds since the daemon started.", stats["uptime_s"])
    if "rss_mb" in stats:
        rss = float(stats["rss_mb"]) * 1024**2
        yield _gauge("har_process_rss_bytes", "Resident memory of the daemon.", rss)
    inf = stats.get("inference") or {}
    if "alive" in inf:
        yield _gauge("har_inference_alive", "1 while the inference thread runs.", inf["alive"])
    if "batches" in inf:
        yield CounterMetricFamily(
            "har_inference_batches", "Successful model calls.", value=inf["batches"]
        )
    if "errors" in inf:
        yield CounterMetricFamily(
            "har_inference_errors", "Model calls that raised.", value=inf["errors"]
        )
    if inf.get("last_inference_age_s") is not None:
        yield _gauge(
            "har_inference_last_age_seconds",
            "Seconds since the last successful model call.",
            inf["last_inference_age_s"],
        )
    spool = stats.get("spool")
    if isinstance(spool, dict):
        for key, (name, doc, is_counter) in _SPOOL.items():
            if spool.get(key) is None:
                continue
            if isinstance(spool[key], dict):
                # Per-reason counts (the spool's drops: by max_rows, max_bytes, max_age).
                family = CounterMetricFamily(name, doc, labels=["reason"])
                for reason, value in sorted(spool[key].items()):
                    family.add_metric([str(reason)], value)
                yield family
            elif is_counter:
                yield CounterMetricFamily(name, doc, value=spool[key])
            else:
                yield _gauge(name, doc, spool[key])
    yield from _camera_metrics(stats.get("cameras") or {})


def _camera_metrics(cameras: dict[str, dict[str, Any]]) -> Iterator[Any]:
    names = sorted(cameras)
    for key, (name, doc) in _CAMERA_COUNTERS.items():
        fam = CounterMetricFamily(name, doc, labels=["camera"])
        for cam in names:
            if cameras[cam].get(key) is not None:
                fam.add_metric([cam], float(cameras[cam][key]))
        if fam.samples:
            yield fam
    for key, (name, doc) in _CAMERA_GAUGES.items():
        gauge = GaugeMetricFamily(name, doc, labels=["camera"])
        for cam in names:
            if cameras[cam].get(key) is not None:
                gauge.add_metric([cam], float(cameras[cam][key]))
        if gauge.samples:
            yield gauge
    for name, (doc, quantiles) in _LATENCIES.items():
        latency = GaugeMetricFamily(name, doc, labels=["camera", "quantile"])
        for cam in names:
            for key, quantile in quantiles.items():
                if cameras[cam].get(key) is not None:
                    latency.add_metric([cam, quantile], float(cameras[cam][key]) / 1000.0)
        if latency.samples:
            yield latency


def _safe_health(get_health: HealthFn) -> tuple[bool, list[str]]:
    try:
        healthy, reasons = get_health()
        return bool(healthy), [str(r) for r in reasons]
    except Exception as err:
        log.exception("metrics.health_failed")
        return False, [f"health check failed: {type(err).__name__}: {err}"]


def _safe_camera_health(get: CameraHealthFn | None) -> dict[str, list[str]]:
    if get is None:
        return {}
    try:
        return {str(name): [str(r) for r in reasons] for name, reasons in get().items()}
    except Exception:
        log.exception("metrics.health_failed")
        return {}


# -- HTTP ------------------------------------------------------------------------------------


class MetricsServer:
    """`/metrics` (Prometheus text format) and `/healthz` on `host:port` in a daemon thread.

    `/healthz` answers 200 `{"healthy": true}` or 503 `{"healthy": false, "reasons": [...]}`,
    with `"cameras": {name: {"healthy": bool, "reasons": [...]}}` when `get_camera_health` is
    given; other paths are 404. Port 0 picks a free port; `port` then tells which. Served by
    `BoundedWsgiServer`: at most `workers` request threads whatever the clients do.
    """

    def __init__(
        self,
        port: int,
        host: str = default_of(MetricsConfig, "host"),
        *,
        get_stats: StatsFn,
        get_health: HealthFn,
        get_camera_health: CameraHealthFn | None = None,
        workers: int = default_of(MetricsConfig, "workers"),
        timeout_s: float = default_of(MetricsConfig, "timeout_s"),
        max_connections: int = default_of(MetricsConfig, "max_connections"),
        routes: Routes | None = None,
    ) -> None:
        """`routes`: more paths (the debug view); it returns None for a path it does not serve."""
        self.host = host
        self._limits = {
            "workers": workers,
            "timeout_s": timeout_s,
            "max_connections": max_connections,
        }
        self.routes = routes
        self._requested_port = port
        self.get_health = get_health
        self.get_camera_health = get_camera_health
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HarCollector(get_stats, get_health, get_camera_health))
        self._metrics_app = make_wsgi_app(self.registry)
        self._server: BoundedWsgiServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when started with port 0)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._requested_port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Listen and serve; raises `MetricsServerError` when the port cannot be bound."""
        if self._server is not None:
            return
        try:
            server = BoundedWsgiServer((self.host, self._requested_port), self._app, **self._limits)
        except OSError as err:
            raise _bind_error(err, self.host, self._requested_port) from err
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="metrics-http",
            daemon=True,
        )
        self._thread.start()
        log.info("metrics.listening", host=self.host, port=self.port)

    def stop(self) -> None:
        """Stop serving and close the socket, so the port is free again (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5.0)

    def __enter__(self) -> MetricsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path not in ("/metrics", "/healthz"):
            served = self.routes(environ, start_response) if self.routes is not None else None
            if served is not None:
                return served
            return _respond(start_response, "404 Not Found", {"error": "not found"})
        if method not in ("GET", "HEAD"):
            return _respond(
                start_response,
                "405 Method Not Allowed",
                {"error": "method not allowed"},
                [("Allow", "GET, HEAD")],
            )
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        healthy, reasons = _safe_health(self.get_health)
        body: dict[str, Any] = {"healthy": healthy}
        if not healthy:
            body["reasons"] = reasons
        if self.get_camera_health is not None:
            body["cameras"] = {
                name: {"healthy": not why, "reasons": why}
                for name, why in _safe_camera_health(self.get_camera_health).items()
            }
        status = "200 OK" if healthy else "503 Service Unavailable"
        return _respond(start_response, status, body)


def _respond(
    start_response: Callable[..., Any],
    status: str,
    body: dict[str, Any],
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
            *(headers or []),
        ],
    )
    return [data]


def check_port(host: str, port: int) -> None:
    """Bind and release `host:port` as the server would; raises `MetricsServerError` (the
    server's own message) when it could not listen there now."""
    try:
        with socket.socket(address_family(host), socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as socketserver does
            sock.bind((host, port))
    except OSError as err:
        raise _bind_error(err, host, port) from err


def _bind_error(err: OSError, host: str, port: int) -> MetricsServerError:
    where = f"{host}:{port}"
    if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
        message = f"cannot listen on {where}: {host!r} is not an address of this machine"
    elif err.errno == errno.EADDRINUSE:
        message = f"metrics port {port} is already in use ({where}); set [metrics] port elsewhere"
    elif err.errno == errno.EACCES:
        message = f"no permission to listen on metrics port {port} ({where})"
    else:
        message = f"cannot listen on metrics port {where}: {err.strerror or err}"
    out = MetricsServerError(message)
    out.errno = err.errno
    return out
