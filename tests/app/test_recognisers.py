"""Two recognisers on one camera, through the real daemon and a real Mosquitto: the fight
classifier and the fall recogniser share the camera's capture and person detector, and each
has its own events (`activity`), retained state and Home Assistant binary sensor.

The stream is real footage: held-out fight clips the fight model gets right (as in
tests/bundled/test_fight_model.py), then GMDCSA24 `s1_fall_14` (actor 1 falls backwards and
stays down; the fall rule catches it, tests/runtime/test_falls.py). The camera has one zone, the
whole picture: the fall's events, its retained state and its zone sensor name it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from har_daemon.model.meta import read_meta
from har_daemon.offline.streams import StreamClip, Stretch, build_stream
from tests.bundled.test_fight_model import _held_out_clips
from tests.daemon_helpers import FIGHT_MODEL, DaemonPool, fight_config
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until
from tests.shared_data import FALLS_DATA, FIGHT_DATA, require

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FALL_CLIP = FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4"
CAMERA = "room"
WHOLE = {"name": "all", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}


def _stream(tmp_path: Path) -> Path:
    """Quiet and fight clips, then the fall clip, in one 640x360 file (as the fight test)."""
    quiet, runs = _held_out_clips(read_meta(FIGHT_MODEL))
    fights = max(runs, key=len)[:3]
    plan = [  # as tests/bundled/test_fight_model.py: quiet, then the fight stretch
        Stretch(tuple(StreamClip(p, "noFight", "s") for p in quiet[:2]), None),
        Stretch(tuple(StreamClip(p, "fight", "s") for p in fights), "fight"),
        Stretch((StreamClip(require(FALL_CLIP), "noFight", "f"),), None),
    ]
    return build_stream(plan, tmp_path / "stream.mp4").video


def test_fight_and_fall_on_one_camera_keep_their_own_events_states_and_sensors(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool
) -> None:
    require(FIGHT_DATA)
    video = _stream(tmp_path)
    config = fight_config(
        tmp_path / "har.toml",
        mosquitto,
        extra={"homeassistant": {"enabled": True}},
        cameras=[
            {
                "name": CAMERA,
                "source": video,
                "realtime": False,
                "zones": [WHOLE],
                "recognisers": [
                    {"kind": "classifier"},
                    {"kind": "fall", "update_interval_s": 0.5},
                ],
            }
        ],
    )
    with MqttRecorder(mosquitto, "#") as rec:
        daemon = daemons.start(config)
        assert daemon.wait(timeout=300) == 0, daemon.describe()
        events = daemon.stdout_events()
        wait_until(lambda: len(rec.payloads(f"har/{CAMERA}/events")) >= len(events), timeout=10)
        published = [json.loads(p) for p in rec.payloads(f"har/{CAMERA}/events")]
        fall_states = [json.loads(p) for p in rec.payloads(f"har/{CAMERA}/activity/fall")]
        fight_states = [json.loads(p) for p in rec.payloads(f"har/{CAMERA}/activity")]
        discovery = {
            topic: json.loads(payload)
            for topic, payload, _, _ in list(rec.messages)
            if topic.startswith("homeassistant/binary_sensor/") and payload
        }
    report = "\n".join(json.dumps(e) for e in events)
    assert published == events, report
    # One message numbering per camera, whichever recogniser sent it.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), report

    falls = [e for e in events if e["activity"] == "fall"]
    fights = [e for e in events if e["activity"] == "fight"]
    assert {e["activity"] for e in events} == {"fight", "fall"}, report
    # The fall: start, "down for N s" updates while the person lies there, end.
    kinds = [e["type"] for e in falls]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"update"}, report
    assert len({e["id"] for e in falls}) == 1, report
    downs = [e["down_s"] for e in falls if e["type"] != "end"]
    assert downs == sorted(downs) and downs[0] >= 0.8 and downs[-1] >= 2.0, report
    assert all(e["model"] == "fall-pose-rule" and e.get("region") for e in falls), report
    assert [e["at"] for e in falls] == sorted(e["at"] for e in falls), report
    assert all(e["zones"] == ["all"] for e in falls), report  # where the person lies
    # The fall came after the fight stretch, and the fight's events are the fight's own.
    assert fights and fights[0]["type"] == "start", report
    assert not {e["id"] for e in fights} & {e["id"] for e in falls}, report
    assert all("down_s" not in e and e["model"] == "fight-person-lrcn" for e in fights), report
    assert [e["id"] for e in fights if e["type"] == "end"] == [
        e["id"] for e in fights if e["type"] == "start"
    ], report
    # Each recogniser's retained state: the fall's says "fall" while down, then idle.
    assert any(s["activity"] == "fall" for s in fall_states), fall_states
    assert fall_states[-1]["activity"] is None, fall_states
    assert all(s["zones"] == (["all"] if s["activity"] else []) for s in fall_states), fall_states
    assert all(s["activity"] in (None, "fight") for s in fight_states), fight_states

    # Both ran on the camera's frames; some fall looks took the person stage's boxes.
    stopped = next(e for e in daemon.logs() if e.get("event") == "daemon.stopped")
    counts = stopped["cameras"][CAMERA]
    assert counts["windows"] > 0 and counts["detections"] > 0, counts
    assert counts["fall_looks"] > counts["fall_looks_shared"] > 0, counts
    assert counts["fall_looks_tracked"] == 0, counts  # own looks call the detector each time

    # Home Assistant: one binary sensor per camera and activity, each on its own state topic.
    sensors = {
        d["name"]: d for t, d in discovery.items() if f"/{CAMERA}_alert_" in t
    }  # fmt: skip
    assert set(sensors) == {"fight", "fall"}, sorted(discovery)
    assert sensors["fight"]["state_topic"] == f"har/{CAMERA}/activity"
    assert sensors["fall"]["state_topic"] == f"har/{CAMERA}/activity/fall"
    assert sensors["fall"]["unique_id"] != sensors["fight"]["unique_id"]
    assert '"fall"' in sensors["fall"]["value_template"]
    zoned = {d["name"]: d for t, d in discovery.items() if f"/{CAMERA}_zone_" in t}
    assert set(zoned) == {"fight in all", "fall in all"}, sorted(discovery)
    assert zoned["fall in all"]["state_topic"] == f"har/{CAMERA}/activity/fall"
