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
from har_daemon.comms.payloads import (
    Topics,
    activity_payload,
    enabled_payload,
    event_payload,
    scores_payload,
)
from har_daemon.config import CameraConfig, DaemonConfig
from har_daemon.core.errors import ConfigError, HarError
from har_daemon.core.logs import get_logger
from har_daemon.model.meta import ModelMeta, read_meta
from har_daemon.runtime.capture import CameraCapture, CaptureOptions, check_file_source
from har_daemon.runtime.events import ActivityTracker, Transition
from har_daemon.runtime.inference import Backend, CameraPipeline, InferenceScheduler, WindowResult
from har_daemon.runtime.ring import FrameRing, StrideSchedule
from har_daemon.runtime.stats import StatsTracker, health, process_rss_mb
from har_daemon.service.systemd import SystemdNotifier

log = get_logger(__name__)


def load_backend(config: DaemonConfig) -> tuple[Backend, ModelMeta]:
    """The model behind the configured backend; fails with a HarError on any model problem."""
    from har_daemon.model.backends import create_backend

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
    history: Any = None  # FrameHistory of full-resolution frames (snapshots, clips)
    best: Any = None  # BestWindow: recent windows' scores, to pick the snapshot frame


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
        self._started_mono = time.monotonic()
        self.stats_tracker = StatsTracker()
        self.control: Any = None  # ControlHandler, with MQTT
        self.ha: Any = None  # HaDiscovery, with MQTT and [homeassistant] enabled
        self.metrics: Any = None  # MetricsServer, with [metrics] port
        self._ha_cleanup_due: float | None = None  # monotonic
        self.clips: Any = None  # ClipRecorder, with [clips] enabled
        self._window_s = 0.0  # seconds one model window spans

    # -- start-up ---------------------------------------------------------------------------

    def start(self) -> None:
        cfg = self.config
        validate_startup(cfg)
        backend, meta = self._backend_factory(cfg)
        self.meta = meta
        spacing = cfg.model.frame_spacing_s or meta.frame_spacing_s
        self._window_s = meta.sequence_length * spacing
        keep_frames = cfg.snapshots.enabled or cfg.clips.enabled
        history_spacing = 1.0 / cfg.clips.fps if cfg.clips.enabled else None
        history_age = self._window_s * 2 + (cfg.clips.pre_roll_s if cfg.clips.enabled else 0) + 5
        history_rate = 1.0 / min(spacing, history_spacing or spacing)
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
                on_full_frame=self._on_full_frame if keep_frames else None,
                history_spacing_s=history_spacing,
            )
            rt = _CameraRuntime(cam, pipeline, capture)
            if keep_frames:
                from har_daemon.outputs.snapshots import BestWindow
                from har_daemon.runtime.history import FrameHistory

                rt.history = FrameHistory(
                    history_age,
                    max(cfg.snapshots.max_width, cfg.clips.max_width),
                    max_frames=int(history_age * history_rate) + 10,
                )
                rt.best = BestWindow(max(cfg.inference.smoothing_window, 1) + 4)
            self.cameras[cam.name] = rt
        if cfg.clips.enabled:
            self._make_clip_recorder()

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
            from har_daemon.comms.outbox import SpooledPublisher
            from har_daemon.comms.spool import Spool, SpoolError

            try:
                self.spool = Spool.from_config(cfg.spool)
            except SpoolError as exc:
                raise ConfigError(f"spool: {exc}") from None
            self.publisher = self._make_publisher()
            self._setup_subscriptions(meta)
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
        if cfg.metrics.port:
            self._start_metrics()
        self.scheduler.start()
        for rt in self.cameras.values():
            rt.capture.start()
        self.notifier.ready(f"watching {len(self.cameras)} camera(s)")

    def _make_publisher(self) -> Any:
        from har_daemon.comms.mqtt import MqttPublisher

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

    def _setup_subscriptions(self, meta: ModelMeta) -> None:
        """Control topics, and Home Assistant's birth message and our old discovery configs."""
        from har_daemon.comms.control import ControlHandler

        cfg = self.config
        self.control = ControlHandler(self.topics, list(self.cameras), self._apply_enabled, log)
        for topic_filter in self.control.subscriptions():
            self.publisher.subscribe(topic_filter, self.control)
        if cfg.homeassistant.enabled:
            from har_daemon.comms.homeassistant import HaDiscovery, alerting_classes

            try:
                self.ha = HaDiscovery(
                    discovery_prefix=cfg.homeassistant.discovery_prefix,
                    topic_prefix=cfg.mqtt.topic_prefix,
                    cameras=list(self.cameras),
                    classes=meta.classes,
                    alert_activities=alerting_classes(meta.classes, cfg.inference.tracker_config()),
                    model_name=meta.name,
                    version=__version__,
                    snapshots=cfg.snapshots.enabled,
                    publish=lambda topic, payload, retain: self._publish(topic, payload, retain),
                )
            except ValueError as exc:
                raise ConfigError(f"homeassistant: {exc}") from None
            for topic_filter, callback in self.ha.subscriptions():
                self.publisher.subscribe(topic_filter, callback)

    def _make_clip_recorder(self) -> None:
        from har_daemon.outputs.clips import ClipRecorder, ClipsError

        c = self.config.clips
        try:
            self.clips = ClipRecorder(
                c.path,
                fps=c.fps,
                pre_roll_s=c.pre_roll_s,
                post_roll_s=c.post_roll_s,
                max_clip_s=c.max_clip_s,
                max_bytes=c.max_bytes,
                max_age_s=c.max_age,
                history={name: rt.history for name, rt in self.cameras.items()},
                max_width=c.max_width,
                codec=c.codec,
            )
        except ClipsError as exc:
            raise ConfigError(f"clips: {exc}") from None

    def _start_metrics(self) -> None:
        from har_daemon.service.http import MetricsServer, MetricsServerError

        self.metrics = MetricsServer(
            self.config.metrics.port,
            self.config.metrics.host,
            get_stats=self.stats_payload,
            get_health=self.health,
        )
        try:
            self.metrics.start()
        except MetricsServerError as exc:
            self.metrics = None
            raise ConfigError(f"metrics: {exc}") from None

    def _apply_enabled(self, camera: str, enabled: bool) -> None:
        """From a control message (paho's thread): pause or resume detection on one camera.

        Pausing ends the open activity (through the inference thread, which owns the tracker)
        and stops scoring; capture goes on so that resuming is instant.
        """
        rt = self.cameras.get(camera)
        if rt is None:
            return
        changed = rt.pipeline.enabled != enabled
        rt.pipeline.enabled = enabled
        if changed:
            log.info("camera.detection", camera=camera, enabled=enabled)
            if not enabled and self.scheduler is not None:
                rt.pipeline.gap.set()
                self.scheduler.notify(camera)
        self._publish(self.topics.enabled(camera), enabled_payload(enabled), retain=True)

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

    def _on_full_frame(self, camera: str, frame: np.ndarray, t: float) -> None:
        rt = self.cameras[camera]
        stored = rt.history.push(frame, t)
        if self.clips is not None:
            self.clips.add_frame(camera, stored, t)

    def _on_camera_status(self, camera: str, online: bool, reason: str) -> None:
        rt = self.cameras.get(camera)
        if rt is None:
            return
        rt.online = online
        if not online and rt.history is not None:
            rt.history.clear()
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
        if rt.best is not None:
            rt.best.add(result.window_end, result.probs)
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
        if rt.best is not None:
            rt.best.clear()
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
            if tr.kind == "start":
                payload["has_snapshot"] = self._snapshot(rt, tr)
                if self.clips is not None:
                    self.clips.start(tr.occurrence_id, rt.config.name, tr.activity, tr.started_at)
            elif tr.kind == "end" and self.clips is not None:
                clip = self.clips.end(tr.occurrence_id, tr.ended_at or tr.at)
                payload["clip"] = str(clip) if clip is not None else None
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

    def _snapshot(self, rt: _CameraRuntime, tr: Transition) -> bool:
        """Publish the picture of an event start (retained); False when there is none."""
        if not self.config.snapshots.enabled or rt.history is None or self.meta is None:
            return False
        from har_daemon.outputs.snapshots import encode_snapshot, snapshot_lines

        best_end = rt.best.best(self.meta.classes.index(tr.activity))
        # The middle of the best-scoring window: where its action is, not its newest frame.
        aim = (best_end if best_end is not None else tr.at) - self._window_s / 2
        found = rt.history.nearest(aim)
        if found is None:
            return False
        t, frame = found
        s = self.config.snapshots
        try:
            jpeg = encode_snapshot(
                frame,
                max_width=s.max_width,
                quality=s.quality,
                overlay_lines=(
                    snapshot_lines(t, rt.config.name, tr.activity, tr.confidence)
                    if s.overlay
                    else None
                ),
            )
        except (ValueError, OSError) as exc:
            log.warning("snapshot.failed", camera=rt.config.name, error=str(exc))
            return False
        self._publish(self.topics.snapshot(rt.config.name), jpeg, retain=True)
        return self.publisher is not None

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
        if self.ha is not None:
            self.ha.announce()
            if self._ha_cleanup_due is None:
                # Our retained configs from earlier runs arrive right after subscribing.
                self._ha_cleanup_due = time.monotonic() + 2.0
        for name, rt in self.cameras.items():
            self._publish(self.topics.enabled(name), enabled_payload(rt.pipeline.enabled), True)
            if rt.online is not None:
                self._publish(
                    self.topics.camera_status(name), "online" if rt.online else "offline", True
                )
            state = rt.pipeline.tracker.state
            self._publish(
                self.topics.activity(name), activity_payload(state, time.time()), retain=True
            )

    def _publish(
        self, topic: str, payload: dict | str | bytes, retain: bool = False, qos: int = 1
    ) -> None:
        if self.publisher is None:
            return
        data = (
            payload
            if isinstance(payload, str | bytes)
            else json.dumps(payload, separators=(",", ":"))
        )
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
                self._publish_stats()
            if self.clips is not None:
                self.clips.tick()
            if self._ha_cleanup_due is not None and now >= self._ha_cleanup_due:
                self._ha_cleanup_due = float("inf")
                removed = self.ha.cleanup()
                if removed:
                    log.info("homeassistant.removed_entities", topics=removed)
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
        if self.clips is not None:
            self.clips.close_all()
        if self.config.stats.interval:
            self._publish_stats()  # the retained figures end on the final counts
        if self.spooled is not None:
            # Best effort: what is not acknowledged now stays spooled for the next start.
            self.spooled.flush(2.0)
        if self.publisher is not None:
            self.publisher.stop()
        if self.metrics is not None:
            self.metrics.stop()
        stats = self.stats()
        if self.spooled is not None:
            self.spooled.close()
        if self.spool is not None:
            self.spool.close()
        log.info("daemon.stopped", **stats)

    def stats(self) -> dict[str, Any]:
        """The raw counter snapshot (`stats.RawStats`): logged at exit, the input of rates."""
        now = time.monotonic()
        cams = {}
        for name, rt in self.cameras.items():
            cs, ps = rt.capture.stats, rt.pipeline.stats
            lat = np.asarray(ps.latencies_ms) if ps.latencies_ms else np.zeros(1)
            cams[name] = {
                "online": cs.online,
                "enabled": rt.pipeline.enabled,
                "finished": cs.finished,
                "frames_read": cs.frames_read,
                "frames_sampled": cs.frames_sampled,
                "windows": ps.windows,
                "stale_windows": ps.stale_windows,
                "motion_skipped": ps.motion_skipped,
                "reconnects": cs.reconnects,
                "events": rt.events,
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
                "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
                "last_frame_age_s": (
                    round(now - cs.last_frame_at, 3) if cs.last_frame_at is not None else None
                ),
                "stall_timeout_s": rt.config.stall_timeout_s,
            }
        sched = self.scheduler

        def age(t: float | None) -> float | None:
            return round(now - t, 3) if t is not None else None

        out: dict[str, Any] = {
            "uptime_s": round(now - self._started_mono, 3),
            "rss_mb": round(process_rss_mb(), 1),
            "inference": {
                "alive": bool(sched is not None and sched.is_alive()),
                "batches": sched.batches if sched is not None else 0,
                "errors": sched.errors if sched is not None else 0,
                "last_inference_age_s": age(sched.last_inference_at) if sched else None,
                "last_window_age_s": age(sched.last_window_at) if sched else None,
            },
            "cameras": cams,
        }
        if self.spooled is not None:
            out["spool"] = self.spooled.stats()
        return out

    def stats_payload(self) -> dict[str, Any]:
        """`<prefix>/stats` and /metrics: the raw snapshot with per-camera rates."""
        return dict(self.stats_tracker.update(self.stats(), time.monotonic()))  # type: ignore[arg-type]

    def health(self) -> tuple[bool, list[str]]:
        return health(self.stats())  # type: ignore[arg-type]

    def _publish_stats(self) -> None:
        payload = self.stats_payload()
        log.info("stats", **payload)
        self._publish(self.topics.stats, payload, retain=True)


def run_daemon(config: DaemonConfig, out: TextIO | None = sys.stdout) -> int:
    daemon = Daemon(config, out=out)
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except HarError:
        daemon.shutdown()
        raise
    return daemon.run_until_stopped()
