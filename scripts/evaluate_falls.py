"""Evaluate the fall recognisers on pose tracks, leave-one-group-out; prints the tables.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python scripts/evaluate_falls.py [--write-rule DIR]
        [--looks own|shared|tracked|adaptive]

Data: ../shared/data/falls (GMDCSA24 by actor, ASSIST-IoT as one lab) and ../shared/data/quiet
(by scene). The person detector and MoveNet run on every 0.2 s sample once per clip; what they
found is cached under /tmp/har-fall-cache (scripts/fall_data.py), so reruns take seconds.
`--looks MODE`: the samples are recorded instead through the daemon's fall stage in that looks
mode, beside the person stage of models/fight (scripts/fall_record.py, cached there too), and
`--write-rule DIR` writes DIR/rule-MODE.json, which the daemon's cameras with that mode load
(runtime.falls.load_rule).
`--replay-rule DIR`: no learning, DIR's rule.json replayed on every clip (in-sample).

Compared, each group scored by what was learned on the other groups only:
(a) rule: model.fall.FallRule, thresholds chosen on a grid;
(b) gbm: scikit-learn gradient boosting on window features of the track's last 20 feature
    sets, alerting when its probability stays above a threshold (chosen on the training groups)
    for `hold` samples.
Learning objective for both: falls found - 2 x (everyday clips and quiet alerts).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import multiprocessing
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fall_data import LOOK_S, SPACING_S, Clip, clips, extract_all, extract_all_looks, track_steps
from fall_events import person_stage_spacing
from fall_record import LOOKS, Sample, record_all, variant, variants

from har_daemon.model.fall import FallEvents, FallRule
from har_daemon.model.pose_features import Features
from har_daemon.runtime.falls import RULE_FILE, load_rule, rule_file
from har_daemon.runtime.lying import LOOK_MODE

EARLY_S = 0.5
"""An alert up to this long before the authors' fall start still counts as that fall's."""
PENALTY = 2.0
"""Learning objective: a false alert (everyday clip or quiet alert) costs two found falls."""

GRID = {
    "torso_deg": [30.0, 40.0, 55.0],
    "low_height": [0.45, 0.6],
    "hip_drop": [0.1, 0.15, 0.2, 0.3],
    "speed": [0.2, 0.3, 0.45, 0.6],
    "speed_span_s": [0.2, 0.6],
    "hold_s": [0.4, 0.8],
    "min_coverage": [0.3, 0.5, 0.65],
    "min_height_px": [0.0, 80.0],
    "lost_coverage": [math.inf, 0.5],
    "look_s": [0.0, LOOK_S],
}
LOOSER = {
    "torso_deg": min,
    "low_height": max,
    "hip_drop": min,
    "speed": min,
    "speed_span_s": min,
    "hold_s": max,
    "min_height_px": min,
    "lost_coverage": min,
}
"""Which end of each grid field has a person down (or a fall open) soonest and longest: the
rule adaptive looks are recorded under (scripts/fall_record.py)."""


def loosest(grid: dict[str, list[float]]) -> FallRule:
    """The rule of the grid's loosest values (`LOOSER`; other fields FallRule's defaults)."""
    return FallRule(**{name: pick(grid[name]) for name, pick in LOOSER.items() if name in grid})


BOX_GRID = [(math.inf, 0.5, math.inf), (0.4, 0.5, 1.0), (0.5, 0.6, 1.0)]
"""(box_drop, box_height, box_speed): the route for a person lost right after going down, or
none."""

# -- tracks per clip ---------------------------------------------------------------------------


def track_samples(seen, looks=None) -> list[Sample]:
    """Every sample of a clip: (t, [(track id, its ring, seen now)]) for every live track;
    with `looks`, the turned second looks' finds added (fall_data.track_steps)."""
    return [
        (t, [(tr.id, tuple(tr.ring), tr.id in now) for tr in tracks])
        for t, tracks, now in track_steps(seen, looks)
    ]


