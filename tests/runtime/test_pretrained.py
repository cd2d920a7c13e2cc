"""runtime.pretrained: overlapping windows embed each context crop once; the rules fuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from har_daemon.config import DaemonConfig
from har_daemon.model.appearance import EMBED_DIM
from har_daemon.model.meta import read_meta
from har_daemon.model.pretrained_head import PRETRAINED_DIR, PretrainedHead, context_box
from har_daemon.runtime import crop_ring, pretrained
from har_daemon.runtime.cameras import build_cameras
from har_daemon.runtime.crop_ring import KeptFrames
from har_daemon.runtime.events import Signal
from har_daemon.runtime.fight_pose import combine
from har_daemon.runtime.people import iou
from har_daemon.runtime.pretrained import REUSE_IOU, PretrainedStage
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
    return PretrainedStage(PretrainedHead(coef, 0.0, 16), enc, RULES, 0, rule), enc  # type: ignore[arg-type]


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
    # Frames older than the window are forgotten.
    assert all(t >= 0.5 - 1e-9 for t in stage._cache)
    stage.reset()
    stage.score(_kept(5), region)
    assert stage.embedded == 65


def _missing_from(kept: KeptFrames, first: int) -> KeptFrames:
    """`kept` with frames `first`.. kept only in a corner the test region's context misses."""
    for i in range(first, kept.n):
        kept.boxes[i], kept.shapes[i] = (120, 0, 160, 30), (30, 40)
        kept.frame(i)[...] = 0
    return kept


def test_only_the_new_frames_are_cut_and_one_missing_the_region_takes_its_neighbours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stage, enc = _stage()
    region = (40, 30, 80, 70)
    stage.score(_kept(0), region)
    cut: list[int] = []
    real = crop_ring.crop_kept
    monkeypatch.setattr(
        crop_ring, "crop_kept", lambda kept, *a, **k: cut.append(1) or real(kept, *a, **k)
    )
    stage.score(_kept(5), region)  # frames 20..24 new: cut those five, not the window's 20
    assert len(cut) == 5 and stage.embedded == 25
    # The next window's new frames 25..29 all miss the region (the ring kept another corner):
    # they repeat frame 24's crop, which is cached, not new, and is cut again to stand in.
    cut.clear()
    enc.pictures.clear()
    stage.score(_missing_from(_kept(10), 15), region)
    assert stage.embedded == 30 and len(enc.pictures) == 5
    assert [float(p.mean()) for p in enc.pictures] == [24.0] * 5
    assert len(cut) == 5 + 1


def test_an_encoder_at_another_side_than_the_heads_is_refused() -> None:
    assert RULES is not None
    head = PretrainedHead(np.zeros(3 * EMBED_DIM), 0.0, 96)
    with pytest.raises(ValueError, match="encoder runs at 16 px, the head was trained at 96"):
        PretrainedStage(head, RecordingEncoder(), RULES, 0)  # type: ignore[arg-type]


def test_a_region_that_moves_a_little_reuses_its_embeddings() -> None:
    stage, _ = _stage()
    region, near, far = (40, 30, 80, 70), (42, 31, 82, 71), (100, 30, 140, 70)
    box = context_box(region, HW, RULES)
    assert iou(box, context_box(near, HW, RULES)) >= REUSE_IOU
    assert iou(box, context_box(far, HW, RULES)) < REUSE_IOU
    first = stage.score(_kept(0), region)
    assert stage.score(_kept(0), near) == first and stage.embedded == 20
    stage.score(_kept(0), far)
    assert stage.embedded == 40


def test_the_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "CACHE_MAX", 50)
    stage, _ = _stage()
    regions = [(x, y, x + 20, y + 20) for x in (0, 70, 140) for y in (0, 100)]
    boxes = [context_box(r, HW, RULES) for r in regions]
    assert all(iou(a, b) < REUSE_IOU for i, a in enumerate(boxes) for b in boxes[:i])
    for r in regions:
        stage.score(_kept(5), r)
        assert sum(len(v) for v in stage._cache.values()) <= 50 + 20
    assert stage.embedded == 20 * len(regions)


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


