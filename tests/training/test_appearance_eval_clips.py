"""scripts/appearance_eval.py on real clips: what it embeds (whole frame, the shipped fight
model's regions of people, their context), which regions teach, the quiet windows, the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_daemon.model.appearance import EMBED_DIM, load_encoder
from har_daemon.model.person import PersonDetector
from har_daemon.offline.clip import person_frames
from har_daemon.training.dataset import ClipRecord
from tests.shared_data import FIGHT_DATA, SHARED_DATA, load_script, require

ae = load_script("appearance_eval")


class Recording:
    """The real encoder, recording the size of every batch of images it is given."""

    def __init__(self) -> None:
        self.encoder = load_encoder()
        self.shapes: list[tuple[int, ...]] = []

    def embed(self, images: np.ndarray) -> np.ndarray:
        self.shapes.append(images.shape)
        return self.encoder.embed(images)


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector(threads=1, score_threshold=ae.RULES.min_score)


@pytest.mark.parametrize("side", [60, 100, 200])
def test_the_context_is_a_wider_square_around_the_region_inside_the_frame(side: int) -> None:
    hw = (240, 320)
    for x1, y1 in ((0, 0), (30, 20), (320 - side, 240 - side)):
        region = (x1, y1, x1 + side, y1 + side)
        cx1, cy1, cx2, cy2 = ae.context_box(region, hw)
        assert cx2 - cx1 == cy2 - cy1 == min(round(side * ae.CONTEXT), 240)
        assert min(cx1, cy1) >= 0 and cx2 <= 320 and cy2 <= 240
        assert cx1 <= x1 and cy1 <= y1 and cx2 >= x1 + side and cy2 >= y1 + side


@pytest.mark.parametrize(("label", "clip"), [("fight", "fi001"), ("noFight", "nofi001")])
def test_a_fight_set_clip_is_embedded_whole_and_per_region_of_the_shipped_model(
    detector: PersonDetector, label: str, clip: str
) -> None:
    path = require(FIGHT_DATA) / label / f"{clip}.mp4"
    enc = Recording()
    z = ae.fight_clip(ClipRecord(path, label, "src"), enc, detector)
    seen = person_frames(path, ae.META, detector)
    r = len(seen.regions)
    assert r >= 1
    assert z["frame"].shape == (ae.T, EMBED_DIM)
    assert z["region"].shape == z["context"].shape == (r, ae.T, EMBED_DIM)
    assert int(z["teach"].sum()) == (1 if label == "fight" else r)
    h, w = seen.frames.shape[1:3]
    assert enc.shapes[0] == (ae.T, h, w, 3)
    sides = [s[1] for s in enc.shapes[1:]]
    for (x1, _, x2, _), reg, ctx in zip(seen.regions, sides[:r], sides[r:], strict=True):
        assert reg == x2 - x1
        assert ctx == min(round(reg * ae.CONTEXT), h, w)
    assert np.isfinite(z["region"].astype(np.float32)).all()


def test_a_quiet_clip_gives_a_window_a_second_each_with_its_own_regions(
    detector: PersonDetector,
) -> None:
    path = require(SHARED_DATA / "quiet") / "intel_store_aisle_detection.gif"
    z = ae.quiet_clip(path, Recording(), detector, ae.create_backend("litert", ae.FIGHT_MODEL))
    n = len(z["frame"])
    assert n >= 30
    ends = z["ends"]
    assert ends[0] == ae.T - 1 and ends[-1] < n
    assert set(np.diff(ends)) == {ae.window_ends(10_000)[1] - ae.window_ends(10_000)[0]}
    assert abs(np.diff(ends)[0] * ae.META.frame_spacing_s - ae.QUIET_STEP_S) < 0.1
    assert len(z["owner"]) == len(z["region"]) == len(z["context"]) == len(z["lrcn"])
    assert len(z["owner"]) > 0 and set(z["owner"]) <= set(range(len(ends)))
    assert ((z["lrcn"] >= 0) & (z["lrcn"] <= 1)).all()


def test_a_clip_too_short_for_a_window_gives_none(detector: PersonDetector) -> None:
    path = require(SHARED_DATA / "quiet") / "intel_people_detection.gif"  # ~1.9 s
    z = ae.quiet_clip(path, Recording(), detector, None)
    assert len(z["ends"]) == 0 and z["region"].shape == (0, ae.T, EMBED_DIM)


def test_the_cache_answers_a_second_time_without_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ae, "CACHE", tmp_path)
    path = require(FIGHT_DATA) / "fight" / "fi001.mp4"
    first = ae._cached(path, "k1", lambda: {"a": np.arange(3)})

    def fail() -> dict[str, np.ndarray]:
        raise AssertionError("extracted again")

    again = ae._cached(path, "k1", fail)
    np.testing.assert_array_equal(first["a"], again["a"])
    assert ae._cached(path, "k2", lambda: {"a": np.zeros(1)})["a"].shape == (1,)
    assert ae.cache_key(path, ["enc", 1]) != ae.cache_key(path, ["enc", 2])
    # Another input side is another cache entry; the file's own keeps the key it always had.
    files = ae.encoder_id("mobilenetv2")
    assert all(name != "side" for name, _ in files)
    assert ae.encoder_id("mobilenetv2", 96) == [*files, ["side", 96]]


def test_the_thumbnail_control_sees_only_colour_and_layout(detector: PersonDetector) -> None:
    left_red = np.zeros((2, 40, 60, 3), np.uint8)
    left_red[:, :, :30, 2] = 255
    e = ae.Thumbnail().embed(left_red)
    assert e.shape == (2, 48)
    cells = e[0].reshape(4, 4, 3)
    assert (cells[:, :2, 2] == 1).all() and not cells[:, 2:].any() and not cells[..., :2].any()
    path = require(SHARED_DATA / "quiet") / "intel_people_detection.gif"
    z = ae.quiet_clip(path, ae.Thumbnail(), detector, None)
    assert z["region"].shape == (0, ae.T, 48) and z["frame"].shape[1] == 48
