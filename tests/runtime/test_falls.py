"""runtime.falls: the fall stage on scripted people (start, "down for N s" updates, end when
they get up), and with the real detector, pose model and shipped rule on real clips: a real
fall raises one fall within seconds, lying down slowly on a sofa raises nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import KP, PoseEstimator
from har_daemon.model.pose_features import coverage
from har_daemon.model.pose_track import TRACK_GROW
from har_daemon.runtime.falls import (
    FallChange,
    FallStage,
    load_rule,
    play_file,
    pose_min_side,
    rule_file,
)
from har_daemon.runtime.lying import RotatedLook
from har_daemon.runtime.poses import MISSED_SAMPLES
from tests.shared_data import FALLS_DATA, require
from tests.video.test_frames import _write_avi


class ScriptedPeople:
    """Detector and pose model at once: one person whose hips sit at `hip_y` (set by the test),
    standing (torso upright, tall box) above `down_at`, lying (torso level, wide box) below."""

    def __init__(self) -> None:
        self.hip_y = 200.0
        self.down_at = 260.0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        if self.hip_y >= self.down_at:
            return np.array([[100, self.hip_y - 40, 300, self.hip_y + 20, 0.9]], np.float32)
        return np.array([[170, self.hip_y - 110, 230, self.hip_y + 90, 0.9]], np.float32)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        kp = np.zeros((len(boxes), 17, 3), np.float32)
        kp[:, :, 2] = 0.9
        kp[:, :, 0], kp[:, :, 1] = 200, self.hip_y
        lying = self.hip_y >= self.down_at
        for side in ("left", "right"):
            sh = kp[:, KP[f"{side}_shoulder"]]
            sh[:, 0], sh[:, 1] = (140, self.hip_y) if lying else (200, self.hip_y - 60)
        return kp


FRAME = np.zeros((480, 640, 3), np.uint8)


def test_load_rule_reads_the_shipped_thresholds_and_names_a_bad_file(tmp_path):
    rule = load_rule()
    assert 0 < rule.hip_drop < 1 and rule.hold_s > 0
    (tmp_path / "rule.json").write_text('{"hip_drop": 0.2, "colour": 1}')
    with pytest.raises(ModelError, match=r"rule\.json: unknown keys \['colour'\]"):
        load_rule(tmp_path)
    with pytest.raises(ModelError, match="cannot read"):
        load_rule(tmp_path / "none")


def test_load_rule_takes_the_looks_modes_own_file_else_the_shared_one(tmp_path):
    assert (rule_file(), rule_file("tracked")) == ("rule.json", "rule-tracked.json")
    (tmp_path / "rule.json").write_text('{"hip_drop": 0.2}')
    (tmp_path / rule_file("tracked")).write_text('{"hip_drop": 0.3, "min_coverage": 0.3}')
    assert load_rule(tmp_path).hip_drop == 0.2
    assert load_rule(tmp_path, "shared").hip_drop == 0.2  # no rule-shared.json
    tracked = load_rule(tmp_path, "tracked")
    assert (tracked.hip_drop, tracked.min_coverage) == (0.3, 0.3)
    (tmp_path / rule_file("shared")).write_text('{"hip_drop": "low"}')
    with pytest.raises(ModelError, match=r"rule-shared\.json"):
        load_rule(tmp_path, "shared")
    for looks in ("own", "shared", "tracked"):  # what ships loads for every mode
        assert load_rule(looks=looks).hold_s > 0


def test_scripted_fall_starts_updates_and_ends_when_the_person_gets_up():
    people = ScriptedPeople()
    stage = FallStage(people, people, load_rule())
    script = [200.0] * 10 + [230.0, 275.0, 290.0] + [290.0] * 15 + [200.0] * 12
    changes = []
    for i, hip in enumerate(script):
        people.hip_y = hip
        t = i * 0.2
        assert stage.due(t)
        changes += stage.look(FRAME, t)
    kinds = [c.change for c in changes]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"update"}
    start = changes[0]
    assert 2.0 <= start.t <= 2.4 + load_rule().hold_s + 0.4  # down from ~2.2 s
    downs = [c.down_s for c in changes if c.change == "update"]
    assert downs == sorted(downs) and downs[-1] > 2.0  # "down for N s" grows
    # down since hold_s before the start, and by the looks' 0.2 s since
    assert load_rule().hold_s <= start.down_s <= load_rule().hold_s + 0.2
    assert np.diff([start.down_s, *downs]) == pytest.approx([0.2] * len(downs))
    end = changes[-1]
    assert end.t >= 28 * 0.2  # ends only after the person is up again
    assert (end.down_s, end.gone) == (0.0, False) and end.box == stage.tracks.tracks[0].box
    assert stage.looks_made == stage.own_looks == len(script)  # the detector at every look


class LostLyingPerson(ScriptedPeople):
    """Lost by the detector once lying (as GMDCSA24 actor 3 is). The picture shows the lying
    person as two marks, shoulders (grey) left of the hips (white); the pose model finds the
    marks in any picture but sees a person only where the shoulders are above the hips, as
    MoveNet, trained on upright people, does."""

    SHOULDER, HIP = (140, 290), (200, 290)

    def frame(self) -> np.ndarray:
        frame = FRAME.copy()
        if self.hip_y >= self.down_at:
            frame[self.SHOULDER[1], self.SHOULDER[0]] = 100
            frame[self.HIP[1], self.HIP[0]] = 200
        return frame

    def detect(self, frame: np.ndarray) -> np.ndarray:
        return super().detect(frame) if self.hip_y < self.down_at else np.zeros((0, 5))

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        if frame.shape == FRAME.shape:
            return super().estimate(frame, boxes)
        kp = np.zeros((len(boxes), 17, 3), np.float32)
        marks = {v: np.argwhere(frame[:, :, 0] == v) for v in (100, 200)}
        if len(marks[100]) and len(marks[200]):
            (sy, sx), (hy, hx) = marks[100][0] + 0.5, marks[200][0] + 0.5
            kp[:, :, 0], kp[:, :, 1] = hx, hy
            kp[:, [KP["left_shoulder"], KP["right_shoulder"]], 0] = sx
            kp[:, [KP["left_shoulder"], KP["right_shoulder"]], 1] = sy
            kp[:, :, 2] = 0.9 if hy - sy > abs(hx - sx) else 0.1  # upright here: seen
        return kp


@pytest.mark.parametrize("look_s", [0.0, 1.6])
def test_a_person_lost_lying_is_found_by_the_turned_look_only_when_the_rule_says(look_s):
    people = LostLyingPerson()
    again = RotatedLook(people, people, "pose")  # the scripted detector finds nobody lying
    stage = FallStage(people, people, replace(load_rule(), look_s=look_s), again=again)
    script = [200.0] * 10 + [230.0] + [290.0] * 12  # seen going down at 2.0 s, then lost lying
    changes = []
    for i, hip in enumerate(script):
        people.hip_y = hip
        changes += stage.look(people.frame(), i * 0.2)
    starts = [c for c in changes if c.change == "start"]
    if look_s == 0:
        assert starts == [] and stage.look_stats.looks == 0
        return
    assert len(starts) == 1
    assert starts[0].box == pytest.approx((140.5, 290.5, 200.5, 290.5))  # the marks, lying
    assert 2.2 + load_rule().hold_s - 0.01 <= starts[0].t <= 3.4
    # a look per sample from the first lost one (2.2 s) to 1.6 s after the last way down (the
    # look's own find at 2.2 s: hips 0.3 standing heights lower), two turns each
    assert stage.look_stats.looks == 9 and stage.look_stats.calls == 18


def _real_stage():
    return FallStage(PersonDetector(score_threshold=0.2), PoseEstimator(), load_rule())


def test_a_real_fall_raises_one_fall_within_seconds_and_keeps_it_open():
    # GMDCSA24 actor 1 falls backwards from standing; the authors mark the fall 0.3-5.0 s.
    changes = play_file(require(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4"), _real_stage())
    starts = [c for c in changes if c.change == "start"]
    assert len(starts) == 1
    assert 0.3 <= starts[0].t <= 5.0 + 3.0
    assert any(c.change == "update" and c.down_s >= 2.0 for c in changes)


def test_lying_down_slowly_on_a_sofa_raises_nothing():
    clip = FALLS_DATA / "assist-iot" / "adl" / "11_sitting_laying_down_slowly.mp4"
    assert play_file(require(clip), _real_stage()) == []


class ScriptedWithSmall(ScriptedPeople):
    """The scripted person and a second one far away (a 30 x 50 px box) who falls at the
    same moments; the pose model records how many boxes it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.posed = 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        small = np.array([[500, 100, 530, 150, 0.8]], np.float32)
        if self.hip_y >= self.down_at:
            small = np.array([[490, 140, 540, 165, 0.8]], np.float32)
        return np.concatenate([super().detect(frame), small])

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.posed += len(boxes)
        return super().estimate(frame, boxes)


