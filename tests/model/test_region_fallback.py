"""person_region.fallback: one more region when a window's looks find fewer people than a melee
holds (boxes in, regions out), and the model.json fields that ask for it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from har_daemon.model.meta import ModelMeta, PersonRegion, read_meta
from har_daemon.model.regions import fallback_region, window_regions

FRAME_HW = (270, 480)  # a 16:9 camera at the working width


def _look(*boxes: tuple[float, float, float, float, float]) -> np.ndarray:
    return np.array(boxes, np.float32).reshape(-1, 5)


ONE = _look((300, 100, 340, 200, 0.9))  # one person 100 px tall, right of centre


def test_default_rules_add_nothing_to_todays_regions() -> None:
    rules = PersonRegion()
    assert rules.fallback == "none" and rules.fallback_below == 1
    assert window_regions([_look(), _look()], FRAME_HW, rules) == []
    assert window_regions([ONE, ONE], FRAME_HW, rules) == [(245, 75, 395, 225)]


def test_frame_fallback_when_nobody_is_found_is_the_centred_largest_square() -> None:
    rules = PersonRegion(fallback="frame")
    assert window_regions([_look(), _look()], FRAME_HW, rules) == [(105, 0, 375, 270)]
    # Somebody found: the default `fallback_below` (1) adds nothing.
    assert window_regions([ONE, _look()], FRAME_HW, rules) == [(245, 75, 395, 225)]
    # A box under min_score is nobody.
    faint = _look((300, 100, 340, 200, 0.2))
    assert window_regions([faint], FRAME_HW, rules) == [(105, 0, 375, 270)]


def test_frame_fallback_for_a_melee_seen_as_one_box_is_centred_on_it_and_kept_inside() -> None:
    rules = PersonRegion(fallback="frame", fallback_below=2)
    regions = window_regions([ONE, ONE, _look()], FRAME_HW, rules)
    assert regions == [(245, 75, 395, 225), (185, 0, 455, 270)]  # centred on x = 320
    edge = _look((440, 100, 480, 200, 0.9))
    assert window_regions([edge], FRAME_HW, rules)[1] == (210, 0, 480, 270)  # shifted in
    # Two people on one look: enough, nothing added.
    pair = _look((300, 100, 340, 200, 0.9), (345, 100, 385, 200, 0.8))
    assert len(window_regions([pair, ONE], FRAME_HW, rules)) == 1


def test_people_fallback_joins_groups_the_gap_keeps_apart_without_repeating_a_region() -> None:
    rules = PersonRegion(fallback="people", fallback_below=5)
    left = _look((20, 100, 60, 200, 0.9))
    apart = window_regions([left, ONE], FRAME_HW, rules)
    assert len(apart) == 3  # each person's square, then the square around both
    assert apart[2] == (45, 0, 315, 270)  # 320 px wide + pad, capped at the frame height
    # One group only: the square around everyone is that group's region, not added twice.
    assert window_regions([ONE], FRAME_HW, rules) == [(245, 75, 395, 225)]
    # Nobody: nothing to put a square around.
    assert window_regions([_look()], FRAME_HW, rules) == []


def test_fallback_region_counts_the_busiest_look_not_the_whole_window() -> None:
    rules = PersonRegion(fallback="frame", fallback_below=2)
    found = np.concatenate([ONE, ONE])
    assert fallback_region(found, 1, FRAME_HW, rules) == (185, 0, 455, 270)
    assert fallback_region(found, 2, FRAME_HW, rules) is None
    assert fallback_region(found, 0, FRAME_HW, PersonRegion()) is None


def test_model_json_fields_are_parsed_and_bounded() -> None:
    meta = ModelMeta.model_validate(
        {
            "name": "p",
            "classes": ["fight", "noFight"],
            "frame_spacing_s": 0.1,
            "architecture": "lrcn",
            "input_region": "person",
            "person_region": {"fallback": "frame", "fallback_below": 3},
        }
    )
    assert meta.person_region is not None
    assert (meta.person_region.fallback, meta.person_region.fallback_below) == ("frame", 3)
    for bad in ({"fallback": "whole"}, {"fallback_below": 0}, {"fallback_below": 33}):
        with pytest.raises(ValidationError):
            PersonRegion.model_validate(bad)


def test_shipped_fight_model_serves_the_regions_its_model_json_records() -> None:
    """The fight model's group_gap changed after training (1.0, chosen on validation); its
    record of the change names what it serves, and its fallback stays off."""
    meta = read_meta(Path("models/fight"))
    rules = meta.person_region
    assert rules is not None
    change = meta.evaluation["person_region_change"]["change"]
    assert f"-> {rules.group_gap}" in change
    assert (rules.fallback, rules.fallback_below) == ("none", 1)