# -- scoring -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one method did on one clip: its alerts' start times."""

    clip: Clip
    alerts: list[float]
    duration_s: float

    def found(self) -> bool:
        if self.clip.kind != "fall":
            return False
        start = self.clip.fall[0] - EARLY_S if self.clip.fall else -1.0
        return any(a >= start for a in self.alerts)

    def false_alerts(self) -> int:
        if self.clip.kind == "fall":
            start = self.clip.fall[0] - EARLY_S if self.clip.fall else -1.0
            return sum(a < start for a in self.alerts)
        return len(self.alerts) if self.clip.kind in ("adl", "quiet") else 0

    def delay(self) -> float | None:
        """Seconds from the end of the authors' fall interval to the first alert of the fall."""
        if not self.found() or self.clip.fall is None:
            return None
        first = min(a for a in self.alerts if a >= self.clip.fall[0] - EARLY_S)
        return first - self.clip.fall[1]


def objective(outcomes: list[Outcome]) -> tuple[float, float]:
    found = sum(o.found() for o in outcomes)
    bad = sum(o.clip.kind == "adl" and bool(o.alerts) for o in outcomes)
    bad += sum(o.false_alerts() for o in outcomes if o.clip.kind == "quiet")
    delays = [d for o in outcomes if (d := o.delay()) is not None]
    return found - PENALTY * bad, -(float(np.percentile(delays, 95)) if delays else 0.0)


# -- (a) the rule --------------------------------------------------------------------------------


def run_rule(samples: list[Sample], rule: FallRule) -> list[float]:
    events = FallEvents(rule)
    return [t for t, live in samples for _, ch in events.step(t, live) if ch == "start"]


_SHARED: dict = {}
"""The clips, their samples and durations, for `_outcomes` in forked workers."""


def _outcomes(rule: FallRule) -> dict[Path, Outcome]:
    items, dur = _SHARED["items"], _SHARED["dur"]
    samples = _SHARED["by_var"][_SHARED["variant"](rule)]
    return {c.path: Outcome(c, run_rule(samples[c.path], rule), dur[c.path]) for c in items}


def rules(box: bool = True, look: bool = True) -> list[FallRule]:
    grid = {**GRID, "look_s": GRID["look_s"] if look else [0.0]}
    keys = [*grid, "box_drop", "box_height", "box_speed"]
    combos = itertools.product(*grid.values(), BOX_GRID if box else BOX_GRID[:1])
    return [FallRule(**dict(zip(keys, (*vals[:-1], *vals[-1]), strict=True))) for vals in combos]


# -- (b) gradient boosting on window features ---------------------------------------------------


def window(ring: tuple[Features, ...]) -> list[float]:
    """Summary features of a track's ring (newest last), for the tree model."""
    cur = ring[-1]
    t = cur.t
    recent = [f for f in ring if f.t >= t - 1.0]

    def val(x: float) -> float:
        return -1.0 if math.isnan(x) else x

    torso = [val(f.torso_deg) for f in ring]
    drop = [val(f.hip_drop) for f in ring]
    return [
        val(cur.torso_deg), val(cur.hip_drop), cur.height_ratio, cur.aspect, cur.coverage,
        max(f.hip_speed for f in ring), max(f.hip_speed for f in ring if f.t >= t - 1.6),
        val(cur.hip_drop) - min(drop), val(cur.torso_deg) - min(torso),
        min(f.height_ratio for f in recent), float(np.mean([val(f.torso_deg) for f in recent])),
        float(np.mean([val(f.hip_drop) for f in recent])), t - ring[0].t,
    ]  # fmt: skip


def main_track(samples: list[Sample]) -> int | None:
    counts: dict[int, int] = defaultdict(int)
    for _, live in samples:
        for tid, _, seen in live:
            counts[tid] += seen
    return max(counts, key=counts.get) if counts else None  # type: ignore[arg-type]


def training_rows(clip: Clip, samples: list[Sample]) -> tuple[list[list[float]], list[int]]:
    """Labelled windows: the actor's track during the authors' fall interval (from 0.8 s in)
    is a fall; everything in everyday and quiet clips and before a fall is not; ASSIST-IoT's
    falls and lying clips have no interval and are left out of training."""
    xs, ys = [], []
    if clip.kind in ("immobile",) or (clip.kind == "fall" and clip.fall is None):
        return xs, ys
    actor = main_track(samples) if clip.kind == "fall" else None
    for t, live in samples:
        for tid, ring, seen in live:
            if not seen or not ring:
                continue
            label = 0
            if clip.kind == "fall":
                if t >= clip.fall[0] - EARLY_S and tid != actor:
                    continue
                if clip.fall[0] - EARLY_S <= t < clip.fall[0] + 0.8:
                    continue
                label = int(t >= clip.fall[0] + 0.8)
            xs.append(window(ring))
            ys.append(label)
    return xs, ys


