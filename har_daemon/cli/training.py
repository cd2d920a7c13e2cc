"""`train` and `cv`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from har_daemon.cli.args import ALL_CLASSES
from har_daemon.core.errors import DataError
from har_daemon.training.cv import CV_FILE, cross_validate, format_table
from har_daemon.training.dataset import PAPER_CLASSES
from har_daemon.training.train import TrainOptions
from har_daemon.training.train import train as train_model


def _train_classes(value: list[str] | str | None) -> Sequence[str] | None:
    """--classes: the paper's four by default, every folder with 'all', or the names given."""
    if value is None:
        return PAPER_CLASSES
    return None if value == ALL_CLASSES else value


def _train_options(args: argparse.Namespace, out_dir: Path, **extra: Any) -> TrainOptions:
    """The TrainOptions that `train` and `cv` share, from their common flags."""
    if args.augment_distant > 0 and not args.augment:
        raise DataError("--augment-distant needs --augment (it is one of its transforms)")
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
        augment_distant_p=args.augment_distant,
        class_weight=args.class_weight,
        alert_class=args.alert_class,
        input_transform=args.input.replace("-", "_"),
        input_region=args.input_region,
        eval_backend=args.backend,
        **extra,
    )


# --- subcommands -----------------------------------------------------------------------------


def train(args: argparse.Namespace) -> int:
    result = train_model(
        _train_options(
            args,
            args.out,
            split=args.split,
            test_fraction=args.test_fraction,
            extra_train_dir=args.extra_train,
        )
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


def cv(args: argparse.Namespace) -> int:
    cv = cross_validate(
        _train_options(args, args.report),
        folds=args.folds,
    )
    print(format_table(cv))
    print(f"report: {args.report / CV_FILE}")
    return 0
