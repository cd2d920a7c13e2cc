from __future__ import annotations

import numpy as np
import pytest

from har_daemon.video.sampling import FrameSampler


@pytest.mark.parametrize(("fps", "spacing"), [(25.0, 0.1), (30.0, 0.1), (25.0, 0.2), (10.0, 0.1)])
def test_samples_at_the_requested_spacing_without_drift(fps: float, spacing: float) -> None:
    sampler = FrameSampler(spacing)
    times = np.arange(0, 60, 1 / fps)
    taken = np.array([t for t in times if sampler.offer(float(t))])
    gaps = np.diff(taken)
    # Mean spacing is exact over a minute (no drift) and each gap is within one frame of it.
    assert np.mean(gaps) == pytest.approx(max(spacing, 1 / fps), rel=0.01)
    assert np.all(np.abs(gaps - max(spacing, 1 / fps)) <= 1 / fps + 1e-9)


def test_gap_restarts_sampling_instead_of_bursting() -> None:
    sampler = FrameSampler(0.1)
    for t in np.arange(0, 1, 0.04):
        sampler.offer(float(t))
    before = sampler.sampled
    taken = [t for t in (5.0, 5.04, 5.08, 5.12, 5.16) if sampler.offer(t)]
    # 5.08 is within half a frame of the 5.1 due time; then 5.2 is due, so 5.16 is not taken.
    assert taken == [5.0, 5.08]
    assert sampler.sampled == before + 2


def test_rejects_non_positive_spacing() -> None:
    with pytest.raises(ValueError):
        FrameSampler(0)
