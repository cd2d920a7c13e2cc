"""The `har-daemon` command.

`parser` describes every subcommand; the module that runs one is imported only when it runs,
so `--help`, `run` and `check-config` never load TensorFlow, and a command of the `[train]`
extra on a daemon-only install says so in one line. Every user mistake surfaces as a
`HarError`, printed as one line with exit status 2; a traceback here means a bug.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.util import find_spec

from har_daemon.cli.parser import build_parser
from har_daemon.core.errors import TRAIN_EXTRA_HINT, HarError
from har_daemon.core.logs import configure_logging
from har_daemon.core.stderr import json_stderr, native_stderr_held

EXIT_USAGE = 2


def _quiet_frameworks() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")


def _handler(spec: str) -> Callable[..., int]:
    """ "module:function", the module relative to this package unless dotted from the root."""
    module, _, function = spec.partition(":")
    if not module.startswith("har_daemon."):
        module = f"{__name__}.{module}"
    return getattr(importlib.import_module(module), function)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = [name for name in getattr(args, "needs", ()) if find_spec(name) is None]
    if missing:
        print(
            f"har-daemon: error: {args.command} needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed (the daemon alone does not): "
            f"{TRAIN_EXTRA_HINT}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    _quiet_frameworks()
    configure_logging(os.environ.get("HAR_LOG_LEVEL", "info"))
    try:
        if "tensorflow" in getattr(args, "needs", ()):
            with native_stderr_held():  # TensorFlow's start-up notes, GPU or none
                handler = _handler(args.handler)
        else:
            handler = _handler(args.handler)
        if getattr(args, "native_stderr", False):
            with json_stderr():
                return int(handler(args))
        return int(handler(args))
    except HarError as exc:
        print(f"har-daemon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `har-daemon predict ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - interpreter shutdown flushes it
        return 0
    except OSError as exc:
        # Permissions, full disks, missing folders: the user's machine, not our bug.
        print(f"har-daemon: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("har-daemon: interrupted", file=sys.stderr)
        return 130
