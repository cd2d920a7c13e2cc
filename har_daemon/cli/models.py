"""`import-model` and `export`."""

from __future__ import annotations

import argparse

from har_daemon.model.keras.export import export_tflite
from har_daemon.model.keras.store import import_keras2_h5


def import_model(args: argparse.Namespace) -> int:
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


def export(args: argparse.Namespace) -> int:
    print(f"wrote {export_tflite(args.model_dir)}")
    return 0