def test_a_person_too_small_to_pose_is_tracked_without_a_pose_call_and_never_falls():
    people = ScriptedWithSmall()
    stage = FallStage(people, people, load_rule(), min_side_px=pose_min_side("shared"))
    script = [200.0] * 10 + [230.0, 275.0, 290.0] + [290.0] * 15 + [200.0] * 12
    changes = []
    for i, hip in enumerate(script):
        people.hip_y = hip
        changes += stage.look(FRAME, i * 0.2)
        seen = [p for p in stage.people(i * 0.2) if p.seen]
        assert len(seen) == 2  # both matched to their tracks at every look
    assert people.posed == stage.posed == len(script) and stage.unposed == len(script)
    assert len(stage.tracks.tracks) == 2
    started = {c.track_id for c in changes if c.change == "start"}
    big = next(p.track_id for p in stage.people(0.0) if p.box[0] < 400)
    assert started == {big}  # the same fall as alone; the small person says nothing


def test_only_the_modes_at_the_person_stages_looks_leave_small_people_unposed():
    assert pose_min_side("own") == 0.0  # own looks pose every box, as they were learned
    assert pose_min_side("shared") == pose_min_side("tracked") == pose_min_side("adaptive") > 0
    people = ScriptedWithSmall()
    stage = FallStage(people, people, load_rule(), min_side_px=pose_min_side("own"))
    stage.look(FRAME, 0.0)
    assert people.posed == stage.posed == 2 and stage.unposed == 0


