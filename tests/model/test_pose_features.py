"""model.pose_features: torso angle, hip drop and speed in body heights, on hand-made skeletons."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from har_daemon.model import pose_features as pf
from har_daemon.model.pose import KP


def skeleton(shoulder_xy, hip_xy, seen=17):
    kp = np.zeros((17, 3), np.float32)
    kp[:seen, 2] = 0.9
    for name in ("left_shoulder", "right_shoulder"):
        kp[KP[name], :2] = shoulder_xy
        kp[KP[name], 2] = 0.9
    for name in ("left_hip", "right_hip"):
        kp[KP[name], :2] = hip_xy
        kp[KP[name], 2] = 0.9
    return kp


STANDING = skeleton((100, 100), (100, 160))  # torso 60 px -> 200 px tall
LYING = skeleton((40, 300), (100, 300))  # torso level
BOX_STANDING = np.array([70, 50, 130, 250, 0.9])
BOX_LYING = np.array([0, 260, 200, 320, 0.9])


def test_upright_torso_is_zero_degrees_and_height_from_torso():
    obs = pf.observe(STANDING, BOX_STANDING)
    assert obs.torso_deg == pytest.approx(0.0)
    assert obs.height_px == pytest.approx(60 / pf.TORSO_FRACTION)
    assert obs.hip_y == pytest.approx(160)
    assert obs.aspect == pytest.approx(60 / 200)


def test_level_torso_is_ninety_degrees_either_way():
    assert pf.observe(LYING, BOX_LYING).torso_deg == pytest.approx(90.0)
    mirrored = skeleton((160, 300), (100, 300))
    assert pf.observe(mirrored, BOX_LYING).torso_deg == pytest.approx(90.0)
    tilted = skeleton((100 + 60 * math.sin(math.radians(45)), 100), (100, 100 + 60 * 0.7071))
    assert pf.observe(tilted, BOX_STANDING).torso_deg == pytest.approx(45.0, abs=0.1)


def test_unseen_hips_give_nan_and_the_box_height():
    kp = STANDING.copy()
    kp[[KP["left_hip"], KP["right_hip"]], 2] = 0.0
    obs = pf.observe(kp, BOX_STANDING)
    assert math.isnan(obs.torso_deg) and math.isnan(obs.hip_y)
    assert obs.height_px == pytest.approx(200)
    assert obs.coverage == pytest.approx(15 / 17)


def test_reference_is_set_only_while_upright():
    up = pf.observe(STANDING, BOX_STANDING)
    ref = pf.update_reference(None, up)
    assert ref == pf.Reference(hip_y=160, height_px=pytest.approx(200), top_y=50)
    assert pf.update_reference(ref, pf.observe(LYING, BOX_LYING)) is ref


def test_the_box_top_drop_is_measured_from_a_well_seen_standing_person():
    ref = pf.update_reference(None, pf.observe(STANDING, BOX_STANDING))
    down = pf.features(1.5, pf.observe(LYING, BOX_LYING), ref, None)
    assert down.top_drop == pytest.approx((260 - 50) / 200)
    first_lying = pf.update_reference(None, pf.observe(LYING, BOX_LYING))
    assert math.isnan(first_lying.top_y)  # no standing top: nothing to drop from
    assert math.isnan(pf.features(1.5, pf.observe(LYING, BOX_LYING), first_lying, None).top_drop)
    poorly = pf.observe(skeleton((100, 100), (100, 160), seen=0), BOX_STANDING)
    assert poorly.coverage < pf.TOP_COVERAGE
    assert math.isnan(pf.update_reference(None, poorly).top_y)  # maybe a false box


def test_a_fall_in_body_heights():
    up = pf.observe(STANDING, BOX_STANDING)
    ref = pf.update_reference(None, up)
    down = pf.observe(LYING, BOX_LYING)
    f = pf.features(1.5, down, ref, (1.0, up))
    assert f.hip_drop == pytest.approx((300 - 160) / 200)
    assert f.hip_speed == pytest.approx((300 - 160) / 0.5 / 200)
    assert f.torso_deg == pytest.approx(90.0)
    assert f.height_ratio == pytest.approx(60 / 200)
    assert f.aspect == pytest.approx(200 / 60)


def test_the_same_fall_at_another_scale_gives_the_same_features():
    ref = pf.update_reference(None, pf.observe(STANDING, BOX_STANDING))
    small = pf.update_reference(None, pf.observe(STANDING * [0.5, 0.5, 1], BOX_STANDING * 0.5))
    big = pf.features(1.5, pf.observe(LYING, BOX_LYING), ref, None)
    half = pf.features(1.5, pf.observe(LYING * [0.5, 0.5, 1], BOX_LYING * 0.5), small, None)
    assert half.hip_drop == pytest.approx(big.hip_drop)
    assert half.height_ratio == pytest.approx(big.height_ratio)


def test_without_a_reference_nothing_has_dropped():
    f = pf.features(0.0, pf.observe(LYING, BOX_LYING), None, None)
    assert f.hip_drop == 0.0 and f.hip_speed == 0.0


def test_the_hips_reference_stays_put_while_someone_goes_down():
    ref = pf.update_reference(None, pf.observe(STANDING, BOX_STANDING))
    # still upright (torso 0) but the box already much shorter: on the way down
    crouched = pf.observe(skeleton((100, 150), (100, 210)), np.array([70, 110, 130, 250, 0.9]))
    after = pf.update_reference(ref, crouched, dt=0.2)
    assert after.hip_y == ref.hip_y
    assert after.height_px == pytest.approx(200)  # the torso still says 200 px tall
    gone = pf.update_reference(after, pf.observe(STANDING * [1, 1, 0], BOX_STANDING), dt=1.0)
    assert gone is after  # nothing seen: nothing learned


def test_the_reference_follows_someone_walking_upright():
    ref = pf.update_reference(None, pf.observe(STANDING, BOX_STANDING))
    nearer = pf.observe(skeleton((100, 110), (100, 175)), np.array([65, 55, 135, 270, 0.9]))
    after = pf.update_reference(ref, nearer, dt=0.2)
    assert after.hip_y == pytest.approx(175)
    assert after.height_px == pytest.approx(65 / pf.TORSO_FRACTION)


def test_a_box_cut_by_the_frame_edge_is_marked():
    assert not pf.observe(STANDING, BOX_STANDING, (480, 640)).at_edge
    assert not pf.observe(STANDING, np.array([70, 50, 130, 479, 0.9]), (480, 640)).at_edge
    assert pf.observe(STANDING, np.array([70, 0, 130, 200, 0.9]), (480, 640)).at_edge
    assert pf.observe(STANDING, np.array([0, 50, 60, 250, 0.9]), (480, 640)).at_edge


def _obs(torso_deg=0.0, hip_y=160.0, height_px=200.0, coverage=1.0, box_h=200.0, box_top=50.0):
    return pf.Observation(torso_deg=torso_deg, hip_y=hip_y, height_px=height_px,
                          coverage=coverage, aspect=0.3, box_h=box_h, box_top=box_top)  # fmt: skip


def test_coverage_counts_a_score_of_exactly_min_keypoint_score_as_seen():
    kp = np.zeros((17, 3), np.float64)
    kp[:4, 2] = pf.MIN_KEYPOINT_SCORE
    assert pf.coverage(kp) == pytest.approx(4 / 17)


def test_a_box_of_no_width_or_height_counts_as_one_pixel():
    assert pf.observe(STANDING, np.array([100, 50, 100, 250, 0.9])).aspect == pytest.approx(1 / 200)
    flat = pf.observe(STANDING, np.array([70, 50, 130, 50, 0.9]))
    assert flat.box_h == 1.0 and flat.aspect == pytest.approx(60.0)


def test_a_torso_of_one_pixel_has_an_angle_and_a_shorter_one_none():
    one = pf.observe(skeleton((100, 100), (100, 101)), BOX_STANDING)
    assert one.torso_deg == pytest.approx(0.0)
    assert one.height_px == pytest.approx(1.0 / pf.TORSO_FRACTION)
    half = pf.observe(skeleton((100, 100), (100, 100.5)), BOX_STANDING)
    assert math.isnan(half.torso_deg) and half.height_px == pytest.approx(200.0)


def test_a_box_within_edge_px_of_the_right_border_is_marked_too():
    hw = (480, 640)
    assert pf.observe(STANDING, np.array([pf.EDGE_PX, 50, 130, 250, 0.9]), hw).at_edge
    assert not pf.observe(STANDING, np.array([pf.EDGE_PX + 1, 50, 130, 250, 0.9]), hw).at_edge
    assert pf.observe(STANDING, np.array([70, pf.EDGE_PX, 130, 250, 0.9]), hw).at_edge
    assert pf.observe(STANDING, np.array([570, 50, 640 - pf.EDGE_PX, 250, 0.9]), hw).at_edge
    assert not pf.observe(STANDING, np.array([570, 50, 636, 250, 0.9]), hw).at_edge


def test_the_standing_height_is_forgotten_slowly_and_only_as_time_passes():
    ref = pf.update_reference(None, _obs())
    shorter = _obs(height_px=150.0, box_h=190.0)  # walked away a little, still upright
    assert pf.update_reference(ref, shorter).height_px == pytest.approx(200.0)  # dt 0
    later = pf.update_reference(ref, shorter, dt=0.2)
    assert later.height_px == pytest.approx(200.0 * math.exp(-pf.HEIGHT_DECAY_PER_S * 0.2))
    assert later.hip_y == 160.0  # 190 px is at least TALL_SHARE of 196 px: the hips follow


def test_the_reference_thresholds_count_at_their_values():
    ref = pf.update_reference(None, _obs())
    at_upright = pf.update_reference(ref, _obs(torso_deg=pf.UPRIGHT_DEG, hip_y=300.0))
    assert at_upright is ref  # UPRIGHT_DEG is already not upright
    tall = pf.update_reference(ref, _obs(hip_y=170.0, box_h=pf.TALL_SHARE * 200.0))
    assert tall.hip_y == 170.0  # exactly TALL_SHARE of the standing height: tall
    top = pf.update_reference(ref, _obs(box_top=60.0, coverage=pf.TOP_COVERAGE))
    assert top.top_y == 60.0  # exactly TOP_COVERAGE seen: the top follows
    assert pf.update_reference(ref, _obs(box_top=60.0, coverage=0.45)).top_y == 50.0


def test_the_box_top_reference_stays_put_while_someone_goes_down():
    ref = pf.update_reference(None, _obs())
    crouched = pf.update_reference(ref, _obs(hip_y=200.0, box_h=120.0, box_top=130.0))
    assert (crouched.hip_y, crouched.top_y) == (160.0, 50.0)


def test_features_measure_in_the_references_height_and_carry_the_observation():
    ref = pf.Reference(hip_y=160.0, height_px=200.0, top_y=50.0)
    obs = replace(_obs(hip_y=260.0, height_px=100.0, coverage=0.7, box_h=80.0, box_top=170.0),
                  at_edge=True)  # fmt: skip
    f = pf.features(2.5, obs, ref, (2.0, _obs(hip_y=210.0)))
    assert (f.t, f.coverage, f.height_px, f.at_edge) == (2.5, 0.7, 200.0, True)
    assert f.hip_drop == pytest.approx(0.5) and f.top_drop == pytest.approx(0.6)
    assert f.hip_speed == pytest.approx(0.5) and f.height_ratio == pytest.approx(0.4)


def test_no_hip_speed_without_time_or_without_hips_now():
    ref = pf.Reference(hip_y=160.0, height_px=200.0)
    assert pf.features(1.0, _obs(hip_y=200.0), ref, (1.0, _obs())).hip_speed == 0.0
    unseen = pf.features(1.0, _obs(hip_y=math.nan), ref, (0.8, _obs()))
    assert unseen.hip_speed == 0.0 and math.isnan(unseen.hip_drop)
