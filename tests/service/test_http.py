"""The metrics endpoint over real HTTP on loopback: exposition, /healthz, errors, the port."""

from __future__ import annotations

import errno
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from har_daemon.runtime.stats import StatsTracker
from har_daemon.service.http import METRIC_NAMES, MetricsServer, MetricsServerError
from tests.infra.logs import capture_logs
from tests.infra.procs import LOOPBACK, free_port, port_accepts


def raw_stats() -> dict[str, Any]:
    cam = {
        "online": True,
        "enabled": True,
        "finished": False,
        "frames_read": 2500,
        "frames_sampled": 1000,
        "windows": 200,
        "stale_windows": 3,
        "motion_skipped": 7,
        "reconnects": 1,
        "cuts": 2,
        "failures": 1,
        "detections": 40,
        "no_person_windows": 5,
        "gated_windows": 6,
        "fall_looks": 50,
        "fall_looks_shared": 10,
        "fall_looks_tracked": 8,
        "fall_turned_looks": 3,
        "fall_turned_calls": 6,
        "fall_outside_zones": 2,
        "pose_looks": 30,
        "pose_windows": 12,
        "pretrained_windows": 11,
        "pretrained_embedded": 75,
        "enter_threshold": 0.73,
        "events": 4,
        "latency_ms_p50": 12.5,
        "latency_ms_p95": 40.0,
        "model_ms_p50": 4.5,
        "model_ms_p95": 6.0,
        "last_frame_age_s": 0.25,
        "stall_timeout_s": 10.0,
    }
    paused = {
        **cam,
        "online": False,
        "enabled": False,
        "frames_read": 10,
        "last_frame_age_s": None,
    }
    return {
        "uptime_s": 100.0,
        "rss_mb": 256.0,
        "inference": {"alive": True, "batches": 150, "errors": 2, "last_inference_age_s": 0.5},
        "spool": {
            "depth": 5,
            "bytes": 1234,
            "appended": 40,
            # Spool.stats() counts drops per bound that caused them.
            "dropped": {"max_rows": 1, "max_bytes": 0, "max_age": 2},
            "in_flight": 2,
        },
        "cameras": {"door": cam, 'yard "2"': paused},
    }


class Daemon:
    """What the real daemon hands the server: its latest stats payload and health."""

    def __init__(self) -> None:
        self.tracker = StatsTracker()
        self.raw = raw_stats()
        self.healthy: tuple[bool, list[str]] = (True, [])
        self.cameras: dict[str, list[str]] = {"door": [], 'yard "2"': []}
        self.stats_calls = 0

    def get_stats(self) -> dict[str, Any]:
        self.stats_calls += 1
        return dict(self.tracker.update(self.raw, 1000.0))  # type: ignore[arg-type]

    def get_health(self) -> tuple[bool, list[str]]:
        return self.healthy

    def get_camera_health(self) -> dict[str, list[str]]:
        return self.cameras


@pytest.fixture
def daemon() -> Daemon:
    return Daemon()


