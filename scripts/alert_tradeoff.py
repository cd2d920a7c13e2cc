"""The false alerts / recall / time-to-alert trade-off of a `har-daemon streams --sweep`.

    .venv/bin/python scripts/alert_tradeoff.py STREAMS_DIR/policy.json [--all] [--markdown]

Prints, for the settings pooled over every fold's stream, the ones no other setting beats on
both false alerts and incidents found (the Pareto front; --all: every setting), with time to
alert p50/p95. Run on test streams it shows what the model can reach at all; settings are
chosen on validation streams only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def front(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Settings not beaten on both false alerts (fewer) and detected incidents (more); among
    equals the fastest (time-to-alert p95)."""

    def key(s: dict[str, Any]) -> tuple[int, int]:
        f = s["figures"]
        return f["false_alerts"], -f["detected"]

    best: dict[tuple[int, int], dict[str, Any]] = {}
    for s in settings:
        k = key(s)
        p95 = s["figures"]["tta_p95_s"] if s["figures"]["tta_p95_s"] is not None else 1e9
        old = best.get(k)
        if old is None or p95 < (old["figures"]["tta_p95_s"] or 1e9):
            best[k] = s
    out = []
    for k, s in sorted(best.items()):
        if not any(o[0] <= k[0] and o[1] < k[1] for o in best if o != k):
            out.append(s)
    return out


def row(s: dict[str, Any]) -> list[str]:
    f = s["figures"]

    def t(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    return [
        f"mean {s['smoothing_window']}",
        f"{s['enter_threshold']:g}",
        str(s["min_windows"]),
        str(f["false_alerts"]),
        t(s["false_alerts_per_quiet_hour"]),
        f"{f['detected']}/{f['intervals']}",
        t(f["recall"]),
        t(f["tta_p50_s"]),
        t(f["tta_p95_s"]),
    ]


HEAD = ["smoothing", "enter", "min_windows", "false", "FA/quiet h", "found", "recall", "p50 s",
        "p95 s"]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("policy", type=Path)
    p.add_argument("--all", action="store_true", help="every setting, not only the front")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    try:
        doc = json.loads(args.policy.read_text())
        settings = doc["pooled"]["settings"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.policy}: not a streams --sweep policy.json ({exc})", file=sys.stderr)
        return 2
    rows = [row(s) for s in (settings if args.all else front(settings))]
    if args.markdown:
        print("| " + " | ".join(HEAD) + " |")
        print("|" + "---|" * len(HEAD))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return 0
    widths = [max(len(x) for x in col) for col in zip(HEAD, *rows, strict=True)]
    for r in [HEAD, *rows]:
        print("  ".join(x.rjust(w) for x, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
