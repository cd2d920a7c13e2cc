"""Convert the MoveNet SinglePose Lightning SavedModel (made by tfjs-graph-converter) to LiteRT.

Run inside the conversion venv (tensorflow is needed here, never at inference time):

    python convert_movenet.py TFJS_MODEL_JSON SAVED_MODEL_DIR OUT.tflite --frame FRAME.png
        [--quant float16|dynamic|int8 [--calibration calibration.npz]]

The graph needs no surgery: its input is already NHWC int32 [1, 192, 192, 3] (RGB, 0..255) and
its one output is [1, 1, 17, 3] (y, x, score per COCO keypoint, y and x in 0..1 of the input).
Builtin ops only. `--quant`:

* float16 (default): weights stored as float16, exactly as the TF.js package stores them
  (lossless against the source; XNNPACK widens them to float32 once, at load).
* dynamic: int8 weights, float activations (dynamic-range quantisation; no data needed).
* int8: int8 weights and activations everywhere, input and output as the float model's (int32
  in, float32 out); activation ranges calibrated on `--calibration`, real person crops cut the
  daemon's way (pose_crops.py's calibration.npz).
* int8-body: as int8, but the graph's own decoding after the heads (and the input's scaling)
  stays float: in int8 its argmax and offsets are coarse, and XNNPACK does not take it.
* int8-backbone: as int8-body, and the four heads stay float too (closer scores).

Check: the TF.js graph itself (loaded into TensorFlow by tfjs-graph-converter) and the LiteRT
file are run on the same real frame, letterboxed to 192x192; the largest keypoint difference is
printed and must stay under 1e-2 (of the input side) and 1e-2 in score for float16 (the
quantised models are judged on many crops by compare_pose_models.py instead).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import tensorflow as tf
from tfjs_graph_converter import api as tfjs_api
from tfjs_graph_converter.common import CompatMode

SIDE = 192
TOLERANCE = 1e-2


QUANTS = ("float16", "dynamic", "int8", "int8-body", "int8-backbone")
TAIL = re.compile(r"^StatefulPartitionedCall/[^/;]+$")
"""Output tensor names of the graph's own top-level ops (no Keras layer scope): the input's
scaling and the decoding after the heads (sigmoids, centre pick, distance weighting, argmax,
gathers, offsets): `int8-body` and `int8-backbone` keep them float."""
HEADS = re.compile(r"^StatefulPartitionedCall/(center|kpt_heatmap|kpt_offset|kpt_regress)_0/")
"""The four heads' layers (48x48 convolutions): `int8-backbone` keeps them float too."""


def _float_nodes(saved_model_dir: str, quant: str) -> list[str]:
    """The float model's op outputs that `quant` leaves in float (empty for a full int8)."""
    if quant == "int8":
        return []
    plain = tf.lite.Interpreter(
        model_content=tf.lite.TFLiteConverter.from_saved_model(saved_model_dir).convert()
    )
    names = {t["index"]: t["name"] for t in plain.get_tensor_details()}
    keep = []
    for op in plain._get_ops_details():
        for i in op["outputs"]:
            first = names[i].split(";")[0]
            if TAIL.match(first) or (quant == "int8-backbone" and HEADS.match(first)):
                keep.append(names[i])
    return keep


def convert(saved_model_dir: str, quant: str = "float16", calibration: str | None = None) -> bytes:
    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if not quant.startswith("int8"):
        return conv.convert()
    if calibration is None:
        raise SystemExit(f"convert_movenet.py: --quant {quant} needs --calibration")
    crops = np.load(calibration)["crops"]

    def representative():
        for crop in crops:
            yield [crop[None].astype(np.int32)]

    conv.representative_dataset = representative
    if quant == "int8":
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return conv.convert()
    options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=_float_nodes(saved_model_dir, quant)
    )
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=conv, debug_dataset=representative, debug_options=options
    )
    return debugger.get_nondebug_quantized_model()


def letterbox(path: str) -> np.ndarray:
    """A real frame as the model's [1, 192, 192, 3] int32 RGB input, aspect kept, black bars."""
    raw = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    img = tf.image.resize_with_pad(tf.cast(raw, tf.float32), SIDE, SIDE)
    return tf.cast(tf.round(img), tf.int32).numpy()[None]


def run_tfjs(model_json: str, x: np.ndarray) -> np.ndarray:
    # TensorFlow cannot run TF.js's fused conv ops as they are; TFLITE mode splits them into
    # the plain ops they stand for (conv, bias add, relu6), weights untouched.
    graph = tfjs_api.load_graph_model(model_json, compat_mode=CompatMode.TFLITE)
    with tf.compat.v1.Session(graph=graph) as sess:
        return sess.run("Identity:0", feed_dict={"input:0": x})


def run_litert(model: bytes, x: np.ndarray) -> np.ndarray:
    interp = tf.lite.Interpreter(model_content=model)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    assert list(inp["shape"]) == [1, SIDE, SIDE, 3] and inp["dtype"] == np.int32, inp
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_json")
    ap.add_argument("saved_model")
    ap.add_argument("out")
    ap.add_argument("--frame", required=True, help="a real image with one person in view")
    ap.add_argument("--quant", choices=QUANTS, default="float16")
    ap.add_argument("--calibration", help="pose_crops.py's calibration.npz (for --quant int8)")
    args = ap.parse_args(argv)
    model = convert(args.saved_model, args.quant, args.calibration)
    x = letterbox(args.frame)
    ref = run_tfjs(args.model_json, x).reshape(17, 3)
    got = run_litert(model, x).reshape(17, 3)
    dxy = float(np.abs(ref[:, :2] - got[:, :2]).max())
    dscore = float(np.abs(ref[:, 2] - got[:, 2]).max())
    print(
        f"[convert] TF.js graph vs LiteRT on {os.path.basename(args.frame)}: "
        f"max |dy,dx| {dxy:.2e}, max |dscore| {dscore:.2e}, "
        f"mean score {ref[:, 2].mean():.3f}",
        file=sys.stderr,
    )
    if args.quant == "float16" and (dxy > TOLERANCE or dscore > TOLERANCE):
        print("[convert] ERROR: LiteRT outputs differ from the TF.js graph", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
