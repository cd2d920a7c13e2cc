"""Event settings for a false-alert budget: the re-run tracker is the daemon's, and the choice
follows the budget before recall."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_daemon.config import load_config
from har_daemon.core.paths import DEMO_CLIP, DEMO_MODEL_DIR
from har_daemon.model.registry import create_backend
from har_daemon.offline.matching import AlertEvent, TruthInterval, match_events
from har_daemon.offline.replay import replay
from har_daemon.offline.stream_eval import alerts_from
from har_daemon.offline.streams import StreamClip, Stretch, build_stream
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.tools.media import make_test_video
from har_daemon.training.alert_policy import Outcome, Setting, choose, grid, record, resimulate


@pytest.fixture(scope="module")
def spliced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo clip (four activities, 6 s each) with a test pattern spliced in twice: scene
    cuts restart the ring, so windows go missing there and the tracker is finished."""
    d = tmp_path_factory.mktemp("spliced")
    pattern = make_test_video(d / "pattern.mp4", 2.5, fps=25, size=(320, 240))
    demo = StreamClip(DEMO_CLIP, "demo", "demo")
    cut = StreamClip(pattern, "pattern", "pattern")
    plan = [Stretch((demo,), None), Stretch((cut,), None), Stretch((demo,), None)]
    return build_stream(plan, d / "stream.mp4", size=(320, 240), fps=25).video


def test_resimulated_alerts_are_the_ones_the_daemon_raises(spliced: Path) -> None:
    base = load_config(None)
    backend = create_backend("litert", DEMO_MODEL_DIR)
    meta = backend.meta
    compared = 0
    for window in (1, 3):
        run = replay(spliced, Setting(window, 0.5, 1, 0.4).config(base), meta, backend)
        assert run.cuts >= 2
        rec = record(run, [])
        for setting in (
            Setting(window, 0.5, 1, 0.4),
            Setting(window, 0.8, 2, 0.4),
            Setting(window, 0.95, 3, 0.6),
        ):
            config = setting.config(base)
            daemon = alerts_from(replay(spliced, config, meta, backend).transitions)
            again = resimulate(rec, DecisionPolicy.from_config(config.inference, rec.background))
            assert again == daemon, setting
            compared += len(daemon)
    assert compared >= 6  # the demo's activities do raise alerts


def test_a_scene_cut_ends_the_open_alert_at_the_last_window_before_it(spliced: Path) -> None:
    base = load_config(None)
    backend = create_backend("litert", DEMO_MODEL_DIR)
    run = replay(spliced, Setting(1, 0.5, 1, 0.4).config(base), backend.meta, backend)
    assert run.cuts == 2
    alerts = alerts_from(run.transitions)
    joins = (24.0, 26.5)  # the demo clip is 24 s, the pattern 2.5 s
    assert any(a.start_s < joins[0] for a in alerts)
    for a in alerts:
        end = a.end_s if a.end_s is not None else run.duration_s
        assert not any(a.start_s < join < end for join in joins), (a, joins)
    windows = [w.window_end for w in run.windows]
    before = max(t for t in windows if t < joins[0])
    assert any(a.end_s == before for a in alerts), "ended at the last window before the cut"


def _outcome(setting: Setting, false: int, found: int, delays: list[float]) -> Outcome:
    truth = [TruthInterval(100.0 * i + 10, 100.0 * i + 20, "fight") for i in range(3)]
    alerts = [AlertEvent(truth[i].start_s + d, truth[i].start_s + d + 1, "fight") for i, d in
              zip(range(found), delays, strict=True)]  # fmt: skip
    alerts += [AlertEvent(50.0 + 100 * k, 51.0 + 100 * k, "fight") for k in range(false)]
    figures = match_events(truth, alerts, 360.0)
    return Outcome(setting, figures, figures.overall.quiet_s)


def test_the_budget_comes_first_then_incidents_found_then_speed_then_caution() -> None:
    eager = _outcome(Setting(1, 0.5, 1, 0.4), false=1, found=3, delays=[1, 1, 1])
    slow = _outcome(Setting(3, 0.8, 2, 0.4), false=0, found=3, delays=[3, 3, 3])
    fast = _outcome(Setting(2, 0.7, 2, 0.4), false=0, found=3, delays=[2, 2, 2])
    twin = _outcome(Setting(2, 0.9, 2, 0.4), false=0, found=3, delays=[2, 2, 2])
    blind = _outcome(Setting(3, 0.98, 3, 0.4), false=0, found=1, delays=[1])
    options = [eager, slow, fast, twin, blind]
    assert choose(options) is twin  # within budget, all found, fastest, the more cautious
    assert choose(options, budget_per_hour=20.0) is eager  # one false alert in 330 s is ~11/h
    over = [eager, _outcome(Setting(1, 0.6, 1, 0.4), false=2, found=3, delays=[1, 1, 1])]
    assert choose(over) is eager  # none within budget: the fewest false alerts
    assert eager.false_alerts_per_quiet_hour == pytest.approx(3600 / 330)
    with pytest.raises(ValueError):
        choose([])


def test_the_grid_keeps_the_exit_threshold_below_the_enter_threshold() -> None:
    settings = grid(enter_thresholds=(0.45, 0.9), exit_threshold=0.4)
    assert len(settings) == 2 * 3 * 3
    assert all(s.exit_threshold < s.enter_threshold for s in settings)
    assert {s.exit_threshold for s in settings} == {0.35, 0.4}
    config = Setting(2, 0.9, 3, 0.4).config(load_config(None))
    assert (config.inference.smoothing, config.inference.smoothing_window) == ("mean", 2)
    assert (config.inference.enter_threshold, config.inference.min_windows) == (0.9, 3)
