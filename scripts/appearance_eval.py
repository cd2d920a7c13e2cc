"""A frozen pretrained appearance signal for fights (ImageNet MobileNetV2), cross-validated:
folds grouped by source (fight set) and by scene (quiet corpus).

    nice -n 10 python scripts/appearance_eval.py [--data ../fight-people-data]
        [--quiet ../shared/data/quiet] [--folds 5] [--seed 0] [--side 96]

Every clip of the fight training data (the 309 clips `models/fight` was trained on, read as
`har-daemon cv` reads them: scan_dataset, grouped_kfold) is sampled as the shipped model takes
it: 20 frames evenly over the clip at working resolution, its regions of people found by the
person detector under model.json's `person_region` rules (offline.clip.person_frames, the
function `evaluate` and training cut their windows with). The quiet corpus is sampled as the
daemon samples a camera (model.json's frame spacing, the detector every `detect_every` samples)
with a 20-frame window every ~1 s, each window's regions from its own looks. Each sampled frame
is embedded three ways by model.appearance's encoder: the whole frame, each region, and each
region's 1.5x wider context (`CONTEXT`), at the encoder file's input side or `--side`.
Embeddings are cached per clip under /tmp/har-appearance-cache (never in the repository; a
named side is part of the key): a rerun takes seconds.

Window features (appearance_features.window_features: mean, std, mean absolute change of the
20 embeddings) are classified by a logistic regression and a gradient-boosted tree (each after
its own PCA, fitted on the training folds only), trained with the quiet scenes of the training
folds as negatives and without them. Prints one JSON object: per signal (whole frame, region,
context, their max and mean fusions), classifier and training, the 5-fold accuracy mean and
std, both recalls, per fold, per source group (right, clips), and the quiet windows alerted,
in all and per scene, at 0.5 and at a threshold chosen per fold on its training folds'
out-of-fold quiet windows (at most 5 % alerting). The shipped person LRCN's CV row (models/fight/
model.json) is quoted, and its own scores on the same quiet windows (it never trained on the
quiet corpus) are measured for comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from appearance_features import (
    MAX_QUIET_FP,
    PCA_DIMS,
    Samples,
    Units,
    fight_folds,
    fold_scores,
    fold_thresholds,
    fuse,
    models,
    out_of_fold,
    quiet_folds,
    quiet_site,
    report,
    unit_max,
    window_features,
)

from har_daemon.core.errors import DataError, ModelError, VideoError
from har_daemon.core.paths import bundled
from har_daemon.model.appearance import load_encoder
from har_daemon.model.meta import read_meta
from har_daemon.model.person import DETECTOR_FILE, PersonDetector
from har_daemon.model.pretrained_head import CONTEXT
from har_daemon.model.pretrained_head import context_box as pretrained_context
from har_daemon.model.regions import Region, crop_window, ring_frame, window_regions
from har_daemon.model.registry import create_backend
from har_daemon.offline.clip import person_frames
from har_daemon.offline.quiet import read_quiet
from har_daemon.runtime.people import Detector
from har_daemon.training.dataset import ClipRecord, scan_dataset
from har_daemon.training.evaluate import predict_batches
from har_daemon.training.people import PersonClip, training_indices
from har_daemon.video.frames import TimedFrames
from har_daemon.video.sampling import FrameSampler

REPO = Path(__file__).resolve().parents[1]
FIGHT_MODEL = bundled("models/fight")
META = read_meta(FIGHT_MODEL)
RULES = META.person_region
assert RULES is not None
ALERT = "fight"
CLASSES = ["fight", "noFight"]
T = META.sequence_length
INTERP = META.resize_interpolation
QUIET_STEP_S = 1.0
"""A quiet clip gives a window about every second."""
CACHE = Path("/tmp/har-appearance-cache")
CACHE_VERSION = 1
SIGNALS = ("frame", "region", "context")


def lrcn_cv() -> dict[str, Any]:
    """The shipped LRCN's cross-validation as its model.json records it (not rerun)."""
    cv = META.evaluation["cross_validation"]

    def ms(d: dict[str, Any]) -> list[float]:
        return [round(d["mean"], 3), round(d["std"], 3)]

    recall = cv["per_class_recall"]
    return {
        "source": f"models/fight/model.json: {cv['folds']}-fold CV grouped by "
        f"{cv['grouped_by']}, {cv['n_clips']} clips, argmax",
        "accuracy": ms(cv["accuracy"]),
        "fight_recall": ms(recall["fight"]),
        "nofight_recall": ms(recall["noFight"]),
        "per_fold_accuracy": [round(v, 3) for v in cv["accuracy"]["per_fold"]],
    }


