"""Which clips of `har-daemon streams` test streams raised the false alerts, by data origin.

    .venv/bin/python scripts/false_alerts_by_clip.py STREAMS_DIR/streams.json [--list]

Each false alert (an alert overlapping no incident) is placed in the clip where it started
(the fold's `clips.csv`), and counted by origin: the fight set's noFight clips (real CCTV),
GMDCSA24's and ASSIST-IoT's everyday-activity recordings. Also the quiet seconds of each.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path


def origin(clip: str) -> str:
    if "assist-iot" in clip or "assist_iot" in clip:
        return "assist-iot (lab ADL)"
    if "gmdcsa24" in clip:
        return "gmdcsa24 (home ADL)"
    return "fight set noFight (CCTV)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("streams", type=Path)
    p.add_argument("--list", action="store_true", help="every false alert")
    args = p.parse_args(argv)
    try:
        doc = json.loads(args.streams.read_text())
    except (OSError, ValueError) as exc:
        print(f"error: {args.streams}: {exc}", file=sys.stderr)
        return 2
    false: Counter[str] = Counter()
    quiet: Counter[str] = Counter()
    for f in doc["folds"]:
        with (Path(f["video"]).parent / "clips.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            if r["label"] != "fight":
                quiet[origin(r["clip"])] += float(r["end_s"]) - float(r["start_s"])
        for start, end, _ in f["alerts"]:
            if any(
                t0 < (end if end is not None else 1e12) and start < t1 for t0, t1, _ in f["truth"]
            ):
                continue
            clip = next((r for r in rows if float(r["start_s"]) <= start < float(r["end_s"])), None)
            name = clip["clip"] if clip else "?"
            false[origin(name)] += 1
            if args.list:
                print(f"fold {f['fold']}: {start:7.2f} s  {Path(name).name}")
    for k in sorted(quiet):
        print(f"{k:<26} quiet {quiet[k]:6.1f} s  false alerts {false[k]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
