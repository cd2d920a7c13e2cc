"""Convert the MoveNet SinglePose Lightning SavedModel (made by tfjs-graph-converter) to LiteRT.

Run inside the conversion venv (tensorflow is needed here, never at inference time):

    python convert_movenet.py TFJS_MODEL_JSON SAVED_MODEL_DIR OUT.tflite --frame FRAME.png

The graph needs no surgery: its input is already NHWC int32 [1, 192, 192, 3] (RGB, 0..255) and
its one output is [1, 1, 17, 3] (y, x, score per COCO keypoint, y and x in 0..1 of the input).
Weights are stored as float16, exactly as the TF.js package stores them (lossless against the
source; XNNPACK widens them to float32 once, at load). Builtin ops only.

Check: the TF.js graph itself (loaded into TensorFlow by tfjs-graph-converter) and the LiteRT
file are run on the same real frame, letterboxed to 192x192; the largest keypoint difference is
printed and must stay under 1e-2 (of the input side) and 1e-2 in score.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import tensorflow as tf
from tfjs_graph_converter import api as tfjs_api
from tfjs_graph_converter.common import CompatMode

SIDE = 192
TOLERANCE = 1e-2


def convert(saved_model_dir: str) -> bytes:
    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


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
    args = ap.parse_args(argv)
    model = convert(args.saved_model)
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
    if dxy > TOLERANCE or dscore > TOLERANCE:
        print("[convert] ERROR: LiteRT outputs differ from the TF.js graph", file=sys.stderr)
        return 1
    with open(args.out, "wb") as f:
        f.write(model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
