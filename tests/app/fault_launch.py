"""Runs the real `har-daemon` CLI in this process with a fault injected first (tests only).

`python -m tests.app.fault_launch [OPTIONS] -- PYTHON -m har_daemon run --config F`: the part
after `--` is the command `DaemonPool` would have run; it runs in-process after the patches.

- `--wall-step-at S --wall-step-by D`: S seconds after start the wall clock (`time.time`, which
  the daemon's `Clock` reads at each call) jumps by D seconds, as NTP or `date -s` would make
  it. The system clock is not touched.
- `--crash-inference-after N`: the inference thread raises after N rounds (a bug in a component).

The daemon's modules are imported inside the functions on purpose: after the clock is patched.
"""

from __future__ import annotations

import argparse
import sys
import time

_real_time = time.time


def _step_wall_clock(at_s: float, by_s: float) -> None:
    start = time.monotonic()

    def stepped() -> float:
        return _real_time() + (by_s if time.monotonic() - start >= at_s else 0.0)

    time.time = stepped


def _crash_inference_after(rounds: int) -> None:
    from har_daemon.runtime.inference import InferenceScheduler

    run_once = InferenceScheduler.run_once
    calls = [0]

    def failing(self: InferenceScheduler) -> int:
        if self.name == "inference" and self.is_alive() and calls[0] >= rounds:
            raise RuntimeError("injected fault: the inference thread dies")
        calls[0] += 1
        return run_once(self)

    InferenceScheduler.run_once = failing  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    split = argv.index("--")
    p = argparse.ArgumentParser(prog="fault_launch")
    p.add_argument("--wall-step-at", type=float, default=None)
    p.add_argument("--wall-step-by", type=float, default=0.0)
    p.add_argument("--crash-inference-after", type=int, default=None)
    opts = p.parse_args(argv[:split])
    command = argv[split + 1 :]
    assert command[1:3] == ["-m", "har_daemon"], command
    if opts.wall_step_at is not None:
        _step_wall_clock(opts.wall_step_at, opts.wall_step_by)  # before the daemon's imports
    if opts.crash_inference_after is not None:
        _crash_inference_after(opts.crash_inference_after)
    from har_daemon.cli import main as har_main

    return har_main(command[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
