"""Assemble the fight model's training folder: fight clips, noFight clips and real negatives.

    .venv/bin/python scripts/assemble_fight_data.py --out ../fight-people-data \\
        [--fight ../shared/data/surveillance-fight] [--falls ../shared/data/falls] \\
        [--negatives adl,immobile] [--segment-s 2.0] [--max-pieces 3]

Writes OUT/fight/ and OUT/noFight/ (links to the Surveillance Camera Fight Dataset's clips, and
the falls/ everyday-activity recordings cut into `--segment-s` pieces, the fight clips' median
length, as noFight) and OUT/sources.csv (each clip's source video, actor or lab: its group in
every split). Fall clips are left out: a fall is neither a fight nor everyday activity, and the
fall model wants them. Keep OUT outside the repository: the data is never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from har_daemon.training.assemble import Entry, assemble, plan_entries

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fight", type=Path, default=DATA / "surveillance-fight")
    p.add_argument("--falls", type=Path, default=DATA / "falls")
    p.add_argument("--negatives", default="adl,immobile", help="falls/ folders used as noFight")
    p.add_argument("--segment-s", type=float, default=2.0, help="piece length for long clips")
    p.add_argument("--max-pieces", type=int, default=3, help="most pieces of one recording")
    args = p.parse_args(argv)
    wanted = [n.strip() for n in args.negatives.split(",") if n.strip()]

    def plan() -> list[Entry]:
        entries = plan_entries(args.fight, classes=["fight", "noFight"])
        for sub in sorted(d for d in args.falls.iterdir() if d.is_dir()):
            classes = [c for c in wanted if (sub / c).is_dir()]
            if classes:
                entries += plan_entries(
                    sub,
                    label="noFight",
                    classes=classes,
                    prefix=f"{sub.name}-",
                    segment_s=args.segment_s,
                    max_pieces=args.max_pieces,
                )
        return entries

    return assemble(args.out, plan)


if __name__ == "__main__":
    sys.exit(main())
