"""resize_frame: the fast "area" path must stay anti-aliased and match exact INTER_AREA closely,
because models trained on exact area are served through it (and it is shared by training)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from har_daemon.model.preprocess import resize_frame, to_model_input
from tests.shared_data import FIGHT_DATA, require


def exact_area(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


def textured_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A camera-like frame: smooth shading, blurred texture and a few hard-edged shapes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 60 + 80 * (xx / w) + 40 * np.sin(yy / h * 6.0)
    noise = cv2.GaussianBlur(rng.normal(0, 40, (h, w)).astype(np.float32), (0, 0), 3)
    frame = np.stack([base + noise, base * 0.8 + noise, base * 1.1 - noise], axis=-1)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    for _ in range(12):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(frame, (x, y), (x + w // 10, y + h // 12), color, thickness=-1)
    cv2.putText(frame, "CAM 01 2026-11-24", (w // 20, h // 10), 0, h / 600, (255, 255, 255), 2)
    return frame


def gratings(h: int, w: int) -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    images = {
        "bars_vertical": (xx % 4 < 2) * 255,
        "bars_horizontal": (yy % 4 < 2) * 255,
        "checkerboard": (yy + xx) % 2 * 255,
    }
    return {k: np.repeat(v.astype(np.uint8)[..., None], 3, axis=2) for k, v in images.items()}


@pytest.mark.parametrize(
    ("h", "w"), [(1080, 1920), (720, 1280), (480, 854), (702, 1280), (479, 853), (360, 640)]
)
def test_area_is_close_to_exact_area_on_camera_like_frames(h: int, w: int) -> None:
    frame = textured_frame(h, w)
    d = abs_diff(resize_frame(frame, (64, 64), "area"), exact_area(frame, (64, 64)))
    assert d.mean() <= 1.2, d.mean()
    assert np.percentile(d, 99) <= 12
    assert d.max() <= 40


def test_area_is_close_to_exact_area_on_real_cctv_frames() -> None:
    videos = sorted(require(FIGHT_DATA).glob("*/*.mp4"))
    frames: dict[int, list[np.ndarray]] = {1080: [], 720: []}
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if height in frames and len(frames[height]) < 6:
            for _ in range(3):
                for _ in range(15):
                    cap.grab()
                ok, frame = cap.read()
                if ok:
                    frames[height].append(frame)
        cap.release()
        if all(len(v) >= 6 for v in frames.values()):
            break
    assert all(frames.values()), "expected 1080p and 720p clips in the fight data"
    for height, batch in frames.items():
        d = np.concatenate(
            [abs_diff(resize_frame(f, (64, 64)), exact_area(f, (64, 64))).ravel() for f in batch]
        )
        # Measured 1.4 (1080p) and 0.4 (720p) mean; a model's output moves by ~1e-3.
        assert d.mean() <= 2.0, (height, d.mean())
        assert np.percentile(d, 99) <= 14, (height, np.percentile(d, 99))


def test_area_equals_exact_area_up_to_rounding_when_blocks_align() -> None:
    frame = textured_frame(1024, 1024, seed=1)  # 64x64 bins of 16 px; 8-px blocks align
    d = abs_diff(resize_frame(frame, (64, 64)), exact_area(frame, (64, 64)))
    assert d.max() <= 2
    assert d.mean() <= 0.6


@pytest.mark.parametrize("name", ["bars_vertical", "bars_horizontal", "checkerboard"])
def test_fine_gratings_stay_flat_grey(name: str) -> None:
    image = gratings(1080, 1920)[name]
    area = resize_frame(image, (64, 64), "area").astype(np.float64)
    exact = exact_area(image, (64, 64)).astype(np.float64)
    assert abs(area.mean() - 127.5) <= 2
    assert area.std() <= max(3.0, exact.std() + 1.0)  # as flat as exact area
    assert np.abs(area - exact).max() <= 10


def test_linear_aliases_on_the_grating_so_the_flatness_check_has_teeth() -> None:
    image = gratings(1080, 1920)["bars_vertical"]
    linear = resize_frame(image, (64, 64), "linear").astype(np.float64)
    assert linear.std() > 50  # moire: columns of 0 and 255


def test_linear_is_cv2_inter_linear() -> None:
    frame = textured_frame(1080, 1920)
    expected = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(resize_frame(frame, (64, 64), "linear"), expected)


@pytest.mark.parametrize("interpolation", ["area", "linear"])
@pytest.mark.parametrize(
    ("src", "dst"),
    [((1080, 1920), (64, 64)), ((1080, 1920), (48, 80)), ((481, 641), (112, 112)),
     ((240, 320), (64, 64)), ((40, 50), (64, 64)), ((1, 1), (64, 64))],
)  # fmt: skip
def test_shape_and_dtype(src: tuple[int, int], dst: tuple[int, int], interpolation: str) -> None:
    frame = textured_frame(*src) if min(src) > 8 else np.full((*src, 3), 77, np.uint8)
    out = resize_frame(frame, dst, interpolation)  # type: ignore[arg-type]
    assert out.shape == (*dst, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous


def test_frames_smaller_than_twice_the_target_get_exact_area() -> None:
    for h, w in [(40, 50), (100, 120), (127, 255), (64, 200)]:
        frame = textured_frame(h, w, seed=h)
        np.testing.assert_array_equal(resize_frame(frame, (64, 64)), exact_area(frame, (64, 64)))


def test_frame_of_target_size_is_returned_as_is() -> None:
    frame = textured_frame(64, 64)
    assert resize_frame(frame, (64, 64)) is frame


def test_greyscale_frames_keep_two_dimensions() -> None:
    frame = cv2.cvtColor(textured_frame(720, 1280), cv2.COLOR_BGR2GRAY)
    out = resize_frame(frame, (64, 64))
    assert out.shape == (64, 64)
    assert abs_diff(out, exact_area(frame, (64, 64))).mean() <= 2.0


def test_to_model_input_scales_and_reorders() -> None:
    frames = np.zeros((2, 4, 4, 3), np.uint8)
    frames[..., 0] = 255  # blue in BGR
    x = to_model_input(frames, "RGB")
    assert x.dtype == np.float32
    assert x[..., 2].max() == pytest.approx(1.0)
    assert x[..., 0].max() == 0.0
