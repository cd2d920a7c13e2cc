"""What must hold before the daemon starts: checked before anything starts, and by check-config;
and what it starts with (`startup_summary`, logged once it runs).

`validate_startup` checks what the configuration itself decides (the model, the cameras, the
activities) and is run by both `run` and `check-config`. `check_environment` checks what the
machine decides (the spool and clip directories are writable, the metrics port is free): it is
check-config's, since at `run` the components meet these conditions as they start (naming the
same reasons) and what already started is released. Every failure is a `ConfigError`: one line,
exit 2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from har_daemon import __version__
from har_daemon.config import DaemonConfig
from har_daemon.core.errors import ConfigError, ModelError
from har_daemon.model.fight_pose import FIGHT_POSE_DIR
from har_daemon.model.fight_pose import load as load_fight_pose
from har_daemon.model.meta import ModelMeta, read_meta
from har_daemon.model.person import PersonDetector
from har_daemon.model.pretrained_head import PRETRAINED_DIR
from har_daemon.model.pretrained_head import load as load_pretrained
from har_daemon.model.registry import resolve_kind
from har_daemon.runtime.capture import check_file_source
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.runtime.recognisers import fall_problem
from har_daemon.runtime.zones import zone_problem
from har_daemon.service.http import MetricsServerError, check_port


def validate_startup(config: DaemonConfig, frame_sizes: bool = False) -> ModelMeta:
    """Every check of the configuration that must pass before anything starts.

    `frame_sizes` (check-config): also refuse file sources whose frames are too small for the
    model. `run` starts without that check: such a camera fails alone, the others go on."""
    meta = read_meta(config.model.path)
    if not config.enabled_cameras:
        raise ConfigError("no enabled camera: add a [[cameras]] entry or pass --source")
    try:
        DecisionPolicy.for_model(config.inference, meta).check_classes(meta.classes)
    except ValueError as exc:
        raise ConfigError(f"inference: {exc}") from None
    for cam in config.enabled_cameras:
        problem = zone_problem(cam, meta) or fall_problem(cam, meta)
        if problem is not None:
            raise ConfigError(f"cameras: {problem}")
        if cam.source_kind == "file":
            check_file_source(str(cam.source), frame_size=frame_sizes)
    if config.inference.pose_fusion:
        try:
            load_fight_pose(config.inference.pose_model or FIGHT_POSE_DIR)
        except ModelError as exc:
            raise ConfigError(f"inference: {exc}") from None
    if config.inference.pretrained_fusion:
        try:
            load_pretrained(config.inference.pretrained_model or PRETRAINED_DIR)
        except ModelError as exc:
            raise ConfigError(f"inference: {exc}") from None
    return meta


def unwritable_reason(directory: Path) -> str | None:
    """Why no file could be created in `directory` (made first if missing), or None.

    Creates nothing that stays: an existing directory gets a temporary file, a missing one is
    judged by its nearest existing parent (a read-only file system says so as root too).
    """
    directory = directory.expanduser()
    if directory.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".har-probe-"):
                return None
        except OSError as exc:
            return exc.strerror or str(exc)
    if directory.exists():
        return "not a directory"
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if os.access(parent, os.W_OK | os.X_OK):
        return None
    try:  # access() says no; the errno says why (read-only file system, permission)
        os.mkdir(directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.rmdir(directory)
    return None


def check_writable(directory: Path, what: str) -> None:
    """Raise `ConfigError` naming `what` when files cannot be created in `directory`."""
    reason = unwritable_reason(directory)
    if reason is not None:
        raise ConfigError(f"{what}: directory {directory} is not writable: {reason}")


def check_environment(config: DaemonConfig, meta: ModelMeta) -> None:
    """The machine's side (check-config): the installed person detector, directories to
    write, the port to listen on."""
    if meta.person_region is not None:
        # Loaded as `run` loads it (a missing, truncated or foreign file fails here), then freed.
        PersonDetector(threads=1, score_threshold=meta.person_region.min_score)
    if config.mqtt.enabled:
        check_writable(config.spool.path, "spool")
    if config.clips.enabled:
        check_writable(config.clips.path, "clips")
    if config.metrics.port:
        try:
            check_port(config.metrics.host, config.metrics.port)
        except MetricsServerError as exc:
            raise ConfigError(f"metrics: {exc}") from None


SANDBOX_DOCS = "docs/operations.md, 'Webcams'"
"""Where the unit's webcam drop-in is described."""


def device_warnings(config: DaemonConfig, dev: Path = Path("/dev")) -> list[str]:
    """Local video devices the systemd unit cannot open as shipped (check-config's warnings).

    The unit's PrivateDevices=yes gives the service a /dev without /dev/video*: a webcam that
    works from a shell fails under the service unless the webcam drop-in is installed.
    """
    out = []
    for cam in config.enabled_cameras:
        if cam.source_kind == "webcam":
            device = dev / f"video{cam.source}"
        elif cam.source_kind == "device":
            device = Path(str(cam.source))
        else:
            continue
        state = "is not present here" if not device.exists() else "is a local device"
        out.append(
            f"camera {cam.name}: {device} {state}; the har-daemon unit's PrivateDevices=yes "
            f"hides /dev/video* unless its webcam drop-in is installed ({SANDBOX_DOCS})"
        )
    return out


def startup_summary(config: DaemonConfig, meta: ModelMeta) -> dict[str, Any]:
    """What the daemon runs with, for its `daemon.start` line (URL credentials masked)."""
    cfg = config
    return {
        "version": __version__,
        "model": meta.name,
        "classes": meta.classes,
        "backend": resolve_kind(cfg.model.backend, cfg.model.path),
        "frame_spacing_s": cfg.model.frame_spacing_s or meta.frame_spacing_s,
        "stride": cfg.model.stride,
        "cameras": [
            {"name": c.name, "source": c.redacted_source, "kind": c.source_kind}
            for c in cfg.enabled_cameras
        ],
        "mqtt": (
            f"{cfg.mqtt.host}:{cfg.mqtt.port} as {cfg.mqtt.effective_client_id}"
            if cfg.mqtt.enabled
            else "disabled"
        ),
        "topic_prefix": cfg.mqtt.topic_prefix,
    }
