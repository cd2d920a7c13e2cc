"""The daemon's composition root: build every component, start them in order, stop in reverse.

A frame's way: `runtime.capture` (one thread per camera) samples and resizes it into the
camera's ring (`runtime.ring`); `runtime.inference` (one thread) scores due windows and steps
each camera's tracker (`runtime.events`); `dispatch.router` (one thread) turns the outcomes
into messages: `comms.outbox` (spooled, acknowledged events) and `comms.messenger` (retained
state) over `comms.mqtt`.

Start-up checks everything a user controls before a thread starts (exit 2, one line). Each
component that starts pushes its own stop onto a stack, so a failure half-way stops exactly
what was started, in reverse order. After start-up nothing a camera or the broker does stops
the daemon; a component that dies stops it with exit 1, so systemd restarts it.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from har_daemon import __version__
from har_daemon.comms.availability import InstanceIdentity, InstancePresence
from har_daemon.comms.connection import client_options
from har_daemon.comms.control import ControlHandler
from har_daemon.comms.homeassistant import HaDiscovery, discovery_for
from har_daemon.comms.messenger import Messenger
from har_daemon.comms.mqtt import MqttClient
from har_daemon.comms.outbox import Outbox
from har_daemon.comms.payloads import enabled_payload
from har_daemon.comms.spool import Spool, SpoolError
from har_daemon.comms.topics import Topics, availability
from har_daemon.config import DaemonConfig
from har_daemon.core.clock import Clock
from har_daemon.core.errors import ConfigError, HarError
from har_daemon.core.logs import get_logger, report_suppressed
from har_daemon.dispatch.router import EventRouter, RouterSettings
from har_daemon.dispatch.snapshot import snapshots_for
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.model.registry import create_backend
from har_daemon.outputs.clips import ClipRecorder, ClipsError
from har_daemon.outputs.clips.build import clip_recorder_for
from har_daemon.preflight import check_writable, startup_summary, validate_startup
from har_daemon.runtime.calibration import calibration_path, camera_thresholds, read_calibrations
from har_daemon.runtime.camera import Camera
from har_daemon.runtime.cameras import build_cameras
from har_daemon.runtime.inference import InferenceScheduler
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.runtime.stats import RawStats, StatsTracker, camera_health, collect_raw, health
from har_daemon.service.debug_view import debug_view_for
from har_daemon.service.housekeeping import Housekeeping
from har_daemon.service.http import MetricsServer, MetricsServerError
from har_daemon.service.systemd import SystemdNotifier

log = get_logger(__name__)

EXIT_COMPONENT_DIED = 1
HA_CLEANUP_DELAY_S = 2.0
"""Our retained discovery configs from earlier runs arrive right after subscribing."""


class App:
    def __init__(
        self, config: DaemonConfig, *, out: TextIO | None = sys.stdout, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.out = out
        # Monotonic for every interval, the timeline for frames, wall time for payloads only.
        self.clock = clock or Clock()
        self.topics = Topics(config.mqtt.topic_prefix)
        self.notifier = SystemdNotifier()
        self.housekeeping = Housekeeping()
        self.stats_tracker = StatsTracker()
        self.exit_code = 0
        self._stop = threading.Event()
        self._started_mono = self.clock.monotonic()
        self._stops: list[tuple[str, Callable[[], None]]] = []
        self.meta: ModelMeta | None = None
        self.cameras: dict[str, Camera] = {}
        self.scheduler: InferenceScheduler | None = None
        self.router: EventRouter | None = None
        self.client: MqttClient | None = None
        self.messenger = Messenger(None)
        self.spool: Spool | None = None
        self.outbox: Outbox | None = None
        self.clips: ClipRecorder | None = None
        self.ha: HaDiscovery | None = None
        self.presence: InstancePresence | None = None

    # -- start-up, in order ------------------------------------------------------------------

    def start(self) -> None:
        """Build and start everything; on a failure, stop what started and raise HarError."""
        try:
            meta = self.meta = validate_startup(self.config)
            backend = create_backend(self.config.model.backend, self.config.model.path)
            self._start_http(meta)
            self._init_cameras(meta)
            self._start_clips()
            self._start_comms(meta)
            self._start_router(meta)
            self._start_inference(backend, meta)
            self._start_cameras()
            self._schedule_housekeeping()
        except HarError:
            self.stop()
            raise
        except OSError as exc:
            self.stop()
            raise ConfigError(f"cannot start: {exc}") from None
        log.info("daemon.start", **startup_summary(self.config, meta))
        self.notifier.ready(f"watching {len(self.cameras)} camera(s)")

    def _on_stop(self, name: str, fn: Callable[[], None]) -> None:
        self._stops.append((name, fn))

    def _start_http(self, meta: ModelMeta) -> None:
        m = self.config.metrics
        if not m.port:
            return
        view = debug_view_for(
            self.config.debug_view, lambda: self.cameras, lambda: self.router, meta.classes
        )
        server = MetricsServer(
            m.port,
            m.host,
            get_stats=self.stats_payload,
            get_health=self.health,
            get_camera_health=self.camera_health,
            workers=m.workers,
            timeout_s=m.timeout_s,
            max_connections=m.max_connections,
            routes=view,
        )
        if view is not None:
            self._on_stop("debug-view", view.close)
        try:
            server.start()
        except MetricsServerError as exc:
            raise ConfigError(f"metrics: {exc}") from None
        self._on_stop("http", server.stop)

    def _init_cameras(self, meta: ModelMeta) -> None:
        calibrated = read_calibrations(calibration_path(self.config))
        self.cameras = build_cameras(
            self.config,
            meta,
            self.config.enabled_cameras,
            on_sampled=self._on_sampled,
            on_status=self._on_camera_status,
            on_history_frame=self._on_history_frame,
            frame_clock=self.clock.timeline,
            thresholds=camera_thresholds(self.config, calibrated),
        )

    def _start_clips(self) -> None:
        if not self.config.clips.enabled:
            return
        try:
            self.clips = clip_recorder_for(self.config, self.cameras, self.clock.timeline)
        except ClipsError as exc:
            raise ConfigError(f"clips: {exc}") from None
        self._on_stop("clips", self.clips.close_all)
        clips = self.clips
        self.housekeeping.every("clips", 0.5, lambda: clips.tick(self.clock.timeline()))

    def _start_comms(self, meta: ModelMeta) -> None:
        """Spool, MQTT client, outbox, control and Home Assistant: everything with a broker."""
        cfg = self.config
        if not cfg.mqtt.enabled:
            return
        check_writable(cfg.spool.path, "spool")
        try:
            self.spool = spool = Spool.from_config(cfg.spool)
        except SpoolError as exc:
            raise ConfigError(f"spool: {exc}") from None
        self._on_stop("spool", spool.close)
        m = cfg.mqtt
        self.presence = presence = InstancePresence(
            InstanceIdentity(
                topics=self.topics,
                instance=m.instance,
                client_id=m.effective_client_id,
                cameras=tuple(self.cameras),
                shared=m.shared_prefix,
                version=__version__,
                started_at=self.clock.wall(),
            )
        )
        self.client = client = MqttClient(
            **client_options(m),
            status_topic=presence.status_topic,
            on_connected=self._republish_retained,
        )
        presence.check(client.settings)  # an instance owning our cameras answers pings: exit 2
        for topic_filter, callback in presence.subscriptions(lambda t, p: client.publish(t, p, 0)):
            client.subscribe(topic_filter, callback)
        self.messenger = messenger = Messenger(client)
        self.housekeeping.every("presence", 1.0, lambda: presence.publish_state(messenger.publish))
        control = ControlHandler(self.topics, list(self.cameras), self._apply_enabled, log)
        for topic_filter in control.subscriptions():
            client.subscribe(topic_filter, control)
        if cfg.homeassistant.enabled:
            self.ha = discovery_for(
                cfg,
                meta,
                list(self.cameras),
                DecisionPolicy.for_model(cfg.inference, meta).alerting(meta.classes),
                lambda topic, payload, retain: self.messenger.publish(
                    topic, payload, retain=retain
                ),
            )
            for topic_filter, callback in self.ha.subscriptions():
                client.subscribe(topic_filter, callback)
            self.housekeeping.every("homeassistant", 0.5, self._reannounce)
        # Every event is on disk before it is sent, and leaves the disk on PUBACK only.
        self.outbox = outbox = Outbox(client, spool)
        outbox.start()
        self._on_stop("outbox", outbox.close)
        client.start()
        self._on_stop("mqtt", self._stop_client)

    def _start_router(self, meta: ModelMeta) -> None:
        cfg = self.config
        histories = {name: cam.history for name, cam in self.cameras.items()}
        snapshots = snapshots_for(cfg, histories, meta)
        self.router = router = EventRouter(
            self.cameras,
            RouterSettings(
                model_name=meta.name,
                classes=meta.classes,
                event_qos=cfg.mqtt.qos,
                publish_scores=cfg.mqtt.publish_scores,
                state_interval_s=cfg.inference.update_interval_s,
            ),
            topics=self.topics,
            messenger=self.messenger,
            outbox=self.outbox,
            snapshots=snapshots,
            clips=self.clips,
            out=self.out,
            clock=self.clock,
            first_seqs=self.spool.last_seqs() if self.spool is not None else None,
            record_latency=self._record_latency,
        )
        router.start()
        self._on_stop("router", self._stop_router)

    def _start_inference(self, backend: Backend, meta: ModelMeta) -> None:
        cfg = self.config
        assert self.router is not None
        self.scheduler = scheduler = InferenceScheduler(
            backend,
            meta,
            [cam.pipeline for cam in self.cameras.values()],
            self.router.submit,
            batch_max=cfg.model.batch_max,
            motion_gating=cfg.inference.motion_gating,
            motion_threshold=cfg.inference.motion_threshold,
            gap_sink=self.router.submit,
            frame_clock=self.clock.timeline,
            activity_sink=self.router.submit,
        )
        scheduler.start()
        self._on_stop("inference", self._stop_inference)

    def _start_cameras(self) -> None:
        for cam in self.cameras.values():
            cam.start()
        self._on_stop("cameras", self._stop_cameras)

    def _schedule_housekeeping(self) -> None:
        hk = self.housekeeping
        hk.every("supervise", 1.0, self._supervise)
        hk.every("log-suppressed", 10.0, report_suppressed)
        hk.every("sources", 0.2, self._check_sources_ended)
        watchdog_s = SystemdNotifier.watchdog_interval_s()
        if watchdog_s:
            hk.every("watchdog", watchdog_s, self._watchdog)
        if self.config.stats.interval:
            hk.every("stats", float(self.config.stats.interval), self._publish_stats)

    # -- running -----------------------------------------------------------------------------

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

    def request_stop(self, reason: str, exit_code: int | None = None) -> None:
        if exit_code is not None:
            self.exit_code = max(self.exit_code, exit_code)
        if not self._stop.is_set():
            log.info("daemon.stopping", reason=reason)
            self._stop.set()

    def run_until_stopped(self) -> int:
        while not self._stop.wait(0.2):
            self.housekeeping.run_due()
        self.stop()
        return self.exit_code

    def stop(self) -> None:
        """Stop what was started, newest first; safe to call more than once."""
        if self._stops:
            self.notifier.stopping()
        released = []
        while self._stops:
            name, fn = self._stops.pop()
            released.append(name)
            try:
                fn()
            except Exception:
                log.exception("daemon.stop_failed", component=name)
        if self.meta is not None:
            report_suppressed()  # the last counts of throttled lines
            log.info("daemon.stopped", released=released, **self.stats())
            self.meta = None

    # -- stops of the components that need more than one call ----------------------------------

    def _stop_cameras(self) -> None:
        for cam in self.cameras.values():
            cam.stop()
        for cam in self.cameras.values():
            cam.join(timeout=5)

    def _stop_inference(self) -> None:
        """Score the windows that became due as the sources ended, then end every camera's
        activity at its last frame."""
        scheduler, router = self.scheduler, self.router
        assert scheduler is not None and router is not None
        scheduler.stop()
        scheduler.join(timeout=10)
        if not scheduler.is_alive() and not scheduler.crashed:
            scheduler.run_once()
        for cam in self.cameras.values():
            scheduler.finish(cam.pipeline)
            if cam.online:
                cam.online = False
                self.messenger.publish(
                    self.topics.camera_status(cam.name), availability(False), retain=True
                )

    def _stop_router(self) -> None:
        assert self.router is not None
        if not self.router.drain(timeout=10):
            log.warning("router.drain_timeout", queued=self.router.queued)
        self.router.stop()

    def _stop_client(self) -> None:
        assert self.client is not None and self.outbox is not None
        if self.config.stats.interval:
            self._publish_stats()  # the retained figures end on the final counts
        # Best effort: what is not acknowledged now stays spooled for the next start.
        self.outbox.flush(2.0)
        self.client.stop()

    # -- callbacks from other threads ------------------------------------------------------------

    def _on_sampled(self, camera: str) -> None:
        if self.scheduler is not None:
            self.scheduler.notify(camera)

    def _record_latency(self, camera: str, ms: float) -> None:
        self.cameras[camera].pipeline.stats.latencies_ms.append(ms)

    def _on_history_frame(self, camera: str, frame, t: float) -> None:  # type: ignore[no-untyped-def]
        if self.clips is not None:
            self.clips.add_frame(camera, frame, t)

    def _on_camera_status(self, camera: str, online: bool) -> None:
        if not online and self.scheduler is not None:
            self.scheduler.notify(camera)
        self.messenger.publish(self.topics.camera_status(camera), availability(online), retain=True)

    def _apply_enabled(self, camera: str, enabled: bool) -> None:
        """A control command (MQTT thread): pause or resume detection on one camera."""
        cam = self.cameras.get(camera)
        if cam is None:
            return
        if cam.set_enabled(enabled) and self.scheduler is not None:
            self.scheduler.notify(camera)
        self.messenger.publish(self.topics.enabled(camera), enabled_payload(enabled), retain=True)

    def _republish_retained(self) -> None:
        """After every (re)connect: a broker restarted without persistence has lost them."""
        if self.presence is not None:
            self.presence.announce(self.messenger.publish)
        if self.ha is not None:
            self.ha.announce()
            self.housekeeping.once("homeassistant-cleanup", HA_CLEANUP_DELAY_S, self._ha_cleanup)
        router = self.router
        states = router.states() if router is not None else {}
        now, offset = self.clock.timeline(), self.clock.wall_offset()
        for name, cam in self.cameras.items():
            publish = self.messenger.publish
            publish(self.topics.enabled(name), enabled_payload(cam.pipeline.enabled), retain=True)
            if cam.online is not None:
                publish(self.topics.camera_status(name), availability(cam.online), retain=True)
            if router is not None:
                state = states.get(name) or cam.pipeline.tracker.state
                payload = router.state_payload(state, now, offset)
                publish(self.topics.activity(name), payload, retain=True)
        if router is not None:
            router.republish_recognisers(now, offset)

    # -- housekeeping jobs -----------------------------------------------------------------------

    def _reannounce(self) -> None:
        assert self.ha is not None
        requests = self.ha.reannounce_due()
        if requests:
            log.info("homeassistant.reannounced", requests=requests)

    def _ha_cleanup(self) -> None:
        assert self.ha is not None
        removed = self.ha.cleanup()
        if removed:
            log.info("homeassistant.removed_entities", topics=removed)

    def _supervise(self) -> None:
        """A thread that died of a bug leaves a daemon that looks alive and does nothing:
        stop with exit 1 instead, so systemd restarts it."""
        dead = [
            name
            for name, thread in (("inference", self.scheduler), ("event-router", self.router))
            if thread is not None and not thread.is_alive()
        ]
        dead += [f"capture-{name}" for name, cam in self.cameras.items() if cam.failed]
        if dead and not self._stop.is_set():
            log.error("daemon.component_died", components=dead, action="exiting to be restarted")
            self.request_stop(f"{', '.join(dead)} died", EXIT_COMPONENT_DIED)

    def _check_sources_ended(self) -> None:
        if self.cameras and all(cam.finished for cam in self.cameras.values()):
            self.request_stop("all sources ended")

    def _watchdog(self) -> None:
        # Only live inference and event threads earn a ping: a hung model gets restarted.
        if all(t is not None and t.is_alive() for t in (self.scheduler, self.router)):
            self.notifier.watchdog()

    # -- statistics ------------------------------------------------------------------------------

    def stats(self) -> RawStats:
        """The raw counter snapshot: logged at exit, the input of rates and health."""
        router = self.router
        return collect_raw(
            self.cameras,
            self.scheduler,
            events=router.events if router is not None else lambda _name: 0,
            uptime_s=self.clock.monotonic() - self._started_mono,
            now=self.clock.monotonic(),
            spool=self.outbox.stats() if self.outbox is not None else None,
        )

    def stats_payload(self) -> dict:
        """`<prefix>/stats` and /metrics: the raw snapshot with per-camera rates."""
        return dict(self.stats_tracker.update(self.stats(), self.clock.monotonic()))

    def health(self) -> tuple[bool, list[str]]:
        _, reasons = health(self.stats())
        stalled = self.client.stall_reason() if self.client is not None else None
        reasons += [stalled] if stalled else []
        return not reasons, reasons

    def camera_health(self) -> dict[str, list[str]]:
        return camera_health(self.stats())

    def _publish_stats(self) -> None:
        payload = self.stats_payload()
        log.info("stats", **payload)
        self.messenger.publish(self.topics.stats, payload, retain=True)


def run_daemon(config: DaemonConfig, out: TextIO | None = sys.stdout) -> int:
    app = App(config, out=out)
    app.install_signal_handlers()
    app.start()
    return app.run_until_stopped()
