"""`run` and `check-config`: the daemon, and the checks it would make before starting."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from har_daemon.app import run_daemon
from har_daemon.config import DaemonConfig, load_config
from har_daemon.core.logs import configure_logging
from har_daemon.core.paths import DEMO_CLIP
from har_daemon.core.stderr import json_stderr
from har_daemon.preflight import check_environment, device_warnings, validate_startup

DEFAULT_CAMERA = "demo"


def load_daemon_config(args: argparse.Namespace) -> DaemonConfig:
    """The config file with the command line's overrides.

    `--source` runs that source alone, as one camera (named by `--camera-name`, else after the
    config's first camera, else "demo"): the config's other cameras are not started. Without
    `--source` and without cameras, the bundled clip plays.
    """
    config = load_config(args.config)
    overrides: dict[str, Any] = {}
    if args.source is not None or not config.cameras:
        name = args.camera_name or (config.cameras[0].name if config.cameras else DEFAULT_CAMERA)
        source = args.source if args.source is not None else str(DEMO_CLIP)
        overrides["cameras"] = [{"name": name, "source": source}]
    elif args.camera_name:
        first = config.cameras[0].model_dump()
        first["name"] = args.camera_name
        overrides["cameras"] = [first, *(c.model_dump() for c in config.cameras[1:])]
    if args.no_mqtt:
        overrides["mqtt"] = {**config.mqtt.model_dump(), "enabled": False}
    if overrides:
        config = load_config(args.config, overrides=overrides)
    return config


PRIVATE_UMASK = 0o077
"""What the unit's UMask= gives under systemd, applied outside it too: the spool and clips
(people on camera) are the service user's alone, files 0600 and folders 0700."""


def run(args: argparse.Namespace) -> int:
    config = load_daemon_config(args)
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)  # a stricter umask already set is kept
    configure_logging(config.logging.level, config.logging.json_output)
    with json_stderr(capture_native=config.logging.native_stderr == "capture"):
        return run_daemon(config, out=None if args.quiet else sys.stdout)


def check_config(args: argparse.Namespace) -> int:
    config = load_daemon_config(args)
    # The answer is one printed line; what FFmpeg says about a bad file adds nothing to it.
    configure_logging("error", config.logging.json_output)
    with json_stderr():
        meta = validate_startup(config, frame_sizes=True)
        check_environment(config, meta)
    cams = ", ".join(f"{c.name} ({c.source_kind})" for c in config.enabled_cameras)
    print(
        f"configuration OK: model {meta.name} ({len(meta.classes)} classes), cameras: {cams}, "
        f"mqtt: {config.mqtt.host}:{config.mqtt.port}"
        + ("" if config.mqtt.enabled else " (disabled)")
    )
    for warning in device_warnings(config):
        print(f"har-daemon: warning: {warning}", file=sys.stderr)
    return 0
