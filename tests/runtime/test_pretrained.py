"""runtime.pretrained: overlapping windows embed each context crop once; the rules fuse."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.appearance import EMBED_DIM
from har_daemon.model.meta import read_meta
from har_daemon.model.pretrained_head import PretrainedHead, context_box
from har_daemon.runtime.crop_ring import KeptFrames
from har_daemon.runtime.pretrained import CACHE_MAX, PretrainedStage, combine
from tests.shared_data import REPO

RULES = read_meta(REPO / "models" / "fight").person_region
HW = (120, 160)


class RecordingEncoder:
    """Our Encoder interface: each picture's mean brightness as its embedding, and a log."""

    input_side = 16

    def __init__(self) -> None:
        self.pictures: list[np.ndarray] = []

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        self.pictures += images
        return np.array([np.full(EMBED_DIM, im.mean() / 255.0) for im in images], np.float32)


def _kept(first: int, n: int = 20) -> KeptFrames:
    """Frames `first`.. of a camera kept whole; frame k is uniformly k grey, at k * 0.1 s."""
    kept = KeptFrames(frame_hw=HW)
    kept.fit(n, HW[0] * HW[1])
    for i in range(n):
        kept.frame_hw, kept.n = HW, n
        kept.boxes[i], kept.shapes[i], kept.shrinks[i] = (0, 0, HW[1], HW[0]), HW, 1
        kept.times[i] = (first + i) * 0.1
        kept.frame(i)[...] = first + i
    return kept


def _stage(rule: str = "mean") -> tuple[PretrainedStage, RecordingEncoder]:
    assert RULES is not None
    enc = RecordingEncoder()
    coef = np.zeros(3 * EMBED_DIM)
    coef[0] = 1.0  # the logit is the mean embedding's first value: frames' mean grey / 255
    return PretrainedStage(PretrainedHead(coef, 0.0), enc, RULES, 0, rule), enc  # type: ignore[arg-type]


def test_overlapping_windows_embed_each_new_frame_once() -> None:
    stage, enc = _stage()
    region = (40, 30, 80, 70)
    first = stage.score(_kept(0), region)
    assert len(enc.pictures) == stage.embedded == 20
    # The crops are the context square's, at the encoder's side.
    assert enc.pictures[0].shape == (16, 16, 3)
    assert context_box(region, HW, RULES) == (30, 20, 90, 80)
    second = stage.score(_kept(5), region)  # 5 new frames
    assert stage.embedded == 25 and second > first
    # Another region: its own crops.
    stage.score(_kept(5), (0, 0, 40, 40))
    assert stage.embedded == 45
    # The same frames again: nothing embedded, the same score.
    assert stage.score(_kept(5), region) == second and stage.embedded == 45
    # Frames older than the window are forgotten, and the cache stays bounded.
    assert all(t >= 0.5 - 1e-9 for t, _ in stage._cache)
    boxes = {context_box((k, 0, k + 40, 40), HW, RULES) for k in range(0, 100)}
    for k in range(0, 100):
        stage.score(_kept(5), (k, 0, k + 40, 40))
    new = len(boxes - {context_box((0, 0, 40, 40), HW, RULES)})
    assert new * 20 > CACHE_MAX and stage.embedded == 45 + new * 20
    assert len(stage._cache) <= CACHE_MAX + 20
    stage.reset()
    stage.score(_kept(5), region)
    assert stage.embedded == 45 + new * 20 + 20


def test_the_score_follows_the_head_on_the_embeddings() -> None:
    stage, _ = _stage()
    got = stage.score(_kept(100), (40, 30, 80, 70))
    grey = np.mean(np.arange(100, 120)) / 255.0
    assert got == pytest.approx(1 / (1 + np.exp(-grey)), abs=1e-4)


@pytest.mark.parametrize(("rule", "want"), [("mean", 0.5), ("min", 0.2), ("max", 0.8)])
def test_the_rules_fuse_the_fight_score_and_keep_a_distribution(rule: str, want: float) -> None:
    assert combine(rule, 0.8, 0.2) == pytest.approx(want)  # type: ignore[arg-type]
    stage, _ = _stage(rule)
    prob, signal = stage.signal(np.array([0.8, 0.2], np.float32), 0.2)
    assert prob[0] == pytest.approx(want) and prob.sum() == pytest.approx(1.0)
    assert (signal.used, signal.appearance, signal.pretrained) == (
        "pretrained",
        pytest.approx(0.8),
        0.2,
    )
    assert signal.fields()["pretrained_score"] == 0.2 and stage.windows == 1
