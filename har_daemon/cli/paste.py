"""`paste-eval`: the synthetic paste test (docs/calibration.md, section 5). Every table it
prints says "synthetic": real clips in real scenes, but an artificial picture."""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from typing import Any

from har_daemon.cli.offline import load
from har_daemon.cli.quiet import gate_name, with_gate
from har_daemon.core.errors import DataError
from har_daemon.offline.paste import Look
from har_daemon.tools.environment import machine_info
from har_daemon.tools.paste import (
    Options,
    SizeRow,
    choose,
    held_out_clips,
    read_scenes,
    run_paste,
    size_rows,
)

SYNTHETIC = "SYNTHETIC"


def _log(message: str) -> None:
    print(f"paste-eval: {message}", file=sys.stderr, flush=True)


def _size(fraction: float | None) -> str:
    if fraction is None:
        return "scene alone"
    return f"{Fraction(fraction).limit_denominator(20)} width"


def _ratio(d: dict[str, int]) -> str:
    def r(a: int, n: int) -> str:
        return f"{a}/{n} ({a / n:.2f})" if n else "-"

    return f"{r(d['fights_found'], d['fights'])} / {r(d['quiet_alerted'], d['quiet'])}"


def format_rows(rows: list[SizeRow]) -> str:
    """The per-size table: fights found, pasted quiet alerted, time to alert."""
    lines = [
        f"{'size (synthetic)':<17} {'fights found':>14} {'recall':>6}  {'quiet alerted':>13} "
        f"{'rate':>5}  {'TTA p50/p95 s':>13}  {'other alerts':>12}  "
        "where the scene alone is silent: found / quiet alerted"
    ]
    for row in rows:
        d = row.as_dict()

        def v(x: float | None, fmt: str = ".2f") -> str:
            return "-" if x is None else format(x, fmt)

        fights = f"{d['fights_found']}/{d['fights']}" if d["fights"] else "-"
        quiet = f"{d['quiet_alerted']}/{d['quiet']}" if d["quiet"] else "-"
        lines.append(
            f"{_size(row.fraction):<17} {fights:>14} {v(d['fight_recall']):>6}  "
            f"{quiet:>13} {v(d['quiet_alerted_rate']):>5}  "
            f"{v(d['tta_p50_s'], '.1f') + '/' + v(d['tta_p95_s'], '.1f'):>13}  "
            f"{d['other_alerts']:>12}  {_ratio(d['scene_silent'])}"
        )
    return "\n".join(lines)


def paste_eval(args: argparse.Namespace) -> int:
    config, meta, backend = load(args)
    configs = [(gate_name(config), config)]
    for d in args.gate or []:
        cfg = with_gate(config, d)
        if gate_name(cfg) not in dict(configs):
            configs.append((gate_name(cfg), cfg))
    splits = args.split.split(",")
    everything = held_out_clips(meta, args.data, splits)
    present = [c for c in everything if c.path.is_file()]
    if not present:
        raise DataError(f"{args.data}: none of the model's held-out clips is there")
    clips = choose(present, args.limit, args.seed)
    scenes = read_scenes(args.quiet)
    try:
        look = Look(args.blur, args.jpeg_quality, args.feather)
    except ValueError as exc:
        raise DataError(f"--blur/--jpeg-quality/--feather: {exc}") from None
    options = Options(
        fractions=args.sizes,
        look=look,
        repeats=args.repeats,
        pre_s=args.pre_s,
        post_s=args.post_s,
        seed=args.seed,
    )
    _log(
        f"{len(clips)} clips x {len(args.sizes) + 1} composites x {len(configs)} setting(s); "
        f"{len(everything) - len(present)} held-out clip(s) not in {args.data}"
    )
    results = run_paste(clips, scenes, configs, meta, backend, options, log=_log, keep=args.keep)
    alert = next(c for c in config.inference.alert_activities if c in meta.classes)
    counts = {lab: sum(c.label == lab for c in clips) for lab in sorted({c.label for c in clips})}
    print(
        f"{SYNTHETIC} paste test: the model's held-out {'+'.join(splits)} clips "
        f"({', '.join(f'{n} {lab}' for lab, n in counts.items())}) pasted into real quiet "
        f"scenes of {args.quiet} (synthetic composites, not real footage); model {meta.name}; "
        f"seed {args.seed}; clip played {args.repeats}x forward/backward; blur x{args.blur:g}, "
        f"JPEG {args.jpeg_quality}, soft edge {args.feather} px"
    )
    doc: dict[str, Any] = {
        "synthetic": True,
        "model": meta.name,
        "data": str(args.data),
        "quiet": str(args.quiet),
        "splits": splits,
        "clips": counts,
        "missing_clips": len(everything) - len(present),
        "seed": args.seed,
        "environment": machine_info(),
        "look": {"blur": args.blur, "jpeg_quality": args.jpeg_quality, "feather": args.feather},
        "repeats": args.repeats,
        "variants": [],
    }
    for gate, cfg in configs:
        rows = size_rows(results, gate, alert)
        print(f"\n{SYNTHETIC}, interaction gate {gate}, enter {cfg.inference.enter_threshold}:")
        print(format_rows(rows))
        doc["variants"].append({"interaction_gate": gate, "sizes": [r.as_dict() for r in rows]})
    if args.json:
        doc["cases"] = [r.as_dict() for r in results]
        print(json.dumps(doc))
    return 0
