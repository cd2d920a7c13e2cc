"""The `har-daemon` command.

Heavy modules (TensorFlow above all, seconds to import) are imported inside each subcommand so
that `--help` and `check-config` answer at once. Every user mistake surfaces as a `HarError`,
printed as one line with exit status 2; a traceback here means a bug in har-daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from har_daemon import __version__
from har_daemon.core.errors import HarError
from har_daemon.core.paths import DEMO_CLIP, DEMO_MODEL_DIR

if TYPE_CHECKING:
    from har_daemon.training.train import TrainOptions


def _quiet_frameworks() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")


ALL_CLASSES = "all"


def _classes_arg(value: str) -> list[str] | str:
    if value.strip().lower() == ALL_CLASSES:
        return ALL_CLASSES
    names = [c.strip() for c in value.split(",") if c.strip()]
    if len(names) < 2:
        raise argparse.ArgumentTypeError("give at least two class names, comma-separated")
    return names


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return x


def _fraction(value: str) -> float:
    x = _positive_float(value)
    if x >= 1:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return x


def _train_classes(value: list[str] | str | None) -> Sequence[str] | None:
    """--classes: the paper's four by default, every folder with 'all', or the names given."""
    from har_daemon.training.train import PAPER_CLASSES

    if value is None:
        return PAPER_CLASSES
    return None if value == ALL_CLASSES else value


def _train_options(args: argparse.Namespace, out_dir: Path, **extra: Any) -> TrainOptions:
    """The TrainOptions that `train` and `cv` share, from their common flags."""
    from har_daemon.training.train import TrainOptions

    return TrainOptions(
        data_dir=args.data,
        out_dir=out_dir,
        classes=_train_classes(args.classes),
        architecture=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        validation_fraction=args.validation_fraction,
        patience=args.patience,
        learning_rate=args.learning_rate,
        workers=args.workers,
        cache_dir=args.cache_dir,
        name=args.name,
        augment=args.augment,
        class_weight=args.class_weight,
        alert_class=args.alert_class,
        input_transform=args.input.replace("-", "_"),
        **extra,
    )


