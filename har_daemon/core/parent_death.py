"""A child process that dies with its parent (Linux), so a SIGKILLed daemon or test run leaves
no ffmpeg or server behind."""

from __future__ import annotations

import ctypes
import signal
import sys


def die_with_parent() -> None:
    """`preexec_fn` for subprocess: SIGKILL this child when the thread that started it ends
    (PR_SET_PDEATHSIG); nothing elsewhere than Linux."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
