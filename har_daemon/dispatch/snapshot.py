"""Which picture goes with an event start: the middle frame of its best-scoring window.

The tracker confirms an activity only after several windows agreed, so the best picture is
the recent window that scored highest for the event's class, and within that window its
middle frame (where the action is), not its newest one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from har_daemon.config import DaemonConfig, SnapshotsConfig
from har_daemon.model.meta import ModelMeta
from har_daemon.outputs.snapshots import BestWindow, encode_snapshot, snapshot_lines
from har_daemon.runtime.cameras import window_seconds
from har_daemon.runtime.events import Transition
from har_daemon.runtime.history import FrameHistory


class EventSnapshots:
    """Remembers recent windows per camera and encodes the JPEG for an event start."""

    def __init__(
        self,
        config: SnapshotsConfig,
        histories: Mapping[str, FrameHistory],
        classes: Sequence[str],
        *,
        window_s: float,
        remembered_windows: int,
    ) -> None:
        self.config = config
        self.histories = histories
        self.classes = list(classes)
        self.window_s = window_s
        self._best = {name: BestWindow(remembered_windows) for name in histories}

    def note_window(self, camera: str, window_end: float, probs: np.ndarray) -> None:
        self._best[camera].add(window_end, probs)

    def forget(self, camera: str) -> None:
        """A stream gap: windows from before it do not show what happens after."""
        self._best[camera].clear()

    def jpeg(
        self,
        camera: str,
        tr: Transition,
        region: list[float] | None,
        wall_offset: float = 0.0,
    ) -> bytes | None:
        """The event's picture, or None when the history holds no frame near it; its caption
        shows the frame's time plus `wall_offset` (frame times never step, captions show the
        wall clock).

        Raises ValueError or OSError when encoding fails.
        """
        best_end = (  # a fall (not a class) is pictured at its transition
            self._best[camera].best(self.classes.index(tr.activity))
            if tr.activity in self.classes
            else None
        )
        aim = (best_end if best_end is not None else tr.at) - self.window_s / 2
        found = self.histories[camera].nearest(aim)
        if found is None:
            return None
        t, frame = found
        s = self.config
        caption = (
            snapshot_lines(t + wall_offset, camera, tr.activity, tr.confidence)
            if s.overlay
            else None
        )
        return encode_snapshot(
            frame, max_width=s.max_width, quality=s.quality, overlay_lines=caption, box=region
        )


def snapshots_for(
    config: DaemonConfig, histories: Mapping[str, FrameHistory | None], meta: ModelMeta
) -> EventSnapshots | None:
    """The daemon's snapshots (None when [snapshots] is off); `histories` per camera."""
    if not config.snapshots.enabled:
        return None
    return EventSnapshots(
        config.snapshots,
        {name: h for name, h in histories.items() if h is not None},
        meta.classes,
        window_s=window_seconds(config, meta),
        remembered_windows=max(config.inference.smoothing_window, 1) + 4,
    )
