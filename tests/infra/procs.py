"""The tests' child-process helpers live in `har_daemon.tools.procs` (the bench uses them too)."""

from har_daemon.tools.procs import (
    LOOPBACK,
    free_port,
    port_accepts,
    start_process,
    stop_process,
    tail,
    wait_until,
)

__all__ = [
    "LOOPBACK",
    "free_port",
    "port_accepts",
    "start_process",
    "stop_process",
    "tail",
    "wait_until",
]