# --- subcommands -----------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from har_daemon.training.train import train

    result = train(
        _train_options(args, args.out, split=args.split, test_fraction=args.test_fraction)
    )
    t = result.meta.training
    print(
        f"trained {result.meta.architecture} on {t['clips']['train']} clips "
        f"({t['clips']['validation']} validation, {t['clips']['test']} test, {args.split} split), "
        f"{t['epochs_run']} epochs, best epoch {t['best_epoch']}"
    )
    if result.test_report:
        r = result.test_report
        print(
            f"held-out test: accuracy {r['accuracy']:.3f}, F1 micro {r['micro']['f1']:.3f}, "
            f"F1 macro {r['macro']['f1']:.3f} on {r['n_samples']} clips"
        )
    if result.threshold_report:
        r, a = result.threshold_report, t["alert_threshold"]
        c = r["per_class"][a["class"]]
        print(
            f"at the validation-chosen threshold {a['threshold']:.3f} for {a['class']}: "
            f"accuracy {r['accuracy']:.3f}, F1 macro {r['macro']['f1']:.3f}, "
            f"{a['class']} precision {c['precision']:.3f} recall {c['recall']:.3f}"
        )
    print(f"model directory: {result.model_dir}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from har_daemon.training.cv import CV_FILE, cross_validate, format_table

    cv = cross_validate(
        _train_options(args, args.report),
        folds=args.folds,
    )
    print(format_table(cv))
    print(f"report: {args.report / CV_FILE}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from har_daemon.training.evaluate import evaluate

    report = evaluate(
        args.model,
        args.data,
        args.report,
        split=args.split,
        workers=args.workers,
        cache_dir=args.cache_dir,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"accuracy {report['accuracy']:.3f}  precision/recall/F1 micro "
        f"{report['micro']['precision']:.3f}/{report['micro']['recall']:.3f}/"
        f"{report['micro']['f1']:.3f}  macro {report['macro']['precision']:.3f}/"
        f"{report['macro']['recall']:.3f}/{report['macro']['f1']:.3f}  "
        f"on {report['n_samples']} clips"
    )
    print(f"{'class':<20}{'TP':>5}{'FP':>5}{'FN':>5}{'TN':>5}{'prec':>7}{'recall':>7}{'F1':>7}")
    for name, c in report["per_class"].items():
        print(
            f"{name:<20}{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}{c['tn']:>5}"
            f"{c['precision']:>7.3f}{c['recall']:>7.3f}{c['f1']:>7.3f}"
        )
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} unreadable clips (see metrics.json)")
    print(f"report: {args.report}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from har_daemon.model.keras.store import load_model_dir
    from har_daemon.offline.predict import (
        classify_clip,
        format_timeline,
        predict_video,
        write_annotated,
    )

    loaded = load_model_dir(args.model)
    if args.clip:
        print(json.dumps(classify_clip(loaded, args.video)))
        return 0
    doc = predict_video(loaded, args.video, stride=args.stride, min_confidence=args.min_confidence)
    if args.output:
        write_annotated(args.video, args.output, doc, loaded.meta.classes)
    print(json.dumps(doc) if args.json else format_timeline(doc))
    return 0


def cmd_import_model(args: argparse.Namespace) -> int:
    from har_daemon.model.keras.store import import_keras2_h5

    loaded = import_keras2_h5(
        args.h5,
        args.classes,
        args.out,
        frame_spacing_s=args.frame_spacing,
        resize_interpolation=args.interpolation,
        color_order=args.color_order,
    )
    print(
        f"imported {args.h5} -> {args.out}: classes {', '.join(loaded.meta.classes)}, "
        f"input {loaded.meta.input_shape}, frame spacing {loaded.meta.frame_spacing_s:g} s"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from har_daemon.model.keras.export import export_tflite

    print(f"wrote {export_tflite(args.model_dir)}")
    return 0


def cmd_synth_data(args: argparse.Namespace) -> int:
    from har_daemon.training.synth import PAPER_CLASSES, generate_dataset

    classes = PAPER_CLASSES if args.classes in (None, ALL_CLASSES) else tuple(args.classes)
    paths = generate_dataset(
        args.out,
        classes=classes,
        groups=args.groups,
        clips_per_group=args.clips_per_group,
        seed=args.seed,
    )
    print(f"wrote {len(paths)} clips of {len(classes)} classes to {args.out}")
    return 0


def _load_daemon_config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from har_daemon.config import load_config

    overrides: dict = {}
    config = load_config(args.config)
    if args.source is not None or not config.cameras:
        source = args.source if args.source is not None else str(DEMO_CLIP)
        first = config.cameras[0].model_dump() if config.cameras else {}
        first.update({"name": args.camera_name or first.get("name") or "demo", "source": source})
        if args.source is None and not config.cameras:
            first.setdefault("realtime", True)
        cameras = [first, *(c.model_dump() for c in config.cameras[1:])]
        overrides["cameras"] = cameras
    elif args.camera_name:
        first = config.cameras[0].model_dump()
        first["name"] = args.camera_name
        overrides["cameras"] = [first, *(c.model_dump() for c in config.cameras[1:])]
    if args.no_mqtt:
        overrides["mqtt"] = {**config.mqtt.model_dump(), "enabled": False}
    if overrides:
        config = load_config(args.config, overrides=overrides)
    return config


def cmd_run(args: argparse.Namespace) -> int:
    from har_daemon.app import run_daemon
    from har_daemon.core.logs import configure_logging

    config = _load_daemon_config(args)
    configure_logging(config.logging.level, config.logging.json_output)
    return run_daemon(config, out=None if args.quiet else sys.stdout)


def cmd_check_config(args: argparse.Namespace) -> int:
    from har_daemon.app import validate_startup

    config = _load_daemon_config(args)
    meta = validate_startup(config)
    cams = ", ".join(f"{c.name} ({c.source_kind})" for c in config.enabled_cameras)
    print(
        f"configuration OK: model {meta.name} ({len(meta.classes)} classes), cameras: {cams}, "
        f"mqtt: {config.mqtt.host}:{config.mqtt.port}"
        + ("" if config.mqtt.enabled else " (disabled)")
    )
    return 0


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="har-daemon",
        description="Real-time human-activity recognition: train, evaluate, predict, serve.",
    )
    p.add_argument("--version", action="version", version=f"har-daemon {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model on a UCF50-layout folder of clips")
    t.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    t.add_argument("--out", type=Path, required=True, help="model directory to write")
    t.add_argument(
        "--classes",
        type=_classes_arg,
        default=None,
        help="comma-separated class folders, or 'all' "
        "(default: the paper's HorseRace,Biking,Swing,PizzaTossing)",
    )
    t.add_argument("--arch", choices=["convlstm", "lrcn"], default="convlstm")
    t.add_argument("--epochs", type=_positive_int, default=50)
    t.add_argument("--batch-size", type=_positive_int, default=4)
    t.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    t.add_argument("--patience", type=_positive_int, default=10, help="early-stopping patience")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--split",
        choices=["group", "random"],
        default="group",
        help="group: whole gNN groups held out (default); random: the paper's clip-level split, "
        "which puts one actor's clips on both sides and overstates accuracy",
    )
    t.add_argument("--test-fraction", type=_fraction, default=0.2)
    t.add_argument("--validation-fraction", type=_fraction, default=0.2)
    t.add_argument("--name", help="model name recorded in model.json")
    _extra_train_opts(t)
    _data_opts(t)
    t.set_defaults(func=cmd_train)

    cv = sub.add_parser(
        "cv", help="grouped k-fold cross-validation: one training per fold, mean +- std"
    )
    cv.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    cv.add_argument("--report", type=Path, required=True, help="folder for cv.json and fold models")
    cv.add_argument("--folds", type=_folds, default=5, help="number of folds (default 5)")
    cv.add_argument(
        "--classes",
        type=_classes_arg,
        default=None,
        help="comma-separated class folders, or 'all' (default: the paper's four classes)",
    )
    cv.add_argument("--arch", choices=["convlstm", "lrcn"], default="convlstm")
    cv.add_argument("--epochs", type=_positive_int, default=50)
    cv.add_argument("--batch-size", type=_positive_int, default=4)
    cv.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    cv.add_argument("--patience", type=_positive_int, default=10, help="early-stopping patience")
    cv.add_argument("--seed", type=int, default=0, help="seeds training and the fold assignment")
    cv.add_argument("--validation-fraction", type=_fraction, default=0.2)
    cv.add_argument("--name", help="model name prefix for the fold models")
    _extra_train_opts(cv)
    _data_opts(cv)
    cv.set_defaults(func=cmd_cv)

    e = sub.add_parser("evaluate", help="score a model on labelled clips; write metrics and plots")
    e.add_argument("--model", type=Path, required=True, help="model directory")
    e.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    e.add_argument("--report", type=Path, required=True, help="folder for metrics.json and PNGs")
    e.add_argument(
        "--split",
        choices=["all", "test"],
        default="all",
        help="all clips (default) or only the clips held out when the model was trained",
    )
    e.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    _data_opts(e)
    e.set_defaults(func=cmd_evaluate)

    rp = sub.add_parser(
        "report", help="one self-contained HTML page from an evaluation (and a cv.json)"
    )
    from har_daemon.reporting import report

    report.add_arguments(rp)
    rp.set_defaults(func=report.run)

    bn = sub.add_parser(
        "bench",
        help="speed, streams in real time, latency and memory, against model.predict in one run",
    )
    from har_daemon.tools import bench as benchmark

    benchmark.add_arguments(bn)
    bn.set_defaults(func=benchmark.run)

    pr = sub.add_parser("predict", help="timeline of activities in a video file")
    pr.add_argument("video", type=Path)
    pr.add_argument("--model", type=Path, default=DEMO_MODEL_DIR, help="model directory")
    pr.add_argument("--output", type=Path, help="write the video with labels drawn on it (.mp4)")
    pr.add_argument("--json", action="store_true", help="print one JSON document")
    pr.add_argument(
        "--clip",
        action="store_true",
        help="classify the whole file as one clip, sampled exactly as in training",
    )
    pr.add_argument(
        "--stride", type=_positive_int, default=5, help="sampled frames per window step"
    )
    pr.add_argument("--min-confidence", type=float, default=0.5)
    pr.set_defaults(func=cmd_predict)

    im = sub.add_parser("import-model", help="turn a Keras 2 .h5 (tutorial code) into a model dir")
    im.add_argument("h5", type=Path)
    im.add_argument("--classes", type=_classes_arg, required=True, help="names in output order")
    im.add_argument("--out", type=Path, required=True)
    im.add_argument(
        "--frame-spacing",
        type=_positive_float,
        default=0.2,
        help="seconds between the frames the model was trained on (tutorial: clip length / 20; "
        "UCF50 clips average about 4 s, hence 0.2)",
    )
    im.add_argument("--interpolation", choices=["linear", "area"], default="linear")
    im.add_argument("--color-order", choices=["BGR", "RGB"], default="BGR")
    im.set_defaults(func=cmd_import_model)

    ex = sub.add_parser(
        "export", help="write model.tflite (LiteRT, builtin ops only) beside a model's Keras file"
    )
    ex.add_argument("model_dir", type=Path)
    ex.set_defaults(func=cmd_export)

    sd = sub.add_parser("synth-data", help="write synthetic clips in the UCF50 folder layout")
    sd.add_argument("--out", type=Path, required=True)
    sd.add_argument("--classes", type=_classes_arg, default=None)
    sd.add_argument("--groups", type=_positive_int, default=6)
    sd.add_argument("--clips-per-group", type=_positive_int, default=3)
    sd.add_argument("--seed", type=int, default=0)
    sd.set_defaults(func=cmd_synth_data)

    for name, func, helptext in (
        ("run", cmd_run, "run the daemon (defaults: bundled model on the bundled clip)"),
        ("check-config", cmd_check_config, "validate a config and its model without starting"),
    ):
        r = sub.add_parser(name, help=helptext)
        r.add_argument("--config", type=Path, help="TOML file (see config.example.toml)")
        r.add_argument("--source", help="override the first camera's source (file, URL, index)")
        r.add_argument("--camera-name", help="override the first camera's name")
        r.add_argument("--no-mqtt", action="store_true", help="do not connect to a broker")
        if name == "run":
            r.add_argument("--quiet", action="store_true", help="do not print events on stdout")
        r.set_defaults(func=func)
    return p


def _folds(value: str) -> int:
    n = _positive_int(value)
    if n < 2:
        raise argparse.ArgumentTypeError(f"{value}: cross-validation needs at least 2 folds")
    return n


def _extra_train_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--augment",
        action="store_true",
        help="augment training clips (flip, crop, brightness/contrast, frame timing)",
    )
    p.add_argument(
        "--class-weight",
        choices=["none", "balanced"],
        default="none",
        help="balanced: weigh each class n / (k * count) in the training loss (default none)",
    )
    p.add_argument(
        "--alert-class",
        help="two-class models: choose this class's probability threshold on the validation "
        "set (max F1) and report test metrics at it as well as at argmax",
    )
    p.add_argument(
        "--input",
        choices=["frames", "frame-diff"],
        default="frames",
        help="frames: the paper's scaled frames; frame-diff: the change between consecutive "
        "frames, which removes the static background (recorded in model.json, applied when "
        "serving)",
    )


def _data_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=_positive_int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--cache-dir", type=Path, help="where extracted frames are cached")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_frameworks()
    from har_daemon.core.logs import configure_logging

    configure_logging(os.environ.get("HAR_LOG_LEVEL", "info"))
    try:
        return int(args.func(args))
    except HarError as exc:
        print(f"har-daemon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        # Permissions, full disks, missing folders: the user's machine, not our bug.
        print(f"har-daemon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("har-daemon: interrupted", file=sys.stderr)
        return 130
