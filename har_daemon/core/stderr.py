"""Keep the daemon's stderr one JSON object per line, whoever writes to it.

FFmpeg, OpenCV and LiteRT write their diagnostics straight to file descriptor 2, past Python:
`[tcp @ 0x55d0c8] Connection to tcp://cam:554 failed: Connection refused`, `[ WARN:0@1.3] global
cap.cpp:212 open ...`, `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` A log shipper
that parses one JSON object per line chokes on them. `NativeStderr` points fd 2 at a pipe and
Python's `sys.stderr` at the real stderr; a reader thread turns each line arriving on the pipe into
a `native.log` line (which library, its level, the message with URL credentials masked). A
damaged stream repeats a decoder error per frame, so lines are throttled per kind of message,
with the count of what was held back. Child processes (the clip transcoder) inherit the pipe.

`json_stderr` does the same for Python's own last words: an uncaught exception in a thread or
in the main thread, and warnings, become log lines instead of raw tracebacks.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from har_daemon.core.errors import HarError
from har_daemon.core.logs import LogThrottle, get_logger
from har_daemon.core.redact import redact_text

log = get_logger("native")

EXIT_BUG = 1
"""Exit status after a bug (systemd restarts the service); a user's mistake exits 2."""
MAX_MESSAGE = 2000
"""Characters kept of one native line."""
THROTTLE_EVERY_S = 60.0
THROTTLE_BURST = 5
"""Lines of one kind of message let through per `THROTTLE_EVERY_S`."""

_FFMPEG = re.compile(r"^\[(?P<component>[^\]@]+?) @ (?:0x)?[0-9a-fA-F]+\]\s*(?P<message>.*)$")
_OPENCV = re.compile(r"^\[\s*(?P<level>[A-Z]+):[^\]]*\]\s*(?:global\s+)?(?P<message>.*)$")
_LITERT = re.compile(r"^(?P<level>INFO|WARNING|ERROR|VERBOSE|DEBUG): (?P<message>.*)$")
_LEVELS = {
    "VERBOSE": "debug",
    "DEBUG": "debug",
    "INFO": "info",
    "WARN": "warning",
    "WARNING": "warning",
    "ERROR": "error",
    "FATAL": "error",
}
_VARIABLE = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?")


@dataclass(frozen=True)
class NativeLine:
    """One line a native library wrote, classified."""

    library: str  # "ffmpeg", "opencv", "litert" or "native"
    level: str  # debug, info, warning or error
    message: str
    component: str | None = None  # FFmpeg's context ("tcp", "h264", ...)

    @property
    def kind(self) -> str:
        """The message with its numbers and addresses blanked: what repeats."""
        return f"{self.library}:{self.component}:{_VARIABLE.sub('#', self.message)[:80]}"


def parse_native_line(line: str) -> NativeLine:
    """Which library wrote `line`, at what level, saying what (credentials masked)."""
    text = redact_text(line.strip())[:MAX_MESSAGE]
    m = _FFMPEG.match(text)
    if m:
        return NativeLine("ffmpeg", "warning", m["message"], m["component"].strip())
    m = _OPENCV.match(text)
    if m and m["level"] in _LEVELS:
        return NativeLine("opencv", _LEVELS[m["level"]], m["message"])
    m = _LITERT.match(text)
    if m:
        return NativeLine("litert", _LEVELS[m["level"]], m["message"])
    return NativeLine("native", "warning", text)


class NativeStderr:
    """Captures fd 2 into log lines while running (see the module docstring)."""

    def __init__(self, throttle: LogThrottle | None = None) -> None:
        self.throttle = throttle or LogThrottle(THROTTLE_EVERY_S, burst=THROTTLE_BURST)
        self.lines = 0
        self._saved_fd: int | None = None
        self._python_stderr: TextIO | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._saved_fd is not None:
            return
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._saved_fd = saved
        self._python_stderr = sys.stderr
        sys.stderr = open(  # noqa: SIM115 - closed in stop()
            saved, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
        )
        self._thread = threading.Thread(
            target=self._read, args=(read_fd,), name="native-stderr", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Give fd 2 back; lines already written are logged first."""
        saved, original = self._saved_fd, self._python_stderr
        if saved is None or original is None:
            return
        os.dup2(saved, 2)  # drops the pipe's last writer (unless a child still holds it)
        if self._thread is not None:
            self._thread.join(timeout)
        ours = sys.stderr
        sys.stderr = original
        ours.close()
        os.close(saved)
        self._saved_fd = self._python_stderr = self._thread = None

    def _read(self, fd: int) -> None:
        pending = b""
        with open(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                *lines, pending = re.split(rb"[\r\n]", pending + chunk)
                for raw in lines:
                    self._emit(raw)
                if len(pending) > MAX_MESSAGE * 4:  # a library that never ends its line
                    self._emit(pending)
                    pending = b""
        self._emit(pending)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if not text.strip():
            return
        line = parse_native_line(text)
        self.lines += 1
        held = self.throttle.allow(line.kind)
        if held is None:
            return
        fields: dict[str, Any] = {"library": line.library, "message": line.message}
        if line.component is not None:
            fields["component"] = line.component
        if held:
            fields["suppressed"] = held
        getattr(log, line.level)("native.log", **fields)


def _thread_died(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    log.error(
        "thread.crashed",
        thread=args.thread.name if args.thread is not None else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    log.warning(
        "python.warning",
        category=category.__name__,
        message=str(message),
        at=f"{filename}:{lineno}",
    )


@contextlib.contextmanager
def json_stderr(capture_native: bool = True) -> Iterator[NativeStderr | None]:
    """The daemon's stderr discipline for the block: thread deaths and warnings logged, native
    lines captured if asked. A bug escaping the block is logged and exits 1; a user's mistake
    (`HarError`, `OSError`) passes through for the CLI's one line."""
    saved = threading.excepthook, warnings.showwarning
    threading.excepthook, warnings.showwarning = _thread_died, _warning
    native = NativeStderr() if capture_native else None
    try:
        if native is not None:
            native.start()
        yield native
    except (HarError, OSError, KeyboardInterrupt):
        raise
    except Exception:
        log.critical("daemon.crashed", exc_info=True)
        raise SystemExit(EXIT_BUG) from None
    finally:
        if native is not None:
            native.stop()
        threading.excepthook, warnings.showwarning = saved


@contextlib.contextmanager
def native_stderr_held() -> Iterator[None]:
    """File descriptor 2 into a temporary file while a native library starts up.

    TensorFlow's import prints absl lines (`Could not find cuda drivers on your machine`, oneDNN
    and CPU-feature notes) before any log level applies, even on a machine that never had a GPU.
    What was held is shown only when the block fails, where it may explain why.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
