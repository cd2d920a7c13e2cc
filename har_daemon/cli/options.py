"""Options of the commands whose modules are heavy (report, bench), declared here so that
building the parser imports none of them."""

from __future__ import annotations

import argparse
from pathlib import Path

from har_daemon.cli.args import (
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from har_daemon.core.paths import DEMO_MODEL_DIR
from har_daemon.reporting import REPORT_FILE


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """Arguments of `har-daemon report EVAL_DIR --out report.html [--model DIR] [--cv cv.json]`."""
    parser.add_argument(
        "eval_dir",
        type=Path,
        metavar="EVAL_DIR",
        help="the --report folder of `har-daemon evaluate` (or a model directory), or of "
        "`har-daemon evaluate-stream`",
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
    parser.add_argument(
        "--stream",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="an `evaluate-stream --report` folder to add (event-level figures; repeatable)",
    )
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


def add_bench_options(parser: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's options."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEMO_MODEL_DIR,
        help="model directory with model.keras and model.tflite (default: the bundled demo)",
    )
    parser.add_argument(
        "--runs",
        type=positive_int,
        default=50,
        help="timed calls per inference figure (default 50)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="inference threads (default: as the daemon)",
    )
    parser.add_argument(
        "--streams-max",
        type=non_negative_int,
        default=48,
        help="largest stream count tried; 0 skips the stream search (default 48)",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=15.0,
        help="measured seconds per stream count, after the warm-up (default 15)",
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_float,
        default=4.0,
        help="seconds after all cameras are online before measuring (default 4)",
    )
    parser.add_argument(
        "--latency-streams",
        type=non_negative_int,
        default=8,
        help="stream count for latency_p95_ms and rss_mb, with and without the person stage; "
        "0 skips them (default 8)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.03,
        help="allowed shortfall of read and sampled frame rates (default 0.03 = 3%%)",
    )
    parser.add_argument(
        "--batch-max",
        type=positive_int,
        default=None,
        help="the daemon's [model] batch_max (default: the daemon's default)",
    )
    parser.add_argument(
        "--recognisers-seconds",
        type=non_negative_float,
        default=30.0,
        help="seconds of a real clip through one camera's inference, fight alone and fight + "
        "fall (fight_fall_ratio); 0 skips (default 30)",
    )
    parser.add_argument(
        "--width", type=positive_int, default=640, help="stream width (default 640)"
    )
    parser.add_argument(
        "--height", type=positive_int, default=480, help="stream height (default 480)"
    )
    parser.add_argument(
        "--fps", type=positive_int, default=25, help="stream frame rate (default 25)"
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep configs, video and daemon logs here"
    )
    parser.add_argument(
        "--recording",
        action="store_true",
        help="only the CPU of one camera with clips off, by copy of a main stream and "
        "re-encoded (uses --seconds and --warmup)",
    )
    parser.add_argument(
        "--event-s",
        type=positive_float,
        default=10.0,
        help="with --recording: seconds between events (each activity of the looped camera "
        "lasts this long); 10 is a worst case for clip work, 60 a busy real camera "
        "(default 10)",
    )
    parser.add_argument(
        "--recording-model",
        choices=("demo", "fight"),
        default="demo",
        help="with --recording: the analysed model; fight: the bundled fight model (person "
        "stage on) on a real clip of a person walking (default demo)",
    )
    parser.add_argument(
        "--recording-rounds",
        type=positive_int,
        default=1,
        metavar="N",
        help="with --recording: run the four modes N times, alternated, and print each mode's "
        "median (default 1)",
    )
    parser.add_argument(
        "--recording-clip",
        type=Path,
        default=None,
        metavar="VIDEO",
        help="with --recording-model fight: the video the camera shows, looped (e.g. a fold "
        "stream with fights, so clips are finished; default a person walking)",
    )
