"""model.pose_features: torso angle, hip drop and speed in body heights, on hand-made skeletons."""

from __future__ import annotations

import math

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
