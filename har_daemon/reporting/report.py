"""`har-daemon report`: the page (and optionally its screenshot) from an evaluation folder, or
from an `evaluate-stream --report` folder.

Its options are declared in `cli.options`, so building the parser imports nothing of this."""

from __future__ import annotations

import argparse
from pathlib import Path

from har_daemon.reporting import REPORT_FILE
from har_daemon.reporting.inputs import is_stream_folder
from har_daemon.reporting.page import build_report, build_stream_report
from har_daemon.reporting.screenshot import render_screenshot

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """`har-daemon report`: write the page (and optionally its screenshot); print the paths."""
    out = args.out if args.out is not None else Path(args.eval_dir) / REPORT_FILE
    if is_stream_folder(Path(args.eval_dir)):
        written = build_stream_report(Path(args.eval_dir), out, args.title)
    else:
        written = build_report(
            evaluation_dir=args.eval_dir,
            out_path=out,
            model_dir=args.model,
            cv_json=args.cv,
            title=args.title,
            frames=not args.no_frames,
            streams=args.stream,
        )
    print(f"report: {written}")
    if args.screenshot is not None:
        print(f"screenshot: {render_screenshot(written, args.screenshot)}")
    return 0
