"""The decision policy: how window scores become activity events, from the config, once.

The daemon and the offline tools (`predict`, `evaluate-stream`) build their smoothers and
trackers here, so a recording replayed offline raises exactly the events the daemon would.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from har_daemon.config import InferenceConfig
from har_daemon.model.meta import ModelMeta
from har_daemon.runtime.events import ActivityTracker, TrackerConfig
from har_daemon.runtime.smoothing import Smoother, SmoothingMethod


@dataclass(frozen=True)
class DecisionPolicy:
    """Smoothing and the event state machine's thresholds for one model's classes."""

    smoothing: SmoothingMethod
    smoothing_window: int
    ema_alpha: float
    tracker_config: TrackerConfig

    @classmethod
    def from_config(cls, inference: InferenceConfig, background: Collection[str]) -> DecisionPolicy:
        """`background`: the model's background classes (`ModelMeta.background_classes`),
        ignored like the config's `ignore_activities` unless the config alerts on them."""
        ignored = set(inference.ignore_activities) | (
            set(background) - set(inference.alert_activities)
        )
        return cls(
            smoothing=inference.smoothing,
            smoothing_window=inference.smoothing_window,
            ema_alpha=inference.ema_alpha,
            tracker_config=TrackerConfig(
                enter_threshold=inference.enter_threshold,
                exit_threshold=inference.exit_threshold,
                min_windows=inference.min_windows,
                update_interval_s=inference.update_interval_s,
                alert_activities=frozenset(inference.alert_activities) or None,
                ignore_activities=frozenset(ignored),
            ),
        )

    @classmethod
    def for_model(cls, inference: InferenceConfig, meta: ModelMeta) -> DecisionPolicy:
        return cls.from_config(inference, meta.background_classes)

    def with_enter_threshold(self, threshold: float) -> DecisionPolicy:
        """The same policy with a camera's own (calibrated) enter threshold."""
        return replace(self, tracker_config=replace(self.tracker_config, enter_threshold=threshold))

    def check_classes(self, classes: Sequence[str]) -> None:
        """ValueError naming a configured activity the model does not have."""
        self.tracker_config.check_classes(classes)

    def alerting(self, classes: Sequence[str]) -> list[str]:
        """The classes that raise events (the config's empty list means every non-ignored)."""
        return [c for c in classes if self.tracker_config.alerts(c)]

    def smoother(self) -> Smoother:
        return Smoother(self.smoothing, window=self.smoothing_window, alpha=self.ema_alpha)

    def tracker(self, classes: Sequence[str], camera: str | None = None) -> ActivityTracker:
        return ActivityTracker(self.tracker_config, classes, camera=camera)
