"""The live debug view: access rules on the WSGI app, then the real daemon on real footage seen
through headless Chromium (the page loads, the stream updates, the screenshot shows the boxes),
and nothing drawn or encoded while nobody watches."""

from __future__ import annotations

import json
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import cv2
import numpy as np
import pytest
from pydantic import SecretStr

from har_daemon.config import DebugViewConfig
from har_daemon.reporting.screenshot import find_chromium
from har_daemon.service.debug_view import DebugView
from tests.daemon_helpers import DaemonPool, write_config
from tests.infra.procs import free_port, wait_until
from tests.shared_data import REPO, SHARED_DATA, require

CLIP = SHARED_DATA / "quiet" / "caviar_lisbon_corridor_EnterExitCrossingPaths1cor.mpg"
FALL_CLIP = SHARED_DATA / "falls" / "gmdcsa24" / "fall" / "s1_fall_14.mp4"
TOKEN = "0123456789abcdef-token"
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
HEADLESS += ["--hide-scrollbars", "--no-first-run"]


def _call(view: DebugView, path: str, **environ: str) -> tuple[str, bytes] | None:
    env: dict[str, Any] = {"PATH_INFO": path, **environ}
    setup_testing_defaults(env)
    status: list[str] = []
    body = view(env, lambda s, _headers: status.append(s))
    return None if body is None else (status[0], b"".join(body))


def _view(**config: Any) -> DebugView:
    return DebugView(DebugViewConfig(enabled=True, **config), lambda: {}, lambda: None, ["a"])


def test_other_paths_are_left_to_the_metrics_server() -> None:
    assert _call(_view(), "/metrics") is None
    assert _call(_view(), "/healthz") is None


def test_remote_clients_are_refused_unless_allowed() -> None:
    view = _view()
    assert _call(view, "/", REMOTE_ADDR="127.0.0.1")[0] == "200 OK"  # type: ignore[index]
    assert _call(view, "/", REMOTE_ADDR="::ffff:127.0.0.1")[0] == "200 OK"  # type: ignore[index]
    for remote in ("192.0.2.7", "2001:db8::1"):
        status, _ = _call(view, "/cameras.json", REMOTE_ADDR=remote)  # type: ignore[misc]
        assert status == "403 Forbidden"
    open_view = _view(allow_remote=True)
    assert _call(open_view, "/", REMOTE_ADDR="192.0.2.7")[0] == "200 OK"  # type: ignore[index]


