"""The command line's shape: every subcommand, its options, and which module runs it.

Building the parser imports nothing heavy: each subcommand names its handler as
"module:function" (a module of this package, or a dotted path), imported only when that
command runs, and the packages it needs beyond the daemon's own (`needs`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from har_daemon import __version__
from har_daemon.cli.args import (
    add_data_options,
    add_training_options,
    budget_arg,
    classes_arg,
    folds,
    fraction,
    gate_arg,
    hold_seconds,
    positive_float,
    positive_int,
    width_fractions,
)
from har_daemon.cli.options import add_bench_options, add_report_options
from har_daemon.comms.reorder import HOLD_S
from har_daemon.model.backends import BACKENDS

TRAIN = ("tensorflow",)
"""What commands of the [train] extra need; the daemon itself needs none of it."""
REPORT = ("jinja2", "matplotlib")
NATIVE = {"native_stderr": True}
"""For commands that load a model: LiteRT and FFmpeg write to fd 2 directly, so `main` runs
them with it captured (`core.stderr.json_stderr`) and an error after the load stays one line."""


def add_offline_options(p: argparse.ArgumentParser) -> None:
    """The daemon's settings for a recording: its config file, or the model and backend."""
    p.add_argument("--config", type=Path, help="TOML file: thresholds, stride and model as live")
    p.add_argument("--model", type=Path, help="model directory (default: the config's)")
    p.add_argument("--backend", choices=BACKENDS, help="default: the config's (auto)")
    p.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])


def size_arg(value: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give WIDTHxHEIGHT, e.g. 640x360") from None
    if not (16 <= w <= 3840 and 16 <= h <= 2160) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"{value}: even sides between 16 and 3840x2160")
    return w, h


def add_region_options(p: argparse.ArgumentParser) -> None:
    """`train` and `cv`: what the model sees, and which file scores the held-out clips."""
    p.add_argument(
        "--input-region",
        choices=["frame", "person"],
        default="frame",
        help="frame: the whole frame (the paper's models); person: windows cropped around the "
        "people the bundled detector finds, one per group (needs --alert-class; the crop rules "
        "go into model.json)",
    )
    p.add_argument(
        "--backend",
        choices=["keras", "litert"],
        default="keras",
        help="score validation and test clips on the Keras model or on its LiteRT export (the "
        "file the daemon serves; exported for every fold)",
    )