class Encoder(Protocol):
    def embed(self, images: np.ndarray) -> np.ndarray:
        """(N, D) float32 embeddings of (N, H, W, 3) uint8 BGR images."""
        ...


class Thumbnail:
    """The control (`--encoder thumbnail`): no learned feature, each picture shrunk to 4x4
    colour pixels (48 values). What this separates, the clips give away by their look: colour
    and layout of the place, not what the people do."""

    SIDE = 4

    def embed(self, images: np.ndarray) -> np.ndarray:
        side = (self.SIDE, self.SIDE)
        small = [cv2.resize(im, side, interpolation=cv2.INTER_AREA).reshape(-1) for im in images]
        return np.asarray(small, np.float32).reshape(len(images), -1) / 255.0


def embed_dim(enc: Encoder) -> int:
    return int(enc.embed(np.zeros((1, 8, 8, 3), np.uint8)).shape[1])


def context_box(region: Region, frame_hw: tuple[int, int]) -> Region:
    """`region`'s context square under the fight model's person-region rules (the daemon's)."""
    return pretrained_context(region, frame_hw, RULES)


def crops(frames: np.ndarray, box: Region) -> np.ndarray:
    x1, y1, x2, y2 = box
    return np.ascontiguousarray(frames[:, y1:y2, x1:x2])


def _file_id(path: Path) -> list[object]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _content_id(path: Path) -> list[object]:
    """A bundled model by name and size, not where it lies: every worktree shares the cache."""
    return [path.name, path.stat().st_size]


def cache_key(path: Path, encoder_id: list[object]) -> str:
    blob = json.dumps([
        _file_id(path), RULES.model_dump(), META.frame_spacing_s, T, list(META.frame_size),
        _content_id(Path(DETECTOR_FILE)), encoder_id, CONTEXT, QUIET_STEP_S, CACHE_VERSION,
    ])  # fmt: skip
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def encoder_id(name: str, side: int | None = None) -> list[object]:
    """What identifies the encoder: every file of the bundled models/appearance, and the input
    side when one other than the file's is asked for (`--side`)."""
    if name == "thumbnail":
        return ["thumbnail", Thumbnail.SIDE]
    folder = bundled("models/appearance")
    files: list[object] = [[p.name, p.stat().st_size] for p in sorted(folder.iterdir())
                           if p.is_file()]  # fmt: skip
    return files if side is None else [*files, ["side", side]]


def _cached(path: Path, key: str, make) -> dict[str, np.ndarray]:
    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / f"{path.stem}-{key}.npz"
    if file.is_file():
        with np.load(file) as z:
            return dict(z)
    out = make()
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(file)
    return out


def embed_regions(enc: Encoder, frames: np.ndarray, regions: list[Region]):
    """(R, T, D) embeddings of each region and of its context over `frames`."""
    hw = (int(frames.shape[1]), int(frames.shape[2]))
    reg = [enc.embed(crops(frames, r)) for r in regions]
    ctx = [enc.embed(crops(frames, context_box(r, hw))) for r in regions]
    return reg, ctx


def fight_clip(rec: ClipRecord, enc: Encoder, detector: Detector) -> dict[str, np.ndarray]:
    """One fight-set clip: whole-frame, region and context embeddings (T frames each), and
    which regions teach (training.people.training_indices on the shipped model's crops)."""
    seen = person_frames(rec.path, META, detector)
    frames, regions = seen.frames, seen.regions
    frame = enc.embed(frames)
    reg, ctx = embed_regions(enc, frames, regions)
    teach = np.zeros(len(regions), bool)
    if regions:
        small = np.stack([crop_window(frames, r, META.frame_size, INTERP) for r in regions])
        teach[training_indices(PersonClip(rec, small, np.zeros((0, 4)), 0.0), ALERT)] = True
    d = frame.shape[1]
    return {
        "frame": frame.astype(np.float16),
        "region": np.asarray(reg, np.float16).reshape(len(regions), T, d),
        "context": np.asarray(ctx, np.float16).reshape(len(regions), T, d),
        "teach": teach,
    }


