"""User-facing errors.

Anything a user can cause (bad path, bad config, bad model) raises `HarError`; the CLI prints its
message as one line and exits with `exit_code`, never with a traceback.
"""

from __future__ import annotations

TRAIN_EXTRA_HINT = "pip install 'har-daemon[train]'"
"""What to install for the training and evaluation tools (TensorFlow, matplotlib, jinja2)."""


class HarError(Exception):
    """An error caused by input the user controls; its message is shown as-is."""

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class VideoError(HarError):
    """A video file or stream cannot be opened or decoded."""


class ModelError(HarError):
    """A model directory is missing, corrupt or inconsistent with its metadata."""


class DataError(HarError):
    """A dataset folder is missing, empty or laid out wrongly."""


class ConfigError(HarError):
    """A configuration file or override is invalid."""
