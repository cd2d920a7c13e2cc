"""Convert the NanoDet-g SavedModel (made by tfjs-graph-converter) into LiteRT .tflite files.

Run inside the conversion venv (tensorflow is needed here, never at inference time):

    python convert_nanodet.py SAVED_MODEL_DIR OUT.tflite --size 416 [--size-h 416] [--float]

Why graph surgery: the ONNX->TF->TF.js export froze the four bilinear resizes of NanoDet's PAN
(upsample x2 / downsample x0.5) to the sizes for a 416x416 input ([26,26], [52,52], [26,26],
[13,13]) and the input placeholder to 1x3x416x416. Everything else is size-agnostic (the head
reshapes use [1, C, -1]), so rewriting those constants and the placeholder yields a valid model
for any input whose sides are multiples of 32 (e.g. 320x320, or 512x288 for 16:9 frames).
At 416x416 the rewrite is a no-op.

Output order is fixed: cls_s8, reg_s8, cls_s16, reg_s16, cls_s32, reg_s32
(cls: [1, H*W, 80] sigmoid scores
reg: [1, H*W, 44] = 4 sides x 11 distribution logits).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import tensor_util

ORIG_SIZE = 416
INPUT_NAME = "input_1"
# tfjs signature names -> stride order (verified by their shapes: 2704=52^2, 676=26^2, 169=13^2)
OUTPUTS = ["Identity", "Identity_3", "Identity_1", "Identity_4", "Identity_2", "Identity_5"]


def load_graph_def(saved_model_dir: str) -> tf.compat.v1.GraphDef:
    """Return the frozen GraphDef of the SavedModel's serving signature (weights are constants)."""
    model = tf.saved_model.load(saved_model_dir)
    fn = model.signatures["serving_default"]
    return fn.graph.as_graph_def()