@pytest.fixture
def server(daemon: Daemon) -> Iterator[MetricsServer]:
    srv = MetricsServer(
        0,
        LOOPBACK,
        get_stats=daemon.get_stats,
        get_health=daemon.get_health,
        get_camera_health=daemon.get_camera_health,
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples by (name, sorted labels); also checks the family types."""
    status, headers, body = fetch(server.url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        assert fam.name.startswith("har_")
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
            expected_type = "counter" if s.name.endswith("_total") else "gauge"
            assert fam.type == expected_type, s.name
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_expose_the_stats(server: MetricsServer) -> None:
    s = scrape(server)
    assert value(s, "har_up") == 1.0
    assert value(s, "har_healthy") == 1.0
    assert value(s, "har_uptime_seconds") == 100.0
    assert value(s, "har_process_rss_bytes") == 256.0 * 1024**2
    assert value(s, "har_inference_alive") == 1.0
    assert value(s, "har_inference_batches_total") == 150
    assert value(s, "har_inference_errors_total") == 2
    assert value(s, "har_inference_last_age_seconds") == 0.5
    assert value(s, "har_spool_depth") == 5
    assert value(s, "har_spool_bytes") == 1234
    assert value(s, "har_spool_in_flight") == 2
    assert value(s, "har_spool_appended_total") == 40
    assert value(s, "har_spool_dropped_total", reason="max_rows") == 1
    assert value(s, "har_spool_dropped_total", reason="max_age") == 2
    door = {"camera": "door"}
    assert value(s, "har_camera_frames_read_total", **door) == 2500
    assert value(s, "har_camera_frames_sampled_total", **door) == 1000
    assert value(s, "har_camera_windows_total", **door) == 200
    assert value(s, "har_camera_stale_windows_total", **door) == 3
    assert value(s, "har_camera_motion_skipped_total", **door) == 7
    assert value(s, "har_camera_reconnects_total", **door) == 1
    assert value(s, "har_camera_cuts_total", **door) == 2
    assert value(s, "har_camera_person_detections_total", **door) == 40
    assert value(s, "har_camera_no_person_windows_total", **door) == 5
    assert value(s, "har_camera_events_total", **door) == 4
    assert value(s, "har_camera_gated_windows_total", **door) == 6
    assert value(s, "har_camera_fall_looks_total", **door) == 50
    assert value(s, "har_camera_fall_looks_shared_total", **door) == 10
    assert value(s, "har_camera_fall_looks_tracked_total", **door) == 8
    assert value(s, "har_camera_fall_turned_looks_total", **door) == 3
    assert value(s, "har_camera_fall_turned_calls_total", **door) == 6
    assert value(s, "har_camera_fall_outside_zones_total", **door) == 2
    assert value(s, "har_camera_pose_looks_total", **door) == 30
    assert value(s, "har_camera_pose_windows_total", **door) == 12
    assert value(s, "har_camera_pretrained_windows_total", **door) == 11
    assert value(s, "har_camera_pretrained_embedded_total", **door) == 75
    assert value(s, "har_camera_enter_threshold", **door) == 0.73
    assert value(s, "har_camera_online", **door) == 1.0
    assert value(s, "har_camera_enabled", **door) == 1.0
    assert value(s, "har_camera_finished", **door) == 0.0
    # Rates from StatsTracker: first update, over the 100 s of uptime.
    assert value(s, "har_camera_capture_fps", **door) == 25.0
    assert value(s, "har_camera_sampled_fps", **door) == 10.0
    assert value(s, "har_camera_inference_fps", **door) == 2.0
    assert value(s, "har_camera_last_frame_age_seconds", **door) == 0.25
    lat = "har_camera_inference_latency_seconds"
    assert value(s, lat, camera="door", quantile="0.5") == pytest.approx(0.0125)
    assert value(s, lat, camera="door", quantile="0.95") == pytest.approx(0.04)
    model = "har_camera_model_latency_seconds"
    assert value(s, model, camera="door", quantile="0.5") == pytest.approx(0.0045)
    assert value(s, "har_camera_healthy", **door) == 1.0


def test_every_metric_name_is_listed_and_escaped_labels_survive(server: MetricsServer) -> None:
    s = scrape(server)
    names = {name for name, _ in s}
    assert names == set(METRIC_NAMES)
    yard = {"camera": 'yard "2"'}
    assert value(s, "har_camera_frames_read_total", **yard) == 10
    assert value(s, "har_camera_online", **yard) == 0.0
    assert value(s, "har_camera_enabled", **yard) == 0.0
    # No frame yet: no made-up age.
    assert ("har_camera_last_frame_age_seconds", (("camera", 'yard "2"'),)) not in s


def test_each_scrape_reads_fresh_stats(server: MetricsServer, daemon: Daemon) -> None:
    assert value(scrape(server), "har_inference_errors_total") == 2
    daemon.raw["inference"]["errors"] = 9
    daemon.raw["cameras"]["door"]["events"] = 5
    s = scrape(server)
    assert value(s, "har_inference_errors_total") == 9
    assert value(s, "har_camera_events_total", camera="door") == 5
    assert daemon.stats_calls == 2


def test_optional_parts_missing(server: MetricsServer, daemon: Daemon) -> None:
    del daemon.raw["spool"]
    daemon.raw["cameras"] = daemon.cameras = {}
    daemon.raw["inference"]["last_inference_age_s"] = None
    names = {name for name, _ in scrape(server)}
    assert not any(n.startswith(("har_spool_", "har_camera_")) for n in names)
    assert "har_inference_last_age_seconds" not in names
    assert "har_inference_errors_total" in names


def test_failing_stats_give_up_zero_not_an_error(daemon: Daemon) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    with MetricsServer(0, LOOPBACK, get_stats=broken, get_health=daemon.get_health) as srv:
        s = scrape(srv)
    assert value(s, "har_up") == 0.0
    assert value(s, "har_healthy") == 1.0
    assert {name for name, _ in s} == {"har_up", "har_healthy"}


def test_malformed_stats_give_up_zero_and_no_traceback(
    daemon: Daemon, capfd: pytest.CaptureFixture[str]
) -> None:
    def malformed() -> dict[str, Any]:
        return {"uptime_s": "soon", "cameras": {}}

    capfd.readouterr()
    with (
        capture_logs() as logs,
        MetricsServer(0, LOOPBACK, get_stats=malformed, get_health=daemon.get_health) as srv,
    ):
        s = scrape(srv)
    assert value(s, "har_up") == 0.0
    assert "metrics.stats_failed" in [e["event"] for e in logs]
    assert capfd.readouterr().err == ""  # wsgiref printed no traceback


def test_healthz_flips_between_200_and_503(server: MetricsServer, daemon: Daemon) -> None:
    status, headers, body = fetch(server.url + "/healthz")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    healthy_cameras = {
        "door": {"healthy": True, "reasons": []},
        'yard "2"': {"healthy": True, "reasons": []},
    }
    assert json.loads(body) == {"healthy": True, "cameras": healthy_cameras}

    daemon.healthy = (False, ["camera 'door' is offline", "inference thread is not running"])
    daemon.cameras["door"] = ["camera 'door' is offline"]
    status, _, body = fetch(server.url + "/healthz")
    assert status == 503
    assert json.loads(body) == {
        "healthy": False,
        "reasons": ["camera 'door' is offline", "inference thread is not running"],
        "cameras": {
            **healthy_cameras,
            "door": {"healthy": False, "reasons": ["camera 'door' is offline"]},
        },
    }
    s = scrape(server)
    assert value(s, "har_healthy") == 0.0
    assert value(s, "har_camera_healthy", camera="door") == 0.0

    daemon.healthy = (True, [])
    assert fetch(server.url + "/healthz")[0] == 200


def test_healthz_when_the_health_check_itself_fails(daemon: Daemon) -> None:
    def broken() -> tuple[bool, list[str]]:
        raise KeyError("cameras")

    with MetricsServer(0, LOOPBACK, get_stats=daemon.get_stats, get_health=broken) as srv:
        status, _, body = fetch(srv.url + "/healthz")
        assert status == 503
        doc = json.loads(body)
        assert doc["healthy"] is False and "health check failed" in doc["reasons"][0]
        assert value(scrape(srv), "har_healthy") == 0.0


@pytest.mark.parametrize("path", ["/", "/metricsx", "/healthz/extra", "/favicon.ico"])
def test_other_paths_are_404(server: MetricsServer, path: str) -> None:
    status, _, body = fetch(server.url + path)
    assert status == 404
    assert json.loads(body) == {"error": "not found"}


def test_other_methods_are_405(server: MetricsServer) -> None:
    status, headers, _ = fetch(server.url + "/metrics", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


def test_requests_leave_stderr_quiet(
    server: MetricsServer, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    with capture_logs():  # the daemon's own log goes to stderr; only the HTTP side is tested
        fetch(server.url + "/metrics")
        fetch(server.url + "/healthz")
        fetch(server.url + "/nope")
        # Clients that hang up without a request, or halfway through one.
        with socket.create_connection((LOOPBACK, server.port)):
            pass
        with socket.create_connection((LOOPBACK, server.port)) as half:
            half.sendall(b"GET /metr")
        fetch(server.url + "/healthz")  # the server still answers
    assert capfd.readouterr().err == ""


def test_port_in_use_is_a_clear_oserror(daemon: Daemon) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = MetricsServer(
            port, LOOPBACK, get_stats=daemon.get_stats, get_health=daemon.get_health
        )
        with pytest.raises(MetricsServerError) as info:
            srv.start()
    assert isinstance(info.value, OSError)
    assert info.value.errno == errno.EADDRINUSE
    assert str(info.value) == (
        f"metrics port {port} is already in use (127.0.0.1:{port}); set [metrics] port elsewhere"
    )
    srv.stop()  # harmless after a failed start


def test_unknown_host_is_a_clear_oserror(daemon: Daemon) -> None:
    srv = MetricsServer(
        0, "192.0.2.1", get_stats=daemon.get_stats, get_health=daemon.get_health
    )  # TEST-NET-1: not on this machine
    with pytest.raises(MetricsServerError, match="is not an address of this machine"):
        srv.start()


def test_stop_frees_the_port_for_a_restart(daemon: Daemon) -> None:
    port = free_port()
    kwargs = {"get_stats": daemon.get_stats, "get_health": daemon.get_health}
    first = MetricsServer(port, LOOPBACK, **kwargs)  # type: ignore[arg-type]
    first.start()
    assert first.port == port
    assert fetch(first.url + "/healthz")[0] == 200
    first.stop()
    first.stop()  # idempotent
    assert not port_accepts(LOOPBACK, port)

    second = MetricsServer(port, LOOPBACK, **kwargs)  # type: ignore[arg-type]
    second.start()
    try:
        assert fetch(second.url + "/healthz")[0] == 200
        assert value(scrape(second), "har_up") == 1.0
    finally:
        second.stop()
    # The same object can start again too.
    first.start()
    try:
        assert fetch(first.url + "/metrics")[0] == 200
    finally:
        first.stop()


def test_servers_keep_their_own_registries(daemon: Daemon) -> None:
    other = Daemon()
    other.raw["inference"]["errors"] = 77
    with (
        MetricsServer(0, LOOPBACK, get_stats=daemon.get_stats, get_health=daemon.get_health) as a,
        MetricsServer(0, LOOPBACK, get_stats=other.get_stats, get_health=other.get_health) as b,
    ):
        assert value(scrape(a), "har_inference_errors_total") == 2
        assert value(scrape(b), "har_inference_errors_total") == 77
    assert b"har_" not in generate_latest(REGISTRY)
