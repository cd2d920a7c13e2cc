"""Where configured files are looked for: the state directory, relative model and clip paths.

A service's working directory is rarely where its config or its models live, so a relative
model path, or a relative file source that is not in the working directory, is looked up beside
the config file being loaded (`LOADING_FILE`, set by `load_config` for the duration of one
load), then among the bundled files (`models/demo/sample.mp4`).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from pathlib import Path

from har_daemon.core.paths import bundled

LOADING_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "har_config_file", default=None
)
"""The TOML file `load_config` is reading (None: defaults and environment only)."""


def default_state_dir(*, env: Mapping[str, str] | None = None) -> Path:
    """$STATE_DIRECTORY (set by systemd's StateDirectory=; its first entry), else
    $XDG_STATE_HOME/har-daemon, else ~/.local/state/har-daemon."""
    env = os.environ if env is None else env
    state = env.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "har-daemon"
    return Path.home() / ".local" / "state" / "har-daemon"


def resolve_relative(path: Path) -> Path:
    """An absolute `path` as is; a relative one beside the config file, else among the bundled
    files, else as given (reported later, when the file is opened)."""
    if path.is_absolute():
        return path
    config_file = LOADING_FILE.get()
    bases = [config_file.parent] if config_file is not None else []
    for candidate in [*(base / path for base in bases), bundled(path)]:
        if candidate.exists():
            return candidate
    return path