def test_a_token_is_required_in_a_header_or_the_query() -> None:
    view = _view(allow_remote=True, token=SecretStr(TOKEN))
    remote = {"REMOTE_ADDR": "192.0.2.7"}
    assert _call(view, "/", **remote)[0] == "401 Unauthorized"  # type: ignore[index]
    wrong = _call(view, "/", QUERY_STRING="token=nope", **remote)
    assert wrong is not None and wrong[0] == "401 Unauthorized"
    header = _call(view, "/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **remote)
    assert header is not None and header[0] == "200 OK"
    query = _call(view, "/", QUERY_STRING=f"token={TOKEN}", **remote)
    assert query is not None and query[0] == "200 OK"
    assert b"no camera" in query[1]
    assert _call(view, "/", REQUEST_METHOD="POST", **remote)[0].startswith("405")  # type: ignore[index]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _chromium(args: list[str]) -> str:
    """Headless Chromium on the page; `--timeout` stops the endless MJPEG load and takes the
    page as it is then."""
    chromium = find_chromium()
    if chromium is None:
        pytest.fail("chromium is not installed (scripts/install-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="har-chromium-") as profile:
        res = subprocess.run(
            [chromium, *HEADLESS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _state(base: str, camera: str = "corridor") -> dict[str, Any]:
    status, body = _get(f"{base}/cameras.json")
    assert status == 200, body
    return json.loads(body)["cameras"][camera]  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_view_in_chromium_on_the_real_daemon(tmp_path: Path, daemons: DaemonPool) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "har.toml",
        {
            "model": {"path": REPO / "models" / "fight"},
            "mqtt": {"enabled": False},
            "logging": {"level": "info", "json": True},
            "metrics": {"port": port, "host": "127.0.0.1"},
            "debug_view": {"enabled": True, "stream_fps": 10},
        },
        [
            {
                "name": "corridor",
                "source": require(CLIP),
                "loop": True,
                "zones": [{"name": "walk", "points": [[0.2, 0.25], [0.7, 0.25], [0.7, 0.65]]}],
                "masks": [{"name": "shop", "points": [[0.75, 0], [1, 0], [1, 0.4], [0.75, 0.4]]}],
            },
            {  # the fall recogniser alone: the view draws the people it follows
                "name": "room",
                "source": require(FALL_CLIP),
                "loop": True,
                "recognisers": [{"kind": "fall"}],
            },
        ],
    )
    daemon = daemons.start(config)
    base = f"http://127.0.0.1:{port}"

    def windows() -> bool:
        try:
            status, body = _get(f"{base}/metrics")
        except OSError:  # not listening yet
            return False
        return status == 200 and any(
            line.startswith('har_camera_windows_total{camera="corridor"}')
            and float(line.split()[-1]) >= 3
            for line in body.decode().splitlines()
        )

    wait_until(lambda: daemon.alive() and windows(), timeout=90, message=daemon.describe)
    # Analysing for a while with nobody watching: nothing drawn, nothing encoded.
    assert _state(base)["debug_encodes"] == 0

    dom = _chromium(["--timeout=3000", "--dump-dom", f"{base}/"])
    assert "corridor" in dom and "/cameras/corridor/stream.mjpeg" in dom and "Recent events" in dom
    before = _state(base)["debug_encodes"]
    assert before >= 1, "the page's stream sent no frame"

    png = tmp_path / "view.png"
    _chromium(["--timeout=4000", f"--screenshot={png}", "--window-size=900,800", f"{base}/"])
    after = _state(base)["debug_encodes"]
    assert after >= before + 2, f"the stream did not update: {before} -> {after} frames"

    shot = cv2.imread(str(png))
    assert shot is not None, "chromium wrote no screenshot"
    b, g, r = (shot[..., i].astype(int) for i in range(3))
    person_green = int(((g > 200) & (r < 90) & (b < 90)).sum())  # PERSON_BGR boxes
    zone_blue = int(((b > 200) & (g > 110) & (g < 210) & (r < 90)).sum())  # ZONE_BGR outline
    mask_red = int(((r > 180) & (g < 60) & (b < 60)).sum())  # MASK_BGR hatching
    assert person_green > 200, f"no person box in the screenshot ({person_green} green pixels)"
    assert zone_blue > 200 and mask_red > 500, (zone_blue, mask_red)

    status, jpeg = _get(f"{base}/cameras/corridor/latest.jpg")
    assert status == 200
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None and frame.shape[1] >= 640
    assert "fall_people" not in _state(base)  # no fall recogniser there

    def followed() -> list[dict[str, Any]]:
        return _state(base, "room")["fall_people"]  # type: ignore[no-any-return]

    wait_until(lambda: bool(followed()), timeout=30, message=daemon.describe)
    person = followed()[0]
    assert person["label"].startswith("#") and len(person["box"]) == 4
    status, jpeg = _get(f"{base}/cameras/room/latest.jpg")
    assert status == 200
    room = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
    b, g, r = (room[..., i] for i in range(3))
    magenta = int(((b > 200) & (r > 200) & (g < 90)).sum())  # FALL_BGR boxes
    assert magenta > 100, f"no followed person drawn on the fall camera ({magenta} pixels)"
    assert _get(f"{base}/cameras/nope/latest.jpg")[0] == 404
    assert _get(f"{base}/metrics")[0] == 200  # the metrics server still serves its own paths