def sampled(path: Path) -> list[np.ndarray]:
    """A file's frames as the daemon samples a camera: at the model's spacing, working size."""
    sampler = FrameSampler(META.frame_spacing_s)
    return [ring_frame(f, META) for t, f in TimedFrames(path) if sampler.offer(t)]


def window_ends(n: int) -> list[int]:
    """The last sample of each quiet window: the first full window, then every ~second (a
    whole number of `detect_every` steps, so every window sees the same pattern of looks)."""
    step = max(1, round(QUIET_STEP_S / META.frame_spacing_s / RULES.detect_every))
    return list(range(T - 1, n, step * RULES.detect_every))


def quiet_clip(path: Path, enc: Encoder, detector: Detector, lrcn: Any) -> dict[str, np.ndarray]:
    """One quiet clip's windows: per-sample whole-frame embeddings; per region of each window
    its region and context embeddings, and the shipped LRCN's P(fight) on its crop."""
    got = sampled(path)
    if len(got) < T:  # too short for one window: no footage the daemon could alert on
        d = embed_dim(enc)
        none = np.zeros((0, T, d), np.float16)
        return {
            "frame": np.zeros((len(got), d), np.float16),
            "ends": np.zeros(0, int),
            "owner": np.zeros(0, int),
            "region": none,
            "context": none,
            "lrcn": np.zeros(0),
        }
    frames = np.stack(got)
    hw = (int(frames.shape[1]), int(frames.shape[2]))
    looks: dict[int, np.ndarray] = {}
    frame = np.concatenate([enc.embed(frames[i : i + 32]) for i in range(0, len(frames), 32)])
    memo: dict[tuple[int, Region], np.ndarray] = {}

    def embed(first: int, box: Region) -> np.ndarray:
        todo = [k for k in range(first, first + T) if (k, box) not in memo]
        if todo:
            got = enc.embed(crops(frames[todo], box))
            memo.update({(k, box): e for k, e in zip(todo, got, strict=True)})
        return np.stack([memo[(k, box)] for k in range(first, first + T)])

    ends, owner, reg, ctx, p_lrcn = window_ends(len(frames)), [], [], [], []
    for w, e in enumerate(ends):
        first = e - T + 1
        idx = [first + d for d in range(T - 1, -1, -RULES.detect_every)][::-1]
        for k in idx:
            if k not in looks:
                looks[k] = detector.detect(frames[k])
        for r in window_regions([looks[k] for k in idx], hw, RULES):
            owner.append(w)
            reg.append(embed(first, r))
            ctx.append(embed(first, context_box(r, hw)))
            small = crop_window(frames[first : e + 1], r, META.frame_size, INTERP)[None]
            p_lrcn.append(float(predict_batches(lrcn, small, META)[0, CLASSES.index(ALERT)]))
    d = frame.shape[1]
    return {
        "frame": frame.astype(np.float16),
        "ends": np.asarray(ends, int),
        "owner": np.asarray(owner, int),
        "region": np.asarray(reg, np.float16).reshape(len(owner), T, d),
        "context": np.asarray(ctx, np.float16).reshape(len(owner), T, d),
        "lrcn": np.asarray(p_lrcn, float),
    }