class CountingDetector:
    """The real person detector, its calls counted."""

    def __init__(self) -> None:
        self.detector = PersonDetector(score_threshold=0.2)
        self.calls = 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.detector.detect(frame)


def test_tracked_looks_call_the_detector_only_at_the_person_stages_looks_and_find_the_fall():
    # GMDCSA24 s1_fall_14 (fall 0.3-5.0 s): looks every 0.2 s, the detector every 0.5175 s
    # (models/fight's person stage), the people followed from their keypoints in between
    detector = CountingDetector()
    stage = FallStage(detector, PoseEstimator(), load_rule(), tracked=True)
    looks: list[float] = []
    stage_look = stage.look
    stage.look = lambda frame, t, boxes=None: (
        looks.append(boxes is None)
        or stage_look(  # type: ignore[method-assign]
            frame, t, boxes
        )
    )
    clip = require(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4")
    changes = play_file(clip, stage, detect_every_s=0.5175)
    followed_looks = sum(looks)
    assert detector.calls == len(looks) - followed_looks  # only where the boxes were given
    assert followed_looks > detector.calls > 0 and stage.followed >= followed_looks * 0.5
    starts = [c for c in changes if c.change == "start"]
    assert len(starts) == 1 and 0.3 <= starts[0].t <= 5.0 + 3.0
    assert any(c.change == "update" and c.down_s >= 2.0 for c in changes)


class FadingPeople(ScriptedPeople):
    """The scripted person, whose keypoints the pose model sees with `score`; records the
    boxes it was asked to look in."""

    def __init__(self) -> None:
        super().__init__()
        self.score = 0.9
        self.seen = 17
        """The first `seen` keypoints have `score`, the others 0."""
        self.asked: list[np.ndarray] = []
        self.frames: list[np.ndarray] = []

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.frames.append(frame)
        return super().detect(frame)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.asked.append(np.asarray(boxes, np.float32))
        self.frames.append(frame)
        kp = super().estimate(frame, boxes)
        kp[:, :, 2] = self.score
        kp[:, self.seen :, 2] = 0.0
        return kp


def test_a_tracked_look_follows_the_last_keypoints_and_a_poor_pose_counts_as_not_seen():
    people = FadingPeople()
    stage = FallStage(people, people, load_rule(), tracked=True)
    stage.look(FRAME, 0.0, people.detect(FRAME))  # the person stage's look, its boxes shared
    (track,) = stage.tracks.tracks
    stage.look(FRAME, 0.2)  # followed: the pose model looks around the last keypoints
    (region,) = people.asked[-1]
    kp = track.poses[0].keypoints
    assert region[0] < kp[:, 0].min() and region[2] > kp[:, 0].max()
    assert stage.followed == 1 and track.missed == 0 and len(track.ring) == 2
    box = track.box
    people.score = 0.2  # now poorly seen: counts as not seen, the track keeps its box and ages
    stage.look(FRAME, 0.4)
    assert stage.followed == 2 and track.missed == 1 and track.box == box
    assert len(track.ring) == 2
    stage.look(FRAME, 0.6)  # not seen at the last look: waits for the detector's
    assert stage.followed == 2 and track.missed == 2


def test_an_adaptive_stage_looks_densely_only_after_a_way_down():
    # the person stage's looks every 0.5175 s; the 0.2 s looks between only while watching
    people = FadingPeople()
    stage = FallStage(people, people, load_rule(), adaptive=True)
    for t in (0.0, 0.5175):
        stage.look(FRAME, t, people.detect(FRAME))
        assert not stage.own_look_due(t + 0.2)
    assert stage.followed == 0 and stage.own_looks == 0
    people.hip_y = 300.0  # down between two of the person stage's looks
    stage.look(FRAME, 1.035, people.detect(FRAME))
    assert stage.watching(1.235) and stage.own_look_due(1.235)
    stage.look(FRAME, 1.235)  # followed from the keypoints of the last look, no detector
    assert stage.followed == 1 and stage.own_looks == 1
    window = stage.rule.fall_window_s + stage.rule.hold_s
    assert stage.watching(1.235 + window - 0.1)  # the rule has them down: still watching


def _adaptive_play(clip_path):
    detector = CountingDetector()
    stage = FallStage(detector, PoseEstimator(), load_rule(), adaptive=True)
    changes = play_file(require(clip_path), stage, detect_every_s=0.5175)
    return detector, stage, changes


def test_adaptive_looks_stay_sparse_while_a_person_walks_and_turn_dense_for_a_real_fall():
    # ASSIST-IoT: one person walking slowly across the room, nobody going down
    detector, stage, changes = _adaptive_play(
        FALLS_DATA / "assist-iot" / "adl" / "01_walking_slowly.mp4"
    )
    assert changes == [] and stage.own_looks == 0 and stage.followed == 0
    assert detector.calls == stage.looks_made > 0  # the person stage's looks only
    # GMDCSA24 s1_fall_14 (fall 0.3-5.0 s): the watch opens, people are followed between
    detector, stage, changes = _adaptive_play(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4")
    assert detector.calls == stage.looks_made - stage.own_looks
    assert stage.own_looks > 0 and stage.followed > 0
    starts = [c for c in changes if c.change == "start"]
    assert len(starts) == 1 and 0.3 <= starts[0].t <= 5.0 + 3.0


def test_a_stage_looks_every_spacing_s_and_again_with_its_own_models():
    people = FadingPeople()
    stage = FallStage(people, people, load_rule())
    assert stage.again is not None
    assert stage.again.detector is people and stage.again.pose is people
    assert stage.due(1.0)
    stage.look(FRAME, 1.0)
    assert people.frames[0] is FRAME  # the detector looked at the frame
    assert not stage.due(1.1) and stage.due(1.2)
    assert (stage.looks_made, stage.own_looks) == (1, 1)
    stage.look(FRAME, 1.2, people.detect(FRAME))  # the person stage's boxes given
    assert (stage.looks_made, stage.own_looks) == (2, 1)


class LeavingPeople(ScriptedPeople):
    """The scripted person, who may leave the picture (`here` False: nobody detected)."""

    def __init__(self, x: float = 0.0) -> None:
        super().__init__()
        self.here, self.x = True, x

    def detect(self, frame: np.ndarray) -> np.ndarray:
        boxes = super().detect(frame) + np.float32([self.x, 0, self.x, 0, 0])
        return boxes if self.here else np.zeros((0, 5), np.float32)


def test_a_fall_whose_person_is_gone_ends_as_gone():
    people = LeavingPeople()
    stage = FallStage(people, people, load_rule())
    changes = []
    for i, hip in enumerate([200.0] * 10 + [230.0, 275.0, 290.0] + [290.0] * 6):
        people.hip_y = hip
        changes += stage.look(FRAME, i * 0.2)
    assert changes[0].change == "start"
    people.here = False
    for k in range(1, MISSED_SAMPLES + 2):
        changes += stage.look(FRAME, (18 + k) * 0.2)
    end = changes[-1]
    assert (end.change, end.gone, end.box, end.down_s) == ("end", True, (0.0, 0.0, 0.0, 0.0), 0.0)
    assert stage.tracks.tracks == [] and {c.change for c in changes[1:-1]} == {"update"}


def test_a_persons_box_at_the_frames_edge_is_marked():
    people = LeavingPeople(x=-170.0)  # the box from x 0 to 60
    stage = FallStage(people, people, load_rule())
    stage.look(FRAME, 0.0)
    assert stage.tracks.tracks[0].ring[-1].at_edge


def test_down_for_is_rounded_to_hundredths_at_the_person_stages_spacing():
    # the person stage's looks every 0.5175 s: "down for" 0.5175 x k s is published as 0.52 x k
    people = ScriptedPeople()
    stage = FallStage(people, people, load_rule())
    script = [200.0] * 6 + [290.0] * 8
    downs, people_downs = [], []
    for i, hip in enumerate(script):
        people.hip_y, t = hip, i * 0.5175
        changes = stage.look(FRAME, t)
        since = stage.events.states[1].down_since
        downs += [(c.down_s, round(t - since, 2)) for c in changes]
        want = None if since is None else round(t - since, 2)
        people_downs.append((stage.people(t)[0].down_s, want))
    assert downs and all(got == want for got, want in downs)
    assert downs[0][0] == 1.04  # 2 x 0.5175 = 1.035 s down at the start
    assert all(got == want for got, want in people_downs)
    assert [got for got, _ in people_downs[:6]] == [None] * 6  # standing: not down


def test_reset_ends_the_open_falls_and_starts_afresh():
    people = ScriptedPeople()
    stage = FallStage(people, people, load_rule(), adaptive=True)
    for i, hip in enumerate([200.0] * 4 + [300.0] * 6):
        people.hip_y = hip
        stage.look(FRAME, i * 0.5175, people.detect(FRAME))
    (track,) = stage.tracks.tracks
    assert stage.events.states[track.id].open_since is not None and stage.watching(5.2)
    assert stage.reset(5.2) == [FallChange(track.id, "end", 5.2, 0.0, (0.0, 0.0, 0.0, 0.0))]
    assert stage.tracks.tracks == [] and stage.events.states == {}
    assert stage.due(5.21) and not stage.watching(5.21)
    assert stage.reset(5.3) == []  # nothing open
    stage.look(FRAME, 5.5, people.detect(FRAME))  # and the stage goes on: a new track, judged
    assert [tr.id for tr in stage.tracks.tracks] == [2] and 2 in stage.events.states


def test_the_adaptive_watch_stays_open_while_the_rule_has_someone_down():
    # only the person stage's looks (0.5175 s); down at 2.07 s for 6 s, then up again
    people = ScriptedPeople()
    stage = FallStage(people, people, load_rule(), adaptive=True)
    window = stage.rule.fall_window_s + stage.rule.hold_s
    t = 0.0
    for i in range(28):
        t = i * 0.5175
        people.hip_y = 300.0 if 2.0 <= t < 8.0 else 200.0
        stage.look(FRAME, t, people.detect(FRAME))
        if 2.0 + window < t < 8.0:  # the way down is long past: the rule keeps it open
            assert stage.watching(t + 0.2)
    assert not stage.watching(t + 0.2)  # up for over the window since


class LyingDownSlowly(ScriptedPeople):
    """Sits down (a shorter box, the torso upright, the hips 60 px lower) as `sitting` goes
    from 0 to 1, then lies back (the torso level) with the hips sinking `lie` px more, slowly:
    down by the rule, but never fast, so no fall."""

    def __init__(self) -> None:
        super().__init__()
        self.sitting, self.lie = 0.0, 0.0
        self.lying = False
        self.down_at = 1e9  # the torso is level only when `lying`

    def _hips(self) -> float:
        return 260.0 + self.lie if self.lying else 200.0 + 60.0 * self.sitting

    def detect(self, frame: np.ndarray) -> np.ndarray:
        hip = self._hips()
        if self.lying:
            return np.array([[100, hip - 40, 300, hip + 30, 0.9]], np.float32)
        return np.array([[170, 90 + 90 * self.sitting, 230, hip + 90, 0.9]], np.float32)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.hip_y = self._hips()
        kp = super().estimate(frame, boxes)
        if self.lying:
            kp[:, [KP["left_shoulder"], KP["right_shoulder"]], :2] = (140, self.hip_y)
        return kp


def test_the_adaptive_watch_stays_open_for_someone_down_without_a_fall():
    people = LyingDownSlowly()
    stage = FallStage(people, people, load_rule(), adaptive=True)
    window = stage.rule.fall_window_s + stage.rule.hold_s
    changes, opened = [], None
    for i in range(40):
        t = i * 0.5175
        people.sitting = min(max((t - 1.0) / 8.0, 0.0), 1.0)  # 7.5 px/s
        people.lying, people.lie = t >= 10.0, max(t - 10.0, 0.0) * 8.0  # 8 px/s
        changes += stage.look(FRAME, t, people.detect(FRAME))
        opened = opened if opened is not None or not stage.watching(t + 0.01) else t
    assert changes == [] and opened is not None and [tr.id for tr in stage.tracks.tracks] == [1]
    assert stage.events.states[1].down_since is not None  # down by the rule, never fast
    assert opened + window < t and stage.watching(t + 0.2)


def test_a_followed_look_is_clipped_to_the_frame_and_poses_the_frame():
    people = FadingPeople()
    people.hip_y = 470.0  # near the bottom: keypoints 410-470, grown past the frame
    stage = FallStage(people, people, load_rule(), tracked=True)
    stage.look(FRAME, 0.0, people.detect(FRAME))
    stage.look(FRAME, 0.2)
    (region,) = people.asked[-1]
    assert region[3] == 480.0 and people.frames[-1] is FRAME


def test_a_followed_look_around_a_poorly_seen_person_uses_their_last_box():
    people = FadingPeople()
    people.score = 0.2  # nothing seen: where the keypoints are says nothing
    stage = FallStage(people, people, load_rule(), tracked=True)
    stage.look(FRAME, 0.0, people.detect(FRAME))
    stage.look(FRAME, 0.2)
    grow = TRACK_GROW * 200.0
    assert people.asked[-1][0].tolist() == pytest.approx([170 - grow, 90 - grow, 230 + grow,
                                                          290 + grow, 1.0])  # fmt: skip


@pytest.mark.parametrize(("seen", "followed"), [(10, True), (9, False), (5, False)])
def test_a_followed_person_continues_with_at_least_min_coverage_seen(seen, followed):
    people = FadingPeople()
    kp = np.zeros((17, 3), np.float32)
    kp[:10, 2] = 0.9
    rule = replace(load_rule(), min_coverage=coverage(kp))  # 10 of 17
    stage = FallStage(people, people, rule, tracked=True)
    stage.look(FRAME, 0.0, people.detect(FRAME))
    people.seen = seen  # 5: enough for a box of its own, too few to count
    stage.look(FRAME, 0.2)
    assert stage.followed == 1 and (stage.tracks.tracks[0].missed == 0) is followed


@pytest.mark.parametrize(("min_side", "followed"), [(0.0, 2), (64.0, 1)])
def test_a_tracked_stage_follows_the_people_it_poses(min_side, followed):
    people = ScriptedWithSmall()  # and a 30 x 50 px person
    stage = FallStage(people, people, load_rule(), tracked=True, min_side_px=min_side)
    stage.look(FRAME, 0.0, people.detect(FRAME))
    stage.look(FRAME, 0.2)
    assert stage.followed == followed


def _scripted_clip(path, hips: list[float]):
    """A 5 fps clip whose frame i is flat grey `hips[i] - 200` (what ClipPeople reads back)."""
    frames = [np.full((480, 640, 3), int(h - 200), np.uint8) for h in hips]
    return _write_avi(path, frames, fps=5.0)


class ClipPeople(FadingPeople):
    """The scripted person whose hips the frame's brightness says (200 + grey)."""

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.hip_y = 200.0 + round(float(frame.mean()))
        return super().detect(frame)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.hip_y = 200.0 + round(float(frame.mean()))
        return super().estimate(frame, boxes)


def test_play_file_looks_every_spacing_s_and_ends_what_is_open_at_the_end(tmp_path):
    hips = [200.0] * 10 + [230.0, 275.0, 290.0] + [290.0] * 12
    clip = _scripted_clip(tmp_path / "fall.avi", hips)
    people = ClipPeople()
    stage = FallStage(people, people, load_rule())
    changes = play_file(clip, stage)
    kinds = [c.change for c in changes]
    assert kinds[0] == "start" and set(kinds[1:-1]) == {"update"} and kinds[-1] == "end"
    assert changes[-1].t == pytest.approx(24 * 0.2) and stage.looks_made == len(hips)
    assert changes[-1] == FallChange(changes[0].track_id, "end", changes[-1].t, 0.0,
                                     (0.0, 0.0, 0.0, 0.0))  # fmt: skip


@pytest.mark.parametrize(("every_s", "detected"), [(0.6, 4), (None, 10)])
def test_play_file_with_a_tracked_stage_detects_every_detect_every_s(tmp_path, every_s, detected):
    clip = _scripted_clip(tmp_path / "walk.avi", [200.0] * 10)
    people = ClipPeople()
    stage = FallStage(people, people, load_rule(), tracked=True)
    assert play_file(clip, stage, detect_every_s=every_s) == []
    assert stage.looks_made == 10 and stage.own_looks == 10 - detected
    assert stage.followed == 10 - detected  # the others: the detector's boxes given
