"""Soak: many windows through the whole daemon while the broker is bounced every few seconds.

Run by hand (not a timed test):

    .venv/bin/python bench/soak.py --seconds 120 --bounce-every 5

It starts a real Mosquitto (persistence on) and a subscriber with a persistent session, runs
`har-daemon run` on a looping synthetic activity video played as fast as inference allows
(LiteRT backend), stops and starts the broker every `--bounce-every` seconds, then stops the
daemon with SIGTERM and prints one JSON object: events produced (the daemon's stdout), delivered,
duplicated and lost (must be 0), windows inferred, and the daemon's RSS at start and end.
`tests/app/test_soak.py` runs it in a short setting.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from har_daemon.tools.broker import MosquittoBroker  # noqa: E402
from har_daemon.tools.procs import rss_mb  # noqa: E402
from har_daemon.training.synth import write_activity_video  # noqa: E402
from tests.infra.session_subscriber import SessionSubscriber  # noqa: E402


def run(seconds: float, bounce_every: float, down_s: float, workdir: Path) -> dict[str, Any]:
    video = write_activity_video(
        workdir / "soak.mp4",
        [("Biking", 3.0), ("Swing", 3.0), ("HorseRace", 3.0), ("PizzaTossing", 3.0)],
        seed=2,
    )
    broker = MosquittoBroker(workdir / "broker", persistence=True, autosave_interval=1).start()
    sub = SessionSubscriber(broker, "soak/+/events", "soak-subscriber").start()
    config = workdir / "soak.toml"
    config.write_text(
        f"""
[model]
path = "{REPO / "models" / "demo"}"
backend = "litert"
stride = 2
[mqtt]
host = "{broker.host}"
port = {broker.port}
topic_prefix = "soak"
keepalive = 5
[spool]
path = "{workdir / "state"}"
[inference]
enter_threshold = 0.3
exit_threshold = 0.05
min_windows = 1
update_interval_s = 1.0
[stats]
interval = 3600
[[cameras]]
name = "cam"
source = "{video}"
loop = true
realtime = false
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    out_path, err_path = workdir / "daemon.out", workdir / "daemon.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "har_daemon", "run", "--config", str(config)],
            stdout=out,
            stderr=err,
            env=env,
            cwd=workdir,
        )
    try:
        time.sleep(3.0)
        rss_start = rss_mb(daemon.pid)
        bounces = 0
        t_end = time.monotonic() + seconds
        next_bounce = time.monotonic() + bounce_every
        while time.monotonic() < t_end:
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon died: {err_path.read_text()[-2000:]}")
            if time.monotonic() >= next_bounce:
                broker.stop()
                time.sleep(down_s)
                broker.start()
                bounces += 1
                next_bounce = time.monotonic() + bounce_every
            time.sleep(0.1)
        rss_end = rss_mb(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    produced = [json.loads(x) for x in out_path.read_text().splitlines() if x.startswith("{")]
    keys = [(e["id"], e["type"], e["seq"]) for e in produced]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        received = [(e["id"], e["type"], e["seq"]) for e in list(sub.received)]
        if set(keys) <= set(received):
            break
        time.sleep(0.2)
    sub.stop()
    broker.close()
    stopped = [
        json.loads(line)
        for line in err_path.read_text().splitlines()
        if line.startswith("{") and '"daemon.stopped"' in line
    ]
    cam = stopped[-1]["cameras"]["cam"] if stopped else {}
    lost = sorted(set(keys) - set(received))
    return {
        "seconds": seconds,
        "bounce_every_s": bounce_every,
        "broker_down_s": down_s,
        "bounces": bounces,
        "exit_code": rc,
        "windows": cam.get("windows"),
        "stale_windows": cam.get("stale_windows"),
        "events_produced": len(keys),
        "events_delivered": len(set(keys) & set(received)),
        "duplicates": len(received) - len(set(received)),
        "lost": len(lost),
        "lost_examples": lost[:5],
        "rss_mb_start": round(rss_start, 1),
        "rss_mb_end": round(rss_end, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--bounce-every", type=float, default=5.0)
    p.add_argument("--down", type=float, default=1.0, help="seconds the broker stays down")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="har-soak-") as tmp:
        result = run(args.seconds, args.bounce_every, args.down, Path(tmp))
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and result["exit_code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
