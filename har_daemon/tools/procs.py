"""Child processes for test and benchmark services: free ports, a parent-death signal, no leaks.

Every process started here is tracked; an atexit hook kills what is still running when the test
session ends, and on Linux each child also gets PR_SET_PDEATHSIG=SIGKILL, so even a SIGKILLed
pytest leaves nothing behind. (The death signal fires when the *thread* that started the child
exits: start services from the main thread or from a thread that outlives them.)
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from har_daemon.core.parent_death import die_with_parent

LOOPBACK = "127.0.0.1"

_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connection to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start_process(
    cmd: Sequence[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | None = None,
) -> subprocess.Popen:
    """Start `cmd` with stderr (and stdout unless given) appended to `log_path`; tracked."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log if stdout is None else stdout,
            stderr=log,
            env=env,
            cwd=cwd,
            preexec_fn=die_with_parent,
        )
    with _live_lock:
        _live.add(proc)
    return proc


def stop_process(
    proc: subprocess.Popen | None, timeout: float = 10.0, *, kill: bool = False
) -> None:
    """SIGTERM (or SIGKILL when `kill`) `proc`, escalate to SIGKILL after `timeout`, reap it."""
    if proc is None:
        return
    try:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if kill:
                    proc.kill()
                else:
                    proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        with _live_lock:
            _live.discard(proc)


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.05,
    *,
    message: str | Callable[[], str] = "condition not met",
) -> None:
    """Poll `predicate` until true; TimeoutError with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(message() if callable(message) else message)
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """True when a process (not a zombie) with this pid exists."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS) of a live process in MB, None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file, or a note that it does not exist."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return f"({path} does not exist)"


class ServiceProcess:
    """A real program serving tests or benchmarks: one tracked child, a context manager.

    Subclasses start `self._proc` (with `start_process`) in `start()`. Without a `workdir` one
    is made in the temp folder and removed again by `close()`.
    """

    def __init__(self, workdir: str | Path | None, prefix: str) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=prefix)).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Self:
        """Start the program and return once it serves."""
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait; SIGKILL if it does not exit within `timeout`."""
        stop_process(self._proc, timeout)
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: an abrupt death, nothing saved."""
        stop_process(self._proc, kill=True)
        self._proc = None

    def close(self) -> None:
        """Stop; remove the workdir if this object made it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        leftovers = list(_live)
    for proc in leftovers:
        stop_process(proc, timeout=2, kill=True)