def run_model(
    samples: list[Sample], probs: dict[tuple[int, int], float], p: float, hold: int
) -> list[float]:
    """Alert when a track's probability stays >= p for `hold` samples; re-arm after 1 s below."""
    above: dict[int, int] = defaultdict(int)
    below: dict[int, int] = defaultdict(int)
    open_: set[int] = set()
    alerts = []
    for i, (t, live) in enumerate(samples):
        for tid, _, _seen in live:
            prob = probs.get((i, tid))
            if prob is None:  # unseen: keeps its last state
                continue
            if prob >= p:
                above[tid] += 1
                below[tid] = 0
                if above[tid] >= hold and tid not in open_:
                    open_.add(tid)
                    alerts.append(t)
            else:
                above[tid] = 0
                below[tid] += 1
                if below[tid] * SPACING_S >= 1.0:
                    open_.discard(tid)
    return alerts


def model_probs(model, samples: list[Sample]) -> dict[tuple[int, int], float]:
    keys, rows = [], []
    for i, (_, live) in enumerate(samples):
        for tid, ring, seen in live:
            if seen and ring:
                keys.append((i, tid))
                rows.append(window(ring))
    if not rows:
        return {}
    return dict(zip(keys, model.predict_proba(np.asarray(rows))[:, 1], strict=True))


# -- tables --------------------------------------------------------------------------------------


@dataclass
class Row:
    group: str
    falls: int = 0
    found: int = 0
    adl: int = 0
    adl_alerted: int = 0
    quiet_s: float = 0.0
    quiet_alerts: int = 0
    pre_fall_alerts: int = 0
    delays: list[float] = field(default_factory=list)
    learned: str = ""


def summarise(group: str, outcomes: list[Outcome], learned: str = "") -> Row:
    r = Row(group, learned=learned)
    for o in outcomes:
        if o.clip.kind == "fall":
            r.falls += 1
            r.found += o.found()
            r.pre_fall_alerts += o.false_alerts()
            if (d := o.delay()) is not None:
                r.delays.append(d)
        elif o.clip.kind == "adl":
            r.adl += 1
            r.adl_alerted += bool(o.alerts)
        elif o.clip.kind == "quiet":
            r.quiet_s += o.duration_s
            r.quiet_alerts += len(o.alerts)
    return r


