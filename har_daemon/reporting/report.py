"""`har-daemon report`: the command's arguments, and running it.

This module is imported whenever the CLI builds its parser (for every command, the daemon's
`run` included), so it imports only what the arguments need; the page builder, with jinja2,
matplotlib and OpenCV behind it, is imported when the command runs (`reporting.page`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from har_daemon.core.errors import HarError
from har_daemon.reporting.screenshot import render_screenshot

__all__ = ["REPORT_FILE", "add_arguments", "run"]

REPORT_FILE = "report.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `har-daemon report EVAL_DIR --out report.html [--model DIR] [--cv cv.json]`."""
    parser.add_argument(
        "eval_dir",
        type=Path,
        metavar="EVAL_DIR",
        help="the --report folder of `har-daemon evaluate` (or a model directory)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"HTML file to write (default: EVAL_DIR/{REPORT_FILE})",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model directory for the model card and curves (default: the evaluated one)",
    )
    parser.add_argument("--cv", type=Path, default=None, help="cv.json from `har-daemon cv`")
    parser.add_argument("--title", default=None, help="page title (default: model and data names)")
    parser.add_argument(
        "--no-frames",
        action="store_true",
        help="leave out pictures of the evaluated clips (for data that may not be published)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="PNG",
        help="also render the page with headless Chromium to this PNG (1280x2400)",
    )


def run(args: argparse.Namespace) -> int:
    """`har-daemon report`: write the page (and optionally its screenshot); print the paths."""
    try:
        from har_daemon.reporting.page import build_report  # the command's own dependencies
    except ModuleNotFoundError as exc:
        raise HarError(f"`har-daemon report` needs the Python package {exc.name}") from None
    out = args.out if args.out is not None else Path(args.eval_dir) / REPORT_FILE
    written = build_report(
        evaluation_dir=args.eval_dir,
        out_path=out,
        model_dir=args.model,
        cv_json=args.cv,
        title=args.title,
        frames=not args.no_frames,
    )
    print(f"report: {written}")
    if args.screenshot is not None:
        print(f"screenshot: {render_screenshot(written, args.screenshot)}")
    return 0