def test_the_daemon_runs_the_encoder_at_the_heads_input_side(tmp_path: Path) -> None:
    """build_cameras reads the side from the head: a head trained at 96 gets a 96 encoder."""
    raw = json.loads((PRETRAINED_DIR / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**raw, "input_side": 96}))
    fight = REPO / "models" / "fight"
    config = DaemonConfig(
        model={"path": fight, "backend": "litert"},
        inference={"pretrained_fusion": True, "pretrained_model": tmp_path},
        mqtt={"enabled": False},
        cameras=[{"name": "c", "source": "x.mp4"}],
    )
    cams = build_cameras(
        config, read_meta(fight), config.cameras, on_sampled=lambda _c: None,
        on_status=lambda _c, _o: None, keep_frames=False,
    )  # fmt: skip
    stage = cams["c"].pipeline.pretrained
    assert stage is not None
    assert stage.head.input_side == stage.encoder.input_side == 96


def test_a_box_exactly_reuse_iou_close_reuses_the_closest_cached_embedding() -> None:
    stage, _ = _stage()
    near, far = np.full(EMBED_DIM, 1.0), np.full(EMBED_DIM, 2.0)
    stage._cache[0.5] = [((0, 0, 10, 5), far), ((0, 0, 10, 10), near)]
    assert iou((0, 0, 10, 10), (0, 0, 10, 8)) == REUSE_IOU  # 80 / 100: on the edge, reused
    assert stage._cached(0.5, (0, 0, 10, 8)) is near
    assert stage._cached(0.5, (0, 0, 10, 5)) is far
    assert stage._cached(0.5, (0, 0, 10, 7)) is None  # 0.71 and 0.7
    assert stage._cached(0.6, (0, 0, 10, 10)) is None  # another frame's boxes do not count


def test_a_full_cache_forgets_its_oldest_frames_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "CACHE_MAX", 3)
    stage, _ = _stage()
    e = np.zeros(EMBED_DIM)
    box = (0, 0, 10, 10)
    stage._cache = {0.0: [(box, e)], 0.1: [(box, e), (box, e)]}
    stage._forget(0.0)  # exactly CACHE_MAX: all kept, the frame at `oldest` too
    assert sorted(stage._cache) == [0.0, 0.1]
    stage._cache[0.2] = [(box, e)]
    stage._forget(0.0)
    assert sorted(stage._cache) == [0.1, 0.2]
    stage._forget(0.15)  # older than the window: gone whatever the size
    assert sorted(stage._cache) == [0.2]


def test_each_window_is_counted_and_says_no_pose_spoke() -> None:
    stage, _ = _stage()
    for _ in range(2):
        _, signal = stage.signal(np.array([0.8, 0.2], np.float32), 0.2)
    assert signal == Signal("pretrained", pytest.approx(0.8), None, 0, 0.2)
    assert stage.windows == 2


def test_a_window_fused_with_pose_too_keeps_both_appearance_scores() -> None:
    own = Signal("pretrained", 0.8, None, 0, 0.3)
    spoke = PretrainedStage.with_pose(Signal("pose", 0.5, 0.9, 2), own)
    assert spoke == Signal("pose", 0.8, 0.9, 2, 0.3)
    silent = PretrainedStage.with_pose(Signal("appearance", 0.5, None, 1), own)
    assert silent == Signal("pretrained", 0.8, None, 1, 0.3)


def test_an_encoder_giving_another_number_of_embeddings_is_an_error() -> None:
    stage, enc = _stage()
    real = enc.embed
    enc.embed = lambda images: np.concatenate([real(images), real(images[:1])])  # type: ignore[method-assign]
    with pytest.raises(ValueError, match="zip"):
        stage.score(_kept(0), (40, 30, 80, 70))