def build(args: argparse.Namespace):
    """(units, samples per signal, the LRCN's quiet window scores, what the folds hold)."""
    records = scan_dataset(args.data, CLASSES)
    fold_of = fight_folds(records, args.folds, args.seed)
    quiet = read_quiet(args.quiet)
    enc: Encoder = (
        Thumbnail()
        if args.encoder == "thumbnail"
        else load_encoder(threads=args.threads, side=args.side)
    )
    eid = encoder_id(args.encoder, args.side)
    args.side = getattr(enc, "input_side", None)  # what ran, for the report
    detector = PersonDetector(threads=args.threads, score_threshold=RULES.min_score)
    lrcn = create_backend("litert", FIGHT_MODEL, threads=args.threads)
    y, fold, group, is_quiet = [], [], [], []
    xs: dict[str, list[np.ndarray]] = {s: [] for s in SIGNALS}
    owners: dict[str, list[int]] = {s: [] for s in SIGNALS}
    teach: dict[str, list[bool]] = {s: [] for s in SIGNALS}
    start = time.monotonic()

    def add(signal: str, feats: np.ndarray, owner: np.ndarray, taught: np.ndarray) -> None:
        xs[signal] += list(feats)
        owners[signal] += [int(o) for o in owner]
        teach[signal] += [bool(t) for t in taught]

    skipped = []
    for n, rec in enumerate(records):
        try:
            z = _cached(rec.path, cache_key(rec.path, eid), partial(fight_clip, rec, enc, detector))
        except VideoError as e:
            skipped.append(str(e))
            continue
        u = len(y)
        y.append(int(rec.label == ALERT))
        fold.append(fold_of[rec.path])
        group.append(rec.group)
        is_quiet.append(False)
        add("frame", window_features(z["frame"])[None], np.array([u]), np.ones(1, bool))
        for s in ("region", "context"):
            add(s, window_features(z[s]), np.full(len(z[s]), u), z["teach"])
        if n % 20 == 0:
            print(f"fight set {n}/{len(records)} {time.monotonic() - start:.0f}s", file=sys.stderr)
    sites = {c.scene: quiet_site(c.scene) for c in quiet}
    zs = []
    for c in quiet:
        make = partial(quiet_clip, c.path, enc, detector, lrcn)
        zs.append(_cached(c.path, cache_key(c.path, eid), make))
        print(f"quiet {c.path.name} {time.monotonic() - start:.0f}s", file=sys.stderr)
    load: dict[str, int] = {}
    for c, z in zip(quiet, zs, strict=True):
        load[sites[c.scene]] = load.get(sites[c.scene], 0) + len(z["ends"])
    site_fold = quiet_folds(load, args.folds)
    lrcn_p, lrcn_scene = [], []
    for c, z in zip(quiet, zs, strict=True):
        base = len(y)
        for e in z["ends"]:
            y.append(0)
            fold.append(site_fold[sites[c.scene]])
            group.append(c.scene)
            is_quiet.append(True)
            add("frame", window_features(z["frame"][e - T + 1 : e + 1])[None],
                np.array([len(y) - 1]), np.ones(1, bool))  # fmt: skip
        for s in ("region", "context"):
            add(s, window_features(z[s]), base + z["owner"], np.ones(len(z["owner"]), bool))
        lrcn_p += list(unit_max(z["lrcn"], z["owner"], len(z["ends"])))
        lrcn_scene += [c.scene] * len(z["ends"])
    u = Units(np.array(y), np.array(fold), np.array(group), np.array(is_quiet))
    d = 3 * embed_dim(enc)
    samples = {
        s: Samples(
            np.asarray(xs[s], np.float32).reshape(-1, d),
            np.asarray(owners[s], int),
            np.asarray(teach[s], bool),
        )
        for s in SIGNALS
    }
    folds = {
        "fight_set_sources": [sorted({r.group for r in records if fold_of[r.path] == i})
                              for i in range(args.folds)],
        "quiet_sites": site_fold,
        "skipped_clips": skipped,
    }  # fmt: skip
    return u, samples, (np.array(lrcn_p), np.array(lrcn_scene)), folds


