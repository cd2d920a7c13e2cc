"""runtime.policy: the config's [inference] section as the smoother and tracker everyone uses."""

from __future__ import annotations

from dataclasses import replace

import pytest

from har_daemon.config import InferenceConfig
from har_daemon.model.meta import read_meta
from har_daemon.runtime.policy import DecisionPolicy
from tests.shared_data import REPO

CLASSES = ["NonViolence", "Violence", "fall"]


def test_thresholds_and_filters_come_from_the_config() -> None:
    policy = DecisionPolicy.from_config(
        InferenceConfig(
            enter_threshold=0.7, exit_threshold=0.2, min_windows=3, alert_activities=["fall"]
        ),
        (),
    )
    tc = policy.tracker_config
    assert (tc.enter_threshold, tc.exit_threshold, tc.min_windows) == (0.7, 0.2, 3)
    assert tc.alert_activities == frozenset({"fall"})
    assert DecisionPolicy.from_config(InferenceConfig(), ()).tracker_config.alert_activities is None


def test_smoother_follows_the_config() -> None:
    smoother = DecisionPolicy.from_config(
        InferenceConfig(smoothing="ema", ema_alpha=0.3), ()
    ).smoother()
    assert (smoother.method, smoother.alpha) == ("ema", 0.3)
    smoother.update([1.0, 0.0])
    assert smoother.update([0.0, 1.0]).tolist() == pytest.approx([0.7, 0.3])


def test_alerting_classes_mirror_the_tracker() -> None:
    ignore = DecisionPolicy.from_config(InferenceConfig(ignore_activities=["NonViolence"]), ())
    assert ignore.alerting(CLASSES) == ["Violence", "fall"]
    only = DecisionPolicy.from_config(InferenceConfig(alert_activities=["fall"]), ())
    assert only.alerting(CLASSES) == ["fall"]


def test_the_models_background_classes_never_alert_unless_the_config_names_them() -> None:
    """A model directory's background_classes: the defaults of every tool alert on the rest."""
    default = DecisionPolicy.from_config(InferenceConfig(), ["NonViolence"])
    assert default.alerting(CLASSES) == ["Violence", "fall"]
    assert "NonViolence" in default.tracker_config.ignore_activities
    named = DecisionPolicy.from_config(
        InferenceConfig(alert_activities=["NonViolence"]), ["NonViolence"]
    )
    assert named.alerting(CLASSES) == ["NonViolence"]
    assert "NonViolence" not in named.tracker_config.ignore_activities


def test_unknown_activity_is_named() -> None:
    policy = DecisionPolicy.from_config(InferenceConfig(alert_activities=["fight"]), ())
    with pytest.raises(ValueError, match="unknown activity 'fight'"):
        policy.check_classes(CLASSES)
    with pytest.raises(ValueError, match="unknown activity 'fight'"):
        policy.tracker(CLASSES)  # the tracker checks its classes too
    tracker = policy.tracker(["fight", "noFight"], camera="yard")
    assert tracker.camera == "yard" and tracker.config is policy.tracker_config
    assert tracker.classes == ["fight", "noFight"]


def test_every_setting_reaches_the_smoother_and_the_tracker() -> None:
    policy = DecisionPolicy.from_config(
        InferenceConfig(smoothing="mean", smoothing_window=4, update_interval_s=7.5), ()
    )
    smoother = policy.smoother()
    assert (smoother.method, smoother.window) == ("mean", 4)
    assert policy.tracker_config.update_interval_s == 7.5
    tracker = policy.tracker(CLASSES)
    assert tracker.camera is None and tracker.config is policy.tracker_config


def test_ignored_activities_add_up_with_the_models_background() -> None:
    policy = DecisionPolicy.from_config(
        InferenceConfig(ignore_activities=["fall"]), ["NonViolence"]
    )
    assert policy.tracker_config.ignore_activities == frozenset({"fall", "NonViolence"})
    assert policy.alerting(CLASSES) == ["Violence"]


def test_a_model_directorys_background_classes_are_read_from_its_meta() -> None:
    policy = DecisionPolicy.for_model(InferenceConfig(), read_meta(REPO / "models" / "fight"))
    assert policy.alerting(["fight", "noFight"]) == ["fight"]


def test_a_cameras_enter_threshold_changes_only_that() -> None:
    policy = DecisionPolicy.from_config(InferenceConfig(enter_threshold=0.7), ())
    own = policy.with_enter_threshold(0.55)
    assert own.tracker_config.enter_threshold == 0.55
    assert policy.tracker_config.enter_threshold == 0.7  # the shared policy is left alone
    assert own == DecisionPolicy(
        policy.smoothing,
        policy.smoothing_window,
        policy.ema_alpha,
        replace(policy.tracker_config, enter_threshold=0.55),
    )
