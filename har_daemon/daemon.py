"""The long-running process: cameras -> ring buffers -> inference -> events -> MQTT.

Start-up validates everything a user controls (config, model, file sources) before starting a
single thread, so a mistake is one line and exit 2 rather than a half-started service. After
that, nothing a camera or the broker does can stop the daemon: cameras reconnect forever and
the broker client reconnects in the background.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from har_daemon import __version__
from har_daemon.capture import CameraCapture, CaptureOptions, check_file_source
from har_daemon.config import CameraConfig, DaemonConfig
from har_daemon.errors import ConfigError, HarError
from har_daemon.event_state import ActivityTracker, Transition
from har_daemon.inference import Backend, CameraPipeline, InferenceScheduler, WindowResult
from har_daemon.logs import get_logger
from har_daemon.messages import Topics, activity_payload, event_payload, scores_payload
from har_daemon.model_meta import ModelMeta, read_meta
from har_daemon.ring_buffer import FrameRing, StrideSchedule
from har_daemon.systemd_notify import SystemdNotifier

log = get_logger(__name__)


def load_backend(config: DaemonConfig) -> tuple[Backend, ModelMeta]:
    """The model behind the configured backend; fails with a HarError on any model problem."""
    from har_daemon.backends import create_backend

    backend = create_backend(config.model.backend, config.model.path)
    return backend, backend.meta


def validate_startup(config: DaemonConfig) -> ModelMeta:
    """Every check that must pass before anything starts (all raise HarError, exit 2)."""
    meta = read_meta(config.model.path)
    if not config.enabled_cameras:
        raise ConfigError("no enabled camera: add a [[cameras]] entry or pass --source")
    try:
        config.inference.tracker_config().check_classes(meta.classes)
    except ValueError as exc:
        raise ConfigError(f"inference: {exc}") from None
    for cam in config.enabled_cameras:
        if cam.source_kind == "file":
            check_file_source(str(cam.source))
    return meta


@dataclass
class _CameraRuntime:
    config: CameraConfig
    pipeline: CameraPipeline
    capture: CameraCapture
    seq: int = 0
    events: int = 0
    online: bool | None = None
    last_state_publish: float = 0.0
    last_state_activity: str | None = None


class Daemon:
    def __init__(
        self,
        config: DaemonConfig,
        *,
        out: TextIO | None = sys.stdout,
        backend_factory: Callable[[DaemonConfig], tuple[Backend, ModelMeta]] = load_backend,
    ) -> None:
        self.config = config
        self.out = out
        self.topics = Topics(config.mqtt.topic_prefix)
        self._backend_factory = backend_factory
        self._stop = threading.Event()
        self._publish_lock = threading.Lock()
        self._out_lock = threading.Lock()
        self.notifier = SystemdNotifier()
        self.publisher: Any = None
        self.spool: Any = None  # durable outbox of event messages (with MQTT only)
        self.spooled: Any = None
        self.cameras: dict[str, _CameraRuntime] = {}
        self.scheduler: InferenceScheduler | None = None
        self.meta: ModelMeta | None = None
        self.exit_code = 0
        self.started_at = time.time()

    # -- start-up ---------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        validate_startup(cfg)
        backend, meta = self._backend_factory(cfg)
        self.meta = meta
        spacing = cfg.model.frame_spacing_s or meta.frame_spacing_s
        pipelines = []
        for cam in cfg.enabled_cameras:
            ring = FrameRing(meta.sequence_length, (meta.frame_height, meta.frame_width, 3))
            pipeline = CameraPipeline(
                name=cam.name,
                ring=ring,
                schedule=StrideSchedule(cfg.model.stride),
                smoother=cfg.inference.make_smoother(),
                tracker=ActivityTracker(
                    cfg.inference.tracker_config(), meta.classes, camera=cam.name
                ),
            )
            pipelines.append(pipeline)
            capture = CameraCapture(
                CaptureOptions(
                    name=cam.name,
                    source=cam.source,
                    kind=cam.source_kind,
                    loop=cam.loop,
                    realtime=cam.realtime,
                    rtsp_transport=cam.rtsp_transport,
                    stall_timeout_s=cam.stall_timeout_s,
                    reconnect_initial_s=cam.reconnect_initial_s,
                    reconnect_max_s=cam.reconnect_max_s,
                    reconnect_jitter=cam.reconnect_jitter,
                ),
                ring,
                spacing,
                meta.frame_size,
                meta.resize_interpolation,
                on_frame=self._on_frame,
                on_status=self._on_camera_status,
                backpressure=self._make_backpressure(pipeline),
            )
            self.cameras[cam.name] = _CameraRuntime(cam, pipeline, capture)

        self.scheduler = InferenceScheduler(
            backend,
            meta,
            pipelines,
            self._on_result,
            batch_max=cfg.model.batch_max,
            motion_gating=cfg.inference.motion_gating,
            motion_threshold=cfg.inference.motion_threshold,
            gap_sink=self._on_gap,
        )
        if cfg.mqtt.enabled:
            from har_daemon.delivery import SpooledPublisher
            from har_daemon.spool import Spool, SpoolError

            try:
                self.spool = Spool.from_config(cfg.spool)
            except SpoolError as exc:
                raise ConfigError(f"spool: {exc}") from None
            self.publisher = self._make_publisher()
            # Every event is on disk before it is sent, and leaves the disk on PUBACK only.
            self.spooled = SpooledPublisher(self.publisher, self.spool)
            self.spooled.start()
            self.publisher.start()
        log.info(
            "daemon.start",
            version=__version__,
            model=meta.name,
            classes=meta.classes,
            backend=cfg.model.backend,
            frame_spacing_s=spacing,
            stride=cfg.model.stride,
            cameras=[
                {"name": c.name, "source": c.redacted_source, "kind": c.source_kind}
                for c in cfg.enabled_cameras
            ],
            mqtt=(
                f"{cfg.mqtt.host}:{cfg.mqtt.port} as {cfg.mqtt.effective_client_id}"
                if cfg.mqtt.enabled
                else "disabled"
            ),
            topic_prefix=cfg.mqtt.topic_prefix,
        )
        self.scheduler.start()
        for rt in self.cameras.values():
            rt.capture.start()
        self.notifier.ready(f"watching {len(self.cameras)} camera(s)")

    def _make_publisher(self) -> Any:
        from har_daemon.mqtt_publisher import MqttPublisher

        m = self.config.mqtt
        publisher = MqttPublisher(
            host=m.host,
            port=m.port,
            client_id=m.effective_client_id,
            keepalive=m.keepalive,
            username=m.username,
            password=m.password.get_secret_value() if m.password else None,
            tls=m.tls,
            tls_ca_file=m.tls_ca_file,
            tls_cert_file=m.tls_cert_file,
            tls_key_file=m.tls_key_file,
            tls_insecure=m.tls_insecure,
            topic_prefix=m.topic_prefix,
            qos=m.qos,
            on_connected=self._republish_retained,
        )
        return publisher

    def _make_backpressure(self, pipeline: CameraPipeline) -> Callable[[], None]:
        def wait_for_inference() -> None:
            ring, schedule = pipeline.ring, pipeline.schedule
            while not self._stop.is_set() and schedule.ready(
                ring.count, ring.full, ring.full_since
            ):
                time.sleep(0.002)

        return wait_for_inference

    # -- callbacks from threads -------------------------------------------------------------

    def _on_frame(self, camera: str) -> None:
        if self.scheduler is not None:
            self.scheduler.notify(camera)

    def _on_camera_status(self, camera: str, online: bool, reason: str) -> None:
        rt = self.cameras.get(camera)
        if rt is None:
            return
        rt.online = online
        log.info("camera.status", camera=camera, online=online, reason=reason)
        if not online and self.scheduler is not None:
            rt.pipeline.gap.set()
            self.scheduler.notify(camera)
        self._publish(
            self.topics.camera_status(camera), "online" if online else "offline", retain=True
        )

    def _on_result(self, result: WindowResult) -> None:
        rt = self.cameras[result.camera]
        assert self.meta is not None
        if self.config.mqtt.publish_scores:
            self._publish(
                self.topics.scores(result.camera),
                scores_payload(self.meta.classes, result.probs, result.smoothed, result.window_end),
                qos=0,
            )
        self._emit(rt, result.transitions)
        self._maybe_publish_state(rt, result.window_end, force=bool(result.transitions))

    def _on_gap(self, camera: str, transitions: list[Transition]) -> None:
        rt = self.cameras[camera]
        self._emit(rt, transitions)
        self._maybe_publish_state(rt, time.time(), force=True)

    # -- publishing -------------------------------------------------------------------------

    def _emit(self, rt: _CameraRuntime, transitions: list[Transition]) -> None:
        assert self.meta is not None
        for tr in transitions:
            # Persistent numbers when there is a spool: replayed events never reuse a seq.
            rt.seq = self.spool.next_seq(rt.config.name) if self.spool else rt.seq + 1
            rt.events += 1
            payload = event_payload(tr, rt.config.name, self.meta.name, rt.seq)
            log.info(
                "event",
                camera=rt.config.name,
                type=tr.kind,
                activity=tr.activity,
                id=tr.occurrence_id,
                confidence=payload["confidence"],
                seq=rt.seq,
            )
            self._print(payload)
            if self.spooled is not None:
                self.spooled.send(
                    self.topics.events(rt.config.name),
                    payload,
                    qos=self.config.mqtt.qos,
                    kind="update" if tr.kind == "update" else "event",
                    camera=rt.config.name,
                )

    def _maybe_publish_state(self, rt: _CameraRuntime, now: float, force: bool) -> None:
        state = rt.pipeline.tracker.state
        changed = state.activity != rt.last_state_activity
        interval = self.config.inference.update_interval_s
        if force or changed or now - rt.last_state_publish >= interval:
            rt.last_state_publish = now
            rt.last_state_activity = state.activity
            self._publish(
                self.topics.activity(rt.config.name), activity_payload(state, now), retain=True
            )

    def _republish_retained(self) -> None:
        """After every (re)connect: a broker restarted without persistence has lost them."""
        for name, rt in self.cameras.items():
            if rt.online is not None:
                self._publish(
                    self.topics.camera_status(name), "online" if rt.online else "offline", True
                )
            state = rt.pipeline.tracker.state
            self._publish(
                self.topics.activity(name), activity_payload(state, time.time()), retain=True
            )

    def _publish(self, topic: str, payload: dict | str, retain: bool = False, qos: int = 1) -> None:
        if self.publisher is None:
            return
        data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
        with self._publish_lock:
            self.publisher.publish(topic, data, qos=qos, retain=retain)

    def _print(self, payload: dict) -> None:
        if self.out is None:
            return
        with self._out_lock:
            self.out.write(json.dumps(payload) + "\n")
            self.out.flush()

    # -- main loop and shutdown -------------------------------------------------------------

    def request_stop(self, reason: str = "signal") -> None:
        if not self._stop.is_set():
            log.info("daemon.stopping", reason=reason)
            self._stop.set()

    def install_signal_handlers(self) -> None:
        def on_term(signum: int, _frame: object) -> None:
            self.request_stop(signal.Signals(signum).name)

        def on_hup(_signum: int, _frame: object) -> None:
            log.warning(
                "daemon.reload_unsupported",
                hint="SIGHUP does not reload the config; restart the service to apply changes",
            )

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)

    def run_until_stopped(self) -> int:
        watchdog_every = SystemdNotifier.watchdog_interval_s()
        stats_every = float(self.config.stats.interval)
        last_watchdog = last_stats = time.monotonic()
        while not self._stop.wait(0.2):
            now = time.monotonic()
            if watchdog_every and now - last_watchdog >= watchdog_every:
                # Only a live inference thread earns a watchdog ping: a hung model restarts.
                if self.scheduler is not None and self.scheduler.is_alive():
                    self.notifier.watchdog()
                last_watchdog = now
            if stats_every and now - last_stats >= stats_every:
                last_stats = now
                log.info("stats", **self.stats())
            if all(rt.capture.finished for rt in self.cameras.values()):
                self.request_stop("all sources ended")
        self.shutdown()
        return self.exit_code

    def shutdown(self) -> None:
        self.notifier.stopping()
        for rt in self.cameras.values():
            rt.capture.stop()
        for rt in self.cameras.values():
            rt.capture.join(timeout=5)
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler.join(timeout=10)
            # Windows that became due as the sources ended are still scored.
            if not self.scheduler.is_alive():
                self.scheduler.run_once()
        for rt in self.cameras.values():
            times = rt.pipeline.ring.snapshot()[1]
            end = float(times[-1]) if len(times) else time.time()
            self._emit(rt, rt.pipeline.tracker.finish(end))
            self._maybe_publish_state(rt, end, force=True)
            if rt.online:
                rt.online = False
                self._publish(self.topics.camera_status(rt.config.name), "offline", retain=True)
        if self.spooled is not None:
            # Best effort: what is not acknowledged now stays spooled for the next start.
            self.spooled.flush(2.0)
        if self.publisher is not None:
            self.publisher.stop()
        stats = self.stats()
        if self.spooled is not None:
            self.spooled.close()
        if self.spool is not None:
            self.spool.close()
        log.info("daemon.stopped", **stats)

    def stats(self) -> dict[str, Any]:
        cams = {}
        for name, rt in self.cameras.items():
            cs, ps = rt.capture.stats, rt.pipeline.stats
            lat = np.asarray(ps.latencies_ms) if ps.latencies_ms else np.zeros(1)
            cams[name] = {
                "online": cs.online,
                "frames_read": cs.frames_read,
                "frames_sampled": cs.frames_sampled,
                "windows": ps.windows,
                "stale_windows": ps.stale_windows,
                "motion_skipped": ps.motion_skipped,
                "reconnects": cs.reconnects,
                "events": rt.events,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
                "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
            }
        out: dict[str, Any] = {
            "uptime_s": round(time.time() - self.started_at, 1),
            "cameras": cams,
        }
        if self.spooled is not None:
            out["spool"] = self.spooled.stats()
        return out


def run_daemon(config: DaemonConfig, out: TextIO | None = sys.stdout) -> int:
    daemon = Daemon(config, out=out)
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except HarError:
        daemon.shutdown()
        raise
    return daemon.run_until_stopped()
