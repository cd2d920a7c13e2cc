"""`predict`: a recording through the daemon's own decision path, and the options every
offline command shares (model, backend and thresholds from a config file)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from har_daemon.config import DaemonConfig, load_config
from har_daemon.core.logs import configure_logging
from har_daemon.model.backends import Backend, default_threads
from har_daemon.model.meta import ModelMeta
from har_daemon.model.person import PersonDetector
from har_daemon.model.registry import create_backend
from har_daemon.offline.predict import (
    classify_clip,
    document,
    format_event,
    format_timeline,
    write_annotated,
)
from har_daemon.offline.replay import replay
from har_daemon.runtime.policy import DecisionPolicy


def load(args: argparse.Namespace) -> tuple[DaemonConfig, ModelMeta, Backend]:
    """The config (file, HAR_ variables, then these flags), its model and backend."""
    configure_logging(args.log_level)
    model: dict[str, Any] = {}
    if args.model is not None:
        model["path"] = args.model
    if args.backend is not None:
        model["backend"] = args.backend
    if getattr(args, "stride", None) is not None:
        model["stride"] = args.stride
    config = load_config(args.config)
    if model:
        config = load_config(args.config, overrides={"model": {**_model_section(config), **model}})
    backend = create_backend(config.model.backend, config.model.path)
    return config, backend.meta, backend


def _model_section(config: DaemonConfig) -> dict[str, Any]:
    return config.model.model_dump(exclude_defaults=True)


def predict(args: argparse.Namespace) -> int:
    config, meta, backend = load(args)
    if args.clip:
        detector = (
            PersonDetector(threads=default_threads(), score_threshold=meta.person_region.min_score)
            if meta.person_region is not None
            else None
        )
        alerting = DecisionPolicy.for_model(config.inference, meta).alerting(meta.classes)
        print(json.dumps(classify_clip(args.video, meta, backend, detector, alerting)))
        return 0
    run = replay(args.video, config, meta, backend, camera=args.camera)
    doc = document(args.video, config, meta, run)
    if args.output:
        write_annotated(args.video, args.output, doc)
    if args.events:
        for ev in doc["events"]:
            print(json.dumps(ev) if args.json else format_event(ev))
    else:
        print(json.dumps(doc) if args.json else format_timeline(doc))
    return 0
