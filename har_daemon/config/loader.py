"""`load_config`: the one way the daemon and the CLI read their configuration."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from har_daemon.config.errors import describe_errors
from har_daemon.config.paths import LOADING_FILE
from har_daemon.config.settings import DaemonConfig
from har_daemon.core.errors import ConfigError


def load_config(path: Path | str | None, overrides: dict[str, Any] | None = None) -> DaemonConfig:
    """Read `path` (TOML; None: defaults only), apply HAR_* variables and `overrides`.

    Raises `ConfigError` for a missing or unreadable file, a TOML syntax error (its message
    names the file and line) or invalid values (one line per bad field), so the CLI can print
    it and exit with status 2 instead of a traceback.
    """
    toml_path = None
    if path is not None:
        toml_path = Path(path).expanduser()
        if not toml_path.exists():
            raise ConfigError(f"config file {toml_path} not found")
        if not toml_path.is_file():
            raise ConfigError(f"config path {toml_path} is not a file")
    where = f" in {toml_path}" if toml_path is not None else ""
    token = LOADING_FILE.set(toml_path)
    try:
        return DaemonConfig(**(overrides or {}))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{toml_path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{toml_path}: not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {toml_path}: {exc.strerror or exc}") from None
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration{where}: {exc}") from None
    except ValidationError as exc:
        lines = describe_errors(exc, overrides)
        header = f"invalid configuration{where} ({len(lines)} problem{'s' * (len(lines) > 1)}):"
        raise ConfigError("\n".join([header, *lines])) from None
    finally:
        LOADING_FILE.reset(token)
