"""Assemble a fall model's training folder from falls/: the fall itself, and everything else.

    .venv/bin/python scripts/assemble_fall_data.py --out ../fall-people-data \\
        [--falls ../shared/data/falls] [--segment-s 2.0] [--lead-s 0.3]

A GMDCSA24 fall clip begins with standing, sitting or walking; the authors' interval
(`description`, e.g. `Falling (BW)[1.9 to 5]`) says when the fall starts. So each fall clip
gives one `fall` piece of `--segment-s` starting `--lead-s` before the fall (the window the
daemon would see as the person goes down) and, when the clip has room before the fall, one
`noFall` piece of the same person in the same room before it: the model must learn the fall,
not the room. Everyday-activity recordings (`adl/`, both sources) become `noFall` pieces as in
the fight set. ASSIST-IoT's two fall clips carry no interval and are left out, as are the
`immobile/` clips (lying after a fall is neither a fall nor an everyday activity). Groups are
the actors (and the lab), as in `sources.csv`.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

from har_daemon.training.assemble import Entry, assemble, plan_entries
from har_daemon.video.frames import probe_video

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "falls"
FALL = re.compile(r"Fall(?:ing)?\s*\([A-Z]+\)\s*\[\s*([\d.]+)\s*to\s*([\d.]+)\s*\]")


def fall_start(description: str) -> float | None:
    """When the authors' intervals say the fall begins (None: no fall interval)."""
    m = FALL.search(description)
    return float(m.group(1)) if m else None


def fall_entries(root: Path, segment_s: float, lead_s: float) -> list[Entry]:
    out: list[Entry] = []
    with (root / "sources.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["label"] != "fall":
                continue
            start = fall_start(row["description"])
            if start is None:
                continue
            clip = root / row["clip"]
            duration = probe_video(clip).duration_s
            stem = f"{root.name}-{Path(row['clip']).stem}"
            s = round(max(0.0, min(start - lead_s, duration - segment_s)), 3)
            out.append(Entry(f"{stem}-fall.mp4", "fall", row["source"], clip, s, s + segment_s))
            if start - lead_s >= segment_s:  # the same person before the fall
                out.append(
                    Entry(f"{stem}-before.mp4", "noFall", row["source"], clip, 0.0, segment_s)
                )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--falls", type=Path, default=DATA)
    p.add_argument("--segment-s", type=float, default=2.0)
    p.add_argument("--lead-s", type=float, default=0.3, help="piece starts this before the fall")
    args = p.parse_args(argv)

    def plan() -> list[Entry]:
        entries = fall_entries(args.falls / "gmdcsa24", args.segment_s, args.lead_s)
        for sub in sorted(d for d in args.falls.iterdir() if (d / "adl").is_dir()):
            entries += plan_entries(
                sub,
                label="noFall",
                classes=["adl"],
                prefix=f"{sub.name}-",
                segment_s=args.segment_s,
            )
        return entries

    return assemble(args.out, plan)


if __name__ == "__main__":
    sys.exit(main())