def add_paste_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`paste-eval`: held-out clips pasted small into real quiet scenes (synthetic)."""
    pe = sub.add_parser(
        "paste-eval",
        help="synthetic paste test: held-out fight and quiet clips pasted into real quiet scenes "
        "at several sizes, each replayed as a stream; fights found and quiet alerted per size",
    )
    pe.add_argument(
        "--data", type=Path, required=True, help="folder holding the model's held-out clips"
    )
    pe.add_argument(
        "--quiet", type=Path, required=True, help="quiet scenes with sources.csv (quiet-eval's)"
    )
    add_offline_options(pe)
    pe.add_argument(
        "--split",
        choices=["test", "validation", "test,validation"],
        default="test,validation",
        help="which held-out clips of model.json (default both: neither was trained on)",
    )
    pe.add_argument(
        "--sizes",
        type=width_fractions,
        default=(1 / 2, 1 / 3, 1 / 4),
        help="pasted width as fractions of the frame width (1/2,1/3,1/4)",
    )
    pe.add_argument("--limit", type=positive_int, help="at most this many clips per label")
    pe.add_argument("--seed", type=int, default=0, help="clip choice, scene, segment, position")
    pe.add_argument("--repeats", type=positive_int, default=3, help="forward/backward plays (3)")
    pe.add_argument("--pre-s", type=positive_float, default=3.0, help="scene before the paste")
    pe.add_argument("--post-s", type=positive_float, default=2.0, help="scene after the paste")
    pe.add_argument(
        "--blur", type=positive_float, default=2.0, help="extra downscale then upscale (2)"
    )
    pe.add_argument("--jpeg-quality", type=int, choices=range(1, 101), default=40, metavar="1-100")
    pe.add_argument("--feather", type=int, default=3, help="soft edge in pixels (0: hard)")
    pe.add_argument(
        "--gate", type=gate_arg, help="also run with the interaction gate at these settings"
    )
    pe.add_argument("--keep", type=Path, help="keep the composites in this folder (to look at)")
    pe.add_argument("--json", action="store_true", help="also print one JSON document")
    pe.set_defaults(handler="paste:paste_eval", **NATIVE)


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line, as every other error of the command; `--help` has the rest.

    argparse's own error prints the whole usage first: for `bench` that is a dozen lines above
    the one that names the mistake. Subcommand parsers are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"har-daemon: error: {message} (see {self.prog} --help)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """As argparse's, but an unknown option points at its own command's help: argparse
        finds leftovers at the top level, after the subcommand has parsed what it knows."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            self.exit(
                2,
                f"har-daemon: error: unrecognized arguments: {' '.join(extra)} "
                f"(see {prog} --help)\n",
            )
        return parsed


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
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
        type=classes_arg,
        default=None,
        help="comma-separated class folders, or 'all' "
        "(default: the paper's HorseRace,Biking,Swing,PizzaTossing)",
    )
    t.add_argument("--arch", choices=["convlstm", "lrcn"], default="convlstm")
    t.add_argument("--epochs", type=positive_int, default=50)
    t.add_argument("--batch-size", type=positive_int, default=4)
    t.add_argument("--learning-rate", type=positive_float, default=1e-3)
    t.add_argument("--patience", type=positive_int, default=10, help="early-stopping patience")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--split",
        choices=["group", "random"],
        default="group",
        help="group: whole gNN groups held out (default); random: the paper's clip-level split, "
        "which puts one actor's clips on both sides and overstates accuracy",
    )
    t.add_argument("--test-fraction", type=fraction, default=0.2)
    t.add_argument("--validation-fraction", type=fraction, default=0.2)
    t.add_argument("--name", help="model name recorded in model.json")
    t.add_argument(
        "--extra-train",
        type=Path,
        help="a second folder of clips (same layout) that only ever trains, never validates or "
        "tests, and leaves the split of --data as it is: e.g. quiet footage of some scenes as "
        "negatives, the other scenes kept for the false-alert measurement",
    )
    add_training_options(t)
    add_region_options(t)
    add_data_options(t)
    t.set_defaults(handler="training:train", needs=TRAIN)

    cv = sub.add_parser(
        "cv", help="grouped k-fold cross-validation: one training per fold, mean +- std"
    )
    cv.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    cv.add_argument("--report", type=Path, required=True, help="folder for cv.json and fold models")
    cv.add_argument("--folds", type=folds, default=5, help="number of folds (default 5)")
    cv.add_argument(
        "--classes",
        type=classes_arg,
        default=None,
        help="comma-separated class folders, or 'all' (default: the paper's four classes)",
    )
    cv.add_argument("--arch", choices=["convlstm", "lrcn"], default="convlstm")
    cv.add_argument("--epochs", type=positive_int, default=50)
    cv.add_argument("--batch-size", type=positive_int, default=4)
    cv.add_argument("--learning-rate", type=positive_float, default=1e-3)
    cv.add_argument("--patience", type=positive_int, default=10, help="early-stopping patience")
    cv.add_argument("--seed", type=int, default=0, help="seeds training and the fold assignment")
    cv.add_argument("--validation-fraction", type=fraction, default=0.2)
    cv.add_argument("--name", help="model name prefix for the fold models")
    add_training_options(cv)
    add_region_options(cv)
    add_data_options(cv)
    cv.set_defaults(handler="training:cv", needs=TRAIN)

    e = sub.add_parser("evaluate", help="score a model on labelled clips; write metrics and plots")
    e.add_argument("--model", type=Path, required=True, help="model directory")
    e.add_argument("--data", type=Path, required=True, help="folder with one sub-folder per class")
    e.add_argument("--report", type=Path, required=True, help="folder for metrics.json and PNGs")
    e.add_argument(
        "--split",
        choices=["all", "test", "validation"],
        default="all",
        help="all clips (default), or only the clips model.json lists as held out for test "
        "or for validation when the model was trained",
    )
    e.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    e.add_argument(
        "--backend", choices=BACKENDS, default="auto", help="default: what the daemon would use"
    )
    add_data_options(e)
    e.set_defaults(handler="evaluation:evaluate", needs=TRAIN)

    rp = sub.add_parser(
        "report", help="one self-contained HTML page from an evaluation (and a cv.json)"
    )
    add_report_options(rp)
    rp.set_defaults(handler="har_daemon.reporting.report:run", needs=REPORT)

    bn = sub.add_parser(
        "bench",
        help="speed, streams in real time, latency and memory, against model.predict in one run",
    )
    add_bench_options(bn)
    bn.set_defaults(handler="har_daemon.tools.bench:run")

    pr = sub.add_parser(
        "predict", help="the alerts the daemon would raise on a video file, and its window scores"
    )
    pr.add_argument("video", type=Path)
    add_offline_options(pr)
    pr.add_argument("--stride", type=positive_int, help="sampled frames per window step")
    pr.add_argument("--events", action="store_true", help="print the events, one per line")
    pr.add_argument(
        "--camera",
        help="replay with this [[cameras]] entry's zones and masks (default: the first one's)",
    )
    pr.add_argument("--json", action="store_true", help="JSON (one document, or one per event)")
    pr.add_argument("--output", type=Path, help="write the video with labels drawn on it (.mp4)")
    pr.add_argument(
        "--clip",
        action="store_true",
        help="classify the whole file as one clip, sampled exactly as in training",
    )
    pr.set_defaults(handler="offline:predict", **NATIVE)

    es = sub.add_parser(
        "evaluate-stream",
        help="event-level figures on a recording: recall, false alerts per hour, time to alert",
    )
    es.add_argument("video", type=Path)
    es.add_argument(
        "--truth", type=Path, required=True, help="CSV of start_s,end_s,activity incidents"
    )
    add_offline_options(es)
    es.add_argument("--json", action="store_true", help="print one JSON document")
    es.add_argument("--report", type=Path, help="folder for stream.json and timeline.png")
    es.set_defaults(handler="streams:evaluate_stream", needs=("matplotlib",), **NATIVE)

    st = sub.add_parser(
        "streams",
        help="join each fold's held-out clips into a test stream; false alerts per hour and "
        "time to alert per fold and pooled",
    )
    st.add_argument("--data", type=Path, required=True, help="the folder the models trained on")
    st.add_argument("--cv", type=Path, help="a `cv` report: one stream per fold, its own model")
    st.add_argument("--model", type=Path, help="one model: a stream of its held-out clips")
    st.add_argument("--out", type=Path, required=True, help="folder for the streams and figures")
    st.add_argument("--split", choices=["test", "validation"], default="test")
    st.add_argument(
        "--join",
        choices=["source", "none"],
        default="source",
        help="source: incident clips of one source video back to back form one incident "
        "(default); none: every incident clip alone between quiet clips",
    )
    st.add_argument("--size", type=size_arg, default=(640, 360), help="WIDTHxHEIGHT (640x360)")
    st.add_argument("--fps", type=positive_int, default=25)
    st.add_argument("--seed", type=int, default=0, help="order of the quiet clips")
    st.add_argument("--alert-class", help="the incident class (default: the config's alert)")
    st.add_argument("--config", type=Path, help="TOML file: the daemon's settings")
    st.add_argument("--backend", choices=BACKENDS, help="default: the config's (auto)")
    st.add_argument(
        "--sweep",
        action="store_true",
        help="replay each stream under every smoothing/enter/min_windows setting and choose, per "
        "fold and pooled, the one within --budget (writes policy.json); use on validation",
    )
    st.add_argument(
        "--budget", type=float, default=0.0, help="false alerts per quiet hour allowed (0)"
    )
    st.add_argument("--evaluate", action="store_true", help="replay each stream, print figures")
    st.add_argument("--policy", type=Path, help="policy.json of a --sweep: each fold's settings")
    st.add_argument(
        "--pooled-policy",
        action="store_true",
        help="with --policy: every fold gets the one setting chosen over all folds' streams",
    )
    st.add_argument("--json", action="store_true", help="print the figures as one JSON document")
    st.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    st.set_defaults(handler="stream_sets:streams")

    qe = sub.add_parser(
        "quiet-eval",
        help="false alerts per camera-hour and alert time per hour on quiet footage, per scene",
    )
    qe.add_argument(
        "--data", type=Path, required=True, help="folder of quiet clips with sources.csv (scene)"
    )
    add_offline_options(qe)
    qe.add_argument(
        "--stream",
        type=Path,
        action="append",
        help="a held-out incident stream (TRUTH.csv beside it, as `streams` writes): recall "
        "and time to alert beside the false alerts (repeatable)",
    )
    qe.add_argument(
        "--gate",
        type=gate_arg,
        help="also run with the interaction gate at these settings, e.g. off,0.5,1,2",
    )
    qe.add_argument(
        "--budget",
        type=budget_arg,
        help="calibrate each scene for this budget (e.g. 1/day) on its first part and count "
        "false alerts on the rest",
    )
    qe.add_argument(
        "--calibrate-fraction",
        type=fraction,
        default=0.5,
        help="the part of each scene's footage that calibrates (0.5)",
    )
    qe.add_argument("--json", action="store_true", help="also print one JSON document")
    qe.set_defaults(handler="quiet:quiet_eval", **NATIVE)

    add_paste_parser(sub)

    ca = sub.add_parser(
        "calibrate",
        help="set a camera's alert threshold for a false-alert budget from its normal footage",
    )
    add_offline_options(ca)
    ca.add_argument("--camera", required=True, help="the camera's name in the config")
    ca.add_argument(
        "--source",
        type=Path,
        action="append",
        help="a recording of the camera's normal footage (repeatable; default: its file source)",
    )
    ca.add_argument(
        "--budget", type=budget_arg, default=1.0, help="false alerts allowed, e.g. 1/day (default)"
    )
    ca.add_argument(
        "--out", type=Path, help="calibration file (default: calibration.json in the state dir)"
    )
    ca.add_argument("--dry-run", action="store_true", help="print the threshold, write nothing")
    ca.add_argument("--json", action="store_true", help="print one JSON document")
    ca.set_defaults(handler="quiet:calibrate", **NATIVE)

    im = sub.add_parser("import-model", help="turn a Keras 2 .h5 (tutorial code) into a model dir")
    im.add_argument("h5", type=Path)
    im.add_argument("--classes", type=classes_arg, required=True, help="names in output order")
    im.add_argument("--out", type=Path, required=True)
    im.add_argument(
        "--frame-spacing",
        type=positive_float,
        default=0.2,
        help="seconds between the frames the model was trained on (tutorial: clip length / 20; "
        "UCF50 clips average about 4 s, hence 0.2)",
    )
    im.add_argument("--interpolation", choices=["linear", "area"], default="linear")
    im.add_argument("--color-order", choices=["BGR", "RGB"], default="BGR")
    im.set_defaults(handler="models:import_model", needs=TRAIN)

    ex = sub.add_parser(
        "export", help="write model.tflite (LiteRT, builtin ops only) beside a model's Keras file"
    )
    ex.add_argument("model_dir", type=Path)
    ex.set_defaults(handler="models:export", needs=TRAIN)

    sd = sub.add_parser("synth-data", help="write synthetic clips in the UCF50 folder layout")
    sd.add_argument("--out", type=Path, required=True)
    sd.add_argument("--classes", type=classes_arg, default=None)
    sd.add_argument("--groups", type=positive_int, default=6)
    sd.add_argument("--clips-per-group", type=positive_int, default=3)
    sd.add_argument("--seed", type=int, default=0)
    sd.set_defaults(handler="synth:synth_data")

    ev = sub.add_parser(
        "events",
        help="print every event of <prefix>/+/events once (persistent MQTT 5 session, QoS 1, "
        "duplicates dropped by camera, seq and content)",
    )
    ev.add_argument("--host", required=True, help="broker host")
    ev.add_argument("--port", type=int, help="broker port (default 1883, 8883 with TLS)")
    ev.add_argument("--prefix", default="har", help="topic prefix; '+' levels allowed (har/+)")
    ev.add_argument("--share", metavar="GROUP", help="join shared subscription $share/GROUP/...")
    ev.add_argument("--json", action="store_true", help="print each event's JSON payload")
    ev.add_argument("--state", type=Path, help="dedup state file (default: state dir)")
    ev.add_argument("--client-id", help="session id (default har-events-<hostname>[-GROUP])")
    ev.add_argument(
        "--session-expiry",
        type=positive_int,
        default=86400,
        metavar="S",
        help="seconds the broker keeps the session while away (default 1 day)",
    )
    ev.add_argument(
        "--reorder-s",
        type=hold_seconds,
        metavar="S",
        help=f"wait up to S s for a camera's missing seq before printing later ones in order "
        f"(default {HOLD_S:g}; 0 with --share, whose members each see only some events)",
    )
    ev.add_argument("--keepalive", type=positive_int, default=30, metavar="S")
    ev.add_argument("--username", help="broker login; the password comes from HAR_MQTT__PASSWORD")
    ev.add_argument("--tls", action="store_true", help="connect with TLS")
    ev.add_argument("--tls-ca-file", type=Path, help="CA of the broker (default: system CAs)")
    ev.add_argument("--tls-cert-file", type=Path, help="client certificate (mutual TLS)")
    ev.add_argument("--tls-key-file", type=Path, help="client key, if not in the certificate")
    ev.add_argument("--tls-insecure", action="store_true", help="skip the hostname check")
    ev.set_defaults(handler="events:run")

    for name, handler, helptext in (
        ("run", "daemon:run", "run the daemon (defaults: bundled model on the bundled clip)"),
        ("check-config", "daemon:check_config", "validate a config without starting anything"),
    ):
        r = sub.add_parser(name, help=helptext)
        r.add_argument("--config", type=Path, help="TOML file (see config.example.toml)")
        r.add_argument(
            "--source",
            help="watch only this source (file, URL, webcam index) instead of the config's cameras",
        )
        r.add_argument("--camera-name", help="name of the --source camera (or the first camera)")
        r.add_argument("--no-mqtt", action="store_true", help="do not connect to a broker")
        if name == "run":
            r.add_argument("--quiet", action="store_true", help="do not print events on stdout")
        r.set_defaults(handler=handler)
    return p
