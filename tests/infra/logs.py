"""Capturing the daemon's structlog events in tests."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import structlog
from structlog.testing import capture_logs as _capture_logs


@contextlib.contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """structlog's capture_logs at debug level, whatever level an earlier test configured."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with _capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
