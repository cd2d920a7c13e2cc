"""Cut quiet footage of some scenes into noFight pieces for `train --extra-train`.

    .venv/bin/python scripts/assemble_quiet_negatives.py --out ../quiet-negatives \\
        [--quiet ../shared/data/quiet] --hold-out gym,corridor [--segment-s 2.0] [--max-pieces 15]

Issue 19: the quiet corpus is both negatives and the false-alert measurement, so it is split by
scene, never by clip. The scenes named by `--hold-out` (case-insensitive parts of the scene name
in the corpus's sources.csv) are left out, to be measured with `quiet-eval`; every other scene's
clips are cut into `--segment-s` pieces (at most `--max-pieces` per recording) under OUT/noFight/,
each piece's group its scene, so `train` never splits a scene. Keep OUT outside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from har_daemon.offline.quiet import read_quiet
from har_daemon.training.assemble import Entry, assemble, segment_starts
from har_daemon.video.frames import probe_video

REPO = Path(__file__).resolve().parents[1]
QUIET = REPO.parent / "shared" / "data" / "quiet"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quiet", type=Path, default=QUIET)
    p.add_argument("--hold-out", required=True, help="comma-separated parts of scene names")
    p.add_argument("--segment-s", type=float, default=2.0)
    p.add_argument("--max-pieces", type=int, default=15, help="most pieces of one recording")
    args = p.parse_args(argv)
    held = [h.strip().lower() for h in args.hold_out.split(",") if h.strip()]

    def plan() -> list[Entry]:
        entries: list[Entry] = []
        for clip in read_quiet(args.quiet):
            if any(h in clip.scene.lower() for h in held):
                print(f"held out: {clip.path.name} ({clip.scene})")
                continue
            group = f"quiet:{clip.scene}"
            duration = probe_video(clip.path, exact=True).duration_s
            for k, start in enumerate(segment_starts(duration, args.segment_s, args.max_pieces)):
                name = f"quiet-{clip.path.stem}-p{k:02d}.mp4"
                end = round(start + args.segment_s, 3)
                entries.append(Entry(name, "noFight", group, clip.path, start, end))
        return entries

    return assemble(args.out, plan)


if __name__ == "__main__":
    sys.exit(main())
