"""A report's clip predictions split by source group: where the labels follow the place.

    .venv/bin/python scripts/by_source.py REPORT --data DATA_DIR

REPORT is a `har-daemon evaluate` or `cv` report folder (its `predictions.csv`), DATA_DIR the
assembled folder it scored (its `sources.csv`: each clip's source video, actor or lab). Prints,
per source group, how many clips of each label it holds and how many were called right: a group
whose clips are all one label and all "right" may be recognised by its look, not by what the
people in it do.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path)
    p.add_argument("--data", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        with (args.data / "sources.csv").open(newline="") as f:
            source = {r["clip"]: r["source"] for r in csv.DictReader(f)}
        with (args.report / "predictions.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, KeyError) as exc:
        print(f"by_source: {exc}", file=sys.stderr)
        return 2
    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[source.get(Path(r["clip"]).stem, "?")].append(r)
    labels = sorted({r["true"] for r in rows})
    print(f"{'source':<24}{'clips':>6}  {'/'.join(labels):>14}  {'right':>5}  accuracy")
    for name, rs in sorted(groups.items()):
        counts = "/".join(str(sum(r["true"] == lab for r in rs)) for lab in labels)
        right = sum(r["true"] == r["predicted"] for r in rs)
        print(f"{name:<24}{len(rs):>6}  {counts:>14}  {right:>5}  {right / len(rs):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