def patch_input_size(graph_def: tf.compat.v1.GraphDef, height: int, width: int) -> int:
    """Rewrite the input placeholder and the frozen PAN resize sizes for a height x width input.

    Returns the number of resize constants rewritten (must be 4).
    """
    if height % 32 or width % 32:
        raise ValueError("input sides must be multiples of 32 (largest stride)")
    nodes = {n.name: n for n in graph_def.node}
    for n in graph_def.node:
        if n.name == INPUT_NAME and n.op == "Placeholder":
            dims = n.attr["shape"].shape.dim
            assert [d.size for d in dims] == [1, 3, ORIG_SIZE, ORIG_SIZE], dims
            dims[2].size, dims[3].size = height, width
    patched = 0
    for n in graph_def.node:
        if n.op != "ResizeBilinear":
            continue
        const = nodes[n.input[1].split(":")[0]]
        old = tensor_util.MakeNdarray(const.attr["value"].tensor)
        new = np.array([old[0] * height // ORIG_SIZE, old[1] * width // ORIG_SIZE], np.int32)
        assert (old * np.array([height, width]) % ORIG_SIZE == 0).all(), (old, height, width)
        const.attr["value"].tensor.CopyFrom(tensor_util.make_tensor_proto(new))
        patched += 1
    if patched != 4:
        raise RuntimeError(f"expected 4 ResizeBilinear ops, found {patched}")
    return patched


def _const(graph_def, name: str, value: np.ndarray):
    """Append a new Const node (never mutate shared constants)."""
    n = graph_def.node.add()
    n.name, n.op = name, "Const"
    t = tensor_util.make_tensor_proto(value)
    n.attr["dtype"].type = t.dtype
    n.attr["value"].tensor.CopyFrom(t)
    return name


def _const_value(nodes: dict, ref: str) -> np.ndarray:
    return tensor_util.MakeNdarray(nodes[ref.split(":")[0]].attr["value"].tensor)


def to_nhwc(graph_def: tf.compat.v1.GraphDef) -> dict:
    """Rewrite the ONNX-style NCHW graph to NHWC end to end
    returns op counts for the log.

    Why: onnx-tf wraps every NHWC Conv2D/MaxPool/ResizeBilinear in Transpose ops and keeps Pad,
    LeakyRelu, Add, Concat and Split in NCHW, so the converted model spends much of its time
    copying feature maps (76 TRANSPOSE ops at 416x416). Here every 4-D NCHW tensor that is only
    fed through layout-agnostic ops is kept in NHWC instead: Pad paddings and Concat/Split axes
    are permuted, the NHWC->NCHW->NHWC transpose pairs become Identity, the head's
    ``Reshape [1,C,-1] + Transpose [0,2,1]`` becomes ``Reshape [1,-1,C]`` (same cell order), and
    symmetric zero Pads in front of stride-1 odd-kernel VALID convolutions are folded into SAME
    padding. The input becomes ``[1, H, W, 3]``. Outputs are unchanged (checked by the caller).
    """
    nodes = {n.name: n for n in graph_def.node}
    base = lambda ref: ref.split(":")[0]  # noqa: E731
    perm = lambda n: _const_value(nodes, n.input[1]).tolist() if n.op == "Transpose" else None  # noqa: E731
    # 1. tensors (node names) that will hold NHWC data although the original graph had NCHW
    s: set[str] = set()
    for n in graph_def.node:  # graph_def from a FuncGraph is topologically ordered
        ins = [i for i in n.input if not i.startswith("^")]
        if n.op == "Placeholder":
            s.add(n.name)
        elif n.op == "Transpose" and perm(n) == [0, 3, 1, 2]:
            s.add(n.name)  # its input is NHWC already: the node becomes Identity
        elif (
            (n.op in ("Pad", "PadV2", "LeakyRelu", "Sigmoid") and base(ins[0]) in s)
            or (n.op in ("Add", "AddV2") and all(base(i) in s for i in ins))
            or (
                n.op == "ConcatV2"
                and all(base(i) in s for i in ins[:-1])
                and int(_const_value(nodes, ins[-1])) == 1
            )
            or (n.op == "SplitV" and base(ins[0]) in s and int(_const_value(nodes, ins[2])) == 1)
        ):
            s.add(n.name)
    nchw_to_nhwc = [0, 2, 3, 1]
    counts = {"transpose_removed": 0, "pad_folded": 0, "transpose_inserted": 0}
    # 2. rewrite the nodes in s and their consumers
    for n in list(graph_def.node):
        ins = list(n.input)
        if n.name in s:
            if n.op == "Placeholder":
                d = n.attr["shape"].shape.dim
                sizes = [x.size for x in d]
                for k, v in enumerate([sizes[i] for i in nchw_to_nhwc]):
                    d[k].size = v
            elif n.op == "Transpose":
                n.op = "Identity"
                del n.input[1]
                del n.attr["Tperm"]
                counts["transpose_removed"] += 1
            elif n.op in ("Pad", "PadV2"):
                pads = _const_value(nodes, ins[1])[nchw_to_nhwc]
                n.input[1] = _const(graph_def, n.name + "/nhwc_paddings", pads)
            elif n.op == "ConcatV2":
                n.input[-1] = _const(
                    graph_def,
                    n.name + "/nhwc_axis",
                    np.array(3, _const_value(nodes, ins[-1]).dtype),
                )
            elif n.op == "SplitV":
                n.input[2] = _const(
                    graph_def, n.name + "/nhwc_axis", np.array(3, _const_value(nodes, ins[2]).dtype)
                )
            continue
        data_ins = [k for k, i in enumerate(ins) if not i.startswith("^") and base(i) in s]
        if not data_ins:
            continue
        if n.op == "Transpose" and perm(n) == nchw_to_nhwc:
            n.op = "Identity"
            del n.input[1]
            del n.attr["Tperm"]
            counts["transpose_removed"] += 1
        elif n.op == "Reshape":
            shape = _const_value(nodes, ins[1]) if nodes[base(ins[1])].op == "Const" else None
            if shape is None:  # shape computed as Const + SparseToDense(empty) in this graph
                src = nodes[base(ins[1])]
                shape = _const_value(nodes, src.input[0])
            assert shape.tolist()[0] == 1 and shape.tolist()[2] == -1, shape
            n.input[1] = _const(
                graph_def, n.name + "/nhwc_shape", np.array([1, -1, shape[1]], shape.dtype)
            )
            (t,) = [c for c in graph_def.node if any(base(i) == n.name for i in c.input)]
            assert t.op == "Transpose" and perm(t) == [0, 2, 1], t
            t.op = "Identity"
            del t.input[1]
            del t.attr["Tperm"]
            counts["transpose_removed"] += 1
        else:  # a consumer that really needs NCHW: give it a transposed copy
            for k in data_ins:
                name = f"{base(ins[k])}/to_nchw_for_{n.name}"
                tp = graph_def.node.add()
                tp.name, tp.op = name, "Transpose"
                tp.input.extend(
                    [ins[k], _const(graph_def, name + "/perm", np.array([0, 3, 1, 2], np.int32))]
                )
                tp.attr["T"].type = tf.float32.as_datatype_enum
                tp.attr["Tperm"].type = tf.int32.as_datatype_enum
                n.input[k] = name
                counts["transpose_inserted"] += 1
    # 3. fold symmetric zero Pad + VALID stride-1 conv into SAME conv
    nodes = {n.name: n for n in graph_def.node}
    for n in graph_def.node:
        if (
            n.op != "Conv2D"
            or n.attr["padding"].s != b"VALID"
            or list(n.attr["strides"].list.i) != [1, 1, 1, 1]
        ):
            continue
        src = nodes[base(n.input[0])]
        while src.op == "Identity":
            src = nodes[base(src.input[0])]
        if src.op != "Pad":
            continue
        k = _const_value(nodes, n.input[1]).shape[0]
        pads = _const_value(nodes, src.input[1]).tolist()
        consumers = [c for c in graph_def.node if any(base(i) == src.name for i in c.input)]
        if (
            k % 2 == 1
            and pads == [[0, 0], [(k - 1) // 2] * 2, [(k - 1) // 2] * 2, [0, 0]]
            and len(consumers) == 1
        ):
            n.input[0] = src.input[0]
            n.attr["padding"].s = b"SAME"
            counts["pad_folded"] += 1
    return counts


def to_concrete_function(graph_def: tf.compat.v1.GraphDef):
    """Wrap the (patched) GraphDef as a TF2 concrete function with a fixed output order."""

    def _import():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(_import, [])
    g = wrapped.graph
    return wrapped.prune(
        g.as_graph_element(INPUT_NAME + ":0"), [g.as_graph_element(o + ":0") for o in OUTPUTS]
    )


def convert(concrete_fn, quantize: bool) -> bytes:
    """TFLite conversion with builtin ops only
    dynamic-range int8 weights when quantize."""
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete_fn])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data -> dynamic range
    return conv.convert()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("saved_model")
    ap.add_argument("out")
    ap.add_argument(
        "--size", type=int, default=416, help="input width (and height unless --size-h)"
    )
    ap.add_argument("--size-h", type=int, default=None, help="input height if not square")
    ap.add_argument(
        "--float", action="store_true", help="keep float32 weights (default: int8 weights)"
    )
    ap.add_argument(
        "--nchw",
        action="store_true",
        help="keep the original NCHW graph (default: rewrite to NHWC, input [1,H,W,3])",
    )
    a = ap.parse_args(argv)
    h = a.size_h or a.size
    w = a.size
    gd = load_graph_def(a.saved_model)
    patch_input_size(gd, h, w)
    ref_fn = to_concrete_function(gd)
    x = tf.random.stateless_uniform([1, 3, h, w], seed=(1, 2), minval=-2.0, maxval=2.5)
    ref = ref_fn(x)
    if a.nchw:
        fn, out = ref_fn, ref
    else:
        gd_nhwc = tf.compat.v1.GraphDef()
        gd_nhwc.CopyFrom(gd)
        counts = to_nhwc(gd_nhwc)
        fn = to_concrete_function(gd_nhwc)
        out = fn(tf.transpose(x, [0, 2, 3, 1]))
        err = max(float(tf.reduce_max(tf.abs(o - r))) for o, r in zip(out, ref, strict=True))
        print(f"NHWC rewrite: {counts}; max |output - original graph output| = {err:.2e}")
        assert err < 1e-3, err
    # sanity check of the TF graph before conversion: shapes of all six heads
    shapes = [tuple(o.shape) for o in out]
    cells = [(h // s) * (w // s) for s in (8, 16, 32)]
    expect = [
        (1, cells[0], 80),
        (1, cells[0], 44),
        (1, cells[1], 80),
        (1, cells[1], 44),
        (1, cells[2], 80),
        (1, cells[2], 44),
    ]
    assert shapes == expect, (shapes, expect)
    data = convert(fn, quantize=not a.float)
    with open(a.out, "wb") as f:
        f.write(data)
    print(
        f"{a.out}: {len(data)} bytes sha256={hashlib.sha256(data).hexdigest()} "
        f"input={f'1x3x{h}x{w}' if a.nchw else f'1x{h}x{w}x3'} "
        f"weights={'float32' if a.float else 'int8 (dynamic range)'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
