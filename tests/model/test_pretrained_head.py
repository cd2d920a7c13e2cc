"""model.pretrained_head: the exported head scores as scikit-learn's pipeline does, and a bad
model file is one ModelError naming it."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model.appearance import EMBED_DIM
from har_daemon.model.meta import PersonRegion, read_meta
from har_daemon.model.pretrained_head import (
    CONTEXT,
    FEATURES,
    PRETRAINED_DIR,
    PretrainedHead,
    context_box,
    load,
    window_features,
)
from tests.shared_data import REPO, load_script

af = load_script("appearance_features")
RNG = np.random.default_rng(1)


def _write(folder: Path, exported: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    raw = {"kind": "linear", "input": "context_window_features", "input_side": 96, **exported}
    (folder / "model.json").write_text(json.dumps(raw))
    return folder


def test_the_export_scores_as_scikit_learns_predict_proba(tmp_path: Path) -> None:
    # Windows of random embeddings, the two labels apart in a few dimensions.
    emb = RNG.gamma(1.0, 0.5, (80, 20, EMBED_DIM)).astype(np.float32)
    y = np.arange(80) % 2
    emb[y == 1, :, :40] += 0.6
    x = window_features(emb)
    pipe = af._fit(af.models()["logistic_regression"], x, y)
    head = load(_write(tmp_path / "head", af.export_linear(pipe)))
    assert head.input_side == 96

    fresh = RNG.gamma(1.0, 0.5, (12, 20, EMBED_DIM)).astype(np.float32)
    fresh[:6, :, :40] += 0.6
    want = pipe.predict_proba(window_features(fresh))[:, 1]
    got = np.array([head.score(e) for e in fresh])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert want.min() < 0.2 and want.max() > 0.8  # not a constant: the check can fail


def test_window_features_need_two_frames_and_do_not_depend_on_the_embeddings_type() -> None:
    emb = RNG.gamma(1.0, 0.5, (2, EMBED_DIM))  # float64, as a script may hold them
    got = window_features(emb)
    assert got.dtype == np.float32 and got.shape == (FEATURES,)
    np.testing.assert_array_equal(got, window_features(emb.astype(np.float32)))
    with pytest.raises(ValueError, match="^a window needs at least 2 frames, got 1$"):
        window_features(emb[:1])


def test_a_logit_far_out_scores_0_or_1_without_overflow() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for intercept, want in ((-1000.0, 0.0), (1000.0, 1.0)):
            head = PretrainedHead(np.zeros(FEATURES), intercept, 96)
            assert head.score(np.zeros((2, EMBED_DIM), np.float32)) == pytest.approx(want)


def test_the_bundled_head_loads_and_scores_a_window() -> None:
    head = load(PRETRAINED_DIR)
    assert head.coef.shape == (FEATURES,)
    assert head.input_side in (96, 128)
    assert 0.0 <= head.score(np.zeros((20, EMBED_DIM), np.float32)) <= 1.0


@pytest.mark.parametrize(
    "content",
    [
        None,  # no model.json
        "{not json",
        json.dumps({"kind": "trees", "input": "context_window_features"}),
        json.dumps(
            {
                "kind": "linear",
                "input": "context_window_features",
                "coef": [0.0] * 5,
                "intercept": 0.0,
            }
        ),
        json.dumps(
            {"kind": "linear", "input": "context_window_features", "coef": [0.0] * FEATURES}
        ),
        *(
            json.dumps(
                {
                    "kind": "linear",
                    "input": "context_window_features",
                    "coef": [0.0] * FEATURES,
                    "intercept": 0.0,
                    **side,
                }
            )
            for side in ({}, {"input_side": 100}, {"input_side": "96"}, {"input_side": 1024})
        ),
    ],
)
def test_a_bad_model_file_is_one_model_error_naming_it(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / "model.json").write_text(content)
    with pytest.raises(ModelError) as err:
        load(tmp_path)
    assert str(tmp_path / "model.json") in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"input": "frame_features"},
            "not a pretrained appearance head (kind 'linear' over context window features)",
        ),
        ({"coef": [float("nan")] * FEATURES}, f"coef needs {FEATURES} finite numbers, got shape"),
        ({"intercept": float("inf")}, "intercept is not finite"),
    ],
)
def test_a_bad_model_file_says_what_is_wrong(tmp_path: Path, change: dict, reason: str) -> None:
    good = {"coef": [0.0] * FEATURES, "intercept": 0.0}
    load(_write(tmp_path / "good", good))
    with pytest.raises(ModelError, match=f"model.json: {re.escape(reason)}"):
        load(_write(tmp_path / "bad", {**good, **change}))


def test_the_context_box_is_the_region_grown_by_half_inside_the_frame() -> None:
    rules = read_meta(REPO / "models" / "fight").person_region
    assert rules is not None
    assert context_box((100, 100, 140, 140), (360, 480), rules) == (90, 90, 150, 150)
    # At the frame's edge it shifts inside, not shrinks.
    assert context_box((0, 0, 40, 40), (360, 480), rules) == (0, 0, 60, 60)
    # Never larger than the frame's shorter side.
    x1, y1, x2, y2 = context_box((0, 0, 300, 300), (360, 480), rules)
    assert x2 - x1 == y2 - y1 == 360 and CONTEXT * 300 > 360
    # Whatever the person regions' own pad and least side.
    other = PersonRegion(pad=0.0, min_side=200)
    assert context_box((100, 100, 140, 140), (360, 480), other) == (90, 90, 150, 150)
