"""A report's clip predictions split by source group: where the labels follow the place.

    .venv/bin/python scripts/by_source.py REPORT --data DATA_DIR \\
        [--model MODEL_DIR --split test|validation|held-out] [--threshold P] [--json]

REPORT is a `har-daemon evaluate` or `cv` report folder (its `predictions.csv`; a CV's rows are
all out-of-fold), DATA_DIR the assembled folder it scored (its `sources.csv`: each clip's source
video, actor or lab). With `--model`, only the clips that model's `model.json` held out (its
test or validation split, or both), so an `evaluate --split all` report gives the held-out
figures of either split. Prints, per source group: clips of each label, accuracy, fight recall
and quiet recall (the alert class's recall and the rest's), then all groups pooled. A group
whose clips are all one label (marked `one label`) and all "right" may be recognised by its
look, not by what the people in it do. `--threshold P`: a clip is called the alert class when
its probability is at least P (default: the report's argmax).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ALERT = "fight"
SPLITS = {"test": ("test_clips",), "validation": ("validation_clips",)}
SPLITS["held-out"] = SPLITS["test"] + SPLITS["validation"]


@dataclass(frozen=True)
class SourceRow:
    source: str
    alert_clips: int
    quiet_clips: int
    accuracy: float
    fight_recall: float | None
    quiet_recall: float | None

    @property
    def one_label(self) -> bool:
        return not (self.alert_clips and self.quiet_clips)


def called_alert(row: Mapping[str, str], threshold: float | None) -> bool:
    """The clip called the alert class: argmax, or its probability at `threshold`."""
    if threshold is None:
        return row["predicted"] == ALERT
    return float(row[ALERT]) >= threshold


def figures(name: str, rows: Sequence[Mapping[str, str]], threshold: float | None) -> SourceRow:
    alert = [called_alert(r, threshold) for r in rows if r["true"] == ALERT]
    quiet = [not called_alert(r, threshold) for r in rows if r["true"] != ALERT]
    return SourceRow(
        name,
        len(alert),
        len(quiet),
        (sum(alert) + sum(quiet)) / len(rows),
        sum(alert) / len(alert) if alert else None,
        sum(quiet) / len(quiet) if quiet else None,
    )


def per_source(
    rows: Sequence[Mapping[str, str]], source: Mapping[str, str], threshold: float | None = None
) -> list[SourceRow]:
    """One row per source group (by name), then "all" pooled."""
    groups: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for r in rows:
        groups[source.get(Path(r["clip"]).stem, "?")].append(r)
    out = [figures(name, rs, threshold) for name, rs in sorted(groups.items())]
    return [*out, figures("all", rows, threshold)] if rows else out


def format_rows(rows: Sequence[SourceRow]) -> str:
    def v(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    lines = [
        f"{'source':<20}{'fight':>6}{'quiet':>6}  {'accuracy':>8}  {'fight recall':>12}  "
        f"{'quiet recall':>12}"
    ]
    for r in rows:
        mark = "  one label" if r.one_label and r.source != "all" else ""
        lines.append(
            f"{r.source:<20}{r.alert_clips:>6}{r.quiet_clips:>6}  {r.accuracy:>8.2f}  "
            f"{v(r.fight_recall):>12}  {v(r.quiet_recall):>12}{mark}"
        )
    return "\n".join(lines)


def held_out(model_dir: Path, split: str) -> set[str]:
    training = json.loads((model_dir / "model.json").read_text())["training"]
    return {c for key in SPLITS[split] for c in training.get(key, [])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, help="keep only the clips this model held out")
    p.add_argument("--split", choices=sorted(SPLITS), default="held-out")
    p.add_argument("--threshold", type=float, help="alert-class probability that calls it")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        with (args.data / "sources.csv").open(newline="") as f:
            source = {r["clip"]: r["source"] for r in csv.DictReader(f)}
        with (args.report / "predictions.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        if args.model is not None:
            keep = held_out(args.model, args.split)
            rows = [r for r in rows if r["clip"] in keep]
    except (OSError, KeyError, ValueError) as exc:
        print(f"by_source: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"by_source: no prediction of {args.report} is left to count", file=sys.stderr)
        return 2
    table = per_source(rows, source, args.threshold)
    at = "argmax" if args.threshold is None else f"{ALERT} >= {args.threshold:g}"
    which = f", {args.split} clips of {args.model}" if args.model is not None else ""
    print(f"{args.report}: {len(rows)} clips{which}, called at {at}")
    print(format_rows(table))
    if args.json:
        print(json.dumps([{**asdict(r), "one_label": r.one_label} for r in table]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
