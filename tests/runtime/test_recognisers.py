"""The fall recogniser's events on a camera (runtime.recognisers), its config and its sensors.

The fall stage is scripted here (a recording fake of our own `FallStage` interface): what is
tested is how its per-person changes become events keyed by (camera, "fall"): one occurrence per
fallen person, "down for N s" updates at most every `update_interval_s`, the end's reason, the
retained state, that a look shares the person stage's boxes instead of detecting again, and
where a fall lies on a camera with zones (its `zones`, `required_zones` for "fall").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from pydantic import ValidationError

from har_daemon.comms.homeassistant import discovery_messages
from har_daemon.comms.payloads import event_payload
from har_daemon.config import CameraConfig
from har_daemon.model.meta import read_meta
from har_daemon.runtime.events import ActivityState
from har_daemon.runtime.falls import FallChange, TrackedPerson
from har_daemon.runtime.recognisers import FallRecogniser, fall_problem
from har_daemon.runtime.zones import CameraZones, zone_problem
from tests.shared_data import REPO

FRAME = np.zeros((100, 200, 3), np.uint8)
BOX = (20.0, 50.0, 60.0, 100.0)


@dataclass
class ScriptedStage:
    """Returns the scripted changes of each look; records the boxes it was given."""

    script: dict[float, list[tuple[int, str, float, bool]]]
    detector: object = None
    given: list[object] = field(default_factory=list)
    spacing_s: float = 0.2
    box: tuple[float, float, float, float] = BOX
    """Where every scripted person is (a test moves them)."""
    tracked: bool = False
    adaptive: bool = False
    is_due: bool = True
    is_watching: bool = False
    asked: list[float] = field(default_factory=list)
    """The times own_look_due was asked about."""
    frames: list[np.ndarray] = field(default_factory=list)

    def due(self, t: float) -> bool:
        return self.is_due

    @property
    def follows(self) -> bool:
        return self.tracked or self.adaptive

    def own_look_due(self, t: float) -> bool:
        self.asked.append(t)
        return self.is_due and (not self.adaptive or self.is_watching)

    def look(self, frame: np.ndarray, t: float, boxes: np.ndarray | None = None):
        self.frames.append(frame)
        self.given.append(boxes)
        return [
            FallChange(tid, kind, t, down, (0.0,) * 4 if gone else self.box, gone)  # type: ignore[arg-type]
            for tid, kind, down, gone in self.script.get(t, [])
        ]

    def people(self, t: float) -> list[TrackedPerson]:
        return [
            TrackedPerson(tid, self.box, down if kind != "end" else None, True)
            for tid, kind, down, gone in self.script.get(t, [])
            if not gone
        ]

    def reset(self, t: float):
        return [FallChange(7, "end", t, 0.0, (0.0,) * 4)]


class Detector:
    def __init__(self) -> None:
        self.calls = 0
        self.frames: list[np.ndarray] = []
        self.boxes = np.array([[*BOX, 0.9]], np.float32)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.frames.append(frame)
        self.calls += 1
        return self.boxes


def _recogniser(
    script, update_s: float = 1.0, zones: CameraZones | None = None
) -> tuple[FallRecogniser, ScriptedStage]:  # type: ignore[no-untyped-def]
    stage = ScriptedStage(script, Detector())
    return FallRecogniser("hall", stage, update_s, zones=zones), stage  # type: ignore[arg-type]


def test_one_fall_starts_updates_every_interval_and_ends_when_the_person_gets_up() -> None:
    t_down = [0.2 * i for i in range(1, 12)]
    script = {t_down[0]: [(1, "start", 0.8, False)]}
    script.update({t: [(1, "update", 0.8 + t - t_down[0], False)] for t in t_down[1:-1]})
    script[t_down[-1]] = [(1, "end", 0.0, False)]
    rec, stage = _recogniser(script, update_s=1.0)
    results = [rec.look(FRAME, t) for t in t_down]
    trs = [tr for r in results for tr in r.transitions]
    assert [tr.kind for tr in trs] == ["start", "update", "end"]
    start, update, end = trs
    assert {tr.activity for tr in trs} == {"fall"} and len({tr.occurrence_id for tr in trs}) == 1
    assert start.down_s == 0.8 and update.down_s == pytest.approx(1.8)
    assert update.at - start.at == pytest.approx(1.0)  # not more often than update_interval_s
    assert end.reason == "up" and end.down_s is None
    assert end.duration_s == pytest.approx(t_down[-1] - t_down[0])
    assert results[0].state.activity == "fall" and results[-1].state.activity is None
    assert results[0].region == [0.1, 0.5, 0.3, 1.0]  # the fallen person, in frame fractions
    payload = event_payload(update, "hall", "fall-pose-rule", 2)
    assert payload["down_s"] == 1.8 and payload["activity"] == "fall"
    assert stage.detector.calls == len(t_down)  # type: ignore[attr-defined]


def test_two_people_down_are_two_falls_and_a_lost_track_ends_gone() -> None:
    script = {
        0.2: [(1, "start", 0.8, False), (2, "start", 0.8, False)],
        0.4: [(1, "end", 0.0, True), (2, "update", 1.0, False)],
    }
    rec, _ = _recogniser(script, update_s=0.0)
    first, second = rec.look(FRAME, 0.2), rec.look(FRAME, 0.4)
    assert len({tr.occurrence_id for tr in first.transitions}) == 2
    gone, update = second.transitions
    assert gone.reason == "gone" and update.kind == "update"
    assert second.state.activity == "fall"  # the other person is still down


def test_shared_boxes_spare_the_detector_and_a_gap_ends_the_fall() -> None:
    rec, stage = _recogniser({0.2: [(7, "start", 0.8, False)]})
    boxes = np.array([[*BOX, 0.8]], np.float32)
    rec.look(FRAME, 0.2, boxes)
    assert stage.given == [boxes] and stage.detector.calls == 0  # type: ignore[attr-defined]
    assert rec.stats.shared_looks == rec.stats.looks == 1
    # a gap noticed at the classifier's last window, which lagged the fall's last look
    (end,) = rec.reset(0.1).transitions
    assert end.kind == "end" and end.reason == "finish" and rec.state.activity is None
    assert end.at == 0.2
    rec.shared = True
    assert rec.due(0.6, people_looked=False) is False and rec.due(0.6, people_looked=True)


def test_tracked_looks_never_call_the_detector_and_also_look_at_the_person_stages_frames() -> None:
    rec, stage = _recogniser({})
    stage.tracked = True
    rec.look(FRAME, 0.2)  # between the person stage's looks: the stage follows, no detector
    boxes = np.array([[*BOX, 0.8]], np.float32)
    rec.look(FRAME, 0.5, boxes)  # the person stage's look: its boxes
    assert stage.given == [None, boxes] and stage.detector.calls == 0  # type: ignore[attr-defined]
    assert (rec.stats.looks, rec.stats.shared_looks, rec.stats.tracked_looks) == (2, 1, 1)
    stage.is_due = False  # 0.2 s not up yet: looks anyway when the person stage just did
    assert rec.due(0.6, people_looked=True) and not rec.due(0.6, people_looked=False)
    stage.tracked = False
    assert not rec.due(0.6, people_looked=True)  # own looks take the boxes only when due


def test_adaptive_looks_follow_only_while_the_stage_watches() -> None:
    rec, stage = _recogniser({})
    stage.adaptive = True
    # quiet: the person stage's looks only, as shared ones
    assert rec.due(0.5, people_looked=True) and not rec.due(0.7, people_looked=False)
    boxes = np.array([[*BOX, 0.8]], np.float32)
    rec.look(FRAME, 0.5, boxes)
    stage.is_watching = True  # someone may be going down: a look every 0.2 s, no detector
    assert rec.due(0.7, people_looked=False)
    rec.look(FRAME, 0.7)
    assert stage.given == [boxes, None] and stage.detector.calls == 0  # type: ignore[attr-defined]
    assert (rec.stats.looks, rec.stats.shared_looks, rec.stats.tracked_looks) == (2, 1, 1)


def test_recognisers_config_keeps_the_shorthand_and_refuses_nonsense() -> None:
    plain = CameraConfig(name="a", source="x.mp4")
    assert plain.classifies and plain.fall is None
    both = CameraConfig(
        name="a", source="x.mp4", recognisers=[{"kind": "classifier"}, {"kind": "fall"}]
    )
    assert both.classifies and both.fall is not None and both.fall.update_interval_s == 1.0
    fall_only = CameraConfig(name="a", source="x.mp4", recognisers=[{"kind": "fall"}])
    assert not fall_only.classifies
    bad = [
        [{"kind": "fall"}, {"kind": "fall"}],
        [{"kind": "classifier", "model": "models/fall"}],
        [{"kind": "fall", "looks": "shared"}],
        [{"kind": "fall", "looks": "tracked"}],
        [{"kind": "fall", "looks": "adaptive"}],
        [{"kind": "fall", "update_interval_s": -1}],
        [{"kind": "fall", "colour": "red"}],
    ]
    for recognisers in bad:
        with pytest.raises(ValidationError):
            CameraConfig(name="a", source="x.mp4", recognisers=recognisers)


def test_fall_needs_a_person_centric_model() -> None:
    cam = CameraConfig(name="a", source="x.mp4", recognisers=[{"kind": "fall"}])
    assert fall_problem(cam, read_meta(REPO / "models" / "fight")) is None
    problem = fall_problem(cam, read_meta(REPO / "models" / "demo"))
    assert problem is not None and "person-centric" in problem


def test_a_fall_looks_mode_loads_its_own_rule_file_and_a_bad_one_is_a_problem(tmp_path) -> None:
    (tmp_path / "rule.json").write_text('{"hip_drop": 0.2}')
    (tmp_path / "rule-tracked.json").write_text('{"hip_drop": "low"}')
    fight = read_meta(REPO / "models" / "fight")
    cams = {
        looks: CameraConfig(
            name="a",
            source="x.mp4",
            recognisers=[
                {"kind": "classifier"},
                {"kind": "fall", "model": str(tmp_path), "looks": looks},
            ],
        )
        for looks in ("own", "shared", "tracked")
    }
    assert fall_problem(cams["own"], fight) is None
    assert fall_problem(cams["shared"], fight) is None  # no rule-shared.json: rule.json
    problem = fall_problem(cams["tracked"], fight)
    assert problem is not None and "rule-tracked.json" in problem and "\n" not in problem


def test_home_assistant_gets_a_binary_sensor_per_activity() -> None:
    messages = discovery_messages(
        discovery_prefix="homeassistant", topic_prefix="har", camera="hall",
        classes=["fight", "noFight"], alert_activities=["fight"], model_name="m",
        version="1", snapshots=False, recognisers=["fall"],
    )  # fmt: skip
    sensors = {json.loads(p)["name"]: json.loads(p) for t, p in messages if "/binary_sensor/" in t}
    assert set(sensors) == {"fight", "fall"}
    assert sensors["fight"]["state_topic"] == "har/hall/activity"
    assert sensors["fall"]["state_topic"] == "har/hall/activity/fall"
    assert sensors["fall"]["unique_id"].endswith("hall_alert_fall")


LEFT = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
RIGHT = [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]
ON_RIGHT = (120.0, 50.0, 180.0, 90.0)  # foot point (0.75, 0.9) of the 200x100 frame


def _zones(required: dict[str, list[str]] | None = None) -> CameraZones:
    cam = CameraConfig.model_validate(
        {"name": "hall", "source": 0, "required_zones": required or {},
         "zones": [{"name": "left", "points": LEFT}, {"name": "right", "points": RIGHT}]}
    )  # fmt: skip
    zones = CameraZones.from_config(cam, ["fight", "noFight"])
    assert zones is not None
    return zones


def test_a_fall_names_the_zone_it_started_in_and_keeps_it() -> None:
    script = {0.2: [(1, "start", 0.8, False)], 0.4: [(1, "update", 1.0, False)],
              0.6: [(1, "end", 0.0, False)]}  # fmt: skip
    rec, stage = _recogniser(script, update_s=0.0, zones=_zones())
    stage.box = ON_RIGHT
    assert rec.state.zones == ()  # idle on a camera with zones: in none
    start = rec.look(FRAME, 0.2)
    assert start.state.zones == ("right",)
    stage.box = BOX  # rolls over to the left while down: the fall keeps where it started
    trs = [*start.transitions, *rec.look(FRAME, 0.4).transitions, *rec.look(FRAME, 0.6).transitions]
    assert [(tr.kind, tr.zones) for tr in trs] == [
        ("start", ("right",)), ("update", ("right",)), ("end", ("right",)),
    ]  # fmt: skip
    assert rec.state.zones == ()
    plain, _ = _recogniser(script)
    assert plain.look(FRAME, 0.2).transitions[0].zones is None and plain.state.zones is None


def test_a_fall_outside_its_required_zones_neither_starts_nor_goes_on() -> None:
    script = {0.2: [(1, "start", 0.8, False)], 0.4: [(1, "update", 1.0, False)],
              0.6: [(1, "end", 0.0, False)], 0.8: [(2, "start", 0.8, False)]}  # fmt: skip
    rec, stage = _recogniser(script, update_s=0.0, zones=_zones({"fall": ["right"]}))
    stage.box = BOX  # foot point (0.2, 1.0): on the left
    assert [rec.look(FRAME, t).transitions for t in (0.2, 0.4, 0.6)] == [[], [], []]
    assert rec.state.activity is None and rec.stats.outside_zones == 1
    stage.box = ON_RIGHT  # another person falls inside it
    (start,) = rec.look(FRAME, 0.8).transitions
    assert start.kind == "start" and start.zones == ("right",)
    # a requirement of the classifier's activity only leaves falls everywhere
    anywhere, stage = _recogniser(script, zones=_zones({"fight": ["right"]}))
    assert anywhere.look(FRAME, 0.2).transitions[0].zones == ("left",)


def test_the_debug_view_reads_the_people_of_the_last_look() -> None:
    rec, _ = _recogniser({0.2: [(1, "start", 0.8, False)], 0.4: [(2, "update", 0.0, False)]})
    rec.look(FRAME, 0.2)
    assert rec.people == (TrackedPerson(1, BOX, 0.8, True, fallen=True),)
    rec.look(FRAME, 0.4)  # person 2 has no open fall (none started)
    assert rec.people == (TrackedPerson(2, BOX, 0.0, True, fallen=False),)
    rec.reset(0.6)
    assert rec.people == ()


def test_required_zones_may_name_the_fall_of_a_camera_that_runs_it() -> None:
    fight = read_meta(REPO / "models" / "fight")
    zones = [{"name": "bed", "points": LEFT}]
    with_fall = CameraConfig.model_validate(
        {"name": "a", "source": 0, "zones": zones, "required_zones": {"fall": ["bed"]},
         "recognisers": [{"kind": "classifier"}, {"kind": "fall"}]}
    )  # fmt: skip
    assert zone_problem(with_fall, fight) is None
    without = CameraConfig.model_validate(
        {"name": "a", "source": 0, "zones": zones, "required_zones": {"fall": ["bed"]}}
    )
    problem = zone_problem(without, fight)
    assert problem is not None and "unknown activity 'fall'" in problem, problem


def test_a_look_of_its_own_drops_the_people_standing_in_a_mask() -> None:
    bottom_right = [[0.5, 0.6], [1, 0.6], [1, 1], [0.5, 1]]  # the frame's height counts
    cam = CameraConfig.model_validate(
        {"name": "hall", "source": 0, "masks": [{"points": bottom_right}]}
    )  # fmt: skip
    zones = CameraZones.from_config(cam, ["fight", "noFight"])
    rec, stage = _recogniser({}, zones=zones)
    right, left = [*ON_RIGHT, 0.9], [*BOX, 0.8]
    stage.detector.boxes = np.array([right, left], np.float32)  # type: ignore[attr-defined]
    rec.look(FRAME, 0.2)
    np.testing.assert_array_equal(stage.given[0], np.array([left], np.float32))
    assert stage.frames[0] is FRAME and stage.detector.frames[0] is FRAME  # type: ignore[attr-defined]
    shared = np.array([right], np.float32)  # the person stage dropped its own already
    rec.look(FRAME, 0.4, shared)
    assert stage.given[1] is shared
    # masks only: no zone to name, on falls or on the state
    stage.script = {0.6: [(1, "start", 0.8, False)]}
    assert rec.look(FRAME, 0.6).transitions[0].zones is None and rec.state.zones is None


def test_the_state_is_the_earliest_open_fall_and_idle_since_the_last_one_ended() -> None:
    script = {0.2: [(1, "start", 0.8, False)], 0.4: [(2, "start", 0.8, False)],
              0.6: [(1, "end", 0.0, False)], 0.8: [(2, "end", 0.0, False)]}  # fmt: skip
    rec, _ = _recogniser(script, update_s=0.0)
    assert rec.state == ActivityState(None, 0.0, None, False, None, "hall", None)
    (first,) = rec.look(FRAME, 0.2).transitions
    (second,) = rec.look(FRAME, 0.4).transitions
    assert rec.state == ActivityState("fall", 1.0, 0.2, True, first.occurrence_id, "hall", None)
    rec.look(FRAME, 0.6)  # person 1 is up, person 2 still down
    assert (rec.state.since, rec.state.occurrence_id) == (0.4, second.occurrence_id)
    rec.look(FRAME, 0.8)
    rec.look(FRAME, 1.0)
    assert rec.state == ActivityState(None, 0.0, 0.8, False, None, "hall", None)


def test_the_zones_of_the_people_down_are_named_in_the_configurations_order() -> None:
    script = {0.2: [(1, "start", 0.8, False)], 0.4: [(2, "start", 0.8, False)]}
    rec, stage = _recogniser(script, zones=_zones())
    stage.box = ON_RIGHT
    rec.look(FRAME, 0.2)
    stage.box = BOX
    rec.look(FRAME, 0.4)
    assert rec.state.zones == ("left", "right")


def test_updates_come_every_interval_to_the_microsecond_and_say_what_they_are() -> None:
    ts = [0.2 * i for i in range(1, 6)]  # 1.0 - 0.6000000000000001 is 0.3999999999999999
    script = {ts[0]: [(7, "start", 0.8, False)]}  # 7: the person the scripted reset ends
    script.update({t: [(7, "update", t, False)] for t in ts[1:]})
    rec, _ = _recogniser(script, update_s=0.4)
    trs = [tr for t in ts for tr in rec.look(FRAME, t).transitions]
    assert [tr.at for tr in trs] == [ts[0], ts[2], ts[4]]
    start, update = trs[0], trs[1]
    assert (start.confidence, start.peak_confidence, start.duration_s) == (1.0, 1.0, 0.0)
    assert (start.ended_at, update.ended_at, update.reason, start.camera) == (
        None, None, None, "hall",
    )  # fmt: skip
    assert update.started_at == ts[0] and update.duration_s == pytest.approx(0.4)
    (end,) = rec.reset(2.0).transitions
    assert (end.ended_at, end.at, end.down_s) == (2.0, 2.0, None)


def test_the_region_is_the_person_of_the_newest_change_that_is_not_an_end() -> None:
    script = {0.2: [(1, "start", 0.8, False), (2, "start", 0.8, False)],
              0.4: [(2, "update", 1.0, False), (1, "end", 0.0, True)]}  # fmt: skip
    rec, _ = _recogniser(script, update_s=0.0)
    rec.look(FRAME, 0.2)
    assert rec.look(FRAME, 0.4).region == [0.1, 0.5, 0.3, 1.0]  # not the lost person's zeros
    assert rec.reset(0.6).region is None


def test_a_reset_ends_at_its_own_time_once_the_last_look_is_forgotten() -> None:
    rec, _ = _recogniser({})
    rec.look(FRAME, 0.2)
    assert rec.reset(0.1).at == 0.2
    assert rec.reset(0.05).at == 0.05
    fresh, _ = _recogniser({})
    assert fresh.reset(0.3).at == 0.3


def test_fall_problem_names_the_camera_and_what_is_wrong(tmp_path) -> None:
    fight = read_meta(REPO / "models" / "fight")
    plain = CameraConfig(name="a", source="x.mp4")
    assert fall_problem(plain, read_meta(REPO / "models" / "demo")) is None  # no fall recogniser
    cam = CameraConfig(name="a", source="x.mp4", recognisers=[{"kind": "fall"}])
    own = fight.model_copy(update={"classes": ["fall", "noFight"]})
    assert fall_problem(cam, own) == "camera 'a': the [model] has a class 'fall' of its own"
    demo = read_meta(REPO / "models" / "demo")
    assert fall_problem(cam, demo) == (
        "camera 'a': the fall recogniser needs a person-centric [model] (one with a person "
        f"stage, e.g. models/fight); {demo.name} classifies whole frames"
    )
    bad = CameraConfig(
        name="a", source="x.mp4", recognisers=[{"kind": "fall", "model": str(tmp_path)}]
    )
    problem = fall_problem(bad, fight)
    assert problem is not None and problem.startswith("camera 'a': ") and "rule.json" in problem


def test_a_look_says_whose_what_and_when_and_counts_only_followed_looks_as_tracked() -> None:
    rec, stage = _recogniser({})
    result = rec.look(FRAME, 0.2, captured_at=5.0)
    assert (result.camera, result.activity, result.at, result.captured_at) == (
        "hall", "fall", 0.2, 5.0,
    )  # fmt: skip
    stage.tracked = True
    rec.look(FRAME, 0.4, np.array([[*BOX, 0.8]], np.float32))  # the person stage's boxes
    assert rec.stats.tracked_looks == 0
    assert rec.due(0.6, people_looked=False) and stage.asked == [0.6]


def test_every_fall_outside_the_required_zones_is_counted() -> None:
    script = {0.2: [(1, "start", 0.8, False)], 0.4: [(2, "start", 0.8, False)]}
    rec, _ = _recogniser(script, zones=_zones({"fall": ["right"]}))  # BOX lies on the left
    rec.look(FRAME, 0.2)
    rec.look(FRAME, 0.4)
    assert rec.stats.outside_zones == 2
