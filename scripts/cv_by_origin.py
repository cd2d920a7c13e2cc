"""Per-fold figures of `har-daemon cv` split by where the clips come from.

    .venv/bin/python scripts/cv_by_origin.py REPORT [REPORT ...] [--threshold]

An assembled folder mixes the Surveillance Camera Fight Dataset (fi*/nofi* clips, real CCTV)
with everyday-activity recordings from falls/ (indoor rooms, a lab). A whole-frame model can
tell those scenes apart without looking at anyone, so a figure over the mixture flatters it.
This prints, per fold and pooled, the accuracy and fight recall on the fight dataset's clips
alone, and the false-alarm rate on the everyday-activity clips, from each report's
`predictions.csv` (argmax, or each fold's validation-chosen threshold with --threshold).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


def origin(clip: str) -> str:
    name = Path(clip).name
    return "fight-set" if name.startswith(("fi", "nofi")) else "everyday"


def rows(report: Path, threshold: bool) -> list[dict[str, object]]:
    cv = json.loads((report / "cv.json").read_text())
    thresholds = {
        d["fold"]: d.get("alert_threshold", {}).get("threshold", 0.5) for d in cv["folds"]
    }
    out = []
    with (report / "predictions.csv").open() as f:
        for r in csv.DictReader(f):
            fold = int(r["fold"])
            p = float(r["fight"])
            fight = p >= thresholds[fold] if threshold else r["predicted"] == "fight"
            out.append(
                {"fold": fold, "origin": origin(r["clip"]), "true": r["true"], "fight": fight}
            )
    return out


def summary(report: Path, threshold: bool = False) -> dict[str, object]:
    """Per fold and pooled: the fight set's accuracy and recalls, everyday clips called fight."""

    def one(rs: list[dict[str, object]]) -> dict[str, object]:
        fs = [r for r in rs if r["origin"] == "fight-set"]
        ev = [r for r in rs if r["origin"] == "everyday"]
        pos = [r for r in fs if r["true"] == "fight"]
        neg = [r for r in fs if r["true"] != "fight"]
        return {
            "fight_set_clips": len(fs),
            "fight_set_accuracy": float(np.mean([(r["true"] == "fight") == r["fight"] for r in fs]))
            if fs
            else None,
            "fight_recall": float(np.mean([bool(r["fight"]) for r in pos])) if pos else None,
            "noFight_recall": float(np.mean([not r["fight"] for r in neg])) if neg else None,
            "everyday_clips": len(ev),
            "everyday_called_fight": sum(bool(r["fight"]) for r in ev),
        }

    rs = rows(report, threshold)
    folds = [one([r for r in rs if r["fold"] == f]) for f in sorted({int(r["fold"]) for r in rs})]
    accs = [f["fight_set_accuracy"] for f in folds if f["fight_set_accuracy"] is not None]
    return {
        "at": "validation-chosen threshold" if threshold else "argmax",
        "per_fold": folds,
        "pooled": one(rs),
        "fight_set_accuracy_mean": float(np.mean(accs)),
        "fight_set_accuracy_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
    }


def figures(rs: list[dict[str, object]]) -> str:
    fs = [r for r in rs if r["origin"] == "fight-set"]
    ev = [r for r in rs if r["origin"] == "everyday"]
    acc = np.mean([(r["true"] == "fight") == r["fight"] for r in fs]) if fs else float("nan")
    pos = [r for r in fs if r["true"] == "fight"]
    rec = np.mean([r["fight"] for r in pos]) if pos else float("nan")
    nof = [r for r in fs if r["true"] != "fight"]
    spec = np.mean([not r["fight"] for r in nof]) if nof else float("nan")
    fa = f"{sum(bool(r['fight']) for r in ev)}/{len(ev)}" if ev else "-"
    return (
        f"fight-set {len(fs):>3} clips: accuracy {acc:.3f}, fight recall {rec:.3f}, "
        f"noFight recall {spec:.3f}; everyday clips called fight: {fa}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("reports", type=Path, nargs="+")
    p.add_argument("--threshold", action="store_true", help="each fold's alert threshold")
    args = p.parse_args(argv)
    for report in args.reports:
        try:
            rs = rows(report, args.threshold)
        except (OSError, KeyError, ValueError) as exc:
            print(f"error: {report}: {exc}", file=sys.stderr)
            return 2
        print(f"{report} ({'threshold' if args.threshold else 'argmax'})")
        accs = []
        for fold in sorted({int(r["fold"]) for r in rs}):
            mine = [r for r in rs if r["fold"] == fold]
            print(f"  fold {fold}: {figures(mine)}")
            fs = [r for r in mine if r["origin"] == "fight-set"]
            accs.append(np.mean([(r["true"] == "fight") == r["fight"] for r in fs]))
        print(f"  pooled: {figures(rs)}")
        print(f"  fight-set accuracy per fold: {np.mean(accs):.3f} +- {np.std(accs, ddof=1):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