def print_table(title: str, rows: list[Row], total_name: str = "all groups (held out)") -> None:
    print(f"\n{title}")
    print(f"  {'held-out group':<34} {'falls found':>11} {'everyday alerted':>16} "
          f"{'quiet alerts (/cam-h)':>22} {'pre-fall':>8} {'delay p95 s':>11}")  # fmt: skip
    total = Row(total_name)
    for r in [*rows, total]:
        if r is not total:
            for k in ("falls", "found", "adl", "adl_alerted", "quiet_alerts", "pre_fall_alerts"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            total.quiet_s += r.quiet_s
            total.delays += r.delays
        found = f"{r.found}/{r.falls}" if r.falls else "-"
        adl = f"{r.adl_alerted}/{r.adl}" if r.adl else "-"
        quiet = (f"{r.quiet_alerts} ({r.quiet_alerts / (r.quiet_s / 3600):.1f})"
                 if r.quiet_s else "-")  # fmt: skip
        p95 = f"{np.percentile(r.delays, 95):.1f}" if r.delays else "-"
        print(f"  {r.group:<34} {found:>11} {adl:>16} {quiet:>22} {r.pre_fall_alerts:>8} "
              f"{p95:>11}")  # fmt: skip
    if total.delays:
        d = np.asarray(total.delays)
        print(
            f"  delays from the fall's end (s): median {np.median(d):.1f}, p95 "
            f"{np.percentile(d, 95):.1f}, max {d.max():.1f} ({len(d)} GMDCSA24 falls)"
        )
    print(f"  quiet corpus: {total.quiet_s / 60:.1f} min, {total.quiet_alerts} alerts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-rule", type=Path, help="write the rule learned on all groups here")
    ap.add_argument("--no-model", action="store_true", help="skip (b), the tree model")
    ap.add_argument("--jobs", type=int, default=2, help="processes for the rule grid")
    ap.add_argument("--no-box", action="store_true", help="grid without the lost-person box route")
    ap.add_argument("--no-look", action="store_true", help="grid without the turned second look")
    ap.add_argument("--look-mode", choices=("pose", "detect"), default=LOOK_MODE,
                    help="second look: MoveNet alone, or the detector then MoveNet")  # fmt: skip
    ap.add_argument("--looks", choices=LOOKS, help="record the samples through the daemon's "
                    "fall stage in this mode (default: the cached 0.2 s samples)")  # fmt: skip
    ap.add_argument(
        "--detect-every",
        type=float,
        default=None,
        help="seconds between person-stage looks with --looks (default: models/fight)",
    )
    ap.add_argument("--replay-rule", type=Path, metavar="DIR",
                    help="no learning: DIR/rule.json on every clip, in-sample")  # fmt: skip
    args = ap.parse_args(argv)

    items = clips()
    groups = sorted({c.group for c in items})
    grid = rules(box=not args.no_box, look=not args.no_look)
    if args.looks:
        by_var, dur = _recorded(items, args)
        pick = functools.partial(variant, args.looks)
        print(f"{len(items)} clips in {len(groups)} groups; recorded through the fall stage, "
              f"looks = {args.looks!r}, person stage every {args.detect_every:.4f} s, "
              f"{len(by_var)} recordings per clip")  # fmt: skip
    else:
        by_var, dur = _cached(items, args)
        pick = _looked
        print(f"{len(items)} clips in {len(groups)} groups; pose sampled every {SPACING_S} s")

    if args.replay_rule:
        return _replay(items, groups, by_var[pick(load_rule(args.replay_rule))], dur, args)

    # (a) every rule on every clip once; each fold picks on its training groups only.
    _SHARED.update(items=items, by_var=by_var, variant=pick, dur=dur)
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        per_rule = pool.map(_outcomes, grid, chunksize=64)
    rows, chosen = [], []
    for g in groups:
        train = [c for c in items if c.group != g]
        best = max(range(len(grid)), key=lambda i: objective([per_rule[i][c.path] for c in train]))
        chosen.append(grid[best])
        test = [per_rule[best][c.path] for c in items if c.group == g]
        r = grid[best]
        rows.append(summarise(g, test, f"{r.torso_deg}/{r.low_height}/{r.hip_drop}/{r.speed}"))
    print_table("(a) rule, thresholds learned leave-one-group-out", rows)
    folds = zip(groups, chosen, strict=True)
    print("  chosen per fold (look_s / lost_coverage / box_drop): " + ", ".join(
        f"{g}: {r.look_s}/{r.lost_coverage}/{r.box_drop}" for g, r in folds))  # fmt: skip
    best_all = max(range(len(grid)), key=lambda i: objective(list(per_rule[i].values())))
    rule = grid[best_all]
    print(f"  rule learned on all groups: {asdict(rule)}")
    inside = [summarise(g, [per_rule[best_all][c.path] for c in items if c.group == g])
              for g in groups]  # fmt: skip
    print_table("  the rule learned on all groups, in-sample", inside, "all groups (in-sample)")
    samples = by_var[pick(rule)]
    detail(items, samples, per_rule[best_all], rule)
    if args.write_rule:
        args.write_rule.mkdir(parents=True, exist_ok=True)
        learned = {k: "inf" if v == math.inf else v for k, v in asdict(rule).items()}
        (args.write_rule / rule_file(args.looks)).write_text(json.dumps(learned, indent=2) + "\n")

    if not args.no_model:
        compare_model(items, by_var[pick(replace(rule, look_s=0.0))], dur, groups)
    return 0


def _replay(items, groups, samples, dur, args: argparse.Namespace) -> int:
    """The rule of `--replay-rule` (e.g. the shipped one) on every clip's samples."""
    rule = load_rule(args.replay_rule)
    outs = {c.path: Outcome(c, run_rule(samples[c.path], rule), dur[c.path]) for c in items}
    rows = [summarise(g, [outs[c.path] for c in items if c.group == g]) for g in groups]
    print_table(f"{args.replay_rule / RULE_FILE}, in-sample", rows, "all groups (in-sample)")
    detail(items, samples, outs, rule)
    return 0


def _progress(line: str) -> None:
    """Extraction and recording progress, on stderr (the tables go to stdout)."""
    print(line, file=sys.stderr)


def _looked(rule: FallRule) -> bool:
    """The cached samples a rule replays: with the turned second looks or without."""
    return rule.look_s > 0


def _cached(items: list[Clip], args: argparse.Namespace) -> tuple[dict, dict[Path, float]]:
    """The samples from the detector and MoveNet every 0.2 s (fall_data's cache), without and
    with the turned second looks."""
    seen = extract_all(items, progress=_progress)
    looks = (
        {} if args.no_look else extract_all_looks(items, seen, args.look_mode, progress=_progress)
    )
    samples = {c.path: track_samples(seen[c.path]) for c in items}
    looked = {c.path: track_samples(seen[c.path], looks.get(c.path)) for c in items}
    if looks:
        print(f"turned second looks ({args.look_mode}, look_s {LOOK_S}), per kind of clip:")
        for kind in ("fall", "adl", "immobile", "quiet"):
            got = [looks[c.path] for c in items if c.kind == kind]
            print(f"  {kind:<8} {len(got):3d} clips: {sum(g.looks for g in got)} looks, "
                  f"{sum(g.calls for g in got)} extra model calls, "
                  f"{sum(len(g.found) for g in got)} found someone, "
                  f"{sum(bool(g.looks) for g in got)} clips looked in")  # fmt: skip
    dur = {c.path: seen[c.path].duration_s for c in items}
    return {False: samples, True: looked}, dur


def _recorded(items: list[Clip], args: argparse.Namespace) -> tuple[dict, dict[Path, float]]:
    """The samples recorded through the daemon's fall stage in `args.looks`, once per value of
    the rule fields they depend on that the grid offers (scripts/fall_record.py)."""
    if args.detect_every is None:
        args.detect_every = person_stage_spacing()
    offered = {**GRID, "look_s": [0.0] if args.no_look else GRID["look_s"]}
    base = loosest(offered) if args.looks == "adaptive" else None
    return record_all(items, args.looks, variants(args.looks, offered), args.detect_every,
                      args.look_mode, args.jobs, _progress, base)  # fmt: skip


def detail(items, samples, outcomes, rule: FallRule) -> None:
    """Per clip for the rule learned on all groups: falls and the everyday clips that show
    sitting or lying down, with the quantities that tell them apart."""
    print("\n  per clip (rule learned on all groups; peak hip speed / max hip drop / max torso):")
    for c in items:
        if c.kind == "quiet":
            continue
        peak = drop = torso = 0.0
        for _, live in samples[c.path]:
            for _, ring, seen in live:
                if seen and ring:
                    f = ring[-1]
                    peak = max(peak, f.hip_speed)
                    drop = max(drop, 0.0 if math.isnan(f.hip_drop) else f.hip_drop)
                    torso = max(torso, 0.0 if math.isnan(f.torso_deg) else f.torso_deg)
        o = outcomes[c.path]
        d = o.delay()
        verdict = ("FOUND" if o.found() else "missed") if c.kind == "fall" else (
            "ALERT" if o.alerts else "quiet")  # fmt: skip
        extra = f" delay {d:+.1f} s" if d is not None else ""
        print(f"    {c.kind:<8} {c.path.name:<36} {verdict:<6} {peak:4.2f} {drop:5.2f} "
              f"{torso:4.0f}{extra}  {c.note[:50]}")  # fmt: skip


def compare_model(items, samples, dur, groups) -> None:
    data = {c.path: training_rows(c, samples[c.path]) for c in items}
    rows = []
    for g in groups:
        train = [c for c in items if c.group != g]
        x = [row for c in train for row in data[c.path][0]]
        y = [lab for c in train for lab in data[c.path][1]]
        model = GradientBoostingClassifier(n_estimators=150, max_depth=3, random_state=0)
        model.fit(np.asarray(x), np.asarray(y))
        probs = {c.path: model_probs(model, samples[c.path]) for c in items}
        best, best_key = None, None
        for p, hold in itertools.product((0.3, 0.5, 0.7, 0.9), (2, 4, 6)):
            outs = [Outcome(c, run_model(samples[c.path], probs[c.path], p, hold), dur[c.path])
                    for c in train]  # fmt: skip
            key = objective(outs)
            if best_key is None or key > best_key:
                best, best_key = (p, hold), key
        p, hold = best
        test = [Outcome(c, run_model(samples[c.path], probs[c.path], p, hold), dur[c.path])
                for c in items if c.group == g]  # fmt: skip
        rows.append(summarise(g, test, f"p>={p} x{hold}"))
    print_table("(b) gradient boosting on window features, leave-one-group-out", rows)


if __name__ == "__main__":
    sys.exit(main())