def lrcn_quiet(p: np.ndarray, scene: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    """The shipped LRCN on the quiet windows (max over regions; nobody found: 0)."""
    p = np.nan_to_num(p)
    return {
        name: {
            "threshold": round(t, 3),
            "quiet_windows_alerted": [int((p >= t).sum()), len(p)],
            "quiet_alerted_fraction": round(float((p >= t).mean()), 3) if len(p) else None,
            "quiet_per_scene": {
                g: [int((p[m] >= t).sum()), int(m.sum()), round(float((p[m] >= t).mean()), 3)]
                for g in sorted(set(scene))
                for m in [scene == g]
            },
        }
        for name, t in thresholds.items()
    }


def evaluate(u: Units, samples: dict[str, Samples], k: int, pca: int, seed: int):
    """Every variant's figures at 0.5 and at its fold-chosen threshold."""
    out: dict[str, Any] = {}
    for mname, make in models(pca, seed).items():
        for training, with_quiet in (("with_quiet", True), ("without_quiet", False)):
            t0 = time.monotonic()
            sc = {s: fold_scores(make, samples[s], u, k, with_quiet) for s in SIGNALS}
            variants = dict(sc)
            for s in ("region", "context"):
                for how in ("max", "mean"):
                    variants[f"{how}(frame,{s})"] = fuse(sc["frame"], sc[s], how)
            for vname, scores in variants.items():
                p = out_of_fold(scores, u)
                out[f"{mname}/{training}/{vname}"] = {
                    "at_0.5": report(p, u, k, 0.5),
                    "at_fp5": report(p, u, k, fold_thresholds(scores, u, k)),
                }
            print(f"{mname}/{training}: {time.monotonic() - t0:.0f}s", file=sys.stderr)
    return out


def summary(variants: dict[str, Any]) -> dict[str, Any]:
    """One line per variant and threshold: the figures to compare with the LRCN row."""
    return {
        f"{name} {at}": {
            "accuracy": r["accuracy"],
            "fight_recall": r["fight_recall"],
            "nofight_recall": r["nofight_recall"],
            "quiet_alerted": r["quiet_alerted_fraction"],
        }
        for name, v in variants.items()
        for at, r in v.items()
    }


def add_side(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--side",
        type=int,
        default=None,
        help="the encoder's input side in px (a multiple of 32; default: the model file's, "
        "128); named, it keys the embedding cache",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / ".." / "fight-people-data")
    ap.add_argument("--quiet", type=Path, default=REPO / ".." / "shared" / "data" / "quiet")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pca", type=int, default=PCA_DIMS, help="PCA components per model")
    ap.add_argument("--threads", type=int, default=2, help="detector, encoder and LRCN threads")
    ap.add_argument(
        "--encoder",
        choices=("mobilenetv2", "thumbnail"),
        default="mobilenetv2",
        help="the bundled models/appearance, or the 4x4-pixel control (Thumbnail)",
    )
    add_side(ap)
    args = ap.parse_args()
    try:
        u, samples, (lrcn_p, lrcn_scene), folds = build(args)
    except (DataError, ModelError) as e:  # a missing folder or clip, a bad --side: one line
        print(f"appearance_eval: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    variants = evaluate(u, samples, args.folds, args.pca, args.seed)
    at = META.training.get("alert_threshold", {}).get("threshold")
    result = {
        "units": {"fight_set_clips": int((~u.quiet).sum()), "quiet_windows": int(u.quiet.sum())},
        "samples": {s: len(samples[s].x) for s in SIGNALS},
        "fight_clips_without_region": int((~u.quiet).sum())
        - len(set(samples["region"].owner) & set(np.flatnonzero(~u.quiet))),
        "window": {"frames": T, "fight_set": "evenly over the clip",
                   "quiet_spacing_s": META.frame_spacing_s, "quiet_step_s": QUIET_STEP_S},
        "encoder": args.encoder,
        "side": args.side,
        "context": CONTEXT,
        "pca": args.pca,
        "max_quiet_fp": MAX_QUIET_FP,
        "folds": folds,
        "shipped_lrcn": {
            "cv": lrcn_cv(),
            "quiet": lrcn_quiet(lrcn_p, lrcn_scene, {"0.5": 0.5, **({"alert": at} if at else {})}),
        },
        "summary": summary(variants),
        "variants": variants,
    }  # fmt: skip
    print(compact(json.dumps(result, indent=1)))


def compact(text: str) -> str:
    """Indented JSON with each list of plain values on one line: a figure per line, not a
    number per line."""
    return re.sub(
        r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text
    )


if __name__ == "__main__":
    main()
